// Shared pieces of the gateway tests: the mock-server, a gateway in this process or as a child
// process, an API client, a webhook receiver that checks signatures, and polling helpers.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import { connect as netConnect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { createHash } from 'node:crypto'

import { startGateway } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { mockServerPath, mockTrustRoot, startMockServer } from '../src/mock.js'
import { postgresForTests } from './postgres.js'

export { mockServerPath, mockTrustRoot, startMockServer }

/** Registers `body` when the mock-server is built; otherwise one failing test (never a silent skip in CI). */
export function withMock(test, body) {
  if (mockServerPath()) return body()
  const required = ['CI', 'WALINK_REQUIRE_MOCK'].some((n) => process.env[n] && process.env[n] !== '0' && process.env[n] !== 'false')
  if (required) {
    test('the mock-server binary is required', () => {
      throw new Error('mock-server is not built: cargo build -p walink-sim --bin mock-server')
    })
  } else {
    console.log('# skipped: mock-server is not built (cargo build -p walink-sim --bin mock-server)')
  }
}

export const tempDir = (prefix = 'walink-gw-') => mkdtempSync(join(tmpdir(), prefix))
export const removeDir = (dir) => rmSync(dir, { recursive: true, force: true })
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
export const API_KEY = 'test-global-key-0123456789'

/**
 * GATEWAY_TEST_DATABASE=postgres runs the same tests with PostgreSQL: each SQLite path a test
 * uses becomes a database of its own on one scratch server (test/postgres.js), so a restart on
 * "the same file" finds the same data.
 */
export const testEngine = process.env.GATEWAY_TEST_DATABASE === 'postgres' ? 'postgres' : 'sqlite'
let server = null
let started = null // the server once it is up (stopped synchronously at exit)
const created = new Map()

/** The database URL standing for the SQLite file `path` (PostgreSQL runs), created once. */
export async function databaseFor(path) {
  if (testEngine !== 'postgres') return null
  server ??= postgresForTests()
  const pg = await server
  started = pg
  if (!created.has(path)) created.set(path, pg.createDatabase(`gw_${createHash('sha256').update(path).digest('hex').slice(0, 16)}`))
  return created.get(path)
}

/** Stops the scratch PostgreSQL server, if this process started one. */
export async function stopTestDatabases() {
  if (server) await (await server).stop()
  server = null
  started = null
  created.clear()
}

// After every test's own clean-up (gateways stopped): the server goes with the process.
process.on('exit', () => started?.stopSync())

/** The configuration of a test gateway against `mock`. */
export async function testConfig(mock, dir, overrides = {}) {
  const dbPath = overrides.dbPath ?? join(dir, 'gateway.sqlite')
  return loadConfig(
    {},
    {
      apiKey: API_KEY,
      port: 0,
      dbPath,
      databaseUrl: await databaseFor(dbPath),
      waUrl: mock.url,
      mediaOrigin: mock.controlUrl,
      clientConfig: { deviceName: 'walink gateway test', trustRoot: mockTrustRoot() },
      heartbeatMs: 60_000,
      sendIntervalMs: 0,
      connectTimeoutMs: 45_000,
      webhookBackoffBaseMs: 100,
      webhookBackoffMaxMs: 1000,
      rateLimitPerMinute: 100_000,
      ...overrides,
    },
  )
}

/** A gateway in this process. */
export async function inProcessGateway(mock, dir, overrides, options) {
  const logs = []
  const gw = await startGateway(await testConfig(mock, dir, overrides), { log: (level, message) => logs.push(`${level} ${message}`), ...options })
  return { ...gw, logs, api: client(gw.url, API_KEY) }
}

/** A mock-server (`seed`), a gateway in this process on a temporary database and a webhook receiver: `{ mock, dir, gw, hooks }`. */
export async function startSuite(seed) {
  const mock = await startMockServer({ seed })
  const dir = tempDir()
  const gw = await inProcessGateway(mock, dir)
  const hooks = await webhookReceiver()
  return { mock, dir, gw, hooks }
}

/** Stops what `startSuite` started (any part of it may be missing: a start that failed half-way). */
export async function stopSuite({ mock, dir, gw, hooks } = {}) {
  await gw?.stop()
  await hooks?.close()
  mock?.stop()
  if (dir) removeDir(dir)
}

/** A gateway as a child process (`bin/gateway.js`), for crash tests; `nodeArgs` go to node before the script. */
export async function childGateway(mock, dir, env = {}, { nodeArgs = [] } = {}) {
  const bin = fileURLToPath(new URL('../bin/gateway.js', import.meta.url))
  const databaseUrl = await databaseFor(join(dir, 'gateway.sqlite'))
  const child = spawn(process.execPath, [...nodeArgs, bin], {
    env: {
      ...process.env,
      GATEWAY_API_KEY: API_KEY,
      GATEWAY_PORT: '0',
      GATEWAY_DB: join(dir, 'gateway.sqlite'),
      GATEWAY_WA_URL: mock.url,
      GATEWAY_MEDIA_ORIGIN: mock.controlUrl,
      GATEWAY_TRUST_ROOT_HEX: Buffer.from(mockTrustRoot()).toString('hex'),
      GATEWAY_SEND_INTERVAL_MS: '0',
      GATEWAY_HEARTBEAT_MS: '1000',
      GATEWAY_WEBHOOK_BACKOFF_BASE_MS: '100',
      GATEWAY_WEBHOOK_BACKOFF_MAX_MS: '1000',
      GATEWAY_RATE_LIMIT: '100000',
      ...(databaseUrl ? { GATEWAY_DATABASE_URL: databaseUrl } : {}),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  const url = await new Promise((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (d) => {
      out += d
      const match = /listening (http:\/\/\S+)/.exec(out)
      if (match) resolve(match[1])
    })
    child.on('exit', (code) => reject(new Error(`gateway exited with ${code}: ${stderr}`)))
  })
  return { child, url, api: client(url, API_KEY), stderr: () => stderr }
}

/** A JSON client: `api(method, path, body, { key })` resolves with `{ status, body, headers }`. */
export function client(base, key) {
  return async function api(method, path, body, options = {}) {
    const headers = { 'content-type': 'application/json' }
    const k = options.key === undefined ? key : options.key
    if (k !== null) headers.apikey = k
    const response = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) })
    const text = await response.text()
    let json
    try {
      json = text ? JSON.parse(text) : undefined
    } catch {
      json = text
    }
    return { status: response.status, body: json, headers: response.headers }
  }
}

/** Asserts `status` and returns the body. */
export async function ok(promise, status = 200) {
  const result = await promise
  assert.equal(result.status, status, `expected ${status}, got ${result.status}: ${JSON.stringify(result.body)}`)
  return result.body
}

/** Polls `fn` until it returns a truthy value; resolves with it. */
export async function until(fn, what, ms = 60_000, every = 50) {
  const deadline = Date.now() + ms
  let last
  for (;;) {
    last = await fn()
    if (last) return last
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(every)
  }
}

/**
 * A webhook receiver on 127.0.0.1 that checks every signature with the secrets it is given and
 * keeps what it got; `down = true` answers 503.
 */
export async function webhookReceiver() {
  const received = []
  const secrets = new Map()
  const state = {
    down: false,
    get bad() {
      return received.filter((entry) => !verify(entry)).length
    },
  }
  const verify = (entry) => {
    const timestamp = entry.headers['x-walink-timestamp']
    const signature = String(entry.headers['x-walink-signature'] ?? '')
    return [...secrets.values()].some((secret) => {
      const want = Buffer.from(`v1=${createHmac('sha256', secret).update(`${timestamp}.${entry.raw}`).digest('hex')}`)
      const got = Buffer.from(signature)
      return want.length === got.length && timingSafeEqual(want, got)
    })
  }
  const server = createServer((req, res) => {
    const chunks = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', () => {
      if (state.down) {
        res.writeHead(503).end()
        return
      }
      const body = Buffer.concat(chunks).toString('utf8')
      const entry = { path: req.url, headers: req.headers, body: JSON.parse(body), raw: body }
      // Checked when read, with the secrets known by then (a webhook's secret may be learnt later).
      Object.defineProperty(entry, 'valid', { get: () => verify(entry) })
      received.push(entry)
      res.writeHead(200).end('ok')
    })
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${server.address().port}`
  return {
    url,
    received,
    state,
    addSecret: (id, secret) => secrets.set(id, secret),
    close: () => new Promise((resolve) => server.close(resolve)),
  }
}

/**
 * An HTTP CONNECT proxy on 127.0.0.1 (a listening http.Server) that tunnels to any target;
 * `targets` holds each tunnel's `host:port`, in order.
 */
export async function connectProxy() {
  const server = createServer()
  server.targets = []
  server.on('connect', (req, socket) => {
    server.targets.push(req.url)
    const [host, port] = req.url.split(':')
    const upstream = netConnect(Number(port), host, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      upstream.pipe(socket)
      socket.pipe(upstream)
    })
    upstream.on('error', () => socket.destroy())
    socket.on('error', () => upstream.destroy())
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return server
}

export const randomName = (prefix = 'i') => `${prefix}-${randomBytes(4).toString('hex')}`
