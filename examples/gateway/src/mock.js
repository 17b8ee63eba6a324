// walink-sim's mock-server (the simulated WhatsApp server with an HTTP control API that plays the
// phones), for the offline mode (bin/dev.js), the tests and the benchmarks. Not used in production.
import { spawn } from 'node:child_process'
import { createPrivateKey, createPublicKey } from 'node:crypto'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const REPO = fileURLToPath(new URL('../../..', import.meta.url))

/** The mock-server binary: $WALINK_MOCK_SERVER, or the debug build of the cargo target dir. */
export function mockServerPath() {
  const candidates = [process.env.WALINK_MOCK_SERVER, process.env.CARGO_TARGET_DIR && `${process.env.CARGO_TARGET_DIR}/debug/mock-server`, `${REPO}target/debug/mock-server`].filter(Boolean)
  return candidates.find((path) => existsSync(path)) ?? null
}

/** The simulation's test root key (the X25519 public key of the private key 0x71 x 32). */
export function mockTrustRoot() {
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), Buffer.alloc(32, 0x71)])
  const spki = createPublicKey(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })).export({ format: 'der', type: 'spki' })
  return new Uint8Array(spki.subarray(spki.length - 32))
}

/** Starts the mock-server; resolves with `{ url, controlUrl, control(method, path, body), stop() }`. */
export async function startMockServer({ seed = 7 } = {}) {
  const path = mockServerPath()
  if (!path) throw new Error('the mock-server is not built: cargo build -p walink-sim --bin mock-server (or set WALINK_MOCK_SERVER)')
  const proc = spawn(path, ['--seed', String(seed), '--until-stdin-closes'], { stdio: ['pipe', 'pipe', 'inherit'] })
  const line = await new Promise((resolve, reject) => {
    let buffered = ''
    proc.stdout.on('data', (data) => {
      buffered += data
      const end = buffered.indexOf('\n')
      if (end >= 0) resolve(buffered.slice(0, end))
    })
    proc.on('exit', (code) => reject(new Error(`mock-server exited with ${code}`)))
  })
  const match = /listening (ws:\/\/\S+) control (http:\/\/\S+)/.exec(line)
  if (!match) throw new Error(`unexpected mock-server banner: ${line}`)
  const [, ws, http] = match
  return {
    url: `${ws}/ws/chat`,
    controlUrl: http,
    async control(method, route, body) {
      const response = await fetch(`${http}${route}`, { method, body: body === undefined ? undefined : JSON.stringify(body) })
      const json = await response.json()
      if (!response.ok) throw Object.assign(new Error(`${method} ${route}: ${response.status} ${JSON.stringify(json)}`), { status: response.status })
      return json
    },
    stop() {
      proc.stdin.end()
      proc.kill()
    },
  }
}
