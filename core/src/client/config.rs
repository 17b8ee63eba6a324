//! The client's configuration: who it claims to be, whom it trusts, and its timers.

use core::fmt;

use crate::noise::TrustRoot;
use crate::noise::payload::ClientProfile;
use crate::pair::CompanionOs;

/// Everything a host chooses about a client. [`Config::new`] gives WhatsApp Web's defaults.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// Web version, device name, platform, locale, passive login.
    pub profile: ClientProfile,
    /// The key the server's certificate chain must lead to: WhatsApp's by default, a test root
    /// in the simulation. There is no way to skip the check.
    pub trust_root: TrustRoot,
    /// Tests only, never in production: seeds the client's generator so that a run is
    /// reproducible, and turns off its reseeding from the operating system (every key the
    /// client makes follows from these 32 bytes). `None`, the default, seeds it from the
    /// operating system and reseeds it at every login and every `CLIENT_RNG_RESEED_MS`.
    pub unsafe_test_rng_seed: Option<[u8; 32]>,
    /// After `<stream:error>` with `<conflict type="replaced"/>` (another connection took over),
    /// reconnect with backoff instead of ending in `State::Replaced`.
    pub retry_when_replaced: bool,
    /// The operating system named in `companion_platform_display` when pairing by code
    /// (`"Chrome (Linux)"`). The browser comes from `profile.platform_type`.
    pub companion_os: CompanionOs,
    /// Shortest interval between two keepalive pings (WhatsApp Web: 15 s).
    pub keepalive_min_ms: u64,
    /// Longest interval between two keepalive pings (WhatsApp Web: 30 s).
    pub keepalive_max_ms: u64,
    /// How long a ping may wait for its answer before the socket counts as dead (20 s).
    pub keepalive_deadline_ms: u64,
    /// How long the socket may take to open and the handshake to finish (20 s).
    pub connect_timeout_ms: u64,
    /// How long any other IQ may wait for its answer (60 s).
    pub iq_timeout_ms: u64,
    /// First (and second) reconnect delay of the Fibonacci schedule (1 s).
    pub backoff_first_ms: u64,
    /// Cap of the reconnect delay (900 s).
    pub backoff_max_ms: u64,
    /// Jitter of each reconnect delay, in thousandths (100 = ±10 %).
    pub backoff_jitter_permille: u32,
    /// A connection that stayed up this long resets the backoff (30 s).
    pub backoff_reset_after_ms: u64,
    /// Tuning: how many messaging records (sessions, identities, sender keys, sender-key-sent
    /// and received-id lists) stay in memory, least recently used dropped first and loaded
    /// again when needed (`MESSAGING_RECORD_CACHE`; docs/client.md, "Storage"). Records the
    /// operations in progress use stay beyond it.
    pub record_cache_limit: usize,
}

impl Config {
    /// WhatsApp Web's defaults for a client presenting `profile`, trusting WhatsApp's root.
    pub fn new(profile: ClientProfile) -> Config {
        use crate::limits::*;
        Config {
            profile,
            trust_root: TrustRoot::WHATSAPP,
            unsafe_test_rng_seed: None,
            retry_when_replaced: false,
            companion_os: CompanionOs::Linux,
            keepalive_min_ms: CLIENT_KEEPALIVE_MIN_MS,
            keepalive_max_ms: CLIENT_KEEPALIVE_MAX_MS,
            keepalive_deadline_ms: CLIENT_KEEPALIVE_DEADLINE_MS,
            connect_timeout_ms: CLIENT_CONNECT_TIMEOUT_MS,
            iq_timeout_ms: CLIENT_IQ_TIMEOUT_MS,
            backoff_first_ms: CLIENT_BACKOFF_FIRST_MS,
            backoff_max_ms: CLIENT_BACKOFF_MAX_MS,
            backoff_jitter_permille: CLIENT_BACKOFF_JITTER_PERMILLE,
            backoff_reset_after_ms: CLIENT_BACKOFF_RESET_AFTER_MS,
            record_cache_limit: MESSAGING_RECORD_CACHE,
        }
    }
}

/// Why `Client::new` refused a configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The trust root is not a key any signature can be checked against: all zeros, a point
    /// of small order (a signature under it can be forged without a private key), or not a
    /// canonical Curve25519 public key.
    #[error("the trust root is not a usable public key (all zeros, small order or not canonical)")]
    UnusableTrustRoot,
}

impl Config {
    /// Checks what no connection can work without: a trust root a certificate chain can be
    /// verified against.
    pub fn check(&self) -> Result<(), ConfigError> {
        if !crate::signal::xeddsa::is_usable_public_key(&self.trust_root.public_key) {
            return Err(ConfigError::UnusableTrustRoot);
        }
        Ok(())
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("profile", &self.profile)
            .field("trust_root", &self.trust_root)
            .field(
                "unsafe_test_rng_seed",
                &self.unsafe_test_rng_seed.map(|_| "<seeded>"),
            )
            .field("retry_when_replaced", &self.retry_when_replaced)
            .field("companion_os", &self.companion_os)
            .field("keepalive_min_ms", &self.keepalive_min_ms)
            .field("keepalive_max_ms", &self.keepalive_max_ms)
            .field("keepalive_deadline_ms", &self.keepalive_deadline_ms)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("iq_timeout_ms", &self.iq_timeout_ms)
            .field("backoff_first_ms", &self.backoff_first_ms)
            .field("backoff_max_ms", &self.backoff_max_ms)
            .field("backoff_jitter_permille", &self.backoff_jitter_permille)
            .field("backoff_reset_after_ms", &self.backoff_reset_after_ms)
            .field("record_cache_limit", &self.record_cache_limit)
            .finish()
    }
}
