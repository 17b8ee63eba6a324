// The Evolution API v2 surface, driven by a client written against Evolution's documented shapes
// (requests as Evolution's DTOs, answers and webhook payloads checked against its shapes): create
// with a webhook and a pairing code, connectionState, settings, webhook set/find, sendText,
// MESSAGES_UPSERT / SEND_MESSAGE / MESSAGES_UPDATE / CONNECTION_UPDATE payloads, markMessageAsRead,
// fetchInstances, connect (QR), restart, logout, delete, and a route not available yet (404);
// sendText with quoted/mentioned, sendReaction, sendLocation, sendContact, sendPoll, sendMedia and
// sendWhatsAppAudio between two instances, checked at the phone and in MESSAGES_UPSERT.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { createServer } from 'node:http'

import { API_KEY, client, connectProxy, ok, startSuite, stopSuite, until, withMock } from './support.js'

/** A file server on 127.0.0.1: `files` by path (`{type, body}`), `/redirect/<path>`, `/slow`, `/endless`; `hits` counts requests by path. */
async function fileServer(files) {
  const hits = {}
  const server = createServer((req, res) => {
    hits[req.url] = (hits[req.url] ?? 0) + 1
    if (req.url.startsWith('/redirect/')) return res.writeHead(302, { location: req.url.slice('/redirect'.length) }).end()
    if (req.url === '/slow') return // never answers
    if (req.url === '/endless') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' }) // chunked, no length
      const timer = setInterval(() => res.write(Buffer.alloc(1024, 2)), 1)
      res.on('close', () => clearInterval(timer))
      return
    }
    const file = files[req.url.split('?')[0]]
    if (!file) return res.writeHead(404).end('not here')
    res.writeHead(200, { 'content-type': file.type, 'content-length': file.body.length }).end(file.body)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${server.address().port}`, port: server.address().port, hits, close: () => (server.closeAllConnections(), new Promise((resolve) => server.close(resolve))) }
}

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
  let hooks
  let suite
  before(async () => {
    suite = await startSuite(31)
    ;({ mock, gw, hooks } = suite)
  })
  after(() => stopSuite(suite))

  const evo = (kind) => hooks.received.filter((h) => h.body.event === kind)

  /** A new account paired by code as instance `name`, its Evolution webhook at `/<name>`; resolves with its client. */
  const pairByCode = async (phone, name, webhook) => {
    await mock.control('POST', '/accounts', { phone, name })
    const created = await ok(gw.api('POST', '/instance/create', { instanceName: name, qrcode: true, number: phone }), 201)
    const api = client(gw.url, created.hash)
    const hook = await ok(api('POST', '/webhook/set/' + name, { webhook: { enabled: true, url: `${hooks.url}/${name}`, ...webhook } }), 201)
    hooks.addSecret(name, hook.signingSecret)
    await mock.control('POST', `/accounts/${phone}/code`, { code: created.qrcode.pairingCode })
    await until(async () => (await ok(api('GET', `/instance/connectionState/${name}`))).instance.state === 'open', `${name} open`)
    return api
  }

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
    const refused = await api('POST', '/settings/set/evo-mia', { syncFullHistory: true })
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
    assert.equal((await api('POST', '/message/sendStatus/evo-mia', { type: 'text', content: 'hi' })).status, 404)

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
    const pair = (phone, name) => pairByCode(phone, name, { events: ['MESSAGES_UPSERT', 'SEND_MESSAGE'] })
    const ann = await pair(ANN, 'evo-ann')
    await pair(BOB, 'evo-bob')
    const bobJid = `${BOB}@s.whatsapp.net`
    const upsertFor = (id) => until(() => hooks.received.find((h) => h.path === '/evo-bob' && h.body.event === 'messages.upsert' && h.body.data.key.id === id), `MESSAGES_UPSERT ${id} at Bob`)

    // Validation first: clear 400s, nothing sent.
    assert.equal((await ann('POST', '/message/sendPoll/evo-ann', { number: BOB, name: 'one?', values: ['only'] })).status, 400)
    assert.equal((await ann('POST', '/message/sendPoll/evo-ann', { number: BOB, name: 'dup?', values: ['a', 'a'] })).status, 400)
    assert.equal((await ann('POST', '/message/sendLocation/evo-ann', { number: BOB, latitude: 91, longitude: 0 })).status, 400)
    assert.equal((await ann('POST', '/message/sendReaction/evo-ann', { reaction: '👍' })).status, 400)
    const byUrl = await ann('POST', '/message/sendMedia/evo-ann', { number: BOB, mediatype: 'image', media: 'http://127.0.0.1:9/a.jpg' })
    assert.equal(byUrl.status, 400)
    assert.equal(byUrl.body.response.code, 'media_url_blocked', 'a private address is refused by default')
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

  test('Evolution edits, deletes, stickers, poll votes and media as base64: updateMessage, deleteMessageForEveryone, sendSticker, getBase64FromMediaMessage; MESSAGES_EDITED, MESSAGES_DELETE, MESSAGES_UPDATE with pollUpdates, message.base64', async () => {
    const CAT = '15553000021'
    const DAN = '15553000022'
    const catJid = `${CAT}@s.whatsapp.net`
    const danJid = `${DAN}@s.whatsapp.net`
    const cat = await pairByCode(CAT, 'evo-cat', { events: ['SEND_MESSAGE_UPDATE', 'MESSAGES_DELETE', 'MESSAGES_UPDATE'] })
    const dan = await pairByCode(DAN, 'evo-dan', { base64: true, events: ['MESSAGES_UPSERT', 'MESSAGES_EDITED', 'MESSAGES_DELETE'] })
    assert.equal((await ok(dan('GET', '/webhook/find/evo-dan'))).webhookBase64, true)
    const nativeHook = await ok(dan('POST', '/instances/evo-dan/webhooks', { url: `${hooks.url}/dan-native`, events: ['message.received'], base64: true }), 201)
    assert.equal(nativeHook.base64, true)
    hooks.addSecret('dan-native', nativeHook.secret)
    const at = (name, kind, match) => until(() => hooks.received.find((h) => h.path === `/${name}` && h.body.event === kind && match(h.body.data)), `${kind} at ${name}`)
    const isError = (r, status, code) => {
      assert.equal(r.status, status, JSON.stringify(r.body))
      hasShape(r.body, { status: 'number', error: 'string', response: { message: 'array', code: 'string' } })
      assert.equal(r.body.response.code, code)
    }

    // Edit: Dan's instance (a companion of the receiving account) gets MESSAGES_EDITED, Cat's SEND_MESSAGE_UPDATE.
    const text = await ok(cat('POST', '/message/sendText/evo-cat', { number: DAN, text: 'see you at 5' }), 201)
    await at('evo-dan', 'messages.upsert', (d) => d.key.id === text.key.id)
    isError(await cat('POST', '/chat/updateMessage/evo-cat', { number: DAN, key: { id: 'NOSUCHID0001' }, text: 'x' }), 404, 'message_not_found')
    isError(await cat('POST', '/chat/updateMessage/evo-cat', { number: DAN, key: { id: text.key.id, fromMe: false }, text: 'x' }), 400, 'not_own_message')
    isError(await cat('POST', '/chat/updateMessage/evo-cat', { number: DAN, key: { id: text.key.id, remoteJid: '15553000099@s.whatsapp.net' }, text: 'x' }), 400, 'invalid_key')
    isError(await cat('POST', '/chat/updateMessage/evo-cat', { number: DAN, key: { id: text.key.id } }), 400, 'invalid_request')
    const edited = await ok(cat('POST', '/chat/updateMessage/evo-cat', { number: DAN, key: { remoteJid: danJid, fromMe: true, id: text.key.id }, text: 'see you at 6' }))
    hasShape(edited, { key: { remoteJid: 'string', fromMe: 'boolean', id: 'string' }, message: { protocolMessage: { key: 'object', type: 'string', editedMessage: 'object' } }, messageTimestamp: 'number', status: 'string' })
    assert.equal(edited.message.protocolMessage.type, 'MESSAGE_EDIT')
    assert.equal(edited.message.protocolMessage.key.id, text.key.id)
    assert.notEqual(edited.key.id, text.key.id, 'the edit is a message of its own')
    const editAtDan = (await at('evo-dan', 'messages.edited', (d) => d.key?.id === text.key.id)).body.data
    assert.deepEqual(editAtDan.key, { remoteJid: catJid, fromMe: false, id: text.key.id })
    assert.equal(editAtDan.type, 'MESSAGE_EDIT')
    assert.deepEqual(editAtDan.editedMessage, { conversation: 'see you at 6' })
    assert.match(editAtDan.timestampMs, /^[0-9]{13}$/)
    const editAtCat = (await at('evo-cat', 'send.message.update', (d) => d.key?.id === text.key.id)).body.data
    assert.equal(editAtCat.type, 'MESSAGE_EDIT')
    assert.deepEqual(editAtCat.key, { remoteJid: danJid, fromMe: true, id: text.key.id })
    const storedAtDan = await ok(dan('POST', '/chat/findMessages/evo-dan', { where: { key: { id: text.key.id } } }))
    assert.equal(storedAtDan.messages.records[0].message.conversation, 'see you at 6')
    assert.equal(storedAtDan.messages.records[0].status, 'EDITED')
    // Past WhatsApp's 15 minutes an edit is refused before anything is sent.
    const old = await ok(cat('POST', '/message/sendText/evo-cat', { number: DAN, text: 'old news' }), 201)
    await gw.db.run('UPDATE messages SET timestamp = timestamp - 1000 WHERE id = ?', old.key.id)
    isError(await cat('POST', '/chat/updateMessage/evo-cat', { number: DAN, key: { id: old.key.id }, text: 'x' }), 400, 'edit_window_passed')

    // Delete for everyone: Dan gets MESSAGES_DELETE with the key; Cat gets its stored message marked DELETED.
    isError(await cat('DELETE', '/chat/deleteMessageForEveryone/evo-cat', { id: text.key.id, remoteJid: danJid, fromMe: false }), 400, 'not_own_message')
    isError(await cat('DELETE', '/chat/deleteMessageForEveryone/evo-cat', { id: text.key.id, remoteJid: danJid }), 400, 'invalid_request')
    const deleted = await ok(cat('DELETE', '/chat/deleteMessageForEveryone/evo-cat', { id: text.key.id, remoteJid: danJid, fromMe: true }), 201)
    assert.equal(deleted.message.protocolMessage.type, 'REVOKE')
    assert.deepEqual(deleted.message.protocolMessage.key, { remoteJid: danJid, fromMe: true, id: text.key.id })
    const deleteAtDan = (await at('evo-dan', 'messages.delete', (d) => d.id === text.key.id)).body.data
    assert.deepEqual(deleteAtDan, { remoteJid: catJid, fromMe: false, id: text.key.id })
    const deleteAtCat = (await at('evo-cat', 'messages.delete', (d) => d.key?.id === text.key.id)).body.data
    hasShape(deleteAtCat, { id: 'string', instanceId: 'string', key: { remoteJid: 'string', fromMe: 'boolean', id: 'string' }, messageType: 'string', status: 'string', messageTimestamp: 'number' })
    assert.equal(deleteAtCat.status, 'DELETED')
    assert.equal(deleteAtCat.messageType, 'conversation')
    assert.deepEqual(deleteAtCat.message, { conversation: 'see you at 6' })
    isError(await cat('POST', '/chat/updateMessage/evo-cat', { number: DAN, key: { id: text.key.id }, text: 'x' }), 400, 'message_deleted')
    isError(await cat('DELETE', '/chat/deleteMessageForEveryone/evo-cat', { id: text.key.id, remoteJid: danJid, fromMe: true }), 400, 'message_deleted')
    const goneAtDan = await ok(dan('POST', '/chat/findMessages/evo-dan', { where: { key: { id: text.key.id } } }))
    assert.equal(goneAtDan.messages.records[0].status, 'DELETED')
    assert.deepEqual(goneAtDan.messages.records[0].message, { conversation: '' })

    // In a group the keys name the author (participant) on the receiving side.
    const group = await mock.control('POST', '/groups', { creator: CAT, subject: 'edits', members: [DAN] })
    const inGroup = await ok(cat('POST', '/message/sendText/evo-cat', { number: group.jid, text: 'group draft' }), 201)
    await at('evo-dan', 'messages.upsert', (d) => d.key.id === inGroup.key.id)
    await ok(cat('POST', '/chat/updateMessage/evo-cat', { number: group.jid, key: { id: inGroup.key.id }, text: 'group final' }))
    const groupEdit = (await at('evo-dan', 'messages.edited', (d) => d.key?.id === inGroup.key.id)).body.data
    assert.deepEqual(groupEdit.key, { remoteJid: group.jid, fromMe: false, id: inGroup.key.id, participant: catJid })
    assert.deepEqual(groupEdit.editedMessage, { conversation: 'group final' })
    isError(await cat('DELETE', '/chat/deleteMessageForEveryone/evo-cat', { id: 'NOSUCHID0003', remoteJid: group.jid, fromMe: false }), 400, 'invalid_key')
    await ok(cat('DELETE', '/chat/deleteMessageForEveryone/evo-cat', { id: inGroup.key.id, remoteJid: group.jid, fromMe: true }), 201)
    const groupDelete = (await at('evo-dan', 'messages.delete', (d) => d.id === inGroup.key.id)).body.data
    assert.deepEqual(groupDelete, { remoteJid: group.jid, fromMe: false, id: inGroup.key.id, participant: catJid })

    // A sticker (WebP only) arrives with its file in message.base64 (the webhook's base64 setting).
    isError(await cat('POST', '/message/sendSticker/evo-cat', { number: DAN, sticker: Buffer.alloc(64, 1).toString('base64') }), 400, 'invalid_media')
    const webp = Buffer.concat([Buffer.from('RIFF'), Buffer.from([0xf8, 0x03, 0, 0]), Buffer.from('WEBPVP8L'), Buffer.alloc(1000, 9)])
    const sticker = await ok(cat('POST', '/message/sendSticker/evo-cat', { number: DAN, sticker: webp.toString('base64') }), 201)
    assert.equal(sticker.messageType, 'stickerMessage')
    const stickerAtDan = (await at('evo-dan', 'messages.upsert', (d) => d.key.id === sticker.key.id)).body.data
    assert.equal(stickerAtDan.messageType, 'stickerMessage')
    assert.equal(stickerAtDan.message.stickerMessage.mimetype, 'image/webp')
    assert.equal(stickerAtDan.message.base64, webp.toString('base64'), 'the sticker itself, decrypted')
    const stickerNative = await until(() => hooks.received.find((h) => h.path === '/dan-native' && h.body.data.id === sticker.key.id), 'the sticker at the native webhook')
    assert.equal(stickerNative.body.data.base64, webp.toString('base64'))
    assert.equal(stickerNative.body.data.messageType, 'stickerMessage')

    // A round video note (ptvMessage) arrives the same way, with its file.
    const clip = Buffer.alloc(1500, 4)
    const ptv = await ok(cat('POST', '/message/sendPtv/evo-cat', { number: DAN, video: clip.toString('base64') }), 201)
    assert.equal(ptv.messageType, 'ptvMessage')
    const ptvAtDan = (await at('evo-dan', 'messages.upsert', (d) => d.key.id === ptv.key.id)).body.data
    assert.equal(ptvAtDan.messageType, 'ptvMessage')
    assert.equal(ptvAtDan.message.ptvMessage.mimetype, 'video/mp4')
    assert.equal(ptvAtDan.message.base64, clip.toString('base64'), 'the video note itself, decrypted')

    // Received media by key, as base64; a text, an unknown id and convertToMp4 refused.
    const photo = Buffer.alloc(3000, 5)
    const image = await ok(cat('POST', '/message/sendMedia/evo-cat', { number: DAN, mediatype: 'image', mimetype: 'image/jpeg', caption: 'the view', media: photo.toString('base64') }), 201)
    const imageAtDan = (await at('evo-dan', 'messages.upsert', (d) => d.key.id === image.key.id)).body.data
    assert.equal(imageAtDan.message.base64, photo.toString('base64'))
    const found = (await ok(dan('POST', '/chat/findMessages/evo-dan', { where: { key: { id: image.key.id } } }))).messages.records[0]
    assert.equal(found.messageType, 'imageMessage', 'stored received media is found with its content')
    assert.equal(found.message.imageMessage.caption, 'the view')
    assert.equal(typeof found.message.imageMessage.mediaKey, 'string')
    const media = await ok(dan('POST', '/chat/getBase64FromMediaMessage/evo-dan', { message: { key: { id: image.key.id } } }), 201)
    hasShape(media, { mediaType: 'string', fileName: 'string', caption: 'string', size: { fileLength: 'string' }, mimetype: 'string', base64: 'string' })
    assert.deepEqual([media.mediaType, media.mimetype, media.caption, media.size.fileLength, media.base64], ['imageMessage', 'image/jpeg', 'the view', '3000', photo.toString('base64')])
    isError(await dan('POST', '/chat/getBase64FromMediaMessage/evo-dan', { message: { key: { id: 'NOSUCHID0002' } } }), 404, 'message_not_found')
    isError(await dan('POST', '/chat/getBase64FromMediaMessage/evo-dan', { message: { key: { id: old.key.id } } }), 400, 'not_media')
    isError(await dan('POST', '/chat/getBase64FromMediaMessage/evo-dan', { message: { key: { id: image.key.id } }, convertToMp4: true }), 400, 'feature_unsupported')
    isError(await dan('POST', '/chat/getBase64FromMediaMessage/evo-dan', {}), 400, 'invalid_request')
    // The native API: the file itself, with its type; an edit and a delete for everyone.
    const file = await fetch(`${gw.url}/instances/evo-dan/messages/media?id=${image.key.id}`, { headers: { apikey: API_KEY } })
    assert.equal(file.status, 200)
    assert.equal(file.headers.get('content-type'), 'image/jpeg')
    assert.deepEqual(Buffer.from(await file.arrayBuffer()), photo)
    const native = await ok(cat('POST', '/message/sendText/evo-cat', { number: DAN, text: 'native draft' }), 201)
    await at('evo-dan', 'messages.upsert', (d) => d.key.id === native.key.id)
    const nativeEdit = await ok(cat('POST', '/instances/evo-cat/messages/edit', { chat: DAN, id: native.key.id, text: 'native final' }))
    assert.equal(nativeEdit.id, native.key.id)
    assert.deepEqual((await at('evo-dan', 'messages.edited', (d) => d.key?.id === native.key.id)).body.data.editedMessage, { conversation: 'native final' })
    await ok(cat('POST', '/instances/evo-cat/messages/revoke', { chat: DAN, id: native.key.id }), 201)
    await at('evo-dan', 'messages.delete', (d) => d.id === native.key.id)
    const nativeMissing = await cat('POST', '/instances/evo-cat/messages/edit', { chat: DAN, id: 'NOSUCHID0004', text: 'x' })
    assert.deepEqual([nativeMissing.status, nativeMissing.body.error.code], [404, 'message_not_found'])
    // Above the bound: 413 on request, and the webhook carries the message with base64Error instead of the file.
    const bound = gw.gateway.config.mediaBase64MaxBytes
    gw.gateway.config.mediaBase64MaxBytes = 2000
    try {
      isError(await dan('POST', '/chat/getBase64FromMediaMessage/evo-dan', { message: { key: { id: image.key.id } } }), 413, 'media_too_large')
      const big = await ok(cat('POST', '/message/sendMedia/evo-cat', { number: DAN, mediatype: 'document', mimetype: 'application/pdf', fileName: 'big.pdf', media: Buffer.alloc(4000, 1).toString('base64') }), 201)
      const bigAtDan = (await at('evo-dan', 'messages.upsert', (d) => d.key.id === big.key.id)).body.data
      assert.equal(bigAtDan.message.base64, undefined)
      assert.equal(bigAtDan.message.base64Error.code, 'media_too_large')
      assert.equal(bigAtDan.message.documentMessage.fileName, 'big.pdf')
    } finally {
      gw.gateway.config.mediaBase64MaxBytes = bound
    }

    // A poll vote: Cat's instance (the poll's author) gets MESSAGES_UPDATE with every option and its voters.
    const poll = await ok(cat('POST', '/message/sendPoll/evo-cat', { number: DAN, name: 'Lunch?', selectableCount: 1, values: ['Pizza', 'Sushi'] }), 201)
    await at('evo-dan', 'messages.upsert', (d) => d.key.id === poll.key.id)
    const unknownPoll = await dan('POST', '/instances/evo-dan/messages/poll-vote', { chat: CAT, pollId: 'NOSUCHPOLL01', options: ['Pizza'] })
    assert.equal(unknownPoll.status, 404, JSON.stringify(unknownPoll.body))
    assert.equal(unknownPoll.body.error.code, 'unknown_poll')
    await ok(dan('POST', '/instances/evo-dan/messages/poll-vote', { chat: CAT, pollId: poll.key.id, options: ['Sushi'] }), 201)
    const vote = (await at('evo-cat', 'messages.update', (d) => d.keyId === poll.key.id && d.pollUpdates)).body.data
    hasShape(vote, { keyId: 'string', remoteJid: 'string', fromMe: 'boolean', pollUpdates: 'array', voter: 'string', selectedOptions: 'array', instanceId: 'string' })
    assert.equal(vote.remoteJid, danJid)
    assert.equal(vote.fromMe, true)
    const accounts = await mock.control('GET', '/accounts')
    const danAccount = (Array.isArray(accounts) ? accounts : accounts.accounts).find((a) => a.phone === DAN)
    assert.ok([danJid, danAccount.lid].includes(vote.voter), `the voter is Dan (phone number or LID): ${vote.voter} ${JSON.stringify(danAccount)}`)
    assert.deepEqual(vote.selectedOptions, ['Sushi'])
    assert.deepEqual(vote.pollUpdates, [{ name: 'Pizza', voters: [] }, { name: 'Sushi', voters: [vote.voter] }])
    assert.ok(!('status' in vote), 'a vote changes no delivery status')
    const atCat = await ok(cat('GET', `/instances/evo-cat/messages?chat=${encodeURIComponent(danJid)}`))
    assert.ok(atCat.messages.length > 0 && atCat.messages.every((m) => m.fromMe), 'a vote is stored as no message')
    assert.equal(hooks.state.bad, 0, 'every delivery signed')
  })

  test('Evolution media by URL: fetched bounded, through the instance proxy, private addresses refused by default, typed 400s', async () => {
    const EVE = '15553000031'
    const FAY = '15553000032'
    const eve = await pairByCode(EVE, 'evo-eve', { events: ['SEND_MESSAGE'] })
    await pairByCode(FAY, 'evo-fay', { base64: true, events: ['MESSAGES_UPSERT'] })
    const photo = Buffer.alloc(2500, 6)
    const webp = Buffer.concat([Buffer.from('RIFF'), Buffer.from([0xf8, 0x03, 0, 0]), Buffer.from('WEBPVP8L'), Buffer.alloc(500, 4)])
    const files = await fileServer({
      '/photo.jpg': { type: 'image/png', body: photo },
      '/docs/report.pdf': { type: 'application/pdf', body: Buffer.alloc(700, 8) },
      '/sticker.webp': { type: 'image/webp', body: webp },
      '/voice.ogg': { type: 'audio/ogg', body: Buffer.alloc(600, 1) },
      '/big.bin': { type: 'application/octet-stream', body: Buffer.alloc(9000, 3) },
      '/empty': { type: 'image/jpeg', body: Buffer.alloc(0) },
    })
    const config = gw.gateway.config
    const saved = { ...config }
    const proxy = await connectProxy()
    const atFay = (id) => until(() => hooks.received.find((h) => h.path === '/evo-fay' && h.body.event === 'messages.upsert' && h.body.data.key.id === id), `MESSAGES_UPSERT ${id} at Fay`)
    const refused = async (body, code, route = 'sendMedia') => {
      const r = await eve('POST', `/message/${route}/evo-eve`, { number: FAY, ...body })
      assert.equal(r.status, 400, JSON.stringify(r.body))
      assert.equal(r.body.response.code, code, JSON.stringify(r.body))
      hasShape(r.body, { status: 'number', error: 'string', response: { message: 'array' } })
    }
    try {
      // By default the gateway's own network is out of reach: an address, or a name resolving to one.
      await refused({ mediatype: 'image', media: `${files.url}/photo.jpg` }, 'media_url_blocked')
      await refused({ mediatype: 'image', media: `http://localhost:${files.port}/photo.jpg` }, 'media_url_blocked')
      await refused({ mediatype: 'image', media: `http://[::1]:${files.port}/photo.jpg` }, 'media_url_blocked')
      assert.equal(Object.keys(files.hits).length, 0, 'nothing was fetched')
      await refused({ mediatype: 'image', media: 'ftp://127.0.0.1/x' }, 'invalid_request')

      config.mediaUrlAllowPrivate = true
      config.mediaUrlMaxBytes = 5000
      config.mediaUrlTimeoutMs = 800
      // An image by URL (through a redirect): its Content-Type is the mimetype; Fay gets the very file.
      const image = await ok(eve('POST', '/message/sendMedia/evo-eve', { number: FAY, mediatype: 'image', caption: 'by url', media: `${files.url}/redirect/photo.jpg` }), 201)
      assert.equal(image.message.imageMessage.mimetype, 'image/png')
      const imageAtFay = (await atFay(image.key.id)).body.data
      assert.equal(imageAtFay.message.imageMessage.mimetype, 'image/png')
      assert.equal(imageAtFay.message.imageMessage.caption, 'by url')
      assert.equal(imageAtFay.message.base64, photo.toString('base64'))
      // A document takes its name from the URL; a sticker and a voice note by URL too.
      const doc = await ok(eve('POST', '/message/sendMedia/evo-eve', { number: FAY, mediatype: 'document', media: `${files.url}/docs/report.pdf` }), 201)
      assert.equal(doc.message.documentMessage.fileName, 'report.pdf')
      assert.equal((await atFay(doc.key.id)).body.data.message.documentMessage.mimetype, 'application/pdf')
      const sticker = await ok(eve('POST', '/message/sendSticker/evo-eve', { number: FAY, sticker: `${files.url}/sticker.webp` }), 201)
      assert.equal((await atFay(sticker.key.id)).body.data.message.base64, webp.toString('base64'))
      const voice = await ok(eve('POST', '/message/sendWhatsAppAudio/evo-eve', { number: FAY, audio: `${files.url}/voice.ogg` }), 201)
      assert.equal((await atFay(voice.key.id)).body.data.message.audioMessage.ptt, true)
      await refused({ sticker: `${files.url}/photo.jpg` }, 'invalid_media', 'sendSticker')

      // Each failure is a typed 400 and nothing is sent.
      await refused({ mediatype: 'image', media: `${files.url}/missing.jpg` }, 'media_url_failed')
      await refused({ mediatype: 'image', media: `${files.url}/empty` }, 'media_url_failed')
      await refused({ mediatype: 'document', media: `${files.url}/big.bin` }, 'media_url_too_large')
      await refused({ mediatype: 'document', media: `${files.url}/endless` }, 'media_url_too_large')
      await refused({ mediatype: 'document', media: `${files.url}/slow` }, 'media_url_timeout')
      await refused({ mediatype: 'document', media: 'http://127.0.0.1:9/closed' }, 'media_url_failed')

      // With a proxy set, the fetch goes through it; once the proxy is gone, it fails and nothing goes direct.
      await ok(eve('POST', '/proxy/set/evo-eve', { enabled: true, host: '127.0.0.1', port: String(proxy.address().port), protocol: 'http' }), 201)
      await until(async () => (await ok(eve('GET', '/instance/connectionState/evo-eve'))).instance.state === 'open', 'open through the proxy')
      const viaProxy = await ok(eve('POST', '/message/sendMedia/evo-eve', { number: FAY, mediatype: 'image', media: `${files.url}/photo.jpg?via=proxy` }), 201)
      assert.ok(proxy.targets.includes(`127.0.0.1:${files.port}`), `the fetch went through the proxy: ${proxy.targets}`)
      assert.equal((await atFay(viaProxy.key.id)).body.data.message.base64, photo.toString('base64'))
      proxy.close() // the session's tunnel stays open; new tunnels are refused
      const direct = files.hits['/photo.jpg?via=dead'] ?? 0
      await refused({ mediatype: 'image', media: `${files.url}/photo.jpg?via=dead` }, 'media_url_failed')
      assert.equal(files.hits['/photo.jpg?via=dead'] ?? 0, direct, 'no direct request when the proxy is down')
    } finally {
      Object.assign(config, { mediaUrlAllowPrivate: saved.mediaUrlAllowPrivate, mediaUrlMaxBytes: saved.mediaUrlMaxBytes, mediaUrlTimeoutMs: saved.mediaUrlTimeoutMs })
      await files.close()
      proxy.closeAllConnections?.()
      proxy.close()
    }
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
