// Group administration from the npm package against walink-sim's mock-server: a walink client
// creates a group with another walink client's account, adds a member (one result per
// participant), the member's client learns it from a `group` event, and a member who is no
// admin is refused with the typed `forbidden` code; admins let every member add, set the
// group's picture, and a user whose privacy refused the add joins with the V4 invite.
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

  test('every member may add, a group picture, a V4 invite accepted', async () => {
    const alice = await pairedWalinkClient(server, '15550311111', 'Alice')
    const bob = await pairedWalinkClient(server, '15550312222', 'Bob')
    const dave = await pairedWalinkClient(server, '15550314444', 'Dave')
    await server.control('POST', '/accounts', { phone: '15550313333', name: 'Carol' })
    await server.control('POST', '/group-options', { add_restricted: ['15550314444'] })
    const created = await alice.connection.command({
      type: 'createGroup',
      subject: 'Team',
      participants: ['15550312222@s.whatsapp.net'],
    })
    const group = created.info.jid
    assert.equal(created.info.membersCanAdd, false)
    const carol = ['15550313333@s.whatsapp.net']
    await assert.rejects(
      bob.connection.command({ type: 'changeGroupParticipants', group, action: 'add', participants: carol }),
      (error) => error.code === 'forbidden',
    )
    await alice.connection.command({ type: 'setGroupSetting', group, setting: 'membersCanAdd', value: true })
    await bob.waitFor((e) => e.type === 'group' && e.changes.some((c) => c.kind === 'membersCanAdd' && c.on), 'who may add')
    const added = await bob.connection.command({ type: 'changeGroupParticipants', group, action: 'add', participants: carol })
    assert.deepEqual(added.results.map((r) => r.status), ['ok'])

    const jpeg = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 0x4a, 0x46, 0x49, 0x46, 0xff, 0xd9])
    const set = await alice.connection.command({ type: 'setPicture', jid: group, jpeg })
    assert.equal(set.kind, 'picture')
    assert.ok(set.id.length > 0)
    const read = await bob.connection.command({ type: 'getProfilePicture', jid: group, preview: false })
    assert.equal(read.picture.kind, 'url')
    assert.equal(read.picture.id, set.id)
    await assert.rejects(
      alice.connection.command({ type: 'setPicture', jid: group, jpeg: new Uint8Array([1, 2, 3]) }),
      (error) => error.code === 'invalid_message',
    )
    const removed = await alice.connection.command({ type: 'setPicture', jid: group })
    assert.equal(removed.id, undefined)

    const refused = await alice.connection.command({
      type: 'changeGroupParticipants', group, action: 'add', participants: ['15550314444@s.whatsapp.net'],
    })
    const invite = refused.results[0]
    assert.equal(invite.status, 'inviteRequired')
    const accept = { type: 'acceptGroupInvite', group, expiration: invite.inviteExpiration, inviter: '15550311111@s.whatsapp.net' }
    await assert.rejects(
      dave.connection.command({ ...accept, code: 'WRONG' }),
      (error) => error.code === 'not_found',
    )
    const joined = await dave.connection.command({ ...accept, code: invite.inviteCode })
    assert.deepEqual(joined, { kind: 'groupJoined', group, pendingApproval: false })
    const state = await server.control('GET', `/groups/${group}`)
    assert.ok(state.members.includes('15550314444'))
    for (const c of [alice, bob, dave]) await c.connection.close()
  })
})
