//! Sync keys: the shares that bring them, and the requests (re-sent on a timer) for the keys a
//! collection waits for.

use crate::appstate::{Collection, KeyId, PatchError, SyncKey, persist};
use crate::binary::Jid;
use crate::limits::{APPSTATE_CLIENT_KEY_REQUEST_WAIT_MS, APPSTATE_CLIENT_KEY_REQUESTS};
use crate::proto::wa;
use crate::store::{Change, Record, Space};

use super::super::Timestamp;
use super::super::context::Context;
use super::super::event::Event;
use super::super::output::Outputs;
use super::AppSync;
use super::events::AppStateFailure;
use super::slot::{KeyRequestTimer, Phase};

/// The store key of a sync key record: the key id in lower-case hex.
pub(crate) fn key_record_key(id: &KeyId) -> String {
    id.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// The wait after the `sent`-th key request: [`APPSTATE_CLIENT_KEY_REQUEST_WAIT_MS`], doubled
/// after each request.
pub(super) fn key_request_wait(sent: u32) -> u64 {
    let doublings = sent.saturating_sub(1).min(16);
    APPSTATE_CLIENT_KEY_REQUEST_WAIT_MS.saturating_mul(1 << doublings)
}

impl AppSync {
    /// Keys from a share arrived (already persisted by messaging): retry what waited for them.
    pub(crate) fn keys_arrived(
        &mut self,
        keys: Vec<SyncKey>,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        for key in keys {
            self.ring.insert(key);
        }
        let ring = &self.ring;
        for (_, slot) in self.slots.iter_mut() {
            let ready = match &slot.phase {
                Phase::WaitingForKeys { ids, .. } => {
                    ids.iter().all(|id| ring.contains(id.as_bytes()))
                }
                _ => false,
            };
            if ready {
                slot.phase = Phase::Ready;
                slot.want(false);
            }
        }
        self.pump(ctx, out);
    }

    /// A collection's answer needs these keys: ask for them (once the current input is
    /// handled) and wait; a collection already waiting keeps its request timer.
    pub(super) fn wait_for_keys(&mut self, collection: Collection, ids: Vec<KeyId>) {
        for id in &ids {
            if !self.missing.contains(id) {
                self.missing.push(id.clone());
            }
        }
        let slot = self.slot_mut(collection);
        let timer = match slot.phase {
            Phase::WaitingForKeys { timer, .. } => timer,
            _ => None,
        };
        slot.phase = Phase::WaitingForKeys { ids, timer };
    }

    /// When the next key request (or the end of the last one's wait) is due.
    pub(crate) fn poll_timeout(&self) -> Option<Timestamp> {
        self.slots
            .values()
            .filter_map(|slot| match slot.phase {
                Phase::WaitingForKeys { timer, .. } => timer.map(|timer| timer.due),
                _ => None,
            })
            .min()
    }

    /// Key requests nobody answered: ask again, and after the last attempt's wait report the
    /// collection fatal (it keeps its last good state; the next login or `server_sync`
    /// fetches it again, and a share arriving later is still taken).
    pub(crate) fn handle_timeout(&mut self, ctx: &mut Context<'_>, out: &mut Outputs) {
        let now = ctx.now();
        let connected = ctx.is_connected();
        for (collection, slot) in self.slots.iter_mut() {
            let Phase::WaitingForKeys {
                ids,
                timer: Some(timer),
            } = &mut slot.phase
            else {
                continue;
            };
            if timer.due > now {
                continue;
            }
            if timer.sent >= APPSTATE_CLIENT_KEY_REQUESTS {
                let ids = core::mem::take(ids);
                slot.phase = Phase::Ready;
                out.event(Event::AppStateFatal {
                    collection: *collection,
                    error: AppStateFailure::Patch(PatchError::MissingKeys(ids)),
                });
                continue;
            }
            // Offline, the request could not leave: wait again without counting it.
            let sent = if connected {
                for id in ids.iter() {
                    if !self.missing.contains(id) {
                        self.missing.push(id.clone());
                    }
                }
                timer.sent + 1
            } else {
                timer.sent
            };
            *timer = KeyRequestTimer {
                sent,
                due: now.saturating_add(key_request_wait(sent)),
            };
        }
        self.request_missing(ctx);
    }

    /// Asks the own devices for the keys found missing while handling the current input, and
    /// starts the re-ask timer of every collection that just began waiting.
    pub(super) fn request_missing(&mut self, ctx: &mut Context<'_>) {
        let first = KeyRequestTimer {
            sent: 1,
            due: ctx.now().saturating_add(key_request_wait(1)),
        };
        for (_, slot) in self.slots.iter_mut() {
            if let Phase::WaitingForKeys { timer, .. } = &mut slot.phase {
                timer.get_or_insert(first);
            }
        }
        let missing = core::mem::take(&mut self.missing);
        if !missing.is_empty()
            && let Ok(request) = crate::appstate::key_request_message(&missing)
        {
            // Sent by messaging to this account's own devices (see `CommandId::INTERNAL`).
            ctx.request_app_state_keys(request);
        }
    }
}

/// Reads an `AppStateSyncKeyShare` from a decrypted message sent by one of this account's own
/// devices (`sender` and `own` are compared by user): the keys, and the records that store
/// them. Messaging persists the records with the message's other changes, before its delivery
/// receipt, and hands the keys to the client (`Requests::app_state_keys`).
pub(crate) fn key_share_changes(
    message: &wa::Message,
    sender: &Jid,
    own: Option<&Jid>,
) -> Option<(Vec<SyncKey>, Vec<Change>)> {
    let share = message
        .protocol_message
        .as_ref()?
        .app_state_sync_key_share
        .as_ref()?;
    let own = own?;
    if sender.user != own.user || sender.server != own.server {
        return None;
    }
    let keys = crate::appstate::keys::keys_from_share(share).ok()?;
    let changes = keys
        .iter()
        .map(|key| {
            Change::Put(Record {
                space: Space::AppStateKey,
                key: key_record_key(key.id()),
                value: persist::encode_key(key),
            })
        })
        .collect();
    Some((keys, changes))
}
