//! Decoding frame bodies into nodes, validating every byte.

use std::borrow::Cow;
use std::fmt;

use super::jid::{Jid, ad_jid_from_wire, intern_owned_server};
use super::node::{Attr, Content, Node, Value};
use super::tag;
use super::tokens;
use crate::limits::{MAX_DECODED_NODES, MAX_INFLATED_NODE, MAX_NODE_DEPTH, decode_budget};

/// Why a frame body is not a valid node. Every variant is the peer's fault (malformed input).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The frame body is empty: not even the flags byte.
    #[error("empty frame body")]
    Empty,
    /// The input ends inside an item, or a length points past its end.
    #[error("unexpected end of input")]
    UnexpectedEnd,
    /// A tag byte that is not valid where it stands (240–244 are never valid).
    #[error("invalid tag byte {0:#04x}")]
    InvalidTag(u8),
    /// A node whose list size is 0 or whose tag is the empty string.
    #[error("empty node")]
    EmptyNode,
    /// A packed string with a nibble outside its alphabet.
    #[error("invalid packed nibble {0}")]
    InvalidNibble(u8),
    /// A raw string (tag, attribute or JID part) that is not UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// A JID with no server, or whose user or server is itself a JID.
    #[error("invalid JID")]
    InvalidJid,
    /// Nodes nested deeper than `limits::MAX_NODE_DEPTH`.
    #[error("nodes nested too deep")]
    TooDeep,
    /// More nodes than `limits::MAX_DECODED_NODES` in one frame.
    #[error("too many nodes in one frame")]
    TooManyNodes,
    /// Bytes left over after the root node.
    #[error("{0} bytes after the node")]
    TrailingBytes(usize),
    /// The compressed payload is not a valid zlib stream.
    #[error("invalid zlib payload")]
    Inflate,
    /// The compressed payload inflates past `limits::MAX_INFLATED_NODE`, or past what the
    /// frame's decode budget leaves for it.
    #[error("inflated payload too large")]
    InflatedTooLarge,
    /// Decoding would allocate more than the frame's budget (`limits::decode_budget` of the
    /// body's length).
    #[error("decoding exceeds the frame's memory budget")]
    OverBudget,
}

impl DecodeError {
    /// A stable machine-readable code naming the defect (`unexpected_end`, `too_deep`, ...),
    /// the same in every binding.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::Empty => "empty",
            DecodeError::UnexpectedEnd => "unexpected_end",
            DecodeError::InvalidTag(_) => "invalid_tag",
            DecodeError::EmptyNode => "empty_node",
            DecodeError::InvalidNibble(_) => "invalid_nibble",
            DecodeError::InvalidUtf8 => "invalid_utf8",
            DecodeError::InvalidJid => "invalid_jid",
            DecodeError::TooDeep => "too_deep",
            DecodeError::TooManyNodes => "too_many_nodes",
            DecodeError::TrailingBytes(_) => "trailing_bytes",
            DecodeError::Inflate => "inflate",
            DecodeError::InflatedTooLarge => "inflated_too_large",
            DecodeError::OverBudget => "over_budget",
        }
    }
}

/// Decodes a frame body: the flags byte, then the node, inflated first when flag `0x02` is set
/// (transport.md §3.1). Nothing may follow the node. Everything the decoder allocates, the
/// inflated bytes included, is counted against one budget, `limits::decode_budget` of the
/// body's length.
pub fn decode(body: &[u8]) -> Result<Node, DecodeError> {
    decode_within(body, &mut DecodeBudget::for_input(body.len()))
}

fn decode_within(body: &[u8], budget: &mut DecodeBudget) -> Result<Node, DecodeError> {
    let data = unpack_within(body, budget)?;
    let mut reader = Reader::new(&data);
    let node = read_node(&mut reader, 0, budget)?;
    reader.finish()?;
    Ok(node)
}

/// [`decode`], and the bytes it charged to its budget: for the fuzz target that checks that
/// the decoder never allocates more than it charged.
#[cfg(feature = "testing")]
#[doc(hidden)]
pub fn decode_charged(body: &[u8]) -> (Result<Node, DecodeError>, usize) {
    let mut budget = DecodeBudget::for_input(body.len());
    let node = decode_within(body, &mut budget);
    (node, budget.charged())
}

/// The node bytes of a frame body: without the flags byte, inflated when flag `0x02` is set.
/// The inflated size is capped at `limits::MAX_INFLATED_NODE` and by the body's decode budget,
/// and the buffer grows only as output is actually produced.
pub fn unpack(body: &[u8]) -> Result<Cow<'_, [u8]>, DecodeError> {
    unpack_within(body, &mut DecodeBudget::for_input(body.len()))
}

/// [`unpack`], counting the inflated bytes against `budget`.
pub(crate) fn unpack_within<'a>(
    body: &'a [u8],
    budget: &mut DecodeBudget,
) -> Result<Cow<'a, [u8]>, DecodeError> {
    let (&flags, data) = body.split_first().ok_or(DecodeError::Empty)?;
    if flags & 0x02 == 0 {
        return Ok(Cow::Borrowed(data));
    }
    inflate(data, budget).map(Cow::Owned)
}

/// Inflates a zlib stream into a buffer that doubles as output is produced, each allocation
/// counted against `budget` (so the transient copies of growth are counted too).
fn inflate(data: &[u8], budget: &mut DecodeBudget) -> Result<Vec<u8>, DecodeError> {
    use miniz_oxide::inflate::TINFLStatus;
    use miniz_oxide::inflate::core::{DecompressorOxide, decompress, inflate_flags};

    let mut spend = |bytes: usize| {
        budget
            .spend(bytes)
            .map_err(|_| DecodeError::InflatedTooLarge)
    };
    spend(size_of::<DecompressorOxide>())?;
    let mut state = Box::<DecompressorOxide>::default();
    let flags = inflate_flags::TINFL_FLAG_PARSE_ZLIB_HEADER
        | inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
    let first = data
        .len()
        .saturating_mul(2)
        .clamp(INFLATE_FIRST_BUFFER, MAX_INFLATED_NODE);
    spend(first)?;
    let mut out = vec![0u8; first];
    let mut input = data;
    let mut written = 0;
    loop {
        let (status, consumed, produced) = decompress(&mut state, input, &mut out, written, flags);
        written += produced;
        input = input.get(consumed..).unwrap_or_default();
        match status {
            TINFLStatus::Done => {
                out.truncate(written);
                return Ok(out);
            }
            TINFLStatus::HasMoreOutput if out.len() < MAX_INFLATED_NODE => {
                let grown = out.len().saturating_mul(2).min(MAX_INFLATED_NODE);
                spend(grown)?;
                out.reserve_exact(grown - out.len());
                out.resize(grown, 0);
            }
            TINFLStatus::HasMoreOutput => return Err(DecodeError::InflatedTooLarge),
            _ => return Err(DecodeError::Inflate),
        }
    }
}

/// The first output buffer of an inflation, at least: a frame body worth compressing inflates
/// to more than this.
const INFLATE_FIRST_BUFFER: usize = 4096;

/// What one decode may still spend: nodes against `limits::MAX_DECODED_NODES`, nesting against
/// `limits::MAX_NODE_DEPTH`, and bytes of memory against `limits::decode_budget` of the input.
///
/// Every allocation a decoder makes is charged before it is made, at its full size (a `Vec`'s
/// capacity, a string's bytes), and nothing is ever refunded: the sum of the charges bounds the
/// decoder's peak memory whatever the input.
pub(crate) struct DecodeBudget {
    nodes: usize,
    bytes: usize,
    #[cfg(feature = "testing")]
    initial: usize,
}

impl DecodeBudget {
    /// The budget of decoding an input of `len` bytes.
    pub(crate) fn for_input(len: usize) -> DecodeBudget {
        DecodeBudget {
            nodes: 0,
            bytes: decode_budget(len),
            #[cfg(feature = "testing")]
            initial: decode_budget(len),
        }
    }

    /// The bytes charged so far.
    #[cfg(feature = "testing")]
    pub(crate) fn charged(&self) -> usize {
        self.initial - self.bytes
    }

    /// Counts one more node, at `depth`.
    #[inline]
    pub(crate) fn enter_node(&mut self, depth: usize) -> Result<(), DecodeError> {
        if depth >= MAX_NODE_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        self.nodes += 1;
        if self.nodes > MAX_DECODED_NODES {
            return Err(DecodeError::TooManyNodes);
        }
        Ok(())
    }

    /// Charges an allocation of `bytes` bytes.
    #[inline]
    pub(crate) fn spend(&mut self, bytes: usize) -> Result<(), DecodeError> {
        match self.bytes.checked_sub(bytes) {
            Some(left) => {
                self.bytes = left;
                Ok(())
            }
            None => Err(DecodeError::OverBudget),
        }
    }

    /// Charges a buffer of `count` values of `T`.
    #[inline]
    fn spend_on<T>(&mut self, count: usize) -> Result<(), DecodeError> {
        self.spend(count.saturating_mul(size_of::<T>()))
    }
}

fn read_node(
    r: &mut Reader<'_>,
    depth: usize,
    budget: &mut DecodeBudget,
) -> Result<Node, DecodeError> {
    budget.enter_node(depth)?;
    let size = r.node_size()?;
    let tag = r.item()?;
    budget.spend(tag.text_cost())?;
    let tag = tag.into_text();
    if tag.is_empty() {
        return Err(DecodeError::EmptyNode);
    }
    let attr_count = (size - 1) / 2;
    // Each attribute takes at least two bytes: never reserve more than the input can hold.
    let capacity = attr_count.min(r.remaining() / 2);
    budget.spend_on::<Attr>(capacity)?;
    let mut attrs = Vec::with_capacity(capacity);
    for _ in 0..attr_count {
        let key = r.item()?;
        budget.spend(key.text_cost())?;
        let key = key.into_text();
        let value = r.item()?;
        budget.spend(value.value_cost())?;
        attrs.push(Attr {
            key,
            value: value.into_value(),
        });
    }
    let content = if size % 2 == 0 {
        read_content(r, depth, budget)?
    } else {
        Content::None
    };
    Ok(Node {
        tag,
        attrs,
        content,
    })
}

fn read_content(
    r: &mut Reader<'_>,
    depth: usize,
    budget: &mut DecodeBudget,
) -> Result<Content, DecodeError> {
    let tag_byte = r.byte()?;
    if let Some(count) = r.list_size(tag_byte)? {
        // A node takes at least three bytes.
        let capacity = count.min(r.remaining() / 3);
        budget.spend_on::<Node>(capacity)?;
        let mut children = Vec::with_capacity(capacity);
        for _ in 0..count {
            children.push(read_node(r, depth + 1, budget)?);
        }
        return Ok(Content::Nodes(children));
    }
    if let Some(bytes) = r.binary(tag_byte)? {
        budget.spend(bytes.len())?;
        return Ok(Content::Bytes(bytes.to_vec()));
    }
    let item = r.string(tag_byte)?;
    budget.spend(item.value_cost())?;
    Ok(item.into_content())
}

/// A string as the wire sent it, before any allocation.
pub(crate) enum Text<'a> {
    /// A dictionary token, by id (see [`tokens::by_id`]).
    Token(u16),
    /// Raw UTF-8 from the input.
    Raw(&'a str),
    /// A nibble- or hex-packed string of `len` characters, validated, unpacked on use.
    Packed {
        /// `HEX_8` rather than `NIBBLE_8`.
        hex: bool,
        /// The packed bytes.
        bytes: &'a [u8],
        /// The number of characters.
        len: usize,
    },
}

impl Text<'_> {
    /// Whether the string is empty.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The length of the string's UTF-8, in bytes.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        match self {
            Text::Token(id) => tokens::by_id(*id).map_or(0, str::len),
            Text::Raw(text) => text.len(),
            Text::Packed { len, .. } => *len,
        }
    }

    /// Appends the UTF-8 of the string.
    pub(crate) fn push_to(&self, out: &mut Vec<u8>) {
        match self {
            Text::Token(id) => out.extend_from_slice(tokens::by_id(*id).unwrap_or("").as_bytes()),
            Text::Raw(text) => out.extend_from_slice(text.as_bytes()),
            Text::Packed { hex, bytes, len } => out.extend(unpacked(*hex, bytes, *len)),
        }
    }

    /// Whether the string is `text`, without allocating.
    pub(crate) fn eq_str(&self, text: &str) -> bool {
        match self {
            Text::Token(id) => tokens::by_id(*id) == Some(text),
            Text::Raw(raw) => *raw == text,
            Text::Packed { hex, bytes, len } => {
                *len == text.len() && unpacked(*hex, bytes, *len).eq(text.bytes())
            }
        }
    }

    /// What [`Text::into_cow`] allocates: nothing for a token, its bytes otherwise.
    #[inline]
    fn cow_cost(&self) -> usize {
        match self {
            Text::Token(_) => 0,
            other => other.len(),
        }
    }

    /// The string as a node string: a token is borrowed, anything else allocated at exactly its
    /// length ([`Text::cow_cost`] bytes).
    #[inline]
    pub(crate) fn into_cow(self) -> Cow<'static, str> {
        match self {
            Text::Token(id) => Cow::Borrowed(tokens::by_id(id).unwrap_or("")),
            other => Cow::Owned(other.to_owned_string()),
        }
    }

    /// The string, allocated at exactly its length.
    fn to_owned_string(&self) -> String {
        match self {
            Text::Raw(text) => (*text).to_owned(),
            other => {
                let mut out = Vec::with_capacity(other.len());
                other.push_to(&mut out);
                // Tokens are UTF-8 and packed strings ASCII.
                String::from_utf8(out).unwrap_or_default()
            }
        }
    }
}

/// The characters of a packed string.
fn unpacked(hex: bool, bytes: &[u8], len: usize) -> impl Iterator<Item = u8> + '_ {
    let alphabet = if hex { HEX_CHARS } else { NIBBLE_CHARS };
    bytes
        .iter()
        .flat_map(|&b| [b >> 4, b & 0x0F])
        .take(len)
        .map(|nibble| alphabet.get(usize::from(nibble)).copied().unwrap_or(b'0'))
}

/// The characters of the nibble alphabet (12–14 never pass validation; 15 is padding).
const NIBBLE_CHARS: &[u8; 16] = b"0123456789-.\0\0\0\0";
/// The characters of the hex alphabet.
const HEX_CHARS: &[u8; 16] = b"0123456789ABCDEF";

/// A JID as the wire sent it.
pub(crate) struct WireJid<'a> {
    pub(crate) user: Text<'a>,
    pub(crate) server: Text<'a>,
    /// `AD_JID` domain byte, when the wire used `AD_JID`.
    pub(crate) domain: Option<u8>,
    pub(crate) device: u16,
    pub(crate) integrator: u16,
}

impl WireJid<'_> {
    /// What [`WireJid::into_jid`] allocates at most: its user, and its server unless a token.
    #[inline]
    fn jid_cost(&self) -> usize {
        self.user.len() + self.server.cow_cost()
    }

    /// The JID; its user, and a server that is not a well-known one, are allocated
    /// ([`WireJid::jid_cost`] bytes at most).
    #[inline]
    pub(crate) fn into_jid(self) -> Jid {
        let user = self.user.to_owned_string();
        match self.domain {
            Some(domain) => ad_jid_from_wire(domain, u8::try_from(self.device).unwrap_or(0), user),
            None => Jid {
                user,
                agent: 0,
                device: self.device,
                integrator: self.integrator,
                server: match self.server {
                    Text::Token(id) => Cow::Borrowed(tokens::by_id(id).unwrap_or("")),
                    other => intern_owned_server(other.to_owned_string()),
                },
            },
        }
    }

    /// The most bytes the JID's text form takes: its user and server, and at most
    /// [`JID_TEXT_EXTRA`] for the separators, numbers and an `AD_JID`'s server name.
    pub(crate) fn text_len_bound(&self) -> usize {
        self.user.len() + self.server.len() + JID_TEXT_EXTRA
    }
}

/// What a JID's text form adds to its user and wire server, at most: an agent, device and
/// integrator (five digits each), their separators, `@`, and the longest server an `AD_JID`
/// domain byte names.
pub(crate) const JID_TEXT_EXTRA: usize = 48;

/// One decoded string item: text or a JID.
pub(crate) enum Item<'a> {
    Text(Text<'a>),
    Jid(WireJid<'a>),
}

impl Item<'_> {
    /// What [`Item::into_text`] allocates at most: nothing for a token (borrowed), its bytes
    /// for other text, the JID and its text form for a JID.
    #[inline]
    pub(crate) fn text_cost(&self) -> usize {
        match self {
            Item::Text(text) => text.cow_cost(),
            Item::Jid(jid) => jid.jid_cost() + jid.text_len_bound(),
        }
    }

    /// What [`Item::into_value`] (and [`Item::into_content`]) allocates at most.
    #[inline]
    fn value_cost(&self) -> usize {
        match self {
            Item::Text(text) => text.cow_cost(),
            Item::Jid(jid) => jid.jid_cost(),
        }
    }

    /// The item as text; a JID is written in Baileys' notation.
    #[inline]
    pub(crate) fn into_text(self) -> Cow<'static, str> {
        match self {
            Item::Text(text) => text.into_cow(),
            Item::Jid(jid) => {
                let mut text = String::with_capacity(jid.text_len_bound());
                let jid = jid.into_jid();
                // Writing into a String cannot fail.
                let _ = fmt::Write::write_fmt(&mut text, format_args!("{jid}"));
                Cow::Owned(text)
            }
        }
    }

    /// The item as an attribute value.
    #[inline]
    fn into_value(self) -> Value {
        match self {
            Item::Text(text) => Value::Str(text.into_cow()),
            Item::Jid(jid) => Value::Jid(jid.into_jid()),
        }
    }

    /// The item as node content.
    fn into_content(self) -> Content {
        match self {
            Item::Text(text) => Content::Str(text.into_cow()),
            Item::Jid(jid) => Content::Jid(jid.into_jid()),
        }
    }
}

/// A cursor over node bytes; every read is bounds-checked.
///
/// The reader may hold only a prefix of the input ([`Reader::prefix`]): lengths are checked
/// against the whole input, and a read that needs bytes past the prefix fails and marks the
/// reader [`short`](Reader::is_short), so the caller can retry with the whole input.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    /// The length of the whole input; `data` holds its first bytes.
    len: usize,
    pos: usize,
    short: bool,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Reader {
            data,
            len: data.len(),
            pos: 0,
            short: false,
        }
    }

    /// A reader of an input of `len` bytes of which `data` holds the first (at most `len`).
    pub(crate) fn prefix(data: &'a [u8], len: usize) -> Self {
        let data = data.get(..len).unwrap_or(data);
        Reader {
            data,
            len: len.max(data.len()),
            pos: 0,
            short: false,
        }
    }

    /// Whether a read failed only because it needed bytes past the prefix.
    pub(crate) fn is_short(&self) -> bool {
        self.short
    }

    /// The error for a read that needed the input up to `end`; when `end` is within the whole
    /// input, the read failed only for want of the prefix, and the reader is marked short.
    fn past_prefix(&mut self, end: usize) -> DecodeError {
        if end <= self.len {
            self.short = true;
        }
        DecodeError::UnexpectedEnd
    }

    pub(crate) fn remaining(&self) -> usize {
        self.len.saturating_sub(self.pos)
    }

    /// Succeeds only if the whole input was consumed.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            left => Err(DecodeError::TrailingBytes(left)),
        }
    }

    pub(crate) fn byte(&mut self) -> Result<u8, DecodeError> {
        match self.data.get(self.pos) {
            Some(&byte) => {
                self.pos += 1;
                Ok(byte)
            }
            None => Err(self.past_prefix(self.pos + 1)),
        }
    }

    /// `n` bytes, checked against the input before anything is allocated.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::UnexpectedEnd)?;
        match self.data.get(self.pos..end) {
            Some(bytes) => {
                self.pos = end;
                Ok(bytes)
            }
            None => Err(self.past_prefix(end)),
        }
    }

    /// Skips `n` bytes, which need not be in the prefix; returns where they start.
    fn skip(&mut self, n: usize) -> Result<usize, DecodeError> {
        let start = self.pos;
        let end = start
            .checked_add(n)
            .filter(|&end| end <= self.len)
            .ok_or(DecodeError::UnexpectedEnd)?;
        self.pos = end;
        Ok(start)
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        let bytes = self.take(2)?;
        Ok(bytes.iter().fold(0, |acc, &b| acc << 8 | u16::from(b)))
    }

    fn uint(&mut self, n: usize) -> Result<usize, DecodeError> {
        let bytes = self.take(n)?;
        Ok(bytes.iter().fold(0, |acc, &b| acc << 8 | usize::from(b)))
    }

    /// The size of a node's list: must be a list tag and non-zero.
    pub(crate) fn node_size(&mut self) -> Result<usize, DecodeError> {
        let tag_byte = self.byte()?;
        match self.list_size(tag_byte)? {
            None => Err(DecodeError::InvalidTag(tag_byte)),
            Some(0) => Err(DecodeError::EmptyNode),
            Some(size) => Ok(size),
        }
    }

    /// The announced size when `tag_byte` is a list tag.
    pub(crate) fn list_size(&mut self, tag_byte: u8) -> Result<Option<usize>, DecodeError> {
        Ok(match tag_byte {
            tag::LIST_EMPTY => Some(0),
            tag::LIST_8 => Some(usize::from(self.byte()?)),
            tag::LIST_16 => Some(usize::from(self.u16()?)),
            _ => None,
        })
    }

    /// The bytes when `tag_byte` is a `BINARY_*` tag; the length is checked against the input.
    pub(crate) fn binary(&mut self, tag_byte: u8) -> Result<Option<&'a [u8]>, DecodeError> {
        match self.binary_length(tag_byte)? {
            Some(len) => self.take(len).map(Some),
            None => Ok(None),
        }
    }

    /// Like [`Reader::binary`], but only the bytes' place in the input, `(start, len)`: the
    /// bytes themselves need not be in the prefix.
    pub(crate) fn binary_span(
        &mut self,
        tag_byte: u8,
    ) -> Result<Option<(usize, usize)>, DecodeError> {
        match self.binary_length(tag_byte)? {
            Some(len) => self.skip(len).map(|start| Some((start, len))),
            None => Ok(None),
        }
    }

    fn binary_length(&mut self, tag_byte: u8) -> Result<Option<usize>, DecodeError> {
        Ok(Some(match tag_byte {
            tag::BINARY_8 => usize::from(self.byte()?),
            tag::BINARY_20 => self.uint(3)? & 0x0F_FFFF,
            tag::BINARY_32 => self.uint(4)?,
            _ => return Ok(None),
        }))
    }

    /// The next string item (tag byte included).
    pub(crate) fn item(&mut self) -> Result<Item<'a>, DecodeError> {
        let tag_byte = self.byte()?;
        self.string(tag_byte)
    }

    /// A string item whose tag byte was already read.
    pub(crate) fn string(&mut self, tag_byte: u8) -> Result<Item<'a>, DecodeError> {
        let item = match tag_byte {
            tag::JID_PAIR => {
                let user = self.text()?;
                let server = self.text()?;
                if server.is_empty() {
                    return Err(DecodeError::InvalidJid);
                }
                Item::Jid(WireJid {
                    user,
                    server,
                    domain: None,
                    device: 0,
                    integrator: 0,
                })
            }
            tag::AD_JID => {
                let domain = self.byte()?;
                let device = self.byte()?;
                Item::Jid(WireJid {
                    user: self.text()?,
                    server: Text::Token(0),
                    domain: Some(domain),
                    device: u16::from(device),
                    integrator: 0,
                })
            }
            tag::FB_JID => {
                let user = self.text()?;
                let device = self.u16()?;
                let server = self.text()?;
                if server.is_empty() {
                    return Err(DecodeError::InvalidJid);
                }
                Item::Jid(WireJid {
                    user,
                    server,
                    domain: None,
                    device,
                    integrator: 0,
                })
            }
            tag::INTEROP_JID => {
                let user = self.text()?;
                let device = self.u16()?;
                let integrator = self.u16()?;
                let server = self.text()?;
                if server.is_empty() {
                    return Err(DecodeError::InvalidJid);
                }
                Item::Jid(WireJid {
                    user,
                    server,
                    domain: None,
                    device,
                    integrator,
                })
            }
            other => Item::Text(self.text_with(other)?),
        };
        Ok(item)
    }

    /// A string that may not be a JID: a part of a JID.
    fn text(&mut self) -> Result<Text<'a>, DecodeError> {
        let tag_byte = self.byte()?;
        match tag_byte {
            tag::JID_PAIR | tag::AD_JID | tag::FB_JID | tag::INTEROP_JID => {
                Err(DecodeError::InvalidJid)
            }
            other => self.text_with(other),
        }
    }

    fn text_with(&mut self, tag_byte: u8) -> Result<Text<'a>, DecodeError> {
        match tag_byte {
            // LIST_EMPTY stands for the empty (absent) string, e.g. the user of a server JID.
            tag::LIST_EMPTY => Ok(Text::Token(0)),
            1..tag::DICTIONARY_0 => Ok(Text::Token(u16::from(tag_byte))),
            tag::DICTIONARY_0..=tag::DICTIONARY_3 => {
                let index = self.byte()?;
                Ok(Text::Token(tokens::double_id(
                    tag_byte - tag::DICTIONARY_0,
                    index,
                )))
            }
            tag::NIBBLE_8 | tag::HEX_8 => self.packed(tag_byte),
            _ => match self.binary(tag_byte)? {
                Some(bytes) => std::str::from_utf8(bytes)
                    .map(Text::Raw)
                    .map_err(|_| DecodeError::InvalidUtf8),
                None => Err(DecodeError::InvalidTag(tag_byte)),
            },
        }
    }

    /// A packed string, validated: every nibble that is a character is in the alphabet.
    fn packed(&mut self, tag_byte: u8) -> Result<Text<'a>, DecodeError> {
        let start = self.byte()?;
        let bytes = self.take(usize::from(start & 0x7F))?;
        // The padding nibble of an odd-length string is dropped unread (as every client does).
        let len = (bytes.len() * 2).saturating_sub(usize::from(start >> 7));
        let hex = tag_byte == tag::HEX_8;
        let invalid = bytes
            .iter()
            .flat_map(|&b| [b >> 4, b & 0x0F])
            .take(len)
            .find(|&nibble| !hex && nibble > 11);
        match invalid {
            Some(nibble) => Err(DecodeError::InvalidNibble(nibble)),
            None => Ok(Text::Packed { hex, bytes, len }),
        }
    }
}
