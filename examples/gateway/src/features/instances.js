// Instances: create, list, status, delete (soft), connect (QR or code), restart, reconnect, stop,
// logout, settings and proxy; native routes and Evolution's `instance/*`, `settings/*`, `proxy/*`.
import { ApiError } from '../errors.js'
import { evolutionOk, evolutionState } from '../evolution.js'
import { DEFAULT_SETTINGS, UNSUPPORTED_SETTINGS, publicInstance, redactProxy } from '../gateway.js'
import { S } from '../http/schema.js'
import { webhookView } from './webhooks.js'

const settingsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    rejectCall: S.bool,
    msgCall: { type: 'string', maxLength: 1024 },
    groupsIgnore: S.bool,
    alwaysOnline: S.bool,
    readMessages: S.bool,
    readStatus: S.bool,
    syncFullHistory: S.bool,
    pushName: { type: 'string', maxLength: 64 },
  },
}

const proxySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['protocol', 'host', 'port'],
  properties: {
    protocol: { type: 'string', enum: ['http', 'socks5'] },
    host: { type: 'string', minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9.:_-]+$' },
    port: { type: 'integer', minimum: 1, maximum: 65535 },
    username: { type: 'string', maxLength: 255 },
    password: { type: 'string', maxLength: 255 },
  },
}

const historySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['mode'],
  properties: {
    mode: { type: 'string', enum: ['none', 'days', 'messages'] },
    days: { type: 'integer', minimum: 1, maximum: 3650 },
    messagesPerChat: { type: 'integer', minimum: 1, maximum: 100000 },
  },
}

const webhookSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['url'],
  properties: {
    url: S.url,
    events: { type: 'array', maxItems: 64, items: { type: 'string', minLength: 1, maxLength: 64 } },
    headers: { type: 'object', maxProperties: 32, additionalProperties: { type: 'string', maxLength: 4096 } },
    base64: S.bool,
  },
}

/** Refuses settings the core cannot carry out yet (no silent no-op). */
export function checkSettings(settings) {
  for (const [name, why] of Object.entries(UNSUPPORTED_SETTINGS)) {
    if (settings[name] === true) throw new ApiError(400, 'setting_unsupported', `${name}: true is not available yet (${why})`, { setting: name })
  }
  // WhatsApp shows presence only with a name: walink refuses setPresence without one.
  if (settings.alwaysOnline === true && !settings.pushName) throw new ApiError(400, 'push_name_required', 'alwaysOnline needs pushName (the name contacts see); set both', { setting: 'alwaysOnline' })
  return settings
}

/** Only `none` today: the walink core does not take a history-sync policy yet (issue 16). */
export function checkHistory(history) {
  if (history && history.mode !== 'none') throw new ApiError(400, 'history_unsupported', 'history on pairing: only {"mode":"none"} is available; days and messagesPerChat arrive with walink issue 16')
  return history
}

const nameParam = { name: S.name }

function connectAnswer(result) {
  return result
}

// ------------------------------------------------------------------------------------------
// Native routes

const routes = [
  {
    method: 'POST',
    path: '/instances',
    auth: 'global',
    tag: 'instances',
    summary: 'Create an instance; answers with its token (shown once).',
    body: {
      type: 'object',
      additionalProperties: false,
      required: ['name'],
      properties: { name: S.name, token: { type: 'string', minLength: 16, maxLength: 256 }, settings: settingsSchema, proxy: proxySchema, history: historySchema, webhook: webhookSchema },
    },
    status: 201,
    cluster: 'new',
    handler: async (ctx) => {
      const { name, token, settings = {}, proxy = null, history = { mode: 'none' }, webhook } = ctx.body
      checkSettings(settings)
      checkHistory(history)
      let created
      let hook = null
      await ctx.db.tx(async (q) => {
        created = await ctx.gateway.create({ name, token, settings, proxy, history }, q)
        if (webhook) hook = await ctx.webhooks.create(created.row, { ...webhook, format: 'native' }, q)
      })
      return { status: 201, body: { instance: publicInstance(created.row), token: created.token, ...(hook ? { webhook: webhookView(hook, { withSecret: true }) } : {}) } }
    },
  },
  {
    method: 'GET',
    path: '/instances',
    auth: 'any',
    tag: 'instances',
    summary: 'List the instances (an instance token sees its own) with counts by state.',
    query: { type: 'object', additionalProperties: false, properties: { deleted: S.bool } },
    handler: async (ctx) => {
      let rows = await ctx.gateway.list({ includeDeleted: ctx.query.deleted === true })
      if (ctx.auth.kind === 'instance') rows = rows.filter((row) => row.id === ctx.auth.instanceId)
      return { body: { instances: rows.map((row) => publicInstance(row, ctx.gateway.runtime(row))), counts: await ctx.gateway.counts() } }
    },
  },
  {
    method: 'GET',
    path: '/instances/{name}',
    auth: 'instance',
    tag: 'instances',
    params: nameParam,
    summary: 'Status: what is true now (state, reason and time of the last transition); never connects.',
    handler: async (ctx) => ({ body: await ctx.gateway.status(await ctx.instance()) }),
  },
  {
    method: 'DELETE',
    path: '/instances/{name}',
    auth: 'instance',
    tag: 'instances',
    params: nameParam,
    summary: 'Soft delete: the device is logged out, the keys wiped, the row kept with its delete time.',
    handler: async (ctx) => ({ body: { instance: publicInstance(await ctx.gateway.remove(await ctx.instance())) } }),
  },
  {
    method: 'POST',
    path: '/instances/{name}/connect',
    auth: 'instance',
    tag: 'instances',
    params: nameParam,
    bodyOptional: true,
    body: { type: 'object', additionalProperties: false, properties: { phone: S.phone, history: historySchema } },
    summary: 'Connect. Paired: logs in. Otherwise the QR (string + PNG) or, with phone, the 8-character code, answered once the server accepted it.',
    handler: async (ctx) => {
      checkHistory(ctx.body.history)
      return { body: connectAnswer(await ctx.gateway.connect(await ctx.instance(), ctx.body)) }
    },
  },
  {
    method: 'POST',
    path: '/instances/{name}/restart',
    auth: 'instance',
    tag: 'instances',
    params: nameParam,
    summary: 'Close the session and log in again from the store (paired instances).',
    handler: async (ctx) => ({ body: await ctx.gateway.restart(await ctx.instance()) }),
  },
  {
    method: 'POST',
    path: '/instances/{name}/reconnect',
    auth: 'instance',
    tag: 'instances',
    params: nameParam,
    summary: 'Reconnect now: skips a pending backoff, or starts a stopped paired instance.',
    handler: async (ctx) => {
      const row = await ctx.instance()
      if (!row.jid) throw new ApiError(409, 'not_paired', `instance ${row.name} is not paired; connect it first`)
      const runtime = ctx.gateway.runtime(row)
      if (runtime && row.state === 'reconnecting') await runtime.command({ type: 'connect' })
      else if (!runtime) return { body: await ctx.gateway.connect(row) }
      return { body: { state: (await ctx.gateway.rowById(row.id)).state } }
    },
  },
  {
    method: 'POST',
    path: '/instances/{name}/stop',
    auth: 'instance',
    tag: 'instances',
    params: nameParam,
    summary: 'Disconnect and stop; the device stays paired (connect resumes it).',
    handler: async (ctx) => {
      const row = await ctx.instance()
      await ctx.gateway.stop(row)
      return { body: await ctx.gateway.status(await ctx.gateway.rowById(row.id)) }
    },
  },
  {
    method: 'POST',
    path: '/instances/{name}/logout',
    auth: 'instance',
    tag: 'instances',
    params: nameParam,
    summary: 'Unlink the device; ends in logged_out with the keys wiped (no QR loop: it stays there until connect).',
    handler: async (ctx) => ({ body: publicInstance(await ctx.gateway.logout(await ctx.instance())) }),
  },
  {
    method: 'GET',
    path: '/instances/{name}/settings',
    auth: 'instance',
    tag: 'instances',
    params: nameParam,
    summary: 'The instance settings.',
    handler: async (ctx) => ({ body: JSON.parse((await ctx.instance()).settings) }),
  },
  {
    method: 'PUT',
    path: '/instances/{name}/settings',
    auth: 'instance',
    tag: 'instances',
    params: nameParam,
    body: settingsSchema,
    summary: 'Change settings (fields left out keep their value).',
    handler: async (ctx) => {
      const row = await ctx.instance()
      const settings = checkSettings({ ...JSON.parse(row.settings), ...ctx.body })
      return { body: JSON.parse((await ctx.gateway.update(row, { settings: JSON.stringify(settings) })).settings) }
    },
  },
  {
    method: 'PUT',
    path: '/instances/{name}/proxy',
    auth: 'instance',
    tag: 'instances',
    params: nameParam,
    body: proxySchema,
    summary: 'Set the proxy (HTTP CONNECT or SOCKS5); fails closed. A running instance restarts through it.',
    handler: async (ctx) => {
      const row = await ctx.gateway.update(await ctx.instance(), { proxy: JSON.stringify(ctx.body) })
      if (ctx.gateway.runtime(row) && row.jid) await ctx.gateway.restart(row).catch(() => {})
      return { body: redactProxy(ctx.body) }
    },
  },
  {
    method: 'DELETE',
    path: '/instances/{name}/proxy',
    auth: 'instance',
    tag: 'instances',
    params: nameParam,
    summary: 'Remove the proxy (direct connections from then on).',
    handler: async (ctx) => {
      await ctx.gateway.update(await ctx.instance(), { proxy: null })
      return { body: { proxy: null } }
    },
  },
]

// ------------------------------------------------------------------------------------------
// Evolution API v2 routes

const evoName = { instanceName: S.name }

/** Evolution's connect answer: `{ pairingCode, code, base64, count }`, or the state when open. */
async function evolutionConnect(ctx, row, number) {
  const result = await ctx.gateway.connect(row, number ? { phone: number } : {})
  if (result.state === 'connected') return { instance: { instanceName: row.name, state: 'open' } }
  if (result.code) return { pairingCode: result.code, code: null, base64: null, count: 0 }
  return { pairingCode: null, code: result.qr, base64: result.png, count: result.count }
}

function evolutionSettings(row) {
  const { rejectCall, msgCall, groupsIgnore, alwaysOnline, readMessages, readStatus, syncFullHistory, pushName = '' } = JSON.parse(row.settings)
  return { rejectCall, msgCall, groupsIgnore, alwaysOnline, readMessages, readStatus, syncFullHistory, pushName }
}

async function evolutionInstanceRow(ctx, row) {
  const counts = async (table) => (await ctx.db.get(`SELECT count(*) AS n FROM ${table} WHERE instance_id = ?`, row.id)).n
  const proxy = row.proxy ? JSON.parse(row.proxy) : null
  return {
    id: row.id,
    name: row.name,
    connectionStatus: evolutionState(row.state),
    ownerJid: row.jid ? `${row.jid.split('@')[0].split(':')[0]}@s.whatsapp.net` : null,
    profileName: null,
    profilePicUrl: null,
    integration: 'WHATSAPP-BAILEYS',
    number: row.jid ? row.jid.split('@')[0].split(':')[0] : null,
    businessId: null,
    clientName: 'walink',
    disconnectionReasonCode: null,
    disconnectionObject: row.state === 'connected' ? null : row.reason,
    disconnectionAt: row.state === 'connected' ? null : new Date(row.state_at).toISOString(),
    createdAt: new Date(row.created_at).toISOString(),
    updatedAt: new Date(row.state_at).toISOString(),
    Setting: { ...evolutionSettings(row), instanceId: row.id },
    Proxy: proxy ? { enabled: true, host: proxy.host, port: String(proxy.port), protocol: proxy.protocol, username: proxy.username ?? '', instanceId: row.id } : null,
    _count: { Message: await counts('messages'), Contact: await counts('contacts'), Chat: await counts('chats') },
  }
}

const evolutionRoutes = [
  {
    method: 'POST',
    path: '/instance/create',
    auth: 'global',
    format: 'evolution',
    tag: 'evolution',
    summary: 'Evolution: create an instance (settings, proxy, webhook); with qrcode, the QR or, with number, the pairing code.',
    cluster: 'new',
    body: {
      type: 'object',
      required: ['instanceName'],
      properties: {
        instanceName: S.name,
        token: { type: 'string', minLength: 16, maxLength: 256 },
        qrcode: S.bool,
        number: S.phone,
        integration: { type: 'string', enum: ['WHATSAPP-BAILEYS'] },
        ...settingsSchema.properties,
        proxyHost: proxySchema.properties.host,
        proxyPort: { type: ['string', 'integer'], pattern: '^[0-9]{1,5}$', minimum: 1, maximum: 65535 },
        proxyProtocol: { type: 'string', enum: ['http', 'socks5'] },
        proxyUsername: proxySchema.properties.username,
        proxyPassword: proxySchema.properties.password,
        webhook: {
          type: 'object',
          properties: {
            enabled: S.bool,
            url: S.url,
            byEvents: S.bool,
            base64: S.bool,
            headers: webhookSchema.properties.headers,
            events: webhookSchema.properties.events,
          },
        },
      },
    },
    handler: async (ctx) => {
      const b = ctx.body
      const settings = checkSettings(Object.fromEntries(Object.keys(DEFAULT_SETTINGS).filter((k) => k in b).map((k) => [k, b[k]])))
      let proxy = null
      if (b.proxyHost) {
        const port = Number(b.proxyPort)
        if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ApiError(400, 'invalid_request', 'proxyPort must be 1..65535')
        proxy = { protocol: b.proxyProtocol ?? 'http', host: b.proxyHost, port, ...(b.proxyUsername ? { username: b.proxyUsername } : {}), ...(b.proxyPassword ? { password: b.proxyPassword } : {}) }
      }
      let created
      let hook = null
      await ctx.db.tx(async (q) => {
        created = await ctx.gateway.create({ name: b.instanceName, token: b.token, settings, proxy }, q)
        if (b.webhook?.url && b.webhook.enabled !== false) hook = await ctx.webhooks.setEvolution(created.row, b.webhook, q)
      })
      const row = created.row
      const body = {
        instance: { instanceName: row.name, instanceId: row.id, integration: 'WHATSAPP-BAILEYS', webhookWaBusiness: null, accessTokenWaBusiness: '', status: 'close' },
        hash: created.token,
        webhook: { webhookUrl: hook?.url ?? '', webhookHeaders: hook ? JSON.parse(hook.headers) : {}, webhookByEvents: Boolean(hook?.by_events), webhookBase64: Boolean(hook?.base64) },
        websocket: {},
        rabbitmq: {},
        nats: {},
        sqs: {},
        settings: evolutionSettings(row),
        qrcode: {},
      }
      if (b.qrcode) {
        try {
          body.qrcode = await evolutionConnect(ctx, row, b.number)
        } catch (error) {
          // Evolution deletes the half-made instance on any error; the row goes (soft) too.
          await ctx.gateway.remove(await ctx.gateway.rowById(row.id)).catch(() => {})
          throw error
        }
      }
      return { status: 201, body }
    },
  },
  {
    method: 'GET',
    path: '/instance/connect/{instanceName}',
    auth: 'instance',
    format: 'evolution',
    tag: 'evolution',
    params: evoName,
    query: { type: 'object', properties: { number: S.phone } },
    summary: 'Evolution: connect; `{pairingCode, code, base64, count}`, or the state when already open.',
    handler: async (ctx) => ({ body: await evolutionConnect(ctx, await ctx.instance(ctx.params.instanceName), ctx.query.number) }),
  },
  {
    method: 'GET',
    path: '/instance/connectionState/{instanceName}',
    auth: 'instance',
    format: 'evolution',
    tag: 'evolution',
    params: evoName,
    summary: 'Evolution: `{instance: {instanceName, state}}` (open, connecting, close); read-only.',
    handler: async (ctx) => {
      const row = await ctx.instance(ctx.params.instanceName)
      return { body: { instance: { instanceName: row.name, state: evolutionState(row.state) } } }
    },
  },
  ...['POST', 'PUT'].map((method) => ({
    method,
    path: '/instance/restart/{instanceName}',
    auth: 'instance',
    format: 'evolution',
    tag: 'evolution',
    params: evoName,
    summary: 'Evolution: restart the session (400 when the instance is closed and not paired).',
    handler: async (ctx) => {
      const row = await ctx.instance(ctx.params.instanceName)
      if (!row.jid) throw new ApiError(400, 'not_paired', `The "${row.name}" instance is not connected`)
      await ctx.gateway.restart(row)
      const current = await ctx.gateway.rowById(row.id)
      return { body: { instance: { instanceName: row.name, state: evolutionState(current.state) } } }
    },
  })),
  {
    method: 'DELETE',
    path: '/instance/logout/{instanceName}',
    auth: 'instance',
    format: 'evolution',
    tag: 'evolution',
    params: evoName,
    summary: 'Evolution: log the device out (400 when it is not paired).',
    handler: async (ctx) => {
      const row = await ctx.instance(ctx.params.instanceName)
      if (!row.jid) throw new ApiError(400, 'not_paired', `The "${row.name}" instance is not connected`)
      await ctx.gateway.logout(row)
      return { body: evolutionOk('Instance logged out') }
    },
  },
  {
    method: 'DELETE',
    path: '/instance/delete/{instanceName}',
    auth: 'instance',
    format: 'evolution',
    tag: 'evolution',
    params: evoName,
    summary: 'Evolution: delete (here a soft delete: the row stays with its delete time, the keys are wiped).',
    handler: async (ctx) => {
      await ctx.gateway.remove(await ctx.instance(ctx.params.instanceName))
      return { body: evolutionOk('Instance deleted') }
    },
  },
  {
    method: 'GET',
    path: '/instance/fetchInstances',
    auth: 'any',
    format: 'evolution',
    tag: 'evolution',
    query: { type: 'object', properties: { instanceName: S.name, instanceId: { type: 'string', maxLength: 64 } } },
    summary: 'Evolution: the instances (an instance token sees its own); never a token.',
    handler: async (ctx) => {
      let rows = await ctx.gateway.list()
      if (ctx.auth.kind === 'instance') rows = rows.filter((row) => row.id === ctx.auth.instanceId)
      if (ctx.query.instanceName) rows = rows.filter((row) => row.name === ctx.query.instanceName)
      if (ctx.query.instanceId) rows = rows.filter((row) => row.id === ctx.query.instanceId)
      return { body: await Promise.all(rows.map((row) => evolutionInstanceRow(ctx, row))) }
    },
  },
  {
    method: 'POST',
    path: '/settings/set/{instanceName}',
    auth: 'instance',
    format: 'evolution',
    tag: 'evolution',
    params: evoName,
    body: { ...settingsSchema, additionalProperties: true },
    summary: 'Evolution: set the settings.',
    handler: async (ctx) => {
      const row = await ctx.instance(ctx.params.instanceName)
      const known = Object.fromEntries(Object.keys(DEFAULT_SETTINGS).filter((k) => k in ctx.body).map((k) => [k, ctx.body[k]]))
      const settings = checkSettings({ ...JSON.parse(row.settings), ...known })
      const updated = await ctx.gateway.update(row, { settings: JSON.stringify(settings) })
      return { status: 201, body: { settings: { instanceName: row.name, settings: evolutionSettings(updated) } } }
    },
  },
  {
    method: 'GET',
    path: '/settings/find/{instanceName}',
    auth: 'instance',
    format: 'evolution',
    tag: 'evolution',
    params: evoName,
    summary: 'Evolution: the settings.',
    handler: async (ctx) => ({ body: evolutionSettings(await ctx.instance(ctx.params.instanceName)) }),
  },
  {
    method: 'POST',
    path: '/proxy/set/{instanceName}',
    auth: 'instance',
    format: 'evolution',
    tag: 'evolution',
    params: evoName,
    body: {
      type: 'object',
      required: ['enabled'],
      properties: {
        enabled: S.bool,
        host: proxySchema.properties.host,
        port: { type: ['string', 'integer'], pattern: '^[0-9]{1,5}$', minimum: 1, maximum: 65535 },
        protocol: { type: 'string', enum: ['http', 'socks5'] },
        username: proxySchema.properties.username,
        password: proxySchema.properties.password,
      },
    },
    summary: 'Evolution: set or disable the proxy (fails closed; never falls back to a direct connection).',
    handler: async (ctx) => {
      const row = await ctx.instance(ctx.params.instanceName)
      const b = ctx.body
      if (!b.enabled) {
        await ctx.gateway.update(row, { proxy: null })
        return { status: 201, body: { enabled: false, host: '', port: '', protocol: '', username: '', password: '' } }
      }
      const port = Number(b.port)
      if (!b.host || !Number.isInteger(port) || port < 1 || port > 65535) throw new ApiError(400, 'invalid_request', 'an enabled proxy needs host and port 1..65535')
      const proxy = { protocol: b.protocol ?? 'http', host: b.host, port, ...(b.username ? { username: b.username } : {}), ...(b.password ? { password: b.password } : {}) }
      const updated = await ctx.gateway.update(row, { proxy: JSON.stringify(proxy) })
      if (ctx.gateway.runtime(updated) && updated.jid) await ctx.gateway.restart(updated).catch(() => {})
      return { status: 201, body: { enabled: true, host: proxy.host, port: String(port), protocol: proxy.protocol, username: proxy.username ?? '', password: proxy.password ? '********' : '' } }
    },
  },
  {
    method: 'GET',
    path: '/proxy/find/{instanceName}',
    auth: 'instance',
    format: 'evolution',
    tag: 'evolution',
    params: evoName,
    summary: 'Evolution: the proxy (the password is never shown).',
    handler: async (ctx) => {
      const row = await ctx.instance(ctx.params.instanceName)
      const proxy = row.proxy ? JSON.parse(row.proxy) : null
      if (!proxy) return { body: { enabled: false, host: '', port: '', protocol: '', username: '', password: '' } }
      return { body: { enabled: true, host: proxy.host, port: String(proxy.port), protocol: proxy.protocol, username: proxy.username ?? '', password: proxy.password ? '********' : '' } }
    },
  },
]

// ------------------------------------------------------------------------------------------
// walink events of this feature, and their Evolution mapping

export default {
  name: 'instances',
  routes: [...routes, ...evolutionRoutes],
  clientEvents: {
    async pairingCode(runtime, event, gw, q) {
      await gw.emit(q, runtime.id, 'instance.pairing_code', { code: event.code })
    },
    async paired(runtime, event, gw, q) {
      await q.run('UPDATE instances SET jid = ?, lid = ?, platform = ?, autostart = 1 WHERE id = ?', event.jid, event.lid ?? null, event.platform ?? null, runtime.id)
      await gw.emit(q, runtime.id, 'instance.paired', { jid: event.jid, lid: event.lid ?? null, platform: event.platform ?? null })
    },
  },
  evolutionEvents: {
    'instance.created': (data, instance) => [['INSTANCE_CREATE', { instanceName: data.name, instanceId: instance.id }]],
    'instance.deleted': (data, instance) => [
      ['INSTANCE_DELETE', { instanceName: data.name, instanceId: instance.id }],
      ['REMOVE_INSTANCE', { instanceName: data.name, instanceId: instance.id }],
    ],
    'instance.qr': (data, instance) => [['QRCODE_UPDATED', { qrcode: { instance: instance.name, pairingCode: null, code: data.qr, base64: data.png } }]],
    'instance.pairing_code': (data, instance) => [['QRCODE_UPDATED', { qrcode: { instance: instance.name, pairingCode: data.code, code: null, base64: null } }]],
    'instance.state': (data, instance) => [
      [
        'CONNECTION_UPDATE',
        {
          instance: instance.name,
          wuid: instance.jid ? `${instance.jid.split('@')[0].split(':')[0]}@s.whatsapp.net` : undefined,
          profileName: undefined,
          profilePictureUrl: null,
          state: evolutionState(data.state),
          statusReason: data.state === 'connected' ? 200 : undefined,
          reason: data.reason,
        },
      ],
    ],
    'instance.logged_out': (data, instance) => [['LOGOUT_INSTANCE', { instance: instance.name, reason: data.reason }]],
  },
}
