//! The changes to persist, and the least-recently-used cache of evictable records.

use crate::store::Space;

use super::super::address::DeviceAddress;
use super::{Keystore, RecordChange};

/// Whether records of `space` are dropped from memory by [`Keystore::evict`] (the LID mapping
/// and the retry buffer are not: the first is needed to name every other record, the second
/// has its own bound, `MESSAGING_RETRY_BUFFER`).
pub fn is_evictable(space: Space) -> bool {
    matches!(
        space,
        Space::Session
            | Space::Identity
            | Space::SenderKey
            | Space::SenderKeySent
            | Space::ReceivedIds
            | Space::DeviceList
    )
}

impl Keystore {
    /// Queues a change to persist; the record counts as used now (or, deleted, no longer as
    /// cached).
    pub(super) fn push_change(&mut self, change: RecordChange) {
        if change.value.is_some() {
            self.mark_used(change.space, &change.key);
        } else {
            self.used.remove(&(change.space, change.key.clone()));
        }
        self.changes.push(change);
    }

    /// Marks the record `key` of `space`, now in memory, as used now.
    pub(super) fn mark_used(&mut self, space: Space, key: &str) {
        if !is_evictable(space) {
            return;
        }
        self.use_clock = self.use_clock.saturating_add(1);
        match self.used.get_mut(&(space, key.to_owned())) {
            Some(stamp) => *stamp = self.use_clock,
            None => {
                self.used.insert((space, key.to_owned()), self.use_clock);
            }
        }
    }

    /// Marks the record `key` of `space` as used now, if it is in memory (for the
    /// least-recently-used eviction of [`Keystore::evict`]).
    pub fn touch(&mut self, space: Space, key: &str) {
        if self.is_cached(space, key) {
            self.mark_used(space, key);
        }
    }

    /// Whether the evictable record `key` of `space` is in memory.
    pub fn is_cached(&self, space: Space, key: &str) -> bool {
        self.used.contains_key(&(space, key.to_owned()))
    }

    /// Whether a change of the record `key` of `space` waits for [`Keystore::take_changes`].
    pub fn has_pending_change(&self, space: Space, key: &str) -> bool {
        self.changes
            .iter()
            .any(|change| change.space == space && change.key == key)
    }

    /// How many evictable records (sessions, identities, sender keys, sender-key-sent lists,
    /// received-id lists, device lists) are in memory.
    pub fn cached_records(&self) -> usize {
        self.used.len()
    }

    /// Drops the least recently used evictable records from memory until at most `limit` are
    /// left, and returns their keys (the caller forgets it loaded them, so that the next need
    /// loads them again). Never dropped: a record with a change not yet taken by
    /// [`Keystore::take_changes`] (its latest state is not in a `Persist` yet), and a record
    /// `pinned` says an operation in progress uses. The records kept in spite of the limit
    /// stay; the limit is met again once their operations end.
    pub fn evict(
        &mut self,
        limit: usize,
        pinned: impl Fn(Space, &str) -> bool,
    ) -> Vec<(Space, String)> {
        if self.used.len() <= limit {
            return Vec::new();
        }
        let mut candidates: Vec<(u64, Space, String)> = self
            .used
            .iter()
            .filter(|((space, key), _)| {
                !pinned(*space, key) && !self.has_pending_change(*space, key)
            })
            .map(|((space, key), stamp)| (*stamp, *space, key.clone()))
            .collect();
        candidates.sort_unstable_by_key(|(stamp, _, _)| *stamp);
        let excess = self.used.len().saturating_sub(limit);
        let mut evicted = Vec::with_capacity(excess.min(candidates.len()));
        for (_, space, key) in candidates.into_iter().take(excess) {
            self.used.remove(&(space, key.clone()));
            self.drop_record(space, &key);
            evicted.push((space, key));
        }
        evicted
    }

    /// Removes one record from memory (not from the store).
    pub(super) fn drop_record(&mut self, space: Space, key: &str) {
        match space {
            Space::Session => {
                if let Some(address) = DeviceAddress::from_record_key(key) {
                    self.sessions.remove(&address);
                }
            }
            Space::Identity => {
                if let Some(address) = DeviceAddress::from_record_key(key) {
                    self.identities.remove(&address);
                }
            }
            Space::SenderKey => {
                if let Some((group, sender)) = key.split_once("::")
                    && let Some(sender) = DeviceAddress::from_record_key(sender)
                {
                    self.sender_keys.remove(&(group.to_owned(), sender));
                }
            }
            Space::SenderKeySent => {
                self.sender_key_sent.remove(key);
            }
            Space::DeviceList => {
                if let Some(address) = DeviceAddress::from_record_key(key) {
                    self.take_device_list(&address);
                }
            }
            Space::ReceivedIds => {
                if let Some(address) = DeviceAddress::from_record_key(key) {
                    self.received.remove(&address);
                }
            }
            // Kept whole (LID mappings, the retry buffer) or not a keystore record.
            _ => {}
        }
    }

    pub(super) fn delete(&mut self, space: Space, key: String) {
        self.push_change(RecordChange {
            space,
            key,
            value: None,
        });
    }
}
