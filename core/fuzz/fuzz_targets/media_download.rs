//! Media on arbitrary bytes: the media host's upload answer (walink's own JSON reader) never
//! panics and only accepts a direct path starting with `/`; a downloaded file drawn from the
//! input is refused or decrypted without panic, and nothing is decrypted whose hash does not
//! match.
#![no_main]

use libfuzzer_sys::fuzz_target;
use walink_core::client::media::parse_upload_answer;
use walink_core::media::{self, Expected, MediaType};

fuzz_target!(|data: &[u8]| {
    if let Ok(answer) = parse_upload_answer(data) {
        assert!(answer.direct_path.starts_with('/'));
    }
    let (head, file) = data.split_at(data.len().min(32));
    let key = if head.is_empty() { &[1u8][..] } else { head };
    let expected = Expected {
        file_enc_sha256: Some(&[0u8; 32]),
        file_sha256: None,
    };
    // A file whose SHA-256 is all zeroes cannot be found: every input is refused.
    assert!(media::decrypt(key, MediaType::Image, file, expected).is_err());
    let _ = media::decrypt(key, MediaType::Image, file, Expected::default());
});
