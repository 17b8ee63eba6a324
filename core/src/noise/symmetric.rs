//! The Noise symmetric state (`h`, `ck`, `k`, `n`) as WhatsApp runs it (transport.md §2.2).

use aes_gcm::Aes256Gcm;
use sha2::{Digest, Sha256};
use walink_crypto::Aes256GcmKey;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// The 12-byte AES-GCM nonce.
pub(crate) type Nonce = aes_gcm::aead::Nonce<Aes256Gcm>;

/// Length of the AES-GCM tag appended to every ciphertext.
pub(crate) const TAG_LEN: usize = 16;

/// The nonce for message number `counter`: eight zero bytes, then the counter as a big-endian
/// u32 (whatsmeow `generateIV`, Baileys `generateIV`), in the handshake and in transport alike.
pub(crate) fn nonce(counter: u32) -> Nonce {
    let mut iv = [0u8; 12];
    let [a, b, c, d] = counter.to_be_bytes();
    iv[8] = a;
    iv[9] = b;
    iv[10] = c;
    iv[11] = d;
    Nonce::from(iv)
}

/// HKDF-SHA256 with salt `salt`, input `ikm`, empty info, 64 bytes split 32/32.
pub(crate) fn hkdf_split(
    salt: &[u8; 32],
    ikm: &[u8],
) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
    let mut okm = Zeroizing::new([0u8; 64]);
    let mut first = Zeroizing::new([0u8; 32]);
    let mut second = Zeroizing::new([0u8; 32]);
    // 64 bytes is far below HKDF-SHA256's limit of 255 * 32, so expand cannot fail.
    if walink_crypto::hkdf_sha256(Some(salt), ikm, &[], okm.as_mut_slice()) {
        let (a, b) = okm.split_at(32);
        first.copy_from_slice(a);
        second.copy_from_slice(b);
    }
    (first, second)
}

/// Why a handshake AEAD operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SymmetricError {
    /// No MixKey has happened yet, so there is no key (a caller bug).
    NoKey,
    /// The tag did not verify.
    Decrypt,
    /// More than `u32::MAX` messages under one key.
    CounterExhausted,
    /// The plaintext is beyond what AES-GCM can seal (64 GiB).
    TooLarge,
}

/// `h`, `ck`, the current key and its counter.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct SymmetricState {
    hash: [u8; 32],
    chaining_key: [u8; 32],
    key: Option<[u8; 32]>,
    counter: u32,
}

impl SymmetricState {
    /// InitializeSymmetric: a 32-byte name is used as `h` as is, a longer one is hashed.
    pub(crate) fn new(protocol_name: &[u8]) -> Self {
        let hash: [u8; 32] = match <[u8; 32]>::try_from(protocol_name) {
            Ok(exact) => exact,
            Err(_) => Sha256::digest(protocol_name).into(),
        };
        SymmetricState {
            hash,
            chaining_key: hash,
            key: None,
            counter: 0,
        }
    }

    /// The handshake hash `h`.
    #[cfg(test)]
    pub(crate) fn hash(&self) -> &[u8; 32] {
        &self.hash
    }

    /// The chaining key `ck`.
    #[cfg(test)]
    pub(crate) fn chaining_key(&self) -> &[u8; 32] {
        &self.chaining_key
    }

    /// MixHash: `h = SHA256(h || data)`.
    pub(crate) fn mix_hash(&mut self, data: &[u8]) {
        let mut hasher = Sha256::new();
        hasher.update(self.hash);
        hasher.update(data);
        self.hash = hasher.finalize().into();
    }

    /// MixKey: `(ck, k) = HKDF(ck, ikm)`, and the counter restarts at zero.
    pub(crate) fn mix_key(&mut self, ikm: &[u8]) {
        let (chaining_key, key) = hkdf_split(&self.chaining_key, ikm);
        self.chaining_key = *chaining_key;
        self.key = Some(*key);
        self.counter = 0;
    }

    fn next_nonce(&mut self) -> Result<Nonce, SymmetricError> {
        let current = self.counter;
        self.counter = current
            .checked_add(1)
            .ok_or(SymmetricError::CounterExhausted)?;
        Ok(nonce(current))
    }

    /// EncryptAndHash: seal with `aad = h`, then mix the ciphertext into `h`.
    pub(crate) fn encrypt_and_hash(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, SymmetricError> {
        let key = self.key.ok_or(SymmetricError::NoKey)?;
        let nonce = self.next_nonce()?;
        // walink-crypto's AES-GCM, shared with the transport (one copy in the wasm module).
        let ciphertext = Aes256GcmKey::new(&key)
            .seal(&nonce.into(), &self.hash, plaintext)
            .ok_or(SymmetricError::TooLarge)?;
        self.mix_hash(&ciphertext);
        Ok(ciphertext)
    }

    /// DecryptAndHash: open with `aad = h`, then mix the ciphertext (not the plaintext) into `h`.
    pub(crate) fn decrypt_and_hash(
        &mut self,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SymmetricError> {
        let key = self.key.ok_or(SymmetricError::NoKey)?;
        let nonce = self.next_nonce()?;
        let plaintext = Aes256GcmKey::new(&key)
            .open(&nonce.into(), &self.hash, ciphertext)
            .ok_or(SymmetricError::Decrypt)?;
        self.mix_hash(ciphertext);
        Ok(Zeroizing::new(plaintext))
    }

    /// Split: `HKDF(ck, empty)`; the initiator writes with the first half, reads with the second.
    pub(crate) fn split(&self) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
        hkdf_split(&self.chaining_key, &[])
    }
}
