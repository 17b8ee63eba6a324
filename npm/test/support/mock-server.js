// Starts walink-sim's mock-server (tests/src/bin/mock-server.rs: the simulated WhatsApp server
// over a real websocket, with an HTTP control API playing the phone). `startMockServer()`
// returns null when the binary is not built, so the tests that need it skip, except in CI
// (`CI` or `WALINK_REQUIRE_MOCK` set), where `mockServerRequired()` turns the skip into a failure.
import { spawn } from 'node:child_process'
import { createPrivateKey, createPublicKey } from 'node:crypto'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const REPO = fileURLToPath(new URL('../../..', import.meta.url))

/** The mock-server binary: $WALINK_MOCK_SERVER, or the debug build of the cargo target dir. */
export function mockServerPath() {
  const candidates = [
    process.env.WALINK_MOCK_SERVER,
    process.env.CARGO_TARGET_DIR && `${process.env.CARGO_TARGET_DIR}/debug/mock-server`,
    `${REPO}target/debug/mock-server`,
  ].filter(Boolean)
  return candidates.find((path) => existsSync(path)) ?? null
}

/**
 * True when a missing mock-server must fail the tests instead of skipping them: in CI (`CI` set)
 * or when `WALINK_REQUIRE_MOCK` is set (build.sh's test step sets it).
 */
export function mockServerRequired() {
  const set = (name) => {
    const value = process.env[name]
    return value !== undefined && value !== '' && value !== '0' && value.toLowerCase() !== 'false'
  }
  return set('CI') || set('WALINK_REQUIRE_MOCK')
}

/**
 * Registers the suite `body` when the mock-server is built; otherwise skips it, or, when
 * `mockServerRequired()`, registers one test that fails saying the binary is missing.
 */
export function withMockServer(test, name, body) {
  if (mockServerPath()) return body()
  if (mockServerRequired()) {
    test(`${name}: the mock-server binary is required (CI or WALINK_REQUIRE_MOCK is set)`, () => {
      throw new Error('mock-server is not built: cargo build -p walink-sim --bin mock-server (or set WALINK_MOCK_SERVER)')
    })
    return
  }
  console.log(`# skipped ${name}: mock-server is not built (cargo build -p walink-sim --bin mock-server)`)
}

/**
 * The simulation's test root (walink_sim::noise_server::ChainSpec::default(): the X25519 public
 * key of the private key 0x71 x 32), which clients must trust instead of WhatsApp's.
 */
export function testTrustRoot() {
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), Buffer.alloc(32, 0x71)])
  const spki = createPublicKey(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })).export({ format: 'der', type: 'spki' })
  return new Uint8Array(spki.subarray(spki.length - 32))
}

/** Starts the server; resolves with `{ url, control(method, path, body), stop() }`. */
export async function startMockServer(seed = 7) {
  const path = mockServerPath()
  if (!path) return null
  const proc = spawn(path, ['--seed', String(seed), '--until-stdin-closes'], { stdio: ['pipe', 'pipe', 'inherit'] })
  const line = await new Promise((resolve, reject) => {
    let buffered = ''
    proc.stdout.on('data', (data) => {
      buffered += data
      const end = buffered.indexOf('\n')
      if (end >= 0) resolve(buffered.slice(0, end))
    })
    proc.on('exit', (code) => reject(new Error(`mock-server exited with ${code}`)))
  })
  const match = /listening (ws:\/\/\S+) control (http:\/\/\S+)/.exec(line)
  if (!match) throw new Error(`unexpected mock-server banner: ${line}`)
  const [, ws, http] = match
  return {
    url: `${ws}/ws/chat`,
    /** The control endpoint's base URL (for another process). */
    controlUrl: http,
    async control(method, route, body) {
      const response = await fetch(`${http}${route}`, { method, body: body === undefined ? undefined : JSON.stringify(body) })
      const json = await response.json()
      if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${JSON.stringify(json)}`)
      return json
    },
    stop() {
      proc.stdin.end()
      proc.kill()
    },
  }
}
