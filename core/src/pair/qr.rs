//! The QR payload a companion shows while waiting to be linked.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::PairError;
use super::keys::{AdvSecret, KeyPair};

/// The prefix WhatsApp Web, whatsmeow and Baileys put in front of the five QR fields since
/// May 2026 (tulir/whatsmeow:pair.go `makeQRData`, WhiskeySockets/Baileys
/// src/Utils/companion-reg-client-utils.ts `buildPairingQRData`).
pub const QR_PREFIX: &str = "https://wa.me/settings/linked_devices#";

/// The kind of companion, shown to the user on the phone: the fifth QR field and the
/// `companion_platform_id` of code pairing (Baileys `CompanionWebClientType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientType {
    /// A Chrome browser.
    Chrome,
    /// An Edge browser.
    Edge,
    /// A Firefox browser.
    Firefox,
    /// Internet Explorer.
    Ie,
    /// An Opera browser.
    Opera,
    /// A Safari browser.
    Safari,
    /// The desktop app built on Electron.
    Electron,
    /// The Windows (UWP) desktop app.
    Uwp,
    /// Any other web client; the default.
    OtherWebClient,
}

impl ClientType {
    /// The client type of a `DeviceProps.PlatformType` number (WACompanionReg.proto: CHROME 1,
    /// FIREFOX 2, IE 3, OPERA 4, SAFARI 5, EDGE 6, DESKTOP 7, UWP 21); any other platform is
    /// [`ClientType::OtherWebClient`], as in tulir/whatsmeow:pair.go `getQRClientType`. The
    /// Android letters need server-side attestation (oxidezap/whatsapp-rust) and are not offered.
    pub fn from_platform_type(platform_type: i32) -> ClientType {
        match platform_type {
            1 => ClientType::Chrome,
            2 => ClientType::Firefox,
            3 => ClientType::Ie,
            4 => ClientType::Opera,
            5 => ClientType::Safari,
            6 => ClientType::Edge,
            7 => ClientType::Electron,
            21 => ClientType::Uwp,
            _ => ClientType::OtherWebClient,
        }
    }

    /// The one-character wire form.
    pub fn as_char(self) -> char {
        match self {
            ClientType::Chrome => '1',
            ClientType::Edge => '2',
            ClientType::Firefox => '3',
            ClientType::Ie => '4',
            ClientType::Opera => '5',
            ClientType::Safari => '6',
            ClientType::Electron => '7',
            ClientType::Uwp => '8',
            ClientType::OtherWebClient => '9',
        }
    }
}

/// An operating system name the server accepts in `companion_platform_display` (the spellings
/// of `ua-parser-js`, which WhatsApp Web sends). A branding string instead of an OS is answered
/// with `400 bad-request` (tulir/whatsmeow:pair-code.go doc comment, whatsmeow issues #449/#450;
/// oxidezap/whatsapp-rust:wacore/src/companion_reg.rs `CompanionOs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompanionOs {
    /// `Windows`.
    Windows,
    /// `Mac OS`.
    MacOs,
    /// `Linux`.
    Linux,
    /// `Android`.
    Android,
    /// `iOS`.
    Ios,
}

impl CompanionOs {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CompanionOs::Windows => "Windows",
            CompanionOs::MacOs => "Mac OS",
            CompanionOs::Linux => "Linux",
            CompanionOs::Android => "Android",
            CompanionOs::Ios => "iOS",
        }
    }

    /// The OS named by a host, in any case: `windows`, `macos` (or the wire's `Mac OS`),
    /// `linux`, `android` or `ios`; `None` for anything else.
    pub fn parse(name: &str) -> Option<CompanionOs> {
        match name.to_ascii_lowercase().as_str() {
            "windows" => Some(CompanionOs::Windows),
            "macos" | "mac os" => Some(CompanionOs::MacOs),
            "linux" => Some(CompanionOs::Linux),
            "android" => Some(CompanionOs::Android),
            "ios" => Some(CompanionOs::Ios),
            _ => None,
        }
    }
}

/// `companion_platform_display` of `companion_hello`: `<Browser> (<OS>)`. Only the six browsers
/// have a name the server accepts; other client types are refused with
/// [`PairError::UnsupportedPlatform`].
pub fn platform_display(client_type: ClientType, os: CompanionOs) -> Result<String, PairError> {
    let browser = match client_type {
        ClientType::Chrome => "Chrome",
        ClientType::Edge => "Edge",
        ClientType::Firefox => "Firefox",
        ClientType::Ie => "IE",
        ClientType::Opera => "Opera",
        ClientType::Safari => "Safari",
        ClientType::Electron | ClientType::Uwp | ClientType::OtherWebClient => {
            return Err(PairError::UnsupportedPlatform);
        }
    };
    Ok(format!("{browser} ({})", os.as_str()))
}

/// The QR payload for one `<ref>`:
/// `https://wa.me/settings/linked_devices#ref,b64(noise pub),b64(identity pub),b64(adv secret),type`
/// with standard, padded base64. Build it when the QR is shown, from the current adv secret,
/// since `companion_reg_refresh` may replace the secret (transport notes §4.5).
pub fn qr_payload(
    reference: &str,
    noise_key: &KeyPair,
    identity_key: &KeyPair,
    adv_secret: &AdvSecret,
    client_type: ClientType,
) -> String {
    format!(
        "{QR_PREFIX}{reference},{},{},{},{}",
        STANDARD.encode(noise_key.public()),
        STANDARD.encode(identity_key.public()),
        STANDARD.encode(adv_secret.as_bytes()),
        client_type.as_char()
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn companion_os_parses_host_names_and_its_wire_spelling() {
        use CompanionOs::*;
        for os in [Windows, MacOs, Linux, Android, Ios] {
            assert_eq!(CompanionOs::parse(os.as_str()), Some(os));
        }
        assert_eq!(CompanionOs::parse("MACOS"), Some(MacOs));
        assert_eq!(CompanionOs::parse("ios"), Some(Ios));
        assert_eq!(CompanionOs::parse("Chrome"), None);
    }

    #[test]
    fn payload_has_five_fields_behind_the_prefix() {
        let noise = KeyPair::from_private([1; 32]);
        let identity = KeyPair::from_private([2; 32]);
        let qr = qr_payload(
            "2@abc",
            &noise,
            &identity,
            &AdvSecret::new([0; 32]),
            ClientType::Chrome,
        );
        let fields: Vec<&str> = qr
            .strip_prefix(QR_PREFIX)
            .map(|rest| rest.split(',').collect())
            .unwrap_or_default();
        assert_eq!(fields.len(), 5);
        assert_eq!(fields[0], "2@abc");
        assert_eq!(fields[3], "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        assert_eq!(fields[4], "1");
    }

    #[test]
    fn platform_display_names_a_browser_and_an_os() {
        assert_eq!(
            platform_display(ClientType::Chrome, CompanionOs::MacOs).unwrap(),
            "Chrome (Mac OS)"
        );
        assert_eq!(
            platform_display(ClientType::OtherWebClient, CompanionOs::Linux),
            Err(PairError::UnsupportedPlatform)
        );
    }

    #[test]
    fn platform_types_map_to_client_types() {
        assert_eq!(ClientType::from_platform_type(6).as_char(), '2');
        assert_eq!(ClientType::from_platform_type(21).as_char(), '8');
        assert_eq!(ClientType::from_platform_type(0).as_char(), '9');
        assert_eq!(ClientType::from_platform_type(16).as_char(), '9');
    }
}
