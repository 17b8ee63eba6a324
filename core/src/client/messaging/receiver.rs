//! The receiving half of the `Messaging` sub-machine: incoming messages are parked until the
//! records they need are loaded (`Output::Load`), then decrypted in arrival order; every record
//! change is persisted before the receipt that depends on it is transmitted.

use std::collections::{HashMap, VecDeque};

use crate::binary::{Jid, Node};
use crate::limits::{CONTENT_STATUS_EXPIRY_SECONDS, MESSAGING_MAX_PARKED, MESSAGING_MAX_RETRIES};
use crate::signal::{
    DecryptError, KeyPair, PreKeyId, PreKeySignalMessage, PreKeySource, SignedPreKeyId,
};
use crate::store::{Batch, Change, Record, RecordKey, Space};

use super::super::context::Context;
use super::super::event::Event;
use super::super::output::Outputs;
use super::content::text_of;
use super::incoming::{
    EncKind, IncomingStanza, commit_message, learn_addressing, open_message, parse_message,
};
use super::keystore::{Keystore, RecordChange};
use super::polls::{Own, Polls, Received, forms};
use super::prekeys::build_keys_node;
use super::receipt::{build_ack, build_delivery_receipt, build_retry_receipt, retry_needs_keys};
use super::records::{Records, record_space};
use super::{
    DecryptFailure, DecryptFailureKind, DeviceAddress, IdentityChange, IncomingMessage,
    MessagingError, MessagingLoad,
};
use crate::content::{Perspective, normalize_keys};

/// Converts keystore changes into a store batch.
pub(crate) fn batch_of(changes: Vec<RecordChange>) -> Batch {
    Batch {
        changes: changes
            .into_iter()
            .map(|change| match change.value {
                Some(value) => Change::Put(Record {
                    space: change.space,
                    key: change.key,
                    value,
                }),
                None => Change::Delete {
                    space: change.space,
                    key: change.key,
                },
            })
            .collect(),
    }
}

/// What the receive path waits for (the records it works on are lent by `Messaging`).
#[derive(Debug, Default)]
pub(crate) struct Receiver {
    /// Stanzas waiting, in arrival order.
    inbox: VecDeque<Node>,
    /// The keys of the load in flight.
    in_flight: Option<Vec<RecordKey>>,
    /// Every record key the first stanza of the inbox uses, while it waits for a load: those
    /// records are not evicted meanwhile (see [`Records::trim`]).
    pinned: Vec<RecordKey>,
    /// Retry requests sent per message id (a list: it is empty unless decryption fails, and a
    /// `HashMap` of its own type would cost wasm size; docs/decisions.md, "wasm size").
    retries: Vec<(String, u32)>,
    /// The polls this device sent or received (their records, loaded on demand).
    pub(crate) polls: Polls,
    /// Message secrets (their records, loaded on demand) for encrypted reactions and edits.
    pub(crate) secrets: super::secrets::Secrets,
    /// The stanza (by id) that waited once for poll records: it does not wait again.
    poll_wait: Option<String>,
}

struct DevicePreKeys<'a> {
    signed: (u32, &'a KeyPair),
    one_time: &'a HashMap<u32, KeyPair>,
}

impl PreKeySource for DevicePreKeys<'_> {
    fn signed_pre_key(&self, id: SignedPreKeyId) -> Option<KeyPair> {
        (id.0 == self.signed.0).then(|| self.signed.1.clone())
    }
    fn pre_key(&self, id: PreKeyId) -> Option<KeyPair> {
        self.one_time.get(&id.0).cloned()
    }
}

impl Receiver {
    /// A `<message>` stanza arrived.
    pub(crate) fn handle_message(
        &mut self,
        records: &mut Records,
        node: Node,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        if records.keystore(ctx, out).is_none() || self.inbox.len() >= MESSAGING_MAX_PARKED {
            // Not paired yet, or too much waiting: acknowledged and reported, never lost
            // silently (the server keeps it for a later connection only without the ack, so
            // this is a nack).
            let own = ctx.own_jid().cloned();
            let _ = ctx.send(&build_ack(&node, own.as_ref(), Some(500)), out);
            out.event(Event::DecryptFailed(failure_of(
                &node,
                DecryptFailureKind::NotReady,
                "not ready to decrypt",
            )));
            return;
        }
        self.inbox.push_back(node);
        self.pump(records, ctx, out);
    }

    /// Records of the load in flight arrived.
    pub(crate) fn handle_loaded(
        &mut self,
        records: &mut Records,
        loaded: Vec<Record>,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        let keys = self.in_flight.take().unwrap_or_default();
        if records.keystore(ctx, out).is_none() {
            return;
        }
        self.apply_records(records, loaded, keys, out);
        self.pump(records, ctx, out);
    }

    /// Loads the answer to a load of `requested`: poll records into the polls, the others
    /// into `records` ([`Records::apply`]).
    pub(crate) fn apply_records(
        &mut self,
        records: &mut Records,
        loaded: Vec<Record>,
        requested: Vec<RecordKey>,
        out: &mut Outputs,
    ) {
        let sorted = records.fresh(loaded);
        self.polls.apply_loaded(&sorted, &requested);
        self.secrets.apply_loaded(&sorted, &requested);
        records.apply_fresh(sorted, requested, out);
    }

    /// The record keys the receive path must keep in memory now: those of the load in flight
    /// and every record the stanza waiting for it uses.
    pub(crate) fn pins(&self) -> impl Iterator<Item = &RecordKey> {
        let waiting = self.in_flight.as_deref().unwrap_or_default();
        let stanza = if self.in_flight.is_some() {
            self.pinned.as_slice()
        } else {
            &[]
        };
        waiting.iter().chain(stanza)
    }

    /// The connection ended: a load answered later still applies; nothing else to do.
    pub(crate) fn handle_disconnected(&mut self) {
        // Stanzas not yet processed were not acknowledged: the server delivers them again.
        self.inbox.clear();
    }

    /// The record keys `stanza` uses, and those of them not loaded yet.
    fn needed(records: &Records, stanza: &IncomingStanza) -> (Vec<RecordKey>, Vec<RecordKey>) {
        let Some(keystore) = records.keystore.as_ref() else {
            return (Vec::new(), Vec::new());
        };
        let mut keys = Vec::new();
        if !stanza.sender.lid {
            keys.push(RecordKey::new(
                Space::LidMapping,
                stanza.sender.user.clone(),
            ));
        }
        let canonical = keystore.lids().canonical(&stanza.sender);
        // Records may still be stored under the phone-number form (kept there while not in
        // memory when the mapping was learned): loaded too, and moved as they are restored.
        let forms: Vec<DeviceAddress> = if canonical == stanza.sender {
            vec![canonical.clone()]
        } else {
            vec![canonical.clone(), stanza.sender.clone()]
        };
        for form in &forms {
            keys.push(RecordKey::new(Space::ReceivedIds, form.record_key()));
        }
        for enc in &stanza.encs {
            match enc.kind {
                EncKind::PreKey | EncKind::Whisper => {
                    for form in &forms {
                        keys.push(RecordKey::new(Space::Session, form.record_key()));
                        keys.push(RecordKey::new(Space::Identity, form.record_key()));
                    }
                    if enc.kind == EncKind::PreKey {
                        if let Some(id) = PreKeySignalMessage::deserialize(&enc.ciphertext)
                            .ok()
                            .and_then(|m| m.pre_key_id())
                        {
                            keys.push(RecordKey::new(Space::PreKey, id.0.to_string()));
                        }
                    }
                }
                EncKind::SenderKey => {
                    if let Some(group) = &stanza.group {
                        for form in &forms {
                            keys.push(RecordKey::new(
                                Space::SenderKey,
                                format!("{group}::{}", form.record_key()),
                            ));
                        }
                    }
                }
                EncKind::Other(_) => {}
            }
        }
        crate::sort::sort_unstable(&mut keys);
        keys.dedup();
        let mut missing = keys.clone();
        missing.retain(|key| !records.loaded.contains(key));
        (keys, missing)
    }

    fn pump(&mut self, records: &mut Records, ctx: &mut Context<'_>, out: &mut Outputs) {
        while self.in_flight.is_none() {
            let Some(node) = self.inbox.front() else {
                return;
            };
            let Some(own) = records.keystore.as_ref().map(|k| k.own().clone()) else {
                return;
            };
            let stanza = match parse_message(node, &own) {
                Ok(stanza) => stanza,
                Err(error) => {
                    let node = self.inbox.pop_front().unwrap_or_default();
                    let own = ctx.own_jid().cloned();
                    let _ = ctx.send(&build_ack(&node, own.as_ref(), Some(487)), out);
                    out.event(Event::DecryptFailed(failure_of(
                        &node,
                        DecryptFailureKind::of(&error),
                        &error.to_string(),
                    )));
                    continue;
                }
            };
            let (uses, needed) = Self::needed(records, &stanza);
            if !needed.is_empty() {
                self.pinned = uses;
                self.in_flight = Some(needed.clone());
                ctx.load(needed, MessagingLoad::Inbox, out);
                return;
            }
            self.pinned.clear();
            if let Some(keystore) = records.keystore.as_mut() {
                for key in &uses {
                    if let Some(space) = record_space(key.space) {
                        keystore.touch(space, &key.key);
                    }
                }
            }
            let node = self.inbox.pop_front().unwrap_or_default();
            self.process(records, &node, &stanza, ctx, out);
        }
    }

    fn process(
        &mut self,
        records: &mut Records,
        node: &Node,
        stanza: &IncomingStanza,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        let (signed_id, signed_pair, _) = ctx.device().signed_pre_key();
        let signed_pair = signed_pair.clone();
        let Some(keystore) = records.keystore.as_mut() else {
            return;
        };
        learn_addressing(keystore, stanza);
        if keystore.was_received(stanza.group.as_deref(), &stanza.sender, &stanza.id) {
            // Received, persisted and reported before; its receipt did not reach the server
            // (a cut or a crash after the Persist), so the server delivered it again. Answered
            // as WhatsApp Web answers a duplicate: the delivery receipt again, nothing else.
            let batch = batch_of(keystore.take_changes());
            if !batch.changes.is_empty() {
                ctx.persist(batch, out);
            }
            let _ = ctx.send(&build_delivery_receipt(stanza), out);
            return;
        }
        let pre_keys = DevicePreKeys {
            signed: (signed_id, &signed_pair),
            one_time: &records.pre_keys,
        };
        let opened = open_message(keystore, stanza, &pre_keys, ctx.rng());
        // Content that needs poll records (a poll to keep, a vote to open) waits for them once,
        // uncommitted, and is decrypted again when they are in.
        if let Ok(opened) = &opened {
            if self.poll_wait.as_deref() != Some(stanza.id.as_str()) {
                let chat = chat_of(stanza, opened.decoded.device_sent_to.as_deref());
                let chats = forms(&chat, keystore.lids());
                let content = crate::content::content_of(&opened.decoded.message);
                let mut missing = self.polls.missing(content, &chats);
                missing.extend(self.secrets.missing(content, &chats));
                if !missing.is_empty() {
                    self.poll_wait = Some(stanza.id.clone());
                    self.inbox.push_front(node.clone());
                    self.in_flight = Some(missing.clone());
                    ctx.load(missing, MessagingLoad::Inbox, out);
                    return;
                }
            }
        }
        self.poll_wait = None;
        let result = opened.and_then(|opened| commit_message(keystore, stanza, opened));
        match result {
            Ok(decrypted) => {
                // Remembered in the same batch as the session change that decrypted it: a
                // crash cannot keep one without the other.
                keystore.remember_received(stanza.group.as_deref(), &stanza.sender, &stanza.id);
                let mut batch = batch_of(keystore.take_changes());
                for id in &decrypted.consumed_pre_keys {
                    records.pre_keys.remove(&id.0);
                    batch.changes.push(Change::Delete {
                        space: Space::PreKey,
                        key: id.0.to_string(),
                    });
                }
                self.retries.retain(|(id, _)| *id != stanza.id);
                // An app-state key share is persisted with the session changes and consumed
                // by the app-state machine, not reported as a message.
                let key_share = super::super::app_sync::key_share_changes(
                    &decrypted.message,
                    &stanza.sender.to_jid(),
                    ctx.own_jid(),
                );
                let mut is_key_share = key_share.is_some();
                if let Some((keys, changes)) = key_share {
                    batch.changes.extend(changes);
                    ctx.app_state_keys(keys);
                }
                // A history-sync notification goes to the history machine, acknowledged as
                // WhatsApp Web does: the delivery receipt below, then `hist_sync`.
                let own = ctx.own_jid().cloned();
                let mut hist_sync = None;
                if let Some(note) = super::super::history::notification_of(
                    &decrypted.message,
                    &stanza.sender.to_jid(),
                    own.as_ref(),
                ) {
                    is_key_share = true;
                    ctx.history_notification(stanza.id.clone(), note);
                    hist_sync = own
                        .as_ref()
                        .map(|own| super::super::history::hist_sync_receipt(&stanza.id, own));
                }
                // The event comes first and the Persist that marks the message received
                // right after it: a host that stores the event in the same transaction as
                // that Persist gets every message exactly once; one that crashes between the
                // two gets it again, with the same id, from the server's redelivery (never
                // not at all).
                report_identities(keystore, out);
                // Our own message from another device is filed under the chat its encrypted
                // wrapper names, not under the server's `recipient` attribute.
                let chat = chat_of(stanza, decrypted.device_sent_to.as_deref());
                if decrypted.has_content && !is_key_share {
                    let unwrapped = crate::content::unwrap(decrypted.message);
                    let mut message = unwrapped.message;
                    let own = own_of(keystore);
                    let own_users = own.users();
                    let sender = stanza.sender.to_jid().to_non_device();
                    normalize_keys(
                        &mut message,
                        &Perspective {
                            chat: &chat,
                            sender: &sender,
                            from_me: stanza.from_me,
                            own: &own_users,
                        },
                    );
                    let chats = forms(&chat, keystore.lids());
                    let senders = forms(&sender, keystore.lids());
                    let at = Received {
                        chats: &chats,
                        senders: &senders,
                        own: &own,
                        lids: keystore.lids(),
                    };
                    batch
                        .changes
                        .extend(self.secrets.on_received(&stanza.id, &mut message, &at));
                    let (poll_vote, poll_changes) =
                        self.polls.on_received(&stanza.id, &message, at);
                    batch.changes.extend(poll_changes);
                    out.event(Event::Message(Box::new(IncomingMessage {
                        id: stanza.id.clone(),
                        chat,
                        sender: stanza.sender.to_jid(),
                        timestamp: stanza.timestamp,
                        from_me: stanza.from_me,
                        push_name: stanza.push_name.clone(),
                        history: false,
                        text: text_of(&message).map(str::to_owned),
                        message: Box::new(message),
                        wrappers: unwrapped.wrappers,
                        raw: decrypted.raw,
                        poll_vote,
                    })));
                }
                if !batch.changes.is_empty() {
                    ctx.persist(batch, out);
                }
                let _ = ctx.send(&build_delivery_receipt(stanza), out);
                if let Some(receipt) = hist_sync {
                    let _ = ctx.send(&receipt, out);
                }
            }
            Err(MessagingError::Decrypt(DecryptError::DuplicateMessage { .. })) => {
                // Delivered before (the server redelivers what it has no receipt for).
                let mut batch = batch_of(keystore.take_changes());
                if !batch.changes.is_empty() {
                    ctx.persist(core::mem::take(&mut batch), out);
                }
                let _ = ctx.send(&build_delivery_receipt(stanza), out);
            }
            Err(error) => {
                let batch = batch_of(keystore.take_changes());
                if !batch.changes.is_empty() {
                    ctx.persist(batch, out);
                }
                report_identities(keystore, out);
                out.event(Event::DecryptFailed(DecryptFailure {
                    id: stanza.id.clone(),
                    chat: stanza.chat.parse().unwrap_or_default(),
                    sender: Some(stanza.sender.to_jid()),
                    kind: DecryptFailureKind::of(&error),
                    reason: error.to_string(),
                }));
                if matches!(error, MessagingError::UntrustedIdentity { .. }) {
                    // Held (persisted above) and asked for again once the new identity is
                    // approved; until then a retry would only bring it back refused.
                    let own = ctx.own_jid().cloned();
                    let _ = ctx.send(&build_ack(node, own.as_ref(), Some(500)), out);
                } else {
                    self.request_retry(records, node, stanza, &error, ctx, out);
                }
            }
        }
    }

    fn request_retry(
        &mut self,
        records: &mut Records,
        node: &Node,
        stanza: &IncomingStanza,
        error: &MessagingError,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        let own = ctx.own_jid().cloned();
        if is_expired_status(stanza, ctx.now()) {
            // A status post over a day old is not asked for again (Baileys
            // `STATUS_EXPIRY_SECONDS`): acknowledged, and reported above.
            let _ = ctx.send(&build_ack(node, own.as_ref(), None), out);
            return;
        }
        let at = self.retries.iter().position(|(id, _)| *id == stanza.id);
        let count = at
            .and_then(|at| self.retries.get(at))
            .map_or(0, |(_, count)| *count)
            + 1;
        if count > MESSAGING_MAX_RETRIES {
            let _ = ctx.send(&build_ack(node, own.as_ref(), Some(500)), out);
            return;
        }
        if self.retries.len() >= MESSAGING_MAX_PARKED {
            self.retries.clear();
            self.retries.push((stanza.id.clone(), count));
        } else if let Some(entry) = at.and_then(|at| self.retries.get_mut(at)) {
            entry.1 = count;
        } else {
            self.retries.push((stanza.id.clone(), count));
        }
        let keys = if retry_needs_keys(count, error) {
            let (fresh, batch, dropped) = ctx.generate_retry_pre_key();
            if let Some(dropped) = dropped {
                records.pre_keys.remove(&dropped);
            }
            ctx.persist(batch, out);
            let (signed_id, signed_pair, signature) = ctx.device().signed_pre_key();
            let signature = *signature;
            let signed_public = signed_pair.public;
            let identity = ctx.device().identity().identity_key();
            let device_identity = ctx.device().signed_identity();
            let (id, public) = fresh;
            Some(build_keys_node(
                &identity,
                (PreKeyId(id), &crate::signal::PublicKey::from_raw(public)),
                (SignedPreKeyId(signed_id), &signed_public, &signature),
                &device_identity,
            ))
        } else {
            None
        };
        let receipt = build_retry_receipt(stanza, count, ctx.device().registration_id(), keys);
        let _ = ctx.send(&receipt, out);
        let _ = ctx.send(&build_ack(node, own.as_ref(), Some(500)), out);
    }
}

/// The chat of a decrypted stanza: for our own message from another device, the chat its
/// encrypted wrapper names (not the server's `recipient` attribute).
fn chat_of(stanza: &IncomingStanza, device_sent_to: Option<&str>) -> Jid {
    device_sent_to
        .filter(|_| stanza.from_me)
        .and_then(|to| to.parse::<Jid>().ok())
        .map(|to| to.to_non_device())
        .unwrap_or_else(|| stanza.chat.parse().unwrap_or_default())
}

/// Whether `stanza` is a status post older than [`CONTENT_STATUS_EXPIRY_SECONDS`] at `now_ms`.
fn is_expired_status(stanza: &IncomingStanza, now_ms: u64) -> bool {
    stanza.group.as_deref() == Some(STATUS_BROADCAST)
        && stanza
            .timestamp
            .saturating_add(CONTENT_STATUS_EXPIRY_SECONDS)
            < now_ms / 1000
}

/// The chat of status posts.
pub(crate) const STATUS_BROADCAST: &str = "status@broadcast";

/// This account, as the poll records name it.
pub(crate) fn own_of(keystore: &Keystore) -> Own {
    let own = keystore.own();
    Own {
        pn: own.pn.to_jid().to_non_device(),
        lid: own.lid.as_ref().map(|lid| lid.to_jid().to_non_device()),
    }
}

fn failure_of(node: &Node, kind: DecryptFailureKind, reason: &str) -> DecryptFailure {
    DecryptFailure {
        id: node.attr_str("id").unwrap_or_default().to_owned(),
        chat: node.attr_jid("from").unwrap_or_else(|| Jid::new("", "")),
        sender: node
            .attr_jid("participant")
            .or_else(|| node.attr_jid("from")),
        kind,
        reason: reason.to_owned(),
    }
}

/// Reports the identity changes the keystore saw (`Event::IdentityChanged`).
pub(crate) fn report_identities(keystore: &mut Keystore, out: &mut Outputs) {
    for notice in keystore.take_identity_notices() {
        out.event(Event::IdentityChanged(IdentityChange {
            address: notice.address.to_jid(),
            identity: *notice.identity.0.raw(),
            previous: *notice.previous.0.raw(),
            accepted: notice.accepted,
        }));
    }
}
