// npm run bench (groups part): the client CPU of 100 group notifications in a Node process.
//
// One mock-server; a walink connect() client paired in its own child process to an account that
// is a member of a group with N other members (accounts without companions). The group's admin
// changes members through the mock-server's control API; each change is one `w:gp2`
// notification to the member devices. Two arrival patterns, as in bench/receive.mjs: `burst` (the
// admin promotes, then demotes, the N others in one request: N notifications back to back) and
// `paced` (one request per notification, each arriving on its own turn of the event loop). The
// child reports the CPU time of its process (user + system, every thread) from the first
// notification of a batch to the last: receiving, decrypting, decoding, parsing, applying to the
// known group, the ack and the `group` event. A warm-up batch of each (not measured) comes
// first, so that V8 has compiled the hot code.
// WALINK_BENCH_NOTIFICATIONS=N (default 100), WALINK_BENCH_ROUNDS (default 5: medians are
// reported). Needs the mock-server binary and the wasm build (npm/wasm). The child runs with this
// process's Node flags, so `node --cpu-prof --cpu-prof-dir=DIR bench/groups.mjs` profiles it too.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

import { mockServerPath, startMockServer } from '../test/support/mock-server.js'

const N = Number(process.env.WALINK_BENCH_NOTIFICATIONS ?? 100)
const ROUNDS = Number(process.env.WALINK_BENCH_ROUNDS ?? 5)
const ADMIN = '15550601000'
const MEMBER = '15550601001'

async function main() {
  if (!mockServerPath()) {
    console.log('groups bench skipped: mock-server is not built (cargo build -p walink-sim --bin mock-server)')
    return
  }
  const server = await startMockServer(17)
  try {
    await server.control('POST', '/accounts', { phone: ADMIN, name: 'Admin' })
    const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, WALINK_BENCH_CHILD: '1', WALINK_BENCH_WS: server.url, WALINK_BENCH_CONTROL: server.controlUrl },
    })
    const lines = readLines(child)
    const next = async () => JSON.parse((await lines.next()).value)
    await next()
    const others = []
    for (let i = 0; i < N; i++) {
      const phone = `1555061${String(i).padStart(4, '0')}`
      await server.control('POST', '/accounts', { phone, name: `m${i}` })
      others.push(phone)
    }
    const group = await server.control('POST', '/groups', { creator: ADMIN, subject: 'bench', members: [MEMBER, ...others] })
    const change = (action, participants) =>
      server.control('POST', `/groups/${group.jid}/participants`, { actor: ADMIN, action, participants })
    let promoted = false
    const batch = async (pattern) => {
      child.stdin.write(JSON.stringify({ count: N }) + '\n')
      await next()
      promoted = !promoted
      const action = promoted ? 'promote' : 'demote'
      if (pattern === 'burst') await change(action, others)
      else for (const other of others) await change(action, [other])
      return next()
    }
    const medians = {}
    for (const pattern of ['burst', 'paced']) {
      await batch(pattern)
      const cpu = []
      for (let r = 0; r < ROUNDS; r++) cpu.push((await batch(pattern)).cpuMs)
      cpu.sort((a, b) => a - b)
      medians[pattern] = { median: cpu[Math.floor(cpu.length / 2)], cpu }
    }
    child.stdin.end()
    for (const [pattern, { median, cpu }] of Object.entries(medians)) {
      console.log(
        `groups: ${N} w:gp2 notifications (promote/demote), ${pattern}, received by a walink client in Node: ` +
          `median ${median.toFixed(2)} ms CPU of the process (${((median * 1000) / N).toFixed(0)} µs each; ` +
          `rounds ${cpu.map((c) => c.toFixed(2)).join(', ')} ms)`,
      )
    }
  } finally {
    server.stop()
  }
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

async function child() {
  const { walinkClient } = await import('../test/support/walink-client.js')
  const server = {
    url: process.env.WALINK_BENCH_WS,
    controlUrl: process.env.WALINK_BENCH_CONTROL,
    async control(method, route, body) {
      const response = await fetch(`${this.controlUrl}${route}`, { method, body: body === undefined ? undefined : JSON.stringify(body) })
      return response.json()
    },
  }
  let batch = null
  const onEvent = (event) => {
    if (!batch || event.type !== 'group') return
    if (batch.seen === 0) batch.cpu0 = cpuMs()
    if (++batch.seen === batch.count) {
      report({ cpuMs: cpuMs() - batch.cpu0 })
      batch = null
    }
  }
  await server.control('POST', '/accounts', { phone: MEMBER, name: 'Member' })
  const client = await walinkClient(server, { onEvent })
  const code = await client.connection.pairWithCode(MEMBER)
  await server.control('POST', `/accounts/${MEMBER}/code`, { code })
  await client.waitFor((e) => e.type === 'state' && e.state.kind === 'connected', 'connected')
  report({ ready: true })
  let buffered = ''
  for await (const chunk of process.stdin) {
    buffered += chunk
    for (let end = buffered.indexOf('\n'); end >= 0; end = buffered.indexOf('\n')) {
      const { count } = JSON.parse(buffered.slice(0, end))
      buffered = buffered.slice(end + 1)
      batch = { count, seen: 0, cpu0: 0 }
      report({ expecting: count })
    }
  }
  await client.connection.close()
}

if (process.env.WALINK_BENCH_CHILD) await child()
else await main()
