// Signal oracle: libsignal-node (WhiskeySockets/libsignal-node, libsignal@6.0.0, the 1:1
// implementation Baileys uses) and Baileys' own group implementation (lib/Signal/Group), with
// in-memory stores per named party. Driven from tests/tests/signal_*.rs.
import libsignal from 'libsignal'
import {
  GroupCipher, GroupSessionBuilder, SenderKeyDistributionMessage, SenderKeyName, SenderKeyRecord,
} from 'baileys/lib/Signal/Group/index.js'
import { serve, hex, unhex } from './rpc.mjs'

// libsignal-node logs with console.*; keep standard output for the RPC replies only.
console.log = console.info = console.warn = console.debug = (...args) => process.stderr.write(args.join(' ') + '\n')
console.error = () => {}

const { keyhelper, curve, ProtocolAddress, SessionBuilder, SessionCipher, SessionRecord } = libsignal
const parties = new Map()

function makeParty(name) {
  const identity = keyhelper.generateIdentityKeyPair()
  const registrationId = keyhelper.generateRegistrationId()
  const signedPreKey = keyhelper.generateSignedPreKey(identity, 1)
  const sessions = new Map(), preKeys = new Map(), signedPreKeys = new Map([[1, signedPreKey.keyPair]])
  const senderKeys = new Map()
  const store = {
    getOurIdentity: () => identity,
    getOurRegistrationId: () => registrationId,
    isTrustedIdentity: () => true,
    loadSession: async (id) => (sessions.has(id) ? SessionRecord.deserialize(sessions.get(id)) : undefined),
    storeSession: async (id, record) => { sessions.set(id, record.serialize()) },
    loadPreKey: async (id) => preKeys.get(Number(id)),
    removePreKey: async (id) => { preKeys.delete(Number(id)) },
    loadSignedPreKey: async (id) => signedPreKeys.get(Number(id)),
    loadSenderKey: async (name) => senderKeys.get(name.toString()) ?? new SenderKeyRecord(),
    storeSenderKey: async (name, record) => { senderKeys.set(name.toString(), record) },
  }
  return { name, identity, registrationId, signedPreKey, preKeys, store, nextPreKeyId: 1 }
}

function party(name) {
  const found = parties.get(name)
  if (!found) throw new Error(`unknown party ${name}`)
  return found
}

const address = (peer) => new ProtocolAddress(peer, 1)
const senderKeyName = (group, sender) => new SenderKeyName(group, address(sender))

serve({
  // Creates a party with a fresh identity, registration id and signed prekey (id 1).
  party: ({ name }) => {
    const p = makeParty(name)
    parties.set(name, p)
    return { identity: hex(p.identity.pubKey), registrationId: p.registrationId }
  },

  // A prekey bundle of the party, with a fresh one-time prekey unless `oneTime` is false.
  bundle: ({ name, oneTime = true }) => {
    const p = party(name)
    const bundle = {
      registrationId: p.registrationId,
      identityKey: hex(p.identity.pubKey),
      signedPreKeyId: p.signedPreKey.keyId,
      signedPreKey: hex(p.signedPreKey.keyPair.pubKey),
      signature: hex(p.signedPreKey.signature),
    }
    if (oneTime) {
      const id = p.nextPreKeyId++
      const preKey = keyhelper.generatePreKey(id)
      p.preKeys.set(id, preKey.keyPair)
      bundle.preKeyId = id
      bundle.preKey = hex(preKey.keyPair.pubKey)
    }
    return bundle
  },

  // Whether the party still holds the one-time prekey `id`.
  hasPreKey: ({ name, id }) => party(name).preKeys.has(Number(id)),

  // Starts a session with `peer` from the peer's bundle (hex fields as returned by `bundle`).
  processBundle: async ({ name, peer, bundle }) => {
    const p = party(name)
    const device = {
      registrationId: bundle.registrationId,
      identityKey: unhex(bundle.identityKey),
      signedPreKey: {
        keyId: bundle.signedPreKeyId,
        publicKey: unhex(bundle.signedPreKey),
        signature: unhex(bundle.signature),
      },
    }
    if (bundle.preKey) device.preKey = { keyId: bundle.preKeyId, publicKey: unhex(bundle.preKey) }
    await new SessionBuilder(p.store, address(peer)).initOutgoing(device)
    return null
  },

  // Encrypts for `peer`: {type: 3 (pkmsg) | 1 (msg), body}.
  encrypt: async ({ name, peer, plaintext }) => {
    const result = await new SessionCipher(party(name).store, address(peer)).encrypt(unhex(plaintext))
    return { type: result.type, body: hex(result.body) }
  },

  // Encrypts many plaintexts in order (bursts).
  encryptMany: async ({ name, peer, plaintexts }) => {
    const cipher = new SessionCipher(party(name).store, address(peer))
    const out = []
    for (const plaintext of plaintexts) {
      const result = await cipher.encrypt(unhex(plaintext))
      out.push({ type: result.type, body: hex(result.body) })
    }
    return out
  },

  // Decrypts a message from `peer`.
  decrypt: async ({ name, peer, type, body }) => {
    const cipher = new SessionCipher(party(name).store, address(peer))
    const plaintext = type === 3
      ? await cipher.decryptPreKeyWhisperMessage(unhex(body))
      : await cipher.decryptWhisperMessage(unhex(body))
    return hex(plaintext)
  },

  // Baileys groups: the party's own sender key distribution message for `group`.
  groupCreate: async ({ name, group }) => {
    const p = party(name)
    const skdm = await new GroupSessionBuilder(p.store).create(senderKeyName(group, name))
    return hex(skdm.serialize())
  },

  // Processes `sender`'s distribution message for `group`.
  groupProcess: async ({ name, group, sender, skdm }) => {
    const p = party(name)
    const message = new SenderKeyDistributionMessage(null, null, null, null, unhex(skdm))
    await new GroupSessionBuilder(p.store).process(senderKeyName(group, sender), message)
    return null
  },

  groupEncrypt: async ({ name, group, plaintext }) => {
    const p = party(name)
    return hex(await new GroupCipher(p.store, senderKeyName(group, name)).encrypt(unhex(plaintext)))
  },

  groupDecrypt: async ({ name, group, sender, body }) => {
    const p = party(name)
    return hex(await new GroupCipher(p.store, senderKeyName(group, sender)).decrypt(unhex(body)))
  },

  // libsignal's curve: key pairs (33-byte public), XEdDSA signatures and verification.
  keyPair: () => {
    const pair = curve.generateKeyPair()
    return { public: hex(pair.pubKey), private: hex(pair.privKey) }
  },
  sign: ({ privateKey, message }) => hex(curve.calculateSignature(unhex(privateKey), unhex(message))),
  verify: ({ publicKey, message, signature }) =>
    curve.verifySignature(unhex(publicKey), unhex(message), unhex(signature)),
})
