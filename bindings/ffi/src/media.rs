//! Streamed media for the foreign hosts: the core's streaming encryptor and decryptor as objects,
//! a fresh media key, and the types a host needs to stream a body (`HostBody`, `DecryptInto`,
//! `StreamedBody`) or to hand the core a file it encrypted itself (`HostUpload`).
//!
//! A host encrypts a file a piece at a time into a temporary file ([`MediaEncryptor`]), sends
//! the command with its [`HostUpload`] and streams that file out when the core's fetch names it
//! ([`HostBody`]). A download with a sink comes back as a fetch with [`DecryptInto`]: the host
//! feeds the 2xx body through a [`MediaDecryptor`] into its temporary sink and answers with
//! [`StreamedBody`]. The MAC is checked (in constant time) at `finish`; the host releases the
//! sink only when the command ends in `MediaSaved`.

use std::sync::{Arc, Mutex};

use walink_core::client;
use walink_core::media::{self, MediaError, MediaType};
use zeroize::Zeroizing;

use crate::WalinkError;
use crate::error::guard;

/// The hashes and plaintext length of a media file.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct MediaHashes {
    /// SHA-256 of the plaintext.
    pub file_sha256: Vec<u8>,
    /// SHA-256 of the encrypted file (ciphertext and MAC).
    pub file_enc_sha256: Vec<u8>,
    /// The plaintext length.
    pub file_length: u64,
}

impl From<media::MediaHashes> for MediaHashes {
    fn from(h: media::MediaHashes) -> MediaHashes {
        MediaHashes {
            file_sha256: h.file_sha256.to_vec(),
            file_enc_sha256: h.file_enc_sha256.to_vec(),
            file_length: h.file_length,
        }
    }
}

impl TryFrom<MediaHashes> for media::MediaHashes {
    type Error = ();

    fn try_from(h: MediaHashes) -> Result<media::MediaHashes, ()> {
        Ok(media::MediaHashes {
            file_sha256: h.file_sha256.try_into().map_err(|_| ())?,
            file_enc_sha256: h.file_enc_sha256.try_into().map_err(|_| ())?,
            file_length: h.file_length,
        })
    }
}

/// A file the host encrypted with a [`MediaEncryptor`] and holds, for `Command::SendMedia`.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct HostUpload {
    /// The host's name for the encrypted file: the fetch that uploads it names it in `host_body`.
    pub body: u64,
    /// The media key it was encrypted with (from [`new_media_key`]), 32 bytes.
    pub media_key: Vec<u8>,
    /// What the encryptor's `finish` reported.
    pub hashes: MediaHashes,
}

impl std::fmt::Debug for HostUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostUpload")
            .field("body", &self.body)
            .field("file_length", &self.hashes.file_length)
            .finish_non_exhaustive()
    }
}

/// Converts a host's upload; a key or hash of the wrong length is `None` (the command then
/// carries no body and the core refuses it as empty media).
pub(crate) fn host_upload(upload: HostUpload) -> Option<client::HostUpload> {
    let key: [u8; 32] = upload.media_key.as_slice().try_into().ok()?;
    Some(client::HostUpload {
        body: upload.body,
        media_key: Zeroizing::new(key),
        hashes: upload.hashes.try_into().ok()?,
    })
}

/// A request body the host holds (an upload's encrypted file): stream it as it is, with
/// `Content-Length: length`.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct HostBody {
    /// The host's name for it (`HostUpload::body`).
    pub id: u64,
    /// Its length in bytes.
    pub length: u64,
}

/// A response to decrypt into the host's sink: a 2xx body goes through a [`MediaDecryptor`]
/// (`media_key`, `media_type`, at most the request's `max_response_bytes`) into sink `sink`,
/// and the answer is `FetchResult::Streamed`. A non-2xx body is not read: answer
/// `FetchResult::Response` with the status and no body.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct DecryptInto {
    /// The sink the `DownloadMedia` command named.
    pub sink: u64,
    /// The message's media key.
    pub media_key: Vec<u8>,
    /// The key family (`image`, `video`, `audio`, `document`, ...).
    pub media_type: String,
}

impl std::fmt::Debug for DecryptInto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptInto")
            .field("sink", &self.sink)
            .field("media_type", &self.media_type)
            .finish_non_exhaustive()
    }
}

impl From<client::DecryptInto> for DecryptInto {
    fn from(into: client::DecryptInto) -> DecryptInto {
        DecryptInto {
            sink: into.sink,
            media_key: into.media_key.to_vec(),
            media_type: into.media_type.as_str().to_owned(),
        }
    }
}

/// Why a media file was refused: the core's `MediaError`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum MediaFailure {
    /// The media key is empty.
    EmptyKey,
    /// Shorter than one block and the MAC, or not block-aligned.
    InvalidLength,
    /// The MAC does not match: corrupt or tampered with.
    MacMismatch,
    /// The plaintext does not end in valid padding.
    InvalidPadding,
    /// The encrypted file's SHA-256 is not the message's.
    EncryptedHashMismatch,
    /// The plaintext's SHA-256 is not the message's.
    HashMismatch,
    /// Longer than allowed.
    TooLarge,
}

impl From<MediaError> for MediaFailure {
    fn from(error: MediaError) -> MediaFailure {
        match error {
            MediaError::EmptyKey => MediaFailure::EmptyKey,
            MediaError::InvalidLength => MediaFailure::InvalidLength,
            MediaError::MacMismatch => MediaFailure::MacMismatch,
            MediaError::InvalidPadding => MediaFailure::InvalidPadding,
            MediaError::EncryptedHashMismatch => MediaFailure::EncryptedHashMismatch,
            MediaError::HashMismatch => MediaFailure::HashMismatch,
            MediaError::TooLarge => MediaFailure::TooLarge,
        }
    }
}

impl From<MediaFailure> for MediaError {
    fn from(failure: MediaFailure) -> MediaError {
        match failure {
            MediaFailure::EmptyKey => MediaError::EmptyKey,
            MediaFailure::InvalidLength => MediaError::InvalidLength,
            MediaFailure::MacMismatch => MediaError::MacMismatch,
            MediaFailure::InvalidPadding => MediaError::InvalidPadding,
            MediaFailure::EncryptedHashMismatch => MediaError::EncryptedHashMismatch,
            MediaFailure::HashMismatch => MediaError::HashMismatch,
            MediaFailure::TooLarge => MediaError::TooLarge,
        }
    }
}

/// What the host's decryptor made of a 2xx body decrypted into its sink.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum StreamedBody {
    /// The MAC matched: the hashes and length (the core compares them with the message's).
    Decrypted {
        /// What `MediaDecryptor::finish` returned.
        hashes: MediaHashes,
    },
    /// The decryptor refused the body.
    Refused {
        /// Why.
        failure: MediaFailure,
    },
}

impl From<StreamedBody> for Result<media::MediaHashes, MediaError> {
    fn from(body: StreamedBody) -> Result<media::MediaHashes, MediaError> {
        match body {
            StreamedBody::Decrypted { hashes } => {
                hashes.try_into().map_err(|()| MediaError::InvalidLength)
            }
            StreamedBody::Refused { failure } => Err(failure.into()),
        }
    }
}

/// Why a streaming encryptor or decryptor call failed.
#[derive(Debug, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum MediaCryptoError {
    /// The data is refused (decryption only): discard the sink.
    #[error("media refused: {failure:?}")]
    Refused {
        /// Why.
        failure: MediaFailure,
    },
    /// `finish` was called already: the object is spent.
    #[error("the media encryptor or decryptor has finished")]
    Finished,
    /// walink panicked (a bug).
    #[error("walink panicked: {reason}")]
    Panicked {
        /// The panic's message.
        reason: String,
    },
}

/// A fresh 32-byte media key from the operating system's generator.
#[uniffi::export]
pub fn new_media_key() -> Result<Vec<u8>, WalinkError> {
    media::new_media_key()
        .map(|key| key.to_vec())
        .ok_or_else(|| WalinkError::Platform {
            code: "no_randomness".to_owned(),
            reason: "the operating system's random generator failed".to_owned(),
        })
}

/// The key family of a kind of media message (`image` for a sticker, `audio` for a voice note).
#[uniffi::export]
pub fn media_type_of(kind: crate::client::MediaKind) -> String {
    client::MediaKind::from(kind)
        .media_type()
        .as_str()
        .to_owned()
}

fn media_type(name: &str) -> Result<MediaType, WalinkError> {
    MediaType::parse(name).ok_or_else(|| {
        WalinkError::invalid("invalid_media_type", format!("unknown media type {name:?}"))
    })
}

fn key_error(error: MediaError) -> WalinkError {
    WalinkError::invalid(error.code(), error.to_string())
}

fn run<R>(f: impl FnOnce() -> Result<R, MediaCryptoError>) -> Result<R, MediaCryptoError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(MediaCryptoError::Panicked {
            reason: "media crypto panicked".to_owned(),
        })
    })
}

/// The encrypted tail and the hashes of a finished encryption.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct EncryptedEnd {
    /// The last block and the MAC: append them to the file.
    pub tail: Vec<u8>,
    /// The hashes and length for `HostUpload`.
    pub hashes: MediaHashes,
}

/// Encrypts media a piece at a time (the core's `media::MediaEncryptor`): `update` any number
/// of times, then `finish` once; the outputs, concatenated, are the file to upload.
#[derive(uniffi::Object)]
pub struct MediaEncryptor {
    inner: Mutex<Option<media::MediaEncryptor>>,
}

#[uniffi::export]
impl MediaEncryptor {
    /// Starts encrypting under `media_key` (32 bytes) for the key family `media_type`.
    #[uniffi::constructor]
    pub fn new(media_key: Vec<u8>, media_type: String) -> Result<Arc<Self>, WalinkError> {
        let media_key = Zeroizing::new(media_key);
        guard(|| {
            let kind = self::media_type(&media_type)?;
            let inner = media::MediaEncryptor::new(&media_key, kind).map_err(key_error)?;
            Ok(Arc::new(MediaEncryptor {
                inner: Mutex::new(Some(inner)),
            }))
        })
    }

    /// Encrypts the next piece; returns the whole blocks it completed.
    pub fn update(&self, plaintext: Vec<u8>) -> Result<Vec<u8>, MediaCryptoError> {
        run(|| {
            let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            let encryptor = inner.as_mut().ok_or(MediaCryptoError::Finished)?;
            let mut out = Vec::with_capacity(plaintext.len() + 16);
            encryptor.update(&plaintext, &mut out);
            Ok(out)
        })
    }

    /// Pads and encrypts the last block; returns it with the MAC, and the hashes.
    pub fn finish(&self) -> Result<EncryptedEnd, MediaCryptoError> {
        run(|| {
            let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            let encryptor = inner.take().ok_or(MediaCryptoError::Finished)?;
            let mut tail = Vec::with_capacity(16 + media::MAC_LEN);
            let hashes = encryptor.finish(&mut tail);
            Ok(EncryptedEnd {
                tail,
                hashes: hashes.into(),
            })
        })
    }
}

/// The verified end of a decryption.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct DecryptedEnd {
    /// The last plaintext bytes: append them to the sink.
    pub tail: Vec<u8>,
    /// The hashes and length, for `StreamedBody::Decrypted`.
    pub hashes: MediaHashes,
}

/// Decrypts media a piece at a time as it downloads (the core's `media::MediaDecryptor`). The
/// plaintext `update` returns is not verified yet: write it to a sink that `finish` (which
/// checks the MAC in constant time) and then the core's `MediaSaved` release, and that is
/// deleted otherwise.
#[derive(uniffi::Object)]
pub struct MediaDecryptor {
    inner: Mutex<Option<media::MediaDecryptor>>,
}

#[uniffi::export]
impl MediaDecryptor {
    /// Starts decrypting under `media_key` for `media_type`, refusing (`TooLarge`) an encrypted
    /// file longer than `max_bytes`.
    #[uniffi::constructor]
    pub fn new(
        media_key: Vec<u8>,
        media_type: String,
        max_bytes: u64,
    ) -> Result<Arc<Self>, WalinkError> {
        let media_key = Zeroizing::new(media_key);
        guard(|| {
            let kind = self::media_type(&media_type)?;
            let inner = media::MediaDecryptor::new(&media_key, kind)
                .map_err(key_error)?
                .with_limit(max_bytes);
            Ok(Arc::new(MediaDecryptor {
                inner: Mutex::new(Some(inner)),
            }))
        })
    }

    /// Decrypts the next piece of the file; returns unverified plaintext.
    pub fn update(&self, data: Vec<u8>) -> Result<Vec<u8>, MediaCryptoError> {
        run(|| {
            let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            let decryptor = inner.as_mut().ok_or(MediaCryptoError::Finished)?;
            let mut out = Vec::with_capacity(data.len());
            decryptor.update(&data, &mut out).map_err(refused)?;
            Ok(out)
        })
    }

    /// Checks the MAC, then returns the last plaintext and the hashes.
    pub fn finish(&self) -> Result<DecryptedEnd, MediaCryptoError> {
        run(|| {
            let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            let decryptor = inner.take().ok_or(MediaCryptoError::Finished)?;
            let mut tail = Vec::new();
            let hashes = decryptor.finish(&mut tail).map_err(refused)?;
            Ok(DecryptedEnd {
                tail,
                hashes: hashes.into(),
            })
        })
    }
}

fn refused(error: MediaError) -> MediaCryptoError {
    MediaCryptoError::Refused {
        failure: error.into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn encrypt(key: &[u8], plain: &[u8], piece: usize) -> (Vec<u8>, MediaHashes) {
        let encryptor = MediaEncryptor::new(key.to_vec(), "video".to_owned()).unwrap();
        let mut file = Vec::new();
        for chunk in plain.chunks(piece) {
            file.extend(encryptor.update(chunk.to_vec()).unwrap());
        }
        let end = encryptor.finish().unwrap();
        file.extend(end.tail);
        assert_eq!(encryptor.finish(), Err(MediaCryptoError::Finished));
        (file, end.hashes)
    }

    fn decrypt(
        key: &[u8],
        file: &[u8],
        piece: usize,
    ) -> Result<(Vec<u8>, MediaHashes), MediaCryptoError> {
        let decryptor =
            MediaDecryptor::new(key.to_vec(), "video".to_owned(), file.len() as u64).unwrap();
        let mut plain = Vec::new();
        for chunk in file.chunks(piece) {
            plain.extend(decryptor.update(chunk.to_vec())?);
        }
        let end = decryptor.finish()?;
        plain.extend(end.tail);
        Ok((plain, end.hashes))
    }

    #[test]
    fn pieces_round_trip_and_match_the_whole_file_scheme() {
        let key = new_media_key().unwrap();
        let plain: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        let (file, hashes) = encrypt(&key, &plain, 7_001);
        let whole = media::encrypt(&key, MediaType::Video, &plain).unwrap();
        assert_eq!(file, whole.0);
        assert_eq!(hashes, MediaHashes::from(whole.1));
        for piece in [1, 9, 10, 16, 4096, 65_536] {
            assert_eq!(
                decrypt(&key, &file, piece).unwrap(),
                (plain.clone(), hashes.clone())
            );
        }
    }

    #[test]
    fn a_tampered_or_oversized_file_is_refused_with_its_kind() {
        let key = new_media_key().unwrap();
        let (mut file, _) = encrypt(&key, &[5; 3_000], 512);
        let over = MediaDecryptor::new(key.to_vec(), "video".to_owned(), 10).unwrap();
        assert_eq!(
            over.update(file.clone()),
            Err(MediaCryptoError::Refused {
                failure: MediaFailure::TooLarge
            })
        );
        file[100] ^= 1;
        assert_eq!(
            decrypt(&key, &file, 1_000),
            Err(MediaCryptoError::Refused {
                failure: MediaFailure::MacMismatch
            })
        );
        assert!(matches!(
            MediaEncryptor::new(key.to_vec(), "nope".to_owned()),
            Err(WalinkError::InvalidInput { .. })
        ));
    }

    #[test]
    fn a_streamed_request_and_its_answer_cross() {
        let request = crate::FetchRequest::from(client::FetchRequest {
            method: client::Method::Post,
            url: "https://mmg.whatsapp.net/mms/video/x?auth=secret".into(),
            headers: vec![],
            body: client::Body::Host { id: 3, length: 42 },
            response: client::ResponseTarget::Decrypt(client::DecryptInto {
                sink: 9,
                media_key: Zeroizing::new(vec![7; 32]),
                media_type: MediaType::Video,
            }),
            max_response_bytes: 10,
            timeout_ms: 20,
        });
        assert_eq!(request.body, None);
        assert_eq!(request.host_body, Some(HostBody { id: 3, length: 42 }));
        let decrypt = request.decrypt.clone().unwrap();
        assert_eq!((decrypt.sink, decrypt.media_type.as_str()), (9, "video"));
        assert!(!format!("{request:?}").contains("secret"));
        assert!(!format!("{decrypt:?}").contains("7, 7"));

        let hashes = MediaHashes {
            file_sha256: vec![1; 32],
            file_enc_sha256: vec![2; 32],
            file_length: 5,
        };
        let answer: client::FetchResult = crate::FetchResult::Streamed {
            status: 200,
            body: StreamedBody::Decrypted {
                hashes: hashes.clone(),
            },
        }
        .into();
        let streamed = answer.unwrap().streamed.unwrap().unwrap();
        assert_eq!(MediaHashes::from(streamed), hashes);
        let refused: client::FetchResult = crate::FetchResult::Streamed {
            status: 200,
            body: StreamedBody::Refused {
                failure: MediaFailure::MacMismatch,
            },
        }
        .into();
        assert_eq!(
            refused.unwrap().streamed,
            Some(Err(MediaError::MacMismatch))
        );
        // A host's hash of the wrong length is refused, never padded.
        let short = HostUpload {
            body: 1,
            media_key: vec![0; 32],
            hashes: MediaHashes {
                file_sha256: vec![1; 31],
                ..hashes
            },
        };
        assert!(host_upload(short).is_none());
    }

    #[test]
    fn every_failure_crosses_both_ways() {
        for error in MediaError::ALL {
            assert_eq!(MediaError::from(MediaFailure::from(error)), error);
        }
    }
}
