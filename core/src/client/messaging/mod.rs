//! Messaging: sending and receiving end-to-end encrypted messages, receipts, retries, device
//! lists, prekey bundles, sender keys and the LID mapping.
//!
//! `client/mod.rs` routes to this module through the call sites below and nothing else; each
//! takes the shared [`Context`] (device, connection, IQs, loads, generator) and the client's
//! one output queue. Answers to IQs sent with a [`MessagingIq`] tag come back to
//! [`Messaging::handle_iq_result`]; records asked for with a [`MessagingLoad`] tag come back to
//! [`Messaging::handle_loaded`].
//!
//! This first version does only what the protocol requires of a client that cannot message
//! yet: every incoming message, receipt and notification stanza is acknowledged (otherwise
//! the server redelivers it and finally ends the stream), a message that cannot be decrypted
//! is reported as [`DecryptFailure`], and sending fails with a typed error.

/// Declares messaging modules only the crate uses: `pub(crate)`, and public (hidden from the
/// docs) only under the `internals-for-benches` feature that walink's benches, fuzz targets and
/// walink-sim's tests enable. Their items are written `pub` for that build, hence the allowed
/// `unreachable_pub` in the other.
macro_rules! internal_modules {
    ($($name:ident),* $(,)?) => {$(
        #[cfg(feature = "internals-for-benches")]
        #[doc(hidden)]
        pub mod $name;
        #[cfg(not(feature = "internals-for-benches"))]
        #[allow(unreachable_pub)]
        pub(crate) mod $name;
    )*};
}

pub mod address;
mod error;
mod identity;
mod peer;
mod polls;
mod receiver;
mod records;
mod retry;
pub(crate) mod secrets;
mod send;
#[cfg(test)]
mod tests;
internal_modules!(
    content,
    device_list,
    id,
    incoming,
    keystore,
    outgoing,
    prekeys,
    receipt,
    usync,
);
/// What the server delivers to one device: for the tests and walink-sim only.
#[cfg(feature = "internals-for-benches")]
#[doc(hidden)]
pub mod routing;
#[cfg(all(test, not(feature = "internals-for-benches")))]
mod routing;

pub use address::{DeviceAddress, LidMap};
pub use error::MessagingError;
#[cfg(not(feature = "internals-for-benches"))]
use keystore::Keystore;
#[cfg(feature = "internals-for-benches")]
#[doc(hidden)]
pub use keystore::{Keystore, OwnIdentity, RecordChange};
pub use polls::{PollOptionVotes, PollVote};

use std::collections::HashSet;

use crate::binary::{Jid, Node};

use crate::store::{Record, RecordKey, RestoreError};

use super::Timestamp;
use super::command::{Command, CommandError, CommandId};
use super::context::Context;
use super::event::Event;
use super::iq::IqResult;
use super::output::{LoadId, Outputs};
use super::owner::{Owner, Tag};

/// A message received and decrypted: its content as WhatsApp's `Message` (docs/content.md).
/// Its `Debug` shows the raw content's length, never the content.
#[derive(Clone, PartialEq)]
pub struct IncomingMessage {
    /// The message id.
    pub id: String,
    /// The chat: the sender for a 1:1 message, the group for a group message,
    /// `status@broadcast` for a status post; for a message this account sent from another
    /// device, the chat it went to.
    pub chat: Jid,
    /// The sending device.
    pub sender: Jid,
    /// Server timestamp, Unix seconds.
    pub timestamp: u64,
    /// Whether this account sent it (from another of its devices).
    pub from_me: bool,
    /// The sender's push name, when the server gave it (`notify`).
    pub push_name: Option<String>,
    /// Whether it came from the phone's history sync rather than live.
    pub history: bool,
    /// The content: wrappers removed (see `wrappers`), the keys of add-ons (reactions, votes,
    /// revokes, edits, pins) rewritten to this device's point of view.
    pub message: Box<crate::proto::wa::Message>,
    /// The wrappers the content was found in, outermost first (view-once, ephemeral, ...).
    pub wrappers: Vec<crate::content::Wrapper>,
    /// The message as it arrived, encoded (its device-sent wrapper removed): wrappers and the
    /// fields walink's schema lacks are kept, so a kind walink does not know is never lost.
    pub raw: Vec<u8>,
    /// The text: `conversation`, or `extendedTextMessage.text`.
    pub text: Option<String>,
    /// A poll vote, opened with its poll's secret and counted.
    pub poll_vote: Option<PollVote>,
}

impl IncomingMessage {
    /// The message's key from this device's point of view (`remoteJid` the chat, `fromMe`,
    /// `id`, and in groups and broadcasts `participant`, the sender without its device): what
    /// a reply, reaction, revoke or edit names it by.
    pub fn key(&self) -> crate::proto::wa::MessageKey {
        let group = self.chat.server == crate::binary::GROUP_SERVER
            || self.chat.server == crate::binary::BROADCAST_SERVER;
        crate::proto::wa::MessageKey {
            remote_jid: Some(self.chat.to_string()),
            from_me: Some(self.from_me),
            id: Some(self.id.clone()),
            participant: group.then(|| self.sender.to_non_device().to_string()),
        }
    }

    /// Whether it is a status post (chat `status@broadcast`; `sender` is its poster).
    pub fn is_status(&self) -> bool {
        self.chat.user == "status" && self.chat.server == crate::binary::BROADCAST_SERVER
    }

    /// Whether the content is view-once media.
    pub fn view_once(&self) -> bool {
        self.wrappers.iter().any(|w| w.is_view_once())
    }

    /// Whether it came in a chat with disappearing messages.
    pub fn ephemeral(&self) -> bool {
        self.wrappers.contains(&crate::content::Wrapper::Ephemeral)
    }
}

/// Names the message, never its content (plaintext stays out of logs).
impl core::fmt::Debug for IncomingMessage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IncomingMessage")
            .field("id", &self.id)
            .field("chat", &self.chat)
            .field("sender", &self.sender)
            .field("timestamp", &self.timestamp)
            .field("from_me", &self.from_me)
            .field("raw_len", &self.raw.len())
            .field("text_len", &self.text.as_ref().map(String::len))
            .finish_non_exhaustive()
    }
}

/// A receipt for messages this account sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The chat.
    pub chat: Jid,
    /// The device that sent the receipt.
    pub sender: Jid,
    /// `delivery`, `read`, `played`, ... (the `type` attribute; `delivery` when absent).
    pub kind: String,
    /// The message ids.
    pub ids: Vec<String>,
    /// Server timestamp, Unix seconds.
    pub timestamp: u64,
}

/// A message that could not be decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecryptFailure {
    /// The message id.
    pub id: String,
    /// The chat.
    pub chat: Jid,
    /// The sending device, when known.
    pub sender: Option<Jid>,
    /// What failed, typed.
    pub kind: DecryptFailureKind,
    /// Why, in words (never key material).
    pub reason: String,
}

/// What kind of failure a [`DecryptFailure`] is. Every kind but `NotReady` and
/// `UntrustedIdentity` is answered with a retry request (the sender encrypts the message again).
#[cfg_attr(not(feature = "exhaustive"), non_exhaustive)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecryptFailureKind {
    /// The stanza could not be read (a missing or malformed attribute or child).
    Malformed,
    /// The client could not take it now (not paired yet, or too many stanzas waiting); the
    /// server delivers it again.
    NotReady,
    /// Signal did not decrypt it (no session, bad MAC, unknown prekey, a counter too far
    /// ahead ...) or its content did not decode.
    Undecryptable,
    /// The stanza carried more `<enc>` children than `MESSAGING_MAX_ENCS_PER_STANZA`; nothing
    /// was decrypted.
    TooManyEncs {
        /// How many it carried.
        count: u32,
    },
    /// An `<enc>` repeated a message key of an earlier `<enc>` of the same stanza; nothing
    /// changed.
    ReplayedEnc,
    /// More than one `<enc>` carried a message; nothing changed.
    SeveralMessages,
    /// The sender's identity key changed and `IdentityPolicy::Strict` waits for
    /// `Command::ApproveIdentity`; the message is asked for again once it is approved.
    UntrustedIdentity,
}

impl DecryptFailureKind {
    /// The kind of a messaging error met while receiving.
    pub(crate) fn of(error: &MessagingError) -> DecryptFailureKind {
        match error {
            MessagingError::Malformed(_) => DecryptFailureKind::Malformed,
            MessagingError::TooManyEncs { count } => DecryptFailureKind::TooManyEncs {
                count: u32::try_from(*count).unwrap_or(u32::MAX),
            },
            MessagingError::ReplayedEnc => DecryptFailureKind::ReplayedEnc,
            MessagingError::SeveralMessages => DecryptFailureKind::SeveralMessages,
            MessagingError::UntrustedIdentity { .. } => DecryptFailureKind::UntrustedIdentity,
            _ => DecryptFailureKind::Undecryptable,
        }
    }
}

/// A contact device presented an identity key other than the one trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityChange {
    /// The device (the LID form when known).
    pub address: Jid,
    /// The new identity public key (32 bytes): with ours, the input of a safety number.
    pub identity: [u8; 32],
    /// The identity public key trusted before.
    pub previous: [u8; 32],
    /// `true`: trusted now (`IdentityPolicy::AcceptAndNotify`); `false`: waits for
    /// `Command::ApproveIdentity` (`IdentityPolicy::Strict`).
    pub accepted: bool,
}

/// The identity keys of one device (`Command::GetIdentity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityInfo {
    /// The device (the LID form when known).
    pub address: Jid,
    /// The identity public key trusted, when the device was ever met.
    pub identity: Option<[u8; 32]>,
    /// A new identity public key waiting for approval (`IdentityPolicy::Strict`).
    pub pending: Option<[u8; 32]>,
}

/// Why a retry request was refused.
#[cfg_attr(not(feature = "exhaustive"), non_exhaustive)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryRefusal {
    /// The device was not one the message was encrypted for (for a group: not a member
    /// device when it was sent).
    NotARecipient,
    /// The device asked more often than the protocol's retry count allows.
    TooManyRetries,
}

/// A retry request for one of our messages that was not answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedRetry {
    /// The message id.
    pub id: String,
    /// The device that asked (as the receipt named it).
    pub requester: Jid,
    /// Why it was refused.
    pub reason: RetryRefusal,
    /// Every retry request refused since the client started, repeats included.
    pub refused_total: u64,
}

/// `jid` (text) in the forms this device knows (itself first), without a device; empty when it
/// is not a JID.
fn chat_forms(keystore: Option<&Keystore>, jid: &str) -> Vec<Jid> {
    let Ok(jid) = jid.parse::<Jid>() else {
        return Vec::new();
    };
    match keystore {
        Some(keystore) => polls::forms(&jid, keystore.lids()),
        None => vec![jid.to_non_device()],
    }
}

/// Tags of the messaging module's IQs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessagingIq {
    /// The group metadata query of the group message being sent.
    GroupInfo,
    /// The usync device-list query of the message being sent.
    Devices,
    /// The prekey bundles of primary devices whose identity is not known yet (to verify their
    /// users' key-index lists with).
    Identities,
    /// The prekey-bundle fetch of the message being sent.
    Bundles,
}

/// Tags of the messaging module's loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessagingLoad {
    /// Records for the incoming stanzas parked in the inbox.
    Inbox,
    /// Records for the message being sent.
    Outbox,
    /// Records for the retry requests waiting.
    Retry,
    /// Records for the identity commands waiting.
    Identity,
    /// Poll records for the poll sends and votes waiting.
    Poll,
}

impl Tag for MessagingIq {
    const OWNER: Owner = Owner::Messaging;
}

impl Tag for MessagingLoad {
    const OWNER: Owner = Owner::Messaging;
}

/// The messaging state of one client.
#[derive(Debug, Default)]
pub struct Messaging {
    /// The records in memory, lent to the receiver, the sender, the retrier and the identity
    /// commands.
    records: records::Records,
    receiver: receiver::Receiver,
    sender: send::Sender,
    retrier: retry::Retrier,
    identities: identity::IdentityCommands,
    polls: PollCommands,
}

/// A command waiting for poll records.
#[derive(Debug)]
enum PollCommand {
    /// A message that creates a poll: sent once the poll index is in, and kept under its id.
    Send {
        command: CommandId,
        to: String,
        message: Box<crate::proto::wa::Message>,
    },
    /// A vote, made once the poll's record is in.
    Vote {
        command: CommandId,
        chat: String,
        poll_id: String,
        options: Vec<String>,
    },
}

impl PollCommand {
    fn command(&self) -> CommandId {
        match self {
            PollCommand::Send { command, .. } | PollCommand::Vote { command, .. } => *command,
        }
    }
}

/// The poll commands waiting, oldest first, and the keys of their load in flight.
#[derive(Debug, Default)]
struct PollCommands {
    waiting: std::collections::VecDeque<PollCommand>,
    loading: Option<Vec<RecordKey>>,
    /// Whether the first waiting command's records were loaded once already.
    loaded_once: bool,
}

impl Messaging {
    /// Restores from the records the host passed to `Client::new` that belong to messaging
    /// (every space other than the device and its own prekeys).
    pub(crate) fn restore(records: Vec<Record>) -> Result<Messaging, RestoreError> {
        let mut messaging = Messaging::default();
        let (outbox, records): (Vec<Record>, Vec<Record>) = records
            .into_iter()
            .partition(|record| record.space == crate::store::Space::Outbox);
        messaging.sender.restore(&outbox)?;
        messaging.records.restored = records;
        Ok(messaging)
    }

    /// The device was unlinked and its records deleted: commands still waiting fail, and the
    /// keystore of the old device is dropped (a new device builds its own).
    pub(crate) fn wipe(&mut self, out: &mut Outputs) {
        self.sender.wipe(out);
        self.fail_poll_commands(out);
        *self = Messaging::default();
    }

    /// Stores phone-number users and their LID users (learned from the history sync).
    pub(crate) fn learn_lids(
        &mut self,
        pairs: Vec<(String, String)>,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        let Some(keystore) = self.records.keystore.as_mut() else {
            return;
        };
        for (pn, lid) in pairs {
            keystore.learn_lid(&pn, &lid);
        }
        let batch = receiver::batch_of(keystore.take_changes());
        if !batch.changes.is_empty() {
            ctx.persist(batch, out);
        }
    }

    /// A `<message>` stanza: decrypted once its records are loaded, then answered with a
    /// delivery receipt (or a retry receipt and a nack) and reported as an event.
    pub(crate) fn handle_message(
        &mut self,
        _now: Timestamp,
        node: Node,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        self.receiver
            .handle_message(&mut self.records, node, ctx, out);
        self.settle(ctx, out);
    }

    /// A `<receipt>` stanza other than a retry request.
    pub(crate) fn handle_receipt(
        &mut self,
        _now: Timestamp,
        node: Node,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        ctx.ack(&node, out);
        if let Ok(parsed) = receipt::parse_receipt(&node) {
            let kind = node.attr_str("type").unwrap_or("delivery").to_owned();
            // The chat: the group or the peer for others' receipts; the `recipient` for
            // receipts of our own other devices.
            let chat = parsed
                .recipient
                .as_deref()
                .and_then(|r| r.parse::<Jid>().ok())
                .or_else(|| node.attr_jid("from").map(|from| from.to_non_device()))
                .unwrap_or_default();
            let sender = parsed
                .device
                .map(|device| device.to_jid())
                .unwrap_or_default();
            out.event(Event::Receipt(Receipt {
                chat,
                sender,
                kind,
                ids: parsed.ids,
                timestamp: parsed.timestamp,
            }));
        }
    }

    /// A `<receipt type="retry">`: a peer asks for a message again.
    pub(crate) fn handle_retry(
        &mut self,
        _now: Timestamp,
        node: Node,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        ctx.ack(&node, out);
        self.retrier.handle_retry(node, &mut self.records, ctx, out);
        self.settle(ctx, out);
    }

    /// An `<ack>` from the server for a stanza this client sent.
    pub(crate) fn handle_ack(
        &mut self,
        _now: Timestamp,
        node: Node,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        if node.attr_str("class") == Some("message") {
            let error = node.attr_str("error").and_then(|e| e.parse().ok());
            self.sender.handle_ack(
                node.attr_str("id").unwrap_or_default(),
                error,
                &mut self.records,
                out,
            );
            self.settle(ctx, out);
        }
    }

    /// `<notification type="encrypt">`: the server's prekey count is low (`<count value>`), or
    /// a contact's identity changed (`<identity/>`).
    pub(crate) fn handle_notification_encrypt(
        &mut self,
        _now: Timestamp,
        node: Node,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        ctx.ack(&node, out);
        let from_server = node
            .attr_jid("from")
            .is_some_and(|from| from == Jid::server_jid());
        let low = node
            .child("count")
            .and_then(|count| count.attr_str("value"))
            .and_then(|value| value.parse::<u32>().ok())
            .is_some_and(|value| value < crate::limits::CLIENT_PREKEY_MIN_COUNT);
        if from_server && low {
            ctx.refill_prekeys();
        }
    }

    /// Any other `<notification>` (devices, groups, ...).
    pub(crate) fn handle_notification(
        &mut self,
        _now: Timestamp,
        node: Node,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        ctx.ack(&node, out);
    }

    /// A member (or a device of one) left `group`: our sender key there is rotated now, unless
    /// a send to that group is under way (its next send rotates it anyway, docs/messaging.md,
    /// "Sender-key rotation").
    pub(crate) fn rotate_group_sender_key(
        &mut self,
        group: &str,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        if self.sender.is_sending_to(group) {
            return;
        }
        let Some(keystore) = self.records.keystore(ctx, out) else {
            return;
        };
        keystore.rotate_sender_key(group);
        let batch = receiver::batch_of(keystore.take_changes());
        if !batch.changes.is_empty() {
            ctx.persist(batch, out);
        }
    }

    /// Sends a built message (a media message after its upload) as `SendMessage` would.
    pub(crate) fn send_message(
        &mut self,
        id: CommandId,
        to: &str,
        message: Box<crate::proto::wa::Message>,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        self.sender.send(
            id,
            to,
            send::Content::Message(message),
            None,
            &mut self.records,
            ctx,
            out,
        );
    }

    /// Sends `message` to our primary phone only, as a peer message (the on-demand history
    /// request); ends like a send, with `MessageSent`.
    pub(crate) fn send_to_primary(
        &mut self,
        id: CommandId,
        message: crate::proto::wa::Message,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        self.sender
            .send_peer(id, message, &mut self.records, ctx, out);
        self.settle(ctx, out);
    }

    /// A messaging command (`SendText`, `SendMessage`, `MarkRead`). Ends in exactly one
    /// `Event::CommandDone` for `id`, now or later.
    pub(crate) fn send(
        &mut self,
        _now: Timestamp,
        id: CommandId,
        command: Command,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        match command {
            Command::SendText { to, text } => {
                self.sender.send(
                    id,
                    &to,
                    send::Content::Text(text),
                    None,
                    &mut self.records,
                    ctx,
                    out,
                );
            }
            Command::SendMessage { to, message } => match content::decode_message(&message) {
                Ok(mut message) => {
                    let secret: [u8; 32] = ctx.rng().bytes();
                    crate::content::outgoing::prepare(&mut message, secret, ctx.now());
                    let poll = crate::content::poll::creation(crate::content::content_of(&message))
                        .is_some();
                    if poll {
                        self.poll_command(
                            PollCommand::Send {
                                command: id,
                                to,
                                message: Box::new(message),
                            },
                            ctx,
                            out,
                        );
                    } else {
                        self.sender.send(
                            id,
                            &to,
                            send::Content::Message(Box::new(message)),
                            None,
                            &mut self.records,
                            ctx,
                            out,
                        );
                    }
                }
                Err(_) => out.event(Event::CommandDone {
                    id,
                    result: Err(CommandError::InvalidMessage),
                }),
            },
            Command::SendStatus {
                recipients,
                message,
            } => match content::decode_message(&message) {
                Ok(mut message) => {
                    let secret: [u8; 32] = ctx.rng().bytes();
                    crate::content::outgoing::prepare(&mut message, secret, ctx.now());
                    self.sender.send_status(
                        id,
                        &recipients,
                        Box::new(message),
                        &mut self.records,
                        ctx,
                        out,
                    );
                }
                Err(_) => out.event(Event::CommandDone {
                    id,
                    result: Err(CommandError::InvalidMessage),
                }),
            },
            Command::SendPollVote {
                chat,
                poll_id,
                options,
            } => {
                if ctx.is_connected() {
                    self.poll_command(
                        PollCommand::Vote {
                            command: id,
                            chat,
                            poll_id,
                            options,
                        },
                        ctx,
                        out,
                    );
                } else {
                    out.event(Event::CommandDone {
                        id,
                        result: Err(CommandError::NotConnected),
                    });
                }
            }
            Command::GetIdentity { address } => {
                self.identities
                    .get(id, &address, &mut self.records, ctx, out);
            }
            Command::ApproveIdentity { address, identity } => {
                self.identities
                    .approve(id, &address, &identity, &mut self.records, ctx, out);
            }
            Command::MarkRead { chat, sender, ids } => {
                let result = if !ctx.is_connected() {
                    Err(CommandError::NotConnected)
                } else {
                    match receipt::build_read_receipt(&chat, sender.as_deref(), &ids, ctx.now()) {
                        Ok(node) => ctx
                            .send(&node, out)
                            .map(|()| super::command::CommandOutput::None)
                            .map_err(|_| CommandError::NotConnected),
                        Err(_) => Err(CommandError::InvalidAddress),
                    }
                };
                out.event(Event::CommandDone { id, result });
            }
            _ => out.event(Event::CommandDone {
                id,
                result: Err(CommandError::InvalidState),
            }),
        }
        self.settle(ctx, out);
    }

    /// The answer to an IQ sent with a `MessagingIq` tag.
    pub(crate) fn handle_iq_result(
        &mut self,
        _now: Timestamp,
        tag: MessagingIq,
        result: IqResult,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        self.sender
            .handle_iq(&tag, result, &mut self.records, ctx, out);
        self.settle(ctx, out);
    }

    /// The records of a load started with a `MessagingLoad` tag.
    pub(crate) fn handle_loaded(
        &mut self,
        _now: Timestamp,
        id: LoadId,
        tag: MessagingLoad,
        records: Vec<Record>,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        match tag {
            MessagingLoad::Inbox => {
                self.receiver
                    .handle_loaded(&mut self.records, records, ctx, out)
            }
            MessagingLoad::Retry => {
                self.retrier
                    .handle_loaded(records, &mut self.records, ctx, out);
            }
            MessagingLoad::Outbox => {
                self.sender
                    .handle_loaded(id, records, &mut self.records, ctx, out);
            }
            MessagingLoad::Identity => {
                self.identities
                    .handle_loaded(records, &mut self.records, ctx, out);
            }
            MessagingLoad::Poll => {
                let requested = self.polls.loading.take().unwrap_or_default();
                self.receiver.polls.apply_loaded(&records, &requested);
                self.polls.loaded_once = true;
                self.run_poll_commands(ctx, out);
            }
        }
        self.settle(ctx, out);
    }

    /// After every step: reports the identity changes it saw, and bounds the records in memory.
    fn settle(&mut self, ctx: &Context<'_>, out: &mut Outputs) {
        if let Some(keystore) = self.records.keystore.as_mut() {
            receiver::report_identities(keystore, out);
        }
        self.trim(ctx);
    }

    /// Bounds the records kept in memory to `Config::record_cache_limit` (docs/client.md,
    /// "Storage"): the records the operations in progress use stay, and so does every record
    /// whose latest change has not been handed to the host in a `Persist`.
    fn trim(&mut self, ctx: &Context<'_>) {
        let limit = ctx.config().record_cache_limit;
        if !self.records.over_limit(limit) {
            // The common case: nothing to evict, so no pins to collect on every step.
            return;
        }
        let mut pinned: HashSet<RecordKey> = self.receiver.pins().cloned().collect();
        pinned.extend(self.sender.pins());
        pinned.extend(self.retrier.pins().cloned());
        pinned.extend(self.identities.pins().cloned());
        self.records.trim(limit, &pinned);
    }

    /// The client reached `State::Connected` (after every login).
    pub(crate) fn handle_connected(
        &mut self,
        _now: Timestamp,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        self.sender.handle_connected(ctx, out);
    }

    /// The connection ended (IQs of this module were already answered with
    /// `IqError::Disconnected`).
    pub(crate) fn handle_disconnected(&mut self, _now: Timestamp, out: &mut Outputs) {
        self.receiver.handle_disconnected();
        self.sender.handle_disconnected(out);
        self.retrier.handle_disconnected();
        self.fail_poll_commands(out);
    }

    /// Queues a command that needs poll records, and runs what can run.
    fn poll_command(&mut self, command: PollCommand, ctx: &mut Context<'_>, out: &mut Outputs) {
        // The keystore is built on first use (after a restart, no message may have needed it yet).
        let _ = self.records.keystore(ctx, out);
        if self.polls.waiting.len() >= crate::limits::CONTENT_MAX_WAITING_POLL_COMMANDS {
            out.event(Event::CommandDone {
                id: command.command(),
                result: Err(CommandError::RateLimited {
                    retry_after_ms: None,
                }),
            });
            return;
        }
        self.polls.waiting.push_back(command);
        self.run_poll_commands(ctx, out);
    }

    /// Runs the waiting poll commands in order, each once its records are in memory (asked
    /// for with one load at a time; after that load, what is still missing is absent).
    fn run_poll_commands(&mut self, ctx: &mut Context<'_>, out: &mut Outputs) {
        while self.polls.loading.is_none() {
            let Some(next) = self.polls.waiting.front() else {
                return;
            };
            let polls = &self.receiver.polls;
            let missing = match next {
                PollCommand::Send { .. } => polls.missing_index(),
                PollCommand::Vote { chat, poll_id, .. } => {
                    let chats = chat_forms(self.records.keystore.as_ref(), chat);
                    polls.missing_records(&chats, poll_id)
                }
            };
            if !missing.is_empty() && !self.polls.loaded_once {
                self.polls.loading = Some(missing.clone());
                ctx.load(missing, MessagingLoad::Poll, out);
                return;
            }
            self.polls.loaded_once = false;
            let Some(next) = self.polls.waiting.pop_front() else {
                return;
            };
            match next {
                PollCommand::Send {
                    command,
                    to,
                    message,
                } => self.send_poll(command, &to, message, ctx, out),
                PollCommand::Vote {
                    command,
                    chat,
                    poll_id,
                    options,
                } => self.send_vote(command, &chat, &poll_id, &options, ctx, out),
            }
        }
    }

    /// Sends a poll, keeping its secret and options under the id it goes out with.
    fn send_poll(
        &mut self,
        command: CommandId,
        to: &str,
        message: Box<crate::proto::wa::Message>,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        let id = send::Sender::new_id(&mut self.records, ctx, out);
        let chat = to.parse::<Jid>().ok().map(|jid| jid.to_non_device());
        let own = self.records.keystore.as_ref().map(receiver::own_of);
        if let (Some(id), Some(chat), Some(own)) = (&id, chat, own) {
            let content = crate::content::content_of(&message);
            let secret = message
                .message_context_info
                .as_ref()
                .and_then(|context| context.message_secret.as_deref());
            if let Some(created) = crate::content::poll::creation(content) {
                let changes = self
                    .receiver
                    .polls
                    .keep(&chat, id, &own.pn, created, secret);
                if !changes.is_empty() {
                    ctx.persist(crate::store::Batch { changes }, out);
                }
            }
        }
        self.sender.send(
            command,
            to,
            send::Content::Message(message),
            id,
            &mut self.records,
            ctx,
            out,
        );
    }

    /// Votes in a poll: the vote encrypted with the poll's secret, counted, then sent.
    fn send_vote(
        &mut self,
        command: CommandId,
        chat: &str,
        poll_id: &str,
        options: &[String],
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        let chats = chat_forms(self.records.keystore.as_ref(), chat);
        let Some(own) = self.records.keystore.as_ref().map(receiver::own_of) else {
            return out.event(Event::CommandDone {
                id: command,
                result: Err(CommandError::NotPaired),
            });
        };
        if chats.is_empty() {
            return out.event(Event::CommandDone {
                id: command,
                result: Err(CommandError::InvalidAddress),
            });
        }
        let iv: [u8; 12] = ctx.rng().bytes();
        match self
            .receiver
            .polls
            .vote(&chats, poll_id, options, &own, iv, ctx.now())
        {
            Ok((message, changes)) => {
                ctx.persist(crate::store::Batch { changes }, out);
                self.sender.send(
                    command,
                    chat,
                    send::Content::Message(Box::new(message)),
                    None,
                    &mut self.records,
                    ctx,
                    out,
                );
            }
            Err(error) => out.event(Event::CommandDone {
                id: command,
                result: Err(match error {
                    polls::VoteError::UnknownPoll => CommandError::UnknownPoll,
                    polls::VoteError::NoSuchOption | polls::VoteError::TooManyOptions => {
                        CommandError::InvalidMessage
                    }
                }),
            }),
        }
    }

    /// Fails every waiting poll command (the connection ended, or the device was wiped).
    fn fail_poll_commands(&mut self, out: &mut Outputs) {
        for command in self.polls.waiting.drain(..) {
            out.event(Event::CommandDone {
                id: command.command(),
                result: Err(CommandError::NotConnected),
            });
        }
        self.polls.loaded_once = false;
    }

    /// A timer of this module may be due.
    pub(crate) fn handle_timeout(
        &mut self,
        _now: Timestamp,
        _ctx: &mut Context<'_>,
        _out: &mut Outputs,
    ) {
    }

    /// When this module next needs `handle_timeout`.
    pub(crate) fn poll_timeout(&self) -> Option<Timestamp> {
        None
    }
}
