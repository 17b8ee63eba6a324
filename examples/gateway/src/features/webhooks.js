// Webhook configuration (several per instance, native or Evolution format, per-event filters,
// custom headers, a signing secret shown once), the delivery log and replay; Evolution's
// webhook/set and webhook/find.
import { randomBytes } from 'node:crypto'

import { ApiError } from '../errors.js'
import { EVENT_TYPES } from '../events.js'
import { EVOLUTION_EVENTS } from '../evolution.js'
import { randomId } from '../ids.js'
import { S } from '../http/schema.js'
import { RESERVED_HEADERS } from '../webhooks.js'

const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/

function checkHeaders(headers = {}) {
  for (const [name, value] of Object.entries(headers)) {
    if (!HEADER_NAME.test(name)) throw new ApiError(400, 'invalid_request', `header name ${JSON.stringify(name)} is not valid`)
    if (RESERVED_HEADERS.has(name.toLowerCase())) throw new ApiError(400, 'invalid_request', `header ${name} is set by the gateway`)
    if (/[\r\n\0]/.test(value)) throw new ApiError(400, 'invalid_request', `header ${name} has a line break`)
  }
  return headers
}

function checkUrl(url) {
  try {
    const parsed = new URL(url)
    if (!['http:', 'https:'].includes(parsed.protocol) || !parsed.host) throw new Error('scheme')
  } catch {
    throw new ApiError(400, 'invalid_request', `webhook url ${JSON.stringify(url)} is not a valid http(s) URL`)
  }
  return url
}

function checkEvents(events = [], format) {
  const known = format === 'evolution' ? EVOLUTION_EVENTS : EVENT_TYPES
  const upper = format === 'evolution' ? events.map((e) => e.toUpperCase().replace(/[.-]/g, '_')) : events
  for (const e of upper) if (!known.includes(e)) throw new ApiError(400, 'invalid_request', `unknown event ${JSON.stringify(e)}; known: ${known.join(', ')}`)
  return [...new Set(upper)]
}

export function webhookView(hook, { withSecret = false } = {}) {
  return {
    id: hook.id,
    url: hook.url,
    format: hook.format,
    events: JSON.parse(hook.events),
    headers: Object.fromEntries(Object.keys(JSON.parse(hook.headers)).map((k) => [k, '(set)'])),
    enabled: Boolean(hook.enabled),
    byEvents: Boolean(hook.by_events),
    base64: Boolean(hook.base64),
    createdAt: new Date(hook.created_at).toISOString(),
    ...(withSecret ? { secret: hook.secret } : {}),
  }
}

/** Webhook rows; used by the instance routes too (a webhook given at create). `q`: the caller's transaction. */
export function webhookStore(db) {
  const inTx = (q, fn) => (q ? fn(q) : db.tx(fn))
  return {
    create(row, { url, events = [], headers = {}, format = 'native', byEvents = false, base64 = false }, q) {
      const id = randomId('wh')
      const values = [id, row.id, checkUrl(url), format, JSON.stringify(checkEvents(events, format)), JSON.stringify(checkHeaders(headers)), `whsec_${randomBytes(24).toString('base64url')}`, byEvents ? 1 : 0, base64 ? 1 : 0, Date.now()]
      return inTx(q, async (t) => {
        await t.run('INSERT INTO webhooks (id, instance_id, url, format, events, headers, secret, enabled, by_events, base64, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)', ...values)
        return t.get('SELECT * FROM webhooks WHERE id = ?', id)
      })
    },
    /** Evolution's one webhook per instance: created or replaced. */
    setEvolution(row, { url, enabled = true, headers = {}, byEvents = false, base64 = false, events = [] }, q) {
      return inTx(q, async (t) => {
        const existing = await t.get("SELECT * FROM webhooks WHERE instance_id = ? AND format = 'evolution' ORDER BY created_at LIMIT 1", row.id)
        if (!existing) {
          const hook = await this.create(row, { url, events, headers, format: 'evolution', byEvents, base64 }, t)
          if (!enabled) await t.run('UPDATE webhooks SET enabled = 0 WHERE id = ?', hook.id)
          return t.get('SELECT * FROM webhooks WHERE id = ?', hook.id)
        }
        await t.run('UPDATE webhooks SET url = ?, events = ?, headers = ?, enabled = ?, by_events = ?, base64 = ? WHERE id = ?', checkUrl(url), JSON.stringify(checkEvents(events, 'evolution')), JSON.stringify(checkHeaders(headers)), enabled ? 1 : 0, byEvents ? 1 : 0, base64 ? 1 : 0, existing.id)
        return t.get('SELECT * FROM webhooks WHERE id = ?', existing.id)
      })
    },
  }
}

const hookParams = { name: S.name, id: { type: 'string', minLength: 1, maxLength: 64, pattern: '^wh_[0-9a-f]+$' } }

async function hookOf(ctx) {
  const row = await ctx.instance()
  const hook = await ctx.db.get('SELECT * FROM webhooks WHERE id = ? AND instance_id = ?', ctx.params.id, row.id)
  if (!hook) throw new ApiError(404, 'not_found', `webhook ${ctx.params.id} not found`)
  return hook
}

const webhookBody = {
  type: 'object',
  additionalProperties: false,
  required: ['url'],
  properties: {
    url: S.url,
    format: { type: 'string', enum: ['native', 'evolution'] },
    events: { type: 'array', maxItems: 64, items: { type: 'string', minLength: 1, maxLength: 64 } },
    headers: { type: 'object', maxProperties: 32, additionalProperties: { type: 'string', maxLength: 4096 } },
    byEvents: S.bool,
    base64: S.bool,
  },
}

const routes = [
  {
    method: 'POST',
    path: '/instances/{name}/webhooks',
    auth: 'instance',
    tag: 'webhooks',
    params: { name: S.name },
    body: webhookBody,
    summary: 'Add a webhook; answers with its signing secret (shown once).',
    handler: async (ctx) => ({ status: 201, body: webhookView(await ctx.webhooks.create(await ctx.instance(), ctx.body), { withSecret: true }) }),
  },
  {
    method: 'GET',
    path: '/instances/{name}/webhooks',
    auth: 'instance',
    tag: 'webhooks',
    params: { name: S.name },
    summary: "The instance's webhooks (header values and secrets hidden).",
    handler: async (ctx) => ({ body: { webhooks: (await ctx.db.all('SELECT * FROM webhooks WHERE instance_id = ? ORDER BY created_at', (await ctx.instance()).id)).map((h) => webhookView(h)) } }),
  },
  {
    method: 'DELETE',
    path: '/instances/{name}/webhooks/{id}',
    auth: 'instance',
    tag: 'webhooks',
    params: hookParams,
    summary: 'Remove a webhook (its pending deliveries are dropped).',
    handler: async (ctx) => {
      const hook = await hookOf(ctx)
      await ctx.db.tx(async (q) => {
        await q.run('DELETE FROM deliveries WHERE webhook_id = ?', hook.id)
        await q.run('DELETE FROM webhooks WHERE id = ?', hook.id)
      })
      return { body: { deleted: hook.id } }
    },
  },
  {
    method: 'GET',
    path: '/instances/{name}/webhooks/{id}/deliveries',
    auth: 'instance',
    tag: 'webhooks',
    params: hookParams,
    query: { type: 'object', additionalProperties: false, properties: { status: { type: 'string', enum: ['pending', 'delivered', 'dead'] }, limit: { type: 'integer', minimum: 1, maximum: 500 } } },
    summary: 'The delivery log, newest first.',
    handler: async (ctx) => {
      const hook = await hookOf(ctx)
      const args = [hook.id]
      let where = 'd.webhook_id = ?'
      if (ctx.query.status) (where += ' AND d.status = ?'), args.push(ctx.query.status)
      const rows = await ctx.db.all(`SELECT d.*, e.id AS event_id, e.type AS event_type FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE ${where} ORDER BY d.id DESC LIMIT ?`, ...args, ctx.query.limit ?? 100)
      return {
        body: {
          deliveries: rows.map((d) => ({ id: d.id, eventId: d.event_id, eventType: d.event_type, kind: d.kind, status: d.status, attempts: d.attempts, lastStatus: d.last_status, lastError: d.last_error, nextAt: d.status === 'pending' ? new Date(d.next_at).toISOString() : null, updatedAt: new Date(d.updated_at).toISOString() })),
        },
      }
    },
  },
  {
    method: 'POST',
    path: '/instances/{name}/webhooks/{id}/deliveries/{delivery}/replay',
    auth: 'instance',
    tag: 'webhooks',
    params: { ...hookParams, delivery: { type: 'string', pattern: '^[0-9]{1,15}$' } },
    summary: 'Deliver again (the same event id and body, a new timestamp and signature).',
    handler: async (ctx) => {
      const hook = await hookOf(ctx)
      const delivery = await ctx.db.get('SELECT * FROM deliveries WHERE id = ? AND webhook_id = ?', Number(ctx.params.delivery), hook.id)
      if (!delivery) throw new ApiError(404, 'not_found', `delivery ${ctx.params.delivery} not found`)
      await ctx.dispatcher.replay(delivery.id)
      return { status: 202, body: { replayed: delivery.id } }
    },
  },
]

const evoName = { instanceName: S.name }

function evolutionWebhookView(hook, row) {
  if (!hook) return null
  return {
    id: hook.id,
    url: hook.url,
    headers: JSON.parse(hook.headers),
    enabled: Boolean(hook.enabled),
    events: JSON.parse(hook.events),
    webhookByEvents: Boolean(hook.by_events),
    webhookBase64: Boolean(hook.base64),
    createdAt: new Date(hook.created_at).toISOString(),
    updatedAt: new Date(hook.created_at).toISOString(),
    instanceId: row.id,
  }
}

const evolutionRoutes = [
  {
    method: 'POST',
    path: '/webhook/set/{instanceName}',
    auth: 'instance',
    format: 'evolution',
    tag: 'evolution',
    params: evoName,
    body: {
      type: 'object',
      required: ['webhook'],
      properties: {
        webhook: {
          type: 'object',
          required: ['enabled', 'url'],
          properties: {
            enabled: S.bool,
            url: S.url,
            headers: webhookBody.properties.headers,
            byEvents: S.bool,
            base64: S.bool,
            events: webhookBody.properties.events,
          },
        },
      },
    },
    summary: 'Evolution: set the webhook (Evolution payloads, signed; no token in any payload).',
    handler: async (ctx) => {
      const row = await ctx.instance(ctx.params.instanceName)
      const hook = await ctx.webhooks.setEvolution(row, ctx.body.webhook)
      // Evolution signs nothing; here every delivery is signed with this secret (x-walink-signature).
      return { status: 201, body: { ...evolutionWebhookView(hook, row), signingSecret: hook.secret } }
    },
  },
  {
    method: 'GET',
    path: '/webhook/find/{instanceName}',
    auth: 'instance',
    format: 'evolution',
    tag: 'evolution',
    params: evoName,
    summary: 'Evolution: the webhook.',
    handler: async (ctx) => {
      const row = await ctx.instance(ctx.params.instanceName)
      return { body: evolutionWebhookView(await ctx.db.get("SELECT * FROM webhooks WHERE instance_id = ? AND format = 'evolution' ORDER BY created_at LIMIT 1", row.id), row) }
    },
  },
]

export default { name: 'webhooks', routes: [...routes, ...evolutionRoutes] }
