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
//! - `SenderKeySent`, `<group>` → `walink.SenderKeySentRecord` (devices holding our key);
//! - `LidMapping`, `<pn user>` → `walink.LidMappingRecord`;
//! - `RetryBuffer`, `<message id>` → `walink.RetryEntryRecord`;
//! - `ReceivedIds`, `<user>.<device>@<server>` of the sender → `walink.ReceivedIdsRecord`.

use std::collections::{HashMap, VecDeque};

use prost::Message as _;
use rand_core::CryptoRng;

use crate::limits::{
    MESSAGING_MAX_FANOUT, MESSAGING_MAX_RETRIES, MESSAGING_RECEIVED_IDS_PER_SENDER,
    MESSAGING_RETRY_BUFFER, MESSAGING_RETRY_MAX_MESSAGE,
};
use crate::proto::walink as pb;
use crate::proto_bounds::{self, Field};
use crate::signal::{
    CiphertextMessage, DecryptError, EncryptError, IdentityKey, IdentityKeyPair, PreKeyBundle,
    PreKeyId, PreKeySource, PublicKey, RecordError, SenderKeyDistributionMessage, SenderKeyRecord,
    SessionRecord,
};

use super::address::{DeviceAddress, LidMap};
use super::error::MessagingError;

/// Format version of the messaging records defined in `walink_messaging.proto`.
pub const MESSAGING_RECORD_FORMAT: u32 = 1;

/// The devices of a sender-key-sent record, counted before it is decoded.
static SENDER_KEY_SENT_FIELDS: [Field; 1] = [Field {
    number: 2,
    max: MESSAGING_MAX_FANOUT,
    size: size_of::<String>() + size_of::<DeviceAddress>(),
    fields: &[],
}];

/// The per-device retry counts of a retry-buffer record, counted before it is decoded.
static RETRY_ENTRY_FIELDS: [Field; 1] = [Field {
    number: 6,
    max: MESSAGING_MAX_FANOUT,
    size: size_of::<pb::RetryCount>() + size_of::<(String, u32)>(),
    fields: &[],
}];

/// The kind of a persisted messaging record (maps one to one onto `store::Space`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordSpace {
    /// A Signal session record with one remote device.
    Session,
    /// The identity key of one remote device.
    Identity,
    /// A sender-key record of one sender in one group.
    SenderKey,
    /// The devices that hold our sender key in one group.
    SenderKeySent,
    /// The LID of one phone-number user.
    LidMapping,
    /// One sent message kept for retries.
    RetryBuffer,
    /// The ids of the messages recently received from one device.
    ReceivedIds,
}

/// A change to persist: `value` `None` deletes the record.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordChange {
    /// The record's space.
    pub space: RecordSpace,
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
    sequence: u64,
    retries: Vec<(String, u32)>,
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
    identities: HashMap<DeviceAddress, IdentityKey>,
    sender_keys: HashMap<(String, DeviceAddress), SenderKeyRecord>,
    sender_key_sent: HashMap<String, DeviceSet>,
    retry: HashMap<String, RetryEntry>,
    retry_sequence: u64,
    received: HashMap<DeviceAddress, VecDeque<u64>>,
    changes: Vec<RecordChange>,
    /// When each evictable record in memory was last used (see [`Keystore::evict`]).
    used: HashMap<(RecordSpace, String), u64>,
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
    fn len(&self) -> usize {
        self.0.len()
    }

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
            sender_keys: HashMap::new(),
            sender_key_sent: HashMap::new(),
            retry: HashMap::new(),
            retry_sequence: 0,
            received: HashMap::new(),
            changes: Vec::new(),
            used: HashMap::new(),
            use_clock: 0,
        }
    }

    /// Loads one persisted record. Records of other spaces are the caller's business.
    pub fn restore(
        &mut self,
        space: RecordSpace,
        key: &str,
        value: &[u8],
    ) -> Result<(), RecordError> {
        let bad = RecordError::BadField("key");
        match space {
            RecordSpace::Session => {
                let address = DeviceAddress::from_record_key(key).ok_or(bad)?;
                self.sessions
                    .insert(address, SessionRecord::deserialize(value)?);
            }
            RecordSpace::Identity => {
                let address = DeviceAddress::from_record_key(key).ok_or(bad)?;
                let record =
                    pb::IdentityRecord::decode(value).map_err(|_| RecordError::BadProtobuf)?;
                check_format(record.format_version)?;
                let raw: [u8; 32] = record
                    .public_key
                    .as_deref()
                    .and_then(|key| key.try_into().ok())
                    .ok_or(RecordError::BadField("public_key"))?;
                let identity = IdentityKey(PublicKey::from_raw(raw));
                self.identities.insert(address, identity);
            }
            RecordSpace::SenderKey => {
                let (group, sender) = key.split_once("::").ok_or(bad)?;
                let sender = DeviceAddress::from_record_key(sender).ok_or(bad)?;
                self.sender_keys.insert(
                    (group.to_owned(), sender),
                    SenderKeyRecord::deserialize(value)?,
                );
            }
            RecordSpace::SenderKeySent => {
                proto_bounds::check(value, &SENDER_KEY_SENT_FIELDS)?;
                let record =
                    pb::SenderKeySentRecord::decode(value).map_err(|_| RecordError::BadProtobuf)?;
                check_format(record.format_version)?;
                let devices = record
                    .devices
                    .iter()
                    .map(|device| DeviceAddress::from_record_key(device).ok_or(bad))
                    .collect::<Result<DeviceSet, _>>()?;
                self.sender_key_sent.insert(key.to_owned(), devices);
            }
            RecordSpace::LidMapping => {
                let record =
                    pb::LidMappingRecord::decode(value).map_err(|_| RecordError::BadProtobuf)?;
                check_format(record.format_version)?;
                self.lids.insert(key, &record.lid_user.unwrap_or_default());
            }
            RecordSpace::RetryBuffer => {
                proto_bounds::check(value, &RETRY_ENTRY_FIELDS)?;
                let record =
                    pb::RetryEntryRecord::decode(value).map_err(|_| RecordError::BadProtobuf)?;
                check_format(record.format_version)?;
                let sequence = record.sequence.unwrap_or_default();
                self.retry_sequence = self.retry_sequence.max(sequence.saturating_add(1));
                self.retry.insert(
                    key.to_owned(),
                    RetryEntry {
                        chat: record.chat.unwrap_or_default(),
                        message: record.message.unwrap_or_default(),
                        sent_at: record.sent_at.unwrap_or_default(),
                        sequence,
                        retries: record
                            .retries
                            .into_iter()
                            .map(|r| (r.device.unwrap_or_default(), r.count.unwrap_or_default()))
                            .collect(),
                    },
                );
            }
            RecordSpace::ReceivedIds => {
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
        }
        self.mark_used(space, key);
        // A record stored under the phone-number form of a user whose LID is known (it was
        // not in memory when the mapping was learned, e.g. evicted): moved now, as then.
        let address = match space {
            RecordSpace::Session | RecordSpace::Identity | RecordSpace::ReceivedIds => {
                DeviceAddress::from_record_key(key)
            }
            RecordSpace::SenderKey => key
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
            space: RecordSpace::LidMapping,
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
                self.delete(RecordSpace::SenderKey, sender_key_record_key(&group, &old));
                if !self.sender_keys.contains_key(&(group.clone(), new.clone())) {
                    self.put_sender_key(&group, &new, record);
                }
            }
        }
        let groups: Vec<String> = self
            .sender_key_sent
            .iter()
            .filter(|(_, devices)| devices.iter().any(|d| !d.lid && d.user == pn))
            .map(|(group, _)| group.clone())
            .collect();
        for group in groups {
            if let Some(devices) = self.sender_key_sent.remove(&group) {
                let devices: DeviceSet = devices.iter().map(|d| self.lids.canonical(d)).collect();
                self.sender_key_sent
                    .insert(group.clone(), DeviceSet::default());
                self.mark_sender_key_sent(&group, devices.iter());
            }
        }
        for old in moved {
            let new = self.lids.canonical(&old);
            if let Some(record) = self.sessions.remove(&old) {
                self.delete(RecordSpace::Session, old.record_key());
                if !self.sessions.contains_key(&new) {
                    self.put_session(&new, record);
                }
            }
            if let Some(identity) = self.identities.remove(&old) {
                self.delete(RecordSpace::Identity, old.record_key());
                if !self.identities.contains_key(&new) {
                    self.put_identity(&new, identity);
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
                self.delete(RecordSpace::ReceivedIds, old.record_key());
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
    fn mark_used(&mut self, space: RecordSpace, key: &str) {
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
    pub fn touch(&mut self, space: RecordSpace, key: &str) {
        if self.is_cached(space, key) {
            self.mark_used(space, key);
        }
    }

    /// Whether the evictable record `key` of `space` is in memory.
    pub fn is_cached(&self, space: RecordSpace, key: &str) -> bool {
        self.used.contains_key(&(space, key.to_owned()))
    }

    /// Whether a change of the record `key` of `space` waits for [`Keystore::take_changes`].
    pub fn has_pending_change(&self, space: RecordSpace, key: &str) -> bool {
        self.changes
            .iter()
            .any(|change| change.space == space && change.key == key)
    }

    /// How many evictable records (sessions, identities, sender keys, sender-key-sent lists,
    /// received-id lists) are in memory.
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
        pinned: impl Fn(RecordSpace, &str) -> bool,
    ) -> Vec<(RecordSpace, String)> {
        if self.used.len() <= limit {
            return Vec::new();
        }
        let mut candidates: Vec<(u64, RecordSpace, String)> = self
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
    fn drop_record(&mut self, space: RecordSpace, key: &str) {
        match space {
            RecordSpace::Session => {
                if let Some(address) = DeviceAddress::from_record_key(key) {
                    self.sessions.remove(&address);
                }
            }
            RecordSpace::Identity => {
                if let Some(address) = DeviceAddress::from_record_key(key) {
                    self.identities.remove(&address);
                }
            }
            RecordSpace::SenderKey => {
                if let Some((group, sender)) = key.split_once("::")
                    && let Some(sender) = DeviceAddress::from_record_key(sender)
                {
                    self.sender_keys.remove(&(group.to_owned(), sender));
                }
            }
            RecordSpace::SenderKeySent => {
                self.sender_key_sent.remove(key);
            }
            RecordSpace::ReceivedIds => {
                if let Some(address) = DeviceAddress::from_record_key(key) {
                    self.received.remove(&address);
                }
            }
            RecordSpace::LidMapping | RecordSpace::RetryBuffer => {}
        }
    }

    fn delete(&mut self, space: RecordSpace, key: String) {
        self.push_change(RecordChange {
            space,
            key,
            value: None,
        });
    }

    fn put_session(&mut self, address: &DeviceAddress, record: SessionRecord) {
        self.push_change(RecordChange {
            space: RecordSpace::Session,
            key: address.record_key(),
            value: Some(record.serialize()),
        });
        self.sessions.insert(address.clone(), record);
    }

    fn put_identity(&mut self, address: &DeviceAddress, identity: IdentityKey) {
        if self.identities.get(address) == Some(&identity) {
            return;
        }
        self.push_change(RecordChange {
            space: RecordSpace::Identity,
            key: address.record_key(),
            value: Some(
                pb::IdentityRecord {
                    format_version: Some(MESSAGING_RECORD_FORMAT),
                    public_key: Some(identity.0.raw().to_vec()),
                }
                .encode_to_vec(),
            ),
        });
        self.identities.insert(address.clone(), identity);
    }

    fn put_sender_key(&mut self, group: &str, sender: &DeviceAddress, record: SenderKeyRecord) {
        self.push_change(RecordChange {
            space: RecordSpace::SenderKey,
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

    /// The identity key last seen for `address`.
    pub fn identity(&self, address: &DeviceAddress) -> Option<IdentityKey> {
        self.identities.get(&self.lids.canonical(address)).copied()
    }

    /// The remote registration id of the current session with `address`.
    pub fn remote_registration_id(&self, address: &DeviceAddress) -> Option<u32> {
        self.sessions
            .get(&self.lids.canonical(address))
            .and_then(SessionRecord::remote_registration_id)
    }

    /// Starts a session with `address` from its prekey bundle (the signed prekey's signature is
    /// verified first).
    pub fn process_bundle<R: CryptoRng + ?Sized>(
        &mut self,
        address: &DeviceAddress,
        bundle: &PreKeyBundle,
        rng: &mut R,
    ) -> Result<(), MessagingError> {
        let address = self.lids.canonical(address);
        let mut record = self.sessions.get(&address).cloned().unwrap_or_default();
        record.process_bundle(bundle, &self.own.identity, self.own.registration_id, rng)?;
        self.put_session(&address, record);
        self.put_identity(&address, bundle.identity_key);
        Ok(())
    }

    /// Drops the session with `address` (a retry receipt with fresh keys replaces it).
    pub fn delete_session(&mut self, address: &DeviceAddress) {
        let address = self.lids.canonical(address);
        if self.sessions.remove(&address).is_some() {
            self.delete(RecordSpace::Session, address.record_key());
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
    pub fn decrypt<R: CryptoRng + ?Sized, P: PreKeySource + ?Sized>(
        &self,
        address: &DeviceAddress,
        pre_key_message: bool,
        bytes: &[u8],
        pre_keys: &P,
        rng: &mut R,
    ) -> Result<(Vec<u8>, SessionUpdate), MessagingError> {
        let address = self.lids.canonical(address);
        let mut record = self.sessions.get(&address).cloned().unwrap_or_default();
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

    /// Our sender-key distribution message for `group`, creating our chain if needed.
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
            self.put_sender_key(group, &sender, record);
        }
        message
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
    /// [`Keystore::commit`]).
    pub fn process_distribution(
        &self,
        group: &str,
        sender: &DeviceAddress,
        bytes: &[u8],
    ) -> Result<SessionUpdate, MessagingError> {
        let sender = self.lids.canonical(sender);
        let message =
            SenderKeyDistributionMessage::deserialize(bytes).map_err(DecryptError::from)?;
        let mut record = self
            .sender_keys
            .get(&(group.to_owned(), sender.clone()))
            .cloned()
            .unwrap_or_default();
        record.process_distribution_message(&message);
        Ok(SessionUpdate::SenderKey {
            group: group.to_owned(),
            sender,
            record,
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
        let from_pending = pending.iter().rev().find_map(|update| match update {
            SessionUpdate::SenderKey {
                group: g,
                sender: s,
                record,
            } if g == group && *s == sender => Some(record.clone()),
            _ => None,
        });
        let mut record = match from_pending {
            Some(record) => record,
            None => self
                .sender_keys
                .get(&(group.to_owned(), sender.clone()))
                .cloned()
                .ok_or(DecryptError::NoSession)?,
        };
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
                        self.put_identity(&address, identity);
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

    /// The devices among `devices` that do not hold our current sender key for `group`.
    pub fn sender_key_missing<'a>(
        &self,
        group: &str,
        devices: impl IntoIterator<Item = &'a DeviceAddress>,
    ) -> Vec<DeviceAddress> {
        let sent = self.sender_key_sent.get(group);
        devices
            .into_iter()
            .filter(|device| !sent.is_some_and(|sent| sent.contains(&self.lids.canonical(device))))
            .cloned()
            .collect()
    }

    /// Records that `devices` now hold our sender key for `group`.
    pub fn mark_sender_key_sent<'a>(
        &mut self,
        group: &str,
        devices: impl IntoIterator<Item = &'a DeviceAddress>,
    ) {
        let canonical: Vec<DeviceAddress> = devices
            .into_iter()
            .map(|d| self.lids.canonical(d))
            .collect();
        self.mark_used(RecordSpace::SenderKeySent, group);
        let sent = self.sender_key_sent.entry(group.to_owned()).or_default();
        let before = sent.len();
        sent.extend(canonical);
        if sent.len() != before {
            let record = pb::SenderKeySentRecord {
                format_version: Some(MESSAGING_RECORD_FORMAT),
                devices: sent.iter().map(DeviceAddress::record_key).collect(),
            };
            self.push_change(RecordChange {
                space: RecordSpace::SenderKeySent,
                key: group.to_owned(),
                value: Some(record.encode_to_vec()),
            });
        }
    }

    /// Records that `devices` may not hold our sender key for `group` after all (the stanza
    /// that carried it was not acknowledged), so that the next message hands it out again.
    pub fn unmark_sender_key_sent<'a>(
        &mut self,
        group: &str,
        devices: impl IntoIterator<Item = &'a DeviceAddress>,
    ) {
        let canonical: Vec<DeviceAddress> = devices
            .into_iter()
            .map(|d| self.lids.canonical(d))
            .collect();
        let Some(sent) = self.sender_key_sent.get_mut(group) else {
            return;
        };
        let before = sent.len();
        for device in &canonical {
            sent.remove(device);
        }
        if sent.len() != before {
            let record = pb::SenderKeySentRecord {
                format_version: Some(MESSAGING_RECORD_FORMAT),
                devices: sent.iter().map(DeviceAddress::record_key).collect(),
            };
            self.push_change(RecordChange {
                space: RecordSpace::SenderKeySent,
                key: group.to_owned(),
                value: Some(record.encode_to_vec()),
            });
        }
    }

    /// Forgets who holds our sender key for `group` and drops our chain, so that the next
    /// message starts a new key (after a member left, as WhatsApp Web does).
    pub fn rotate_sender_key(&mut self, group: &str) {
        if self.sender_key_sent.remove(group).is_some() {
            self.delete(RecordSpace::SenderKeySent, group.to_owned());
        }
        let sender = self.own.group_sender().clone();
        if self
            .sender_keys
            .remove(&(group.to_owned(), sender.clone()))
            .is_some()
        {
            self.delete(
                RecordSpace::SenderKey,
                sender_key_record_key(group, &sender),
            );
        }
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
            space: RecordSpace::ReceivedIds,
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

    /// Keeps a sent message for retries, dropping the oldest beyond
    /// [`MESSAGING_RETRY_BUFFER`]. A message larger than [`MESSAGING_RETRY_MAX_MESSAGE`] is not
    /// kept.
    pub fn remember_sent(&mut self, id: &str, chat: &str, message: &[u8], now: u64) {
        if message.len() > MESSAGING_RETRY_MAX_MESSAGE {
            return;
        }
        while self.retry.len() >= MESSAGING_RETRY_BUFFER {
            let oldest = self
                .retry
                .iter()
                .min_by_key(|(_, entry)| entry.sequence)
                .map(|(id, _)| id.clone());
            match oldest {
                Some(oldest) => {
                    self.retry.remove(&oldest);
                    self.delete(RecordSpace::RetryBuffer, oldest);
                }
                None => break,
            }
        }
        let entry = RetryEntry {
            chat: chat.to_owned(),
            message: message.to_vec(),
            sent_at: now,
            sequence: self.retry_sequence,
            retries: Vec::new(),
        };
        self.retry_sequence = self.retry_sequence.saturating_add(1);
        self.put_retry(id, entry);
    }

    fn put_retry(&mut self, id: &str, entry: RetryEntry) {
        let record = pb::RetryEntryRecord {
            format_version: Some(MESSAGING_RECORD_FORMAT),
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
        };
        self.push_change(RecordChange {
            space: RecordSpace::RetryBuffer,
            key: id.to_owned(),
            value: Some(record.encode_to_vec()),
        });
        self.retry.insert(id.to_owned(), entry);
    }

    /// A kept message.
    pub fn sent_message(&self, id: &str) -> Option<&RetryEntry> {
        self.retry.get(id)
    }

    /// How many messages the retry buffer holds.
    pub fn retry_buffer_len(&self) -> usize {
        self.retry.len()
    }

    /// Counts a retry request of `device` for message `id`; `None` when the message is not
    /// kept or the device has used up [`MESSAGING_MAX_RETRIES`].
    pub fn take_retry(&mut self, id: &str, device: &DeviceAddress) -> Option<RetryEntry> {
        let key = self.lids.canonical(device).record_key();
        let mut entry = self.retry.get(id)?.clone();
        let count = match entry.retries.iter_mut().find(|(d, _)| *d == key) {
            Some((_, count)) => count,
            None => {
                entry.retries.push((key, 0));
                let last = entry.retries.len() - 1;
                &mut entry.retries.get_mut(last)?.1
            }
        };
        if *count >= MESSAGING_MAX_RETRIES {
            return None;
        }
        *count += 1;
        self.put_retry(id, entry.clone());
        Some(entry)
    }
}

/// Whether records of `space` are dropped from memory by [`Keystore::evict`] (the LID mapping
/// and the retry buffer are not: the first is needed to name every other record, the second
/// has its own bound, `MESSAGING_RETRY_BUFFER`).
pub fn is_evictable(space: RecordSpace) -> bool {
    matches!(
        space,
        RecordSpace::Session
            | RecordSpace::Identity
            | RecordSpace::SenderKey
            | RecordSpace::SenderKeySent
            | RecordSpace::ReceivedIds
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
