//! Media in messages: the kinds walink sends, the message built from an upload, and the media
//! fields read back from a received message.
//!
//! Field numbers: whatsmeow's waE2E proto (the table in the protocol notes, §1.5). The message
//! gets `mediaKeyTimestamp` (upload time, unix seconds) as Baileys sets it.

use std::fmt;

use zeroize::Zeroizing;

use crate::media::{MediaHashes, MediaType};
use crate::proto::wa::{self, message as m};

/// What kind of media a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// A photo (`imageMessage`).
    Image,
    /// A video (`videoMessage`).
    Video,
    /// A looping GIF (`videoMessage` with `gifPlayback`).
    Gif,
    /// An audio file (`audioMessage`).
    Audio,
    /// A voice note (`audioMessage` with `ptt`).
    VoiceNote,
    /// A document, with a file name (`documentMessage`).
    Document,
    /// A sticker (`stickerMessage`).
    Sticker,
}

impl MediaKind {
    /// Every kind.
    pub const ALL: [MediaKind; 7] = [
        MediaKind::Image,
        MediaKind::Video,
        MediaKind::Gif,
        MediaKind::Audio,
        MediaKind::VoiceNote,
        MediaKind::Document,
        MediaKind::Sticker,
    ];

    /// The key family (HKDF info) of the kind.
    pub fn media_type(self) -> MediaType {
        match self {
            MediaKind::Image | MediaKind::Sticker => MediaType::Image,
            MediaKind::Video | MediaKind::Gif => MediaType::Video,
            MediaKind::Audio | MediaKind::VoiceNote => MediaType::Audio,
            MediaKind::Document => MediaType::Document,
        }
    }

    /// The upload path kind (`/mms/<kind>/…`) and download `mms-type`.
    pub fn mms_type(self) -> &'static str {
        match self {
            MediaKind::Image | MediaKind::Sticker => "image",
            MediaKind::Video | MediaKind::Gif => "video",
            MediaKind::Audio | MediaKind::VoiceNote => "audio",
            MediaKind::Document => "document",
        }
    }

    /// The `mediatype` attribute of the stanza's `<enc>` children, and the stable name of the
    /// kind in every binding (`image`, `video`, `gif`, `audio`, `ptt`, `document`, `sticker`).
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Video => "video",
            MediaKind::Gif => "gif",
            MediaKind::Audio => "audio",
            MediaKind::VoiceNote => "ptt",
            MediaKind::Document => "document",
            MediaKind::Sticker => "sticker",
        }
    }

    /// The kind named by [`as_str`](MediaKind::as_str).
    pub fn parse(name: &str) -> Option<MediaKind> {
        MediaKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

/// A file the host already encrypted (with `crate::media::MediaEncryptor` or the same scheme in
/// its native AES, under a key from `crate::media::new_media_key`) and holds, to be uploaded
/// as it is: the client never sees its bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct HostUpload {
    /// The host's name for the encrypted file (`Body::Host`'s `id`).
    pub body: u64,
    /// The media key it was encrypted with.
    pub media_key: Zeroizing<[u8; 32]>,
    /// The hashes and plaintext length the encryptor reported.
    pub hashes: MediaHashes,
}

impl fmt::Debug for HostUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostUpload")
            .field("body", &self.body)
            .field("file_length", &self.hashes.file_length)
            .finish_non_exhaustive()
    }
}

/// A media file to send and what the message says about it. Fields a kind does not carry
/// (a caption on a voice note) are left out of the message.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct OutgoingMedia {
    /// The file, whole (at most `MEDIA_MAX_IN_MEMORY_BYTES`); empty when `host_body` is set.
    pub data: Vec<u8>,
    /// The file encrypted and held by the host instead (at most `MEDIA_MAX_STREAMED_BYTES`).
    pub host_body: Option<HostUpload>,
    /// Its MIME type (`image/jpeg`, `audio/ogg; codecs=opus`, …).
    pub mimetype: String,
    /// A caption (image, video, GIF, document).
    pub caption: Option<String>,
    /// The file name (document).
    pub file_name: Option<String>,
    /// Width in pixels (image, video, GIF, sticker).
    pub width: Option<u32>,
    /// Height in pixels (image, video, GIF, sticker).
    pub height: Option<u32>,
    /// Duration in seconds (video, GIF, audio, voice note).
    pub seconds: Option<u32>,
    /// A small inline JPEG (image, video, GIF, document).
    pub thumbnail: Option<Vec<u8>>,
}

impl fmt::Debug for OutgoingMedia {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingMedia")
            .field("data", &format_args!("{} bytes", self.data.len()))
            .field("host_body", &self.host_body)
            .field("mimetype", &self.mimetype)
            .finish_non_exhaustive()
    }
}

/// Where an upload went and how to read it back: what a media message names.
pub(crate) struct Uploaded<'a> {
    pub(crate) url: String,
    pub(crate) direct_path: String,
    pub(crate) media_key: &'a [u8],
    pub(crate) hashes: &'a MediaHashes,
    pub(crate) timestamp_s: i64,
}

/// The message announcing an upload of `kind` described by `media`.
pub(crate) fn build(kind: MediaKind, media: &OutgoingMedia, up: Uploaded<'_>) -> wa::Message {
    let url = Some(up.url);
    let direct_path = Some(up.direct_path);
    let media_key = Some(up.media_key.to_vec());
    let file_sha256 = Some(up.hashes.file_sha256.to_vec());
    let file_enc_sha256 = Some(up.hashes.file_enc_sha256.to_vec());
    let file_length = Some(up.hashes.file_length);
    let media_key_timestamp = Some(up.timestamp_s);
    let mimetype = Some(media.mimetype.clone());
    let mut message = wa::Message::default();
    match kind {
        MediaKind::Image => {
            message.image_message = Some(Box::new(m::ImageMessage {
                url,
                mimetype,
                caption: media.caption.clone(),
                file_sha256,
                file_length,
                height: media.height,
                width: media.width,
                media_key,
                file_enc_sha256,
                direct_path,
                media_key_timestamp,
                jpeg_thumbnail: media.thumbnail.clone(),
                ..Default::default()
            }));
        }
        MediaKind::Video | MediaKind::Gif => {
            message.video_message = Some(Box::new(m::VideoMessage {
                url,
                mimetype,
                file_sha256,
                file_length,
                seconds: media.seconds,
                media_key,
                caption: media.caption.clone(),
                gif_playback: (kind == MediaKind::Gif).then_some(true),
                height: media.height,
                width: media.width,
                file_enc_sha256,
                direct_path,
                media_key_timestamp,
                jpeg_thumbnail: media.thumbnail.clone(),
                ..Default::default()
            }));
        }
        MediaKind::Audio | MediaKind::VoiceNote => {
            message.audio_message = Some(Box::new(m::AudioMessage {
                url,
                mimetype,
                file_sha256,
                file_length,
                seconds: media.seconds,
                ptt: Some(kind == MediaKind::VoiceNote),
                media_key,
                file_enc_sha256,
                direct_path,
                media_key_timestamp,
                ..Default::default()
            }));
        }
        MediaKind::Document => {
            message.document_message = Some(Box::new(m::DocumentMessage {
                url,
                mimetype,
                title: media.file_name.clone(),
                file_sha256,
                file_length,
                media_key,
                file_name: media.file_name.clone(),
                file_enc_sha256,
                direct_path,
                media_key_timestamp,
                jpeg_thumbnail: media.thumbnail.clone(),
                caption: media.caption.clone(),
                ..Default::default()
            }));
        }
        MediaKind::Sticker => {
            message.sticker_message = Some(Box::new(m::StickerMessage {
                url,
                file_sha256,
                file_enc_sha256,
                media_key,
                mimetype,
                height: media.height,
                width: media.width,
                direct_path,
                file_length,
                media_key_timestamp,
                ..Default::default()
            }));
        }
    }
    message
}

/// The media fields of a received message: what a download needs.
#[derive(Clone, PartialEq, Eq)]
pub struct MediaFields {
    /// The kind.
    pub kind: MediaKind,
    /// The path on the media hosts.
    pub direct_path: String,
    /// The 32-byte media key.
    pub media_key: Zeroizing<Vec<u8>>,
    /// SHA-256 of the plaintext.
    pub file_sha256: Vec<u8>,
    /// SHA-256 of the uploaded file.
    pub file_enc_sha256: Vec<u8>,
    /// The plaintext's length.
    pub file_length: u64,
    /// The MIME type, when given.
    pub mimetype: Option<String>,
}

impl fmt::Debug for MediaFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MediaFields")
            .field("kind", &self.kind)
            .field("file_length", &self.file_length)
            .field("mimetype", &self.mimetype)
            .finish_non_exhaustive()
    }
}

/// The media a message carries (inside its wrappers: `content::content_of`), if any and
/// complete: a direct path, a 32-byte key and both 32-byte hashes.
pub fn media_fields(message: &wa::Message) -> Option<MediaFields> {
    let message = crate::content::content_of(message);
    // The same seven fields of whichever media message it is.
    macro_rules! fields {
        ($kind:expr, $x:expr) => {
            (
                $kind,
                &$x.direct_path,
                &$x.media_key,
                &$x.file_sha256,
                &$x.file_enc_sha256,
                $x.file_length,
                &$x.mimetype,
            )
        };
    }
    let fields = if let Some(x) = &message.image_message {
        fields!(MediaKind::Image, x)
    } else if let Some(x) = &message.video_message {
        let gif = x.gif_playback == Some(true);
        fields!(
            if gif {
                MediaKind::Gif
            } else {
                MediaKind::Video
            },
            x
        )
    } else if let Some(x) = &message.audio_message {
        let ptt = x.ptt == Some(true);
        fields!(
            if ptt {
                MediaKind::VoiceNote
            } else {
                MediaKind::Audio
            },
            x
        )
    } else if let Some(x) = &message.document_message {
        fields!(MediaKind::Document, x)
    } else if let Some(x) = &message.sticker_message {
        fields!(MediaKind::Sticker, x)
    } else {
        return None;
    };
    let (kind, direct_path, key, sha, enc_sha, length, mimetype) = fields;
    let (Some(direct_path), Some(key), Some(sha), Some(enc_sha)) = (direct_path, key, sha, enc_sha)
    else {
        return None;
    };
    if !direct_path.starts_with('/') || key.len() != 32 || sha.len() != 32 || enc_sha.len() != 32 {
        return None;
    }
    Some(MediaFields {
        kind,
        direct_path: direct_path.clone(),
        media_key: Zeroizing::new(key.clone()),
        file_sha256: sha.clone(),
        file_enc_sha256: enc_sha.clone(),
        file_length: length.unwrap_or(0),
        mimetype: mimetype.clone(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_message() {
        let hashes = MediaHashes {
            file_sha256: [1; 32],
            file_enc_sha256: [2; 32],
            file_length: 1234,
        };
        let media = OutgoingMedia {
            data: Vec::new(),
            host_body: None,
            mimetype: "x/y".into(),
            caption: Some("c".into()),
            file_name: Some("f.pdf".into()),
            width: Some(3),
            height: Some(4),
            seconds: Some(5),
            thumbnail: Some(vec![9]),
        };
        for kind in MediaKind::ALL {
            assert_eq!(MediaKind::parse(kind.as_str()), Some(kind));
            let message = build(
                kind,
                &media,
                Uploaded {
                    url: "https://h/v/a".into(),
                    direct_path: "/v/a".into(),
                    media_key: &[7; 32],
                    hashes: &hashes,
                    timestamp_s: 1,
                },
            );
            let fields = media_fields(&message).unwrap();
            assert_eq!(fields.kind, kind);
            assert_eq!(fields.direct_path, "/v/a");
            assert_eq!(*fields.media_key, vec![7; 32]);
            assert_eq!(fields.file_sha256, [1; 32]);
            assert_eq!(fields.file_enc_sha256, [2; 32]);
            assert_eq!(fields.file_length, 1234);
            assert_eq!(fields.mimetype.as_deref(), Some("x/y"));
            assert!(!format!("{fields:?}").contains("07"));
            let wrapped = wa::Message {
                ephemeral_message: Some(Box::new(m::FutureProofMessage {
                    message: Some(Box::new(message.clone())),
                })),
                ..Default::default()
            };
            assert_eq!(media_fields(&wrapped).unwrap().kind, kind);
            let mut short = message;
            if let Some(image) = short.image_message.as_mut() {
                image.media_key = Some(vec![1; 31]);
                assert!(media_fields(&short).is_none());
            }
        }
        assert_eq!(MediaKind::parse("nope"), None);
        assert!(media_fields(&wa::Message::default()).is_none());
    }
}
