//! Signed prekeys, one-time prekeys and the bundle a peer fetches to start a session.
//!
//! The signed prekey's signature is XEdDSA by the identity key over the 33-byte serialized
//! prekey public key (libsignal-node `keyhelper.generateSignedPreKey`:
//! `calculateSignature(identityKeyPair.privKey, keyPair.pubKey)` with the 0x05-prefixed key).

use rand_core::CryptoRng;

use super::keys::{IdentityKey, IdentityKeyPair, KeyPair, PublicKey};
use super::message::{PreKeyId, SignedPreKeyId};
use super::xeddsa::SIGNATURE_LEN;

/// A signed prekey with its id and the identity's signature. Its `Debug` shows the id and the
/// public key.
#[derive(Clone)]
pub struct SignedPreKey {
    /// The id peers name it by.
    pub id: SignedPreKeyId,
    /// The key pair.
    pub key_pair: KeyPair,
    /// XEdDSA signature of the identity key over the serialized public key.
    pub signature: [u8; SIGNATURE_LEN],
}

impl core::fmt::Debug for SignedPreKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SignedPreKey")
            .field("id", &self.id)
            .field("public", &self.key_pair.public)
            .finish_non_exhaustive()
    }
}

impl SignedPreKey {
    /// Draws a fresh signed prekey and signs it with `identity`.
    pub fn generate<R: CryptoRng + ?Sized>(
        id: SignedPreKeyId,
        identity: &IdentityKeyPair,
        rng: &mut R,
    ) -> SignedPreKey {
        let key_pair = KeyPair::generate(rng);
        let signature = identity
            .private_key()
            .sign(&key_pair.public.serialize(), rng);
        SignedPreKey {
            id,
            key_pair,
            signature,
        }
    }
}

/// A one-time prekey with its id.
#[derive(Clone, Debug)]
pub struct PreKey {
    /// The id peers name it by.
    pub id: PreKeyId,
    /// The key pair.
    pub key_pair: KeyPair,
}

impl PreKey {
    /// Draws a fresh one-time prekey.
    pub fn generate<R: CryptoRng + ?Sized>(id: PreKeyId, rng: &mut R) -> PreKey {
        PreKey {
            id,
            key_pair: KeyPair::generate(rng),
        }
    }
}

/// What a peer publishes so that others can start sessions with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreKeyBundle {
    /// The peer's registration id.
    pub registration_id: u32,
    /// The peer's identity key.
    pub identity_key: IdentityKey,
    /// The signed prekey's id.
    pub signed_pre_key_id: SignedPreKeyId,
    /// The signed prekey.
    pub signed_pre_key: PublicKey,
    /// The identity's signature over the serialized signed prekey.
    pub signed_pre_key_signature: [u8; SIGNATURE_LEN],
    /// A one-time prekey, when the server still had one.
    pub pre_key: Option<(PreKeyId, PublicKey)>,
}

/// The local prekeys a prekey message may name, looked up by the caller's own means (the
/// client keeps them in memory). Nothing here does I/O.
pub trait PreKeySource {
    /// The signed prekey with this id, if it is still kept.
    fn signed_pre_key(&self, id: SignedPreKeyId) -> Option<KeyPair>;
    /// The one-time prekey with this id, if it has not been consumed.
    fn pre_key(&self, id: PreKeyId) -> Option<KeyPair>;
}
