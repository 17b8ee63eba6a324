#!/usr/bin/env node
// Builds the unpacked extension and its zip, with no bundler: src/ as it is, the walink npm
// package's browser entry and the modules it imports (only files the package publishes), its
// wasm module, and uqr (the QR encoder) from node_modules.
//
//   node build.mjs                      dist/extension/ and dist/walink-extension.zip (WhatsApp)
//   node build.mjs --server ws://127.0.0.1:PORT/ws/chat --trust-root HEX [--media-origin URL] [--out DIR]
//                                       an unpacked build for a test server (walink-sim's
//                                       mock-server): its URL and trust root in config.json, and a
//                                       host permission for it so the Origin rule applies there
import { copyFile, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { crc32, deflateRawSync } from 'node:zlib'

const HERE = dirname(fileURLToPath(import.meta.url))
const SRC = join(HERE, 'src')
const MODULES = join(HERE, 'node_modules')

/** Relative module references: static imports and re-exports, and `new URL('x', import.meta.url)`. */
const REFERENCES = [/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*'(\.[^']+)'/g, /(?:^|\n)\s*import\s*'(\.[^']+)'/g, /new URL\('(\.[^']+)',\s*import\.meta\.url\)/g]

/** The files of the walink package the browser entry needs, relative to the package. */
async function walinkFiles() {
  const root = join(MODULES, 'walink')
  const manifest = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'))
  const published = manifest.files
  const isPublished = (file) => published.some((entry) => file === entry || file.startsWith(entry + '/'))
  const entry = manifest.exports['.'].browser.replace(/^\.\//, '')
  const found = new Set()
  const visit = async (file) => {
    if (found.has(file)) return
    if (!isPublished(file)) throw new Error(`walink's browser entry needs ${file}, which the package does not publish`)
    found.add(file)
    if (!file.endsWith('.js')) return
    const text = await readFile(join(root, file), 'utf8')
    for (const pattern of REFERENCES) {
      for (const [, reference] of text.matchAll(pattern)) {
        await visit(relative(root, resolve(root, dirname(file), reference)))
      }
    }
  }
  await visit(entry)
  return [...found].sort()
}

/** A stored-or-deflated zip of `files` (`[name, bytes]`), entries in the given order, dated 1980. */
function zip(files) {
  const locals = []
  const centrals = []
  let offset = 0
  for (const [name, bytes] of files) {
    const deflated = deflateRawSync(bytes, { level: 9 })
    const method = deflated.length < bytes.length ? 8 : 0
    const body = method === 8 ? deflated : bytes
    const nameBytes = Buffer.from(name, 'utf8')
    const fields = Buffer.alloc(26)
    fields.writeUInt16LE(20, 0) // version needed
    fields.writeUInt16LE(0x0800, 2) // UTF-8 names
    fields.writeUInt16LE(method, 4)
    fields.writeUInt16LE(0, 6) // time
    fields.writeUInt16LE(0x21, 8) // 1980-01-01
    fields.writeUInt32LE(crc32(bytes), 10)
    fields.writeUInt32LE(body.length, 14)
    fields.writeUInt32LE(bytes.length, 18)
    fields.writeUInt16LE(nameBytes.length, 22)
    fields.writeUInt16LE(0, 24)
    locals.push(Buffer.from('504b0304', 'hex'), fields, nameBytes, body)
    const central = Buffer.alloc(42)
    central.writeUInt16LE(20, 0) // made by
    fields.copy(central, 2, 0, 26)
    // comment length, disk, internal and external attributes: zero; then the local header's offset.
    central.writeUInt32LE(offset, 38)
    centrals.push(Buffer.from('504b0102', 'hex'), central, nameBytes)
    offset += 4 + 26 + nameBytes.length + body.length
  }
  const directory = Buffer.concat(centrals)
  const end = Buffer.alloc(18)
  // disk numbers: zero; entries on this disk and in all; the directory's size and offset.
  end.writeUInt16LE(files.length, 4)
  end.writeUInt16LE(files.length, 6)
  end.writeUInt32LE(directory.length, 8)
  end.writeUInt32LE(offset, 12)
  return Buffer.concat([...locals, directory, Buffer.from('504b0506', 'hex'), end])
}

/** Every file under `dir`, relative, sorted. */
async function listFiles(dir, prefix = '') {
  const names = []
  for (const entry of (await readdir(join(dir, prefix), { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    const name = prefix ? `${prefix}/${entry.name}` : entry.name
    if (entry.isDirectory()) names.push(...(await listFiles(dir, name)))
    else names.push(name)
  }
  return names
}

/**
 * Builds the extension into `out` (default dist/extension). With `server`, the build talks to
 * that test server (`trustRoot`: its root key in hex) instead of WhatsApp. With `zipTo`, writes
 * the zip there. Resolves with `{ out, files, zip?, zipBytes? }`.
 */
export async function build({ out = join(HERE, 'dist', 'extension'), server, trustRoot, mediaOrigin, zipTo } = {}) {
  await rm(out, { recursive: true, force: true })
  await mkdir(out, { recursive: true })
  const copy = async (from, to) => {
    await mkdir(dirname(join(out, to)), { recursive: true })
    await copyFile(from, join(out, to))
  }
  for (const file of await listFiles(SRC)) {
    if (file !== 'manifest.json') await copy(join(SRC, file), file)
  }
  for (const file of await walinkFiles()) await copy(join(MODULES, 'walink', file), join('walink', file))
  await copy(join(MODULES, 'uqr', 'dist', 'index.mjs'), 'vendor/uqr.mjs')
  await copy(join(MODULES, 'uqr', 'LICENSE'), 'vendor/uqr.LICENSE')

  const manifest = JSON.parse(await readFile(join(SRC, 'manifest.json'), 'utf8'))
  const config = {}
  if (server) {
    if (!trustRoot) throw new Error('--server needs --trust-root (the test server\'s root key in hex)')
    const url = new URL(server)
    manifest.host_permissions = [...manifest.host_permissions, `${url.protocol}//${url.hostname}/*`]
    Object.assign(config, { url: server, trustRoot, ...(mediaOrigin ? { mediaOrigin } : {}) })
  }
  await writeFile(join(out, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n')
  await writeFile(join(out, 'config.json'), JSON.stringify(config) + '\n')

  const files = await listFiles(out)
  const result = { out, files }
  if (zipTo) {
    const entries = await Promise.all(files.map(async (file) => [file, await readFile(join(out, file))]))
    await mkdir(dirname(zipTo), { recursive: true })
    await writeFile(zipTo, zip(entries))
    Object.assign(result, { zip: zipTo, zipBytes: (await stat(zipTo)).size })
  }
  return result
}

function parseArguments(argv) {
  const options = {}
  const names = { '--server': 'server', '--trust-root': 'trustRoot', '--media-origin': 'mediaOrigin', '--out': 'out' }
  for (let i = 0; i < argv.length; i += 2) {
    const name = names[argv[i]]
    if (!name || argv[i + 1] === undefined) throw new Error(`usage: node build.mjs [--server URL --trust-root HEX [--media-origin URL]] [--out DIR]`)
    options[name] = name === 'out' ? resolve(argv[i + 1]) : argv[i + 1]
  }
  return options
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const options = parseArguments(process.argv.slice(2))
  if (!options.server) options.zipTo = join(HERE, 'dist', 'walink-extension.zip')
  const result = await build(options)
  const bytes = (await Promise.all(result.files.map(async (file) => (await stat(join(result.out, file))).size))).reduce((a, b) => a + b, 0)
  console.log(`unpacked: ${relative(process.cwd(), result.out) || '.'} (${result.files.length} files, ${bytes} bytes)`)
  if (result.zip) console.log(`zip: ${relative(process.cwd(), result.zip)} (${result.zipBytes} bytes)`)
}
