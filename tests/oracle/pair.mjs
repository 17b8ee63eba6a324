// Pairing oracle: Baileys' pairing crypto, and a primary phone built from Baileys' primitives.
import { randomBytes } from 'node:crypto'
import { proto } from 'baileys/WAProto/index.js'
import {
  Curve, aesDecryptCTR, aesDecryptGCM, aesEncryptCTR, aesEncryptGCM, derivePairingCodeKey, hkdf, hmacSign,
} from 'baileys/lib/Utils/crypto.js'
import { bytesToCrockford } from 'baileys/lib/Utils/generics.js'
import { buildPairingQRData } from 'baileys/lib/Utils/companion-reg-client-utils.js'
import { configureSuccessfulPairing } from 'baileys/lib/Utils/validate-connection.js'
import * as libsignalCurve from 'libsignal/src/curve.js'
import { serve, hex, unhex } from './rpc.mjs'

const b64 = (text) => unhex(text).toString('base64')
const HOSTED = proto.ADVEncryptionType.HOSTED

// XEdDSA verification by libsignal. Not Baileys' `Curve.verify`: with libsignal 6, whose
// `verifySignature` returns false instead of throwing, that one accepts any 64-byte signature
// (so Baileys rc14's configureSuccessfulPairing never rejects a bad account signature).
const verify = (publicKey, message, signature) => {
  try {
    return libsignalCurve.verifySignature(Buffer.concat([Buffer.from([5]), publicKey]), message, signature) === true
  } catch {
    return false
  }
}

async function unwrap(code, wrapped) {
  const key = await derivePairingCodeKey(code, wrapped.subarray(0, 32))
  return aesDecryptCTR(wrapped.subarray(48, 80), key, wrapped.subarray(32, 48))
}

async function wrap(code, publicKey) {
  const salt = randomBytes(32)
  const iv = randomBytes(16)
  const key = await derivePairingCodeKey(code, salt)
  return Buffer.concat([salt, iv, aesEncryptCTR(publicKey, key, iv)])
}

// The primary phone's half of code pairing, by handle.
const primaries = new Map()

serve({
  crockford: ({ bytes }) => bytesToCrockford(unhex(bytes)),
  pairingKey: async ({ code, salt }) => hex(await derivePairingCodeKey(code, unhex(salt))),
  ctr: ({ key, iv, data }) => hex(aesEncryptCTR(unhex(data), unhex(key), unhex(iv))),
  qr: ({ ref, noise, identity, adv, browser }) => buildPairingQRData(ref, b64(noise), b64(identity), b64(adv), browser),

  // The <device-identity> of a pair-success, signed by a fresh primary account key.
  // `tamper`: "hmac" or "signature" spoils that part.
  pairSuccess: ({ companionIdentity, advSecret, accountHosted, deviceHosted, keyIndex, tamper }) => {
    const account = Curve.generateKeyPair()
    const details = proto.ADVDeviceIdentity.encode({
      rawId: 4242,
      timestamp: 1763800000,
      keyIndex,
      ...(accountHosted ? { accountType: HOSTED } : {}),
      ...(deviceHosted ? { deviceType: HOSTED } : {}),
    }).finish()
    const prefix = Buffer.from(deviceHosted ? [6, 5] : [6, 0])
    const signature = Buffer.from(Curve.sign(account.private, Buffer.concat([prefix, details, unhex(companionIdentity)])))
    if (tamper === 'signature') signature[5] ^= 1
    const signed = proto.ADVSignedDeviceIdentity.encode({
      details, accountSignatureKey: account.public, accountSignature: signature,
    }).finish()
    const hmacPrefix = Buffer.from(accountHosted ? [6, 5] : [])
    const hmac = hmacSign(Buffer.concat([hmacPrefix, signed]), unhex(advSecret))
    if (tamper === 'hmac') hmac[0] ^= 1
    const container = proto.ADVSignedDeviceIdentityHMAC.encode({
      details: signed, hmac, ...(accountHosted ? { accountType: HOSTED } : {}),
    }).finish()
    return { deviceIdentity: hex(container), accountKey: hex(account.public) }
  },

  // Baileys' own companion handling of the same pair-success.
  baileysPairing: ({ deviceIdentity, advSecret, identityPrivate, identityPublic }) => {
    const stanza = {
      tag: 'iq', attrs: { id: '123', from: 's.whatsapp.net', type: 'result' },
      content: [{ tag: 'pair-success', attrs: {}, content: [
        { tag: 'device-identity', attrs: {}, content: unhex(deviceIdentity) },
        { tag: 'device', attrs: { jid: '15551234567:7@s.whatsapp.net', lid: '99887766:7@lid' } },
        { tag: 'platform', attrs: { name: 'android' } },
      ] }],
    }
    try {
      const { reply, creds } = configureSuccessfulPairing(stanza, {
        advSecretKey: b64(advSecret),
        signedIdentityKey: { private: unhex(identityPrivate), public: unhex(identityPublic) },
        signalIdentities: [],
      })
      const node = reply.content[0].content[0]
      const stored = proto.ADVSignedDeviceIdentity.encode(creds.account).finish()
      return { reply: hex(node.content), keyIndex: node.attrs['key-index'], stored: hex(stored) }
    } catch (error) {
      return { error: error.message }
    }
  },

  // What the server checks in pair-device-sign: no account key, a device signature that
  // verifies over [6,1] ‖ details ‖ companion identity ‖ account key.
  checkReply: ({ reply, companionIdentity, accountKey }) => {
    const signed = proto.ADVSignedDeviceIdentity.decode(unhex(reply))
    const message = Buffer.concat([Buffer.from([6, 1]), signed.details, unhex(companionIdentity), unhex(accountKey)])
    return {
      hasAccountKey: !!signed.accountSignatureKey?.length,
      deviceSignatureVerifies: verify(unhex(companionIdentity), message, signed.deviceSignature),
    }
  },

  // libsignal's verdict on the account signature inside a <device-identity>.
  accountSignatureVerifies: ({ deviceIdentity, companionIdentity }) => {
    const container = proto.ADVSignedDeviceIdentityHMAC.decode(unhex(deviceIdentity))
    const signed = proto.ADVSignedDeviceIdentity.decode(container.details)
    const device = proto.ADVDeviceIdentity.decode(signed.details)
    const prefix = Buffer.from(device.deviceType === HOSTED ? [6, 5] : [6, 0])
    const message = Buffer.concat([prefix, signed.details, unhex(companionIdentity)])
    return verify(Buffer.from(signed.accountSignatureKey), message, signed.accountSignature)
  },

  // libsignal's verdict on an ADVSignedKeyIndexList (XEdDSA over [6,2] ‖ details) with the
  // given account key, and the list it carries, decoded by Baileys' protobuf definitions.
  keyIndexListVerifies: ({ list, accountKey }) => {
    const signed = proto.ADVSignedKeyIndexList.decode(unhex(list))
    const details = proto.ADVKeyIndexList.decode(signed.details)
    const message = Buffer.concat([Buffer.from([6, 2]), signed.details])
    return {
      verifies: verify(unhex(accountKey), message, signed.accountSignature),
      rawId: details.rawId,
      timestamp: Number(details.timestamp),
      currentIndex: details.currentIndex,
      validIndexes: details.validIndexes,
    }
  },

  // primary_hello: the primary reads the companion's ephemeral key and wraps its own.
  primaryHello: async ({ code, companionWrapped }) => {
    const companionEphemeral = await unwrap(code, unhex(companionWrapped))
    const ephemeral = Curve.generateKeyPair()
    const identity = Curve.generateKeyPair()
    const handle = primaries.size + 1
    primaries.set(handle, { ephemeral, identity, companionEphemeral })
    return {
      handle,
      companionEphemeral: hex(companionEphemeral),
      wrappedPrimary: hex(await wrap(code, ephemeral.public)),
      primaryIdentity: hex(identity.public),
    }
  },

  // The primary opens companion_finish's bundle and derives the adv secret its own way.
  primaryFinish: ({ handle, bundle }) => {
    const { ephemeral, identity, companionEphemeral } = primaries.get(handle)
    const bytes = unhex(bundle)
    const shared = Curve.sharedKey(ephemeral.private, companionEphemeral)
    const key = hkdf(shared, 32, { salt: bytes.subarray(0, 32), info: 'link_code_pairing_key_bundle_encryption_key' })
    const plain = aesDecryptGCM(bytes.subarray(44), key, bytes.subarray(32, 44), Buffer.alloc(0))
    const companionIdentity = plain.subarray(0, 32)
    const advRandom = plain.subarray(64, 96)
    const identityShared = Curve.sharedKey(identity.private, companionIdentity)
    const advSecret = hkdf(Buffer.concat([shared, identityShared, advRandom]), 32, { info: 'adv_secret' })
    return {
      length: plain.length,
      companionIdentity: hex(companionIdentity),
      primaryIdentity: hex(plain.subarray(32, 64)),
      advSecret: hex(advSecret),
    }
  },

  // Baileys' companion_finish computation (src/Socket/messages-recv.ts), with given randomness.
  baileysCompanionFinish: async ({ code, linkPrivate, identityPrivate, identityPublic, primaryIdentity, wrappedPrimary, advRandom, bundleSalt, nonce }) => {
    const primaryEphemeral = await unwrap(code, unhex(wrappedPrimary))
    const shared = Curve.sharedKey(unhex(linkPrivate), primaryEphemeral)
    const key = hkdf(shared, 32, { salt: unhex(bundleSalt), info: 'link_code_pairing_key_bundle_encryption_key' })
    const payload = Buffer.concat([unhex(identityPublic), unhex(primaryIdentity), unhex(advRandom)])
    const sealed = aesEncryptGCM(payload, key, unhex(nonce), Buffer.alloc(0))
    const identityShared = Curve.sharedKey(unhex(identityPrivate), unhex(primaryIdentity))
    const advSecret = hkdf(Buffer.concat([shared, identityShared, unhex(advRandom)]), 32, { info: 'adv_secret' })
    return { bundle: hex(Buffer.concat([unhex(bundleSalt), unhex(nonce), sealed])), advSecret: hex(advSecret) }
  },
})
