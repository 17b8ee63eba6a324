//! The media host's answer to an upload: a JSON object whose `url` and `direct_path` go into
//! the message (whatsmeow upload.go, Baileys `getWAUploadToServer`). Other fields (`handle`,
//! `object_id`, `meta_hmac`, `ts`, …) are skipped whatever their type.
//!
//! A small JSON reader of walink's own: the core carries no JSON library, and only two string
//! fields of the top-level object are wanted. Bounded by the input (at most
//! [`MEDIA_UPLOAD_ANSWER_MAX_BYTES`](crate::limits::MEDIA_UPLOAD_ANSWER_MAX_BYTES), the fetch's
//! cap) and by [`MEDIA_ANSWER_MAX_DEPTH`].

use crate::limits::MEDIA_ANSWER_MAX_DEPTH;

/// Where an upload landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadAnswer {
    /// The full URL (`https://mmg.whatsapp.net/v/t62.7118-24/…`).
    pub url: String,
    /// The path on any media host (`/v/t62.7118-24/…?ccb=…&oh=…`).
    pub direct_path: String,
}

/// Why an upload answer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// Not a JSON object as RFC 8259 writes one.
    #[error("malformed JSON")]
    Malformed,
    /// Nested deeper than `MEDIA_ANSWER_MAX_DEPTH`.
    #[error("JSON nested too deep")]
    TooDeep,
    /// `url` or `direct_path` is missing, not a string, or the path does not start with `/`.
    #[error("upload answer without url and direct_path")]
    Incomplete,
}

/// Parses an upload answer.
pub fn parse(body: &[u8]) -> Result<UploadAnswer, AnswerError> {
    let mut reader = Reader { body, at: 0 };
    let mut url = None;
    let mut direct_path = None;
    reader.space();
    reader.expect(b'{')?;
    reader.space();
    if !reader.eat(b'}') {
        loop {
            reader.space();
            let key = reader.string()?;
            reader.space();
            reader.expect(b':')?;
            reader.space();
            if reader.peek() == Some(b'"') {
                let value = reader.string()?;
                match key.as_str() {
                    "url" => url = Some(value),
                    "direct_path" => direct_path = Some(value),
                    _ => {}
                }
            } else {
                reader.skip_value(1)?;
            }
            reader.space();
            if reader.eat(b'}') {
                break;
            }
            reader.expect(b',')?;
        }
    }
    reader.space();
    if reader.at != body.len() {
        return Err(AnswerError::Malformed);
    }
    match (url, direct_path) {
        (Some(url), Some(direct_path)) if direct_path.starts_with('/') && !url.is_empty() => {
            Ok(UploadAnswer { url, direct_path })
        }
        _ => Err(AnswerError::Incomplete),
    }
}

struct Reader<'a> {
    body: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.body.get(self.at).copied()
    }

    fn next(&mut self) -> Result<u8, AnswerError> {
        let byte = self.peek().ok_or(AnswerError::Malformed)?;
        self.at += 1;
        Ok(byte)
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.at += 1;
        }
        found
    }

    fn expect(&mut self, byte: u8) -> Result<(), AnswerError> {
        if self.eat(byte) {
            Ok(())
        } else {
            Err(AnswerError::Malformed)
        }
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn hex4(&mut self) -> Result<u32, AnswerError> {
        let mut value = 0u32;
        for _ in 0..4 {
            let digit = char::from(self.next()?)
                .to_digit(16)
                .ok_or(AnswerError::Malformed)?;
            value = value * 16 + digit;
        }
        Ok(value)
    }

    /// A string, its escapes resolved (a lone surrogate is malformed).
    fn string(&mut self) -> Result<String, AnswerError> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.next()? {
                b'"' => return String::from_utf8(out).map_err(|_| AnswerError::Malformed),
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
                        b'u' => {
                            let high = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&high) {
                                self.expect(b'\\')?;
                                self.expect(b'u')?;
                                let low = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&low) {
                                    return Err(AnswerError::Malformed);
                                }
                                0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                            } else {
                                high
                            };
                            char::from_u32(code).ok_or(AnswerError::Malformed)?
                        }
                        _ => return Err(AnswerError::Malformed),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                byte if byte < 0x20 => return Err(AnswerError::Malformed),
                byte => out.push(byte),
            }
        }
    }

    /// Skips any value that is not a string at the top level (strings inside are read).
    fn skip_value(&mut self, depth: usize) -> Result<(), AnswerError> {
        if depth > MEDIA_ANSWER_MAX_DEPTH {
            return Err(AnswerError::TooDeep);
        }
        match self.peek().ok_or(AnswerError::Malformed)? {
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
                    self.skip_value(depth + 1)?;
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

    fn word(&mut self, word: &[u8]) -> Result<(), AnswerError> {
        let end = self.at.saturating_add(word.len());
        if self.body.get(self.at..end) == Some(word) {
            self.at = end;
            Ok(())
        } else {
            Err(AnswerError::Malformed)
        }
    }

    fn number(&mut self) -> Result<(), AnswerError> {
        let start = self.at;
        self.eat(b'-');
        let digits = |r: &mut Self| {
            let from = r.at;
            while r.peek().is_some_and(|b| b.is_ascii_digit()) {
                r.at += 1;
            }
            r.at > from
        };
        if !digits(self) {
            return Err(AnswerError::Malformed);
        }
        if self.eat(b'.') && !digits(self) {
            return Err(AnswerError::Malformed);
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if !digits(self) {
                return Err(AnswerError::Malformed);
            }
        }
        if self.at == start {
            return Err(AnswerError::Malformed);
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_url_and_direct_path_among_other_fields() {
        let body = br#" {"url":"https:\/\/mmg.whatsapp.net\/v\/a.enc?x=1","handle":null,
            "meta_hmac":"x","ts":1700000000,"nested":{"a":[1,2.5e3,{"b":true}],"c":"\u00e9\ud83d\ude00"},
            "direct_path":"/v/a.enc?x=1&oh=2"} "#;
        let answer = parse(body).unwrap();
        assert_eq!(answer.url, "https://mmg.whatsapp.net/v/a.enc?x=1");
        assert_eq!(answer.direct_path, "/v/a.enc?x=1&oh=2");
    }

    #[test]
    fn refuses_bad_json_and_missing_fields() {
        let cases: [(&[u8], AnswerError); 11] = [
            (b"", AnswerError::Malformed),
            (b"[]", AnswerError::Malformed),
            (b"{", AnswerError::Malformed),
            (
                br#"{"url":"u","direct_path":"/p"} x"#,
                AnswerError::Malformed,
            ),
            (
                br#"{"url":"u","direct_path":"/p",}"#,
                AnswerError::Malformed,
            ),
            (
                br#"{"url":"\ud800","direct_path":"/p"}"#,
                AnswerError::Malformed,
            ),
            (
                br#"{"url":"u","x":01a,"direct_path":"/p"}"#,
                AnswerError::Malformed,
            ),
            (br#"{"url":"u"}"#, AnswerError::Incomplete),
            (br#"{"url":"u","direct_path":"p"}"#, AnswerError::Incomplete),
            (br#"{"url":5,"direct_path":"/p"}"#, AnswerError::Incomplete),
            (b"{}", AnswerError::Incomplete),
        ];
        for (body, error) in cases {
            assert_eq!(parse(body), Err(error), "{}", String::from_utf8_lossy(body));
        }
        let deep = format!("{{\"x\":{}{}}}", "[".repeat(100), "]".repeat(100));
        assert_eq!(parse(deep.as_bytes()), Err(AnswerError::TooDeep));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_or_fail_without_panic(body in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = parse(&body);
        }
    }
}
