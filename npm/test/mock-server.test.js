// The npm package against walink-sim's mock-server over a real websocket (the `ws` package):
// QR pairing, restart from the file store, pairing by code, logout, 1:1 messages both ways between
// two walink clients and with the other account's phone, every kind of content (reply, reaction,
// edit, revoke, poll and vote) in a group, group messages both ways, a contact
// whose identity key changes (reported; refused until approved under the strict policy).
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'

import { FileStore, MemoryStore, content } from 'walink'
import { startMockServer, withMockServer } from './support/mock-server.js'
import { pairedWalinkClient, phoneReceives as phoneReceivesText, walinkClient } from './support/walink-client.js'

withMockServer(test, 'mock-server tests', () => {
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
  const client = (store, onEvent, config) => walinkClient(server, { store, onEvent, config })

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

  test('pairing by code, then logout empties the store; the client rests and can pair again', async () => {
    await server.control('POST', '/accounts', { phone: '15550002222', name: 'Bob' })
    const store = await FileStore.open(join(root, 'bob'))
    const bob = await client(store)
    const code = await bob.connection.pairWithCode('15550002222')
    assert.match(code, /^[0-9A-Z]{8}$/)
    await server.control('POST', '/accounts/15550002222/code', { code })
    await bob.waitFor((e) => e.type === 'paired')
    await bob.waitFor(connected)
    await bob.connection.logout()
    await bob.waitFor((e) => e.type === 'state' && e.state.kind === 'loggedOut')
    assert.deepEqual(await store.loadAll(), [])
    // No state is a dead end (the core's policy): the connection rests until a command, and
    // `connect` links a new device, which shows QR codes again.
    const from = bob.events.length
    await bob.connection.command({ type: 'connect' })
    await bob.waitFor((e) => bob.events.indexOf(e) >= from && e.type === 'qr')
    assert.ok((await store.loadAll()).some((r) => r.space === 'device'), 'a new device was stored')
    await bob.connection.close()
    assert.deepEqual(await bob.connection.ended, { error: null })
  })

  test('a pairing code the server refuses ends in pairingCodeFailed, its own typed reason', async () => {
    // A well-formed number without an account: the server answers the code request with 400.
    const carol = await client(new MemoryStore())
    await carol.waitFor((e) => e.type === 'qr')
    await assert.rejects(carol.connection.pairWithCode('15550009999'), (error) => {
      assert.equal(error.code, 'rejected')
      assert.equal(error.detail.serverCode, 400)
      return true
    })
    const failed = await carol.waitFor((e) => e.type === 'state' && e.reason.kind === 'pairingCodeFailed')
    assert.deepEqual(failed.state, { kind: 'awaitingPairing', mode: 'qr' })
    await carol.connection.close()
  })

  const pairedByCode = (phone, name, store) => pairedWalinkClient(server, phone, name, store)

  const textIs = (text) => (e) => e.type === 'message' && e.text === text

  const phoneReceives = (phone, text) => phoneReceivesText(server, phone, text)

  test('1:1 messages both ways: a second walink client and the other account\'s phone', async () => {
    const carol = await pairedByCode('15550003333', 'Carol')
    const dave = await pairedByCode('15550004444', 'Dave')
    const carolJid = '15550003333@s.whatsapp.net'
    const daveJid = '15550004444@s.whatsapp.net'

    // walink -> walink, and the recipient's phone gets the same message.
    const sent = await carol.connection.sendText(daveJid, 'hello Dave from walink')
    assert.equal(sent.kind, 'messageSent')
    const atDave = await dave.waitFor(textIs('hello Dave from walink'))
    assert.equal(atDave.chat, carolJid)
    assert.match(atDave.sender, /^15550003333(:\d+)?@s\.whatsapp\.net$/)
    const atDavesPhone = await phoneReceives('15550004444', 'hello Dave from walink')
    assert.equal(atDavesPhone.error, null)

    // The other way.
    await dave.connection.sendText(carolJid, 'hello Carol from walink')
    const atCarol = await carol.waitFor(textIs('hello Carol from walink'))
    assert.equal(atCarol.chat, daveJid)
    await phoneReceives('15550003333', 'hello Carol from walink')

    // The other account's phone -> walink, and walink -> that phone.
    await server.control('POST', '/accounts/15550004444/send', { to: '15550003333', text: 'from Dave\'s phone' })
    const fromPhone = await carol.waitFor(textIs('from Dave\'s phone'))
    assert.equal(fromPhone.chat, daveJid)
    assert.equal(fromPhone.sender, daveJid, 'the primary phone is device 0')
    // Dave's own companion sees the phone's message too (mirrored to the sender's devices).
    const mirrored = await dave.waitFor(textIs('from Dave\'s phone'))
    assert.equal(mirrored.chat, carolJid)

    assert.ok(!carol.events.some((e) => e.type === 'decryptFailed'), 'Carol decrypted everything')
    assert.ok(!dave.events.some((e) => e.type === 'decryptFailed'), 'Dave decrypted everything')
    await carol.connection.close()
    await dave.connection.close()
  })

  test('every kind of content between two walink clients: reply, reaction, edit, revoke, a poll with votes counted', async () => {
    const gina = await pairedByCode('15550007777', 'Gina')
    const hugo = await pairedByCode('15550008888', 'Hugo')
    const group = await server.control('POST', '/groups', { creator: '15550007777', subject: 'content', members: ['15550008888'] })
    const idIs = (id) => (e) => e.type === 'message' && e.id === id

    const { id: helloId } = await gina.connection.sendMessage(group.jid, { conversation: 'hello group' })
    const hello = await hugo.waitFor(idIs(helloId))
    assert.equal(hello.message.conversation, 'hello group')
    assert.equal(hello.message.messageContextInfo.messageSecret.length, 32)
    assert.equal(hello.fromMe, false)
    const key = content.keyOf(hello)
    assert.match(key.participant, /^15550007777@s\.whatsapp\.net$/)

    const { id: replyId } = await hugo.connection.sendMessage(group.jid, content.reply(hello, 'hi Gina'))
    const reply = await gina.waitFor(idIs(replyId))
    assert.equal(reply.text, 'hi Gina')
    assert.equal(reply.message.extendedTextMessage.contextInfo.stanzaId, helloId)
    assert.equal(reply.message.extendedTextMessage.contextInfo.quotedMessage.conversation, 'hello group')

    // Hugo's key names Gina's message as hers; Gina receives it as her own.
    const ginasKey = { ...key, fromMe: true }
    const { id: reactionId } = await hugo.connection.sendMessage(group.jid, content.reaction(key, '❤️'))
    const reaction = await gina.waitFor(idIs(reactionId))
    assert.equal(reaction.message.reactionMessage.text, '❤️')
    assert.deepEqual(reaction.message.reactionMessage.key, ginasKey)

    const ownKey = { remoteJid: group.jid, fromMe: true, id: helloId }
    const { id: editId } = await gina.connection.sendMessage(group.jid, content.edit(ownKey, 'hello, group'))
    const edit = await hugo.waitFor(idIs(editId))
    assert.equal(edit.message.protocolMessage.type, 14)
    assert.equal(edit.message.protocolMessage.editedMessage.conversation, 'hello, group')
    assert.deepEqual(edit.message.protocolMessage.key, key)
    const { id: revokeId } = await gina.connection.sendMessage(group.jid, content.revoke(ownKey))
    const revoke = await hugo.waitFor(idIs(revokeId))
    assert.equal(revoke.message.protocolMessage.type, 0)
    assert.deepEqual(revoke.message.protocolMessage.key, key)

    // A poll; Hugo votes, Gina counts it; a vote on an unknown poll is refused.
    const { id: pollId } = await gina.connection.sendMessage(group.jid, content.poll('lunch?', ['pizza', 'sushi']))
    const poll = await hugo.waitFor(idIs(pollId))
    assert.deepEqual(poll.message.pollCreationMessage.options.map((o) => o.optionName), ['pizza', 'sushi'])
    await hugo.connection.sendPollVote(group.jid, pollId, ['sushi'])
    const vote = await gina.waitFor((e) => e.type === 'message' && e.pollVote?.pollId === pollId)
    assert.deepEqual(vote.pollVote.selected, ['sushi'])
    assert.deepEqual(vote.pollVote.tally.map((o) => [o.name, o.voters.length]), [['pizza', 0], ['sushi', 1]])
    assert.equal(vote.pollVote.voter, vote.pollVote.tally[1].voters[0])
    await assert.rejects(hugo.connection.sendPollVote(group.jid, '3EB0NOPOLL', ['sushi']), { code: 'unknown_poll' })
    await assert.rejects(gina.connection.sendMessage(group.jid, { notAField: {} }), { code: 'invalid_message' })

    assert.ok(!gina.events.some((e) => e.type === 'decryptFailed'))
    assert.ok(!hugo.events.some((e) => e.type === 'decryptFailed'))
    await gina.connection.close()
    await hugo.connection.close()
  })

  test('group messages both ways between two walink clients', async () => {
    const erin = await pairedByCode('15550005555', 'Erin')
    const frank = await pairedByCode('15550006666', 'Frank')
    const group = await server.control('POST', '/groups', { creator: '15550005555', subject: 'walink', members: ['15550006666'] })
    assert.match(group.jid, /^\d+@g\.us$/)

    for (let round = 0; round < 3; round++) {
      await erin.connection.sendText(group.jid, `group from Erin ${round}`)
      const atFrank = await frank.waitFor(textIs(`group from Erin ${round}`))
      assert.equal(atFrank.chat, group.jid)
      assert.match(atFrank.sender, /^15550005555(:\d+)?@s\.whatsapp\.net$/)

      await frank.connection.sendText(group.jid, `group from Frank ${round}`)
      const atErin = await erin.waitFor(textIs(`group from Frank ${round}`))
      assert.equal(atErin.chat, group.jid)
      assert.match(atErin.sender, /^15550006666(:\d+)?@s\.whatsapp\.net$/)
    }
    // Each client got the other's messages exactly once and not its own.
    const texts = (c) => c.events.filter((e) => e.type === 'message' && e.chat === group.jid).map((e) => e.text)
    assert.deepEqual(texts(frank), [0, 1, 2].map((r) => `group from Erin ${r}`))
    assert.deepEqual(texts(erin), [0, 1, 2].map((r) => `group from Frank ${r}`))
    assert.ok(!erin.events.some((e) => e.type === 'decryptFailed'))
    assert.ok(!frank.events.some((e) => e.type === 'decryptFailed'))
    await erin.connection.close()
    await frank.connection.close()
  })

  test('a contact that reinstalls its phone: identityChanged, then strict refusal and approval', async () => {
    const store = new MemoryStore()
    const grace = await pairedByCode('15550007779', 'Grace', store)
    const heidi = '15550008880'
    await server.control('POST', '/accounts', { phone: heidi, name: 'Heidi' })
    await server.control('POST', `/accounts/${heidi}/send`, { to: '15550007779', text: 'before' })
    await grace.waitFor(textIs('before'))

    // WhatsApp's behaviour (the default): the new key is trusted and reported.
    const answer = await server.control('POST', `/accounts/${heidi}/reinstall`, { to: '15550007779', text: 'after the reinstall' })
    const change = await grace.waitFor((e) => e.type === 'identityChanged')
    assert.equal(change.accepted, true)
    assert.equal(Buffer.from(change.identity).toString('hex'), answer.identity)
    assert.equal(change.previous.length, 32)
    await grace.waitFor(textIs('after the reinstall'))
    const stored = await grace.connection.getIdentity(change.address)
    assert.equal(stored.kind, 'identity')
    assert.deepEqual(stored.identity, change.identity)
    assert.equal(stored.pending, undefined)
    await grace.connection.close()

    // Strict: the next change is refused until approved; a send to the device fails, typed.
    const strict = await client(store, () => {}, { identityPolicy: 'strict' })
    await strict.waitFor(connected)
    await server.control('POST', `/accounts/${heidi}/reinstall`, { to: '15550007779', text: 'held for approval' })
    const pending = await strict.waitFor((e) => e.type === 'identityChanged')
    assert.equal(pending.accepted, false)
    const failed = await strict.waitFor((e) => e.type === 'decryptFailed')
    assert.equal(failed.kind, 'untrustedIdentity')
    assert.ok(!strict.events.some(textIs('held for approval')))
    await assert.rejects(strict.connection.sendText(`${heidi}@s.whatsapp.net`, 'to an untrusted device'), (error) => {
      assert.equal(error.code, 'untrusted_identity')
      assert.ok(error.detail.address.includes('@'))
      return true
    })
    await strict.connection.approveIdentity(pending.address, pending.identity)
    await strict.waitFor(textIs('held for approval'))
    await strict.connection.close()
  })
})
