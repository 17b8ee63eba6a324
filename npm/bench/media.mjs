// npm run bench (media part): media encrypt and decrypt throughput in one Node process, the same
// 64 MiB file for walink and Baileys 7, interleaved, best of five rounds.
// - encrypt: walink's FileMediaHost.prepareUpload (the plaintext in 64 KiB pieces through
//   node:crypto under the core's expanded keys, or through the core's wasm encryptor, into a
//   temporary file, with both hashes) against Baileys' `encryptedStream` (node:crypto into a
//   temporary file);
// - decrypt: from a local HTTP server serving the encrypted file, walink's FileMediaHost.perform
//   (node:http, the body decrypted as it arrives into a sink file, MAC checked in constant time
//   and both hashes computed) against Baileys' `downloadContentFromMessage` (fetch, decrypted,
//   no MAC check) piped into a file.
// MB/s are of the plaintext (10^6 bytes).
import { createWriteStream } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'

import { downloadContentFromMessage, encryptedStream } from 'baileys'

import { FileMediaHost, mediaKeys, nodeMediaCrypto, wasmMediaCrypto } from '../src/node.js'
import * as wasm from '../wasm/walink_wasm.js'
import { silenceConsole } from './harness.mjs'

silenceConsole()
const SIZE = Number(process.env.WALINK_BENCH_MEDIA_MIB ?? 64) << 20
const ROUNDS = 5
const plain = Buffer.alloc(SIZE)
for (let i = 0; i < SIZE; i += 4) plain.writeUInt32LE((i * 2654435761) >>> 0, i)

const directory = await mkdtemp(join(tmpdir(), 'walink-media-bench-'))
const hosts = {
  native: new FileMediaHost({ crypto: nodeMediaCrypto(), core: wasm, directory }),
  wasm: new FileMediaHost({ crypto: wasmMediaCrypto(wasm), core: wasm, directory }),
}

// The encrypted file both sides download (walink's own upload of the plaintext).
const prepared = await hosts.native.prepareUpload(plain, 'video')
const pieces = []
for await (const piece of hosts.native.openBody(prepared.id)) pieces.push(piece)
const file = Buffer.concat(pieces)
const server = createServer((request, response) => {
  response.setHeader('content-length', String(file.length))
  response.end(file)
})
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
const url = `http://127.0.0.1:${server.address().port}/media.enc`

async function time(run) {
  const started = performance.now()
  await run()
  return performance.now() - started
}

const candidates = {
  'encrypt walink native': async () => {
    const body = await hosts.native.prepareUpload(plain, 'video')
    await hosts.native.releaseBody(body.id)
  },
  'encrypt walink wasm': async () => {
    const body = await hosts.wasm.prepareUpload(plain, 'video')
    await hosts.wasm.releaseBody(body.id)
  },
  'encrypt Baileys': async () => {
    const result = await encryptedStream(plain, 'video')
    await rm(result.encFilePath, { force: true })
  },
  ...Object.fromEntries(
    Object.entries(hosts).map(([name, host]) => [
      `decrypt walink ${name}`,
      async () => {
        const sink = await host.newSink()
        const decrypt = { sink, mediaKey: prepared.mediaKey, mediaType: 'video', ...mediaKeys(prepared.mediaKey, 'video') }
        const answer = await host.perform({ method: 'GET', url, headers: [], decrypt, maxResponseBytes: file.length })
        if (answer.streamed?.fileLength !== SIZE) throw new Error(`walink decrypted ${JSON.stringify(answer.streamed)}`)
        await host.discardSink(sink)
      },
    ]),
  ),
  'decrypt Baileys': async () => {
    const target = join(directory, 'baileys.out')
    const stream = await downloadContentFromMessage({ mediaKey: prepared.mediaKey, url }, 'video')
    await pipeline(stream, createWriteStream(target))
    await rm(target, { force: true })
  },
}

try {
  const best = Object.fromEntries(Object.keys(candidates).map((name) => [name, Infinity]))
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, run] of Object.entries(candidates)) {
      globalThis.gc?.()
      best[name] = Math.min(best[name], await time(run))
    }
  }
  const mbps = (name) => SIZE / 1e6 / (best[name] / 1000)
  console.log(`media (${SIZE >> 20} MiB, best of ${ROUNDS}; MB/s of plaintext):`)
  for (const op of ['encrypt', 'decrypt']) {
    const baileys = mbps(`${op} Baileys`)
    console.log(`  ${op}: Baileys ${baileys.toFixed(0)} MB/s`)
    for (const name of ['native', 'wasm']) {
      const ours = mbps(`${op} walink ${name}`)
      console.log(`  ${op}: walink ${name.padEnd(6)} ${ours.toFixed(0)} MB/s (${(ours / baileys).toFixed(2)}x Baileys)`)
    }
  }
} finally {
  server.close()
  await rm(directory, { recursive: true, force: true })
}
