// A walink `connect()` client against the mock-server that keeps its events and resolves
// `waitFor(predicate)` when one arrives (for the tests and benchmarks that drive several clients).
import { MemoryStore, connect } from 'walink'

import { testTrustRoot } from './mock-server.js'

/**
 * Connects a client on `store` (a MemoryStore unless given), with `config` added to the test
 * configuration; resolves `{ connection, events, waitFor }`.
 */
export async function walinkClient(server, { store = new MemoryStore(), onEvent = () => {}, name = 'walink test', config = {}, options = {} } = {}) {
  const events = []
  const waiters = []
  const connection = await connect({
    ...options,
    url: server.url,
    store,
    // The mock-server is the media host too.
    config: { trustRoot: testTrustRoot(), deviceName: name, mediaOrigin: server.controlUrl, ...config },
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
  const waitFor = (predicate, what = 'an event', ms = 20_000) => {
    const seen = events.find(predicate)
    if (seen) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`walink: timed out waiting for ${what}; events: ${events.map((e) => e.type + (e.state ? ':' + e.state.kind : '') + (e.text ? `:${e.text}` : '')).join(' ')}`)), ms)
      waiters.push({ predicate, resolve: (e) => (clearTimeout(timer), resolve(e)) })
    })
  }
  return { connection, events, waitFor }
}

/**
 * A new account `phone` on the mock-server and a walink client (on `store`) paired to it by code,
 * connected; `options` go to `connect`.
 */
export async function pairedWalinkClient(server, phone, name, store = new MemoryStore(), options = {}) {
  await server.control('POST', '/accounts', { phone, name })
  const client = await walinkClient(server, { store, options })
  const code = await client.connection.pairWithCode(phone)
  await server.control('POST', `/accounts/${phone}/code`, { code })
  await client.waitFor((e) => e.type === 'paired', 'pairing')
  await client.waitFor((e) => e.type === 'state' && e.state.kind === 'connected', 'connected')
  return client
}

/** Polls the phone of `phone` until it received `text`; resolves with that message. */
export async function phoneReceives(server, phone, text, ms = 20_000) {
  const deadline = Date.now() + ms
  for (;;) {
    const { messages } = await server.control('GET', `/accounts/${phone}/messages`)
    const found = messages.find((m) => m.text === text)
    if (found) return found
    if (Date.now() > deadline) throw new Error(`the phone of ${phone} did not receive ${JSON.stringify(text)}: ${JSON.stringify(messages)}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}
