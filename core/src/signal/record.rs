//! A session record: the current session with one remote device and up to
//! [`SIGNAL_ARCHIVED_SESSIONS`] previous ones, and the record's own storage encoding.
//!
//! Decryption is transactional, as in libsignal's `session_cipher.rs`: a message is decrypted on
//! a copy of a session state, and the copy replaces the state only when the MAC verified and the
//! ciphertext decrypted. On any error the record is exactly as it was.
//!
//! A message that decrypts with an archived session updates that session in place but does not
//! make it current (libsignal-node behaves so: `decryptWithSessions` tries every session and
//! keeps the open one; libsignal (Rust) promotes it instead). This keeps a session replaced by a
//! newer prekey message the one we send on, while late messages for the old one still decrypt.

use std::collections::VecDeque;

use prost::Message as _;
use rand_core::CryptoRng;

use super::error::{BundleError, DecryptError, EncryptError, RecordError};
use super::keys::{IdentityKey, IdentityKeyPair, KeyPair, PrivateKey, PublicKey};
use super::message::{
    CiphertextMessage, PreKeyId, PreKeySignalMessage, SignalMessage, SignedPreKeyId,
};
use super::prekey::{PreKeyBundle, PreKeySource};
use super::ratchet::{ChainKey, MessageSeed, RootKey};
use super::session::{
    AliceParams, BobParams, PendingPreKey, PendingRatchet, ReceiverChain, SESSION_VERSION,
    SenderChain, SessionState,
};
use crate::limits::{
    SIGNAL_ARCHIVED_SESSIONS, SIGNAL_MAX_CHAIN_STEPS_PER_MESSAGE, SIGNAL_MAX_RECORD_LEN,
    SIGNAL_RECEIVER_CHAINS, SIGNAL_SKIPPED_KEYS_PER_CHAIN,
};
use crate::proto::walink as pb;
use crate::proto_bounds::{self, Field};

/// The storage format version of [`SessionRecord::serialize`].
pub const SESSION_RECORD_FORMAT: u32 = 1;

/// All sessions with one remote device.
#[derive(Clone, Default)]
pub struct SessionRecord {
    current: Option<SessionState>,
    /// Newest first.
    previous: VecDeque<SessionState>,
}

impl core::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("has_current", &self.current.is_some())
            .field("previous", &self.previous.len())
            .finish()
    }
}

/// The result of decrypting a prekey message. Its `Debug` shows the plaintext's length only.
#[derive(Clone, PartialEq, Eq)]
pub struct PreKeyDecryption {
    /// The plaintext (still padded, for WhatsApp message content).
    pub plaintext: Vec<u8>,
    /// The one-time prekey this message consumed: the caller deletes it. `None` when the
    /// message used none, or when it belongs to a session set up by an earlier message.
    pub consumed_pre_key: Option<PreKeyId>,
}

impl core::fmt::Debug for PreKeyDecryption {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PreKeyDecryption")
            .field("plaintext_len", &self.plaintext.len())
            .field("consumed_pre_key", &self.consumed_pre_key)
            .finish()
    }
}

impl SessionRecord {
    /// An empty record.
    pub fn new() -> SessionRecord {
        SessionRecord::default()
    }

    /// Whether there is a current session to encrypt with.
    pub fn has_current_session(&self) -> bool {
        self.current.is_some()
    }

    /// How many archived sessions the record keeps.
    pub fn archived_sessions(&self) -> usize {
        self.previous.len()
    }

    /// The identity key of the remote device, from the current session.
    pub fn remote_identity(&self) -> Option<IdentityKey> {
        self.current.as_ref().map(|state| state.remote_identity)
    }

    /// The remote device's registration id, from the current session.
    pub fn remote_registration_id(&self) -> Option<u32> {
        self.current
            .as_ref()
            .map(|state| state.remote_registration_id)
    }

    /// Starts a session from a peer's prekey bundle (X3DH as Alice), after verifying the signed
    /// prekey's signature; the current session, if any, is archived.
    pub fn process_bundle<R: CryptoRng + ?Sized>(
        &mut self,
        bundle: &PreKeyBundle,
        our_identity: &IdentityKeyPair,
        our_registration_id: u32,
        rng: &mut R,
    ) -> Result<(), BundleError> {
        bundle
            .identity_key
            .0
            .verify(
                &bundle.signed_pre_key.serialize(),
                &bundle.signed_pre_key_signature,
            )
            .map_err(|_| BundleError::BadSignature)?;
        let base_key = KeyPair::generate(rng);
        let mut state = SessionState::alice(
            &AliceParams {
                our_identity,
                our_base_key: &base_key,
                their_identity: bundle.identity_key,
                their_signed_pre_key: bundle.signed_pre_key,
                their_one_time_pre_key: bundle.pre_key.map(|(_, key)| key),
                their_ratchet_key: bundle.signed_pre_key,
            },
            (our_registration_id, bundle.registration_id),
            rng,
        );
        state.pending_pre_key = Some(PendingPreKey {
            pre_key_id: bundle.pre_key.map(|(id, _)| id),
            signed_pre_key_id: bundle.signed_pre_key_id,
            base_key: base_key.public,
        });
        self.promote(state);
        Ok(())
    }

    /// Encrypts with the current session: a `pkmsg` until the peer has answered, a `msg` after.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<CiphertextMessage, EncryptError> {
        self.current
            .as_mut()
            .ok_or(EncryptError::NoSession)?
            .encrypt(plaintext)
    }

    /// Decrypts a `msg` (WhisperMessage) with the current or an archived session.
    pub fn decrypt_message<R: CryptoRng + ?Sized>(
        &mut self,
        bytes: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>, DecryptError> {
        let message = SignalMessage::deserialize(bytes)?;
        self.decrypt_parsed(&message, rng)
    }

    /// Decrypts a `pkmsg` (PreKeyWhisperMessage). A new base key sets up a new session as Bob
    /// (the current one is archived); a known base key decrypts with the session it set up.
    pub fn decrypt_pre_key_message<R: CryptoRng + ?Sized, P: PreKeySource + ?Sized>(
        &mut self,
        bytes: &[u8],
        our_identity: &IdentityKeyPair,
        our_registration_id: u32,
        pre_keys: &P,
        rng: &mut R,
    ) -> Result<PreKeyDecryption, DecryptError> {
        let message = PreKeySignalMessage::deserialize(bytes)?;
        let known = self.states().any(|state| {
            state.alice_base_key == *message.base_key()
                && state.remote_identity == *message.identity_key()
        });
        if known {
            let plaintext = self.decrypt_parsed(message.message(), rng)?;
            return Ok(PreKeyDecryption {
                plaintext,
                consumed_pre_key: None,
            });
        }
        let signed = pre_keys.signed_pre_key(message.signed_pre_key_id()).ok_or(
            DecryptError::MissingSignedPreKey(message.signed_pre_key_id()),
        )?;
        let one_time = match message.pre_key_id() {
            Some(id) => Some(
                pre_keys
                    .pre_key(id)
                    .ok_or(DecryptError::MissingPreKey(id))?,
            ),
            None => None,
        };
        let mut state = SessionState::bob(
            &BobParams {
                our_identity,
                our_signed_pre_key: &signed,
                our_one_time_pre_key: one_time.as_ref(),
                our_ratchet_key: &signed,
                their_identity: *message.identity_key(),
                their_base_key: *message.base_key(),
            },
            (our_registration_id, message.registration_id()),
        );
        let plaintext = state.decrypt(message.message(), rng)?;
        self.promote(state);
        Ok(PreKeyDecryption {
            plaintext,
            consumed_pre_key: message.pre_key_id(),
        })
    }

    fn states(&self) -> impl Iterator<Item = &SessionState> {
        self.current.iter().chain(self.previous.iter())
    }

    /// Makes `state` current and archives the one it replaces.
    fn promote(&mut self, state: SessionState) {
        if let Some(old) = self.current.replace(state) {
            self.previous.push_front(old);
            self.previous.truncate(SIGNAL_ARCHIVED_SESSIONS);
        }
    }

    fn decrypt_parsed<R: CryptoRng + ?Sized>(
        &mut self,
        message: &SignalMessage,
        rng: &mut R,
    ) -> Result<Vec<u8>, DecryptError> {
        if self.current.is_none() && self.previous.is_empty() {
            return Err(DecryptError::NoSession);
        }
        // The error to report: from the session that knows the message's ratchet key if one
        // does (a replay, a jump too far), else from the current session.
        let mut reported: Option<(bool, DecryptError)> = None;
        // The sessions that know the message's ratchet key first (it belongs to one of them),
        // then the others, newest first; the chain steps walked over all of them are bounded,
        // so a forged message cannot walk every archived session up to the forward limit.
        let knows: Vec<bool> = self
            .states()
            .map(|state| state.knows_ratchet_key(message.ratchet_key()))
            .collect();
        let order = (0..knows.len())
            .filter(|&i| knows.get(i) == Some(&true))
            .chain((0..knows.len()).filter(|&i| knows.get(i) == Some(&false)));
        let mut budget = SIGNAL_MAX_CHAIN_STEPS_PER_MESSAGE;
        for at in order {
            let Some(state) = self
                .current
                .iter_mut()
                .chain(self.previous.iter_mut())
                .nth(at)
            else {
                continue;
            };
            let knows = knows.get(at) == Some(&true);
            let steps = state.steps_for(message);
            if steps > budget {
                if reported.is_none() {
                    reported = Some((
                        knows,
                        DecryptError::TooFarAhead {
                            counter: message.counter(),
                            index: message.counter().saturating_sub(steps),
                        },
                    ));
                }
                continue;
            }
            budget -= steps;
            let mut candidate = state.clone();
            match candidate.decrypt(message, rng) {
                Ok(plaintext) => {
                    *state = candidate;
                    return Ok(plaintext);
                }
                Err(error) => {
                    let better = match &reported {
                        None => true,
                        Some((known, _)) => knows && !known,
                    };
                    if better {
                        reported = Some((knows, error));
                    }
                }
            }
        }
        Err(reported.map_or(DecryptError::NoSession, |(_, error)| error))
    }

    /// The record in walink's storage encoding.
    pub fn serialize(&self) -> Vec<u8> {
        pb::SessionRecord {
            format_version: Some(SESSION_RECORD_FORMAT),
            current: self.current.as_ref().map(state_to_pb),
            previous: self.previous.iter().map(state_to_pb).collect(),
        }
        .encode_to_vec()
    }

    /// Reads a record written by [`SessionRecord::serialize`].
    pub fn deserialize(bytes: &[u8]) -> Result<SessionRecord, RecordError> {
        if bytes.len() > SIGNAL_MAX_RECORD_LEN {
            return Err(RecordError::TooLarge);
        }
        check_bounds(bytes, &SESSION_RECORD_FIELDS)?;
        let record = pb::SessionRecord::decode(bytes).map_err(|_| RecordError::BadProtobuf)?;
        match record.format_version {
            Some(SESSION_RECORD_FORMAT) => {}
            other => return Err(RecordError::UnsupportedFormat(other.unwrap_or(0))),
        }
        if record.previous.len() > SIGNAL_ARCHIVED_SESSIONS {
            return Err(RecordError::TooMany("previous"));
        }
        Ok(SessionRecord {
            current: record.current.as_ref().map(state_from_pb).transpose()?,
            previous: record
                .previous
                .iter()
                .map(state_from_pb)
                .collect::<Result<_, _>>()?,
        })
    }
}

/// Sessions a record holds at most: the current one and the archived ones.
const MAX_STATES: usize = SIGNAL_ARCHIVED_SESSIONS + 1;
/// Chains a record holds at most: per session, the sending one and the receiving ones.
const MAX_CHAINS: usize = MAX_STATES * (SIGNAL_RECEIVER_CHAINS + 1);

/// A chain's skipped message keys, counted over the whole record before it is decoded.
static CHAIN_FIELDS: [Field; 1] = [Field {
    number: 5,
    max: MAX_CHAINS * SIGNAL_SKIPPED_KEYS_PER_CHAIN,
    size: size_of::<pb::SkippedMessageKey>() + size_of::<MessageSeed>(),
    fields: &[],
}];
/// A session's chains.
static STATE_FIELDS: [Field; 2] = [
    Field {
        number: 6,
        max: usize::MAX,
        size: 0,
        fields: &CHAIN_FIELDS,
    },
    Field {
        number: 7,
        max: MAX_STATES * SIGNAL_RECEIVER_CHAINS,
        size: size_of::<pb::Chain>() + size_of::<ReceiverChain>(),
        fields: &CHAIN_FIELDS,
    },
];
/// A record's sessions.
static SESSION_RECORD_FIELDS: [Field; 2] = [
    Field {
        number: 2,
        max: usize::MAX,
        size: 0,
        fields: &STATE_FIELDS,
    },
    Field {
        number: 3,
        max: SIGNAL_ARCHIVED_SESSIONS,
        size: size_of::<pb::SessionState>() + size_of::<SessionState>(),
        fields: &STATE_FIELDS,
    },
];

/// Counts a stored record's lists (`fields`) and charges their memory to its decode budget
/// before it is decoded.
pub(crate) fn check_bounds(bytes: &[u8], fields: &'static [Field]) -> Result<(), RecordError> {
    proto_bounds::check(bytes, fields).map_err(RecordError::from)
}

pub(crate) fn seeds_to_pb<'a>(
    seeds: impl Iterator<Item = &'a MessageSeed>,
) -> Vec<pb::SkippedMessageKey> {
    seeds
        .map(|seed| pb::SkippedMessageKey {
            counter: Some(seed.counter),
            seed: Some(seed.seed.to_vec()),
        })
        .collect()
}

pub(crate) fn seeds_from_pb(
    keys: &[pb::SkippedMessageKey],
    limit: usize,
) -> Result<VecDeque<MessageSeed>, RecordError> {
    if keys.len() > limit {
        return Err(RecordError::TooMany("skipped"));
    }
    keys.iter()
        .map(|key| {
            Ok(MessageSeed {
                counter: key
                    .counter
                    .ok_or(RecordError::BadField("skipped.counter"))?,
                seed: bytes32(key.seed.as_deref(), "skipped.seed")?,
            })
        })
        .collect()
}

pub(crate) fn bytes32(bytes: Option<&[u8]>, field: &'static str) -> Result<[u8; 32], RecordError> {
    bytes
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(RecordError::BadField(field))
}

pub(crate) fn public_key(
    bytes: Option<&[u8]>,
    field: &'static str,
) -> Result<PublicKey, RecordError> {
    PublicKey::deserialize(bytes.unwrap_or_default()).map_err(|_| RecordError::BadField(field))
}

fn state_to_pb(state: &SessionState) -> pb::SessionState {
    pb::SessionState {
        session_version: Some(SESSION_VERSION),
        local_identity: Some(state.local_identity.serialize().to_vec()),
        remote_identity: Some(state.remote_identity.serialize().to_vec()),
        root_key: Some(state.root_key.0.to_vec()),
        previous_counter: Some(state.previous_counter),
        sender_chain: Some(pb::Chain {
            ratchet_public: Some(state.sender.ratchet.public.serialize().to_vec()),
            ratchet_private: Some(state.sender.ratchet.private.to_bytes().to_vec()),
            chain_key: Some(state.sender.chain.key.to_vec()),
            index: Some(state.sender.chain.index),
            skipped: Vec::new(),
        }),
        receiver_chains: state
            .receivers
            .iter()
            .map(|receiver| pb::Chain {
                ratchet_public: Some(receiver.ratchet.serialize().to_vec()),
                ratchet_private: None,
                chain_key: Some(receiver.chain.key.to_vec()),
                index: Some(receiver.chain.index),
                skipped: seeds_to_pb(receiver.skipped.iter()),
            })
            .collect(),
        pending_pre_key: state
            .pending_pre_key
            .as_ref()
            .map(|pending| pb::PendingPreKey {
                pre_key_id: pending.pre_key_id.map(|id| id.0),
                signed_pre_key_id: Some(pending.signed_pre_key_id.0),
                base_key: Some(pending.base_key.serialize().to_vec()),
            }),
        local_registration_id: Some(state.local_registration_id),
        remote_registration_id: Some(state.remote_registration_id),
        alice_base_key: Some(state.alice_base_key.serialize().to_vec()),
        pending_ratchet: state
            .pending_ratchet
            .as_ref()
            .map(|pending| pb::PendingRatchet {
                ratchet_private: Some(pending.private.to_bytes().to_vec()),
                their_ratchet_public: Some(pending.their.serialize().to_vec()),
            }),
    }
}

fn state_from_pb(state: &pb::SessionState) -> Result<SessionState, RecordError> {
    if state.session_version != Some(SESSION_VERSION) {
        return Err(RecordError::BadField("session_version"));
    }
    let sender = state
        .sender_chain
        .as_ref()
        .ok_or(RecordError::BadField("sender_chain"))?;
    // Both halves are read as stored (walink wrote them); deriving the public half again would
    // cost a scalar multiplication on every load.
    let sender_ratchet = KeyPair {
        public: public_key(
            sender.ratchet_public.as_deref(),
            "sender_chain.ratchet_public",
        )?,
        private: PrivateKey::from_bytes(bytes32(
            sender.ratchet_private.as_deref(),
            "sender_chain.ratchet_private",
        )?),
    };
    if state.receiver_chains.len() > SIGNAL_RECEIVER_CHAINS {
        return Err(RecordError::TooMany("receiver_chains"));
    }
    let receivers = state
        .receiver_chains
        .iter()
        .map(|chain| {
            Ok(ReceiverChain {
                ratchet: public_key(chain.ratchet_public.as_deref(), "receiver.ratchet_public")?,
                chain: ChainKey {
                    key: bytes32(chain.chain_key.as_deref(), "receiver.chain_key")?,
                    index: chain.index.ok_or(RecordError::BadField("receiver.index"))?,
                },
                skipped: seeds_from_pb(&chain.skipped, SIGNAL_SKIPPED_KEYS_PER_CHAIN)?,
            })
        })
        .collect::<Result<Vec<_>, RecordError>>()?;
    let pending_pre_key = state
        .pending_pre_key
        .as_ref()
        .map(|pending| {
            Ok::<_, RecordError>(PendingPreKey {
                pre_key_id: pending.pre_key_id.map(PreKeyId),
                signed_pre_key_id: SignedPreKeyId(
                    pending
                        .signed_pre_key_id
                        .ok_or(RecordError::BadField("pending.signed_pre_key_id"))?,
                ),
                base_key: public_key(pending.base_key.as_deref(), "pending.base_key")?,
            })
        })
        .transpose()?;
    let pending_ratchet = state
        .pending_ratchet
        .as_ref()
        .map(|pending| {
            Ok::<_, RecordError>(PendingRatchet {
                private: PrivateKey::from_bytes(bytes32(
                    pending.ratchet_private.as_deref(),
                    "pending_ratchet.ratchet_private",
                )?),
                their: public_key(
                    pending.their_ratchet_public.as_deref(),
                    "pending_ratchet.their_ratchet_public",
                )?,
            })
        })
        .transpose()?;
    Ok(SessionState {
        local_identity: IdentityKey(public_key(
            state.local_identity.as_deref(),
            "local_identity",
        )?),
        remote_identity: IdentityKey(public_key(
            state.remote_identity.as_deref(),
            "remote_identity",
        )?),
        root_key: RootKey(bytes32(state.root_key.as_deref(), "root_key")?),
        previous_counter: state.previous_counter.unwrap_or(0),
        sender: SenderChain {
            ratchet: sender_ratchet,
            chain: ChainKey {
                key: bytes32(sender.chain_key.as_deref(), "sender_chain.chain_key")?,
                index: sender
                    .index
                    .ok_or(RecordError::BadField("sender_chain.index"))?,
            },
        },
        pending_ratchet,
        receivers,
        pending_pre_key,
        local_registration_id: state.local_registration_id.unwrap_or(0),
        remote_registration_id: state.remote_registration_id.unwrap_or(0),
        alice_base_key: public_key(state.alice_base_key.as_deref(), "alice_base_key")?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::signal::prekey::{PreKey, SignedPreKey};
    use crate::signal::test_rng::TestRng;

    struct Keys {
        signed: SignedPreKey,
        one_time: PreKey,
    }

    impl PreKeySource for Keys {
        fn signed_pre_key(&self, id: SignedPreKeyId) -> Option<KeyPair> {
            (id == self.signed.id).then(|| self.signed.key_pair.clone())
        }
        fn pre_key(&self, id: PreKeyId) -> Option<KeyPair> {
            (id == self.one_time.id).then(|| self.one_time.key_pair.clone())
        }
    }

    /// Bob's record after Alice's first message: the ratchet step's sending half is pending,
    /// survives storage, and is taken at Bob's first encrypt with the key drawn at receipt.
    #[test]
    fn the_sending_half_of_a_ratchet_step_waits_for_the_first_encrypt() {
        let mut rng = TestRng::new(7);
        let alice_identity = IdentityKeyPair::generate(&mut rng);
        let bob_identity = IdentityKeyPair::generate(&mut rng);
        let keys = Keys {
            signed: SignedPreKey::generate(SignedPreKeyId(1), &bob_identity, &mut rng),
            one_time: PreKey::generate(PreKeyId(9), &mut rng),
        };
        let bundle = PreKeyBundle {
            registration_id: 2,
            identity_key: bob_identity.identity_key(),
            signed_pre_key_id: keys.signed.id,
            signed_pre_key: keys.signed.key_pair.public,
            signed_pre_key_signature: keys.signed.signature,
            pre_key: Some((keys.one_time.id, keys.one_time.key_pair.public)),
        };
        let mut alice = SessionRecord::new();
        alice
            .process_bundle(&bundle, &alice_identity, 1, &mut rng)
            .unwrap();
        let first = alice.encrypt(b"first").unwrap();
        let mut bob = SessionRecord::new();
        let decrypted = bob
            .decrypt_pre_key_message(first.serialize(), &bob_identity, 2, &keys, &mut rng)
            .unwrap();
        assert_eq!(decrypted.plaintext, b"first");
        let state = bob.current.as_ref().unwrap();
        let pending = state.pending_ratchet.as_ref().unwrap();
        let next_ratchet = pending.private.public_key();
        assert_eq!(state.sender.ratchet.public, keys.signed.key_pair.public);

        // Stored and loaded while pending: byte-identical, still pending.
        let stored = bob.serialize();
        let mut bob = SessionRecord::deserialize(&stored).unwrap();
        assert_eq!(bob.serialize(), stored);
        assert!(bob.current.as_ref().unwrap().pending_ratchet.is_some());

        // A second message on Alice's chain decrypts without taking the step.
        let second = alice.encrypt(b"second").unwrap();
        assert_eq!(
            bob.decrypt_pre_key_message(second.serialize(), &bob_identity, 2, &keys, &mut rng)
                .unwrap()
                .plaintext,
            b"second"
        );
        assert!(bob.current.as_ref().unwrap().pending_ratchet.is_some());

        let reply = bob.encrypt(b"reply").unwrap();
        let reply_key = match &reply {
            CiphertextMessage::Whisper(message) => Some(*message.ratchet_key()),
            CiphertextMessage::PreKey(_) => None,
        };
        assert_eq!(reply_key, Some(next_ratchet));
        let state = bob.current.as_ref().unwrap();
        assert!(state.pending_ratchet.is_none());
        assert_eq!(state.sender.ratchet.public, next_ratchet);
        assert_eq!(
            alice.decrypt_message(reply.serialize(), &mut rng).unwrap(),
            b"reply"
        );
        let answer = alice.encrypt(b"answer").unwrap();
        assert_eq!(
            bob.decrypt_message(answer.serialize(), &mut rng).unwrap(),
            b"answer"
        );
    }

    /// A forged message (a ratchet key no session knows, a counter just under the forward
    /// limit) against a record with every archived slot filled walks at most
    /// `SIGNAL_MAX_CHAIN_STEPS_PER_MESSAGE` chain steps in all, instead of walking each of the
    /// 41 sessions up to the limit; it changes nothing, and the oldest archived session still
    /// decrypts a genuine message.
    #[test]
    fn a_forged_message_walks_a_bounded_number_of_chain_steps() {
        use crate::limits::SIGNAL_MAX_FORWARD_JUMP;
        use crate::signal::ratchet::CHAIN_STEPS;
        use crate::signal::testing::{ALICE_REGISTRATION, BOB_REGISTRATION, BenchRng, Bob};
        let mut rng = BenchRng(11);
        let alice_identity = IdentityKeyPair::generate(&mut rng);
        let sessions = SIGNAL_ARCHIVED_SESSIONS as u32 + 1;
        let bob = Bob::new(&mut rng, sessions);
        let mut record = SessionRecord::new();
        let mut alices = Vec::new();
        for i in 0..sessions {
            let mut alice = SessionRecord::new();
            alice
                .process_bundle(
                    &bob.bundle(i),
                    &alice_identity,
                    ALICE_REGISTRATION,
                    &mut rng,
                )
                .unwrap();
            let first = alice.encrypt(b"hello").unwrap();
            record
                .decrypt_pre_key_message(
                    first.serialize(),
                    &bob.identity,
                    BOB_REGISTRATION,
                    &bob,
                    &mut rng,
                )
                .unwrap();
            alices.push(alice);
        }
        assert_eq!(record.archived_sessions(), SIGNAL_ARCHIVED_SESSIONS);
        let (mut mallory, _) =
            crate::signal::testing::established(&mut rng, &alice_identity).unwrap();
        let mut forged = mallory.encrypt(b"x").unwrap();
        for _ in 1..SIGNAL_MAX_FORWARD_JUMP {
            forged = mallory.encrypt(b"x").unwrap();
        }
        let before = record.serialize();
        CHAIN_STEPS.with(|steps| steps.set(0));
        let error = record
            .decrypt_message(forged.serialize(), &mut rng)
            .unwrap_err();
        let steps = CHAIN_STEPS.with(|steps| steps.get());
        assert!(
            steps <= u64::from(SIGNAL_MAX_CHAIN_STEPS_PER_MESSAGE),
            "{steps} chain steps for one forged message ({error:?})"
        );
        assert_eq!(record.serialize(), before);
        let oldest = alices.first_mut().unwrap();
        let genuine = oldest.encrypt(b"late").unwrap();
        let decrypted = record
            .decrypt_pre_key_message(
                genuine.serialize(),
                &bob.identity,
                BOB_REGISTRATION,
                &bob,
                &mut rng,
            )
            .unwrap();
        assert_eq!(decrypted.plaintext, b"late");
    }
}
