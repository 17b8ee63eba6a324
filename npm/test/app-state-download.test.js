// App-state blobs through the driver, against walink-sim's mock-server: the phone's snapshot is
// served as an external blob (an ExternalBlobReference in <snapshot>, the encrypted file on the
// mock-server's media path), the core asks for it with a `fetch` output (its URL joined from the
// configured media origin and the blob's direct path), the driver carries it out with fetch and
// hands the response back, and the chat settings appear. A host fetch that fails climbs the core's
// recovery ladder to a typed appStateFatal, and is reported to onError.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { MemoryStore, connect } from 'walink'
import { startMockServer, testTrustRoot, withMockServer } from './support/mock-server.js'

withMockServer(test, 'app-state blobs against the mock-server', () => {
  let server
  before(async () => {
    server = await startMockServer(11)
  })
  after(() => server?.stop())

  /** A client of `phone` paired by code, with extra connect options and config; events are recorded. */
  async function pairedClient(phone, extra = {}, config = {}) {
    const events = []
    const errors = []
    const waiters = []
    const connection = await connect({
      url: server.url,
      store: new MemoryStore(),
      config: { trustRoot: testTrustRoot(), deviceName: 'walink app-state test', ...config },
      onEvent(event) {
        events.push(event)
        for (const w of [...waiters]) {
          if (w.predicate(event)) {
            waiters.splice(waiters.indexOf(w), 1)
            w.resolve(event)
          }
        }
      },
      onError: (error) => errors.push(error),
      ...extra,
    })
    const waitFor = (predicate, ms = 30_000) => {
      const seen = events.find(predicate)
      if (seen) return Promise.resolve(seen)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out; events: ${events.map((e) => e.type).join(' ')}`)), ms)
        waiters.push({ predicate, resolve: (e) => (clearTimeout(timer), resolve(e)) })
      })
    }
    const code = await connection.pairWithCode(phone)
    await server.control('POST', `/accounts/${phone}/code`, { code })
    await waitFor((e) => e.type === 'paired')
    return { connection, events, errors, waitFor }
  }

  /** An account whose phone muted `chats` (one patch each) with snapshots served as blobs. */
  async function accountWithSnapshot(phone, chats) {
    await server.control('POST', '/accounts', { phone })
    await server.control('POST', `/accounts/${phone}/app-state-options`, { auto_share: true, external_snapshots: true })
    let version = 0
    for (const chat of chats) {
      const answer = await server.control('POST', `/accounts/${phone}/app-state`, { action: 'mute', chat, until: 0 })
      assert.equal(answer.collection, 'regular_high')
      version = answer.version
    }
    return version
  }

  // The phone makes a snapshot every 4 versions: 4 mutes give a snapshot at version 4.
  const chats = ['15557770001', '15557770002', '15557770003', '15557770004'].map((n) => `${n}@s.whatsapp.net`)

  test('the driver downloads a snapshot blob over HTTP and the chat settings appear', async () => {
    const phone = '15550008801'
    assert.equal(await accountWithSnapshot(phone, chats), 4)
    const fetched = []
    const client = await pairedClient(
      phone,
      {
        fetch: (url, init) => {
          fetched.push(url)
          assert.equal(init.method, 'GET')
          return globalThis.fetch(url, init)
        },
      },
      { mediaOrigin: server.controlUrl },
    )
    for (const chat of chats) {
      const event = await client.waitFor((e) => e.type === 'chatSettings' && e.chat === chat)
      assert.equal(event.settings.mutedUntilMs, 0, 'muted forever')
    }
    // Besides the phone's history blobs (md-msg-hist), the snapshot's.
    const snapshots = fetched.filter((url) => url.startsWith(`${server.controlUrl}/v/sim/md-app-state/`))
    assert.ok(snapshots.length >= 1, 'the blob came over HTTP')
    assert.ok(fetched.every((url) => url.startsWith(`${server.controlUrl}/v/sim/md-`)), fetched.join(' '))
    const answer = await client.connection.command({ type: 'getChatSettings', chat: chats[2] })
    assert.equal(answer.kind, 'chatSettings')
    assert.equal(answer.settings.mutedUntilMs, 0)
    assert.ok(!client.events.some((e) => e.type === 'appStateFatal'))
    assert.deepEqual(client.errors, [])

    // A later mute on the phone arrives as a patch (server_sync), no download needed.
    const later = '15557770005@s.whatsapp.net'
    await server.control('POST', `/accounts/${phone}/app-state`, { action: 'mute', chat: later, until: 1_900_000_000_000 })
    const event = await client.waitFor((e) => e.type === 'chatSettings' && e.chat === later)
    assert.equal(event.settings.mutedUntilMs, 1_900_000_000_000)
    await client.connection.close()
  })

  test('a failing host fetch ends in a typed appStateFatal, reported to onError', async () => {
    const phone = '15550008802'
    await accountWithSnapshot(phone, chats)
    let attempts = 0
    const client = await pairedClient(phone, {
      fetch: async (url) => {
        attempts++
        assert.match(url, /^https:\/\/mmg\.whatsapp\.net\/v\/sim\/md-app-state\//)
        throw new Error('offline')
      },
    })
    const fatal = await client.waitFor((e) => e.type === 'appStateFatal')
    assert.equal(fatal.collection, 'regular_high')
    assert.equal(fatal.error.kind, 'download')
    assert.ok(attempts >= 2, `the core retried (${attempts} downloads)`)
    assert.ok(client.errors.length >= 1)
    assert.ok(client.errors.every((e) => e.code === 'fetch_failed' && e.fetchError === 'network'))
    assert.ok(!client.events.some((e) => e.type === 'chatSettings'), 'nothing half-applied')
    await client.connection.close()
  })

  test('any status reaches the core, which decides: a 404 is a failed download, refetched', async () => {
    const phone = '15550008803'
    await accountWithSnapshot(phone, chats)
    const statuses = []
    const client = await pairedClient(
      phone,
      {
        fetch: async (url, init) => {
          // The first answer is a 404 (not a transport failure); then the real file.
          const response = statuses.length === 0 ? new Response('gone', { status: 404 }) : await globalThis.fetch(url, init)
          statuses.push(response.status)
          return response
        },
      },
      { mediaOrigin: server.controlUrl },
    )
    await client.waitFor((e) => e.type === 'chatSettings' && e.chat === chats[0])
    assert.deepEqual(statuses.slice(0, 2), [404, 200])
    assert.deepEqual(client.errors, [], 'a response of any status is not a driver error')
    assert.ok(!client.events.some((e) => e.type === 'appStateFatal'))
    await client.connection.close()
  })
})
