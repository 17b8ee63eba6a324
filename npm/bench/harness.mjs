// Shared by the npm benchmarks: the bench build of walink's wasm module (npm/bench/wasm/, from
// `bash scripts/build-wasm.sh --bench`), and a measuring loop that interleaves candidates.
import { existsSync, readFileSync } from 'node:fs'

/** The bench build's exports (walink's codec plus the Signal and Noise bench functions). */
export async function loadBenchWasm() {
  const glue = new URL('./wasm/walink_wasm.js', import.meta.url)
  const module = new URL('./wasm/walink_wasm_bg.wasm', import.meta.url)
  if (!existsSync(glue) || !existsSync(module)) {
    console.error('npm/bench/wasm/ is missing: run `bash scripts/build-wasm.sh --bench` in npm/ first')
    process.exit(1)
  }
  const wasm = await import(glue.href)
  wasm.initSync({ module: readFileSync(module) })
  return { wasm, size: readFileSync(module).length }
}

/**
 * Ops/s of each candidate, the best of `rounds` rounds with the candidates interleaved, so that a
 * busy machine hurts all alike. A candidate is `async (n) => ms`: it performs n operations and
 * returns the milliseconds the timed part took (preparation, such as producing the messages a
 * decrypt consumes, stays outside), or a plain `(n) => ms` for synchronous code.
 */
export async function compare(candidates, { rounds = 5, minMs = 200, maxBatch = 1 << 14 } = {}) {
  const best = Object.fromEntries(Object.keys(candidates).map((name) => [name, 0]))
  for (let round = 0; round < rounds; round++) {
    for (const [name, run] of Object.entries(candidates)) {
      globalThis.gc?.()
      best[name] = Math.max(best[name], await measure(run, minMs, maxBatch))
    }
  }
  return best
}

async function measure(run, minMs, maxBatch) {
  await run(2) // warm-up
  let ops = 0
  let ms = 0
  let batch = 1
  while (ms < minMs) {
    ms += await run(batch)
    ops += batch
    // Aim the next batch at what is left of the budget, within bounds.
    const perOp = ms / ops
    const left = minMs - ms
    batch = Math.max(1, Math.min(maxBatch, batch * 4, Math.ceil(left / Math.max(perOp, 1e-6))))
  }
  return (ops / ms) * 1000
}

/**
 * Milliseconds of CPU time this process has used. The benchmarks run on shared machines, where
 * wall time counts other processes' work; CPU time does not (it does count V8's helper threads,
 * such as the garbage collector's, which is work the candidate caused).
 */
export function cpuMs() {
  const { user, system } = process.cpuUsage()
  return (user + system) / 1000
}

/** Times `n` calls of `fn(i)`, in CPU milliseconds. */
export function timeSync(n, fn) {
  const start = cpuMs()
  for (let i = 0; i < n; i++) fn(i)
  return cpuMs() - start
}

/** Times `n` awaited calls of `fn(i)`, in CPU milliseconds. */
export async function timeAsync(n, fn) {
  const start = cpuMs()
  for (let i = 0; i < n; i++) await fn(i)
  return cpuMs() - start
}

export const fmt = (n) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1)).padStart(10)
export const ratio = (a, b) => (b > 0 ? `${(a / b).toFixed(1)}x` : '-').padStart(8)

/** Prints one table row: each candidate's ops/s, then walink's ratio to each other candidate. */
export function row(label, results, ours = 'walink') {
  const names = Object.keys(results)
  const cells = names.map((name) => `${name} ${fmt(results[name])}`).join('  ')
  const ratios = names.filter((name) => name !== ours).map((name) => `/${name} ${ratio(results[ours], results[name])}`).join(' ')
  console.log(`${label.padEnd(30)} ${cells}   ${ours}${ratios}`)
}

/** Keeps libraries that log through console.* (libsignal-node) quiet during a benchmark. */
export function silenceConsole() {
  const keep = console.log
  for (const level of ['info', 'warn', 'debug', 'error']) console[level] = () => {}
  console.log = (...args) => {
    if (typeof args[0] === 'string' && /^(Closing|Opening|Removing|Session|Decrypted|Migrat)/.test(args[0])) return
    keep(...args)
  }
}
