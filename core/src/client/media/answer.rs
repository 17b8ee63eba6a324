//! The media host's answer to an upload: a JSON object whose `url` and `direct_path` go into
//! the message (whatsmeow upload.go, Baileys `getWAUploadToServer`). Other fields (`handle`,
//! `object_id`, `meta_hmac`, `ts`, …) are skipped whatever their type.
//!
//! Read with the core's JSON scanner (`crate::json`): only two string fields of the top-level
//! object are wanted. Bounded by the input (at most
//! [`MEDIA_UPLOAD_ANSWER_MAX_BYTES`](crate::limits::MEDIA_UPLOAD_ANSWER_MAX_BYTES), the fetch's
//! cap) and by [`MEDIA_ANSWER_MAX_DEPTH`].

use crate::json::{JsonError, Scanner};
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
    let (url, direct_path) = fields(body).map_err(|error| match error {
        JsonError::Malformed => AnswerError::Malformed,
        JsonError::TooDeep => AnswerError::TooDeep,
    })?;
    match (url, direct_path) {
        (Some(url), Some(direct_path)) if direct_path.starts_with('/') && !url.is_empty() => {
            Ok(UploadAnswer { url, direct_path })
        }
        _ => Err(AnswerError::Incomplete),
    }
}

/// The string values of `url` and `direct_path` in the top-level object (a later repeat wins).
fn fields(body: &[u8]) -> Result<(Option<String>, Option<String>), JsonError> {
    let mut json = Scanner::new(body);
    let mut url = None;
    let mut direct_path = None;
    json.space();
    json.expect(b'{')?;
    json.space();
    if !json.eat(b'}') {
        loop {
            json.space();
            let key = json.string()?;
            json.space();
            json.expect(b':')?;
            json.space();
            if json.peek() == Some(b'"') {
                let value = json.string()?;
                match key.as_str() {
                    "url" => url = Some(value),
                    "direct_path" => direct_path = Some(value),
                    _ => {}
                }
            } else {
                json.skip_value(MEDIA_ANSWER_MAX_DEPTH)?;
            }
            json.space();
            if json.eat(b'}') {
                break;
            }
            json.expect(b',')?;
        }
    }
    json.end()?;
    Ok((url, direct_path))
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
