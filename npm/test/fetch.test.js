// The driver's one HTTP call (src/fetch.js) on fake fetch implementations: any status is a
// response, a body over the request's cap is too_large (read no further), a request over its time
// is timed_out, a rejection is network; the request's method, headers and body reach fetch.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { performFetch } from '../src/fetch.js'

const request = (extra = {}) => ({ method: 'GET', url: 'https://mmg.whatsapp.net/v/x?auth=secret', headers: [], maxResponseBytes: 8, timeoutMs: 5_000, ...extra })

test('any status is a response, with its body', async () => {
  const { result, error } = await performFetch(async () => new Response(new Uint8Array([1, 2]), { status: 404 }), request())
  assert.equal(error, null)
  assert.equal(result.status, 404)
  assert.deepEqual([...result.body], [1, 2])
})

test('the request reaches fetch as the core gave it', async () => {
  let seen
  const body = new Uint8Array([9])
  await performFetch(async (url, init) => {
    seen = { url, ...init }
    return new Response(null, { status: 204 })
  }, request({ method: 'POST', headers: [['X-A', '1']], body }))
  assert.equal(seen.url, 'https://mmg.whatsapp.net/v/x?auth=secret')
  assert.equal(seen.method, 'POST')
  assert.deepEqual(seen.headers, [['X-A', '1']])
  assert.equal(seen.body, body)
  assert.ok(seen.signal instanceof AbortSignal)
})

test('a body over the cap is too_large, whether announced or streamed', async () => {
  const announced = await performFetch(async () => new Response(new Uint8Array(9), { status: 200 }), request())
  assert.deepEqual(announced.result, { error: 'too_large' })
  assert.equal(announced.error.code, 'fetch_failed')
  let pulled = 0
  const stream = new ReadableStream({
    pull(controller) {
      pulled++
      controller.enqueue(new Uint8Array(4))
    },
  })
  const streamed = await performFetch(async () => new Response(stream, { status: 200 }), request())
  assert.deepEqual(streamed.result, { error: 'too_large' })
  assert.ok(pulled <= 4, `stopped reading (${pulled} chunks)`)
})

test('a failure is network, a request over its time timed_out; no query in the message', async () => {
  const offline = await performFetch(async () => {
    throw new Error('offline')
  }, request())
  assert.deepEqual(offline.result, { error: 'network' })
  assert.equal(offline.error.fetchError, 'network')
  assert.ok(!offline.error.message.includes('secret'))
  const slow = await performFetch(
    (url, init) => new Promise((resolve, reject) => init.signal.addEventListener('abort', () => reject(init.signal.reason))),
    request({ timeoutMs: 20 }),
  )
  assert.deepEqual(slow.result, { error: 'timed_out' })
})
