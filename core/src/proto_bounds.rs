//! Bounds checked on protobuf bytes before prost decodes them.
//!
//! prost decodes a repeated message field by pushing one value per occurrence: an empty element
//! is two bytes on the wire and a whole struct in memory (tens to hundreds of bytes), in a `Vec`
//! that grows by doubling; a message field that occurs many times is merged, so its own repeated
//! fields add up. A decoder that takes untrusted bytes therefore first walks their wire format
//! (without allocating) and counts the elements of every repeated field it names, nested ones
//! included, over the whole input: each against its bound in `limits.rs`, and their memory
//! against the input's decode budget ([`crate::limits::decode_budget`]).

use crate::limits::decode_budget;

/// A field of a message: one to count (a repeated field), or one to look into (a message field
/// whose own fields are counted).
pub(crate) struct Field {
    /// The field number.
    pub(crate) number: u32,
    /// Most elements in the whole input, all parents together (`usize::MAX`: not bounded here,
    /// for a field only looked into).
    pub(crate) max: usize,
    /// Bytes one element costs once decoded: the prost struct (or `String`, `Vec<u8>`) and what
    /// the caller builds from it.
    pub(crate) size: usize,
    /// Fields of the element, counted in turn.
    pub(crate) fields: &'static [Field],
}

/// Why bytes were refused before decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BoundsError {
    /// Not a well-formed protobuf message (or a deprecated group, which walink never reads).
    Malformed,
    /// More elements of the field with this number than its bound.
    TooMany(u32),
    /// Decoding would allocate more than the input's decode budget.
    OverBudget,
}

/// Deepest nesting walked (prost's own recursion limit).
const MAX_DEPTH: usize = 100;

/// A `Vec` grown by pushing holds up to twice its elements, and while it reallocates the old
/// buffer too: its peak is under three times its elements.
const GROWTH: usize = 3;

/// Checks `bytes`, a message whose fields are described by `fields`, before it is decoded.
pub(crate) fn check(bytes: &[u8], fields: &'static [Field]) -> Result<(), BoundsError> {
    let mut totals: Vec<(&'static Field, usize)> = Vec::new();
    walk(bytes, fields, 0, &mut totals)?;
    // Bytes and string fields: an allocation of at most eight bytes for every three on the
    // wire (a one-byte field), so under three times the input.
    let mut cost = bytes.len().saturating_mul(GROWTH);
    for (field, total) in &totals {
        if *total > field.max {
            return Err(BoundsError::TooMany(field.number));
        }
        cost = cost.saturating_add(total.saturating_mul(field.size).saturating_mul(GROWTH));
    }
    if cost > decode_budget(bytes.len()) {
        return Err(BoundsError::OverBudget);
    }
    Ok(())
}

/// Walks the fields of one message, counting and descending into those `fields` names.
fn walk(
    mut bytes: &[u8],
    fields: &'static [Field],
    depth: usize,
    totals: &mut Vec<(&'static Field, usize)>,
) -> Result<(), BoundsError> {
    // prost refuses messages nested deeper than this too.
    if depth > MAX_DEPTH {
        return Err(BoundsError::Malformed);
    }
    while !bytes.is_empty() {
        let key = varint(&mut bytes)?;
        let number = u32::try_from(key >> 3).map_err(|_| BoundsError::Malformed)?;
        if number == 0 {
            return Err(BoundsError::Malformed);
        }
        match key & 7 {
            0 => {
                varint(&mut bytes)?;
            }
            1 => skip(&mut bytes, 8)?,
            5 => skip(&mut bytes, 4)?,
            2 => {
                let len =
                    usize::try_from(varint(&mut bytes)?).map_err(|_| BoundsError::Malformed)?;
                let body = bytes.get(..len).ok_or(BoundsError::Malformed)?;
                skip(&mut bytes, len)?;
                if let Some(field) = fields.iter().find(|f| f.number == number) {
                    match totals.iter_mut().find(|(f, _)| core::ptr::eq(*f, field)) {
                        Some((_, total)) => *total += 1,
                        None => totals.push((field, 1)),
                    }
                    if !field.fields.is_empty() {
                        walk(body, field.fields, depth + 1, totals)?;
                    }
                }
            }
            _ => return Err(BoundsError::Malformed),
        }
    }
    Ok(())
}

fn skip(bytes: &mut &[u8], n: usize) -> Result<(), BoundsError> {
    *bytes = bytes.get(n..).ok_or(BoundsError::Malformed)?;
    Ok(())
}

fn varint(bytes: &mut &[u8]) -> Result<u64, BoundsError> {
    let mut value = 0u64;
    for shift in (0..70).step_by(7) {
        let (&byte, rest) = bytes.split_first().ok_or(BoundsError::Malformed)?;
        *bytes = rest;
        value |= u64::from(byte & 0x7F).checked_shl(shift).unwrap_or(0);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(BoundsError::Malformed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    static INNER: [Field; 1] = [Field {
        number: 2,
        max: 3,
        size: 8,
        fields: &[],
    }];
    static OUTER: [Field; 1] = [Field {
        number: 1,
        max: usize::MAX,
        size: 16,
        fields: &INNER,
    }];

    /// Field 1 (a message) occurring `outer` times, each holding `inner` empty field-2 entries.
    fn message(outer: usize, inner: usize) -> Vec<u8> {
        let mut element = Vec::new();
        for _ in 0..inner {
            element.extend_from_slice(&[0x12, 0x00]);
        }
        let mut out = Vec::new();
        for _ in 0..outer {
            out.push(0x0A);
            out.push(u8::try_from(element.len()).unwrap());
            out.extend_from_slice(&element);
        }
        out
    }

    #[test]
    fn counts_nested_fields_over_the_whole_input() {
        assert_eq!(check(&message(1, 3), &OUTER), Ok(()));
        // Three parents of one entry each: three in all, the bound.
        assert_eq!(check(&message(3, 1), &OUTER), Ok(()));
        // Merged parents add up.
        assert_eq!(check(&message(2, 2), &OUTER), Err(BoundsError::TooMany(2)));
        // Scalars and fields not named are skipped; groups and truncation are malformed.
        assert_eq!(check(&[0x08, 0x96, 0x01, 0x1D, 1, 2, 3, 4], &OUTER), Ok(()));
        assert_eq!(check(&[0x0B, 0x0C], &OUTER), Err(BoundsError::Malformed));
        assert_eq!(
            check(&[0x0A, 0x05, 0x00], &OUTER),
            Err(BoundsError::Malformed)
        );
        assert_eq!(check(&[0x00, 0x00], &OUTER), Err(BoundsError::Malformed));
    }

    #[test]
    fn charges_the_decoded_size_to_the_budget() {
        static HUGE: [Field; 1] = [Field {
            number: 1,
            max: usize::MAX,
            size: 1 << 30,
            fields: &[],
        }];
        assert_eq!(check(&[0x0A, 0x00], &HUGE), Err(BoundsError::OverBudget));
        assert_eq!(check(&[], &HUGE), Ok(()));
    }
}
