//! Media encryption: key expansion, AES-256-CBC with a truncated HMAC, and the file hashes.
//!
//! The host does the HTTP (upload to and download from the media servers); walink turns bytes
//! into bytes. The scheme, as WhiskeySockets/Baileys src/Utils/messages-media.ts
//! (`getMediaKeys`, `encryptedStream`) and tulir/whatsmeow:upload.go / download.go implement it:
//!
//! - `expanded = HKDF-SHA256(ikm = mediaKey, salt = none, info = "WhatsApp <Kind> Keys", 112)`;
//!   `iv = expanded[0..16]`, `cipherKey = expanded[16..48]`, `macKey = expanded[48..80]`
//!   (the last 32 bytes, the "ref key", are unused);
//! - `ciphertext = AES-256-CBC(cipherKey, iv, PKCS#7(plaintext))`;
//! - `mac = HMAC-SHA256(macKey, iv ‖ ciphertext)[..10]`; the uploaded file is `ciphertext ‖ mac`;
//! - `fileSha256 = SHA-256(plaintext)`, `fileEncSha256 = SHA-256(ciphertext ‖ mac)`,
//!   `fileLength` = the plaintext length.
//!
//! Baileys' download path does not check the MAC; walink does, in constant time, before it
//! decrypts anything ([`decrypt`]). The streaming [`MediaDecryptor`] checks it at `finish`, after
//! it has released plaintext; use it only where that is acceptable.

use aes::Aes256;
use cbc::cipher::{Block, BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Length of the truncated HMAC appended to the ciphertext.
pub const MAC_LEN: usize = 10;
const BLOCK_LEN: usize = 16;

/// Why media could not be encrypted or decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// The media key is empty.
    #[error("empty media key")]
    EmptyKey,
    /// The encrypted file is shorter than one block and a MAC, or not block-aligned.
    #[error("encrypted media has an invalid length")]
    InvalidLength,
    /// The MAC does not match: the file is corrupt or was tampered with.
    #[error("media mac mismatch")]
    MacMismatch,
    /// The decrypted data does not end in valid PKCS#7 padding.
    #[error("invalid media padding")]
    InvalidPadding,
    /// The encrypted file's SHA-256 is not the message's `fileEncSha256`.
    #[error("encrypted media hash mismatch")]
    EncryptedHashMismatch,
    /// The decrypted file's SHA-256 is not the message's `fileSha256`.
    #[error("media hash mismatch")]
    HashMismatch,
    /// More bytes arrived than the decryptor's limit allows.
    #[error("media larger than allowed")]
    TooLarge,
}

impl MediaError {
    /// Every error.
    pub const ALL: [MediaError; 7] = [
        MediaError::EmptyKey,
        MediaError::InvalidLength,
        MediaError::MacMismatch,
        MediaError::InvalidPadding,
        MediaError::EncryptedHashMismatch,
        MediaError::HashMismatch,
        MediaError::TooLarge,
    ];

    /// A stable machine-readable code, the same in every binding.
    pub fn code(self) -> &'static str {
        match self {
            MediaError::EmptyKey => "empty_key",
            MediaError::InvalidLength => "invalid_length",
            MediaError::MacMismatch => "mac_mismatch",
            MediaError::InvalidPadding => "invalid_padding",
            MediaError::EncryptedHashMismatch => "encrypted_hash_mismatch",
            MediaError::HashMismatch => "hash_mismatch",
            MediaError::TooLarge => "too_large",
        }
    }

    /// The error named by [`code`](MediaError::code).
    pub fn from_code(code: &str) -> Option<MediaError> {
        MediaError::ALL.into_iter().find(|e| e.code() == code)
    }
}

/// A fresh 32-byte media key from the operating system's generator (`None` without one).
pub fn new_media_key() -> Option<Zeroizing<[u8; 32]>> {
    let mut key = Zeroizing::new([0u8; 32]);
    getrandom::fill(key.as_mut_slice()).ok()?;
    Some(key)
}

/// Which key family a media file belongs to: the `<Kind>` of the HKDF info. Stickers use
/// [`MediaType::Image`], GIFs and round videos [`MediaType::Video`], voice notes
/// [`MediaType::Audio`] (Baileys `MEDIA_HKDF_KEY_MAPPING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaType {
    /// Images and stickers.
    Image,
    /// Videos, GIFs and round videos.
    Video,
    /// Audio and voice notes.
    Audio,
    /// Documents.
    Document,
    /// History-sync blobs (`md-msg-hist`).
    History,
    /// App-state snapshots and external patches (`md-app-state`).
    AppState,
    /// Image thumbnails.
    ImageThumbnail,
    /// Video thumbnails.
    VideoThumbnail,
    /// Document thumbnails.
    DocumentThumbnail,
    /// Link-preview thumbnails.
    LinkThumbnail,
    /// Payment background images.
    PaymentBackground,
}

impl MediaType {
    /// Every type.
    pub const ALL: [MediaType; 11] = [
        MediaType::Image,
        MediaType::Video,
        MediaType::Audio,
        MediaType::Document,
        MediaType::History,
        MediaType::AppState,
        MediaType::ImageThumbnail,
        MediaType::VideoThumbnail,
        MediaType::DocumentThumbnail,
        MediaType::LinkThumbnail,
        MediaType::PaymentBackground,
    ];

    /// A stable name, the same in every binding (`image`, `video`, `audio`, `document`,
    /// `history`, `app_state`, `image_thumbnail`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::Image => "image",
            MediaType::Video => "video",
            MediaType::Audio => "audio",
            MediaType::Document => "document",
            MediaType::History => "history",
            MediaType::AppState => "app_state",
            MediaType::ImageThumbnail => "image_thumbnail",
            MediaType::VideoThumbnail => "video_thumbnail",
            MediaType::DocumentThumbnail => "document_thumbnail",
            MediaType::LinkThumbnail => "link_thumbnail",
            MediaType::PaymentBackground => "payment_background",
        }
    }

    /// The type named by [`as_str`](MediaType::as_str).
    pub fn parse(name: &str) -> Option<MediaType> {
        MediaType::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The HKDF info string.
    pub fn hkdf_info(self) -> &'static str {
        match self {
            MediaType::Image => "WhatsApp Image Keys",
            MediaType::Video => "WhatsApp Video Keys",
            MediaType::Audio => "WhatsApp Audio Keys",
            MediaType::Document => "WhatsApp Document Keys",
            MediaType::History => "WhatsApp History Keys",
            MediaType::AppState => "WhatsApp App State Keys",
            MediaType::ImageThumbnail => "WhatsApp Image Thumbnail Keys",
            MediaType::VideoThumbnail => "WhatsApp Video Thumbnail Keys",
            MediaType::DocumentThumbnail => "WhatsApp Document Thumbnail Keys",
            MediaType::LinkThumbnail => "WhatsApp Link Thumbnail Keys",
            MediaType::PaymentBackground => "WhatsApp Payment Background Keys",
        }
    }
}

/// The keys expanded from one media key.
pub struct MediaKeys {
    iv: [u8; 16],
    cipher_key: Zeroizing<[u8; 32]>,
    mac_key: Zeroizing<[u8; 32]>,
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for MediaKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MediaKeys(..)")
    }
}

impl MediaKeys {
    /// Expands a media key (32 random bytes, carried in the message as `mediaKey`).
    pub fn derive(media_key: &[u8], kind: MediaType) -> Result<MediaKeys, MediaError> {
        if media_key.is_empty() {
            return Err(MediaError::EmptyKey);
        }
        let mut expanded = Zeroizing::new([0u8; 112]);
        if !walink_crypto::hkdf_sha256(
            None,
            media_key,
            kind.hkdf_info().as_bytes(),
            expanded.as_mut_slice(),
        ) {
            return Err(MediaError::EmptyKey);
        }
        let (iv, rest) = expanded.split_at(16);
        let (cipher_key, rest) = rest.split_at(32);
        let (mac_key, _ref_key) = rest.split_at(32);
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(mac_key).map_err(|_| MediaError::EmptyKey)?;
        mac.update(iv);
        let mut keys = MediaKeys {
            iv: [0; 16],
            cipher_key: Zeroizing::new([0; 32]),
            mac_key: Zeroizing::new([0; 32]),
            mac,
        };
        keys.iv.copy_from_slice(iv);
        keys.cipher_key.copy_from_slice(cipher_key);
        keys.mac_key.copy_from_slice(mac_key);
        Ok(keys)
    }

    /// The CBC initialisation vector.
    pub fn iv(&self) -> &[u8; 16] {
        &self.iv
    }

    /// The AES-256 key.
    pub fn cipher_key(&self) -> &[u8; 32] {
        &self.cipher_key
    }

    /// The HMAC-SHA256 key.
    pub fn mac_key(&self) -> &[u8; 32] {
        &self.mac_key
    }

    /// HMAC-SHA256 keyed with the MAC key, already fed the IV.
    fn mac(&self) -> Hmac<Sha256> {
        self.mac.clone()
    }
}

/// The hashes and length a media message carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaHashes {
    /// SHA-256 of the plaintext.
    pub file_sha256: [u8; 32],
    /// SHA-256 of the uploaded file (ciphertext ‖ MAC).
    pub file_enc_sha256: [u8; 32],
    /// Length of the plaintext.
    pub file_length: u64,
}

/// Encrypts media in pieces: feed [`update`](MediaEncryptor::update) any number of times, then
/// [`finish`](MediaEncryptor::finish). The output, concatenated, is the file to upload.
pub struct MediaEncryptor {
    cipher: cbc::Encryptor<Aes256>,
    mac: Hmac<Sha256>,
    plain_hash: Sha256,
    enc_hash: Sha256,
    pending: Zeroizing<Vec<u8>>,
    length: u64,
}

impl MediaEncryptor {
    /// Starts encrypting with the keys of `media_key`.
    pub fn new(media_key: &[u8], kind: MediaType) -> Result<MediaEncryptor, MediaError> {
        let keys = MediaKeys::derive(media_key, kind)?;
        Ok(MediaEncryptor {
            cipher: cbc::Encryptor::new(&(*keys.cipher_key).into(), &keys.iv.into()),
            mac: keys.mac(),
            plain_hash: Sha256::new(),
            enc_hash: Sha256::new(),
            pending: Zeroizing::new(Vec::with_capacity(BLOCK_LEN)),
            length: 0,
        })
    }

    fn emit(&mut self, block: &mut Block<Aes256>, out: &mut Vec<u8>) {
        self.cipher.encrypt_block(block);
        out.extend_from_slice(block.as_slice());
    }

    /// Feeds the ciphertext appended to `out` since `start` to the MAC and the hash.
    fn absorb(&mut self, out: &[u8], start: usize) {
        let emitted = out.get(start..).unwrap_or_default();
        self.mac.update(emitted);
        self.enc_hash.update(emitted);
    }

    /// Encrypts the next piece of plaintext, appending whole ciphertext blocks to `out`.
    pub fn update(&mut self, plaintext: &[u8], out: &mut Vec<u8>) {
        self.plain_hash.update(plaintext);
        self.length = self.length.saturating_add(plaintext.len() as u64);
        let start = out.len();
        let mut rest = plaintext;
        if !self.pending.is_empty() {
            let take = (BLOCK_LEN - self.pending.len()).min(rest.len());
            let (head, tail) = rest.split_at(take);
            self.pending.extend_from_slice(head);
            rest = tail;
            if self.pending.len() < BLOCK_LEN {
                return;
            }
            out.extend_from_slice(&self.pending);
            self.pending.clear();
        }
        let whole = rest.len() - rest.len() % BLOCK_LEN;
        let (blocks, remainder) = rest.split_at(whole);
        out.extend_from_slice(blocks);
        self.pending.extend_from_slice(remainder);
        let (blocks, _) =
            Block::<Aes256>::slice_as_chunks_mut(out.get_mut(start..).unwrap_or_default());
        self.cipher.encrypt_blocks(blocks);
        self.absorb(out, start);
    }

    /// Pads and encrypts the last block, appends it and the MAC to `out`, and returns the hashes.
    pub fn finish(mut self, out: &mut Vec<u8>) -> MediaHashes {
        let pad = BLOCK_LEN - self.pending.len();
        let mut block = Block::<Aes256>::default();
        let (data, padding) = block.split_at_mut(self.pending.len());
        data.copy_from_slice(&self.pending);
        padding.fill(pad as u8);
        let start = out.len();
        self.emit(&mut block, out);
        self.absorb(out, start);
        let tag = self.mac.finalize().into_bytes();
        let mac = tag.get(..MAC_LEN).unwrap_or_default();
        self.enc_hash.update(mac);
        out.extend_from_slice(mac);
        MediaHashes {
            file_sha256: self.plain_hash.finalize().into(),
            file_enc_sha256: self.enc_hash.finalize().into(),
            file_length: self.length,
        }
    }
}

/// Encrypts a whole media file: the bytes to upload, and the hashes for the message.
pub fn encrypt(
    media_key: &[u8],
    kind: MediaType,
    plaintext: &[u8],
) -> Result<(Vec<u8>, MediaHashes), MediaError> {
    let mut encryptor = MediaEncryptor::new(media_key, kind)?;
    let mut out = Vec::with_capacity(plaintext.len() + BLOCK_LEN + MAC_LEN);
    encryptor.update(plaintext, &mut out);
    let hashes = encryptor.finish(&mut out);
    Ok((out, hashes))
}

/// The hashes a message announced for its media; those given are checked by [`decrypt`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Expected<'a> {
    /// The message's `fileEncSha256`.
    pub file_enc_sha256: Option<&'a [u8]>,
    /// The message's `fileSha256`.
    pub file_sha256: Option<&'a [u8]>,
}

/// Checks the length, the expected encrypted hash and the MAC of a downloaded file, then decrypts
/// it and checks the expected plaintext hash. Nothing is decrypted unless the MAC matches.
pub fn decrypt(
    media_key: &[u8],
    kind: MediaType,
    file: &[u8],
    expected: Expected<'_>,
) -> Result<Vec<u8>, MediaError> {
    let keys = MediaKeys::derive(media_key, kind)?;
    let body_len = file
        .len()
        .checked_sub(MAC_LEN)
        .filter(|&n| n >= BLOCK_LEN && n % BLOCK_LEN == 0)
        .ok_or(MediaError::InvalidLength)?;
    let (ciphertext, mac) = file.split_at(body_len);
    if let Some(want) = expected.file_enc_sha256 {
        if Sha256::digest(file).as_slice() != want {
            return Err(MediaError::EncryptedHashMismatch);
        }
    }
    let mut hmac = keys.mac();
    hmac.update(ciphertext);
    let tag = hmac.finalize().into_bytes();
    if !bool::from(tag.get(..MAC_LEN).unwrap_or_default().ct_eq(mac)) {
        return Err(MediaError::MacMismatch);
    }

    let mut plaintext = ciphertext.to_vec();
    let mut cipher = cbc::Decryptor::<Aes256>::new(&(*keys.cipher_key).into(), &keys.iv.into());
    let (blocks, _) = Block::<Aes256>::slice_as_chunks_mut(&mut plaintext);
    cipher.decrypt_blocks(blocks);
    let unpadded = unpad(&plaintext)?;
    plaintext.truncate(unpadded);
    if let Some(want) = expected.file_sha256 {
        if Sha256::digest(&plaintext).as_slice() != want {
            return Err(MediaError::HashMismatch);
        }
    }
    Ok(plaintext)
}

/// The length of `data` without its PKCS#7 padding.
fn unpad(data: &[u8]) -> Result<usize, MediaError> {
    let pad = usize::from(*data.last().ok_or(MediaError::InvalidPadding)?);
    if pad == 0 || pad > BLOCK_LEN || pad > data.len() {
        return Err(MediaError::InvalidPadding);
    }
    let start = data.len() - pad;
    let padding = data.get(start..).ok_or(MediaError::InvalidPadding)?;
    if padding.iter().any(|&b| usize::from(b) != pad) {
        return Err(MediaError::InvalidPadding);
    }
    Ok(start)
}

/// Decrypts media in pieces, as it downloads. Plaintext is released before the MAC is checked
/// (at [`finish`](MediaDecryptor::finish)): write it to a sink that is discarded if `finish`
/// fails and committed only after it succeeds (and the hashes match the message's). It holds
/// at most one block and the MAC beyond the piece being decrypted.
pub struct MediaDecryptor {
    cipher: cbc::Decryptor<Aes256>,
    mac: Hmac<Sha256>,
    plain_hash: Sha256,
    enc_hash: Sha256,
    /// Bytes not yet decrypted: the last block and the MAC are always held back.
    held: Vec<u8>,
    length: u64,
    /// Encrypted bytes taken so far, and the most allowed.
    taken: u64,
    limit: u64,
}

impl MediaDecryptor {
    /// Starts decrypting with the keys of `media_key`.
    pub fn new(media_key: &[u8], kind: MediaType) -> Result<MediaDecryptor, MediaError> {
        let keys = MediaKeys::derive(media_key, kind)?;
        Ok(MediaDecryptor {
            cipher: cbc::Decryptor::new(&(*keys.cipher_key).into(), &keys.iv.into()),
            mac: keys.mac(),
            plain_hash: Sha256::new(),
            enc_hash: Sha256::new(),
            held: Vec::with_capacity(2 * BLOCK_LEN + MAC_LEN),
            length: 0,
            taken: 0,
            limit: u64::MAX,
        })
    }

    /// Refuses (with [`MediaError::TooLarge`]) an encrypted file longer than `max_bytes`.
    pub fn with_limit(mut self, max_bytes: u64) -> MediaDecryptor {
        self.limit = max_bytes;
        self
    }

    fn decrypt_blocks(&mut self, count: usize, out: &mut Vec<u8>) {
        let take = count * BLOCK_LEN;
        let ciphertext = self.held.get(..take).unwrap_or_default();
        self.mac.update(ciphertext);
        let start = out.len();
        out.extend_from_slice(ciphertext);
        let (blocks, _) =
            Block::<Aes256>::slice_as_chunks_mut(out.get_mut(start..).unwrap_or_default());
        self.cipher.decrypt_blocks(blocks);
        self.held.drain(..take);
    }

    /// Decrypts the next piece of the downloaded file, appending (unverified) plaintext to
    /// `out`; refuses a piece that takes the file over the limit, appending nothing.
    pub fn update(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), MediaError> {
        self.taken = self.taken.saturating_add(data.len() as u64);
        if self.taken > self.limit {
            return Err(MediaError::TooLarge);
        }
        self.enc_hash.update(data);
        let start = out.len();
        for piece in data.chunks(4096) {
            self.held.extend_from_slice(piece);
            let spare = self.held.len().saturating_sub(BLOCK_LEN + MAC_LEN);
            self.decrypt_blocks(spare / BLOCK_LEN, out);
        }
        let released = out.get(start..).unwrap_or_default();
        self.plain_hash.update(released);
        self.length = self.length.saturating_add(released.len() as u64);
        Ok(())
    }

    /// Checks the MAC, decrypts and unpads the last block, and returns the hashes.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<MediaHashes, MediaError> {
        let body = self
            .held
            .len()
            .checked_sub(MAC_LEN)
            .filter(|&n| n >= BLOCK_LEN && n % BLOCK_LEN == 0)
            .ok_or(MediaError::InvalidLength)?;
        let blocks = body / BLOCK_LEN;
        let mac: [u8; MAC_LEN] = self
            .held
            .get(body..)
            .and_then(|m| m.try_into().ok())
            .ok_or(MediaError::InvalidLength)?;
        let mut last = Vec::with_capacity(body);
        self.decrypt_blocks(blocks, &mut last);
        let tag = self.mac.finalize().into_bytes();
        if !bool::from(tag.get(..MAC_LEN).unwrap_or_default().ct_eq(&mac)) {
            return Err(MediaError::MacMismatch);
        }
        let unpadded = unpad(&last)?;
        let tail = last.get(..unpadded).unwrap_or_default();
        self.plain_hash.update(tail);
        out.extend_from_slice(tail);
        Ok(MediaHashes {
            file_sha256: self.plain_hash.finalize().into(),
            file_enc_sha256: self.enc_hash.finalize().into(),
            file_length: self.length.saturating_add(tail.len() as u64),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_length_one_shot_and_streaming() {
        let key = [7u8; 32];
        for len in [0usize, 1, 15, 16, 17, 31, 32, 33, 100, 4097] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let (file, hashes) = encrypt(&key, MediaType::Document, &plain).unwrap();
            assert_eq!(file.len(), (len / 16 + 1) * 16 + MAC_LEN);
            assert_eq!(hashes.file_length, len as u64);
            let expected = Expected {
                file_enc_sha256: Some(&hashes.file_enc_sha256),
                file_sha256: Some(&hashes.file_sha256),
            };
            assert_eq!(
                decrypt(&key, MediaType::Document, &file, expected).unwrap(),
                plain
            );
            for piece in [1, 7, 16, 26, 1000] {
                let mut encryptor = MediaEncryptor::new(&key, MediaType::Document).unwrap();
                let mut streamed = Vec::new();
                for chunk in plain.chunks(piece) {
                    encryptor.update(chunk, &mut streamed);
                }
                assert_eq!(encryptor.finish(&mut streamed), hashes);
                assert_eq!(streamed, file);
                let mut decryptor = MediaDecryptor::new(&key, MediaType::Document).unwrap();
                let mut out = Vec::new();
                for chunk in file.chunks(piece) {
                    decryptor.update(chunk, &mut out).unwrap();
                }
                assert_eq!(decryptor.finish(&mut out).unwrap(), hashes);
                assert_eq!(out, plain);
            }
        }
    }

    #[test]
    fn refuses_tampering_wrong_keys_and_bad_lengths() {
        let key = [7u8; 32];
        let (file, hashes) = encrypt(&key, MediaType::Image, b"hello media").unwrap();
        let none = Expected::default();
        for i in 0..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 1;
            assert_eq!(
                decrypt(&key, MediaType::Image, &bad, none),
                Err(MediaError::MacMismatch)
            );
            let mut decryptor = MediaDecryptor::new(&key, MediaType::Image).unwrap();
            let mut out = Vec::new();
            decryptor.update(&bad, &mut out).unwrap();
            assert!(decryptor.finish(&mut out).is_err());
        }
        assert_eq!(
            decrypt(&key, MediaType::Video, &file, none),
            Err(MediaError::MacMismatch)
        );
        for cut in 0..file.len() {
            assert!(decrypt(&key, MediaType::Image, &file[..cut], none).is_err());
        }
        let wrong = Expected {
            file_enc_sha256: Some(&[0; 32]),
            file_sha256: None,
        };
        assert_eq!(
            decrypt(&key, MediaType::Image, &file, wrong),
            Err(MediaError::EncryptedHashMismatch)
        );
        let wrong = Expected {
            file_enc_sha256: None,
            file_sha256: Some(&hashes.file_enc_sha256),
        };
        assert_eq!(
            decrypt(&key, MediaType::Image, &file, wrong),
            Err(MediaError::HashMismatch)
        );
        assert!(matches!(
            MediaKeys::derive(&[], MediaType::Image),
            Err(MediaError::EmptyKey)
        ));
    }

    #[test]
    fn the_limit_refuses_a_longer_file_and_error_codes_round_trip() {
        let key = [7u8; 32];
        let (file, _) = encrypt(&key, MediaType::Audio, &[5u8; 100]).unwrap();
        let limit = file.len() as u64;
        let mut exact = MediaDecryptor::new(&key, MediaType::Audio)
            .unwrap()
            .with_limit(limit);
        let mut out = Vec::new();
        exact.update(&file, &mut out).unwrap();
        assert_eq!(exact.finish(&mut out).unwrap().file_length, 100);
        let mut short = MediaDecryptor::new(&key, MediaType::Audio)
            .unwrap()
            .with_limit(limit - 1);
        let mut out = Vec::new();
        let (head, tail) = file.split_at(50);
        short.update(head, &mut out).unwrap();
        assert_eq!(short.update(tail, &mut out), Err(MediaError::TooLarge));
        for error in MediaError::ALL {
            assert_eq!(MediaError::from_code(error.code()), Some(error));
        }
        for kind in MediaType::ALL {
            assert_eq!(MediaType::parse(kind.as_str()), Some(kind));
        }
        let a = new_media_key().unwrap();
        assert_ne!(*a, *new_media_key().unwrap());
    }

    proptest::proptest! {
        #[test]
        fn streaming_matches_one_shot_for_any_split(
            plain in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
            key in proptest::collection::vec(proptest::num::u8::ANY, 1..40),
            piece in 1usize..64,
        ) {
            let (file, hashes) = encrypt(&key, MediaType::Video, &plain).unwrap();
            let mut decryptor = MediaDecryptor::new(&key, MediaType::Video).unwrap();
            let mut out = Vec::new();
            for chunk in file.chunks(piece) {
                decryptor.update(chunk, &mut out).unwrap();
            }
            proptest::prop_assert_eq!(decryptor.finish(&mut out).unwrap(), hashes);
            proptest::prop_assert_eq!(out, plain);
        }

        #[test]
        fn random_files_are_refused_without_panic(
            file in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            piece in 1usize..64,
        ) {
            proptest::prop_assert!(decrypt(&[1; 32], MediaType::Image, &file, Expected::default()).is_err());
            let mut decryptor = MediaDecryptor::new(&[1; 32], MediaType::Image).unwrap();
            let mut out = Vec::new();
            let mut refused = false;
            for chunk in file.chunks(piece) {
                refused |= decryptor.update(chunk, &mut out).is_err();
            }
            proptest::prop_assert!(!refused);
            proptest::prop_assert!(decryptor.finish(&mut out).is_err());
        }
    }
}
