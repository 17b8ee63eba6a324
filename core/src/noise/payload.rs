//! Builders for the `ClientPayload` sent inside ClientFinish (transport.md §2.7): one for a fresh
//! registration (a device that is not paired yet) and one for the login of a paired device.
//!
//! The WhatsApp Web version is configuration ([`WebVersion`] in [`ClientProfile`]): an outdated
//! version is refused by the server with `<failure reason="405">`, and the current one can be
//! read from `https://web.whatsapp.com/sw.js` (`"client_revision": N` gives `2.3000.N`;
//! WhiskeySockets/Baileys:src/Utils/generics.ts `fetchLatestWaWebVersion`).

use core::fmt;

use md5::{Digest, Md5};

use crate::proto::wa::client_payload::user_agent::{AppVersion, Platform, ReleaseChannel};
use crate::proto::wa::client_payload::web_info::WebSubPlatform;
use crate::proto::wa::client_payload::{
    ConnectReason, ConnectType, DevicePairingRegistrationData, UserAgent, WebInfo,
};
use crate::proto::wa::device_props::{self, HistorySyncConfig, PlatformType};
use crate::proto::wa::{ClientPayload, DeviceProps};
use crate::signal::xeddsa;

/// Signal's key-type byte for Curve25519 ("DJB") public keys.
const DJB_KEY_TYPE: u8 = 0x05;

/// A WhatsApp Web version `primary.secondary.tertiary`, e.g. `2.3000.1045649367`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WebVersion {
    /// First component (2).
    pub primary: u32,
    /// Second component (3000).
    pub secondary: u32,
    /// Third component (the web client revision).
    pub tertiary: u32,
}

impl WebVersion {
    /// The version `primary.secondary.tertiary`.
    pub const fn new(primary: u32, secondary: u32, tertiary: u32) -> Self {
        WebVersion {
            primary,
            secondary,
            tertiary,
        }
    }

    /// Parses `"2.3000.1045649367"`; `None` unless it is three decimal u32s separated by dots.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('.').map(|part| part.parse::<u32>().ok());
        let version = WebVersion::new(parts.next()??, parts.next()??, parts.next()??);
        parts.next().is_none().then_some(version)
    }

    /// The registration build hash: MD5 of the ASCII version string (whatsmeow
    /// store/clientpayload.go; Baileys `generateRegistrationNode`).
    pub fn build_hash(&self) -> [u8; 16] {
        Md5::digest(self.to_string().as_bytes()).into()
    }
}

impl fmt::Display for WebVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.primary, self.secondary, self.tertiary)
    }
}

/// How this client presents itself: version, name and platform shown on the phone, locale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientProfile {
    /// The WhatsApp Web version to announce.
    pub version: WebVersion,
    /// `DeviceProps.os`: in practice the name the phone shows for the linked device.
    pub device_name: String,
    /// `DeviceProps.platformType`: the icon the phone shows (and the QR client-type character).
    pub platform_type: PlatformType,
    /// `DeviceProps.version`: the companion's own version (major, minor, patch).
    pub device_version: (u32, u32, u32),
    /// `UserAgent.localeLanguageIso6391`, e.g. `"en"`.
    pub language: String,
    /// `UserAgent.localeCountryIso31661Alpha2`, e.g. `"US"`.
    pub country: String,
    /// `pushName`, sent when set.
    pub push_name: Option<String>,
    /// `passive` on login. whatsmeow and Baileys send `true`; whatsapp-rust sends `false`,
    /// following WA Web so that offline messages flow on connect (transport.md §2.7, §7).
    /// Either way the client sends `<active/>` after `<success>`.
    pub passive_login: bool,
    /// How much history to ask the phone for when pairing (`DeviceProps.requireFullSync` and
    /// `historySyncConfig`).
    pub history: HistoryRequest,
}

/// How much of its history the phone sends a companion it links (features.md §2.6). Sent once,
/// in the registration payload: a change applies from the next pairing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HistoryScope {
    /// What a browser asks for: recent history (the phone's choice, about three months).
    #[default]
    Recent,
    /// The full history (`requireFullSync`), as WhatsApp's desktop app asks for it.
    Full,
    /// No conversations: the companion asks for none, and skips any chunk of conversations the
    /// phone sends anyway (push names and other data still arrive).
    None,
}

/// The history a new companion asks for: a scope and optional limits. Phones have been seen
/// to ignore the limits, so the client also drops messages older than `days` itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HistoryRequest {
    /// Recent, full, or none.
    pub scope: HistoryScope,
    /// Days of history (`recentSyncDaysLimit`, or `fullSyncDaysLimit` for a full sync).
    pub days: Option<u32>,
    /// Messages per chat in the initial sync (`initialSyncMaxMessagesPerChat`).
    pub messages_per_chat: Option<u32>,
    /// Size of a full sync in MB (`fullSyncSizeMbLimit`).
    pub size_mb: Option<u32>,
}

impl ClientProfile {
    /// A web-browser profile announcing `version`, shown on the phone as `device_name`.
    pub fn new(version: WebVersion, device_name: impl Into<String>) -> Self {
        ClientProfile {
            version,
            device_name: device_name.into(),
            platform_type: PlatformType::Chrome,
            device_version: (0, 1, 0),
            language: "en".to_owned(),
            country: "US".to_owned(),
            push_name: None,
            passive_login: false,
            history: HistoryRequest::default(),
        }
    }
}

/// The Signal keys a new device registers with.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistrationKeys {
    /// The Signal registration id.
    pub registration_id: u32,
    /// The identity public key (32 bytes, no 0x05 prefix).
    pub identity_public: [u8; 32],
    /// The signed prekey's id; must fit in 24 bits.
    pub signed_prekey_id: u32,
    /// The signed prekey's public key (32 bytes, no 0x05 prefix).
    pub signed_prekey_public: [u8; 32],
    /// XEdDSA signature by the identity key over `0x05 || signed_prekey_public`.
    pub signed_prekey_signature: [u8; 64],
}

impl fmt::Debug for RegistrationKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistrationKeys")
            .field("registration_id", &self.registration_id)
            .field("signed_prekey_id", &self.signed_prekey_id)
            .finish_non_exhaustive()
    }
}

/// Why a ClientPayload could not be built (caller misuse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The signed prekey id does not fit in the 3 bytes the payload carries.
    #[error("signed prekey id does not fit in 24 bits")]
    SignedPreKeyIdTooLarge,
    /// The signed prekey signature does not verify under the identity key.
    #[error("signed prekey signature does not verify")]
    BadSignedPreKeySignature,
}

/// The fields common to both payload kinds (whatsmeow store/clientpayload.go, Baileys
/// src/Utils/validate-connection.ts, whatsapp-rust wacore/src/store/device.rs agree on them).
fn base_payload(profile: &ClientProfile) -> ClientPayload {
    let version = profile.version;
    ClientPayload {
        user_agent: Some(UserAgent {
            platform: Some(Platform::Web as i32),
            app_version: Some(AppVersion {
                primary: Some(version.primary),
                secondary: Some(version.secondary),
                tertiary: Some(version.tertiary),
                ..AppVersion::default()
            }),
            mcc: Some("000".to_owned()),
            mnc: Some("000".to_owned()),
            os_version: Some("0.1".to_owned()),
            device: Some("Desktop".to_owned()),
            os_build_number: Some("0.1".to_owned()),
            release_channel: Some(ReleaseChannel::Release as i32),
            locale_language_iso6391: Some(profile.language.clone()),
            locale_country_iso31661_alpha2: Some(profile.country.clone()),
            ..UserAgent::default()
        }),
        web_info: Some(WebInfo {
            web_sub_platform: Some(WebSubPlatform::WebBrowser as i32),
            ..WebInfo::default()
        }),
        push_name: profile.push_name.clone(),
        connect_type: Some(ConnectType::WifiUnknown as i32),
        connect_reason: Some(ConnectReason::UserActivated as i32),
        ..ClientPayload::default()
    }
}

/// The `DeviceProps` of a new companion. The history-sync capabilities are Baileys' set
/// (src/Utils/validate-connection.ts `generateRegistrationNode`).
pub fn device_props(profile: &ClientProfile) -> DeviceProps {
    let (major, minor, patch) = profile.device_version;
    let history = profile.history;
    // `None` asks for zero days of recent history.
    let days = |scope: HistoryScope| match history.scope {
        HistoryScope::None if scope == HistoryScope::Recent => Some(0),
        current if current == scope => history.days,
        _ => None,
    };
    DeviceProps {
        os: Some(profile.device_name.clone()),
        version: Some(device_props::AppVersion {
            primary: Some(major),
            secondary: Some(minor),
            tertiary: Some(patch),
            ..device_props::AppVersion::default()
        }),
        platform_type: Some(profile.platform_type as i32),
        require_full_sync: Some(history.scope == HistoryScope::Full),
        history_sync_config: Some(HistorySyncConfig {
            recent_sync_days_limit: days(HistoryScope::Recent),
            full_sync_days_limit: days(HistoryScope::Full),
            full_sync_size_mb_limit: history
                .size_mb
                .filter(|_| history.scope == HistoryScope::Full),
            initial_sync_max_messages_per_chat: match history.scope {
                HistoryScope::None => Some(0),
                _ => history.messages_per_chat,
            },
            storage_quota_mb: Some(10240),
            inline_initial_payload_in_e2_ee_msg: Some(true),
            support_call_log_history: Some(false),
            support_bot_user_agent_chat_history: Some(true),
            support_cag_reactions_and_polls: Some(true),
            support_biz_hosted_msg: Some(true),
            support_recent_sync_chunk_message_count_tuning: Some(true),
            support_hosted_group_msg: Some(true),
            support_fbid_bot_chat_history: Some(true),
            support_message_association: Some(true),
            support_group_history: Some(false),
            ..HistorySyncConfig::default()
        }),
    }
}

/// The ClientPayload of a device that is not paired yet: `passive` and `pull` false, and the
/// registration data (registration id as 4 bytes big-endian, key type 0x05, identity key, signed
/// prekey id as 3 bytes big-endian, its key and signature, build hash, device props).
pub fn registration_payload(
    profile: &ClientProfile,
    keys: &RegistrationKeys,
) -> Result<ClientPayload, PayloadError> {
    let [id_high, id_b1, id_b2, id_b3] = keys.signed_prekey_id.to_be_bytes();
    if id_high != 0 {
        return Err(PayloadError::SignedPreKeyIdTooLarge);
    }
    let mut signed = [DJB_KEY_TYPE; 33];
    if let Some(rest) = signed.get_mut(1..) {
        rest.copy_from_slice(&keys.signed_prekey_public);
    }
    if !xeddsa::verify(
        &keys.identity_public,
        &signed,
        &keys.signed_prekey_signature,
    ) {
        return Err(PayloadError::BadSignedPreKeySignature);
    }
    use prost::Message;
    Ok(ClientPayload {
        passive: Some(false),
        pull: Some(false),
        device_pairing_data: Some(DevicePairingRegistrationData {
            e_regid: Some(keys.registration_id.to_be_bytes().to_vec()),
            e_keytype: Some(vec![DJB_KEY_TYPE]),
            e_ident: Some(keys.identity_public.to_vec()),
            e_skey_id: Some(vec![id_b1, id_b2, id_b3]),
            e_skey_val: Some(keys.signed_prekey_public.to_vec()),
            e_skey_sig: Some(keys.signed_prekey_signature.to_vec()),
            build_hash: Some(profile.version.build_hash().to_vec()),
            device_props: Some(device_props(profile).encode_to_vec()),
        }),
        ..base_payload(profile)
    })
}

/// The ClientPayload of a paired device logging in as `username` (the phone number, the user
/// part of its own JID) with device id `device` (the `:N` of its own JID): `pull` true, `passive`
/// as configured, `lidDbMigrated` false (Baileys, whatsapp-rust).
pub fn login_payload(profile: &ClientProfile, username: u64, device: u32) -> ClientPayload {
    ClientPayload {
        username: Some(username),
        device: Some(device),
        passive: Some(profile.passive_login),
        pull: Some(true),
        lid_db_migrated: Some(false),
        ..base_payload(profile)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::noise::NoiseKeyPair;

    fn profile() -> ClientProfile {
        ClientProfile::new(WebVersion::new(2, 3000, 1_045_649_367), "walink")
    }

    fn keys() -> RegistrationKeys {
        let identity = NoiseKeyPair::from_private([11; 32]);
        let prekey = NoiseKeyPair::from_private([12; 32]).public_key();
        let mut signed = vec![DJB_KEY_TYPE];
        signed.extend_from_slice(&prekey);
        RegistrationKeys {
            registration_id: 0x0102_0304,
            identity_public: identity.public_key(),
            signed_prekey_id: 0x0a0b0c,
            signed_prekey_public: prekey,
            signed_prekey_signature: xeddsa::sign(&identity.private_key(), &signed, &[1; 64]),
        }
    }

    #[test]
    fn web_version_parses_prints_and_hashes() {
        let version = WebVersion::parse("2.3000.1045649367").unwrap();
        assert_eq!(version, WebVersion::new(2, 3000, 1_045_649_367));
        assert_eq!(version.to_string(), "2.3000.1045649367");
        assert_eq!(WebVersion::parse("2.3000"), None);
        assert_eq!(WebVersion::parse("2.3000.1.4"), None);
        assert_eq!(WebVersion::parse("2.x.1"), None);
        // MD5("2.3000.1045649367"), computed independently with `md5sum`.
        assert_eq!(
            hex::encode(version.build_hash()),
            "9fa53af9421567b114e33c9bb1ef7db2"
        );
    }

    #[test]
    fn registration_payload_carries_the_keys() {
        let keys = keys();
        let payload = registration_payload(&profile(), &keys).unwrap();
        assert_eq!(payload.passive, Some(false));
        assert_eq!(payload.pull, Some(false));
        assert_eq!(payload.username, None);
        let data = payload.device_pairing_data.unwrap();
        assert_eq!(data.e_regid.unwrap(), [1, 2, 3, 4]);
        assert_eq!(data.e_keytype.unwrap(), [5]);
        assert_eq!(data.e_skey_id.unwrap(), [0x0a, 0x0b, 0x0c]);
        assert_eq!(data.e_ident.unwrap(), keys.identity_public);
        let props = DeviceProps::decode(data.device_props.unwrap().as_slice()).unwrap();
        assert_eq!(props.os.as_deref(), Some("walink"));
        assert_eq!(props.platform_type, Some(PlatformType::Chrome as i32));
    }

    #[test]
    fn device_props_carry_the_history_asked_for() {
        let config = |profile: &ClientProfile| device_props(profile).history_sync_config.unwrap();
        let mut profile = profile();
        let default = device_props(&profile);
        assert_eq!(default.require_full_sync, Some(false));
        let recent = config(&profile);
        assert_eq!(recent.recent_sync_days_limit, None);
        assert_eq!(recent.initial_sync_max_messages_per_chat, None);
        profile.history = HistoryRequest {
            scope: HistoryScope::Recent,
            days: Some(30),
            messages_per_chat: Some(20),
            size_mb: Some(9),
        };
        let recent = config(&profile);
        assert_eq!(recent.recent_sync_days_limit, Some(30));
        assert_eq!(recent.full_sync_days_limit, None);
        assert_eq!(recent.full_sync_size_mb_limit, None);
        assert_eq!(recent.initial_sync_max_messages_per_chat, Some(20));
        profile.history.scope = HistoryScope::Full;
        assert_eq!(device_props(&profile).require_full_sync, Some(true));
        let full = config(&profile);
        assert_eq!(full.recent_sync_days_limit, None);
        assert_eq!(full.full_sync_days_limit, Some(30));
        assert_eq!(full.full_sync_size_mb_limit, Some(9));
        profile.history.scope = HistoryScope::None;
        let none = config(&profile);
        assert_eq!(none.recent_sync_days_limit, Some(0));
        assert_eq!(none.initial_sync_max_messages_per_chat, Some(0));
        assert_eq!(device_props(&profile).require_full_sync, Some(false));
    }

    #[test]
    fn registration_refuses_bad_keys() {
        let mut bad = keys();
        bad.signed_prekey_id = 1 << 24;
        assert_eq!(
            registration_payload(&profile(), &bad),
            Err(PayloadError::SignedPreKeyIdTooLarge)
        );
        let mut bad = keys();
        bad.signed_prekey_signature[0] ^= 1;
        assert_eq!(
            registration_payload(&profile(), &bad),
            Err(PayloadError::BadSignedPreKeySignature)
        );
    }

    #[test]
    fn login_payload_names_the_device() {
        let payload = login_payload(&profile(), 15_551_234_567, 7);
        assert_eq!(payload.username, Some(15_551_234_567));
        assert_eq!(payload.device, Some(7));
        assert_eq!(payload.pull, Some(true));
        assert_eq!(payload.passive, Some(false));
        assert!(payload.device_pairing_data.is_none());
        let agent = payload.user_agent.unwrap();
        assert_eq!(agent.platform, Some(Platform::Web as i32));
        assert_eq!(agent.app_version.unwrap().tertiary, Some(1_045_649_367));
    }
}
