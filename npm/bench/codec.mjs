// npm run bench: node codec ops/s for walink (this package), Baileys' JS codec and
// whatsapp-rust-bridge, on three stanza shapes, in one run. Prints ratios to Baileys and bridge.
import { decodeDecompressedBinaryNode, encodeBinaryNode } from 'baileys/lib/WABinary/index.js'
import * as constants from 'baileys/lib/WABinary/constants.js'
import * as bridge from 'whatsapp-rust-bridge'
import { decodeNode, encodeNode } from 'walink'
import { cpuMs } from './harness.mjs'

const bytes = (n, seed) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff)

const shapes = {
  'message + 200 B enc': {
    tag: 'message',
    attrs: { id: '3EB0C431C26A1916E5A2B1', to: '15551234567@s.whatsapp.net', type: 'text', t: '1732300000' },
    content: [{ tag: 'enc', attrs: { v: '2', type: 'msg' }, content: bytes(200, 1) }],
  },
  'iq result, 500 user/device': {
    tag: 'iq',
    attrs: { from: '@s.whatsapp.net', id: '12345.6789-42', type: 'result' },
    content: Array.from({ length: 500 }, (_, i) => ({
      tag: 'user',
      attrs: { jid: `1555${String(1000000 + i)}@s.whatsapp.net` },
      content: [{ tag: 'device', attrs: { id: String(i % 5), 'key-index': String(i % 7) } }],
    })),
  },
  '64 KB bytes': { tag: 'enc', attrs: { v: '2', type: 'skmsg' }, content: bytes(64 * 1024, 7) },
}

/** Best ops/s (per CPU second) over several rounds, candidates interleaved, so a busy machine hurts all alike. */
function compare(candidates, rounds = 5) {
  const best = Object.fromEntries(Object.keys(candidates).map((name) => [name, 0]))
  for (let round = 0; round < rounds; round++) {
    for (const [name, fn] of Object.entries(candidates)) best[name] = Math.max(best[name], measure(fn))
  }
  return best
}

function measure(fn, minMs = 150) {
  // Start each measurement with a clean heap, so one codec's garbage is not billed to the next.
  globalThis.gc?.()
  for (let i = 0; i < 20; i++) fn()
  let runs = 0
  let batch = 1
  const start = cpuMs()
  let elapsed = 0
  while (elapsed < minMs) {
    for (let i = 0; i < batch; i++) fn()
    runs += batch
    batch = Math.min(batch * 2, 4096)
    elapsed = cpuMs() - start
  }
  return (runs / elapsed) * 1000
}

const fmt = (n) => Math.round(n).toLocaleString('en-US').padStart(11)
const ratio = (a, b) => `${(a / b).toFixed(2)}x`.padStart(7)
let sink = 0

console.log(`node ${process.version}; ops/s (higher is better)\n`)
for (const [name, node] of Object.entries(shapes)) {
  const wire = encodeBinaryNode(node)
  const ours = encodeNode(node)
  if (Buffer.compare(Buffer.from(ours), wire) !== 0) throw new Error(`${name}: walink and Baileys bytes differ`)
  const body = new Uint8Array(wire)
  const inner = wire.subarray(1)

  const enc = compare({
    walink: (() => (sink += encodeNode(node).length)),
    baileys: (() => (sink += encodeBinaryNode(node).length)),
    bridge: (() => (sink += bridge.encodeNode(node).length)),
  })
  const dec = compare({
    walink: (() => (sink += decodeNode(body).tag.length)),
    baileys: (() => (sink += decodeDecompressedBinaryNode(inner, constants).tag.length)),
    bridgeLazy: () => {
      const n = bridge.decodeNode(body)
      sink += n.tag.length
      n.free()
    },
    bridgePlain: () => {
      const n = bridge.decodeNode(body)
      sink += n.toJSON().tag.length
      n.free()
    },
  })
  console.log(`${name} (${wire.length} B on the wire)`)
  console.log(`  encode  walink ${fmt(enc.walink)}  baileys ${fmt(enc.baileys)}  bridge ${fmt(enc.bridge)}` +
    `   walink/baileys ${ratio(enc.walink, enc.baileys)}  walink/bridge ${ratio(enc.walink, enc.bridge)}`)
  console.log(`  decode  walink ${fmt(dec.walink)}  baileys ${fmt(dec.baileys)}  bridge(handle) ${fmt(dec.bridgeLazy)}` +
    `  bridge(toJSON) ${fmt(dec.bridgePlain)}   walink/baileys ${ratio(dec.walink, dec.baileys)}  walink/bridge(toJSON) ${ratio(dec.walink, dec.bridgePlain)}`)
}
if (sink === 0) console.log('')
