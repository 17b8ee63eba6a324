//! The two X25519 key pairs of the handshake: the long-term noise key and the per-connection
//! ephemeral key. Both zeroize their private half on drop and keep it out of `Debug`.

use core::fmt;

use rand_core::CryptoRng;
use x25519_dalek::{PublicKey, StaticSecret};

/// A raw 32-byte Curve25519 public key as it travels in the handshake.
pub type PublicKeyBytes = [u8; 32];

/// The device's long-term Noise static key pair (persisted with the device; its public half is
/// also in the QR code). The private scalar is zeroized on drop.
#[derive(Clone)]
pub struct NoiseKeyPair {
    secret: StaticSecret,
    public: PublicKey,
}

impl NoiseKeyPair {
    /// The key pair whose private key is `private` (X25519 clamps it when used).
    pub fn from_private(private: [u8; 32]) -> Self {
        let secret = StaticSecret::from(private);
        let public = PublicKey::from(&secret);
        NoiseKeyPair { secret, public }
    }

    /// A fresh key pair from the caller's cryptographic random number generator.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let secret = StaticSecret::random_from_rng(rng);
        let public = PublicKey::from(&secret);
        NoiseKeyPair { secret, public }
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKeyBytes {
        self.public.to_bytes()
    }

    /// The private key, for persisting the device.
    pub fn private_key(&self) -> [u8; 32] {
        self.secret.to_bytes()
    }

    pub(crate) fn secret(&self) -> &StaticSecret {
        &self.secret
    }
}

impl fmt::Debug for NoiseKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoiseKeyPair")
            .field("public", &self.public.as_bytes())
            .field("private", &"<redacted>")
            .finish()
    }
}

/// The ephemeral key pair of one connection: fresh for every connection, never stored. Tests
/// inject a fixed one; the client draws it from its CSPRNG.
pub struct EphemeralKey(NoiseKeyPair);

impl EphemeralKey {
    /// The ephemeral key whose private key is `private` (deterministic tests and vectors).
    pub fn from_private(private: [u8; 32]) -> Self {
        EphemeralKey(NoiseKeyPair::from_private(private))
    }

    /// A fresh ephemeral key from the caller's cryptographic random number generator.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        EphemeralKey(NoiseKeyPair::generate(rng))
    }

    /// The public key sent in ClientHello.
    pub fn public_key(&self) -> PublicKeyBytes {
        self.0.public_key()
    }

    pub(crate) fn secret(&self) -> &StaticSecret {
        self.0.secret()
    }
}

impl fmt::Debug for EphemeralKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EphemeralKey").field(&self.0).finish()
    }
}

/// X25519 of `secret` with `public`; `None` when the result is all zeros (a low-order public
/// key, which would make the shared secret known to anyone).
pub(crate) fn diffie_hellman(
    secret: &StaticSecret,
    public: &PublicKeyBytes,
) -> Option<zeroize::Zeroizing<[u8; 32]>> {
    let shared = secret.diffie_hellman(&PublicKey::from(*public));
    if shared.was_contributory() {
        Some(zeroize::Zeroizing::new(shared.to_bytes()))
    } else {
        None
    }
}
