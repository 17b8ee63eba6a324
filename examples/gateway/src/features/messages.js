// Messages: text to a person or a group, received messages, receipts, marking read; native routes
// and Evolution's sendText (quoted, mentioned), sendReaction, sendLocation, sendContact,
// sendPoll, sendMedia and sendWhatsAppAudio (base64), markMessageAsRead and findMessages.
import { content, encodeMessage } from 'walink'

import { ApiError } from '../errors.js'
import { RECEIPT_STATUS, evolutionMessage } from '../evolution.js'
import { toJid, userOf } from '../gateway.js'
import { S } from '../http/schema.js'

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
      'INSERT INTO messages (instance_id, chat, id, from_me, sender, timestamp, text, status) VALUES (?, ?, ?, 1, ?, ?, ?, ?) ON CONFLICT (instance_id, chat, id, from_me) DO UPDATE SET sender = excluded.sender, timestamp = excluded.timestamp, text = excluded.text, status = excluded.status',
      row.id, chat, sent.id, row.jid, sent.timestamp, text, 'sent',
    )
    await touchChat(q, row.id, chat, sent.timestamp, false)
    await ctx.gateway.emit(q, row.id, 'message.sent', sent)
  })
  ctx.metrics.messages.out++
  return sent
}

/** Sends protobuf JSON `message` (the package's `content` builders) as a message. */
function sendMessage(ctx, row, to, message, text = null) {
  let bytes
  try {
    bytes = encodeMessage(message)
  } catch (error) {
    throw new ApiError(400, 'invalid_message', error.message)
  }
  return sendContent(ctx, row, to, { type: 'sendMessage', message: bytes }, message, text)
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
const base64 = { type: 'string', minLength: 1, maxLength: 22_000_000, pattern: '^(https?://[!-~]+|(data:[^,]{1,255},)?[A-Za-z0-9+/=\\s]+)$' }
const MEDIA_KINDS = { image: 'image', video: 'video', document: 'document', audio: 'audio' }
const DEFAULT_MIME = { image: 'image/jpeg', video: 'video/mp4', document: 'application/octet-stream', audio: 'audio/mpeg' }

/** The bytes of an Evolution `media`/`audio` field (base64, with or without a `data:` prefix). */
function decodeBase64(value, what) {
  if (/^https?:\/\//i.test(value)) throw new ApiError(400, 'media_url_unsupported', `${what}: give the file as base64; media by URL is not fetched by this gateway`)
  const bytes = Buffer.from(value.replace(/^data:[^,]*,/, ''), 'base64')
  if (bytes.length === 0) throw new ApiError(400, 'invalid_media', `${what} is empty or not base64`)
  return new Uint8Array(bytes)
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
    'Evolution: send an image, video, document or audio given as base64 (media by URL is refused with a 400).',
    {
      number: S.recipient,
      mediatype: { type: 'string', enum: Object.keys(MEDIA_KINDS) },
      mimetype: { type: 'string', minLength: 3, maxLength: 255, pattern: '^[a-z]+/[0-9A-Za-z.+_-]+(; ?[ -~]+)?$' },
      caption: { type: 'string', maxLength: 65536 },
      media: base64,
      fileName: { type: 'string', minLength: 1, maxLength: 255 },
    },
    ['number', 'mediatype', 'media'],
    (b, row) => {
      const data = decodeBase64(b.media, 'media')
      const kind = MEDIA_KINDS[b.mediatype]
      const mimetype = b.mimetype ?? DEFAULT_MIME[kind]
      const media = { kind, data, mimetype, ...(b.caption && kind !== 'audio' ? { caption: b.caption } : {}), ...(kind === 'document' ? { fileName: b.fileName ?? 'file' } : {}) }
      const shown = { [`${kind}Message`]: { mimetype, ...(media.caption ? { caption: media.caption } : {}), ...(media.fileName ? { fileName: media.fileName } : {}) } }
      return (c) => sendContent(c, row, b.number, { type: 'sendMedia', ...media }, shown, media.caption ?? null)
    },
  ),
  evolutionSend(
    'sendWhatsAppAudio',
    'Evolution: send a voice note (`audio` as base64 Ogg/Opus; no transcoding, media by URL refused with a 400).',
    { number: S.recipient, audio: base64 },
    ['number', 'audio'],
    (b, row) => {
      const data = decodeBase64(b.audio, 'audio')
      const mimetype = 'audio/ogg; codecs=opus'
      return (c) => sendContent(c, row, b.number, { type: 'sendMedia', kind: 'ptt', data, mimetype }, { audioMessage: { mimetype, ptt: true } })
    },
  ),
]

const evolutionRoutes = [
  ...evolutionSends,
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
      return { body: { messages: { total, pages: Math.ceil(total / perPage), currentPage: page, records: records.map((r) => ({ id: r.id, ...evolutionMessage(messageView(r), row) })) } } }
    },
  },
]

export default {
  name: 'messages',
  routes: [...routes, ...evolutionRoutes],
  clientEvents: {
    async message(runtime, event, gw, q) {
      const row = await gw.rowById(runtime.id, q)
      const settings = JSON.parse(row.settings)
      const isGroup = event.chat.endsWith('@g.us')
      if (settings.groupsIgnore && isGroup) return
      if (typeof event.text !== 'string' && isProtocolOnly(event.raw)) return
      const fromMe = Boolean(row.jid) && userOf(event.sender) === userOf(row.jid)
      const timestamp = Number(event.timestamp) || Math.floor(Date.now() / 1000)
      const text = typeof event.text === 'string' ? event.text : null
      const inserted = await q.run(
        'INSERT INTO messages (instance_id, chat, id, from_me, sender, timestamp, text, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
        runtime.id, event.chat, event.id, fromMe ? 1 : 0, event.sender, timestamp, text, fromMe ? 'sent' : 'received',
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
        const updated = await q.run('UPDATE messages SET status = ? WHERE instance_id = ? AND id = ? AND from_me = 1', status, runtime.id, id)
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
    'message.status': (data, instance) => [
      ['MESSAGES_UPDATE', { messageId: data.id, keyId: data.id, remoteJid: data.chat, fromMe: true, participant: data.participant ?? undefined, status: RECEIPT_STATUS[data.status] ?? String(data.status).toUpperCase(), instanceId: instance.id }],
    ],
  },
}
