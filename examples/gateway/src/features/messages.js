// Messages: text to a person or a group, received messages, receipts, marking read; native routes
// and Evolution's sendText (quoted, mentioned), sendReaction, sendLocation, sendContact,
// sendPoll, sendMedia, sendSticker and sendWhatsAppAudio (base64), updateMessage (edit),
// deleteMessageForEveryone (revoke), getBase64FromMediaMessage, markMessageAsRead and findMessages;
// received edits, revokes and poll votes as their own events.
import { content, decodeMessage, encodeMessage } from 'walink'

import { ApiError, fromCommandError } from '../errors.js'
import { RECEIPT_STATUS, evolutionMessage } from '../evolution.js'
import { toJid, userOf } from '../gateway.js'
import { S } from '../http/schema.js'
import { fetchMediaUrl } from '../media-url.js'

const MAX_DELAY_MS = 60_000

/**
 * Top-level fields of wa.Message that carry no content of their own: senderKeyDistributionMessage
 * (2), protocolMessage (12: app-state key shares, history notifications, revokes and edits until
 * the content model of walink issue 16), messageContextInfo (35).
 */
const PROTOCOL_FIELDS = new Set([2, 12, 35])

/** The top-level field numbers of an encoded protobuf, or null when it does not parse. */
export function topLevelFields(bytes) {
  const fields = new Set()
  let i = 0
  const varint = () => {
    let value = 0
    for (let shift = 0; shift < 64; shift += 7) {
      if (i >= bytes.length) throw new RangeError('truncated')
      const b = bytes[i++]
      value += (b & 0x7f) * 2 ** shift
      if (b < 0x80) return value
    }
    throw new RangeError('varint too long')
  }
  try {
    while (i < bytes.length) {
      const key = varint()
      fields.add(Math.floor(key / 8))
      const wire = key % 8
      if (wire === 0) varint()
      else if (wire === 1) i += 8
      else if (wire === 2) {
        const length = varint() // read before adding: `i += varint()` would add to the old i
        i += length
      }
      else if (wire === 5) i += 4
      else throw new RangeError('wire type')
      if (i > bytes.length) throw new RangeError('truncated')
    }
  } catch {
    return null
  }
  return fields
}

/** True for a message that only carries protocol data (never shown in a chat). */
export function isProtocolOnly(bytes) {
  const fields = bytes?.length ? topLevelFields(bytes) : null
  return fields !== null && fields.size > 0 && [...fields].every((f) => PROTOCOL_FIELDS.has(f))
}

/** A stored message row as the API shows it. */
export function messageView(row) {
  return { id: row.id, chat: row.chat, sender: row.sender, fromMe: Boolean(row.from_me), timestamp: row.timestamp, text: row.text, status: row.status }
}

/** A stored row for Evolution's shapes: received media with its content (keys as base64), else the text. */
function storedView(row) {
  const view = messageView(row)
  if (!row.media_content) return view
  try {
    return { ...view, message: jsonSafe(decodeMessage(new Uint8Array(row.media_content))), messageType: row.message_type ?? 'unknown' }
  } catch {
    return view
  }
}

/** The receipt type's status name (`delivered`, `read`, `played`, ...). */
function receiptStatus(type) {
  if (!type || type === 'delivery') return 'delivered'
  if (type === 'read-self') return 'read'
  return type
}

/** Sends a text through the instance's paced queue; stores it and emits message.sent. */
export function sendText(ctx, row, to, text) {
  return sendContent(ctx, row, to, { type: 'sendText', text }, { conversation: text }, text)
}

/**
 * Protobuf JSON made safe for JSON.stringify and webhooks: bytes as base64 (as Evolution's
 * Baileys-based payloads carry them), 64-bit integers beyond 2^53 as decimal strings.
 */
export function jsonSafe(value) {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64')
  if (typeof value === 'bigint') return value.toString()
  if (Array.isArray(value)) return value.map(jsonSafe)
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).map(([k, v]) => [k, jsonSafe(v)]))
  return value
}

/** Evolution's `messageType`: the content's first field (`conversation`, `reactionMessage`, ...). */
export function messageTypeOf(message) {
  const key = message && Object.keys(message).find((k) => k !== 'messageContextInfo')
  return key ?? 'unknown'
}

/**
 * Sends `command` (sendText, sendMessage or sendMedia without `to`) through the instance's paced
 * queue, answered at the server's ack; stores the message (`message`: its protobuf JSON as shown
 * in events, `text` its text or null) and emits message.sent.
 */
export async function sendContent(ctx, row, to, command, message, text = null) {
  const runtime = ctx.gateway.connected(row)
  const chat = toJid(to)
  const output = await runtime.paced(() => runtime.command({ ...command, to: chat }))
  const sent = { id: output.id, chat, sender: row.jid, fromMe: true, timestamp: Math.floor(Date.now() / 1000), text, status: 'sent', messageType: messageTypeOf(message), message: jsonSafe(message) }
  await ctx.gateway.instanceTx(row.id, async (q) => {
    await q.run(
      'INSERT INTO messages (instance_id, chat, id, from_me, sender, timestamp, text, status, message_type) VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?) ON CONFLICT (instance_id, chat, id, from_me) DO UPDATE SET sender = excluded.sender, timestamp = excluded.timestamp, text = excluded.text, status = excluded.status, message_type = excluded.message_type',
      row.id, chat, sent.id, row.jid, sent.timestamp, text, 'sent', sent.messageType,
    )
    await touchChat(q, row.id, chat, sent.timestamp, false)
    if (command.type === 'sendMedia') await keepSentMedia(q, ctx.gateway.config, row.id, chat, sent.id, command)
    await ctx.gateway.emit(q, row.id, 'message.sent', sent)
  })
  ctx.metrics.messages.out++
  return sent
}

/**
 * Keeps the file of media this instance sent (the core does not hand back the keys it uploaded
 * with, so the file cannot be downloaded again): for getBase64FromMediaMessage and a webhook's
 * `base64` on SEND_MESSAGE. Files above GATEWAY_MEDIA_BASE64_MAX_BYTES are not kept; kept files
 * are dropped after GATEWAY_EVENT_RETENTION_MS.
 */
async function keepSentMedia(q, config, instanceId, chat, id, media) {
  if (!media.data || media.data.length > config.mediaBase64MaxBytes) return
  await q.run(
    'INSERT INTO sent_media (instance_id, chat, id, mimetype, file_name, caption, data, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (instance_id, chat, id) DO NOTHING',
    instanceId, chat, id, media.mimetype, media.fileName ?? null, media.caption ?? null, Buffer.from(media.data), Date.now(),
  )
}

/** The kept file of media this instance sent (`{base64}`), or `{base64Error}` when it was not kept. */
export async function sentMediaBase64(db, instanceId, data) {
  if (!mediaOf(data.message)) return null
  const kept = await db.get('SELECT data FROM sent_media WHERE instance_id = ? AND chat = ? AND id = ?', instanceId, data.chat, data.id)
  if (!kept) return { base64Error: { code: 'media_not_kept', message: 'the file was larger than GATEWAY_MEDIA_BASE64_MAX_BYTES or is past GATEWAY_EVENT_RETENTION_MS' } }
  return { base64: Buffer.from(kept.data).toString('base64') }
}

/** `message` (protobuf JSON) encoded, or a 400 `invalid_message` naming the field that does not fit. */
function encoded(message) {
  try {
    return encodeMessage(message)
  } catch (error) {
    throw new ApiError(400, 'invalid_message', error.message)
  }
}

/** Sends protobuf JSON `message` (the package's `content` builders) as a message. */
function sendMessage(ctx, row, to, message, text = null) {
  return sendContent(ctx, row, to, { type: 'sendMessage', message: encoded(message) }, message, text)
}

/**
 * Sends an add-on that changes another message (an edit or a revoke) through the paced queue,
 * answered at the server's ack; stores no message row of its own. Resolves with its id and time.
 */
async function sendChange(ctx, row, chat, message) {
  const runtime = ctx.gateway.connected(row)
  const bytes = encoded(message)
  const output = await runtime.paced(() => runtime.command({ type: 'sendMessage', to: chat, message: bytes }))
  ctx.metrics.messages.out++
  return { id: output.id, timestamp: Math.floor(Date.now() / 1000) }
}

/** `ProtocolMessage.Type` values of the add-ons that change a message, and their names in Baileys' JSON. */
const PROTOCOL_REVOKE = 0
const PROTOCOL_EDIT = 14
const PROTOCOL_TYPE_NAMES = { [PROTOCOL_REVOKE]: 'REVOKE', [PROTOCOL_EDIT]: 'MESSAGE_EDIT' }

/** How long after sending WhatsApp accepts an edit (its apps refuse older ones). */
export const EDIT_WINDOW_SECONDS = 15 * 60

/** The fields of wa.Message that carry a downloadable media file. */
export const MEDIA_FIELDS = ['imageMessage', 'videoMessage', 'audioMessage', 'documentMessage', 'stickerMessage', 'ptvMessage']

/** The media field of a content (protobuf JSON) and its value, or null. */
export function mediaOf(message) {
  for (const field of MEDIA_FIELDS) if (message?.[field] && typeof message[field] === 'object') return [field, message[field]]
  return null
}

/** The text a content shows (a text, or a caption), or null. */
function shownText(message) {
  if (!message) return null
  if (typeof message.conversation === 'string') return message.conversation
  if (typeof message.extendedTextMessage?.text === 'string') return message.extendedTextMessage.text
  const media = mediaOf(message)
  return typeof media?.[1].caption === 'string' ? media[1].caption : null
}

/** A protocolMessage (edit or revoke) as Baileys' JSON shows it: the type by name, 64-bit times as strings. */
function protocolJson(protocol) {
  const json = jsonSafe(protocol)
  if (PROTOCOL_TYPE_NAMES[protocol.type]) json.type = PROTOCOL_TYPE_NAMES[protocol.type]
  if (json.timestampMs !== undefined) json.timestampMs = String(json.timestampMs)
  return json
}

/**
 * Downloads the media of a stored received message (`stored`: `{id, chat, sender, raw}`, `message`
 * its content) through the instance's session, bounded by `mediaBase64MaxBytes` (413
 * `media_too_large`, checked against the announced size before any byte is fetched) and
 * `timeoutMs` (504 `timed_out`; default `mediaDownloadTimeoutMs`). Resolves with `{field, media, data}`.
 */
export async function downloadStored(gateway, row, stored, message, timeoutMs = gateway.config.mediaDownloadTimeoutMs) {
  const found = mediaOf(message)
  if (!found) throw new ApiError(400, 'not_media', `message ${stored.id} carries no media`)
  const [field, media] = found
  const max = gateway.config.mediaBase64MaxBytes
  const announced = Number(media.fileLength ?? 0)
  if (announced > max) throw new ApiError(413, 'media_too_large', `the media is ${announced} bytes; the bound is ${max} (GATEWAY_MEDIA_BASE64_MAX_BYTES)`, { fileLength: announced, maxBytes: max })
  const runtime = gateway.connected(row)
  let timer
  const timeout = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new ApiError(504, 'timed_out', `the download took longer than ${timeoutMs} ms`)), timeoutMs)
  })
  let data
  try {
    data = await Promise.race([runtime.connection.downloadMedia({ id: stored.id, chat: stored.chat, sender: stored.sender, raw: stored.raw }), timeout])
  } catch (error) {
    throw fromCommandError(error)
  } finally {
    clearTimeout(timer)
  }
  if (data.length > max) throw new ApiError(413, 'media_too_large', `the media is ${data.length} bytes; the bound is ${max} (GATEWAY_MEDIA_BASE64_MAX_BYTES)`, { fileLength: data.length, maxBytes: max })
  return { field, media, data }
}

/**
 * `message.base64` for an Evolution MESSAGES_UPSERT of received media (the webhook's `base64`
 * setting): the data of a `message.received` event, downloaded at delivery. Resolves with
 * `{base64}` or, when the media cannot be had, `{base64Error: {code, message}}` (the message still
 * goes out; the file stays downloadable with getBase64FromMediaMessage while WhatsApp keeps it).
 */
export async function webhookMedia(gateway, instance, data) {
  if (!instance || !mediaOf(data.message) || !data.raw) return null
  try {
    const raw = new Uint8Array(Buffer.from(data.raw, 'base64'))
    // Within the webhook timeout: a delivery's claim covers the download and the request (src/webhooks.js).
    const timeoutMs = Math.min(gateway.config.mediaDownloadTimeoutMs, gateway.config.webhookTimeoutMs)
    const { data: bytes } = await downloadStored(gateway, instance, { id: data.id, chat: data.chat, sender: data.sender, raw }, data.message, timeoutMs)
    return { base64: Buffer.from(bytes).toString('base64') }
  } catch (error) {
    const e = fromCommandError(error)
    return { base64Error: { code: e.code, message: e.message } }
  }
}

/** Marks `ids` of `chat` read (a read receipt to the sender). */
async function markRead(ctx, row, chat, ids, sender) {
  const runtime = ctx.gateway.connected(row)
  await runtime.command({ type: 'markRead', chat, ids, ...(sender ? { sender } : {}) })
  await ctx.gateway.instanceTx(row.id, (q) => q.run('UPDATE chats SET unread = 0 WHERE instance_id = ? AND jid = ?', row.id, chat))
}

/** Records with `q` that `chat` saw a message at `timestamp`; true when the chat row is new. */
export async function touchChat(q, instanceId, chat, timestamp, incoming) {
  const existing = await q.get('SELECT jid FROM chats WHERE instance_id = ? AND jid = ?', instanceId, chat)
  await q.run(
    `INSERT INTO chats (instance_id, jid, last_message_at, unread, updated_at) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (instance_id, jid) DO UPDATE SET
       last_message_at = CASE WHEN coalesce(chats.last_message_at, 0) > excluded.last_message_at THEN chats.last_message_at ELSE excluded.last_message_at END,
       unread = chats.unread + excluded.unread, updated_at = excluded.updated_at`,
    instanceId, chat, timestamp, incoming ? 1 : 0, Date.now(),
  )
  return !existing
}

function listMessages(db, instanceId, { chat, limit = 50, before }) {
  const args = [instanceId]
  let where = 'instance_id = ?'
  if (chat) {
    where += ' AND chat = ?'
    args.push(chat)
  }
  if (before) {
    where += ' AND timestamp < ?'
    args.push(before)
  }
  return db.all(`SELECT * FROM messages WHERE ${where} ORDER BY timestamp DESC LIMIT ?`, ...args, limit)
}

const nameParam = { name: S.name }
const evoName = { instanceName: S.name }

const routes = [
  {
    method: 'POST',
    path: '/instances/{name}/messages/text',
    auth: 'instance',
    tag: 'messages',
    params: nameParam,
    body: { type: 'object', additionalProperties: false, required: ['to', 'text'], properties: { to: S.recipient, text: S.text } },
    summary: 'Send a text to a number, a JID or a group; answered once the server acknowledged it.',
    handler: async (ctx) => ({ status: 201, body: await sendText(ctx, await ctx.instance(), ctx.body.to, ctx.body.text) }),
  },
  {
    method: 'POST',
    path: '/instances/{name}/messages/read',
    auth: 'instance',
    tag: 'messages',
    params: nameParam,
    body: {
      type: 'object',
      additionalProperties: false,
      required: ['chat', 'ids'],
      properties: { chat: S.jid, ids: { type: 'array', minItems: 1, maxItems: 256, items: S.messageId }, sender: S.jid },
    },
    summary: 'Send read receipts for messages of a chat (sender: the author in a group).',
    handler: async (ctx) => {
      await markRead(ctx, await ctx.instance(), ctx.body.chat, ctx.body.ids, ctx.body.sender)
      return { body: { read: ctx.body.ids.length } }
    },
  },
  {
    method: 'POST',
    path: '/instances/{name}/messages/poll-vote',
    auth: 'instance',
    tag: 'messages',
    params: nameParam,
    body: {
      type: 'object',
      additionalProperties: false,
      required: ['chat', 'pollId', 'options'],
      properties: { chat: S.recipient, pollId: S.messageId, options: { type: 'array', maxItems: 12, items: { type: 'string', minLength: 1, maxLength: 100 } } },
    },
    summary: 'Vote in a poll this instance sent or received (options by name; none withdraws the vote); answered at the server\'s ack.',
    handler: async (ctx) => {
      const row = await ctx.instance()
      const runtime = ctx.gateway.connected(row)
      const chat = toJid(ctx.body.chat)
      const output = await runtime.paced(() => runtime.command({ type: 'sendPollVote', chat, pollId: ctx.body.pollId, options: ctx.body.options }))
      ctx.metrics.messages.out++
      return { status: 201, body: { id: output.id, chat, pollId: ctx.body.pollId, options: ctx.body.options } }
    },
  },
  {
    method: 'GET',
    path: '/instances/{name}/messages',
    auth: 'instance',
    tag: 'messages',
    params: nameParam,
    query: { type: 'object', additionalProperties: false, properties: { chat: S.jid, limit: { type: 'integer', minimum: 1, maximum: 500 }, before: { type: 'integer', minimum: 0, maximum: 1e13 } } },
    summary: 'Stored messages, newest first.',
    handler: async (ctx) => ({ body: { messages: (await listMessages(ctx.db, (await ctx.instance()).id, ctx.query)).map(messageView) } }),
  },
]

const delay = { type: 'integer', minimum: 0, maximum: MAX_DELAY_MS }
const evoKey = { type: 'object', additionalProperties: false, required: ['id'], properties: { id: S.messageId, remoteJid: S.recipient, fromMe: S.bool, participant: S.jid } }
export const base64 = { type: 'string', minLength: 1, maxLength: 22_000_000, pattern: '^(https?://[!-~]+|(data:[^,]{1,255},)?[A-Za-z0-9+/=\\s]+)$' }
const MEDIA_KINDS = { image: 'image', video: 'video', document: 'document', audio: 'audio' }
const DEFAULT_MIME = { image: 'image/jpeg', video: 'video/mp4', document: 'application/octet-stream', audio: 'audio/mpeg' }

const MIMETYPE = '^[a-z]+/[0-9A-Za-z.+_-]+(; ?[ -~]+)?$'

/**
 * The file of an Evolution `media`/`audio`/`sticker` field: base64 (with or without a `data:`
 * prefix), or an http(s) URL fetched through the instance's proxy (src/media-url.js: bounded in
 * size and time, private addresses refused, typed 400s). Resolves with `{ data, mimetype, name }`
 * (`mimetype`: the URL's Content-Type, `name`: the last segment of its path; null for base64).
 */
export async function mediaBytes(ctx, row, value, what) {
  if (/^https?:\/\//i.test(value)) {
    const c = ctx.config
    const proxy = row.proxy ? JSON.parse(row.proxy) : null
    const { data, mimetype } = await fetchMediaUrl(value, { proxy, maxBytes: c.mediaUrlMaxBytes, timeoutMs: c.mediaUrlTimeoutMs, allowPrivate: c.mediaUrlAllowPrivate })
    let name = null
    try {
      name = decodeURIComponent(new URL(value).pathname.split('/').pop() ?? '').replace(/[^ -~]/g, '').slice(0, 255) || null
    } catch {
      // a malformed escape in the path: no name
    }
    return { data, mimetype, name }
  }
  const bytes = Buffer.from(value.replace(/^data:[^,]*,/, ''), 'base64')
  if (bytes.length === 0) throw new ApiError(400, 'invalid_media', `${what} is empty or not base64`)
  return { data: new Uint8Array(bytes), mimetype: null, name: null }
}

/** True for the bytes of a WebP file (`RIFF<size>WEBP`). */
export function isWebp(data) {
  return data.length >= 12 && Buffer.from(data.subarray(0, 4)).toString('latin1') === 'RIFF' && Buffer.from(data.subarray(8, 12)).toString('latin1') === 'WEBP'
}

/** An Evolution send route: validates, waits `delay`, sends, answers 201 with the stored message. */
function evolutionSend(path, summary, properties, required, build) {
  return {
    method: 'POST',
    path: `/message/${path}/{instanceName}`,
    auth: 'instance',
    format: 'evolution',
    tag: 'evolution',
    params: evoName,
    body: { type: 'object', required, properties: { ...properties, delay } },
    summary,
    handler: async (ctx) => {
      const row = await ctx.instance(ctx.params.instanceName)
      ctx.gateway.connected(row)
      const send = await build(ctx.body, row, ctx) // validates before any wait
      if (ctx.body.delay) await new Promise((resolve) => setTimeout(resolve, ctx.body.delay))
      return { status: 201, body: evolutionMessage(await send(ctx), row) }
    },
  }
}

/**
 * An Evolution route sending the file in body field `field` (base64 or URL) as media of `kind`
 * with a fixed `mimetype`; `check(data)` throws on a file that does not fit.
 */
function fileSend(path, summary, field, kind, mimetype, check = () => {}) {
  return evolutionSend(path, summary, { number: S.recipient, [field]: base64 }, ['number', field], async (b, row, ctx) => {
    const { data } = await mediaBytes(ctx, row, b[field], field)
    check(data)
    const shown = kind === 'ptt' ? { audioMessage: { mimetype, ptt: true } } : { [`${kind}Message`]: { mimetype } } // ptv: ptvMessage
    return (c) => sendContent(c, row, b.number, { type: 'sendMedia', kind, data, mimetype }, shown)
  })
}

/** A text with `quoted` (Evolution: `{key: {id, ...}, message?}`) and `mentioned` numbers. */
async function textContent(b, row, ctx) {
  const mentions = (b.mentioned ?? []).map(toJid)
  if (!b.quoted) return mentions.length ? content.text(b.text, { mentions }) : { conversation: b.text }
  const key = b.quoted.key
  const chat = toJid(key.remoteJid ?? b.number)
  let quotedMessage = b.quoted.message
  if (!quotedMessage) {
    const stored = await ctx.db.get('SELECT text FROM messages WHERE instance_id = ? AND chat = ? AND id = ?', row.id, chat, key.id)
    quotedMessage = { conversation: stored?.text ?? '' }
  }
  const own = `${userOf(row.jid)}@s.whatsapp.net`
  const participant = key.participant ?? (key.fromMe ? own : chat.endsWith('@g.us') ? undefined : chat)
  if (!participant) throw new ApiError(400, 'invalid_quoted', 'quoted.key.participant is required for a message of a group')
  const contextInfo = { stanzaId: key.id, participant, quotedMessage, ...(mentions.length ? { mentionedJid: mentions } : {}) }
  return { extendedTextMessage: { text: b.text, contextInfo } }
}

/** A vCard 3.0 for an Evolution contact (`fullName`, `wuid`, `phoneNumber`, `organization`, `email`, `url`). */
function vcard(c) {
  const wuid = userOf(toJid(c.wuid ?? c.phoneNumber))
  const esc = (v) => String(v).replace(/[\\;,]/g, (m) => `\\${m}`).replace(/\r?\n/g, '\\n')
  const lines = ['BEGIN:VCARD', 'VERSION:3.0', `N:${esc(c.fullName)}`, `FN:${esc(c.fullName)}`]
  if (c.organization) lines.push(`ORG:${esc(c.organization)};`)
  if (c.email) lines.push(`EMAIL:${esc(c.email)}`)
  if (c.url) lines.push(`URL:${esc(c.url)}`)
  lines.push(`TEL;type=CELL;type=VOICE;waid=${wuid}:${c.phoneNumber}`, 'END:VCARD')
  return lines.join('\n')
}

const contactItem = {
  type: 'object',
  additionalProperties: false,
  required: ['fullName', 'phoneNumber'],
  properties: {
    fullName: { type: 'string', minLength: 1, maxLength: 256 },
    wuid: { type: 'string', minLength: 5, maxLength: 32, pattern: '^[0-9]+$' },
    phoneNumber: { type: 'string', minLength: 5, maxLength: 32, pattern: '^\\+?[0-9][0-9 ()-]{3,30}$' },
    organization: { type: 'string', maxLength: 256 },
    email: { type: 'string', maxLength: 256 },
    url: { type: 'string', maxLength: 1024 },
  },
}

const evolutionSends = [
  evolutionSend(
    'sendText',
    'Evolution: send a text (with `quoted` and `mentioned`); answers with the stored message.',
    {
      number: S.recipient,
      text: S.text,
      linkPreview: S.bool,
      mentionsEveryOne: S.bool,
      mentioned: { type: 'array', maxItems: 256, items: S.recipient },
      quoted: { type: 'object', required: ['key'], properties: { key: evoKey, message: { type: 'object' } } },
    },
    ['number', 'text'],
    async (b, row, ctx) => {
      if (b.mentionsEveryOne) throw new ApiError(400, 'feature_unsupported', 'mentionsEveryOne needs the group participants (walink issue 17): list them in `mentioned`')
      if (b.linkPreview === true) throw new ApiError(400, 'feature_unsupported', 'link previews are not generated by this gateway')
      const message = await textContent(b, row, ctx)
      if (message.conversation !== undefined) return (c) => sendText(c, row, b.number, b.text)
      return (c) => sendMessage(c, row, b.number, message, b.text)
    },
  ),
  evolutionSend(
    'sendReaction',
    'Evolution: react to a message (`reaction` an emoji; empty removes it).',
    { key: { ...evoKey, required: ['id', 'remoteJid', 'fromMe'] }, reaction: { type: 'string', maxLength: 32 } },
    ['key', 'reaction'],
    (b, row) => {
      const chat = toJid(b.key.remoteJid)
      const key = { remoteJid: chat, fromMe: b.key.fromMe, id: b.key.id, ...(b.key.participant ? { participant: b.key.participant } : {}) }
      return (c) => sendMessage(c, row, chat, content.reaction(key, b.reaction))
    },
  ),
  evolutionSend(
    'sendLocation',
    'Evolution: send a location pin.',
    {
      number: S.recipient,
      latitude: { type: 'number', minimum: -90, maximum: 90 },
      longitude: { type: 'number', minimum: -180, maximum: 180 },
      name: { type: 'string', maxLength: 1024 },
      address: { type: 'string', maxLength: 1024 },
    },
    ['number', 'latitude', 'longitude'],
    (b, row) => (c) => sendMessage(c, row, b.number, content.location(b.latitude, b.longitude, { name: b.name, address: b.address })),
  ),
  evolutionSend(
    'sendContact',
    'Evolution: send contact cards (one: contactMessage; several: contactsArrayMessage).',
    { number: S.recipient, contact: { type: 'array', minItems: 1, maxItems: 64, items: contactItem } },
    ['number', 'contact'],
    (b, row) => {
      const cards = b.contact.map((c) => content.contact(c.fullName, vcard(c)).contactMessage)
      const message = cards.length === 1 ? { contactMessage: cards[0] } : { contactsArrayMessage: { displayName: `${cards.length} contacts`, contacts: cards } }
      return (c) => sendMessage(c, row, b.number, message)
    },
  ),
  evolutionSend(
    'sendPoll',
    'Evolution: send a poll (`selectableCount` 0: any number of options).',
    {
      number: S.recipient,
      name: { type: 'string', minLength: 1, maxLength: 255 },
      selectableCount: { type: 'integer', minimum: 0, maximum: 12 },
      values: { type: 'array', minItems: 2, maxItems: 12, items: { type: 'string', minLength: 1, maxLength: 100 } },
    },
    ['number', 'name', 'values'],
    (b, row) => {
      if (new Set(b.values).size !== b.values.length) throw new ApiError(400, 'invalid_poll', 'poll values must be distinct')
      if ((b.selectableCount ?? 1) > b.values.length) throw new ApiError(400, 'invalid_poll', 'selectableCount is larger than the number of values')
      return (c) => sendMessage(c, row, b.number, content.poll(b.name, b.values, b.selectableCount ?? 1))
    },
  ),
  evolutionSend(
    'sendMedia',
    'Evolution: send an image, video, document or audio given as base64 or an http(s) URL (fetched through the instance\'s proxy, bounded; failures are typed 400s).',
    {
      number: S.recipient,
      mediatype: { type: 'string', enum: Object.keys(MEDIA_KINDS) },
      mimetype: { type: 'string', minLength: 3, maxLength: 255, pattern: MIMETYPE },
      caption: { type: 'string', maxLength: 65536 },
      media: base64,
      fileName: { type: 'string', minLength: 1, maxLength: 255 },
    },
    ['number', 'mediatype', 'media'],
    async (b, row, ctx) => {
      const file = await mediaBytes(ctx, row, b.media, 'media')
      const data = file.data
      const kind = MEDIA_KINDS[b.mediatype]
      const mimetype = b.mimetype ?? file.mimetype ?? DEFAULT_MIME[kind]
      const media = { kind, data, mimetype, ...(b.caption && kind !== 'audio' ? { caption: b.caption } : {}), ...(kind === 'document' ? { fileName: b.fileName ?? file.name ?? 'file' } : {}) }
      const shown = { [`${kind}Message`]: { mimetype, ...(media.caption ? { caption: media.caption } : {}), ...(media.fileName ? { fileName: media.fileName } : {}) } }
      return (c) => sendContent(c, row, b.number, { type: 'sendMedia', ...media }, shown, media.caption ?? null)
    },
  ),
  fileSend('sendSticker', 'Evolution: send a sticker (`sticker` as WebP, base64 or URL; no conversion from other formats).', 'sticker', 'sticker', 'image/webp', (data) => {
    if (!isWebp(data)) throw new ApiError(400, 'invalid_media', 'sticker: give a WebP image (RIFF....WEBP); this gateway does not convert images')
  }),
  fileSend('sendWhatsAppAudio', 'Evolution: send a voice note (`audio` as Ogg/Opus, base64 or URL; no transcoding).', 'audio', 'ptt', 'audio/ogg; codecs=opus'),
  fileSend('sendPtv', 'Evolution: send a round video note (`video` as MP4, base64 or URL; no transcoding).', 'video', 'ptv', 'video/mp4'),
]

/** The stored row of `id` in `chat` (this account's when `fromMe`), or undefined. */
function storedMessage(db, instanceId, chat, id, fromMe) {
  if (fromMe === undefined) return db.get('SELECT * FROM messages WHERE instance_id = ? AND chat = ? AND id = ? ORDER BY from_me DESC LIMIT 1', instanceId, chat, id)
  return db.get('SELECT * FROM messages WHERE instance_id = ? AND chat = ? AND id = ? AND from_me = ?', instanceId, chat, id, fromMe ? 1 : 0)
}

/** Evolution's answer to an edit or a revoke: the message sent (its key, the protocolMessage). */
function changeAnswer(sent, chat, protocol, instance) {
  return { key: { remoteJid: chat, fromMe: true, id: sent.id }, pushName: '', status: 'SERVER_ACK', message: { protocolMessage: protocolJson(protocol) }, messageType: 'protocolMessage', messageTimestamp: sent.timestamp, instanceId: instance.id, source: 'unknown' }
}

/**
 * Edits text `id` this instance sent to `chat` (within WhatsApp's 15 minutes); answered at the
 * server's ack. Stores the new text and emits `message.edited` (local). Resolves with the edit
 * sent and its protocolMessage.
 */
async function editMessage(ctx, row, chat, id, text) {
  ctx.gateway.connected(row)
  const stored = await storedMessage(ctx.db, row.id, chat, id, true)
  if (!stored) throw new ApiError(404, 'message_not_found', `no message ${id} sent by this instance in ${chat}`)
  if (stored.status === 'deleted') throw new ApiError(400, 'message_deleted', 'the message was deleted for everyone')
  if (!['conversation', 'extendedTextMessage', null].includes(stored.message_type ?? null) || stored.text === null) throw new ApiError(400, 'not_text', `only texts can be edited (the message is ${stored.message_type ?? 'not a text'})`)
  if (Math.floor(Date.now() / 1000) - Number(stored.timestamp) > EDIT_WINDOW_SECONDS) throw new ApiError(400, 'edit_window_passed', 'WhatsApp accepts edits for 15 minutes after sending')
  const message = content.edit({ remoteJid: chat, fromMe: true, id: stored.id }, text)
  const sent = await sendChange(ctx, row, chat, message)
  const protocol = { ...message.protocolMessage, timestampMs: sent.timestamp * 1000 }
  await ctx.gateway.instanceTx(row.id, async (q) => {
    await q.run("UPDATE messages SET text = ?, status = 'edited' WHERE instance_id = ? AND chat = ? AND id = ? AND from_me = 1", text, row.id, chat, stored.id)
    await ctx.gateway.emit(q, row.id, 'message.edited', { id: stored.id, chat, fromMe: true, participant: null, sender: row.jid, editId: sent.id, timestamp: sent.timestamp, text, message: { conversation: text }, protocolMessage: protocolJson(protocol), local: true })
  })
  return { sent, protocol }
}

/**
 * Deletes message `id` of `chat` for everyone (this account's; another member's in a group, named
 * by `participant`); answered at the server's ack. Marks the stored message deleted and emits
 * `message.deleted` (local). Resolves with the revoke sent and its protocolMessage.
 */
async function revokeMessage(ctx, row, chat, { id, fromMe, participant }) {
  ctx.gateway.connected(row)
  const isGroup = chat.endsWith('@g.us')
  if (!fromMe && !isGroup) throw new ApiError(400, 'not_own_message', 'in a chat with one person only messages this account sent can be deleted for everyone')
  if (!fromMe && !participant) throw new ApiError(400, 'invalid_key', 'participant (the author) is required to delete another member\'s message in a group')
  const stored = await storedMessage(ctx.db, row.id, chat, id, fromMe)
  if (stored?.status === 'deleted') throw new ApiError(400, 'message_deleted', 'the message was already deleted for everyone')
  const message = content.revoke({ remoteJid: chat, fromMe, id, ...(!fromMe ? { participant } : {}) })
  const sent = await sendChange(ctx, row, chat, message)
  await ctx.gateway.instanceTx(row.id, async (q) => {
    await q.run("UPDATE messages SET text = NULL, media_content = NULL, status = 'deleted' WHERE instance_id = ? AND chat = ? AND id = ? AND from_me = ?", row.id, chat, id, fromMe ? 1 : 0)
    await ctx.gateway.emit(q, row.id, 'message.deleted', {
      id, chat, fromMe, participant: fromMe ? null : participant, sender: row.jid, revokeId: sent.id, timestamp: sent.timestamp, local: true,
      messageType: stored?.message_type ?? null, messageTimestamp: stored ? Number(stored.timestamp) : null, text: stored?.text ?? null,
    })
  })
  return { sent, protocol: message.protocolMessage }
}

/** The media of stored received message `id` (`chat`, `fromMe` narrow it): `{stored, field, media, data}`. */
async function storedMedia(ctx, row, { id, chat, fromMe }) {
  const args = [row.id, id]
  let where = 'instance_id = ? AND id = ?'
  if (chat) (where += ' AND chat = ?'), args.push(chat)
  if (fromMe !== undefined) (where += ' AND from_me = ?'), args.push(fromMe ? 1 : 0)
  const stored = await ctx.db.get(`SELECT * FROM messages WHERE ${where} ORDER BY from_me LIMIT 1`, ...args)
  if (!stored) throw new ApiError(404, 'message_not_found', `no stored message ${id}`)
  if (stored.from_me && !stored.media_content) return sentMedia(ctx, row, stored)
  if (!stored.media_content) throw new ApiError(400, 'not_media', `message ${id} has no downloadable media here`)
  const raw = new Uint8Array(stored.media_content)
  const found = await downloadStored(ctx.gateway, row, { id: stored.id, chat: stored.chat, sender: stored.sender, raw }, decodeMessage(raw))
  return { stored, ...found }
}

/** The kept file of media this instance sent, in `storedMedia`'s shape. */
async function sentMedia(ctx, row, stored) {
  const kept = await ctx.db.get('SELECT * FROM sent_media WHERE instance_id = ? AND chat = ? AND id = ?', row.id, stored.chat, stored.id)
  const field = MEDIA_FIELDS.find((f) => f === stored.message_type)
  if (!field) throw new ApiError(400, 'not_media', `message ${stored.id} carries no media`)
  if (!kept) throw new ApiError(410, 'media_not_kept', `the file of sent message ${stored.id} is not kept (larger than GATEWAY_MEDIA_BASE64_MAX_BYTES, or past GATEWAY_EVENT_RETENTION_MS)`)
  const data = new Uint8Array(kept.data)
  return { stored, field, media: { mimetype: kept.mimetype, fileName: kept.file_name ?? undefined, caption: kept.caption ?? undefined }, data }
}

const changeParams = { chat: S.recipient, id: S.messageId }

const nativeChangeRoutes = [
  {
    method: 'POST',
    path: '/instances/{name}/messages/edit',
    auth: 'instance',
    tag: 'messages',
    params: nameParam,
    body: { type: 'object', additionalProperties: false, required: ['chat', 'id', 'text'], properties: { ...changeParams, text: S.text } },
    summary: 'Edit a text this instance sent (within 15 minutes); answered at the server\'s ack.',
    handler: async (ctx) => {
      const chat = toJid(ctx.body.chat)
      const { sent } = await editMessage(ctx, await ctx.instance(), chat, ctx.body.id, ctx.body.text)
      return { body: { id: ctx.body.id, chat, editId: sent.id, text: ctx.body.text } }
    },
  },
  {
    method: 'POST',
    path: '/instances/{name}/messages/revoke',
    auth: 'instance',
    tag: 'messages',
    params: nameParam,
    body: { type: 'object', additionalProperties: false, required: ['chat', 'id'], properties: { ...changeParams, fromMe: S.bool, participant: S.jid } },
    summary: 'Delete a message for everyone (this account\'s by default; another member\'s in a group with `fromMe: false` and `participant`).',
    handler: async (ctx) => {
      const chat = toJid(ctx.body.chat)
      const { sent } = await revokeMessage(ctx, await ctx.instance(), chat, { id: ctx.body.id, fromMe: ctx.body.fromMe ?? true, participant: ctx.body.participant })
      return { status: 201, body: { id: ctx.body.id, chat, revokeId: sent.id } }
    },
  },
  {
    method: 'GET',
    path: '/instances/{name}/messages/media',
    auth: 'instance',
    tag: 'messages',
    params: nameParam,
    query: { type: 'object', additionalProperties: false, required: ['id'], properties: { id: S.messageId, chat: S.jid } },
    summary: 'The file of a received media message, decrypted (bounded by GATEWAY_MEDIA_BASE64_MAX_BYTES); its type in Content-Type.',
    handler: async (ctx) => {
      const { media, data } = await storedMedia(ctx, await ctx.instance(), { id: ctx.query.id, chat: ctx.query.chat })
      return { raw: Buffer.from(data), contentType: media.mimetype ?? 'application/octet-stream' }
    },
  },
]

const changeRoutes = [
  {
    method: 'POST',
    path: '/chat/updateMessage/{instanceName}',
    auth: 'instance',
    format: 'evolution',
    tag: 'evolution',
    params: evoName,
    body: { type: 'object', required: ['number', 'key', 'text'], properties: { number: S.recipient, key: { ...evoKey, required: ['id'] }, text: S.text } },
    summary: 'Evolution: edit a text this account sent (within 15 minutes); answered at the server\'s ack.',
    handler: async (ctx) => {
      const row = await ctx.instance(ctx.params.instanceName)
      const chat = toJid(ctx.body.number)
      if (ctx.body.key.remoteJid && toJid(ctx.body.key.remoteJid) !== chat) throw new ApiError(400, 'invalid_key', 'key.remoteJid does not match number')
      if (ctx.body.key.fromMe === false) throw new ApiError(400, 'not_own_message', 'only messages this account sent can be edited')
      const { sent, protocol } = await editMessage(ctx, row, chat, ctx.body.key.id, ctx.body.text)
      return { body: changeAnswer(sent, chat, protocol, row) }
    },
  },
  {
    method: 'DELETE',
    path: '/chat/deleteMessageForEveryone/{instanceName}',
    auth: 'instance',
    format: 'evolution',
    tag: 'evolution',
    params: evoName,
    body: { type: 'object', required: ['id', 'remoteJid', 'fromMe'], properties: { id: S.messageId, remoteJid: S.recipient, fromMe: S.bool, participant: S.jid } },
    summary: 'Evolution: delete a message for everyone (this account\'s, or another\'s in a group it administers); answered at the server\'s ack.',
    handler: async (ctx) => {
      const row = await ctx.instance(ctx.params.instanceName)
      const chat = toJid(ctx.body.remoteJid)
      const { sent, protocol } = await revokeMessage(ctx, row, chat, ctx.body)
      return { status: 201, body: changeAnswer(sent, chat, protocol, row) }
    },
  },
  {
    method: 'POST',
    path: '/chat/getBase64FromMediaMessage/{instanceName}',
    auth: 'instance',
    format: 'evolution',
    tag: 'evolution',
    params: evoName,
    body: {
      type: 'object',
      required: ['message'],
      properties: {
        message: { type: 'object', required: ['key'], properties: { key: { type: 'object', required: ['id'], properties: { id: S.messageId, remoteJid: S.recipient, fromMe: S.bool, participant: S.jid } } } },
        convertToMp4: S.bool,
      },
    },
    summary: 'Evolution: the media of a received message as base64 (by its key; bounded by GATEWAY_MEDIA_BASE64_MAX_BYTES).',
    handler: async (ctx) => {
      const row = await ctx.instance(ctx.params.instanceName)
      if (ctx.body.convertToMp4) throw new ApiError(400, 'feature_unsupported', 'convertToMp4: this gateway does not transcode; the file is answered as received')
      const key = ctx.body.message.key
      const { stored, field, media, data } = await storedMedia(ctx, row, { id: key.id, chat: key.remoteJid ? toJid(key.remoteJid) : undefined, fromMe: key.fromMe })
      const mimetype = media.mimetype ?? 'application/octet-stream'
      const extension = (mimetype.split(';')[0].split('/')[1] ?? 'bin').replace(/[^0-9a-z]/gi, '')
      return {
        status: 201,
        body: {
          mediaType: field,
          fileName: media.fileName ?? `${stored.id}.${extension}`,
          caption: media.caption ?? null,
          size: { fileLength: String(data.length), height: media.height ?? null, width: media.width ?? null },
          mimetype,
          base64: Buffer.from(data).toString('base64'),
        },
      }
    },
  },
]

const evolutionRoutes = [
  ...evolutionSends,
  ...changeRoutes,
  {
    method: 'PUT',
    path: '/chat/markMessageAsRead/{instanceName}',
    auth: 'instance',
    format: 'evolution',
    tag: 'evolution',
    params: evoName,
    body: {
      type: 'object',
      required: ['readMessages'],
      properties: {
        readMessages: {
          type: 'array',
          minItems: 1,
          maxItems: 256,
          items: { type: 'object', required: ['remoteJid', 'id'], properties: { remoteJid: S.jid, fromMe: S.bool, id: S.messageId, participant: S.jid } },
        },
      },
    },
    summary: 'Evolution: read receipts for messages.',
    handler: async (ctx) => {
      const row = await ctx.instance(ctx.params.instanceName)
      const groups = new Map()
      for (const m of ctx.body.readMessages) {
        if (m.fromMe) continue
        const key = `${m.remoteJid}\0${m.participant ?? ''}`
        if (!groups.has(key)) groups.set(key, { chat: m.remoteJid, sender: m.participant, ids: [] })
        groups.get(key).ids.push(m.id)
      }
      for (const g of groups.values()) await markRead(ctx, row, g.chat, g.ids, g.sender)
      return { status: 201, body: { message: 'Read messages', read: 'success' } }
    },
  },
  {
    method: 'POST',
    path: '/chat/findMessages/{instanceName}',
    auth: 'instance',
    format: 'evolution',
    tag: 'evolution',
    params: evoName,
    bodyOptional: true,
    body: {
      type: 'object',
      properties: {
        where: { type: 'object', properties: { key: { type: 'object', properties: { remoteJid: S.jid, id: S.messageId, fromMe: S.bool } } } },
        page: { type: 'integer', minimum: 1, maximum: 100000 },
        offset: { type: 'integer', minimum: 1, maximum: 500 },
      },
    },
    summary: 'Evolution: stored messages, paged.',
    handler: async (ctx) => {
      const row = await ctx.instance(ctx.params.instanceName)
      const key = ctx.body.where?.key ?? {}
      const perPage = ctx.body.offset ?? 50
      const page = ctx.body.page ?? 1
      const args = [row.id]
      let where = 'instance_id = ?'
      if (key.remoteJid) (where += ' AND chat = ?'), args.push(key.remoteJid)
      if (key.id) (where += ' AND id = ?'), args.push(key.id)
      if (key.fromMe !== undefined) (where += ' AND from_me = ?'), args.push(key.fromMe ? 1 : 0)
      const total = (await ctx.db.get(`SELECT count(*) AS n FROM messages WHERE ${where}`, ...args)).n
      const records = await ctx.db.all(`SELECT * FROM messages WHERE ${where} ORDER BY timestamp DESC LIMIT ? OFFSET ?`, ...args, perPage, (page - 1) * perPage)
      return { body: { messages: { total, pages: Math.ceil(total / perPage), currentPage: page, records: records.map((r) => ({ id: r.id, ...evolutionMessage(storedView(r), row) })) } } }
    },
  },
]

/** The encoded content of a received media message (what a later download needs), or null. */
function mediaContent(message) {
  if (!mediaOf(message)) return null
  try {
    return Buffer.from(encodeMessage(message))
  } catch {
    return null
  }
}

/**
 * Whether the sender of an add-on wrote its `target`: both this account's, or in a chat with one
 * person both the peer's, or in a group the target's author is the sender (compared only when
 * both are in the same addressing, phone number or LID, as walink cannot map one to the other).
 */
export function writtenBySender(target, sender, fromMe) {
  if (target.fromMe !== fromMe) return false
  if (fromMe || !target.participant) return true
  return target.participant.split('@')[1] !== sender.split('@')[1] || userOf(target.participant) === userOf(sender)
}

/**
 * A received edit or revoke (from the peer, a group member or admin, or this account's other
 * devices): the stored message changes and `message.edited` / `message.deleted` goes out. An edit
 * is applied only when its sender wrote the target (WhatsApp's rule; keys arrive rewritten to this
 * device's point of view by walink); a revoke in a group may come from an admin.
 */
async function applyChange(runtime, event, protocol, { fromMe, timestamp, isGroup }, gw, q) {
  const key = protocol.key
  const target = { id: key.id, chat: event.chat, fromMe: Boolean(key.fromMe), participant: isGroup ? (key.participant ?? null) : null }
  const edit = protocol.type === PROTOCOL_EDIT
  if (!writtenBySender(target, event.sender, fromMe) && (edit || !isGroup)) {
    gw.log('warn', `${runtime.name}: ignored ${edit ? 'an edit' : 'a revoke'} of ${key.id} by ${event.sender}, who did not write it`)
    return
  }
  const where = 'instance_id = ? AND chat = ? AND id = ? AND from_me = ?'
  const args = [runtime.id, target.chat, target.id, target.fromMe ? 1 : 0]
  const base = { ...target, sender: event.sender, timestamp, protocolMessage: protocolJson(protocol), local: false }
  if (edit) {
    const text = shownText(protocol.editedMessage)
    await q.run(`UPDATE messages SET text = coalesce(?, text), status = 'edited' WHERE ${where} AND status <> 'deleted'`, text, ...args)
    await gw.emit(q, runtime.id, 'message.edited', { ...base, editId: event.id, text, message: protocol.editedMessage ? jsonSafe(protocol.editedMessage) : null })
  } else {
    const stored = await q.get(`SELECT * FROM messages WHERE ${where}`, ...args)
    await q.run(`UPDATE messages SET text = NULL, media_content = NULL, status = 'deleted' WHERE ${where}`, ...args)
    await gw.emit(q, runtime.id, 'message.deleted', { ...base, revokeId: event.id, messageType: stored?.message_type ?? null, messageTimestamp: stored ? Number(stored.timestamp) : null, text: stored?.text ?? null })
  }
  gw.metrics.messages.in++
}

/** A received poll vote, opened and counted by walink: `message.poll_vote` with the tally. */
async function applyPollVote(runtime, event, { fromMe, timestamp }, gw, q) {
  const vote = event.pollVote
  const key = event.message?.pollUpdateMessage?.pollCreationMessageKey ?? {}
  await gw.emit(q, runtime.id, 'message.poll_vote', {
    id: event.id,
    chat: event.chat,
    pollId: vote.pollId,
    pollFromMe: Boolean(key.fromMe),
    pollParticipant: key.participant ?? null,
    voter: vote.voter,
    fromMe,
    selected: vote.selected,
    tally: vote.tally.map((o) => ({ name: o.name, voters: o.voters })),
    timestamp,
  })
  gw.metrics.messages.in++
}

/** Evolution's MESSAGES_DELETE: the key for a received revoke; the stored message for one sent here. */
function evolutionDelete(data, instance) {
  const key = { remoteJid: data.chat, fromMe: data.fromMe, id: data.id, ...(data.participant ? { participant: data.participant } : {}) }
  if (!data.local) return key
  return {
    id: data.id,
    instanceId: instance.id,
    key,
    messageType: data.messageType ?? 'unknown',
    status: 'DELETED',
    source: 'unknown',
    messageTimestamp: data.messageTimestamp ?? data.timestamp,
    pushName: '',
    participant: data.participant ?? null,
    message: data.text == null ? null : { conversation: data.text },
  }
}

export default {
  name: 'messages',
  routes: [...routes, ...nativeChangeRoutes, ...evolutionRoutes],
  clientEvents: {
    async message(runtime, event, gw, q) {
      const row = await gw.rowById(runtime.id, q)
      const settings = JSON.parse(row.settings)
      const isGroup = event.chat.endsWith('@g.us')
      if (settings.groupsIgnore && isGroup) return
      const fromMe = Boolean(row.jid) && userOf(event.sender) === userOf(row.jid)
      const timestamp = Number(event.timestamp) || Math.floor(Date.now() / 1000)
      const protocol = event.message?.protocolMessage
      if (protocol?.key?.id && (protocol.type === PROTOCOL_EDIT || protocol.type === PROTOCOL_REVOKE)) return applyChange(runtime, event, protocol, { fromMe, timestamp, isGroup }, gw, q)
      if (event.pollVote) return applyPollVote(runtime, event, { fromMe, timestamp }, gw, q)
      if (typeof event.text !== 'string' && isProtocolOnly(event.raw)) return
      const text = typeof event.text === 'string' ? event.text : null
      const inserted = await q.run(
        'INSERT INTO messages (instance_id, chat, id, from_me, sender, timestamp, text, status, message_type, media_content) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
        runtime.id, event.chat, event.id, fromMe ? 1 : 0, event.sender, timestamp, text ?? shownText(event.message), fromMe ? 'sent' : 'received', messageTypeOf(event.message), mediaContent(event.message),
      )
      if (inserted.changes === 0) return // a redelivery of a stored message
      const created = await touchChat(q, runtime.id, event.chat, timestamp, !fromMe)
      if (created) await gw.emit(q, runtime.id, 'chat.updated', { chat: event.chat, created: true, settings: null })
      await gw.emit(q, runtime.id, 'message.received', {
        id: event.id,
        chat: event.chat,
        sender: event.sender,
        fromMe,
        timestamp,
        text,
        messageType: messageTypeOf(event.message),
        message: event.message ? jsonSafe(event.message) : null,
        raw: Buffer.from(event.raw ?? []).toString('base64'),
      })
      gw.metrics.messages.in++
      const autoRead = !fromMe && ((settings.readMessages && event.chat !== 'status@broadcast') || (settings.readStatus && event.chat === 'status@broadcast'))
      if (autoRead) {
        const sender = isGroup || event.chat === 'status@broadcast' ? event.sender : undefined
        runtime.command({ type: 'markRead', chat: event.chat, ids: [event.id], ...(sender ? { sender } : {}) }).catch((error) => gw.log('warn', `auto-read in ${runtime.name}: ${error.message}`))
      }
    },
    async receipt(runtime, event, gw, q) {
      const status = receiptStatus(event.receiptType)
      for (const id of event.ids ?? []) {
        const updated = await q.run("UPDATE messages SET status = ? WHERE instance_id = ? AND id = ? AND from_me = 1 AND status <> 'deleted'", status, runtime.id, id)
        if (updated.changes === 0 && !['delivered', 'read', 'played'].includes(status)) continue
        await gw.emit(q, runtime.id, 'message.status', { id, chat: event.chat, participant: event.chat.endsWith('@g.us') ? event.sender : null, status, timestamp: event.timestamp })
      }
    },
    async decryptFailed(runtime, event, gw, q) {
      await gw.emit(q, runtime.id, 'message.undecryptable', { id: event.id, chat: event.chat, sender: event.sender ?? null, reason: event.reason })
    },
  },
  evolutionEvents: {
    'message.received': (data, instance) => [['MESSAGES_UPSERT', evolutionMessage({ ...data, status: data.fromMe ? 'sent' : 'delivered' }, instance)]],
    'message.sent': (data, instance) => [['SEND_MESSAGE', evolutionMessage(data, instance)]],
    // Evolution sends the protocolMessage itself (type by name): MESSAGES_EDITED when received,
    // SEND_MESSAGE_UPDATE for an edit made through updateMessage.
    'message.edited': (data) => [[data.local ? 'SEND_MESSAGE_UPDATE' : 'MESSAGES_EDITED', data.protocolMessage]],
    'message.deleted': (data, instance) => [['MESSAGES_DELETE', evolutionDelete(data, instance)]],
    // Evolution's MESSAGES_UPDATE with `pollUpdates` (Baileys' getAggregateVotesInPollMessage:
    // every option with its voters); no `status` (a vote changes none), plus who voted and what.
    'message.poll_vote': (data, instance) => [
      ['MESSAGES_UPDATE', { keyId: data.pollId, remoteJid: data.chat, fromMe: data.pollFromMe, participant: data.pollParticipant ?? undefined, pollUpdates: data.tally, voter: data.voter, selectedOptions: data.selected, instanceId: instance.id }],
    ],
    'message.status': (data, instance) => [
      ['MESSAGES_UPDATE', { messageId: data.id, keyId: data.id, remoteJid: data.chat, fromMe: true, participant: data.participant ?? undefined, status: RECEIPT_STATUS[data.status] ?? String(data.status).toUpperCase(), instanceId: instance.id }],
    ],
  },
}
