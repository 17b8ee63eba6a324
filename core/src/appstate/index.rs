//! The JSON index of a mutation (`["mute","123@s.whatsapp.net"]`).
//!
//! The index MAC covers the exact bytes, so decoding never re-serializes: the MAC is checked on
//! the bytes received and the parse only reads them (with the core's JSON scanner,
//! `crate::json`). Encoding follows JavaScript's
//! `JSON.stringify` (what WhatsApp Web and Baileys produce): no whitespace, `"` and `\` escaped,
//! `\b \f \n \r \t` as short escapes, other control characters as `\u00xx` (lowercase hex), and
//! everything else, non-ASCII included, as raw UTF-8. (Go's `json.Marshal`, used by whatsmeow,
//! differs only for `<`, `>`, `&` and U+2028/U+2029, which real indexes do not contain.)

use crate::json::{JsonError, Scanner};
use crate::limits::{APPSTATE_MAX_INDEX_JSON, APPSTATE_MAX_INDEX_PARTS};

use super::PatchError;

/// Serializes an index as `JSON.stringify` would.
pub(crate) fn encode(parts: &[String]) -> Result<Vec<u8>, PatchError> {
    if parts.len() > APPSTATE_MAX_INDEX_PARTS {
        return Err(PatchError::TooLarge("index parts"));
    }
    let mut out = Vec::with_capacity(2 + parts.iter().map(|p| p.len() + 3).sum::<usize>());
    out.push(b'[');
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        for ch in part.chars() {
            match ch {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\u{8}' => out.extend_from_slice(b"\\b"),
                '\u{c}' => out.extend_from_slice(b"\\f"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                c if (c as u32) < 0x20 => {
                    out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
                }
                c => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        out.push(b'"');
    }
    out.push(b']');
    if out.len() > APPSTATE_MAX_INDEX_JSON {
        return Err(PatchError::TooLarge("index json"));
    }
    Ok(out)
}

/// Parses a JSON array of strings (any JSON whitespace allowed).
pub(crate) fn decode(json: &[u8]) -> Result<Vec<String>, PatchError> {
    if json.len() > APPSTATE_MAX_INDEX_JSON {
        return Err(PatchError::TooLarge("index json"));
    }
    let invalid = |_: JsonError| PatchError::InvalidIndex;
    let mut scanner = Scanner::new(json);
    scanner.space();
    scanner.expect(b'[').map_err(invalid)?;
    let mut parts = Vec::new();
    scanner.space();
    if !scanner.eat(b']') {
        loop {
            scanner.space();
            if parts.len() >= APPSTATE_MAX_INDEX_PARTS {
                return Err(PatchError::TooLarge("index parts"));
            }
            parts.push(scanner.string().map_err(invalid)?);
            scanner.space();
            if scanner.eat(b',') {
                continue;
            }
            if scanner.eat(b']') {
                break;
            }
            return Err(PatchError::InvalidIndex);
        }
    }
    scanner.end().map_err(invalid)?;
    Ok(parts)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn strings(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn encodes_like_json_stringify() {
        let parts = strings(&["mute", "123@s.whatsapp.net"]);
        assert_eq!(encode(&parts).unwrap(), br#"["mute","123@s.whatsapp.net"]"#);
        let odd = strings(&["a\"b\\c\n\u{1}é/<"]);
        assert_eq!(
            String::from_utf8(encode(&odd).unwrap()).unwrap(),
            "[\"a\\\"b\\\\c\\n\\u0001é/<\"]"
        );
        assert_eq!(encode(&[]).unwrap(), b"[]");
    }

    #[test]
    fn decodes_escapes_and_whitespace() {
        let parsed = decode(br#" [ "a\u00e9\/" , "\ud83d\ude00" ] "#).unwrap();
        assert_eq!(parsed, strings(&["aé/", "😀"]));
        assert_eq!(decode(b"[]").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn refuses_non_string_arrays_and_garbage() {
        for bad in [
            &b"[1]"[..],
            b"{}",
            b"[\"a\"",
            b"[\"a\",]",
            b"[\"a\"]x",
            b"[\"\\ud83d\"]",
            b"[\"\x01\"]",
            b"",
            b"[\"\\q\"]",
        ] {
            assert_eq!(decode(bad), Err(PatchError::InvalidIndex), "{bad:?}");
        }
        let long = vec![b' '; APPSTATE_MAX_INDEX_JSON + 1];
        assert!(matches!(decode(&long), Err(PatchError::TooLarge(_))));
    }

    proptest! {
        #[test]
        fn round_trips(parts in proptest::collection::vec(any::<String>(), 0..8)) {
            let json = encode(&parts).unwrap();
            prop_assert_eq!(decode(&json).unwrap(), parts.clone());
            // And agrees with serde_json's reading of the same bytes.
            let theirs: Vec<String> = serde_json::from_slice(&json).unwrap();
            prop_assert_eq!(theirs, parts);
        }
    }
}
