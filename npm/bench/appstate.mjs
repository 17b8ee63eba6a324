// npm run bench: app-state (syncd) speed in one Node process. walink (the bench build of its
// wasm module: walink-core's apply_snapshot / apply_patch on the decoded protobuf values, as the
// native bench core/benches/appstate.rs does) beside Baileys 7 (decodeSyncdSnapshot and
// decodePatches from its chat-utils, with an in-memory key store and MACs validated), on the very
// same data: a regular_high snapshot of 10,000 mute mutations, and a patch of 100 on top of it
// (50 replacing values, 50 new). Both sides must reach the same LTHash, checked before timing.
import { proto } from 'baileys/WAProto/index.js'
import { decodePatches, decodeSyncdSnapshot } from 'baileys/lib/Utils/chat-utils.js'
import { compare, loadBenchWasm, silenceConsole, timeAsync, timeSync } from './harness.mjs'

silenceConsole()
const RECORDS = 10_000
const PATCH = 100
const { wasm: walink } = await loadBenchWasm()
const mutations = walink.benchAppStateSetup(RECORDS, PATCH)
if (mutations !== PATCH) throw new Error(`the patch holds ${mutations} mutations, not ${PATCH}`)

const name = walink.benchAppStateCollection()
const snapshotBytes = walink.benchAppStateSnapshotBytes()
const patchBytes = walink.benchAppStatePatchBytes()
const keys = { [Buffer.from(walink.benchAppStateKeyId()).toString('base64')]: { keyData: walink.benchAppStateKeyData() } }
const getKey = async (id) => keys[id]
const snapshot = proto.SyncdSnapshot.decode(snapshotBytes)

// --- correctness first: Baileys and walink agree on the state after each step ---
const hex = (bytes) => Buffer.from(bytes).toString('hex')
const baileysBase = await decodeSyncdSnapshot(name, snapshot, getKey, undefined, true)
if (hex(baileysBase.state.hash) !== hex(walink.benchAppStateHash(false))) throw new Error('snapshot LTHash differs')
if (Object.keys(baileysBase.mutationMap).length !== RECORDS) throw new Error('Baileys decoded a different number of records')
// decodePatches empties the patch's mutations after use, so every run decodes its own copy.
const freshPatch = () => proto.SyncdPatch.decode(patchBytes)
const baileysPatched = await decodePatches(name, [freshPatch()], baileysBase.state, getKey, {}, undefined, undefined, true)
if (hex(baileysPatched.state.hash) !== hex(walink.benchAppStateHash(true))) throw new Error('patch LTHash differs')
if (Object.keys(baileysPatched.mutationMap).length !== PATCH) throw new Error('Baileys decoded a different number of mutations')
if (walink.benchAppStateApplySnapshot(1) !== RECORDS || walink.benchAppStateApplyPatch(1) !== PATCH) {
  throw new Error('walink decoded a different number of mutations')
}

/** Prints one row in milliseconds per operation (lower is better) from ops/s. */
function msRow(label, results) {
  const ms = Object.fromEntries(Object.entries(results).map(([k, opsPerSec]) => [k, 1000 / opsPerSec]))
  const cells = Object.entries(ms).map(([k, v]) => `${k} ${v.toFixed(2).padStart(8)} ms`).join('  ')
  const ratio = ms.baileys / ms.walink
  console.log(`${label.padEnd(34)} ${cells}   walink is ${ratio.toFixed(1)}x faster`)
}

console.log(`app-state (${name}): ms per operation, CPU time, best of 5 interleaved rounds`)
msRow(
  `apply snapshot of ${RECORDS.toLocaleString('en-US')}`,
  await compare(
    {
      walink: (n) => timeSync(1, () => walink.benchAppStateApplySnapshot(n)),
      baileys: (n) => timeAsync(n, () => decodeSyncdSnapshot(name, snapshot, getKey, undefined, true)),
    },
    { minMs: 1000 },
  ),
)
msRow(
  `apply patch of ${PATCH} on ${RECORDS.toLocaleString('en-US')}`,
  await compare({
    walink: (n) => timeSync(1, () => walink.benchAppStateApplyPatch(n)),
    baileys: async (n) => {
      const patches = Array.from({ length: n }, freshPatch)
      return timeAsync(n, (i) => decodePatches(name, [patches[i]], baileysBase.state, getKey, {}, undefined, undefined, true))
    },
  }),
)
