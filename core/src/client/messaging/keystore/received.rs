//! The ids of messages received per sender (duplicates are acknowledged, not decrypted again).

use prost::Message as _;

use crate::limits::MESSAGING_RECEIVED_IDS_PER_SENDER;
use crate::proto::walink as pb;
use crate::signal::RecordError;
use crate::store::Space;

use super::super::address::DeviceAddress;
use super::{Keystore, MESSAGING_RECORD_FORMAT, RecordChange, check_format};

/// The remembered form of a received message id: the first 8 bytes of
/// SHA-256(group or "" || 0x00 || id). A message id is unique per sending device, so the 1:1
/// chat (implied by the sender, or the recipient of an own copy) is not part of it.
pub(super) fn received_hash(group: Option<&str>, id: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(group.unwrap_or_default().as_bytes());
    hasher.update([0u8]);
    hasher.update(id.as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

impl Keystore {
    /// Loads the received ids of a sender.
    pub(super) fn restore_received(&mut self, key: &str, value: &[u8]) -> Result<(), RecordError> {
        let bad = RecordError::BadField("key");
        let address = DeviceAddress::from_record_key(key).ok_or(bad)?;
        let record = pb::ReceivedIdsRecord::decode(value).map_err(|_| RecordError::BadProtobuf)?;
        check_format(record.format_version)?;
        let skip = record
            .hashes
            .len()
            .saturating_sub(MESSAGING_RECEIVED_IDS_PER_SENDER);
        self.received
            .insert(address, record.hashes.into_iter().skip(skip).collect());
        Ok(())
    }

    /// Whether message `id` in `group` (`None` for a 1:1 message) from `sender` was received
    /// (decrypted and persisted) before.
    pub fn was_received(&self, group: Option<&str>, sender: &DeviceAddress, id: &str) -> bool {
        let hash = received_hash(group, id);
        self.received
            .get(&self.lids.canonical(sender))
            .is_some_and(|hashes| hashes.contains(&hash))
    }

    /// Remembers message `id` from `sender` as received, forgetting the oldest beyond
    /// [`MESSAGING_RECEIVED_IDS_PER_SENDER`]; the change joins the pending record changes (the
    /// caller persists it with the session change that decrypted the message).
    pub fn remember_received(&mut self, group: Option<&str>, sender: &DeviceAddress, id: &str) {
        let hash = received_hash(group, id);
        let address = self.lids.canonical(sender);
        let hashes = self.received.entry(address.clone()).or_default();
        if hashes.contains(&hash) {
            return;
        }
        hashes.push_back(hash);
        while hashes.len() > MESSAGING_RECEIVED_IDS_PER_SENDER {
            hashes.pop_front();
        }
        self.put_received(&address);
    }

    pub(super) fn put_received(&mut self, address: &DeviceAddress) {
        let hashes = self
            .received
            .get(address)
            .map(|hashes| hashes.iter().copied().collect())
            .unwrap_or_default();
        self.push_change(RecordChange {
            space: Space::ReceivedIds,
            key: address.record_key(),
            value: Some(
                pb::ReceivedIdsRecord {
                    format_version: Some(MESSAGING_RECORD_FORMAT),
                    hashes,
                }
                .encode_to_vec(),
            ),
        });
    }
}
