//! The persistent state model: records, changes and restore.
//!
//! The host stores opaque [`Record`]s in a key-value table and applies each [`Batch`] of
//! [`Change`]s atomically. A record lives in one of a small fixed set of [`Space`]s under a
//! readable key; its value is walink's own versioned protobuf (`core/proto/walink_*.proto`),
//! decoded only by the core. Keys:
//!
//! | Space | Key | Value |
//! | --- | --- | --- |
//! | `device` | `"device"` | `walink.DeviceRecord`: own keys, own JID/LID, signed ADV identity |
//! | `prekey` | decimal prekey id (`"17"`) | `walink.PreKeyRecord` |
//! | `signed-prekey` | decimal id | `walink.SignedPreKeyRecord` |
//! | `identity` | signal address ([`address_key`]) | `walink.IdentityRecord` |
//! | `session` | signal address | `walink.SessionRecord` (`walink_signal.proto`) |
//! | `sender-key` | `"<group>::<address>"` | `walink.SenderKeyRecord` |
//! | `received-ids` | signal address of a sender | `walink.ReceivedIdsRecord` |
//! | `outbox` | message id | `walink.OutboxRecord` (loaded at start) |
//! | `device-list` | signal address of a user's device 0 | `walink.DeviceListRecord` |
//! | `privacy-token` | a contact's user JID | `walink.PrivacyTokenRecord` (loaded at start) |
//! | others | defined by the module that owns them (messaging, app state) | |
//!
//! Which records the host hands to `Client::new` and which the client asks for later with
//! `Output::Load` is described in `docs/client.md` ("Storage").

use std::fmt;

use prost::Message as _;
use zeroize::Zeroizing;

use crate::binary::Jid;
use crate::proto::walink;

/// The format version written into every record this module encodes.
pub const RECORD_FORMAT: u32 = 1;

/// The key of the single record in [`Space::Device`].
pub const DEVICE_KEY: &str = "device";

/// A namespace of records. The set is small and fixed; each space's values have one encoding.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Space {
    /// The device itself: own keys, own JID and LID, the signed ADV identity. One record.
    Device,
    /// A Signal session with one remote device, keyed by its address.
    Session,
    /// The identity key of a remote device, keyed by its address.
    Identity,
    /// One of the device's own one-time prekeys, keyed by id.
    PreKey,
    /// One of the device's own signed prekeys, keyed by id.
    SignedPreKey,
    /// A received sender-key record of a (group, sender device).
    SenderKey,
    /// Which devices already received this device's sender key for a group.
    SenderKeySent,
    /// An app-state sync key, keyed by its id.
    AppStateKey,
    /// The version and hash state of an app-state collection.
    AppStateVersion,
    /// A LID to phone-number mapping.
    LidMapping,
    /// An outgoing message kept for retry requests.
    RetryBuffer,
    /// The ids of messages recently received from one sending device (duplicate detection).
    ReceivedIds,
    /// A message stanza transmitted and not yet acknowledged by the server, resent after login.
    Outbox,
    /// The last verified device list (ADV key-index list) of one user.
    DeviceList,
    /// A poll this device sent or received (its secret, options and votes), keyed by chat and
    /// message id, and the index of those kept (docs/content.md).
    Poll,
    /// A trusted-contact privacy token a contact issued to us, keyed by its user JID.
    PrivacyToken,
}

impl Space {
    /// Every space, in a fixed order.
    pub const ALL: [Space; 16] = [
        Space::Device,
        Space::Session,
        Space::Identity,
        Space::PreKey,
        Space::SignedPreKey,
        Space::SenderKey,
        Space::SenderKeySent,
        Space::AppStateKey,
        Space::AppStateVersion,
        Space::LidMapping,
        Space::RetryBuffer,
        Space::ReceivedIds,
        Space::Outbox,
        Space::DeviceList,
        Space::Poll,
        Space::PrivacyToken,
    ];

    /// The stable name a host stores (`"device"`, `"session"`, `"signed-prekey"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Space::Device => "device",
            Space::Session => "session",
            Space::Identity => "identity",
            Space::PreKey => "prekey",
            Space::SignedPreKey => "signed-prekey",
            Space::SenderKey => "sender-key",
            Space::SenderKeySent => "sender-key-sent",
            Space::AppStateKey => "app-state-key",
            Space::AppStateVersion => "app-state-version",
            Space::LidMapping => "lid-mapping",
            Space::RetryBuffer => "retry-buffer",
            Space::ReceivedIds => "received-ids",
            Space::Outbox => "outbox",
            Space::DeviceList => "device-list",
            Space::Poll => "poll",
            Space::PrivacyToken => "privacy-token",
        }
    }

    /// The space named `name` (the inverse of [`Space::as_str`]).
    pub fn parse(name: &str) -> Option<Space> {
        Space::ALL.into_iter().find(|space| space.as_str() == name)
    }

    /// Whether the host hands this space's records to `Client::new` (the small, always-needed
    /// ones). Every other space is loaded on demand through `Output::Load`.
    pub fn loaded_at_start(self) -> bool {
        matches!(
            self,
            Space::Device
                | Space::SignedPreKey
                | Space::AppStateKey
                | Space::Outbox
                | Space::PrivacyToken
        )
    }
}

impl fmt::Display for Space {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The address of a record: its space and key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordKey {
    /// The space.
    pub space: Space,
    /// The key inside the space.
    pub key: String,
}

impl RecordKey {
    /// The key `key` in `space`.
    pub fn new(space: Space, key: impl Into<String>) -> RecordKey {
        RecordKey {
            space,
            key: key.into(),
        }
    }
}

/// One stored record. Values may hold private keys: `Debug` shows only their length.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    /// The space the record lives in.
    pub space: Space,
    /// Its key inside the space.
    pub key: String,
    /// The encoded value (walink's versioned protobuf).
    pub value: Vec<u8>,
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("space", &self.space)
            .field("key", &self.key)
            .field("value_len", &self.value.len())
            .finish()
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.value.zeroize();
    }
}

/// One change to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Insert or replace a record.
    Put(Record),
    /// Remove a record (absent records are not an error).
    Delete {
        /// The space.
        space: Space,
        /// The key.
        key: String,
    },
    /// Remove every record of this client, in every space (the device was logged out).
    DeleteAll,
}

/// Changes the host applies atomically, in order, before carrying out any later output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// The changes, in order.
    pub changes: Vec<Change>,
}

impl Batch {
    /// Whether the batch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Why `Client::new` failed: the host's records could not be restored (each such variant names
/// the record at fault), the platform has no randomness, or the configuration is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// The value is not the protobuf its space expects.
    #[error("record {space}/{key} is not a valid encoding")]
    Malformed {
        /// The record's space.
        space: Space,
        /// The record's key.
        key: String,
    },
    /// The value was written by a newer (or unknown) format of walink.
    #[error("record {space}/{key} has unsupported format version {version}")]
    UnsupportedVersion {
        /// The record's space.
        space: Space,
        /// The record's key.
        key: String,
        /// The version found.
        version: u32,
    },
    /// A field the record cannot do without is absent or has the wrong length.
    #[error("record {space}/{key} lacks a valid {field}")]
    BadField {
        /// The record's space.
        space: Space,
        /// The record's key.
        key: String,
        /// The field concerned.
        field: &'static str,
    },
    /// The key is not of the form its space uses.
    #[error("record {space}/{key} has an invalid key")]
    BadKey {
        /// The record's space.
        space: Space,
        /// The offending key.
        key: String,
    },
    /// Two records with the same space and key were given.
    #[error("record {space}/{key} was given twice")]
    Duplicate {
        /// The record's space.
        space: Space,
        /// The record's key.
        key: String,
    },
    /// Records were given but none is the device record they belong to.
    #[error("records without a device record")]
    MissingDevice,
    /// The operating system gave no randomness to seed the client's generator.
    #[error("no randomness available")]
    NoRandomness,
    /// The configuration given with the records is refused.
    #[error("invalid configuration: {0}")]
    InvalidConfig(#[from] crate::client::ConfigError),
}

impl RestoreError {
    /// A stable machine-readable code (`restore_malformed`, `restore_duplicate`, ...), the same
    /// in every binding.
    pub fn code(&self) -> &'static str {
        match self {
            RestoreError::Malformed { .. } => "restore_malformed",
            RestoreError::UnsupportedVersion { .. } => "restore_unsupported_version",
            RestoreError::BadField { .. } => "restore_bad_field",
            RestoreError::BadKey { .. } => "restore_bad_key",
            RestoreError::Duplicate { .. } => "restore_duplicate",
            RestoreError::MissingDevice => "restore_missing_device",
            RestoreError::NoRandomness => "no_randomness",
            RestoreError::InvalidConfig(error) => error.code(),
        }
    }

    fn malformed(space: Space, key: &str) -> RestoreError {
        RestoreError::Malformed {
            space,
            key: key.to_owned(),
        }
    }

    fn field(space: Space, key: &str, field: &'static str) -> RestoreError {
        RestoreError::BadField {
            space,
            key: key.to_owned(),
            field,
        }
    }
}

/// The signal address key of a device JID: `"<user>.<device>@<server>"`
/// (`"15551234567.0@s.whatsapp.net"`, `"123456789.12@lid"`), the key of the session and
/// identity spaces.
pub fn address_key(jid: &Jid) -> String {
    format!("{}.{}@{}", jid.user, jid.device, jid.server)
}

/// The device JID of an [`address_key`]; `None` if `key` is not of that form.
pub fn parse_address_key(key: &str) -> Option<Jid> {
    let (name, server) = key.rsplit_once('@')?;
    let (user, device) = name.rsplit_once('.')?;
    let device: u16 = device.parse().ok()?;
    if user.is_empty() || device.to_string() != name.rsplit_once('.')?.1 {
        return None;
    }
    let mut jid: Jid = format!("{user}@{server}").parse().ok()?;
    jid.device = device;
    (address_key(&jid) == key).then_some(jid)
}

fn check_version(space: Space, key: &str, version: Option<u32>) -> Result<(), RestoreError> {
    match version {
        Some(RECORD_FORMAT) => Ok(()),
        Some(version) => Err(RestoreError::UnsupportedVersion {
            space,
            key: key.to_owned(),
            version,
        }),
        None => Err(RestoreError::field(space, key, "format_version")),
    }
}

fn array<const N: usize>(
    space: Space,
    key: &str,
    field: &'static str,
    bytes: Option<&[u8]>,
) -> Result<[u8; N], RestoreError> {
    bytes
        .and_then(|bytes| <[u8; N]>::try_from(bytes).ok())
        .ok_or_else(|| RestoreError::field(space, key, field))
}

fn jid_field(
    space: Space,
    key: &str,
    field: &'static str,
    text: Option<&str>,
) -> Result<Option<Jid>, RestoreError> {
    text.map(|text| {
        text.parse::<Jid>()
            .map_err(|_| RestoreError::field(space, key, field))
    })
    .transpose()
}

/// The decoded device record: everything the device is, apart from its prekeys.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceData {
    /// Noise static private key.
    pub noise_private: Zeroizing<[u8; 32]>,
    /// Signal identity private key.
    pub identity_private: Zeroizing<[u8; 32]>,
    /// Signal registration id.
    pub registration_id: u32,
    /// The adv secret: shown in the QR code, keys the pair-success HMAC.
    pub adv_secret: Zeroizing<[u8; 32]>,
    /// Id of the current signed prekey (its record lives in [`Space::SignedPreKey`]).
    pub signed_pre_key_id: u32,
    /// The next one-time prekey id to hand out (ids are never reused).
    pub next_pre_key_id: u32,
    /// Highest one-time prekey id uploaded to the server so far (0: none).
    pub uploaded_pre_key_id: u32,
    /// Own phone-number device JID, once paired.
    pub jid: Option<Jid>,
    /// Own LID device JID, once known.
    pub lid: Option<Jid>,
    /// The signed ADV identity (`ADVSignedDeviceIdentity`, with the account key and the device
    /// signature), once paired.
    pub signed_identity: Option<Vec<u8>>,
    /// The primary's platform name from pair-success.
    pub platform: Option<String>,
    /// The business name from pair-success.
    pub business_name: Option<String>,
    /// The edge-routing blob the server gave, sent in front of the next connection header.
    pub routing_info: Option<Vec<u8>>,
    /// Successful logins so far.
    pub login_count: u32,
    /// The one-time prekeys created for retry receipts that are kept, oldest first (at most
    /// `MESSAGING_MAX_RETRY_PRE_KEYS`).
    pub retry_pre_key_ids: Vec<u32>,
}

impl fmt::Debug for DeviceData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceData")
            .field("registration_id", &self.registration_id)
            .field("jid", &self.jid)
            .field("lid", &self.lid)
            .field("signed_pre_key_id", &self.signed_pre_key_id)
            .field("next_pre_key_id", &self.next_pre_key_id)
            .finish_non_exhaustive()
    }
}

/// Encodes the device record.
pub fn encode_device(data: &DeviceData) -> Record {
    let value = walink::DeviceRecord {
        format_version: Some(RECORD_FORMAT),
        noise_private: Some(data.noise_private.to_vec()),
        identity_private: Some(data.identity_private.to_vec()),
        registration_id: Some(data.registration_id),
        adv_secret: Some(data.adv_secret.to_vec()),
        signed_pre_key_id: Some(data.signed_pre_key_id),
        next_pre_key_id: Some(data.next_pre_key_id),
        uploaded_pre_key_id: Some(data.uploaded_pre_key_id),
        jid: data.jid.as_ref().map(ToString::to_string),
        lid: data.lid.as_ref().map(ToString::to_string),
        signed_identity: data.signed_identity.clone(),
        platform: data.platform.clone(),
        business_name: data.business_name.clone(),
        routing_info: data.routing_info.clone(),
        login_count: Some(data.login_count),
        retry_pre_key_ids: data.retry_pre_key_ids.clone(),
    };
    let mut message = value;
    let bytes = message.encode_to_vec();
    zeroize_device_message(&mut message);
    Record {
        space: Space::Device,
        key: DEVICE_KEY.to_owned(),
        value: bytes,
    }
}

fn zeroize_device_message(message: &mut walink::DeviceRecord) {
    use zeroize::Zeroize;
    for field in [
        &mut message.noise_private,
        &mut message.identity_private,
        &mut message.adv_secret,
    ]
    .into_iter()
    .flatten()
    {
        field.zeroize();
    }
}

/// Decodes the device record.
pub fn decode_device(record: &Record) -> Result<DeviceData, RestoreError> {
    let (space, key) = (Space::Device, record.key.as_str());
    if record.space != space {
        return Err(RestoreError::malformed(record.space, key));
    }
    if key != DEVICE_KEY {
        return Err(RestoreError::BadKey {
            space,
            key: key.to_owned(),
        });
    }
    let mut message = walink::DeviceRecord::decode(record.value.as_slice())
        .map_err(|_| RestoreError::malformed(space, key))?;
    let result = (|| {
        check_version(space, key, message.format_version)?;
        let registration_id = message
            .registration_id
            .filter(|&id| id != 0)
            .ok_or_else(|| RestoreError::field(space, key, "registration_id"))?;
        Ok(DeviceData {
            noise_private: Zeroizing::new(array(
                space,
                key,
                "noise_private",
                message.noise_private.as_deref(),
            )?),
            identity_private: Zeroizing::new(array(
                space,
                key,
                "identity_private",
                message.identity_private.as_deref(),
            )?),
            registration_id,
            adv_secret: Zeroizing::new(array(
                space,
                key,
                "adv_secret",
                message.adv_secret.as_deref(),
            )?),
            signed_pre_key_id: message
                .signed_pre_key_id
                .filter(|&id| id != 0 && id < 1 << 24)
                .ok_or_else(|| RestoreError::field(space, key, "signed_pre_key_id"))?,
            next_pre_key_id: message
                .next_pre_key_id
                .filter(|&id| id != 0 && id <= 1 << 24)
                .ok_or_else(|| RestoreError::field(space, key, "next_pre_key_id"))?,
            uploaded_pre_key_id: message.uploaded_pre_key_id.unwrap_or(0),
            jid: jid_field(space, key, "jid", message.jid.as_deref())?,
            lid: jid_field(space, key, "lid", message.lid.as_deref())?,
            signed_identity: message.signed_identity.take(),
            platform: message.platform.take(),
            business_name: message.business_name.take(),
            routing_info: message.routing_info.take(),
            login_count: message.login_count.unwrap_or(0),
            retry_pre_key_ids: if message.retry_pre_key_ids.len()
                <= crate::limits::MESSAGING_MAX_RETRY_PRE_KEYS
            {
                core::mem::take(&mut message.retry_pre_key_ids)
            } else {
                return Err(RestoreError::field(space, key, "retry_pre_key_ids"));
            },
        })
    })();
    zeroize_device_message(&mut message);
    result
}

/// One of the device's own prekeys (one-time or signed), decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct PreKeyData {
    /// The prekey id (24 bits).
    pub id: u32,
    /// The private key.
    pub private: Zeroizing<[u8; 32]>,
    /// The identity's signature over the public key (signed prekeys only).
    pub signature: Option<[u8; 64]>,
}

impl fmt::Debug for PreKeyData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreKeyData")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Encodes a one-time prekey (`signature` `None`) or a signed prekey record.
pub fn encode_pre_key(data: &PreKeyData) -> Record {
    let space = if data.signature.is_some() {
        Space::SignedPreKey
    } else {
        Space::PreKey
    };
    let mut message = walink::PreKeyRecord {
        format_version: Some(RECORD_FORMAT),
        id: Some(data.id),
        private: Some(data.private.to_vec()),
        signature: data.signature.map(|s| s.to_vec()),
    };
    let value = message.encode_to_vec();
    if let Some(private) = message.private.as_mut() {
        use zeroize::Zeroize;
        private.zeroize();
    }
    Record {
        space,
        key: data.id.to_string(),
        value,
    }
}

/// Decodes a record of [`Space::PreKey`] or [`Space::SignedPreKey`].
pub fn decode_pre_key(record: &Record) -> Result<PreKeyData, RestoreError> {
    let (space, key) = (record.space, record.key.as_str());
    let id: u32 = key
        .parse()
        .ok()
        .filter(|&id: &u32| id != 0 && id < 1 << 24 && id.to_string() == key)
        .ok_or_else(|| RestoreError::BadKey {
            space,
            key: key.to_owned(),
        })?;
    let mut message = walink::PreKeyRecord::decode(record.value.as_slice())
        .map_err(|_| RestoreError::malformed(space, key))?;
    let result = (|| {
        check_version(space, key, message.format_version)?;
        if message.id != Some(id) {
            return Err(RestoreError::field(space, key, "id"));
        }
        let signature = match space {
            Space::SignedPreKey => Some(array(
                space,
                key,
                "signature",
                message.signature.as_deref(),
            )?),
            _ => None,
        };
        Ok(PreKeyData {
            id,
            private: Zeroizing::new(array(space, key, "private", message.private.as_deref())?),
            signature,
        })
    })();
    if let Some(private) = message.private.as_mut() {
        use zeroize::Zeroize;
        private.zeroize();
    }
    result
}

/// Encodes the trusted identity key (32 raw bytes) of the device at `address` (a device JID).
pub fn encode_identity(address: &Jid, identity: &[u8; 32]) -> Record {
    let value = walink::IdentityRecord {
        format_version: Some(RECORD_FORMAT),
        public_key: Some(identity.to_vec()),
        pending_public_key: None,
        held: Vec::new(),
    }
    .encode_to_vec();
    Record {
        space: Space::Identity,
        key: address_key(address),
        value,
    }
}

/// Decodes an identity record: the device's address and its 32-byte identity key.
pub fn decode_identity(record: &Record) -> Result<(Jid, [u8; 32]), RestoreError> {
    let (space, key) = (Space::Identity, record.key.as_str());
    let address = parse_address_key(key).ok_or_else(|| RestoreError::BadKey {
        space,
        key: key.to_owned(),
    })?;
    let message = walink::IdentityRecord::decode(record.value.as_slice())
        .map_err(|_| RestoreError::malformed(space, key))?;
    check_version(space, key, message.format_version)?;
    let public = array(space, key, "public_key", message.public_key.as_deref())?;
    Ok((address, public))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn device() -> DeviceData {
        DeviceData {
            noise_private: Zeroizing::new([1; 32]),
            identity_private: Zeroizing::new([2; 32]),
            registration_id: 1234,
            adv_secret: Zeroizing::new([3; 32]),
            signed_pre_key_id: 1,
            next_pre_key_id: 1,
            uploaded_pre_key_id: 0,
            jid: Some("15551234567:3@s.whatsapp.net".parse().unwrap()),
            lid: Some("987654321:3@lid".parse().unwrap()),
            signed_identity: Some(vec![9; 10]),
            platform: Some("android".to_owned()),
            business_name: None,
            routing_info: None,
            login_count: 2,
            retry_pre_key_ids: vec![4, 5],
        }
    }

    #[test]
    fn spaces_round_trip_their_names() {
        for space in Space::ALL {
            assert_eq!(Space::parse(space.as_str()), Some(space));
        }
        assert_eq!(Space::parse("devices"), None);
    }

    #[test]
    fn device_record_round_trips() {
        let data = device();
        let record = encode_device(&data);
        assert_eq!(decode_device(&record).unwrap(), data);
        let shown = format!("{record:?} {data:?}");
        assert!(!shown.contains("1, 1, 1"), "{shown}");
    }

    #[test]
    fn bad_device_records_give_typed_errors() {
        let mut record = encode_device(&device());
        record.value.truncate(10);
        assert!(matches!(
            decode_device(&record),
            Err(RestoreError::Malformed { .. } | RestoreError::BadField { .. })
        ));
        let mut message =
            walink::DeviceRecord::decode(encode_device(&device()).value.as_slice()).unwrap();
        message.format_version = Some(9);
        let record = Record {
            space: Space::Device,
            key: DEVICE_KEY.to_owned(),
            value: message.encode_to_vec(),
        };
        assert_eq!(
            decode_device(&record),
            Err(RestoreError::UnsupportedVersion {
                space: Space::Device,
                key: DEVICE_KEY.to_owned(),
                version: 9
            })
        );
        message.format_version = Some(RECORD_FORMAT);
        message.noise_private = Some(vec![1; 31]);
        let record = Record {
            space: Space::Device,
            key: DEVICE_KEY.to_owned(),
            value: message.encode_to_vec(),
        };
        assert_eq!(
            decode_device(&record),
            Err(RestoreError::BadField {
                space: Space::Device,
                key: DEVICE_KEY.to_owned(),
                field: "noise_private"
            })
        );
    }

    #[test]
    fn prekeys_and_identities_round_trip() {
        let one_time = PreKeyData {
            id: 17,
            private: Zeroizing::new([5; 32]),
            signature: None,
        };
        let record = encode_pre_key(&one_time);
        assert_eq!((record.space, record.key.as_str()), (Space::PreKey, "17"));
        assert_eq!(decode_pre_key(&record).unwrap(), one_time);
        let signed = PreKeyData {
            signature: Some([6; 64]),
            ..one_time.clone()
        };
        let record = encode_pre_key(&signed);
        assert_eq!(record.space, Space::SignedPreKey);
        assert_eq!(decode_pre_key(&record).unwrap(), signed);
        let mut renamed = record.clone();
        renamed.key = "017".to_owned();
        assert!(matches!(
            decode_pre_key(&renamed),
            Err(RestoreError::BadKey { .. })
        ));

        let jid: Jid = "123456789:0@lid".parse().unwrap();
        let record = encode_identity(&jid, &[7; 32]);
        assert_eq!(record.key, "123456789.0@lid");
        let (address, key) = decode_identity(&record).unwrap();
        assert_eq!((address.user.as_str(), address.device), ("123456789", 0));
        assert_eq!(key, [7; 32]);
    }

    proptest::proptest! {
        #[test]
        fn random_values_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            for space in [Space::Device, Space::PreKey, Space::SignedPreKey, Space::Identity] {
                let key = match space {
                    Space::Device => DEVICE_KEY.to_owned(),
                    Space::Identity => "1.0@lid".to_owned(),
                    _ => "5".to_owned(),
                };
                let record = Record { space, key, value: bytes.clone() };
                let _ = match space {
                    Space::Device => decode_device(&record).map(|_| ()),
                    Space::Identity => decode_identity(&record).map(|_| ()),
                    _ => decode_pre_key(&record).map(|_| ()),
                };
            }
        }
    }
}
