//! XEdDSA: Ed25519-style signatures made and checked with Curve25519 (Montgomery) keys.
//!
//! WhatsApp signs everything this way: signed prekeys, server certificates, ADV account and device
//! signatures, sender-key messages. The scheme is Signal's original `curve25519_sign`, which carries
//! the sign bit of the Edwards public key in the top bit of the signature's last byte; libsignal's
//! `calculate_signature` / `verify_signature` produce and accept the same bytes.

use curve25519_dalek::constants::ED25519_BASEPOINT_TABLE;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::{Scalar, clamp_integer};
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// Length of an XEdDSA signature.
pub const SIGNATURE_LEN: usize = 64;

/// Signs `message` with a Curve25519 private key.
///
/// `random` must be 64 fresh random bytes; with fixed bytes the signature is deterministic, which
/// known-answer tests use.
pub fn sign(private_key: &[u8; 32], message: &[u8], random: &[u8; 64]) -> [u8; SIGNATURE_LEN] {
    SigningKey::new(private_key).sign(message, random)
}

/// A private key prepared for signing many messages: its clamped scalar and its Edwards public
/// key are computed once, where [`sign`] spends a fixed-base multiplication on them each time
/// (a sender-key chain signs every group message with one key). Zeroized on drop.
#[derive(Clone)]
pub struct SigningKey {
    key: Zeroizing<[u8; 32]>,
    a: Scalar,
    public: CompressedEdwardsY,
}

impl Drop for SigningKey {
    fn drop(&mut self) {
        self.a.zeroize();
    }
}

impl core::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

impl SigningKey {
    /// Prepares a Curve25519 private key for signing.
    pub fn new(private_key: &[u8; 32]) -> SigningKey {
        let key = Zeroizing::new(clamp_integer(*private_key));
        let a = Scalar::from_bytes_mod_order(*key);
        let public = (&a * ED25519_BASEPOINT_TABLE).compress();
        SigningKey { key, a, public }
    }

    /// Signs `message`; `random` as for [`sign`].
    pub fn sign(&self, message: &[u8], random: &[u8; 64]) -> [u8; SIGNATURE_LEN] {
        let sign_bit = self.public.as_bytes()[31] & 0x80;
        let mut nonce_hash = Sha512::new();
        nonce_hash.update([0xFE; 1]);
        nonce_hash.update([0xFF; 31]);
        nonce_hash.update(*self.key);
        nonce_hash.update(message);
        nonce_hash.update(random);
        let r = Zeroizing::new(Scalar::from_hash(nonce_hash));
        let big_r = (&*r * ED25519_BASEPOINT_TABLE).compress();

        let h = challenge(big_r.as_bytes(), self.public.as_bytes(), message);
        let s = h * self.a + *r;

        let mut signature = [0u8; SIGNATURE_LEN];
        signature[..32].copy_from_slice(big_r.as_bytes());
        signature[32..].copy_from_slice(s.as_bytes());
        signature[63] = (signature[63] & 0x7F) | sign_bit;
        signature
    }
}

/// Checks an XEdDSA signature over `message` against a Curve25519 public key (32 bytes, without
/// the 0x05 type prefix). Returns `false` for any malformed key or signature.
pub fn verify(public_key: &[u8; 32], message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
    VerifyingKey::new(public_key, signature[63] >> 7)
        .is_some_and(|key| key.verify(message, signature))
}

/// A Curve25519 public key decoded for checking many signatures: the Edwards point for one sign
/// bit and its encoding, where [`verify`] spends a field inversion, a square root and another
/// inversion on them each time (a group member checks every message of a sender with one key).
#[derive(Clone, Debug)]
pub struct VerifyingKey {
    montgomery: [u8; 32],
    sign_bit: u8,
    /// The negated Edwards point: verification computes `s·B − h·A`.
    minus_a: EdwardsPoint,
    compressed: CompressedEdwardsY,
}

impl VerifyingKey {
    /// Decodes `public_key` as the Edwards point with sign bit `sign_bit` (the top bit of a
    /// signature's last byte); `None` when it is not a point.
    pub fn new(public_key: &[u8; 32], sign_bit: u8) -> Option<VerifyingKey> {
        let big_a = MontgomeryPoint(*public_key).to_edwards(sign_bit & 1)?;
        Some(VerifyingKey {
            montgomery: *public_key,
            sign_bit: sign_bit & 1,
            minus_a: -big_a,
            compressed: big_a.compress(),
        })
    }

    /// Whether this key was decoded from `public_key` for the sign bit `signature` carries:
    /// only then can it check `signature`.
    pub fn fits(&self, public_key: &[u8; 32], signature: &[u8; SIGNATURE_LEN]) -> bool {
        self.sign_bit == signature[63] >> 7 && self.montgomery == *public_key
    }

    /// Checks `signature` over `message`. A signature whose sign bit differs from the one this
    /// key was decoded with does not verify.
    pub fn verify(&self, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
        if signature[63] >> 7 != self.sign_bit {
            return false;
        }
        let mut big_r = [0u8; 32];
        big_r.copy_from_slice(&signature[..32]);
        let mut s = [0u8; 32];
        s.copy_from_slice(&signature[32..]);
        s[31] &= 0x7F;
        // Reject a non-canonical s (libsignal refuses the top three bits).
        if s[31] & 0xE0 != 0 {
            return false;
        }
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s)) else {
            return false;
        };
        let h = challenge(&big_r, self.compressed.as_bytes(), message);
        let check = EdwardsPoint::vartime_double_scalar_mul_basepoint(&h, &self.minus_a, &s);
        bool::from(check.compress().as_bytes().ct_eq(&big_r))
    }
}

fn challenge(big_r: &[u8; 32], public: &[u8; 32], message: &[u8]) -> Scalar {
    let mut hash = Sha512::new();
    hash.update(big_r);
    hash.update(public);
    hash.update(message);
    Scalar::from_hash(hash)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use x25519_dalek::{PublicKey, StaticSecret};

    fn public_of(private: [u8; 32]) -> [u8; 32] {
        PublicKey::from(&StaticSecret::from(private)).to_bytes()
    }

    #[test]
    fn signs_and_verifies() {
        for seed in 0u8..16 {
            let private = [seed.wrapping_mul(37).wrapping_add(1); 32];
            let public = public_of(private);
            let message = [seed; 40];
            let signature = sign(&private, &message, &[seed; 64]);
            assert!(verify(&public, &message, &signature), "seed {seed}");
            let mut tampered = signature;
            tampered[5] ^= 1;
            assert!(!verify(&public, &message, &tampered));
            assert!(!verify(&public, &[seed ^ 1; 40], &signature));
        }
    }

    #[test]
    fn a_prepared_key_signs_the_same_bytes() {
        for seed in 0u8..8 {
            let private = [seed.wrapping_mul(53).wrapping_add(3); 32];
            let prepared = SigningKey::new(&private);
            for round in 0u8..3 {
                let message = [seed ^ round; 50];
                let random = [round; 64];
                assert_eq!(
                    prepared.sign(&message, &random),
                    sign(&private, &message, &random)
                );
            }
        }
    }

    #[test]
    fn a_verifying_key_checks_like_verify() {
        for seed in 0u8..8 {
            let private = [seed.wrapping_mul(41).wrapping_add(5); 32];
            let public = public_of(private);
            let signature = sign(&private, b"group message", &[seed; 64]);
            let key = VerifyingKey::new(&public, signature[63] >> 7).unwrap();
            assert!(key.fits(&public, &signature));
            assert!(key.verify(b"group message", &signature));
            assert!(!key.verify(b"group messagf", &signature));
            let mut tampered = signature;
            tampered[40] ^= 4;
            assert!(!key.verify(b"group message", &tampered));
            let mut flipped = signature;
            flipped[63] ^= 0x80;
            assert!(!key.fits(&public, &flipped));
            assert!(!key.verify(b"group message", &flipped));
            assert!(!key.fits(&public_of([seed ^ 0x77; 32]), &signature));
        }
    }

    #[test]
    fn rejects_the_other_sign_bit() {
        let private = [9u8; 32];
        let public = public_of(private);
        let mut signature = sign(&private, b"hello", &[0; 64]);
        signature[63] ^= 0x80;
        assert!(!verify(&public, b"hello", &signature));
    }
}
