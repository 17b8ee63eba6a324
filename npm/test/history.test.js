// History sync through the mock-server: a walink client pairs by code, and the phone's history
// (sized by what the client asked for) arrives as events: conversations, their messages as the
// same `message` events live ones are (with `history: true`), push names and each chunk's
// progress; the client downloads each blob from the media host, and acknowledges each chunk.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { startMockServer, withMockServer } from './support/mock-server.js'
import { walinkClient } from './support/walink-client.js'

const ANN = '15550007001'
const BEN = '15550007002'
const CAL = '15550007003'

withMockServer(test, 'history sync', () => {
  let server
  before(async () => {
    server = await startMockServer()
    await server.control('POST', '/accounts', { phone: ANN, name: 'Ann' })
    await server.control('POST', '/accounts', { phone: BEN, name: 'Ben' })
    await server.control('POST', '/accounts', { phone: CAL, name: 'Cal' })
  })
  after(() => server?.stop())

  const send = (from, to, text) => server.control('POST', `/accounts/${from}/send`, { to, text })

  /** A client paired to `phone` by code with `config`, once it saw `chunks` history chunks. */
  const pairedWithHistory = async (phone, config, chunks) => {
    // The mock-server's control port is its media host.
    const client = await walinkClient(server, { config: { mediaOrigin: server.controlUrl, ...config } })
    const code = await client.connection.pairWithCode(phone)
    await server.control('POST', `/accounts/${phone}/code`, { code })
    await client.waitFor((e) => e.type === 'state' && e.state.kind === 'connected', 'connected')
    const seen = () => client.events.filter((e) => e.type === 'historySync').length
    await client.waitFor(() => seen() >= chunks, `${chunks} history chunks`)
    await client.waitFor((e) => e.type === 'historySync' && e.progress === 100, 'the last chunk')
    return client
  }

  test('the history at pairing arrives as conversations, messages, push names and progress', async () => {
    // Ann's phone: 60 texts to Ben (more than one RECENT chunk holds), one to Cal, one from Ben.
    for (let i = 0; i < 60; i++) await send(ANN, BEN, `ann to ben ${i}`)
    await send(ANN, CAL, 'ann to cal')
    await send(BEN, ANN, 'ben to ann')
    const ann = await pairedWithHistory(ANN, {}, 3)
    const chunks = ann.events.filter((e) => e.type === 'historySync')
    assert.deepEqual(
      chunks.map((c) => [c.syncType, c.chunkOrder, c.failure]),
      [['initial_bootstrap', 1, undefined], ['recent', 1, undefined], ['recent', 2, undefined]],
    )
    const chats = ann.events.filter((e) => e.type === 'historyConversation')
    assert.ok(chats.some((c) => c.chat === `${BEN}@s.whatsapp.net` && c.syncType === 'initial_bootstrap'))
    assert.ok(chats.some((c) => c.chat === `${CAL}@s.whatsapp.net`))
    const history = ann.events.filter((e) => e.type === 'message' && e.history)
    const texts = history.map((m) => m.text).sort()
    const want = [...Array.from({ length: 60 }, (_, i) => `ann to ben ${i}`), 'ann to cal', 'ben to ann'].sort()
    assert.deepEqual(texts, want, 'every message exactly once')
    const fromBen = history.find((m) => m.text === 'ben to ann')
    assert.equal(fromBen.chat, `${BEN}@s.whatsapp.net`)
    assert.equal(fromBen.sender, `${BEN}@s.whatsapp.net`)
    const mine = history.find((m) => m.text === 'ann to cal')
    assert.equal(mine.sender, `${ANN}@s.whatsapp.net`, 'our own messages name us as the sender')
    assert.equal(mine.fromMe, true)
    // The content model reads history messages as it reads live ones (Baileys-style JSON).
    assert.equal(mine.message.conversation, 'ann to cal')
    const names = ann.events.filter((e) => e.type === 'pushName').map((e) => [e.jid, e.name]).sort()
    assert.deepEqual(names, [[`${BEN}@s.whatsapp.net`, 'Ben'], [`${CAL}@s.whatsapp.net`, 'Cal']])
    // A live message after the history is not marked as history.
    await send(BEN, ANN, 'live after history')
    const live = await ann.waitFor((e) => e.type === 'message' && e.text === 'live after history', 'a live message')
    assert.equal(live.history, false)
    await ann.connection.close()
  })

  test('the phone sends only the messages per chat asked for, and none for "none"', async () => {
    const few = await pairedWithHistory(BEN, { historyMessagesPerChat: 3 }, 1)
    const history = few.events.filter((e) => e.type === 'message' && e.history)
    // Ben's chat with Ann holds 63 messages; the phone sends 3 of them (the newest).
    assert.equal(history.length, 3, JSON.stringify(history.map((m) => m.text)))
    assert.ok(history.every((m) => m.chat === `${ANN}@s.whatsapp.net`))
    await few.connection.close()

    const none = await pairedWithHistory(CAL, { history: 'none' }, 1)
    assert.ok(!none.events.some((e) => e.type === 'message' && e.history))
    assert.ok(!none.events.some((e) => e.type === 'historyConversation'))
    const [chunk] = none.events.filter((e) => e.type === 'historySync')
    assert.equal(chunk.syncType, 'push_name')
    assert.ok(none.events.some((e) => e.type === 'pushName' && e.name === 'Ann'))
    await none.connection.close()
  })

  test('the history options are checked', async () => {
    await assert.rejects(walinkClient(server, { config: { history: 'everything' } }), (error) => {
      assert.equal(error.code, 'invalid_config')
      return true
    })
  })
})
