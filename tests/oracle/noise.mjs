// Baileys' Noise handler (makeNoiseHandler) as an oracle: it plays the WhatsApp Web client with
// keys the Rust test chooses, so its frames can be compared byte for byte with walink's, and it
// runs a handshake against walink-sim's responder. Bytes travel as hex.
import { serve, hex, unhex } from './rpc.mjs'
import { makeNoiseHandler } from 'baileys/lib/Utils/noise-handler.js'
import { configureSuccessfulPairing, generateLoginNode, generateRegistrationNode } from 'baileys/lib/Utils/validate-connection.js'
import { NOISE_WA_HEADER, WA_CERT_DETAILS } from 'baileys/lib/Defaults/index.js'
import { encodeBinaryNode } from 'baileys/lib/WABinary/index.js'
import { proto } from 'baileys/WAProto/index.js'
import libsignalCurve from 'libsignal/src/curve.js'
import { NoiseSession } from 'whatsapp-rust-bridge'

const silent = { level: 'silent', child() { return silent }, trace() {}, debug() {}, info() {}, warn() {}, error() {} }
const sessions = new Map()
let nextId = 1

const session = (id) => {
  const found = sessions.get(id)
  if (!found) throw new Error(`no session ${id}`)
  return found
}

const nodeToJson = (node) => ({
  tag: node.tag,
  attrs: node.attrs,
  content: Array.isArray(node.content)
    ? node.content.map(nodeToJson)
    : node.content instanceof Uint8Array ? { bytes: hex(node.content) } : node.content ?? null,
})

const jsonToNode = (json) => ({
  tag: json.tag,
  attrs: json.attrs ?? {},
  content: Array.isArray(json.content)
    ? json.content.map(jsonToNode)
    : json.content && json.content.bytes !== undefined ? unhex(json.content.bytes) : json.content ?? undefined,
})

serve({
  // Starts a client with the given ephemeral key pair; returns the first framed bytes
  // (connection header, length, ClientHello).
  start: ({ ephemeral_private, ephemeral_public }) => {
    const keyPair = { private: unhex(ephemeral_private), public: unhex(ephemeral_public) }
    const noise = makeNoiseHandler({ keyPair, NOISE_HEADER: NOISE_WA_HEADER, logger: silent })
    const hello = proto.HandshakeMessage.encode({ clientHello: { ephemeral: keyPair.public } }).finish()
    const id = nextId++
    sessions.set(id, noise)
    return { id, frame: hex(noise.encodeFrame(hello)) }
  },
  // Processes the ServerHello payload with WA_CERT_DETAILS pointed at `root_public`, encrypts
  // `payload` (a serialized ClientPayload) and returns the framed ClientFinish.
  finish: async ({ id, server_hello, noise_private, noise_public, payload, root_public }) => {
    const noise = session(id)
    WA_CERT_DETAILS.PUBLIC_KEY = unhex(root_public)
    const handshake = proto.HandshakeMessage.decode(unhex(server_hello))
    const keyEnc = noise.processHandshake(handshake, { private: unhex(noise_private), public: unhex(noise_public) })
    const payloadEnc = noise.encrypt(unhex(payload))
    const finish = proto.HandshakeMessage.encode({ clientFinish: { static: keyEnc, payload: payloadEnc } }).finish()
    const frame = noise.encodeFrame(finish)
    await noise.finishInit()
    return hex(frame)
  },
  // Encrypts one transport plaintext and returns the framed ciphertext.
  encrypt: ({ id, plaintext }) => hex(session(id).encodeFrame(unhex(plaintext))),
  // Encodes a node with Baileys' codec and sends it as one framed, encrypted frame.
  send_node: ({ id, node }) => hex(session(id).encodeFrame(encodeBinaryNode(jsonToNode(node)))),
  // Decrypts one transport ciphertext (no framing) and returns the plaintext.
  decrypt: ({ id, ciphertext }) => hex(session(id).decrypt(unhex(ciphertext))),
  // Feeds received bytes (framed) through Baileys' frame decoder; returns the decoded nodes.
  receive: async ({ id, bytes }) => {
    const nodes = []
    await session(id).decodeFrame(unhex(bytes), (node) => nodes.push(nodeToJson(node)))
    return nodes
  },
  // Baileys' ClientPayload for the login of `jid`, serialized.
  login_payload: ({ jid }) => {
    const config = { version: [2, 3000, 1023223821], browser: ['Ubuntu', 'Chrome', '22.04'], countryCode: 'US', syncFullHistory: false }
    return hex(proto.ClientPayload.encode(generateLoginNode(jid, config)).finish())
  },
  // Baileys' registration ClientPayload (a device that is not paired yet) with the given keys,
  // serialized. `browser` as Baileys' config tuple, e.g. ["Ubuntu", "Chrome", "22.04"].
  registration_payload: ({ registration_id, identity_public, spk_id, spk_public, spk_signature, browser }) => {
    const config = { version: [2, 3000, 1023223821], browser, countryCode: 'US', syncFullHistory: false }
    const creds = {
      registrationId: registration_id,
      signedIdentityKey: { public: unhex(identity_public) },
      signedPreKey: { keyId: spk_id, keyPair: { public: unhex(spk_public) }, signature: unhex(spk_signature) },
    }
    return hex(proto.ClientPayload.encode(generateRegistrationNode(creds, config)).finish())
  },
  // Baileys' companion handling of a pair-success stanza (as returned by `receive`): its
  // reply node, or the error it throws.
  pair_success: ({ stanza, adv_secret, identity_private, identity_public }) => {
    try {
      const { reply } = configureSuccessfulPairing(jsonToNode(stanza), {
        advSecretKey: unhex(adv_secret).toString('base64'),
        signedIdentityKey: { private: unhex(identity_private), public: unhex(identity_public) },
        signalIdentities: [],
      })
      return { reply: nodeToJson(reply) }
    } catch (error) {
      return { error: error.message }
    }
  },
  // whatsapp-rust's Noise (whatsapp-rust-bridge NoiseSession, compiled to wasm) as a second
  // client: it returns the decrypted certificate chain without checking it, the ClientFinish
  // payload, and the transport ciphertexts of `plaintexts` (no framing).
  bridge_handshake: ({ ephemeral_private, ephemeral_public, server_hello, noise_private, noise_public, payload, plaintexts }) => {
    const session = new NoiseSession(unhex(ephemeral_public), NOISE_WA_HEADER)
    const hello = proto.HandshakeMessage.decode(unhex(server_hello)).serverHello
    const chain = session.processHandshakeInit(hello.ephemeral, hello.static, hello.payload, unhex(ephemeral_private))
    const encStatic = session.processHandshakeFinish(unhex(noise_public), unhex(noise_private), hello.ephemeral)
    const encPayload = session.encrypt(unhex(payload))
    const finish = proto.HandshakeMessage.encode({ clientFinish: { static: encStatic, payload: encPayload } }).finish()
    session.finishInit()
    const frames = plaintexts.map((plaintext) => hex(session.encrypt(unhex(plaintext))))
    session.free()
    return { chain: hex(chain), client_finish: hex(finish), frames }
  },
  // libsignal-node's XEdDSA verification (a boolean; it does not throw on a bad signature).
  verify_signature: ({ public: key, message, signature }) =>
    libsignalCurve.verifySignature(Buffer.concat([Buffer.from([5]), unhex(key)]), unhex(message), unhex(signature)),
  // Decodes a serialized ClientPayload (and its DeviceProps) with Baileys' schema.
  decode_client_payload: ({ payload }) => {
    const decoded = proto.ClientPayload.decode(unhex(payload))
    const json = proto.ClientPayload.toObject(decoded, { longs: String, enums: String, bytes: Array })
    const props = decoded.devicePairingData?.deviceProps
    if (props) {
      json.devicePairingData.deviceProps = proto.DeviceProps.toObject(proto.DeviceProps.decode(props), { longs: String, enums: String })
    }
    return json
  },
})
