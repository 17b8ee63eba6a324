//! The client's configuration: who it claims to be, whom it trusts, and its timers.

use core::fmt;

use crate::noise::TrustRoot;
use crate::noise::payload::{ClientProfile, HistoryScope, WebVersion};
use crate::pair::CompanionOs;
use crate::proto::wa::device_props::PlatformType;

use super::endpoints;

/// What the client does when a contact device presents an identity key other than the one it
/// trusts (a reinstalled or new phone, or someone in the middle).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum IdentityPolicy {
    /// WhatsApp's behaviour (WhatsApp Web shows "security code changed" and goes on): the new
    /// key is trusted at once and reported with `Event::IdentityChanged`.
    #[default]
    AcceptAndNotify,
    /// Messages from and to the device are refused until the application approves the new
    /// key with `Command::ApproveIdentity`; the refused incoming messages are asked for again
    /// then, and a send fails with `CommandError::UntrustedIdentity`.
    Strict,
}

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
    /// Tuning: how many messaging records (sessions, identities, sender keys, sender-key-sent,
    /// received-id and verified device lists) stay in memory, least recently used dropped first and loaded
    /// again when needed (`MESSAGING_RECORD_CACHE`; docs/client.md, "Storage"). Records the
    /// operations in progress use stay beyond it.
    pub record_cache_limit: usize,
    /// The media host files are downloaded from by direct path (`scheme://host[:port]`):
    /// WhatsApp's ([`endpoints::MEDIA_ORIGIN`]) unless a test server stands in.
    pub media_origin: String,
    /// What a contact's changed identity key leads to (WhatsApp's: accept and notify).
    pub identity_policy: IdentityPolicy,
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
            media_origin: endpoints::MEDIA_ORIGIN.to_owned(),
            identity_policy: IdentityPolicy::AcceptAndNotify,
        }
    }
}

impl Config {
    /// Checks what no connection can work without: a trust root a certificate chain can be
    /// verified against (not all zeros, not of small order, a canonical Curve25519 key; a
    /// signature under a small-order key can be forged without a private key).
    pub fn check(&self) -> Result<(), ConfigError> {
        if !crate::signal::xeddsa::is_usable_public_key(&self.trust_root.public_key) {
            return Err(ConfigError {
                option: "trust_root",
                problem: "is not a usable public key (all zeros, small order or not canonical)",
            });
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
            .field("media_origin", &self.media_origin)
            .field("identity_policy", &self.identity_policy)
            .finish()
    }
}

/// A [`Config`] as a host describes it: every field optional (absent means WhatsApp Web's
/// default), names, versions and keys as text and bytes. The one builder both facades (wasm and
/// uniffi) call, so that every host takes the same options, checked the same way.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ConfigOptions {
    /// The WhatsApp Web version to announce, `"2.3000.1045649367"` ([`endpoints::WEB_VERSION`]).
    pub web_version: Option<String>,
    /// The name the phone shows for this linked device (default `walink`).
    pub device_name: Option<String>,
    /// A `DeviceProps.PlatformType` name, in any case: `CHROME` (default), `FIREFOX`, ...
    pub platform: Option<String>,
    /// The push name sent at login.
    pub push_name: Option<String>,
    /// `UserAgent` language, ISO 639-1 (default `en`).
    pub language: Option<String>,
    /// `UserAgent` country, ISO 3166-1 alpha-2 (default `US`).
    pub country: Option<String>,
    /// `windows`, `macos`, `linux` (default), `android` or `ios`: named when pairing by code.
    pub companion_os: Option<String>,
    /// A test server's root public key (32 bytes) instead of WhatsApp's.
    pub trust_root: Option<Vec<u8>>,
    /// The serial of `trust_root` (0 when absent; ignored without `trust_root`).
    pub trust_root_serial: Option<u32>,
    /// Reconnect after another connection took over, instead of resting in `Replaced`.
    pub retry_when_replaced: Option<bool>,
    /// [`Config::keepalive_min_ms`].
    pub keepalive_min_ms: Option<u64>,
    /// [`Config::keepalive_max_ms`].
    pub keepalive_max_ms: Option<u64>,
    /// [`Config::keepalive_deadline_ms`].
    pub keepalive_deadline_ms: Option<u64>,
    /// [`Config::connect_timeout_ms`].
    pub connect_timeout_ms: Option<u64>,
    /// [`Config::iq_timeout_ms`].
    pub iq_timeout_ms: Option<u64>,
    /// [`Config::backoff_first_ms`].
    pub backoff_first_ms: Option<u64>,
    /// [`Config::backoff_max_ms`].
    pub backoff_max_ms: Option<u64>,
    /// [`Config::backoff_jitter_permille`] (at most 1000).
    pub backoff_jitter_permille: Option<u32>,
    /// [`Config::backoff_reset_after_ms`].
    pub backoff_reset_after_ms: Option<u64>,
    /// [`Config::record_cache_limit`].
    pub record_cache_limit: Option<u64>,
    /// [`Config::media_origin`]: `http://` or `https://`, a host, an optional port.
    pub media_origin: Option<String>,
    /// [`Config::identity_policy`].
    pub identity_policy: Option<IdentityPolicy>,
    /// How much history to ask the phone for when pairing: `recent` (WhatsApp Web's
    /// default), `full` or `none` ([`HistoryScope`]).
    pub history: Option<String>,
    /// Days of history to ask for (and the oldest kept: the client drops older messages).
    pub history_days: Option<u32>,
    /// Messages per chat in the initial history.
    pub history_messages_per_chat: Option<u32>,
    /// Size limit of a full history, in MB.
    pub history_size_mb: Option<u32>,

    // --- for deterministic tests only ---------------------------------------------------------
    /// [`Config::unsafe_test_rng_seed`]: 32 bytes, tests only, never in production.
    pub unsafe_test_rng_seed: Option<Vec<u8>>,
}

impl fmt::Debug for ConfigOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The seed decides every key the client makes: never shown.
        f.debug_struct("ConfigOptions")
            .field("web_version", &self.web_version)
            .field("device_name", &self.device_name)
            .field("platform", &self.platform)
            .field("companion_os", &self.companion_os)
            .field("trust_root", &self.trust_root.as_ref().map(|_| "<set>"))
            .field(
                "unsafe_test_rng_seed",
                &self.unsafe_test_rng_seed.as_ref().map(|_| "<seeded>"),
            )
            .finish_non_exhaustive()
    }
}

/// Why [`ConfigOptions::build`] refused the options: the option at fault and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{option}: {problem}")]
pub struct ConfigError {
    /// The option's name in the Rust API (`web_version`, `trust_root`, ...).
    pub option: &'static str,
    /// What is wrong with it.
    pub problem: &'static str,
}

impl ConfigError {
    /// The stable code of every configuration error: `invalid_config`.
    pub fn code(&self) -> &'static str {
        "invalid_config"
    }
}

/// The device name announced unless the host chooses one.
pub const DEFAULT_DEVICE_NAME: &str = "walink";

impl ConfigOptions {
    /// The configuration these options describe: WhatsApp Web's defaults for every absent one.
    pub fn build(self) -> Result<Config, ConfigError> {
        let refuse = |option, problem| ConfigError { option, problem };
        let version = match &self.web_version {
            Some(text) => WebVersion::parse(text)
                .ok_or(refuse("web_version", "must look like 2.3000.1045649367"))?,
            None => endpoints::WEB_VERSION,
        };
        let device_name = self
            .device_name
            .unwrap_or_else(|| DEFAULT_DEVICE_NAME.to_owned());
        let mut profile = ClientProfile::new(version, device_name);
        if let Some(platform) = &self.platform {
            profile.platform_type = PlatformType::from_str_name(&platform.to_ascii_uppercase())
                .ok_or(refuse("platform", "is not a DeviceProps.PlatformType name"))?;
        }
        profile.push_name = self.push_name;
        if let Some(language) = self.language {
            profile.language = language;
        }
        if let Some(country) = self.country {
            profile.country = country;
        }
        if let Some(scope) = &self.history {
            profile.history.scope = match scope.as_str() {
                "recent" => HistoryScope::Recent,
                "full" => HistoryScope::Full,
                "none" => HistoryScope::None,
                _ => return Err(refuse("history", "must be recent, full or none")),
            };
        }
        profile.history.days = self.history_days;
        profile.history.messages_per_chat = self.history_messages_per_chat;
        profile.history.size_mb = self.history_size_mb;
        let mut config = Config::new(profile);
        if let Some(os) = &self.companion_os {
            config.companion_os = CompanionOs::parse(os).ok_or(refuse(
                "companion_os",
                "must be windows, macos, linux, android or ios",
            ))?;
        }
        if let Some(root) = self.trust_root {
            config.trust_root = TrustRoot {
                public_key: root
                    .try_into()
                    .map_err(|_| refuse("trust_root", "must be 32 bytes"))?,
                serial: self.trust_root_serial.unwrap_or(0),
            };
        }
        if let Some(retry) = self.retry_when_replaced {
            config.retry_when_replaced = retry;
        }
        let set = |field: &mut u64, value: Option<u64>| {
            if let Some(value) = value {
                *field = value;
            }
        };
        set(&mut config.keepalive_min_ms, self.keepalive_min_ms);
        set(&mut config.keepalive_max_ms, self.keepalive_max_ms);
        set(
            &mut config.keepalive_deadline_ms,
            self.keepalive_deadline_ms,
        );
        set(&mut config.connect_timeout_ms, self.connect_timeout_ms);
        set(&mut config.iq_timeout_ms, self.iq_timeout_ms);
        set(&mut config.backoff_first_ms, self.backoff_first_ms);
        set(&mut config.backoff_max_ms, self.backoff_max_ms);
        set(
            &mut config.backoff_reset_after_ms,
            self.backoff_reset_after_ms,
        );
        if config.keepalive_min_ms > config.keepalive_max_ms {
            return Err(refuse(
                "keepalive_min_ms",
                "must not exceed keepalive_max_ms",
            ));
        }
        if config.backoff_first_ms > config.backoff_max_ms {
            return Err(refuse("backoff_first_ms", "must not exceed backoff_max_ms"));
        }
        if let Some(permille) = self.backoff_jitter_permille {
            if permille > 1000 {
                return Err(refuse("backoff_jitter_permille", "must be at most 1000"));
            }
            config.backoff_jitter_permille = permille;
        }
        if let Some(limit) = self.record_cache_limit {
            config.record_cache_limit =
                usize::try_from(limit).map_err(|_| refuse("record_cache_limit", "is too large"))?;
        }
        if let Some(origin) = self.media_origin {
            if !valid_origin(&origin) {
                return Err(refuse(
                    "media_origin",
                    "must be http:// or https:// and a host, with no path",
                ));
            }
            config.media_origin = origin;
        }
        if let Some(policy) = self.identity_policy {
            config.identity_policy = policy;
        }
        if let Some(seed) = self.unsafe_test_rng_seed {
            config.unsafe_test_rng_seed = Some(
                seed.try_into()
                    .map_err(|_| refuse("unsafe_test_rng_seed", "must be 32 bytes"))?,
            );
        }
        config.check()?;
        Ok(config)
    }
}

/// Whether `origin` is `http(s)://host[:port]` (a trailing slash allowed), so that joining a
/// direct path to it names that host.
fn valid_origin(origin: &str) -> bool {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    let Some(host) = rest.map(|r| r.strip_suffix('/').unwrap_or(r)) else {
        return false;
    };
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn empty_options_are_whatsapp_webs_defaults() {
        let config = ConfigOptions::default().build().unwrap();
        let expected = Config::new(ClientProfile::new(
            endpoints::WEB_VERSION,
            DEFAULT_DEVICE_NAME,
        ));
        assert_eq!(config, expected);
        assert_eq!(config.media_origin, endpoints::MEDIA_ORIGIN);
        assert_eq!(config.unsafe_test_rng_seed, None);
    }

    #[test]
    fn every_option_reaches_the_config() {
        let options = ConfigOptions {
            web_version: Some("2.3000.7".into()),
            device_name: Some("desk".into()),
            platform: Some("firefox".into()),
            push_name: Some("Ann".into()),
            language: Some("pt".into()),
            country: Some("BR".into()),
            companion_os: Some("macos".into()),
            trust_root: Some(vec![7; 32]),
            trust_root_serial: Some(3),
            retry_when_replaced: Some(true),
            keepalive_min_ms: Some(1),
            keepalive_max_ms: Some(2),
            keepalive_deadline_ms: Some(3),
            connect_timeout_ms: Some(4),
            iq_timeout_ms: Some(5),
            backoff_first_ms: Some(6),
            backoff_max_ms: Some(7),
            backoff_jitter_permille: Some(8),
            backoff_reset_after_ms: Some(9),
            record_cache_limit: Some(10),
            media_origin: Some("http://127.0.0.1:8080".into()),
            identity_policy: Some(IdentityPolicy::Strict),
            history: Some("full".into()),
            history_days: Some(30),
            history_messages_per_chat: Some(40),
            history_size_mb: Some(50),
            unsafe_test_rng_seed: Some(vec![1; 32]),
        };
        let config = options.build().unwrap();
        assert_eq!(
            config.profile.history,
            crate::noise::payload::HistoryRequest {
                scope: HistoryScope::Full,
                days: Some(30),
                messages_per_chat: Some(40),
                size_mb: Some(50),
            }
        );
        assert_eq!(config.profile.version, WebVersion::new(2, 3000, 7));
        assert_eq!(config.profile.device_name, "desk");
        assert_eq!(config.profile.platform_type, PlatformType::Firefox);
        assert_eq!(config.profile.push_name.as_deref(), Some("Ann"));
        assert_eq!(
            (
                config.profile.language.as_str(),
                config.profile.country.as_str()
            ),
            ("pt", "BR")
        );
        assert_eq!(config.companion_os, CompanionOs::MacOs);
        assert_eq!(
            config.trust_root,
            TrustRoot {
                public_key: [7; 32],
                serial: 3
            }
        );
        assert!(config.retry_when_replaced);
        assert_eq!(config.identity_policy, IdentityPolicy::Strict);
        assert_eq!(
            [
                config.keepalive_min_ms,
                config.keepalive_max_ms,
                config.keepalive_deadline_ms,
                config.connect_timeout_ms,
                config.iq_timeout_ms,
                config.backoff_first_ms,
                config.backoff_max_ms,
                config.backoff_reset_after_ms,
            ],
            [1, 2, 3, 4, 5, 6, 7, 9]
        );
        assert_eq!(config.backoff_jitter_permille, 8);
        assert_eq!(config.record_cache_limit, 10);
        assert_eq!(config.media_origin, "http://127.0.0.1:8080");
        assert_eq!(config.unsafe_test_rng_seed, Some([1; 32]));
    }

    #[test]
    fn bad_options_name_the_option() {
        let refused = |options: ConfigOptions| options.build().unwrap_err().option;
        let o = ConfigOptions::default;
        assert_eq!(
            refused(ConfigOptions {
                web_version: Some("2.x".into()),
                ..o()
            }),
            "web_version"
        );
        assert_eq!(
            refused(ConfigOptions {
                platform: Some("toaster".into()),
                ..o()
            }),
            "platform"
        );
        assert_eq!(
            refused(ConfigOptions {
                companion_os: Some("beos".into()),
                ..o()
            }),
            "companion_os"
        );
        assert_eq!(
            refused(ConfigOptions {
                trust_root: Some(vec![1; 31]),
                ..o()
            }),
            "trust_root"
        );
        assert_eq!(
            refused(ConfigOptions {
                unsafe_test_rng_seed: Some(vec![1, 2, 3]),
                ..o()
            }),
            "unsafe_test_rng_seed"
        );
        assert_eq!(
            refused(ConfigOptions {
                keepalive_min_ms: Some(40_000),
                ..o()
            }),
            "keepalive_min_ms"
        );
        assert_eq!(
            refused(ConfigOptions {
                backoff_first_ms: Some(u64::MAX),
                ..o()
            }),
            "backoff_first_ms"
        );
        assert_eq!(
            refused(ConfigOptions {
                backoff_jitter_permille: Some(1001),
                ..o()
            }),
            "backoff_jitter_permille"
        );
        for bad in [
            "mmg.whatsapp.net",
            "https://",
            "https://h/v",
            "ftp://h",
            "https://h?x",
        ] {
            let error = ConfigOptions {
                media_origin: Some(bad.into()),
                ..o()
            }
            .build()
            .unwrap_err();
            assert_eq!(
                (error.option, error.code()),
                ("media_origin", "invalid_config")
            );
        }
        assert!(
            ConfigOptions {
                media_origin: Some("https://[::1]:8443/".into()),
                ..o()
            }
            .build()
            .is_ok()
        );
    }

    #[test]
    fn debug_hides_the_seed() {
        let options = ConfigOptions {
            unsafe_test_rng_seed: Some(vec![0xab; 32]),
            ..ConfigOptions::default()
        };
        let text = format!("{options:?}");
        assert!(!text.contains("171") && !text.contains("ab"), "{text}");
    }
}
