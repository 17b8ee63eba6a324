//! The connection header and the 3-byte big-endian length framing (transport.md §1).
//!
//! Every frame, in both directions, is `length (3 bytes, big-endian) || payload`. The client's
//! first WebSocket message starts with the connection header `WA 06 03`, optionally preceded by
//! the edge-routing pre-intro. A WebSocket message is only a chunk of the byte stream: it may hold
//! several frames or part of one, so [`FrameDecoder`] accepts chunks of any size.

use crate::limits::{FRAME_PREALLOCATION, MAX_FRAME_PAYLOAD, MAX_ROUTING_INFO};

/// The connection header: `WA`, socket version 6, token dictionary version 3
/// (tulir/whatsmeow:socket/constants.go `WAConnHeader`; Baileys `NOISE_WA_HEADER`). Only these
/// four bytes are the Noise prologue, never the pre-intro.
pub const CONNECTION_HEADER: [u8; 4] = [b'W', b'A', 6, 3];

/// The first four bytes of the edge-routing pre-intro: `ED`, 0, 1, then a 3-byte length and the
/// routing blob the server gave in `<ib><edge_routing><routing_info>`
/// (oxidezap/whatsapp-rust:wacore/noise/src/edge_routing.rs; Baileys noise-handler.ts).
pub const EDGE_ROUTING_MAGIC: [u8; 4] = [b'E', b'D', 0, 1];

/// Bytes of the length prefix.
pub const LENGTH_PREFIX: usize = 3;

/// Why bytes could not be framed or unframed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A frame larger than the limit (announced by the peer, or given to encode).
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The frame's payload length.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// An edge-routing blob longer than its 3-byte length can express.
    #[error("routing info of {0} bytes is too large")]
    RoutingInfoTooLarge(usize),
    /// The stream does not start with the connection header (server side only).
    #[error("invalid connection header")]
    InvalidHeader,
}

/// The bytes a client sends before its first frame: the edge-routing pre-intro when it has
/// routing info, then [`CONNECTION_HEADER`].
pub fn connection_header(routing_info: Option<&[u8]>) -> Result<Vec<u8>, FrameError> {
    let Some(info) = routing_info else {
        return Ok(CONNECTION_HEADER.to_vec());
    };
    let len = length_prefix(info.len(), MAX_ROUTING_INFO)
        .map_err(|_| FrameError::RoutingInfoTooLarge(info.len()))?;
    let mut out = Vec::with_capacity(4 + LENGTH_PREFIX + info.len() + 4);
    out.extend_from_slice(&EDGE_ROUTING_MAGIC);
    out.extend_from_slice(&len);
    out.extend_from_slice(info);
    out.extend_from_slice(&CONNECTION_HEADER);
    Ok(out)
}

/// One frame: the 3-byte length, then the payload.
pub fn encode_frame(payload: &[u8]) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::with_capacity(LENGTH_PREFIX + payload.len());
    encode_frame_into(payload, &mut out)?;
    Ok(out)
}

/// Appends one frame to `out`.
pub fn encode_frame_into(payload: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
    out.extend_from_slice(&length_prefix(payload.len(), MAX_FRAME_PAYLOAD)?);
    out.extend_from_slice(payload);
    Ok(())
}

fn length_prefix(len: usize, max: usize) -> Result<[u8; 3], FrameError> {
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    let [_, b2, b1, b0] = u32::try_from(len)
        .map_err(|_| FrameError::TooLarge { len, max })?
        .to_be_bytes();
    Ok([b2, b1, b0])
}

/// Where a [`FrameDecoder`] is in the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Stage {
    /// Server side: waiting for the optional pre-intro and the connection header.
    Header,
    /// Cutting frames.
    Frames,
}

/// Cuts a byte stream into frames. Feed chunks of any size with [`push`](Self::push), then take
/// frames with [`next_frame`](Self::next_frame) until it returns `Ok(None)`.
///
/// The buffer only ever holds bytes actually received: an announced length reserves nothing
/// beyond `limits::FRAME_PREALLOCATION`. A frame above the limit is an error, and stays one on
/// every later call: the connection must be closed.
#[derive(Clone, Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
    max_payload: usize,
    stage: Stage,
    routing_info: Option<Vec<u8>>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new()
    }
}

impl FrameDecoder {
    /// A decoder for frames from the server (no header), limited to `limits::MAX_FRAME_PAYLOAD`.
    pub fn new() -> Self {
        FrameDecoder {
            buf: Vec::new(),
            start: 0,
            max_payload: MAX_FRAME_PAYLOAD,
            stage: Stage::Frames,
            routing_info: None,
        }
    }

    /// A decoder for a client's stream, as a server reads it: the optional edge-routing
    /// pre-intro and the connection header come first (see [`routing_info`](Self::routing_info)).
    pub fn expecting_header() -> Self {
        FrameDecoder {
            stage: Stage::Header,
            ..FrameDecoder::new()
        }
    }

    /// The same decoder with a lower frame limit.
    #[must_use]
    pub fn with_max_payload(mut self, max_payload: usize) -> Self {
        self.max_payload = max_payload.min(MAX_FRAME_PAYLOAD);
        self
    }

    /// The edge-routing blob the client sent in its pre-intro, once the header was read.
    pub fn routing_info(&self) -> Option<&[u8]> {
        self.routing_info.as_deref()
    }

    /// Bytes received and not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame's payload, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if self.stage == Stage::Header && !self.read_header()? {
            return Ok(None);
        }
        let pending = self.buf.get(self.start..).unwrap_or(&[]);
        let Some(len) = read_length(pending) else {
            return Ok(None);
        };
        if len > self.max_payload {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_payload,
            });
        }
        let Some(payload) = pending.get(LENGTH_PREFIX..LENGTH_PREFIX + len) else {
            // Reserve for the rest of the frame, but never more than was actually sent plus a
            // bounded step: the peer's announcement alone pins no memory.
            let missing = LENGTH_PREFIX + len - pending.len();
            self.buf.reserve(missing.min(FRAME_PREALLOCATION));
            return Ok(None);
        };
        let frame = payload.to_vec();
        self.start += LENGTH_PREFIX + len;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        Ok(Some(frame))
    }

    /// Reads the pre-intro and header; `Ok(false)` if more bytes are needed.
    fn read_header(&mut self) -> Result<bool, FrameError> {
        let pending = self.buf.get(self.start..).unwrap_or(&[]);
        let mut used = 0;
        if pending.len() < 2 && EDGE_ROUTING_MAGIC.starts_with(pending) {
            return Ok(false);
        }
        let routing = if pending.starts_with(&EDGE_ROUTING_MAGIC[..2]) {
            if pending.len() < EDGE_ROUTING_MAGIC.len() + LENGTH_PREFIX {
                return Ok(false);
            }
            if !pending.starts_with(&EDGE_ROUTING_MAGIC) {
                return Err(FrameError::InvalidHeader);
            }
            let len = read_length(pending.get(4..).unwrap_or(&[])).unwrap_or(0);
            used = 4 + LENGTH_PREFIX + len;
            match pending.get(4 + LENGTH_PREFIX..used) {
                Some(info) => Some(info.to_vec()),
                None => return Ok(false),
            }
        } else {
            None
        };
        let rest = pending.get(used..).unwrap_or(&[]);
        let compared = rest.len().min(CONNECTION_HEADER.len());
        if rest.get(..compared) != CONNECTION_HEADER.get(..compared) {
            return Err(FrameError::InvalidHeader);
        }
        if compared < CONNECTION_HEADER.len() {
            return Ok(false);
        }
        self.start += used + CONNECTION_HEADER.len();
        self.routing_info = routing;
        self.stage = Stage::Frames;
        Ok(true)
    }
}

/// The 3-byte big-endian length at the start of `bytes`, if present.
fn read_length(bytes: &[u8]) -> Option<usize> {
    match bytes {
        [b2, b1, b0, ..] => Some(usize::from(*b2) << 16 | usize::from(*b1) << 8 | usize::from(*b0)),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn frames_of(decoder: &mut FrameDecoder) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        while let Some(frame) = decoder.next_frame().unwrap() {
            frames.push(frame);
        }
        frames
    }

    #[test]
    fn header_and_first_frame_match_the_known_vector() {
        // transport.md A.1: 57 41 06 03 | 00 00 24 | 12 22 0A 20 | E(32 bytes).
        let mut hello = vec![0x12, 0x22, 0x0A, 0x20];
        hello.extend_from_slice(&[0xEE; 32]);
        let mut wire = connection_header(None).unwrap();
        wire.extend(encode_frame(&hello).unwrap());
        assert_eq!(&wire[..7], &[0x57, 0x41, 0x06, 0x03, 0x00, 0x00, 0x24]);
        assert_eq!(&wire[7..], &hello[..]);
    }

    #[test]
    fn pre_intro_precedes_the_header() {
        let wire = connection_header(Some(&[9, 8, 7])).unwrap();
        assert_eq!(wire, [0x45, 0x44, 0, 1, 0, 0, 3, 9, 8, 7, 0x57, 0x41, 6, 3]);
        assert_eq!(
            connection_header(Some(&vec![0; MAX_ROUTING_INFO + 1])),
            Err(FrameError::RoutingInfoTooLarge(MAX_ROUTING_INFO + 1))
        );
    }

    #[test]
    fn one_byte_at_a_time_and_many_frames_at_once() {
        let payloads: Vec<Vec<u8>> = vec![vec![], vec![1], vec![2; 300], vec![3; 70_000]];
        let mut wire = Vec::new();
        for payload in &payloads {
            encode_frame_into(payload, &mut wire).unwrap();
        }
        let mut decoder = FrameDecoder::new();
        let mut got = Vec::new();
        for byte in &wire {
            decoder.push(std::slice::from_ref(byte));
            got.extend(frames_of(&mut decoder));
        }
        assert_eq!(got, payloads);
        assert_eq!(decoder.buffered(), 0);

        let mut decoder = FrameDecoder::new();
        decoder.push(&wire);
        assert_eq!(frames_of(&mut decoder), payloads);
    }

    #[test]
    fn rejects_frames_over_the_limit_without_reserving_them() {
        let mut decoder = FrameDecoder::new().with_max_payload(100);
        decoder.push(&[0, 0, 101]);
        let err = FrameError::TooLarge { len: 101, max: 100 };
        assert_eq!(decoder.next_frame(), Err(err.clone()));
        assert_eq!(decoder.next_frame(), Err(err));

        let mut decoder = FrameDecoder::new();
        decoder.push(&[0xFF, 0xFF, 0xFF, 1]);
        assert_eq!(decoder.next_frame(), Ok(None));
        assert!(decoder.buf.capacity() <= 16 + FRAME_PREALLOCATION);

        assert_eq!(
            encode_frame(&vec![0; MAX_FRAME_PAYLOAD + 1]),
            Err(FrameError::TooLarge {
                len: MAX_FRAME_PAYLOAD + 1,
                max: MAX_FRAME_PAYLOAD
            })
        );
    }

    #[test]
    fn server_side_reads_pre_intro_and_header() {
        let mut wire = connection_header(Some(b"route")).unwrap();
        wire.extend(encode_frame(b"hello").unwrap());
        let mut decoder = FrameDecoder::expecting_header();
        let mut got = Vec::new();
        for byte in &wire {
            decoder.push(std::slice::from_ref(byte));
            got.extend(frames_of(&mut decoder));
        }
        assert_eq!(got, vec![b"hello".to_vec()]);
        assert_eq!(decoder.routing_info(), Some(&b"route"[..]));

        let mut plain = FrameDecoder::expecting_header();
        plain.push(&CONNECTION_HEADER);
        plain.push(&encode_frame(b"x").unwrap());
        assert_eq!(frames_of(&mut plain), vec![b"x".to_vec()]);
        assert_eq!(plain.routing_info(), None);

        let mut bad = FrameDecoder::expecting_header();
        bad.push(b"WB");
        assert_eq!(bad.next_frame(), Err(FrameError::InvalidHeader));
    }

    proptest::proptest! {
        #[test]
        fn any_chunking_gives_the_same_frames(
            payloads in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..600), 0..8),
            cuts in proptest::collection::vec(1usize..700, 1..40),
        ) {
            let mut wire = Vec::new();
            for payload in &payloads {
                encode_frame_into(payload, &mut wire).unwrap();
            }
            let mut decoder = FrameDecoder::new();
            let mut got = Vec::new();
            let mut rest = &wire[..];
            for cut in cuts.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (chunk, tail) = rest.split_at((*cut).min(rest.len()));
                decoder.push(chunk);
                got.extend(frames_of(&mut decoder));
                rest = tail;
            }
            proptest::prop_assert_eq!(got, payloads);
            proptest::prop_assert_eq!(decoder.buffered(), 0);
        }
    }
}
