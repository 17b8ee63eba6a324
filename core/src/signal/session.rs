//! One double-ratchet session with one remote device: X3DH set-up from either side, and the
//! encryption and decryption steps on a single state.
//!
//! X3DH (libsignal-node `src/session_builder.js` `initSession`; libsignal
//! rust/protocol/src/ratchet.rs): the master secret is 32 bytes of 0xFF followed by
//! DH(IK_A, SPK_B), DH(EK_A, IK_B), DH(EK_A, SPK_B) and, when the bundle had one,
//! DH(EK_A, OPK_B); HKDF-SHA256(salt = none, info = "WhisperText") gives the root key and a chain
//! key. Alice (the initiator) then takes one DH ratchet step against Bob's signed prekey with a
//! fresh ratchet key; Bob's first ratchet key is his signed prekey.

use std::collections::VecDeque;

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::crypto::{aes_cbc_decrypt, aes_cbc_encrypt, hkdf};
use super::error::{DecryptError, EncryptError};
use super::keys::{IdentityKey, IdentityKeyPair, KeyPair, PrivateKey, PublicKey};
use super::message::CiphertextMessage;
use super::message::{PreKeyId, PreKeySignalMessage, SignalMessage, SignedPreKeyId};
use super::ratchet::{ChainKey, MessageSeed, RootKey, seed_for_counter};
use crate::limits::{
    SIGNAL_MAX_FORWARD_JUMP, SIGNAL_RECEIVER_CHAINS, SIGNAL_SKIPPED_KEYS_PER_CHAIN,
};

/// The session version walink creates and accepts (libsignal's pre-Kyber v3).
pub(crate) const SESSION_VERSION: u32 = 3;

/// What the first messages of a session started from a bundle must carry, until the peer
/// answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PendingPreKey {
    pub(crate) pre_key_id: Option<PreKeyId>,
    pub(crate) signed_pre_key_id: SignedPreKeyId,
    pub(crate) base_key: PublicKey,
}

/// The sending half: our current ratchet key pair and its chain.
#[derive(Clone)]
pub(crate) struct SenderChain {
    pub(crate) ratchet: KeyPair,
    pub(crate) chain: ChainKey,
}

/// The sending half of a DH ratchet step taken on receipt, left until we next send: our fresh
/// ratchet private key and the peer's ratchet key it agrees with. While it is pending, the root
/// key is the one after the receiving half and `sender` still holds the chain we left.
///
/// A session we only receive on (most sessions a prekey message starts) never pays for this
/// half: its fixed-base multiplication and its X25519 agreement happen at the first encrypt.
/// The result is the same as libsignal's eager step: the private key is drawn at the same point.
#[derive(Clone)]
pub(crate) struct PendingRatchet {
    pub(crate) private: PrivateKey,
    pub(crate) their: PublicKey,
}

/// A receiving chain: the peer's ratchet key, its chain, and keys kept for skipped counters
/// (oldest first).
#[derive(Clone)]
pub(crate) struct ReceiverChain {
    pub(crate) ratchet: PublicKey,
    pub(crate) chain: ChainKey,
    pub(crate) skipped: VecDeque<MessageSeed>,
}

/// One session.
#[derive(Clone)]
pub(crate) struct SessionState {
    pub(crate) local_identity: IdentityKey,
    pub(crate) remote_identity: IdentityKey,
    pub(crate) root_key: RootKey,
    pub(crate) previous_counter: u32,
    pub(crate) sender: SenderChain,
    /// A DH ratchet step whose sending half is still to be taken.
    pub(crate) pending_ratchet: Option<PendingRatchet>,
    /// Oldest first, at most [`SIGNAL_RECEIVER_CHAINS`].
    pub(crate) receivers: Vec<ReceiverChain>,
    pub(crate) pending_pre_key: Option<PendingPreKey>,
    pub(crate) local_registration_id: u32,
    pub(crate) remote_registration_id: u32,
    /// Alice's X3DH base key: the session's name, shared by both sides.
    pub(crate) alice_base_key: PublicKey,
}

fn master_secret(dhs: &[&[u8; 32]]) -> (RootKey, ChainKey) {
    let mut secret = Zeroizing::new(Vec::with_capacity(32 * (1 + dhs.len())));
    secret.extend_from_slice(&[0xFF; 32]);
    for dh in dhs {
        secret.extend_from_slice(&dh[..]);
    }
    let okm = hkdf::<64>(None, &secret, b"WhisperText");
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

/// Alice's inputs to X3DH.
pub(crate) struct AliceParams<'a> {
    pub(crate) our_identity: &'a IdentityKeyPair,
    pub(crate) our_base_key: &'a KeyPair,
    pub(crate) their_identity: IdentityKey,
    pub(crate) their_signed_pre_key: PublicKey,
    pub(crate) their_one_time_pre_key: Option<PublicKey>,
    pub(crate) their_ratchet_key: PublicKey,
}

/// Bob's inputs to X3DH.
pub(crate) struct BobParams<'a> {
    pub(crate) our_identity: &'a IdentityKeyPair,
    pub(crate) our_signed_pre_key: &'a KeyPair,
    pub(crate) our_one_time_pre_key: Option<&'a KeyPair>,
    pub(crate) our_ratchet_key: &'a KeyPair,
    pub(crate) their_identity: IdentityKey,
    pub(crate) their_base_key: PublicKey,
}

impl SessionState {
    /// Alice's session after X3DH: a receiving chain on Bob's ratchet key and a sending chain
    /// from a fresh ratchet key.
    pub(crate) fn alice<R: CryptoRng + ?Sized>(
        params: &AliceParams<'_>,
        registration_ids: (u32, u32),
        rng: &mut R,
    ) -> SessionState {
        let identity = params.our_identity.private_key();
        let base = &params.our_base_key.private;
        let dh1 = identity.agree(&params.their_signed_pre_key);
        let dh2 = base.agree(&params.their_identity.0);
        let dh3 = base.agree(&params.their_signed_pre_key);
        let dh4 = params.their_one_time_pre_key.map(|key| base.agree(&key));
        let mut dhs: Vec<&[u8; 32]> = vec![&dh1, &dh2, &dh3];
        if let Some(dh4) = &dh4 {
            dhs.push(dh4);
        }
        let (root, chain) = master_secret(&dhs);
        let ratchet = KeyPair::generate(rng);
        let (root, sending) = root.create_chain(&params.their_ratchet_key, &ratchet.private);
        SessionState {
            local_identity: params.our_identity.identity_key(),
            remote_identity: params.their_identity,
            root_key: root,
            previous_counter: 0,
            sender: SenderChain {
                ratchet,
                chain: sending,
            },
            pending_ratchet: None,
            receivers: vec![ReceiverChain {
                ratchet: params.their_ratchet_key,
                chain,
                skipped: VecDeque::new(),
            }],
            pending_pre_key: None,
            local_registration_id: registration_ids.0,
            remote_registration_id: registration_ids.1,
            alice_base_key: params.our_base_key.public,
        }
    }

    /// Bob's session after X3DH: the sending chain on his ratchet key (his signed prekey).
    pub(crate) fn bob(params: &BobParams<'_>, registration_ids: (u32, u32)) -> SessionState {
        let identity = params.our_identity.private_key();
        let signed = &params.our_signed_pre_key.private;
        let dh1 = signed.agree(&params.their_identity.0);
        let dh2 = identity.agree(&params.their_base_key);
        let dh3 = signed.agree(&params.their_base_key);
        let dh4 = params
            .our_one_time_pre_key
            .map(|key| key.private.agree(&params.their_base_key));
        let mut dhs: Vec<&[u8; 32]> = vec![&dh1, &dh2, &dh3];
        if let Some(dh4) = &dh4 {
            dhs.push(dh4);
        }
        let (root, chain) = master_secret(&dhs);
        SessionState {
            local_identity: params.our_identity.identity_key(),
            remote_identity: params.their_identity,
            root_key: root,
            previous_counter: 0,
            sender: SenderChain {
                ratchet: params.our_ratchet_key.clone(),
                chain,
            },
            pending_ratchet: None,
            receivers: Vec::new(),
            pending_pre_key: None,
            local_registration_id: registration_ids.0,
            remote_registration_id: registration_ids.1,
            alice_base_key: params.their_base_key,
        }
    }

    /// Encrypts on the sending chain and advances it.
    pub(crate) fn encrypt(&mut self, plaintext: &[u8]) -> Result<CiphertextMessage, EncryptError> {
        self.finish_ratchet();
        let chain = &self.sender.chain;
        if chain.index() == u32::MAX {
            return Err(EncryptError::ChainExhausted);
        }
        let (seed, next) = chain.step();
        let keys = seed.keys();
        let ciphertext = aes_cbc_encrypt(&keys.cipher_key, &keys.iv, plaintext);
        let message = SignalMessage::new(
            &keys.mac_key,
            self.sender.ratchet.public,
            chain.index(),
            self.previous_counter,
            ciphertext,
            &self.local_identity,
            &self.remote_identity,
        );
        self.sender.chain = next;
        Ok(match &self.pending_pre_key {
            Some(pending) => CiphertextMessage::PreKey(PreKeySignalMessage::new(
                self.local_registration_id,
                pending.pre_key_id,
                pending.signed_pre_key_id,
                pending.base_key,
                self.local_identity,
                message,
            )),
            None => CiphertextMessage::Whisper(message),
        })
    }

    /// Whether this state already holds a receiving chain for the message's ratchet key.
    pub(crate) fn knows_ratchet_key(&self, key: &PublicKey) -> bool {
        self.receivers.iter().any(|chain| chain.ratchet == *key)
    }

    /// How many chain steps decrypting `message` on this state walks before its key: from the
    /// receiving chain's index to the counter, or from 0 on the chain a new ratchet key starts.
    pub(crate) fn steps_for(&self, message: &SignalMessage) -> u32 {
        match self
            .receivers
            .iter()
            .find(|chain| chain.ratchet == *message.ratchet_key())
        {
            Some(chain) => message.counter().saturating_sub(chain.chain.index()),
            None => message.counter(),
        }
    }

    /// Decrypts `message` on this state, changing it as it goes; the caller works on a copy
    /// and keeps it only on success.
    pub(crate) fn decrypt<R: CryptoRng + ?Sized>(
        &mut self,
        message: &SignalMessage,
        rng: &mut R,
    ) -> Result<Vec<u8>, DecryptError> {
        let their_key = *message.ratchet_key();
        let position = match self.receivers.iter().position(|c| c.ratchet == their_key) {
            Some(position) => position,
            None => self.ratchet_step(their_key, rng),
        };
        let receiver = self
            .receivers
            .get_mut(position)
            .ok_or(DecryptError::NoSession)?;
        let seed = seed_for_counter(
            &mut receiver.chain,
            &mut receiver.skipped,
            message.counter(),
            SIGNAL_MAX_FORWARD_JUMP,
            SIGNAL_SKIPPED_KEYS_PER_CHAIN,
        )?;
        let keys = seed.keys();
        if !message.verify_mac(&keys.mac_key, &self.remote_identity, &self.local_identity) {
            return Err(DecryptError::BadMac);
        }
        let plaintext = aes_cbc_decrypt(&keys.cipher_key, &keys.iv, message.ciphertext())
            .ok_or(DecryptError::BadCiphertext)?;
        self.pending_pre_key = None;
        Ok(plaintext)
    }

    /// A DH ratchet step on a new ratchet key from the peer: the receiving half now, the sending
    /// half left pending (see [`PendingRatchet`]); returns the new receiving chain's position.
    fn ratchet_step<R: CryptoRng + ?Sized>(&mut self, their_key: PublicKey, rng: &mut R) -> usize {
        // A second new key before we sent: the first step's sending half comes first.
        self.finish_ratchet();
        let (root, receiving) = self
            .root_key
            .create_chain(&their_key, &self.sender.ratchet.private);
        self.root_key = root;
        // The last counter used on the chain we leave (libsignal: max(index, 1) - 1); the peer
        // fills its receiving chain up to it (libsignal-node `maybeStepRatchet`).
        self.previous_counter = self.sender.chain.index().saturating_sub(1);
        self.pending_ratchet = Some(PendingRatchet {
            private: PrivateKey::generate(rng),
            their: their_key,
        });
        self.receivers.push(ReceiverChain {
            ratchet: their_key,
            chain: receiving,
            skipped: VecDeque::new(),
        });
        if self.receivers.len() > SIGNAL_RECEIVER_CHAINS {
            self.receivers.remove(0);
        }
        self.receivers.len() - 1
    }

    /// Takes the pending sending half of a ratchet step, if any: our new ratchet key pair and
    /// the sending chain from the root key.
    pub(crate) fn finish_ratchet(&mut self) {
        if let Some(pending) = self.pending_ratchet.take() {
            let ratchet = KeyPair::from_private(pending.private);
            let (root, sending) = self.root_key.create_chain(&pending.their, &ratchet.private);
            self.root_key = root;
            self.sender = SenderChain {
                ratchet,
                chain: sending,
            };
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::signal::keys::PrivateKey;

    fn pair(private_hex: &str) -> KeyPair {
        let bytes: [u8; 32] = hex::decode(private_hex).unwrap().try_into().unwrap();
        KeyPair::from_private(PrivateKey::from_bytes(bytes))
    }

    fn public(hex_33: &str) -> PublicKey {
        PublicKey::deserialize(&hex::decode(hex_33).unwrap()).unwrap()
    }

    /// libsignal rust/protocol/tests/ratchet.rs, `test_ratcheting_session_as_bob`.
    #[test]
    fn x3dh_as_bob_known_answer() {
        let bob_identity = IdentityKeyPair::from_private(
            pair("4875cc69ddf8ea0719ec947d61081135868d5fd801f02c0225e516df2156605e").private,
        );
        assert_eq!(
            hex::encode(bob_identity.identity_key().serialize()),
            "05f1f43874f6966956c2dd473f8fa15adeb71d1cb991b2341692324cefb1c5e626"
        );
        // The vector's ratchet and base key pairs are not consistent (their public halves do
        // not derive from the private halves), so those pairs are built from both halves as
        // given, as libsignal's `KeyPair::from_public_and_private` does.
        let bob_ephemeral = KeyPair {
            public: public("052cb49776b8770205745a3a6e24f579cdb4ba7a89041005928ebbadc9c05ad458"),
            private: pair("a1cab48f7c893fafa9880a28c3b4999d28d6329562d27a4ea4e22e9ff1bdd65a")
                .private,
        };
        let bob_signed = pair("583900131fb727998b7803fe6ac22cc591f342e4e42a8c8d5d78194209b8d253");
        assert_eq!(
            bob_signed.public,
            public("05ac248a8f263be6863576eb0362e28c828f0107a3379d34bab1586bf8c770cd67")
        );
        let state = SessionState::bob(
            &BobParams {
                our_identity: &bob_identity,
                our_signed_pre_key: &bob_signed,
                our_one_time_pre_key: None,
                our_ratchet_key: &bob_ephemeral,
                their_identity: IdentityKey(public(
                    "05b4a8455660ada65b401007f615e654041746432e3339c6875149bceefcb42b4a",
                )),
                their_base_key: public(
                    "05472d1fb1a9862c3af6beaca8920277e2b26f4a79213ec7c906aeb35e03cf8950",
                ),
            },
            (1, 2),
        );
        assert_eq!(
            hex::encode(state.sender.chain.key),
            "9797caca53c989bbe229a40ca7727010eb2604fc14945d77958a0aeda088b44d"
        );
    }

    /// libsignal rust/protocol/tests/ratchet.rs, `test_ratcheting_session_as_alice`.
    #[test]
    fn x3dh_as_alice_known_answer() {
        let alice_identity = IdentityKeyPair::from_private(
            pair("9040f0d4e09cf38f6dc7c13779c908c015a1da4fa78737a080eb0a6f4f5f8f58").private,
        );
        assert_eq!(
            hex::encode(alice_identity.identity_key().serialize()),
            "05b4a8455660ada65b401007f615e654041746432e3339c6875149bceefcb42b4a"
        );
        let alice_base = KeyPair {
            public: public("05472d1fb1a9862c3af6beaca8920277e2b26f4a79213ec7c906aeb35e03cf8950"),
            private: pair("11ae7c64d1e61cd596b76a0db5012673391cae66edbfcf073b4da80516a47449")
                .private,
        };
        let bob_ephemeral =
            public("052cb49776b8770205745a3a6e24f579cdb4ba7a89041005928ebbadc9c05ad458");
        let state = SessionState::alice(
            &AliceParams {
                our_identity: &alice_identity,
                our_base_key: &alice_base,
                their_identity: IdentityKey(public(
                    "05f1f43874f6966956c2dd473f8fa15adeb71d1cb991b2341692324cefb1c5e626",
                )),
                their_signed_pre_key: public(
                    "05ac248a8f263be6863576eb0362e28c828f0107a3379d34bab1586bf8c770cd67",
                ),
                their_one_time_pre_key: None,
                their_ratchet_key: bob_ephemeral,
            },
            (1, 2),
            &mut crate::signal::test_rng::TestRng::new(0),
        );
        let receiver = state
            .receivers
            .iter()
            .find(|c| c.ratchet == bob_ephemeral)
            .unwrap();
        assert_eq!(
            hex::encode(receiver.chain.key),
            "ab9be50e5cb22a925446ab90ee5670545f4fd32902459ec274b6ad0ae5d6031a"
        );
    }
}
