// npm run bench: history-sync decode in one Node process. The same encrypted blob of 10,000 text
// messages (100 chats of 100) read by walink (the bench build of its wasm module: the hashes and
// MAC checked, decrypted, inflated and decoded a piece at a time, each element turned into the
// event object the npm package hands its application) and by Baileys 7 (`downloadHistory`, with
// `fetch` answering from memory, then `processHistoryMessage`). Both must read the same messages,
// checked before timing.
import { createCipheriv, createHash, createHmac, hkdfSync, randomBytes } from 'node:crypto'
import { deflateSync } from 'node:zlib'
import { proto } from 'baileys/WAProto/index.js'
import { downloadHistory, processHistoryMessage } from 'baileys/lib/Utils/history.js'
import { compare, loadBenchWasm, silenceConsole, timeAsync, timeSync } from './harness.mjs'

silenceConsole()
const CHATS = 100
const PER_CHAT = 100
const OWN = '15550000000@s.whatsapp.net'
const { wasm: walink } = await loadBenchWasm()

// --- the blob, as a phone makes it ---
const conversations = Array.from({ length: CHATS }, (_, c) => {
  const chat = `1555${String(c).padStart(7, '0')}@s.whatsapp.net`
  return {
    id: chat,
    name: `chat ${c}`,
    unreadCount: c % 5,
    conversationTimestamp: 1_780_000_000 + c,
    messages: Array.from({ length: PER_CHAT }, (_, m) => ({
      msgOrderId: m,
      message: {
        key: { remoteJid: chat, fromMe: m % 3 === 0, id: `3EB0${c.toString(16)}X${m.toString(16).padStart(6, '0')}` },
        message: { conversation: `message ${m} of chat ${c}: some words to make it a realistic text` },
        messageTimestamp: 1_779_000_000 + c * PER_CHAT + m,
        status: 3,
      },
    })),
  }
})
const history = proto.HistorySync.encode({ syncType: 3, conversations, chunkOrder: 1, progress: 100 }).finish()
const compressed = deflateSync(history)
const mediaKey = randomBytes(32)
const expanded = Buffer.from(hkdfSync('sha256', mediaKey, Buffer.alloc(32), 'WhatsApp History Keys', 112))
const [iv, cipherKey, macKey] = [expanded.subarray(0, 16), expanded.subarray(16, 48), expanded.subarray(48, 80)]
const cipher = createCipheriv('aes-256-cbc', cipherKey, iv)
const enc = Buffer.concat([cipher.update(compressed), cipher.final()])
const mac = createHmac('sha256', macKey).update(iv).update(enc).digest().subarray(0, 10)
const file = Buffer.concat([enc, mac])
const fileSha256 = createHash('sha256').update(compressed).digest()
const fileEncSha256 = createHash('sha256').update(file).digest()
const notification = { mediaKey, directPath: '/v/t62.1/hist.enc', fileSha256, fileEncSha256, fileLength: compressed.length }
globalThis.fetch = async () => new Response(file, { status: 200 })

// --- correctness first: both read every message, with the same texts ---
const walinkRead = () => walink.benchHistoryDecode(mediaKey, file, fileSha256, fileEncSha256, OWN)
const baileysRead = async () => processHistoryMessage(await downloadHistory(notification, {}))
const ours = walinkRead().filter((e) => e.type === 'message')
const theirs = (await baileysRead()).messages
if (ours.length !== CHATS * PER_CHAT || theirs.length !== CHATS * PER_CHAT) {
  throw new Error(`messages read: walink ${ours.length}, Baileys ${theirs.length}`)
}
for (const [i, m] of ours.entries()) {
  if (m.text !== theirs[i].message.conversation || m.id !== theirs[i].key.id || !m.history) {
    throw new Error(`message ${i} differs`)
  }
}

if (walink.benchHistoryDecodeCore(mediaKey, file, fileSha256, fileEncSha256, OWN) !== ours.length + CHATS) {
  throw new Error('the core alone reads a different number of events')
}
const results = await compare(
  {
    walink: (n) => timeSync(n, walinkRead),
    walinkCore: (n) => timeSync(n, () => walink.benchHistoryDecodeCore(mediaKey, file, fileSha256, fileEncSha256, OWN)),
    baileys: (n) => timeAsync(n, baileysRead),
  },
  { minMs: 1000 },
)
const ms = Object.fromEntries(Object.entries(results).map(([k, opsPerSec]) => [k, 1000 / opsPerSec]))
console.log(`history sync: ms per blob, CPU time, best of 5 interleaved rounds`)
console.log(
  `decode ${(CHATS * PER_CHAT).toLocaleString('en-US')} messages (${(file.length / 1024).toFixed(0)} KiB blob, ${(history.length / 1024).toFixed(0)} KiB inflated)`.padEnd(60) +
    ` walink ${ms.walink.toFixed(2).padStart(8)} ms  baileys ${ms.baileys.toFixed(2).padStart(8)} ms   walink is ${(ms.baileys / ms.walink).toFixed(2)}x as fast`,
)
console.log(
  `  of which the core (decrypt, inflate, decode, events; no JS objects)`.padEnd(60) +
    ` walink ${ms.walinkCore.toFixed(2).padStart(8)} ms                        ${(ms.baileys / ms.walinkCore).toFixed(2)}x`,
)
