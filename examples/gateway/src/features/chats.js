// Chats from walink's app-state sync: mute (0 = for ever, at most a year), unmute, pin, archive,
// mark read or unread, labels, contacts. Every change is an app-state patch answered only once the
// server accepted it. Native routes and Evolution's archiveChat, markChatUnread, findChats,
// findContacts, findLabels and handleLabel.
import { ApiError } from '../errors.js'
import { S } from '../http/schema.js'

/** The longest mute: a year. */
export const MAX_MUTE_SECONDS = 365 * 24 * 3600

export function chatView(row) {
  return {
    jid: row.jid,
    mutedUntil: row.muted_until === null ? null : row.muted_until === 0 ? 'forever' : new Date(row.muted_until).toISOString(),
    pinned: row.pinned_at !== null && row.pinned_at !== undefined && row.pinned_at > 0,
    archived: Boolean(row.archived),
    markedUnread: Boolean(row.marked_unread),
    labels: JSON.parse(row.labels),
    lastMessageAt: row.last_message_at,
    unread: row.unread,
  }
}

/** The chat's last messages, for archive and mark-read patches (WhatsApp's message range). */
async function messageRange(db, instanceId, chat) {
  const rows = await db.all('SELECT id, from_me, sender, timestamp FROM messages WHERE instance_id = ? AND chat = ? ORDER BY timestamp DESC LIMIT 3', instanceId, chat)
  if (!rows.length) return undefined
  return {
    lastMessageTimestamp: rows[0].timestamp,
    messages: rows.map((r) => ({ id: r.id, fromMe: Boolean(r.from_me), timestamp: r.timestamp, ...(chat.endsWith('@g.us') && r.sender && !r.from_me ? { participant: r.sender } : {}) })),
  }
}

/** Sends an app-state action; resolves once the server accepted the patch. */
async function patch(ctx, row, action) {
  const runtime = ctx.gateway.connected(row)
  await runtime.command({ type: 'appState', action })
}

/** Writes a chat's settings with `q` (from walink's chatSettings event or a command answer). */
async function storeSettings(q, instanceId, chat, settings) {
  const existing = await q.get('SELECT jid FROM chats WHERE instance_id = ? AND jid = ?', instanceId, chat)
  await q.run(
    `INSERT INTO chats (instance_id, jid, muted_until, pinned_at, archived, marked_unread, labels, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (instance_id, jid) DO UPDATE SET muted_until = excluded.muted_until, pinned_at = excluded.pinned_at, archived = excluded.archived,
       marked_unread = excluded.marked_unread, labels = excluded.labels, updated_at = excluded.updated_at`,
    instanceId, chat, settings.mutedUntilMs ?? null, settings.pinnedAt ?? null, settings.archived ? 1 : 0, settings.markedUnread ? 1 : 0, JSON.stringify(settings.labels ?? []), Date.now(),
  )
  return !existing
}

async function chatRow(ctx, row, jid) {
  return ctx.db.get('SELECT * FROM chats WHERE instance_id = ? AND jid = ?', row.id, jid)
}

/** Runs `action` and answers with the chat as the core now has it. */
async function change(ctx, action) {
  const row = await ctx.instance()
  await patch(ctx, row, action)
  const runtime = ctx.gateway.connected(row)
  const output = await runtime.command({ type: 'getChatSettings', chat: action.chat })
  await ctx.gateway.instanceTx(row.id, (q) => storeSettings(q, row.id, action.chat, output.settings))
  return { body: chatView(await chatRow(ctx, row, action.chat)) }
}

/** Creates or replaces a label row with `q`. */
function putLabel(q, instanceId, labelId, { name, color, deleted }) {
  return q.run(
    'INSERT INTO labels (instance_id, label_id, name, color, deleted) VALUES (?, ?, ?, ?, ?) ON CONFLICT (instance_id, label_id) DO UPDATE SET name = excluded.name, color = excluded.color, deleted = excluded.deleted',
    instanceId, labelId, name, color, deleted ? 1 : 0,
  )
}

const chatParams = { name: S.name, jid: S.jid }

const routes = [
  {
    method: 'GET',
    path: '/instances/{name}/chats',
    auth: 'instance',
    tag: 'chats',
    params: { name: S.name },
    query: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 1000 }, offset: { type: 'integer', minimum: 0, maximum: 1e9 } } },
    summary: 'Chats (settings from app-state, last message time, unread count), most recent first.',
    handler: async (ctx) => {
      const row = await ctx.instance()
      const rows = await ctx.db.all('SELECT * FROM chats WHERE instance_id = ? ORDER BY coalesce(last_message_at, 0) DESC, jid LIMIT ? OFFSET ?', row.id, ctx.query.limit ?? 100, ctx.query.offset ?? 0)
      return { body: { chats: rows.map(chatView) } }
    },
  },
  {
    method: 'GET',
    path: '/instances/{name}/chats/{jid}',
    auth: 'instance',
    tag: 'chats',
    params: chatParams,
    summary: "One chat's settings (live from the client when connected, else stored).",
    handler: async (ctx) => {
      const row = await ctx.instance()
      const runtime = ctx.gateway.runtime(row)
      if (runtime && row.state === 'connected') {
        const output = await runtime.command({ type: 'getChatSettings', chat: ctx.params.jid })
        await ctx.gateway.instanceTx(row.id, (q) => storeSettings(q, row.id, ctx.params.jid, output.settings))
      }
      const chat = await chatRow(ctx, row, ctx.params.jid)
      if (!chat) throw new ApiError(404, 'not_found', `chat ${ctx.params.jid} not found`)
      return { body: chatView(chat) }
    },
  },
  {
    method: 'PUT',
    path: '/instances/{name}/chats/{jid}/mute',
    auth: 'instance',
    tag: 'chats',
    params: chatParams,
    body: { type: 'object', additionalProperties: false, required: ['seconds'], properties: { seconds: { type: 'integer', minimum: 0, maximum: MAX_MUTE_SECONDS } } },
    summary: 'Mute for `seconds` (0 = for ever, at most a year; negative refused).',
    handler: (ctx) => change(ctx, { kind: 'mute', chat: ctx.params.jid, untilMs: ctx.body.seconds === 0 ? 0 : Date.now() + ctx.body.seconds * 1000 }),
  },
  {
    method: 'DELETE',
    path: '/instances/{name}/chats/{jid}/mute',
    auth: 'instance',
    tag: 'chats',
    params: chatParams,
    summary: 'Unmute.',
    handler: (ctx) => change(ctx, { kind: 'unmute', chat: ctx.params.jid }),
  },
  {
    method: 'PUT',
    path: '/instances/{name}/chats/{jid}/pin',
    auth: 'instance',
    tag: 'chats',
    params: chatParams,
    body: { type: 'object', additionalProperties: false, required: ['pinned'], properties: { pinned: S.bool } },
    summary: 'Pin or unpin.',
    handler: (ctx) => change(ctx, { kind: 'pin', chat: ctx.params.jid, pinned: ctx.body.pinned }),
  },
  {
    method: 'PUT',
    path: '/instances/{name}/chats/{jid}/archive',
    auth: 'instance',
    tag: 'chats',
    params: chatParams,
    body: { type: 'object', additionalProperties: false, required: ['archived'], properties: { archived: S.bool } },
    summary: 'Archive or unarchive.',
    handler: async (ctx) => {
      const range = await messageRange(ctx.db, (await ctx.instance()).id, ctx.params.jid)
      return change(ctx, { kind: 'archive', chat: ctx.params.jid, archived: ctx.body.archived, ...(range ? { range } : {}) })
    },
  },
  {
    method: 'PUT',
    path: '/instances/{name}/chats/{jid}/read',
    auth: 'instance',
    tag: 'chats',
    params: chatParams,
    body: { type: 'object', additionalProperties: false, required: ['read'], properties: { read: S.bool } },
    summary: 'Mark the chat read (true) or unread (false) on every device.',
    handler: async (ctx) => {
      const range = await messageRange(ctx.db, (await ctx.instance()).id, ctx.params.jid)
      return change(ctx, { kind: 'markRead', chat: ctx.params.jid, read: ctx.body.read, ...(range ? { range } : {}) })
    },
  },
  {
    method: 'PUT',
    path: '/instances/{name}/chats/{jid}/labels/{labelId}',
    auth: 'instance',
    tag: 'chats',
    params: { ...chatParams, labelId: { type: 'string', minLength: 1, maxLength: 32, pattern: '^[0-9A-Za-z_-]+$' } },
    body: { type: 'object', additionalProperties: false, required: ['labeled'], properties: { labeled: S.bool } },
    summary: 'Put a label on the chat or take it off.',
    handler: (ctx) => change(ctx, { kind: 'labelChat', labelId: ctx.params.labelId, chat: ctx.params.jid, labeled: ctx.body.labeled }),
  },
  {
    method: 'GET',
    path: '/instances/{name}/labels',
    auth: 'instance',
    tag: 'chats',
    params: { name: S.name },
    summary: 'Labels (from app-state).',
    handler: async (ctx) => ({ body: { labels: (await ctx.db.all('SELECT label_id AS id, name, color, deleted FROM labels WHERE instance_id = ? ORDER BY label_id', (await ctx.instance()).id)).map((l) => ({ ...l, deleted: Boolean(l.deleted) })) } }),
  },
  {
    method: 'PUT',
    path: '/instances/{name}/labels/{labelId}',
    auth: 'instance',
    tag: 'chats',
    params: { name: S.name, labelId: { type: 'string', minLength: 1, maxLength: 32, pattern: '^[0-9A-Za-z_-]+$' } },
    body: { type: 'object', additionalProperties: false, required: ['name', 'color'], properties: { name: { type: 'string', minLength: 1, maxLength: 100 }, color: { type: 'integer', minimum: 0, maximum: 19 }, deleted: S.bool } },
    summary: 'Create, rename, recolour or delete a label.',
    handler: async (ctx) => {
      const row = await ctx.instance()
      const { name, color, deleted = false } = ctx.body
      await patch(ctx, row, { kind: 'labelEdit', labelId: ctx.params.labelId, name, color, deleted })
      await ctx.gateway.instanceTx(row.id, (q) => putLabel(q, row.id, ctx.params.labelId, { name, color, deleted }))
      return { body: { id: ctx.params.labelId, name, color, deleted } }
    },
  },
  {
    method: 'GET',
    path: '/instances/{name}/contacts',
    auth: 'instance',
    tag: 'chats',
    params: { name: S.name },
    summary: 'Contacts (from app-state).',
    handler: async (ctx) => ({ body: { contacts: await ctx.db.all('SELECT jid, full_name AS "fullName", first_name AS "firstName" FROM contacts WHERE instance_id = ? ORDER BY jid', (await ctx.instance()).id) } }),
  },
]

const evoName = { instanceName: S.name }
const evoKey = { type: 'object', properties: { remoteJid: S.jid, fromMe: S.bool, id: S.messageId } }

const evolutionRoutes = [
  {
    method: 'PUT',
    path: '/chat/archiveChat/{instanceName}',
    auth: 'instance',
    format: 'evolution',
    tag: 'evolution',
    params: evoName,
    body: { type: 'object', required: ['archive'], properties: { chat: S.jid, archive: S.bool, lastMessage: { type: 'object', properties: { key: evoKey } } } },
    summary: 'Evolution: archive or unarchive a chat.',
    handler: async (ctx) => {
      const row = await ctx.instance(ctx.params.instanceName)
      const chat = ctx.body.chat ?? ctx.body.lastMessage?.key?.remoteJid
      if (!chat) throw new ApiError(400, 'invalid_request', 'chat or lastMessage.key.remoteJid is required')
      const range = await messageRange(ctx.db, row.id, chat)
      await patch(ctx, row, { kind: 'archive', chat, archived: ctx.body.archive, ...(range ? { range } : {}) })
      return { status: 201, body: { chatId: chat, archived: true } }
    },
  },
  {
    method: 'PUT',
    path: '/chat/markChatUnread/{instanceName}',
    auth: 'instance',
    format: 'evolution',
    tag: 'evolution',
    params: evoName,
    body: { type: 'object', properties: { chat: S.jid, lastMessage: { type: 'object', properties: { key: evoKey } } } },
    summary: 'Evolution: mark a chat unread.',
    handler: async (ctx) => {
      const row = await ctx.instance(ctx.params.instanceName)
      const chat = ctx.body.chat ?? ctx.body.lastMessage?.key?.remoteJid
      if (!chat) throw new ApiError(400, 'invalid_request', 'chat or lastMessage.key.remoteJid is required')
      const range = await messageRange(ctx.db, row.id, chat)
      await patch(ctx, row, { kind: 'markRead', chat, read: false, ...(range ? { range } : {}) })
      return { status: 201, body: { chatId: chat, markedChatUnread: true } }
    },
  },
  ...['GET', 'POST'].map((method) => ({
    method,
    path: '/chat/findChats/{instanceName}',
    auth: 'instance',
    format: 'evolution',
    tag: 'evolution',
    params: evoName,
    summary: 'Evolution: stored chats.',
    handler: async (ctx) => {
      const row = await ctx.instance(ctx.params.instanceName)
      const rows = await ctx.db.all('SELECT * FROM chats WHERE instance_id = ? ORDER BY coalesce(last_message_at, 0) DESC LIMIT 1000', row.id)
      return {
        body: rows.map((c) => ({ id: `${row.id}:${c.jid}`, remoteJid: c.jid, name: null, labels: JSON.parse(c.labels), unreadCount: c.unread, archived: Boolean(c.archived), pinned: Boolean(c.pinned_at), muted: c.muted_until !== null, updatedAt: new Date(c.updated_at).toISOString(), instanceId: row.id })),
      }
    },
  })),
  {
    method: 'POST',
    path: '/chat/findContacts/{instanceName}',
    auth: 'instance',
    format: 'evolution',
    tag: 'evolution',
    params: evoName,
    bodyOptional: true,
    body: { type: 'object', properties: { where: { type: 'object', properties: { remoteJid: S.jid } } } },
    summary: 'Evolution: stored contacts.',
    handler: async (ctx) => {
      const row = await ctx.instance(ctx.params.instanceName)
      const jid = ctx.body.where?.remoteJid
      const rows = jid ? await ctx.db.all('SELECT * FROM contacts WHERE instance_id = ? AND jid = ?', row.id, jid) : await ctx.db.all('SELECT * FROM contacts WHERE instance_id = ? ORDER BY jid LIMIT 5000', row.id)
      return { body: rows.map((c) => ({ id: `${row.id}:${c.jid}`, remoteJid: c.jid, pushName: c.full_name ?? c.first_name ?? null, profilePicUrl: null, instanceId: row.id })) }
    },
  },
  {
    method: 'GET',
    path: '/label/findLabels/{instanceName}',
    auth: 'instance',
    format: 'evolution',
    tag: 'evolution',
    params: evoName,
    summary: 'Evolution: labels.',
    handler: async (ctx) => {
      const row = await ctx.instance(ctx.params.instanceName)
      return { body: (await ctx.db.all('SELECT * FROM labels WHERE instance_id = ? AND deleted = 0 ORDER BY label_id', row.id)).map((l) => ({ id: l.label_id, name: l.name, color: String(l.color), predefinedId: null })) }
    },
  },
  {
    method: 'POST',
    path: '/label/handleLabel/{instanceName}',
    auth: 'instance',
    format: 'evolution',
    tag: 'evolution',
    params: evoName,
    body: { type: 'object', required: ['number', 'labelId', 'action'], properties: { number: S.recipient, labelId: { type: 'string', minLength: 1, maxLength: 32, pattern: '^[0-9A-Za-z_-]+$' }, action: { type: 'string', enum: ['add', 'remove'] } } },
    summary: 'Evolution: put a label on a chat or take it off.',
    handler: async (ctx) => {
      const row = await ctx.instance(ctx.params.instanceName)
      const chat = ctx.body.number.includes('@') ? ctx.body.number : `${ctx.body.number.replace(/[^0-9]/g, '')}@s.whatsapp.net`
      await patch(ctx, row, { kind: 'labelChat', labelId: ctx.body.labelId, chat, labeled: ctx.body.action === 'add' })
      return { status: 201, body: { numberJid: chat, labelId: ctx.body.labelId, add: ctx.body.action === 'add', remove: ctx.body.action === 'remove' } }
    },
  },
]

export default {
  name: 'chats',
  routes: [...routes, ...evolutionRoutes],
  clientEvents: {
    async chatSettings(runtime, event, gw, q) {
      const created = await storeSettings(q, runtime.id, event.chat, event.settings)
      const row = await q.get('SELECT * FROM chats WHERE instance_id = ? AND jid = ?', runtime.id, event.chat)
      await gw.emit(q, runtime.id, 'chat.updated', { chat: event.chat, created, settings: chatView(row) })
    },
    async appStateChanged(runtime, event, gw, q) {
      const c = event.change
      if (c.kind === 'contact') {
        if (c.contact) {
          await q.run(
            'INSERT INTO contacts (instance_id, jid, full_name, first_name, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (instance_id, jid) DO UPDATE SET full_name = excluded.full_name, first_name = excluded.first_name, updated_at = excluded.updated_at',
            runtime.id, c.jid, c.contact.fullName ?? null, c.contact.firstName ?? null, Date.now(),
          )
        } else {
          await q.run('DELETE FROM contacts WHERE instance_id = ? AND jid = ?', runtime.id, c.jid)
        }
        await gw.emit(q, runtime.id, 'contact.updated', { jid: c.jid, fullName: c.contact?.fullName ?? null, firstName: c.contact?.firstName ?? null, removed: !c.contact })
      } else if (c.kind === 'label') {
        if (c.label) await putLabel(q, runtime.id, c.labelId, c.label)
        await gw.emit(q, runtime.id, 'label.updated', { id: c.labelId, name: c.label?.name ?? null, color: c.label?.color ?? null, deleted: c.label ? Boolean(c.label.deleted) : true })
      } else if (c.kind === 'chatLabeled') {
        await gw.emit(q, runtime.id, 'label.association', { labelId: c.labelId, chat: c.chat, labeled: c.labeled })
      }
    },
    appStateFatal(runtime, event, gw) {
      gw.log('warn', `instance ${runtime.name}: app-state ${event.collection} failed: ${event.error.kind}`)
    },
  },
  evolutionEvents: {
    'chat.updated': (data, instance) => {
      const s = data.settings
      const chat = { remoteJid: data.chat, instanceId: instance.id, ...(s ? { archived: s.archived, pinned: s.pinned, mutedUntil: s.mutedUntil, markedUnread: s.markedUnread, labels: s.labels } : {}) }
      return [[data.created ? 'CHATS_UPSERT' : 'CHATS_UPDATE', [chat]]]
    },
    'contact.updated': (data, instance) => [['CONTACTS_UPSERT', [{ remoteJid: data.jid, pushName: data.fullName ?? data.firstName ?? null, profilePicUrl: null, instanceId: instance.id }]]],
    'label.updated': (data, instance) => [['LABELS_EDIT', { id: data.id, name: data.name, color: data.color, deleted: data.deleted, instanceId: instance.id }]],
    'label.association': (data, instance) => [['LABELS_ASSOCIATION', { association: { chatId: data.chat, labelId: data.labelId }, type: data.labeled ? 'add' : 'remove', instanceId: instance.id }]],
  },
}
