//! Phone-number/LID mappings, and the move of records to the LID form when one is learned.

use prost::Message as _;

use crate::limits::MESSAGING_RECEIVED_IDS_PER_SENDER;
use crate::proto::walink as pb;
use crate::store::Space;

use super::super::address::DeviceAddress;
use super::super::address::LidMap;
use super::{Keystore, MESSAGING_RECORD_FORMAT, RecordChange};
use super::sender_keys::DeviceSet;
use super::sender_keys::Holders;
use super::sender_keys::sender_key_record_key;

impl Keystore {
    /// Sets this device's LID once the server tells it (after pairing or login).
    pub fn set_own_lid(&mut self, lid: DeviceAddress) {
        self.learn_lid(&self.own.pn.user.clone(), &lid.user.clone());
        self.own.lid = Some(lid);
    }

    /// The phone-number/LID mapping.
    pub fn lids(&self) -> &LidMap {
        &self.lids
    }

    /// Learns that phone-number user `pn` is LID user `lid`: persists the mapping and moves the
    /// records kept under the phone-number form to the LID form.
    pub fn learn_lid(&mut self, pn: &str, lid: &str) {
        if !self.lids.insert(pn, lid) {
            return;
        }
        self.push_change(RecordChange {
            space: Space::LidMapping,
            key: pn.to_owned(),
            value: Some(
                pb::LidMappingRecord {
                    format_version: Some(MESSAGING_RECORD_FORMAT),
                    lid_user: Some(lid.to_owned()),
                }
                .encode_to_vec(),
            ),
        });
        self.move_to_lid(pn);
    }

    /// Moves the records in memory kept under the phone-number form of user `pn` (whose LID is
    /// known) to the LID form, persisting the move; a record the LID form already has wins.
    pub(super) fn move_to_lid(&mut self, pn: &str) {
        let moved: Vec<DeviceAddress> = self
            .sessions
            .keys()
            .filter(|address| !address.lid && address.user == pn)
            .cloned()
            .collect();
        let moved_sender_keys: Vec<(String, DeviceAddress)> = self
            .sender_keys
            .keys()
            .filter(|(_, sender)| !sender.lid && sender.user == pn)
            .cloned()
            .collect();
        for (group, old) in moved_sender_keys {
            let new = self.lids.canonical(&old);
            if let Some(record) = self.sender_keys.remove(&(group.clone(), old.clone())) {
                self.delete(Space::SenderKey, sender_key_record_key(&group, &old));
                if !self.sender_keys.contains_key(&(group.clone(), new.clone())) {
                    self.put_sender_key(&group, &new, record);
                }
            }
        }
        let groups: Vec<String> = self
            .sender_key_sent
            .iter()
            .filter(|(_, holders)| holders.all().any(|d| !d.lid && d.user == pn))
            .map(|(group, _)| group.clone())
            .collect();
        for group in groups {
            if let Some(holders) = self.sender_key_sent.get(&group) {
                let canonical = |set: &DeviceSet| -> DeviceSet {
                    set.iter().map(|d| self.lids.canonical(d)).collect()
                };
                let moved = Holders {
                    sent: canonical(&holders.sent),
                    offered: canonical(&holders.offered),
                };
                self.put_holders(&group, moved);
            }
        }
        let moved_lists: Vec<DeviceAddress> = self
            .device_lists
            .iter()
            .map(|(address, _)| address)
            .filter(|address| !address.lid && address.user == pn)
            .cloned()
            .collect();
        for old in moved_lists {
            let new = self.lids.canonical(&old);
            if let Some(list) = self.take_device_list(&old) {
                self.delete(Space::DeviceList, old.record_key());
                if self.device_list_at(&new).is_err() {
                    self.put_device_list(&new, list);
                }
            }
        }
        for old in moved {
            let new = self.lids.canonical(&old);
            if let Some(record) = self.sessions.remove(&old) {
                self.delete(Space::Session, old.record_key());
                if !self.sessions.contains_key(&new) {
                    self.put_session(&new, record);
                }
            }
            if let Some(identity) = self.identities.remove(&old) {
                self.delete(Space::Identity, old.record_key());
                if !self.identities.contains_key(&new) {
                    self.identities.insert(new.clone(), identity);
                    self.write_identity(&new);
                }
            }
        }
        let moved_received: Vec<DeviceAddress> = self
            .received
            .keys()
            .filter(|address| !address.lid && address.user == pn)
            .cloned()
            .collect();
        for old in moved_received {
            let new = self.lids.canonical(&old);
            if let Some(hashes) = self.received.remove(&old) {
                self.delete(Space::ReceivedIds, old.record_key());
                let merged = self.received.entry(new.clone()).or_default();
                for hash in hashes {
                    if !merged.contains(&hash) {
                        merged.push_back(hash);
                    }
                }
                while merged.len() > MESSAGING_RECEIVED_IDS_PER_SENDER {
                    merged.pop_front();
                }
                self.put_received(&new);
            }
        }
    }
}
