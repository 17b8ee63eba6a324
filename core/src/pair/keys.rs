//! The key types pairing works with: an X25519 key pair and the adv secret.

use std::fmt;

use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// A Curve25519 key pair (the identity key, or a link-code ephemeral key). The private half is
/// zeroized on drop and never printed.
#[derive(Clone)]
pub struct KeyPair {
    secret: StaticSecret,
    public: [u8; 32],
}

impl KeyPair {
    /// The key pair of a 32-byte private key (clamped as X25519 does).
    pub fn from_private(private: [u8; 32]) -> KeyPair {
        let private = Zeroizing::new(private);
        let secret = StaticSecret::from(*private);
        let public = PublicKey::from(&secret).to_bytes();
        KeyPair { secret, public }
    }

    /// The 32-byte public key, without the 0x05 type prefix.
    pub fn public(&self) -> &[u8; 32] {
        &self.public
    }

    /// The private key's bytes, for XEdDSA signing.
    pub(crate) fn private_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.secret.to_bytes())
    }

    /// X25519 with a peer's public key; `None` when the peer's key is of small order (the shared
    /// secret would be all zeros).
    pub(crate) fn agree(&self, peer: &[u8; 32]) -> Option<Zeroizing<[u8; 32]>> {
        let shared = self.secret.diffie_hellman(&PublicKey::from(*peer));
        shared
            .was_contributory()
            .then(|| Zeroizing::new(shared.to_bytes()))
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let public = &self.public;
        f.debug_struct("KeyPair")
            .field(
                "public",
                &format_args!(
                    "{:02x}{:02x}{:02x}{:02x}…",
                    public[0], public[1], public[2], public[3]
                ),
            )
            .finish_non_exhaustive()
    }
}

/// The 32-byte secret that keys the HMAC of `pair-success`: random and shown in the QR code, or
/// derived in `companion_finish` when pairing by code.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct AdvSecret([u8; 32]);

impl AdvSecret {
    /// Wraps 32 secret bytes.
    pub fn new(bytes: [u8; 32]) -> AdvSecret {
        AdvSecret(bytes)
    }

    /// The secret's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for AdvSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdvSecret(..)")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_secrets() {
        let pair = KeyPair::from_private([7; 32]);
        let text = format!("{pair:?} {:?}", AdvSecret::new([7; 32]));
        assert!(!text.contains("7, 7, 7"), "{text}");
    }

    #[test]
    fn agreement_is_symmetric_and_refuses_small_order_keys() {
        let alice = KeyPair::from_private([1; 32]);
        let bob = KeyPair::from_private([2; 32]);
        assert_eq!(alice.agree(bob.public()), bob.agree(alice.public()));
        assert!(alice.agree(&[0; 32]).is_none());
    }
}
