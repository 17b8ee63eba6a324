// Media oracle: Baileys' media key expansion, upload encryption and download decryption.
import { readFile, unlink } from 'node:fs/promises'
import { aesDecryptWithIV, hmacSign } from 'baileys/lib/Utils/crypto.js'
import { encryptedStream, getMediaKeys } from 'baileys/lib/Utils/messages-media.js'
import { serve, hex, unhex } from './rpc.mjs'

serve({
  keys: async ({ mediaKey, type }) => {
    const { iv, cipherKey, macKey } = await getMediaKeys(unhex(mediaKey), type)
    return { iv: hex(iv), cipherKey: hex(cipherKey), macKey: hex(macKey) }
  },

  // What Baileys uploads for `plaintext` (with a media key of its own choosing).
  encrypt: async ({ plaintext, type }) => {
    const result = await encryptedStream(unhex(plaintext), type)
    const file = await readFile(result.encFilePath)
    await unlink(result.encFilePath)
    return {
      mediaKey: hex(result.mediaKey),
      file: hex(file),
      fileSha256: hex(result.fileSha256),
      fileEncSha256: hex(result.fileEncSha256),
      fileLength: result.fileLength,
    }
  },

  // Baileys' download decryption (AES-256-CBC of everything but the last 10 bytes), plus the MAC
  // check Baileys leaves out, done with its own HMAC helper.
  decrypt: async ({ mediaKey, type, file }) => {
    const { iv, cipherKey, macKey } = await getMediaKeys(unhex(mediaKey), type)
    const bytes = unhex(file)
    const ciphertext = bytes.subarray(0, bytes.length - 10)
    const mac = hmacSign(Buffer.concat([iv, ciphertext]), macKey).subarray(0, 10)
    return {
      macOk: mac.equals(bytes.subarray(bytes.length - 10)),
      plaintext: hex(aesDecryptWithIV(ciphertext, cipherKey, iv)),
    }
  },
})
