//! Encoding nodes into the exact bytes WhatsApp Web sends.

use super::jid::{
    DEFAULT_USER_SERVER, HIDDEN_USER_SERVER, HOSTED_LID_SERVER, HOSTED_SERVER, INTEROP_SERVER,
    JidRef, MESSENGER_SERVER,
};
use super::node::{Content, Node, Value};
use super::tag;
use super::tokens;

/// Encodes a node as a frame body: the `0x00` flags byte (outgoing frames are never compressed),
/// then the node. These are the bytes Baileys' `encodeBinaryNode` returns, except where Baileys
/// differs from WhatsApp Web (see [`crate::binary`]).
pub fn encode(node: &Node) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode_into(node, &mut out);
    out
}

/// Appends the frame body of `node` (flags byte and node) to `out`, so a hot path can reuse one
/// buffer.
pub fn encode_into(node: &Node, out: &mut Vec<u8>) {
    out.push(0);
    Writer { out }.node(node);
}

/// The most children or `1 + 2 × attributes + content` a list header can announce (`LIST_16`).
/// Items past it are not sent; no real stanza comes near it.
const MAX_LIST: usize = u16::MAX as usize;

/// Writes wire items into a byte buffer.
pub(crate) struct Writer<'o> {
    pub(crate) out: &'o mut Vec<u8>,
}

impl Writer<'_> {
    fn node(&mut self, node: &Node) {
        let has_content = !matches!(node.content, Content::None);
        let attrs = node.attrs.get(..(MAX_LIST - 2) / 2).unwrap_or(&node.attrs);
        self.list_header(1 + 2 * attrs.len() + usize::from(has_content));
        self.string(&node.tag);
        for attr in attrs {
            self.string(&attr.key);
            match &attr.value {
                Value::Str(text) => self.string(text),
                Value::Jid(jid) => self.jid(jid.as_ref()),
            }
        }
        match &node.content {
            Content::None => {}
            Content::Nodes(children) => {
                let children = children.get(..MAX_LIST).unwrap_or(children);
                self.list_header(children.len());
                for child in children {
                    self.node(child);
                }
            }
            Content::Bytes(bytes) => self.bytes(bytes),
            Content::Str(text) => self.string(text),
            Content::Jid(jid) => self.jid(jid.as_ref()),
        }
    }

    /// `LIST_EMPTY`, `LIST_8 n` or `LIST_16 n` (callers keep `n` within [`MAX_LIST`]).
    pub(crate) fn list_header(&mut self, n: usize) {
        match u8::try_from(n) {
            Ok(0) => self.out.push(tag::LIST_EMPTY),
            Ok(n) => self.out.extend_from_slice(&[tag::LIST_8, n]),
            Err(_) => {
                let n = u16::try_from(n).unwrap_or(u16::MAX);
                self.out.push(tag::LIST_16);
                self.out.extend_from_slice(&n.to_be_bytes());
            }
        }
    }

    /// A string by the rules every client follows (transport.md §3.5): the empty string as
    /// `BINARY_8 0`, a dictionary token, a nibble- or hex-packed string, a JID, else raw UTF-8.
    pub(crate) fn string(&mut self, text: &str) {
        if text.is_empty() {
            self.out.extend_from_slice(&[tag::BINARY_8, 0]);
        } else if let Some(code) = tokens::code(text) {
            self.token(code);
        } else if !self.packed(text) {
            match text
                .contains('@')
                .then(|| JidRef::parse(text).ok())
                .flatten()
            {
                Some(jid) => self.jid(jid),
                None => self.bytes(text.as_bytes()),
            }
        }
    }

    /// A string that must not become a JID: the user and server inside a JID.
    fn jid_part(&mut self, text: &str) {
        if text.is_empty() {
            self.out.extend_from_slice(&[tag::BINARY_8, 0]);
        } else if let Some(code) = tokens::code(text) {
            self.token(code);
        } else if !self.packed(text) {
            self.bytes(text.as_bytes());
        }
    }

    /// A token by its wire code (see `tokens::code`).
    pub(crate) fn token(&mut self, code: u16) {
        match u8::try_from(code) {
            Ok(single) => self.out.push(single),
            Err(_) => self.out.extend_from_slice(&code.to_be_bytes()),
        }
    }

    /// Writes `text` nibble- or hex-packed if it can be; returns whether it did.
    fn packed(&mut self, text: &str) -> bool {
        let bytes = text.as_bytes();
        if bytes.len() > tag::PACKED_MAX {
            return false;
        }
        let (packed_tag, pack): (u8, fn(u8) -> u8) = if bytes.iter().all(|&b| nibble(b).is_some()) {
            (tag::NIBBLE_8, |b| nibble(b).unwrap_or(15))
        } else if bytes.iter().all(|&b| hex(b).is_some()) {
            (tag::HEX_8, |b| hex(b).unwrap_or(15))
        } else {
            return false;
        };
        let odd = bytes.len() % 2;
        // PACKED_MAX is 127, so the half length fits the low 7 bits.
        let half = u8::try_from(bytes.len().div_ceil(2)).unwrap_or(0);
        self.out.push(packed_tag);
        self.out.push(half | if odd == 1 { 0x80 } else { 0 });
        let mut pairs = bytes.chunks_exact(2);
        for pair in &mut pairs {
            if let [high, low] = pair {
                self.out.push(pack(*high) << 4 | pack(*low));
            }
        }
        if let [last] = pairs.remainder() {
            self.out.push(pack(*last) << 4 | 0x0F);
        }
        true
    }

    /// A JID in the form WhatsApp Web uses (transport.md §3.6, §7): `AD_JID` for a device
    /// (device > 0) on `s.whatsapp.net`/`lid` and for every hosted JID, `FB_JID` on `msgr`,
    /// `INTEROP_JID` on `interop`, `JID_PAIR` otherwise (device and agent are not sent).
    /// Baileys instead writes `AD_JID` whenever the text has a `:device`, even `:0`.
    pub(crate) fn jid(&mut self, jid: JidRef<'_>) {
        let device_byte = u8::try_from(jid.device);
        match (jid.server, jid.domain_type(), device_byte) {
            (HOSTED_SERVER | HOSTED_LID_SERVER, Some(domain), Ok(device)) => {
                self.ad_jid(domain, device, jid.user);
            }
            (DEFAULT_USER_SERVER | HIDDEN_USER_SERVER, Some(domain), Ok(device)) if device > 0 => {
                self.ad_jid(domain, device, jid.user);
            }
            (
                DEFAULT_USER_SERVER | HIDDEN_USER_SERVER | HOSTED_SERVER | HOSTED_LID_SERVER,
                _,
                Err(_),
            ) => {
                // A device above 255 cannot be sent in AD_JID; send the text rather than lose it.
                let text = jid.to_owned().to_string();
                self.bytes(text.as_bytes());
            }
            (MESSENGER_SERVER, _, _) => {
                self.out.push(tag::FB_JID);
                self.jid_part(jid.user);
                self.out.extend_from_slice(&jid.device.to_be_bytes());
                self.jid_part(jid.server);
            }
            (INTEROP_SERVER, _, _) => {
                self.out.push(tag::INTEROP_JID);
                self.jid_part(jid.user);
                self.out.extend_from_slice(&jid.device.to_be_bytes());
                self.out.extend_from_slice(&jid.integrator.to_be_bytes());
                self.jid_part(jid.server);
            }
            _ => {
                self.out.push(tag::JID_PAIR);
                if jid.user.is_empty() {
                    self.out.push(tag::LIST_EMPTY);
                } else {
                    self.jid_part(jid.user);
                }
                self.jid_part(jid.server);
            }
        }
    }

    fn ad_jid(&mut self, domain: u8, device: u8, user: &str) {
        self.out.extend_from_slice(&[tag::AD_JID, domain, device]);
        self.jid_part(user);
    }

    /// Bytes with the shortest length prefix: `BINARY_8` below 256, `BINARY_20` below 2²⁰, else
    /// `BINARY_32`. Bytes past 4 GiB cannot be announced and are not sent.
    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        let len = self.byte_length(bytes.len());
        self.out
            .extend_from_slice(bytes.get(..len as usize).unwrap_or(bytes));
    }

    /// The length prefix of `len` bytes (at most `u32::MAX`); returns the length announced.
    pub(crate) fn byte_length(&mut self, len: usize) -> u32 {
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        let [b3, b2, b1, b0] = len.to_be_bytes();
        if len < 1 << 8 {
            self.out.extend_from_slice(&[tag::BINARY_8, b0]);
        } else if len < 1 << 20 {
            self.out.extend_from_slice(&[tag::BINARY_20, b2, b1, b0]);
        } else {
            self.out
                .extend_from_slice(&[tag::BINARY_32, b3, b2, b1, b0]);
        }
        len
    }
}

/// The nibble of a nibble-packable character: `0`–`9`, `-` (10), `.` (11).
fn nibble(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'-' => Some(10),
        b'.' => Some(11),
        _ => None,
    }
}

/// The nibble of a hex-packable character: `0`–`9`, `A`–`F` (upper case only).
fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
