//! Retry requests from peers: a device that could not decrypt one of our messages sends
//! `<receipt type="retry">` (with fresh keys from its second request on); the message is
//! encrypted again from the retry buffer, for that device only (Baileys `sendMessagesAgain`,
//! whatsmeow `handleRetryReceipt`). Requests wait, in order, for the records they need.
//!
//! Only a device the message was encrypted for (a member device at send time, for a group) is
//! answered, at most `MESSAGING_MAX_RETRIES` times, and our sender key goes with a group resend
//! only while it is the key the message used. Anything else is ignored, counted and reported
//! once per message and device (`Event::RetryRefused`), before any session is touched: a retry
//! receipt is not authenticated, the server can forge it in anyone's name.

use std::collections::VecDeque;

use crate::binary::Node;
use crate::limits::MESSAGING_MAX_PARKED;
use crate::store::{RecordKey, Space};

use super::super::context::Context;
use super::super::event::Event;
use super::super::output::Outputs;
use super::keystore::RetryDenied;
use super::outgoing::{RetryResend, build_retry_resend};
use super::receipt::{ReceiptKind, parse_receipt};
use super::receiver::batch_of;
use super::records::Records;
use super::{DeviceAddress, MessagingLoad, RefusedRetry, RetryRefusal};

/// Retry requests waiting for their records.
#[derive(Debug, Default)]
pub(crate) struct Retrier {
    queue: VecDeque<Node>,
    in_flight: bool,
    /// The keys of the load in flight.
    requested: Vec<RecordKey>,
    /// Every record key the first request uses, while it waits for a load.
    pinned: Vec<RecordKey>,
    /// Refused requests already reported, as (message id, requester record key).
    reported: Vec<(String, String)>,
    /// Every refused request since the client started.
    refused_total: u64,
}

impl Retrier {
    /// A retry receipt arrived (already acknowledged).
    pub(crate) fn handle_retry(
        &mut self,
        node: Node,
        records: &mut Records,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        if self.queue.len() >= MESSAGING_MAX_PARKED || records.keystore(ctx, out).is_none() {
            return;
        }
        self.queue.push_back(node);
        self.pump(records, ctx, out);
    }

    /// Records of a retry load arrived.
    pub(crate) fn handle_loaded(
        &mut self,
        loaded: Vec<crate::store::Record>,
        records: &mut Records,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        self.in_flight = false;
        records.apply(loaded, core::mem::take(&mut self.requested), out);
        self.pump(records, ctx, out);
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

    /// Counts a refused request and reports it, once per message and device.
    fn refuse(
        &mut self,
        id: &str,
        requester: &DeviceAddress,
        reason: RetryRefusal,
        out: &mut Outputs,
    ) {
        self.refused_total = self.refused_total.saturating_add(1);
        let seen = (id.to_owned(), requester.record_key());
        if self.reported.contains(&seen) {
            return;
        }
        if self.reported.len() >= crate::limits::MESSAGING_MAX_REPORTED_REFUSALS {
            self.reported.clear();
        }
        self.reported.push(seen);
        out.event(Event::RetryRefused(RefusedRetry {
            id: id.to_owned(),
            requester: requester.to_jid(),
            reason,
            refused_total: self.refused_total,
        }));
    }

    fn pump(&mut self, records: &mut Records, ctx: &mut Context<'_>, out: &mut Outputs) {
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
            let Some(keystore) = records.keystore.as_ref() else {
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
            keys.retain(|key| !records.loaded.contains(key));
            if !keys.is_empty() {
                self.pinned = uses;
                self.requested = keys.clone();
                self.in_flight = true;
                ctx.load(keys, MessagingLoad::Retry, out);
                return;
            }
            self.queue.pop_front();
            let Some(keystore) = records.keystore.as_mut() else {
                return;
            };
            // Who may have the message, first: nothing is done for anyone else.
            let entry = match keystore.take_retry(&id, &requester, request.count) {
                Ok(entry) => entry,
                Err(RetryDenied::NotKept) => continue,
                Err(RetryDenied::NotARecipient) => {
                    self.refuse(&id, &requester, RetryRefusal::NotARecipient, out);
                    continue;
                }
                Err(RetryDenied::TooManyRetries) => {
                    self.refuse(&id, &requester, RetryRefusal::TooManyRetries, out);
                    continue;
                }
            };
            if let Some(bundle) = &request.bundle {
                // The requester lost its session: start a fresh one from its keys (a changed
                // identity follows the identity policy).
                if keystore
                    .process_bundle(&requester, bundle, ctx.rng())
                    .is_err()
                {
                    let batch = batch_of(keystore.take_changes());
                    ctx.persist(batch, out);
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
            let device_identity = ctx.device().signed_identity();
            let built = build_retry_resend(
                keystore,
                &RetryResend {
                    id: &id,
                    chat: &entry.chat,
                    message: &entry.message,
                    requester: &requester,
                    count: request.count,
                    device_identity: &device_identity,
                    sender_key_id: entry.sender_key_id,
                },
                ctx.rng(),
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
