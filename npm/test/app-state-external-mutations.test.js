// A patch whose mutations travel as an external blob, end to end through connect() against
// walink-sim's mock-server: the phone mutes many chats in one patch (the app-state route's
// `chats`), its encoded mutations exceed walink-sim's external-mutation threshold (1,024 bytes),
// so the server sends the patch with empty inline mutations and `externalMutations` pointing to
// an encrypted SyncdMutations blob on its media path. The driver downloads the blob, the core
// verifies and applies it, and the client's chat settings match the phone's. A one-mutation
// patch of the same account stays inline (no download).
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { MemoryStore, connect } from 'walink'
import { startMockServer, testTrustRoot, withMockServer } from './support/mock-server.js'

withMockServer(test, 'app-state external mutations against the mock-server', () => {
  let server
  before(async () => {
    server = await startMockServer(23)
  })
  after(() => server?.stop())

  test('a patch with external mutations is downloaded by the driver and applied', async () => {
    const phone = '15550008811'
    await server.control('POST', '/accounts', { phone })
    const options = await server.control('POST', `/accounts/${phone}/app-state-options`, {
      auto_share: true,
      external_mutations: true,
    })
    assert.equal(options.external_patches_served, 0)

    const events = []
    const errors = []
    const fetched = []
    const waiters = []
    const connection = await connect({
      url: server.url,
      store: new MemoryStore(),
      config: { trustRoot: testTrustRoot(), deviceName: 'walink external mutations test', mediaOrigin: server.controlUrl },
      fetch: (url, init) => {
        fetched.push(url)
        return globalThis.fetch(url, init)
      },
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
    })
    const waitFor = (predicate, ms = 30_000) => {
      const seen = events.find(predicate)
      if (seen) return Promise.resolve(seen)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out; events: ${events.map((e) => e.type).join(' ')}`)), ms)
        waiters.push({ predicate, resolve: (e) => (clearTimeout(timer), resolve(e)) })
      })
    }
    try {
      const code = await connection.pairWithCode(phone)
      await server.control('POST', `/accounts/${phone}/code`, { code })
      await waitFor((e) => e.type === 'paired')

      // One mutation: an inline patch, applied without any download.
      const first = '15557771000@s.whatsapp.net'
      const small = await server.control('POST', `/accounts/${phone}/app-state`, { action: 'mute', chat: first })
      assert.equal(small.mutations, 1)
      await waitFor((e) => e.type === 'chatSettings' && e.chat === first)
      // (The phone's history blobs, md-msg-hist, are fetched too.)
      const appStateBlobs = () => fetched.filter((url) => String(url).includes('/v/sim/md-app-state/'))
      assert.equal(appStateBlobs().length, 0, 'a small patch stays inline')

      // Twenty mutations in one patch: above the threshold, so the mutations are a blob.
      const chats = Array.from({ length: 20 }, (_, i) => `1555777${String(2000 + i)}@s.whatsapp.net`)
      const until = 1_900_000_000_000
      const large = await server.control('POST', `/accounts/${phone}/app-state`, { action: 'mute', chats, until })
      assert.equal(large.collection, 'regular_high')
      assert.equal(large.mutations, chats.length)
      assert.equal(large.version, small.version + 1, 'one patch')
      for (const chat of chats) {
        const event = await waitFor((e) => e.type === 'chatSettings' && e.chat === chat)
        assert.equal(event.settings.mutedUntilMs, until)
      }

      // The core asked for the mutations blob: a GET of the media origin and the blob's path.
      assert.ok(appStateBlobs().length >= 1 && fetched.every((url) => url.startsWith(`${server.controlUrl}/v/sim/md-`)), `${fetched}`)
      const counters = await server.control('POST', `/accounts/${phone}/app-state-options`, {})
      assert.ok(counters.external_patches_served >= 1, 'the server sent the patch with external mutations')
      assert.equal(counters.snapshots_served, 0, 'patches, not a snapshot')

      // The client's view equals the phone's, from the events and from getChatSettings.
      for (const chat of [first, chats[0], chats[19]]) {
        const phoneSide = await server.control('GET', `/accounts/${phone}/chat-settings?chat=${encodeURIComponent(chat)}`)
        const answer = await connection.command({ type: 'getChatSettings', chat })
        assert.equal(answer.kind, 'chatSettings')
        assert.equal(answer.settings.mutedUntilMs, phoneSide.muted_until, chat)
      }
      assert.ok(!events.some((e) => e.type === 'appStateFatal'))
      assert.deepEqual(errors, [])
    } finally {
      await connection.close()
    }
  })
})
