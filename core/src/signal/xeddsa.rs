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

/// Whether `public_key` can check signatures at all: a canonical Curve25519 public key whose
/// point is not of small order. [`verify`] is false for every signature under any other key;
/// a configuration that names one (a trust root) is refused up front.
pub fn is_usable_public_key(public_key: &[u8; 32]) -> bool {
    VerifyingKey::new(public_key, 0).is_some()
}

/// Whether the little-endian `u` is below the field prime `2^255 − 19` (XEdDSA refuses `u ≥ p`).
fn is_canonical(u: &[u8; 32]) -> bool {
    const P_LOW_BYTE: u8 = 0xED;
    let top = u[31];
    if top & 0x80 != 0 {
        return false;
    }
    // Below p unless every bit from 8 to 254 is set and the low byte reaches 0xED.
    !(top == 0x7F && u[1..31].iter().all(|&b| b == 0xFF) && u[0] >= P_LOW_BYTE)
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
    /// signature's last byte); `None` when it is not a canonical encoding of a point, or is a
    /// point of small order (all zeros among them), against which anyone can forge a
    /// signature.
    pub fn new(public_key: &[u8; 32], sign_bit: u8) -> Option<VerifyingKey> {
        if !is_canonical(public_key) {
            return None;
        }
        let big_a = MontgomeryPoint(*public_key).to_edwards(sign_bit & 1)?;
        if big_a.is_small_order() {
            return None;
        }
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
        let Some((big_r, s)) = self.split(signature) else {
            return false;
        };
        let h = challenge(&big_r, self.compressed.as_bytes(), message);
        let check = EdwardsPoint::vartime_double_scalar_mul_basepoint(&h, &self.minus_a, &s);
        bool::from(check.compress().as_bytes().ct_eq(&big_r))
    }

    /// `R` and `s` of `signature`; `None` when its sign bit is not this key's or `s` is not
    /// canonical.
    fn split(&self, signature: &[u8; SIGNATURE_LEN]) -> Option<([u8; 32], Scalar)> {
        if signature[63] >> 7 != self.sign_bit {
            return None;
        }
        let mut big_r = [0u8; 32];
        big_r.copy_from_slice(&signature[..32]);
        let mut s = [0u8; 32];
        s.copy_from_slice(&signature[32..]);
        s[31] &= 0x7F;
        // Reject a non-canonical s (libsignal refuses the top three bits).
        if s[31] & 0xE0 != 0 {
            return None;
        }
        let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s))?;
        Some((big_r, s))
    }
}

/// Teeth of the comb in [`PrecomputedVerifyingKey`]: the challenge scalar (below 2^253) is
/// read in this many interleaved pieces of [`COMB_SPACING`] bits.
const COMB_TEETH: usize = crate::limits::SIGNAL_SENDER_KEY_COMB_TEETH;
/// Bits per tooth: the columns of the comb, one doubling each.
const COMB_SPACING: usize = 253_usize.div_ceil(COMB_TEETH);
// The step between teeth, 2^COMB_SPACING, is built from a u128; the table size from a shift.
const _: () = assert!(COMB_TEETH >= 2 && COMB_TEETH <= 10 && COMB_SPACING < 128);

/// A [`VerifyingKey`] with a comb table of its point, for a key that checks many signatures
/// (a sender-key member's): `s·B − h·A` costs 51 doublings and at most 102 additions (one per
/// column for `h` with this key's table, one for `s` with the basepoint's, built once per
/// process) instead of the 253 doublings of the plain double-scalar multiplication. Only
/// curve25519-dalek's public point operations are used.
///
/// Memory: the table holds the 31 non-empty subset sums of `−2^(51·i)·A` for `i` in 0..5
/// ([`crate::limits::SIGNAL_SENDER_KEY_COMB_TEETH`]), Edwards points of 160 bytes each (4 field
/// elements of 40 bytes, 32-bit limbs as in wasm), 4,960 bytes, plus the plain key (228
/// bytes). It is never serialized.
#[derive(Clone, Debug)]
pub struct PrecomputedVerifyingKey {
    key: VerifyingKey,
    /// `table[j - 1]` is the sum of the teeth `i` whose bit is set in `j`.
    table: [EdwardsPoint; (1 << COMB_TEETH) - 1],
}

impl PrecomputedVerifyingKey {
    /// Builds the table of `key` (four 51-fold doublings and 26 additions).
    pub fn new(key: VerifyingKey) -> PrecomputedVerifyingKey {
        let table = comb_table(key.minus_a);
        PrecomputedVerifyingKey { key, table }
    }

    /// The plain key.
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }

    /// Checks `signature` over `message`; the same answer as [`VerifyingKey::verify`].
    pub fn verify(&self, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
        let Some((big_r, s)) = self.key.split(signature) else {
            return false;
        };
        let h = challenge(&big_r, self.key.compressed.as_bytes(), message);
        let h = h.as_bytes();
        // Positions past the 256 bits (the last column of the top tooth) read as zero.
        let bit = |position: usize| {
            h.get(position / 8)
                .map_or(0, |byte| (byte >> (position % 8)) & 1)
        };
        let s = s.as_bytes();
        let s_bit = |position: usize| {
            s.get(position / 8)
                .map_or(0, |byte| (byte >> (position % 8)) & 1)
        };
        let basepoint = basepoint_comb();
        let mut sum = EdwardsPoint::default();
        for column in (0..COMB_SPACING).rev() {
            sum = sum + sum;
            let mut h_index = 0usize;
            let mut s_index = 0usize;
            for tooth in (0..COMB_TEETH).rev() {
                h_index = (h_index << 1) | usize::from(bit(tooth * COMB_SPACING + column));
                s_index = (s_index << 1) | usize::from(s_bit(tooth * COMB_SPACING + column));
            }
            if let Some(point) = h_index.checked_sub(1).and_then(|i| self.table.get(i)) {
                sum += point;
            }
            if let Some(point) = s_index.checked_sub(1).and_then(|i| basepoint.get(i)) {
                sum += point;
            }
        }
        let check = sum;
        bool::from(check.compress().as_bytes().ct_eq(&big_r))
    }
}

/// The comb table of `point`: entry `j - 1` is the sum of `2^(COMB_SPACING·i)·point` over the
/// bits `i` set in `j`.
fn comb_table(point: EdwardsPoint) -> [EdwardsPoint; (1 << COMB_TEETH) - 1] {
    let step = Scalar::from(1u128 << COMB_SPACING);
    let mut teeth = [point; COMB_TEETH];
    for i in 1..COMB_TEETH {
        // Variable time is fine: the point is public. The call skips the leading zero digits,
        // so it costs COMB_SPACING doublings.
        teeth[i] =
            EdwardsPoint::vartime_double_scalar_mul_basepoint(&step, &teeth[i - 1], &Scalar::ZERO);
    }
    let mut table = [EdwardsPoint::default(); (1 << COMB_TEETH) - 1];
    for j in 1..(1usize << COMB_TEETH) {
        let low = j & j.wrapping_neg();
        let tooth = teeth[low.trailing_zeros() as usize];
        table[j - 1] = if j == low {
            tooth
        } else {
            table[(j ^ low) - 1] + tooth
        };
    }
    table
}

/// The comb table of the basepoint, built once per process (4,960 bytes on 32-bit targets).
fn basepoint_comb() -> &'static [EdwardsPoint; (1 << COMB_TEETH) - 1] {
    static TABLE: std::sync::OnceLock<[EdwardsPoint; (1 << COMB_TEETH) - 1]> =
        std::sync::OnceLock::new();
    TABLE.get_or_init(|| comb_table(curve25519_dalek::constants::ED25519_BASEPOINT_POINT))
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

    /// Both verifiers' answers for one key, message and signature; they must agree.
    fn both(public: &[u8; 32], message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> Option<bool> {
        let plain = VerifyingKey::new(public, signature[63] >> 7)?;
        let fast = PrecomputedVerifyingKey::new(plain.clone());
        let answer = plain.verify(message, signature);
        assert_eq!(
            fast.verify(message, signature),
            answer,
            "key {public:02x?} signature {signature:02x?}"
        );
        Some(answer)
    }

    #[test]
    fn the_comb_verifies_exactly_like_the_plain_key() {
        for seed in 0u8..24 {
            let private = [seed.wrapping_mul(71).wrapping_add(11); 32];
            let public = public_of(private);
            let message = [seed; 77];
            let signature = sign(&private, &message, &[seed ^ 0x5a; 64]);
            assert_eq!(both(&public, &message, &signature), Some(true));
            // Every bit of R and s flipped in turn (the sign bit changes the key instead).
            for position in 0..(SIGNATURE_LEN * 8 - 1) {
                let mut tampered = signature;
                tampered[position / 8] ^= 1 << (position % 8);
                assert_ne!(
                    both(&public, &message, &tampered),
                    Some(true),
                    "bit {position}"
                );
            }
            assert_eq!(both(&public, &[seed ^ 1; 77], &signature), Some(false));
            // Another key's signature.
            let other_private = [seed.wrapping_mul(7).wrapping_add(200); 32];
            let other = sign(&other_private, &message, &[seed; 64]);
            if public_of(other_private) != public && other[63] >> 7 == signature[63] >> 7 {
                assert_eq!(both(&public, &message, &other), Some(false));
            }
        }
    }

    #[test]
    fn the_comb_verifies_a_signature_whose_s_uses_the_top_bits() {
        // s with its bit 251 set (s is below the group order, just above 2^252) exercises the
        // comb's top tooth.
        let mut found = 0;
        for seed in 0u8..64 {
            let private = [seed.wrapping_mul(13).wrapping_add(1); 32];
            let signature = sign(&private, b"top bits", &[seed; 64]);
            if signature[63] & 0x08 != 0 {
                found += 1;
                assert_eq!(
                    both(&public_of(private), b"top bits", &signature),
                    Some(true)
                );
            }
        }
        assert!(found > 0);
    }

    proptest::proptest! {
        #[test]
        fn the_comb_agrees_on_random_signatures(
            private in proptest::array::uniform32(proptest::num::u8::ANY),
            message in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            random in proptest::array::uniform32(proptest::num::u8::ANY),
            garbage in proptest::array::uniform32(proptest::num::u8::ANY),
            flip in 0usize..(SIGNATURE_LEN * 8),
        ) {
            let public = public_of(private);
            let mut nonce = [0u8; 64];
            nonce[..32].copy_from_slice(&random);
            let signature = sign(&private, &message, &nonce);
            proptest::prop_assert_eq!(both(&public, &message, &signature), Some(true));
            let mut tampered = signature;
            tampered[flip / 8] ^= 1 << (flip % 8);
            both(&public, &message, &tampered);
            // Random R with the real s, and a random (reduced) s with the real R.
            let mut random_r = signature;
            random_r[..32].copy_from_slice(&garbage);
            both(&public, &message, &random_r);
            let mut random_s = signature;
            random_s[32..].copy_from_slice(&Scalar::from_bytes_mod_order(garbage).to_bytes());
            random_s[63] |= signature[63] & 0x80;
            both(&public, &message, &random_s);
            // A random 32-byte string as the key (about half are not points: both refuse those).
            both(&garbage, &message, &signature);
        }
    }

    /// The Montgomery `u` of every point of small order (the 8-torsion: `u` = 0, 1, −1 and two
    /// pairs of order 8) and non-canonical encodings of small `u`.
    fn small_order_and_non_canonical_keys() -> Vec<[u8; 32]> {
        let from_hex = |text: &str| -> [u8; 32] { hex::decode(text).unwrap().try_into().unwrap() };
        let mut keys = vec![
            [0u8; 32],
            from_hex("0100000000000000000000000000000000000000000000000000000000000000"),
            from_hex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
            from_hex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
            from_hex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
        ];
        // p, p + 1 (u = 0 and 1 again) and any key with the top bit set.
        keys.push(from_hex(
            "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        ));
        keys.push(from_hex(
            "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        ));
        let mut high = public_of([5; 32]);
        high[31] |= 0x80;
        keys.push(high);
        keys
    }

    /// A signature that the cofactorless check `s·B − h·A == R` accepts under a key `A` of small
    /// order, found without any private key: with `s = 0`, `R = −h·A` holds when `h` is right
    /// modulo the order of `A` (one try in eight at worst).
    fn forgery(public: &[u8; 32], sign_bit: u8) -> Option<(Vec<u8>, [u8; SIGNATURE_LEN])> {
        let point = MontgomeryPoint(*public).to_edwards(sign_bit)?;
        let compressed = point.compress();
        for attempt in 0u32..64 {
            let message = attempt.to_be_bytes().to_vec();
            for k in 0u64..8 {
                let big_r = (Scalar::from(k) * point).compress();
                let h = challenge(big_r.as_bytes(), compressed.as_bytes(), &message);
                if (-(h * point)).compress() == big_r {
                    let mut signature = [0u8; SIGNATURE_LEN];
                    signature[..32].copy_from_slice(big_r.as_bytes());
                    signature[63] |= sign_bit << 7;
                    return Some((message, signature));
                }
            }
        }
        None
    }

    #[test]
    fn forgeries_under_small_order_keys_do_not_verify() {
        let mut forged = 0;
        for key in small_order_and_non_canonical_keys() {
            for sign_bit in 0..2 {
                if let Some((message, signature)) = forgery(&key, sign_bit) {
                    forged += 1;
                    assert!(
                        !verify(&key, &message, &signature),
                        "forgery under {key:02x?}"
                    );
                }
            }
        }
        // The forgeries exist: without the check, these keys would accept them.
        assert!(forged >= 4, "{forged} forgeries");
    }

    #[test]
    fn small_order_and_non_canonical_keys_are_unusable() {
        for key in small_order_and_non_canonical_keys() {
            assert!(!is_usable_public_key(&key), "{key:02x?}");
            for sign_bit in 0..2 {
                assert!(VerifyingKey::new(&key, sign_bit).is_none());
            }
        }
        assert!(is_usable_public_key(&public_of([5; 32])));
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
