// Three gateway workers (child processes) on one PostgreSQL database against the mock-server, the
// simulated phones sending all along:
// - new instances spread over the workers; any worker answers for any instance (forwarding);
// - kill -9 of one worker: its instances log in again on the others within 15 s, and the
//   mock-server never sees two live connections for one of those devices (no `replaced`);
// - SIGSTOP of a worker past its lease, then SIGCONT: its instances moved, each at most one
//   `replaced`, sent to the paused worker's socket and never to the new owner's; the paused worker
//   refused its stale writes, fenced itself and logged nothing in again;
// - PostgreSQL stopped for a few seconds and started again: every instance comes back;
// - every message the phones sent reached the webhook receiver at least once, none undecryptable.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { postgresForTests } from './postgres.js'
import { childGateway, ok, removeDir, sleep, startMockServer, tempDir, until, webhookReceiver, withMock } from './support.js'

const WORKERS = 3
const INSTANCES = 9
const SENDER = '15558000000'
const phoneOf = (i) => `1555800${String(i + 1).padStart(4, '0')}`
const LEASE = { GATEWAY_LEASE_TTL_MS: '5000', GATEWAY_LEASE_RENEW_MS: '1000', GATEWAY_LEASE_MARGIN_MS: '1500' }

withMock(test, () => {
  let mock
  let pg
  let dir
  let hooks
  let databaseUrl
  const workers = []
  let sending = false
  before(async () => {
    mock = await startMockServer({ seed: 33 })
    pg = await postgresForTests()
    databaseUrl = await pg.createDatabase(`cluster_${process.pid}`)
    dir = tempDir()
    hooks = await webhookReceiver()
  })
  after(async () => {
    sending = false
    if (process.exitCode) for (const [i, w] of workers.entries()) console.log(`# worker ${i} log:\n${w.stderr().split('\n').slice(-40).map((l) => `#   ${l}`).join('\n')}`)
    for (const w of workers) {
      w.child.kill('SIGCONT')
      w.child.kill('SIGKILL')
    }
    await hooks?.close()
    mock?.stop()
    await pg?.stop()
    if (dir) removeDir(dir)
  })

  const startWorker = async () => {
    const worker = await childGateway(mock, dir, {
      GATEWAY_DATABASE_URL: databaseUrl,
      GATEWAY_WEBHOOK_TIMEOUT_MS: '3000',
      GATEWAY_RESUME_CONCURRENCY: '8',
      GATEWAY_ADOPT_BATCH: '8',
      GATEWAY_CONNECT_TIMEOUT_MS: '20000',
      ...LEASE,
    })
    workers.push(worker)
    return worker
  }
  const workerId = async (w) => (await ok(w.api('GET', '/health'))).cluster.worker
  const metric = async (w, name) => {
    const text = await (await fetch(`${w.url}/metrics`)).text()
    return text
      .split('\n')
      .filter((line) => line.startsWith(name))
      .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0)
  }
  const devices = async () => (await mock.control('GET', '/device-connections')).devices
  const deviceOf = (jid) => jid.split('@')[0]

  test('three workers: kill -9, a pause past the lease, a database outage', { timeout: 420_000 }, async () => {
    for (let i = 0; i < WORKERS; i++) await startWorker()
    const [entry] = workers
    await mock.control('POST', '/accounts', { phone: SENDER, name: 'Sender' })

    // Instances created through one worker land on the least loaded one; each paired by QR.
    const names = []
    for (let i = 0; i < INSTANCES; i++) {
      const name = `c${i}`
      names.push(name)
      await mock.control('POST', '/accounts', { phone: phoneOf(i), name: `Phone ${i}` })
      const created = await ok(entry.api('POST', '/instances', { name, webhook: { url: `${hooks.url}/hook`, events: ['message.received', 'message.undecryptable'] } }), 201)
      hooks.addSecret(name, created.webhook.secret)
      const { qr } = await ok(entry.api('POST', `/instances/${name}/connect`, {}))
      await mock.control('POST', `/accounts/${phoneOf(i)}/scan`, { qr })
    }
    const instances = async () => (await ok(entry.api('GET', '/instances'))).instances
    await until(async () => (await instances()).every((i) => i.state === 'connected'), 'every instance paired', 120_000)
    const ids = await Promise.all(workers.map(workerId))
    const byWorker = (rows, id) => rows.filter((row) => row.worker === id)
    let rows = await instances()
    for (const id of ids) assert.equal(byWorker(rows, id).length, INSTANCES / WORKERS, `instances spread evenly: ${JSON.stringify(rows.map((r) => r.worker))}`)
    // Any worker answers for any instance: each worker reads each instance's status.
    for (const w of workers) for (const name of names) assert.equal((await ok(w.api('GET', `/instances/${name}`))).name, name)

    // The phones send all along, round robin over the instances.
    const sent = []
    sending = true
    const traffic = (async () => {
      for (let n = 0; sending; n++) {
        const i = n % INSTANCES
        const text = `m${n}-to-${i}`
        try {
          await mock.control('POST', `/accounts/${SENDER}/send`, { to: phoneOf(i), text })
          sent.push(text)
        } catch {
          // the mock-server refused (never expected); not counted as sent
        }
        await sleep(60)
      }
    })()
    const delivered = () => new Set(hooks.received.filter((h) => h.body.type === 'message.received').map((h) => h.body.data.text))
    await until(() => delivered().size >= 20, 'traffic under way', 60_000)

    // --- kill -9 ---
    const victim = workers[1]
    const victimId = ids[1]
    const moved = byWorker(rows, victimId)
    const before = await devices()
    const killedAt = Date.now()
    victim.child.kill('SIGKILL')
    await new Promise((resolve) => victim.child.once('exit', resolve))
    const back = async () => {
      const now = await devices()
      const current = await instances()
      return moved.every((m) => {
        const row = current.find((r) => r.id === m.id)
        const d = now[deviceOf(m.jid)]
        return row.worker !== victimId && row.state === 'connected' && d.live.length === 1 && d.logins > before[deviceOf(m.jid)].logins
      })
    }
    await until(back, 'the killed worker\'s instances connected again on the others', 30_000, 100)
    const failover = (Date.now() - killedAt) / 1000
    console.log(`# kill -9: ${moved.length} instances connected again on the other workers ${failover.toFixed(1)} s after the kill`)
    assert.ok(failover <= 15, `failover took ${failover} s`)
    const afterKill = await devices()
    for (const m of moved) {
      const key = deviceOf(m.jid)
      assert.equal(afterKill[key].replacedTotal, before[key].replacedTotal, `${key}: no second live connection after kill -9`)
    }

    // --- SIGSTOP past the lease, then SIGCONT ---
    const [other, paused] = workers.filter((w) => w !== victim)
    const pausedId = await workerId(paused)
    rows = await instances()
    const stalled = byWorker(rows, pausedId)
    assert.ok(stalled.length > 0, 'the paused worker owns instances')
    const atPause = await devices()
    const pausedConn = Object.fromEntries(stalled.map((m) => [deviceOf(m.jid), atPause[deviceOf(m.jid)].live[0]]))
    paused.child.kill('SIGSTOP')
    await until(async () => {
      const now = await devices()
      const current = await ok(other.api('GET', '/instances'))
      return stalled.every((m) => {
        const d = now[deviceOf(m.jid)]
        const row = current.instances.find((r) => r.id === m.id)
        return row.worker !== pausedId && d.live.length === 1 && d.live[0] !== pausedConn[deviceOf(m.jid)]
      })
    }, 'the paused worker\'s instances taken over', 30_000, 100)
    const newConn = Object.fromEntries(Object.entries(await devices()).map(([key, d]) => [key, d.live[0]]))
    paused.child.kill('SIGCONT')
    // The resumed worker notices at once (its own clock), drops its sockets and fences itself.
    await until(async () => (await metric(paused, 'walink_gateway_worker_fences_total')) >= 1, 'the paused worker fenced itself', 20_000)
    await sleep(3000)
    const afterPause = await devices()
    for (const m of stalled) {
      const key = deviceOf(m.jid)
      const replaced = afterPause[key].replaced.filter((r) => r.at >= 0 && !atPause[key].replaced.some((old) => old.conn === r.conn))
      assert.ok(replaced.length <= 1, `${key}: at most one replaced (${JSON.stringify(replaced)})`)
      for (const r of replaced) assert.equal(r.conn, pausedConn[key], `${key}: the replaced socket was the paused worker's`)
      assert.deepEqual(afterPause[key].live, [newConn[key]], `${key}: the new owner's connection is the only one, never replaced`)
      assert.equal(afterPause[key].logins, atPause[key].logins + 1, `${key}: the paused worker logged nothing in again`)
    }
    const refused = await metric(paused, 'walink_gateway_fenced_writes_total')
    const byEpoch = await metric(paused, 'walink_gateway_fenced_writes_total{by="epoch"}')
    const fencedConnections = await metric(paused, 'walink_gateway_fenced_connections_total')
    const replacedCount = stalled.reduce((n, m) => n + afterPause[deviceOf(m.jid)].replacedTotal - atPause[deviceOf(m.jid)].replacedTotal, 0)
    console.log(`# SIGSTOP: ${stalled.length} instances moved (${replacedCount} replaced, each on the paused worker's socket); after SIGCONT the paused worker refused ${refused} stale write(s) (${byEpoch} by the epoch check, the rest by its own deadline) and ended ${fencedConnections} connection(s) as fenced`)
    assert.ok(refused >= 1, 'the paused worker\'s stale writes were refused')
    rows = await instances()
    for (const m of stalled) assert.notEqual(rows.find((r) => r.id === m.id).worker, pausedId)

    // --- PostgreSQL down for a few seconds ---
    const outageAt = Date.now()
    const atOutage = await devices()
    pg.stopServer('fast')
    await sleep(4000)
    pg.startServer()
    await until(async () => {
      const now = await devices()
      const current = await ok(other.api('GET', '/instances')).catch(() => null)
      return current && current.instances.every((row) => {
        const d = now[deviceOf(row.jid)]
        return row.state === 'connected' && d?.live.length === 1 && d.logins > atOutage[deviceOf(row.jid)].logins
      })
    }, 'every instance back after the outage', 90_000, 250)
    console.log(`# PostgreSQL down 4 s: every instance connected again ${((Date.now() - outageAt) / 1000).toFixed(1)} s after it stopped`)

    // --- every message delivered at least once, none undecryptable ---
    sending = false
    await traffic
    await until(() => sent.every((text) => delivered().has(text)), `every one of ${sent.length} messages delivered`, 90_000, 250)
    const undecryptable = hooks.received.filter((h) => h.body.type === 'message.undecryptable')
    assert.deepEqual(undecryptable.map((h) => h.body.data), [], 'none undecryptable')
    assert.equal(hooks.state.bad, 0, 'every delivery signed')
    const copies = hooks.received.filter((h) => h.body.type === 'message.received').length
    console.log(`# ${sent.length} messages sent by the phones, all delivered (${copies} deliveries: ${copies - delivered().size} duplicates)`)
    for (const w of workers) if (w !== victim) w.child.kill('SIGTERM')
  })
})
