//! The WABinary node codec: tokens, nodes, attributes and JIDs (transport.md §3).
//!
//! A stanza is a tree of [`Node`]s, sent as a frame body: a flags byte, then the node in the
//! compact binary form every WhatsApp client speaks. [`encode`] produces exactly the bytes
//! WhatsApp Web sends, which are Baileys' `encodeBinaryNode` bytes except in the cases below;
//! [`decode`] validates every byte and returns a typed [`DecodeError`], never a panic, and never
//! allocates more than the input justifies (see [`crate::limits`]).
//!
//! Where walink follows WhatsApp Web rather than Baileys (transport.md §7):
//! - a JID with device 0 (`user:0@s.whatsapp.net`) is sent as `JID_PAIR`; Baileys sends
//!   `AD_JID` with device 0 whenever the text has a `:device` part;
//! - hosted JIDs (`hosted`, `hosted.lid`) are always sent as `AD_JID`, even without a device;
//! - `msgr` and `interop` JIDs are sent as `FB_JID` and `INTEROP_JID`; Baileys can decode these
//!   forms but encodes such strings as `AD_JID`;
//! - a string containing `@` that is not a well-formed JID (see [`Jid`]) is sent as raw text.
//!
//! Other facts the differential tests against Baileys 7.0.0-rc14 established:
//! - Baileys looks tokens up in a plain object (`TOKEN_MAP[str]`), so strings named like
//!   `Object.prototype` members (`constructor`, `toString`, ...) make it write a `0x00` byte;
//!   walink writes them as the raw strings they are.
//! - Baileys' decoder drops the agent of an `AD_JID` (domain byte other than 0, 1, 128, 129);
//!   walink keeps it ([`Jid::agent`], `user_agent:device@server`). Encoding agrees.
//! - Baileys' decoder treats the server of an `INTEROP_JID` as optional (`interop` when absent);
//!   walink, like whatsmeow, requires it.
//! - Bytes after the root node are an error ([`DecodeError::TrailingBytes`]), as in whatsmeow;
//!   Baileys ignores them.
//!
//! Strings versus bytes: on the wire, attribute values and content can be dictionary tokens,
//! packed digit strings, JIDs or length-prefixed bytes. Attribute values always decode as text
//! ([`Value::Str`]) or [`Value::Jid`]; content decodes as [`Content::Bytes`] when it was sent
//! length-prefixed and as [`Content::Str`]/[`Content::Jid`] otherwise.

mod decode;
mod encode;
mod jid;
mod node;
pub mod tape;
mod tokens;

#[cfg(feature = "testing")]
pub use decode::decode_charged;
pub use decode::{DecodeError, decode, unpack};
pub use encode::{encode, encode_into};
pub use jid::{
    BOT_SERVER, BROADCAST_SERVER, DEFAULT_USER_SERVER, GROUP_SERVER, HIDDEN_USER_SERVER,
    HOSTED_LID_SERVER, HOSTED_SERVER, INTEROP_SERVER, Jid, JidParseError, LEGACY_USER_SERVER,
    MESSENGER_SERVER, NEWSLETTER_SERVER,
};
pub use node::{Attr, Content, Node, Value};

/// The wire tag bytes (WhiskeySockets/Baileys:src/WABinary/constants.ts `TAGS`,
/// tulir/whatsmeow:binary/token/token.go). 1–235 are single-byte tokens; 240–244 are unused.
pub(crate) mod tag {
    pub(crate) const LIST_EMPTY: u8 = 0;
    pub(crate) const DICTIONARY_0: u8 = 236;
    pub(crate) const DICTIONARY_3: u8 = 239;
    pub(crate) const INTEROP_JID: u8 = 245;
    pub(crate) const FB_JID: u8 = 246;
    pub(crate) const AD_JID: u8 = 247;
    pub(crate) const LIST_8: u8 = 248;
    pub(crate) const LIST_16: u8 = 249;
    pub(crate) const JID_PAIR: u8 = 250;
    pub(crate) const HEX_8: u8 = 251;
    pub(crate) const BINARY_8: u8 = 252;
    pub(crate) const BINARY_20: u8 = 253;
    pub(crate) const BINARY_32: u8 = 254;
    pub(crate) const NIBBLE_8: u8 = 255;
    /// The most characters a packed string holds.
    pub(crate) const PACKED_MAX: usize = 127;
}

#[cfg(test)]
mod tests;
