// Pictures, join requests, who may add, V4 invites and sendInvite against the mock-server:
// Evolution's chat/updateProfilePicture, chat/removeProfilePicture, group/updateGroupPicture and
// group/sendInvite, and the native routes; each change read back from the server (its control
// API, or fetchProfilePictureUrl / the group's metadata as the server answers them); a picture
// that is not a JPEG refused with a typed 400 before the server is asked.
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { after, before, test } from 'node:test'

import { client, ok, startSuite, stopSuite, until, withMock } from './support.js'

/** The smallest JPEG header the server checks (SOI, then a marker). */
const JPEG = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.from('walink picture')]).toString('base64')
const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex').toString('base64')

withMock(test, () => {
  let mock
  let gw
  let hooks
  let suite
  before(async () => {
    suite = await startSuite(47)
    ;({ mock, gw, hooks } = suite)
  })
  after(() => stopSuite(suite))

  const ME = '15554700001'
  const BEA = '15554700002'
  const CAL = '15554700003'
  const DAN = '15554700004'
  const jid = (phone) => `${phone}@s.whatsapp.net`

  /** `phone` paired by code as instance `name`; its client (instance token). */
  async function pair(phone, name) {
    const created = await ok(gw.api('POST', '/instance/create', { instanceName: name, qrcode: true, number: phone }), 201)
    const api = client(gw.url, created.hash)
    await mock.control('POST', `/accounts/${phone}/code`, { code: created.qrcode.pairingCode })
    await until(async () => (await ok(api('GET', `/instance/connectionState/${name}`))).instance.state === 'open', `${name} open`)
    return api
  }

  test('profile and group pictures, members-can-add, join requests, V4 invites, sendInvite; typed errors', async () => {
    for (const [phone, name] of [[ME, 'Mia'], [BEA, 'Bea'], [CAL, 'Cal'], [DAN, 'Dan']]) await mock.control('POST', '/accounts', { phone, name })
    const api = await pair(ME, 'pic')
    const hook = await ok(api('POST', '/webhook/set/pic', { webhook: { enabled: true, url: `${hooks.url}/pic`, events: ['GROUP_UPDATE'] } }), 201)
    hooks.addSecret('pic', hook.signingSecret)
    const url = async (number) => (await ok(api('POST', '/chat/fetchProfilePictureUrl/pic', { number }))).profilePictureUrl

    // Our own picture: set (base64, and a data: URL), read back, removed.
    assert.equal(await url(ME), null)
    assert.deepEqual(await ok(api('POST', '/chat/updateProfilePicture/pic', { picture: JPEG })), { update: 'success' })
    const first = await url(ME)
    assert.match(first, /^https?:\/\//)
    const native = await ok(gw.api('PUT', '/instances/pic/profile/picture', { picture: `data:image/jpeg;base64,${JPEG}` }))
    assert.equal(native.jid, jid(ME))
    assert.match(native.pictureId, /^\d+$/)
    assert.notEqual(await url(ME), first)
    // By URL (the media-by-URL fetch: private addresses refused unless allowed).
    const files = createServer((req, res) => res.end(Buffer.from(JPEG, 'base64')))
    await new Promise((resolve) => files.listen(0, '127.0.0.1', resolve))
    const fileUrl = `http://127.0.0.1:${files.address().port}/me.jpg`
    try {
      const blocked = await api('POST', '/chat/updateProfilePicture/pic', { picture: fileUrl })
      assert.equal(blocked.status, 400)
      assert.equal(blocked.body.response.code, 'media_url_blocked')
      gw.gateway.config.mediaUrlAllowPrivate = true
      const before = await url(ME)
      assert.deepEqual(await ok(api('POST', '/chat/updateProfilePicture/pic', { picture: fileUrl })), { update: 'success' })
      assert.notEqual(await url(ME), before)
    } finally {
      gw.gateway.config.mediaUrlAllowPrivate = false
      files.close()
    }
    assert.deepEqual(await ok(api('DELETE', '/chat/removeProfilePicture/pic')), { update: 'success' })
    assert.equal(await url(ME), null)

    // Not a JPEG: a typed 400, the server not asked (the picture stays removed).
    const png = await api('POST', '/chat/updateProfilePicture/pic', { picture: PNG })
    assert.equal(png.status, 400)
    assert.equal(png.body.response.code, 'invalid_picture')
    const nativePng = await gw.api('PUT', '/instances/pic/profile/picture', { picture: PNG })
    assert.equal(nativePng.status, 400)
    assert.equal(nativePng.body.error.code, 'invalid_picture')
    assert.equal((await api('POST', '/chat/updateProfilePicture/pic', {})).status, 400)
    assert.equal(await url(ME), null)

    // A group's picture.
    const group = await ok(api('POST', '/group/create/pic', { subject: 'Pics', participants: [BEA] }), 201)
    const gid = group.id
    const q = `?groupJid=${encodeURIComponent(gid)}`
    const server = () => mock.control('GET', `/groups/${gid.split('@')[0]}`)
    assert.equal(group.memberAddMode, false)
    assert.deepEqual(await ok(api('POST', `/group/updateGroupPicture/pic${q}`, { image: JPEG }), 201), { update: 'success' })
    assert.match(await url(gid), /^https?:\/\//)
    const badImage = await api('POST', `/group/updateGroupPicture/pic${q}`, { image: PNG })
    assert.equal(badImage.status, 400)
    assert.equal(badImage.body.response.code, 'invalid_picture')
    assert.deepEqual(await ok(gw.api('DELETE', `/instances/pic/groups/${gid}/picture`)), { group: gid, pictureId: null })
    assert.equal(await url(gid), null)
    assert.match((await ok(gw.api('PUT', `/instances/pic/groups/${gid}/picture`, { picture: JPEG }))).pictureId, /^\d+$/)

    // Who may add: read back from the server through the group's metadata.
    assert.equal((await ok(gw.api('PUT', `/instances/pic/groups/${gid}/settings`, { setting: 'membersCanAdd', value: true }))).value, true)
    assert.equal((await ok(gw.api('GET', `/instances/pic/groups/${gid}`))).membersCanAdd, true)
    assert.equal((await ok(api('GET', `/group/findGroupInfos/pic${q}`))).memberAddMode, true)
    assert.equal((await gw.api('PUT', `/instances/pic/groups/${gid}/settings`, { setting: 'membersCanAdd', value: 1 })).status, 400)
    const update = await until(() => hooks.received.find((h) => h.path === '/pic' && h.body.event === 'group.update' && h.body.data[0]?.memberAddMode === true), 'GROUP_UPDATE memberAddMode')
    assert.equal(update.body.data[0].id, gid)
    assert.ok(update.valid)

    // Join requests: approval on, Cal asks by link, we list and approve.
    await ok(gw.api('PUT', `/instances/pic/groups/${gid}/settings`, { setting: 'approvalRequired', value: true }))
    assert.equal((await server()).approval, true)
    const { inviteCode } = await ok(api('GET', `/group/inviteCode/pic${q}`))
    const cal = await pair(CAL, 'pic-cal')
    assert.equal((await ok(cal('GET', `/group/acceptInviteCode/pic-cal?inviteCode=${inviteCode}`))).pendingApproval, true)
    const { requests } = await ok(gw.api('GET', `/instances/pic/groups/${gid}/requests`))
    assert.deepEqual(requests.map((r) => r.jid), [jid(CAL)])
    const approved = await ok(gw.api('POST', `/instances/pic/groups/${gid}/requests`, { action: 'approve', participants: [CAL] }))
    assert.deepEqual(approved.results.map((r) => [r.jid, r.status]), [[jid(CAL), 'ok']])
    assert.ok((await server()).members.some((m) => String(m).includes(CAL)))
    assert.deepEqual((await ok(gw.api('GET', `/instances/pic/groups/${gid}/requests`))).requests, [])
    const nobody = await ok(gw.api('POST', `/instances/pic/groups/${gid}/requests`, { action: 'reject', participants: [DAN] }))
    assert.equal(nobody.results[0].status, 'notFound')
    // A member who is no admin may not see them.
    const notAdmin = await cal('GET', `/instances/pic-cal/groups/${gid}/requests`)
    assert.equal(notAdmin.status, 403)
    assert.equal(notAdmin.body.error.code, 'forbidden')

    // V4 invite: Dan only lets his contacts add him; the add answers an invite Dan accepts.
    await mock.control('POST', '/group-options', { add_restricted: [DAN] })
    const refused = await ok(gw.api('POST', `/instances/pic/groups/${gid}/participants`, { action: 'add', participants: [DAN] }))
    const [invite] = refused.results
    assert.equal(invite.status, 'inviteRequired')
    assert.ok(invite.inviteCode && invite.inviteExpiration)
    const dan = await pair(DAN, 'pic-dan')
    const bad = await dan('POST', `/instances/pic-dan/groups/${gid}/invite/accept`, { code: 'NotTheCode1', expiration: invite.inviteExpiration, inviter: ME })
    assert.equal(bad.status, 404)
    const joined = await ok(dan('POST', `/instances/pic-dan/groups/${gid}/invite/accept`, { code: invite.inviteCode, expiration: invite.inviteExpiration, inviter: ME }))
    assert.deepEqual(joined, { group: gid, pendingApproval: false })
    assert.ok((await server()).members.some((m) => String(m).includes(DAN)))

    // sendInvite: the link as a text to each number.
    const sent = await ok(api('POST', '/group/sendInvite/pic', { groupJid: gid, description: 'join us', numbers: [BEA] }))
    assert.deepEqual(sent, { send: true, inviteUrl: `https://chat.whatsapp.com/${inviteCode}` })
    await until(async () => (await mock.control('GET', `/accounts/${BEA}/messages`)).messages.some((m) => m.text === `join us\n\nhttps://chat.whatsapp.com/${inviteCode}`), 'the invite at Bea')
    assert.equal((await api('POST', '/group/sendInvite/pic', { groupJid: gid, numbers: [] })).status, 400)
  })
})
