// npm run bench (memory part): many wasm clients in one Node process against walink-sim's
// mock-server. A child process pairs N clients by QR (each with its own account) and hands their
// records back; this process, whose wasm memory has not grown for pairing, puts them into N
// MemoryStores, then restores all N clients from their stores at once and reports:
//   - the wall time to reconnect and log in the N restored clients (until every one is Connected),
//   - the memory per idle connected client: growth of process.memoryUsage().heapUsed plus growth
//     of the wasm memory, after gc (node --expose-gc), measured around the restored clients (the
//     stores already exist in the baseline); it includes each client's driver and `ws` socket,
//   - the wasm module size, raw and gzipped.
// WALINK_BENCH_CLIENTS=N (default 1000) sets N. WALINK_BENCH_SEQUENTIAL=1 restores the clients
// one after the other (each Connected before the next starts): the wasm memory, which never
// shrinks, then grows by what the idle clients hold plus one login's transient peak, not by N
// concurrent logins' peaks. WALINK_BENCH_START_ONLY=1 restores each client through a store view
// whose loadAll() returns only the records of Client.startSpaces() (the rest arrive by `load`),
// as the storage decision in docs/client.md intends; without it the package's connect() hands
// Client every stored record. Needs the mock-server binary (see
// test/support/mock-server.js) and the wasm build (npm/wasm).
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { Client, MemoryStore, connect } from 'walink'
import * as glue from '../wasm/walink_wasm.js'
import { mockServerPath, startMockServer, testTrustRoot } from '../test/support/mock-server.js'
import { describeWasmSize, wasmSize } from '../scripts/wasm-size.mjs'

const N = Number(process.env.WALINK_BENCH_CLIENTS ?? 1000)
const PAIR_BATCH = 25
const BUDGET = 64 * 1024
const wasmBytes = readFileSync(new URL('../wasm/walink_wasm_bg.wasm', import.meta.url))
// The package already instantiated the module; initSync hands back the same exports.
const memory = glue.initSync({ module: wasmBytes }).memory

const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`
const phone = (i) => `1555${String(i).padStart(7, '0')}`

function gc() {
  if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc')
  globalThis.gc()
  globalThis.gc()
}

function measure() {
  gc()
  return { heap: process.memoryUsage().heapUsed, wasm: memory.buffer.byteLength }
}

/** Connects a client on `store`; resolves `{ connection, connected }` (a promise of Connected). */
async function start(server, store, onQr) {
  let resolveConnected, rejectConnected
  const connected = new Promise((resolve, reject) => ((resolveConnected = resolve), (rejectConnected = reject)))
  const timer = setTimeout(() => rejectConnected(new Error('not connected within 120 s')), 120_000)
  const connection = await connect({
    url: server.url,
    store,
    config: { trustRoot: testTrustRoot(), deviceName: 'walink bench' },
    onEvent(event) {
      if (event.type === 'qr' && onQr) onQr(event.payload)
      if (event.type === 'state' && event.state.kind === 'connected') {
        clearTimeout(timer)
        resolveConnected()
      }
    },
  })
  return { connection, connected }
}

/** The child: pairs clients `first`..`first + count` and writes their records to `out` as JSON. */
async function pairChild() {
  const server = {
    url: process.env.WALINK_BENCH_WS,
    async control(method, route, body) {
      const response = await fetch(`${process.env.WALINK_BENCH_CONTROL}${route}`, { method, body: JSON.stringify(body) })
      const json = await response.json()
      if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${JSON.stringify(json)}`)
      return json
    },
  }
  const stores = []
  for (let first = 0; first < N; first += PAIR_BATCH) {
    const batch = []
    for (let i = first; i < Math.min(N, first + PAIR_BATCH); i++) {
      await server.control('POST', '/accounts', { phone: phone(i), name: `Bench ${i}` })
      const store = new MemoryStore()
      stores.push(store)
      let scanned = false
      batch.push(
        start(server, store, (qr) => {
          if (scanned) return
          scanned = true
          server.control('POST', `/accounts/${phone(i)}/scan`, { qr }).catch(() => (scanned = false))
        }),
      )
    }
    const clients = await Promise.all(batch)
    await Promise.all(clients.map((c) => c.connected))
    await Promise.all(clients.map((c) => c.connection.close()))
  }
  const dump = []
  for (const store of stores) {
    const records = await store.loadAll()
    dump.push(records.map((r) => [r.space, r.key, Buffer.from(r.value).toString('base64')]))
  }
  writeFileSync(process.env.WALINK_BENCH_OUT, JSON.stringify(dump))
}

async function main() {
  console.log(describeWasmSize(wasmSize(wasmBytes)))
  if (!mockServerPath()) {
    console.log('memory bench skipped: mock-server is not built (cargo build -p walink-sim --bin mock-server)')
    return
  }
  const server = await startMockServer(11)
  const dir = mkdtempSync(join(tmpdir(), 'walink-bench-'))
  try {
    const out = join(dir, 'records.json')
    const pairStart = performance.now()
    const child = spawn(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url)], {
      stdio: 'inherit',
      env: { ...process.env, WALINK_BENCH_PAIR: '1', WALINK_BENCH_WS: server.url, WALINK_BENCH_CONTROL: server.controlUrl, WALINK_BENCH_OUT: out },
    })
    const code = await new Promise((resolve) => child.on('exit', resolve))
    if (code !== 0) throw new Error(`the pairing process exited with ${code}`)
    const pairSeconds = (performance.now() - pairStart) / 1000
    console.log(`paired ${N} clients by QR in ${pairSeconds.toFixed(1)} s (another process, batches of ${PAIR_BATCH})`)

    const stores = []
    for (const records of JSON.parse(readFileSync(out, 'utf8'))) {
      const store = new MemoryStore()
      await store.applyBatch(records.map(([space, key, value]) => ({ op: 'put', space, key, value: new Uint8Array(Buffer.from(value, 'base64')) })))
      stores.push(store)
    }
    const perStore = stores.reduce((n, s) => n + s.size, 0) / N
    console.log(`restoring ${N} clients from their stores (${perStore.toFixed(0)} records each)`)

    const before = measure()
    const t0 = performance.now()
    const sequential = Boolean(process.env.WALINK_BENCH_SEQUENTIAL)
    if (process.env.WALINK_BENCH_START_ONLY) {
      const spaces = Client.startSpaces()
      for (const [i, store] of stores.entries()) {
        stores[i] = {
          applyBatch: (changes) => store.applyBatch(changes),
          load: (keys) => store.load(keys),
          loadAll: async () => (await store.loadAll()).filter((r) => spaces.includes(r.space)),
        }
      }
      console.log(`restoring with only the records of ${spaces.join(', ')} handed to Client`)
    }
    let restored = []
    if (sequential) {
      for (const store of stores) {
        const client = await start(server, store)
        await client.connected
        restored.push(client)
      }
    } else {
      restored = await Promise.all(stores.map((store) => start(server, store)))
      await Promise.all(restored.map((c) => c.connected))
    }
    const loginMs = performance.now() - t0
    // Idle a moment so the post-login traffic settles, then measure.
    await new Promise((resolve) => setTimeout(resolve, 3000))
    const after = measure()
    const heap = after.heap - before.heap
    const wasm = after.wasm - before.wasm
    const perClient = (heap + wasm) / N
    console.log(`reconnect + login of ${N} restored clients${sequential ? ', one after the other' : ' at once'}: ${(loginMs / 1000).toFixed(2)} s wall (${(loginMs / N).toFixed(2)} ms per client)`)
    console.log(
      `memory per idle connected client (N=${N}): ${kib(perClient)} ` +
        `(JS heap growth ${kib(heap / N)} incl. driver and ws socket, wasm memory growth ${kib(wasm / N)}; ` +
        `wasm memory ${(before.wasm / 2 ** 20).toFixed(1)} -> ${(after.wasm / 2 ** 20).toFixed(1)} MiB; budget ${kib(BUDGET)})`,
    )
    await Promise.all(restored.map((c) => c.connection.close()))
  } finally {
    server.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

if (process.env.WALINK_BENCH_PAIR) await pairChild()
else await main()
