//! The LTHash ("lattice hash") that summarises a collection: a 128-byte value to which each
//! value MAC is added (SET) or from which it is subtracted (REMOVE, or a SET that replaces an
//! earlier one), so that the order of operations does not matter.
//!
//! Each item is expanded with `HKDF-SHA256(ikm = item, salt = none, info = "WhatsApp Patch
//! Integrity", 128)` and combined pointwise as 64 little-endian `u16`s with wrapping addition or
//! subtraction (tulir/whatsmeow:appstate/lthash/lthash.go `WAPatchIntegrity`; Baileys
//! `LT_HASH_ANTI_TAMPERING`, src/Utils/lt-hash.ts, now whatsapp-rust-bridge's
//! `LTHashAntiTampering`).

/// Length of an LTHash in bytes.
pub const LTHASH_LEN: usize = 128;
const INFO: &[u8] = b"WhatsApp Patch Integrity";

/// An LTHash value.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LtHash([u8; LTHASH_LEN]);

impl std::fmt::Debug for LtHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LtHash(")?;
        for byte in self.0.iter().take(8) {
            write!(f, "{byte:02x}")?;
        }
        write!(f, "..)")
    }
}

impl Default for LtHash {
    fn default() -> LtHash {
        LtHash::ZERO
    }
}

impl LtHash {
    /// The hash of an empty collection: 128 zero bytes.
    pub const ZERO: LtHash = LtHash([0; LTHASH_LEN]);

    /// Wraps 128 bytes.
    pub fn from_bytes(bytes: [u8; LTHASH_LEN]) -> LtHash {
        LtHash(bytes)
    }

    /// Wraps a slice, which must be exactly 128 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<LtHash> {
        bytes.try_into().ok().map(LtHash)
    }

    /// The 128 bytes.
    pub fn as_bytes(&self) -> &[u8; LTHASH_LEN] {
        &self.0
    }

    /// Adds one item (a value MAC).
    pub fn add(&mut self, item: &[u8]) {
        let expanded = expand(item);
        combine(&mut self.0, &expanded, u16::wrapping_add);
    }

    /// Subtracts one item (a value MAC).
    pub fn remove(&mut self, item: &[u8]) {
        let expanded = expand(item);
        combine(&mut self.0, &expanded, u16::wrapping_sub);
    }

    /// Subtracts every item of `removed`, then adds every item of `added` (the order does not
    /// change the result; it is the shape of the reference implementations).
    pub fn subtract_then_add<R, A>(&mut self, removed: R, added: A)
    where
        R: IntoIterator,
        R::Item: AsRef<[u8]>,
        A: IntoIterator,
        A::Item: AsRef<[u8]>,
    {
        for item in removed {
            self.remove(item.as_ref());
        }
        for item in added {
            self.add(item.as_ref());
        }
    }
}

fn expand(item: &[u8]) -> [u8; LTHASH_LEN] {
    let mut out = [0u8; LTHASH_LEN];
    // 128 bytes is far below HKDF-SHA256's limit of 255 * 32, so expansion cannot fail.
    // walink-crypto's HKDF (opt-level 3, one copy in the wasm module).
    let _ = walink_crypto::hkdf_sha256(None, item, INFO, &mut out);
    out
}

fn combine(acc: &mut [u8; LTHASH_LEN], item: &[u8; LTHASH_LEN], op: fn(u16, u16) -> u16) {
    for (a, b) in acc.chunks_exact_mut(2).zip(item.chunks_exact(2)) {
        let (a0, a1) = (a.first().copied(), a.get(1).copied());
        let (b0, b1) = (b.first().copied(), b.get(1).copied());
        if let (Some(a0), Some(a1), Some(b0), Some(b1)) = (a0, a1, b0, b1) {
            let value = op(u16::from_le_bytes([a0, a1]), u16::from_le_bytes([b0, b1]));
            a.copy_from_slice(&value.to_le_bytes());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn add_then_remove_is_identity() {
        let mut hash = LtHash::ZERO;
        hash.add(b"one");
        hash.add(b"two");
        assert_ne!(hash, LtHash::ZERO);
        hash.remove(b"one");
        hash.remove(b"two");
        assert_eq!(hash, LtHash::ZERO);
    }

    #[test]
    fn first_word_is_little_endian_hkdf_output() {
        let mut hash = LtHash::ZERO;
        hash.add(b"x");
        let expanded = expand(b"x");
        assert_eq!(hash.as_bytes(), &expanded);
        hash.add(b"x");
        let doubled = u16::from_le_bytes([expanded[0], expanded[1]]).wrapping_mul(2);
        assert_eq!(&hash.as_bytes()[..2], &doubled.to_le_bytes());
    }

    proptest! {
        #[test]
        fn order_does_not_matter(items in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..12), seed in any::<u64>()) {
            let mut forward = LtHash::ZERO;
            forward.subtract_then_add(Vec::<Vec<u8>>::new(), items.iter());
            let mut shuffled = items.clone();
            let len = shuffled.len().max(1);
            shuffled.rotate_left((seed as usize) % len);
            shuffled.reverse();
            let mut backward = LtHash::ZERO;
            for item in &shuffled {
                backward.add(item);
            }
            prop_assert_eq!(&forward, &backward);
            forward.subtract_then_add(items.iter(), Vec::<Vec<u8>>::new());
            prop_assert_eq!(forward, LtHash::ZERO);
        }
    }
}
