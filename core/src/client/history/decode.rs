//! A history-sync blob read a piece at a time: the zlib stream is inflated
//! [`HISTORY_INFLATE_STEP`] bytes at a time and the `HistorySync` message is walked field by
//! field as the bytes arrive, so that the decoder holds one element (a conversation, a push
//! name, a LID mapping) and one step of inflated bytes, never the whole history. A conversation
//! is then handed out as its metadata followed by its messages, one at a time.
//!
//! `HistorySync` (features.md §2.5): `syncType (1)`, `conversations (2)`, `chunkOrder (5)`,
//! `progress (6)`, `pushnames (7)`, `phoneNumberToLidMappings (15)`; every other field is
//! skipped without being held.

use miniz_oxide::inflate::stream::{InflateState, inflate};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

use crate::limits::{
    HISTORY_INFLATE_STEP, HISTORY_MAX_INFLATED_BYTES, HISTORY_MAX_ITEM_BYTES,
    HISTORY_MAX_MESSAGE_LIST, HISTORY_MAX_PARTICIPANTS,
};
use crate::proto::wa;
use crate::proto_bounds::{self, Field};

use super::super::messaging::content::decode_message;

/// Why a history blob could not be read. Items handed out before the error stand.
#[cfg_attr(not(feature = "exhaustive"), non_exhaustive)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HistoryDecodeError {
    /// The zlib stream is corrupt (or its checksum does not match).
    #[error("history blob does not inflate")]
    Corrupt,
    /// The stream or the message ends in the middle of an element.
    #[error("history blob is truncated")]
    Truncated,
    /// A bound of `limits.rs` was exceeded (the named one).
    #[error("history blob exceeds the limit on {0}")]
    TooLarge(&'static str),
    /// The inflated bytes are not the protobuf a `HistorySync` is.
    #[error("history blob is malformed: {0}")]
    Malformed(&'static str),
}

impl HistoryDecodeError {
    /// A stable machine-readable code, the same in every binding.
    pub fn code(self) -> &'static str {
        match self {
            HistoryDecodeError::Corrupt => "corrupt",
            HistoryDecodeError::Truncated => "truncated",
            HistoryDecodeError::TooLarge(_) => "too_large",
            HistoryDecodeError::Malformed(_) => "malformed",
        }
    }
}

/// The chunk's own fields, complete once the blob was read to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChunkHeader {
    /// `syncType` (a `HistorySyncType` value).
    pub sync_type: Option<i32>,
    /// `chunkOrder`.
    pub chunk_order: Option<u32>,
    /// `progress` (percent).
    pub progress: Option<u32>,
}

/// One message of a history conversation.
#[derive(Clone, PartialEq)]
pub struct HistoryMessage {
    /// The conversation's `ID` (chat JID text).
    pub chat: String,
    /// The stored message without its content (`message` is `None`): key, timestamp, status,
    /// participant, push name, receipts.
    pub info: wa::WebMessageInfo,
    /// The content, as encoded in the blob (empty for a message without content).
    pub message_bytes: Vec<u8>,
    /// The content, decoded.
    pub message: Option<wa::Message>,
}

impl core::fmt::Debug for HistoryMessage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HistoryMessage")
            .field("chat", &self.chat)
            .field("message_len", &self.message_bytes.len())
            .finish_non_exhaustive()
    }
}

/// One element of a history blob, in the blob's order.
#[derive(Debug, Clone, PartialEq)]
pub enum HistoryItem {
    /// A conversation's metadata (its `messages` empty); its messages follow.
    Conversation(Box<wa::Conversation>),
    /// A message of the conversation handed out last (boxed: its content is a large struct).
    Message(Box<HistoryMessage>),
    /// A contact's push name.
    PushName(wa::Pushname),
    /// A phone number and its LID.
    LidMapping(wa::PhoneNumberToLidMapping),
    /// The blob was read to its end.
    End(ChunkHeader),
}

/// The bytes of the conversation being handed out, and where its next message is looked for.
struct OpenConversation {
    chat: String,
    bytes: Vec<u8>,
    at: usize,
}

/// Reads one history blob (the decrypted, still compressed file) a piece at a time.
pub struct HistoryDecoder {
    inflater: Box<InflateState>,
    input: Vec<u8>,
    consumed: usize,
    /// Inflated bytes not yet walked start at `at`.
    window: Vec<u8>,
    at: usize,
    inflated: usize,
    stream_end: bool,
    /// Bytes of a skipped field still to drop.
    skip: usize,
    open: Option<OpenConversation>,
    header: ChunkHeader,
    done: bool,
}

impl core::fmt::Debug for HistoryDecoder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HistoryDecoder")
            .field("input_len", &self.input.len())
            .field("inflated", &self.inflated)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Drop for HistoryDecoder {
    fn drop(&mut self) {
        // Plaintext of someone's history: wiped on the way out.
        use zeroize::Zeroize;
        self.input.zeroize();
        self.window.zeroize();
        if let Some(open) = self.open.as_mut() {
            open.bytes.zeroize();
        }
    }
}

/// A field as the wire has it.
enum Wire {
    Varint,
    /// The payload's range.
    Len(usize, usize),
    Fixed,
}

/// A varint at the start of `bytes`: `Ok(None)` when more bytes are needed.
fn varint(bytes: &[u8]) -> Result<Option<(u64, usize)>, HistoryDecodeError> {
    let mut value = 0u64;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if i == 9 && *byte > 1 {
                break;
            }
            return Ok(Some((value, i + 1)));
        }
    }
    if bytes.len() >= 10 {
        return Err(HistoryDecodeError::Malformed("varint"));
    }
    Ok(None)
}

/// The field starting at `at` of a complete message: its number, value and end.
fn field(bytes: &[u8], at: usize) -> Result<(u32, Wire, usize), HistoryDecodeError> {
    let rest = bytes.get(at..).unwrap_or_default();
    let (tag, used) = varint(rest)?.ok_or(HistoryDecodeError::Truncated)?;
    let number = u32::try_from(tag >> 3).map_err(|_| HistoryDecodeError::Malformed("tag"))?;
    let start = at + used;
    let tail = bytes.get(start..).unwrap_or_default();
    let (wire, end) = match tag & 7 {
        0 => {
            let (_, used) = varint(tail)?.ok_or(HistoryDecodeError::Truncated)?;
            (Wire::Varint, start + used)
        }
        1 | 5 => {
            let width = if tag & 7 == 1 { 8 } else { 4 };
            if tail.len() < width {
                return Err(HistoryDecodeError::Truncated);
            }
            (Wire::Fixed, start + width)
        }
        2 => {
            let (len, used) = varint(tail)?.ok_or(HistoryDecodeError::Truncated)?;
            let len = usize::try_from(len).map_err(|_| HistoryDecodeError::Truncated)?;
            if tail.len() - used < len {
                return Err(HistoryDecodeError::Truncated);
            }
            let from = start + used;
            (Wire::Len(from, from + len), from + len)
        }
        _ => return Err(HistoryDecodeError::Malformed("wire type")),
    };
    Ok((number, wire, end))
}

/// Bounds of a conversation's metadata (its messages are decoded one at a time).
static CONVERSATION_FIELDS: [Field; 1] = [Field {
    number: 20,
    max: HISTORY_MAX_PARTICIPANTS,
    size: 64,
    fields: &[],
}];

/// Bounds of a `WebMessageInfo` without its content.
static INFO_FIELDS: [Field; 4] = [
    Field {
        number: 26,
        max: HISTORY_MAX_MESSAGE_LIST,
        size: 24,
        fields: &[],
    },
    Field {
        number: 28,
        max: HISTORY_MAX_MESSAGE_LIST,
        size: 24,
        fields: &[],
    },
    Field {
        number: 40,
        max: HISTORY_MAX_MESSAGE_LIST,
        size: 96,
        fields: &RECEIPT_FIELDS,
    },
    Field {
        number: 41,
        max: HISTORY_MAX_MESSAGE_LIST,
        size: 160,
        fields: &[],
    },
];

static RECEIPT_FIELDS: [Field; 2] = [
    Field {
        number: 5,
        max: HISTORY_MAX_MESSAGE_LIST,
        size: 24,
        fields: &[],
    },
    Field {
        number: 6,
        max: HISTORY_MAX_MESSAGE_LIST,
        size: 24,
        fields: &[],
    },
];

/// Decodes a small message after its bounds passed.
fn decode_bounded<M: prost::Message + Default>(
    bytes: &[u8],
    fields: &'static [Field],
    what: &'static str,
) -> Result<M, HistoryDecodeError> {
    proto_bounds::check(bytes, fields).map_err(|_| HistoryDecodeError::Malformed(what))?;
    M::decode(bytes).map_err(|_| HistoryDecodeError::Malformed(what))
}

impl HistoryDecoder {
    /// A decoder of `compressed`, the zlib stream of a decrypted history blob (or an inline
    /// payload).
    pub fn new(compressed: Vec<u8>) -> HistoryDecoder {
        HistoryDecoder {
            inflater: InflateState::new_boxed(DataFormat::Zlib),
            input: compressed,
            consumed: 0,
            window: Vec::new(),
            at: 0,
            inflated: 0,
            stream_end: false,
            skip: 0,
            open: None,
            header: ChunkHeader::default(),
            done: false,
        }
    }

    /// The next element; `Ok(None)` after [`HistoryItem::End`]. After an error the decoder
    /// hands out nothing more.
    pub fn next_item(&mut self) -> Result<Option<HistoryItem>, HistoryDecodeError> {
        if self.done {
            return Ok(None);
        }
        let item = self.step();
        if !matches!(item, Ok(Some(ref i)) if !matches!(i, HistoryItem::End(_))) {
            self.done = true;
        }
        item
    }

    fn step(&mut self) -> Result<Option<HistoryItem>, HistoryDecodeError> {
        loop {
            if let Some(message) = self.next_message()? {
                return Ok(Some(HistoryItem::Message(Box::new(message))));
            }
            if self.skip > 0 {
                let drop = self.skip.min(self.window.len() - self.at);
                self.at += drop;
                self.skip -= drop;
                if self.skip > 0 && !self.fill()? {
                    return Err(HistoryDecodeError::Truncated);
                }
                continue;
            }
            let pending = &self.window[self.at..];
            if pending.is_empty() && !self.fill()? {
                return Ok(Some(HistoryItem::End(self.header)));
            }
            let pending = &self.window[self.at..];
            let Some((tag, used)) = varint(pending)? else {
                if !self.fill()? {
                    return Err(HistoryDecodeError::Truncated);
                }
                continue;
            };
            let number = tag >> 3;
            let tail = &pending[used..];
            match tag & 7 {
                0 => {
                    let Some((value, len)) = varint(tail)? else {
                        if !self.fill()? {
                            return Err(HistoryDecodeError::Truncated);
                        }
                        continue;
                    };
                    self.at += used + len;
                    // Out-of-range values are cut as prost cuts them.
                    match number {
                        1 => self.header.sync_type = Some(value as i32),
                        5 => self.header.chunk_order = Some(value as u32),
                        6 => self.header.progress = Some(value as u32),
                        _ => {}
                    }
                }
                1 | 5 => {
                    self.at += used;
                    self.skip = if tag & 7 == 1 { 8 } else { 4 };
                }
                2 => {
                    let Some((len, len_used)) = varint(tail)? else {
                        if !self.fill()? {
                            return Err(HistoryDecodeError::Truncated);
                        }
                        continue;
                    };
                    let len = usize::try_from(len).unwrap_or(usize::MAX);
                    if !matches!(number, 2 | 7 | 15) {
                        self.at += used + len_used;
                        self.skip = len;
                        continue;
                    }
                    if len > HISTORY_MAX_ITEM_BYTES {
                        return Err(HistoryDecodeError::TooLarge("history element"));
                    }
                    let head = used + len_used;
                    while self.window.len() - self.at < head + len {
                        if !self.fill()? {
                            return Err(HistoryDecodeError::Truncated);
                        }
                    }
                    let start = self.at + head;
                    let end = start + len;
                    self.at = end;
                    // Lent out while the element is read (a move, not a copy).
                    let window = core::mem::take(&mut self.window);
                    let item = self.element(number, &window[start..end]);
                    self.window = window;
                    if let Some(item) = item? {
                        return Ok(Some(item));
                    }
                }
                _ => return Err(HistoryDecodeError::Malformed("wire type")),
            }
        }
    }

    /// A complete top-level element: a push name or mapping, or a conversation opened.
    fn element(
        &mut self,
        number: u64,
        bytes: &[u8],
    ) -> Result<Option<HistoryItem>, HistoryDecodeError> {
        match number {
            7 => Ok(Some(HistoryItem::PushName(decode_bounded(
                bytes,
                &[],
                "push name",
            )?))),
            15 => Ok(Some(HistoryItem::LidMapping(decode_bounded(
                bytes,
                &[],
                "lid mapping",
            )?))),
            _ => {
                // The metadata: every field but the messages, decoded as one Conversation.
                let mut meta = Vec::new();
                let mut at = 0;
                while at < bytes.len() {
                    let (number, _, end) = field(bytes, at)?;
                    if number != 2 {
                        meta.extend_from_slice(&bytes[at..end]);
                    }
                    at = end;
                }
                let conversation: wa::Conversation =
                    decode_bounded(&meta, &CONVERSATION_FIELDS, "conversation")?;
                let chat = conversation
                    .id
                    .clone()
                    .ok_or(HistoryDecodeError::Malformed("conversation without id"))?;
                self.open = Some(OpenConversation {
                    chat,
                    bytes: bytes.to_vec(),
                    at: 0,
                });
                Ok(Some(HistoryItem::Conversation(Box::new(conversation))))
            }
        }
    }

    /// The next message of the open conversation, if any.
    fn next_message(&mut self) -> Result<Option<HistoryMessage>, HistoryDecodeError> {
        let Some(open) = self.open.as_mut() else {
            return Ok(None);
        };
        while open.at < open.bytes.len() {
            let (number, wire, end) = field(&open.bytes, open.at)?;
            open.at = end;
            let (2, Wire::Len(from, to)) = (number, wire) else {
                continue;
            };
            let entry = &open.bytes[from..to];
            // `HistorySyncMsg { message (1) WebMessageInfo, msgOrderId (2) }`.
            let mut info_bytes: &[u8] = &[];
            let mut at = 0;
            while at < entry.len() {
                let (number, wire, end) = field(entry, at)?;
                if let (1, Wire::Len(from, to)) = (number, wire) {
                    info_bytes = &entry[from..to];
                }
                at = end;
            }
            let mut rest = Vec::new();
            let mut content: &[u8] = &[];
            let mut at = 0;
            while at < info_bytes.len() {
                let (number, wire, end) = field(info_bytes, at)?;
                match (number, wire) {
                    (2, Wire::Len(from, to)) => content = &info_bytes[from..to],
                    _ => rest.extend_from_slice(&info_bytes[at..end]),
                }
                at = end;
            }
            let info: wa::WebMessageInfo = decode_bounded(&rest, &INFO_FIELDS, "message info")?;
            let message = if content.is_empty() {
                None
            } else {
                Some(
                    decode_message(content)
                        .map_err(|_| HistoryDecodeError::Malformed("message"))?,
                )
            };
            return Ok(Some(HistoryMessage {
                chat: open.chat.clone(),
                info,
                message_bytes: content.to_vec(),
                message,
            }));
        }
        if let Some(mut open) = self.open.take() {
            zeroize::Zeroize::zeroize(&mut open.bytes);
        }
        Ok(None)
    }

    /// Inflates one more step; `false` at the end of the stream.
    /// The bytes before `at` are dropped first (the rest moves to the start of the window).
    fn fill(&mut self) -> Result<bool, HistoryDecodeError> {
        if self.stream_end {
            return Ok(false);
        }
        let keep = self.at;
        if keep > 0 {
            zeroize::Zeroize::zeroize(&mut self.window[..keep]);
            self.window.drain(..keep);
            self.at -= keep;
        }
        loop {
            let len = self.window.len();
            self.window.resize(len + HISTORY_INFLATE_STEP, 0);
            let input = &self.input[self.consumed..];
            let result = inflate(
                &mut self.inflater,
                input,
                &mut self.window[len..],
                MZFlush::None,
            );
            self.consumed += result.bytes_consumed;
            self.window.truncate(len + result.bytes_written);
            self.inflated = self.inflated.saturating_add(result.bytes_written);
            if self.inflated > HISTORY_MAX_INFLATED_BYTES {
                return Err(HistoryDecodeError::TooLarge("inflated history"));
            }
            match result.status {
                Ok(MZStatus::StreamEnd) => {
                    self.stream_end = true;
                    return Ok(result.bytes_written > 0);
                }
                Ok(_) if result.bytes_written > 0 => return Ok(true),
                Ok(_) if result.bytes_consumed > 0 => {}
                Ok(_) | Err(MZError::Buf) => {
                    return Err(HistoryDecodeError::Truncated);
                }
                Err(_) => return Err(HistoryDecodeError::Corrupt),
            }
        }
    }
}

/// Reads a whole blob into its items, for tests and tools that want them at once.
pub fn decode_all(compressed: Vec<u8>) -> Result<Vec<HistoryItem>, HistoryDecodeError> {
    let mut decoder = HistoryDecoder::new(compressed);
    let mut items = Vec::new();
    while let Some(item) = decoder.next_item()? {
        items.push(item);
    }
    Ok(items)
}

/// Encodes `history` as the phone does (protobuf, then zlib), for tests and benches.
#[cfg(any(test, feature = "testing"))]
pub fn compress_for_testing(history: &wa::HistorySync) -> Vec<u8> {
    use prost::Message as _;
    miniz_oxide::deflate::compress_to_vec_zlib(&history.encode_to_vec(), 6)
}

#[cfg(test)]
mod tests;
