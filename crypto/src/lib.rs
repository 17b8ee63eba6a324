//! walink's hot symmetric primitives as plain, non-generic functions.
//!
//! RustCrypto's HMAC, HKDF, CBC and GCM are generic, so their code is instantiated (and optimised) in
//! whichever crate names the concrete types. walink-core builds at opt-level "z" to keep the
//! wasm module small; the Signal ratchet's per-message HMACs, HKDFs and AES-CBC and the Noise
//! transport's AES-GCM live here instead, in a crate the release profile builds at opt-level 3
//! (root `Cargo.toml`), where they run 1.5 to 3 times faster in wasm (docs/decisions.md,
//! "wasm size").
//!
//! Secrets do not outlive their use: HMAC and HKDF states (the key-derived inner and outer
//! SHA-256 states, their block buffers), the AES key schedules and CBC states are zeroized on
//! drop (the `zeroize` features of `hmac`, `sha2`, `aes` and `cbc`), and so are the HKDF
//! pseudorandom key, its output blocks and a CBC buffer that fails to unpad.
#![warn(unreachable_pub)]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyInit, KeyIvInit};
use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, Payload};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 keyed with a 32-byte key over the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = keyed(key);
    for part in parts {
        mac.update(part);
    }
    finish(mac)
}

// The helpers below are kept out of line: inlined, each caller got its own copy of HMAC's key
// set-up and finalisation (several KB of wasm each), for no measurable speed.

/// The HMAC state keyed with a 32-byte key.
#[inline(never)]
fn keyed(key: &[u8; 32]) -> HmacSha256 {
    // HMAC pads a key shorter than the 64-byte block with zeros, so the padded key gives the
    // same MAC and the infallible fixed-size constructor can be used.
    let mut block_key = Zeroizing::new([0u8; 64]);
    block_key[..32].copy_from_slice(key);
    <HmacSha256 as KeyInit>::new(&(*block_key).into())
}

/// The MAC of a state.
#[inline(never)]
fn finish(mac: HmacSha256) -> [u8; 32] {
    mac.finalize().into_bytes().into()
}

/// `parts` absorbed into a copy of `state`, then its MAC.
#[inline(never)]
fn mac_from(state: &HmacSha256, parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = state.clone();
    for part in parts {
        mac.update(part);
    }
    finish(mac)
}

/// HMAC-SHA256 keyed with a 32-byte key over `first` and, separately, over `second`: the key is
/// absorbed once (two SHA-256 compressions) for both MACs, where two [`hmac_sha256`] calls absorb
/// it twice. The Signal chain-key step MACs 0x01 and 0x02 under one chain key.
pub fn hmac_sha256_two(key: &[u8; 32], first: &[u8], second: &[u8]) -> ([u8; 32], [u8; 32]) {
    let state = keyed(key);
    (mac_from(&state, &[first]), mac_from(&state, &[second]))
}

/// HMAC-SHA256 keyed with the zero salt of HKDF (a zero block: 32 zero bytes padded), absorbed
/// once per process instead of at every extraction. The state holds no secret.
fn zero_salt_hmac() -> HmacSha256 {
    static ZERO_SALT: std::sync::OnceLock<HmacSha256> = std::sync::OnceLock::new();
    ZERO_SALT
        .get_or_init(|| <HmacSha256 as KeyInit>::new(&[0u8; 64].into()))
        .clone()
}

/// HKDF-SHA256 (RFC 5869) with an optional salt (`None` is the same as 32 zero bytes) into
/// `okm`. Returns false, leaving `okm` untouched, when `okm` is longer than HKDF-SHA256 can
/// produce (8,160 bytes).
///
/// Written over the one HMAC instantiation of this crate rather than with the `hkdf` crate: the
/// extraction without a salt starts from the cached zero-salt state (two compressions fewer) and
/// the module holds one copy of HMAC.
pub fn hkdf_sha256(salt: Option<&[u8]>, ikm: &[u8], info: &[u8], okm: &mut [u8]) -> bool {
    if okm.len() > HKDF_SHA256_MAX_OUTPUT {
        return false;
    }
    let mut extract = match salt {
        None => zero_salt_hmac(),
        // HMAC accepts a key of any length (a longer one is hashed first).
        Some(salt) => match <HmacSha256 as KeyInit>::new_from_slice(salt) {
            Ok(mac) => mac,
            Err(_) => return false,
        },
    };
    extract.update(ikm);
    let prk = Zeroizing::new(finish(extract));
    let expand = keyed(&prk);
    let mut block = Zeroizing::new([0u8; 32]);
    for (index, chunk) in okm.chunks_mut(32).enumerate() {
        // At most 255 blocks (checked above), so the counter fits a byte.
        let counter = [(index + 1) as u8];
        let previous: &[u8] = if index > 0 { &*block } else { &[] };
        *block = mac_from(&expand, &[previous, info, &counter]);
        chunk.copy_from_slice(&block[..chunk.len()]);
    }
    true
}

/// The longest output HKDF-SHA256 produces: 255 blocks of 32 bytes.
pub const HKDF_SHA256_MAX_OUTPUT: usize = 255 * 32;

/// AES-256-CBC encryption with PKCS#7 padding.
pub fn aes256_cbc_encrypt(key: &[u8; 32], iv: &[u8; 16], plaintext: &[u8]) -> Vec<u8> {
    let padded_len = (plaintext.len() / 16 + 1) * 16;
    let mut buf = vec![0u8; padded_len];
    if let Some(head) = buf.get_mut(..plaintext.len()) {
        head.copy_from_slice(plaintext);
    }
    let encryptor = cbc::Encryptor::<aes::Aes256>::new(&(*key).into(), &(*iv).into());
    // The buffer holds the plaintext plus a full block, which PKCS#7 never exceeds.
    let written = encryptor
        .encrypt_padded::<Pkcs7>(&mut buf, plaintext.len())
        .map(<[u8]>::len)
        .unwrap_or(0);
    buf.truncate(written);
    buf
}

/// AES-256-CBC decryption with PKCS#7 padding; `None` when the length or padding is wrong.
pub fn aes256_cbc_decrypt(key: &[u8; 32], iv: &[u8; 16], ciphertext: &[u8]) -> Option<Vec<u8>> {
    if ciphertext.is_empty() || ciphertext.len() % 16 != 0 {
        return None;
    }
    // Decrypted in place: a buffer whose padding turns out wrong holds plaintext, so it is
    // zeroized unless it is returned.
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    let decryptor = cbc::Decryptor::<aes::Aes256>::new(&(*key).into(), &(*iv).into());
    let len = decryptor.decrypt_padded::<Pkcs7>(&mut buf).ok()?.len();
    buf.truncate(len);
    Some(std::mem::take(&mut *buf))
}

/// An AES-256-GCM key schedule (zeroized on drop), sealing and opening with 12-byte nonces and
/// 16-byte tags appended to the ciphertext.
pub struct Aes256GcmKey(Aes256Gcm);

impl Aes256GcmKey {
    /// The key schedule of `key`.
    pub fn new(key: &[u8; 32]) -> Self {
        Aes256GcmKey(<Aes256Gcm as KeyInit>::new(&(*key).into()))
    }

    /// `plaintext` sealed under `nonce` with `aad`, the tag appended; `None` only beyond
    /// AES-GCM's 64 GiB limit.
    pub fn seal(&self, nonce: &[u8; 12], aad: &[u8], plaintext: &[u8]) -> Option<Vec<u8>> {
        let payload = Payload {
            msg: plaintext,
            aad,
        };
        self.0.encrypt(&(*nonce).into(), payload).ok()
    }

    /// The plaintext of `ciphertext` (tag appended) under `nonce` and `aad`; `None` when it
    /// does not authenticate.
    pub fn open(&self, nonce: &[u8; 12], aad: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>> {
        let payload = Payload {
            msg: ciphertext,
            aad,
        };
        self.0.decrypt(&(*nonce).into(), payload).ok()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn hmac_matches_rfc4231_case_2_with_the_key_zero_padded() {
        // RFC 4231 test case 2's key "Jefe" is shorter than 32 bytes; HMAC zero-pads keys, so
        // the same key padded to 32 bytes gives the RFC's MAC.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        assert_eq!(
            hmac_sha256(&key, &[b"what do ya ", b"want for nothing?"]).to_vec(),
            hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
    }

    #[test]
    fn hkdf_matches_rfc5869_case_1_and_refuses_too_long_output() {
        let ikm = [0x0b; 22];
        let salt = hex("000102030405060708090a0b0c");
        let info = hex("f0f1f2f3f4f5f6f7f8f9");
        let mut okm = [0u8; 42];
        assert!(hkdf_sha256(Some(&salt), &ikm, &info, &mut okm));
        assert_eq!(
            okm.to_vec(),
            hex(
                "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
            )
        );
        let mut too_long = vec![0u8; 255 * 32 + 1];
        assert!(!hkdf_sha256(None, &ikm, &info, &mut too_long));
    }

    #[test]
    fn the_pair_of_macs_equals_two_macs() {
        for seed in 0u8..8 {
            let key = [seed.wrapping_mul(29).wrapping_add(7); 32];
            let (first, second) = hmac_sha256_two(&key, &[0x01], &[0x02, seed]);
            assert_eq!(first, hmac_sha256(&key, &[&[0x01]]));
            assert_eq!(second, hmac_sha256(&key, &[&[0x02, seed]]));
            assert_ne!(first, second);
        }
    }

    #[test]
    fn hkdf_without_salt_equals_the_zero_salt_and_rfc5869_case_3() {
        // RFC 5869 test case 3: no salt, no info.
        let ikm = [0x0b; 22];
        let mut okm = [0u8; 42];
        assert!(hkdf_sha256(None, &ikm, &[], &mut okm));
        assert_eq!(
            okm.to_vec(),
            hex(
                "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
            )
        );
        for len in [0usize, 16, 32, 48, 80, 96, 255] {
            let ikm = vec![len as u8; len];
            let mut with_none = vec![0u8; len.max(1)];
            let mut with_zeros = vec![0u8; len.max(1)];
            assert!(hkdf_sha256(None, &ikm, b"WhisperText", &mut with_none));
            assert!(hkdf_sha256(
                Some(&[0u8; 32]),
                &ikm,
                b"WhisperText",
                &mut with_zeros
            ));
            assert_eq!(with_none, with_zeros);
        }
        let mut too_long = vec![0u8; 255 * 32 + 1];
        assert!(!hkdf_sha256(None, &ikm, &[], &mut too_long));
    }

    #[test]
    fn hkdf_equals_the_hkdf_crate() {
        let long_salt = [0x5c; 100];
        let salts: [Option<&[u8]>; 5] = [
            None,
            Some(&[]),
            Some(&[1; 13]),
            Some(&[2; 32]),
            Some(&long_salt),
        ];
        for salt in salts {
            for len in [1usize, 31, 32, 33, 64, 80, 96, 500] {
                let ikm = vec![len as u8 ^ 0x3c; len % 90];
                let info = vec![0x77; len % 40];
                let mut ours = vec![0u8; len];
                assert!(hkdf_sha256(salt, &ikm, &info, &mut ours));
                let mut reference = vec![0u8; len];
                hkdf::Hkdf::<Sha256>::new(salt, &ikm)
                    .expand(&info, &mut reference)
                    .unwrap();
                assert_eq!(ours, reference, "salt {salt:?} len {len}");
            }
        }
        let mut longest = vec![0u8; HKDF_SHA256_MAX_OUTPUT];
        assert!(hkdf_sha256(None, b"ikm", b"info", &mut longest));
        let mut reference = vec![0u8; HKDF_SHA256_MAX_OUTPUT];
        hkdf::Hkdf::<Sha256>::new(None, b"ikm")
            .expand(b"info", &mut reference)
            .unwrap();
        assert_eq!(longest, reference);
    }

    #[test]
    fn gcm_matches_the_gcm_spec_test_case_16_and_refuses_tampering() {
        // McGrew and Viega, "The Galois/Counter Mode of Operation", test case 16 (AES-256).
        let key: [u8; 32] = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
            .try_into()
            .unwrap();
        let nonce: [u8; 12] = hex("cafebabefacedbaddecaf888").try_into().unwrap();
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let plaintext = hex(concat!(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72",
            "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
        ));
        let expected = hex(concat!(
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa",
            "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
            "76fc6ece0f4e1768cddf8853bb2d551b"
        ));
        let key = Aes256GcmKey::new(&key);
        let sealed = key.seal(&nonce, &aad, &plaintext).unwrap();
        assert_eq!(sealed, expected);
        assert_eq!(key.open(&nonce, &aad, &sealed), Some(plaintext));
        let mut tampered = sealed.clone();
        tampered[0] ^= 1;
        assert_eq!(key.open(&nonce, &aad, &tampered), None);
        assert_eq!(key.open(&nonce, b"other aad", &sealed), None);
    }

    #[test]
    fn cbc_matches_sp800_38a_and_round_trips() {
        // NIST SP 800-38A F.2.5, first block, AES-256-CBC; PKCS#7 adds one full block.
        let key: [u8; 32] = hex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
            .try_into()
            .unwrap();
        let iv: [u8; 16] = hex("000102030405060708090a0b0c0d0e0f").try_into().unwrap();
        let plaintext = hex("6bc1bee22e409f96e93d7e117393172a");
        let ciphertext = aes256_cbc_encrypt(&key, &iv, &plaintext);
        assert_eq!(ciphertext.len(), 32);
        assert_eq!(
            ciphertext[..16],
            hex("f58c4c04d6e5f1ba779eabfb5f7bfbd6")[..]
        );
        assert_eq!(aes256_cbc_decrypt(&key, &iv, &ciphertext), Some(plaintext));
        for len in [0usize, 1, 15, 16, 17, 200] {
            let plaintext = vec![0x5a; len];
            let ciphertext = aes256_cbc_encrypt(&key, &iv, &plaintext);
            assert_eq!(ciphertext.len(), (len / 16 + 1) * 16);
            assert_eq!(aes256_cbc_decrypt(&key, &iv, &ciphertext), Some(plaintext));
        }
        assert_eq!(aes256_cbc_decrypt(&key, &iv, &[0; 15]), None);
        assert_eq!(aes256_cbc_decrypt(&key, &iv, &[]), None);
        let mut tampered = aes256_cbc_encrypt(&key, &iv, b"x");
        tampered[15] ^= 0xff;
        assert_eq!(aes256_cbc_decrypt(&key, &iv, &tampered), None);
    }
}
