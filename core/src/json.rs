//! A small JSON scanner (RFC 8259) for the few JSON texts the core reads: an app-state
//! mutation's index (`["mute","123@s.whatsapp.net"]`, `appstate::index`) and the media host's
//! upload answer (`client::media::answer`). The core carries no JSON library; the callers want
//! a handful of strings, so the scanner reads strings (escapes resolved) and skips any other
//! value.
//!
//! Bounded: it never reads past its input (whose size each caller bounds), a string it returns
//! is never longer than the input, and nesting is limited by the depth the caller passes to
//! [`Scanner::skip_value`]. Every failure is a [`JsonError`]; nothing panics.

/// Why a JSON text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JsonError {
    /// Not JSON as RFC 8259 writes it (or not the shape the caller reads).
    #[error("malformed JSON")]
    Malformed,
    /// A skipped value nested deeper than the caller's bound.
    #[error("JSON nested too deep")]
    TooDeep,
}

/// A cursor over a JSON text.
pub(crate) struct Scanner<'a> {
    input: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    /// A scanner at the start of `input`.
    pub(crate) fn new(input: &'a [u8]) -> Scanner<'a> {
        Scanner { input, at: 0 }
    }

    /// The next byte, not consumed.
    pub(crate) fn peek(&self) -> Option<u8> {
        self.input.get(self.at).copied()
    }

    fn next(&mut self) -> Result<u8, JsonError> {
        let byte = self.peek().ok_or(JsonError::Malformed)?;
        self.at += 1;
        Ok(byte)
    }

    /// Consumes `byte` when it comes next.
    pub(crate) fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.at += 1;
        }
        found
    }

    /// Consumes `byte`, which must come next.
    pub(crate) fn expect(&mut self, byte: u8) -> Result<(), JsonError> {
        if self.eat(byte) {
            Ok(())
        } else {
            Err(JsonError::Malformed)
        }
    }

    /// Skips JSON whitespace.
    pub(crate) fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// Skips trailing whitespace; the input must end there.
    pub(crate) fn end(&mut self) -> Result<(), JsonError> {
        self.space();
        if self.at == self.input.len() {
            Ok(())
        } else {
            Err(JsonError::Malformed)
        }
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let mut value = 0u32;
        for _ in 0..4 {
            let digit = char::from(self.next()?)
                .to_digit(16)
                .ok_or(JsonError::Malformed)?;
            value = value * 16 + digit;
        }
        Ok(value)
    }

    /// A `\u` escape's character (a high surrogate must be followed by an escaped low one).
    fn unicode_escape(&mut self) -> Result<char, JsonError> {
        let high = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&high) {
            self.expect(b'\\')?;
            self.expect(b'u')?;
            let low = self.hex4()?;
            if !(0xDC00..0xE000).contains(&low) {
                return Err(JsonError::Malformed);
            }
            0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
        } else {
            high
        };
        char::from_u32(code).ok_or(JsonError::Malformed)
    }

    /// A string, its escapes resolved (a lone surrogate, a raw control character or invalid
    /// UTF-8 is malformed).
    pub(crate) fn string(&mut self) -> Result<String, JsonError> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.next()? {
                b'"' => return String::from_utf8(out).map_err(|_| JsonError::Malformed),
                b'\\' => {
                    let c = match self.next()? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return Err(JsonError::Malformed),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                byte if byte < 0x20 => return Err(JsonError::Malformed),
                byte => out.push(byte),
            }
        }
    }

    /// Skips one value of any kind, nested at most `max_depth` levels (the value itself is
    /// level 1).
    pub(crate) fn skip_value(&mut self, max_depth: usize) -> Result<(), JsonError> {
        self.skip_at(1, max_depth)
    }

    fn skip_at(&mut self, depth: usize, max_depth: usize) -> Result<(), JsonError> {
        if depth > max_depth {
            return Err(JsonError::TooDeep);
        }
        match self.peek().ok_or(JsonError::Malformed)? {
            b'"' => self.string().map(drop),
            b'{' | b'[' => {
                let close = if self.next()? == b'{' { b'}' } else { b']' };
                self.space();
                if self.eat(close) {
                    return Ok(());
                }
                loop {
                    self.space();
                    if close == b'}' {
                        self.string()?;
                        self.space();
                        self.expect(b':')?;
                        self.space();
                    }
                    self.skip_at(depth + 1, max_depth)?;
                    self.space();
                    if self.eat(close) {
                        return Ok(());
                    }
                    self.expect(b',')?;
                }
            }
            b't' => self.word(b"true"),
            b'f' => self.word(b"false"),
            b'n' => self.word(b"null"),
            _ => self.number(),
        }
    }

    fn word(&mut self, word: &[u8]) -> Result<(), JsonError> {
        let end = self.at.saturating_add(word.len());
        if self.input.get(self.at..end) == Some(word) {
            self.at = end;
            Ok(())
        } else {
            Err(JsonError::Malformed)
        }
    }

    fn number(&mut self) -> Result<(), JsonError> {
        self.eat(b'-');
        let digits = |s: &mut Self| {
            let from = s.at;
            while s.peek().is_some_and(|b| b.is_ascii_digit()) {
                s.at += 1;
            }
            s.at > from
        };
        if !digits(self) {
            return Err(JsonError::Malformed);
        }
        if self.eat(b'.') && !digits(self) {
            return Err(JsonError::Malformed);
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if !digits(self) {
                return Err(JsonError::Malformed);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn string(json: &[u8]) -> Result<String, JsonError> {
        let mut scanner = Scanner::new(json);
        let value = scanner.string()?;
        scanner.end()?;
        Ok(value)
    }

    fn skip(json: &[u8], max_depth: usize) -> Result<(), JsonError> {
        let mut scanner = Scanner::new(json);
        scanner.space();
        scanner.skip_value(max_depth)?;
        scanner.end()
    }

    #[test]
    fn strings_resolve_every_escape() {
        assert_eq!(
            string(br#""a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00""#).unwrap(),
            "a\"b\\c/d\u{8}\u{c}\n\r\té😀"
        );
        assert_eq!(string(b"\"\"").unwrap(), "");
        assert_eq!(string("\"é\"".as_bytes()).unwrap(), "é");
    }

    #[test]
    fn bad_strings_are_malformed() {
        for bad in [
            &b"\"open"[..],
            b"\"\\ud83d\"",
            b"\"\\ud83d\\u0041\"",
            b"\"\\udc00\"",
            b"\"\\q\"",
            b"\"\\u12\"",
            b"\"\x01\"",
            b"\"\xff\"",
            b"x",
            b"",
        ] {
            assert_eq!(string(bad), Err(JsonError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn values_of_every_kind_are_skipped() {
        for json in [
            &b"null"[..],
            b"true",
            b"false",
            b"-12.5e+3",
            b"0",
            b"\"s\"",
            b"[]",
            b"{}",
            br#" { "a" : [ 1 , { "b" : null } ] , "c" : "d" } "#,
        ] {
            assert_eq!(skip(json, 4), Ok(()), "{}", String::from_utf8_lossy(json));
        }
        for bad in [
            &b"nul"[..],
            b"-",
            b"1.",
            b"1e",
            b"[1,]",
            b"{\"a\"}",
            b"{1:2}",
            b"[",
        ] {
            assert_eq!(skip(bad, 4), Err(JsonError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        assert_eq!(skip(b"[[[]]]", 3), Ok(()));
        assert_eq!(skip(b"[[[[]]]]", 3), Err(JsonError::TooDeep));
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(skip(deep.as_bytes(), 64), Err(JsonError::TooDeep));
    }

    #[test]
    fn the_end_must_be_the_input_end() {
        let mut scanner = Scanner::new(b" 1 x");
        scanner.space();
        scanner.skip_value(1).unwrap();
        assert_eq!(scanner.end(), Err(JsonError::Malformed));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_scan_or_fail_without_panic(
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..200)
        ) {
            let _ = skip(&body, 8);
            let _ = string(&body);
        }
    }
}
