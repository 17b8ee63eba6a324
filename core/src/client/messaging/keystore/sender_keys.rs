//! Group sender keys: our chain per group and who holds it, the members' chains, and
//! rotation.

use prost::Message as _;
use rand_core::CryptoRng;

use crate::limits::MESSAGING_MAX_FANOUT;
use crate::proto::walink as pb;
use crate::proto_bounds::{self, Field};
use crate::signal::{DecryptError, RecordError, SenderKeyDistributionMessage, SenderKeyRecord};
use crate::store::Space;

use super::super::address::DeviceAddress;
use super::super::error::MessagingError;
use super::{Keystore, MESSAGING_RECORD_FORMAT, RecordChange, SessionUpdate, check_format};

/// The devices of a sender-key-sent record (acknowledged and offered), counted before it is
/// decoded.
pub(super) static SENDER_KEY_SENT_FIELDS: [Field; 2] = [
    Field {
        number: 2,
        max: MESSAGING_MAX_FANOUT,
        size: size_of::<String>() + size_of::<DeviceAddress>(),
        fields: &[],
    },
    Field {
        number: 3,
        max: MESSAGING_MAX_FANOUT,
        size: size_of::<String>() + size_of::<DeviceAddress>(),
        fields: &[],
    },
];

/// A set of devices kept as a sorted list without repeats: it shares the slice sort with the
/// rest of the core instead of instantiating `BTreeSet`'s node code for one more type
/// (docs/decisions.md, "wasm size").
#[derive(Debug, Clone, Default)]
pub(super) struct DeviceSet(Vec<DeviceAddress>);

impl DeviceSet {
    pub(super) fn iter(&self) -> core::slice::Iter<'_, DeviceAddress> {
        self.0.iter()
    }

    pub(super) fn contains(&self, device: &DeviceAddress) -> bool {
        self.0.binary_search(device).is_ok()
    }

    pub(super) fn extend(&mut self, devices: impl IntoIterator<Item = DeviceAddress>) {
        self.0.extend(devices);
        self.0.sort_unstable();
        self.0.dedup();
    }

    pub(super) fn remove(&mut self, device: &DeviceAddress) {
        if let Ok(at) = self.0.binary_search(device) {
            self.0.remove(at);
        }
    }
}

impl FromIterator<DeviceAddress> for DeviceSet {
    fn from_iter<I: IntoIterator<Item = DeviceAddress>>(devices: I) -> DeviceSet {
        let mut set = DeviceSet::default();
        set.extend(devices);
        set
    }
}

/// Who may hold our current sender key for one group: the devices whose copy the server
/// acknowledged (`sent`: they need no distribution again) and those it was handed to in a
/// stanza not acknowledged yet (`offered`: it is handed to them again, and they count as
/// holders when deciding whether the key must be rotated).
#[derive(Debug, Clone, Default)]
pub(super) struct Holders {
    pub(super) sent: DeviceSet,
    pub(super) offered: DeviceSet,
}

impl Holders {
    pub(super) fn all(&self) -> impl Iterator<Item = &DeviceAddress> {
        self.sent.iter().chain(self.offered.iter())
    }

    pub(super) fn record(&self) -> Vec<u8> {
        pb::SenderKeySentRecord {
            format_version: Some(MESSAGING_RECORD_FORMAT),
            devices: self.sent.iter().map(DeviceAddress::record_key).collect(),
            offered: self.offered.iter().map(DeviceAddress::record_key).collect(),
        }
        .encode_to_vec()
    }
}

pub(super) fn sender_key_record_key(group: &str, sender: &DeviceAddress) -> String {
    format!("{group}::{}", sender.record_key())
}

impl Keystore {
    /// Loads who holds our sender key for a group.
    pub(super) fn restore_holders(&mut self, key: &str, value: &[u8]) -> Result<(), RecordError> {
        let bad = RecordError::BadField("key");
        proto_bounds::check(value, &SENDER_KEY_SENT_FIELDS)?;
        let record =
            pb::SenderKeySentRecord::decode(value).map_err(|_| RecordError::BadProtobuf)?;
        check_format(record.format_version)?;
        let set = |devices: &[String]| {
            devices
                .iter()
                .map(|device| DeviceAddress::from_record_key(device).ok_or(bad))
                .collect::<Result<DeviceSet, _>>()
        };
        let holders = Holders {
            sent: set(&record.devices)?,
            offered: set(&record.offered)?,
        };
        self.sender_key_sent.insert(key.to_owned(), holders);
        Ok(())
    }

    pub(super) fn put_sender_key(
        &mut self,
        group: &str,
        sender: &DeviceAddress,
        record: SenderKeyRecord,
    ) {
        self.push_change(RecordChange {
            space: Space::SenderKey,
            key: sender_key_record_key(group, sender),
            value: Some(record.serialize()),
        });
        self.sender_keys
            .insert((group.to_owned(), sender.clone()), record);
    }

    /// Our sender-key distribution message for `group`, creating our chain if needed. A new
    /// chain while devices are listed as holding our key (our record was lost or unreadable,
    /// or our group address changed) means they hold another chain: they are forgotten, so the
    /// new one is distributed to them.
    pub fn own_sender_key_distribution<R: CryptoRng + ?Sized>(
        &mut self,
        group: &str,
        rng: &mut R,
    ) -> SenderKeyDistributionMessage {
        let sender = self.own.group_sender().clone();
        let mut record = self
            .sender_keys
            .get(&(group.to_owned(), sender.clone()))
            .cloned()
            .unwrap_or_default();
        let was_empty = record.is_empty();
        let message = record.create_distribution_message(rng);
        if was_empty {
            if self.sender_key_sent.remove(group).is_some() {
                self.delete(Space::SenderKeySent, group.to_owned());
            }
            self.put_sender_key(group, &sender, record);
        }
        message
    }

    /// Our sender-key distribution message for `group` if we have a chain there (none is
    /// created).
    pub fn current_own_sender_key<R: CryptoRng + ?Sized>(
        &self,
        group: &str,
        rng: &mut R,
    ) -> Option<SenderKeyDistributionMessage> {
        let sender = self.own.group_sender().clone();
        let mut record = self.sender_keys.get(&(group.to_owned(), sender))?.clone();
        if record.is_empty() {
            return None;
        }
        Some(record.create_distribution_message(rng))
    }

    /// Encrypts `plaintext` (already padded) with our sender key for `group` (creating it if
    /// needed).
    pub fn group_encrypt<R: CryptoRng + ?Sized>(
        &mut self,
        group: &str,
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>, MessagingError> {
        self.own_sender_key_distribution(group, rng);
        let sender = self.own.group_sender().clone();
        let mut record = self
            .sender_keys
            .get(&(group.to_owned(), sender.clone()))
            .cloned()
            .unwrap_or_default();
        let ciphertext = record.encrypt(plaintext, rng)?;
        self.put_sender_key(group, &sender, record);
        Ok(ciphertext)
    }

    /// Prepares the processing of a member's sender-key distribution message (applied with
    /// [`Keystore::commit`]); `pending` as in [`Keystore::group_decrypt`].
    pub fn process_distribution(
        &self,
        group: &str,
        sender: &DeviceAddress,
        bytes: &[u8],
        pending: &[SessionUpdate],
    ) -> Result<SessionUpdate, MessagingError> {
        let sender = self.lids.canonical(sender);
        let message =
            SenderKeyDistributionMessage::deserialize(bytes).map_err(DecryptError::from)?;
        let mut record = self
            .working_sender_key(pending, group, &sender)
            .unwrap_or_default();
        record.process_distribution_message(&message);
        Ok(SessionUpdate::SenderKey {
            group: group.to_owned(),
            sender,
            record,
        })
    }

    /// A copy of the sender-key record of `sender` (canonical) in `group` to work on: the
    /// latest uncommitted one among `pending`, else the one kept.
    pub(super) fn working_sender_key(
        &self,
        pending: &[SessionUpdate],
        group: &str,
        sender: &DeviceAddress,
    ) -> Option<SenderKeyRecord> {
        let uncommitted = pending.iter().rev().find_map(|update| match update {
            SessionUpdate::SenderKey {
                group: g,
                sender: s,
                record,
            } if g == group && s == sender => Some(record.clone()),
            _ => None,
        });
        uncommitted.or_else(|| {
            self.sender_keys
                .get(&(group.to_owned(), sender.clone()))
                .cloned()
        })
    }

    /// Decrypts a group message of `sender` without changing anything. `pending` holds updates
    /// of the same stanza not yet committed (a sender key distributed beside the message).
    pub fn group_decrypt(
        &self,
        group: &str,
        sender: &DeviceAddress,
        bytes: &[u8],
        pending: &[SessionUpdate],
    ) -> Result<(Vec<u8>, SessionUpdate), MessagingError> {
        let sender = self.lids.canonical(sender);
        let mut record = self
            .working_sender_key(pending, group, &sender)
            .ok_or(DecryptError::NoSession)?;
        let plaintext = record.decrypt(bytes)?;
        Ok((
            plaintext,
            SessionUpdate::SenderKey {
                group: group.to_owned(),
                sender,
                record,
            },
        ))
    }

    /// The devices among `devices` that do not hold our current sender key for `group` (none
    /// whose copy the server acknowledged).
    pub fn sender_key_missing<'a>(
        &self,
        group: &str,
        devices: impl IntoIterator<Item = &'a DeviceAddress>,
    ) -> Vec<DeviceAddress> {
        let holders = self.sender_key_sent.get(group);
        devices
            .into_iter()
            .filter(|device| {
                !holders.is_some_and(|holders| holders.sent.contains(&self.lids.canonical(device)))
            })
            .cloned()
            .collect()
    }

    /// Records that our sender key for `group` was handed to `devices` in a stanza the server
    /// has not acknowledged yet: they may hold it, and get it again with the next message
    /// unless the acknowledgement comes first ([`Keystore::confirm_sender_key`]).
    pub fn offer_sender_key<'a>(
        &mut self,
        group: &str,
        devices: impl IntoIterator<Item = &'a DeviceAddress>,
    ) {
        self.mark_holders(group, devices, Holding::Offered);
    }

    /// Records that `devices` hold our sender key for `group` (the server acknowledged the
    /// stanza that carried it).
    pub fn confirm_sender_key<'a>(
        &mut self,
        group: &str,
        devices: impl IntoIterator<Item = &'a DeviceAddress>,
    ) {
        self.mark_holders(group, devices, Holding::Sent);
    }

    /// Moves `devices` (by their canonical address) into `holding` for our sender key of
    /// `group`, out of the other set.
    fn mark_holders<'a>(
        &mut self,
        group: &str,
        devices: impl IntoIterator<Item = &'a DeviceAddress>,
        holding: Holding,
    ) {
        let canonical: Vec<DeviceAddress> = devices
            .into_iter()
            .map(|d| self.lids.canonical(d))
            .collect();
        let mut holders = self.sender_key_sent.get(group).cloned().unwrap_or_default();
        let (to, from) = match holding {
            Holding::Offered => (&mut holders.offered, &mut holders.sent),
            Holding::Sent => (&mut holders.sent, &mut holders.offered),
        };
        for device in &canonical {
            from.remove(device);
        }
        to.extend(canonical);
        self.put_holders(group, holders);
    }

    /// Forgets that `device` may hold our sender key for `group`, as if it was never handed out.
    #[cfg(test)]
    pub fn forget_sender_key_holder_for_testing(&mut self, group: &str, device: &DeviceAddress) {
        let device = self.lids.canonical(device);
        let mut holders = self.sender_key_sent.get(group).cloned().unwrap_or_default();
        holders.sent.remove(&device);
        holders.offered.remove(&device);
        self.put_holders(group, holders);
    }

    /// Whether `device` may hold our current sender key for `group`.
    #[cfg(any(test, feature = "internals-for-benches"))]
    pub fn holds_sender_key(&self, group: &str, device: &DeviceAddress) -> bool {
        let device = self.lids.canonical(device);
        self.sender_key_sent
            .get(group)
            .is_some_and(|holders| holders.all().any(|d| *d == device))
    }

    /// Rotates our sender key for `group` when a device that may hold it is no longer among
    /// the group's member devices (`members`, this device left out) or is in `replaced` (its
    /// address now names another device): the member left or was removed, or the device was
    /// unlinked, or its account registered again (WhatsApp Web `removeParticipantInfo`,
    /// `replaceParticipantInfo`, `updateGroupParticipantsInTransaction`; docs/messaging.md,
    /// "Sender-key rotation"). Returns whether it rotated.
    pub fn rotate_sender_key_if_departed(
        &mut self,
        group: &str,
        members: &[DeviceAddress],
        replaced: &[DeviceAddress],
    ) -> bool {
        let Some(holders) = self.sender_key_sent.get(group) else {
            return false;
        };
        let members: DeviceSet = members.iter().map(|d| self.lids.canonical(d)).collect();
        let replaced: DeviceSet = replaced.iter().map(|d| self.lids.canonical(d)).collect();
        let departed = holders.all().any(|holder| {
            let holder = self.lids.canonical(holder);
            !members.contains(&holder) || replaced.contains(&holder)
        });
        if departed {
            self.rotate_sender_key(group);
        }
        departed
    }

    /// Forgets who holds our sender key for `group` and drops our chain, so that the next
    /// message starts a new key distributed to the members of that moment.
    pub fn rotate_sender_key(&mut self, group: &str) {
        self.sender_key_sent.remove(group);
        self.delete(Space::SenderKeySent, group.to_owned());
        let sender = self.own.group_sender().clone();
        self.sender_keys.remove(&(group.to_owned(), sender.clone()));
        self.delete(Space::SenderKey, sender_key_record_key(group, &sender));
    }

    pub(super) fn put_holders(&mut self, group: &str, holders: Holders) {
        self.push_change(RecordChange {
            space: Space::SenderKeySent,
            key: group.to_owned(),
            value: Some(holders.record()),
        });
        self.sender_key_sent.insert(group.to_owned(), holders);
    }
}

/// Whether a device may hold our sender key (handed out, not acknowledged yet) or does.
#[derive(Clone, Copy)]
enum Holding {
    Offered,
    Sent,
}
