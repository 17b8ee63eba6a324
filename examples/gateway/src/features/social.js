// Contacts, presence and calls through walink's social commands: which numbers are on WhatsApp,
// presence (ours, and subscribing to a contact's), chat states (typing, recording), profile
// pictures, about texts and business profiles, the block list, rejecting calls; and the `call`,
// `presence` and `chatState` events (native `call`, `presence.updated`, `chat.state`; Evolution's
// CALL and PRESENCE_UPDATE). The `rejectCall` setting rejects every call offered while the
// instance is connected, and `msgCall` then answers the caller with a text.
import { ApiError } from '../errors.js'
import { toJid } from '../gateway.js'
import { S } from '../http/schema.js'
import { base64, mediaBytes, sendText } from './messages.js'

const PRESENCES = ['available', 'unavailable', 'composing', 'recording', 'paused']
/** The longest `delay` of Evolution's sendPresence: the chat state is shown that long, then paused. */
export const MAX_PRESENCE_DELAY_MS = 60_000
/** The most numbers one check takes. */
export const MAX_CHECK_NUMBERS = 500

const command = (ctx, row, cmd) => ctx.gateway.connected(row).command(cmd)

/** The user JID of a number or JID (a device suffix dropped). */
const userJid = (value) => {
  const jid = toJid(value)
  const [user, server] = jid.split('@')
  return `${user.split(':')[0]}@${server}`
}

async function checkNumbers(ctx, row, values) {
  const phones = values.map((v) => String(v).split('@')[0].replace(/[^0-9]/g, ''))
  const bad = phones.find((p) => p.length < 7 || p.length > 20)
  if (bad !== undefined) throw new ApiError(400, 'invalid_request', `${JSON.stringify(values[phones.indexOf(bad)])} is not a phone number`)
  return (await command(ctx, row, { type: 'checkNumbers', phones })).numbers
}

/** The largest picture taken (WhatsApp's own are a few hundred KiB). */
export const MAX_PICTURE_BYTES = 5 * 1024 * 1024

/**
 * The JPEG of a picture given as an http(s) URL or base64 (Evolution's `picture` / `image`):
 * anything that is not a JPEG is a typed 400 (`invalid_picture`), before the server is asked.
 */
export async function pictureJpeg(ctx, row, value, what) {
  const { data } = await mediaBytes(ctx, row, value, what)
  if (data.length > MAX_PICTURE_BYTES) throw new ApiError(413, 'picture_too_large', `${what} is ${data.length} bytes; pictures take at most ${MAX_PICTURE_BYTES}`)
  if (!(data.length >= 3 && data[0] === 0xff && data[1] === 0xd8 && data[2] === 0xff)) throw new ApiError(400, 'invalid_picture', `${what} is not a JPEG (WhatsApp takes JPEG pictures only)`)
  return data
}

/** Sets (a JPEG) or removes (null) the picture of `jid` (a group, or our own JID); answers the new picture id or null. */
export async function setPicture(ctx, row, jid, jpeg) {
  const { id } = await command(ctx, row, { type: 'setPicture', jid, jpeg })
  return id ?? null
}

/** This instance's own user JID (its picture's target). */
function ownJid(row) {
  if (!row.jid) throw new ApiError(409, 'not_paired', `instance ${row.name} is not paired; connect it first`)
  return `${row.jid.split('@')[0].split(':')[0]}@s.whatsapp.net`
}

/** Picture, about text and business profile of `jid`, each an answer (none or not allowed included). */
async function profile(ctx, row, jid) {
  const { picture } = await command(ctx, row, { type: 'getProfilePicture', jid, preview: false })
  const { about } = await command(ctx, row, { type: 'getAbout', jid })
  const { profile: business } = await command(ctx, row, { type: 'getBusinessProfile', jid })
  return { jid, picture, about, business: business ?? null }
}

/** Shows `state` in `chat` for `delayMs`, then `paused` (Evolution's sendPresence with a delay). */
async function chatStateFor(ctx, row, chat, state, delayMs) {
  await command(ctx, row, { type: 'sendChatState', to: chat, state })
  if (delayMs > 0 && state !== 'paused') {
    await new Promise((resolve) => setTimeout(resolve, delayMs))
    await command(ctx, row, { type: 'sendChatState', to: chat, state: 'paused' })
  }
}

const nameParam = { name: S.name }
const jidParams = { name: S.name, jid: S.jid }
const phones = { type: 'array', minItems: 1, maxItems: MAX_CHECK_NUMBERS, items: S.recipient }

const route = (method, path, summary, extra, handler) => ({ method, path: `/instances/{name}${path}`, auth: 'instance', tag: 'contacts', params: nameParam, summary, ...extra, handler })

const routes = [
  route('POST', '/numbers/check', 'Which phone numbers are on WhatsApp (their JID, and LID when the server tells).', { body: { type: 'object', additionalProperties: false, required: ['phones'], properties: { phones } } }, async (ctx) => ({
    body: { numbers: await checkNumbers(ctx, await ctx.instance(), ctx.body.phones) },
  })),
  route('PUT', '/presence', 'Online or offline (needs a push name: the instance setting `pushName`).', { body: { type: 'object', additionalProperties: false, required: ['available'], properties: { available: S.bool } } }, async (ctx) => {
    await command(ctx, await ctx.instance(), { type: 'setPresence', available: ctx.body.available })
    return { body: { available: ctx.body.available } }
  }),
  route('POST', '/presence/subscribe', "Subscribe to a contact's presence (`presence.updated` events follow; renewed after reconnects).", { body: { type: 'object', additionalProperties: false, required: ['jid'], properties: { jid: S.recipient } } }, async (ctx) => {
    const jid = userJid(ctx.body.jid)
    await command(ctx, await ctx.instance(), { type: 'subscribePresence', jid })
    return { body: { jid, subscribed: true } }
  }),
  route(
    'POST',
    '/chats/{jid}/state',
    'Typing (`composing`), recording a voice note (`recording`) or stopped (`paused`) in a chat.',
    { params: jidParams, body: { type: 'object', additionalProperties: false, required: ['state'], properties: { state: { type: 'string', enum: ['composing', 'recording', 'paused'] } } } },
    async (ctx) => {
      await command(ctx, await ctx.instance(), { type: 'sendChatState', to: ctx.params.jid, state: ctx.body.state })
      return { body: { chat: ctx.params.jid, state: ctx.body.state } }
    },
  ),
  route('GET', '/profiles/{jid}', "A user's profile picture URL, about text and business profile (each may be `none` or `notAllowed`).", { params: jidParams }, async (ctx) => ({ body: await profile(ctx, await ctx.instance(), userJid(ctx.params.jid)) })),
  route('PUT', '/profile/picture', 'Set our own profile picture: `picture` a JPEG as base64 or an http(s) URL (anything else: 400 `invalid_picture`).', { body: { type: 'object', additionalProperties: false, required: ['picture'], properties: { picture: base64 } } }, async (ctx) => {
    const row = await ctx.instance()
    const jid = ownJid(row)
    const id = await setPicture(ctx, row, jid, await pictureJpeg(ctx, row, ctx.body.picture, 'picture'))
    return { body: { jid, pictureId: id } }
  }),
  route('DELETE', '/profile/picture', 'Remove our own profile picture.', {}, async (ctx) => {
    const row = await ctx.instance()
    const jid = ownJid(row)
    await setPicture(ctx, row, jid, null)
    return { body: { jid, pictureId: null } }
  }),
  route('GET', '/blocklist', 'The blocked users (from the server).', {}, async (ctx) => ({ body: { blocked: (await command(ctx, await ctx.instance(), { type: 'getBlockList' })).jids } })),
  route('PUT', '/blocklist/{jid}', 'Block (`true`) or unblock a user.', { params: jidParams, body: { type: 'object', additionalProperties: false, required: ['blocked'], properties: { blocked: S.bool } } }, async (ctx) => {
    await command(ctx, await ctx.instance(), { type: 'setBlocked', jid: ctx.params.jid, blocked: ctx.body.blocked })
    return { body: { jid: ctx.params.jid, blocked: ctx.body.blocked } }
  }),
  route(
    'POST',
    '/calls/{callId}/reject',
    'Reject an incoming call (its `call` event names `callId` and `caller`).',
    { params: { name: S.name, callId: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[0-9A-Za-z._:-]+$' } }, body: { type: 'object', additionalProperties: false, required: ['caller'], properties: { caller: S.jid } } },
    async (ctx) => {
      await command(ctx, await ctx.instance(), { type: 'rejectCall', callId: ctx.params.callId, caller: ctx.body.caller })
      return { body: { callId: ctx.params.callId, rejected: true } }
    },
  ),
]

const evoName = { instanceName: S.name }
const byNumber = { type: 'object', required: ['number'], properties: { number: S.recipient } }

/** An Evolution route of this feature. */
const evolution = (method, path, summary, body, handler, status = 200) => ({
  method,
  path: `${path}/{instanceName}`,
  auth: 'instance',
  format: 'evolution',
  tag: 'evolution',
  params: evoName,
  ...(body ? { body } : {}),
  summary: `Evolution: ${summary}`,
  handler: async (ctx) => ({ status, body: await handler(ctx, await ctx.instance(ctx.params.instanceName)) }),
})

/** Evolution's fetchBusinessProfile answer. */
const evolutionBusiness = (business) => (business ? { isBusiness: true, wid: business.jid, description: business.description ?? null, address: business.address ?? null, email: business.email ?? null, website: business.websites, category: business.categories[0] ?? null } : { isBusiness: false })

const evolutionRoutes = [
  evolution('POST', '/chat/whatsappNumbers', 'which numbers are on WhatsApp.', { type: 'object', required: ['numbers'], properties: { numbers: phones } }, async (ctx, row) => {
    const numbers = await checkNumbers(ctx, row, ctx.body.numbers)
    return numbers.map((n) => ({ exists: n.onWhatsApp, jid: n.jid, number: n.phone, ...(n.lid ? { lid: n.lid } : {}) }))
  }, 201),
  evolution(
    'POST',
    '/chat/sendPresence',
    'show `composing`, `recording` or `paused` in a chat for `delay` ms (then paused); `available`/`unavailable` set our own presence.',
    { type: 'object', required: ['number', 'presence'], properties: { number: S.recipient, presence: { type: 'string', enum: PRESENCES }, delay: { type: 'integer', minimum: 0, maximum: MAX_PRESENCE_DELAY_MS } } },
    async (ctx, row) => {
      const { presence, delay = 0 } = ctx.body
      if (presence === 'available' || presence === 'unavailable') await command(ctx, row, { type: 'setPresence', available: presence === 'available' })
      else await chatStateFor(ctx, row, toJid(ctx.body.number), presence, delay)
      return { presence }
    },
    201,
  ),
  evolution('POST', '/instance/setPresence', 'online (`available`) or offline (`unavailable`).', { type: 'object', required: ['presence'], properties: { presence: { type: 'string', enum: ['available', 'unavailable'] } } }, async (ctx, row) => {
    await command(ctx, row, { type: 'setPresence', available: ctx.body.presence === 'available' })
    return { presence: ctx.body.presence }
  }, 201),
  evolution('POST', '/chat/fetchProfilePictureUrl', "a user's profile picture URL (null when there is none or it is not shown to us).", byNumber, async (ctx, row) => {
    const wuid = userJid(ctx.body.number)
    const { picture } = await command(ctx, row, { type: 'getProfilePicture', jid: wuid, preview: false })
    return { wuid, profilePictureUrl: picture.kind === 'url' ? picture.url : null }
  }),
  evolution('POST', '/chat/fetchProfile', "a user's profile: on WhatsApp, picture, about text, business fields.", byNumber, async (ctx, row) => {
    const [info] = await checkNumbers(ctx, row, [ctx.body.number])
    if (!info.onWhatsApp) throw new ApiError(400, 'not_on_whatsapp', `${info.phone} is not on WhatsApp`, { jid: info.jid, exists: false, number: info.phone })
    const p = await profile(ctx, row, info.jid)
    const business = evolutionBusiness(p.business)
    return { wuid: info.jid, name: null, numberExists: true, picture: p.picture.kind === 'url' ? p.picture.url : null, status: p.about.kind === 'text' ? { status: p.about.text, setAt: new Date(p.about.setAt * 1000).toISOString() } : null, isBusiness: business.isBusiness, email: business.email ?? null, description: business.description ?? null, website: business.website?.[0] ?? null }
  }),
  evolution('POST', '/chat/fetchBusinessProfile', "a business account's profile (`isBusiness: false` otherwise).", byNumber, async (ctx, row) => {
    const { profile: business } = await command(ctx, row, { type: 'getBusinessProfile', jid: userJid(ctx.body.number) })
    return evolutionBusiness(business)
  }),
  evolution('POST', '/chat/updateProfilePicture', 'set our own profile picture (`picture`: a JPEG as URL or base64).', { type: 'object', required: ['picture'], properties: { picture: base64 } }, async (ctx, row) => {
    await setPicture(ctx, row, ownJid(row), await pictureJpeg(ctx, row, ctx.body.picture, 'picture'))
    return { update: 'success' }
  }),
  evolution('DELETE', '/chat/removeProfilePicture', 'remove our own profile picture.', null, async (ctx, row) => {
    await setPicture(ctx, row, ownJid(row), null)
    return { update: 'success' }
  }),
  evolution('POST', '/chat/updateBlockStatus', 'block or unblock a user.', { type: 'object', required: ['number', 'status'], properties: { number: S.recipient, status: { type: 'string', enum: ['block', 'unblock'] } } }, async (ctx, row) => {
    await command(ctx, row, { type: 'setBlocked', jid: userJid(ctx.body.number), blocked: ctx.body.status === 'block' })
    return { accepted: true }
  }, 201),
]

/** Baileys' call `status` for walink's call actions. */
const CALL_STATUS = { offer: 'offer', ringing: 'ringing', accepted: 'accept', rejected: 'reject', ended: 'terminate', timedOut: 'timeout' }

/**
 * The `rejectCall` setting, after the event's transaction committed (a command must not wait
 * inside the store's transaction): rejects a call offered now, then sends `msgCall` to the caller.
 */
function rejectLater(runtime, event, settings, gw, q) {
  if (!settings.rejectCall || event.action !== 'offer' || event.offline) return
  q.onCommit(async () => {
    try {
      await runtime.command({ type: 'rejectCall', callId: event.callId, caller: event.caller })
      if (settings.msgCall) {
        const row = await gw.rowById(runtime.id)
        await sendText({ gateway: gw, metrics: gw.metrics }, row, event.callerPn ?? event.caller, settings.msgCall)
      }
    } catch (error) {
      gw.log('warn', `instance ${runtime.name}: rejecting call ${event.callId} failed: ${error.code ?? ''} ${error.message}`)
    }
  })
}

export default {
  name: 'social',
  routes: [...routes, ...evolutionRoutes],
  clientEvents: {
    /** `alwaysOnline`: online at every login (walink renews it after reconnects). */
    async state(runtime, event, gw, q) {
      if (event.state.kind !== 'connected') return
      const settings = JSON.parse((await gw.rowById(runtime.id, q)).settings)
      if (!settings.alwaysOnline) return
      q.onCommit(() => runtime.command({ type: 'setPresence', available: true }).catch((error) => gw.log('warn', `instance ${runtime.name}: alwaysOnline failed: ${error.code ?? ''} ${error.message}`)))
    },
    async call(runtime, event, gw, q) {
      const { callId, action, caller, callerPn, device, timestamp, offline, video, isGroup, group, reason } = event
      await gw.emit(q, runtime.id, 'call', { callId, action, caller, callerPn: callerPn ?? null, device, timestamp, offline, video, isGroup, group: group ?? null, reason: reason ?? null })
      const row = await gw.rowById(runtime.id, q)
      rejectLater(runtime, event, JSON.parse(row.settings), gw, q)
    },
    async presence(runtime, event, gw, q) {
      await gw.emit(q, runtime.id, 'presence.updated', { jid: event.jid, available: event.available, lastSeen: event.lastSeen ?? null, lastSeenHidden: event.lastSeenHidden })
    },
    async chatState(runtime, event, gw, q) {
      await gw.emit(q, runtime.id, 'chat.state', { chat: event.chat, sender: event.sender, state: event.state })
    },
  },
  evolutionEvents: {
    call: (data, instance) => [['CALL', { id: data.callId, from: data.caller, chatId: data.group ?? data.caller, ...(data.callerPn ? { callerPn: data.callerPn } : {}), date: new Date(data.timestamp * 1000).toISOString(), status: CALL_STATUS[data.action] ?? data.action, offline: data.offline, isVideo: data.video, isGroup: data.isGroup, groupJid: data.group, instanceId: instance.id }]],
    'presence.updated': (data) => [['PRESENCE_UPDATE', { id: data.jid, presences: { [data.jid]: { lastKnownPresence: data.available ? 'available' : 'unavailable', ...(data.lastSeen ? { lastSeen: data.lastSeen } : {}) } } }]],
    'chat.state': (data) => [['PRESENCE_UPDATE', { id: data.chat, presences: { [data.sender]: { lastKnownPresence: data.state } } }]],
  },
}
