//! Sender keys for group messages: the distribution message that hands a sender's chain to the
//! members, and the signed, chain-keyed group message.
//!
//! Formats (Baileys `lib/Signal/Group/`, the implementation Baileys uses for groups, and
//! libsignal `sender_keys.rs` / `group_cipher.rs`):
//! - SenderKeyDistributionMessage: version byte 0x33, then the protobuf (`id`, `iteration`,
//!   `chain_key` 32 bytes, `signing_key` 33 bytes with the 0x05 prefix);
//! - SenderKeyMessage: version byte 0x33, the protobuf (`id`, `iteration`, `ciphertext`), then a
//!   64-byte XEdDSA signature by the sender's signing key over the version byte and protobuf;
//! - the chain: message-key seed HMAC(chain, 0x01), next chain HMAC(chain, 0x02); the seed
//!   expands with HKDF(info = "WhisperGroup") into the IV (16) and AES-256-CBC key (32).
//!
//! Baileys' own `GroupCipher.encrypt` skips every other iteration (it asks for `iteration + 1`),
//! so a receiver must accept gaps; walink sends consecutive iterations.

use std::collections::VecDeque;

use prost::Message as _;
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::crypto::{aes_cbc_decrypt, aes_cbc_encrypt};
use super::error::{DecryptError, EncryptError, RecordError};
use super::keys::{KeyPair, PrivateKey, PublicKey};
use super::message::{MESSAGE_VERSION, MessageError, VERSION_BYTE};
use super::ratchet::{ChainKey, MessageSeed, seed_for_counter};
use super::record::{bytes32, check_bounds, public_key, seeds_from_pb, seeds_to_pb};
use super::xeddsa::{PrecomputedVerifyingKey, SIGNATURE_LEN, SigningKey, VerifyingKey};
use crate::limits::{
    SIGNAL_MAX_MESSAGE_LEN, SIGNAL_MAX_RECORD_LEN, SIGNAL_SENDER_KEY_MAX_FORWARD_JUMP,
    SIGNAL_SENDER_KEY_SKIPPED_KEYS, SIGNAL_SENDER_KEY_STATES,
};
use crate::proto::{wa, walink as pb};
use crate::proto_bounds::Field;

/// A sender-key record's states and their skipped message keys, counted over the whole record
/// before it is decoded.
static SENDER_KEY_RECORD_FIELDS: [Field; 1] = [Field {
    number: 2,
    max: SIGNAL_SENDER_KEY_STATES,
    size: size_of::<pb::SenderKeyState>() + size_of::<SenderKeyState>(),
    fields: &[Field {
        number: 6,
        max: SIGNAL_SENDER_KEY_STATES * SIGNAL_SENDER_KEY_SKIPPED_KEYS,
        size: size_of::<pb::SkippedMessageKey>() + size_of::<MessageSeed>(),
        fields: &[],
    }],
}];

/// The storage format version of [`SenderKeyRecord::serialize`].
pub const SENDER_KEY_RECORD_FORMAT: u32 = 1;

fn check_version(bytes: &[u8], min_len: usize) -> Result<(), MessageError> {
    if bytes.len() < min_len || bytes.len() > SIGNAL_MAX_MESSAGE_LEN {
        return Err(MessageError::BadLength(bytes.len()));
    }
    match bytes.first() {
        Some(&byte) if byte >> 4 == MESSAGE_VERSION => Ok(()),
        Some(&byte) => Err(MessageError::UnsupportedVersion(byte)),
        None => Err(MessageError::BadLength(0)),
    }
}

/// Hands a sender's chain key and public signing key to a group member
/// (`senderKeyDistributionMessage.axolotlSenderKeyDistributionMessage` in WhatsApp's Message).
///
/// It holds a chain key: its `Debug` shows only the key id, iteration and signing key, equality
/// is constant-time, and the chain key and the serialized bytes are zeroized on drop.
#[derive(Clone)]
pub struct SenderKeyDistributionMessage {
    key_id: u32,
    iteration: u32,
    chain_key: Zeroizing<[u8; 32]>,
    signing_key: PublicKey,
    serialized: Zeroizing<Vec<u8>>,
}

impl core::fmt::Debug for SenderKeyDistributionMessage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SenderKeyDistributionMessage")
            .field("key_id", &self.key_id)
            .field("iteration", &self.iteration)
            .field("signing_key", &self.signing_key)
            .finish_non_exhaustive()
    }
}

impl PartialEq for SenderKeyDistributionMessage {
    fn eq(&self, other: &Self) -> bool {
        // The serialized bytes carry every field.
        bool::from(subtle::ConstantTimeEq::ct_eq(
            self.serialized.as_slice(),
            other.serialized.as_slice(),
        ))
    }
}

impl Eq for SenderKeyDistributionMessage {}

impl SenderKeyDistributionMessage {
    fn new(key_id: u32, chain: &ChainKey, signing_key: PublicKey) -> SenderKeyDistributionMessage {
        let mut proto = wa::SenderKeyDistributionMessage {
            id: Some(key_id),
            iteration: Some(chain.index()),
            chain_key: Some(chain.key.to_vec()),
            signing_key: Some(signing_key.serialize().to_vec()),
        };
        let body = Zeroizing::new(proto.encode_to_vec());
        if let Some(key) = proto.chain_key.as_mut() {
            zeroize::Zeroize::zeroize(key);
        }
        let mut serialized = Zeroizing::new(Vec::with_capacity(1 + body.len()));
        serialized.push(VERSION_BYTE);
        serialized.extend_from_slice(&body);
        SenderKeyDistributionMessage {
            key_id,
            iteration: chain.index(),
            chain_key: Zeroizing::new(chain.key),
            signing_key,
            serialized,
        }
    }

    /// Parses a serialized distribution message. A signing key that cannot check signatures
    /// (small order, or not canonical: [`super::xeddsa::is_usable_public_key`]) is refused.
    pub fn deserialize(bytes: &[u8]) -> Result<SenderKeyDistributionMessage, MessageError> {
        check_version(bytes, 1)?;
        let body = bytes.get(1..).ok_or(MessageError::BadLength(bytes.len()))?;
        let mut proto = wa::SenderKeyDistributionMessage::decode(body)
            .map_err(|_| MessageError::BadProtobuf)?;
        let chain_key = Zeroizing::new(proto.chain_key.take().unwrap_or_default());
        let chain_key = <[u8; 32]>::try_from(chain_key.as_slice())
            .map(Zeroizing::new)
            .map_err(|_| MessageError::MissingField("chain_key"))?;
        let signing_key = proto
            .signing_key
            .ok_or(MessageError::MissingField("signing_key"))?;
        let signing_key = PublicKey::deserialize(&signing_key)
            .ok()
            .filter(|key| super::xeddsa::is_usable_public_key(key.raw()))
            .ok_or(MessageError::BadKey("signing_key"))?;
        Ok(SenderKeyDistributionMessage {
            key_id: proto.id.ok_or(MessageError::MissingField("id"))?,
            iteration: proto
                .iteration
                .ok_or(MessageError::MissingField("iteration"))?,
            chain_key,
            signing_key,
            serialized: Zeroizing::new(bytes.to_vec()),
        })
    }

    /// The sender-key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The chain's iteration at the time of distribution.
    pub fn iteration(&self) -> u32 {
        self.iteration
    }

    /// The sender's public signing key.
    pub fn signing_key(&self) -> &PublicKey {
        &self.signing_key
    }

    /// The bytes on the wire.
    pub fn serialize(&self) -> &[u8] {
        &self.serialized
    }
}

/// One sender-key chain.
#[derive(Clone)]
struct SenderKeyState {
    key_id: u32,
    chain: ChainKey,
    signing_public: PublicKey,
    signing_private: Option<PrivateKey>,
    /// `signing_private` prepared for signing, made at the first encrypt (not stored).
    signer: Option<SigningKey>,
    /// `signing_public` decoded for verifying, with its comb table (about 5.2 KB, see
    /// `PrecomputedVerifyingKey`), made at the first message that verified and decrypted (not
    /// stored). Shared, so the client's per-message copy of a record does not copy the table.
    verifier: Option<std::sync::Arc<PrecomputedVerifyingKey>>,
    /// Oldest first.
    skipped: VecDeque<MessageSeed>,
}

/// The sender-key chains of one sender in one group (ours, or a member's).
#[derive(Clone, Default)]
pub struct SenderKeyRecord {
    /// Oldest first; the last is the one we send with.
    states: VecDeque<SenderKeyState>,
}

impl core::fmt::Debug for SenderKeyRecord {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SenderKeyRecord")
            .field("states", &self.states.len())
            .finish()
    }
}

impl SenderKeyRecord {
    /// An empty record.
    pub fn new() -> SenderKeyRecord {
        SenderKeyRecord::default()
    }

    /// Whether the record holds no chain.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// The distribution message for our own chain, creating the chain (random key id, chain key
    /// and signing key) if the record has none of ours.
    pub fn create_distribution_message<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
    ) -> SenderKeyDistributionMessage {
        let own = self
            .states
            .back()
            .filter(|state| state.signing_private.is_some());
        if let Some(state) = own {
            return SenderKeyDistributionMessage::new(
                state.key_id,
                &state.chain,
                state.signing_public,
            );
        }
        let mut id = [0u8; 4];
        rng.fill_bytes(&mut id);
        // Baileys draws ids below 2^31 (`randomInt(2147483647)`); so does walink.
        let key_id = u32::from_be_bytes(id) & 0x7fff_ffff;
        let mut chain_key = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut *chain_key);
        let signing = KeyPair::generate(rng);
        let state = SenderKeyState {
            key_id,
            chain: ChainKey {
                key: *chain_key,
                index: 0,
            },
            signing_public: signing.public,
            signing_private: Some(signing.private),
            signer: None,
            verifier: None,
            skipped: VecDeque::new(),
        };
        let message = SenderKeyDistributionMessage::new(key_id, &state.chain, state.signing_public);
        self.states.clear();
        self.states.push_back(state);
        message
    }

    /// Adds a member's chain from its distribution message. A message for a chain we already
    /// hold with the same signing key changes nothing (it must not rewind the chain).
    pub fn process_distribution_message(&mut self, message: &SenderKeyDistributionMessage) {
        if self
            .states
            .iter()
            .any(|s| s.key_id == message.key_id && s.signing_public == message.signing_key)
        {
            return;
        }
        self.states.retain(|state| state.key_id != message.key_id);
        self.states.push_back(SenderKeyState {
            key_id: message.key_id,
            chain: ChainKey {
                key: *message.chain_key,
                index: message.iteration,
            },
            signing_public: message.signing_key,
            signing_private: None,
            signer: None,
            verifier: None,
            skipped: VecDeque::new(),
        });
        while self.states.len() > SIGNAL_SENDER_KEY_STATES {
            self.states.pop_front();
        }
    }

    /// Encrypts a group message with our chain and signs it.
    pub fn encrypt<R: CryptoRng + ?Sized>(
        &mut self,
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>, EncryptError> {
        let state = self.states.back_mut().ok_or(EncryptError::NoSession)?;
        let signing = state
            .signing_private
            .as_ref()
            .ok_or(EncryptError::NotOwnSenderKey)?;
        let signer = state
            .signer
            .get_or_insert_with(|| SigningKey::new(&signing.to_bytes()));
        if state.chain.index() == u32::MAX {
            return Err(EncryptError::ChainExhausted);
        }
        let (seed, next) = state.chain.step();
        let (iv, key) = seed.group_keys();
        let body = wa::SenderKeyMessage {
            id: Some(state.key_id),
            iteration: Some(state.chain.index()),
            ciphertext: Some(aes_cbc_encrypt(&key, &iv, plaintext)),
        }
        .encode_to_vec();
        let mut serialized = Vec::with_capacity(1 + body.len() + SIGNATURE_LEN);
        serialized.push(VERSION_BYTE);
        serialized.extend_from_slice(&body);
        let mut random = Zeroizing::new([0u8; 64]);
        rng.fill_bytes(&mut *random);
        let signature = signer.sign(&serialized, &random);
        serialized.extend_from_slice(&signature);
        state.chain = next;
        Ok(serialized)
    }

    /// Verifies and decrypts a group message. The record changes only on success.
    pub fn decrypt(&mut self, bytes: &[u8]) -> Result<Vec<u8>, DecryptError> {
        check_version(bytes, 1 + SIGNATURE_LEN)?;
        let split = bytes.len() - SIGNATURE_LEN;
        let (signed, signature) = bytes.split_at(split);
        let body = signed
            .get(1..)
            .ok_or(MessageError::BadLength(bytes.len()))?;
        let proto = wa::SenderKeyMessage::decode(body).map_err(|_| MessageError::BadProtobuf)?;
        let key_id = proto.id.ok_or(MessageError::MissingField("id"))?;
        let iteration = proto
            .iteration
            .ok_or(MessageError::MissingField("iteration"))?;
        let ciphertext = proto
            .ciphertext
            .ok_or(MessageError::MissingField("ciphertext"))?;
        let slot = self
            .states
            .iter_mut()
            .rev()
            .find(|state| state.key_id == key_id)
            .ok_or(DecryptError::NoSenderKey { key_id })?;
        let signature: &[u8; SIGNATURE_LEN] = signature
            .try_into()
            .map_err(|_| DecryptError::BadSignature)?;
        let public = slot.signing_public.raw();
        // A kept verifier checks with its comb table; otherwise the key is decoded and checks
        // the plain way, and its table is built only once the message decrypted (a forged
        // message never costs a table).
        let cached = slot
            .verifier
            .as_deref()
            .filter(|verifier| verifier.key().fits(public, signature));
        let fresh = match cached {
            Some(verifier) => {
                if !verifier.verify(signed, signature) {
                    return Err(DecryptError::BadSignature);
                }
                None
            }
            None => {
                let key = VerifyingKey::new(public, signature[63] >> 7)
                    .ok_or(DecryptError::BadSignature)?;
                if !key.verify(signed, signature) {
                    return Err(DecryptError::BadSignature);
                }
                Some(key)
            }
        };
        // The candidate is cloned without the verifier, which moves over only on success; a
        // failure below leaves the slot as it was.
        let kept = slot.verifier.take();
        let mut candidate = slot.clone();
        slot.verifier = kept;
        let seed = seed_for_counter(
            &mut candidate.chain,
            &mut candidate.skipped,
            iteration,
            SIGNAL_SENDER_KEY_MAX_FORWARD_JUMP,
            SIGNAL_SENDER_KEY_SKIPPED_KEYS,
        )?;
        let (iv, key) = seed.group_keys();
        let plaintext =
            aes_cbc_decrypt(&key, &iv, &ciphertext).ok_or(DecryptError::BadCiphertext)?;
        candidate.verifier = match fresh {
            Some(key) => Some(std::sync::Arc::new(PrecomputedVerifyingKey::new(key))),
            None => slot.verifier.take(),
        };
        *slot = candidate;
        Ok(plaintext)
    }

    /// The record in walink's storage encoding.
    pub fn serialize(&self) -> Vec<u8> {
        pb::SenderKeyRecord {
            format_version: Some(SENDER_KEY_RECORD_FORMAT),
            states: self
                .states
                .iter()
                .map(|state| pb::SenderKeyState {
                    key_id: Some(state.key_id),
                    iteration: Some(state.chain.index),
                    chain_key: Some(state.chain.key.to_vec()),
                    signing_public: Some(state.signing_public.serialize().to_vec()),
                    signing_private: state
                        .signing_private
                        .as_ref()
                        .map(|key| key.to_bytes().to_vec()),
                    skipped: seeds_to_pb(state.skipped.iter()),
                })
                .collect(),
        }
        .encode_to_vec()
    }

    /// Reads a record written by [`SenderKeyRecord::serialize`].
    pub fn deserialize(bytes: &[u8]) -> Result<SenderKeyRecord, RecordError> {
        if bytes.len() > SIGNAL_MAX_RECORD_LEN {
            return Err(RecordError::TooLarge);
        }
        check_bounds(bytes, &SENDER_KEY_RECORD_FIELDS)?;
        let record = pb::SenderKeyRecord::decode(bytes).map_err(|_| RecordError::BadProtobuf)?;
        match record.format_version {
            Some(SENDER_KEY_RECORD_FORMAT) => {}
            other => return Err(RecordError::UnsupportedFormat(other.unwrap_or(0))),
        }
        if record.states.len() > SIGNAL_SENDER_KEY_STATES {
            return Err(RecordError::TooMany("states"));
        }
        let states = record
            .states
            .iter()
            .map(|state| {
                let signing_private = state
                    .signing_private
                    .as_deref()
                    .map(|bytes| {
                        PrivateKey::deserialize(bytes)
                            .map_err(|_| RecordError::BadField("signing_private"))
                    })
                    .transpose()?;
                let signing_public = public_key(state.signing_public.as_deref(), "signing_public")?;
                Ok(SenderKeyState {
                    key_id: state.key_id.ok_or(RecordError::BadField("key_id"))?,
                    chain: ChainKey {
                        key: bytes32(state.chain_key.as_deref(), "chain_key")?,
                        index: state.iteration.ok_or(RecordError::BadField("iteration"))?,
                    },
                    signing_public,
                    signing_private,
                    signer: None,
                    verifier: None,
                    skipped: seeds_from_pb(&state.skipped, SIGNAL_SENDER_KEY_SKIPPED_KEYS)?,
                })
            })
            .collect::<Result<_, RecordError>>()?;
        Ok(SenderKeyRecord { states })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::signal::test_rng::TestRng;

    #[test]
    fn a_distribution_with_a_small_order_signing_key_is_refused() {
        let mut rng = TestRng::new(40);
        let good = SenderKeyRecord::new().create_distribution_message(&mut rng);
        let mut small_order = [0u8; 32];
        small_order[0] = 1;
        for signing in [[0u8; 32], small_order] {
            let body = wa::SenderKeyDistributionMessage {
                id: Some(good.key_id()),
                iteration: Some(0),
                chain_key: Some(vec![7; 32]),
                signing_key: Some(PublicKey::from_raw(signing).serialize().to_vec()),
            }
            .encode_to_vec();
            let mut bytes = vec![VERSION_BYTE];
            bytes.extend_from_slice(&body);
            assert_eq!(
                SenderKeyDistributionMessage::deserialize(&bytes),
                Err(MessageError::BadKey("signing_key"))
            );
        }
        assert_eq!(
            SenderKeyDistributionMessage::deserialize(good.serialize()).as_ref(),
            Ok(&good)
        );
    }

    /// A member keeping its record in memory checks every message after the first with the
    /// kept comb table; forged and tampered messages are refused on that path too and leave the
    /// record as it was.
    #[test]
    fn a_record_kept_in_memory_verifies_with_its_table() {
        let mut rng = TestRng::new(41);
        let mut sender = SenderKeyRecord::new();
        let distribution = sender.create_distribution_message(&mut rng);
        let mut member = SenderKeyRecord::new();
        member.process_distribution_message(&distribution);
        for i in 0u32..40 {
            let text = format!("group message {i}").into_bytes();
            let body = sender.encrypt(&text, &mut rng).unwrap();
            let before = member.serialize();
            let had_table = member.states.back().unwrap().verifier.is_some();
            assert_eq!(had_table, i > 0, "message {i}");
            for position in [1usize, body.len() - 40, body.len() - 1] {
                let mut tampered = body.clone();
                tampered[position] ^= 0x10;
                assert!(
                    member.decrypt(&tampered).is_err(),
                    "message {i} byte {position}"
                );
                assert_eq!(member.serialize(), before);
                assert_eq!(member.states.back().unwrap().verifier.is_some(), had_table);
            }
            // Another sender's signature over the same bytes.
            let mut forged = body.clone();
            let split = forged.len() - SIGNATURE_LEN;
            let other = SigningKey::new(&[i as u8 ^ 0x5f; 32]).sign(&forged[..split], &[7; 64]);
            forged[split..].copy_from_slice(&other);
            assert!(matches!(
                member.decrypt(&forged),
                Err(DecryptError::BadSignature)
            ));
            assert_eq!(member.serialize(), before);
            assert_eq!(member.decrypt(&body).unwrap(), text);
            assert!(member.states.back().unwrap().verifier.is_some());
            assert!(matches!(
                member.decrypt(&body),
                Err(DecryptError::DuplicateMessage { .. })
            ));
        }
    }
}
