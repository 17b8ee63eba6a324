//! The messaging records in memory, owned by `Messaging` and lent (`&mut`) to the receiver,
//! the sender, the retrier and the identity commands: the keystore (built once the device is
//! paired), the records given at `Client::new`, the record keys already loaded, and the
//! one-time prekeys loaded for prekey messages.

use std::collections::{HashMap, HashSet};

use crate::signal::{KeyPair, PrivateKey, RecordError};
use crate::store::{Record, RecordKey, Space};

use super::super::context::Context;
use super::super::event::Event;
use super::super::output::Outputs;
use super::DeviceAddress;
use super::keystore::{Keystore, OwnIdentity, is_evictable};

/// `space` when the keystore keeps records of it (sessions, identities, sender keys and who
/// holds ours, LID mappings, the retry buffer, received ids, device lists).
pub(super) fn record_space(space: Space) -> Option<Space> {
    (is_evictable(space) || matches!(space, Space::LidMapping | Space::RetryBuffer))
        .then_some(space)
}

/// Poll and message-secret records: kept in the receiver's own caches, loaded when needed, never
/// marked loaded here.
fn owned_by_receiver(space: Space) -> bool {
    matches!(space, Space::Poll | Space::MessageSecret)
}

/// Reports a stored record that cannot be read (its space and key, never its value).
fn report_corrupt(record: &Record, error: RecordError, out: &mut Outputs) {
    out.event(Event::RecordCorrupt {
        space: record.space,
        key: record.key.clone(),
        error,
    });
}

/// The messaging records in memory.
#[derive(Debug, Default)]
pub(crate) struct Records {
    /// Built once the device is paired.
    pub(crate) keystore: Option<Keystore>,
    /// Records given at `Client::new`, applied when the keystore is built.
    pub(crate) restored: Vec<Record>,
    /// Keys already asked for (present or absent in the store).
    pub(crate) loaded: HashSet<RecordKey>,
    /// One-time prekeys loaded for prekey messages.
    pub(crate) pre_keys: HashMap<u32, KeyPair>,
}

impl Records {
    /// The keystore, built from the device's identity once it is paired (a record given at
    /// `Client::new` that cannot be read is reported, [`Event::RecordCorrupt`]).
    pub(crate) fn keystore(
        &mut self,
        ctx: &Context<'_>,
        out: &mut Outputs,
    ) -> Option<&mut Keystore> {
        if self.keystore.is_none() {
            let jid = ctx.own_jid()?;
            let pn = DeviceAddress::from_jid(jid).ok()?;
            let lid = ctx
                .own_lid()
                .and_then(|lid| DeviceAddress::from_jid(lid).ok());
            let mut keystore = Keystore::new(OwnIdentity {
                pn,
                lid: lid.clone(),
                identity: ctx.device().identity().clone(),
                registration_id: ctx.device().registration_id(),
            });
            keystore.set_identity_policy(ctx.config().identity_policy);
            if let Some(lid) = lid {
                keystore.set_own_lid(lid);
            }
            let restored = lid_mappings_first(core::mem::take(&mut self.restored));
            for record in restored {
                // Poll and message-secret records live in their own caches, loaded when
                // needed; marking them loaded here would hide them from those loads.
                if owned_by_receiver(record.space) {
                    continue;
                }
                self.loaded
                    .insert(RecordKey::new(record.space, record.key.clone()));
                if let Some(space) = record_space(record.space)
                    && let Err(error) = keystore.restore(space, &record.key, &record.value)
                {
                    report_corrupt(&record, error, out);
                }
            }
            self.keystore = Some(keystore);
        }
        self.keystore.as_mut()
    }

    /// The records of a load answer not loaded before, LID mappings first (what
    /// [`Records::apply_fresh`] takes).
    pub(crate) fn fresh(&self, records: Vec<Record>) -> Vec<Record> {
        let mut sorted = records;
        sorted.retain(|record| {
            !self
                .loaded
                .contains(&RecordKey::new(record.space, record.key.clone()))
        });
        lid_mappings_first(sorted)
    }

    /// Loads the answer to a load of `requested` into the keystore (and one-time prekeys into
    /// memory). A record already in memory is kept: it may be newer than the stored one (two
    /// loads of the same key can cross).
    /// A record that cannot be read is reported ([`Event::RecordCorrupt`]) and treated as absent.
    pub(crate) fn apply(
        &mut self,
        records: Vec<Record>,
        requested: Vec<RecordKey>,
        out: &mut Outputs,
    ) {
        let fresh = self.fresh(records);
        self.apply_fresh(fresh, requested, out);
    }

    /// [`Records::apply`] of records already passed through [`Records::fresh`] (poll and
    /// message-secret records are the receiver's, skipped here).
    pub(crate) fn apply_fresh(
        &mut self,
        sorted: Vec<Record>,
        requested: Vec<RecordKey>,
        out: &mut Outputs,
    ) {
        self.loaded.extend(
            requested
                .into_iter()
                .filter(|key| !owned_by_receiver(key.space)),
        );
        for record in sorted {
            if owned_by_receiver(record.space) {
                continue;
            }
            if record.space == Space::PreKey {
                let Ok(id) = record.key.parse::<u32>() else {
                    report_corrupt(&record, RecordError::BadField("key"), out);
                    continue;
                };
                match crate::store::decode_pre_key(&record) {
                    Ok(data) => {
                        let private = PrivateKey::from_bytes(*data.private);
                        self.pre_keys.insert(id, KeyPair::from_private(private));
                    }
                    Err(_) => report_corrupt(&record, RecordError::BadProtobuf, out),
                }
                continue;
            }
            if let (Some(space), Some(keystore)) =
                (record_space(record.space), self.keystore.as_mut())
                && let Err(error) = keystore.restore(space, &record.key, &record.value)
            {
                report_corrupt(&record, error, out);
            }
        }
    }

    /// Whether [`Records::trim`] has anything to do: more records in memory than `limit`, or
    /// more keys remembered as loaded than twice that.
    pub(crate) fn over_limit(&self, limit: usize) -> bool {
        let cached = self
            .keystore
            .as_ref()
            .map_or(0, |keystore| keystore.cached_records());
        cached > limit || self.loaded.len() > limit.saturating_mul(2)
    }

    /// Bounds the records in memory to `limit` (see [`Keystore::evict`]): the least recently
    /// used ones not `pinned` and already persisted are dropped, and forgotten as loaded, so
    /// that the next need loads them again instead of taking them for absent. Keys loaded and
    /// found absent are forgotten too once they outnumber `limit` twice (they cost a load each
    /// when needed again, nothing else).
    pub(crate) fn trim(&mut self, limit: usize, pinned: &HashSet<RecordKey>) {
        let Some(keystore) = self.keystore.as_mut() else {
            return;
        };
        for key in pinned {
            if let Some(space) = record_space(key.space) {
                keystore.touch(space, &key.key);
            }
        }
        let evicted = keystore.evict(limit, |space, key| {
            pinned.contains(&RecordKey::new(space, key))
        });
        for (space, key) in evicted {
            self.loaded.remove(&RecordKey::new(space, key));
        }
        if self.loaded.len() > limit.saturating_mul(2) {
            self.loaded.retain(|key| {
                let Some(space) = record_space(key.space) else {
                    return true;
                };
                !is_evictable(space)
                    || keystore.is_cached(space, &key.key)
                    || keystore.has_pending_change(space, &key.key)
                    || pinned.contains(key)
            });
        }
    }
}

/// Puts the LID mapping records first (the other records' addresses resolve through them),
/// keeping the order within each group. A partition, not a stable sort by a key: the module
/// needs no stable sort instance for records (docs/decisions.md, "wasm size").
fn lid_mappings_first(records: Vec<Record>) -> Vec<Record> {
    let (mut first, rest): (Vec<Record>, Vec<Record>) = records
        .into_iter()
        .partition(|record| record.space == Space::LidMapping);
    // Records under a phone-number form come last: one whose user's LID is known moves to the
    // LID form as it is restored, unless the LID form has a record (restored first).
    let (pn, others): (Vec<Record>, Vec<Record>) = rest
        .into_iter()
        .partition(|record| record.key.ends_with("@s.whatsapp.net"));
    first.extend(others);
    first.extend(pn);
    first
}
