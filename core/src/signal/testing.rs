//! Fixtures shared by walink's benchmarks (the criterion benches in `core/benches/` and the wasm
//! bench exports of `bindings/wasm`) and tests: a fast seeded RNG, a receiving party with its
//! prekeys, an established pair of session records and a pair of sender-key records. Not part
//! of the API (hidden from the docs, no stability promise), and compiled only for walink-core's
//! own tests or with its `testing` feature, which no production build enables: [`BenchRng`]
//! claims to be a `CryptoRng` and is not one.

use std::convert::Infallible;

use super::error::{BundleError, DecryptError, EncryptError};
use super::keys::{IdentityKeyPair, KeyPair};
use super::message::{PreKeyId, SignedPreKeyId};
use super::prekey::{PreKey, PreKeyBundle, PreKeySource, SignedPreKey};
use super::record::SessionRecord;
use super::sender_key::SenderKeyRecord;

/// The registration id of the initiating party (Alice) in the fixtures.
pub const ALICE_REGISTRATION: u32 = 1;
/// The registration id of the receiving party (Bob) in the fixtures.
pub const BOB_REGISTRATION: u32 = 2;

/// Why a fixture could not be built.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// Bob's bundle did not start a session.
    #[error("bundle: {0}")]
    Bundle(#[from] BundleError),
    /// A fixture message did not encrypt.
    #[error("encrypt: {0}")]
    Encrypt(#[from] EncryptError),
    /// A fixture message did not decrypt.
    #[error("decrypt: {0}")]
    Decrypt(#[from] DecryptError),
}

/// SplitMix64 seeded by the caller: fast and reproducible, not secret (benchmarks need no more).
/// It implements `CryptoRng` only so that it can stand in for the real generator in benchmarks
/// and tests; it is predictable, and exists only with the `testing` feature.
pub struct BenchRng(pub u64);

impl rand_core::TryRng for BenchRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok((self.try_next_u64()? >> 32) as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Ok(z ^ (z >> 31))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let word = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for BenchRng {}

impl BenchRng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> BenchRng {
        BenchRng(seed)
    }
}

/// The receiving party: an identity, signed prekey 1 and one-time prekeys with ids `0..n`.
pub struct Bob {
    /// Bob's identity.
    pub identity: IdentityKeyPair,
    /// Bob's signed prekey (id 1).
    pub signed: SignedPreKey,
    /// Bob's one-time prekeys, the id equal to the index.
    pub one_time: Vec<PreKey>,
}

impl PreKeySource for Bob {
    fn signed_pre_key(&self, id: SignedPreKeyId) -> Option<KeyPair> {
        (id == self.signed.id).then(|| self.signed.key_pair.clone())
    }
    fn pre_key(&self, id: PreKeyId) -> Option<KeyPair> {
        self.one_time
            .get(id.0 as usize)
            .map(|key| key.key_pair.clone())
    }
}

impl Bob {
    /// A fresh Bob with `one_time` one-time prekeys.
    pub fn new(rng: &mut BenchRng, one_time: u32) -> Bob {
        let identity = IdentityKeyPair::generate(rng);
        let signed = SignedPreKey::generate(SignedPreKeyId(1), &identity, rng);
        let one_time = (0..one_time)
            .map(|id| PreKey::generate(PreKeyId(id), rng))
            .collect();
        Bob {
            identity,
            signed,
            one_time,
        }
    }

    /// Bob's bundle with one-time prekey `one_time` (none when there is no such prekey).
    pub fn bundle(&self, one_time: u32) -> PreKeyBundle {
        PreKeyBundle {
            registration_id: BOB_REGISTRATION,
            identity_key: self.identity.identity_key(),
            signed_pre_key_id: self.signed.id,
            signed_pre_key: self.signed.key_pair.public,
            signed_pre_key_signature: self.signed.signature,
            pre_key: self
                .one_time
                .get(one_time as usize)
                .map(|key| (key.id, key.key_pair.public)),
        }
    }
}

/// Alice's and a new Bob's records of an established session: Alice started it and Bob has
/// answered.
pub fn established(
    rng: &mut BenchRng,
    alice_identity: &IdentityKeyPair,
) -> Result<(SessionRecord, SessionRecord), FixtureError> {
    let bob = Bob::new(rng, 1);
    let mut alice = SessionRecord::new();
    alice.process_bundle(&bob.bundle(0), alice_identity, ALICE_REGISTRATION, rng)?;
    let first = alice.encrypt(b"hello")?;
    let mut bob_record = SessionRecord::new();
    bob_record.decrypt_pre_key_message(
        first.serialize(),
        &bob.identity,
        BOB_REGISTRATION,
        &bob,
        rng,
    )?;
    let reply = bob_record.encrypt(b"hi")?;
    alice.decrypt_message(reply.serialize(), rng)?;
    Ok((alice, bob_record))
}

/// A sender's sender-key record and a member's, the member at the sender's current iteration.
pub fn sender_keys(rng: &mut BenchRng) -> (SenderKeyRecord, SenderKeyRecord) {
    let mut sender = SenderKeyRecord::new();
    let distribution = sender.create_distribution_message(rng);
    let mut member = SenderKeyRecord::new();
    member.process_distribution_message(&distribution);
    (sender, member)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_fixtures_talk() {
        let mut rng = BenchRng(3);
        let alice_identity = IdentityKeyPair::generate(&mut rng);
        let (mut alice, mut bob) = established(&mut rng, &alice_identity).unwrap();
        let message = alice.encrypt(b"ping").unwrap();
        assert_eq!(
            bob.decrypt_message(message.serialize(), &mut rng).unwrap(),
            b"ping"
        );
        let (mut sender, mut member) = sender_keys(&mut rng);
        let group = sender.encrypt(b"all", &mut rng).unwrap();
        assert_eq!(member.decrypt(&group).unwrap(), b"all");
    }
}
