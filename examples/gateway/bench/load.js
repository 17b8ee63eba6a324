// The load one gateway worker process holds against walink-sim's mock-server (a bench, not a
// test; README "Load"):
// - N instances paired by QR, then idle: the worker's RSS per instance and CPU per idle instance
//   per minute (keepalives), read from /proc for the worker process only;
// - the worker restarted on the same database: time until all N are connected again;
// - end-to-end messages: the simulated phones send texts to K instances, the webhook receiver
//   counts `message.received`; messages per second and per CPU-second of the worker, with SQLite
//   and with PostgreSQL.
// - the same for a Baileys-based receiver (npm/bench/baileys-receiver.mjs: Baileys' makeWASocket
//   against the same mock-server, keys in memory, counting texts): RSS per socket and messages per
//   CPU-second of its process, and the ratios walink/Baileys.
// `node bench/load.js [N] [K] [MESSAGES] [BAILEYS_N]` (defaults 2000, 20, 2000, 200; N = 0 skips the
// idle and restart figures, BAILEYS_N = 0 the Baileys receiver). WALINK_BENCH_CPU_PROF=<dir> writes
// a V8 CPU profile of each worker process there (`--cpu-prof`, read with Chrome's DevTools or
// `node bench/profile-top.js <file>`). WALINK_MOCK_SERVER picks the
// mock-server binary (its release build keeps the simulated phones out of the way:
// `cargo build --release -p walink-sim --bin mock-server`). Every process it starts is stopped at
// the end.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

import { mockTrustRoot } from '../src/mock.js'

import { postgresForTests } from '../test/postgres.js'
import { childGateway, removeDir, sleep, startMockServer, tempDir, until, webhookReceiver } from '../test/support.js'

const N = Number(process.argv[2] ?? 2000)
const K = Number(process.argv[3] ?? 20)
const MESSAGES = Number(process.argv[4] ?? 2000)
const BAILEYS_N = Number(process.argv[5] ?? 200)
const TICK = 100 // clock ticks per second (/proc/<pid>/stat)
const PAIR_CONCURRENCY = Number(process.env.WALINK_BENCH_PAIR_CONCURRENCY ?? 16)

/** CPU seconds (user + system) and RSS bytes of one process. */
function usage(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const cpu = (Number(fields[11]) + Number(fields[12])) / TICK
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024
  return { cpu, rss }
}

const mib = (bytes) => (bytes / 1024 / 1024).toFixed(1)
const kib = (bytes) => (bytes / 1024).toFixed(1)
const phone = (i) => `1559${String(i).padStart(7, '0')}`
const report = []
const say = (line) => {
  report.push(line)
  console.log(line)
}

const mock = await startMockServer({ seed: 71 })
const dir = tempDir('walink-gw-load-')
const hooks = await webhookReceiver()
const children = []
let pg = null
let baileys = null
const cleanUp = async () => {
  for (const c of children) c.child.kill('SIGKILL')
  baileys?.kill('SIGKILL')
  await hooks.close()
  mock.stop()
  await pg?.stop()
  removeDir(dir)
}
process.on('SIGINT', () => cleanUp().then(() => process.exit(130)))

const PROFILE_DIR = process.env.WALINK_BENCH_CPU_PROF
const NODE_ARGS = PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : []
const ENV = { GATEWAY_RESUME_CONCURRENCY: '64', GATEWAY_CONNECT_TIMEOUT_MS: '120000', GATEWAY_HEARTBEAT_MS: '3600000', NODE_OPTIONS: '--max-old-space-size=4096' }

async function start(extra = {}) {
  const gw = await childGateway(mock, dir, { ...ENV, ...extra }, { nodeArgs: NODE_ARGS })
  children.push(gw)
  return gw
}

async function stop(gw) {
  gw.child.kill('SIGTERM')
  await new Promise((resolve) => gw.child.once('exit', resolve))
}

const connected = async (gw) => (await gw.api('GET', '/health')).body?.instances?.connected ?? 0

/** Pairs instances `from..to-1` of `gw` by QR, `PAIR_CONCURRENCY` at a time. */
async function pairAll(gw, prefix, from, to, webhook) {
  let next = from
  const pairOne = async (i) => {
    const name = `${prefix}${i}`
    await mock.control('POST', '/accounts', { phone: phone(i), name }).catch(() => {})
    const created = await gw.api('POST', '/instances', { name, ...(webhook ? { webhook: { url: webhook, events: ['message.received'] } } : {}) })
    if (created.status !== 201) throw new Error(`create ${name}: ${created.status} ${JSON.stringify(created.body)}`)
    if (webhook) hooks.addSecret(name, created.body.webhook.secret)
    const { body } = await gw.api('POST', `/instances/${name}/connect`, {})
    await mock.control('POST', `/accounts/${phone(i)}/scan`, { qr: body.qr })
    await until(async () => (await gw.api('GET', `/instances/${name}`)).body.state === 'connected', `${name} connected`, 300_000, 200)
  }
  await Promise.all(Array.from({ length: PAIR_CONCURRENCY }, async () => {
    while (next < to) await pairOne(next++)
  }))
}

/** The Baileys receiver process: `pair(name, phone)` resolves once open; `received()` counts texts. */
function startBaileys() {
  const script = fileURLToPath(new URL('../../../npm/bench/baileys-receiver.mjs', import.meta.url))
  const child = spawn(process.execPath, [script], {
    env: { ...process.env, WALINK_MOCK_WS: mock.url, WALINK_MOCK_CONTROL: mock.controlUrl, WALINK_MOCK_ROOT_HEX: Buffer.from(mockTrustRoot()).toString('hex'), NODE_OPTIONS: '--max-old-space-size=8192' },
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  baileys = child
  const paired = new Map()
  let statsWaiter = null
  createInterface({ input: child.stdout }).on('line', (line) => {
    const message = JSON.parse(line)
    if (message.paired) paired.get(message.paired)?.()
    else if (message.stats) statsWaiter?.(message.stats)
    else if (message.error) console.error(`baileys: ${message.error}`)
  })
  const send = (value) => child.stdin.write(`${JSON.stringify(value)}\n`)
  return {
    pid: child.pid,
    pair: (name, number) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`baileys ${name}: not open within 300 s`)), 300_000)
        paired.set(name, () => {
          clearTimeout(timer)
          resolve()
        })
        send({ pair: { name, phone: number } })
      }),
    stats: () =>
      new Promise((resolve) => {
        statsWaiter = resolve
        send({ stats: true })
      }),
  }
}

/** Sends `total` texts from a fresh sender phone to `to(i)`; resolves with the texts. */
async function phonesSend(label, senderIndex, total, to) {
  const sender = `1558${String(senderIndex).padStart(7, '0')}`
  await mock.control('POST', '/accounts', { phone: sender, name: 'Sender' }).catch(() => {})
  const texts = new Set()
  let n = 0
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (n < total) {
      const i = n++
      const text = `${label}-${i}`
      texts.add(text)
      await mock.control('POST', `/accounts/${sender}/send`, { to: to(i), text })
    }
  }))
  return texts
}

/** The phones send `total` texts to instances `from..from+k-1`; resolves with rate and CPU figures of `gw`. */
async function traffic(gw, label, from, k, total) {
  const before = usage(gw.child.pid)
  const started = performance.now()
  const texts = await phonesSend(label, from, total, (i) => phone(from + (i % k)))
  await until(() => {
    let got = 0
    for (const h of hooks.received) if (h.body.type === 'message.received' && texts.has(h.body.data.text)) got++
    return got >= total
  }, `${label}: every message at the webhook`, 600_000, 100)
  const seconds = (performance.now() - started) / 1000
  const after = usage(gw.child.pid)
  const cpu = after.cpu - before.cpu
  return { seconds, cpu, perSecond: total / seconds, perCpuSecond: total / cpu }
}

/** N idle instances in one SQLite worker: memory and CPU per instance, then the time to resume them all. */
async function idleAndRestart() {
  let gw = await start()
  await sleep(1000)
  const empty = usage(gw.child.pid)
  let t = performance.now()
  await pairAll(gw, 'idle', 0, N)
  const paired = (performance.now() - t) / 1000
  say(`paired ${N} instances by QR in ${paired.toFixed(0)} s (${(N / paired).toFixed(1)}/s, ${PAIR_CONCURRENCY} at a time)`)
  await sleep(10_000) // post-login work settles
  const idleStart = usage(gw.child.pid)
  const IDLE_S = 60
  await sleep(IDLE_S * 1000)
  const idleEnd = usage(gw.child.pid)
  const perInstance = (idleEnd.rss - empty.rss) / N
  say(`SQLite worker, ${N} connected idle instances: RSS ${mib(empty.rss)} -> ${mib(idleEnd.rss)} MiB, ${kib(perInstance)} KiB per instance`)
  const cpuPerMinute = ((idleEnd.cpu - idleStart.cpu) / IDLE_S) * 60
  say(`idle CPU over ${IDLE_S} s: ${(cpuPerMinute * 1000).toFixed(0)} ms per minute for ${N} instances = ${((cpuPerMinute * 1000) / N).toFixed(3)} ms per instance per minute`)
  await stop(gw)
  t = performance.now()
  gw = await start()
  await until(async () => (await connected(gw)) >= N, 'every instance resumed', 1_800_000, 250)
  say(`restart: ${N} instances connected again ${((performance.now() - t) / 1000).toFixed(1)} s after the new worker started (GATEWAY_RESUME_CONCURRENCY=64)`)
  const resumed = usage(gw.child.pid)
  say(`after the restart: RSS ${mib(resumed.rss)} MiB for ${N} instances (${kib(resumed.rss / N)} KiB per instance, the process's own base included)`)
  return { gw, perInstance }
}

try {
  let gw
  let perInstance = null
  if (N > 0) ({ gw, perInstance } = await idleAndRestart())
  else gw = await start()

  // --- end-to-end messages, SQLite ---
  await pairAll(gw, 'msg', N, N + K, `${hooks.url}/hook`)
  await sleep(2000)
  const sqlite = await traffic(gw, 'sqlite', N, K, MESSAGES)
  say(`SQLite: ${MESSAGES} messages phone -> webhook to ${K} instances in ${sqlite.seconds.toFixed(1)} s: ${sqlite.perSecond.toFixed(0)}/s; the worker used ${sqlite.cpu.toFixed(1)} CPU-s: ${sqlite.perCpuSecond.toFixed(0)} messages per CPU-second`)
  await stop(gw)

  // --- end-to-end messages, PostgreSQL ---
  pg = await postgresForTests()
  const url = await pg.createDatabase(`load_${process.pid}`)
  gw = await start({ GATEWAY_DATABASE_URL: url })
  await pairAll(gw, 'pgmsg', N + K, N + 2 * K, `${hooks.url}/hook`)
  await sleep(2000)
  const postgres = await traffic(gw, 'postgres', N + K, K, MESSAGES)
  say(`PostgreSQL: ${MESSAGES} messages phone -> webhook to ${K} instances in ${postgres.seconds.toFixed(1)} s: ${postgres.perSecond.toFixed(0)}/s; the worker used ${postgres.cpu.toFixed(1)} CPU-s: ${postgres.perCpuSecond.toFixed(0)} messages per CPU-second`)
  await stop(gw)
  if (BAILEYS_N === 0) {
    console.log(`\nREPORT ${JSON.stringify({ N, K, MESSAGES, BAILEYS_N, report })}`)
  } else await baileysRun(sqlite, postgres, perInstance)
} finally {
  await cleanUp()
}

/** The same load for a Baileys-based receiver, and the ratios walink/Baileys. */
async function baileysRun(sqlite, postgres, perInstance) {
  const b = startBaileys()
  await sleep(1500)
  const bEmpty = usage(b.pid)
  const bFirst = N + 2 * K
  const t = performance.now()
  let bNext = 0
  await Promise.all(Array.from({ length: PAIR_CONCURRENCY }, async () => {
    while (bNext < BAILEYS_N + K) {
      const i = bFirst + bNext++
      await mock.control('POST', '/accounts', { phone: phone(i), name: `b${i}` }).catch(() => {})
      await b.pair(`b${i}`, phone(i))
    }
  }))
  say(`Baileys: paired ${BAILEYS_N + K} sockets by QR in ${((performance.now() - t) / 1000).toFixed(0)} s`)
  await sleep(10_000)
  const bIdleStart = usage(b.pid)
  await sleep(60_000)
  const bIdleEnd = usage(b.pid)
  const bPer = (bIdleEnd.rss - bEmpty.rss) / (BAILEYS_N + K)
  const bCpuPerMinute = (bIdleEnd.cpu - bIdleStart.cpu) * 1000
  say(`Baileys receiver, ${BAILEYS_N + K} open idle sockets: RSS ${mib(bEmpty.rss)} -> ${mib(bIdleEnd.rss)} MiB, ${kib(bPer)} KiB per socket; idle CPU ${((bCpuPerMinute) / (BAILEYS_N + K)).toFixed(3)} ms per socket per minute`)
  const before = usage(b.pid)
  const started = performance.now()
  const texts = await phonesSend('baileys', bFirst, MESSAGES, (i) => phone(bFirst + BAILEYS_N + (i % K)))
  await until(async () => {
    const { received } = await b.stats()
    return [...texts].every((text) => received[text] >= 1)
  }, 'Baileys got every message', 600_000, 500)
  const bSeconds = (performance.now() - started) / 1000
  const bCpu = usage(b.pid).cpu - before.cpu
  say(`Baileys: ${MESSAGES} messages phone -> receiver to ${K} sockets in ${bSeconds.toFixed(1)} s: ${(MESSAGES / bSeconds).toFixed(0)}/s; the receiver used ${bCpu.toFixed(1)} CPU-s: ${(MESSAGES / bCpu).toFixed(0)} messages per CPU-second`)
  say(`walink/Baileys: instances per process (memory per instance) ${perInstance ? (bPer / perInstance).toFixed(1) : 'n/a'}x; messages per CPU-second ${(sqlite.perCpuSecond / (MESSAGES / bCpu)).toFixed(2)}x with SQLite, ${(postgres.perCpuSecond / (MESSAGES / bCpu)).toFixed(2)}x with PostgreSQL`)
  console.log(`\nREPORT ${JSON.stringify({ N, K, MESSAGES, BAILEYS_N, report })}`)
}
