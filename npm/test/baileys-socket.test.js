// Baileys' whole socket (makeWASocket of baileys@7.0.0-rc14, an independent WhatsApp Web client)
// against walink-sim's mock-server, beside a walink client and the simulated phones: pairing by
// QR (its QR scanned without the fifth field, as older companions show it) and by code, login, 1:1 and group messages (phone-number- and LID-addressed groups) in
// every direction, delivery and read receipts, messages sent while Baileys was offline, a server
// restart. The simulation must answer everything Baileys asks (no 501), and no side may fail to
// decrypt anything. This suite fails, never skips, when Baileys cannot run.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { BaileysPeer, routeMediaHost, textOf, trustSimulationRoot } from './support/baileys.js'
import { startMockServer, withMockServer } from './support/mock-server.js'
import { pairedWalinkClient, phoneReceives } from './support/walink-client.js'

const QR_PHONE = '15550201001'
const CODE_PHONE = '15550201002'
const WALINK_PHONE = '15550201003'
const PHONE_ONLY = '15550201004'
const pn = (phone) => `${phone}@s.whatsapp.net`
const DELIVERY_ACK = 3 // proto.WebMessageInfo.Status
const READ = 4

withMockServer(test, 'Baileys socket against the mock-server', () => {
  let server
  let qrPeer
  let codePeer
  let walink
  const lids = {}

  before(async () => {
    server = await startMockServer(11)
    trustSimulationRoot()
    routeMediaHost(server.controlUrl)
    for (const [phone, name] of [[QR_PHONE, 'Quinn'], [CODE_PHONE, 'Cody'], [PHONE_ONLY, 'Pat']]) {
      const account = await server.control('POST', '/accounts', { phone, name })
      lids[phone] = account.lid
    }
  })
  after(async () => {
    await walink?.connection.close()
    await qrPeer?.dispose()
    await codePeer?.dispose()
    server?.stop()
  })

  /** The chat a message from `phone` may name: its number or its LID. */
  const chatOf = (phone) => [pn(phone), lids[phone]]
  const phoneSends = (from, to, text) => server.control('POST', `/accounts/${from}/send`, { to, text })
  const walinkGets = (text) => walink.waitFor((e) => e.type === 'message' && e.text === text, JSON.stringify(text))

  test('Baileys pairs by QR (scanned as the four-field QR of older companions) and logs in after the 515', async () => {
    // Something for the phone's history sync to carry to the new companion.
    await phoneSends(PHONE_ONLY, QR_PHONE, 'sent before Baileys was linked')
    qrPeer = await BaileysPeer.create(server.url)
    await qrPeer.start()
    await qrPeer.waitFor((p) => p.qrs.length > 0, 'a QR')
    const fields = qrPeer.qrs[0].split(',')
    assert.equal(fields.length, 5, 'Baileys 7 shows ref,noise,identity,adv,client type')
    // Without the client type, as companions before it showed it: the phone accepts that too.
    await server.control('POST', `/accounts/${QR_PHONE}/scan`, { qr: fields.slice(0, 4).join(',') })
    await qrPeer.opens(1)
    assert.equal(qrPeer.jid, pn(QR_PHONE))
    // Baileys downloaded the phone's history blob from the media host, decrypted and read it.
    await qrPeer.waitFor((p) => p.history.some((m) => textOf(m) === 'sent before Baileys was linked'), 'the history sync')
    const { devices } = await server.control('GET', `/accounts/${QR_PHONE}/devices`)
    assert.ok(devices.some((d) => d.id !== 0 && d.online), JSON.stringify(devices))
  })

  test('Baileys pairs by code', async () => {
    codePeer = await BaileysPeer.create(server.url)
    await codePeer.start()
    await codePeer.waitFor((p) => p.qrs.length > 0, 'the pairing socket')
    const code = await codePeer.sock.requestPairingCode(CODE_PHONE)
    assert.match(code, /^[0-9A-Z]{8}$/)
    await server.control('POST', `/accounts/${CODE_PHONE}/code`, { code })
    await codePeer.opens(1)
    assert.equal(codePeer.jid, pn(CODE_PHONE))
  })

  test('1:1 messages between Baileys, walink and the phones, with receipts', async () => {
    walink = await pairedWalinkClient(server, WALINK_PHONE, 'Wally')
    lids[WALINK_PHONE] = (await server.control('GET', '/accounts')).accounts.find((a) => a.phone === WALINK_PHONE).lid

    // walink -> Baileys, and Baileys' delivery receipt reaches walink.
    const sent = await walink.connection.sendText(pn(QR_PHONE), 'walink to Baileys')
    const atBaileys = await qrPeer.receives('walink to Baileys')
    assert.ok(chatOf(WALINK_PHONE).includes(atBaileys.key.remoteJid), atBaileys.key.remoteJid)
    await walink.waitFor((e) => e.type === 'receipt' && e.ids.includes(sent.id), 'the delivery receipt')

    // Baileys -> walink, and walink's delivery receipt reaches Baileys; then read both ways.
    const fromBaileys = await qrPeer.sendText(pn(WALINK_PHONE), 'Baileys to walink')
    const atWalink = await walinkGets('Baileys to walink')
    assert.ok(chatOf(QR_PHONE).includes(atWalink.chat), atWalink.chat)
    await qrPeer.waitFor((p) => p.receipts.some((r) => r.key.id === fromBaileys.key.id && r.status >= DELIVERY_ACK), 'the delivery receipt')
    await walink.connection.markRead(atWalink.chat, [atWalink.id])
    await qrPeer.waitFor((p) => p.receipts.some((r) => r.key.id === fromBaileys.key.id && r.status === READ), 'the read receipt')
    await qrPeer.sock.readMessages([atBaileys.key])
    await walink.waitFor((e) => e.type === 'receipt' && e.receiptType === 'read' && e.ids.includes(sent.id), 'the read receipt')

    // Baileys' own phone got the device-sent copy of what Baileys sent.
    const own = await phoneReceives(server, QR_PHONE, 'Baileys to walink')
    assert.equal(own.error, null)

    // A phone -> Baileys, Baileys -> that phone.
    await phoneSends(PHONE_ONLY, QR_PHONE, 'phone to Baileys')
    const fromPhone = await qrPeer.receives('phone to Baileys')
    assert.ok(chatOf(PHONE_ONLY).includes(fromPhone.key.remoteJid))
    const toPhone = await qrPeer.sendText(pn(PHONE_ONLY), 'Baileys to phone')
    assert.equal((await phoneReceives(server, PHONE_ONLY, 'Baileys to phone')).error, null)
    await qrPeer.waitFor((p) => p.receipts.some((r) => r.key.id === toPhone.key.id && r.status >= DELIVERY_ACK), "the phone's receipt")

    // Baileys' own phone writes to walink: walink gets it, and Baileys its mirrored copy.
    await phoneSends(QR_PHONE, WALINK_PHONE, 'own phone to walink')
    await walinkGets('own phone to walink')
    const mirrored = await qrPeer.receives('own phone to walink')
    assert.equal(mirrored.key.fromMe, true)

    // Baileys <-> Baileys.
    await qrPeer.sendText(pn(CODE_PHONE), 'Baileys to Baileys')
    await codePeer.receives('Baileys to Baileys')
    await codePeer.sendText(pn(QR_PHONE), 'and back')
    await qrPeer.receives('and back')
  })

  for (const addressing of ['pn', 'lid']) {
    test(`${addressing}-addressed group messages in every direction`, async () => {
      const group = await server.control('POST', '/groups', {
        creator: QR_PHONE,
        subject: `sim ${addressing}`,
        members: [CODE_PHONE, WALINK_PHONE, PHONE_ONLY],
        addressing_mode: addressing,
      })
      const tag = (text) => `${addressing}: ${text}`

      const fromBaileys = await qrPeer.sendText(group.jid, tag('Baileys to the group'))
      const atWalink = await walinkGets(tag('Baileys to the group'))
      assert.equal(atWalink.chat, group.jid)
      assert.ok(chatOf(QR_PHONE).some((jid) => atWalink.sender.startsWith(jid.split('@')[0])), atWalink.sender)
      await codePeer.receives(tag('Baileys to the group'))
      assert.equal((await phoneReceives(server, PHONE_ONLY, tag('Baileys to the group'))).error, null)
      await qrPeer.waitFor((p) => p.receipts.some((r) => r.key.id === fromBaileys.key.id), 'a group receipt')

      await walink.connection.sendText(group.jid, tag('walink to the group'))
      const atBaileys = await qrPeer.receives(tag('walink to the group'))
      assert.equal(atBaileys.key.remoteJid, group.jid)
      await codePeer.receives(tag('walink to the group'))
      assert.equal((await phoneReceives(server, PHONE_ONLY, tag('walink to the group'))).error, null)

      await phoneSends(PHONE_ONLY, group.jid, tag('phone to the group'))
      await qrPeer.receives(tag('phone to the group'))
      await codePeer.receives(tag('phone to the group'))
      await walinkGets(tag('phone to the group'))
    })
  }

  test('Baileys gets what was sent while it was offline', async () => {
    const opened = qrPeer.opened
    qrPeer.stop()
    await new Promise((resolve) => setTimeout(resolve, 100))
    await walink.connection.sendText(pn(QR_PHONE), 'while Baileys was away (walink)')
    await phoneSends(PHONE_ONLY, QR_PHONE, 'while Baileys was away (phone)')
    await qrPeer.start()
    await qrPeer.opens(opened + 1)
    await qrPeer.receives('while Baileys was away (walink)')
    await qrPeer.receives('while Baileys was away (phone)')
  })

  test('Baileys and walink survive a server restart', async () => {
    const opened = qrPeer.opened
    const connected = () => walink.events.filter((e) => e.type === 'state' && e.state.kind === 'connected').length
    const connections = connected()
    await server.control('POST', '/restart')
    await qrPeer.opens(opened + 1, 30_000)
    await walink.waitFor(() => connected() > connections, 'reconnected', 30_000)
    await walink.connection.sendText(pn(QR_PHONE), 'after the restart (walink)')
    await qrPeer.receives('after the restart (walink)')
    await qrPeer.sendText(pn(WALINK_PHONE), 'after the restart (Baileys)')
    await walinkGets('after the restart (Baileys)')
  })

  test('nothing was answered 501 and nothing failed to decrypt', async () => {
    const stats = await server.control('GET', '/wire-stats')
    assert.deepEqual(stats.unimplemented, {}, 'requests the simulation answered 501')
    // What Baileys asked at login and while messaging (docs/sim.md lists them).
    for (const kind of [
      'get abt props',
      'get blocklist ',
      'get encrypt count',
      'get encrypt digest',
      'get encrypt key',
      'get privacy privacy',
      'get usync usync',
      'get w:g2 query',
      'set encrypt registration',
      'set passive active',
      'set privacy tokens',
      'set w:sync:app:state sync',
    ]) {
      assert.ok(stats.requests[kind] > 0, `${kind}: ${JSON.stringify(stats.requests)}`)
    }
    assert.equal(stats.key_reuses, 0)
    assert.ok(stats.privacy_tokens_issued > 0, 'Baileys issued privacy tokens after its 1:1 sends')
    for (const peer of [qrPeer, codePeer]) {
      assert.deepEqual(peer.undecryptable.map((m) => m.key), [], 'Baileys could not decrypt')
      assert.ok(peer.messages.every((m) => m.message || m.messageStubType), 'every message has content')
    }
    assert.deepEqual(walink.events.filter((e) => e.type === 'decryptFailed'), [])
    for (const phone of [QR_PHONE, CODE_PHONE, WALINK_PHONE, PHONE_ONLY]) {
      const { messages } = await server.control('GET', `/accounts/${phone}/messages`)
      assert.deepEqual(messages.filter((m) => m.error), [], `the phone of ${phone}`)
    }
    assert.ok(qrPeer.messages.filter(textOf).length >= 8)
    assert.equal(stats.phash_mismatches, 0)
  })
})
