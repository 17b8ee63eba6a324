//! The key schedule of the double ratchet: root key, chain keys and message keys.
//!
//! libsignal (rust/protocol/src/ratchet/keys.rs) and libsignal-node (src/session_cipher.js):
//! - a root key step is HKDF-SHA256(salt = root key, ikm = DH, info = "WhisperRatchet") → 64
//!   bytes: the new root key and a new chain key;
//! - a chain key gives the message-key seed HMAC(chain key, 0x01) and the next chain key
//!   HMAC(chain key, 0x02);
//! - a seed gives HKDF(salt = 32 zero bytes, ikm = seed, info = "WhisperMessageKeys") → 80
//!   bytes: the AES-256 key, the HMAC key and the CBC IV.

use std::collections::VecDeque;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::crypto::hkdf;
#[cfg(test)]
use super::crypto::hmac_sha256;
use super::error::DecryptError;
use super::keys::{PrivateKey, PublicKey};

/// A root key of the double ratchet.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct RootKey(pub(crate) [u8; 32]);

impl RootKey {
    /// One DH ratchet step: the next root key and a fresh chain key at index 0.
    pub(crate) fn create_chain(
        &self,
        theirs: &PublicKey,
        ours: &PrivateKey,
    ) -> (RootKey, ChainKey) {
        let shared = ours.agree(theirs);
        let okm = hkdf::<64>(Some(&self.0), &*shared, b"WhisperRatchet");
        let mut root = [0u8; 32];
        let mut chain = [0u8; 32];
        root.copy_from_slice(&okm[..32]);
        chain.copy_from_slice(&okm[32..]);
        (
            RootKey(root),
            ChainKey {
                key: chain,
                index: 0,
            },
        )
    }
}

/// A chain key and the index of the message key it gives next.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct ChainKey {
    pub(crate) key: [u8; 32],
    pub(crate) index: u32,
}

impl ChainKey {
    /// The index of the next message key.
    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    /// The message-key seed for this index (the first half of [`ChainKey::step`]).
    #[cfg(test)]
    pub(crate) fn message_seed(&self) -> MessageSeed {
        MessageSeed {
            seed: hmac_sha256(&self.key, &[&[0x01]]),
            counter: self.index,
        }
    }

    /// The message-key seed for this index and the chain key for the next one, from one keyed
    /// HMAC state (two SHA-256 compressions fewer than [`ChainKey::message_seed`] and
    /// [`ChainKey::next`] apart).
    pub(crate) fn step(&self) -> (MessageSeed, ChainKey) {
        let (seed, key) = walink_crypto::hmac_sha256_two(&self.key, &[0x01], &[0x02]);
        (
            MessageSeed {
                seed,
                counter: self.index,
            },
            ChainKey {
                key,
                index: self.index.wrapping_add(1),
            },
        )
    }

    /// The chain key for the next index (the second half of [`ChainKey::step`]).
    #[cfg(test)]
    pub(crate) fn next(&self) -> ChainKey {
        ChainKey {
            key: hmac_sha256(&self.key, &[&[0x02]]),
            index: self.index.wrapping_add(1),
        }
    }
}

/// The 32-byte seed of one message's keys, kept for a skipped counter.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct MessageSeed {
    pub(crate) seed: [u8; 32],
    pub(crate) counter: u32,
}

impl MessageSeed {
    /// Expands the seed into the cipher key, MAC key and IV.
    pub(crate) fn keys(&self) -> MessageKeys {
        let okm: Zeroizing<[u8; 80]> = hkdf(None, &self.seed, b"WhisperMessageKeys");
        let mut keys = MessageKeys {
            cipher_key: [0; 32],
            mac_key: [0; 32],
            iv: [0; 16],
        };
        keys.cipher_key.copy_from_slice(&okm[..32]);
        keys.mac_key.copy_from_slice(&okm[32..64]);
        keys.iv.copy_from_slice(&okm[64..]);
        keys
    }
}

impl MessageSeed {
    /// Expands the seed into a sender-key message's IV and cipher key: HKDF(salt = none,
    /// info = "WhisperGroup") → 48 bytes, the IV first (Baileys `sender-message-key.js`,
    /// libsignal `SenderMessageKey`).
    pub(crate) fn group_keys(&self) -> ([u8; 16], Zeroizing<[u8; 32]>) {
        let okm: Zeroizing<[u8; 48]> = hkdf(None, &self.seed, b"WhisperGroup");
        let mut iv = [0u8; 16];
        let mut key = Zeroizing::new([0u8; 32]);
        iv.copy_from_slice(&okm[..16]);
        key.copy_from_slice(&okm[16..]);
        (iv, key)
    }
}

#[cfg(test)]
thread_local! {
    /// Chain steps walked past skipped counters on this thread (tests bound the work a message
    /// costs with it).
    pub(crate) static CHAIN_STEPS: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
}

/// The message-key seed for `counter` on a receiving chain: a kept key for a skipped counter,
/// or the chain advanced up to the counter, keeping (at most `max_skipped`, oldest dropped) the
/// keys it passes. A counter more than `max_jump` ahead is refused before any work, so a hostile
/// counter cannot cost unbounded time or memory.
pub(crate) fn seed_for_counter(
    chain: &mut ChainKey,
    skipped: &mut VecDeque<MessageSeed>,
    counter: u32,
    max_jump: u32,
    max_skipped: usize,
) -> Result<MessageSeed, DecryptError> {
    let index = chain.index();
    if counter < index {
        let position = skipped
            .iter()
            .position(|seed| seed.counter == counter)
            .ok_or(DecryptError::DuplicateMessage { counter })?;
        return skipped
            .remove(position)
            .ok_or(DecryptError::DuplicateMessage { counter });
    }
    if counter - index > max_jump {
        return Err(DecryptError::TooFarAhead { counter, index });
    }
    while chain.index() < counter {
        #[cfg(test)]
        CHAIN_STEPS.with(|steps| steps.set(steps.get() + 1));
        let (seed, next) = chain.step();
        skipped.push_back(seed);
        if skipped.len() > max_skipped {
            skipped.pop_front();
        }
        *chain = next;
    }
    let (seed, next) = chain.step();
    *chain = next;
    Ok(seed)
}

/// The keys of one message.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct MessageKeys {
    pub(crate) cipher_key: [u8; 32],
    pub(crate) mac_key: [u8; 32],
    pub(crate) iv: [u8; 16],
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// libsignal rust/protocol/src/ratchet/keys.rs, `test_chain_key_derivation_v3`.
    #[test]
    fn chain_key_known_answer() {
        let seed = hex::decode("8ab72d6f4cc5ac0d387eaf463378ddb28edd07385b1cb01250c715982e7ad48f")
            .unwrap();
        let chain = ChainKey {
            key: seed.try_into().unwrap(),
            index: 0,
        };
        let keys = chain.message_seed().keys();
        assert_eq!(
            hex::encode(keys.cipher_key),
            "bf51e9d75e0e31031051f82a2491ffc084fa298b7793bd9db620056febf45217"
        );
        assert_eq!(
            hex::encode(keys.mac_key),
            "c6c77d6a73a354337a56435e34607dfe48e3ace14e77314dc6abc172e7a7030b"
        );
        let next = chain.next();
        assert_eq!(
            hex::encode(next.key),
            "28e8f8fee54b801eef7c5cfb2f17f32c7b334485bbb70fac6ec10342a246d15d"
        );
        assert_eq!(next.index(), 1);
        assert_eq!(next.message_seed().counter, 1);
    }

    #[test]
    fn a_step_equals_the_seed_and_the_next_key() {
        let mut chain = ChainKey {
            key: [0x42; 32],
            index: 7,
        };
        for _ in 0..5 {
            let (seed, next) = chain.step();
            let expected = chain.message_seed();
            assert_eq!(seed.seed, expected.seed);
            assert_eq!(seed.counter, expected.counter);
            assert_eq!(next.key, chain.next().key);
            assert_eq!(next.index(), chain.next().index());
            chain = next;
        }
    }
}
