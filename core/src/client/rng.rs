//! The client's own cryptographic random number generator: a hash-based generator with fast
//! key erasure, seeded from the operating system (or, in tests, from the configuration) and
//! reseeded by the client at every login and on a schedule ([`Rng::reseed`]).
//!
//! Each request derives output blocks as `SHA-256(key ‖ "out" ‖ counter)` and then replaces the
//! key with `SHA-256(key ‖ "next")`, so a later compromise of the state reveals no earlier
//! output. A reseed replaces the key with `SHA-256(key ‖ "reseed" ‖ fresh)`, so a compromise of
//! the state reveals nothing after the next reseed either. The state is 32 bytes and is zeroized
//! on drop.

use core::convert::Infallible;

use rand_core::{TryCryptoRng, TryRng};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// The generator. Never printed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct Rng {
    key: [u8; 32],
}

impl core::fmt::Debug for Rng {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Rng(..)")
    }
}

impl Rng {
    /// A generator seeded with `seed`.
    pub(crate) fn from_seed(seed: [u8; 32]) -> Rng {
        let mut rng = Rng { key: seed };
        rng.rekey();
        rng
    }

    /// A generator seeded from the operating system; `None` if it has no randomness.
    pub(crate) fn from_os() -> Option<Rng> {
        let mut seed = os_entropy()?;
        let rng = Rng::from_seed(seed);
        seed.zeroize();
        Some(rng)
    }

    /// Mixes `fresh` bytes into the key: what was drawn before and what is drawn after are
    /// unrelated to anyone who does not know `fresh`.
    pub(crate) fn reseed(&mut self, fresh: &[u8; 32]) {
        let next: [u8; 32] = Sha256::new()
            .chain_update(self.key)
            .chain_update(b"reseed")
            .chain_update(fresh)
            .finalize()
            .into();
        self.key = next;
    }

    fn rekey(&mut self) {
        let next: [u8; 32] = Sha256::new()
            .chain_update(self.key)
            .chain_update(b"next")
            .finalize()
            .into();
        self.key = next;
    }

    /// Fills `dst` with random bytes.
    pub(crate) fn fill(&mut self, dst: &mut [u8]) {
        for (counter, chunk) in dst.chunks_mut(32).enumerate() {
            let mut block: [u8; 32] = Sha256::new()
                .chain_update(self.key)
                .chain_update(b"out")
                .chain_update((counter as u64).to_be_bytes())
                .finalize()
                .into();
            chunk.copy_from_slice(block.get(..chunk.len()).unwrap_or(&[]));
            block.zeroize();
        }
        self.rekey();
    }

    /// `N` random bytes.
    pub(crate) fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        self.fill(&mut out);
        out
    }

    /// A uniform value in `0..bound` (`0` when `bound` is 0).
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        // Rejection sampling: no modulo bias.
        let zone = u64::MAX - (u64::MAX % bound);
        loop {
            let value = u64::from_be_bytes(self.bytes());
            if value < zone {
                return value % bound;
            }
        }
    }
}

/// 32 bytes from the operating system's generator (`getrandom`; in the browser and Node,
/// `crypto.getRandomValues`); `None` if it has none.
pub(crate) fn os_entropy() -> Option<[u8; 32]> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes)
}

impl TryRng for Rng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(u32::from_le_bytes(self.bytes()))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(u64::from_le_bytes(self.bytes()))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.fill(dst);
        Ok(())
    }
}

impl TryCryptoRng for Rng {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_generators_repeat_and_differ() {
        let mut a = Rng::from_seed([1; 32]);
        let mut b = Rng::from_seed([1; 32]);
        let mut c = Rng::from_seed([2; 32]);
        let x: [u8; 70] = a.bytes();
        assert_eq!(x, b.bytes::<70>());
        assert_ne!(x, c.bytes::<70>());
        assert_ne!(a.bytes::<32>(), a.bytes::<32>());
        assert!(format!("{a:?}") == "Rng(..)");
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = Rng::from_seed([3; 32]);
        let mut seen = [false; 7];
        for _ in 0..500 {
            let value = rng.below(7);
            assert!(value < 7);
            seen[value as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(rng.below(0), 0);
    }

    #[test]
    fn os_seeding_works() {
        assert!(Rng::from_os().is_some());
    }

    #[test]
    fn a_reseed_changes_what_follows() {
        let mut a = Rng::from_seed([4; 32]);
        let mut b = Rng::from_seed([4; 32]);
        a.reseed(&[1; 32]);
        b.reseed(&[2; 32]);
        assert_ne!(a.bytes::<32>(), b.bytes::<32>());
        let mut c = Rng::from_seed([4; 32]);
        c.reseed(&[1; 32]);
        let mut d = Rng::from_seed([4; 32]);
        d.reseed(&[1; 32]);
        assert_eq!(c.bytes::<32>(), d.bytes::<32>());
    }
}
