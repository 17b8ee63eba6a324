// npm run bench: Signal speed in one Node process. walink (the bench build of its wasm module,
// thin exports over walink-core's records) beside libsignal-node (libsignal@6.0.0, the 1:1
// implementation Baileys uses), Baileys' Signal layer (makeLibSignalRepository over an in-memory
// key store; its lib/Signal/Group classes for sender keys) and whatsapp-rust-bridge 0.5.5 (its
// libsignal-compatible API). Rows: X3DH set-up from a bundle, 200-byte encrypt and decrypt on an
// established session, first-message (pkmsg) decrypt, sender-key encrypt and decrypt.
import libsignal from 'libsignal'
import * as bridge from 'whatsapp-rust-bridge'
import { makeLibSignalRepository } from 'baileys/lib/Signal/libsignal.js'
import {
  GroupCipher, GroupSessionBuilder, SenderKeyDistributionMessage, SenderKeyName, SenderKeyRecord,
} from 'baileys/lib/Signal/Group/index.js'
import { addTransactionCapability, initAuthCreds } from 'baileys/lib/Utils/auth-utils.js'
import { generateSignalPubKey } from 'baileys/lib/Utils/crypto.js'
import { compare as compareAll, loadBenchWasm, row, silenceConsole, timeAsync, timeSync } from './harness.mjs'

// WALINK_BENCH_ONLY=walink measures walink's rows alone (for quick rounds while tuning; the
// ratios come from a full run).
const walinkOnly = process.env.WALINK_BENCH_ONLY === 'walink'
const compare = (candidates, opts) => compareAll(walinkOnly ? { walink: candidates.walink } : candidates, opts)

silenceConsole()
const { wasm: walink } = await loadBenchWasm()
walink.benchInit(0x5eed)
const plaintext = Buffer.alloc(200, 0x42)
const { keyhelper, ProtocolAddress, SessionBuilder, SessionCipher } = libsignal

// --- libsignal-node: parties with in-memory stores holding record objects ---

function libsignalParty() {
  const identity = keyhelper.generateIdentityKeyPair()
  const registrationId = keyhelper.generateRegistrationId()
  const signedPreKey = keyhelper.generateSignedPreKey(identity, 1)
  const sessions = new Map()
  const preKeys = new Map()
  const store = {
    getOurIdentity: () => identity,
    getOurRegistrationId: () => registrationId,
    isTrustedIdentity: () => true,
    loadSession: async (id) => sessions.get(id),
    storeSession: async (id, record) => { sessions.set(id, record) },
    loadPreKey: async (id) => preKeys.get(Number(id)),
    removePreKey: async (id) => { preKeys.delete(Number(id)) },
    loadSignedPreKey: async (id) => (Number(id) === 1 ? signedPreKey.keyPair : undefined),
  }
  let nextPreKey = 1
  /** A bundle with a fresh one-time prekey, in libsignal's `initOutgoing` form. */
  const bundle = () => {
    const preKey = keyhelper.generatePreKey(nextPreKey++)
    preKeys.set(preKey.keyId, preKey.keyPair)
    return {
      registrationId,
      identityKey: identity.pubKey,
      signedPreKey: { keyId: 1, publicKey: signedPreKey.keyPair.pubKey, signature: signedPreKey.signature },
      preKey: { keyId: preKey.keyId, publicKey: preKey.keyPair.pubKey },
    }
  }
  return { store, bundle }
}

let peerCounter = 0
const freshAddress = () => new ProtocolAddress(`peer${peerCounter++}`, 1)

/** Alice and Bob of libsignal-node with an established session (Bob has answered). */
async function libsignalPair() {
  const alice = libsignalParty()
  const bob = libsignalParty()
  const toBob = freshAddress()
  const toAlice = freshAddress()
  await new SessionBuilder(alice.store, toBob).initOutgoing(bob.bundle())
  const aliceCipher = new SessionCipher(alice.store, toBob)
  const bobCipher = new SessionCipher(bob.store, toAlice)
  const first = await aliceCipher.encrypt(plaintext)
  await bobCipher.decryptPreKeyWhisperMessage(first.body)
  const reply = await bobCipher.encrypt(plaintext)
  await aliceCipher.decryptWhisperMessage(reply.body)
  return { aliceCipher, bobCipher, bob }
}

// --- Baileys: makeLibSignalRepository over an in-memory SignalKeyStore ---

const silentLogger = { level: 'silent', child: () => silentLogger, trace() {}, debug() {}, info() {}, warn() {}, error() {} }

function baileysParty() {
  const creds = initAuthCreds()
  const data = new Map()
  const store = {
    get: async (type, ids) => {
      const out = {}
      for (const id of ids) {
        const value = data.get(`${type}/${id}`)
        if (value !== undefined) out[id] = value
      }
      return out
    },
    set: async (changes) => {
      for (const [type, values] of Object.entries(changes)) {
        for (const [id, value] of Object.entries(values)) {
          if (value === null || value === undefined) data.delete(`${type}/${id}`)
          else data.set(`${type}/${id}`, value)
        }
      }
    },
  }
  const keys = addTransactionCapability(store, silentLogger, { maxCommitRetries: 1, delayBetweenTriesMs: 0 })
  const repository = makeLibSignalRepository({ creds, keys }, silentLogger)
  let nextPreKey = 1
  /** A bundle with a fresh one-time prekey, in Baileys' `injectE2ESession` form. */
  const bundle = () => {
    const id = nextPreKey++
    const preKey = keyhelper.generatePreKey(id)
    data.set(`pre-key/${id}`, { public: Buffer.from(preKey.keyPair.pubKey.subarray(1)), private: Buffer.from(preKey.keyPair.privKey) })
    return {
      registrationId: creds.registrationId,
      identityKey: generateSignalPubKey(creds.signedIdentityKey.public),
      signedPreKey: {
        keyId: creds.signedPreKey.keyId,
        publicKey: generateSignalPubKey(creds.signedPreKey.keyPair.public),
        signature: creds.signedPreKey.signature,
      },
      preKey: { keyId: id, publicKey: preKey.keyPair.pubKey },
    }
  }
  return { repository, bundle }
}

let jidCounter = 0
const freshJid = () => `1555${String(1000000 + jidCounter++)}@s.whatsapp.net`

async function baileysPair() {
  const alice = baileysParty()
  const bob = baileysParty()
  const bobJid = freshJid()
  const aliceJid = freshJid()
  await alice.repository.injectE2ESession({ jid: bobJid, session: bob.bundle() })
  const first = await alice.repository.encryptMessage({ jid: bobJid, data: plaintext })
  await bob.repository.decryptMessage({ jid: aliceJid, type: first.type, ciphertext: first.ciphertext })
  const reply = await bob.repository.encryptMessage({ jid: aliceJid, data: plaintext })
  await alice.repository.decryptMessage({ jid: bobJid, type: reply.type, ciphertext: reply.ciphertext })
  return { alice, bob, aliceJid, bobJid }
}

// --- whatsapp-rust-bridge: its libsignal-compatible classes over a byte store ---

function bridgeParty() {
  const identity = bridge.generateIdentityKeyPair()
  const registrationId = bridge.generateRegistrationId()
  const signedPreKey = bridge.generateSignedPreKey(identity, 1)
  const sessions = new Map()
  const preKeys = new Map()
  const senderKeys = new Map()
  const storage = {
    loadSession: (address) => sessions.get(address),
    storeSession: (address, record) => { sessions.set(address, record.serialize()) },
    getOurIdentity: () => identity,
    getOurRegistrationId: () => registrationId,
    isTrustedIdentity: () => true,
    loadPreKey: (id) => preKeys.get(Number(id)),
    removePreKey: (id) => { preKeys.delete(Number(id)) },
    loadSignedPreKey: (id) => (Number(id) === 1 ? signedPreKey : undefined),
    loadSenderKey: (id) => senderKeys.get(id),
    storeSenderKey: (id, record) => { senderKeys.set(id, record) },
  }
  let nextPreKey = 1
  const bundle = () => {
    const preKey = bridge.generatePreKey(nextPreKey++)
    preKeys.set(preKey.keyId, preKey.keyPair)
    return {
      registrationId,
      identityKey: identity.pubKey,
      signedPreKey: { keyId: 1, publicKey: signedPreKey.keyPair.pubKey, signature: signedPreKey.signature },
      preKey: { keyId: preKey.keyId, publicKey: preKey.keyPair.pubKey },
    }
  }
  return { storage, bundle }
}

let bridgeCounter = 0
const freshBridgeAddress = () => new bridge.ProtocolAddress(`peer${bridgeCounter++}`, 1)

async function bridgePair() {
  const alice = bridgeParty()
  const bob = bridgeParty()
  const toBob = freshBridgeAddress()
  const toAlice = freshBridgeAddress()
  await new bridge.SessionBuilder(alice.storage, toBob).processPreKeyBundle(bob.bundle())
  const aliceCipher = new bridge.SessionCipher(alice.storage, toBob)
  const bobCipher = new bridge.SessionCipher(bob.storage, toAlice)
  const first = await aliceCipher.encrypt(plaintext)
  await bobCipher.decryptPreKeyWhisperMessage(first.body)
  const reply = await bobCipher.encrypt(plaintext)
  await aliceCipher.decryptWhisperMessage(reply.body)
  return { aliceCipher, bobCipher, bob }
}

// --- the rows ---

const results = {}
console.log(`node ${process.version}; Signal ops/s (higher is better), best of 5 interleaved rounds\n`)

{
  const lsAlice = libsignalParty()
  const lsBob = libsignalParty()
  const bAlice = baileysParty()
  const bBob = baileysParty()
  const brAlice = bridgeParty()
  const brBob = bridgeParty()
  results.setup = await compare({
    walink: (n) => timeSync(n, () => walink.benchSignalSetup()),
    libsignal: async (n) => {
      const bundles = Array.from({ length: n }, () => lsBob.bundle())
      return timeAsync(n, (i) => new SessionBuilder(lsAlice.store, freshAddress()).initOutgoing(bundles[i]))
    },
    baileys: async (n) => {
      const bundles = Array.from({ length: n }, () => bBob.bundle())
      return timeAsync(n, (i) => bAlice.repository.injectE2ESession({ jid: freshJid(), session: bundles[i] }))
    },
    bridge: async (n) => {
      const bundles = Array.from({ length: n }, () => brBob.bundle())
      return timeAsync(n, (i) => new bridge.SessionBuilder(brAlice.storage, freshBridgeAddress()).processPreKeyBundle(bundles[i]))
    },
  }, { minMs: 150 })
  row('X3DH session setup', results.setup)
}

{
  const ls = await libsignalPair()
  const b = await baileysPair()
  const br = await bridgePair()
  results.encrypt = await compare({
    walink: (n) => timeSync(n, () => walink.benchSignalEncrypt(plaintext)),
    libsignal: (n) => timeAsync(n, () => ls.aliceCipher.encrypt(plaintext)),
    baileys: (n) => timeAsync(n, () => b.alice.repository.encryptMessage({ jid: b.bobJid, data: plaintext })),
    bridge: (n) => timeAsync(n, () => br.aliceCipher.encrypt(plaintext)),
  })
  row('encrypt 200 B (msg)', results.encrypt)
}

{
  // Fresh pairs: the encrypt row moved every sender far past its receiver.
  walink.benchSignalPair()
  const ls = await libsignalPair()
  const b = await baileysPair()
  const br = await bridgePair()
  // Each batch is sent and then received in order; a batch never exceeds the skip bounds.
  const opts = { maxBatch: 1000 }
  results.decrypt = await compare({
    walink: (n) => {
      const messages = Array.from({ length: n }, () => walink.benchSignalEncrypt(plaintext))
      return timeSync(n, (i) => walink.benchSignalDecrypt(messages[i]))
    },
    libsignal: async (n) => {
      const messages = []
      for (let i = 0; i < n; i++) messages.push((await ls.aliceCipher.encrypt(plaintext)).body)
      return timeAsync(n, (i) => ls.bobCipher.decryptWhisperMessage(messages[i]))
    },
    baileys: async (n) => {
      const messages = []
      for (let i = 0; i < n; i++) messages.push((await b.alice.repository.encryptMessage({ jid: b.bobJid, data: plaintext })).ciphertext)
      return timeAsync(n, (i) => b.bob.repository.decryptMessage({ jid: b.aliceJid, type: 'msg', ciphertext: messages[i] }))
    },
    bridge: async (n) => {
      const messages = []
      for (let i = 0; i < n; i++) messages.push((await br.aliceCipher.encrypt(plaintext)).body)
      return timeAsync(n, (i) => br.bobCipher.decryptWhisperMessage(messages[i]))
    },
  }, opts)
  row('decrypt 200 B (msg)', results.decrypt)
  walink.benchSignalPair()
  const stored = await compare({
    walink: (n) => {
      const messages = Array.from({ length: n }, () => walink.benchSignalEncrypt(plaintext))
      return timeSync(n, (i) => walink.benchSignalDecryptStored(messages[i]))
    },
  }, opts)
  console.log(`${'  walink with record load+store'.padEnd(30)} walink ${Math.round(stored.walink).toLocaleString('en-US').padStart(10)}`)
}

{
  // First messages from new senders, each with its own one-time prekey.
  const lsBob = libsignalParty()
  const lsAlice = libsignalParty()
  const bBob = baileysParty()
  const brBob = bridgeParty()
  const brAlice = bridgeParty()
  const prepareLibsignal = async (n, bundle) => {
    const messages = []
    for (let i = 0; i < n; i++) {
      const address = freshAddress()
      await new SessionBuilder(lsAlice.store, address).initOutgoing(bundle())
      messages.push((await new SessionCipher(lsAlice.store, address).encrypt(plaintext)).body)
    }
    return messages
  }
  results.pkmsg = await compare({
    walink: (n) => {
      walink.benchSignalPreparePreKeyMessages(n, plaintext)
      const messages = Array.from({ length: n }, (_, i) => walink.benchSignalPreKeyMessage(i))
      return timeSync(n, (i) => walink.benchSignalDecryptPreKey(messages[i]))
    },
    libsignal: async (n) => {
      const messages = await prepareLibsignal(n, lsBob.bundle)
      return timeAsync(n, (i) => new SessionCipher(lsBob.store, freshAddress()).decryptPreKeyWhisperMessage(messages[i]))
    },
    baileys: async (n) => {
      const messages = await prepareLibsignal(n, bBob.bundle)
      return timeAsync(n, (i) => bBob.repository.decryptMessage({ jid: freshJid(), type: 'pkmsg', ciphertext: messages[i] }))
    },
    bridge: async (n) => {
      const messages = []
      for (let i = 0; i < n; i++) {
        const address = freshBridgeAddress()
        await new bridge.SessionBuilder(brAlice.storage, address).processPreKeyBundle(brBob.bundle())
        messages.push((await new bridge.SessionCipher(brAlice.storage, address).encrypt(plaintext)).body)
      }
      return timeAsync(n, (i) => new bridge.SessionCipher(brBob.storage, freshBridgeAddress()).decryptPreKeyWhisperMessage(messages[i]))
    },
  }, { minMs: 150, maxBatch: 256 })
  row('pkmsg decrypt (first message)', results.pkmsg)
}

{
  // Sender keys. libsignal-node has none: its column is Baileys' lib/Signal/Group classes used
  // directly over a store of record objects; Baileys' column goes through its repository.
  const groupStore = () => {
    const records = new Map()
    return {
      loadSenderKey: async (name) => records.get(name.toString()) ?? new SenderKeyRecord(),
      storeSenderKey: async (name, record) => { records.set(name.toString(), record) },
    }
  }
  const group = '120363000000000000@g.us'
  const senderAddress = new ProtocolAddress('15550001111', 1)
  const senderName = new SenderKeyName(group, senderAddress)
  const groupFresh = async () => {
    const own = groupStore()
    const member = groupStore()
    const skdm = await new GroupSessionBuilder(own).create(senderName)
    await new GroupSessionBuilder(member).process(senderName, new SenderKeyDistributionMessage(null, null, null, null, skdm.serialize()))
    return { own: new GroupCipher(own, senderName), member: new GroupCipher(member, senderName) }
  }
  const baileysFresh = async () => {
    const own = baileysParty()
    const member = baileysParty()
    const meId = '15550001111@s.whatsapp.net'
    const first = await own.repository.encryptGroupMessage({ group, meId, data: plaintext })
    await member.repository.processSenderKeyDistributionMessage({
      item: { groupId: group, axolotlSenderKeyDistributionMessage: first.senderKeyDistributionMessage },
      authorJid: meId,
    })
    return {
      encrypt: async () => (await own.repository.encryptGroupMessage({ group, meId, data: plaintext })).ciphertext,
      decrypt: (msg) => member.repository.decryptGroupMessage({ group, authorJid: meId, msg }),
    }
  }
  const bridgeFresh = async () => {
    const own = bridgeParty()
    const member = bridgeParty()
    const sender = new bridge.ProtocolAddress('15550001111', 1)
    const name = new bridge.SenderKeyName(group, sender)
    const skdm = await new bridge.GroupSessionBuilder(own.storage).create(name)
    await new bridge.GroupSessionBuilder(member.storage).process(name, bridge.SenderKeyDistributionMessage.deserialize(skdm.serialize()))
    return { own: new bridge.GroupCipher(own.storage, group, sender), member: new bridge.GroupCipher(member.storage, group, sender) }
  }
  const g = await groupFresh()
  const b = await baileysFresh()
  const br = await bridgeFresh()
  walink.benchSenderKeyReset()
  results.skEncrypt = await compare({
    walink: (n) => timeSync(n, () => walink.benchSenderKeyEncrypt(plaintext)),
    libsignal: (n) => timeAsync(n, () => g.own.encrypt(plaintext)),
    baileys: (n) => timeAsync(n, () => b.encrypt()),
    bridge: (n) => timeAsync(n, () => br.own.encrypt(plaintext)),
  }, { minMs: 150 })
  row('sender-key encrypt 200 B', results.skEncrypt)

  // Fresh records: each batch is encrypted, then decrypted in order.
  const g2 = await groupFresh()
  const b2 = await baileysFresh()
  const br2 = await bridgeFresh()
  walink.benchSenderKeyReset()
  results.skDecrypt = await compare({
    walink: (n) => {
      const messages = Array.from({ length: n }, () => walink.benchSenderKeyEncrypt(plaintext))
      return timeSync(n, (i) => walink.benchSenderKeyDecrypt(messages[i]))
    },
    libsignal: async (n) => {
      const messages = []
      for (let i = 0; i < n; i++) messages.push(await g2.own.encrypt(plaintext))
      return timeAsync(n, (i) => g2.member.decrypt(messages[i]))
    },
    baileys: async (n) => {
      const messages = []
      for (let i = 0; i < n; i++) messages.push(await b2.encrypt())
      return timeAsync(n, (i) => b2.decrypt(messages[i]))
    },
    bridge: async (n) => {
      const messages = []
      for (let i = 0; i < n; i++) messages.push(await br2.own.encrypt(plaintext))
      return timeAsync(n, (i) => br2.member.decrypt(messages[i]))
    },
  }, { minMs: 150, maxBatch: 1000 })
  row('sender-key decrypt 200 B', results.skDecrypt)
}

console.log('\n"libsignal" is libsignal-node for 1:1 rows and Baileys\' Group classes used directly for sender keys.')
