// The heaviest functions and files of a V8 CPU profile (`--cpu-prof`): self time per function and
// per file, as shares of the sampled time. `node bench/profile-top.js <file.cpuprofile> [rows]`.
import { readFileSync } from 'node:fs'

const [file, rowsArg = '25'] = process.argv.slice(2)
if (!file) {
  console.error('usage: node bench/profile-top.js <file.cpuprofile> [rows]')
  process.exit(2)
}
const rows = Number(rowsArg)
const profile = JSON.parse(readFileSync(file, 'utf8'))

// Self time of a node: the samples that landed on it, each weighed by the time until the next one.
const selfMs = new Map()
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i]
  selfMs.set(id, (selfMs.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? 0) / 1000)
}
const total = [...selfMs.values()].reduce((a, b) => a + b, 0)

const byFunction = new Map()
const byFile = new Map()
for (const node of profile.nodes) {
  const ms = selfMs.get(node.id) ?? 0
  if (!ms) continue
  const { functionName, url, lineNumber } = node.callFrame
  const where = url ? url.replace(/^.*\/(node_modules|examples|npm)\//, '$1/') : '(native)'
  const fn = `${functionName || '(anonymous)'} ${where}:${lineNumber + 1}`
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + ms)
  byFile.set(where, (byFile.get(where) ?? 0) + ms)
}

const show = (title, map) => {
  console.log(`\n${title}`)
  for (const [name, ms] of [...map].sort((a, b) => b[1] - a[1]).slice(0, rows)) console.log(`${((ms / total) * 100).toFixed(1).padStart(5)} %  ${ms.toFixed(0).padStart(7)} ms  ${name}`)
}
console.log(`${file}: ${(total / 1000).toFixed(1)} s sampled`)
show('self time by function', byFunction)
show('self time by file', byFile)
