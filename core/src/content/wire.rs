//! The protobuf wire format without a schema: a reader of top-level fields (so a raw message
//! can be looked at, unknown fields included, without decoding it) and the few writers the
//! hosts' JSON conversion needs. Deprecated groups (wire types 3 and 4) are refused.

/// A field's value as it sits on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2: a string, bytes, an embedded message or a packed list.
    Bytes(&'a [u8]),
    /// Wire type 5.
    Fixed32(u32),
}

/// Why bytes are not protobuf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The bytes end inside a field.
    #[error("truncated field")]
    Truncated,
    /// A varint runs over 10 bytes.
    #[error("malformed varint")]
    Varint,
    /// A wire type walink does not read (groups, or 6 and 7).
    #[error("unsupported wire type {0}")]
    WireType(u8),
    /// Field number 0, or one above 2^29 - 1.
    #[error("invalid field number")]
    FieldNumber,
}

/// The largest field number protobuf allows.
pub const MAX_FIELD_NUMBER: u32 = (1 << 29) - 1;

/// Reads a varint from the front of `bytes`, advancing it.
pub fn read_varint(bytes: &mut &[u8]) -> Result<u64, WireError> {
    let mut value = 0u64;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *bytes = bytes.get(i + 1..).unwrap_or_default();
            return Ok(value);
        }
    }
    if bytes.len() < 10 {
        Err(WireError::Truncated)
    } else {
        Err(WireError::Varint)
    }
}

fn take<'a>(bytes: &mut &'a [u8], len: usize) -> Result<&'a [u8], WireError> {
    if bytes.len() < len {
        return Err(WireError::Truncated);
    }
    let (head, rest) = bytes.split_at(len);
    *bytes = rest;
    Ok(head)
}

/// Reads one field (number and value) from the front of `bytes`, advancing it.
pub fn read_field<'a>(bytes: &mut &'a [u8]) -> Result<(u32, Value<'a>), WireError> {
    let key = read_varint(bytes)?;
    let number = u32::try_from(key >> 3).map_err(|_| WireError::FieldNumber)?;
    if number == 0 || number > MAX_FIELD_NUMBER {
        return Err(WireError::FieldNumber);
    }
    let value = match (key & 7) as u8 {
        0 => Value::Varint(read_varint(bytes)?),
        1 => {
            let raw = take(bytes, 8)?;
            let mut word = [0u8; 8];
            word.copy_from_slice(raw);
            Value::Fixed64(u64::from_le_bytes(word))
        }
        2 => {
            let len = usize::try_from(read_varint(bytes)?).map_err(|_| WireError::Truncated)?;
            Value::Bytes(take(bytes, len)?)
        }
        5 => {
            let raw = take(bytes, 4)?;
            let mut word = [0u8; 4];
            word.copy_from_slice(raw);
            Value::Fixed32(u32::from_le_bytes(word))
        }
        other => return Err(WireError::WireType(other)),
    };
    Ok((number, value))
}

/// The top-level fields of a message, in wire order; iteration stops after the first error.
pub fn fields(bytes: &[u8]) -> Fields<'_> {
    Fields {
        rest: bytes,
        failed: false,
    }
}

/// The iterator [`fields`] returns.
#[derive(Clone, Debug)]
pub struct Fields<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Value<'a>), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let result = read_field(&mut self.rest);
        self.failed = result.is_err();
        Some(result)
    }
}

/// The bytes of the last length-delimited field `number` of a message (the embedded message
/// of a wrapper, for example), if there is one and the message reads.
pub fn embedded(bytes: &[u8], number: u32) -> Option<&[u8]> {
    let mut found = None;
    for field in fields(bytes) {
        match field {
            Ok((n, Value::Bytes(inner))) if n == number => found = Some(inner),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    found
}

/// Appends `value` as a varint.
pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends a field key.
pub fn put_key(out: &mut Vec<u8>, number: u32, wire_type: u8) {
    put_varint(out, (u64::from(number) << 3) | u64::from(wire_type));
}

/// Appends a length-delimited field.
pub fn put_bytes(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_key(out, number, 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::proto::wa;
    use prost::Message as _;

    #[test]
    fn reads_what_prost_writes() {
        let message = wa::Message {
            conversation: Some("hi".into()),
            location_message: Some(Box::new(wa::message::LocationMessage {
                degrees_latitude: Some(1.5),
                speed_in_mps: Some(2.0),
                ..Default::default()
            })),
            message_context_info: Some(wa::MessageContextInfo {
                device_list_metadata_version: Some(2),
                ..Default::default()
            }),
            ..Default::default()
        };
        let bytes = message.encode_to_vec();
        let read: Vec<(u32, Value<'_>)> = fields(&bytes).map(Result::unwrap).collect();
        assert_eq!(read.len(), 3);
        assert_eq!(read[0], (1, Value::Bytes(b"hi")));
        assert_eq!(read[1].0, 5);
        let location = embedded(&bytes, 5).unwrap();
        let inner: Vec<_> = fields(location).map(Result::unwrap).collect();
        assert_eq!(inner[0], (1, Value::Fixed64(1.5f64.to_bits())));
        assert_eq!(inner[1], (8, Value::Fixed32(2.0f32.to_bits())));
        assert_eq!(embedded(&bytes, 35), Some(&[0x10, 2][..]));
    }

    #[test]
    fn writes_what_prost_reads() {
        let mut out = Vec::new();
        put_bytes(&mut out, 1, b"hello");
        let mut context = Vec::new();
        put_key(&mut context, 2, 0);
        put_varint(&mut context, 300);
        put_bytes(&mut out, 35, &context);
        let message = wa::Message::decode(out.as_slice()).unwrap();
        assert_eq!(message.conversation.as_deref(), Some("hello"));
        assert_eq!(
            message
                .message_context_info
                .unwrap()
                .device_list_metadata_version,
            Some(300)
        );
    }

    #[test]
    fn refuses_bad_input_without_panicking() {
        for bad in [
            &[0x0a, 5, b'h'][..],
            &[0x80; 11][..],
            &[0x0b][..],
            &[0x00, 1][..],
            &[0x09, 1, 2][..],
            &[0x0a][..],
        ] {
            let results: Vec<_> = fields(bad).collect();
            assert!(results.last().unwrap().is_err(), "{bad:?}");
            assert_eq!(embedded(bad, 1), None);
        }
        assert_eq!(read_varint(&mut &[0xff; 10][..]), Err(WireError::Varint));
        assert_eq!(
            read_varint(&mut &[0xff, 0xff][..]),
            Err(WireError::Truncated)
        );
        assert_eq!(fields(&[]).count(), 0);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            for field in fields(&bytes) {
                if let Ok((_, Value::Bytes(inner))) = field {
                    let _ = fields(inner).count();
                }
            }
        }
    }
}
