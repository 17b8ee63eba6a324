//! App-state sync keys: what the primary shares (`AppStateSyncKeyShare`), the ring of keys a
//! device holds, and the request for the keys it lacks (`AppStateSyncKeyRequest`).
//!
//! The primary sends its companions the keys in a `ProtocolMessage` of type
//! `APP_STATE_SYNC_KEY_SHARE`; a companion that meets a key id it does not hold asks its other
//! devices with a `ProtocolMessage` of type `APP_STATE_SYNC_KEY_REQUEST` naming the ids
//! (tulir/whatsmeow:appstate.go `requestMissingAppStateKeys`, Baileys
//! src/Utils/process-message.ts). Mutations are encrypted with the keys expanded from the 32
//! bytes of key data ([`MutationKeys`]).

use zeroize::Zeroizing;

use crate::limits::{APPSTATE_MAX_KEY_ID_LEN, APPSTATE_MAX_KEYS, APPSTATE_MAX_KEYS_PER_SHARE};
use crate::proto::wa;
use crate::proto::wa::message::{
    AppStateSyncKey, AppStateSyncKeyData, AppStateSyncKeyFingerprint, AppStateSyncKeyId,
    AppStateSyncKeyRequest, AppStateSyncKeyShare, ProtocolMessage, protocol_message,
};

use super::PatchError;
use super::crypto::MutationKeys;

/// Length of the key data of an app-state sync key.
pub const KEY_DATA_LEN: usize = 32;

/// The id of an app-state sync key (6 bytes in practice), as `KeyId.id` carries it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(Vec<u8>);

impl std::fmt::Debug for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyId(")?;
        for byte in &self.0 {
            write!(f, "{byte:02x}")?;
        }
        write!(f, ")")
    }
}

impl KeyId {
    /// Wraps key id bytes, refusing an empty or oversized id.
    pub fn new(id: &[u8]) -> Result<KeyId, PatchError> {
        if id.is_empty() {
            return Err(PatchError::Malformed("empty key id"));
        }
        if id.len() > APPSTATE_MAX_KEY_ID_LEN {
            return Err(PatchError::TooLarge("key id"));
        }
        Ok(KeyId(id.to_vec()))
    }

    /// The id bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// The fingerprint a primary attaches to a key (which device index made it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fingerprint {
    /// `rawId`.
    pub raw_id: u32,
    /// `currentIndex`.
    pub current_index: u32,
    /// `deviceIndexes`.
    pub device_indexes: Vec<u32>,
}

/// One app-state sync key: its id, 32 bytes of key data, the fingerprint and the timestamp
/// (milliseconds) the primary gave it, and the keys expanded from it.
#[derive(Clone)]
pub struct SyncKey {
    id: KeyId,
    data: Zeroizing<[u8; KEY_DATA_LEN]>,
    fingerprint: Option<Fingerprint>,
    timestamp: i64,
    keys: MutationKeys,
}

impl std::fmt::Debug for SyncKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncKey")
            .field("id", &self.id)
            .field("timestamp", &self.timestamp)
            .finish_non_exhaustive()
    }
}

impl PartialEq for SyncKey {
    fn eq(&self, other: &SyncKey) -> bool {
        self.id == other.id
            && *self.data == *other.data
            && self.fingerprint == other.fingerprint
            && self.timestamp == other.timestamp
    }
}

impl Eq for SyncKey {}

impl SyncKey {
    /// Builds a key from its parts.
    pub fn new(
        id: KeyId,
        data: [u8; KEY_DATA_LEN],
        fingerprint: Option<Fingerprint>,
        timestamp: i64,
    ) -> SyncKey {
        let data = Zeroizing::new(data);
        let keys = MutationKeys::expand(data.as_ref());
        SyncKey {
            id,
            data,
            fingerprint,
            timestamp,
            keys,
        }
    }

    /// Reads one key of an `AppStateSyncKeyShare`.
    pub fn from_proto(key: &AppStateSyncKey) -> Result<SyncKey, PatchError> {
        let id = key
            .key_id
            .as_ref()
            .and_then(|id| id.key_id.as_deref())
            .ok_or(PatchError::Malformed("key id"))?;
        let key_data = key
            .key_data
            .as_ref()
            .ok_or(PatchError::Malformed("key data"))?;
        let data: [u8; KEY_DATA_LEN] = key_data
            .key_data
            .as_deref()
            .and_then(|data| data.try_into().ok())
            .ok_or(PatchError::Malformed("key data length"))?;
        let fingerprint = key_data.fingerprint.as_ref().map(|f| Fingerprint {
            raw_id: f.raw_id.unwrap_or_default(),
            current_index: f.current_index.unwrap_or_default(),
            device_indexes: f.device_indexes.clone(),
        });
        Ok(SyncKey::new(
            KeyId::new(id)?,
            data,
            fingerprint,
            key_data.timestamp.unwrap_or_default(),
        ))
    }

    /// The key as an `AppStateSyncKey` (to share it, or to store it).
    pub fn to_proto(&self) -> AppStateSyncKey {
        AppStateSyncKey {
            key_id: Some(AppStateSyncKeyId {
                key_id: Some(self.id.0.clone()),
            }),
            key_data: Some(AppStateSyncKeyData {
                key_data: Some(self.data.to_vec()),
                fingerprint: self
                    .fingerprint
                    .as_ref()
                    .map(|f| AppStateSyncKeyFingerprint {
                        raw_id: Some(f.raw_id),
                        current_index: Some(f.current_index),
                        device_indexes: f.device_indexes.clone(),
                    }),
                timestamp: Some(self.timestamp),
            }),
        }
    }

    /// The key id.
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// The 32 bytes of key data.
    pub fn data(&self) -> &[u8; KEY_DATA_LEN] {
        &self.data
    }

    /// The fingerprint, when the primary sent one.
    pub fn fingerprint(&self) -> Option<&Fingerprint> {
        self.fingerprint.as_ref()
    }

    /// The timestamp the primary gave the key.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// The keys expanded from the key data.
    pub fn mutation_keys(&self) -> &MutationKeys {
        &self.keys
    }
}

/// Reads every key of an `AppStateSyncKeyShare`; one malformed key fails the share.
pub fn keys_from_share(share: &AppStateSyncKeyShare) -> Result<Vec<SyncKey>, PatchError> {
    if share.keys.len() > APPSTATE_MAX_KEYS_PER_SHARE {
        return Err(PatchError::TooLarge("keys per share"));
    }
    share.keys.iter().map(SyncKey::from_proto).collect()
}

/// The app-state sync keys a device holds, by id.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KeyRing {
    /// Sorted by id bytes, each id once: a list searched by bisection rather than a
    /// `BTreeMap`, whose node code would be instantiated for this one type (docs/decisions.md,
    /// "wasm size").
    keys: Vec<SyncKey>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.keys.iter().map(|k| (&k.id.0, k)))
            .finish()
    }
}

impl KeyRing {
    /// An empty ring.
    pub fn new() -> KeyRing {
        KeyRing::default()
    }

    /// Adds (or replaces) a key. Past [`APPSTATE_MAX_KEYS`], the oldest key by timestamp is
    /// dropped and returned.
    pub fn insert(&mut self, key: SyncKey) -> Option<SyncKey> {
        match self.position(key.id.as_bytes()) {
            Ok(at) => self.keys[at] = key,
            Err(at) => self.keys.insert(at, key),
        }
        if self.keys.len() <= APPSTATE_MAX_KEYS {
            return None;
        }
        let oldest = self
            .keys
            .iter()
            .enumerate()
            .min_by(|(_, a), (_, b)| (a.timestamp, &a.id).cmp(&(b.timestamp, &b.id)))
            .map(|(at, _)| at)?;
        Some(self.keys.remove(oldest))
    }

    /// Where the key with this id is, or would go.
    fn position(&self, id: &[u8]) -> Result<usize, usize> {
        self.keys.binary_search_by(|k| k.id.as_bytes().cmp(id))
    }

    /// The key with this id.
    pub fn get(&self, id: &[u8]) -> Option<&SyncKey> {
        self.position(id).ok().and_then(|at| self.keys.get(at))
    }

    /// Whether the ring holds this id.
    pub fn contains(&self, id: &[u8]) -> bool {
        self.get(id).is_some()
    }

    /// The key to encrypt outgoing patches with: the newest by timestamp (ties broken by the
    /// larger id), as WhatsApp Web uses its latest key.
    pub fn newest(&self) -> Option<&SyncKey> {
        self.keys
            .iter()
            .max_by(|a, b| (a.timestamp, &a.id).cmp(&(b.timestamp, &b.id)))
    }

    /// Every key, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &SyncKey> {
        self.keys.iter()
    }

    /// How many keys the ring holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the ring is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The message a device sends to its own other devices to ask for app-state sync keys it lacks
/// (a `ProtocolMessage` of type `APP_STATE_SYNC_KEY_REQUEST`, with `peer` category).
pub fn key_request_message(ids: &[KeyId]) -> Result<wa::Message, PatchError> {
    if ids.is_empty() {
        return Err(PatchError::InvalidAction("no key ids to request"));
    }
    if ids.len() > APPSTATE_MAX_KEYS_PER_SHARE {
        return Err(PatchError::TooLarge("keys per request"));
    }
    let request = AppStateSyncKeyRequest {
        key_ids: ids
            .iter()
            .map(|id| AppStateSyncKeyId {
                key_id: Some(id.0.clone()),
            })
            .collect(),
    };
    Ok(wa::Message {
        protocol_message: Some(Box::new(ProtocolMessage {
            r#type: Some(protocol_message::Type::AppStateSyncKeyRequest as i32),
            app_state_sync_key_request: Some(request),
            ..Default::default()
        })),
        ..Default::default()
    })
}

/// The key ids a received key request asks for.
pub fn requested_key_ids(message: &wa::Message) -> Result<Vec<KeyId>, PatchError> {
    let request = message
        .protocol_message
        .as_ref()
        .and_then(|p| p.app_state_sync_key_request.as_ref())
        .ok_or(PatchError::Malformed("not a key request"))?;
    if request.key_ids.len() > APPSTATE_MAX_KEYS_PER_SHARE {
        return Err(PatchError::TooLarge("keys per request"));
    }
    request
        .key_ids
        .iter()
        .map(|id| KeyId::new(id.key_id.as_deref().unwrap_or_default()))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use prost::Message;

    fn key(id: u8, timestamp: i64) -> SyncKey {
        SyncKey::new(
            KeyId::new(&[0, 0, 0, 0, 0, id]).unwrap(),
            [id; 32],
            None,
            timestamp,
        )
    }

    #[test]
    fn share_round_trips_and_debug_hides_the_data() {
        let original = SyncKey::new(
            KeyId::new(b"\x00\x01\x02").unwrap(),
            [0xab; 32],
            Some(Fingerprint {
                raw_id: 5,
                current_index: 2,
                device_indexes: vec![0, 2],
            }),
            1_700_000_000_000,
        );
        let share = AppStateSyncKeyShare {
            keys: vec![original.to_proto()],
        };
        let bytes = share.encode_to_vec();
        let decoded =
            keys_from_share(&AppStateSyncKeyShare::decode(bytes.as_slice()).unwrap()).unwrap();
        assert_eq!(decoded, vec![original.clone()]);
        let debug = format!("{original:?}");
        assert!(!debug.contains("ab"), "{debug}");
    }

    #[test]
    fn refuses_short_key_data_and_missing_ids() {
        let mut proto = key(1, 0).to_proto();
        proto.key_data.as_mut().unwrap().key_data = Some(vec![1; 31]);
        assert_eq!(
            SyncKey::from_proto(&proto),
            Err(PatchError::Malformed("key data length"))
        );
        let mut proto = key(1, 0).to_proto();
        proto.key_id = None;
        assert!(SyncKey::from_proto(&proto).is_err());
        assert!(KeyId::new(&[]).is_err());
        assert!(KeyId::new(&[0; APPSTATE_MAX_KEY_ID_LEN + 1]).is_err());
    }

    #[test]
    fn ring_picks_the_newest_and_bounds_its_size() {
        let mut ring = KeyRing::new();
        assert!(ring.newest().is_none());
        ring.insert(key(1, 10));
        ring.insert(key(2, 30));
        ring.insert(key(3, 20));
        assert_eq!(ring.newest().unwrap().id(), key(2, 0).id());
        assert!(ring.contains(&[0, 0, 0, 0, 0, 3]));
        let mut big = KeyRing::new();
        for i in 0..APPSTATE_MAX_KEYS as i64 + 1 {
            let id = KeyId::new(&i.to_be_bytes()).unwrap();
            let dropped = big.insert(SyncKey::new(id, [1; 32], None, i + 100));
            if i as usize == APPSTATE_MAX_KEYS {
                assert_eq!(dropped.unwrap().timestamp(), 100);
            }
        }
        assert_eq!(big.len(), APPSTATE_MAX_KEYS);
    }

    #[test]
    fn key_request_names_the_ids() {
        let ids = vec![
            KeyId::new(b"\x00\x00\x01").unwrap(),
            KeyId::new(b"\x00\x00\x02").unwrap(),
        ];
        let message = key_request_message(&ids).unwrap();
        let bytes = message.encode_to_vec();
        let decoded = wa::Message::decode(bytes.as_slice()).unwrap();
        let protocol = decoded.protocol_message.as_ref().unwrap();
        assert_eq!(
            protocol.r#type,
            Some(protocol_message::Type::AppStateSyncKeyRequest as i32)
        );
        assert_eq!(requested_key_ids(&decoded).unwrap(), ids);
        assert!(key_request_message(&[]).is_err());
    }
}
