// Client CPU of checking 1,000 phone numbers in one `checkNumbers` command, in a Node process:
// walink's connect() client against the mock-server (a separate process, so this process's CPU
// is the client's: the command built and encrypted in wasm, the socket, the answer of 1,000 users
// decrypted, decoded and read, and the output handed to JavaScript). A third of the numbers have
// accounts. WALINK_BENCH_ROUNDS (default 30) commands after 5 unmeasured ones; prints the median
// and the 90th percentile of process CPU (user + system) per command.
// Run: node bench/contacts.mjs (needs the mock-server binary and npm/wasm).
import { MemoryStore } from 'walink'

import { startMockServer } from '../test/support/mock-server.js'
import { walinkClient } from '../test/support/walink-client.js'

const ROUNDS = Number(process.env.WALINK_BENCH_ROUNDS ?? 30)
const WARMUP = 5
const NUMBERS = 1000
const ME = '15550401000'

const server = await startMockServer(23)
try {
  await server.control('POST', '/accounts', { phone: ME, name: 'Bench' })
  const phones = []
  for (let i = 0; i < NUMBERS; i++) phones.push(`1555041${String(i).padStart(4, '0')}`)
  for (let i = 0; i < NUMBERS; i += 3) await server.control('POST', '/accounts', { phone: phones[i], name: `c${i}` })
  const client = await walinkClient(server, { store: new MemoryStore() })
  const code = await client.connection.pairWithCode(ME)
  await server.control('POST', `/accounts/${ME}/code`, { code })
  await client.waitFor((e) => e.type === 'state' && e.state.kind === 'connected', 'connected', 60_000)
  const cpu = []
  for (let round = 0; round < WARMUP + ROUNDS; round++) {
    const start = process.cpuUsage()
    const output = await client.connection.command({ type: 'checkNumbers', phones })
    const used = process.cpuUsage(start)
    if (output.numbers.length !== NUMBERS || output.numbers.filter((n) => n.onWhatsApp).length !== Math.ceil(NUMBERS / 3)) {
      throw new Error('unexpected answer')
    }
    if (round >= WARMUP) cpu.push((used.user + used.system) / 1000)
  }
  cpu.sort((a, b) => a - b)
  const at = (q) => cpu[Math.min(cpu.length - 1, Math.floor(q * cpu.length))]
  console.log(`checkNumbers x${NUMBERS}: client CPU median ${at(0.5).toFixed(2)} ms, p90 ${at(0.9).toFixed(2)} ms (${ROUNDS} rounds)`)
  await client.connection.close()
} finally {
  server.stop()
}
