//! Curve25519 key newtypes: public keys with the 0x05 type prefix, zeroized private keys,
//! key pairs and identity keys.
//!
//! Every public key WhatsApp's Signal layer puts on the wire is 33 bytes: the type byte 0x05
//! (libsignal `DJB_TYPE`) followed by the 32-byte Montgomery u-coordinate (libsignal-node
//! `curve.js`, `KEY_BUNDLE_TYPE`). Signatures are XEdDSA (see [`super::xeddsa`]).

use core::fmt;

use curve25519_dalek::montgomery::MontgomeryPoint;
use rand_core::CryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::xeddsa;

/// The key type byte that prefixes a serialized Curve25519 public key.
pub const DJB_TYPE: u8 = 0x05;

/// Length of a serialized public key (type byte and 32 key bytes).
pub const PUBLIC_KEY_LEN: usize = 33;

/// Why bytes are not a key or a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The serialized public key is not 33 bytes starting with 0x05.
    #[error("public key is not 33 bytes with the 0x05 type prefix")]
    BadPublicKey,
    /// A private key is not 32 bytes.
    #[error("private key is not 32 bytes")]
    BadPrivateKey,
    /// A signature did not verify.
    #[error("signature does not verify")]
    BadSignature,
}

/// A Curve25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Wraps a raw 32-byte key (no type prefix).
    pub fn from_raw(raw: [u8; 32]) -> PublicKey {
        PublicKey(raw)
    }

    /// Reads a 33-byte key with the 0x05 prefix.
    pub fn deserialize(bytes: &[u8]) -> Result<PublicKey, KeyError> {
        match bytes.split_first() {
            Some((&DJB_TYPE, rest)) => rest
                .try_into()
                .map(PublicKey)
                .map_err(|_| KeyError::BadPublicKey),
            _ => Err(KeyError::BadPublicKey),
        }
    }

    /// The 33-byte form with the 0x05 prefix.
    pub fn serialize(&self) -> [u8; PUBLIC_KEY_LEN] {
        let mut out = [0u8; PUBLIC_KEY_LEN];
        out[0] = DJB_TYPE;
        out[1..].copy_from_slice(&self.0);
        out
    }

    /// The raw 32 key bytes.
    pub fn raw(&self) -> &[u8; 32] {
        &self.0
    }

    /// Checks an XEdDSA signature made by the private half of this key.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), KeyError> {
        let signature: &[u8; xeddsa::SIGNATURE_LEN] =
            signature.try_into().map_err(|_| KeyError::BadSignature)?;
        if xeddsa::verify(&self.0, message, signature) {
            Ok(())
        } else {
            Err(KeyError::BadSignature)
        }
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(")?;
        for byte in &self.0[..4] {
            write!(f, "{byte:02x}")?;
        }
        write!(f, "…)")
    }
}

/// A Curve25519 private key; zeroized on drop and redacted in `Debug`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PrivateKey([u8; 32]);

impl PrivateKey {
    /// Draws a fresh private key from `rng`.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> PrivateKey {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        PrivateKey(bytes)
    }

    /// Wraps 32 private key bytes (clamping happens when the key is used).
    pub fn from_bytes(bytes: [u8; 32]) -> PrivateKey {
        PrivateKey(bytes)
    }

    /// Reads a 32-byte private key.
    pub fn deserialize(bytes: &[u8]) -> Result<PrivateKey, KeyError> {
        bytes
            .try_into()
            .map(PrivateKey)
            .map_err(|_| KeyError::BadPrivateKey)
    }

    /// The 32 private key bytes, for storage.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0)
    }

    /// The matching public key (fixed-base multiplication, several times faster than the
    /// Montgomery ladder; the same result as X25519 with the base point).
    pub fn public_key(&self) -> PublicKey {
        PublicKey(MontgomeryPoint::mul_base_clamped(self.0).to_bytes())
    }

    /// X25519 agreement with `their` public key.
    pub fn agree(&self, their: &PublicKey) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(x25519_dalek::x25519(self.0, their.0))
    }

    /// Signs `message` with XEdDSA, drawing the 64 random bytes from `rng`.
    pub fn sign<R: CryptoRng + ?Sized>(
        &self,
        message: &[u8],
        rng: &mut R,
    ) -> [u8; xeddsa::SIGNATURE_LEN] {
        let mut random = Zeroizing::new([0u8; 64]);
        rng.fill_bytes(&mut *random);
        xeddsa::sign(&self.0, message, &random)
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

/// A Curve25519 key pair.
#[derive(Clone, Debug)]
pub struct KeyPair {
    /// The public half.
    pub public: PublicKey,
    /// The private half.
    pub private: PrivateKey,
}

impl KeyPair {
    /// Draws a fresh key pair from `rng`.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> KeyPair {
        KeyPair::from_private(PrivateKey::generate(rng))
    }

    /// The pair for a private key.
    pub fn from_private(private: PrivateKey) -> KeyPair {
        KeyPair {
            public: private.public_key(),
            private,
        }
    }
}

/// A device's long-term identity public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct IdentityKey(pub PublicKey);

impl IdentityKey {
    /// The 33-byte form with the 0x05 prefix.
    pub fn serialize(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.0.serialize()
    }

    /// Reads a 33-byte key with the 0x05 prefix.
    pub fn deserialize(bytes: &[u8]) -> Result<IdentityKey, KeyError> {
        PublicKey::deserialize(bytes).map(IdentityKey)
    }
}

/// A device's long-term identity key pair.
#[derive(Clone, Debug)]
pub struct IdentityKeyPair(KeyPair);

impl IdentityKeyPair {
    /// Draws a fresh identity from `rng`.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> IdentityKeyPair {
        IdentityKeyPair(KeyPair::generate(rng))
    }

    /// The identity for a stored private key.
    pub fn from_private(private: PrivateKey) -> IdentityKeyPair {
        IdentityKeyPair(KeyPair::from_private(private))
    }

    /// The public identity key.
    pub fn identity_key(&self) -> IdentityKey {
        IdentityKey(self.0.public)
    }

    /// The private key.
    pub fn private_key(&self) -> &PrivateKey {
        &self.0.private
    }

    /// The key pair.
    pub fn key_pair(&self) -> &KeyPair {
        &self.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn public_key_needs_the_type_prefix() {
        let key = PrivateKey::from_bytes([7; 32]).public_key();
        let bytes = key.serialize();
        assert_eq!(bytes[0], 0x05);
        assert_eq!(PublicKey::deserialize(&bytes), Ok(key));
        let mut wrong = bytes;
        wrong[0] = 0x04;
        assert_eq!(PublicKey::deserialize(&wrong), Err(KeyError::BadPublicKey));
        assert_eq!(
            PublicKey::deserialize(&bytes[1..]),
            Err(KeyError::BadPublicKey)
        );
        assert_eq!(PublicKey::deserialize(&[]), Err(KeyError::BadPublicKey));
    }

    #[test]
    fn debug_redacts_private_keys() {
        let key = PrivateKey::from_bytes([0xAB; 32]);
        assert!(!format!("{key:?}").contains("ab"));
    }

    #[test]
    fn public_key_equals_x25519_with_the_base_point() {
        for seed in 0u8..8 {
            let key = PrivateKey::from_bytes([seed.wrapping_mul(29).wrapping_add(3); 32]);
            let ladder = x25519_dalek::x25519(key.0, x25519_dalek::X25519_BASEPOINT_BYTES);
            assert_eq!(key.public_key().raw(), &ladder);
        }
    }

    fn bytes32(text: &str) -> [u8; 32] {
        hex::decode(text).unwrap().try_into().unwrap()
    }

    /// libsignal rust/core/src/curve/curve25519.rs, `test_agreement`.
    #[test]
    fn agreement_known_answer() {
        let alice = PrivateKey::from_bytes(bytes32(
            "c806439dc9d2c476ffed8f2580c0888d58ab406bf7ae3698879021b96bb4bf59",
        ));
        let bob = PrivateKey::from_bytes(bytes32(
            "b03b34c33a1c44f225b662d2bf4859b8135411fa7b0386d45fb75dc5b91b4466",
        ));
        let alice_public =
            bytes32("1bb75966f2e93a3691dfff942bb2a466a1c08b8d78ca3f4d6df8b8bfa2e4ee28");
        let bob_public =
            bytes32("653614993d2b15ee9e5fd3d86ce719ef4ec1daae1886a87b3f5fa9565a27a22f");
        assert_eq!(alice.public_key().raw(), &alice_public);
        assert_eq!(bob.public_key().raw(), &bob_public);
        let shared = "325f239328941ced6e673b86ba41017448e99b649a9c3806c1dd7ca4c477e629";
        assert_eq!(
            hex::encode(*alice.agree(&PublicKey::from_raw(bob_public))),
            shared
        );
        assert_eq!(
            hex::encode(*bob.agree(&PublicKey::from_raw(alice_public))),
            shared
        );
    }

    /// libsignal rust/core/src/curve/curve25519.rs, `test_signature`: an identity key's XEdDSA
    /// signature over a serialized (0x05-prefixed) public key; every one-bit change fails.
    #[test]
    fn signature_known_answer() {
        let identity = PrivateKey::from_bytes(bytes32(
            "c097248412e58bf05df487968205132794178e367637f5818f81e0e6ce73e865",
        ));
        let public = PublicKey::from_raw(bytes32(
            "ab7e717d4a163b7d9a1d8071dfe9dcf8cdcd1cea3339b6356be84d887e322c64",
        ));
        assert_eq!(identity.public_key(), public);
        let message =
            hex::decode("05edce9d9c415ca78cb7252e72c2c4a554d3eb29485a0e1d503118d1a82d99fb4a")
                .unwrap();
        let signature = hex::decode(
            "5de88ca9a89b4a115da79109c67c9c7464a3e4180274f1cb8c63c2984e286dfb\
             ede82deb9dcd9fae0bfbb821569b3d9001bd8130cd11d486cef047bd60b86e88",
        )
        .unwrap();
        assert_eq!(public.verify(&message, &signature), Ok(()));
        for i in 0..signature.len() {
            let mut changed = signature.clone();
            changed[i] ^= 0x01;
            assert_eq!(
                public.verify(&message, &changed),
                Err(KeyError::BadSignature),
                "byte {i}"
            );
        }
    }

    #[test]
    fn agreement_is_symmetric() {
        let a = KeyPair::from_private(PrivateKey::from_bytes([1; 32]));
        let b = KeyPair::from_private(PrivateKey::from_bytes([2; 32]));
        assert_eq!(*a.private.agree(&b.public), *b.private.agree(&a.public));
    }
}
