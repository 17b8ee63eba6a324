// Media through the npm driver against walink-sim's mock-server, checked by Baileys' own media
// code: walink uploads a photo (the core encrypts, the driver POSTs it to the media host with the
// media_conn auth) and Baileys' `downloadContentFromMessage` decrypts it from the message Baileys'
// socket received; Baileys' socket uploads an image (its `encryptedStream` and upload) and walink's
// `downloadMedia` checks and decrypts it. A phone's voice note that the hosts expired is asked of
// the phone again (media retry) and downloads. Tampered media fails typed.
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import { after, before, test } from 'node:test'

import { downloadContentFromMessage, proto } from 'baileys'

import { BaileysPeer, routeMediaHost, trustSimulationRoot } from './support/baileys.js'
import { startMockServer, withMockServer } from './support/mock-server.js'
import { pairedWalinkClient } from './support/walink-client.js'

const WALINK_PHONE = '15550301001'
const BAILEYS_PHONE = '15550301002'
const pn = (phone) => `${phone}@s.whatsapp.net`

/** Deterministic bytes standing in for a file. */
function fileOf(length, seed) {
  const bytes = new Uint8Array(length)
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + seed) & 0xff
  return bytes
}

async function collect(stream) {
  const chunks = []
  for await (const chunk of Readable.from(stream)) chunks.push(chunk)
  return new Uint8Array(Buffer.concat(chunks))
}

withMockServer(test, 'media against the mock-server', () => {
  let server
  let walink
  let peer

  before(async () => {
    server = await startMockServer(21)
    trustSimulationRoot()
    routeMediaHost(server.controlUrl)
    walink = await pairedWalinkClient(server, WALINK_PHONE, 'Wally')
    await server.control('POST', '/accounts', { phone: BAILEYS_PHONE, name: 'Bea' })
    peer = await BaileysPeer.create(server.url)
    await peer.start()
    await peer.waitFor((p) => p.qrs.length > 0, 'the pairing socket')
    const code = await peer.sock.requestPairingCode(BAILEYS_PHONE)
    // Baileys resolves once its request left, before the server has it: enter the code when it
    // is known there.
    for (let attempt = 0; ; attempt++) {
      try {
        await server.control('POST', `/accounts/${BAILEYS_PHONE}/code`, { code })
        break
      } catch (error) {
        if (attempt >= 100 || !/no pairing code requested/.test(error.message)) throw error
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
    await peer.opens(1)
  })
  after(async () => {
    await walink?.connection.close()
    await peer?.dispose()
    server?.stop()
  })

  test("walink's photo is decrypted by Baileys' downloadContentFromMessage", async () => {
    const photo = fileOf(200_000, 1)
    const sent = await walink.connection.sendMedia(pn(BAILEYS_PHONE), {
      kind: 'image',
      data: photo,
      mimetype: 'image/jpeg',
      caption: 'from walink',
      width: 64,
      height: 48,
    })
    assert.equal(sent.kind, 'messageSent')
    await peer.waitFor((p) => p.messages.some((m) => m.key.id === sent.id), 'the photo')
    const received = peer.messages.find((m) => m.key.id === sent.id)
    const image = received.message.imageMessage
    assert.equal(image.caption, 'from walink')
    assert.equal(image.mimetype, 'image/jpeg')
    assert.equal(Number(image.fileLength), photo.length)
    const plain = await collect(await downloadContentFromMessage(image, 'image'))
    assert.deepEqual(plain, photo)
  })

  test("Baileys' uploaded image is checked and decrypted by walink's downloadMedia", async () => {
    const picture = fileOf(150_001, 2)
    const sent = await peer.sock.sendMessage(pn(WALINK_PHONE), { image: Buffer.from(picture), caption: 'from Baileys' })
    const event = await walink.waitFor((e) => e.type === 'message' && e.id === sent.key.id, 'the image')
    const data = await walink.connection.downloadMedia(event)
    assert.deepEqual(data, picture)
    // The same message with one byte of its key changed: the MAC check refuses it, typed.
    const tampered = new Uint8Array(event.raw)
    const key = Buffer.from(sent.message.imageMessage.mediaKey)
    const at = Buffer.from(tampered).indexOf(key)
    assert.ok(at > 0)
    tampered[at] ^= 1
    await assert.rejects(walink.connection.downloadMedia({ ...event, raw: tampered }), (e) => e.code === 'media_invalid')
  })

  test('every kind goes up and comes back; expired media is uploaded again by the phone', async () => {
    for (const kind of ['video', 'gif', 'audio', 'ptt', 'document', 'sticker']) {
      const data = fileOf(3_000 + kind.length, 3)
      const sent = await walink.connection.sendMedia(pn(BAILEYS_PHONE), { kind, data, mimetype: 'application/octet-stream', fileName: 'f.bin' })
      await peer.waitFor((p) => p.messages.some((m) => m.key.id === sent.id), kind)
      const message = peer.messages.find((m) => m.key.id === sent.id).message
      const [type, field] = {
        video: ['video', 'videoMessage'],
        gif: ['video', 'videoMessage'],
        audio: ['audio', 'audioMessage'],
        ptt: ['audio', 'audioMessage'],
        document: ['document', 'documentMessage'],
        sticker: ['sticker', 'stickerMessage'],
      }[kind]
      assert.ok(message[field], `${kind}: ${JSON.stringify(Object.keys(message))}`)
      if (kind === 'gif') assert.equal(message.videoMessage.gifPlayback, true)
      if (kind === 'ptt') assert.equal(message.audioMessage.ptt, true)
      if (kind === 'document') assert.equal(message.documentMessage.fileName, 'f.bin')
      assert.deepEqual(await collect(await downloadContentFromMessage(message[field], type)), data, kind)
    }

    const note = fileOf(9_000, 4)
    const { id } = await server.control('POST', `/accounts/${BAILEYS_PHONE}/send-media`, {
      to: WALINK_PHONE,
      kind: 'ptt',
      data_base64: Buffer.from(note).toString('base64'),
      mimetype: 'audio/ogg; codecs=opus',
    })
    const event = await walink.waitFor((e) => e.type === 'message' && e.id === id, 'the voice note')
    assert.deepEqual(await walink.connection.downloadMedia(event), note)
    // The event's message is Baileys' protobuf JSON; the raw bytes decode with Baileys' proto.
    const { directPath, ptt } = event.message.audioMessage
    assert.equal(proto.Message.decode(event.raw).audioMessage.directPath, directPath)
    assert.equal(ptt, true)
    await server.control('POST', '/expire-media', { direct_path: directPath })
    assert.deepEqual(await walink.connection.downloadMedia(event), note)
  })

  test('streamed: a file and a Node stream go up, downloads land in a file or a stream only once verified', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'walink-media-test-'))
    try {
      // Up from a file: Baileys decrypts what the driver streamed from the temporary file.
      const video = fileOf(1_500_007, 5)
      const source = join(directory, 'clip.mp4')
      await writeFile(source, video)
      const sent = await walink.connection.sendMedia(pn(BAILEYS_PHONE), { kind: 'video', path: source, mimetype: 'video/mp4', caption: 'streamed' })
      await peer.waitFor((p) => p.messages.some((m) => m.key.id === sent.id), 'the streamed video')
      const message = peer.messages.find((m) => m.key.id === sent.id).message.videoMessage
      assert.equal(Number(message.fileLength), video.length)
      assert.deepEqual(await collect(await downloadContentFromMessage(message, 'video')), video)

      // Up from a Node stream of uneven pieces.
      const doc = fileOf(333_333, 6)
      const pieces = [doc.subarray(0, 7), doc.subarray(7, 100_000), doc.subarray(100_000)]
      const sentDoc = await walink.connection.sendMedia(pn(BAILEYS_PHONE), { kind: 'document', stream: Readable.from(pieces), mimetype: 'application/pdf', fileName: 'a.pdf' })
      await peer.waitFor((p) => p.messages.some((m) => m.key.id === sentDoc.id), 'the streamed document')
      const docMessage = peer.messages.find((m) => m.key.id === sentDoc.id).message.documentMessage
      assert.deepEqual(await collect(await downloadContentFromMessage(docMessage, 'document')), doc)

      // Down into a file, and into a writable stream.
      const picture = fileOf(420_001, 7)
      const theirs = await peer.sock.sendMessage(pn(WALINK_PHONE), { image: Buffer.from(picture) })
      const event = await walink.waitFor((e) => e.type === 'message' && e.id === theirs.key.id, 'the image')
      const target = join(directory, 'picture.jpg')
      const saved = await walink.connection.downloadMedia(event, { to: target })
      assert.equal(saved.kind, 'mediaSaved')
      assert.equal(saved.length, picture.length)
      assert.deepEqual(new Uint8Array(await readFile(target)), picture)
      const sink = new PassThrough()
      const collected = collect(sink)
      await walink.connection.downloadMedia(event, { to: sink })
      assert.deepEqual(await collected, picture)

      // A wrong media key: the MAC check refuses it, typed, and nothing reaches the target.
      const tampered = new Uint8Array(event.raw)
      const key = Buffer.from(theirs.message.imageMessage.mediaKey)
      tampered[Buffer.from(tampered).indexOf(key)] ^= 1
      const refused = join(directory, 'refused.jpg')
      await assert.rejects(walink.connection.downloadMedia({ ...event, raw: tampered }, { to: refused }), (e) => e.code === 'media_invalid')
      assert.equal(existsSync(refused), false)
    } finally {
      await rm(directory, { recursive: true, force: true })
    }
  })
})
