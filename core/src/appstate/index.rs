//! The JSON index of a mutation (`["mute","123@s.whatsapp.net"]`).
//!
//! The index MAC covers the exact bytes, so decoding never re-serializes: the MAC is checked on
//! the bytes received and the parse only reads them. Encoding follows JavaScript's
//! `JSON.stringify` (what WhatsApp Web and Baileys produce): no whitespace, `"` and `\` escaped,
//! `\b \f \n \r \t` as short escapes, other control characters as `\u00xx` (lowercase hex), and
//! everything else, non-ASCII included, as raw UTF-8. (Go's `json.Marshal`, used by whatsmeow,
//! differs only for `<`, `>`, `&` and U+2028/U+2029, which real indexes do not contain.)

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
    let mut parser = Parser {
        input: json,
        pos: 0,
    };
    parser.skip_ws();
    parser.expect(b'[')?;
    let mut parts = Vec::new();
    parser.skip_ws();
    if parser.peek() == Some(b']') {
        parser.pos += 1;
    } else {
        loop {
            parser.skip_ws();
            if parts.len() >= APPSTATE_MAX_INDEX_PARTS {
                return Err(PatchError::TooLarge("index parts"));
            }
            parts.push(parser.string()?);
            parser.skip_ws();
            match parser.next() {
                Some(b',') => continue,
                Some(b']') => break,
                _ => return Err(PatchError::InvalidIndex),
            }
        }
    }
    parser.skip_ws();
    if parser.pos != json.len() {
        return Err(PatchError::InvalidIndex);
    }
    Ok(parts)
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.pos += 1;
        Some(byte)
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), PatchError> {
        if self.next() == Some(byte) {
            Ok(())
        } else {
            Err(PatchError::InvalidIndex)
        }
    }

    fn hex4(&mut self) -> Result<u32, PatchError> {
        let mut value = 0u32;
        for _ in 0..4 {
            let digit = self
                .next()
                .and_then(|b| char::from(b).to_digit(16))
                .ok_or(PatchError::InvalidIndex)?;
            value = value * 16 + digit;
        }
        Ok(value)
    }

    fn string(&mut self) -> Result<String, PatchError> {
        self.expect(b'"')?;
        let mut bytes = Vec::new();
        loop {
            match self.next().ok_or(PatchError::InvalidIndex)? {
                b'"' => break,
                b'\\' => {
                    let ch = match self.next().ok_or(PatchError::InvalidIndex)? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return Err(PatchError::InvalidIndex),
                    };
                    let mut buf = [0u8; 4];
                    bytes.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                byte if byte < 0x20 => return Err(PatchError::InvalidIndex),
                byte => bytes.push(byte),
            }
        }
        String::from_utf8(bytes).map_err(|_| PatchError::InvalidIndex)
    }

    fn unicode_escape(&mut self) -> Result<char, PatchError> {
        let first = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&first) {
            // A high surrogate must be followed by an escaped low surrogate.
            self.expect(b'\\')?;
            self.expect(b'u')?;
            let second = self.hex4()?;
            if !(0xDC00..0xE000).contains(&second) {
                return Err(PatchError::InvalidIndex);
            }
            0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
        } else {
            first
        };
        char::from_u32(code).ok_or(PatchError::InvalidIndex)
    }
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
