// Health, metrics, the OpenAPI document, the page at `/`, and the event stream (SSE).
import { readFileSync } from 'node:fs'

import { nativePayload } from '../events.js'
import { S } from '../http/schema.js'

const PAGE = readFileSync(new URL('../../public/index.html', import.meta.url), 'utf8')
const STREAM_REPLAY_MAX = 1000
const STREAM_PING_MS = 15_000

const routes = [
  {
    method: 'GET',
    path: '/',
    auth: 'public',
    tag: 'system',
    summary: 'The page: instances live, create, pair (QR or code), recent messages.',
    handler: () => ({ raw: PAGE, contentType: 'text/html; charset=utf-8', headers: { 'cache-control': 'no-store', 'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'" } }),
  },
  {
    method: 'GET',
    path: '/health',
    auth: 'public',
    tag: 'system',
    summary: 'Liveness and readiness: the database answers; counts by state.',
    handler: async (ctx) => {
      await ctx.db.get('SELECT 1 AS ok')
      const cluster = ctx.gateway.cluster ? { worker: ctx.gateway.cluster.workerId, leaseValid: ctx.gateway.cluster.leaseValid(), owned: ctx.gateway.cluster.ownedCount } : undefined
      return { body: { status: 'ok', uptimeS: Math.round((Date.now() - ctx.metrics.started) / 1000), instances: await ctx.gateway.counts(), webhookQueue: await ctx.dispatcher.queueDepth(), version: ctx.version, ...(cluster ? { cluster } : {}) } }
    },
  },
  {
    method: 'GET',
    path: '/metrics',
    auth: 'public',
    rateLimited: true,
    tag: 'system',
    summary: 'Prometheus metrics (labels bounded: route patterns, states).',
    handler: async (ctx) => ({
      raw: ctx.metrics.render({ counts: await ctx.gateway.counts(), queueDepth: await ctx.dispatcher.queueDepth(), version: ctx.version, streams: ctx.events.subscriberCount, cluster: ctx.gateway.cluster?.snapshot() }),
      contentType: 'text/plain; version=0.0.4; charset=utf-8',
    }),
  },
  {
    method: 'GET',
    path: '/openapi.json',
    auth: 'public',
    tag: 'system',
    summary: 'This API as OpenAPI 3.1.',
    handler: (ctx) => ({ body: ctx.openapi }),
  },
  {
    method: 'GET',
    path: '/events',
    auth: 'any',
    tag: 'system',
    query: {
      type: 'object',
      additionalProperties: false,
      properties: { instance: S.name, types: { type: 'string', maxLength: 1024, pattern: '^[a-z_.,]+$' }, since: { type: 'integer', minimum: 0, maximum: 1e15 } },
    },
    summary: 'Server-sent events: every event (or those of one instance, of some types), replayed from `since` or Last-Event-ID, then live.',
    handler: async (ctx) => {
      let instanceId = null
      if (ctx.query.instance) instanceId = (await ctx.instance(ctx.query.instance)).id
      else if (ctx.auth.kind === 'instance') instanceId = ctx.auth.instanceId
      const types = ctx.query.types ? new Set(ctx.query.types.split(',')) : null
      const lastId = Number(ctx.req.headers['last-event-id'])
      const since = Number.isInteger(lastId) && lastId >= 0 ? lastId : ctx.query.since
      const names = new Map((await ctx.db.all('SELECT id, name FROM instances')).map((r) => [r.id, r.name]))
      const nameOf = (id) => names.get(id) ?? null
      const remember = (event) => {
        if (event.type === 'instance.created') names.set(event.instance_id, JSON.parse(event.data).name)
      }
      const wanted = (event) => (!instanceId || event.instance_id === instanceId) && (!types || types.has(event.type))
      const res = ctx.res
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' })
      const write = (event) => res.write(`id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(nativePayload(event, nameOf(event.instance_id)))}\n\n`)
      let replayedTo = 0
      // Live events that arrive during the replay wait, then go out after it in order.
      const held = []
      let replaying = true
      const unsubscribe = ctx.events.subscribe((event) => {
        remember(event)
        if (replaying) held.push(event)
        else if (event.seq > replayedTo && wanted(event)) write(event)
      })
      if (since !== undefined) {
        for (const event of await ctx.events.since(since, { instanceId, limit: STREAM_REPLAY_MAX })) {
          if (wanted(event)) write(event)
          replayedTo = event.seq
        }
      }
      res.write(': live\n\n')
      replaying = false
      for (const event of held) if (event.seq > replayedTo && wanted(event)) write(event)
      const ping = setInterval(() => res.write(': ping\n\n'), STREAM_PING_MS)
      ping.unref?.()
      ctx.req.on('close', () => {
        clearInterval(ping)
        unsubscribe()
      })
      return { stream: true }
    },
  },
]

export default { name: 'system', routes }
