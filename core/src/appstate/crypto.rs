//! The keys expanded from an app-state sync key, the four MACs and the value encryption.
//!
//! As WhiskeySockets/Baileys src/Utils/chat-utils.ts (`mutationKeys`, `generateMac`,
//! `generateSnapshotMac`, `generatePatchMac`) and tulir/whatsmeow:appstate/keys.go and
//! appstate/hash.go (`expandAppStateKeys`, `generateContentMAC`, `generateSnapshotMAC`,
//! `generatePatchMAC`) compute them:
//!
//! - `expanded = HKDF-SHA256(ikm = keyData, salt = none, info = "WhatsApp Mutation Keys", 160)`,
//!   split into five 32-byte keys: index, value encryption, value MAC, snapshot MAC, patch MAC;
//! - index MAC = `HMAC-SHA256(indexKey, indexJson)`;
//! - value = `iv ‖ AES-256-CBC(valueEncryptionKey, iv, PKCS#7(SyncActionData))`;
//! - value MAC = `HMAC-SHA512(valueMacKey, op ‖ keyId ‖ value ‖ u64be(len(keyId) + 1))[..32]`
//!   with `op` = 1 for SET and 2 for REMOVE;
//! - snapshot MAC = `HMAC-SHA256(snapshotMacKey, ltHash ‖ u64be(version) ‖ collectionName)`;
//! - patch MAC = `HMAC-SHA256(patchMacKey, snapshotMac ‖ valueMac… ‖ u64be(version) ‖ name)`.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Sha256, Sha512};
use zeroize::Zeroizing;

use super::PatchError;
use super::lthash::LtHash;
use super::state::Operation;

/// Length of every MAC carried in app-state data (index, value, snapshot and patch MACs).
pub const MAC_LEN: usize = 32;
/// Length of the CBC initialisation vector that starts every value.
pub const IV_LEN: usize = 16;
const BLOCK_LEN: usize = 16;
const INFO: &[u8] = b"WhatsApp Mutation Keys";

/// The five keys expanded from one app-state sync key.
#[derive(Clone)]
pub struct MutationKeys {
    index: Zeroizing<[u8; 32]>,
    value_encryption: Zeroizing<[u8; 32]>,
    value_mac: Zeroizing<[u8; 32]>,
    snapshot_mac: Zeroizing<[u8; 32]>,
    patch_mac: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for MutationKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MutationKeys(..)")
    }
}

fn take(expanded: &[u8; 160], at: usize) -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    if let Some(part) = expanded.get(at..at + 32) {
        key.copy_from_slice(part);
    }
    key
}

impl MutationKeys {
    /// Expands the key data of an app-state sync key.
    pub fn expand(key_data: &[u8]) -> MutationKeys {
        let mut expanded = Zeroizing::new([0u8; 160]);
        // 160 bytes is far below HKDF-SHA256's limit, so expansion cannot fail.
        let _ = walink_crypto::hkdf_sha256(None, key_data, INFO, expanded.as_mut());
        MutationKeys {
            index: take(&expanded, 0),
            value_encryption: take(&expanded, 32),
            value_mac: take(&expanded, 64),
            snapshot_mac: take(&expanded, 96),
            patch_mac: take(&expanded, 128),
        }
    }

    /// The key of the index MAC.
    pub fn index_key(&self) -> &[u8; 32] {
        &self.index
    }

    /// The AES-256-CBC key of the values.
    pub fn value_encryption_key(&self) -> &[u8; 32] {
        &self.value_encryption
    }

    /// The key of the value MAC.
    pub fn value_mac_key(&self) -> &[u8; 32] {
        &self.value_mac
    }

    /// The key of the snapshot MAC.
    pub fn snapshot_mac_key(&self) -> &[u8; 32] {
        &self.snapshot_mac
    }

    /// The key of the patch MAC.
    pub fn patch_mac_key(&self) -> &[u8; 32] {
        &self.patch_mac
    }

    /// The index MAC of a JSON index.
    pub fn index_mac(&self, index_json: &[u8]) -> [u8; MAC_LEN] {
        let mut mac = hmac256(&self.index);
        mac.update(index_json);
        mac.finalize().into_bytes().into()
    }

    /// The value MAC of an encrypted value (`iv ‖ ciphertext`) sealed with key `key_id`.
    pub fn value_mac(&self, operation: Operation, key_id: &[u8], value: &[u8]) -> [u8; MAC_LEN] {
        let mut mac = hmac512(&self.value_mac);
        mac.update(&[operation.mac_byte()]);
        mac.update(key_id);
        mac.update(value);
        mac.update(&(key_id.len() as u64 + 1).to_be_bytes());
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; MAC_LEN];
        if let Some(head) = full.get(..MAC_LEN) {
            out.copy_from_slice(head);
        }
        out
    }

    /// The snapshot MAC of a collection at a version.
    pub fn snapshot_mac(&self, hash: &LtHash, version: u64, collection: &str) -> [u8; MAC_LEN] {
        let mut mac = hmac256(&self.snapshot_mac);
        mac.update(hash.as_bytes());
        mac.update(&version.to_be_bytes());
        mac.update(collection.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The patch MAC over the snapshot MAC and the value MACs of the patch's mutations.
    pub fn patch_mac<'a, I>(
        &self,
        snapshot_mac: &[u8],
        value_macs: I,
        version: u64,
        collection: &str,
    ) -> [u8; MAC_LEN]
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let mut mac = hmac256(&self.patch_mac);
        mac.update(snapshot_mac);
        for value_mac in value_macs {
            mac.update(value_mac);
        }
        mac.update(&version.to_be_bytes());
        mac.update(collection.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Encrypts a serialized `SyncActionData`: `iv ‖ AES-256-CBC(PKCS#7(plaintext))`.
    pub fn encrypt_value(&self, iv: &[u8; IV_LEN], plaintext: &[u8]) -> Vec<u8> {
        // walink-crypto's AES-CBC (PKCS#7), shared with Signal: one copy in the wasm module.
        let ciphertext = walink_crypto::aes256_cbc_encrypt(&self.value_encryption, iv, plaintext);
        [&iv[..], &ciphertext].concat()
    }

    /// Decrypts `iv ‖ ciphertext`, checking the padding. Verify the value MAC first.
    pub fn decrypt_value(&self, value: &[u8]) -> Result<Zeroizing<Vec<u8>>, PatchError> {
        if value.len() < IV_LEN + BLOCK_LEN || (value.len() - IV_LEN) % BLOCK_LEN != 0 {
            return Err(PatchError::Malformed("value length"));
        }
        let (iv, ciphertext) = value.split_at(IV_LEN);
        let iv: [u8; IV_LEN] = iv.try_into().map_err(|_| PatchError::Malformed("iv"))?;
        // The length is a whole number of blocks (checked above), so a failure is the padding.
        walink_crypto::aes256_cbc_decrypt(&self.value_encryption, &iv, ciphertext)
            .map(Zeroizing::new)
            .ok_or(PatchError::InvalidPadding)
    }
}

// HMAC pads a key shorter than the hash's block with zeros, so the zero-padded key gives the
// same MAC and the infallible fixed-size constructor can be used.
fn hmac256(key: &[u8; 32]) -> Hmac<Sha256> {
    let mut block = Zeroizing::new([0u8; 64]);
    if let Some(head) = block.get_mut(..32) {
        head.copy_from_slice(key);
    }
    <Hmac<Sha256> as KeyInit>::new(&(*block).into())
}

fn hmac512(key: &[u8; 32]) -> Hmac<Sha512> {
    let mut block = Zeroizing::new([0u8; 128]);
    if let Some(head) = block.get_mut(..32) {
        head.copy_from_slice(key);
    }
    <Hmac<Sha512> as KeyInit>::new(&(*block).into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use hkdf::Hkdf;

    #[test]
    fn expansion_is_hkdf_in_five_parts() {
        let keys = MutationKeys::expand(&[7u8; 32]);
        let mut expanded = [0u8; 160];
        Hkdf::<Sha256>::new(None, &[7u8; 32])
            .expand(b"WhatsApp Mutation Keys", &mut expanded)
            .unwrap();
        assert_eq!(keys.index_key(), &expanded[..32]);
        assert_eq!(keys.value_encryption_key(), &expanded[32..64]);
        assert_eq!(keys.value_mac_key(), &expanded[64..96]);
        assert_eq!(keys.snapshot_mac_key(), &expanded[96..128]);
        assert_eq!(keys.patch_mac_key(), &expanded[128..]);
        assert_eq!(format!("{keys:?}"), "MutationKeys(..)");
    }

    #[test]
    fn value_round_trips_and_rejects_bad_padding() {
        let keys = MutationKeys::expand(&[1u8; 32]);
        for len in [0usize, 1, 15, 16, 17, 100] {
            let plain: Vec<u8> = (0..len as u8).collect();
            let sealed = keys.encrypt_value(&[9u8; 16], &plain);
            assert_eq!(sealed.len() % 16, 0);
            assert_eq!(&sealed[..16], &[9u8; 16]);
            assert_eq!(keys.decrypt_value(&sealed).unwrap().as_slice(), &plain[..]);
        }
        let other = MutationKeys::expand(&[2u8; 32]);
        let sealed = keys.encrypt_value(&[9u8; 16], b"hello");
        assert!(other.decrypt_value(&sealed).is_err());
        assert_eq!(
            keys.decrypt_value(&sealed[..20]),
            Err(PatchError::Malformed("value length"))
        );
    }

    #[test]
    fn value_mac_depends_on_operation_and_key_id() {
        let keys = MutationKeys::expand(&[3u8; 32]);
        let a = keys.value_mac(Operation::Set, b"id", b"value");
        assert_ne!(a, keys.value_mac(Operation::Remove, b"id", b"value"));
        assert_ne!(a, keys.value_mac(Operation::Set, b"id2", b"value"));
        // The trailing length is len(keyId) + 1, as an 8-byte big-endian integer.
        let mut mac = <Hmac<Sha512> as KeyInit>::new_from_slice(keys.value_mac_key()).unwrap();
        mac.update(&[1, b'i', b'd']);
        mac.update(b"value");
        mac.update(&[0, 0, 0, 0, 0, 0, 0, 3]);
        assert_eq!(&mac.finalize().into_bytes()[..32], &a);
    }
}
