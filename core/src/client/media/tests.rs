//! The media machine without a connection: downloads from the configured origin, checks,
//! statuses, and uploads refused while disconnected.
#![allow(clippy::unwrap_used, clippy::panic)]

use super::*;
use crate::client::Output;
use crate::client::context::testing::Parts;
use crate::client::fetch::{FetchError, FetchId, FetchResponse};

const KEY: [u8; 32] = [9; 32];

fn image_message(plain: &[u8]) -> (wa::Message, Vec<u8>) {
    let (file, hashes) = crypto::encrypt(&KEY, MediaType::Image, plain).unwrap();
    let message = message::build(
        MediaKind::Image,
        &OutgoingMedia {
            mimetype: "image/jpeg".into(),
            ..Default::default()
        },
        message::Uploaded {
            url: "https://mmg.whatsapp.net/v/t62/a.enc?ccb=1".into(),
            direct_path: "/v/t62/a.enc?ccb=1".into(),
            media_key: &KEY,
            hashes: &hashes,
            timestamp_s: 1,
        },
    );
    (message, file)
}

use crate::media::MediaType;

fn fetches(out: &mut Outputs) -> Vec<(FetchId, FetchRequest)> {
    let mut found = Vec::new();
    while let Some(output) = out.pop() {
        if let Output::Fetch { id, request } = output {
            found.push((id, request));
        }
    }
    found
}

fn result(out: &mut Outputs) -> Option<Result<CommandOutput, CommandError>> {
    while let Some(output) = out.pop() {
        if let Output::Event(Event::CommandDone { result, .. }) = output {
            return Some(result);
        }
    }
    None
}

fn start_download(media: &mut Media, parts: &mut Parts, out: &mut Outputs, message: &wa::Message) {
    download_into(media, parts, out, message, None);
}

fn download_into(
    media: &mut Media,
    parts: &mut Parts,
    out: &mut Outputs,
    message: &wa::Message,
    sink: Option<u64>,
) {
    let bytes = message.encode_to_vec();
    let received = Received {
        message_id: "3EB0AA".into(),
        chat: "1666@s.whatsapp.net".into(),
        sender: "1666:3@s.whatsapp.net".into(),
        message: &bytes,
        sink,
    };
    media.download(CommandId(1), received, &mut parts.ctx(1_000), out);
}

#[test]
fn a_download_checks_the_file_and_answers_the_plaintext() {
    let plain: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let (message, file) = image_message(&plain);
    let mut parts = Parts::new();
    let mut media = Media::default();
    let mut out = Outputs::default();
    start_download(&mut media, &mut parts, &mut out, &message);
    let requests = fetches(&mut out);
    let [(id, request)] = requests.as_slice() else {
        panic!("{requests:?}");
    };
    assert_eq!(request.method, Method::Get);
    let token = URL_SAFE_NO_PAD.encode(Sha256Digest::digest(&file));
    assert_eq!(
        request.url,
        format!("https://mmg.whatsapp.net/v/t62/a.enc?ccb=1&hash={token}&mms-type=image&__wa-mms=")
    );
    assert_eq!(request.max_response_bytes, MEDIA_UPLOAD_ANSWER_MAX_BYTES);
    let MediaFetch(job) = parts.fetches.take(*id).unwrap().take().unwrap();
    let ok = Ok(FetchResponse::new(200, file.clone()));
    media.handle_fetched(job, ok, &mut parts.ctx(2_000), &mut out);
    assert!(parts.requests.messages.is_empty());
    assert_eq!(
        result(&mut out),
        Some(Ok(CommandOutput::MediaDownloaded(MediaData(plain))))
    );
    assert!(media.jobs.is_empty());
}

use sha2::Digest as _;
use sha2::Sha256 as Sha256Digest;

#[test]
fn tampered_failed_and_expired_downloads_fail_typed() {
    let (message, file) = image_message(b"photo");
    let mut tampered = file.clone();
    tampered[3] ^= 1;
    let cases: [(FetchResult, CommandError); 4] = [
        (
            Ok(FetchResponse::new(200, tampered)),
            CommandError::MediaInvalid,
        ),
        (Err(FetchError::Network), CommandError::DownloadFailed),
        (
            Ok(FetchResponse::new(500, Vec::new())),
            CommandError::DownloadFailed,
        ),
        // Not connected: no re-upload request can be sent.
        (
            Ok(FetchResponse::new(410, Vec::new())),
            CommandError::MediaExpired,
        ),
    ];
    for (answer, error) in cases {
        let mut parts = Parts::new();
        let mut media = Media::default();
        let mut out = Outputs::default();
        start_download(&mut media, &mut parts, &mut out, &message);
        let (id, _) = fetches(&mut out).pop().unwrap();
        let MediaFetch(job) = parts.fetches.take(id).unwrap().take().unwrap();
        media.handle_fetched(job, answer, &mut parts.ctx(2_000), &mut out);
        assert_eq!(result(&mut out), Some(Err(error)));
        assert!(media.jobs.is_empty());
    }
}

#[test]
fn commands_that_cannot_run_fail_before_any_request() {
    let (message, _) = image_message(b"x");
    let mut parts = Parts::new();
    let mut media = Media::default();
    let mut out = Outputs::default();
    media.send(
        CommandId(1),
        "1666@s.whatsapp.net".into(),
        MediaKind::Image,
        OutgoingMedia {
            data: b"x".to_vec(),
            mimetype: "image/jpeg".into(),
            ..Default::default()
        },
        &mut parts.ctx(0),
        &mut out,
    );
    assert_eq!(result(&mut out), Some(Err(CommandError::NotConnected)));
    let received = Received {
        message_id: "3EB0".into(),
        chat: "1666@s.whatsapp.net".into(),
        sender: "1666@s.whatsapp.net".into(),
        message: b"\x0a\x03abc",
        sink: None,
    };
    media.download(CommandId(2), received, &mut parts.ctx(0), &mut out);
    assert_eq!(result(&mut out), Some(Err(CommandError::InvalidMessage)));
    let mut large = message.clone();
    if let Some(image) = large.image_message.as_mut() {
        image.file_length = Some(MEDIA_MAX_IN_MEMORY_BYTES + 1);
    }
    start_download(&mut media, &mut parts, &mut out, &large);
    assert_eq!(result(&mut out), Some(Err(CommandError::MediaTooLarge)));
    for _ in 0..MEDIA_MAX_JOBS {
        start_download(&mut media, &mut parts, &mut out, &message);
    }
    assert_eq!(fetches(&mut out).len(), MEDIA_MAX_JOBS);
    start_download(&mut media, &mut parts, &mut out, &message);
    assert!(matches!(
        result(&mut out),
        Some(Err(CommandError::RateLimited { .. }))
    ));
    media.wipe(&mut out);
    assert_eq!(result(&mut out), Some(Err(CommandError::NotPaired)));
    assert!(media.jobs.is_empty());
}

#[test]
fn a_custom_origin_replaces_the_hosts_and_query_values_are_escaped() {
    let (message, _) = image_message(b"x");
    let mut parts = Parts::new();
    parts.config.media_origin = "http://127.0.0.1:9".into();
    let mut media = Media::default();
    let mut out = Outputs::default();
    start_download(&mut media, &mut parts, &mut out, &message);
    let (_, request) = fetches(&mut out).pop().unwrap();
    assert!(
        request
            .url
            .starts_with("http://127.0.0.1:9/v/t62/a.enc?ccb=1&hash=")
    );
    assert_eq!(percent("a+b/c=="), "a%2Bb%2Fc%3D%3D");
    assert_eq!(encrypted_length(0), 26);
    assert_eq!(encrypted_length(16), 42);
}

#[test]
fn a_download_into_a_host_sink_is_saved_only_with_the_messages_hashes() {
    let plain: Vec<u8> = (0..70_000u32).map(|i| (i % 253) as u8).collect();
    let (message, file) = image_message(&plain);
    let mut decryptor = crypto::MediaDecryptor::new(&KEY, MediaType::Image).unwrap();
    let mut sink = Vec::new();
    for piece in file.chunks(4096) {
        decryptor.update(piece, &mut sink).unwrap();
    }
    let hashes = decryptor.finish(&mut sink).unwrap();
    assert_eq!(sink, plain);
    let mut other = hashes.clone();
    other.file_sha256[0] ^= 1;
    let mut short = hashes.clone();
    short.file_length -= 1;
    let cases: [(Option<Result<MediaHashes, crypto::MediaError>>, _); 5] = [
        (
            Some(Ok(hashes.clone())),
            Ok(CommandOutput::MediaSaved {
                sink: 7,
                length: plain.len() as u64,
            }),
        ),
        (Some(Ok(other)), Err(CommandError::MediaInvalid)),
        (Some(Ok(short)), Err(CommandError::MediaInvalid)),
        (
            Some(Err(crypto::MediaError::MacMismatch)),
            Err(CommandError::MediaInvalid),
        ),
        (None, Err(CommandError::DownloadFailed)),
    ];
    for (streamed, want) in cases {
        let mut parts = Parts::new();
        let mut media = Media::default();
        let mut out = Outputs::default();
        download_into(&mut media, &mut parts, &mut out, &message, Some(7));
        let (id, request) = fetches(&mut out).pop().unwrap();
        let ResponseTarget::Decrypt(into) = &request.response else {
            panic!("{request:?}");
        };
        assert_eq!((into.sink, into.media_type), (7, MediaType::Image));
        assert_eq!(into.media_key.as_slice(), KEY.as_slice());
        assert_eq!(request.max_response_bytes, file.len() as u64);
        let MediaFetch(job) = parts.fetches.take(id).unwrap().take().unwrap();
        let response = FetchResponse {
            status: 200,
            body: Vec::new(),
            streamed,
        };
        media.handle_fetched(job, Ok(response), &mut parts.ctx(2), &mut out);
        assert_eq!(result(&mut out), Some(want));
        assert!(media.jobs.is_empty());
    }

    // A sink lifts the in-memory bound, not the streamed one.
    let mut parts = Parts::new();
    let mut media = Media::default();
    let mut out = Outputs::default();
    let mut large = message.clone();
    if let Some(image) = large.image_message.as_mut() {
        image.file_length = Some(MEDIA_MAX_IN_MEMORY_BYTES + 1);
    }
    download_into(&mut media, &mut parts, &mut out, &large, Some(1));
    assert_eq!(fetches(&mut out).len(), 1);
    if let Some(image) = large.image_message.as_mut() {
        image.file_length = Some(MEDIA_MAX_STREAMED_BYTES + 1);
    }
    download_into(&mut media, &mut parts, &mut out, &large, Some(2));
    assert_eq!(result(&mut out), Some(Err(CommandError::MediaTooLarge)));
}
