//! A flat serialization of a node tree, for bindings that build trees on the other side of an
//! FFI boundary (the wasm package turns it into plain JavaScript objects in one pass).
//!
//! Crossing the boundary once per tree, rather than once per node or string, is what makes the
//! binding fast. Tokens travel as ids, so the host resolves them from a table it fetched once
//! ([`token_table`]) without decoding any UTF-8. The format, all integers LEB128 `u32`:
//!
//! ```text
//! node    := kind:u8  attr_count  str(tag)  (str(key) str(value))*  payload
//! kind    := 0 none | 1 children | 2 bytes | 3 string | 4 bytes by reference
//! payload := (none) | count node* | len byte* | str | offset len
//! str     := h, then, when h is even, h/2 bytes of UTF-8; when h is odd, token id h/2
//! ```
//!
//! Kind 4 means the bytes stay with the host. From [`decode_into`] with `by_reference` (for
//! uncompressed bodies) its payload is `offset len`: the content's place in the frame body, so a
//! host that still holds the body can take a view of it. Into [`encode_spliced`] its payload is
//! `len` alone: the encoder writes the length prefix and records where the host must insert the
//! bytes, so large contents are never copied through the encoder.
//!
//! [`decode`] reads a frame body into a tape (JIDs become strings in [`Jid`]'s text form); [`encode`]
//! writes the frame body of a tape by the same rules as [`super::encode`] (strings that parse as
//! JIDs are sent as JIDs).

use std::io::Write as _;

use super::decode::{DecodeBudget, DecodeError, Item, Reader, Text, WireJid, unpack_within};
use super::encode::Writer;
use super::jid::{INTEROP_SERVER, MESSENGER_SERVER, ad_jid_from_wire};
use super::tokens;
use crate::limits::MAX_NODE_DEPTH;

/// Content kinds in a tape.
const NONE: u8 = 0;
const CHILDREN: u8 = 1;
const BYTES: u8 = 2;
const STRING: u8 = 3;
const BYTES_REF: u8 = 4;

/// The dictionary tokens by id, separated by `\0`: what tape token ids index.
pub fn token_table() -> String {
    let mut table = String::new();
    for id in 0..tokens::COUNT {
        if id > 0 {
            table.push('\0');
        }
        table.push_str(tokens::by_id(id).unwrap_or(""));
    }
    table
}

/// A tape that is not well-formed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TapeError {
    /// The tape ends inside an item.
    #[error("tape ends early")]
    UnexpectedEnd,
    /// An unknown content kind.
    #[error("invalid content kind {0}")]
    InvalidKind(u8),
    /// A token id past the dictionaries.
    #[error("invalid token id {0}")]
    InvalidToken(u32),
    /// A string that is not UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// An empty tag.
    #[error("empty tag")]
    EmptyTag,
    /// More attributes or children than a list header can announce.
    #[error("too many attributes or children")]
    TooLarge,
    /// Nodes nested deeper than `limits::MAX_NODE_DEPTH`.
    #[error("nodes nested too deep")]
    TooDeep,
    /// Bytes left after the root node.
    #[error("bytes after the root node")]
    TrailingBytes,
}

/// Decodes a frame body (flags byte, zlib when flagged) into a tape.
pub fn decode(body: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    decode_into(body, &mut out, false)?;
    Ok(out)
}

/// Decodes a frame body into a tape appended to `out` (cleared first). With `by_reference`,
/// byte content of an uncompressed body is written as kind 4: its offset in `body` and length.
pub fn decode_into(body: &[u8], out: &mut Vec<u8>, by_reference: bool) -> Result<(), DecodeError> {
    let mut budget = DecodeBudget::for_input(body.len());
    let data = unpack_within(body, &mut budget)?;
    // Offsets are relative to the body, whose first byte is the flags byte.
    let reference_base = match &data {
        std::borrow::Cow::Borrowed(_) if by_reference => Some(1),
        _ => None,
    };
    let mut reader = Reader::new(&data);
    write_tape(&mut reader, out, reference_base, &mut budget)
}

/// [`decode`], and the bytes it charged to its budget (a fresh tape buffer's growth included):
/// for the fuzz target that checks that the decoder never allocates more than it charged.
#[cfg(feature = "testing")]
#[doc(hidden)]
pub fn decode_charged(body: &[u8], by_reference: bool) -> (Result<Vec<u8>, DecodeError>, usize) {
    let mut out = Vec::new();
    let mut budget = DecodeBudget::for_input(body.len());
    let result = unpack_within(body, &mut budget).and_then(|data| {
        let reference_base = match &data {
            std::borrow::Cow::Borrowed(_) if by_reference => Some(1),
            _ => None,
        };
        let mut reader = Reader::new(&data);
        write_tape(&mut reader, &mut out, reference_base, &mut budget)
    });
    (result.map(|()| out), budget.charged())
}

/// What [`decode_prefix_into`] made of a prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrefixDecode {
    /// The tape is complete.
    Complete,
    /// The structure reaches past the prefix (or the body is compressed): decode the whole body.
    NeedWhole,
}

/// Decodes a frame body of `body_len` bytes of which `prefix` holds the first ones, into a tape
/// in `out` with every byte content by reference (kind 4, offsets into the whole body).
///
/// Byte contents need not lie in the prefix: only their length headers are read, so a host can
/// hand over the first bytes of a large body and keep the rest. When the decoder needs a byte
/// past the prefix for anything else, or the body is zlib-compressed and the prefix is not the
/// whole body, the result is [`PrefixDecode::NeedWhole`] and `out` holds nothing of use. Errors
/// are those [`decode_into`] gives for the whole body.
pub fn decode_prefix_into(
    prefix: &[u8],
    body_len: usize,
    out: &mut Vec<u8>,
) -> Result<PrefixDecode, DecodeError> {
    let prefix = prefix.get(..body_len).unwrap_or(prefix);
    let (&flags, data) = match prefix.split_first() {
        Some(split) => split,
        None if body_len == 0 => return Err(DecodeError::Empty),
        None => return Ok(PrefixDecode::NeedWhole),
    };
    if flags & 0x02 != 0 {
        if prefix.len() < body_len {
            return Ok(PrefixDecode::NeedWhole);
        }
        decode_into(prefix, out, true)?;
        return Ok(PrefixDecode::Complete);
    }
    let mut reader = Reader::prefix(data, body_len.saturating_sub(1));
    let mut budget = DecodeBudget::for_input(body_len);
    match write_tape(&mut reader, out, Some(1), &mut budget) {
        Ok(()) => Ok(PrefixDecode::Complete),
        Err(_) if reader.is_short() => Ok(PrefixDecode::NeedWhole),
        Err(err) => Err(err),
    }
}

/// Writes the tape of the node `reader` holds into `out` (cleared first); byte contents by
/// reference (at `reference_base` plus their offset in the reader's input) when it is given.
/// Growing `out` (beyond the capacity it came with) is charged to `budget`.
fn write_tape(
    reader: &mut Reader<'_>,
    out: &mut Vec<u8>,
    reference_base: Option<usize>,
    budget: &mut DecodeBudget,
) -> Result<(), DecodeError> {
    out.clear();
    let mut tape = TapeWriter {
        out,
        scratch: Vec::new(),
        budget,
        reference_base,
    };
    tape.reserve(reader.remaining().min(1 << 16) + 16)?;
    tape.node(reader, 0)?;
    reader.finish()
}

/// The most bytes a LEB128 `u32` takes.
const VARINT_MAX: usize = 5;

/// The least a tape buffer grows to.
const TAPE_FIRST_CAPACITY: usize = 64;

/// Makes room for `additional` more bytes in `buf`, doubling its capacity at least; the new
/// allocation is charged to `budget`.
#[inline]
fn grow(
    buf: &mut Vec<u8>,
    additional: usize,
    budget: &mut DecodeBudget,
) -> Result<(), DecodeError> {
    let needed = buf.len().saturating_add(additional);
    if needed > buf.capacity() {
        let capacity = needed
            .max(buf.capacity().saturating_mul(2))
            .max(TAPE_FIRST_CAPACITY);
        budget.spend(capacity)?;
        buf.reserve_exact(capacity - buf.len());
    }
    Ok(())
}

struct TapeWriter<'o, 'b> {
    out: &'o mut Vec<u8>,
    scratch: Vec<u8>,
    budget: &'b mut DecodeBudget,
    reference_base: Option<usize>,
}

impl TapeWriter<'_, '_> {
    #[inline]
    fn reserve(&mut self, additional: usize) -> Result<(), DecodeError> {
        grow(self.out, additional, self.budget)
    }

    fn node(&mut self, r: &mut Reader<'_>, depth: usize) -> Result<(), DecodeError> {
        self.budget.enter_node(depth)?;
        let size = r.node_size()?;
        self.reserve(1 + VARINT_MAX)?;
        let kind_at = self.out.len();
        self.out.push(NONE);
        let attr_count = (size - 1) / 2;
        varint(self.out, u32::try_from(attr_count).unwrap_or(0));
        let tag = r.item()?;
        if matches!(&tag, Item::Text(text) if text.is_empty()) {
            return Err(DecodeError::EmptyNode);
        }
        self.item(tag)?;
        for _ in 0..attr_count {
            let key = r.item()?;
            self.item(key)?;
            let value = r.item()?;
            self.item(value)?;
        }
        if size % 2 == 1 {
            return Ok(());
        }
        let tag_byte = r.byte()?;
        let kind = if let Some(count) = r.list_size(tag_byte)? {
            self.reserve(VARINT_MAX)?;
            varint(self.out, u32::try_from(count).unwrap_or(0));
            for _ in 0..count {
                self.node(r, depth + 1)?;
            }
            CHILDREN
        } else if let Some(kind) = self.bytes(r, tag_byte)? {
            kind
        } else {
            let item = r.string(tag_byte)?;
            self.item(item)?;
            STRING
        };
        if let Some(slot) = self.out.get_mut(kind_at) {
            *slot = kind;
        }
        Ok(())
    }

    /// Writes byte content when `tag_byte` starts one (by reference when the tape is so made);
    /// returns its kind.
    fn bytes(&mut self, r: &mut Reader<'_>, tag_byte: u8) -> Result<Option<u8>, DecodeError> {
        match self.reference_base {
            Some(base) => match r.binary_span(tag_byte)? {
                Some((start, len)) => {
                    self.reserve(2 * VARINT_MAX)?;
                    varint(self.out, u32::try_from(base + start).unwrap_or(0));
                    varint(self.out, u32::try_from(len).unwrap_or(0));
                    Ok(Some(BYTES_REF))
                }
                None => Ok(None),
            },
            None => match r.binary(tag_byte)? {
                Some(bytes) => {
                    self.reserve(VARINT_MAX + bytes.len())?;
                    varint(self.out, u32::try_from(bytes.len()).unwrap_or(0));
                    self.out.extend_from_slice(bytes);
                    Ok(Some(BYTES))
                }
                None => Ok(None),
            },
        }
    }

    fn item(&mut self, item: Item<'_>) -> Result<(), DecodeError> {
        match item {
            Item::Text(Text::Token(id)) => {
                self.reserve(VARINT_MAX)?;
                varint(self.out, u32::from(id) << 1 | 1);
            }
            Item::Text(text) => {
                self.reserve(VARINT_MAX + text.len())?;
                varint(self.out, u32::try_from(text.len()).unwrap_or(0) << 1);
                text.push_to(self.out);
            }
            Item::Jid(jid) => {
                // The text form's length is known only once written: build it aside.
                let mut scratch = std::mem::take(&mut self.scratch);
                scratch.clear();
                grow(&mut scratch, jid.text_len_bound(), self.budget)?;
                write_jid_text(&mut scratch, &jid);
                self.reserve(VARINT_MAX + scratch.len())?;
                varint(self.out, u32::try_from(scratch.len()).unwrap_or(0) << 1);
                self.out.extend_from_slice(&scratch);
                self.scratch = scratch;
            }
        }
        Ok(())
    }
}

/// A wire JID in [`Jid`](super::Jid)'s text form, without building the JID.
fn write_jid_text(out: &mut Vec<u8>, jid: &WireJid<'_>) {
    // Writing into a Vec cannot fail.
    let _ = match jid.domain {
        Some(domain) => {
            // With an empty user, the text form is exactly what follows the user.
            let suffix =
                ad_jid_from_wire(domain, u8::try_from(jid.device).unwrap_or(0), String::new());
            jid.user.push_to(out);
            write!(out, "{suffix}")
        }
        None if jid.server.eq_str(INTEROP_SERVER) => {
            let _ = write!(out, "{}-", jid.integrator);
            jid.user.push_to(out);
            write!(out, ":{}@interop", jid.device)
        }
        None => {
            jid.user.push_to(out);
            if jid.server.eq_str(MESSENGER_SERVER) {
                let _ = write!(out, ":{}", jid.device);
            }
            out.push(b'@');
            jid.server.push_to(out);
            Ok(())
        }
    };
}

fn varint(out: &mut Vec<u8>, mut value: u32) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Encodes a tape into a frame body (flags byte `0x00`, then the node).
pub fn encode(tape: &[u8]) -> Result<Vec<u8>, TapeError> {
    let mut out = Vec::with_capacity(tape.len() + 8);
    encode_into(tape, &mut out)?;
    Ok(out)
}

/// Appends the frame body of a tape to `out`.
pub fn encode_into(tape: &[u8], out: &mut Vec<u8>) -> Result<(), TapeError> {
    encode_tape(tape, out, None)
}

/// Appends the frame body of a tape to `out`, leaving out the bytes of kind-4 contents: for each,
/// in order, `splices` gets the position in `out` where the host must insert them.
pub fn encode_spliced(
    tape: &[u8],
    out: &mut Vec<u8>,
    splices: &mut Vec<u32>,
) -> Result<(), TapeError> {
    encode_tape(tape, out, Some(splices))
}

fn encode_tape(
    tape: &[u8],
    out: &mut Vec<u8>,
    splices: Option<&mut Vec<u32>>,
) -> Result<(), TapeError> {
    out.push(0);
    let mut reader = TapeReader { tape, pos: 0 };
    let mut encoder = Encoder {
        writer: Writer { out },
        splices,
    };
    encode_node(&mut reader, &mut encoder, 0)?;
    if reader.pos == tape.len() {
        Ok(())
    } else {
        Err(TapeError::TrailingBytes)
    }
}

/// A string read from a tape.
enum TapeStr<'a> {
    Token(u16),
    Utf8(&'a str),
}

struct TapeReader<'a> {
    tape: &'a [u8],
    pos: usize,
}

impl<'a> TapeReader<'a> {
    fn byte(&mut self) -> Result<u8, TapeError> {
        let byte = *self.tape.get(self.pos).ok_or(TapeError::UnexpectedEnd)?;
        self.pos += 1;
        Ok(byte)
    }

    fn varint(&mut self) -> Result<u32, TapeError> {
        let mut value = 0u32;
        for shift in (0..35).step_by(7) {
            let byte = self.byte()?;
            value |= u32::from(byte & 0x7F).checked_shl(shift).unwrap_or(0);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(TapeError::TooLarge)
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], TapeError> {
        let end = self.pos.checked_add(len).ok_or(TapeError::UnexpectedEnd)?;
        let bytes = self
            .tape
            .get(self.pos..end)
            .ok_or(TapeError::UnexpectedEnd)?;
        self.pos = end;
        Ok(bytes)
    }

    fn string(&mut self) -> Result<TapeStr<'a>, TapeError> {
        let head = self.varint()?;
        if head & 1 == 1 {
            let id = head >> 1;
            return match u16::try_from(id) {
                Ok(id) if id < tokens::COUNT => Ok(TapeStr::Token(id)),
                _ => Err(TapeError::InvalidToken(id)),
            };
        }
        let bytes = self.take((head >> 1) as usize)?;
        std::str::from_utf8(bytes)
            .map(TapeStr::Utf8)
            .map_err(|_| TapeError::InvalidUtf8)
    }
}

fn write_string(writer: &mut Writer<'_>, text: &TapeStr<'_>) {
    match *text {
        TapeStr::Token(id) => match tokens::code_of_id(id) {
            Some(code) => writer.token(code),
            None => writer.string(""),
        },
        TapeStr::Utf8(text) => writer.string(text),
    }
}

/// A writer and, when splicing, where host-held bytes go.
struct Encoder<'o, 's> {
    writer: Writer<'o>,
    splices: Option<&'s mut Vec<u32>>,
}

fn encode_node(
    r: &mut TapeReader<'_>,
    e: &mut Encoder<'_, '_>,
    depth: usize,
) -> Result<(), TapeError> {
    if depth >= MAX_NODE_DEPTH {
        return Err(TapeError::TooDeep);
    }
    let kind = r.byte()?;
    if kind > BYTES_REF || (kind == BYTES_REF && e.splices.is_none()) {
        return Err(TapeError::InvalidKind(kind));
    }
    let w = &mut e.writer;
    let attr_count = r.varint()? as usize;
    let size = attr_count
        .checked_mul(2)
        .and_then(|n| n.checked_add(1 + usize::from(kind != NONE)))
        .filter(|&n| n <= usize::from(u16::MAX))
        .ok_or(TapeError::TooLarge)?;
    let tag = r.string()?;
    if matches!(tag, TapeStr::Token(0) | TapeStr::Utf8("")) {
        return Err(TapeError::EmptyTag);
    }
    w.list_header(size);
    write_string(w, &tag);
    for _ in 0..attr_count {
        let key = r.string()?;
        write_string(w, &key);
        let value = r.string()?;
        write_string(w, &value);
    }
    match kind {
        CHILDREN => {
            let count = r.varint()? as usize;
            if count > usize::from(u16::MAX) {
                return Err(TapeError::TooLarge);
            }
            w.list_header(count);
            for _ in 0..count {
                encode_node(r, e, depth + 1)?;
            }
        }
        BYTES => {
            let len = r.varint()? as usize;
            let bytes = r.take(len)?;
            w.bytes(bytes);
        }
        STRING => {
            let text = r.string()?;
            write_string(w, &text);
        }
        BYTES_REF => {
            let len = r.varint()? as usize;
            w.byte_length(len);
            let at = u32::try_from(w.out.len()).map_err(|_| TapeError::TooLarge)?;
            if let Some(splices) = e.splices.as_deref_mut() {
                splices.push(at);
            }
        }
        _ => {}
    }
    Ok(())
}
