//! walink's media crypto against Baileys (tests/oracle/media.mjs): the same expanded keys for
//! every media type, Baileys' uploads decrypt in walink with matching hashes, and walink's
//! uploads decrypt in Baileys with a valid MAC.

use serde_json::{Value, json};
use walink_core::media::{self, Expected, MediaDecryptor, MediaKeys, MediaType};
use walink_sim::oracle::Oracle;

type Oops = Box<dyn std::error::Error>;

fn bytes(value: &Value) -> Result<Vec<u8>, Oops> {
    Ok(hex::decode(value.as_str().ok_or("not a string")?)?)
}

/// Baileys' media type names, each with the key family walink maps it to.
const TYPES: &[(&str, MediaType)] = &[
    ("image", MediaType::Image),
    ("sticker", MediaType::Image),
    ("product", MediaType::Image),
    ("video", MediaType::Video),
    ("gif", MediaType::Video),
    ("ptv", MediaType::Video),
    ("audio", MediaType::Audio),
    ("ptt", MediaType::Audio),
    ("document", MediaType::Document),
    ("md-msg-hist", MediaType::History),
    ("md-app-state", MediaType::AppState),
    ("thumbnail-image", MediaType::ImageThumbnail),
    ("thumbnail-video", MediaType::VideoThumbnail),
    ("thumbnail-document", MediaType::DocumentThumbnail),
    ("thumbnail-link", MediaType::LinkThumbnail),
    ("payment-bg-image", MediaType::PaymentBackground),
];

fn sample(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn key_expansion_matches_baileys_for_every_type() -> Result<(), Oops> {
    let mut oracle = Oracle::spawn("media.mjs")?;
    for (index, &(name, kind)) in TYPES.iter().enumerate() {
        let media_key = sample(32, index as u8);
        let theirs = oracle.call(
            "keys",
            json!({ "mediaKey": hex::encode(&media_key), "type": name }),
        )?;
        let ours = MediaKeys::derive(&media_key, kind)?;
        assert_eq!(ours.iv().to_vec(), bytes(&theirs["iv"])?, "{name}");
        assert_eq!(
            ours.cipher_key().to_vec(),
            bytes(&theirs["cipherKey"])?,
            "{name}"
        );
        assert_eq!(ours.mac_key().to_vec(), bytes(&theirs["macKey"])?, "{name}");
    }
    Ok(())
}

#[test]
fn baileys_uploads_decrypt_in_walink() -> Result<(), Oops> {
    let mut oracle = Oracle::spawn("media.mjs")?;
    for (len, (name, kind)) in [0usize, 1, 15, 16, 17, 1000, 65_536 + 3].into_iter().zip([
        ("image", MediaType::Image),
        ("video", MediaType::Video),
        ("ptt", MediaType::Audio),
        ("document", MediaType::Document),
        ("sticker", MediaType::Image),
        ("md-msg-hist", MediaType::History),
        ("md-app-state", MediaType::AppState),
    ]) {
        let plain = sample(len, 3);
        let upload = oracle.call(
            "encrypt",
            json!({ "plaintext": hex::encode(&plain), "type": name }),
        )?;
        let media_key = bytes(&upload["mediaKey"])?;
        let file = bytes(&upload["file"])?;
        let file_sha256 = bytes(&upload["fileSha256"])?;
        let file_enc_sha256 = bytes(&upload["fileEncSha256"])?;
        let expected = Expected {
            file_enc_sha256: Some(&file_enc_sha256),
            file_sha256: Some(&file_sha256),
        };
        assert_eq!(
            media::decrypt(&media_key, kind, &file, expected)?,
            plain,
            "{name} {len}"
        );

        // The same file, streamed in uneven pieces, and re-encrypted by walink: identical bytes.
        let mut decryptor = MediaDecryptor::new(&media_key, kind)?;
        let mut out = Vec::new();
        for piece in file.chunks(777) {
            decryptor.update(piece, &mut out)?;
        }
        let hashes = decryptor.finish(&mut out)?;
        assert_eq!(out, plain);
        assert_eq!(hashes.file_sha256.to_vec(), file_sha256);
        assert_eq!(hashes.file_enc_sha256.to_vec(), file_enc_sha256);
        assert_eq!(json!(hashes.file_length), upload["fileLength"]);
        let (again, _) = media::encrypt(&media_key, kind, &plain)?;
        assert_eq!(again, file, "{name} {len}");
    }
    Ok(())
}

#[test]
fn walink_uploads_decrypt_in_baileys() -> Result<(), Oops> {
    let mut oracle = Oracle::spawn("media.mjs")?;
    for (len, (name, kind)) in [0usize, 5, 16, 4097].into_iter().zip([
        ("image", MediaType::Image),
        ("audio", MediaType::Audio),
        ("video", MediaType::Video),
        ("document", MediaType::Document),
    ]) {
        let media_key = sample(32, 9);
        let plain = sample(len, 1);
        let (file, hashes) = media::encrypt(&media_key, kind, &plain)?;
        assert_eq!(hashes.file_length, len as u64);
        let theirs = oracle.call(
            "decrypt",
            json!({ "mediaKey": hex::encode(&media_key), "type": name, "file": hex::encode(&file) }),
        )?;
        assert_eq!(theirs["macOk"], json!(true), "{name}");
        assert_eq!(bytes(&theirs["plaintext"])?, plain, "{name}");
    }
    Ok(())
}
