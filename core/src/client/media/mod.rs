//! Sending and downloading media: the `media_conn` cache, uploads and downloads through the
//! host's HTTP ([`Output::Fetch`](super::Output::Fetch)), and the re-upload request for media
//! the hosts no longer keep.
//!
//! - `SendMedia`: a fresh 32-byte media key, the file encrypted with `crate::media`'s
//!   streaming encryptor, `POST https://<host>/mms/<type>/<token>?auth=<auth>&token=<token>`
//!   to each `media_conn` host in turn until one answers 2xx with `url` and `direct_path`
//!   (a 401 or 403 drops the cached `media_conn` and asks again, once), then the message is
//!   sent like any other and the command ends at its ack with the message id.
//! - `DownloadMedia`: `GET https://<host><directPath>&hash=…&mms-type=…&__wa-mms=` from each
//!   host in turn (whatsmeow's form); the body's SHA-256 and MAC are checked before anything is
//!   decrypted, then the plaintext's SHA-256. A 404 or 410 (expired on the hosts) sends the
//!   phone a re-upload request once and downloads from the new direct path it answers.
//!
//! With a `Config::media_origin` other than WhatsApp's, every request goes to that origin
//! instead of the `media_conn` hosts (a test server or a proxy).

mod answer;
mod conn;
mod message;
mod retry;
pub(crate) use retry::history_request as history_reupload_request;

pub use answer::{AnswerError, UploadAnswer, parse as parse_upload_answer};
pub use conn::MediaConn;
pub use message::{HostUpload, MediaFields, MediaKind, OutgoingMedia, media_fields};

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use prost::Message as _;
use zeroize::Zeroizing;

use crate::binary::{Jid, Node};
use crate::limits::{
    MEDIA_FETCH_TIMEOUT_MS, MEDIA_MAX_IN_MEMORY_BYTES, MEDIA_MAX_JOBS, MEDIA_MAX_STREAMED_BYTES,
    MEDIA_RETRY_TIMEOUT_MS, MEDIA_UPLOAD_ANSWER_MAX_BYTES,
};
use crate::media::{self as crypto, Expected, MediaHashes};
use crate::proto::wa;

use super::Timestamp;
use super::command::{CommandError, CommandId, CommandOutput};
use super::context::Context;
use super::endpoints::{MEDIA_ORIGIN, ORIGIN, media_url};
use super::event::Event;
use super::fetch::{
    Body, DecryptInto, FetchRequest, FetchResponse, FetchResult, Method, ResponseTarget,
};
use super::iq::IqResult;
use super::output::Outputs;
use super::owner::{Owner, Tag};

/// The tag of the `media_conn` query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MediaConnIq;

impl Tag for MediaConnIq {
    const OWNER: Owner = Owner::Media;
}

/// The tag of a media upload or download: the job's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MediaFetch(pub(crate) u64);

impl Tag for MediaFetch {
    const OWNER: Owner = Owner::Media;
}

/// A downloaded file's plaintext (its bytes are not shown by `Debug`).
#[derive(Clone, PartialEq, Eq)]
pub struct MediaData(pub Vec<u8>);

impl fmt::Debug for MediaData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MediaData({} bytes)", self.0.len())
    }
}

/// The received message a download is for (`Command::DownloadMedia`'s fields).
pub(crate) struct Received<'a> {
    pub(crate) message_id: String,
    pub(crate) chat: String,
    pub(crate) sender: String,
    pub(crate) message: &'a [u8],
    /// The host's sink to decrypt into, instead of memory.
    pub(crate) sink: Option<u64>,
}

/// A media message ready to send: the upload is done.
#[derive(Debug)]
pub(crate) struct ReadyToSend {
    pub(crate) command: CommandId,
    pub(crate) to: String,
    pub(crate) message: Box<wa::Message>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Waits for a `media_conn` answer.
    AwaitingConn,
    /// A request to `hosts[host]` is out.
    Fetching,
    /// Waits for the phone's re-upload until then.
    AwaitingRetry { until: Timestamp },
}

/// The encrypted file of an upload: in the client's memory, or held by the host.
enum UploadBody {
    Memory(Vec<u8>),
    Host { id: u64, length: u64 },
}

struct Upload {
    to: String,
    kind: MediaKind,
    media: OutgoingMedia,
    media_key: Zeroizing<[u8; 32]>,
    file: UploadBody,
    hashes: MediaHashes,
}

struct Download {
    fields: MediaFields,
    sink: Option<u64>,
    message_id: String,
    chat: String,
    sender: String,
    from_me: bool,
    retried: bool,
}

enum Work {
    Upload(Box<Upload>),
    Download(Box<Download>),
}

struct Job {
    id: u64,
    command: CommandId,
    stage: Stage,
    /// The index of the host being tried.
    host: usize,
    /// Whether the `media_conn` was already refreshed for this job after a 401/403.
    refreshed: bool,
    /// A download that goes to the configured origin, no `media_conn` being available.
    fallback: bool,
    work: Work,
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.work {
            Work::Upload(_) => "upload",
            Work::Download(_) => "download",
        };
        f.debug_struct("Job")
            .field("id", &self.id)
            .field("kind", &kind)
            .field("stage", &self.stage)
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// The media machine: the cached `media_conn` and the transfers in flight.
#[derive(Debug, Default)]
pub(crate) struct Media {
    conn: Option<MediaConn>,
    conn_pending: bool,
    jobs: Vec<Job>,
    next_job: u64,
}

fn done(command: CommandId, result: Result<CommandOutput, CommandError>, out: &mut Outputs) {
    out.event(Event::CommandDone {
        id: command,
        result,
    });
}

/// `value` percent-encoded for a query string (RFC 3986 unreserved characters kept).
fn percent(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// What a download decrypted into the host's sink comes to: `MediaSaved` when the host's
/// decryptor accepted the MAC and both hashes (and the length, when the message states one) are
/// the message's; `MediaInvalid` otherwise, `DownloadFailed` when the host did not decrypt.
fn streamed_result(
    fields: &MediaFields,
    sink: u64,
    streamed: Option<Result<MediaHashes, crypto::MediaError>>,
) -> Result<CommandOutput, CommandError> {
    let hashes = match streamed {
        Some(Ok(hashes)) => hashes,
        Some(Err(_)) => return Err(CommandError::MediaInvalid),
        None => return Err(CommandError::DownloadFailed),
    };
    let length_ok = fields.file_length == 0 || fields.file_length == hashes.file_length;
    if hashes.file_enc_sha256.as_slice() != fields.file_enc_sha256.as_slice()
        || hashes.file_sha256.as_slice() != fields.file_sha256.as_slice()
        || !length_ok
    {
        return Err(CommandError::MediaInvalid);
    }
    Ok(CommandOutput::MediaSaved {
        sink,
        length: hashes.file_length,
    })
}

/// The encrypted length of a plaintext of `length` bytes: PKCS#7 to whole blocks, and the MAC.
fn encrypted_length(length: u64) -> u64 {
    (length / 16 + 1) * 16 + crypto::MAC_LEN as u64
}

impl Media {
    /// When `handle_timeout` is next needed (a re-upload wait ending).
    pub(crate) fn poll_timeout(&self) -> Option<Timestamp> {
        self.jobs
            .iter()
            .filter_map(|job| match job.stage {
                Stage::AwaitingRetry { until } => Some(until),
                _ => None,
            })
            .min()
    }

    fn room(&self, command: CommandId, out: &mut Outputs) -> bool {
        if self.jobs.len() < MEDIA_MAX_JOBS {
            return true;
        }
        done(
            command,
            Err(CommandError::RateLimited {
                retry_after_ms: None,
            }),
            out,
        );
        false
    }

    fn push(&mut self, command: CommandId, work: Work) -> u64 {
        self.next_job += 1;
        self.jobs.push(Job {
            id: self.next_job,
            command,
            stage: Stage::AwaitingConn,
            host: 0,
            refreshed: false,
            fallback: false,
            work,
        });
        self.next_job
    }

    /// `SendMedia`: encrypts `media` and starts its upload.
    pub(crate) fn send(
        &mut self,
        command: CommandId,
        to: String,
        kind: MediaKind,
        mut media: OutgoingMedia,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        if !ctx.is_connected() {
            return done(command, Err(CommandError::NotConnected), out);
        }
        let too_large = match &media.host_body {
            Some(host) => host.hashes.file_length > MEDIA_MAX_STREAMED_BYTES,
            None => media.data.len() as u64 > MEDIA_MAX_IN_MEMORY_BYTES,
        };
        if too_large {
            return done(command, Err(CommandError::MediaTooLarge), out);
        }
        let both = media.host_body.is_some() && !media.data.is_empty();
        if media.mimetype.is_empty() || both {
            return done(command, Err(CommandError::InvalidMessage), out);
        }
        if !self.room(command, out) {
            return;
        }
        let upload = match media.host_body.take() {
            Some(host) => Upload {
                to,
                kind,
                media,
                media_key: host.media_key,
                file: UploadBody::Host {
                    id: host.body,
                    length: encrypted_length(host.hashes.file_length),
                },
                hashes: host.hashes,
            },
            None => {
                let media_key = Zeroizing::new(ctx.rng().bytes::<32>());
                let Ok(mut encryptor) = crypto::MediaEncryptor::new(&*media_key, kind.media_type())
                else {
                    return done(command, Err(CommandError::InvalidMessage), out);
                };
                let data = std::mem::take(&mut media.data);
                let mut file = Vec::with_capacity(data.len() + 16 + crypto::MAC_LEN);
                for chunk in data.chunks(64 << 10) {
                    encryptor.update(chunk, &mut file);
                }
                drop(data);
                let hashes = encryptor.finish(&mut file);
                Upload {
                    to,
                    kind,
                    media,
                    media_key,
                    file: UploadBody::Memory(file),
                    hashes,
                }
            }
        };
        let id = self.push(command, Work::Upload(Box::new(upload)));
        self.advance(id, ctx, out);
    }

    /// `DownloadMedia`: the media of the received message (an encoded `wa.Message`).
    pub(crate) fn download(
        &mut self,
        command: CommandId,
        received: Received<'_>,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        let Received {
            message_id,
            chat,
            sender,
            message,
            sink,
        } = received;
        let Some(fields) = wa::Message::decode(message)
            .ok()
            .as_ref()
            .and_then(media_fields)
        else {
            return done(command, Err(CommandError::InvalidMessage), out);
        };
        let max = match sink {
            Some(_) => MEDIA_MAX_STREAMED_BYTES,
            None => MEDIA_MAX_IN_MEMORY_BYTES,
        };
        if fields.file_length > max {
            return done(command, Err(CommandError::MediaTooLarge), out);
        }
        let (Ok(chat_jid), Ok(sender_jid)) = (chat.parse::<Jid>(), sender.parse::<Jid>()) else {
            return done(command, Err(CommandError::InvalidAddress), out);
        };
        if !self.room(command, out) {
            return;
        }
        let from_me = ctx.own_jid().is_some_and(|own| own.user == sender_jid.user)
            || ctx.own_lid().is_some_and(|own| own.user == sender_jid.user);
        let download = Download {
            fields,
            sink,
            message_id,
            chat: chat_jid.to_non_device().to_string(),
            sender: sender_jid.to_non_device().to_string(),
            from_me,
            retried: false,
        };
        let id = self.push(command, Work::Download(Box::new(download)));
        self.advance(id, ctx, out);
    }

    /// The origins to try for `work`, or `None` while a `media_conn` answer is needed.
    fn origins(&self, job: &Job, ctx: &Context<'_>) -> Option<Vec<String>> {
        let custom =
            job.fallback || ctx.config().media_origin.trim_end_matches('/') != MEDIA_ORIGIN;
        let conn = self.conn.as_ref().filter(|c| c.is_valid(ctx.now()));
        match (&job.work, conn) {
            (Work::Download(_), _) if custom => Some(vec![ctx.config().media_origin.clone()]),
            (Work::Upload(_), Some(_)) if custom => Some(vec![ctx.config().media_origin.clone()]),
            (_, Some(conn)) => Some(
                conn.hosts
                    .iter()
                    .map(|host| format!("https://{host}"))
                    .collect(),
            ),
            // Without a connection a download goes to the default host (the CDN needs no
            // auth); an upload cannot go anywhere.
            (Work::Download(_), None) if !ctx.is_connected() => {
                Some(vec![ctx.config().media_origin.clone()])
            }
            (_, None) => None,
        }
    }

    /// Sends the job's next request, asks for a `media_conn`, or ends the job.
    fn advance(&mut self, id: u64, ctx: &mut Context<'_>, out: &mut Outputs) {
        let Some(index) = self.jobs.iter().position(|job| job.id == id) else {
            return;
        };
        let Some(job) = self.jobs.get(index) else {
            return;
        };
        let Some(origins) = self.origins(job, ctx) else {
            if let Some(job) = self.jobs.get_mut(index) {
                job.stage = Stage::AwaitingConn;
            }
            return self.request_conn(ctx, out);
        };
        let Some(origin) = origins.get(job.host) else {
            let job = self.jobs.swap_remove(index);
            let error = match job.work {
                Work::Upload(_) => CommandError::UploadFailed,
                Work::Download(_) => CommandError::DownloadFailed,
            };
            return done(job.command, Err(error), out);
        };
        let request = match &job.work {
            Work::Upload(upload) => {
                let token = URL_SAFE_NO_PAD.encode(upload.hashes.file_enc_sha256);
                let auth = self.conn.as_ref().map(|c| c.auth.as_str()).unwrap_or("");
                FetchRequest {
                    method: Method::Post,
                    url: format!(
                        "{}/mms/{}/{token}?auth={}&token={token}",
                        origin.trim_end_matches('/'),
                        upload.kind.mms_type(),
                        percent(auth)
                    ),
                    headers: vec![
                        ("Origin".to_owned(), ORIGIN.to_owned()),
                        (
                            "Content-Type".to_owned(),
                            "application/octet-stream".to_owned(),
                        ),
                    ],
                    body: match &upload.file {
                        UploadBody::Memory(file) => Body::Bytes(file.clone()),
                        &UploadBody::Host { id, length } => Body::Host { id, length },
                    },
                    response: ResponseTarget::Memory,
                    max_response_bytes: MEDIA_UPLOAD_ANSWER_MAX_BYTES,
                    timeout_ms: MEDIA_FETCH_TIMEOUT_MS,
                }
            }
            Work::Download(download) => {
                let fields = &download.fields;
                let path = &fields.direct_path;
                let separator = if path.contains('?') { '&' } else { '?' };
                let (response, most) = match download.sink {
                    Some(sink) => (
                        ResponseTarget::Decrypt(DecryptInto {
                            sink,
                            media_key: fields.media_key.clone(),
                            media_type: fields.kind.media_type(),
                        }),
                        MEDIA_MAX_STREAMED_BYTES,
                    ),
                    None => (ResponseTarget::Memory, MEDIA_MAX_IN_MEMORY_BYTES),
                };
                // Room for an error page too: a 404 must arrive as a status, not `TooLarge`.
                let max = if fields.file_length > 0 {
                    encrypted_length(fields.file_length).max(MEDIA_UPLOAD_ANSWER_MAX_BYTES)
                } else {
                    encrypted_length(most)
                };
                FetchRequest {
                    method: Method::Get,
                    url: format!(
                        "{}{separator}hash={}&mms-type={}&__wa-mms=",
                        media_url(origin, path),
                        URL_SAFE_NO_PAD.encode(&fields.file_enc_sha256),
                        fields.kind.mms_type()
                    ),
                    headers: vec![("Origin".to_owned(), ORIGIN.to_owned())],
                    body: Body::Empty,
                    response,
                    max_response_bytes: max,
                    timeout_ms: MEDIA_FETCH_TIMEOUT_MS,
                }
            }
        };
        if let Some(job) = self.jobs.get_mut(index) {
            job.stage = Stage::Fetching;
        }
        ctx.fetch(request, MediaFetch(id), out);
    }

    fn request_conn(&mut self, ctx: &mut Context<'_>, out: &mut Outputs) {
        if self.conn_pending {
            return;
        }
        match ctx.send_iq(conn::request(), MediaConnIq, None, out) {
            Ok(_) => self.conn_pending = true,
            Err(_) => self.conn_failed(ctx, out),
        }
    }

    /// The jobs waiting for a `media_conn` answer.
    fn awaiting_conn(&self) -> Vec<u64> {
        self.jobs
            .iter()
            .filter(|job| job.stage == Stage::AwaitingConn)
            .map(|job| job.id)
            .collect()
    }

    /// No `media_conn` can be had: uploads waiting for one fail, downloads go to the default
    /// host.
    fn conn_failed(&mut self, ctx: &mut Context<'_>, out: &mut Outputs) {
        let waiting = self.awaiting_conn();
        for id in waiting {
            let Some(index) = self.jobs.iter().position(|job| job.id == id) else {
                continue;
            };
            if matches!(self.jobs.get(index).map(|j| &j.work), Some(Work::Upload(_))) {
                let job = self.jobs.swap_remove(index);
                done(job.command, Err(CommandError::UploadFailed), out);
            } else {
                if let Some(job) = self.jobs.get_mut(index) {
                    job.fallback = true;
                }
                self.advance(id, ctx, out);
            }
        }
    }

    /// The answer to the `media_conn` IQ.
    pub(crate) fn handle_iq(&mut self, result: IqResult, ctx: &mut Context<'_>, out: &mut Outputs) {
        self.conn_pending = false;
        self.conn = result.ok().and_then(|node| conn::parse(&node, ctx.now()));
        if self.conn.is_none() {
            return self.conn_failed(ctx, out);
        }
        let waiting = self.awaiting_conn();
        for id in waiting {
            self.advance(id, ctx, out);
        }
    }

    /// The answer to a media request. A finished upload's message goes to messaging through
    /// `Context::send_message`.
    pub(crate) fn handle_fetched(
        &mut self,
        id: u64,
        result: FetchResult,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        let Some(index) = self.jobs.iter().position(|job| job.id == id) else {
            return;
        };
        let status = result.as_ref().map(|response| response.status).ok();
        let Some(job) = self.jobs.get_mut(index) else {
            return;
        };
        match status {
            Some(401 | 403) if !job.refreshed => {
                job.refreshed = true;
                job.stage = Stage::AwaitingConn;
                self.conn = None;
                self.request_conn(ctx, out);
            }
            Some(404 | 410) if matches!(&job.work, Work::Download(_)) => {
                self.expired(index, ctx, out);
            }
            Some(200..=299) => {
                let response = result.unwrap_or_else(|_| FetchResponse::new(0, Vec::new()));
                if let Some(ready) = self.finish(index, response, ctx, out) {
                    ctx.send_message(ready.command, ready.to, ready.message);
                }
            }
            _ => {
                job.host = job.host.saturating_add(1);
                self.advance(id, ctx, out);
            }
        }
    }

    /// A 2xx answer: the upload's message, or the download's plaintext.
    fn finish(
        &mut self,
        index: usize,
        response: FetchResponse,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) -> Option<ReadyToSend> {
        let body = response.body.as_slice();
        let job = self.jobs.get_mut(index)?;
        let id = job.id;
        match &job.work {
            Work::Upload(_) => {
                let Ok(answer) = answer::parse(body) else {
                    // Baileys refreshes the media_conn when the answer lacks url/direct_path;
                    // walink moves on to the next host.
                    job.host = job.host.saturating_add(1);
                    self.advance(id, ctx, out);
                    return None;
                };
                let job = self.jobs.swap_remove(index);
                let Work::Upload(upload) = job.work else {
                    return None;
                };
                let message = message::build(
                    upload.kind,
                    &upload.media,
                    message::Uploaded {
                        url: answer.url,
                        direct_path: answer.direct_path,
                        media_key: &*upload.media_key,
                        hashes: &upload.hashes,
                        timestamp_s: i64::try_from(ctx.now() / 1000).unwrap_or(i64::MAX),
                    },
                );
                Some(ReadyToSend {
                    command: job.command,
                    to: upload.to,
                    message: Box::new(message),
                })
            }
            Work::Download(download) => {
                let fields = &download.fields;
                let result = match download.sink {
                    Some(sink) => streamed_result(fields, sink, response.streamed),
                    None => {
                        let expected = Expected {
                            file_enc_sha256: Some(&fields.file_enc_sha256),
                            file_sha256: Some(&fields.file_sha256),
                        };
                        crypto::decrypt(&fields.media_key, fields.kind.media_type(), body, expected)
                            .map(|plain| CommandOutput::MediaDownloaded(MediaData(plain)))
                            .map_err(|_| CommandError::MediaInvalid)
                    }
                };
                let job = self.jobs.swap_remove(index);
                done(job.command, result, out);
                None
            }
        }
    }

    /// A download answered 404/410: ask the phone to upload again, once.
    fn expired(&mut self, index: usize, ctx: &mut Context<'_>, out: &mut Outputs) {
        let iv: [u8; 12] = ctx.rng().bytes();
        let own_user = ctx.own_jid().map(|jid| jid.to_non_device().to_string());
        let Some(job) = self.jobs.get_mut(index) else {
            return;
        };
        let Work::Download(download) = &mut job.work else {
            return;
        };
        let request = match (&own_user, download.retried) {
            (Some(own_user), false) => {
                let group = download.chat.ends_with("@g.us");
                retry::request(
                    &download.fields.media_key,
                    iv,
                    &retry::RetryTarget {
                        message_id: &download.message_id,
                        own_user,
                        chat: &download.chat,
                        from_me: download.from_me,
                        participant: group.then_some(download.sender.as_str()),
                    },
                )
            }
            _ => None,
        };
        let sent = request.is_some_and(|node| ctx.send(&node, out).is_ok());
        if sent {
            download.retried = true;
            job.stage = Stage::AwaitingRetry {
                until: ctx.now().saturating_add(MEDIA_RETRY_TIMEOUT_MS),
            };
        } else {
            let job = self.jobs.swap_remove(index);
            done(job.command, Err(CommandError::MediaExpired), out);
        }
    }

    /// A `<notification type="mediaretry">`: acknowledged; a download waiting for it goes on
    /// from the new direct path, or fails.
    pub(crate) fn handle_retry_notification(
        &mut self,
        node: &Node,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        ctx.ack(node, out);
        let Some(id) = node.attr_str("id") else {
            return;
        };
        let Some(index) = self.jobs.iter().position(|job| {
            matches!(job.stage, Stage::AwaitingRetry { .. })
                && matches!(&job.work, Work::Download(d) if d.message_id == id)
        }) else {
            return;
        };
        let Some(job) = self.jobs.get_mut(index) else {
            return;
        };
        let Work::Download(download) = &mut job.work else {
            return;
        };
        match retry::answer(node, id, &download.fields.media_key) {
            retry::RetryAnswer::Uploaded { direct_path } => {
                download.fields.direct_path = direct_path;
                job.host = 0;
                let job_id = job.id;
                self.advance(job_id, ctx, out);
            }
            retry::RetryAnswer::Failed => {
                let job = self.jobs.swap_remove(index);
                done(job.command, Err(CommandError::MediaExpired), out);
            }
        }
    }

    /// Re-upload waits that ran out fail.
    pub(crate) fn handle_timeout(&mut self, now: Timestamp, out: &mut Outputs) {
        while let Some(index) = self
            .jobs
            .iter()
            .position(|job| matches!(job.stage, Stage::AwaitingRetry { until } if until <= now))
        {
            let job = self.jobs.swap_remove(index);
            done(job.command, Err(CommandError::MediaExpired), out);
        }
    }

    /// The connection ended: the pending `media_conn` answer will not come (the IQ table
    /// reports it); uploads and downloads in flight go on, their requests are the host's.
    pub(crate) fn handle_disconnected(&mut self) {
        self.conn_pending = false;
    }

    /// The device is gone: every transfer fails.
    pub(crate) fn wipe(&mut self, out: &mut Outputs) {
        self.conn = None;
        self.conn_pending = false;
        for job in self.jobs.drain(..) {
            done(job.command, Err(CommandError::NotPaired), out);
        }
    }
}

#[cfg(test)]
mod tests;
