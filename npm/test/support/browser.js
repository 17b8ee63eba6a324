// Headless Chromium (Debian's chromium package, driven by playwright-core) and a static server
// for the package directory, for the tests that run walink in a real browser. `launch()` returns
// null when no Chromium is installed, so those tests skip instead of failing on a machine without it.
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { extname, join, normalize } from 'node:path'
import { fileURLToPath } from 'node:url'

const PACKAGE_DIR = fileURLToPath(new URL('../..', import.meta.url))
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' }
const CANDIDATES = [process.env.WALINK_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter(Boolean)

/** The Chromium binary, or null. */
export function chromiumPath() {
  return CANDIDATES.find((path) => existsSync(path)) ?? null
}

/** Serves the package directory (and `extra` routes: path -> string body) on 127.0.0.1. */
export async function servePackage(extra = {}) {
  const server = createServer(async (request, response) => {
    const path = decodeURIComponent(new URL(request.url, 'http://x').pathname)
    if (path in extra) {
      response.writeHead(200, { 'content-type': 'text/html' })
      response.end(extra[path])
      return
    }
    const file = normalize(join(PACKAGE_DIR, path))
    if (!file.startsWith(PACKAGE_DIR)) {
      response.writeHead(403).end()
      return
    }
    try {
      const body = await readFile(file)
      response.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' })
      response.end(body)
    } catch {
      response.writeHead(404).end()
    }
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, origin: `http://127.0.0.1:${server.address().port}` }
}

/** Launches headless Chromium, or returns null when it is not installed. */
export async function launch() {
  const executablePath = chromiumPath()
  if (!executablePath) return null
  const { chromium } = await import('playwright-core')
  return chromium.launch({
    executablePath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  })
}
