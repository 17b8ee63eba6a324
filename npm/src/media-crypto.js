// Media body crypto for bodies the host streams itself (WhatsApp's scheme: AES-256-CBC with
// PKCS#7, HMAC-SHA256 over iv ‖ ciphertext truncated to 10 bytes and appended, SHA-256 of the
// plaintext and of the uploaded file). Two providers with one shape:
// - `wasmMediaCrypto(wasm)`: the core's streaming encryptor and decryptor (walink_core::media);
// - `nodeMediaCrypto()` (media-node.js): Node's native AES, HMAC and SHA-256 (node:crypto),
//   under the keys the core expands (`mediaKeys`), several times faster than AES in wasm.
// A decryptor hands back plaintext that is NOT verified yet: its caller writes it to a sink that
// is released only after `finish()` succeeded (the MAC, compared in constant time) and the core
// checked both hashes against the message (`downloadMedia` ends with `mediaSaved`).
//
// encryptor({ mediaKey, mediaType, iv, cipherKey, macKey }):
//   update(plaintext) -> ciphertext; finish() -> { tail, fileSha256, fileEncSha256, fileLength }
// decryptor({ mediaKey, mediaType, iv, cipherKey, macKey }, maxBytes):
//   update(piece) -> plaintext (throws code too_large); finish() -> { tail, hashes... }
//   (throws code mac_mismatch, invalid_length or invalid_padding)

/** Length of the truncated MAC at the end of an encrypted media file. */
export const MAC_LEN = 10

/**
 * The piece of a streamed body read and encrypted or decrypted at a time (the core's
 * `limits::MEDIA_STREAM_CHUNK_BYTES`).
 */
export const MEDIA_STREAM_CHUNK_BYTES = 64 << 10

export function codedError(code, message, cause) {
  const error = new Error(message ?? code, cause === undefined ? undefined : { cause })
  error.code = code
  return error
}

/** The core's streaming encryptor and decryptor, in wasm. */
export function wasmMediaCrypto(wasm) {
  return {
    name: 'wasm',
    encryptor: ({ mediaKey, mediaType }) => freedAtFinish(new wasm.MediaEncryptor(mediaKey, mediaType)),
    decryptor: ({ mediaKey, mediaType }, maxBytes) => freedAtFinish(new wasm.MediaDecryptor(mediaKey, mediaType, maxBytes)),
  }
}

/** A wasm encryptor or decryptor whose memory is released when it finishes, well or not. */
function freedAtFinish(inner) {
  return {
    update: (piece) => inner.update(piece),
    finish: () => {
      try {
        return inner.finish()
      } finally {
        inner.free()
      }
    },
  }
}
