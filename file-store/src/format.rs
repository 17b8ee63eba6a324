//! The on-disk format, shared with the npm package's `FileStore` (`npm/src/record-format.js`),
//! so that a directory written by one host is read by another (docs/hosts.md).
//!
//! A frame is `u32 length | u32 crc32(payload) | payload` (little endian, the CRC-32 of zlib).
//! A payload is `u32 count` then `count` changes: `u8 op` (1 put, 2 delete, 3 delete all), then
//! for put and delete `u32 n | space (UTF-8) | u32 n | key (UTF-8)`, and for a put `u32 n |
//! value`. A snapshot file is [`SNAPSHOT_MAGIC`] followed by one frame of puts.

use crate::{Change, StoreError};

/// A frame longer than this is damage, not data (the core's records are far smaller).
pub const MAX_FRAME_BYTES: u64 = 1 << 30;

/// The header of a snapshot file: `"WLKS"` and the format version.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"WLKS\x01\x00\x00\x00";

const OP_PUT: u8 = 1;
const OP_DELETE: u8 = 2;
const OP_DELETE_ALL: u8 = 3;
const FRAME_HEADER: usize = 8;

/// Encodes checked changes into one frame; `TooLarge` beyond [`MAX_FRAME_BYTES`].
pub fn encode_frame<'a>(
    changes: impl IntoIterator<Item = ChangeRef<'a>> + Clone,
) -> Result<Vec<u8>, StoreError> {
    let mut size: u64 = 4;
    let mut count: u64 = 0;
    for change in changes.clone() {
        count += 1;
        size += match change {
            ChangeRef::DeleteAll => 1,
            ChangeRef::Delete { space, key } => 9 + space.len() as u64 + key.len() as u64,
            ChangeRef::Put { space, key, value } => {
                13 + space.len() as u64 + key.len() as u64 + value.len() as u64
            }
        };
    }
    if size > MAX_FRAME_BYTES {
        return Err(StoreError::TooLarge(size));
    }
    // Both fit in u32: size is at most 2^30.
    let mut frame = Vec::with_capacity(FRAME_HEADER + size as usize);
    frame.extend_from_slice(&(size as u32).to_le_bytes());
    frame.extend_from_slice(&[0; 4]);
    frame.extend_from_slice(&(count as u32).to_le_bytes());
    let field = |frame: &mut Vec<u8>, bytes: &[u8]| {
        frame.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        frame.extend_from_slice(bytes);
    };
    for change in changes {
        match change {
            ChangeRef::DeleteAll => frame.push(OP_DELETE_ALL),
            ChangeRef::Delete { space, key } => {
                frame.push(OP_DELETE);
                field(&mut frame, space.as_bytes());
                field(&mut frame, key.as_bytes());
            }
            ChangeRef::Put { space, key, value } => {
                frame.push(OP_PUT);
                field(&mut frame, space.as_bytes());
                field(&mut frame, key.as_bytes());
                field(&mut frame, value);
            }
        }
    }
    let crc = crc32fast::hash(frame.get(FRAME_HEADER..).unwrap_or_default());
    if let Some(slot) = frame.get_mut(4..8) {
        slot.copy_from_slice(&crc.to_le_bytes());
    }
    Ok(frame)
}

/// A change borrowed for encoding (a batch's changes, or a snapshot's records as puts).
#[derive(Debug, Clone, Copy)]
pub enum ChangeRef<'a> {
    /// Insert or overwrite.
    Put {
        /// The space.
        space: &'a str,
        /// The key.
        key: &'a str,
        /// The value.
        value: &'a [u8],
    },
    /// Remove one record.
    Delete {
        /// The space.
        space: &'a str,
        /// The key.
        key: &'a str,
    },
    /// Remove every record.
    DeleteAll,
}

impl<'a> From<&'a Change> for ChangeRef<'a> {
    fn from(change: &'a Change) -> Self {
        match change {
            Change::Put { space, key, value } => ChangeRef::Put { space, key, value },
            Change::Delete { space, key } => ChangeRef::Delete { space, key },
            Change::DeleteAll => ChangeRef::DeleteAll,
        }
    }
}

/// What [`read_frames`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frames {
    /// How many whole frames were read.
    pub count: usize,
    /// The offset just after the last whole frame.
    pub end: usize,
    /// Whether the bytes after `end` are a torn (partly written) last frame.
    pub torn: bool,
}

/// Reads the frames of `bytes` from `start`, handing each frame's changes to `apply` in order.
/// A last frame that is short, or whose CRC fails and that ends exactly at the end of the bytes,
/// is torn, and so is a zero-filled tail; damage anywhere before it is `Corrupt`.
pub fn read_frames(
    bytes: &[u8],
    start: usize,
    mut apply: impl FnMut(Change),
) -> Result<Frames, StoreError> {
    let mut at = start;
    let mut count = 0;
    let torn = |end, count| {
        Ok(Frames {
            count,
            end,
            torn: true,
        })
    };
    while at < bytes.len() {
        let Some(header) = bytes.get(at..at + FRAME_HEADER) else {
            return torn(at, count);
        };
        let size = u64::from(u32_at(header, 0));
        let crc = u32_at(header, 4);
        // No frame is shorter than its change count. A zero-filled tail (the file's length reached
        // the disk, its data did not) is a torn write; anything else there is damage.
        if size < 4 {
            let rest = bytes.get(at..).unwrap_or_default();
            if rest.iter().all(|b| *b == 0) {
                return torn(at, count);
            }
            return Err(StoreError::Corrupt(format!(
                "a frame too short at offset {at}"
            )));
        }
        let next = at as u64 + FRAME_HEADER as u64 + size;
        if size > MAX_FRAME_BYTES || next > bytes.len() as u64 {
            return torn(at, count);
        }
        let next = next as usize;
        let payload = bytes.get(at + FRAME_HEADER..next).unwrap_or_default();
        if crc32fast::hash(payload) != crc {
            if next == bytes.len() {
                return torn(at, count);
            }
            return Err(StoreError::Corrupt(format!(
                "damaged frame at offset {at} followed by more data"
            )));
        }
        decode_payload(payload, at, &mut apply)?;
        count += 1;
        at = next;
    }
    Ok(Frames {
        count,
        end: at,
        torn: false,
    })
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    if let Some(slice) = bytes.get(at..at + 4) {
        word.copy_from_slice(slice);
    }
    u32::from_le_bytes(word)
}

/// Decodes one payload whole before handing any change on, so a malformed frame applies nothing.
fn decode_payload(
    payload: &[u8],
    offset: usize,
    apply: &mut impl FnMut(Change),
) -> Result<(), StoreError> {
    let malformed = || StoreError::Corrupt(format!("malformed frame at offset {offset}"));
    let mut at = 0usize;
    let mut take = |n: usize| -> Result<&[u8], StoreError> {
        let end = at.checked_add(n).ok_or_else(malformed)?;
        let bytes = payload.get(at..end).ok_or_else(malformed)?;
        at = end;
        Ok(bytes)
    };
    let count = u32_at(take(4)?, 0);
    let mut changes = Vec::new();
    for _ in 0..count {
        let op = *take(1)?.first().ok_or_else(malformed)?;
        if op == OP_DELETE_ALL {
            changes.push(Change::DeleteAll);
            continue;
        }
        let text = |bytes: Vec<u8>| String::from_utf8(bytes).map_err(|_| malformed());
        let n = u32_at(take(4)?, 0) as usize;
        let space = text(take(n)?.to_vec())?;
        let n = u32_at(take(4)?, 0) as usize;
        let key = text(take(n)?.to_vec())?;
        match op {
            OP_PUT => {
                let n = u32_at(take(4)?, 0) as usize;
                let value = take(n)?.to_vec();
                changes.push(Change::Put { space, key, value });
            }
            OP_DELETE => changes.push(Change::Delete { space, key }),
            _ => return Err(malformed()),
        }
    }
    if at != payload.len() {
        return Err(malformed());
    }
    changes.into_iter().for_each(apply);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn put(space: &str, key: &str, value: &[u8]) -> Change {
        Change::Put {
            space: space.into(),
            key: key.into(),
            value: value.to_vec(),
        }
    }

    fn encode(changes: &[Change]) -> Vec<u8> {
        encode_frame(changes.iter().map(ChangeRef::from)).unwrap()
    }

    fn read(bytes: &[u8]) -> (Vec<Change>, Frames) {
        let mut changes = Vec::new();
        let frames = read_frames(bytes, 0, |c| changes.push(c)).unwrap();
        (changes, frames)
    }

    #[test]
    fn a_frame_matches_the_npm_layout_byte_for_byte() {
        // The npm store's encodeFrame([{ op: 'put', space: 's', key: 'k', value: [9] },
        // { op: 'delete', space: 's', key: 'x' }, { op: 'deleteAll' }]).
        let frame = encode(&[
            put("s", "k", &[9]),
            Change::Delete {
                space: "s".into(),
                key: "x".into(),
            },
            Change::DeleteAll,
        ]);
        let payload: Vec<u8> = [
            &3u32.to_le_bytes()[..],
            &[1],
            &1u32.to_le_bytes(),
            b"s",
            &1u32.to_le_bytes(),
            b"k",
            &1u32.to_le_bytes(),
            &[9],
            &[2],
            &1u32.to_le_bytes(),
            b"s",
            &1u32.to_le_bytes(),
            b"x",
            &[3],
        ]
        .concat();
        assert_eq!(frame[..4], (payload.len() as u32).to_le_bytes());
        assert_eq!(frame[4..8], crc32fast::hash(&payload).to_le_bytes());
        assert_eq!(frame[8..], payload[..]);
    }

    #[test]
    fn frames_round_trip_and_torn_tails_are_found() {
        let first = encode(&[put("session", "ключ ✓", &[1, 2]), put("s", "", &[])]);
        let second = encode(&[Change::DeleteAll, put("device", "device", &[7; 100])]);
        let wal = [first.clone(), second.clone()].concat();
        let (changes, frames) = read(&wal);
        assert_eq!(
            frames,
            Frames {
                count: 2,
                end: wal.len(),
                torn: false
            }
        );
        assert_eq!(changes.len(), 4);
        assert_eq!(changes[0], put("session", "ключ ✓", &[1, 2]));
        for cut in first.len() + 1..wal.len() {
            let (changes, frames) = read(&wal[..cut]);
            assert_eq!(
                frames,
                Frames {
                    count: 1,
                    end: first.len(),
                    torn: true
                },
                "cut {cut}"
            );
            assert_eq!(changes.len(), 2);
        }
        // A zero-filled last frame is a torn write.
        let zeros = [first.clone(), vec![0; 40]].concat();
        assert!(read(&zeros).1.torn);
        // Damage before the last frame is corruption.
        let mut damaged = wal.clone();
        damaged[10] ^= 0xff;
        assert!(matches!(
            read_frames(&damaged, 0, |_| {}),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn a_malformed_payload_with_a_good_crc_applies_nothing() {
        let payload = [&2u32.to_le_bytes()[..], &[3], &[7]].concat();
        let frame = [
            &(payload.len() as u32).to_le_bytes()[..],
            &crc32fast::hash(&payload).to_le_bytes(),
            &payload,
        ]
        .concat();
        let mut applied = 0;
        assert!(matches!(
            read_frames(&frame, 0, |_| applied += 1),
            Err(StoreError::Corrupt(_))
        ));
        assert_eq!(applied, 0);
    }
}
