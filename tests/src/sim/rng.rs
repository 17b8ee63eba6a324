//! The simulation's only source of randomness: ChaCha20 seeded by the test.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

/// A seeded ChaCha20 generator: the same seed gives the same stream on every platform.
#[derive(Clone, Debug)]
pub struct SimRng(ChaCha20Rng);

impl SimRng {
    /// A generator seeded with `seed`.
    pub fn new(seed: [u8; 32]) -> SimRng {
        SimRng(ChaCha20Rng::from_seed(seed))
    }

    /// A generator seeded with a `u64` (expanded into a 32-byte seed), for tests that print
    /// their seed as a number.
    pub fn from_u64(seed: u64) -> SimRng {
        SimRng(ChaCha20Rng::seed_from_u64(seed))
    }

    /// `N` random bytes.
    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        self.0.fill_bytes(&mut out);
        out
    }

    /// A random `u32`.
    pub fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }

    /// A random `u64`.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A uniform value in `0..bound` (0 when `bound` is 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        // Rejection sampling keeps the result unbiased.
        let zone = u64::MAX - (u64::MAX % bound);
        loop {
            let value = self.0.next_u64();
            if value < zone {
                return value % bound;
            }
        }
    }

    /// `true` with probability `numerator / denominator`.
    pub fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        self.below(denominator) < numerator
    }

    /// A seed for another component (a client, a phone), drawn from this stream.
    pub fn fork_seed(&mut self) -> [u8; 32] {
        self.bytes()
    }
}

impl rand_core::TryRng for SimRng {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.0.next_u32())
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(self.0.next_u64())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.0.fill_bytes(dst);
        Ok(())
    }
}

/// ChaCha20 is a CSPRNG; walink-core's Signal code takes it as such (the seed makes it
/// predictable, which is the point in a simulation).
impl rand_core::TryCryptoRng for SimRng {}
