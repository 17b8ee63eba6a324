//! Typed sync actions: read from decoded mutations and encoded into outgoing patches.
//!
//! Indexes, collections and action versions as WhatsApp Web writes them, per
//! WhiskeySockets/Baileys src/Utils/chat-utils.ts (`chatModificationToAppPatch`) and
//! tulir/whatsmeow:appstate/encode.go (`BuildMute`, `BuildMuteAbs`, `BuildPin`, `BuildArchive`,
//! `BuildStar`, `BuildLabelChat`, `BuildLabelMessage`):
//!
//! | action | index | collection | version |
//! | --- | --- | --- | --- |
//! | mute | `["mute", chat]` | regular_high | 2 |
//! | pin | `["pin_v1", chat]` | regular_low | 5 |
//! | archive | `["archive", chat]` | regular_low | 3 |
//! | mark read | `["markChatAsRead", chat]` | regular_low | 3 |
//! | star | `["star", chat, id, fromMe, participant or "0"]` | regular_high | 2 |
//! | delete chat | `["deleteChat", chat, "1"]` | regular_high | 6 |
//! | clear chat | `["clearChat", chat, "1", "0"]` | regular_high | 6 |
//! | contact | `["contact", jid]` | critical_unblock_low | 2 |
//! | label edit | `["label_edit", labelId]` | regular | 3 |
//! | label chat | `["label_jid", labelId, chat]` | regular | 3 |
//! | label message | `["label_message", labelId, chat, id, "0", "0"]` | regular | 3 |
//!
//! A chat muted forever carries `muteEndTimestamp = -1` (whatsmeow `BuildMuteAbs`); reading,
//! a missing, zero or negative end also means forever.

use std::collections::BTreeMap;

use prost::Message;
use rand_core::CryptoRng;

use crate::proto::wa;
use crate::proto::wa::sync_action_value as sav;

use super::PatchError;
use super::crypto::IV_LEN;
use super::index;
use super::keys::{KeyId, SyncKey};
use super::state::{Collection, CollectionState, DecodedMutation, Mac, Operation};

/// Until when a chat is muted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MuteUntil {
    /// Muted with no end.
    Forever,
    /// Muted until this time (Unix milliseconds).
    Until(i64),
}

impl MuteUntil {
    /// A mute ending at `end_ms` (Unix milliseconds); 0 means forever, negative is an error.
    pub fn at(end_ms: i64) -> Result<MuteUntil, PatchError> {
        match end_ms {
            0 => Ok(MuteUntil::Forever),
            end if end < 0 => Err(PatchError::InvalidAction("negative mute end")),
            end => Ok(MuteUntil::Until(end)),
        }
    }

    /// A mute lasting `duration_ms` from `now_ms`; 0 means forever, negative is an error.
    pub fn after(now_ms: i64, duration_ms: i64) -> Result<MuteUntil, PatchError> {
        match duration_ms {
            0 => Ok(MuteUntil::Forever),
            d if d < 0 => Err(PatchError::InvalidAction("negative mute duration")),
            d => now_ms
                .checked_add(d)
                .map(MuteUntil::Until)
                .ok_or(PatchError::InvalidAction("mute end overflows")),
        }
    }

    /// The `muteEndTimestamp` on the wire (-1 for forever).
    pub fn wire(self) -> i64 {
        match self {
            MuteUntil::Forever => -1,
            MuteUntil::Until(end) => end,
        }
    }

    /// Whether the mute is still on at `now_ms`.
    pub fn is_active(self, now_ms: i64) -> bool {
        match self {
            MuteUntil::Forever => true,
            MuteUntil::Until(end) => now_ms < end,
        }
    }
}

/// One message named in a [`MessageRange`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageRef {
    /// The message id.
    pub id: String,
    /// Whether this account sent it.
    pub from_me: bool,
    /// The sender, in groups.
    pub participant: Option<String>,
    /// Its timestamp (seconds).
    pub timestamp: i64,
}

/// The last messages of a chat as this device saw them when it archived, read, cleared or
/// deleted the chat (`SyncActionMessageRange`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageRange {
    /// The timestamp of the last message (seconds).
    pub last_message_timestamp: i64,
    /// The timestamp of the last system message, if any.
    pub last_system_message_timestamp: Option<i64>,
    /// The last messages.
    pub messages: Vec<MessageRef>,
}

impl MessageRange {
    fn to_wire(&self, chat: &str) -> sav::SyncActionMessageRange {
        sav::SyncActionMessageRange {
            last_message_timestamp: Some(self.last_message_timestamp),
            last_system_message_timestamp: self.last_system_message_timestamp,
            messages: self
                .messages
                .iter()
                .map(|m| sav::SyncActionMessage {
                    key: Some(wa::MessageKey {
                        remote_jid: Some(chat.to_owned()),
                        from_me: Some(m.from_me),
                        id: Some(m.id.clone()),
                        participant: m.participant.clone(),
                    }),
                    timestamp: Some(m.timestamp),
                })
                .collect(),
        }
    }

    fn from_wire(range: Option<&sav::SyncActionMessageRange>) -> MessageRange {
        let Some(range) = range else {
            return MessageRange::default();
        };
        MessageRange {
            last_message_timestamp: range.last_message_timestamp.unwrap_or_default(),
            last_system_message_timestamp: range.last_system_message_timestamp,
            messages: range
                .messages
                .iter()
                .map(|m| {
                    let key = m.key.clone().unwrap_or_default();
                    MessageRef {
                        id: key.id.unwrap_or_default(),
                        from_me: key.from_me.unwrap_or_default(),
                        participant: key.participant,
                        timestamp: m.timestamp.unwrap_or_default(),
                    }
                })
                .collect(),
        }
    }
}

/// A sync action, typed. Outgoing actions are encoded with [`encode_patch`]; incoming ones are
/// read from a [`DecodedMutation`] with [`SyncAction::from_mutation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncAction {
    /// Mute a chat.
    Mute {
        /// The chat JID.
        chat: String,
        /// Until when.
        until: MuteUntil,
    },
    /// Unmute a chat.
    Unmute {
        /// The chat JID.
        chat: String,
    },
    /// Pin or unpin a chat.
    Pin {
        /// The chat JID.
        chat: String,
        /// Pinned or not.
        pinned: bool,
    },
    /// Archive or unarchive a chat.
    Archive {
        /// The chat JID.
        chat: String,
        /// Archived or not.
        archived: bool,
        /// The chat's last messages.
        range: MessageRange,
    },
    /// Mark a chat read or unread.
    MarkRead {
        /// The chat JID.
        chat: String,
        /// Read (true) or marked unread (false).
        read: bool,
        /// The chat's last messages.
        range: MessageRange,
    },
    /// Star or unstar a message.
    Star {
        /// The chat JID.
        chat: String,
        /// The message id.
        message_id: String,
        /// Whether this account sent it.
        from_me: bool,
        /// The sender, in groups.
        participant: Option<String>,
        /// Starred or not.
        starred: bool,
    },
    /// Delete a chat.
    DeleteChat {
        /// The chat JID.
        chat: String,
        /// The chat's last messages.
        range: MessageRange,
    },
    /// Clear a chat's messages (starred ones included).
    ClearChat {
        /// The chat JID.
        chat: String,
        /// The chat's last messages.
        range: MessageRange,
    },
    /// Set a contact's name.
    Contact {
        /// The contact's JID.
        jid: String,
        /// The full name.
        full_name: Option<String>,
        /// The first name.
        first_name: Option<String>,
    },
    /// Remove a contact (a REMOVE mutation of its index).
    RemoveContact {
        /// The contact's JID.
        jid: String,
    },
    /// Create, edit or delete a label.
    LabelEdit {
        /// The label id.
        label_id: String,
        /// Its name.
        name: String,
        /// Its colour index.
        color: i32,
        /// Whether it was deleted.
        deleted: bool,
        /// The id of a predefined label it stands for.
        predefined_id: Option<i32>,
    },
    /// Add a label to a chat or take it off.
    LabelChat {
        /// The label id.
        label_id: String,
        /// The chat JID.
        chat: String,
        /// Labeled or not.
        labeled: bool,
    },
    /// Add a label to a message or take it off.
    LabelMessage {
        /// The label id.
        label_id: String,
        /// The chat JID.
        chat: String,
        /// The message id.
        message_id: String,
        /// Labeled or not.
        labeled: bool,
    },
    /// An action walink does not interpret (it still counts in the LTHash).
    Unsupported {
        /// The first element of the index (the action's name), or empty.
        name: String,
    },
}

fn part(index: &[String], at: usize) -> Option<String> {
    index.get(at).cloned()
}

impl SyncAction {
    /// The collection the action belongs to.
    pub fn collection(&self) -> Result<Collection, PatchError> {
        Ok(match self {
            SyncAction::Mute { .. }
            | SyncAction::Unmute { .. }
            | SyncAction::Star { .. }
            | SyncAction::DeleteChat { .. }
            | SyncAction::ClearChat { .. } => Collection::RegularHigh,
            SyncAction::Pin { .. } | SyncAction::Archive { .. } | SyncAction::MarkRead { .. } => {
                Collection::RegularLow
            }
            SyncAction::Contact { .. } | SyncAction::RemoveContact { .. } => {
                Collection::CriticalUnblockLow
            }
            SyncAction::LabelEdit { .. }
            | SyncAction::LabelChat { .. }
            | SyncAction::LabelMessage { .. } => Collection::Regular,
            SyncAction::Unsupported { .. } => {
                return Err(PatchError::InvalidAction("unsupported action"));
            }
        })
    }

    /// The operation the action is sent as.
    pub fn operation(&self) -> Operation {
        match self {
            SyncAction::RemoveContact { .. } => Operation::Remove,
            _ => Operation::Set,
        }
    }

    /// The JSON index elements.
    pub fn index(&self) -> Result<Vec<String>, PatchError> {
        let s = |v: &str| v.to_owned();
        let flag = |b: bool| if b { "1" } else { "0" }.to_owned();
        let parts = match self {
            SyncAction::Mute { chat, .. } | SyncAction::Unmute { chat } => vec![s("mute"), s(chat)],
            SyncAction::Pin { chat, .. } => vec![s("pin_v1"), s(chat)],
            SyncAction::Archive { chat, .. } => vec![s("archive"), s(chat)],
            SyncAction::MarkRead { chat, .. } => vec![s("markChatAsRead"), s(chat)],
            SyncAction::Star {
                chat,
                message_id,
                from_me,
                participant,
                ..
            } => vec![
                s("star"),
                s(chat),
                s(message_id),
                flag(*from_me),
                participant.clone().unwrap_or_else(|| s("0")),
            ],
            SyncAction::DeleteChat { chat, .. } => vec![s("deleteChat"), s(chat), s("1")],
            SyncAction::ClearChat { chat, .. } => vec![s("clearChat"), s(chat), s("1"), s("0")],
            SyncAction::Contact { jid, .. } | SyncAction::RemoveContact { jid } => {
                vec![s("contact"), s(jid)]
            }
            SyncAction::LabelEdit { label_id, .. } => vec![s("label_edit"), s(label_id)],
            SyncAction::LabelChat { label_id, chat, .. } => {
                vec![s("label_jid"), s(label_id), s(chat)]
            }
            SyncAction::LabelMessage {
                label_id,
                chat,
                message_id,
                ..
            } => vec![
                s("label_message"),
                s(label_id),
                s(chat),
                s(message_id),
                s("0"),
                s("0"),
            ],
            SyncAction::Unsupported { .. } => {
                return Err(PatchError::InvalidAction("unsupported action"));
            }
        };
        if parts.iter().skip(1).take(2).any(String::is_empty) {
            return Err(PatchError::InvalidAction("empty jid or id"));
        }
        Ok(parts)
    }

    /// The action's schema version (`SyncActionData.version`).
    pub fn action_version(&self) -> i32 {
        match self {
            SyncAction::Mute { .. }
            | SyncAction::Unmute { .. }
            | SyncAction::Star { .. }
            | SyncAction::Contact { .. }
            | SyncAction::RemoveContact { .. } => 2,
            SyncAction::Archive { .. }
            | SyncAction::MarkRead { .. }
            | SyncAction::LabelEdit { .. }
            | SyncAction::LabelChat { .. }
            | SyncAction::LabelMessage { .. } => 3,
            SyncAction::Pin { .. } => 5,
            SyncAction::DeleteChat { .. } | SyncAction::ClearChat { .. } => 6,
            SyncAction::Unsupported { .. } => 0,
        }
    }

    /// The `SyncActionValue` of the action, stamped with `timestamp_ms`.
    pub fn value(&self, timestamp_ms: i64) -> wa::SyncActionValue {
        let mut value = wa::SyncActionValue {
            timestamp: Some(timestamp_ms),
            ..Default::default()
        };
        match self {
            SyncAction::Mute { until, .. } => {
                value.mute_action = Some(sav::MuteAction {
                    muted: Some(true),
                    mute_end_timestamp: Some(until.wire()),
                    auto_muted: None,
                });
            }
            SyncAction::Unmute { .. } => {
                value.mute_action = Some(sav::MuteAction {
                    muted: Some(false),
                    ..Default::default()
                });
            }
            SyncAction::Pin { pinned, .. } => {
                value.pin_action = Some(sav::PinAction {
                    pinned: Some(*pinned),
                });
            }
            SyncAction::Archive {
                chat,
                archived,
                range,
            } => {
                value.archive_chat_action = Some(sav::ArchiveChatAction {
                    archived: Some(*archived),
                    message_range: Some(range.to_wire(chat)),
                });
            }
            SyncAction::MarkRead { chat, read, range } => {
                value.mark_chat_as_read_action = Some(sav::MarkChatAsReadAction {
                    read: Some(*read),
                    message_range: Some(range.to_wire(chat)),
                });
            }
            SyncAction::Star { starred, .. } => {
                value.star_action = Some(sav::StarAction {
                    starred: Some(*starred),
                });
            }
            SyncAction::DeleteChat { chat, range } => {
                value.delete_chat_action = Some(sav::DeleteChatAction {
                    message_range: Some(range.to_wire(chat)),
                });
            }
            SyncAction::ClearChat { chat, range } => {
                value.clear_chat_action = Some(sav::ClearChatAction {
                    message_range: Some(range.to_wire(chat)),
                });
            }
            SyncAction::Contact {
                full_name,
                first_name,
                ..
            } => {
                value.contact_action = Some(sav::ContactAction {
                    full_name: full_name.clone(),
                    first_name: first_name.clone(),
                    ..Default::default()
                });
            }
            SyncAction::RemoveContact { .. } => {
                value.contact_action = Some(sav::ContactAction::default());
            }
            SyncAction::LabelEdit {
                name,
                color,
                deleted,
                predefined_id,
                ..
            } => {
                value.label_edit_action = Some(sav::LabelEditAction {
                    name: Some(name.clone()),
                    color: Some(*color),
                    predefined_id: *predefined_id,
                    deleted: Some(*deleted),
                    ..Default::default()
                });
            }
            SyncAction::LabelChat { labeled, .. } | SyncAction::LabelMessage { labeled, .. } => {
                value.label_association_action = Some(sav::LabelAssociationAction {
                    labeled: Some(*labeled),
                });
            }
            SyncAction::Unsupported { .. } => {}
        }
        value
    }

    /// Reads the action of a decoded mutation. Anything walink does not interpret, or whose
    /// index and value disagree, is [`SyncAction::Unsupported`].
    pub fn from_mutation(mutation: &DecodedMutation) -> SyncAction {
        SyncAction::read(mutation).unwrap_or_else(|| SyncAction::Unsupported {
            name: mutation.index.first().cloned().unwrap_or_default(),
        })
    }

    fn read(mutation: &DecodedMutation) -> Option<SyncAction> {
        let index = &mutation.index;
        let name = index.first()?.as_str();
        let default = wa::SyncActionValue::default();
        let value = mutation.value.as_ref().unwrap_or(&default);
        let chat = part(index, 1);
        Some(match name {
            "mute" => {
                let mute = value.mute_action.as_ref()?;
                if mute.muted == Some(true) {
                    let until = match mute.mute_end_timestamp {
                        Some(end) if end > 0 => MuteUntil::Until(end),
                        _ => MuteUntil::Forever,
                    };
                    SyncAction::Mute { chat: chat?, until }
                } else {
                    SyncAction::Unmute { chat: chat? }
                }
            }
            "pin_v1" => SyncAction::Pin {
                chat: chat?,
                pinned: value.pin_action.as_ref()?.pinned.unwrap_or_default(),
            },
            "archive" => {
                let action = value.archive_chat_action.as_ref()?;
                SyncAction::Archive {
                    chat: chat?,
                    archived: action.archived.unwrap_or_default(),
                    range: MessageRange::from_wire(action.message_range.as_ref()),
                }
            }
            "markChatAsRead" => {
                let action = value.mark_chat_as_read_action.as_ref()?;
                SyncAction::MarkRead {
                    chat: chat?,
                    read: action.read.unwrap_or_default(),
                    range: MessageRange::from_wire(action.message_range.as_ref()),
                }
            }
            "star" => SyncAction::Star {
                chat: chat?,
                message_id: part(index, 2)?,
                from_me: part(index, 3)? == "1",
                participant: part(index, 4).filter(|p| p != "0"),
                starred: value.star_action.as_ref()?.starred.unwrap_or_default(),
            },
            "deleteChat" => SyncAction::DeleteChat {
                chat: chat?,
                range: MessageRange::from_wire(
                    value.delete_chat_action.as_ref()?.message_range.as_ref(),
                ),
            },
            "clearChat" => SyncAction::ClearChat {
                chat: chat?,
                range: MessageRange::from_wire(
                    value.clear_chat_action.as_ref()?.message_range.as_ref(),
                ),
            },
            "contact" if mutation.operation == Operation::Remove => {
                SyncAction::RemoveContact { jid: chat? }
            }
            "contact" => {
                let contact = value.contact_action.as_ref()?;
                SyncAction::Contact {
                    jid: chat?,
                    full_name: contact.full_name.clone(),
                    first_name: contact.first_name.clone(),
                }
            }
            "label_edit" => {
                let label = value.label_edit_action.as_ref()?;
                SyncAction::LabelEdit {
                    label_id: chat?,
                    name: label.name.clone().unwrap_or_default(),
                    color: label.color.unwrap_or_default(),
                    deleted: label.deleted.unwrap_or_default(),
                    predefined_id: label.predefined_id,
                }
            }
            "label_jid" => SyncAction::LabelChat {
                label_id: chat?,
                chat: part(index, 2)?,
                labeled: value
                    .label_association_action
                    .as_ref()?
                    .labeled
                    .unwrap_or_default(),
            },
            "label_message" => SyncAction::LabelMessage {
                label_id: chat?,
                chat: part(index, 2)?,
                message_id: part(index, 3)?,
                labeled: value
                    .label_association_action
                    .as_ref()?
                    .labeled
                    .unwrap_or_default(),
            },
            _ => return None,
        })
    }
}

/// An outgoing patch: the `SyncdPatch` to send, and the state the collection reaches once the
/// server accepts it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingPatch {
    /// The collection.
    pub collection: Collection,
    /// The patch, with its patch MAC and snapshot MAC. Its `version` field is left out, as
    /// WhatsApp Web, Baileys and whatsmeow send it: the `<collection version=…>` attribute
    /// carries the base version ([`OutgoingPatch::base_version`]).
    pub patch: wa::SyncdPatch,
    /// The version the patch was built on.
    pub base_version: u64,
    /// The collection state after the patch (version `base_version + 1`).
    pub state: CollectionState,
    /// The mutations as a receiver decodes them.
    pub mutations: Vec<DecodedMutation>,
}

/// Encodes `actions` (all of `collection`) as one patch on top of `state`, sealed with `key`.
/// Every value gets a fresh random IV from `rng`. `state` itself is not changed.
pub fn encode_patch<R: CryptoRng + ?Sized>(
    state: &CollectionState,
    collection: Collection,
    key: &SyncKey,
    actions: &[SyncAction],
    timestamp_ms: i64,
    rng: &mut R,
) -> Result<OutgoingPatch, PatchError> {
    if actions.is_empty() || actions.len() > crate::limits::APPSTATE_MAX_PATCH_MUTATIONS {
        return Err(PatchError::InvalidPatch);
    }
    let keys = key.mutation_keys();
    let key_id = key.id().as_bytes();
    let version = state
        .version()
        .checked_add(1)
        .ok_or(PatchError::InvalidPatch)?;
    let mut index_value_macs: BTreeMap<Mac, Mac> = state.index_value_macs().clone();
    let mut hash = state.hash().clone();
    let mut wire = Vec::with_capacity(actions.len());
    let mut mutations = Vec::with_capacity(actions.len());
    for action in actions {
        if action.collection()? != collection {
            return Err(PatchError::InvalidPatch);
        }
        let parts = action.index()?;
        let index_json = index::encode(&parts)?;
        let value = action.value(timestamp_ms);
        let data = wa::SyncActionData {
            index: Some(index_json.clone()),
            value: Some(value.clone()),
            padding: Some(Vec::new()),
            version: Some(action.action_version()),
        };
        let mut iv = [0u8; IV_LEN];
        rng.fill_bytes(&mut iv);
        let plaintext = zeroize::Zeroizing::new(data.encode_to_vec());
        let sealed = keys.encrypt_value(&iv, &plaintext);
        let operation = action.operation();
        let value_mac = keys.value_mac(operation, key_id, &sealed);
        let index_mac = keys.index_mac(&index_json);

        let previous = match operation {
            Operation::Set => index_value_macs.insert(index_mac, value_mac),
            Operation::Remove => index_value_macs.remove(&index_mac),
        };
        if let Some(old) = previous {
            hash.remove(&old);
        }
        if operation == Operation::Set {
            hash.add(&value_mac);
        }

        let mut blob = sealed;
        blob.extend_from_slice(&value_mac);
        wire.push(wa::SyncdMutation {
            operation: Some(operation.to_wire()),
            record: Some(wa::SyncdRecord {
                index: Some(wa::SyncdIndex {
                    blob: Some(index_mac.to_vec()),
                }),
                value: Some(wa::SyncdValue { blob: Some(blob) }),
                key_id: Some(wa::KeyId {
                    id: Some(key_id.to_vec()),
                }),
            }),
        });
        mutations.push(DecodedMutation {
            operation,
            index: parts,
            index_mac,
            value_mac,
            value: Some(value),
            action_version: Some(action.action_version()),
            key_id: KeyId::new(key_id)?,
            patch_version: version,
        });
    }
    let snapshot_mac = keys.snapshot_mac(&hash, version, collection.name());
    let patch_mac = keys.patch_mac(
        &snapshot_mac,
        mutations.iter().map(|m| m.value_mac.as_slice()),
        version,
        collection.name(),
    );
    Ok(OutgoingPatch {
        collection,
        patch: wa::SyncdPatch {
            mutations: wire,
            snapshot_mac: Some(snapshot_mac.to_vec()),
            patch_mac: Some(patch_mac.to_vec()),
            key_id: Some(wa::KeyId {
                id: Some(key_id.to_vec()),
            }),
            ..Default::default()
        },
        base_version: state.version(),
        state: CollectionState::with_parts(version, hash, index_value_macs),
        mutations,
    })
}

/// Builds a snapshot of `collection` at `version` from records (as a primary or a test server
/// does): the LTHash of their value MACs, sealed with `key`'s snapshot MAC key. Records must
/// name distinct indexes.
pub fn snapshot_from_records(
    collection: Collection,
    key: &SyncKey,
    version: u64,
    records: Vec<wa::SyncdRecord>,
) -> Result<wa::SyncdSnapshot, PatchError> {
    if records.len() > crate::limits::APPSTATE_MAX_SNAPSHOT_RECORDS {
        return Err(PatchError::TooLarge("snapshot records"));
    }
    let mut hash = super::lthash::LtHash::ZERO;
    let mut seen = std::collections::BTreeSet::new();
    for record in &records {
        let index_mac = record
            .index
            .as_ref()
            .and_then(|i| i.blob.as_deref())
            .ok_or(PatchError::Malformed("index mac"))?;
        if !seen.insert(index_mac) {
            return Err(PatchError::DuplicateMutation);
        }
        let blob = record
            .value
            .as_ref()
            .and_then(|v| v.blob.as_deref())
            .ok_or(PatchError::Malformed("value"))?;
        let value_mac = blob
            .len()
            .checked_sub(super::crypto::MAC_LEN)
            .and_then(|at| blob.get(at..))
            .ok_or(PatchError::Malformed("value length"))?;
        hash.add(value_mac);
    }
    let mac = key
        .mutation_keys()
        .snapshot_mac(&hash, version, collection.name());
    Ok(wa::SyncdSnapshot {
        version: Some(wa::SyncdVersion {
            version: Some(version),
        }),
        records,
        mac: Some(mac.to_vec()),
        key_id: Some(wa::KeyId {
            id: Some(key.id().as_bytes().to_vec()),
        }),
    })
}

/// Builds a snapshot of `collection` at `version` holding `actions` (SET only, distinct
/// indexes), sealed with `key`.
pub fn encode_snapshot<R: CryptoRng + ?Sized>(
    collection: Collection,
    key: &SyncKey,
    version: u64,
    actions: &[SyncAction],
    timestamp_ms: i64,
    rng: &mut R,
) -> Result<wa::SyncdSnapshot, PatchError> {
    if actions.iter().any(|a| a.operation() != Operation::Set) {
        return Err(PatchError::InvalidPatch);
    }
    let outgoing = encode_patch(
        &CollectionState::new(),
        collection,
        key,
        actions,
        timestamp_ms,
        rng,
    )?;
    let records = outgoing
        .patch
        .mutations
        .into_iter()
        .filter_map(|m| m.record)
        .collect();
    snapshot_from_records(collection, key, version, records)
}
