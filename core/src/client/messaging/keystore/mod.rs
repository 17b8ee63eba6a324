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

use crate::proto::walink as pb;
use crate::signal::{
    IdentityKey, IdentityKeyPair, PreKeyId, RecordError, SenderKeyRecord, SessionRecord,
};
use crate::store::Space;

use super::super::config::IdentityPolicy;
use super::address::{DeviceAddress, LidMap};
use super::device_list::DeviceList;

mod cache;
mod device_lists;
mod identities;
mod lids;
mod received;
mod retry_buffer;
mod sender_keys;
mod sessions;

pub use cache::is_evictable;
pub use identities::{HeldMessage, IdentityNotice};
pub use retry_buffer::{RetryDenied, RetryEntry};

use identities::IdentityEntry;
use sender_keys::Holders;

/// Format version of the messaging records defined in `walink_messaging.proto`.
pub const MESSAGING_RECORD_FORMAT: u32 = 1;

/// Format version of `RetryEntryRecord` written now: 2 adds the recipients and the sender key
/// id; format 1 records still load (docs/decisions.md, "Messaging peers").
pub const RETRY_ENTRY_FORMAT: u32 = 2;

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

fn check_format(version: Option<u32>) -> Result<(), RecordError> {
    match version {
        Some(MESSAGING_RECORD_FORMAT) => Ok(()),
        other => Err(RecordError::UnsupportedFormat(other.unwrap_or_default())),
    }
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
            Space::Identity => self.restore_identity(key, value)?,
            Space::SenderKey => {
                let (group, sender) = key.split_once("::").ok_or(bad)?;
                let sender = DeviceAddress::from_record_key(sender).ok_or(bad)?;
                self.sender_keys.insert(
                    (group.to_owned(), sender),
                    SenderKeyRecord::deserialize(value)?,
                );
            }
            Space::SenderKeySent => self.restore_holders(key, value)?,
            Space::LidMapping => {
                let record =
                    pb::LidMappingRecord::decode(value).map_err(|_| RecordError::BadProtobuf)?;
                check_format(record.format_version)?;
                self.lids.insert(key, &record.lid_user.unwrap_or_default());
            }
            Space::RetryBuffer => self.restore_retry(key, value)?,
            Space::DeviceList => {
                let address = DeviceAddress::from_record_key(key)
                    .filter(|address| address.device == 0)
                    .ok_or(bad)?;
                let list = DeviceList::decode(value)?;
                self.set_device_list(address, list);
            }
            Space::ReceivedIds => self.restore_received(key, value)?,
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

    // --- 1:1 sessions ---

    // --- groups ---

    // --- device lists ---

    // --- received message ids ---

    // --- retry buffer ---
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
