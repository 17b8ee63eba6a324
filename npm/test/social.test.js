// Calls, presence and chat state, contact queries: walink clients through the mock-server
// (tests/src/sim/server/social.rs), as a gateway uses them: reject an incoming call, show
// typing, check which numbers are on WhatsApp (and the typed failures).
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { MemoryStore } from 'walink'
import { startMockServer, withMockServer } from './support/mock-server.js'
import { walinkClient } from './support/walink-client.js'

withMockServer(test, 'calls, presence and contacts through the mock-server', () => {
  let server

  const paired = async (phone, name) => {
    await server.control('POST', '/accounts', { phone, name })
    const client = await walinkClient(server, { store: new MemoryStore(), config: { pushName: name } })
    const code = await client.connection.pairWithCode(phone)
    await server.control('POST', `/accounts/${phone}/code`, { code })
    await client.waitFor((e) => e.type === 'state' && e.state.kind === 'connected', 'connected')
    return client
  }

  let ann
  let ben
  before(async () => {
    server = await startMockServer()
    ann = await paired('15551110001', 'Ann')
    ben = await paired('15551110002', 'Ben')
  })
  after(async () => {
    await ann?.connection.close()
    await ben?.connection.close()
    server?.stop()
  })

  test('an incoming call arrives as an event and is rejected as WhatsApp Web does', async () => {
    const { call_id: callId } = await server.control('POST', '/accounts/15551110002/call', { to: '15551110001', video: true })
    const offer = await ann.waitFor((e) => e.type === 'call' && e.callId === callId, 'the offer')
    assert.equal(offer.action, 'offer')
    assert.equal(offer.caller, '15551110002@s.whatsapp.net')
    assert.equal(offer.video, true)
    assert.equal(offer.offline, false)
    const output = await ann.connection.command({ type: 'rejectCall', callId, caller: offer.caller })
    assert.deepEqual(output, { kind: 'none' })
    let rejected
    for (let i = 0; i < 200 && !rejected; i++) {
      ;({ rejected } = await server.control('GET', '/rejected-calls'))
      rejected = rejected.find((r) => r.call_id === callId)
      if (!rejected) await new Promise((resolve) => setTimeout(resolve, 25))
    }
    assert.equal(rejected.by, '15551110001')
    assert.equal(rejected.creator, '15551110002@s.whatsapp.net')
  })

  test('typing and recording reach the other client; presence needs the subscription', async () => {
    await ben.connection.command({ type: 'subscribePresence', jid: '15551110001@s.whatsapp.net' })
    await ann.connection.command({ type: 'setPresence', available: true })
    const online = await ben.waitFor((e) => e.type === 'presence' && e.available, 'Ann online')
    assert.equal(online.jid, '15551110001@s.whatsapp.net')
    await ann.connection.command({ type: 'sendChatState', to: '15551110002@s.whatsapp.net', state: 'composing' })
    const typing = await ben.waitFor((e) => e.type === 'chatState', 'typing')
    assert.deepEqual(
      { chat: typing.chat, sender: typing.sender, state: typing.state },
      { chat: '15551110001@s.whatsapp.net', sender: '15551110001@s.whatsapp.net', state: 'composing' },
    )
    await ann.connection.command({ type: 'sendChatState', to: '15551110002@s.whatsapp.net', state: 'recording' })
    await ben.waitFor((e) => e.type === 'chatState' && e.state === 'recording', 'recording')
    await assert.rejects(
      ann.connection.command({ type: 'sendChatState', to: '15551110002@s.whatsapp.net', state: 'dancing' }),
      /unknown chat state/,
    )
  })

  test('which numbers are on WhatsApp, with LIDs; typed failures', async () => {
    const output = await ann.connection.command({ type: 'checkNumbers', phones: ['+1 555 111 0002', '15559999999'] })
    assert.equal(output.kind, 'numbers')
    const [benInfo, nobody] = output.numbers
    assert.equal(benInfo.onWhatsApp, true)
    assert.equal(benInfo.jid, '15551110002@s.whatsapp.net')
    assert.match(benInfo.lid, /@lid$/)
    assert.equal(nobody.onWhatsApp, false)
    assert.equal(nobody.lid, undefined)
    await server.control('POST', '/fail-next-contact-query', { code: 429 })
    await assert.rejects(ann.connection.command({ type: 'checkNumbers', phones: ['15551110002'] }), (error) => {
      assert.equal(error.code, 'rate_limited')
      return true
    })
    await assert.rejects(ann.connection.command({ type: 'checkNumbers', phones: ['12'] }), (error) => {
      assert.equal(error.code, 'invalid_phone_number')
      return true
    })
    const picture = await ann.connection.command({ type: 'getProfilePicture', jid: '15551110002@s.whatsapp.net' })
    assert.deepEqual(picture, { kind: 'profilePicture', picture: { kind: 'none' } })
  })
})
