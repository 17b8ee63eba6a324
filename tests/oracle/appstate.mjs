// App-state oracle: Baileys' syncd patch codec (src/Utils/chat-utils.ts: encodeSyncdPatch,
// decodeSyncdPatch, decodeSyncdSnapshot, chatModificationToAppPatch) and whatsapp-rust-bridge's
// key expansion, LTHash and MACs.
//
// States travel as { version, hash: hex, indexValueMap: { base64 index MAC: hex value MAC } };
// keys as { base64 key id: hex key data }.
import { proto } from 'baileys/WAProto/index.js'
import {
  chatModificationToAppPatch,
  decodeSyncdPatch,
  decodeSyncdSnapshot,
  encodeSyncdPatch,
} from 'baileys/lib/Utils/chat-utils.js'
import {
  LTHashAntiTampering,
  expandAppStateKeys,
  generateContentMac,
  generateIndexMac,
  generatePatchMac,
  generateSnapshotMac,
} from 'whatsapp-rust-bridge'
import { serve, hex, unhex } from './rpc.mjs'

const toBaileysState = (s) => ({
  version: s.version,
  hash: unhex(s.hash),
  indexValueMap: Object.fromEntries(
    Object.entries(s.indexValueMap).map(([k, v]) => [k, { valueMac: unhex(v) }]),
  ),
})

const fromBaileysState = (s) => ({
  version: s.version,
  hash: hex(s.hash),
  indexValueMap: Object.fromEntries(
    Object.entries(s.indexValueMap).map(([k, v]) => [k, hex(v.valueMac)]),
  ),
})

const keyGetter = (keys) => async (id) => (keys[id] ? { keyData: unhex(keys[id]) } : undefined)

const mutationOut = ({ syncAction, index }) => ({
  index,
  value: hex(proto.SyncActionValue.encode(syncAction.value ?? {}).finish()),
  version: syncAction.version ?? null,
})

// A message range given as a plain SyncActionMessageRange object (Baileys uses it as is).
const range = (r) =>
  r && {
    lastMessageTimestamp: r.lastMessageTimestamp,
    messages: r.messages.map((m) => ({
      key: { remoteJid: m.remoteJid, fromMe: m.fromMe, id: m.id, participant: m.participant },
      timestamp: m.timestamp,
    })),
  }

// A ChatModification from its JSON form ({ kind, ... }).
function modification(m) {
  switch (m.kind) {
    case 'mute':
      return { mute: m.until }
    case 'archive':
      return { archive: m.archived, lastMessages: range(m.range) }
    case 'markRead':
      return { markRead: m.read, lastMessages: range(m.range) }
    case 'pin':
      return { pin: m.pinned }
    case 'star':
      return { star: { messages: [{ id: m.id, fromMe: m.fromMe }], star: m.starred } }
    case 'delete':
      return { delete: true, lastMessages: range(m.range) }
    case 'clear':
      return { clear: true, lastMessages: range(m.range) }
    case 'contact':
      return { contact: m.contact }
    case 'addLabel':
      return { addLabel: m.label }
    case 'addChatLabel':
      return { addChatLabel: { labelId: m.labelId } }
    case 'removeChatLabel':
      return { removeChatLabel: { labelId: m.labelId } }
    case 'addMessageLabel':
      return { addMessageLabel: { labelId: m.labelId, messageId: m.messageId } }
    case 'removeMessageLabel':
      return { removeMessageLabel: { labelId: m.labelId, messageId: m.messageId } }
    default:
      throw new Error(`unknown modification ${m.kind}`)
  }
}

serve({
  expandKeys: ({ keyData }) => {
    const k = expandAppStateKeys(unhex(keyData))
    return {
      indexKey: hex(k.indexKey),
      valueEncryptionKey: hex(k.valueEncryptionKey),
      valueMacKey: hex(k.valueMacKey),
      snapshotMacKey: hex(k.snapshotMacKey),
      patchMacKey: hex(k.patchMacKey),
    }
  },

  ltHash: ({ base, subtract, add }) =>
    hex(new LTHashAntiTampering().subtractThenAdd(unhex(base), subtract.map(unhex), add.map(unhex))),

  macs: ({ keyData, operation, keyId, value, index, hash, version, name, snapshotMac, valueMacs }) => {
    const k = expandAppStateKeys(unhex(keyData))
    return {
      indexMac: hex(generateIndexMac(unhex(index), k.indexKey)),
      valueMac: hex(generateContentMac(operation, unhex(value), unhex(keyId), k.valueMacKey)),
      snapshotMac: hex(generateSnapshotMac(unhex(hash), BigInt(version), name, k.snapshotMacKey)),
      patchMac: hex(
        generatePatchMac(unhex(snapshotMac), valueMacs.map(unhex), BigInt(version), name, k.patchMacKey),
      ),
    }
  },

  // The index MAC of an index as Baileys serializes it (JSON.stringify).
  indexMac: ({ index, keyData }) =>
    hex(generateIndexMac(Buffer.from(JSON.stringify(index)), expandAppStateKeys(unhex(keyData)).indexKey)),

  // Baileys' decodeSyncdPatch (patch MAC, value MACs, index MACs, LTHash update), then the
  // snapshot MAC of the new LTHash checked with the bridge's generateSnapshotMac, as
  // decodePatches does.
  decodePatch: async ({ patch, name, state, keys }) => {
    const syncd = proto.SyncdPatch.decode(unhex(patch))
    const mutations = []
    const result = await decodeSyncdPatch(
      syncd,
      name,
      toBaileysState(state),
      keyGetter(keys),
      (m) => mutations.push(mutationOut(m)),
      true,
    )
    const version = Number(syncd.version.version)
    const keyData = keys[Buffer.from(syncd.keyId.id).toString('base64')]
    const expected = generateSnapshotMac(
      result.hash,
      BigInt(version),
      name,
      expandAppStateKeys(unhex(keyData)).snapshotMacKey,
    )
    return {
      state: fromBaileysState({ ...result, version }),
      snapshotMacOk: Buffer.compare(Buffer.from(expected), Buffer.from(syncd.snapshotMac)) === 0,
      mutations,
    }
  },

  decodeSnapshot: async ({ snapshot, name, keys }) => {
    const mutations = []
    const decoded = proto.SyncdSnapshot.decode(unhex(snapshot))
    const { state, mutationMap } = await decodeSyncdSnapshot(name, decoded, keyGetter(keys), undefined, true)
    for (const m of Object.values(mutationMap)) mutations.push(mutationOut(m))
    return { state: fromBaileysState(state), mutations }
  },

  // chatModificationToAppPatch + encodeSyncdPatch; the patch gets its version as Baileys'
  // extractSyncdPatches gives it to a received patch without one.
  encodePatch: async ({ modification: m, jid, keyId, keys, state }) => {
    const create = chatModificationToAppPatch(modification(m), jid)
    const { patch, state: next } = await encodeSyncdPatch(create, keyId, toBaileysState(state), keyGetter(keys))
    patch.version = { version: next.version }
    return {
      type: create.type,
      patch: hex(proto.SyncdPatch.encode(patch).finish()),
      state: fromBaileysState(next),
    }
  },

  // A snapshot built in JavaScript: each modification encoded by Baileys from an empty state
  // (one record per index), the LTHash of all value MACs by the bridge, the MAC by the bridge.
  encodeSnapshot: async ({ modifications, jid, keyId, keys, version, name }) => {
    const records = []
    const valueMacs = []
    for (const m of modifications) {
      const create = chatModificationToAppPatch(modification(m), m.jid ?? jid)
      const empty = { version: 0, hash: Buffer.alloc(128), indexValueMap: {} }
      const { patch } = await encodeSyncdPatch(create, keyId, empty, keyGetter(keys))
      const record = patch.mutations[0].record
      records.push(record)
      valueMacs.push(record.value.blob.subarray(-32))
    }
    const hash = new LTHashAntiTampering().subtractThenAdd(new Uint8Array(128), [], valueMacs)
    const k = expandAppStateKeys(unhex(keys[keyId]))
    const snapshot = {
      version: { version },
      records,
      mac: generateSnapshotMac(hash, BigInt(version), name, k.snapshotMacKey),
      keyId: { id: Buffer.from(keyId, 'base64') },
    }
    return { snapshot: hex(proto.SyncdSnapshot.encode(snapshot).finish()), hash: hex(hash) }
  },
})
