//! Media: the `media_conn` IQ, the in-memory blob store the media hosts serve, and the phone's
//! initial history sync (an `md-msg-hist` blob announced by a `HistorySyncNotification`).

use std::collections::BTreeSet;
use std::io::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use subtle::ConstantTimeEq as _;
use walink_core::media::{self, MediaType};
use walink_core::proto::wa::message::{
    HistorySyncNotification, HistorySyncType, ProtocolMessage, protocol_message,
};
use walink_core::proto::wa::{
    Conversation, HistorySync, HistorySyncMsg, Message, MessageKey, PhoneNumberToLidMapping,
    Pushname, WebMessageInfo, web_message_info,
};

use super::*;

/// Lifetime of a `media_conn` answer, seconds (`ttl`; WhatsApp answers 300).
pub const MEDIA_CONN_TTL_S: u64 = 300;
/// Lifetime of a `media_conn` upload auth token, seconds (`auth_ttl`).
pub const MEDIA_AUTH_TTL_S: u64 = 21_600;
/// The host names a `media_conn` answer lists (the upload and download hosts).
pub const MEDIA_HOSTS: &[&str] = &["mmg.whatsapp.net"];
/// Largest blob the store accepts, in bytes (room for the 100 MiB file of the npm driver's
/// streamed-media memory measurement).
pub const MAX_BLOB_BYTES: usize = 128 << 20;
/// Most blobs the store keeps; the oldest is dropped beyond it.
pub const MAX_BLOBS: usize = 4096;
/// Most bytes the store keeps in all; the oldest blobs are dropped beyond it.
pub const MAX_STORE_BYTES: usize = 256 << 20;
/// Most auth tokens kept valid at once; the oldest is dropped beyond it.
pub const MAX_MEDIA_AUTHS: usize = 1024;
/// Messages per conversation in the INITIAL_BOOTSTRAP chunk (the newest ones).
pub const HISTORY_BOOTSTRAP_MESSAGES: usize = 2;
/// Messages per conversation in the RECENT chunk (the ones after the bootstrap's, newest first).
pub const HISTORY_RECENT_MESSAGES: usize = 100;
/// Texts the phone sent that it keeps for its history, per account (oldest dropped).
pub const PHONE_SENT_KEPT: usize = 1000;
/// Media messages whose keys the phones keep for re-upload requests (oldest dropped).
pub const PHONE_MEDIA_KEPT: usize = 1024;
/// Conversations in one history chunk (the most recently active ones).
pub const HISTORY_MAX_CONVERSATIONS: usize = 100;
/// Messages in one RECENT chunk at most: more history goes in several chunks.
pub const HISTORY_CHUNK_MESSAGES: usize = 50;

/// How much history a companion asked for, read from its `DeviceProps`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistoryAsk {
    /// Days of history (`recentSyncDaysLimit`, or `fullSyncDaysLimit` with `requireFullSync`).
    pub days: Option<u32>,
    /// Messages per chat (`initialSyncMaxMessagesPerChat`).
    pub per_chat: Option<u32>,
}

impl HistoryAsk {
    /// What `props` asks for.
    pub fn from_props(props: &walink_core::proto::wa::DeviceProps) -> HistoryAsk {
        let config = props.history_sync_config.as_ref();
        let full = props.require_full_sync.unwrap_or(false);
        HistoryAsk {
            days: config.and_then(|c| {
                if full {
                    c.full_sync_days_limit
                } else {
                    c.recent_sync_days_limit
                }
            }),
            per_chat: config.and_then(|c| c.initial_sync_max_messages_per_chat),
        }
    }
}

/// The upload paths (`/mms/<kind>/…`) the store accepts, as the clients name them
/// (tulir/whatsmeow mediaTypeToMMSType, Baileys MEDIA_PATH_MAP).
pub const MEDIA_KINDS: &[&str] = &[
    "image",
    "video",
    "audio",
    "document",
    "sticker",
    "ptt",
    "gif",
    "ptv",
    "product",
    "md-msg-hist",
    "md-app-state",
    "thumbnail-link",
    "thumbnail-image",
    "thumbnail-video",
    "thumbnail-document",
    "newsletter-image",
];

/// The blob store and the `media_conn` auth tokens.
#[derive(Debug, Default)]
pub(super) struct MediaStore {
    /// Blobs by the path part of their direct path (without the query string).
    blobs: BTreeMap<String, Vec<u8>>,
    /// Upload order, oldest first.
    order: VecDeque<String>,
    /// Auth tokens and when they expire (ms).
    auths: VecDeque<(String, Timestamp)>,
    /// Bytes held in `blobs`.
    bytes: usize,
    /// Blobs expired on demand ([`Server::expire_blob`]), by path: gone from the hosts, kept
    /// by their sender's phone for a re-upload. Counted in `bytes`.
    expired: BTreeMap<String, Vec<u8>>,
    /// Media the phones sent: message id, media key, stored path; oldest first.
    sent: VecDeque<(String, [u8; 32], String)>,
}

impl MediaStore {
    /// Drops the oldest blobs until `incoming` more bytes and one more blob fit.
    fn make_room(&mut self, incoming: usize) {
        while self.order.len() >= MAX_BLOBS
            || (!self.order.is_empty() && self.bytes.saturating_add(incoming) > MAX_STORE_BYTES)
        {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(blob) = self
                .blobs
                .remove(&oldest)
                .or_else(|| self.expired.remove(&oldest))
            {
                self.bytes = self.bytes.saturating_sub(blob.len());
            }
        }
    }
}

/// A media file a phone sends ([`Server::phone_send_media`]).
#[derive(Clone, Copy, Debug)]
pub struct PhoneMedia<'a> {
    /// `image`, `video`, `gif`, `audio`, `ptt`, `document` or `sticker`.
    pub kind: &'a str,
    /// The file.
    pub data: &'a [u8],
    /// Its MIME type.
    pub mimetype: &'a str,
    /// A caption (image, video, GIF, document).
    pub caption: Option<&'a str>,
}

/// A blob announced in a history-sync notification, as the phone sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryBlob {
    /// The notification's message id.
    pub message_id: String,
    /// The sync type (`HistorySyncType` value).
    pub sync_type: i32,
    /// Where the blob is stored.
    pub direct_path: String,
    /// The companion answered its notification with a `hist_sync` receipt.
    pub acknowledged: bool,
}

fn decode_token(token: &str) -> Option<Vec<u8>> {
    let token = token
        .replace("%2B", "+")
        .replace("%2F", "/")
        .replace("%3D", "=");
    [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(&token).ok())
}

impl Server {
    /// Answers `<iq xmlns="w:m" type="set"><media_conn/></iq>`: a fresh auth token, the TTLs
    /// and the media hosts.
    pub(super) fn media_conn(&mut self, now: Timestamp, conn: ConnId, id: &str) {
        let auth = STANDARD.encode(self.rng.bytes::<24>());
        let expires = now.saturating_add(MEDIA_AUTH_TTL_S * 1000);
        if self.media.auths.len() >= MAX_MEDIA_AUTHS {
            self.media.auths.pop_front();
        }
        self.media.auths.push_back((auth.clone(), expires));
        let hosts = MEDIA_HOSTS.iter().map(|host| {
            Node::new("host")
                .attr("hostname", *host)
                .attr("maxContentLengthBytes", MAX_BLOB_BYTES.to_string())
        });
        let node = Node::new("media_conn")
            .attr("auth", auth)
            .attr("ttl", MEDIA_CONN_TTL_S.to_string())
            .attr("auth_ttl", MEDIA_AUTH_TTL_S.to_string())
            .attr("max_buckets", "12")
            .children_from(hosts);
        self.send(conn, &iq_result(id, vec![node]));
    }

    /// Switches the phone's initial history sync on or off for companions paired from now on
    /// (`ServerConfig::history_sync`).
    pub fn set_history_sync(&mut self, on: bool) {
        self.history_sync = on;
    }

    /// Revokes every `media_conn` auth token issued so far: uploads with them are refused until
    /// the client asks for a new `media_conn` (as after WhatsApp rotates its tokens).
    pub fn revoke_media_auths(&mut self) {
        self.media.auths.clear();
    }

    /// Whether `auth` is a `media_conn` token still valid at `now` (for the HTTP side).
    pub fn media_auth_valid(&self, now: Timestamp, auth: &str) -> bool {
        self.media
            .auths
            .iter()
            .any(|(token, expires)| token == auth && now < *expires)
    }

    /// Stores an uploaded blob, as a `POST /mms/<kind>/<token>` would: `kind` is one of
    /// [`MEDIA_KINDS`], `token` the base64 (standard or URL-safe, padded or not) of the
    /// blob's SHA-256, which is checked. Returns the blob's direct path.
    pub fn upload_blob(
        &mut self,
        kind: &str,
        token: &str,
        bytes: &[u8],
    ) -> Result<String, SimError> {
        if !MEDIA_KINDS.contains(&kind) {
            return Err(SimError::UnknownMediaKind(kind.to_owned()));
        }
        if bytes.len() > MAX_BLOB_BYTES {
            return Err(SimError::BlobTooLarge(bytes.len()));
        }
        let hash = Sha256::digest(bytes);
        let matches = decode_token(token).is_some_and(|t| bool::from(t.ct_eq(hash.as_slice())));
        if !matches {
            return Err(SimError::BlobHashMismatch);
        }
        let name: String = self
            .rng
            .bytes::<16>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let oh: String = hash.iter().take(8).map(|b| format!("{b:02x}")).collect();
        let key = format!("/v/sim/{kind}/{name}.enc");
        let path = format!("{key}?ccb=11-4&oh=01_{oh}&_nc_sid=sim");
        self.media.make_room(bytes.len());
        self.media.bytes = self.media.bytes.saturating_add(bytes.len());
        self.media.blobs.insert(key.clone(), bytes.to_vec());
        self.media.order.push_back(key);
        Ok(path)
    }

    /// The blob at `direct_path` (or at a full URL `https://<host><direct_path>`), if stored.
    /// Only the path is matched: clients append their own download parameters to the direct
    /// path's query (whatsmeow `&hash=…&mms-type=…&__wa-mms=`), which the media host ignores.
    pub fn download_blob(&self, direct_path: &str) -> Option<Vec<u8>> {
        let path = match direct_path.strip_prefix("https://") {
            Some(rest) => rest.find('/').and_then(|i| rest.get(i..))?,
            None => direct_path,
        };
        let path = path.split_once('?').map_or(path, |(path, _)| path);
        self.media.blobs.get(path).cloned()
    }

    /// Expires the blob at `direct_path` (or a full URL): the hosts answer 404 for it from
    /// now on, until its sender's phone uploads it again on a re-upload request. Returns
    /// whether a blob was expired.
    pub fn expire_blob(&mut self, direct_path: &str) -> bool {
        let Some(path) = blob_path(direct_path) else {
            return false;
        };
        match self.media.blobs.remove(path) {
            Some(blob) => {
                self.media.expired.insert(path.to_owned(), blob);
                true
            }
            None => false,
        }
    }

    /// The phone of `user` sends media to `to` (as [`Server::phone_send_text`] sends a text):
    /// encrypts `data` with a fresh media key, stores it as an upload would, and sends the
    /// message of `kind` (`image`, `video`, `gif`, `audio`, `ptt`, `document`, `sticker`).
    /// The phone keeps the key to answer re-upload requests. Returns the message id.
    pub fn phone_send_media(
        &mut self,
        now: Timestamp,
        user: &str,
        to: &str,
        media: &PhoneMedia<'_>,
    ) -> Result<String, SimError> {
        let PhoneMedia {
            kind,
            data,
            mimetype,
            caption,
        } = *media;
        use walink_core::proto::wa::message as m;
        let (media_type, path_kind) = match kind {
            "image" | "sticker" => (MediaType::Image, "image"),
            "video" | "gif" => (MediaType::Video, "video"),
            "audio" | "ptt" => (MediaType::Audio, "audio"),
            "document" => (MediaType::Document, "document"),
            _ => return Err(SimError::UnknownMediaKind(kind.to_owned())),
        };
        let key: [u8; 32] = self.rng.bytes();
        let (file, hashes) =
            media::encrypt(&key, media_type, data).map_err(|e| SimError::Media(e.to_string()))?;
        let token = URL_SAFE_NO_PAD.encode(hashes.file_enc_sha256);
        let direct_path = self.upload_blob(path_kind, &token, &file)?;
        let stored = blob_path(&direct_path).unwrap_or_default().to_owned();
        let url = format!(
            "https://{}{direct_path}",
            MEDIA_HOSTS.first().copied().unwrap_or_default()
        );
        let (url, direct_path) = (Some(url), Some(direct_path.clone()));
        let (sha, enc_sha) = (
            Some(hashes.file_sha256.to_vec()),
            Some(hashes.file_enc_sha256.to_vec()),
        );
        let (length, media_key) = (Some(hashes.file_length), Some(key.to_vec()));
        let (mimetype, caption) = (Some(mimetype.to_owned()), caption.map(str::to_owned));
        let stamp = Some(i64::try_from(now / 1000).unwrap_or(0));
        let mut message = Message::default();
        match kind {
            "image" => {
                message.image_message = Some(Box::new(m::ImageMessage {
                    url,
                    mimetype,
                    caption,
                    file_sha256: sha,
                    file_length: length,
                    media_key,
                    file_enc_sha256: enc_sha,
                    direct_path,
                    media_key_timestamp: stamp,
                    ..Default::default()
                }));
            }
            "video" | "gif" => {
                message.video_message = Some(Box::new(m::VideoMessage {
                    url,
                    mimetype,
                    caption,
                    file_sha256: sha,
                    file_length: length,
                    media_key,
                    file_enc_sha256: enc_sha,
                    direct_path,
                    media_key_timestamp: stamp,
                    gif_playback: (kind == "gif").then_some(true),
                    ..Default::default()
                }));
            }
            "audio" | "ptt" => {
                message.audio_message = Some(Box::new(m::AudioMessage {
                    url,
                    mimetype,
                    file_sha256: sha,
                    file_length: length,
                    media_key,
                    file_enc_sha256: enc_sha,
                    direct_path,
                    media_key_timestamp: stamp,
                    ptt: Some(kind == "ptt"),
                    ..Default::default()
                }));
            }
            "document" => {
                message.document_message = Some(Box::new(m::DocumentMessage {
                    url,
                    mimetype,
                    caption,
                    file_sha256: sha,
                    file_length: length,
                    media_key,
                    file_enc_sha256: enc_sha,
                    direct_path,
                    media_key_timestamp: stamp,
                    file_name: Some("file".to_owned()),
                    ..Default::default()
                }));
            }
            _ => {
                message.sticker_message = Some(Box::new(m::StickerMessage {
                    url,
                    mimetype,
                    file_sha256: sha,
                    file_length: length,
                    media_key,
                    file_enc_sha256: enc_sha,
                    direct_path,
                    media_key_timestamp: stamp,
                    ..Default::default()
                }));
            }
        }
        let id = self.phone_send_message(now, user, to, message)?;
        if self.media.sent.len() >= PHONE_MEDIA_KEPT {
            self.media.sent.pop_front();
        }
        self.media.sent.push_back((id.clone(), key, stored));
        Ok(id)
    }

    /// The phone of `user` answers a companion's `<receipt type="server-error">` (a media
    /// re-upload request, sealed with the media key's retry key): for media it sent and that
    /// expired, it uploads the file again under a new path and answers with a `mediaretry`
    /// notification sealing the new direct path; for anything else, `<error code="2">`.
    pub(super) fn phone_media_retry(&mut self, user: &str, receipt: &Node) {
        let Some(id) = receipt.attr_str("id").map(str::to_owned) else {
            return;
        };
        let Some(from) = receipt.attr_jid("from") else {
            return;
        };
        // Without `<rmr>`: a history blob asked for again (history_reupload.rs).
        let Some(rmr) = receipt.child("rmr").cloned() else {
            return self.phone_history_reupload(user, receipt);
        };
        let sent = self
            .media
            .sent
            .iter()
            .find(|(sent, _, _)| *sent == id)
            .cloned();
        let reuploaded = sent.and_then(|(_, key, path)| {
            let retry_key = retry_key(&key);
            let encrypt = receipt.child("encrypt")?;
            let sealed = encrypt.child("enc_p")?.content_bytes()?;
            let iv = encrypt.child("enc_iv")?.content_bytes()?;
            let opened = seal_or_open(&retry_key, iv, id.as_bytes(), sealed, false)?;
            let request = ServerErrorReceipt::decode(opened.as_slice()).ok()?;
            if request.stanza_id.as_deref() != Some(id.as_str()) {
                return None;
            }
            let kind = path.split('/').nth(3).unwrap_or("image").to_owned();
            let new_path = self.upload_again(&path, &kind)?;
            if let Some(entry) = self.media.sent.iter_mut().find(|(sent, _, _)| *sent == id) {
                entry.2 = blob_path(&new_path).unwrap_or_default().to_owned();
            }
            let answer = MediaRetryNotification {
                stanza_id: Some(id.clone()),
                direct_path: Some(new_path),
                result: Some(1),
            };
            let iv: [u8; 12] = self.rng.bytes();
            let sealed = seal_or_open(
                &retry_key,
                &iv,
                id.as_bytes(),
                &answer.encode_to_vec(),
                true,
            )?;
            Some(Node::new("encrypt").children_from([
                Node::new("enc_p").bytes(sealed),
                Node::new("enc_iv").bytes(iv.to_vec()),
            ]))
        });
        let body = reuploaded.unwrap_or_else(|| Node::new("error").attr("code", "2"));
        let own = self
            .accounts
            .get(user)
            .map(|a| a.jid().to_string())
            .unwrap_or_default();
        let notification = Node::new("notification")
            .attr("from", own)
            .attr("type", "mediaretry")
            .attr("id", id)
            .attr("t", receipt.attr_str("t").unwrap_or("0").to_owned())
            .children_from([rmr, body]);
        self.deliver(user, from.device, notification);
    }

    /// Uploads the blob at `direct_path` (expired or not) again, as its phone does on a
    /// re-upload request; the new direct path.
    pub(super) fn upload_again(&mut self, direct_path: &str, kind: &str) -> Option<String> {
        let path = blob_path(direct_path)?.to_owned();
        let blob = self
            .media
            .expired
            .remove(&path)
            .or_else(|| self.media.blobs.get(&path).cloned())?;
        self.media.bytes = self.media.bytes.saturating_sub(blob.len());
        self.media.order.retain(|p| *p != path);
        let token = URL_SAFE_NO_PAD.encode(Sha256::digest(&blob));
        self.upload_blob(kind, &token, &blob).ok()
    }

    /// How many blobs the store holds.
    pub fn blob_count(&self) -> usize {
        self.media.blobs.len()
    }

    /// The history-sync blobs the phone of `user` announced, oldest first.
    pub fn history_blobs(&self, user: &str) -> &[HistoryBlob] {
        self.history
            .get(user)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Keeps a text the phone of `user` sent to `chat`, for its history.
    pub(super) fn record_phone_sent(
        &mut self,
        user: &str,
        from: &str,
        chat: &str,
        id: &str,
        text: &str,
        now: Timestamp,
    ) {
        let sent = self.phone_sent.entry(user.to_owned()).or_default();
        if sent.len() >= PHONE_SENT_KEPT {
            sent.pop_front();
        }
        sent.push_back(PhoneMessage {
            id: id.to_owned(),
            from: from.to_owned(),
            chat: chat.to_owned(),
            text: Some(text.to_owned()),
            error: None,
            timestamp: now / 1000,
            app_state_key_request: None,
            history_request: None,
            secret: None,
        });
    }

    /// What `user`'s phone holds for history: the messages it received and the ones it sent.
    fn phone_history_messages(
        &self,
        user: &str,
    ) -> Result<(Vec<PhoneMessage>, Vec<PhoneMessage>), SimError> {
        let inbox = self
            .accounts
            .get(user)
            .ok_or_else(|| SimError::UnknownAccount(user.to_owned()))?
            .phone
            .inbox()
            .to_vec();
        let sent = self
            .phone_sent
            .get(user)
            .map(|sent| sent.iter().cloned().collect())
            .unwrap_or_default();
        Ok((inbox, sent))
    }

    /// The phone of `user` sends the new companion `device` its initial history, sized by what
    /// the companion asked for (`ask`: messages older than its days and beyond its messages per
    /// chat are left out): an INITIAL_BOOTSTRAP chunk (each conversation's newest messages, the
    /// push names and LID mappings of the accounts it talks to) and the older messages in RECENT
    /// chunks of at most [`HISTORY_CHUNK_MESSAGES`] (`chunkOrder` 1, 2, ..., the last with
    /// `progress` 100); each compressed, encrypted, uploaded and announced. A companion that
    /// asked for none (zero days or messages) gets a PUSH_NAME chunk only.
    pub(super) fn phone_history_sync(
        &mut self,
        now: Timestamp,
        user: &str,
        device: u16,
        ask: HistoryAsk,
    ) -> Result<(), SimError> {
        let (inbox, sent) = self.phone_history_messages(user)?;
        // A companion that asked for nothing still gets the names of everyone it talks to.
        let nothing = ask.days == Some(0) || ask.per_chat == Some(0);
        let oldest = ask
            .days
            .filter(|_| !nothing)
            .map(|days| (now / 1000).saturating_sub(u64::from(days) * 86_400));
        // Conversations by chat, messages newest first (received and sent, by time; the
        // sort is stable, so equal times keep their order).
        let mut chats: BTreeMap<String, Vec<Entry<'_>>> = BTreeMap::new();
        let received = inbox.iter().map(|m| Entry {
            message: m,
            from_me: false,
        });
        let own = sent.iter().map(|m| Entry {
            message: m,
            from_me: true,
        });
        for entry in received
            .chain(own)
            .filter(|e| e.message.text.is_some())
            .filter(|e| oldest.is_none_or(|oldest| e.message.timestamp >= oldest))
        {
            chats
                .entry(entry.message.chat.clone())
                .or_default()
                .push(entry);
        }
        let per_chat = ask
            .per_chat
            .filter(|_| !nothing)
            .map_or(usize::MAX, |n| n as usize);
        let mut chats: Vec<(String, Vec<Entry<'_>>)> = chats
            .into_iter()
            .map(|(chat, mut messages)| {
                messages.sort_by_key(|e| e.message.timestamp);
                messages.reverse();
                messages.truncate(per_chat);
                (chat, messages)
            })
            .filter(|(_, messages)| !messages.is_empty())
            .collect();
        chats.sort_by_key(|(_, m)| std::cmp::Reverse(m.first().map_or(0, |e| e.message.timestamp)));
        chats.truncate(HISTORY_MAX_CONVERSATIONS);
        let (pushnames, mappings) = self.history_contacts(&chats);

        if nothing {
            let history = HistorySync {
                sync_type: Some(HistorySyncType::PushName as i32),
                chunk_order: Some(1),
                progress: Some(100),
                pushnames,
                ..Default::default()
            };
            return self.send_history_chunk(now, user, device, &history, HistorySyncType::PushName);
        }

        let bootstrap = HistorySync {
            sync_type: Some(HistorySyncType::InitialBootstrap as i32),
            conversations: chats
                .iter()
                .map(|(chat, messages)| {
                    let part: Vec<Entry<'_>> = messages
                        .iter()
                        .take(HISTORY_BOOTSTRAP_MESSAGES)
                        .copied()
                        .collect();
                    conversation(chat, &part, messages)
                })
                .collect(),
            chunk_order: Some(1),
            pushnames,
            phone_number_to_lid_mappings: mappings,
            ..Default::default()
        };
        self.send_history_chunk(
            now,
            user,
            device,
            &bootstrap,
            HistorySyncType::InitialBootstrap,
        )?;

        // The rest, conversation by conversation, cut into chunks.
        let rest: Vec<(&str, Vec<Entry<'_>>, &[Entry<'_>])> = chats
            .iter()
            .map(|(chat, messages)| {
                let part = messages
                    .iter()
                    .skip(HISTORY_BOOTSTRAP_MESSAGES)
                    .take(HISTORY_RECENT_MESSAGES)
                    .copied()
                    .collect();
                (chat.as_str(), part, messages.as_slice())
            })
            .collect();
        let mut chunks: Vec<Vec<Conversation>> = vec![Vec::new()];
        let mut in_chunk = 0;
        for (chat, part, all) in &rest {
            for slice in part.chunks(HISTORY_CHUNK_MESSAGES) {
                if in_chunk + slice.len() > HISTORY_CHUNK_MESSAGES {
                    chunks.push(Vec::new());
                    in_chunk = 0;
                }
                in_chunk += slice.len();
                if let Some(chunk) = chunks.last_mut() {
                    chunk.push(conversation(chat, slice, all));
                }
            }
        }
        let count = chunks.len();
        for (index, conversations) in chunks.into_iter().enumerate() {
            let history = HistorySync {
                sync_type: Some(HistorySyncType::Recent as i32),
                conversations,
                chunk_order: Some(u32::try_from(index + 1).unwrap_or(u32::MAX)),
                progress: Some(u32::try_from(100 * (index + 1) / count).unwrap_or(100)),
                ..Default::default()
            };
            self.send_history_chunk(now, user, device, &history, HistorySyncType::Recent)?;
        }
        Ok(())
    }

    /// The phone of `user` answers its companion `device`'s on-demand request: an ON_DEMAND
    /// chunk with the `count` newest messages of the chat older than the companion's oldest.
    pub(super) fn phone_answer_history_request(
        &mut self,
        now: Timestamp,
        user: &str,
        device: u16,
        request: &HistoryRequest,
    ) -> Result<(), SimError> {
        let (inbox, sent) = self.phone_history_messages(user)?;
        let received = inbox.iter().map(|m| Entry {
            message: m,
            from_me: false,
        });
        let own = sent.iter().map(|m| Entry {
            message: m,
            from_me: true,
        });
        let mut all: Vec<Entry<'_>> = received
            .chain(own)
            .filter(|e| e.message.text.is_some() && e.message.chat == request.chat)
            .collect();
        all.sort_by_key(|e| e.message.timestamp);
        all.reverse();
        let older: Vec<Entry<'_>> = all
            .iter()
            .filter(|e| e.message.timestamp < request.oldest_timestamp)
            .take(request.count.min(HISTORY_RECENT_MESSAGES))
            .copied()
            .collect();
        let history = HistorySync {
            sync_type: Some(HistorySyncType::OnDemand as i32),
            conversations: vec![conversation(&request.chat, &older, &all)],
            chunk_order: Some(1),
            progress: Some(100),
            ..Default::default()
        };
        self.send_history_chunk(now, user, device, &history, HistorySyncType::OnDemand)
    }

    /// The push names and LID mappings of the accounts the phone talks to in `chats`.
    fn history_contacts(
        &self,
        chats: &[(String, Vec<Entry<'_>>)],
    ) -> (Vec<Pushname>, Vec<PhoneNumberToLidMapping>) {
        let mut users = BTreeSet::new();
        for (chat, messages) in chats {
            users.insert(chat.split('@').next().unwrap_or_default().to_owned());
            for entry in messages.iter().filter(|e| !e.from_me) {
                let from = entry.message.from.split('@').next().unwrap_or_default();
                users.insert(from.split(':').next().unwrap_or_default().to_owned());
            }
        }
        let accounts: Vec<&Account> = users.iter().filter_map(|u| self.accounts.get(u)).collect();
        let pushnames = accounts
            .iter()
            .map(|a| Pushname {
                id: Some(a.jid().to_string()),
                pushname: Some(a.push_name.clone()),
            })
            .collect();
        let mappings = accounts
            .iter()
            .map(|a| PhoneNumberToLidMapping {
                pn_jid: Some(a.jid().to_string()),
                lid_jid: Some(a.lid_jid().to_string()),
            })
            .collect();
        (pushnames, mappings)
    }

    fn send_history_chunk(
        &mut self,
        now: Timestamp,
        user: &str,
        device: u16,
        history: &HistorySync,
        sync_type: HistorySyncType,
    ) -> Result<(), SimError> {
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(&history.encode_to_vec())
            .map_err(|e| SimError::Compression(e.to_string()))?;
        let compressed = zlib
            .finish()
            .map_err(|e| SimError::Compression(e.to_string()))?;
        let media_key = self.rng.bytes::<32>();
        let (file, hashes) = media::encrypt(&media_key, MediaType::History, &compressed)
            .map_err(|e| SimError::Media(e.to_string()))?;
        let token = URL_SAFE.encode(hashes.file_enc_sha256);
        let direct_path = self.upload_blob("md-msg-hist", &token, &file)?;
        if self.take_history_expiry() {
            self.expire_blob(&direct_path);
        }
        let message = Message {
            protocol_message: Some(Box::new(ProtocolMessage {
                r#type: Some(protocol_message::Type::HistorySyncNotification as i32),
                history_sync_notification: Some(HistorySyncNotification {
                    file_sha256: Some(hashes.file_sha256.to_vec()),
                    file_length: Some(hashes.file_length),
                    media_key: Some(media_key.to_vec()),
                    file_enc_sha256: Some(hashes.file_enc_sha256.to_vec()),
                    direct_path: Some(direct_path.clone()),
                    sync_type: Some(sync_type as i32),
                    chunk_order: history.chunk_order,
                    progress: history.progress,
                    ..Default::default()
                }),
                ..Default::default()
            })),
            ..Default::default()
        };
        let message_id = self.phone_send_peer(now, user, device, &message)?;
        self.history
            .entry(user.to_owned())
            .or_default()
            .push(HistoryBlob {
                message_id,
                sync_type: sync_type as i32,
                direct_path,
                acknowledged: false,
            });
        Ok(())
    }

    /// A companion of `user` sent `<receipt type="hist_sync" id>` (to its own account).
    pub(super) fn history_acknowledged(&mut self, user: &str, id: &str) {
        if let Some(blob) = self
            .history
            .get_mut(user)
            .and_then(|blobs| blobs.iter_mut().find(|b| b.message_id == id))
        {
            blob.acknowledged = true;
        }
    }

    /// The phone of `user` sends `message` to its own companion `device` as a peer message
    /// (`category="peer"`), starting a session from the device's keys if it has none. Returns
    /// the message id.
    pub(super) fn phone_send_peer(
        &mut self,
        now: Timestamp,
        user: &str,
        device: u16,
        message: &Message,
    ) -> Result<String, SimError> {
        let address = Jid::device(user.to_owned(), device, DEFAULT_USER_SERVER).to_string();
        let id = self.phone_message_id();
        let account = self
            .accounts
            .get_mut(user)
            .ok_or_else(|| SimError::UnknownAccount(user.to_owned()))?;
        if !account.phone.has_session(&address) {
            let target = account
                .devices
                .get_mut(&device)
                .ok_or_else(|| SimError::UnknownDevice(user.to_owned(), device))?;
            let bundle = bundle_of(target);
            account.phone.start_session(&address, &bundle)?;
        }
        account.phone.remember_sent(&id, &address, message);
        let (enc_type, ciphertext) = account.phone.encrypt(&address, message)?;
        let stanza = Node::new("message")
            .attr("from", account.jid())
            .attr("id", id.clone())
            .attr("type", "text")
            .attr("category", "peer")
            .attr("t", seconds(now))
            .children_from([Node::new("enc")
                .attr("v", "2")
                .attr("type", enc_type)
                .bytes(ciphertext)]);
        self.deliver(user, device, stanza);
        Ok(id)
    }
}

/// A message of the phone's history: received, or sent by the phone.
#[derive(Clone, Copy)]
struct Entry<'a> {
    message: &'a PhoneMessage,
    from_me: bool,
}

/// A conversation of `chat` holding `part` (newest first); its timestamps and unread count
/// come from `all`.
fn conversation(chat: &str, part: &[Entry<'_>], all: &[Entry<'_>]) -> Conversation {
    let group = chat.ends_with(&format!("@{GROUP_SERVER}"));
    let messages = part
        .iter()
        .map(|e| {
            let m = e.message;
            let participant = (group && !e.from_me).then(|| m.from.clone());
            HistorySyncMsg {
                message: Some(WebMessageInfo {
                    key: Some(MessageKey {
                        remote_jid: Some(chat.to_owned()),
                        from_me: Some(e.from_me),
                        id: Some(m.id.clone()),
                        participant: participant.clone(),
                    }),
                    message: Some(Message {
                        conversation: m.text.clone(),
                        ..Default::default()
                    }),
                    message_timestamp: Some(m.timestamp),
                    status: Some(web_message_info::Status::DeliveryAck as i32),
                    participant,
                    ..Default::default()
                }),
                msg_order_id: None,
            }
        })
        .collect();
    let newest = all.first().map(|e| e.message.timestamp);
    let unread = all.iter().filter(|e| !e.from_me).count();
    Conversation {
        id: Some(chat.to_owned()),
        messages,
        conversation_timestamp: newest,
        last_msg_timestamp: newest,
        unread_count: Some(u32::try_from(unread).unwrap_or(u32::MAX)),
        ..Default::default()
    }
}

/// The path part of a direct path or full URL (no query string).
fn blob_path(direct_path: &str) -> Option<&str> {
    let path = match direct_path.strip_prefix("https://") {
        Some(rest) => rest.find('/').and_then(|i| rest.get(i..))?,
        None => direct_path,
    };
    Some(path.split_once('?').map_or(path, |(path, _)| path))
}

/// `ServerErrorReceipt` (WAMmsRetry): the message id a re-upload request names.
#[derive(Clone, PartialEq, prost::Message)]
struct ServerErrorReceipt {
    #[prost(string, optional, tag = "1")]
    stanza_id: Option<String>,
}

/// `MediaRetryNotification` (WAMmsRetry): the phone's answer (result 1 is SUCCESS).
#[derive(Clone, PartialEq, prost::Message)]
struct MediaRetryNotification {
    #[prost(string, optional, tag = "1")]
    stanza_id: Option<String>,
    #[prost(string, optional, tag = "2")]
    direct_path: Option<String>,
    #[prost(int32, optional, tag = "3")]
    result: Option<i32>,
}

/// HKDF-SHA256(media key, no salt, "WhatsApp Media Retry Notification", 32).
pub(super) fn retry_key(media_key: &[u8; 32]) -> [u8; 32] {
    let mut key = [0u8; 32];
    let _ = hkdf::Hkdf::<Sha256>::new(None, media_key)
        .expand(b"WhatsApp Media Retry Notification", &mut key);
    key
}

/// AES-256-GCM with `aad`: seals (`seal`) or opens `data` under `iv` (12 bytes).
pub(super) fn seal_or_open(
    key: &[u8; 32],
    iv: &[u8],
    aad: &[u8],
    data: &[u8],
    seal: bool,
) -> Option<Vec<u8>> {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(key).ok()?;
    let nonce: [u8; 12] = iv.try_into().ok()?;
    let payload = Payload { msg: data, aad };
    if seal {
        cipher.encrypt(&nonce.into(), payload).ok()
    } else {
        cipher.decrypt(&nonce.into(), payload).ok()
    }
}
