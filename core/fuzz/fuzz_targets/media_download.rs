//! Media on arbitrary bytes: the media host's upload answer (walink's own JSON reader) never
//! panics and only accepts a direct path starting with `/`; a downloaded file drawn from the
//! input is refused or decrypted without panic, and nothing is decrypted whose hash does not
//! match. The streaming decryptor (the one hosts run over a body as it arrives) fed the same file
//! in pieces of sizes drawn from the input agrees with the one-shot path: it accepts exactly
//! what `decrypt` accepts, with the same plaintext, and never exceeds its limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use walink_core::client::media::parse_upload_answer;
use walink_core::media::{self, Expected, MediaDecryptor, MediaError, MediaType};

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
    let whole = media::decrypt(key, MediaType::Image, file, Expected::default());

    let step = usize::from(head.first().copied().unwrap_or(1)).max(1);
    let limit = (file.len() as u64).saturating_sub(u64::from(head.get(1).copied().unwrap_or(0) % 2));
    let Ok(decryptor) = MediaDecryptor::new(key, MediaType::Image) else {
        return;
    };
    let mut decryptor = decryptor.with_limit(limit);
    let mut plain = Vec::new();
    let mut over = false;
    for piece in file.chunks(step) {
        if decryptor.update(piece, &mut plain) == Err(MediaError::TooLarge) {
            over = true;
            break;
        }
    }
    if over {
        assert!(limit < file.len() as u64);
        return;
    }
    match (decryptor.finish(&mut plain), whole) {
        (Ok(hashes), Ok(expected)) => {
            assert_eq!(plain, expected);
            assert_eq!(hashes.file_length, expected.len() as u64);
        }
        (Err(_), Err(_)) => {}
        (streamed, whole) => panic!("streamed {streamed:?}, one-shot {whole:?}"),
    }
});
