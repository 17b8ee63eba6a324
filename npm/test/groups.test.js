// Group administration from the npm package against walink-sim's mock-server: a walink client
// creates a group with another walink client's account, adds a member (one result per
// participant), the member's client learns it from a `group` event, and a member who is no
// admin is refused with the typed `forbidden` code.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { startMockServer, withMockServer } from './support/mock-server.js'
import { pairedWalinkClient } from './support/walink-client.js'

withMockServer(test, 'group tests', () => {
  let server
  before(async () => {
    server = await startMockServer()
  })
  after(() => server?.stop())

  test('create a group, add a member, the member is told; a non-admin is refused', async () => {
    const alice = await pairedWalinkClient(server, '15550301111', 'Alice')
    const bob = await pairedWalinkClient(server, '15550302222', 'Bob')
    await server.control('POST', '/accounts', { phone: '15550303333', name: 'Carol' })
    await server.control('POST', '/accounts', { phone: '15550304444', name: 'Dave' })
    await server.control('POST', '/group-options', { add_restricted: ['15550304444'] })

    const created = await alice.connection.command({
      type: 'createGroup',
      subject: 'Team',
      participants: ['15550302222@s.whatsapp.net', '15550304444@s.whatsapp.net'],
    })
    assert.equal(created.kind, 'groupCreated')
    assert.equal(created.info.subject, 'Team')
    assert.deepEqual(created.info.admins, ['15550301111@s.whatsapp.net'])
    const dave = created.participants.find((p) => p.jid === '15550304444@s.whatsapp.net')
    assert.equal(dave.status, 'inviteRequired')
    assert.ok(dave.inviteCode.length > 0 && dave.inviteExpiration > 0)
    const group = created.info.jid

    const added = await alice.connection.command({
      type: 'changeGroupParticipants',
      group,
      action: 'add',
      participants: ['15550303333@s.whatsapp.net', '15550309999@s.whatsapp.net'],
    })
    assert.equal(added.kind, 'groupParticipants')
    assert.deepEqual(added.results.map((r) => r.status), ['ok', 'notFound'])

    const told = await bob.waitFor(
      (e) => e.type === 'group' && e.changes.some((c) => c.kind === 'participants' && c.participants.some((p) => p.jid === '15550303333@s.whatsapp.net')),
      'the add of Carol',
    )
    assert.equal(told.group, group)
    assert.equal(told.changes[0].change, 'added')
    const state = await server.control('GET', `/groups/${group}`)
    assert.deepEqual(state.members, ['15550301111', '15550302222', '15550303333'])

    await assert.rejects(
      bob.connection.command({ type: 'changeGroupParticipants', group, action: 'remove', participants: ['15550303333@s.whatsapp.net'] }),
      (error) => error.code === 'forbidden',
    )
    const info = await bob.connection.command({ type: 'groupInfo', group })
    assert.equal(info.info.participants.length, 3)
    await alice.connection.close()
    await bob.connection.close()
  })
})
