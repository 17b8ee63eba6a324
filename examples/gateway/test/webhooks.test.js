// The webhook dispatcher on its own (no WhatsApp session needed): the per-host cap on concurrent
// deliveries holds, and deliveries pending when the gateway stops go out after it starts again.
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { after, test } from 'node:test'

import { inProcessGateway, ok, removeDir, tempDir, until } from './support.js'

// No instance connects in these tests: the WhatsApp URLs point at a closed port.
const NOWHERE = { url: 'ws://127.0.0.1:9/ws/chat', controlUrl: 'http://127.0.0.1:9' }
const dir = tempDir()
after(() => removeDir(dir))

/** A receiver that holds each request `holdMs` and records the most it held at once. */
async function slowReceiver(holdMs) {
  const seen = []
  const stats = { now: 0, max: 0 }
  const server = createServer((req, res) => {
    stats.now++
    stats.max = Math.max(stats.max, stats.now)
    const chunks = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', () =>
      setTimeout(() => {
        stats.now--
        seen.push(JSON.parse(Buffer.concat(chunks).toString()))
        res.writeHead(204).end()
      }, holdMs),
    )
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${server.address().port}`, seen, stats, close: () => new Promise((resolve) => server.close(resolve)) }
}

const emit = async (gw, name, n, from = 0) => {
  const row = await gw.gateway.instance(name)
  await gw.db.tx(async (q) => {
    for (let i = from; i < from + n; i++) await gw.gateway.emit(q, row.id, 'message.received', { id: `m${i}`, chat: '1@s.whatsapp.net', text: `n${i}` })
  })
}

test('at most webhookPerHost deliveries in flight per receiving host', { timeout: 60_000 }, async () => {
  const receiver = await slowReceiver(150)
  const gw = await inProcessGateway(NOWHERE, dir, { webhookPerHost: 2, dbPath: `${dir}/cap.sqlite` })
  try {
    await ok(gw.api('POST', '/instances', { name: 'cap', webhook: { url: `${receiver.url}/h` } }), 201)
    await emit(gw, 'cap', 10)
    await until(() => receiver.seen.length === 10, 'ten deliveries')
    assert.equal(receiver.stats.max, 2)
  } finally {
    await gw.stop()
    await receiver.close()
  }
})

test('deliveries pending at a stop go out after the next start, each event once or more, none lost', { timeout: 60_000 }, async () => {
  const receiver = await slowReceiver(0)
  let gw = await inProcessGateway(NOWHERE, dir, { dbPath: `${dir}/restart.sqlite` })
  await ok(gw.api('POST', '/instances', { name: 'later', webhook: { url: `${receiver.url}/h` } }), 201)
  await receiver.close() // the receiver is down: everything stays pending
  await emit(gw, 'later', 5)
  await until(async () => (await gw.db.get("SELECT count(*) AS n FROM deliveries WHERE status = 'pending' AND attempts > 0")).n >= 1, 'failed attempts')
  await gw.stop()
  const back = await slowReceiver(0)
  // The receiver comes back on another port: point the stored webhook at it, as an operator would.
  gw = await inProcessGateway(NOWHERE, dir, { dbPath: `${dir}/restart.sqlite` })
  try {
    await gw.db.run('UPDATE webhooks SET url = ?', `${back.url}/h`)
    gw.dispatcher.kick()
    await until(() => ['n0', 'n1', 'n2', 'n3', 'n4'].every((t) => back.seen.some((b) => b.data.text === t)), 'every event after the restart', 30_000)
  } finally {
    await gw.stop()
    await back.close()
  }
})
