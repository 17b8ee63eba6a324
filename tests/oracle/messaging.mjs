// Messaging oracle: Baileys' binary codec, its offline message decoding and decryption
// (decryptMessageNode over makeLibSignalRepository, i.e. libsignal-node), its encryption, and
// its message-id generator. Each party is one Baileys device with in-memory keys.
import { createHash } from 'node:crypto'
import { proto } from 'baileys/WAProto/index.js'
import { Curve } from 'baileys/lib/Utils/crypto.js'
import { initAuthCreds } from 'baileys/lib/Utils/auth-utils.js'
import { encodeWAMessage, generateMessageIDV2, generateParticipantHashV2, unpadRandomMax16 } from 'baileys/lib/Utils/generics.js'
import { decryptMessageNode } from 'baileys/lib/Utils/decode-wa-message.js'
import { buildAckStanza } from 'baileys/lib/Utils/stanza-ack.js'
import { parseAndInjectE2ESessions, xmppPreKey, xmppSignedPreKey } from 'baileys/lib/Utils/signal.js'
import { extractE2ESessionFromRetryReceipt } from 'baileys/lib/Utils/signal.js'
import { makeLibSignalRepository } from 'baileys/lib/Signal/libsignal.js'
import { decodeBinaryNode, encodeBinaryNode, jidDecode } from 'baileys/lib/WABinary/index.js'
import { serve, hex, unhex } from './rpc.mjs'

const logger = {
  level: 'silent',
  trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {},
  child() { return logger },
}

function memoryKeys() {
  const data = {}
  return {
    data,
    async get(type, ids) {
      const out = {}
      for (const id of ids) {
        const value = data[type]?.[id]
        if (value !== undefined && value !== null) out[id] = value
      }
      return out
    },
    async set(update) {
      for (const type of Object.keys(update)) {
        data[type] ??= {}
        for (const [id, value] of Object.entries(update[type])) {
          if (value === null || value === undefined) delete data[type][id]
          else data[type][id] = value
        }
      }
    },
    async transaction(work) { return work() },
    isInTransaction() { return false },
  }
}

const parties = new Map()
function party(name) {
  const found = parties.get(name)
  if (!found) throw new Error(`unknown party ${name}`)
  return found
}

// A node as JSON: bytes as hex, children as arrays.
function toJson(node) {
  const content = Array.isArray(node.content)
    ? node.content.map(toJson)
    : node.content instanceof Uint8Array ? { hex: hex(node.content) }
    : node.content === undefined ? null : { text: String(node.content) }
  return { tag: node.tag, attrs: node.attrs, content }
}

function fromJson(json) {
  let content
  if (Array.isArray(json.content)) content = json.content.map(fromJson)
  else if (json.content?.hex !== undefined) content = unhex(json.content.hex)
  else if (json.content?.text !== undefined) content = json.content.text
  return { tag: json.tag, attrs: json.attrs ?? {}, content }
}

const describeMessage = (message) => message ? proto.Message.toObject(proto.Message.fromObject(message), { bytes: String }) : null

serve({
  // Baileys' decodeBinaryNode on walink-encoded frame bodies (flag byte first).
  // Node's SHA-256 over the devices in WhatsApp Web's AD form `user.0:device@server` (each JID
  // split by Baileys' jidDecode; sorted, concatenated, first 6 bytes, unpadded base64), and
  // Baileys' own generateParticipantHashV2, which hashes the plain JID strings instead.
  participantHash: async ({ jids }) => {
    const forms = jids.map((jid) => {
      const { user, device, server } = jidDecode(jid)
      return `${user}.0:${device ?? 0}@${server}`
    })
    const digest = createHash('sha256').update(Buffer.from(forms.sort().join(''))).digest()
    return {
      baileys: generateParticipantHashV2([...jids]),
      computed: '2:' + digest.subarray(0, 6).toString('base64').replace(/=+$/, '')
    }
  },
  decode: async ({ bytes }) => toJson((await decodeBinaryNode(unhex(bytes)))),

  // Baileys' encodeBinaryNode, for walink to decode.
  encode: ({ node }) => hex(encodeBinaryNode(fromJson(node))),

  // SHA-256 over WA Web's id inputs, and a Baileys V2 id for the shape.
  messageId: ({ seconds, user, random }) => {
    const data = Buffer.alloc(8)
    data.writeBigUInt64BE(BigInt(seconds))
    const parts = [data]
    if (user) parts.push(Buffer.from(`${user}@c.us`))
    parts.push(unhex(random))
    const digest = createHash('sha256').update(Buffer.concat(parts)).digest()
    return { computed: '3EB0' + digest.toString('hex').toUpperCase().substring(0, 18), baileys: generateMessageIDV2(`${user}@s.whatsapp.net`) }
  },

  // The ack Baileys builds for a stanza (WA Web's rules).
  ack: ({ node, meId, error }) => toJson(buildAckStanza(fromJson(node), error, meId)),

  // A Baileys device: `me` is its device JID, `lid` its LID device JID.
  party: ({ name, me, lid }) => {
    const creds = initAuthCreds()
    creds.me = { id: me, lid }
    const keys = memoryKeys()
    const repository = makeLibSignalRepository({ creds, keys }, logger)
    parties.set(name, { name, me, lid, creds, keys, repository, nextPreKeyId: 1 })
    return {
      identity: hex(creds.signedIdentityKey.public),
      registrationId: creds.registrationId,
    }
  },

  // The party's bundle as the server's prekey fetch reply (`<iq><list><user jid>…`), encoded.
  bundleReply: ({ name, jid }) => {
    const p = party(name)
    const id = p.nextPreKeyId++
    const pair = Curve.generateKeyPair()
    p.keys.data['pre-key'] ??= {}
    p.keys.data['pre-key'][id] = pair
    const registration = Buffer.alloc(4)
    registration.writeUInt32BE(p.creds.registrationId)
    const user = {
      tag: 'user', attrs: { jid },
      content: [
        { tag: 'registration', attrs: {}, content: registration },
        { tag: 'type', attrs: {}, content: Buffer.from([5]) },
        { tag: 'identity', attrs: {}, content: Buffer.from(p.creds.signedIdentityKey.public) },
        xmppSignedPreKey(p.creds.signedPreKey),
        xmppPreKey(pair, id),
      ],
    }
    const iq = { tag: 'iq', attrs: { from: 's.whatsapp.net', type: 'result', id: '1' }, content: [{ tag: 'list', attrs: {}, content: [user] }] }
    return hex(encodeBinaryNode(iq))
  },

  // Injects sessions from a walink-built reply node (a prekey fetch reply or a retry receipt).
  injectReply: async ({ name, bytes }) => {
    const p = party(name)
    const node = (await decodeBinaryNode(unhex(bytes)))
    if (node.tag === 'receipt') {
      const session = extractE2ESessionFromRetryReceipt(node)
      if (!session) throw new Error('no session in the retry receipt')
      await p.repository.injectE2ESession({ jid: node.attrs.from, session })
      return { registrationId: session.registrationId }
    }
    await parseAndInjectE2ESessions(node, p.repository)
    return null
  },

  // Decodes and decrypts a delivered stanza as Baileys does on receipt.
  receive: async ({ name, bytes }) => {
    const p = party(name)
    const stanza = (await decodeBinaryNode(unhex(bytes)))
    const { fullMessage, decrypt } = decryptMessageNode(stanza, p.me, p.lid ?? '', p.repository, logger)
    await decrypt()
    return {
      key: { remoteJid: fullMessage.key.remoteJid, fromMe: fullMessage.key.fromMe, id: fullMessage.key.id, participant: fullMessage.key.participant ?? null },
      stub: fullMessage.messageStubParameters ?? null,
      conversation: fullMessage.message?.conversation ?? null,
      message: describeMessage(fullMessage.message),
    }
  },

  // Baileys encrypts a text for one device and builds the stanza the server delivers.
  sendDirect: async ({ name, to, id, text, t }) => {
    const p = party(name)
    const { type, ciphertext } = await p.repository.encryptMessage({ jid: to, data: encodeWAMessage({ conversation: text }) })
    const node = { tag: 'message', attrs: { from: p.me, id, type: 'text', t: String(t) }, content: [{ tag: 'enc', attrs: { v: '2', type }, content: ciphertext }] }
    return { type, bytes: hex(encodeBinaryNode(node)) }
  },

  // Baileys encrypts a group text with its sender key, with the distribution for `to` in a
  // pairwise message when `distribute` is set, as delivered to `to`.
  sendGroup: async ({ name, group, to, id, text, t, distribute }) => {
    const p = party(name)
    const sender = p.lid ?? p.me
    const { ciphertext, senderKeyDistributionMessage } = await p.repository.encryptGroupMessage({ group, meId: sender, data: encodeWAMessage({ conversation: text }) })
    const content = []
    if (distribute) {
      const skdm = encodeWAMessage({ senderKeyDistributionMessage: { groupId: group, axolotlSenderKeyDistributionMessage: senderKeyDistributionMessage } })
      const { type, ciphertext: pairwise } = await p.repository.encryptMessage({ jid: to, data: skdm })
      content.push({ tag: 'enc', attrs: { v: '2', type }, content: pairwise })
    }
    content.push({ tag: 'enc', attrs: { v: '2', type: 'skmsg' }, content: ciphertext })
    const node = { tag: 'message', attrs: { from: group, participant: sender, id, type: 'text', t: String(t) }, content }
    return hex(encodeBinaryNode(node))
  },

  // libsignal-node decryption of one pairwise ciphertext, returning the unpadded Message.
  decryptRaw: async ({ name, from, type, ciphertext }) => {
    const p = party(name)
    const plain = await p.repository.decryptMessage({ jid: from, type, ciphertext: unhex(ciphertext) })
    return describeMessage(proto.Message.decode(unpadRandomMax16(plain)))
  },
})
