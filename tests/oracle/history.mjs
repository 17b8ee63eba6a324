// Media download and history-sync oracle: Baileys' own download path (downloadContentFromMessage,
// downloadHistory, processHistoryMessage) run against blobs served from the simulated store.
// `fetch` is replaced by a lookup in the blobs the test passes, keyed by direct path.
import { Readable } from 'node:stream'
import { proto } from 'baileys/WAProto/index.js'
import { downloadContentFromMessage } from 'baileys/lib/Utils/messages-media.js'
import { downloadHistory, processHistoryMessage, getHistoryMsg } from 'baileys/lib/Utils/history.js'
import { serve, hex, unhex } from './rpc.mjs'

let blobs = new Map()
const requested = []
globalThis.fetch = async (url) => {
  const parsed = new URL(url.toString())
  const path = parsed.pathname + parsed.search
  requested.push(parsed.host + path)
  const blob = blobs.get(path)
  if (!blob) return new Response('not found', { status: 404 })
  return new Response(blob, { status: 200 })
}

const collect = async (stream) => {
  const chunks = []
  for await (const chunk of Readable.from(stream)) chunks.push(chunk)
  return Buffer.concat(chunks)
}

const long = (value) => (value == null ? null : Number(value))

serve({
  // Stores blobs for the fake fetch: { blobs: { directPath: hex } }.
  serve: ({ blobs: given }) => {
    blobs = new Map(Object.entries(given).map(([path, bytes]) => [path, unhex(bytes)]))
    return { count: blobs.size }
  },

  // downloadContentFromMessage for a media message's fields; returns the plaintext.
  download: async ({ mediaKey, directPath, type }) => {
    const stream = await downloadContentFromMessage({ mediaKey: unhex(mediaKey), directPath }, type)
    return { plaintext: hex(await collect(stream)), url: requested[requested.length - 1] }
  },

  // A decrypted wa.Message (the phone's notification): Baileys decodes it with its own
  // protobuf definitions, downloads and inflates the history, and processes it.
  history: async ({ message }) => {
    const decoded = proto.Message.decode(unhex(message))
    const notification = getHistoryMsg(decoded)
    if (!notification) throw new Error('no history sync notification in the message')
    const history = await downloadHistory(notification, {})
    const result = processHistoryMessage(history)
    return {
      protocolType: decoded.protocolMessage?.type,
      notification: {
        syncType: notification.syncType,
        chunkOrder: notification.chunkOrder,
        fileLength: long(notification.fileLength),
        directPath: notification.directPath,
        fileSha256: hex(notification.fileSha256),
        fileEncSha256: hex(notification.fileEncSha256),
      },
      syncType: result.syncType,
      progress: result.progress ?? null,
      chats: result.chats.map((chat) => ({ id: chat.id, unreadCount: chat.unreadCount ?? null })),
      messages: result.messages.map((m) => ({
        remoteJid: m.key.remoteJid,
        id: m.key.id,
        fromMe: !!m.key.fromMe,
        participant: m.key.participant || null,
        text: m.message?.conversation ?? null,
        timestamp: long(m.messageTimestamp),
      })),
    }
  },
})
