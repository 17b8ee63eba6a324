// Message content as protobuf JSON: walink's decodeMessage/encodeMessage against Baileys' own
// protobuf code (baileys@7.0.0-rc14, WAProto) on a corpus of every kind and on random messages
// of walink's whole schema, both ways; the builders; and bad input.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'

import { proto } from 'baileys/WAProto/index.js'
import { content, decodeMessage, encodeMessage } from 'walink'

import { schemaSource, typesSource } from '../scripts/gen-schema.mjs'
import { TYPES } from '../src/wa-schema.js'

const SIXTY_FOUR = new Set(['int64', 'uint64'])

/** A comparable form of a message of type `typeName`: 64-bit integers as strings, bytes as hex. */
function comparable(typeName, object) {
  const out = {}
  for (const [, name, type, repeated] of TYPES[typeName]) {
    const value = object[name]
    if (value === undefined || value === null || (repeated && value.length === 0)) continue
    const one = (v) => {
      if (TYPES[type]) return comparable(type, v)
      if (SIXTY_FOUR.has(type)) return String(typeof v === 'object' ? v.toString() : v)
      if (type === 'bytes') return Buffer.from(v).toString('hex')
      return v
    }
    out[name] = repeated ? value.map(one) : one(value)
  }
  for (const key of Object.keys(object)) {
    if (!TYPES[typeName].some((f) => f[1] === key)) assert.fail(`${typeName}.${key} is not in walink's schema`)
  }
  return out
}

const baileysJson = (bytes) =>
  comparable('Message', proto.Message.toObject(proto.Message.decode(bytes), { longs: String, defaults: false }))
const baileysBytes = (json) => proto.Message.encode(proto.Message.fromObject(json)).finish()

const KEY = { remoteJid: '15551234567@s.whatsapp.net', fromMe: true, id: '3EB0C0FFEE' }
const GROUP_KEY = { remoteJid: '120363000000000001@g.us', fromMe: false, id: '3EB0BEEF', participant: '15557654321@s.whatsapp.net' }
const MEDIA = {
  url: 'https://mmg.whatsapp.net/v/t62.7118-24/1.enc',
  mimetype: 'image/jpeg',
  fileSha256: new Uint8Array(32).fill(1),
  fileLength: 123456,
  mediaKey: new Uint8Array(32).fill(2),
  fileEncSha256: new Uint8Array(32).fill(3),
  directPath: '/v/t62.7118-24/1.enc',
  mediaKeyTimestamp: 1_780_000_000,
}
const wrap = (message) => ({ message })

/** One message of every kind walink's content model names. */
const CORPUS = {
  text: { conversation: 'hello' },
  mentions: content.text('hi @15557654321', { mentions: ['15557654321@s.whatsapp.net'] }),
  linkPreview: { extendedTextMessage: { text: 'see https://walink.dev', matchedText: 'https://walink.dev', title: 'walink', description: 'd', previewType: 0 } },
  reply: {
    extendedTextMessage: {
      text: 'yes',
      contextInfo: { stanzaId: '3EB0AA', participant: '15557654321@s.whatsapp.net', quotedMessage: { conversation: 'ok?' } },
    },
  },
  reaction: content.reaction(GROUP_KEY, '👍'),
  reactionRemoved: content.reaction(KEY, ''),
  edit: content.edit(KEY, 'fixed'),
  editWrapped: { editedMessage: wrap({ protocolMessage: { key: KEY, type: 14, editedMessage: { conversation: 'x' }, timestampMs: 1_780_000_000_123 } }) },
  revoke: content.revoke(KEY),
  image: { imageMessage: { ...MEDIA, caption: 'a cat', height: 640, width: 480, jpegThumbnail: new Uint8Array([0xff, 0xd8]) } },
  video: { videoMessage: { ...MEDIA, mimetype: 'video/mp4', seconds: 12, caption: 'clip' } },
  gif: { videoMessage: { ...MEDIA, mimetype: 'video/mp4', gifPlayback: true } },
  audio: { audioMessage: { ...MEDIA, mimetype: 'audio/mpeg', seconds: 30 } },
  voiceNote: { audioMessage: { ...MEDIA, mimetype: 'audio/ogg; codecs=opus', ptt: true, waveform: new Uint8Array(64).fill(7) } },
  document: { documentWithCaptionMessage: wrap({ documentMessage: { ...MEDIA, mimetype: 'application/pdf', fileName: 'a.pdf', title: 'a', pageCount: 3, caption: 'read this' } }) },
  sticker: { stickerMessage: { ...MEDIA, mimetype: 'image/webp', isAnimated: false, height: 512, width: 512 } },
  location: content.location(-33.8688, 151.2093, { name: 'Sydney', address: 'NSW' }),
  liveLocation: { liveLocationMessage: { degreesLatitude: 1.5, degreesLongitude: 2.25, speedInMps: 1.5, sequenceNumber: 7 } },
  contact: content.contact('Ann', 'BEGIN:VCARD\nVERSION:3.0\nFN:Ann\nEND:VCARD'),
  contacts: { contactsArrayMessage: { displayName: '2 contacts', contacts: [{ displayName: 'A', vcard: 'v1' }, { displayName: 'B', vcard: 'v2' }] } },
  poll: content.poll('lunch?', ['pizza', 'sushi']),
  pollSingle: content.poll('when?', ['mon', 'tue'], 1),
  pollVote: {
    pollUpdateMessage: {
      pollCreationMessageKey: KEY,
      vote: { encPayload: new Uint8Array([1, 2, 3]), encIv: new Uint8Array(12).fill(9) },
      senderTimestampMs: 1_780_000_000_999,
    },
  },
  viewOnce: { viewOnceMessageV2: wrap({ imageMessage: { ...MEDIA, viewOnce: true } }) },
  ephemeral: { ephemeralMessage: wrap({ extendedTextMessage: { text: 'gone soon', contextInfo: { expiration: 604800 } } }) },
  status: { extendedTextMessage: { text: 'my status', backgroundArgb: 0xff112233, font: 2 } },
  groupInvite: { groupInviteMessage: { groupJid: '120363000000000001@g.us', inviteCode: 'AbCd', inviteExpiration: 1_780_000_000, groupName: 'g' } },
  pin: { pinInChatMessage: { key: KEY, type: 1, senderTimestampMs: 1_780_000_000_000 } },
  secret: { conversation: 'x', messageContextInfo: { messageSecret: new Uint8Array(32).fill(5), deviceListMetadataVersion: 2 } },
  big: { imageMessage: { fileLength: 2n ** 63n + 5n, mediaKeyTimestamp: -(2n ** 62n) } },
}

test('the schema table and its types are generated from the current core/proto', () => {
  assert.equal(readFileSync(new URL('../src/wa-schema.js', import.meta.url), 'utf8'), schemaSource())
  assert.equal(readFileSync(new URL('../src/wa-message.d.ts', import.meta.url), 'utf8'), typesSource())
})

test('Baileys decodes every kind walink encodes into the JSON walink decodes, and back', () => {
  for (const [kind, json] of Object.entries(CORPUS)) {
    const ours = encodeMessage(json)
    const decoded = decodeMessage(ours)
    assert.deepEqual(comparable('Message', decoded), comparable('Message', json), kind)
    assert.deepEqual(baileysJson(ours), comparable('Message', decoded), kind)
    // Baileys' bytes read the same in walink, and walink writes them byte for byte.
    const theirs = baileysBytes(proto.Message.toObject(proto.Message.decode(ours)))
    assert.deepEqual(comparable('Message', decodeMessage(theirs)), comparable('Message', decoded), kind)
    assert.equal(Buffer.from(encodeMessage(decodeMessage(theirs))).toString('hex'), Buffer.from(ours).toString('hex'), kind)
  }
  // Shapes Baileys' users read.
  const reply = decodeMessage(encodeMessage(CORPUS.reply))
  assert.equal(reply.extendedTextMessage.contextInfo.quotedMessage.conversation, 'ok?')
  const image = decodeMessage(encodeMessage(CORPUS.image))
  assert.equal(image.imageMessage.caption, 'a cat')
  assert.equal(image.imageMessage.fileLength, 123456)
  assert.ok(image.imageMessage.mediaKey instanceof Uint8Array)
  const big = decodeMessage(encodeMessage(CORPUS.big))
  assert.equal(big.imageMessage.fileLength, 2n ** 63n + 5n)
  assert.equal(big.imageMessage.mediaKeyTimestamp, -(2n ** 62n))
})

/** A random message of type `typeName` from walink's schema (deterministic `random`). */
function sample(typeName, random, depth) {
  const pick = (n) => Math.floor(random() * n)
  const scalar = (type) => {
    switch (type) {
      case 'string': return ['', 'a', 'héllo 👋', 'x'.repeat(pick(300))][pick(4)]
      case 'bytes': return Uint8Array.from({ length: pick(40) }, () => pick(256))
      case 'bool': return random() < 0.5
      case 'double': return [0, -33.8688, 1e300, random() * 1000][pick(4)]
      case 'float': return Math.fround([0, 1.5, -2.25, random() * 100][pick(4)])
      case 'uint32':
      case 'fixed32': return [0, 1, 127, 128, 2 ** 32 - 1, pick(2 ** 32)][pick(6)]
      case 'int32':
      case 'enum': return [0, -1, 2 ** 31 - 1, -(2 ** 31), pick(100)][pick(5)]
      case 'uint64': return [0, 1, 2 ** 53 - 1, 2n ** 64n - 1n, 2n ** 53n + 1n][pick(5)]
      case 'int64': return [0, -1, 2n ** 63n - 1n, -(2n ** 63n), 1_780_000_000_000][pick(5)]
    }
    throw new Error(type)
  }
  const out = {}
  for (const [, name, type, repeated] of TYPES[typeName]) {
    if (random() > (depth === 0 ? 0.3 : 0.15)) continue
    if (TYPES[type] && depth >= 3) continue
    const one = () => (TYPES[type] ? sample(type, random, depth + 1) : scalar(type))
    out[name] = repeated ? Array.from({ length: 1 + pick(3) }, one) : one()
  }
  return out
}

test('random messages of the whole schema read the same in walink and Baileys, both ways', () => {
  let seed = 16
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31
    return seed / 2 ** 31
  }
  for (let i = 0; i < 300; i++) {
    const json = sample('Message', random, 0)
    const ours = encodeMessage(json)
    const want = comparable('Message', json)
    assert.deepEqual(comparable('Message', decodeMessage(ours)), want, `sample ${i}`)
    assert.deepEqual(baileysJson(ours), want, `sample ${i}: Baileys reads walink's bytes`)
    const theirs = baileysBytes(proto.Message.toObject(proto.Message.decode(ours)))
    assert.deepEqual(comparable('Message', decodeMessage(theirs)), want, `sample ${i}: walink reads Baileys' bytes`)
  }
})

test('builders: replies quote the event, keys name it from this device', () => {
  const event = {
    type: 'message', id: '3EB0AA', chat: '120363000000000001@g.us', sender: '15557654321:3@s.whatsapp.net',
    fromMe: false, history: false, message: { imageMessage: { caption: 'look' } }, wrappers: [], raw: new Uint8Array(),
  }
  assert.deepEqual(content.keyOf(event), { remoteJid: event.chat, fromMe: false, id: '3EB0AA', participant: '15557654321@s.whatsapp.net' })
  const reply = content.reply(event, 'nice')
  assert.equal(reply.extendedTextMessage.text, 'nice')
  assert.deepEqual(reply.extendedTextMessage.contextInfo, { stanzaId: '3EB0AA', participant: '15557654321@s.whatsapp.net', quotedMessage: event.message })
  const withImage = content.reply(event, { imageMessage: { caption: 'mine' } })
  assert.equal(withImage.imageMessage.contextInfo.stanzaId, '3EB0AA')
  assert.equal(content.keyOf({ ...event, chat: '15557654321@s.whatsapp.net' }).participant, undefined)
  assert.deepEqual(Object.keys(content.poll('q', ['a', 'b'], 1)), ['pollCreationMessageV3'])
  assert.throws(() => content.reply(event, {}), { code: 'invalid_message' })
})

test('bad bytes and bad JSON are invalid_message errors', () => {
  for (const bytes of [[0x0a, 5, 0x68], [0x80, 0x80], [0x0b], [0x00, 1], [0x0a], Array(11).fill(0x80), [0x1a, 1, 0x0b]]) {
    assert.throws(() => decodeMessage(new Uint8Array(bytes)), { code: 'invalid_message' }, `${bytes}`)
  }
  // Unknown fields are skipped (the event's raw keeps them).
  assert.deepEqual(decodeMessage(new Uint8Array([0xf8, 0x3f, 1, 0x0a, 1, 0x61])), { conversation: 'a' })
  let deep = { conversation: 'x' }
  for (let i = 0; i < 120; i++) deep = { extendedTextMessage: { contextInfo: { quotedMessage: deep } } }
  assert.throws(() => encodeMessage(deep), { code: 'invalid_message' })
  for (const bad of [
    { conversation: 5 },
    { interactiveMessage: {} },
    { imageMessage: { fileLength: -1 } },
    { imageMessage: { height: 2 ** 32 } },
    { imageMessage: 'x' },
    { contactsArrayMessage: { contacts: {} } },
    { imageMessage: { mediaKey: 'not base64!' } },
    { locationMessage: { degreesLatitude: '1' } },
  ]) {
    assert.throws(() => encodeMessage(bad), { code: 'invalid_message' }, JSON.stringify(bad))
  }
  // What protobufjs takes for 64-bit integers and bytes.
  const bytes = encodeMessage({ imageMessage: { fileLength: { low: 5, high: 1, unsigned: true }, mediaKey: 'AQID', mediaKeyTimestamp: '42' } })
  const image = decodeMessage(bytes).imageMessage
  assert.equal(image.fileLength, 2 ** 32 + 5)
  assert.deepEqual([...image.mediaKey], [1, 2, 3])
  assert.equal(image.mediaKeyTimestamp, 42)
})

test("Baileys' decryptPollVote opens the vote vector of core/src/content/poll.rs", async () => {
  const { decryptPollVote } = await import('baileys')
  const vote = decryptPollVote(
    {
      encPayload: Buffer.from('53bce563ffa5a5e1b12011cd5e70a377aa9815b00dbe6dc956c17911e87110f6fea332956b3ec81da6f555c400a356f09e81', 'hex'),
      encIv: Buffer.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
    },
    { pollCreatorJid: '111111111111@s.whatsapp.net', pollMsgId: '3EB0POLL0000000000', pollEncKey: Buffer.alloc(32, 0xaa), voterJid: '222222222222@s.whatsapp.net' },
  )
  const { createHash } = await import('node:crypto')
  assert.deepEqual(vote.selectedOptions.map((o) => Buffer.from(o).toString('hex')), [createHash('sha256').update('yes').digest('hex')])
})
