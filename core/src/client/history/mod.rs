//! History sync: the phone's history as events (features.md §2).
//!
//! - The phone announces each chunk in a `HistorySyncNotification` peer message; messaging
//!   recognises it (from our own account only), answers the delivery receipt and the
//!   `hist_sync` receipt as WhatsApp Web does, and hands the notification here.
//! - One chunk at a time: its inline payload, or its blob fetched with an `Output::Fetch` and
//!   decrypted with its hashes checked ([`crate::media::decrypt`]).
//! - The blob is inflated and decoded a piece at a time ([`HistoryDecoder`]) as the host
//!   drains the outputs: `Client::poll_output` asks for the next element only when the queue is
//!   empty, so at most one conversation's events wait in memory, never the whole history.
//! - A conversation becomes [`Event::HistoryConversation`], each of its messages the same
//!   [`Event::Message`] a live message produces (with `history` set), push names
//!   [`Event::PushName`], LID/PN mappings are stored (messaging's LID map), and the chunk ends
//!   with [`Event::HistorySync`] (its progress, or why it failed).
//! - [`Command::RequestHistory`](super::Command::RequestHistory) asks the phone for older
//!   messages of one chat ([`on_demand_request`]); the answer is an ON_DEMAND chunk.

mod decode;

pub use decode::{
    ChunkHeader, HistoryDecodeError, HistoryDecoder, HistoryItem, HistoryMessage, decode_all,
};

#[cfg(any(test, feature = "testing"))]
pub use decode::compress_for_testing;

use std::collections::VecDeque;

use crate::binary::{Jid, Node};
use crate::limits::{
    CLIENT_FETCH_TIMEOUT_MS, HISTORY_MAX_BLOB_BYTES, HISTORY_MAX_QUEUED_CHUNKS,
    HISTORY_SECRETS_PER_BATCH,
};
use crate::media::{self, Expected, MediaType};
use crate::noise::payload::HistoryScope;
use crate::proto::wa;
use crate::proto::wa::message::HistorySyncNotification;

use super::context::Context;
use super::endpoints::media_url;
use super::event::Event;
use super::fetch::{Body, FetchId, FetchRequest, FetchResult, Method, ResponseTarget};
use super::messaging::IncomingMessage;
use super::messaging::content::text_of;
use super::output::Outputs;
use super::owner::{Owner, Tag};

/// The tag of a history-sync blob download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HistoryBlob;

impl Tag for HistoryBlob {
    const OWNER: Owner = Owner::History;
}

/// The kind of a history chunk (`HistorySyncType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HistorySyncType {
    /// The first chunk after pairing.
    InitialBootstrap,
    /// Status updates.
    InitialStatusV3,
    /// Older history of a full sync.
    Full,
    /// More recent history, in several chunks.
    Recent,
    /// Push names only.
    PushName,
    /// Extras the interface does not wait for.
    NonBlockingData,
    /// The answer to a `Command::RequestHistory`.
    OnDemand,
    /// The phone will send no history.
    NoHistory,
    /// Message access status.
    MessageAccessStatus,
    /// A value this version does not know.
    Unknown(i32),
}

impl HistorySyncType {
    /// The type of a `HistorySyncType` value.
    pub fn from_value(value: i32) -> HistorySyncType {
        use wa::message::HistorySyncType as T;
        match T::try_from(value) {
            Ok(T::InitialBootstrap) => HistorySyncType::InitialBootstrap,
            Ok(T::InitialStatusV3) => HistorySyncType::InitialStatusV3,
            Ok(T::Full) => HistorySyncType::Full,
            Ok(T::Recent) => HistorySyncType::Recent,
            Ok(T::PushName) => HistorySyncType::PushName,
            Ok(T::NonBlockingData) => HistorySyncType::NonBlockingData,
            Ok(T::OnDemand) => HistorySyncType::OnDemand,
            Ok(T::NoHistory) => HistorySyncType::NoHistory,
            Ok(T::MessageAccessStatus) => HistorySyncType::MessageAccessStatus,
            Err(_) => HistorySyncType::Unknown(value),
        }
    }

    /// A stable name, the same in every binding (`initial_bootstrap`, `recent`, ...;
    /// `unknown` for a value this version does not know).
    pub fn as_str(self) -> &'static str {
        match self {
            HistorySyncType::InitialBootstrap => "initial_bootstrap",
            HistorySyncType::InitialStatusV3 => "initial_status_v3",
            HistorySyncType::Full => "full",
            HistorySyncType::Recent => "recent",
            HistorySyncType::PushName => "push_name",
            HistorySyncType::NonBlockingData => "non_blocking_data",
            HistorySyncType::OnDemand => "on_demand",
            HistorySyncType::NoHistory => "no_history",
            HistorySyncType::MessageAccessStatus => "message_access_status",
            HistorySyncType::Unknown(_) => "unknown",
        }
    }

    /// Whether chunks of this type carry conversations (skipped under `HistoryScope::None`).
    fn carries_conversations(self) -> bool {
        matches!(
            self,
            HistorySyncType::InitialBootstrap
                | HistorySyncType::InitialStatusV3
                | HistorySyncType::Full
                | HistorySyncType::Recent
                | HistorySyncType::OnDemand
        )
    }
}

/// A conversation of the phone's history (its messages follow as `Event::Message`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryConversation {
    /// The chat.
    pub chat: Jid,
    /// Its name (a group's subject, or the contact's name), when the phone gave one.
    pub name: Option<String>,
    /// Unread messages.
    pub unread_count: u32,
    /// When it was last active (Unix seconds; 0 when unknown).
    pub timestamp: u64,
    /// Whether it is archived.
    pub archived: bool,
    /// Whether it is pinned.
    pub pinned: bool,
    /// Until when it is muted (Unix seconds; 0 when not).
    pub mute_end_time: u64,
    /// Disappearing-messages timer in seconds (0: off).
    pub ephemeral_expiration: u32,
    /// The chat's phone-number form, when the phone gave it.
    pub pn: Option<Jid>,
    /// The chat's LID form, when the phone gave it.
    pub lid: Option<Jid>,
    /// The chunk that carried it.
    pub sync_type: HistorySyncType,
}

/// A contact's push name (from a history chunk).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushName {
    /// The contact.
    pub jid: Jid,
    /// The name they chose.
    pub name: String,
}

/// Why a history chunk was not read.
#[cfg_attr(not(feature = "exhaustive"), non_exhaustive)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HistoryFailure {
    /// The notification names neither a payload nor a blob.
    #[error("the notification carries no history")]
    Empty,
    /// The blob could not be downloaded (a transport failure or a non-2xx status).
    #[error("the history blob could not be downloaded")]
    Download,
    /// The blob failed its MAC or hash checks.
    #[error("the history blob failed its checks")]
    Decrypt,
    /// The blob did not decode (elements before the fault were reported).
    #[error("the history blob did not decode: {0}")]
    Decode(HistoryDecodeError),
    /// Too many chunks were waiting.
    #[error("too many history chunks waiting")]
    Busy,
    /// The blob had expired (404/410): the phone was asked to upload it again, and announces
    /// it in a new notification (read as a new chunk).
    #[error("the history blob had expired; the phone was asked to upload it again")]
    Reuploading,
}

impl HistoryFailure {
    /// A stable machine-readable code, the same in every binding.
    pub fn code(self) -> &'static str {
        match self {
            HistoryFailure::Empty => "empty",
            HistoryFailure::Download => "download",
            HistoryFailure::Decrypt => "decrypt",
            HistoryFailure::Decode(_) => "decode",
            HistoryFailure::Busy => "busy",
            HistoryFailure::Reuploading => "reuploading",
        }
    }
}

/// The end of one history chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistorySyncProgress {
    /// The chunk's type.
    pub sync_type: HistorySyncType,
    /// Its order among the chunks of its type.
    pub chunk_order: u32,
    /// The phone's progress (percent), when given.
    pub progress: Option<u32>,
    /// Conversations reported from it.
    pub conversations: u32,
    /// Messages reported from it.
    pub messages: u32,
    /// Why it was not read (completely), if so.
    pub failure: Option<HistoryFailure>,
}

/// A notification waiting for its turn, with the id of the message that carried it. Its media
/// key is wiped when it is dropped.
struct Notice(HistorySyncNotification, String);

impl Drop for Notice {
    fn drop(&mut self) {
        if let Some(key) = self.0.media_key.as_mut() {
            zeroize::Zeroize::zeroize(key);
        }
    }
}

impl Notice {
    fn sync_type(&self) -> HistorySyncType {
        HistorySyncType::from_value(self.0.sync_type.unwrap_or_default())
    }
}

/// The chunk being read.
enum Current {
    Downloading {
        fetch: FetchId,
        notice: Notice,
    },
    Decoding {
        decoder: Box<HistoryDecoder>,
        progress: HistorySyncProgress,
        /// Message secrets of the chunk's messages not persisted yet (at most
        /// `HISTORY_SECRETS_PER_BATCH`).
        secrets: Vec<crate::store::Change>,
    },
}

/// The history sync of one client.
#[derive(Default)]
pub(crate) struct History {
    waiting: VecDeque<Notice>,
    current: Option<Current>,
}

impl core::fmt::Debug for History {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("History")
            .field("waiting", &self.waiting.len())
            .field("busy", &self.current.is_some())
            .finish()
    }
}

impl History {
    /// A notification from our own phone (already acknowledged), carried by message
    /// `message_id`.
    pub(crate) fn notification(
        &mut self,
        message_id: String,
        note: HistorySyncNotification,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        let notice = Notice(note, message_id);
        if ctx.config().profile.history.scope == HistoryScope::None
            && notice.sync_type().carries_conversations()
        {
            return;
        }
        if self.waiting.len() >= HISTORY_MAX_QUEUED_CHUNKS {
            out.event(Event::HistorySync(failed(&notice, HistoryFailure::Busy)));
            return;
        }
        self.waiting.push_back(notice);
        self.pump(ctx, out);
    }

    /// Starts the next chunk when none is being read.
    fn pump(&mut self, ctx: &mut Context<'_>, out: &mut Outputs) {
        while self.current.is_none() {
            let Some(mut notice) = self.waiting.pop_front() else {
                return;
            };
            if let Some(payload) = notice
                .0
                .initial_hist_bootstrap_inline_payload
                .take()
                .filter(|p| !p.is_empty())
            {
                self.current = Some(decoding(&notice, payload));
            } else if let Some(path) = notice.0.direct_path.clone().filter(|p| !p.is_empty()) {
                let request = FetchRequest {
                    method: Method::Get,
                    url: media_url(&ctx.config().media_origin, &path),
                    headers: Vec::new(),
                    body: Body::Empty,
                    response: ResponseTarget::Memory,
                    max_response_bytes: HISTORY_MAX_BLOB_BYTES as u64,
                    timeout_ms: CLIENT_FETCH_TIMEOUT_MS,
                };
                let fetch = ctx.fetch(request, HistoryBlob, out);
                self.current = Some(Current::Downloading { fetch, notice });
            } else {
                out.event(Event::HistorySync(failed(&notice, HistoryFailure::Empty)));
            }
        }
    }

    /// The answer to a blob's fetch.
    pub(crate) fn handle_fetched(
        &mut self,
        id: FetchId,
        result: FetchResult,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        let Some(Current::Downloading { fetch, .. }) = &self.current else {
            return;
        };
        if *fetch != id {
            return;
        }
        let Some(Current::Downloading { notice, .. }) = self.current.take() else {
            return;
        };
        // An expired blob (404/410): the phone is asked to upload it again (a server-error
        // peer receipt sealed with the blob's media key, features.md §2.4) and announces it
        // in a new notification; this one ends as `Reuploading`.
        let expired = matches!(&result, Ok(response) if matches!(response.status, 404 | 410));
        if expired && let Some(request) = reupload_request(&notice, ctx) {
            let failure = match ctx.send(&request, out) {
                Ok(()) => HistoryFailure::Reuploading,
                Err(_) => HistoryFailure::Download,
            };
            out.event(Event::HistorySync(failed(&notice, failure)));
            self.pump(ctx, out);
            return;
        }
        let file = result
            .ok()
            .filter(|response| (200..300).contains(&response.status));
        let opened = match file {
            None => Err(HistoryFailure::Download),
            Some(file) => media::decrypt(
                notice.0.media_key.as_deref().unwrap_or_default(),
                MediaType::History,
                &file.body,
                Expected {
                    file_enc_sha256: notice.0.file_enc_sha256.as_deref(),
                    file_sha256: notice.0.file_sha256.as_deref(),
                },
            )
            .map_err(|_| HistoryFailure::Decrypt),
        };
        match opened {
            Ok(plain) => self.current = Some(decoding(&notice, plain)),
            Err(failure) => {
                out.event(Event::HistorySync(failed(&notice, failure)));
                self.pump(ctx, out);
            }
        }
    }

    /// Whether a chunk is being decoded (its next elements wait for `step`).
    pub(crate) fn is_decoding(&self) -> bool {
        matches!(self.current, Some(Current::Decoding { .. }))
    }

    /// Decodes elements of the current chunk until one produced an output (or the chunk ended).
    pub(crate) fn step(&mut self, ctx: &mut Context<'_>, out: &mut Outputs) {
        let Some(Current::Decoding {
            decoder,
            progress,
            secrets,
        }) = self.current.as_mut()
        else {
            return;
        };
        let skip_conversations = ctx.config().profile.history.scope == HistoryScope::None;
        // The days asked for bound what arrives unasked; an on-demand answer is what the host
        // asked for, older by definition.
        let cutoff = ctx
            .config()
            .profile
            .history
            .days
            .filter(|_| progress.sync_type != HistorySyncType::OnDemand)
            .map(|days| (ctx.now() / 1000).saturating_sub(u64::from(days) * 86_400));
        loop {
            let item = match decoder.next_item() {
                Ok(Some(item)) => item,
                Ok(None) => HistoryItem::End(ChunkHeader::default()),
                Err(error) => {
                    progress.failure = Some(HistoryFailure::Decode(error));
                    HistoryItem::End(ChunkHeader::default())
                }
            };
            match item {
                HistoryItem::Conversation(conversation) => {
                    if let Some(pair) = lid_pair(
                        conversation.pn_jid.as_deref(),
                        conversation.lid_jid.as_deref(),
                    ) {
                        ctx.lid_mapping(pair);
                    }
                    if skip_conversations {
                        continue;
                    }
                    if let Some(event) = conversation_event(*conversation, progress.sync_type) {
                        progress.conversations += 1;
                        out.event(Event::HistoryConversation(Box::new(event)));
                        return;
                    }
                }
                HistoryItem::Message(message) => {
                    if skip_conversations {
                        continue;
                    }
                    if let Some(incoming) = incoming_message(*message, ctx.own_jid(), cutoff) {
                        progress.messages += 1;
                        // Its message secret, for encrypted reactions and edits to it.
                        secrets.extend(super::messaging::secrets::keep_change(
                            &incoming.chat,
                            &incoming.id,
                            &incoming.sender,
                            &incoming.message,
                        ));
                        if secrets.len() >= HISTORY_SECRETS_PER_BATCH {
                            persist_secrets(secrets, ctx, out);
                        }
                        out.event(Event::Message(Box::new(incoming)));
                        return;
                    }
                }
                HistoryItem::PushName(push) => {
                    if let Some(push) = push_name(push) {
                        out.event(Event::PushName(push));
                        return;
                    }
                }
                HistoryItem::LidMapping(mapping) => {
                    if let Some(pair) =
                        lid_pair(mapping.pn_jid.as_deref(), mapping.lid_jid.as_deref())
                    {
                        ctx.lid_mapping(pair);
                    }
                }
                HistoryItem::End(header) => {
                    persist_secrets(secrets, ctx, out);
                    let mut progress = progress.clone();
                    if progress.failure.is_none() {
                        progress.chunk_order = header.chunk_order.unwrap_or(progress.chunk_order);
                        progress.progress = header.progress.or(progress.progress);
                    }
                    self.current = None;
                    out.event(Event::HistorySync(progress));
                    self.pump(ctx, out);
                    return;
                }
            }
        }
    }

    /// Forgets every chunk (the device was logged out).
    pub(crate) fn wipe(&mut self) {
        self.waiting.clear();
        self.current = None;
    }
}

/// Persists the message secrets gathered so far (nothing when there are none).
fn persist_secrets(
    secrets: &mut Vec<crate::store::Change>,
    ctx: &mut Context<'_>,
    out: &mut Outputs,
) {
    if !secrets.is_empty() {
        let changes = core::mem::take(secrets);
        ctx.persist(crate::store::Batch { changes }, out);
    }
}

fn decoding(notice: &Notice, compressed: Vec<u8>) -> Current {
    Current::Decoding {
        secrets: Vec::new(),
        decoder: Box::new(HistoryDecoder::new(compressed)),
        progress: HistorySyncProgress {
            sync_type: notice.sync_type(),
            chunk_order: notice.0.chunk_order.unwrap_or_default(),
            progress: notice.0.progress,
            conversations: 0,
            messages: 0,
            failure: None,
        },
    }
}

fn failed(notice: &Notice, failure: HistoryFailure) -> HistorySyncProgress {
    HistorySyncProgress {
        sync_type: notice.sync_type(),
        chunk_order: notice.0.chunk_order.unwrap_or_default(),
        progress: notice.0.progress,
        conversations: 0,
        messages: 0,
        failure: Some(failure),
    }
}

/// `<receipt id=<notification message id> to=<own user> type="server-error" category="peer">`
/// asking our phone to upload an expired history blob again (whatsmeow
/// `SendHistorySyncServerErrorReceipt`): the media-retry payload sealed with the blob's media
/// key, without `<rmr>`. `None` without a media key, a message id or our own JID.
fn reupload_request(notice: &Notice, ctx: &mut Context<'_>) -> Option<Node> {
    let key = notice
        .0
        .media_key
        .as_deref()
        .filter(|key| !key.is_empty())?;
    if notice.1.is_empty() {
        return None;
    }
    let own = ctx.own_jid()?.to_non_device().to_string();
    let iv: [u8; 12] = ctx.rng().bytes();
    super::media::history_reupload_request(key, iv, &notice.1, &own)
}

/// The (phone-number user, LID user) of a pair of JIDs, when both are of their kind.
fn lid_pair(pn: Option<&str>, lid: Option<&str>) -> Option<(String, String)> {
    let pn: Jid = pn?.parse().ok()?;
    let lid: Jid = lid?.parse().ok()?;
    (pn.server == crate::binary::DEFAULT_USER_SERVER
        && lid.server == crate::binary::HIDDEN_USER_SERVER
        && !pn.user.is_empty()
        && !lid.user.is_empty())
    .then_some((pn.user, lid.user))
}

/// A push name, unless it names nobody or nothing (`"-"` means none).
fn push_name(push: wa::Pushname) -> Option<PushName> {
    let jid = push.id.as_deref()?.parse::<Jid>().ok()?;
    let name = push
        .pushname
        .filter(|name| !name.is_empty() && name != "-")?;
    Some(PushName { jid, name })
}

/// The event one element of a history blob becomes, as the client reports it (`None` for what
/// it reports nothing of: a LID mapping, which it stores, a message without content or sender,
/// the end): for hosts and tools that read a blob themselves with [`HistoryDecoder`]. `own` is
/// this account's JID (the sender of its own messages); messages before `cutoff` (Unix seconds)
/// are dropped.
pub fn item_event(
    item: HistoryItem,
    sync_type: HistorySyncType,
    own: Option<&Jid>,
    cutoff: Option<u64>,
) -> Option<Event> {
    match item {
        HistoryItem::Conversation(c) => {
            conversation_event(*c, sync_type).map(|c| Event::HistoryConversation(Box::new(c)))
        }
        HistoryItem::Message(m) => {
            incoming_message(*m, own, cutoff).map(|m| Event::Message(Box::new(m)))
        }
        HistoryItem::PushName(p) => push_name(p).map(Event::PushName),
        HistoryItem::LidMapping(_) | HistoryItem::End(_) => None,
    }
}

fn conversation_event(
    conversation: wa::Conversation,
    sync_type: HistorySyncType,
) -> Option<HistoryConversation> {
    let chat: Jid = conversation.id.as_deref()?.parse().ok()?;
    Some(HistoryConversation {
        chat,
        name: conversation
            .name
            .or(conversation.display_name)
            .filter(|n| !n.is_empty()),
        unread_count: conversation.unread_count.unwrap_or_default(),
        timestamp: conversation
            .conversation_timestamp
            .or(conversation.last_msg_timestamp)
            .unwrap_or_default(),
        archived: conversation.archived.unwrap_or_default(),
        pinned: conversation.pinned.unwrap_or_default() > 0,
        mute_end_time: conversation.mute_end_time.unwrap_or_default(),
        ephemeral_expiration: conversation.ephemeral_expiration.unwrap_or_default(),
        pn: conversation.pn_jid.and_then(|j| j.parse().ok()),
        lid: conversation.lid_jid.and_then(|j| j.parse().ok()),
        sync_type,
    })
}

/// A historical message as the event a live one produces (its content unwrapped by the content
/// model, the blob's bytes as `raw`): skipped when it has no content, no usable key, or is older
/// than `cutoff` (Unix seconds).
fn incoming_message(
    message: HistoryMessage,
    own: Option<&Jid>,
    cutoff: Option<u64>,
) -> Option<IncomingMessage> {
    let content = message.message.as_ref()?;
    let key = message.info.key.as_ref()?;
    let id = key.id.clone().filter(|id| !id.is_empty())?;
    let chat: Jid = key
        .remote_jid
        .as_deref()
        .unwrap_or(&message.chat)
        .parse()
        .ok()?;
    let timestamp = message.info.message_timestamp.unwrap_or_default();
    if cutoff.is_some_and(|cutoff| timestamp < cutoff) {
        return None;
    }
    let from_me = key.from_me.unwrap_or_default();
    let sender = if from_me {
        own?.to_non_device()
    } else if chat.server == crate::binary::GROUP_SERVER {
        key.participant
            .as_deref()
            .or(message.info.participant.as_deref())?
            .parse()
            .ok()?
    } else {
        chat.clone()
    };
    let text = text_of(content).map(str::to_owned);
    let push_name = message.info.push_name.clone().filter(|n| !n.is_empty());
    let unwrapped = crate::content::unwrap(message.message?);
    Some(IncomingMessage {
        id,
        chat,
        sender,
        timestamp,
        from_me,
        push_name,
        history: true,
        message: Box::new(unwrapped.message),
        wrappers: unwrapped.wrappers,
        raw: message.message_bytes,
        text,
        poll_vote: None,
    })
}

/// The peer message asking our phone for `count` messages of `chat` older than the one given
/// (features.md §2.7; `oldest_timestamp` in Unix seconds).
pub fn on_demand_request(
    chat: &str,
    oldest_id: &str,
    oldest_from_me: bool,
    oldest_timestamp: u64,
    count: u32,
) -> wa::Message {
    use wa::message::peer_data_operation_request_message::HistorySyncOnDemandRequest;
    use wa::message::{
        PeerDataOperationRequestMessage, PeerDataOperationRequestType, ProtocolMessage,
        protocol_message,
    };
    wa::Message {
        protocol_message: Some(Box::new(ProtocolMessage {
            r#type: Some(protocol_message::Type::PeerDataOperationRequestMessage as i32),
            peer_data_operation_request_message: Some(PeerDataOperationRequestMessage {
                peer_data_operation_request_type: Some(
                    PeerDataOperationRequestType::HistorySyncOnDemand as i32,
                ),
                history_sync_on_demand_request: Some(HistorySyncOnDemandRequest {
                    chat_jid: Some(chat.to_owned()),
                    oldest_msg_id: Some(oldest_id.to_owned()),
                    oldest_msg_from_me: Some(oldest_from_me),
                    on_demand_msg_count: Some(i32::try_from(count).unwrap_or(i32::MAX)),
                    oldest_msg_timestamp_ms: Some(
                        i64::try_from(oldest_timestamp).unwrap_or(i64::MAX),
                    ),
                    account_lid: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// The history-sync notification of a decrypted message from one of our own devices.
pub(crate) fn notification_of(
    message: &wa::Message,
    sender: &Jid,
    own: Option<&Jid>,
) -> Option<HistorySyncNotification> {
    let own = own?;
    if sender.user != own.user || sender.server != own.server {
        return None;
    }
    message
        .protocol_message
        .as_ref()?
        .history_sync_notification
        .clone()
}

/// `<receipt id type="hist_sync" to="<own user>"/>`: the chunk arrived (without it the phone
/// sends it again).
pub(crate) fn hist_sync_receipt(id: &str, own: &Jid) -> Node {
    Node::new("receipt")
        .attr("id", id.to_owned())
        .attr("type", "hist_sync")
        .attr("to", crate::binary::Value::Jid(own.to_non_device()))
}

#[cfg(test)]
mod tests;
