//! The symmetric primitives of the Signal layer: HMAC-SHA256, HKDF-SHA256 and AES-256-CBC with
//! PKCS#7 padding (libsignal-node `src/crypto.js`: `calculateMAC`, `deriveSecrets`, `encrypt`,
//! `decrypt`).

use zeroize::Zeroizing;

#[cfg(test)]
use hmac::{Hmac, KeyInit, Mac};
#[cfg(test)]
type HmacSha256 = Hmac<sha2::Sha256>;

// The bodies live in walink-crypto, which the release profile builds at opt-level 3 while this
// crate is at "z" (docs/decisions.md, "wasm size").

/// HMAC-SHA256 keyed with a 32-byte key over the concatenation of `parts`.
pub(crate) fn hmac_sha256(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    walink_crypto::hmac_sha256(key, parts)
}

/// HKDF-SHA256 with an optional salt (`None` is the same as 32 zero bytes, which is what
/// libsignal passes) into `N` bytes of output.
pub(crate) fn hkdf<const N: usize>(
    salt: Option<&[u8]>,
    ikm: &[u8],
    info: &[u8],
) -> Zeroizing<[u8; N]> {
    let mut okm = Zeroizing::new([0u8; N]);
    let expanded = walink_crypto::hkdf_sha256(salt, ikm, info, &mut *okm);
    // Every caller asks for at most 96 bytes, far below HKDF-SHA256's limit of 8160.
    debug_assert!(expanded);
    okm
}

/// AES-256-CBC encryption with PKCS#7 padding.
pub(crate) fn aes_cbc_encrypt(key: &[u8; 32], iv: &[u8; 16], plaintext: &[u8]) -> Vec<u8> {
    walink_crypto::aes256_cbc_encrypt(key, iv, plaintext)
}

/// AES-256-CBC decryption with PKCS#7 padding; `None` when the length or padding is wrong.
pub(crate) fn aes_cbc_decrypt(key: &[u8; 32], iv: &[u8; 16], ciphertext: &[u8]) -> Option<Vec<u8>> {
    walink_crypto::aes256_cbc_decrypt(key, iv, ciphertext)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2_style_key_padding() {
        // A 32-byte key: HMAC over "what do ya want for nothing?" checked against the generic
        // variable-key constructor.
        let key = [0x4a; 32];
        let mut reference = <HmacSha256 as KeyInit>::new_from_slice(&key).unwrap();
        reference.update(b"what do ya want for nothing?");
        let expected: [u8; 32] = reference.finalize().into_bytes().into();
        assert_eq!(
            hmac_sha256(&key, &[b"what do ya ", b"want for nothing?"]),
            expected
        );
    }

    #[test]
    fn cbc_round_trips_and_rejects_bad_lengths() {
        let key = [3u8; 32];
        let iv = [4u8; 16];
        for len in [0usize, 1, 15, 16, 17, 200] {
            let plaintext = vec![0x5a; len];
            let ciphertext = aes_cbc_encrypt(&key, &iv, &plaintext);
            assert_eq!(ciphertext.len(), (len / 16 + 1) * 16);
            assert_eq!(aes_cbc_decrypt(&key, &iv, &ciphertext), Some(plaintext));
        }
        assert_eq!(aes_cbc_decrypt(&key, &iv, &[0; 15]), None);
        assert_eq!(aes_cbc_decrypt(&key, &iv, &[]), None);
    }
}
