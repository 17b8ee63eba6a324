// Round trips to PostgreSQL per received message: one gateway (in this process, on a scratch
// PostgreSQL server) with one instance paired against walink-sim's mock-server; its phone peer
// sends MESSAGES texts; every `message.received` reaches a webhook receiver. Counts the statements
// the `pg` client sent (each is a round trip: `pg` does not pipeline) and this process's CPU time.
// `node bench/pg-roundtrips.js [MESSAGES]` (default 300); WALINK_MOCK_SERVER picks the mock-server.
import pg from 'pg'

import { postgresForTests } from '../test/postgres.js'
import { inProcessGateway, removeDir, sleep, startMockServer, tempDir, until, webhookReceiver } from '../test/support.js'

const MESSAGES = Number(process.argv[2] ?? 300)
let statements = 0
let byText = new Map()
const query = pg.Client.prototype.query
pg.Client.prototype.query = function counted(...args) {
  statements++
  const text = String(typeof args[0] === 'string' ? args[0] : args[0]?.text).replace(/\s+/g, ' ').slice(0, 90)
  byText.set(text, (byText.get(text) ?? 0) + 1)
  return query.apply(this, args)
}

const mock = await startMockServer({ seed: 5 })
const server = await postgresForTests()
const dir = tempDir('walink-gw-rt-')
const hooks = await webhookReceiver()
let gw
try {
  gw = await inProcessGateway(mock, dir, { databaseUrl: await server.createDatabase(`rt_${process.pid}`) })
  const [me, peer] = ['15557000001', '15557000002']
  for (const phone of [me, peer]) await mock.control('POST', '/accounts', { phone, name: phone })
  await gw.api('POST', '/instances', { name: 'rt', webhook: { url: `${hooks.url}/rt`, events: ['message.received'] } })
  const { body } = await gw.api('POST', '/instances/rt/connect', {})
  await mock.control('POST', `/accounts/${me}/scan`, { qr: body.qr })
  await until(async () => (await gw.api('GET', '/instances/rt')).body.state === 'connected', 'connected')
  await sleep(3000) // post-login work settles
  const received = () => hooks.received.filter((h) => h.body.type === 'message.received').length
  const before = { statements, cpu: process.cpuUsage(), at: performance.now() }
  byText = new Map()
  for (let sent = 0; sent < MESSAGES; sent += 100) await mock.control('POST', `/accounts/${peer}/send`, { to: me, text: `m${sent}`, count: Math.min(100, MESSAGES - sent) })
  await until(() => received() >= MESSAGES, 'every message at the webhook', 600_000, 50)
  await sleep(500) // the deliveries' own bookkeeping
  const cpu = process.cpuUsage(before.cpu)
  const cpuSeconds = (cpu.user + cpu.system) / 1e6
  const n = statements - before.statements
  for (const [text, count] of [...byText].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log(`${(count / MESSAGES).toFixed(2).padStart(6)} per message  ${text}`)
  console.log(`${MESSAGES} messages phone -> webhook on PostgreSQL: ${n} statements, ${(n / MESSAGES).toFixed(1)} per message; ${cpuSeconds.toFixed(2)} CPU-s in the gateway's process (receiver included): ${(MESSAGES / cpuSeconds).toFixed(0)} messages per CPU-second; ${((performance.now() - before.at) / 1000).toFixed(1)} s`)
} finally {
  await gw?.stop()
  await hooks.close()
  mock.stop()
  await server.stop()
  removeDir(dir)
}
