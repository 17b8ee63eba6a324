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
        let public = self.public.as_bytes();
        f.debug_struct("NoiseKeyPair")
            .field(
                "public",
                &format_args!(
                    "{:02x}{:02x}{:02x}{:02x}…",
                    public[0], public[1], public[2], public[3]
                ),
            )
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use core::convert::Infallible;

    use rand_core::{TryCryptoRng, TryRng};

    use super::*;

    /// A counter posing as a CSPRNG: enough to show the key comes from the caller's RNG.
    struct CountingRng(u8);

    impl TryRng for CountingRng {
        type Error = Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Infallible> {
            let mut bytes = [0; 4];
            self.try_fill_bytes(&mut bytes)?;
            Ok(u32::from_le_bytes(bytes))
        }
        fn try_next_u64(&mut self) -> Result<u64, Infallible> {
            let mut bytes = [0; 8];
            self.try_fill_bytes(&mut bytes)?;
            Ok(u64::from_le_bytes(bytes))
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
            for byte in dst {
                self.0 = self.0.wrapping_add(1);
                *byte = self.0;
            }
            Ok(())
        }
    }

    impl TryCryptoRng for CountingRng {}

    #[test]
    fn generated_keys_come_from_the_callers_rng() {
        let first = EphemeralKey::generate(&mut CountingRng(0));
        let again = EphemeralKey::generate(&mut CountingRng(0));
        let other = EphemeralKey::generate(&mut CountingRng(100));
        assert_eq!(first.public_key(), again.public_key());
        assert_ne!(first.public_key(), other.public_key());
        let expected: [u8; 32] = core::array::from_fn(|i| (i + 1) as u8);
        let noise = NoiseKeyPair::generate(&mut CountingRng(0));
        assert_eq!(noise.private_key(), expected);
        assert_eq!(
            NoiseKeyPair::from_private(expected).public_key(),
            noise.public_key()
        );
    }

    #[test]
    fn debug_output_never_shows_private_keys() {
        let key = NoiseKeyPair::from_private([0xab; 32]);
        let shown = format!("{key:?} {:?}", EphemeralKey::from_private([0xab; 32]));
        assert!(shown.contains("<redacted>"));
        assert!(!shown.contains("171, 171"), "{shown}");
    }

    #[test]
    fn low_order_points_are_refused() {
        let key = NoiseKeyPair::from_private([0x42; 32]);
        assert!(diffie_hellman(key.secret(), &[0; 32]).is_none());
        assert!(diffie_hellman(key.secret(), &[1; 32]).is_some());
    }
}
