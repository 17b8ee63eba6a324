// The HTTP layer: a route table (method + path pattern), authentication (the global key or an
// instance token, in `apikey` or `Authorization: Bearer`), per-key rate limits, JSON bodies
// validated against each route's schema, typed errors, and metrics labelled by route pattern.
import { createServer } from 'node:http'

import { ApiError } from '../errors.js'
import { hashToken, tokenMatches } from '../ids.js'
import { check, coerceQuery } from './schema.js'

const MAX_BUCKETS = 10_000

/** A token bucket per key: `perMinute` requests a minute, bursting to `perMinute`. */
export class RateLimiter {
  #buckets = new Map()

  constructor(perMinute) {
    this.perMinute = perMinute
  }

  /** `{ ok, remaining, retryAfterS }` for one request of `key`. */
  take(key, now = Date.now()) {
    let bucket = this.#buckets.get(key)
    if (!bucket) {
      if (this.#buckets.size >= MAX_BUCKETS) this.prune(now, true)
      bucket = { tokens: this.perMinute, at: now }
      this.#buckets.set(key, bucket)
    }
    bucket.tokens = Math.min(this.perMinute, bucket.tokens + ((now - bucket.at) * this.perMinute) / 60_000)
    bucket.at = now
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1
      return { ok: true, remaining: Math.floor(bucket.tokens) }
    }
    return { ok: false, remaining: 0, retryAfterS: Math.ceil(((1 - bucket.tokens) * 60) / this.perMinute) }
  }

  /** Drops full buckets (all of the oldest half when `hard`). */
  prune(now = Date.now(), hard = false) {
    for (const [key, bucket] of this.#buckets) {
      if (now - bucket.at > 60_000 || hard) this.#buckets.delete(key)
      if (hard && this.#buckets.size < MAX_BUCKETS / 2) break
    }
  }
}

/** Compiles `/instances/{name}/x` into a matcher. */
function compile(path) {
  const names = []
  const source = path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{(\w+)\}/g, (_, name) => (names.push(name), '([^/]+)'))
  const regex = new RegExp(`^${source}$`)
  return (pathname) => {
    const match = regex.exec(pathname)
    if (!match) return null
    const params = {}
    names.forEach((name, i) => {
      try {
        params[name] = decodeURIComponent(match[i + 1])
      } catch {
        throw new ApiError(400, 'invalid_request', `path parameter ${name} is not valid percent-encoding`)
      }
    })
    return params
  }
}

/** The error body: native `{ error: { code, message, ... } }`, or Evolution's shape. */
function errorBody(error, format) {
  if (format === 'evolution') {
    const names = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 409: 'Conflict', 421: 'Misdirected Request', 429: 'Too Many Requests', 503: 'Service Unavailable' }
    return { status: error.status, error: names[error.status] ?? 'Internal Server Error', response: { message: [error.message], code: error.code, ...(error.details ?? {}) } }
  }
  return { error: { code: error.code, message: error.message, ...(error.details ?? {}) } }
}

async function readBody(req, limit) {
  const chunks = []
  let size = 0
  for await (const chunk of req) {
    size += chunk.length
    if (size > limit) throw new ApiError(413, 'body_too_large', `the body is larger than ${limit} bytes`)
    chunks.push(chunk)
  }
  if (size === 0) return { raw: null, value: undefined }
  const raw = Buffer.concat(chunks)
  try {
    return { raw, value: JSON.parse(raw.toString('utf8')) }
  } catch {
    throw new ApiError(400, 'invalid_json', 'the body is not valid JSON')
  }
}

/** The header a worker adds to a request it forwards to the instance's owner. */
export const FORWARDED_HEADER = 'x-walink-forwarded-by'

/**
 * The request handler for `routes`. `context` gives `db`, `gateway`, `config`, `metrics`.
 * Each route: `{ method, path, auth: 'public' | 'global' | 'instance' | 'any', format?, query?,
 * body?, handler(ctx) -> { status, body, headers?, raw? } }`.
 */
export function makeHandler(routes, context) {
  const table = routes.map((route) => ({ ...route, match: compile(route.path) }))
  const { config, metrics, db } = context
  const limiter = new RateLimiter(config.rateLimitPerMinute)
  context.limiter = limiter

  async function authenticate(req) {
    const header = req.headers.apikey ?? (/^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1])
    if (header === undefined) return null
    const token = String(header).trim()
    if (config.apiKeyHash && tokenMatches(token, config.apiKeyHash)) return { kind: 'global', key: 'global' }
    const row = await db.get('SELECT id, name, token_hash FROM instances WHERE token_hash = ? AND deleted_at IS NULL', hashToken(token))
    if (row && tokenMatches(token, row.token_hash)) return { kind: 'instance', instanceId: row.id, name: row.name, key: `instance:${row.id}` }
    return { kind: 'invalid' }
  }

  return async function handle(req, res) {
    const started = process.hrtime.bigint()
    let url
    try {
      url = new URL(req.url, 'http://gateway')
    } catch {
      url = new URL('http://gateway/')
    }
    let route = null
    let params = null
    let status = 500
    try {
      for (const candidate of table) {
        if (candidate.method !== req.method && !(req.method === 'HEAD' && candidate.method === 'GET')) continue
        params = candidate.match(url.pathname)
        if (params) {
          route = candidate
          break
        }
      }
      if (!route) throw new ApiError(404, 'not_found', `no route ${req.method} ${url.pathname}`)
      const auth = route.auth === 'public' ? null : await authenticate(req)
      const key = auth?.key ?? `ip:${req.socket.remoteAddress}`
      const forwarded = req.headers[FORWARDED_HEADER] !== undefined
      // A forwarded request was counted by the worker it reached first.
      if ((route.auth !== 'public' || route.rateLimited) && !forwarded) {
        const verdict = limiter.take(key)
        res.setHeader('x-ratelimit-limit', String(config.rateLimitPerMinute))
        res.setHeader('x-ratelimit-remaining', String(verdict.remaining))
        if (!verdict.ok) {
          metrics.rateLimited++
          res.setHeader('retry-after', String(verdict.retryAfterS))
          throw new ApiError(429, 'rate_limited', `more than ${config.rateLimitPerMinute} requests a minute; retry in ${verdict.retryAfterS} s`, { retryAfterS: verdict.retryAfterS })
        }
      }
      if (route.auth !== 'public') {
        if (!auth) throw new ApiError(401, 'unauthorized', 'an API key is required (header apikey or Authorization: Bearer)')
        if (auth.kind === 'invalid') throw new ApiError(401, 'invalid_token', 'the API key or instance token is not valid')
        if (route.auth === 'global' && auth.kind !== 'global') throw new ApiError(403, 'forbidden', 'this route needs the global API key')
      }
      for (const [name, schema] of Object.entries(route.params ?? {})) check(schema, params[name], `path parameter ${name}`)
      const query = coerceQuery(route.query, Object.fromEntries(url.searchParams))
      if (route.query) check(route.query, query, 'query')
      const { raw, value: body } = ['POST', 'PUT', 'PATCH', 'DELETE'].includes(req.method) ? await readBody(req, config.maxBodyBytes) : { raw: null, value: undefined }
      if (route.body) check(route.body, body === undefined ? (route.bodyOptional ? {} : undefined) : body, 'body')
      // Several workers: an instance's request is served by its owner; a new instance goes to the least loaded worker.
      const cluster = context.gateway.cluster
      if (cluster) {
        const instanceName = params.name ?? params.instanceName
        let target = null
        if (route.cluster === 'new') target = await cluster.placement()
        else if (instanceName !== undefined && route.auth !== 'public') target = await cluster.ownerOf(await context.gateway.instance(instanceName))
        if (target && forwarded && route.cluster !== 'new') throw new ApiError(421, 'misdirected', 'this worker does not own the instance (the lease moved); retry')
        if (target && !forwarded) {
          const answer = await cluster.forward(target, req, raw)
          status = answer.status
          res.writeHead(answer.status, answer.headers)
          res.end(req.method === 'HEAD' ? undefined : answer.body)
          return
        }
      }
      const ctx = {
        ...context,
        req,
        res,
        params,
        query,
        body: body ?? {},
        auth,
        /** The path's instance, checked against an instance token. */
        async instance(name = params.name) {
          const row = await context.gateway.instance(name)
          if (auth?.kind === 'instance' && auth.instanceId !== row.id) throw new ApiError(403, 'forbidden', 'this token belongs to another instance')
          return row
        },
      }
      const result = await route.handler(ctx)
      if (result?.stream) {
        status = 200
        return
      }
      status = result?.status ?? 200
      if (result?.raw !== undefined) {
        res.writeHead(status, { 'content-type': result.contentType ?? 'text/plain; charset=utf-8', ...(result.headers ?? {}) })
        res.end(req.method === 'HEAD' ? undefined : result.raw)
      } else {
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...(result?.headers ?? {}) })
        res.end(req.method === 'HEAD' ? undefined : JSON.stringify(result?.body ?? {}))
      }
    } catch (thrown) {
      let error = thrown
      if (!(error instanceof ApiError)) {
        context.log('error', `${req.method} ${url.pathname}: ${thrown?.stack ?? thrown}`)
        error = new ApiError(500, 'internal', `internal error: ${thrown?.message ?? thrown}`)
      }
      status = error.status
      if (!res.headersSent) {
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' })
        res.end(JSON.stringify(errorBody(error, route?.format)))
      } else {
        res.end()
      }
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9
      metrics.observe(req.method === 'HEAD' ? 'GET' : req.method.length <= 7 ? req.method : 'OTHER', route?.path ?? 'unmatched', status, seconds)
    }
  }
}

/** Starts the server on `host:port`; resolves with the node:http server. */
export async function listen(handler, { host, port }) {
  const server = createServer((req, res) => {
    handler(req, res).catch((error) => {
      if (!res.headersSent) res.writeHead(500).end()
      else res.end()
      console.error(error)
    })
  })
  server.keepAliveTimeout = 5000
  server.requestTimeout = 60_000
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, resolve)
  })
  return server
}
