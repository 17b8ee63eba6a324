// The Evolution API v2 surface, driven by a client written against Evolution's documented shapes
// (requests as Evolution's DTOs, answers and webhook payloads checked against its shapes): create
// with a webhook and a pairing code, connectionState, settings, webhook set/find, sendText,
// MESSAGES_UPSERT / SEND_MESSAGE / MESSAGES_UPDATE / CONNECTION_UPDATE payloads, markMessageAsRead,
// fetchInstances, connect (QR), restart, logout, delete, and a route not available yet (404);
// sendText with quoted/mentioned, sendReaction, sendLocation, sendContact, sendPoll, sendMedia and
// sendWhatsAppAudio between two instances, checked at the phone and in MESSAGES_UPSERT.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { client, inProcessGateway, ok, removeDir, startMockServer, tempDir, until, webhookReceiver, withMock } from './support.js'

/** Checks `value` has each key of `shape` with the given JS type ('string', 'boolean', 'object', 'number', 'array', 'any'). */
function hasShape(value, shape, where = 'value') {
  for (const [key, type] of Object.entries(shape)) {
    assert.ok(value && key in value, `${where}.${key} is missing in ${JSON.stringify(value)}`)
    const v = value[key]
    if (type === 'any') continue
    if (type === 'array') assert.ok(Array.isArray(v), `${where}.${key} is an array`)
    else if (typeof type === 'object') hasShape(v, type, `${where}.${key}`)
    else assert.equal(typeof v, type, `${where}.${key} is a ${type}: ${JSON.stringify(v)}`)
  }
}

const MESSAGE_SHAPE = { key: { remoteJid: 'string', fromMe: 'boolean', id: 'string' }, pushName: 'string', status: 'string', message: { conversation: 'string' }, messageType: 'string', messageTimestamp: 'number', instanceId: 'string', source: 'string' }
const ENVELOPE_SHAPE = { event: 'string', instance: 'string', data: 'any', destination: 'any', date_time: 'string', sender: 'any', server_url: 'string' }

withMock(test, () => {
  let mock
  let gw
  let dir
  let hooks
  before(async () => {
    mock = await startMockServer({ seed: 31 })
    dir = tempDir()
    gw = await inProcessGateway(mock, dir)
    hooks = await webhookReceiver()
  })
  after(async () => {
    await gw?.stop()
    await hooks?.close()
    mock?.stop()
    removeDir(dir)
  })

  const evo = (kind) => hooks.received.filter((h) => h.body.event === kind)

  test('an Evolution client: create, pair by code, settings, webhook, send and receive, read, fetch, restart, logout, delete', async () => {
    const ME = '15553000001'
    const PEER = '15553000002'
    await mock.control('POST', '/accounts', { phone: ME, name: 'Mia' })
    await mock.control('POST', '/accounts', { phone: PEER, name: 'Ned' })
    const created = await ok(
      gw.api('POST', '/instance/create', {
        instanceName: 'evo-mia',
        integration: 'WHATSAPP-BAILEYS',
        qrcode: true,
        number: ME,
        rejectCall: false,
        groupsIgnore: false,
        readMessages: false,
        webhook: { url: `${hooks.url}/evo`, byEvents: false, base64: false, events: ['QRCODE_UPDATED', 'CONNECTION_UPDATE', 'MESSAGES_UPSERT', 'MESSAGES_UPDATE', 'SEND_MESSAGE', 'LOGOUT_INSTANCE'] },
      }),
      201,
    )
    hasShape(created, { instance: { instanceName: 'string', instanceId: 'string', integration: 'string', status: 'string' }, hash: 'string', webhook: { webhookUrl: 'string', webhookByEvents: 'boolean' }, settings: { rejectCall: 'boolean', msgCall: 'string', groupsIgnore: 'boolean', alwaysOnline: 'boolean', readMessages: 'boolean', readStatus: 'boolean', syncFullHistory: 'boolean' }, qrcode: { pairingCode: 'string' } })
    assert.match(created.qrcode.pairingCode, /^[0-9A-Z]{8}$/)
    const token = created.hash
    const api = client(gw.url, token) // from here on, the instance token, as Evolution clients do
    // The webhook's signing secret (Evolution signs nothing; this gateway signs every delivery).
    const hook = await ok(api('POST', '/webhook/set/evo-mia', { webhook: { enabled: true, url: `${hooks.url}/evo`, byEvents: false, base64: false, events: ['QRCODE_UPDATED', 'CONNECTION_UPDATE', 'MESSAGES_UPSERT', 'MESSAGES_UPDATE', 'SEND_MESSAGE', 'LOGOUT_INSTANCE'] } }), 201)
    hasShape(hook, { id: 'string', url: 'string', enabled: 'boolean', events: 'array', webhookByEvents: 'boolean', webhookBase64: 'boolean' })
    hooks.addSecret('evo', hook.signingSecret)
    const found = await ok(api('GET', '/webhook/find/evo-mia'))
    assert.equal(found.url, `${hooks.url}/evo`)
    assert.deepEqual(found.events.length, 6)

    await mock.control('POST', `/accounts/${ME}/code`, { code: created.qrcode.pairingCode })
    await until(async () => (await ok(api('GET', '/instance/connectionState/evo-mia'))).instance.state === 'open', 'open')
    const update = await until(() => evo('connection.update').find((h) => h.body.data.state === 'open'), 'CONNECTION_UPDATE open')
    hasShape(update.body, ENVELOPE_SHAPE)
    hasShape(update.body.data, { instance: 'string', state: 'string', wuid: 'string' })
    assert.ok(!('apikey' in update.body), 'no token in a webhook payload')
    assert.ok(!update.raw.includes(token))

    const settings = await ok(api('POST', '/settings/set/evo-mia', { rejectCall: false, msgCall: '', groupsIgnore: true, alwaysOnline: false, readMessages: false, readStatus: false, syncFullHistory: false }), 201)
    assert.equal(settings.settings.settings.groupsIgnore, true)
    assert.equal((await ok(api('GET', '/settings/find/evo-mia'))).groupsIgnore, true)
    const refused = await api('POST', '/settings/set/evo-mia', { rejectCall: true })
    assert.equal(refused.status, 400)
    hasShape(refused.body, { status: 'number', error: 'string', response: { message: 'array' } })

    const sent = await ok(api('POST', '/message/sendText/evo-mia', { number: PEER, text: 'hello from Evolution' }), 201)
    hasShape(sent, MESSAGE_SHAPE)
    assert.equal(sent.key.fromMe, true)
    assert.equal(sent.key.remoteJid, `${PEER}@s.whatsapp.net`)
    assert.equal(sent.message.conversation, 'hello from Evolution')
    const sendEvent = await until(() => evo('send.message').find((h) => h.body.data.key.id === sent.key.id), 'SEND_MESSAGE')
    hasShape(sendEvent.body.data, MESSAGE_SHAPE)

    await mock.control('POST', `/accounts/${PEER}/send`, { to: ME, text: 'hi Evolution' })
    const upsert = await until(() => evo('messages.upsert').find((h) => h.body.data.message.conversation === 'hi Evolution'), 'MESSAGES_UPSERT')
    hasShape(upsert.body, ENVELOPE_SHAPE)
    hasShape(upsert.body.data, MESSAGE_SHAPE)
    assert.equal(upsert.body.data.key.fromMe, false)
    assert.equal(upsert.body.data.key.remoteJid, `${PEER}@s.whatsapp.net`)
    assert.equal(upsert.body.instance, 'evo-mia')

    const read = await ok(api('PUT', '/chat/markMessageAsRead/evo-mia', { readMessages: [{ remoteJid: upsert.body.data.key.remoteJid, fromMe: false, id: upsert.body.data.key.id }] }), 201)
    assert.deepEqual(read, { message: 'Read messages', read: 'success' })
    const messageUpdate = await until(() => evo('messages.update').find((h) => h.body.data.keyId === sent.key.id), 'MESSAGES_UPDATE for the sent message')
    hasShape(messageUpdate.body.data, { keyId: 'string', remoteJid: 'string', fromMe: 'boolean', status: 'string', instanceId: 'string' })

    const instances = await ok(api('GET', '/instance/fetchInstances'))
    assert.equal(instances.length, 1, 'an instance token sees its own instance only')
    hasShape(instances[0], { id: 'string', name: 'string', connectionStatus: 'string', ownerJid: 'string', integration: 'string', Setting: 'object', _count: 'object' })
    assert.equal(instances[0].connectionStatus, 'open')
    assert.ok(!JSON.stringify(instances).includes(token), 'no token in fetchInstances')

    assert.deepEqual(await ok(api('GET', '/instance/connect/evo-mia')), { instance: { instanceName: 'evo-mia', state: 'open' } })
    const restarted = await ok(api('POST', '/instance/restart/evo-mia'))
    assert.equal(restarted.instance.instanceName, 'evo-mia')
    await until(async () => (await ok(api('GET', '/instance/connectionState/evo-mia'))).instance.state === 'open', 'open after restart')

    // A route Evolution has and this gateway does not yet: a plain 404, no stub.
    assert.equal((await api('POST', '/message/sendSticker/evo-mia', { number: PEER, sticker: 'x' })).status, 404)

    assert.deepEqual(await ok(api('DELETE', '/instance/logout/evo-mia')), { status: 'SUCCESS', error: false, response: { message: 'Instance logged out' } })
    await until(() => evo('logout.instance').length, 'LOGOUT_INSTANCE')
    assert.equal((await ok(api('GET', '/instance/connectionState/evo-mia'))).instance.state, 'close')
    assert.equal((await api('DELETE', '/instance/logout/evo-mia')).status, 400, 'already logged out')
    assert.deepEqual(await ok(api('DELETE', '/instance/delete/evo-mia')), { status: 'SUCCESS', error: false, response: { message: 'Instance deleted' } })
    assert.equal((await gw.api('GET', '/instance/connectionState/evo-mia')).status, 404)
    assert.equal(hooks.state.bad, 0, 'every delivery signed')
  })

  test('Evolution content: reaction, location, contact, poll, media, voice note, quoted and mentioned texts reach a phone and arrive structured in MESSAGES_UPSERT', async () => {
    const ANN = '15553000011'
    const BOB = '15553000012'
    const pair = async (phone, name) => {
      await mock.control('POST', '/accounts', { phone, name })
      const created = await ok(gw.api('POST', '/instance/create', { instanceName: name, qrcode: true, number: phone }), 201)
      const api = client(gw.url, created.hash)
      const hook = await ok(api('POST', '/webhook/set/' + name, { webhook: { enabled: true, url: `${hooks.url}/${name}`, events: ['MESSAGES_UPSERT', 'SEND_MESSAGE'] } }), 201)
      hooks.addSecret(name, hook.signingSecret)
      await mock.control('POST', `/accounts/${phone}/code`, { code: created.qrcode.pairingCode })
      await until(async () => (await ok(api('GET', `/instance/connectionState/${name}`))).instance.state === 'open', `${name} open`)
      return api
    }
    const ann = await pair(ANN, 'evo-ann')
    await pair(BOB, 'evo-bob')
    const bobJid = `${BOB}@s.whatsapp.net`
    const upsertFor = (id) => until(() => hooks.received.find((h) => h.path === '/evo-bob' && h.body.event === 'messages.upsert' && h.body.data.key.id === id), `MESSAGES_UPSERT ${id} at Bob`)

    // Validation first: clear 400s, nothing sent.
    assert.equal((await ann('POST', '/message/sendPoll/evo-ann', { number: BOB, name: 'one?', values: ['only'] })).status, 400)
    assert.equal((await ann('POST', '/message/sendPoll/evo-ann', { number: BOB, name: 'dup?', values: ['a', 'a'] })).status, 400)
    assert.equal((await ann('POST', '/message/sendLocation/evo-ann', { number: BOB, latitude: 91, longitude: 0 })).status, 400)
    assert.equal((await ann('POST', '/message/sendReaction/evo-ann', { reaction: '👍' })).status, 400)
    const byUrl = await ann('POST', '/message/sendMedia/evo-ann', { number: BOB, mediatype: 'image', media: 'https://example.com/a.jpg' })
    assert.equal(byUrl.status, 400)
    assert.match(JSON.stringify(byUrl.body), /base64/)
    assert.equal((await ann('POST', '/message/sendText/evo-ann', { number: BOB, text: 'all', mentionsEveryOne: true })).status, 400)

    const text = await ok(ann('POST', '/message/sendText/evo-ann', { number: BOB, text: 'first' }), 201)
    const quoted = await ok(ann('POST', '/message/sendText/evo-ann', { number: BOB, text: 'hi @15553000012', quoted: { key: { id: text.key.id, remoteJid: bobJid, fromMe: true } }, mentioned: [BOB] }), 201)
    assert.equal(quoted.message.extendedTextMessage.contextInfo.stanzaId, text.key.id)
    assert.deepEqual(quoted.contextInfo.mentionedJid, [bobJid])
    const reaction = await ok(ann('POST', '/message/sendReaction/evo-ann', { key: { remoteJid: bobJid, fromMe: true, id: text.key.id }, reaction: '👍' }), 201)
    assert.equal(reaction.messageType, 'reactionMessage')
    const location = await ok(ann('POST', '/message/sendLocation/evo-ann', { number: BOB, name: 'Office', address: '1 Main St', latitude: 52.52, longitude: 13.405 }), 201)
    const contact = await ok(ann('POST', '/message/sendContact/evo-ann', { number: BOB, contact: [{ fullName: 'Cy Doe', wuid: '15553000099', phoneNumber: '+1 555 300 0099', organization: 'walink' }] }), 201)
    const cards = await ok(ann('POST', '/message/sendContact/evo-ann', { number: BOB, contact: [{ fullName: 'Di', phoneNumber: '15553000098' }, { fullName: 'Ed', phoneNumber: '15553000097', email: 'ed@example.com' }] }), 201)
    const poll = await ok(ann('POST', '/message/sendPoll/evo-ann', { number: BOB, name: 'Lunch?', selectableCount: 1, values: ['Pizza', 'Sushi'] }), 201)
    const image = Buffer.alloc(2048, 7).toString('base64')
    const media = await ok(ann('POST', '/message/sendMedia/evo-ann', { number: BOB, mediatype: 'image', mimetype: 'image/jpeg', caption: 'a picture', media: `data:image/jpeg;base64,${image}` }), 201)
    assert.equal(media.messageType, 'imageMessage')
    const audio = await ok(ann('POST', '/message/sendWhatsAppAudio/evo-ann', { number: BOB, audio: Buffer.alloc(1024, 3).toString('base64') }), 201)
    for (const sent of [quoted, reaction, location, contact, cards, poll, media, audio]) {
      hasShape(sent, { ...MESSAGE_SHAPE, message: 'object' })
      assert.equal(sent.status, 'SERVER_ACK')
    }

    // Bob's phone received every one and decrypted it.
    const ids = [text, quoted, reaction, location, contact, cards, poll, media, audio].map((m) => m.key.id)
    const inbox = await until(async () => {
      const { messages } = await mock.control('GET', `/accounts/${BOB}/messages`)
      return ids.every((id) => messages.some((m) => m.id === id)) && messages
    }, 'every message at Bob\'s phone')
    for (const id of ids) assert.equal(inbox.find((m) => m.id === id).error, null, `message ${id} decrypted`)
    assert.equal(inbox.find((m) => m.id === quoted.key.id).text, 'hi @15553000012')

    // Bob's gateway instance (a companion of the same account) gets them structured.
    const got = async (sent) => (await upsertFor(sent.key.id)).body.data
    const q = await got(quoted)
    assert.equal(q.message.extendedTextMessage.contextInfo.stanzaId, text.key.id)
    assert.deepEqual(q.message.extendedTextMessage.contextInfo.mentionedJid, [bobJid])
    assert.deepEqual(q.message.extendedTextMessage.contextInfo.quotedMessage, { conversation: 'first' }, 'the stored text quoted')
    const r = await got(reaction)
    assert.equal(r.messageType, 'reactionMessage')
    assert.equal(r.message.reactionMessage.text, '👍')
    assert.equal(r.message.reactionMessage.key.id, text.key.id)
    const l = (await got(location)).message.locationMessage
    assert.deepEqual([l.degreesLatitude, l.degreesLongitude, l.name, l.address], [52.52, 13.405, 'Office', '1 Main St'])
    const c = (await got(contact)).message.contactMessage
    assert.equal(c.displayName, 'Cy Doe')
    assert.match(c.vcard, /waid=15553000099:\+1 555 300 0099/)
    const several = (await got(cards)).message.contactsArrayMessage
    assert.deepEqual(several.contacts.map((x) => x.displayName), ['Di', 'Ed'])
    assert.match(several.contacts[1].vcard, /EMAIL:ed@example\.com/)
    const p = (await got(poll)).message.pollCreationMessageV3
    assert.deepEqual([p.name, p.options.map((o) => o.optionName), p.selectableOptionsCount], ['Lunch?', ['Pizza', 'Sushi'], 1])
    const i = await got(media)
    assert.equal(i.messageType, 'imageMessage')
    assert.equal(i.message.imageMessage.caption, 'a picture')
    assert.equal(typeof i.message.imageMessage.mediaKey, 'string', 'bytes as base64')
    const a = (await got(audio)).message.audioMessage
    assert.equal(a.ptt, true)
    assert.equal(hooks.state.bad, 0, 'every delivery signed')
  })

  test('Evolution connect by QR: {pairingCode: null, code, base64, count}; QRCODE_UPDATED', async () => {
    const ME = '15553000003'
    await mock.control('POST', '/accounts', { phone: ME, name: 'Ola' })
    const created = await ok(gw.api('POST', '/instance/create', { instanceName: 'evo-ola', webhook: { url: `${hooks.url}/evo2`, events: ['QRCODE_UPDATED', 'CONNECTION_UPDATE'] } }), 201)
    assert.deepEqual(created.qrcode, {})
    const hook = await ok(client(gw.url, created.hash)('POST', '/webhook/set/evo-ola', { webhook: { enabled: true, url: `${hooks.url}/evo2`, events: ['QRCODE_UPDATED', 'CONNECTION_UPDATE'] } }), 201)
    hooks.addSecret('evo2', hook.signingSecret)
    const qr = await ok(gw.api('GET', '/instance/connect/evo-ola'))
    hasShape(qr, { code: 'string', base64: 'string', count: 'number' })
    assert.equal(qr.pairingCode, null)
    assert.match(qr.base64, /^data:image\/png;base64,/)
    const qrEvent = await until(() => evo('qrcode.updated').find((h) => h.path === '/evo2'), 'QRCODE_UPDATED')
    hasShape(qrEvent.body.data, { qrcode: { instance: 'string', code: 'string', base64: 'string' } })
    await mock.control('POST', `/accounts/${ME}/scan`, { qr: qr.code })
    await until(async () => (await ok(gw.api('GET', '/instance/connectionState/evo-ola'))).instance.state === 'open', 'open')
    const all = await ok(gw.api('GET', '/instance/fetchInstances'))
    assert.ok(all.some((i) => i.name === 'evo-ola' && i.connectionStatus === 'open'))
  })
})
