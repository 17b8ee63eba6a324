//! walink's storage encodings of app-state data (`core/proto/walink_appstate.proto`): one
//! record per collection state, one per sync key, one for the view. Each carries a format
//! version; decoding checks every bound and, for a collection state, that the stored LTHash is
//! the sum of the stored value MACs.

use std::collections::{BTreeMap, BTreeSet};

use prost::Message;

use crate::limits::{
    APPSTATE_MAX_RECORD_LEN, APPSTATE_MAX_SNAPSHOT_RECORDS, APPSTATE_MAX_VIEW_ENTRIES,
};
use crate::proto::walink;
use crate::proto_bounds::{self, BoundsError, Field};

use super::PatchError;
use super::actions::MuteUntil;
use super::keys::{Fingerprint, KeyId, SyncKey};
use super::lthash::LtHash;
use super::state::{Collection, CollectionState, Mac};
use super::view::{ChatSettings, Contact, Label, MessageLabel, SettingsView, StarredMessage};

/// The format version written by this code.
pub const FORMAT: u32 = 1;

fn check_len(bytes: &[u8]) -> Result<(), PatchError> {
    if bytes.len() > APPSTATE_MAX_RECORD_LEN {
        return Err(PatchError::TooLarge("app-state record"));
    }
    Ok(())
}

fn check_format(format: Option<u32>) -> Result<(), PatchError> {
    if format != Some(FORMAT) {
        return Err(PatchError::Malformed("record format"));
    }
    Ok(())
}

/// Encodes a collection's state.
pub fn encode_collection(collection: Collection, state: &CollectionState) -> Vec<u8> {
    let mut macs = Vec::with_capacity(state.index_value_macs().len() * 64);
    for (index_mac, value_mac) in state.index_value_macs() {
        macs.extend_from_slice(index_mac);
        macs.extend_from_slice(value_mac);
    }
    walink::AppStateCollection {
        format: Some(FORMAT),
        name: Some(collection.name().to_owned()),
        version: Some(state.version()),
        hash: Some(state.hash().as_bytes().to_vec()),
        macs: Some(macs),
    }
    .encode_to_vec()
}

/// Decodes a collection's state.
pub fn decode_collection(bytes: &[u8]) -> Result<(Collection, CollectionState), PatchError> {
    check_len(bytes)?;
    let record = walink::AppStateCollection::decode(bytes).map_err(|_| PatchError::Protobuf)?;
    check_format(record.format)?;
    let collection = Collection::from_name(record.name.as_deref().unwrap_or_default())?;
    let hash = LtHash::from_slice(record.hash.as_deref().unwrap_or_default())
        .ok_or(PatchError::Malformed("stored lthash"))?;
    let macs = record.macs.unwrap_or_default();
    if macs.len() % 64 != 0 {
        return Err(PatchError::Malformed("stored macs"));
    }
    if macs.len() / 64 > APPSTATE_MAX_SNAPSHOT_RECORDS {
        return Err(PatchError::TooLarge("collection entries"));
    }
    let mut map = BTreeMap::new();
    for entry in macs.chunks_exact(64) {
        let (index_mac, value_mac) = entry.split_at(32);
        let index_mac: Mac = index_mac
            .try_into()
            .map_err(|_| PatchError::Malformed("stored macs"))?;
        let value_mac: Mac = value_mac
            .try_into()
            .map_err(|_| PatchError::Malformed("stored macs"))?;
        if map.insert(index_mac, value_mac).is_some() {
            return Err(PatchError::Malformed("stored macs repeat an index"));
        }
    }
    let state = CollectionState::from_parts(record.version.unwrap_or_default(), hash, map)?;
    Ok((collection, state))
}

/// Encodes a sync key.
pub fn encode_key(key: &SyncKey) -> Vec<u8> {
    let fingerprint = key.fingerprint();
    walink::AppStateSyncKeyRecord {
        format: Some(FORMAT),
        key_id: Some(key.id().as_bytes().to_vec()),
        key_data: Some(key.data().to_vec()),
        timestamp: Some(key.timestamp()),
        has_fingerprint: Some(fingerprint.is_some()),
        raw_id: fingerprint.map(|f| f.raw_id),
        current_index: fingerprint.map(|f| f.current_index),
        device_indexes: fingerprint
            .map(|f| f.device_indexes.clone())
            .unwrap_or_default(),
    }
    .encode_to_vec()
}

/// Decodes a sync key.
pub fn decode_key(bytes: &[u8]) -> Result<SyncKey, PatchError> {
    check_len(bytes)?;
    let mut record =
        walink::AppStateSyncKeyRecord::decode(bytes).map_err(|_| PatchError::Protobuf)?;
    check_format(record.format)?;
    let id = KeyId::new(record.key_id.as_deref().unwrap_or_default())?;
    let data = zeroize::Zeroizing::new(record.key_data.take().unwrap_or_default());
    let data: [u8; 32] = data
        .as_slice()
        .try_into()
        .map_err(|_| PatchError::Malformed("stored key data"))?;
    let fingerprint = record
        .has_fingerprint
        .unwrap_or_default()
        .then(|| Fingerprint {
            raw_id: record.raw_id.unwrap_or_default(),
            current_index: record.current_index.unwrap_or_default(),
            device_indexes: record.device_indexes.clone(),
        });
    let key = SyncKey::new(id, data, fingerprint, record.timestamp.unwrap_or_default());
    let mut data = data;
    zeroize::Zeroize::zeroize(&mut data);
    Ok(key)
}

/// Encodes the view.
pub fn encode_view(view: &SettingsView) -> Vec<u8> {
    walink::AppStateView {
        format: Some(FORMAT),
        chats: view
            .chats
            .iter()
            .map(|(chat, s)| walink::AppStateChat {
                chat: Some(chat.clone()),
                mute_end: s.muted_until.map(MuteUntil::wire),
                pinned_at: s.pinned_at,
                archived: Some(s.archived),
                marked_unread: Some(s.marked_unread),
                labels: s.labels.iter().cloned().collect(),
            })
            .collect(),
        starred: view
            .starred
            .iter()
            .map(|m| walink::AppStateStarred {
                chat: Some(m.chat.clone()),
                message_id: Some(m.message_id.clone()),
                from_me: Some(m.from_me),
                participant: m.participant.clone(),
            })
            .collect(),
        contacts: view
            .contacts
            .iter()
            .map(|(jid, c)| walink::AppStateContact {
                jid: Some(jid.clone()),
                full_name: c.full_name.clone(),
                first_name: c.first_name.clone(),
            })
            .collect(),
        labels: view
            .labels
            .iter()
            .map(|(id, l)| walink::AppStateLabel {
                label_id: Some(id.clone()),
                name: Some(l.name.clone()),
                color: Some(l.color),
                deleted: Some(l.deleted),
                predefined_id: l.predefined_id,
            })
            .collect(),
        message_labels: view
            .message_labels
            .iter()
            .map(|m| walink::AppStateMessageLabel {
                label_id: Some(m.label_id.clone()),
                chat: Some(m.chat.clone()),
                message_id: Some(m.message_id.clone()),
            })
            .collect(),
    }
    .encode_to_vec()
}

/// One kind of view entry (field `number` of `AppStateView`): its bound, and what an entry costs
/// decoded and then in the view (`entry`, plus a string key), counted before decoding.
const fn view_entries<T>(number: u32, entry: usize, fields: &'static [Field]) -> Field {
    Field {
        number,
        max: APPSTATE_MAX_VIEW_ENTRIES,
        size: size_of::<T>() + size_of::<String>() + entry,
        fields,
    }
}

static VIEW_FIELDS: [Field; 5] = [
    view_entries::<walink::AppStateChat>(
        2,
        size_of::<ChatSettings>(),
        &[Field {
            number: 6,
            max: APPSTATE_MAX_VIEW_ENTRIES,
            size: 2 * size_of::<String>(),
            fields: &[],
        }],
    ),
    view_entries::<walink::AppStateStarred>(3, size_of::<StarredMessage>(), &[]),
    view_entries::<walink::AppStateContact>(4, size_of::<Contact>(), &[]),
    view_entries::<walink::AppStateLabel>(5, size_of::<Label>(), &[]),
    view_entries::<walink::AppStateMessageLabel>(6, size_of::<MessageLabel>(), &[]),
];

/// Decodes the view. Its entries are counted (against `limits::APPSTATE_MAX_VIEW_ENTRIES`) and
/// their memory charged to the record's decode budget before anything is decoded.
pub fn decode_view(bytes: &[u8]) -> Result<SettingsView, PatchError> {
    check_len(bytes)?;
    proto_bounds::check(bytes, &VIEW_FIELDS).map_err(|error| match error {
        BoundsError::Malformed => PatchError::Protobuf,
        BoundsError::TooMany(_) | BoundsError::OverBudget => PatchError::TooLarge("view entries"),
    })?;
    let record = walink::AppStateView::decode(bytes).map_err(|_| PatchError::Protobuf)?;
    check_format(record.format)?;
    let mut view = SettingsView::new();
    for chat in record.chats {
        let mut settings = ChatSettings {
            muted_until: match chat.mute_end {
                None => None,
                Some(-1) => Some(MuteUntil::Forever),
                Some(end) if end > 0 => Some(MuteUntil::Until(end)),
                Some(_) => return Err(PatchError::Malformed("stored mute end")),
            },
            pinned_at: chat.pinned_at,
            archived: chat.archived.unwrap_or_default(),
            marked_unread: chat.marked_unread.unwrap_or_default(),
            labels: BTreeSet::new(),
        };
        // Inserted one by one: collecting would link a stable sort of strings and
        // `BTreeSet`'s bulk build for this one place (docs/decisions.md, "wasm size").
        for label in chat.labels {
            settings.labels.insert(label);
        }
        view.chats.insert(
            chat.chat.ok_or(PatchError::Malformed("stored chat"))?,
            settings,
        );
    }
    for m in record.starred {
        view.starred.insert(StarredMessage {
            chat: m.chat.unwrap_or_default(),
            message_id: m.message_id.unwrap_or_default(),
            from_me: m.from_me.unwrap_or_default(),
            participant: m.participant,
        });
    }
    for c in record.contacts {
        view.contacts.insert(
            c.jid.ok_or(PatchError::Malformed("stored contact"))?,
            Contact {
                full_name: c.full_name,
                first_name: c.first_name,
            },
        );
    }
    for l in record.labels {
        view.labels.insert(
            l.label_id.ok_or(PatchError::Malformed("stored label"))?,
            Label {
                name: l.name.unwrap_or_default(),
                color: l.color.unwrap_or_default(),
                deleted: l.deleted.unwrap_or_default(),
                predefined_id: l.predefined_id,
            },
        );
    }
    for m in record.message_labels {
        view.message_labels.insert(MessageLabel {
            label_id: m.label_id.unwrap_or_default(),
            chat: m.chat.unwrap_or_default(),
            message_id: m.message_id.unwrap_or_default(),
        });
    }
    Ok(view)
}
