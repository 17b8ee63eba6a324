//! JIDs: the addresses of users, devices, groups, broadcasts, newsletters and servers.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// `s.whatsapp.net`: phone-number users, and (with no user) the server itself.
pub const DEFAULT_USER_SERVER: &str = "s.whatsapp.net";
/// `lid`: hidden (LID) users, numbered like phone-number users.
pub const HIDDEN_USER_SERVER: &str = "lid";
/// `g.us`: groups.
pub const GROUP_SERVER: &str = "g.us";
/// `broadcast`: broadcast lists; `status@broadcast` is status.
pub const BROADCAST_SERVER: &str = "broadcast";
/// `newsletter`: channels.
pub const NEWSLETTER_SERVER: &str = "newsletter";
/// `hosted`: hosted (business-hosted) phone-number accounts.
pub const HOSTED_SERVER: &str = "hosted";
/// `hosted.lid`: hosted LID accounts.
pub const HOSTED_LID_SERVER: &str = "hosted.lid";
/// `msgr`: Messenger identities (sent as `FB_JID`).
pub const MESSENGER_SERVER: &str = "msgr";
/// `interop`: interop identities (sent as `INTEROP_JID`).
pub const INTEROP_SERVER: &str = "interop";
/// `c.us`: the legacy user server.
pub const LEGACY_USER_SERVER: &str = "c.us";
/// `bot`: Meta AI bots.
pub const BOT_SERVER: &str = "bot";

/// A JID, the address of a user, device, group, broadcast list, newsletter or server.
///
/// The text form is Baileys' notation, so JavaScript users see what they know
/// (WhiskeySockets/Baileys:src/WABinary/jid-utils.ts `jidEncode`, decode.ts):
///
/// - `user_agent:device@server`, where `_agent` appears only when the agent is non-zero and
///   `:device` only when the device is non-zero (`15551234567:12@s.whatsapp.net`,
///   `123456789012345@lid`, `120363001234567890-1600000000@g.us`);
/// - `@server` for a JID with no user (`@s.whatsapp.net` is the server itself);
/// - Messenger JIDs always carry the device: `user:device@msgr`;
/// - interop JIDs carry the integrator in front: `integrator-user:device@interop`.
///
/// whatsmeow writes `user.agent:device@server` instead; only the text form differs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Jid {
    /// The user part: a phone number, LID, group id, list id or name; empty for a server JID.
    pub user: String,
    /// The legacy agent of an `s.whatsapp.net` device JID (the `AD_JID` domain byte); 0 normally.
    /// The `lid` and hosted servers have fixed domain bytes and ignore it.
    pub agent: u8,
    /// The device: 0 is the primary phone, companions get a non-zero id at pairing. Device JIDs
    /// on `s.whatsapp.net`, `lid` and the hosted servers carry one byte; Messenger and interop
    /// JIDs carry two.
    pub device: u16,
    /// The integrator of an interop JID; 0 elsewhere.
    pub integrator: u16,
    /// The server: one of the `*_SERVER` constants, or any other server name.
    pub server: Cow<'static, str>,
}

/// A string that is not a JID in Baileys' notation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JidParseError {
    /// No `@` separates user and server.
    #[error("no @ in the JID")]
    MissingAt,
    /// The server is empty or contains an `@`.
    #[error("invalid server in the JID")]
    InvalidServer,
    /// The agent, device or integrator is not a number in range.
    #[error("invalid number in the JID")]
    InvalidNumber,
    /// The user part has more than one agent, device or integrator separator.
    #[error("malformed user part in the JID")]
    MalformedUser,
}

impl Jid {
    /// A JID `user@server` with no agent and no device.
    pub fn new(user: impl Into<String>, server: impl Into<Cow<'static, str>>) -> Self {
        Jid {
            user: user.into(),
            server: server.into(),
            ..Jid::default()
        }
    }

    /// A device JID `user:device@server`.
    pub fn device(
        user: impl Into<String>,
        device: u16,
        server: impl Into<Cow<'static, str>>,
    ) -> Self {
        Jid {
            device,
            ..Jid::new(user, server)
        }
    }

    /// The server's own JID, `@s.whatsapp.net` in text form.
    pub fn server_jid() -> Self {
        Jid::new("", DEFAULT_USER_SERVER)
    }

    /// The same JID without agent and device: the account rather than one of its devices.
    pub fn to_non_device(&self) -> Self {
        Jid {
            user: self.user.clone(),
            server: self.server.clone(),
            integrator: self.integrator,
            ..Jid::default()
        }
    }
}

/// The server a wire `AD_JID` domain byte names (Baileys `readAdJid`, whatsmeow `NewADJID`):
/// 1 is `lid`, 128 `hosted`, 129 `hosted.lid`, anything else an agent on `s.whatsapp.net`.
pub(crate) fn ad_jid_from_wire(domain: u8, device: u8, user: String) -> Jid {
    let (server, agent) = match domain {
        1 => (HIDDEN_USER_SERVER, 0),
        128 => (HOSTED_SERVER, 0),
        129 => (HOSTED_LID_SERVER, 0),
        agent => (DEFAULT_USER_SERVER, agent),
    };
    Jid {
        user,
        agent,
        device: u16::from(device),
        integrator: 0,
        server: Cow::Borrowed(server),
    }
}

/// A server name as a `&'static str` when it is a well-known one, so decoding allocates nothing.
pub(crate) fn intern_server(server: &str) -> Cow<'static, str> {
    match known_server(server) {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(server.to_owned()),
    }
}

/// [`intern_server`] for a server name already allocated: kept as is unless it is well known.
pub(crate) fn intern_owned_server(server: String) -> Cow<'static, str> {
    match known_server(&server) {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(server),
    }
}

fn known_server(server: &str) -> Option<&'static str> {
    const KNOWN: [&str; 11] = [
        DEFAULT_USER_SERVER,
        HIDDEN_USER_SERVER,
        GROUP_SERVER,
        BROADCAST_SERVER,
        NEWSLETTER_SERVER,
        HOSTED_SERVER,
        HOSTED_LID_SERVER,
        MESSENGER_SERVER,
        INTEROP_SERVER,
        LEGACY_USER_SERVER,
        BOT_SERVER,
    ];
    KNOWN.iter().find(|known| **known == server).copied()
}

impl fmt::Display for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.server {
            INTEROP_SERVER => write!(
                f,
                "{}-{}:{}@{}",
                self.integrator, self.user, self.device, self.server
            ),
            MESSENGER_SERVER => write!(f, "{}:{}@{}", self.user, self.device, self.server),
            _ => {
                f.write_str(&self.user)?;
                if self.agent != 0 {
                    write!(f, "_{}", self.agent)?;
                }
                if self.device != 0 {
                    write!(f, ":{}", self.device)?;
                }
                write!(f, "@{}", self.server)
            }
        }
    }
}

impl FromStr for Jid {
    type Err = JidParseError;

    /// Parses Baileys' notation (see [`Jid`]). The user part is everything before the first `@`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(JidRef::parse(text)?.to_owned())
    }
}

/// A JID that borrows its strings: what the encoder parses string values into, allocation-free.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct JidRef<'a> {
    pub(crate) user: &'a str,
    pub(crate) agent: u8,
    pub(crate) device: u16,
    pub(crate) integrator: u16,
    pub(crate) server: &'a str,
}

impl<'a> JidRef<'a> {
    /// The `AD_JID` domain byte for this server, if device JIDs on it use `AD_JID`.
    pub(crate) fn domain_type(&self) -> Option<u8> {
        match self.server {
            DEFAULT_USER_SERVER => Some(self.agent),
            HIDDEN_USER_SERVER => Some(1),
            HOSTED_SERVER => Some(128),
            HOSTED_LID_SERVER => Some(129),
            _ => None,
        }
    }

    /// Parses Baileys' notation strictly: numbers are plain decimal and in range, one separator
    /// of each kind at most, a non-empty server without `@`.
    pub(crate) fn parse(text: &'a str) -> Result<Self, JidParseError> {
        let (user_part, server) = text.split_once('@').ok_or(JidParseError::MissingAt)?;
        if server.is_empty() || server.contains('@') {
            return Err(JidParseError::InvalidServer);
        }
        let (user_part, device) = match user_part.split_once(':') {
            Some((_, device)) if device.contains(':') => return Err(JidParseError::MalformedUser),
            Some((user, device)) => (user, parse_number::<u16>(device)?),
            None => (user_part, 0),
        };
        let mut jid = JidRef {
            user: user_part,
            agent: 0,
            device,
            integrator: 0,
            server,
        };
        if server == INTEROP_SERVER {
            let (integrator, user) = user_part
                .split_once('-')
                .ok_or(JidParseError::MalformedUser)?;
            jid.integrator = parse_number(integrator)?;
            jid.user = user;
        } else if server != MESSENGER_SERVER {
            if device > u16::from(u8::MAX) && jid_uses_ad_form(server) {
                return Err(JidParseError::InvalidNumber);
            }
            if let Some((user, agent)) = user_part.split_once('_') {
                if agent.contains('_') {
                    return Err(JidParseError::MalformedUser);
                }
                jid.user = user;
                jid.agent = parse_number(agent)?;
            }
        }
        Ok(jid)
    }

    /// The owned JID.
    pub(crate) fn to_owned(self) -> Jid {
        Jid {
            user: self.user.to_owned(),
            agent: self.agent,
            device: self.device,
            integrator: self.integrator,
            server: intern_server(self.server),
        }
    }
}

impl Jid {
    /// The borrowed form the encoder writes.
    pub(crate) fn as_ref(&self) -> JidRef<'_> {
        JidRef {
            user: &self.user,
            agent: self.agent,
            device: self.device,
            integrator: self.integrator,
            server: &self.server,
        }
    }
}

fn jid_uses_ad_form(server: &str) -> bool {
    matches!(
        server,
        DEFAULT_USER_SERVER | HIDDEN_USER_SERVER | HOSTED_SERVER | HOSTED_LID_SERVER
    )
}

/// A decimal number with only ASCII digits (no sign, no spaces), in range for `T`.
fn parse_number<T: FromStr>(text: &str) -> Result<T, JidParseError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(JidParseError::InvalidNumber);
    }
    text.parse().map_err(|_| JidParseError::InvalidNumber)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn round_trip(text: &str) -> Jid {
        let jid: Jid = text.parse().unwrap();
        assert_eq!(jid.to_string(), text);
        jid
    }

    #[test]
    fn parses_and_prints_every_form() {
        let user = round_trip("15551234567@s.whatsapp.net");
        assert_eq!((user.user.as_str(), user.device), ("15551234567", 0));
        assert_eq!(round_trip("15551234567:12@s.whatsapp.net").device, 12);
        assert_eq!(round_trip("15551234567_3:12@s.whatsapp.net").agent, 3);
        assert_eq!(round_trip("123456789012345:3@lid").server, "lid");
        assert_eq!(round_trip("@s.whatsapp.net"), Jid::server_jid());
        round_trip("120363001234567890-1600000000@g.us");
        round_trip("status@broadcast");
        round_trip("120363123456789012@newsletter");
        assert_eq!(
            round_trip("15551234567:2@hosted").as_ref().domain_type(),
            Some(128)
        );
        assert_eq!(
            round_trip("1234@hosted.lid").as_ref().domain_type(),
            Some(129)
        );
        assert_eq!(round_trip("100012345:0@msgr").device, 0);
        let interop = round_trip("7-15551234567:300@interop");
        assert_eq!((interop.integrator, interop.device), (7, 300));
        assert_eq!(
            "1@s.whatsapp.net".parse::<Jid>().unwrap().server,
            DEFAULT_USER_SERVER
        );
    }

    #[test]
    fn device_zero_prints_without_device() {
        let jid: Jid = "15551234567:0@s.whatsapp.net".parse().unwrap();
        assert_eq!(jid.to_string(), "15551234567@s.whatsapp.net");
    }

    #[test]
    fn rejects_what_is_not_a_jid() {
        assert_eq!("abc".parse::<Jid>(), Err(JidParseError::MissingAt));
        assert_eq!("abc@".parse::<Jid>(), Err(JidParseError::InvalidServer));
        assert_eq!("a@b@c".parse::<Jid>(), Err(JidParseError::InvalidServer));
        assert_eq!("a:x@lid".parse::<Jid>(), Err(JidParseError::InvalidNumber));
        assert_eq!(
            "a:256@lid".parse::<Jid>(),
            Err(JidParseError::InvalidNumber)
        );
        assert_eq!("a:+1@lid".parse::<Jid>(), Err(JidParseError::InvalidNumber));
        assert_eq!(
            "a:1:2@lid".parse::<Jid>(),
            Err(JidParseError::MalformedUser)
        );
        assert_eq!("a_b@g.us".parse::<Jid>(), Err(JidParseError::InvalidNumber));
        assert_eq!(
            "1:2@interop".parse::<Jid>(),
            Err(JidParseError::MalformedUser)
        );
    }

    proptest::proptest! {
        #[test]
        fn text_form_round_trips(
            user in "[0-9a-zA-Z.-]{0,20}",
            server in proptest::sample::select(vec![
                DEFAULT_USER_SERVER, HIDDEN_USER_SERVER, GROUP_SERVER, BROADCAST_SERVER,
                NEWSLETTER_SERVER, HOSTED_SERVER, HOSTED_LID_SERVER, MESSENGER_SERVER,
                INTEROP_SERVER, BOT_SERVER, "other.example",
            ]),
            agent: u8,
            device: u16,
            integrator: u16,
        ) {
            let mut jid = Jid::new(user, server);
            match server {
                MESSENGER_SERVER => jid.device = device,
                INTEROP_SERVER => {
                    jid.device = device;
                    jid.integrator = integrator;
                }
                DEFAULT_USER_SERVER | HIDDEN_USER_SERVER | HOSTED_SERVER | HOSTED_LID_SERVER => {
                    jid.device = device % 256;
                    jid.agent = agent;
                }
                _ => {
                    jid.device = device;
                    jid.agent = agent;
                }
            }
            let text = jid.to_string();
            proptest::prop_assert_eq!(text.parse::<Jid>(), Ok(jid));
        }
    }
}
