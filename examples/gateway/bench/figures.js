// The README's figures, measured against walink-sim's mock-server on this machine:
// - memory per connected idle instance in the gateway process (JS heap + external + wasm, and RSS,
//   SQLite included), over N instances;
// - time to pair (QR: connect call to connected; code: connect call to connected);
// - time to resume N instances after a restart (a new gateway on the same database until all
//   are connected);
// - sendText latency p50/p99 (HTTP request to answer, acknowledged by the server).
// `node --expose-gc bench/figures.js [instances]` (default 1000; WALINK_MOCK_SERVER picks the binary).
import { randomBytes } from 'node:crypto'

import { inProcessGateway, removeDir, sleep, startMockServer, tempDir, until } from '../test/support.js'

const N = Number(process.argv[2] ?? 1000)
const SENDS = Number(process.env.WALINK_BENCH_SENDS ?? 300)
const gc = globalThis.gc ?? (() => {})
const mib = (bytes) => (bytes / 1024 / 1024).toFixed(1)

function memory() {
  gc()
  gc()
  const m = process.memoryUsage()
  return { heap: m.heapUsed, external: m.external, rss: m.rss }
}

const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

const mock = await startMockServer({ seed: 61 })
const dir = tempDir('walink-gw-bench-')
const overrides = { resumeConcurrency: 32, connectTimeoutMs: 120_000, heartbeatMs: 3_600_000 }
let gw = await inProcessGateway(mock, dir, overrides)
const phone = (i) => `1556${String(i).padStart(7, '0')}`
await sleep(200)
const base = memory()

// Pair N instances by QR, 16 at a time; the first 20 timed one by one.
const pairTimes = []
async function pairOne(i) {
  const name = `b${i}`
  await mock.control('POST', '/accounts', { phone: phone(i), name })
  await gw.api('POST', '/instances', { name })
  const started = performance.now()
  const { body } = await gw.api('POST', `/instances/${name}/connect`, {})
  await mock.control('POST', `/accounts/${phone(i)}/scan`, { qr: body.qr })
  await until(async () => (await gw.api('GET', `/instances/${name}`)).body.state === 'connected', `${name} connected`, 120_000, 20)
  return performance.now() - started
}
for (let i = 0; i < Math.min(20, N); i++) pairTimes.push(await pairOne(i))
let next = 20
await Promise.all(Array.from({ length: 16 }, async () => {
  while (next < N) await pairOne(next++)
}))
// Time to pair by code (PBKDF2 on both sides), 5 times.
const codeTimes = []
for (let i = 0; i < 5; i++) {
  const name = `c${i}`
  const number = `1557${String(i).padStart(7, '0')}`
  await mock.control('POST', '/accounts', { phone: number, name })
  await gw.api('POST', '/instances', { name })
  const started = performance.now()
  const { body } = await gw.api('POST', `/instances/${name}/connect`, { phone: number })
  await mock.control('POST', `/accounts/${number}/code`, { code: body.code })
  await until(async () => (await gw.api('GET', `/instances/${name}`)).body.state === 'connected', `${name} connected`, 60_000, 10)
  codeTimes.push(performance.now() - started)
}
await sleep(3000) // post-login work settles
const idle = memory()
const count = N + 5
const jsPer = (idle.heap + idle.external - base.heap - base.external) / count
const rssPer = (idle.rss - base.rss) / count

// sendText latency, sequential, between two instances.
const latencies = []
for (let i = 0; i < SENDS; i++) {
  const started = performance.now()
  const result = await gw.api('POST', '/instances/b0/messages/text', { to: phone(1), text: `bench ${i} ${randomBytes(4).toString('hex')}` })
  if (result.status !== 201) throw new Error(`send ${i}: ${result.status} ${JSON.stringify(result.body)}`)
  latencies.push(performance.now() - started)
}

// Restart: a graceful stop, then a new gateway on the same database resumes every instance.
await gw.stop()
const restartStarted = performance.now()
gw = await inProcessGateway(mock, dir, overrides)
const resumed = await gw.resumed
await until(async () => (await gw.api('GET', '/health')).body.instances.connected === count, 'all resumed', 600_000, 100)
const resumeMs = performance.now() - restartStarted
await gw.stop()
mock.stop()
removeDir(dir)

const fmt = (ms) => `${ms.toFixed(1)} ms`
console.log(`instances: ${count} connected and idle (${N} paired by QR, 5 by code)`)
console.log(`memory per connected idle instance: ${(jsPer / 1024).toFixed(1)} KiB JS heap + external (wasm memory included); ${(rssPer / 1024).toFixed(1)} KiB RSS (SQLite and everything else included)`)
console.log(`  process: heap ${mib(base.heap)} -> ${mib(idle.heap)} MiB, external ${mib(base.external)} -> ${mib(idle.external)} MiB, RSS ${mib(base.rss)} -> ${mib(idle.rss)} MiB`)
console.log(`time to pair by QR (connect call to connected, one at a time): p50 ${fmt(percentile(pairTimes, 50))}, max ${fmt(Math.max(...pairTimes))}`)
console.log(`time to pair by code (connect call to connected): p50 ${fmt(percentile(codeTimes, 50))}, max ${fmt(Math.max(...codeTimes))}`)
console.log(`sendText latency over ${SENDS} sends: p50 ${fmt(percentile(latencies, 50))}, p99 ${fmt(percentile(latencies, 99))}`)
console.log(`resume ${resumed} instances after a restart (start to all connected): ${(resumeMs / 1000).toFixed(2)} s`)
