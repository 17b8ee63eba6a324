//! Retry requests from peers: a device that could not decrypt one of our messages sends
//! `<receipt type="retry">` (with fresh keys from its second request on); the message is
//! encrypted again from the retry buffer, for that device only (Baileys `sendMessagesAgain`,
//! whatsmeow `handleRetryReceipt`). Requests wait, in order, for the records they need.

use std::collections::VecDeque;

use crate::binary::Node;
use crate::limits::MESSAGING_MAX_PARKED;
use crate::store::{RecordKey, Space};

use super::super::context::{Context, LoadTag};
use super::super::output::Outputs;
use super::MessagingLoad;
use super::machine::{Receiver, batch_of};
use super::outgoing::{RetryResend, build_retry_resend};
use super::receipt::{ReceiptKind, parse_receipt};

/// Retry requests waiting for their records.
#[derive(Debug, Default)]
pub(crate) struct Retrier {
    queue: VecDeque<Node>,
    in_flight: bool,
    /// The keys of the load in flight.
    requested: Vec<RecordKey>,
    /// Every record key the first request uses, while it waits for a load.
    pinned: Vec<RecordKey>,
}

impl Retrier {
    /// A retry receipt arrived (already acknowledged).
    pub(crate) fn handle_retry(
        &mut self,
        node: Node,
        receiver: &mut Receiver,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        if self.queue.len() >= MESSAGING_MAX_PARKED || receiver.keystore(ctx).is_none() {
            return;
        }
        self.queue.push_back(node);
        self.pump(receiver, ctx, out);
    }

    /// Records of a retry load arrived.
    pub(crate) fn handle_loaded(
        &mut self,
        records: Vec<crate::store::Record>,
        receiver: &mut Receiver,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        self.in_flight = false;
        receiver.apply_records(records, core::mem::take(&mut self.requested));
        self.pump(receiver, ctx, out);
    }

    /// The record keys that must stay in memory now: those of the load in flight and every
    /// record the request waiting for it uses.
    pub(crate) fn pins(&self) -> impl Iterator<Item = &RecordKey> {
        let waiting: &[RecordKey] = if self.in_flight { &self.pinned } else { &[] };
        self.requested.iter().chain(waiting)
    }

    /// The connection ended: pending requests are dropped (the peer asks again).
    pub(crate) fn handle_disconnected(&mut self) {
        self.queue.clear();
    }

    fn pump(&mut self, receiver: &mut Receiver, ctx: &mut Context<'_>, out: &mut Outputs) {
        while !self.in_flight {
            let Some(node) = self.queue.front() else {
                return;
            };
            let Ok(receipt) = parse_receipt(node) else {
                self.queue.pop_front();
                continue;
            };
            let (ReceiptKind::Retry(request), Some(requester)) = (receipt.kind, receipt.device)
            else {
                self.queue.pop_front();
                continue;
            };
            let Some(id) = receipt.ids.first().cloned() else {
                self.queue.pop_front();
                continue;
            };
            let Some(keystore) = receiver.keystore.as_ref() else {
                return;
            };
            let canonical = keystore.lids().canonical(&requester);
            let mut keys = vec![
                RecordKey::new(Space::RetryBuffer, id.clone()),
                RecordKey::new(Space::Session, canonical.record_key()),
                RecordKey::new(Space::Identity, canonical.record_key()),
            ];
            if !requester.lid {
                keys.push(RecordKey::new(Space::LidMapping, requester.user.clone()));
            }
            if canonical != requester {
                // Possibly still stored under the phone-number form (moved on load).
                keys.push(RecordKey::new(Space::Session, requester.record_key()));
                keys.push(RecordKey::new(Space::Identity, requester.record_key()));
            }
            // A group message is resent with our sender key's distribution to a device that
            // may hold it: that record and who holds it too (known once the kept message is
            // loaded; never taken for absent, which would start a new chain the other members
            // do not have, or forget the holders a rotation must know of).
            if let Some(entry) = keystore.sent_message(&id)
                && super::send::is_group(&entry.chat)
            {
                keys.push(RecordKey::new(
                    Space::SenderKey,
                    format!(
                        "{}::{}",
                        entry.chat,
                        keystore.own().group_sender().record_key()
                    ),
                ));
                keys.push(RecordKey::new(Space::SenderKeySent, entry.chat.clone()));
            }
            let uses = keys.clone();
            keys.retain(|key| !receiver.loaded.contains(key));
            if !keys.is_empty() {
                self.pinned = uses;
                self.requested = keys.clone();
                self.in_flight = true;
                ctx.load(keys, LoadTag::Messaging(MessagingLoad::Retry), out);
                return;
            }
            self.queue.pop_front();
            let Some(keystore) = receiver.keystore.as_mut() else {
                return;
            };
            if let Some(entry) = keystore.sent_message(&id)
                && super::send::is_group(&entry.chat)
                && !keystore.holds_sender_key(&entry.chat, &requester)
            {
                // Only a device that may hold our current sender key is answered: one that
                // left the group (or whose device was unlinked) since our key was rotated gets
                // neither the message nor the new key (docs/messaging.md, "Sender-key
                // rotation").
                continue;
            }
            if let Some(bundle) = &request.bundle {
                // The requester lost its session: start a fresh one from its keys.
                if keystore
                    .process_bundle(&requester, bundle, ctx.rng)
                    .is_err()
                {
                    continue;
                }
            } else if let (Some(theirs), Some(ours)) = (
                request.registration_id,
                keystore.remote_registration_id(&requester),
            ) {
                if theirs != ours {
                    // A reinstalled device without keys: nothing to encrypt for until it
                    // sends its keys with the next request.
                    keystore.delete_session(&requester);
                    let batch = batch_of(keystore.take_changes());
                    ctx.persist(batch, out);
                    continue;
                }
            }
            let Some(entry) = keystore.take_retry(&id, &requester) else {
                let batch = batch_of(keystore.take_changes());
                if !batch.changes.is_empty() {
                    ctx.persist(batch, out);
                }
                continue;
            };
            let device_identity = ctx
                .device
                .data()
                .signed_identity
                .clone()
                .unwrap_or_default();
            let built = build_retry_resend(
                keystore,
                &RetryResend {
                    id: &id,
                    chat: &entry.chat,
                    message: &entry.message,
                    requester: &requester,
                    count: request.count,
                    device_identity: &device_identity,
                },
                ctx.rng,
            );
            let batch = batch_of(keystore.take_changes());
            if !batch.changes.is_empty() {
                ctx.persist(batch, out);
            }
            if let Ok(node) = built {
                let _ = ctx.send(&node, out);
            }
        }
    }
}
