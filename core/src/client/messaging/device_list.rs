//! Device lists: which devices of a user may receive our messages. The server lists a user's
//! devices in a usync reply, but only the user's primary phone can vouch for a companion: it
//! signs, with the account's identity key, the list of companion key indexes it linked (an
//! `ADVKeyIndexList` inside an `ADVSignedKeyIndexList`). A companion the signed list does not
//! cover is dropped, as WhatsApp Web drops it; the last list that verified is kept per user
//! ([`DeviceList`], record space `device-list`) against replays and to fall back on.
//!
//! Rules (WhatsApp Web `WAWebHandleAdvForUsyncApi.handleADVSyncResultSync`,
//! `WAWebHandleAdvKeyIndexResultApi.handleKeyIndexResultSync`,
//! `WAWebHandleAdvDeviceNotificationUtils.decodeSignedKeyIndexBytes`,
//! `WAWebAdvKeyIndexSignatureVerify`; docs/messaging.md, "Device lists"):
//! - no signed list but companions listed: the reply is not used;
//! - a list whose `ts` is older than the stored list's timestamp is not used;
//! - the signature is XEdDSA by the identity key stored for the user's device 0 (the key the
//!   list embeds is not trusted) over `06 02 ‖ details`; `rawId` and `timestamp` must be
//!   present and the timestamp must equal `ts`;
//! - kept: device 0, every listed companion whose `key-index` is among `validIndexes`, and,
//!   when `rawId` did not change, stored companions whose key index is above `currentIndex`;
//! - a changed `rawId` means the account registered again: every stored device is a new one.
//!
//! walink adds one rule: under one `rawId` a key index always names the same device id (the
//! primary hands out each index once), so a listed companion that claims a stored index under
//! another id, or an index another listed companion claims too, is dropped. And since walink
//! asks for device lists at every send, a list byte for byte equal to the last one that
//! verified with the same key (a SHA-256 over both is stored) is not verified again.

use prost::Message as _;

use crate::limits::MESSAGING_MAX_DEVICES_PER_USER;
use crate::proto::{wa, walink as pb};
use crate::signal::RecordError;
use crate::signal::xeddsa;

use super::keystore::MESSAGING_RECORD_FORMAT;
use super::usync::UserDevices;

/// Prefix of the account signature over a key-index list
/// (`WAWebAdvSignatureConstants.ADV_PREFIX_KEY_INDEX_LIST_ACCOUNT_SIGNATURE`).
pub const KEY_INDEX_LIST_PREFIX: [u8; 2] = [6, 2];

/// Why a signed key-index list was not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListRefused {
    /// Companions were listed without a signed list.
    Missing,
    /// The protobuf does not decode, or a required field is absent.
    Malformed,
    /// No identity is known for the user's primary device to verify with.
    NoIdentity,
    /// The account signature does not verify with the primary's identity.
    BadSignature,
    /// The signed timestamp differs from the list's `ts`.
    TimestampMismatch,
    /// The list is older than the last one that verified.
    Stale,
}

/// A key-index list whose signature verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyIndexList {
    /// The account's ADV raw id.
    pub raw_id: u32,
    /// When the primary signed it (Unix seconds).
    pub timestamp: u64,
    /// The latest key index the primary handed out.
    pub current_index: u32,
    /// The key indexes of the companions the primary vouches for.
    pub valid_indexes: Vec<u32>,
}

/// Verifies an encoded `ADVSignedKeyIndexList` with the primary's identity key and decodes
/// its list.
#[cfg(any(test, feature = "internals-for-benches"))]
pub fn verify_key_index_list(
    signed: &[u8],
    account_key: &[u8; 32],
) -> Result<KeyIndexList, ListRefused> {
    check_key_index_list(signed, Some(account_key))
}

/// Decodes an encoded `ADVSignedKeyIndexList`, verifying its signature with `account_key` when
/// one is given.
fn check_key_index_list(
    signed: &[u8],
    account_key: Option<&[u8; 32]>,
) -> Result<KeyIndexList, ListRefused> {
    let signed = wa::AdvSignedKeyIndexList::decode(signed).map_err(|_| ListRefused::Malformed)?;
    let details = signed.details.ok_or(ListRefused::Malformed)?;
    let signature: [u8; xeddsa::SIGNATURE_LEN] = signed
        .account_signature
        .as_deref()
        .and_then(|s| s.try_into().ok())
        .ok_or(ListRefused::Malformed)?;
    if let Some(account_key) = account_key {
        let message = [&KEY_INDEX_LIST_PREFIX[..], &details].concat();
        if !xeddsa::verify(account_key, &message, &signature) {
            return Err(ListRefused::BadSignature);
        }
    }
    let list =
        wa::AdvKeyIndexList::decode(details.as_slice()).map_err(|_| ListRefused::Malformed)?;
    let (Some(raw_id), Some(timestamp)) = (list.raw_id, list.timestamp) else {
        return Err(ListRefused::Malformed);
    };
    Ok(KeyIndexList {
        raw_id,
        timestamp,
        current_index: list.current_index.unwrap_or_default(),
        valid_indexes: list.valid_indexes,
    })
}

/// The last device list of a user that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceList {
    /// The account's ADV raw id.
    pub raw_id: u32,
    /// The signed timestamp (Unix seconds).
    pub timestamp: u64,
    /// The latest key index the primary had handed out.
    pub current_index: u32,
    /// The companions accepted and their key indexes, by ascending device id.
    pub devices: Vec<(u16, u32)>,
    /// SHA-256 of the primary's identity key and the signed list that verified.
    pub verified: [u8; 32],
}

/// The digest a verified list is remembered by: SHA-256 of the key that verified it and its
/// encoding.
fn verified_digest(account_key: &[u8; 32], signed: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::new()
        .chain_update(account_key)
        .chain_update(signed)
        .finalize()
        .into()
}

impl DeviceList {
    /// The record value (`walink.DeviceListRecord`).
    pub fn encode(&self) -> Vec<u8> {
        pb::DeviceListRecord {
            format_version: Some(MESSAGING_RECORD_FORMAT),
            raw_id: Some(self.raw_id),
            timestamp: Some(self.timestamp),
            current_index: Some(self.current_index),
            devices: self.devices.iter().map(|&(d, _)| u32::from(d)).collect(),
            key_indexes: self.devices.iter().map(|&(_, k)| k).collect(),
            verified: Some(self.verified.to_vec()),
        }
        .encode_to_vec()
    }

    /// Reads a record value.
    pub fn decode(value: &[u8]) -> Result<DeviceList, RecordError> {
        let record = pb::DeviceListRecord::decode(value).map_err(|_| RecordError::BadProtobuf)?;
        match record.format_version {
            Some(MESSAGING_RECORD_FORMAT) => {}
            other => return Err(RecordError::UnsupportedFormat(other.unwrap_or_default())),
        }
        if record.devices.len() > MESSAGING_MAX_DEVICES_PER_USER {
            return Err(RecordError::TooMany("devices"));
        }
        if record.key_indexes.len() != record.devices.len() {
            return Err(RecordError::BadField("key_indexes"));
        }
        let mut devices: Vec<(u16, u32)> = Vec::with_capacity(record.devices.len());
        for (&device, &key_index) in record.devices.iter().zip(&record.key_indexes) {
            // Companions only, ascending, each once (as `encode` writes them).
            let device = u16::try_from(device)
                .ok()
                .filter(|&d| d != 0 && devices.last().is_none_or(|(last, _)| *last < d))
                .ok_or(RecordError::BadField("devices"))?;
            devices.push((device, key_index));
        }
        Ok(DeviceList {
            raw_id: record.raw_id.ok_or(RecordError::BadField("raw_id"))?,
            timestamp: record.timestamp.ok_or(RecordError::BadField("timestamp"))?,
            current_index: record.current_index.unwrap_or_default(),
            devices,
            verified: record
                .verified
                .as_deref()
                .and_then(|digest| digest.try_into().ok())
                .ok_or(RecordError::BadField("verified"))?,
        })
    }
}

/// What one user's devices come to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The device ids to encrypt for, ascending (device 0 when the server listed it).
    pub devices: Vec<u16>,
    /// A newer verified list to store, if the reply carried one.
    pub store: Option<DeviceList>,
    /// Device ids of the stored list that now name another device (their key index changed,
    /// or the account registered again, device 0 included): whatever they held is gone.
    pub replaced: Vec<u16>,
    /// Why the reply's list was not used, if it was not (the stored list, or device 0 alone,
    /// stood in).
    pub refused: Option<ListRefused>,
}

/// Decides which of the devices a usync reply lists for one user may receive our messages,
/// given the identity key stored for the user's device 0 and the user's last verified list.
pub fn resolve(
    reply: &UserDevices,
    account_key: Option<&[u8; 32]>,
    stored: Option<&DeviceList>,
) -> Resolved {
    let primary: Vec<u16> = reply.devices.iter().copied().filter(|&d| d == 0).collect();
    let refuse = |reason: ListRefused| Resolved {
        devices: fallback(reply, stored, &primary),
        store: None,
        replaced: Vec::new(),
        refused: Some(reason),
    };
    let Some(signed) = &reply.key_index_list else {
        if reply.key_indexes.is_empty() {
            return Resolved {
                devices: primary,
                store: None,
                replaced: Vec::new(),
                refused: None,
            };
        }
        return refuse(ListRefused::Missing);
    };
    if stored.is_some_and(|stored| signed.timestamp < stored.timestamp) {
        return refuse(ListRefused::Stale);
    }
    let Some(account_key) = account_key else {
        return refuse(ListRefused::NoIdentity);
    };
    let digest = verified_digest(account_key, &signed.bytes);
    let known = stored.is_some_and(|stored| stored.verified == digest);
    let list = match check_key_index_list(&signed.bytes, (!known).then_some(account_key)) {
        Ok(list) => list,
        Err(reason) => return refuse(reason),
    };
    if list.timestamp != signed.timestamp {
        return refuse(ListRefused::TimestampMismatch);
    }
    let same_account = stored.filter(|stored| stored.raw_id == list.raw_id);
    let claimed_twice = |key_index: u32| {
        reply
            .key_indexes
            .iter()
            .filter(|(_, k)| *k == key_index)
            .count()
            > 1
    };
    let owner = |key_index: u32| {
        same_account.and_then(|stored| {
            stored
                .devices
                .iter()
                .find(|(_, k)| *k == key_index)
                .map(|(device, _)| *device)
        })
    };
    // Kept ascending by device id without a sort: the answer's companions come ascending, and
    // stored ones are put in place.
    let mut kept: Vec<(u16, u32)> = Vec::new();
    let mut keep = |device: u16, key_index: u32| {
        if let Err(at) = kept.binary_search_by_key(&device, |(d, _)| *d) {
            kept.insert(at, (device, key_index));
        }
    };
    for &(device, key_index) in &reply.key_indexes {
        let vouched = list.valid_indexes.contains(&key_index)
            && match owner(key_index) {
                Some(owner) => owner == device,
                None => !claimed_twice(key_index),
            };
        if vouched {
            keep(device, key_index);
        }
    }
    if let Some(stored) = same_account {
        for &(device, key_index) in &stored.devices {
            if key_index > list.current_index {
                keep(device, key_index);
            }
        }
    }
    kept.truncate(MESSAGING_MAX_DEVICES_PER_USER);
    let replaced = match (stored, same_account) {
        (Some(stored), None) => core::iter::once(0)
            .chain(stored.devices.iter().map(|(device, _)| *device))
            .collect(),
        (_, Some(stored)) => stored
            .devices
            .iter()
            .filter(|(device, key_index)| kept.iter().any(|(d, k)| d == device && k != key_index))
            .map(|(device, _)| *device)
            .collect(),
        (None, None) => Vec::new(),
    };
    let update = DeviceList {
        raw_id: list.raw_id,
        timestamp: list.timestamp,
        current_index: list.current_index,
        devices: kept.clone(),
        verified: digest,
    };
    let mut devices = primary;
    devices.extend(kept.iter().map(|(device, _)| *device));
    Resolved {
        devices,
        store: (stored != Some(&update)).then_some(update),
        replaced,
        refused: None,
    }
}

/// The devices used when a reply's list is not: device 0 (if listed) and the companions of the
/// last verified list that the server still lists with the same key index.
fn fallback(reply: &UserDevices, stored: Option<&DeviceList>, primary: &[u16]) -> Vec<u16> {
    let mut devices = primary.to_vec();
    if let Some(stored) = stored {
        devices.extend(
            stored
                .devices
                .iter()
                .filter(|entry| reply.key_indexes.contains(entry))
                .map(|(device, _)| *device),
        );
    }
    devices
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::client::messaging::address::DeviceAddress;
    use crate::client::messaging::usync::SignedKeyIndexList;
    use crate::signal::PrivateKey;

    struct Primary {
        private: [u8; 32],
    }

    impl Primary {
        fn new(seed: u8) -> Primary {
            Primary {
                private: [seed; 32],
            }
        }

        fn key(&self) -> [u8; 32] {
            *PrivateKey::from_bytes(self.private).public_key().raw()
        }

        /// A list signed by this primary (written here from the field numbers, not with
        /// `verify_key_index_list`'s types).
        fn sign(&self, raw_id: u32, timestamp: u64, current: u32, valid: &[u32]) -> Vec<u8> {
            let details = wa::AdvKeyIndexList {
                raw_id: Some(raw_id),
                timestamp: Some(timestamp),
                current_index: Some(current),
                valid_indexes: valid.to_vec(),
                account_type: None,
            }
            .encode_to_vec();
            let message = [&KEY_INDEX_LIST_PREFIX[..], &details].concat();
            let signature = xeddsa::sign(&self.private, &message, &[7; 64]);
            wa::AdvSignedKeyIndexList {
                details: Some(details),
                account_signature: Some(signature.to_vec()),
                account_signature_key: Some(self.key().to_vec()),
            }
            .encode_to_vec()
        }
    }

    fn reply(devices: &[(u16, u32)], list: Option<(u64, Vec<u8>)>) -> UserDevices {
        let mut ids = vec![0];
        ids.extend(devices.iter().map(|(d, _)| *d));
        UserDevices {
            user: DeviceAddress::parse("111@s.whatsapp.net").unwrap(),
            lid: None,
            devices: ids,
            key_indexes: devices.to_vec(),
            key_index_list: list.map(|(timestamp, bytes)| SignedKeyIndexList { timestamp, bytes }),
        }
    }

    #[test]
    fn keeps_only_companions_the_signed_list_covers() {
        let primary = Primary::new(1);
        let list = primary.sign(9, 100, 4, &[2, 4]);
        let resolved = resolve(
            &reply(&[(3, 2), (5, 4), (7, 3)], Some((100, list))),
            Some(&primary.key()),
            None,
        );
        assert_eq!(
            resolved.devices,
            [0, 3, 5],
            "device 7's index 3 is not vouched for"
        );
        assert_eq!(resolved.refused, None);
        let stored = resolved.store.unwrap();
        assert_eq!(
            (stored.raw_id, stored.timestamp, stored.current_index),
            (9, 100, 4)
        );
        assert_eq!(stored.devices, [(3, 2), (5, 4)]);
    }

    #[test]
    fn a_list_that_does_not_verify_keeps_the_last_verified_one() {
        let primary = Primary::new(1);
        let server = Primary::new(2);
        let stored = DeviceList {
            raw_id: 9,
            timestamp: 100,
            current_index: 2,
            devices: vec![(3, 2)],
            verified: [0; 32],
        };
        let claims = [(3, 2), (8, 5)];
        for (list, reason) in [
            (server.sign(9, 200, 5, &[2, 5]), ListRefused::BadSignature),
            (vec![1, 2, 3], ListRefused::Malformed),
            (primary.sign(9, 50, 5, &[2, 5]), ListRefused::Stale),
            (
                primary.sign(9, 300, 5, &[2, 5]),
                ListRefused::TimestampMismatch,
            ),
        ] {
            let ts = if reason == ListRefused::Stale {
                50
            } else {
                200
            };
            let resolved = resolve(
                &reply(&claims, Some((ts, list))),
                Some(&primary.key()),
                Some(&stored),
            );
            assert_eq!(resolved.devices, [0, 3], "{reason:?}");
            assert_eq!(resolved.refused, Some(reason));
            assert_eq!(resolved.store, None);
        }
        // The list's own embedded key is never trusted, and without a stored identity nothing
        // verifies.
        let forged = server.sign(9, 200, 5, &[2, 5]);
        let resolved = resolve(&reply(&claims, Some((200, forged))), None, None);
        assert_eq!(resolved.devices, [0]);
        assert_eq!(resolved.refused, Some(ListRefused::NoIdentity));
        // Companions without a list at all.
        let resolved = resolve(&reply(&claims, None), Some(&primary.key()), Some(&stored));
        assert_eq!(resolved.devices, [0, 3]);
        assert_eq!(resolved.refused, Some(ListRefused::Missing));
        // A primary alone needs no list.
        let resolved = resolve(&reply(&[], None), Some(&primary.key()), None);
        assert_eq!(resolved.devices, [0]);
        assert_eq!(resolved.refused, None);
    }

    #[test]
    fn a_known_index_cannot_move_to_another_device() {
        let primary = Primary::new(1);
        let stored = DeviceList {
            raw_id: 9,
            timestamp: 100,
            current_index: 2,
            devices: vec![(3, 2)],
            verified: [0; 32],
        };
        let list = primary.sign(9, 200, 2, &[2]);
        // Device 9 claims device 3's index: dropped; device 3 stays.
        let resolved = resolve(
            &reply(&[(3, 2), (9, 2)], Some((200, list.clone()))),
            Some(&primary.key()),
            Some(&stored),
        );
        assert_eq!(resolved.devices, [0, 3]);
        // Without a stored list, an index claimed twice is dropped for both.
        let resolved = resolve(
            &reply(&[(3, 2), (9, 2)], Some((200, list))),
            Some(&primary.key()),
            None,
        );
        assert_eq!(resolved.devices, [0]);
    }

    #[test]
    fn a_new_raw_id_replaces_every_device_and_a_new_index_replaces_its_device() {
        let primary = Primary::new(1);
        let stored = DeviceList {
            raw_id: 9,
            timestamp: 100,
            current_index: 2,
            devices: vec![(3, 2), (4, 1)],
            verified: [0; 32],
        };
        let list = primary.sign(10, 200, 1, &[1]);
        let resolved = resolve(
            &reply(&[(3, 1)], Some((200, list))),
            Some(&primary.key()),
            Some(&stored),
        );
        assert_eq!(resolved.devices, [0, 3]);
        assert_eq!(resolved.replaced, [0, 3, 4]);
        // Same raw id: device 4 gone (the rotation check sees it missing), device 3 now names
        // the device with index 5.
        let list = primary.sign(9, 200, 5, &[5]);
        let resolved = resolve(
            &reply(&[(3, 5)], Some((200, list))),
            Some(&primary.key()),
            Some(&stored),
        );
        assert_eq!(resolved.devices, [0, 3]);
        assert_eq!(resolved.replaced, [3]);
    }

    #[test]
    fn stored_companions_newer_than_the_list_stay_and_an_unchanged_list_is_not_stored_again() {
        let primary = Primary::new(1);
        let stored = DeviceList {
            raw_id: 9,
            timestamp: 100,
            current_index: 3,
            devices: vec![(3, 2), (6, 3)],
            verified: [0; 32],
        };
        // A list signed before index 3 was handed out (current 2) still lets device 6 stay.
        let list = primary.sign(9, 100, 2, &[2]);
        let resolved = resolve(
            &reply(&[(3, 2)], Some((100, list))),
            Some(&primary.key()),
            Some(&stored),
        );
        assert_eq!(resolved.devices, [0, 3, 6]);
        assert!(resolved.store.is_some());
        let list = primary.sign(9, 100, 3, &[2, 3]);
        let claims = reply(&[(3, 2), (6, 3)], Some((100, list)));
        let first = resolve(&claims, Some(&primary.key()), Some(&stored));
        assert_eq!(first.devices, [0, 3, 6]);
        let verified = first.store.unwrap();
        // The same list again (known by its digest, not verified a second time): unchanged.
        let again = resolve(&claims, Some(&primary.key()), Some(&verified));
        assert_eq!(again.devices, [0, 3, 6]);
        assert_eq!(again.store, None);
        // The same bytes under another key are not "known": they are verified, and fail.
        let other = Primary::new(3);
        let forged = resolve(&claims, Some(&other.key()), Some(&verified));
        assert_eq!(forged.refused, Some(ListRefused::BadSignature));
    }

    #[test]
    fn records_round_trip_and_bad_records_are_typed_errors() {
        let list = DeviceList {
            raw_id: 9,
            timestamp: 100,
            current_index: 3,
            devices: vec![(3, 2), (6, 3)],
            verified: [5; 32],
        };
        assert_eq!(DeviceList::decode(&list.encode()).unwrap(), list);
        assert_eq!(DeviceList::decode(&[0xff]), Err(RecordError::BadProtobuf));
        let wrong = pb::DeviceListRecord {
            format_version: Some(2),
            ..Default::default()
        }
        .encode_to_vec();
        assert_eq!(
            DeviceList::decode(&wrong),
            Err(RecordError::UnsupportedFormat(2))
        );
        let device_zero = pb::DeviceListRecord {
            format_version: Some(MESSAGING_RECORD_FORMAT),
            raw_id: Some(1),
            timestamp: Some(1),
            devices: vec![0],
            key_indexes: vec![1],
            ..Default::default()
        }
        .encode_to_vec();
        assert_eq!(
            DeviceList::decode(&device_zero),
            Err(RecordError::BadField("devices"))
        );
    }
}
