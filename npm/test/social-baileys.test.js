// Differential check of calls, presence, chat state and the contact query against Baileys 7
// (baileys@7.0.0-rc14's whole socket, an independent WhatsApp Web client): a Baileys peer and a
// walink client, on two accounts of the mock-server, do the same things; the stanzas the server
// received from each are equal once ids and each side's own JIDs are normalised, and each side
// reads the server's answers (a call offer, a presence update, the usync contact answer) into
// the same facts. Fails, never skips, when Baileys cannot run (as baileys-socket.test.js).
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { USyncQuery, USyncUser } from 'baileys'
import { BaileysPeer, trustSimulationRoot } from './support/baileys.js'
import { startMockServer, withMockServer } from './support/mock-server.js'
import { MemoryStore } from 'walink'
import { walinkClient } from './support/walink-client.js'

const BAILEYS = '15550301001'
const WALINK = '15550301002'
const TARGET = '15550301003'
const NOBODY = '15550309999'
const NAME = 'Sam'
const pn = (phone) => `${phone}@s.whatsapp.net`

withMockServer(test, 'calls, presence and contacts against Baileys', () => {
  let server
  let peer
  let walink
  const accounts = {}

  before(async () => {
    server = await startMockServer(17)
    trustSimulationRoot()
    for (const phone of [BAILEYS, TARGET]) {
      accounts[phone] = await server.control('POST', '/accounts', { phone, name: NAME })
    }
    peer = await BaileysPeer.create(server.url)
    await peer.start()
    await peer.waitFor((p) => p.qrs.length > 0, 'the pairing socket')
    const code = await peer.sock.requestPairingCode(BAILEYS)
    await server.control('POST', `/accounts/${BAILEYS}/code`, { code })
    await peer.opens(1)
    // Baileys sends its presence only with a push name (as walink); both use the same one.
    peer.sock.authState.creds.me.name = NAME
    accounts[WALINK] = await server.control('POST', '/accounts', { phone: WALINK, name: NAME })
    walink = await walinkClient(server, { store: new MemoryStore(), config: { pushName: NAME } })
    const walinkCode = await walink.connection.pairWithCode(WALINK)
    await server.control('POST', `/accounts/${WALINK}/code`, { code: walinkCode })
    await walink.waitFor((e) => e.type === 'state' && e.state.kind === 'connected', 'connected')
  })
  after(async () => {
    await walink?.connection.close()
    await peer?.dispose()
    server?.stop()
  })

  /** The social stanzas `phone`'s companions sent, as the server decoded them. */
  const stanzas = async (phone) => (await server.control('GET', `/accounts/${phone}/social-stanzas`)).stanzas

  /** `node` with ids and the sender's own JIDs replaced by placeholders. */
  const normalised = (node, phone) => {
    const own = new RegExp(`^(${phone}|${accounts[phone].lid.split('@')[0]})(:\\d+)?@(s\\.whatsapp\\.net|lid)$`)
    const walk = (n) => ({
      tag: n.tag,
      attrs: Object.fromEntries(
        Object.entries(n.attrs)
          .map(([k, v]) => [k, k === 'id' || k === 'sid' ? '<id>' : own.test(v) ? '<own>' : v])
          .sort(([a], [b]) => a.localeCompare(b)),
      ),
      content: Array.isArray(n.content) ? n.content.map(walk) : n.content,
    })
    return walk(node)
  }

  /** Runs `baileys` and `walinkDoes`, then the newest stanza each side sent that `pick` selects, normalised. */
  const both = async (pick, baileys, walinkDoes) => {
    const before = { b: (await stanzas(BAILEYS)).length, w: (await stanzas(WALINK)).length }
    await baileys()
    await walinkDoes()
    const deadline = Date.now() + 10_000
    for (;;) {
      const b = (await stanzas(BAILEYS)).slice(before.b).filter(pick)
      const w = (await stanzas(WALINK)).slice(before.w).filter(pick)
      if (b.length && w.length) return [normalised(b.at(-1), BAILEYS), normalised(w.at(-1), WALINK)]
      assert.ok(Date.now() < deadline, `no stanza from ${b.length ? 'walink' : 'Baileys'}`)
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
  }

  test('own presence and presence subscription', async () => {
    const presence = (type) => (n) => n.tag === 'presence' && n.attrs.type === type
    let [b, w] = await both(
      presence('available'),
      () => peer.sock.sendPresenceUpdate('available'),
      () => walink.connection.command({ type: 'setPresence', available: true }),
    )
    assert.deepEqual(w, b)
    ;[b, w] = await both(
      presence('unavailable'),
      () => peer.sock.sendPresenceUpdate('unavailable'),
      () => walink.connection.command({ type: 'setPresence', available: false }),
    )
    assert.deepEqual(w, b)
    ;[b, w] = await both(
      presence('subscribe'),
      () => peer.sock.presenceSubscribe(pn(TARGET)),
      () => walink.connection.command({ type: 'subscribePresence', jid: pn(TARGET) }),
    )
    assert.deepEqual(w, b)
  })

  test('typing, recording and paused', async () => {
    for (const state of ['composing', 'recording', 'paused']) {
      const [b, w] = await both(
        (n) => n.tag === 'chatstate',
        () => peer.sock.sendPresenceUpdate(state, pn(TARGET)),
        () => walink.connection.command({ type: 'sendChatState', to: pn(TARGET), state }),
      )
      assert.deepEqual(w, b, state)
    }
  })

  test('presence updates read into the same facts', async () => {
    const seen = []
    peer.sock.ev.on('presence.update', (update) => seen.push(update))
    const from = walink.events.length
    await server.control('POST', `/accounts/${TARGET}/presence`, { available: true })
    await server.control('POST', `/accounts/${TARGET}/presence`, { available: false })
    const atWalink = async () => {
      const deadline = Date.now() + 10_000
      for (;;) {
        const updates = walink.events.slice(from).filter((e) => e.type === 'presence')
        if (updates.length >= 2 && seen.length >= 2) return updates
        assert.ok(Date.now() < deadline, 'presence updates')
        await new Promise((resolve) => setTimeout(resolve, 25))
      }
    }
    const updates = await atWalink()
    const baileysFacts = seen.slice(-2).map((u) => {
      const p = u.presences[pn(TARGET)]
      return { jid: u.id, available: p.lastKnownPresence === 'available', lastSeen: p.lastSeen }
    })
    const walinkFacts = updates.slice(-2).map((e) => ({ jid: e.jid, available: e.available, lastSeen: e.lastSeen }))
    assert.deepEqual(walinkFacts, baileysFacts)
  })

  test('a call offer reads into the same facts and is rejected with the same stanza', async () => {
    const calls = []
    peer.sock.ev.on('call', (list) => calls.push(...list))
    const from = walink.events.length
    const toBaileys = (await server.control('POST', `/accounts/${TARGET}/call`, { to: BAILEYS, video: true })).call_id
    const toWalink = (await server.control('POST', `/accounts/${TARGET}/call`, { to: WALINK, video: true })).call_id
    const deadline = Date.now() + 10_000
    let offer
    while (!(offer = walink.events.slice(from).find((e) => e.type === 'call' && e.callId === toWalink)) || !calls.some((c) => c.id === toBaileys)) {
      assert.ok(Date.now() < deadline, 'the offers')
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
    const call = calls.find((c) => c.id === toBaileys)
    assert.deepEqual(
      { caller: offer.caller, video: offer.video, isGroup: offer.isGroup, offline: offer.offline, action: offer.action },
      { caller: call.from, video: call.isVideo, isGroup: call.isGroup, offline: call.offline, action: call.status },
    )
    assert.equal(offer.timestamp * 1000, call.date.getTime())
    const [b, w] = await both(
      (n) => n.tag === 'call',
      () => peer.sock.rejectCall(toBaileys, call.from),
      () => walink.connection.command({ type: 'rejectCall', callId: toWalink, caller: offer.caller }),
    )
    const withoutCallId = (n) => ({ ...n, content: n.content.map((c) => ({ ...c, attrs: { ...c.attrs, 'call-id': '<call>' } })) })
    assert.deepEqual(withoutCallId(w), withoutCallId(b))
  })

  test('which numbers are on WhatsApp: the same query and the same answer', async () => {
    const usync = (n) => n.tag === 'iq' && n.attrs.xmlns === 'usync'
    let result
    const [b, w] = await both(
      usync,
      async () => {
        // onWhatsApp with the LID protocol walink (and whatsmeow) also asks for.
        const query = new USyncQuery().withContactProtocol().withLIDProtocol()
        for (const phone of [TARGET, NOBODY]) query.withUser(new USyncUser().withPhone(`+${phone}`))
        result = await peer.sock.executeUSyncQuery(query)
      },
      async () => {
        const output = await walink.connection.command({ type: 'checkNumbers', phones: [TARGET, NOBODY] })
        walink.numbers = output.numbers
      },
    )
    assert.deepEqual(w, b)
    const baileysFacts = result.list.map((u) => ({ jid: u.id, onWhatsApp: u.contact, lid: u.lid || undefined }))
    const walinkFacts = walink.numbers.map((n) => ({ jid: n.jid, onWhatsApp: n.onWhatsApp, lid: n.lid }))
    assert.deepEqual(walinkFacts, baileysFacts)
    // Baileys' own onWhatsApp reads the same answer (and leaves out the numbers not on WhatsApp).
    const plain = await peer.sock.onWhatsApp(TARGET, NOBODY)
    assert.deepEqual(plain, [{ jid: pn(TARGET), exists: true }])
  })
})
