// Streamed media memory: how much the process's RSS grows while one walink client sends a
// 100 MiB video from a file and another (same process) downloads it into a file, through the
// npm driver against walink-sim's mock-server (its media host). Both clients run in this
// process, so the figure covers the sender's encryption and upload and the receiver's download
// and decryption. Not part of `npm run bench` (it writes 100 MiB twice); run:
//   node --expose-gc bench/media-memory.mjs            (streamed: path in, file out)
//   WALINK_MEDIA_MODE=memory node --expose-gc bench/media-memory.mjs   (whole buffers, as before)
//   WALINK_MEDIA_CRYPTO=wasm ...                        (the core's wasm crypto instead of node:crypto)
//   WALINK_MEDIA_MIB=N ...                              (another size)
//   WALINK_MEDIA_GC_MS=N ...  (a diagnostic: a full gc every N ms while sampling, so the peak is
//                              the live set, without the dead pieces V8 has not collected yet)
// Needs the mock-server binary (test/support/mock-server.js) and the wasm build (npm/wasm).
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdtemp, open, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { startMockServer } from '../test/support/mock-server.js'
import { pairedWalinkClient } from '../test/support/walink-client.js'

const MIB = Number(process.env.WALINK_MEDIA_MIB ?? 100)
const MODE = process.env.WALINK_MEDIA_MODE ?? 'stream'
const CRYPTO = process.env.WALINK_MEDIA_CRYPTO ?? 'native'
const mib = (bytes) => `${(bytes / 1048576).toFixed(1)} MiB`

function gc() {
  globalThis.gc?.()
  globalThis.gc?.()
}

async function sha256(path) {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk)
  return hash.digest('hex')
}

/** Writes `mib` MiB of deterministic bytes to `path`, 1 MiB at a time. */
async function writeFileOf(path, size) {
  const file = await open(path, 'w')
  const block = Buffer.alloc(1 << 20)
  for (let m = 0; m < size; m++) {
    for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((m * 262144 + i) * 2654435761 >>> 0, i)
    await file.write(block)
  }
  await file.close()
}

const directory = await mkdtemp(join(tmpdir(), 'walink-media-bench-'))
const server = await startMockServer(31)
// WALINK_MEDIA_HOST_GC=1: the driver's media host calls gc() every 2 MiB moved (`mediaGc`).
const options = { mediaCrypto: CRYPTO, mediaGc: process.env.WALINK_MEDIA_HOST_GC ? globalThis.gc : undefined }
const sender = await pairedWalinkClient(server, '15550401001', 'Sender', undefined, options)
const receiver = await pairedWalinkClient(server, '15550401002', 'Receiver', undefined, options)
const to = '15550401002@s.whatsapp.net'

async function transfer(source, target, size) {
  const media = MODE === 'memory' ? { data: await readFile(source) } : { path: source }
  const sent = await sender.connection.sendMedia(to, { kind: 'video', mimetype: 'video/mp4', ...media })
  const event = await receiver.waitFor((e) => e.type === 'message' && e.id === sent.id, 'the video', 120_000)
  if (MODE === 'memory') {
    const data = await receiver.connection.downloadMedia(event)
    if (data.length !== size) throw new Error(`downloaded ${data.length} bytes`)
  } else {
    await receiver.connection.downloadMedia(event, { to: target })
  }
}

try {
  // Warm-up: one small transfer (code paths, the HTTP client's pool, the wasm memory's start).
  const small = join(directory, 'small.bin')
  await writeFileOf(small, 1)
  await transfer(small, join(directory, 'small.out'), 1 << 20)

  const source = join(directory, 'video.bin')
  await writeFileOf(source, MIB)
  gc()
  const base = process.memoryUsage().rss
  let peak = base
  const gcEvery = Number(process.env.WALINK_MEDIA_GC_MS ?? 0)
  let lastGc = performance.now()
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss)
    if (gcEvery > 0 && performance.now() - lastGc >= gcEvery) {
      gc()
      lastGc = performance.now()
    }
  }, 5)
  const started = performance.now()
  await transfer(source, join(directory, 'video.out'), MIB << 20)
  const ms = performance.now() - started
  clearInterval(sampler)
  peak = Math.max(peak, process.memoryUsage().rss)
  if (MODE !== 'memory' && (await sha256(source)) !== (await sha256(join(directory, 'video.out')))) {
    throw new Error('the downloaded file differs')
  }
  console.log(
    `media memory (${MODE}, ${CRYPTO} crypto${process.env.WALINK_MEDIA_GC_MS ? `, gc every ${process.env.WALINK_MEDIA_GC_MS} ms` : ''}${process.env.WALINK_MEDIA_HOST_GC ? ', host gc every 2 MiB' : ''}): ${MIB} MiB sent and downloaded in one process in ${(ms / 1000).toFixed(1)} s; ` +
      `RSS ${mib(base)} before, peak ${mib(peak)}: growth ${mib(peak - base)}`,
  )
} finally {
  await sender.connection.close()
  await receiver.connection.close()
  server.stop()
  await rm(directory, { recursive: true, force: true })
}
