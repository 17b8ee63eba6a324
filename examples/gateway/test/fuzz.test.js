// Property-style fuzzing of the API from its own OpenAPI document: for every operation, requests
// built from the documented schemas (valid values, boundary values, wrong types, missing and extra
// fields, odd path parameters, garbage bodies). Properties: no answer is a 5xx other than the
// documented typed ones (500 connect_failed, 502 rejected, 504 timed_out), every error has a
// code, the process stays up, and afterwards no instance is in an impossible state. Bounded by
// WALINK_GATEWAY_FUZZ_REQUESTS (default 1,500) and a fixed seed (WALINK_GATEWAY_FUZZ_SEED).
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { STATES } from '../src/gateway.js'
import { API_KEY, inProcessGateway, removeDir, startMockServer, tempDir, withMock } from './support.js'

const REQUESTS = Number(process.env.WALINK_GATEWAY_FUZZ_REQUESTS ?? 1500)
const SEED = Number(process.env.WALINK_GATEWAY_FUZZ_SEED ?? 0x5eed)
const TYPED_5XX = new Set(['connect_failed', 'rejected', 'timed_out', 'app_state', 'no_code', 'connection_ended', 'upload_failed'])

/** A small seeded generator (mulberry32). */
function rng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

withMock(test, () => {
  let mock
  let gw
  let dir
  let deadPort
  before(async () => {
    mock = await startMockServer({ seed: 51 })
    await mock.control('POST', '/accounts', { phone: '15555000001', name: 'Fuzz' })
    dir = tempDir()
    gw = await inProcessGateway(mock, dir, { connectTimeoutMs: 3000 })
    const { createServer } = await import('node:net')
    const s = createServer()
    await new Promise((resolve) => s.listen(0, '127.0.0.1', resolve))
    deadPort = s.address().port
    await new Promise((resolve) => s.close(resolve))
  })
  after(async () => {
    await gw?.stop()
    mock?.stop()
    removeDir(dir)
  })

  test(`${REQUESTS} generated requests: no untyped 5xx, no crash, no impossible state`, { timeout: 600_000 }, async () => {
    const random = rng(SEED)
    const pick = (items) => items[Math.floor(random() * items.length)]
    const names = ['fz-a', 'fz-b', 'fz-c']
    for (const name of names) await gw.api('POST', '/instances', { name })
    const doc = (await gw.api('GET', '/openapi.json')).body
    const strings = ['', ' ', 'a', 'fz-a', '15555000001', '15555000001@s.whatsapp.net', '123@g.us', 'ü'.repeat(70), 'x'.repeat(300), '../../etc', '%00', '<script>', '{"a":1}', '-1', '1e309']

    /** A value for `schema`: mostly valid, sometimes a boundary or a wrong type. */
    function value(schema = {}, depth = 0, key = '') {
      const r = random()
      if (r < 0.05) return pick([null, 42, -1, 'str', true, [], {}, 1.5, 1e300])
      const type = [].concat(schema.type ?? 'object')[0]
      if (schema.enum) return r < 0.9 ? pick(schema.enum) : 'not-in-enum'
      if (key === 'host') return '127.0.0.1'
      if (key === 'url') return r < 0.9 ? `http://127.0.0.1:${deadPort}/hook` : 'ftp://x'
      if (key === 'port' || key === 'proxyPort') return r < 0.8 ? deadPort : pick([0, 70000, -5, 'abc'])
      switch (type) {
        case 'string':
          if (key === 'phone' || key === 'number') return pick(['15555000001', '15559999999', '+1 555 000 0001', 'abc'])
          if (key === 'jid' || key === 'chat' || key === 'remoteJid' || key === 'to') return pick(['15555000001@s.whatsapp.net', '15555000002@s.whatsapp.net', '1@g.us', 'bad'])
          return pick(strings)
        case 'integer':
          return pick([0, 1, -1, 7, schema.minimum ?? 0, schema.maximum ?? 100, (schema.maximum ?? 100) + 1, 2 ** 53])
        case 'number':
          return pick([0, 0.5, -3, 1e12])
        case 'boolean':
          return random() < 0.5
        case 'array':
          return depth > 3 ? [] : Array.from({ length: pick([0, 1, 2, 3]) }, () => value(schema.items ?? {}, depth + 1, key))
        case 'object': {
          if (depth > 3) return {}
          const out = {}
          for (const [k, s] of Object.entries(schema.properties ?? {})) if ((schema.required ?? []).includes(k) ? random() < 0.95 : random() < 0.5) out[k] = value(s, depth + 1, k)
          if (random() < 0.1) out.unexpected = 'field'
          return out
        }
        default:
          return null
      }
    }

    const operations = []
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        if (path === '/events') continue // a stream: it never ends by itself (tested in e2e)
        operations.push({ path, method: method.toUpperCase(), op })
      }
    }
    const failures = []
    const counts = {}
    for (let i = 0; i < REQUESTS; i++) {
      const { path, method, op } = pick(operations)
      let url = path.replace(/\{(\w+)\}/g, (_, p) => {
        if (p === 'name' || p === 'instanceName') return encodeURIComponent(random() < 0.8 ? pick(names) : pick(strings))
        if (p === 'jid') return encodeURIComponent(pick(['15555000002@s.whatsapp.net', '1@g.us', 'nope']))
        return encodeURIComponent(pick(['1', 'wh_00', 'x', '7']))
      })
      const query = (op.parameters ?? []).filter((p) => p.in === 'query' && random() < 0.5)
      if (query.length) url += `?${query.map((p) => `${p.name}=${encodeURIComponent(String(value(p.schema, 0, p.name)))}`).join('&')}`
      let body
      if (op.requestBody) {
        const r = random()
        body = r < 0.05 ? '{not json' : r < 0.08 ? '' : JSON.stringify(value(op.requestBody.content['application/json'].schema))
      }
      const key = random() < 0.95 ? API_KEY : pick([null, 'wrong-key-wrong-key'])
      const result = await gw.api(method, url, body, { key })
      counts[result.status] = (counts[result.status] ?? 0) + 1
      const code = result.body?.error?.code ?? result.body?.response?.code
      if (result.status >= 500 && !TYPED_5XX.has(code)) failures.push(`${method} ${url} ${body ?? ''} -> ${result.status} ${JSON.stringify(result.body)}`)
      if (result.status >= 400 && typeof result.body === 'object' && !code) failures.push(`${method} ${url} -> ${result.status} without a code: ${JSON.stringify(result.body)}`)
    }
    console.log(`# fuzz: ${REQUESTS} requests, statuses ${JSON.stringify(counts)}`)
    assert.deepEqual(failures.slice(0, 10), [])
    assert.equal((await gw.api('GET', '/health')).status, 200, 'still up')
    // No impossible state: every state is one of the seven; deleted rows run nothing; a connected
    // row has a session; a session belongs to a live row; logged_out rows hold no keys.
    const rows = await gw.db.all('SELECT * FROM instances')
    for (const row of rows) {
      assert.ok(STATES.includes(row.state), `${row.name}: ${row.state}`)
      if (row.deleted_at) assert.ok(!gw.gateway.runtimes.has(row.id), `${row.name} deleted but running`)
      if (row.state === 'connected') assert.ok(gw.gateway.runtimes.has(row.id), `${row.name} connected without a session`)
      if (row.state === 'logged_out' && !gw.gateway.runtimes.has(row.id)) assert.equal((await gw.db.get('SELECT count(*) AS n FROM records WHERE instance_id = ?', row.id)).n, 0, `${row.name} logged out with keys`)
    }
    for (const id of gw.gateway.runtimes.keys()) assert.ok(rows.some((row) => row.id === id && !row.deleted_at), 'a session without a live row')
  })
})
