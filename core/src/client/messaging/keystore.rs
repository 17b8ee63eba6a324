//! The Signal state of one linked device as messaging uses it, and the records it persists.
//!
//! The records in memory are those loaded (at `Client::new` or on demand), and every change is
//! reported as a [`RecordChange`] for the caller to persist, in order, before it transmits
//! anything that depends on it. Operations that decrypt work on copies and change nothing when
//! they fail. The evictable records ([`is_evictable`]) are a cache: [`Keystore::evict`] drops
//! the least recently used ones whose changes were all taken, and the caller loads them again
//! when needed (docs/client.md, "Storage").
//!
//! Records (space, key → value):
//! - `Session`, `<user>.<device>@<server>` → [`SessionRecord`] bytes;
//! - `Identity`, same key → `walink.IdentityRecord`;
//! - `SenderKey`, `<group>::<sender record key>` → [`SenderKeyRecord`] bytes;
//! - `SenderKeySent`, `<group>` → `walink.SenderKeySentRecord` (devices holding our key, and
//!   devices it was handed to in a stanza not acknowledged yet);
//! - `DeviceList`, `<user>.0@<server>` → `walink.DeviceListRecord` (the user's last verified
//!   device list, [`super::device_list`]);
//! - `LidMapping`, `<pn user>` → `walink.LidMappingRecord`;
//! - `RetryBuffer`, `<message id>` → `walink.RetryEntryRecord`;
//! - `ReceivedIds`, `<user>.<device>@<server>` of the sender → `walink.ReceivedIdsRecord`.

use std::collections::{HashMap, VecDeque};

use prost::Message as _;
use rand_core::CryptoRng;

use crate::limits::{
    MESSAGING_MAX_FANOUT, MESSAGING_MAX_HELD_PER_IDENTITY, MESSAGING_MAX_RETRIES,
    MESSAGING_RECEIVED_IDS_PER_SENDER, MESSAGING_RETRY_BUFFER, MESSAGING_RETRY_BUFFER_BYTES,
    MESSAGING_RETRY_MAX_MESSAGE,
};
use crate::proto::walink as pb;
use crate::proto_bounds::{self, Field};
use crate::signal::{
    CiphertextMessage, DecryptError, EncryptError, IdentityKey, IdentityKeyPair, PreKeyBundle,
    PreKeyId, PreKeySource, PublicKey, RecordError, SenderKeyDistributionMessage, SenderKeyRecord,
    SessionRecord,
};
use crate::store::Space;

use super::super::config::IdentityPolicy;
use super::address::{DeviceAddress, LidMap};
use super::device_list::DeviceList;
use super::error::MessagingError;

/// Format version of the messaging records defined in `walink_messaging.proto`.
pub const MESSAGING_RECORD_FORMAT: u32 = 1;

/// Format version of `RetryEntryRecord` written now: 2 adds the recipients and the sender key
/// id; format 1 records still load (docs/decisions.md, "Messaging peers").
pub const RETRY_ENTRY_FORMAT: u32 = 2;

/// The devices of a sender-key-sent record (acknowledged and offered), counted before it is
/// decoded.
static SENDER_KEY_SENT_FIELDS: [Field; 2] = [
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

/// The per-device retry counts and the recipients of a retry-buffer record, counted before it
/// is decoded.
static RETRY_ENTRY_FIELDS: [Field; 2] = [
    Field {
        number: 6,
        max: MESSAGING_MAX_FANOUT,
        size: size_of::<pb::RetryCount>() + size_of::<(String, u32)>(),
        fields: &[],
    },
    Field {
        number: 7,
        max: MESSAGING_MAX_FANOUT,
        size: size_of::<String>() + size_of::<DeviceAddress>(),
        fields: &[],
    },
];

/// A change to persist: `value` `None` deletes the record.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordChange {
    /// The record's space.
    pub space: Space,
    /// The record's key.
    pub key: String,
    /// The new value, or `None` to delete.
    pub value: Option<Vec<u8>>,
}

impl core::fmt::Debug for RecordChange {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Values hold key material: only their length is shown.
        f.debug_struct("RecordChange")
            .field("space", &self.space)
            .field("key", &self.key)
            .field("value_len", &self.value.as_ref().map(Vec::len))
            .finish()
    }
}

/// Who this device is: the account's phone-number and LID addresses of this device, its Signal
/// identity and registration id.
#[derive(Clone, Debug)]
pub struct OwnIdentity {
    /// This device in the phone-number form (`<pn>:<device>@s.whatsapp.net`).
    pub pn: DeviceAddress,
    /// This device in the LID form, once known.
    pub lid: Option<DeviceAddress>,
    /// The device's Signal identity key pair.
    pub identity: IdentityKeyPair,
    /// The device's registration id.
    pub registration_id: u32,
}

impl OwnIdentity {
    /// The address our group messages are sent under: the LID when known (WhatsApp addresses
    /// groups by LID), else the phone number.
    pub fn group_sender(&self) -> &DeviceAddress {
        self.lid.as_ref().unwrap_or(&self.pn)
    }

    /// Whether `address` is a device of our own account (either form).
    pub fn is_own_user(&self, address: &DeviceAddress) -> bool {
        let matches = |own: &DeviceAddress| own.user == address.user && own.lid == address.lid;
        matches(&self.pn) || self.lid.as_ref().is_some_and(matches)
    }

    /// Whether `address` is exactly this device (either form).
    pub fn is_this_device(&self, address: &DeviceAddress) -> bool {
        self.is_own_user(address) && address.device == self.pn.device
    }
}

/// One sent message kept for re-encryption. Its `Debug` shows the message's length only.
#[derive(Clone, PartialEq)]
pub struct RetryEntry {
    /// The chat it was sent to.
    pub chat: String,
    /// The serialized `Message`, unpadded.
    pub message: Vec<u8>,
    /// When it was sent.
    pub sent_at: u64,
    /// For a group message: the key id of our sender key it used (a retry hands out our sender
    /// key only while that key is current).
    pub sender_key_id: Option<u32>,
    sequence: u64,
    retries: Vec<(String, u32)>,
    /// The record keys of the devices it was encrypted for (every member device for a group),
    /// sorted; `None` for an entry written before walink kept them (format 1).
    recipients: Option<Vec<String>>,
}

impl RetryEntry {
    /// The memory the entry counts against [`MESSAGING_RETRY_BUFFER_BYTES`].
    fn weight(&self) -> usize {
        let recipients = self
            .recipients
            .iter()
            .flatten()
            .map(|key| key.len() + core::mem::size_of::<String>())
            .sum::<usize>();
        self.message.len() + self.chat.len() + recipients + core::mem::size_of::<RetryEntry>()
    }
}

/// Why a retry request is not answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryDenied {
    /// The message is not kept (too old, too large, or never sent): nothing to answer with.
    NotKept,
    /// The device was not one the message was encrypted for (not a member of the group when
    /// it was sent).
    NotARecipient,
    /// The device asked more than [`MESSAGING_MAX_RETRIES`] times, or claimed a count beyond.
    TooManyRetries,
}

/// A message refused because the identity of its sender waits for approval: what a retry
/// receipt asking for it again needs (the stanza's id and addressing attributes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldMessage {
    /// The message id.
    pub id: String,
    /// The stanza's `from`.
    pub from: String,
    /// The stanza's `participant` (groups).
    pub participant: Option<String>,
    /// The stanza's `recipient` (own-device copies).
    pub recipient: Option<String>,
    /// The stanza's `t`.
    pub t: Option<String>,
}

/// The identity of one remote device: the key trusted, and (under [`IdentityPolicy::Strict`])
/// a new key waiting for the application's approval with the messages refused meanwhile.
#[derive(Clone, Debug, PartialEq)]
struct IdentityEntry {
    trusted: IdentityKey,
    pending: Option<IdentityKey>,
    held: Vec<HeldMessage>,
}

/// A remote device presented an identity key other than the one trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityNotice {
    /// The device (canonical form).
    pub address: DeviceAddress,
    /// The key it presented.
    pub identity: IdentityKey,
    /// The key trusted before.
    pub previous: IdentityKey,
    /// Whether the new key is trusted now (`AcceptAndNotify`) or waits for approval (`Strict`).
    pub accepted: bool,
}

impl core::fmt::Debug for RetryEntry {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RetryEntry")
            .field("chat", &self.chat)
            .field("message_len", &self.message.len())
            .field("sent_at", &self.sent_at)
            .field("retries", &self.retries)
            .finish_non_exhaustive()
    }
}

/// The messaging state of one linked device.
pub struct Keystore {
    own: OwnIdentity,
    lids: LidMap,
    sessions: HashMap<DeviceAddress, SessionRecord>,
    identities: HashMap<DeviceAddress, IdentityEntry>,
    identity_policy: IdentityPolicy,
    /// Identity changes not yet taken by [`Keystore::take_identity_notices`].
    identity_notices: Vec<IdentityNotice>,
    sender_keys: HashMap<(String, DeviceAddress), SenderKeyRecord>,
    sender_key_sent: HashMap<String, Holders>,
    /// Sorted by address (a list searched by bisection, not one more map type: docs/decisions.md,
    /// "wasm size").
    device_lists: Vec<(DeviceAddress, DeviceList)>,
    retry: HashMap<String, RetryEntry>,
    retry_sequence: u64,
    /// The sum of the kept entries' [`RetryEntry::weight`].
    retry_bytes: usize,
    received: HashMap<DeviceAddress, VecDeque<u64>>,
    changes: Vec<RecordChange>,
    /// When each evictable record in memory was last used (see [`Keystore::evict`]).
    used: HashMap<(Space, String), u64>,
    /// The clock of `used`.
    use_clock: u64,
}

impl core::fmt::Debug for Keystore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Keystore")
            .field("own", &self.own.pn)
            .field("sessions", &self.sessions.len())
            .field("sender_keys", &self.sender_keys.len())
            .field("lid_mappings", &self.lids.len())
            .field("retry_buffer", &self.retry.len())
            .field("cached", &self.used.len())
            .finish()
    }
}

/// A set of devices kept as a sorted list without repeats: it shares the slice sort with the
/// rest of the core instead of instantiating `BTreeSet`'s node code for one more type
/// (docs/decisions.md, "wasm size").
#[derive(Debug, Clone, Default)]
struct DeviceSet(Vec<DeviceAddress>);

impl DeviceSet {
    fn iter(&self) -> core::slice::Iter<'_, DeviceAddress> {
        self.0.iter()
    }

    fn contains(&self, device: &DeviceAddress) -> bool {
        self.0.binary_search(device).is_ok()
    }

    fn extend(&mut self, devices: impl IntoIterator<Item = DeviceAddress>) {
        self.0.extend(devices);
        self.0.sort_unstable();
        self.0.dedup();
    }

    fn remove(&mut self, device: &DeviceAddress) {
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
struct Holders {
    sent: DeviceSet,
    offered: DeviceSet,
}

impl Holders {
    fn all(&self) -> impl Iterator<Item = &DeviceAddress> {
        self.sent.iter().chain(self.offered.iter())
    }

    fn record(&self) -> Vec<u8> {
        pb::SenderKeySentRecord {
            format_version: Some(MESSAGING_RECORD_FORMAT),
            devices: self.sent.iter().map(DeviceAddress::record_key).collect(),
            offered: self.offered.iter().map(DeviceAddress::record_key).collect(),
        }
        .encode_to_vec()
    }
}

fn check_format(version: Option<u32>) -> Result<(), RecordError> {
    match version {
        Some(MESSAGING_RECORD_FORMAT) => Ok(()),
        other => Err(RecordError::UnsupportedFormat(other.unwrap_or_default())),
    }
}

fn sender_key_record_key(group: &str, sender: &DeviceAddress) -> String {
    format!("{group}::{}", sender.record_key())
}

impl Keystore {
    /// An empty keystore for this device.
    pub fn new(own: OwnIdentity) -> Keystore {
        Keystore {
            own,
            lids: LidMap::new(),
            sessions: HashMap::new(),
            identities: HashMap::new(),
            identity_policy: IdentityPolicy::default(),
            identity_notices: Vec::new(),
            sender_keys: HashMap::new(),
            sender_key_sent: HashMap::new(),
            device_lists: Vec::new(),
            retry: HashMap::new(),
            retry_sequence: 0,
            retry_bytes: 0,
            received: HashMap::new(),
            changes: Vec::new(),
            used: HashMap::new(),
            use_clock: 0,
        }
    }

    /// Loads one persisted record. Records of other spaces are the caller's business.
    pub fn restore(&mut self, space: Space, key: &str, value: &[u8]) -> Result<(), RecordError> {
        let bad = RecordError::BadField("key");
        match space {
            Space::Session => {
                let address = DeviceAddress::from_record_key(key).ok_or(bad)?;
                self.sessions
                    .insert(address, SessionRecord::deserialize(value)?);
            }
            Space::Identity => {
                let address = DeviceAddress::from_record_key(key).ok_or(bad)?;
                let record =
                    pb::IdentityRecord::decode(value).map_err(|_| RecordError::BadProtobuf)?;
                check_format(record.format_version)?;
                let raw: [u8; 32] = record
                    .public_key
                    .as_deref()
                    .and_then(|key| key.try_into().ok())
                    .ok_or(RecordError::BadField("public_key"))?;
                let pending = match record.pending_public_key.as_deref() {
                    None => None,
                    Some(key) => Some(IdentityKey(PublicKey::from_raw(
                        key.try_into()
                            .map_err(|_| RecordError::BadField("pending_public_key"))?,
                    ))),
                };
                if record.held.len() > MESSAGING_MAX_HELD_PER_IDENTITY {
                    return Err(RecordError::TooMany("held"));
                }
                let held = record
                    .held
                    .into_iter()
                    .map(|held| HeldMessage {
                        id: held.id.unwrap_or_default(),
                        from: held.from.unwrap_or_default(),
                        participant: held.participant,
                        recipient: held.recipient,
                        t: held.t,
                    })
                    .collect();
                self.identities.insert(
                    address,
                    IdentityEntry {
                        trusted: IdentityKey(PublicKey::from_raw(raw)),
                        pending,
                        held,
                    },
                );
            }
            Space::SenderKey => {
                let (group, sender) = key.split_once("::").ok_or(bad)?;
                let sender = DeviceAddress::from_record_key(sender).ok_or(bad)?;
                self.sender_keys.insert(
                    (group.to_owned(), sender),
                    SenderKeyRecord::deserialize(value)?,
                );
            }
            Space::SenderKeySent => {
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
            }
            Space::LidMapping => {
                let record =
                    pb::LidMappingRecord::decode(value).map_err(|_| RecordError::BadProtobuf)?;
                check_format(record.format_version)?;
                self.lids.insert(key, &record.lid_user.unwrap_or_default());
            }
            Space::RetryBuffer => {
                proto_bounds::check(value, &RETRY_ENTRY_FIELDS)?;
                let record =
                    pb::RetryEntryRecord::decode(value).map_err(|_| RecordError::BadProtobuf)?;
                let recipients = match record.format_version {
                    Some(MESSAGING_RECORD_FORMAT) => None,
                    Some(RETRY_ENTRY_FORMAT) => {
                        if record.recipients.len() > crate::limits::MESSAGING_MAX_FANOUT {
                            return Err(RecordError::TooMany("recipients"));
                        }
                        let mut recipients = record.recipients;
                        recipients.sort_unstable();
                        Some(recipients)
                    }
                    other => return Err(RecordError::UnsupportedFormat(other.unwrap_or_default())),
                };
                if record.retries.len() > crate::limits::MESSAGING_MAX_FANOUT {
                    return Err(RecordError::TooMany("retries"));
                }
                let sequence = record.sequence.unwrap_or_default();
                self.retry_sequence = self.retry_sequence.max(sequence.saturating_add(1));
                let entry = RetryEntry {
                    chat: record.chat.unwrap_or_default(),
                    message: record.message.unwrap_or_default(),
                    sent_at: record.sent_at.unwrap_or_default(),
                    sender_key_id: record.sender_key_id,
                    sequence,
                    retries: record
                        .retries
                        .into_iter()
                        .map(|r| (r.device.unwrap_or_default(), r.count.unwrap_or_default()))
                        .collect(),
                    recipients,
                };
                self.retry_bytes += entry.weight();
                if let Some(old) = self.retry.insert(key.to_owned(), entry) {
                    self.retry_bytes = self.retry_bytes.saturating_sub(old.weight());
                }
                self.trim_retry(0);
            }
            Space::DeviceList => {
                let address = DeviceAddress::from_record_key(key)
                    .filter(|address| address.device == 0)
                    .ok_or(bad)?;
                let list = DeviceList::decode(value)?;
                self.set_device_list(address, list);
            }
            Space::ReceivedIds => {
                let address = DeviceAddress::from_record_key(key).ok_or(bad)?;
                let record =
                    pb::ReceivedIdsRecord::decode(value).map_err(|_| RecordError::BadProtobuf)?;
                check_format(record.format_version)?;
                let skip = record
                    .hashes
                    .len()
                    .saturating_sub(MESSAGING_RECEIVED_IDS_PER_SENDER);
                self.received
                    .insert(address, record.hashes.into_iter().skip(skip).collect());
            }
            // Not a keystore record (the receiver hands over only the spaces above).
            _ => return Err(RecordError::BadField("space")),
        }
        self.mark_used(space, key);
        // A record stored under the phone-number form of a user whose LID is known (it was
        // not in memory when the mapping was learned, e.g. evicted): moved now, as then.
        let address = match space {
            Space::Session | Space::Identity | Space::ReceivedIds | Space::DeviceList => {
                DeviceAddress::from_record_key(key)
            }
            Space::SenderKey => key
                .split_once("::")
                .and_then(|(_, sender)| DeviceAddress::from_record_key(sender)),
            _ => None,
        };
        if let Some(address) = address
            && !address.lid
            && self.lids.canonical(&address) != address
        {
            self.move_to_lid(&address.user);
        }
        Ok(())
    }

    /// The changes made since the last call, in the order they must be applied.
    pub fn take_changes(&mut self) -> Vec<RecordChange> {
        core::mem::take(&mut self.changes)
    }

    /// This device's identity.
    pub fn own(&self) -> &OwnIdentity {
        &self.own
    }

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
    fn move_to_lid(&mut self, pn: &str) {
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

    /// Queues a change to persist; the record counts as used now (or, deleted, no longer as
    /// cached).
    fn push_change(&mut self, change: RecordChange) {
        if change.value.is_some() {
            self.mark_used(change.space, &change.key);
        } else {
            self.used.remove(&(change.space, change.key.clone()));
        }
        self.changes.push(change);
    }

    /// Marks the record `key` of `space`, now in memory, as used now.
    fn mark_used(&mut self, space: Space, key: &str) {
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
    fn drop_record(&mut self, space: Space, key: &str) {
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

    fn delete(&mut self, space: Space, key: String) {
        self.push_change(RecordChange {
            space,
            key,
            value: None,
        });
    }

    fn put_session(&mut self, address: &DeviceAddress, record: SessionRecord) {
        self.push_change(RecordChange {
            space: Space::Session,
            key: address.record_key(),
            value: Some(record.serialize()),
        });
        self.sessions.insert(address.clone(), record);
    }

    /// Trusts `identity` for `address` (first use, or a change accepted or approved): a key
    /// waiting for approval is dropped, its held messages stay to be asked for again.
    fn put_identity(&mut self, address: &DeviceAddress, identity: IdentityKey) {
        match self.identities.get_mut(address) {
            Some(entry) if entry.trusted == identity => return,
            Some(entry) => {
                entry.trusted = identity;
                entry.pending = None;
            }
            None => {
                self.identities.insert(
                    address.clone(),
                    IdentityEntry {
                        trusted: identity,
                        pending: None,
                        held: Vec::new(),
                    },
                );
            }
        }
        self.write_identity(address);
    }

    /// Queues the identity record of `address` as it is in memory.
    fn write_identity(&mut self, address: &DeviceAddress) {
        let Some(entry) = self.identities.get(address) else {
            return;
        };
        let record = pb::IdentityRecord {
            format_version: Some(MESSAGING_RECORD_FORMAT),
            public_key: Some(entry.trusted.0.raw().to_vec()),
            pending_public_key: entry.pending.map(|key| key.0.raw().to_vec()),
            held: entry
                .held
                .iter()
                .map(|held| pb::HeldMessage {
                    id: Some(held.id.clone()),
                    from: Some(held.from.clone()),
                    participant: held.participant.clone(),
                    recipient: held.recipient.clone(),
                    t: held.t.clone(),
                })
                .collect(),
        };
        self.push_change(RecordChange {
            space: Space::Identity,
            key: address.record_key(),
            value: Some(record.encode_to_vec()),
        });
    }

    fn put_sender_key(&mut self, group: &str, sender: &DeviceAddress, record: SenderKeyRecord) {
        self.push_change(RecordChange {
            space: Space::SenderKey,
            key: sender_key_record_key(group, sender),
            value: Some(record.serialize()),
        });
        self.sender_keys
            .insert((group.to_owned(), sender.clone()), record);
    }

    // --- 1:1 sessions ---

    /// Whether there is a session to encrypt for `address` with.
    pub fn has_session(&self, address: &DeviceAddress) -> bool {
        self.sessions
            .get(&self.lids.canonical(address))
            .is_some_and(SessionRecord::has_current_session)
    }

    /// The devices among `devices` without a session: the ones a bundle must be fetched for.
    pub fn devices_without_session<'a>(
        &self,
        devices: impl IntoIterator<Item = &'a DeviceAddress>,
    ) -> Vec<DeviceAddress> {
        devices
            .into_iter()
            .filter(|device| !self.has_session(device))
            .cloned()
            .collect()
    }

    /// The identity key trusted for `address`.
    pub fn identity(&self, address: &DeviceAddress) -> Option<IdentityKey> {
        self.identities
            .get(&self.lids.canonical(address))
            .map(|entry| entry.trusted)
    }

    /// A new identity key of `address` waiting for the application's approval.
    pub fn pending_identity(&self, address: &DeviceAddress) -> Option<IdentityKey> {
        self.identities
            .get(&self.lids.canonical(address))
            .and_then(|entry| entry.pending)
    }

    /// What the client does when a device's identity key changes.
    pub fn set_identity_policy(&mut self, policy: IdentityPolicy) {
        self.identity_policy = policy;
    }

    /// The identity changes seen since the last call (for `Event::IdentityChanged`).
    pub fn take_identity_notices(&mut self) -> Vec<IdentityNotice> {
        core::mem::take(&mut self.identity_notices)
    }

    /// The key trusted for `address` (canonical): its identity record, else the current
    /// session's remote identity.
    fn trusted_identity(&self, address: &DeviceAddress) -> Option<IdentityKey> {
        self.identities
            .get(address)
            .map(|entry| entry.trusted)
            .or_else(|| {
                self.sessions
                    .get(address)
                    .and_then(SessionRecord::remote_identity)
            })
    }

    /// Whether `address` (canonical) may use `identity` now: the key trusted, or any key for a
    /// device never seen, or a new key under [`IdentityPolicy::AcceptAndNotify`] (reported
    /// when it is committed). Under [`IdentityPolicy::Strict`] a new key is refused; it is
    /// recorded as pending (reported once per key) with `held`, the message it came with.
    fn admit_identity(
        &mut self,
        address: &DeviceAddress,
        identity: IdentityKey,
        held: Option<HeldMessage>,
    ) -> Result<(), MessagingError> {
        let Some(previous) = self.trusted_identity(address) else {
            return Ok(());
        };
        if previous == identity || self.identity_policy == IdentityPolicy::AcceptAndNotify {
            return Ok(());
        }
        let entry = self
            .identities
            .entry(address.clone())
            .or_insert_with(|| IdentityEntry {
                trusted: previous,
                pending: None,
                held: Vec::new(),
            });
        let new_key = entry.pending != Some(identity);
        entry.pending = Some(identity);
        if let Some(held) = held
            && !entry.held.iter().any(|h| h.id == held.id)
        {
            if entry.held.len() >= MESSAGING_MAX_HELD_PER_IDENTITY {
                entry.held.remove(0);
            }
            entry.held.push(held);
        }
        if new_key {
            self.identity_notices.push(IdentityNotice {
                address: address.clone(),
                identity,
                previous,
                accepted: false,
            });
        }
        self.write_identity(address);
        Err(MessagingError::UntrustedIdentity {
            address: address.clone(),
        })
    }

    /// Approves the key waiting for approval for `address`, if it is `identity`: it becomes the
    /// trusted key, and the messages held for it are returned (the caller asks for them again).
    /// `None` when no such key waits.
    pub fn approve_identity(
        &mut self,
        address: &DeviceAddress,
        identity: IdentityKey,
    ) -> Option<Vec<HeldMessage>> {
        let address = self.lids.canonical(address);
        let entry = self.identities.get_mut(&address)?;
        if entry.pending != Some(identity) {
            return None;
        }
        entry.trusted = identity;
        entry.pending = None;
        let held = core::mem::take(&mut entry.held);
        self.write_identity(&address);
        Some(held)
    }

    /// The remote registration id of the current session with `address`.
    pub fn remote_registration_id(&self, address: &DeviceAddress) -> Option<u32> {
        self.sessions
            .get(&self.lids.canonical(address))
            .and_then(SessionRecord::remote_registration_id)
    }

    /// Starts a session with `address` from its prekey bundle (the signed prekey's signature is
    /// verified first). A bundle under an identity key other than the trusted one follows the
    /// identity policy: accepted and reported, or (strict) refused with
    /// [`MessagingError::UntrustedIdentity`] until the key is approved.
    pub fn process_bundle<R: CryptoRng + ?Sized>(
        &mut self,
        address: &DeviceAddress,
        bundle: &PreKeyBundle,
        rng: &mut R,
    ) -> Result<(), MessagingError> {
        let address = self.lids.canonical(address);
        let mut record = self.sessions.get(&address).cloned().unwrap_or_default();
        record.process_bundle(bundle, &self.own.identity, self.own.registration_id, rng)?;
        self.admit_identity(&address, bundle.identity_key, None)?;
        self.put_session(&address, record);
        self.accept_identity(&address, bundle.identity_key);
        Ok(())
    }

    /// Trusts `identity` for `address` (canonical) after it was admitted, reporting a change.
    fn accept_identity(&mut self, address: &DeviceAddress, identity: IdentityKey) {
        if let Some(previous) = self.trusted_identity(address)
            && previous != identity
        {
            self.identity_notices.push(IdentityNotice {
                address: address.clone(),
                identity,
                previous,
                accepted: true,
            });
        }
        self.put_identity(address, identity);
    }

    /// Drops the session with `address` (a retry receipt with fresh keys replaces it).
    pub fn delete_session(&mut self, address: &DeviceAddress) {
        let address = self.lids.canonical(address);
        if self.sessions.remove(&address).is_some() {
            self.delete(Space::Session, address.record_key());
        }
    }

    /// Encrypts `plaintext` (already padded) for `address`.
    pub fn encrypt(
        &mut self,
        address: &DeviceAddress,
        plaintext: &[u8],
    ) -> Result<CiphertextMessage, MessagingError> {
        let address = self.lids.canonical(address);
        let mut record = self
            .sessions
            .get(&address)
            .cloned()
            .ok_or(EncryptError::NoSession)?;
        let message = record.encrypt(plaintext)?;
        self.put_session(&address, record);
        Ok(message)
    }

    /// Decrypts a `msg` or `pkmsg` from `address` without changing anything: the returned
    /// [`SessionUpdate`] is applied with [`Keystore::commit`] once the whole stanza decrypted.
    /// `pending` holds the updates of the same stanza not yet committed: a second message for
    /// the same session continues from the first one's state (its keys are not used twice).
    pub fn decrypt<R: CryptoRng + ?Sized, P: PreKeySource + ?Sized>(
        &self,
        address: &DeviceAddress,
        pre_key_message: bool,
        bytes: &[u8],
        pending: &[SessionUpdate],
        (pre_keys, rng): (&P, &mut R),
    ) -> Result<(Vec<u8>, SessionUpdate), MessagingError> {
        let address = self.lids.canonical(address);
        let from_pending = pending.iter().rev().find_map(|update| match update {
            SessionUpdate::Session {
                address: a, record, ..
            } if *a == address => Some(record.as_ref().clone()),
            _ => None,
        });
        let mut record = match from_pending {
            Some(record) => record,
            None => self.sessions.get(&address).cloned().unwrap_or_default(),
        };
        let (plaintext, consumed, identity) = if pre_key_message {
            let parsed = crate::signal::PreKeySignalMessage::deserialize(bytes)
                .map_err(DecryptError::from)?;
            let identity = *parsed.identity_key();
            let result = record.decrypt_pre_key_message(
                bytes,
                &self.own.identity,
                self.own.registration_id,
                pre_keys,
                rng,
            )?;
            (result.plaintext, result.consumed_pre_key, Some(identity))
        } else {
            if !record.has_current_session() && record.archived_sessions() == 0 {
                return Err(DecryptError::NoSession.into());
            }
            (record.decrypt_message(bytes, rng)?, None, None)
        };
        Ok((
            plaintext,
            SessionUpdate::Session {
                address,
                record: Box::new(record),
                identity,
                consumed_pre_key: consumed,
            },
        ))
    }

    // --- groups ---

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
    fn working_sender_key(
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

    /// Checks the identity keys the prepared `updates` bring (authenticated: their messages
    /// decrypted) against the identity policy, before [`Keystore::commit`]: under
    /// [`IdentityPolicy::Strict`] a changed key is refused (nothing may be committed), recorded
    /// as waiting for approval and `held` is kept to be asked for again.
    pub fn admit_identities(
        &mut self,
        updates: &[SessionUpdate],
        held: &HeldMessage,
    ) -> Result<(), MessagingError> {
        for update in updates {
            if let SessionUpdate::Session {
                address,
                identity: Some(identity),
                ..
            } = update
            {
                self.admit_identity(address, *identity, Some(held.clone()))?;
            }
        }
        Ok(())
    }

    /// Applies updates prepared by the decrypting operations. Returns the one-time prekeys they
    /// consumed (the caller deletes those).
    pub fn commit(&mut self, updates: Vec<SessionUpdate>) -> Vec<PreKeyId> {
        let mut consumed = Vec::new();
        for update in updates {
            match update {
                SessionUpdate::Session {
                    address,
                    record,
                    identity,
                    consumed_pre_key,
                } => {
                    self.put_session(&address, *record);
                    if let Some(identity) = identity {
                        self.accept_identity(&address, identity);
                    }
                    consumed.extend(consumed_pre_key);
                }
                SessionUpdate::SenderKey {
                    group,
                    sender,
                    record,
                } => self.put_sender_key(&group, &sender, record),
            }
        }
        consumed
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
        let canonical: Vec<DeviceAddress> = devices
            .into_iter()
            .map(|d| self.lids.canonical(d))
            .collect();
        let mut holders = self.sender_key_sent.get(group).cloned().unwrap_or_default();
        for device in &canonical {
            holders.sent.remove(device);
        }
        holders.offered.extend(canonical);
        self.put_holders(group, holders);
    }

    /// Records that `devices` hold our sender key for `group` (the server acknowledged the
    /// stanza that carried it).
    pub fn confirm_sender_key<'a>(
        &mut self,
        group: &str,
        devices: impl IntoIterator<Item = &'a DeviceAddress>,
    ) {
        let canonical: Vec<DeviceAddress> = devices
            .into_iter()
            .map(|d| self.lids.canonical(d))
            .collect();
        let mut holders = self.sender_key_sent.get(group).cloned().unwrap_or_default();
        for device in &canonical {
            holders.offered.remove(device);
        }
        holders.sent.extend(canonical);
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

    fn put_holders(&mut self, group: &str, holders: Holders) {
        self.push_change(RecordChange {
            space: Space::SenderKeySent,
            key: group.to_owned(),
            value: Some(holders.record()),
        });
        self.sender_key_sent.insert(group.to_owned(), holders);
    }

    // --- device lists ---

    /// The last verified device list of `user` (any device of the user names it).
    pub fn device_list(&self, user: &DeviceAddress) -> Option<&DeviceList> {
        let address = self.lids.canonical(&user.with_device(0));
        let at = self.device_list_at(&address).ok()?;
        self.device_lists.get(at).map(|(_, list)| list)
    }

    /// Stores a newly verified device list of `user`.
    pub fn put_device_list(&mut self, user: &DeviceAddress, list: DeviceList) {
        let address = self.lids.canonical(&user.with_device(0));
        self.push_change(RecordChange {
            space: Space::DeviceList,
            key: address.record_key(),
            value: Some(list.encode()),
        });
        self.set_device_list(address, list);
    }

    fn device_list_at(&self, address: &DeviceAddress) -> Result<usize, usize> {
        self.device_lists
            .binary_search_by(|(stored, _)| stored.cmp(address))
    }

    fn set_device_list(&mut self, address: DeviceAddress, list: DeviceList) {
        match self.device_list_at(&address) {
            Ok(at) => {
                if let Some(entry) = self.device_lists.get_mut(at) {
                    entry.1 = list;
                }
            }
            Err(at) => self.device_lists.insert(at, (address, list)),
        }
    }

    fn take_device_list(&mut self, address: &DeviceAddress) -> Option<DeviceList> {
        let at = self.device_list_at(address).ok()?;
        Some(self.device_lists.remove(at).1)
    }

    // --- received message ids ---

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

    fn put_received(&mut self, address: &DeviceAddress) {
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

    // --- retry buffer ---

    /// Keeps a sent message for retries with the devices it was encrypted for (for a group:
    /// every member device, and the key id of our sender key it used), dropping the oldest
    /// beyond [`MESSAGING_RETRY_BUFFER`] entries or [`MESSAGING_RETRY_BUFFER_BYTES`]. A message
    /// larger than [`MESSAGING_RETRY_MAX_MESSAGE`] is not kept.
    pub fn remember_sent<'a>(
        &mut self,
        id: &str,
        (chat, message): (&str, &[u8]),
        recipients: impl IntoIterator<Item = &'a DeviceAddress>,
        sender_key_id: Option<u32>,
        now: u64,
    ) {
        if message.len() > MESSAGING_RETRY_MAX_MESSAGE {
            return;
        }
        let mut recipients: Vec<String> = recipients
            .into_iter()
            .map(|device| self.lids.canonical(device).record_key())
            .collect();
        recipients.sort_unstable();
        recipients.dedup();
        let entry = RetryEntry {
            chat: chat.to_owned(),
            message: message.to_vec(),
            sent_at: now,
            sender_key_id,
            sequence: self.retry_sequence,
            retries: Vec::new(),
            recipients: Some(recipients),
        };
        self.retry_sequence = self.retry_sequence.saturating_add(1);
        self.trim_retry(entry.weight());
        self.put_retry(id, entry);
    }

    /// Drops the oldest kept messages (from memory and the store) until one more of `weight`
    /// bytes fits both bounds of the buffer.
    fn trim_retry(&mut self, weight: usize) {
        let slots = usize::from(weight > 0);
        while self.retry.len() + slots > MESSAGING_RETRY_BUFFER
            || (self.retry_bytes + weight > MESSAGING_RETRY_BUFFER_BYTES && !self.retry.is_empty())
        {
            let oldest = self
                .retry
                .iter()
                .min_by_key(|(_, entry)| entry.sequence)
                .map(|(id, _)| id.clone());
            let Some(oldest) = oldest else {
                break;
            };
            if let Some(entry) = self.retry.remove(&oldest) {
                self.retry_bytes = self.retry_bytes.saturating_sub(entry.weight());
            }
            self.delete(Space::RetryBuffer, oldest);
        }
    }

    fn put_retry(&mut self, id: &str, entry: RetryEntry) {
        let record = pb::RetryEntryRecord {
            format_version: Some(if entry.recipients.is_some() {
                RETRY_ENTRY_FORMAT
            } else {
                MESSAGING_RECORD_FORMAT
            }),
            chat: Some(entry.chat.clone()),
            message: Some(entry.message.clone()),
            sent_at: Some(entry.sent_at),
            sequence: Some(entry.sequence),
            retries: entry
                .retries
                .iter()
                .map(|(device, count)| pb::RetryCount {
                    device: Some(device.clone()),
                    count: Some(*count),
                })
                .collect(),
            recipients: entry.recipients.clone().unwrap_or_default(),
            sender_key_id: entry.sender_key_id,
        };
        self.push_change(RecordChange {
            space: Space::RetryBuffer,
            key: id.to_owned(),
            value: Some(record.encode_to_vec()),
        });
        self.retry_bytes += entry.weight();
        if let Some(old) = self.retry.insert(id.to_owned(), entry) {
            self.retry_bytes = self.retry_bytes.saturating_sub(old.weight());
        }
    }

    /// A kept message.
    pub fn sent_message(&self, id: &str) -> Option<&RetryEntry> {
        self.retry.get(id)
    }

    /// How many messages the retry buffer holds.
    pub fn retry_buffer_len(&self) -> usize {
        self.retry.len()
    }

    /// Whether `device` may have message `id` again: it must be one of the devices the message
    /// was encrypted for (a member device at send time for a group; for an entry kept before
    /// walink recorded them, a device of the 1:1 chat's user or of our own account, never for
    /// a group), ask at most [`MESSAGING_MAX_RETRIES`] times and claim no higher `count`. An
    /// answered request is counted (and persisted).
    pub fn take_retry(
        &mut self,
        id: &str,
        device: &DeviceAddress,
        count: u32,
    ) -> Result<RetryEntry, RetryDenied> {
        let entry = self.retry.get(id).ok_or(RetryDenied::NotKept)?;
        if !self.was_recipient(entry, device) {
            return Err(RetryDenied::NotARecipient);
        }
        if count > MESSAGING_MAX_RETRIES {
            return Err(RetryDenied::TooManyRetries);
        }
        let key = self.lids.canonical(device).record_key();
        let mut entry = entry.clone();
        let served = match entry.retries.iter_mut().find(|(d, _)| *d == key) {
            Some((_, served)) => served,
            None => {
                entry.retries.push((key, 0));
                let last = entry.retries.len() - 1;
                &mut entry.retries.get_mut(last).ok_or(RetryDenied::NotKept)?.1
            }
        };
        if *served >= MESSAGING_MAX_RETRIES {
            return Err(RetryDenied::TooManyRetries);
        }
        *served += 1;
        self.put_retry(id, entry.clone());
        Ok(entry)
    }

    /// Whether `device` is among the devices `entry` was encrypted for, in any form it may
    /// have been recorded under (the phone-number form when its LID was not known yet).
    fn was_recipient(&self, entry: &RetryEntry, device: &DeviceAddress) -> bool {
        let Some(recipients) = &entry.recipients else {
            let chat = DeviceAddress::parse(&entry.chat);
            return match chat {
                Ok(chat) => self.lids.same_user(&chat, device) || self.own.is_own_user(device),
                Err(_) => false,
            };
        };
        let canonical = self.lids.canonical(device);
        let mut forms = vec![canonical.record_key(), device.record_key()];
        if canonical.lid
            && let Some(pn) = self.lids.pn_for(&canonical.user)
        {
            forms.push(
                DeviceAddress {
                    user: pn.to_owned(),
                    device: canonical.device,
                    lid: false,
                }
                .record_key(),
            );
        }
        forms
            .iter()
            .any(|form| recipients.binary_search(form).is_ok())
    }
}

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

/// The remembered form of a received message id: the first 8 bytes of
/// SHA-256(group or "" || 0x00 || id). A message id is unique per sending device, so the 1:1
/// chat (implied by the sender, or the recipient of an own copy) is not part of it.
fn received_hash(group: Option<&str>, id: &str) -> u64 {
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

/// A change prepared by a decrypting operation, applied by [`Keystore::commit`].
#[derive(Clone, Debug)]
pub enum SessionUpdate {
    /// A 1:1 session advanced (or was created by a prekey message).
    Session {
        /// The remote device (canonical form).
        address: DeviceAddress,
        /// The new record.
        record: Box<SessionRecord>,
        /// The identity a prekey message carried.
        identity: Option<IdentityKey>,
        /// The one-time prekey the message consumed.
        consumed_pre_key: Option<PreKeyId>,
    },
    /// A sender-key chain advanced or was added.
    SenderKey {
        /// The group.
        group: String,
        /// The sender (canonical form).
        sender: DeviceAddress,
        /// The new record.
        record: SenderKeyRecord,
    },
}
