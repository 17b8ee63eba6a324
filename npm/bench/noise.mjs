// npm run bench: Noise speed in one Node process. walink (the bench build of its wasm module,
// thin exports over walink-core's Noise client) beside Baileys' noise handler and
// whatsapp-rust-bridge 0.5.5's NoiseSession. The handshake runs against a fixed ServerHello made
// by walink-sim's responder for a fixed client ephemeral key (core/benches/noise_server_hello.hex);
// every client does the whole client side of it. Transport rows encrypt and decrypt 200 B and
// 64 KB frame payloads.
import * as bridge from 'whatsapp-rust-bridge'
import curve from 'libsignal/src/curve.js'
import { makeNoiseHandler } from 'baileys/lib/Utils/noise-handler.js'
import { aesDecryptGCM, aesEncryptGCM } from 'baileys/lib/Utils/crypto.js'
import { NOISE_WA_HEADER, WA_CERT_DETAILS } from 'baileys/lib/Defaults/index.js'
import { proto } from 'baileys/WAProto/index.js'
import { compare, loadBenchWasm, row, timeSync, timeAsync } from './harness.mjs'

const { wasm: walink } = await loadBenchWasm()
walink.benchInit(0x5eed)

const unhex = (text) => Buffer.from(text, 'hex')
const [ephemeralPrivateHex, staticPrivateHex, rootHex, serverHelloHex] = walink.benchNoiseFixture().split('\n')
const rawPublic = (key) => (key.length === 33 ? key.subarray(1) : key)
const ephemeral = {
  private: unhex(ephemeralPrivateHex),
  public: Buffer.from(rawPublic(curve.getPublicFromPrivateKey(unhex(ephemeralPrivateHex)))),
}
const noiseKey = {
  private: unhex(staticPrivateHex),
  public: Buffer.from(rawPublic(curve.getPublicFromPrivateKey(unhex(staticPrivateHex)))),
}
const serverHelloBytes = unhex(serverHelloHex)
const payload = new Uint8Array(180).fill(0x5a)
// Baileys checks the intermediate certificate against WA_CERT_DETAILS: point it at the fixture's root.
WA_CERT_DETAILS.PUBLIC_KEY = unhex(rootHex)
const silent = { level: 'silent', child() { return silent }, trace() {}, debug() {}, info() {}, warn() {}, error() {} }

/** Baileys' client side of the handshake, as its socket does it. */
async function baileysHandshake() {
  const noise = makeNoiseHandler({ keyPair: ephemeral, NOISE_HEADER: NOISE_WA_HEADER, logger: silent })
  const hello = proto.HandshakeMessage.encode({ clientHello: { ephemeral: ephemeral.public } }).finish()
  noise.encodeFrame(hello)
  const handshake = proto.HandshakeMessage.decode(serverHelloBytes)
  const keyEnc = noise.processHandshake(handshake, noiseKey)
  const payloadEnc = noise.encrypt(payload)
  const finish = proto.HandshakeMessage.encode({ clientFinish: { static: keyEnc, payload: payloadEnc } }).finish()
  noise.encodeFrame(finish)
  await noise.finishInit()
  return noise
}

/** The bridge's client side; it returns the certificate chain undecoded and does not verify it. */
function bridgeHandshake() {
  const session = new bridge.NoiseSession(ephemeral.public, NOISE_WA_HEADER)
  proto.HandshakeMessage.encode({ clientHello: { ephemeral: ephemeral.public } }).finish()
  const hello = proto.HandshakeMessage.decode(serverHelloBytes).serverHello
  session.processHandshakeInit(hello.ephemeral, hello.static, hello.payload, ephemeral.private)
  const encStatic = session.processHandshakeFinish(noiseKey.public, noiseKey.private, hello.ephemeral)
  const encPayload = session.encrypt(payload)
  proto.HandshakeMessage.encode({ clientFinish: { static: encStatic, payload: encPayload } }).finish()
  session.finishInit()
  return session
}

// The three must agree on the transport keys: the same frame from each.
{
  const ours = walink.benchNoiseHandshake()
  if (!(ours > 0)) throw new Error('walink handshake failed')
  const b = await baileysHandshake()
  const br = bridgeHandshake()
  const probe = new Uint8Array(32).fill(7)
  if (Buffer.compare(Buffer.from(b.encrypt(probe)), Buffer.from(br.encrypt(probe))) !== 0) {
    throw new Error('Baileys and the bridge derived different transport keys')
  }
  br.free()
}

console.log(`node ${process.version}; Noise ops/s (higher is better), best of 5 interleaved rounds\n`)
const handshake = await compare({
  walink: (n) => timeSync(n, () => walink.benchNoiseHandshake()),
  baileys: (n) => timeAsync(n, () => baileysHandshake()),
  bridge: (n) => timeSync(n, () => bridgeHandshake().free()),
}, { minMs: 150 })
row('client handshake', handshake)

/**
 * Baileys' transport: its noise handler's TransportState (counter IV, AES-256-GCM through its
 * aesEncryptGCM/aesDecryptGCM), rebuilt here because the handler keeps its keys private.
 */
class BaileysTransport {
  constructor(encKey, decKey) {
    this.encKey = encKey
    this.decKey = decKey
    this.readCounter = 0
    this.writeCounter = 0
    this.iv = new Uint8Array(12)
  }
  setIv(c) {
    this.iv[8] = (c >>> 24) & 0xff
    this.iv[9] = (c >>> 16) & 0xff
    this.iv[10] = (c >>> 8) & 0xff
    this.iv[11] = c & 0xff
  }
  encrypt(plaintext) {
    this.setIv(this.writeCounter++)
    return aesEncryptGCM(plaintext, this.encKey, this.iv, Buffer.alloc(0))
  }
  decrypt(ciphertext) {
    this.setIv(this.readCounter++)
    return aesDecryptGCM(ciphertext, this.decKey, this.iv, Buffer.alloc(0))
  }
}

for (const size of [200, 64 * 1024]) {
  const plaintext = new Uint8Array(size).fill(0xa5)
  const label = size >= 1024 ? `${size / 1024} KB` : `${size} B`
  const opts = { maxBatch: size > 1024 ? 256 : 4096 }
  walink.benchNoiseTransportReset()
  const key1 = Buffer.alloc(32, 1)
  const key2 = Buffer.alloc(32, 2)
  const bClient = new BaileysTransport(key1, key2)
  const bServer = new BaileysTransport(key2, key1)
  const brSession = bridgeHandshake()
  const encrypt = await compare({
    walink: (n) => timeSync(n, () => walink.benchNoiseEncrypt(plaintext)),
    baileys: (n) => timeSync(n, () => bClient.encrypt(plaintext)),
    bridge: (n) => timeSync(n, () => brSession.encrypt(plaintext)),
  }, opts)
  row(`transport encrypt ${label}`, encrypt)
  walink.benchNoiseTransportReset()
  const b2Client = new BaileysTransport(key1, key2)
  const b2Server = new BaileysTransport(key2, key1)
  const decrypt = await compare({
    walink: (n) => {
      const frames = Array.from({ length: n }, () => walink.benchNoiseEncrypt(plaintext))
      return timeSync(n, (i) => walink.benchNoiseDecrypt(frames[i]))
    },
    baileys: (n) => {
      const frames = Array.from({ length: n }, () => b2Client.encrypt(plaintext))
      return timeSync(n, (i) => b2Server.decrypt(frames[i]))
    },
  }, opts)
  row(`transport decrypt ${label}`, decrypt)
  brSession.free()
  void bServer
}
console.log('\nThe bridge verifies no certificate (walink and Baileys verify two XEdDSA signatures per')
console.log('handshake), and it offers no way to set transport keys, so it has no decrypt rows.')
