// The npm package against walink-sim's mock-server over a real websocket (the `ws` package):
// QR pairing, restart from the file store, pairing by code, logout.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'

import { FileStore, connect } from 'walink'
import { mockServerPath, startMockServer, testTrustRoot } from './support/mock-server.js'

if (!mockServerPath()) {
  console.log('# skipped: mock-server is not built (cargo build -p walink-sim --bin mock-server)')
} else {
  let server
  let root
  before(async () => {
    server = await startMockServer()
    root = await mkdtemp(join(tmpdir(), 'walink-mock-'))
  })
  after(async () => {
    server?.stop()
    await rm(root, { recursive: true, force: true })
  })

  /** Connects a client on `store`, calling `onEvent` and resolving `waitFor(predicate)` on events. */
  async function client(store, onEvent = () => {}) {
    const events = []
    const waiters = []
    const connection = await connect({
      url: server.url,
      store,
      config: { trustRoot: testTrustRoot(), deviceName: 'walink test' },
      onEvent(event) {
        events.push(event)
        onEvent(event)
        for (const w of [...waiters]) {
          if (w.predicate(event)) {
            waiters.splice(waiters.indexOf(w), 1)
            w.resolve(event)
          }
        }
      },
    })
    const waitFor = (predicate, ms = 20_000) => {
      const seen = events.find(predicate)
      if (seen) return Promise.resolve(seen)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out; events: ${events.map((e) => e.type + (e.state ? ':' + e.state.kind : '')).join(' ')}`)), ms)
        waiters.push({ predicate, resolve: (e) => (clearTimeout(timer), resolve(e)) })
      })
    }
    return { connection, events, waitFor }
  }

  const connected = (e) => e.type === 'state' && e.state.kind === 'connected'

  test('QR pairing, then a restart from the file store logs in without pairing again', async () => {
    await server.control('POST', '/accounts', { phone: '15550001111', name: 'Alice' })
    const dir = join(root, 'alice')
    const first = await client(await FileStore.open(dir), (event) => {
      if (event.type === 'qr') server.control('POST', '/accounts/15550001111/scan', { qr: event.payload }).catch(() => {})
    })
    const paired = await first.waitFor((e) => e.type === 'paired')
    assert.match(paired.jid, /^15550001111:\d+@s\.whatsapp\.net$/)
    await first.waitFor(connected)
    await first.connection.close()

    const second = await client(await FileStore.open(dir))
    await second.waitFor(connected)
    assert.ok(!second.events.some((e) => e.type === 'qr'), 'no QR after a restart')
    const devices = await server.control('GET', '/accounts/15550001111/devices')
    assert.ok(devices.devices.some((d) => d.online))
    await second.connection.close()
  })

  test('pairing by code, then logout ends the connection and empties the store', async () => {
    await server.control('POST', '/accounts', { phone: '15550002222', name: 'Bob' })
    const store = await FileStore.open(join(root, 'bob'))
    const bob = await client(store)
    const code = await bob.connection.pairWithCode('15550002222')
    assert.match(code, /^[0-9A-Z]{8}$/)
    await server.control('POST', '/accounts/15550002222/code', { code })
    await bob.waitFor((e) => e.type === 'paired')
    await bob.waitFor(connected)
    await bob.connection.logout()
    assert.deepEqual(await bob.connection.ended, { error: null })
    assert.deepEqual(await store.loadAll(), [])
  })
}
