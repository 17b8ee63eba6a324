// Groups, contacts, presence, profiles, the block list and calls through the Evolution routes
// (and a few native ones), against the mock-server: each change checked on the server side (its
// control API), each answer and webhook against Evolution's shapes, the typed errors; the
// `rejectCall` / `msgCall` settings; SEND_MESSAGE with `base64` and getBase64FromMediaMessage of
// media this instance sent.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { client, ok, startSuite, stopSuite, until, withMock } from './support.js'

withMock(test, () => {
  let mock
  let gw
  let hooks
  let suite
  before(async () => {
    suite = await startSuite(43)
    ;({ mock, gw, hooks } = suite)
  })
  after(() => stopSuite(suite))

  const ME = '15554000001'
  const BEA = '15554000002'
  const CAL = '15554000003'
  const NOBODY = '15554000999'
  const jid = (phone) => `${phone}@s.whatsapp.net`
  const evo = (kind) => hooks.received.filter((h) => h.path === '/soc' && h.body.event === kind)

  /** `phone` paired by code as instance `name`, its Evolution webhook at `/<name>` (every event, base64 on). */
  async function pair(phone, name) {
    const created = await ok(gw.api('POST', '/instance/create', { instanceName: name, qrcode: true, number: phone }), 201)
    const api = client(gw.url, created.hash)
    const hook = await ok(api('POST', `/webhook/set/${name}`, { webhook: { enabled: true, url: `${hooks.url}/${name}`, base64: true } }), 201)
    hooks.addSecret(name, hook.signingSecret)
    await mock.control('POST', `/accounts/${phone}/code`, { code: created.qrcode.pairingCode })
    await until(async () => (await ok(api('GET', `/instance/connectionState/${name}`))).instance.state === 'open', `${name} open`)
    return api
  }

  test('groups: create, metadata, list, subject, description, settings, invite codes, participants, notifications, leave; typed errors', async () => {
    for (const [phone, name] of [[ME, 'Mia'], [BEA, 'Bea'], [CAL, 'Cal']]) await mock.control('POST', '/accounts', { phone, name })
    const api = await pair(ME, 'soc')

    const numbers = await ok(api('POST', '/chat/whatsappNumbers/soc', { numbers: [BEA, `+${NOBODY}`] }), 201)
    assert.deepEqual(numbers.map((n) => [n.number, n.exists, n.jid]), [[BEA, true, jid(BEA)], [NOBODY, false, jid(NOBODY)]])

    const group = await ok(api('POST', '/group/create/soc', { subject: 'Team', description: 'the plan', participants: [BEA, CAL] }), 201)
    assert.match(group.id, /@g\.us$/)
    assert.equal(group.subject, 'Team')
    assert.equal(group.desc, 'the plan')
    assert.deepEqual(group.participants.map((p) => p.id).sort(), [jid(ME), jid(BEA), jid(CAL)].sort())
    assert.equal(group.participants.find((p) => p.id === jid(ME)).admin, 'superadmin')
    const gid = group.id
    const q = `?groupJid=${encodeURIComponent(gid)}`
    const server = () => mock.control('GET', `/groups/${gid.split('@')[0]}`)
    assert.equal((await server()).description, 'the plan')

    const info = await ok(api('GET', `/group/findGroupInfos/soc${q}`))
    assert.equal(info.id, gid)
    assert.equal(info.size, 3)
    const all = await ok(api('GET', '/group/fetchAllGroups/soc?getParticipants=false'))
    assert.ok(all.some((g) => g.id === gid && !('participants' in g)))
    assert.equal((await ok(api('GET', '/group/fetchAllGroups/soc?getParticipants=true'))).find((g) => g.id === gid).participants.length, 3)
    assert.equal((await ok(api('GET', `/group/participants/soc${q}`))).participants.length, 3)

    assert.deepEqual(await ok(api('POST', `/group/updateGroupSubject/soc${q}`, { subject: 'Team 2' }), 201), { update: 'success' })
    assert.equal((await server()).subject, 'Team 2')
    await ok(api('POST', `/group/updateGroupDescription/soc${q}`, { description: 'new plan' }), 201)
    assert.equal((await server()).description, 'new plan')
    await ok(api('POST', `/group/updateSetting/soc${q}`, { action: 'announcement' }), 201)
    await ok(api('POST', `/group/updateSetting/soc${q}`, { action: 'locked' }), 201)
    assert.equal((await server()).announce, true)
    assert.equal((await server()).locked, true)
    await ok(api('POST', `/group/toggleEphemeral/soc${q}`, { expiration: 86400 }), 201)
    assert.equal((await server()).ephemeral, 86400)

    const invite = await ok(api('GET', `/group/inviteCode/soc${q}`))
    assert.equal(invite.inviteUrl, `https://chat.whatsapp.com/${invite.inviteCode}`)
    const revoked = await ok(api('POST', `/group/revokeInviteCode/soc${q}`), 201)
    assert.equal(revoked.revoked, true)
    assert.notEqual(revoked.inviteCode, invite.inviteCode)
    assert.equal((await server()).invite_code, revoked.inviteCode)

    const removed = await ok(api('POST', `/group/updateParticipant/soc${q}`, { action: 'remove', participants: [CAL] }), 201)
    assert.deepEqual(removed.updateParticipants, [{ status: '200', jid: jid(CAL) }])
    assert.ok(!(await server()).members.some((m) => String(m).includes(CAL)))
    await ok(api('POST', `/group/updateParticipant/soc${q}`, { action: 'add', participants: [CAL] }), 201)
    const promoted = await ok(api('POST', `/group/updateParticipant/soc${q}`, { action: 'promote', participants: [BEA] }), 201)
    assert.equal(promoted.updateParticipants[0].status, '200')
    assert.ok((await server()).admins.some((a) => String(a).includes(BEA)))

    // Changes made elsewhere arrive as webhooks: Bea (now an admin) removes Cal from her phone;
    // Bea, through an instance of her own, creates a group with us. (GROUPS_UPSERT, for a
    // `created` notification, is checked in unit.test.js: walink-sim announces a new group to its
    // members as an `add`.)
    await mock.control('POST', `/groups/${gid.split('@')[0]}/participants`, { actor: BEA, action: 'remove', participants: [CAL] })
    const gone = await until(() => evo('group.participants.update').find((h) => h.body.data.id === gid && h.body.data.action === 'remove' && h.body.data.author === jid(BEA)), 'GROUP_PARTICIPANTS_UPDATE')
    assert.deepEqual(gone.body.data.participants, [jid(CAL)])
    assert.equal(gone.body.data.author, jid(BEA))
    assert.ok(gone.valid)
    const bea = await pair(BEA, 'soc-bea')
    const theirs = await ok(bea('POST', '/group/create/soc-bea', { subject: 'Bea club', participants: [ME] }), 201)
    // WhatsApp (and walink-sim) tell the members of a new group that they were added.
    const added = await until(() => evo('group.participants.update').find((h) => h.body.data.id === theirs.id), 'GROUP_PARTICIPANTS_UPDATE of the new group')
    assert.deepEqual([added.body.data.action, added.body.data.author, added.body.data.participants], ['add', jid(BEA), [jid(ME)]])
    assert.ok(evo('group.update').some((h) => h.body.data[0]?.id === gid && h.body.data[0].subject === 'Team 2'), 'GROUP_UPDATE of our own subject change')

    // Native routes reach the same commands.
    const native = await ok(gw.api('GET', `/instances/soc/groups/${gid}`))
    assert.equal(native.subject, 'Team 2')
    assert.equal((await ok(gw.api('PUT', `/instances/soc/groups/${gid}/settings`, { setting: 'announce', value: false }))).value, false)
    assert.equal((await server()).announce, false)
    assert.equal((await gw.api('PUT', `/instances/soc/groups/${gid}/settings`, { setting: 'announce', value: 5 })).status, 400)

    // Typed errors in Evolution's shape.
    const unknown = await api('GET', '/group/findGroupInfos/soc?groupJid=120363000000000001@g.us')
    assert.equal(unknown.status, 404)
    assert.equal(unknown.body.response.code, 'not_found')
    assert.equal((await api('GET', '/group/findGroupInfos/soc')).status, 400)
    assert.equal((await api('GET', '/group/acceptInviteCode/soc?inviteCode=NoSuchCode1')).status, 404)
    assert.equal((await api('POST', '/group/create/soc', { subject: '', participants: [BEA] })).status, 400)

    assert.deepEqual(await ok(api('DELETE', `/group/leaveGroup/soc${q}`)), { groupJid: gid, leave: true })
    assert.ok(!(await server()).members.some((m) => String(m).includes(ME)))
  })

  test('contacts, presence, profiles, block list; calls rejected with a message; sent media as base64', async () => {
    const A = gw.api // the global key

    // Presence needs a push name: refused typed, then set and the instance restarted.
    const refused = await A('POST', '/instance/setPresence/soc', { presence: 'available' })
    assert.equal(refused.status, 409)
    assert.equal(refused.body.response.code, 'push_name_required')
    assert.equal((await A('POST', '/settings/set/soc', { alwaysOnline: true })).status, 400)
    await ok(A('POST', '/settings/set/soc', { pushName: 'Mia', alwaysOnline: true, rejectCall: true, msgCall: 'busy, text me' }), 201)
    await ok(A('POST', '/instance/restart/soc'))
    await until(async () => (await mock.control('GET', `/accounts/${ME}/presence`)).online === true, 'online by alwaysOnline')
    await ok(A('POST', '/instance/setPresence/soc', { presence: 'unavailable' }), 201)
    await until(async () => (await mock.control('GET', `/accounts/${ME}/presence`)).online === false, 'offline')

    // Chat states both ways, presence of a contact.
    assert.deepEqual(await ok(A('POST', '/chat/sendPresence/soc', { number: BEA, presence: 'composing', delay: 300 }), 201), { presence: 'composing' })
    const states = (await mock.control('GET', '/chat-states')).chat_states.filter((s) => s.account === BEA && String(s.from).includes(ME))
    assert.deepEqual(states.slice(-2).map((s) => s.state), ['composing', 'paused'])
    await ok(A('POST', '/instances/soc/presence/subscribe', { jid: BEA }))
    await mock.control('POST', `/accounts/${BEA}/presence`, { available: true })
    const seen = await until(() => evo('presence.update').find((h) => h.body.data.presences?.[jid(BEA)]?.lastKnownPresence === 'available'), 'PRESENCE_UPDATE available')
    assert.equal(seen.body.data.id, jid(BEA))
    await mock.control('POST', `/accounts/${BEA}/chat-state`, { chat: ME, state: 'composing' })
    await until(() => evo('presence.update').find((h) => Object.values(h.body.data.presences ?? {}).some((p) => p.lastKnownPresence === 'composing')), 'PRESENCE_UPDATE composing')

    // Profiles.
    await mock.control('POST', `/accounts/${BEA}/profile`, { picture: 'pic-1', about: 'out surfing', business: 'Surf shop' })
    await mock.control('POST', `/accounts/${BEA}/privacy`, { category: 'status', value: 'all' })
    const picture = await ok(A('POST', '/chat/fetchProfilePictureUrl/soc', { number: BEA }))
    assert.equal(picture.wuid, jid(BEA))
    assert.match(picture.profilePictureUrl, /^https?:\/\//)
    assert.equal((await ok(A('POST', '/chat/fetchProfilePictureUrl/soc', { number: CAL }))).profilePictureUrl, null)
    const profile = await ok(A('POST', '/chat/fetchProfile/soc', { number: BEA }))
    assert.equal(profile.numberExists, true)
    assert.equal(profile.status.status, 'out surfing')
    assert.equal(profile.isBusiness, true)
    assert.equal(profile.description, 'Surf shop')
    assert.equal((await ok(A('POST', '/chat/fetchBusinessProfile/soc', { number: CAL }))).isBusiness, false)
    const missing = await A('POST', '/chat/fetchProfile/soc', { number: NOBODY })
    assert.equal(missing.status, 400)
    assert.equal(missing.body.response.code, 'not_on_whatsapp')

    // Block list.
    assert.deepEqual(await ok(A('POST', '/chat/updateBlockStatus/soc', { number: CAL, status: 'block' }), 201), { accepted: true })
    assert.ok((await mock.control('GET', `/accounts/${ME}/blocked`)).blocked.some((b) => String(b).includes(CAL)))
    assert.deepEqual((await ok(A('GET', '/instances/soc/blocklist'))).blocked, [jid(CAL)])
    await ok(A('POST', '/chat/updateBlockStatus/soc', { number: CAL, status: 'unblock' }), 201)
    assert.deepEqual((await ok(A('GET', '/instances/soc/blocklist'))).blocked, [])

    // A call: CALL webhook, rejected by the setting, the caller gets msgCall.
    const { call_id: callId } = await mock.control('POST', `/accounts/${BEA}/call`, { to: ME })
    const call = await until(() => evo('call').find((h) => h.body.data.id === callId), 'CALL')
    assert.equal(call.body.data.status, 'offer')
    assert.equal(call.body.data.isVideo, false)
    await until(async () => (await mock.control('GET', '/rejected-calls')).rejected.some((r) => r.call_id === callId), 'the call rejected')
    await until(async () => (await mock.control('GET', `/accounts/${BEA}/messages`)).messages.some((m) => m.text === 'busy, text me'), 'msgCall at the caller')

    // Media this instance sent: SEND_MESSAGE carries the file (webhook base64), and getBase64FromMediaMessage answers it.
    const png = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000a49444154789c63000100000500010d0a2db40000000049454e44ae426082', 'hex')
    const sent = await ok(A('POST', '/message/sendMedia/soc', { number: BEA, mediatype: 'image', mimetype: 'image/png', caption: 'dot', media: png.toString('base64') }), 201)
    const sendEvent = await until(() => evo('send.message').find((h) => h.body.data.key.id === sent.key.id), 'SEND_MESSAGE')
    assert.equal(sendEvent.body.data.message.base64, png.toString('base64'))
    const again = await ok(A('POST', '/chat/getBase64FromMediaMessage/soc', { message: { key: { id: sent.key.id, remoteJid: jid(BEA), fromMe: true } } }), 201)
    assert.equal(again.base64, png.toString('base64'))
    assert.equal(again.mimetype, 'image/png')
    assert.equal(again.caption, 'dot')
    const text = await ok(A('POST', '/message/sendText/soc', { number: BEA, text: 'no file' }), 201)
    assert.equal((await A('POST', '/chat/getBase64FromMediaMessage/soc', { message: { key: { id: text.key.id, fromMe: true } } })).status, 400)
    assert.equal(hooks.state.bad, 0, 'every delivery signed')
  })
})
