// npm run bench (receive part): the cost of receiving text messages in a Node process, walink's
// connect() client against Baileys' whole socket, on the same run and the same messages.
//
// One mock-server; for each client kind a fresh account paired in its own child process: walink's
// connect() and Baileys' makeWASocket, both with their state in memory (walink's MemoryStore, a
// Map behind Baileys' key-store interface), or with WALINK_BENCH_STORE=file both on disk
// (walink's FileStore, which syncs every batch; Baileys' useMultiFileAuthState). Once the child is connected, the simulated phone
// of another account sends it N 1:1 texts, then N texts in a group of the two accounts (one
// control request each, so the phone's side is the mock-server's). The child reports, for each
// batch, the CPU time of its process (user + system, every thread) from the first message to
// the last, and at the end its peak RSS (getrusage maxrss). The children run one after the other.
//
// Two arrival patterns, each on its own batches: `burst` (the phone sends the N texts in one
// control request, so they arrive as fast as the mock-server writes them and a client may read
// several per turn of its event loop) and `paced` (one text every WALINK_BENCH_PACE_MS, default
// 2 ms, so each arrives on its own, as on a gateway where messages trickle in).
// Before them, WALINK_BENCH_WARMUP (default 200) texts 1:1 and in the group, not measured, so that
// both runtimes have compiled their hot code (V8's JIT, and its tier-up of the wasm).
// WALINK_BENCH_MESSAGES=N (default 2000). WALINK_BENCH_ONLY=walink|baileys runs one kind.
// WALINK_BENCH_PROFILE=dir runs the walink child under `node --cpu-prof` (the profiler started
// from the command line: an inspector session would slow the wasm down) and writes there
// walink.cpuprofile and walink-windows.json, the monotonic time of each batch's first and last
// message; `node bench/profile-summary.mjs <dir>/walink.cpuprofile --window direct` sums up the
// samples of one batch.
// Needs the mock-server binary (test/support/mock-server.js) and the wasm build (npm/wasm).
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { mockServerPath, startMockServer } from '../test/support/mock-server.js'

const N = Number(process.env.WALINK_BENCH_MESSAGES ?? 2000)
const SENDER = '15550301000'
const SETTLE_MS = 2000
const PACE_MS = Number(process.env.WALINK_BENCH_PACE_MS ?? 2)
const BATCHES = ['burst direct', 'burst group', 'paced direct', 'paced group']
/** Texts sent (1:1 and in the group) and not measured before the batches: the JIT and V8's wasm tier-up warm up. */
const WARMUP = Number(process.env.WALINK_BENCH_WARMUP ?? 200)
const onDisk = process.env.WALINK_BENCH_STORE === 'file'
const mib = (kib) => `${(kib / 1024).toFixed(1)} MiB`

/** The parent: runs each kind's child and prints the comparison. */
async function main() {
  if (!mockServerPath()) {
    console.log('receive bench skipped: mock-server is not built (cargo build -p walink-sim --bin mock-server)')
    return
  }
  const kinds = process.env.WALINK_BENCH_ONLY ? [process.env.WALINK_BENCH_ONLY] : ['walink', 'baileys']
  const server = await startMockServer(13)
  const results = {}
  try {
    await server.control('POST', '/accounts', { phone: SENDER, name: 'Sender' })
    for (const [i, kind] of kinds.entries()) {
      const phone = `1555031${String(i).padStart(4, '0')}`
      await server.control('POST', '/accounts', { phone, name: kind })
      results[kind] = await runChild(server, kind, phone)
    }
  } finally {
    server.stop()
  }
  console.log(`receive: ${N} texts from the simulated phone, 1:1 then in a group, state ${onDisk ? 'on disk' : 'in memory'} (CPU of the receiving process, first to last message)`)
  for (const [kind, r] of Object.entries(results)) {
    for (const batch of BATCHES) {
      const b = r[batch]
      console.log(
        `  ${kind.padEnd(7)} ${batch.padEnd(12)} ${Math.round((N / b.cpuMs) * 1000).toLocaleString('en').padStart(6)} messages per CPU-second ` +
          `(${((b.cpuMs * 1000) / N).toFixed(0)} µs CPU per message, of which ${((b.systemMs * 1000) / N).toFixed(0)} µs in the kernel` +
          `${b.mainMs === null ? '' : ` and ${((b.mainMs * 1000) / N).toFixed(0)} µs on the main thread`}; ` +
          `${(b.wallMs / 1000).toFixed(2)} s wall)`,
      )
    }
    console.log(
      `  ${kind.padEnd(7)} peak RSS ${mib(r.maxRssKiB)}, ${mib(r.maxRssKiB - r.baseRssKiB)} above the process before it connected ` +
        `(Node with the client's modules loaded: ${mib(r.baseRssKiB)})`,
    )
    console.log(`  ${kind.padEnd(7)} once connected (before the batches): RSS ${mib(r.connected.rssKiB)}, peak so far ${mib(r.connected.maxRssKiB)}`)
    const e = r.end
    console.log(
      `  ${kind.padEnd(7)} at the end: RSS ${mib(e.rss / 1024)}, JS heap ${mib(e.heapUsed / 1024)} used of ${mib(e.heapTotal / 1024)}, ` +
        `external ${mib(e.external / 1024)}${e.wasm ? `, wasm memory ${mib(e.wasm / 1024)}` : ''}`,
    )
  }
  if (results.walink && results.baileys) {
    for (const batch of BATCHES) {
      console.log(`  walink/Baileys ${batch.padEnd(12)} ${(results.baileys[batch].cpuMs / results.walink[batch].cpuMs).toFixed(1)}x messages per CPU-second`)
    }
    const grown = (r) => r.maxRssKiB - r.baseRssKiB
    console.log(
      `  peak RSS walink/Baileys: ${(results.walink.maxRssKiB / results.baileys.maxRssKiB).toFixed(2)} ` +
        `(growth after connecting: ${(grown(results.walink) / grown(results.baileys)).toFixed(2)})`,
    )
  }
}

/** Starts the child for `kind`, drives the phone once it is connected, and returns its report. */
async function runChild(server, kind, phone) {
  const args = ['--expose-gc']
  const profileDir = process.env.WALINK_BENCH_PROFILE
  if (profileDir && kind === 'walink') args.push('--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${kind}.cpuprofile`)
  const child = spawn(process.execPath, [...args, fileURLToPath(import.meta.url)], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, WALINK_BENCH_CHILD: kind, WALINK_BENCH_WS: server.url, WALINK_BENCH_CONTROL: server.controlUrl, WALINK_BENCH_PHONE: phone },
  })
  const lines = readLines(child)
  const exited = new Promise((resolve) => child.on('exit', resolve))
  const next = async (what) => {
    const { value, done } = await lines.next()
    if (done) throw new Error(`the ${kind} process ended (exit ${await exited}) before ${what}`)
    return JSON.parse(value)
  }
  const connected = await next('connecting')
  const group = await server.control('POST', '/groups', { creator: SENDER, subject: 'bench', members: [phone] })
  const report = {}
  for (const batch of WARMUP > 0 ? ['warm-up direct', 'warm-up group'] : []) {
    const to = batch.endsWith('group') ? group.jid : phone
    const text = `bench ${batch.replace(' ', '-')}`
    child.stdin.write(JSON.stringify({ batch, text, count: WARMUP }) + '\n')
    await next(`the ${batch} batch to be expected`)
    await server.control('POST', `/accounts/${SENDER}/send`, { to, text, count: WARMUP })
    await next(`the ${batch} batch`)
  }
  for (const batch of BATCHES) {
    const to = batch.endsWith('group') ? group.jid : phone
    const text = `bench ${batch.replace(' ', '-')}`
    child.stdin.write(JSON.stringify({ batch, text, count: N }) + '\n')
    await next(`the ${batch} batch to be expected`)
    if (batch.startsWith('burst')) {
      await server.control('POST', `/accounts/${SENDER}/send`, { to, text, count: N })
    } else {
      const start = performance.now()
      for (let i = 0; i < N; i++) {
        await server.control('POST', `/accounts/${SENDER}/send`, { to, text: `${text} ${i}` })
        const wait = start + (i + 1) * PACE_MS - performance.now()
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
      }
    }
    report[batch] = await next(`the ${batch} batch`)
  }
  child.stdin.end()
  Object.assign(report, await next('the end'), { connected })
  const code = await exited
  if (code !== 0) throw new Error(`the ${kind} process exited with ${code}`)
  return report
}

async function* readLines(child) {
  let buffered = ''
  for await (const chunk of child.stdout) {
    buffered += chunk
    for (let end = buffered.indexOf('\n'); end >= 0; end = buffered.indexOf('\n')) {
      yield buffered.slice(0, end)
      buffered = buffered.slice(end + 1)
    }
  }
}

// ----- the child ---------------------------------------------------------------------------

const report = (value) => process.stdout.write(JSON.stringify(value) + '\n')
const cpuMs = () => {
  const { user, system } = process.cpuUsage()
  return (user + system) / 1000
}
const systemMs = () => process.cpuUsage().system / 1000

/** CPU milliseconds of this process's main thread (Linux: /proc/self/task/<pid>/stat), else null. */
function mainThreadMs() {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // utime and stime, fields 14 and 15 of stat (11 and 12 after the command name), in ticks.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100
  } catch {
    return null
  }
}

/** Microseconds of the monotonic clock, the clock of V8's CPU profiles. */
const monotonicUs = () => Number(process.hrtime.bigint() / 1000n)

/** Counts arriving texts of the current batch and reports its CPU time at the last one. */
function makeCounter() {
  let batch = null
  return {
    /** Each batch's first and last message on the monotonic clock (for a CPU profile). */
    windows: {},
    expect(next) {
      batch = { ...next, seen: 0, cpu0: 0, system0: 0, main0: 0, wall0: 0, us0: 0 }
    },
    message(text) {
      if (!batch || !text?.startsWith(`${batch.text} `)) return
      if (batch.seen === 0) {
        batch.cpu0 = cpuMs()
        batch.system0 = systemMs()
        batch.main0 = mainThreadMs()
        batch.wall0 = performance.now()
        batch.us0 = monotonicUs()
      }
      if (++batch.seen === batch.count) {
        this.windows[batch.batch] = [batch.us0, monotonicUs()]
        const main = mainThreadMs()
        report({
          cpuMs: cpuMs() - batch.cpu0,
          systemMs: systemMs() - batch.system0,
          mainMs: main === null ? null : main - batch.main0,
          wallMs: performance.now() - batch.wall0,
        })
        batch = null
      }
    },
  }
}

async function control(method, route, body) {
  const response = await fetch(`${process.env.WALINK_BENCH_CONTROL}${route}`, { method, body: body === undefined ? undefined : JSON.stringify(body) })
  const json = await response.json()
  if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${JSON.stringify(json)}`)
  return json
}

async function* commands() {
  let buffered = ''
  for await (const chunk of process.stdin) {
    buffered += chunk
    for (let end = buffered.indexOf('\n'); end >= 0; end = buffered.indexOf('\n')) {
      yield JSON.parse(buffered.slice(0, end))
      buffered = buffered.slice(end + 1)
    }
  }
}

/** The size of walink's wasm memory (the package's module, already instantiated). */
async function wasmMemoryBytes() {
  const glue = await import('../wasm/walink_wasm.js')
  const { readFileSync: read } = await import('node:fs')
  return glue.initSync({ module: read(new URL('../wasm/walink_wasm_bg.wasm', import.meta.url)) }).memory.buffer.byteLength
}

async function walinkChild(counter, dir, { FileStore, MemoryStore, connect }) {
  const { testTrustRoot } = await import('../test/support/mock-server.js')
  const store = onDisk ? await FileStore.open(join(dir, 'walink')) : new MemoryStore()
  let resolveConnected
  const connected = new Promise((resolve) => (resolveConnected = resolve))
  const connection = await connect({
    url: process.env.WALINK_BENCH_WS,
    store,
    mediaHost: process.env.WALINK_BENCH_CONTROL,
    config: { trustRoot: testTrustRoot(), deviceName: 'walink bench' },
    onEvent(event) {
      if (event.type === 'message') counter.message(event.text)
      else if (event.type === 'state' && event.state.kind === 'connected') resolveConnected()
    },
  })
  const code = await connection.pairWithCode(process.env.WALINK_BENCH_PHONE)
  await control('POST', `/accounts/${process.env.WALINK_BENCH_PHONE}/code`, { code })
  await connected
  return () => connection.close()
}

async function baileysChild(counter, dir, { BaileysPeer, routeMediaHost, textOf, trustSimulationRoot }) {
  trustSimulationRoot()
  routeMediaHost(process.env.WALINK_BENCH_CONTROL)
  const peer = new BaileysPeer({ url: process.env.WALINK_BENCH_WS, dir: onDisk ? join(dir, 'baileys') : null, keep: false })
  peer.onMessage = (message) => counter.message(textOf(message))
  await peer.start()
  await peer.waitFor((p) => p.qrs.length > 0, 'a QR')
  await control('POST', `/accounts/${process.env.WALINK_BENCH_PHONE}/scan`, { qr: peer.qrs[0] })
  await peer.opens(1, 60_000)
  return () => peer.stop()
}

async function child(kind) {
  const dir = mkdtempSync(join(tmpdir(), `walink-bench-${kind}-`))
  const counter = makeCounter()
  const modules = kind === 'walink' ? await import('walink') : await import('../test/support/baileys.js')
  // The resident set of the process with the client's modules loaded, before any connection.
  globalThis.gc?.()
  const baseRssKiB = process.resourceUsage().maxRSS
  const stop = kind === 'walink' ? await walinkChild(counter, dir, modules) : await baileysChild(counter, dir, modules)
  // The work that follows a login (prekey upload, history and app-state sync) settles first.
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS))
  report({ connected: true, rssKiB: process.memoryUsage().rss / 1024, maxRssKiB: process.resourceUsage().maxRSS })
  for await (const next of commands()) {
    counter.expect(next)
    report({ expecting: next.batch })
  }
  await stop()
  if (process.env.WALINK_BENCH_PROFILE) {
    writeFileSync(join(process.env.WALINK_BENCH_PROFILE, `${kind}-windows.json`), JSON.stringify(counter.windows))
  }
  globalThis.gc?.()
  const { rss, heapUsed, heapTotal, external } = process.memoryUsage()
  const memory = kind === 'walink' ? await wasmMemoryBytes() : 0
  report({ maxRssKiB: process.resourceUsage().maxRSS, baseRssKiB, end: { rss, heapUsed, heapTotal, external, wasm: memory } })
  rmSync(dir, { recursive: true, force: true })
  process.exit(0)
}

if (process.env.WALINK_BENCH_CHILD) await child(process.env.WALINK_BENCH_CHILD)
else await main()
