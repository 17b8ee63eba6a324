// Sums up a V8 CPU profile (a .cpuprofile file, e.g. from `WALINK_BENCH_PROFILE=dir npm run bench`):
// self time by function (the heaviest first) and by where the code lives (wasm, the walink
// package's JavaScript, `ws`, other node_modules, Node's own code, the GC and the VM).
// Usage: node bench/profile-summary.mjs <file.cpuprofile> [--window <batch>] [--top N] [--messages N]
// --window keeps the samples between the first and the last message of one batch of
// bench/receive.mjs (from <kind>-windows.json beside the profile).
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { parseArgs } from 'node:util'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { window: { type: 'string' }, top: { type: 'string', default: '30' }, messages: { type: 'string' } },
})
const [file] = positionals
if (!file) {
  console.error('usage: node bench/profile-summary.mjs <file.cpuprofile> [--window batch] [--top N] [--messages N]')
  process.exit(2)
}
const profile = JSON.parse(readFileSync(file, 'utf8'))
let window = [-Infinity, Infinity]
if (values.window) {
  const windows = join(dirname(file), `${file.split('/').pop().replace(/\.cpuprofile$/, '')}-windows.json`)
  if (!existsSync(windows)) throw new Error(`${windows} is missing`)
  window = JSON.parse(readFileSync(windows, 'utf8'))[values.window]
  if (!window) throw new Error(`no batch ${values.window} in ${windows}`)
}
const byId = new Map(profile.nodes.map((node) => [node.id, node]))
const self = new Map()
let at = profile.startTime
for (let i = 0; i < profile.samples.length; i++) {
  at += profile.timeDeltas[i] ?? 0
  if (at < window[0] || at > window[1]) continue
  const id = profile.samples[i]
  self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
}
const topArg = values.top
const messagesArg = values.messages
const total = [...self.values()].reduce((a, b) => a + b, 0)
const per = messagesArg ? Number(messagesArg) : 0

/** Where a frame's code lives. */
function area({ url, functionName }) {
  if (url.startsWith('wasm://')) return 'wasm'
  if (url.includes('/npm/src/') || url.includes('walink_wasm.js')) return 'walink JS (driver, glue, stores)'
  if (url.includes('/node_modules/ws/')) return 'ws'
  if (url.includes('/node_modules/')) return 'other packages'
  if (url.startsWith('node:')) return 'Node (JS)'
  if (functionName === '(garbage collector)') return 'GC'
  if (functionName === '(idle)') return 'idle'
  if (functionName === '(program)') return 'VM and native (program)'
  if (url === '') return 'native builtins'
  return 'other JS'
}

const byFunction = new Map()
const byArea = new Map()
for (const [id, us] of self) {
  const frame = byId.get(id).callFrame
  const name = `${frame.functionName || '(anonymous)'}  ${frame.url.split('/').slice(-2).join('/')}${frame.lineNumber >= 0 ? ':' + (frame.lineNumber + 1) : ''}`
  byFunction.set(name, (byFunction.get(name) ?? 0) + us)
  const where = area(frame)
  byArea.set(where, (byArea.get(where) ?? 0) + us)
}
const show = (us) => `${(us / 1000).toFixed(1).padStart(8)} ms ${((100 * us) / total).toFixed(1).padStart(5)} %${per ? `  ${(us / per).toFixed(1).padStart(6)} µs/msg` : ''}`
console.log(`${file}: ${(total / 1000).toFixed(1)} ms sampled${per ? ` (${(total / per).toFixed(0)} µs per message)` : ''}`)
console.log('by area:')
for (const [where, us] of [...byArea].sort((a, b) => b[1] - a[1])) console.log(`  ${show(us)}  ${where}`)
console.log(`by function (top ${topArg}):`)
for (const [name, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg))) console.log(`  ${show(us)}  ${name}`)
