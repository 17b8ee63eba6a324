//! The app-state shapes of the JS API: sync actions (in commands), chat settings, setting
//! changes and collection failures (in events). Mute ends are Unix milliseconds, 0 meaning
//! forever.

use serde::{Deserialize, Serialize};
use walink_core::appstate::{
    ChatSettings, Collection, MessageRange, MessageRef, MuteUntil, SettingChange, SyncAction,
};
use walink_core::client::AppStateFailure;

fn mute_from_js(until_ms: i64) -> MuteUntil {
    match until_ms {
        0 => MuteUntil::Forever,
        at => MuteUntil::Until(at),
    }
}

fn mute_to_js(until: &MuteUntil) -> f64 {
    match until {
        MuteUntil::Forever => 0.0,
        MuteUntil::Until(at) => *at as f64,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct JsMessageRef {
    id: String,
    from_me: bool,
    #[serde(default)]
    participant: Option<String>,
    timestamp: i64,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct JsMessageRange {
    last_message_timestamp: i64,
    #[serde(default)]
    last_system_message_timestamp: Option<i64>,
    #[serde(default)]
    messages: Vec<JsMessageRef>,
}

impl From<JsMessageRange> for MessageRange {
    fn from(range: JsMessageRange) -> MessageRange {
        MessageRange {
            last_message_timestamp: range.last_message_timestamp,
            last_system_message_timestamp: range.last_system_message_timestamp,
            messages: range
                .messages
                .into_iter()
                .map(|m| MessageRef {
                    id: m.id,
                    from_me: m.from_me,
                    participant: m.participant,
                    timestamp: m.timestamp,
                })
                .collect(),
        }
    }
}

/// `{ kind: "mute", chat, untilMs }` and the other actions (see `index.d.ts`).
#[derive(Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub(crate) enum JsSyncAction {
    Mute {
        chat: String,
        until_ms: i64,
    },
    Unmute {
        chat: String,
    },
    Pin {
        chat: String,
        pinned: bool,
    },
    Archive {
        chat: String,
        archived: bool,
        #[serde(default)]
        range: JsMessageRange,
    },
    MarkRead {
        chat: String,
        read: bool,
        #[serde(default)]
        range: JsMessageRange,
    },
    Star {
        chat: String,
        message_id: String,
        from_me: bool,
        #[serde(default)]
        participant: Option<String>,
        starred: bool,
    },
    DeleteChat {
        chat: String,
        #[serde(default)]
        range: JsMessageRange,
    },
    ClearChat {
        chat: String,
        #[serde(default)]
        range: JsMessageRange,
    },
    Contact {
        jid: String,
        #[serde(default)]
        full_name: Option<String>,
        #[serde(default)]
        first_name: Option<String>,
    },
    RemoveContact {
        jid: String,
    },
    LabelEdit {
        label_id: String,
        name: String,
        color: i32,
        #[serde(default)]
        deleted: bool,
        #[serde(default)]
        predefined_id: Option<i32>,
    },
    LabelChat {
        label_id: String,
        chat: String,
        labeled: bool,
    },
    LabelMessage {
        label_id: String,
        chat: String,
        message_id: String,
        labeled: bool,
    },
}

impl From<JsSyncAction> for SyncAction {
    fn from(action: JsSyncAction) -> SyncAction {
        match action {
            JsSyncAction::Mute { chat, until_ms } => SyncAction::Mute {
                chat,
                until: mute_from_js(until_ms),
            },
            JsSyncAction::Unmute { chat } => SyncAction::Unmute { chat },
            JsSyncAction::Pin { chat, pinned } => SyncAction::Pin { chat, pinned },
            JsSyncAction::Archive {
                chat,
                archived,
                range,
            } => SyncAction::Archive {
                chat,
                archived,
                range: range.into(),
            },
            JsSyncAction::MarkRead { chat, read, range } => SyncAction::MarkRead {
                chat,
                read,
                range: range.into(),
            },
            JsSyncAction::Star {
                chat,
                message_id,
                from_me,
                participant,
                starred,
            } => SyncAction::Star {
                chat,
                message_id,
                from_me,
                participant,
                starred,
            },
            JsSyncAction::DeleteChat { chat, range } => SyncAction::DeleteChat {
                chat,
                range: range.into(),
            },
            JsSyncAction::ClearChat { chat, range } => SyncAction::ClearChat {
                chat,
                range: range.into(),
            },
            JsSyncAction::Contact {
                jid,
                full_name,
                first_name,
            } => SyncAction::Contact {
                jid,
                full_name,
                first_name,
            },
            JsSyncAction::RemoveContact { jid } => SyncAction::RemoveContact { jid },
            JsSyncAction::LabelEdit {
                label_id,
                name,
                color,
                deleted,
                predefined_id,
            } => SyncAction::LabelEdit {
                label_id,
                name,
                color,
                deleted,
                predefined_id,
            },
            JsSyncAction::LabelChat {
                label_id,
                chat,
                labeled,
            } => SyncAction::LabelChat {
                label_id,
                chat,
                labeled,
            },
            JsSyncAction::LabelMessage {
                label_id,
                chat,
                message_id,
                labeled,
            } => SyncAction::LabelMessage {
                label_id,
                chat,
                message_id,
                labeled,
            },
        }
    }
}

/// A collection's wire name (`regular_high`, ...).
pub(crate) fn collection_to_js(collection: Collection) -> &'static str {
    collection.name()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JsChatSettings {
    muted_until_ms: Option<f64>,
    pinned_at: Option<f64>,
    archived: bool,
    marked_unread: bool,
    labels: Vec<String>,
}

pub(crate) fn chat_settings_to_js(settings: &ChatSettings) -> JsChatSettings {
    JsChatSettings {
        muted_until_ms: settings.muted_until.as_ref().map(mute_to_js),
        pinned_at: settings.pinned_at.map(|at| at as f64),
        archived: settings.archived,
        marked_unread: settings.marked_unread,
        labels: settings.labels.iter().cloned().collect(),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JsContact {
    full_name: Option<String>,
    first_name: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JsLabel {
    name: String,
    color: i32,
    deleted: bool,
    predefined_id: Option<i32>,
}

#[derive(Serialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub(crate) enum JsSettingChange {
    Muted {
        chat: String,
        until_ms: Option<f64>,
    },
    Pinned {
        chat: String,
        pinned: bool,
    },
    Archived {
        chat: String,
        archived: bool,
    },
    MarkedUnread {
        chat: String,
        unread: bool,
    },
    Starred {
        chat: String,
        message_id: String,
        from_me: bool,
        participant: Option<String>,
        starred: bool,
    },
    ChatDeleted {
        chat: String,
    },
    ChatCleared {
        chat: String,
    },
    Contact {
        jid: String,
        contact: Option<JsContact>,
    },
    Label {
        label_id: String,
        label: Option<JsLabel>,
    },
    ChatLabeled {
        label_id: String,
        chat: String,
        labeled: bool,
    },
    MessageLabeled {
        label_id: String,
        chat: String,
        message_id: String,
        labeled: bool,
    },
    Ignored {
        name: String,
    },
}

pub(crate) fn setting_change_to_js(change: SettingChange) -> JsSettingChange {
    match change {
        SettingChange::Muted { chat, until } => JsSettingChange::Muted {
            chat,
            until_ms: until.as_ref().map(mute_to_js),
        },
        SettingChange::Pinned { chat, pinned } => JsSettingChange::Pinned { chat, pinned },
        SettingChange::Archived { chat, archived } => JsSettingChange::Archived { chat, archived },
        SettingChange::MarkedUnread { chat, unread } => {
            JsSettingChange::MarkedUnread { chat, unread }
        }
        SettingChange::Starred { message, starred } => JsSettingChange::Starred {
            chat: message.chat,
            message_id: message.message_id,
            from_me: message.from_me,
            participant: message.participant,
            starred,
        },
        SettingChange::ChatDeleted { chat } => JsSettingChange::ChatDeleted { chat },
        SettingChange::ChatCleared { chat } => JsSettingChange::ChatCleared { chat },
        SettingChange::Contact { jid, contact } => JsSettingChange::Contact {
            jid,
            contact: contact.map(|c| JsContact {
                full_name: c.full_name,
                first_name: c.first_name,
            }),
        },
        SettingChange::Label { label_id, label } => JsSettingChange::Label {
            label_id,
            label: label.map(|l| JsLabel {
                name: l.name,
                color: l.color,
                deleted: l.deleted,
                predefined_id: l.predefined_id,
            }),
        },
        SettingChange::ChatLabeled {
            label_id,
            chat,
            labeled,
        } => JsSettingChange::ChatLabeled {
            label_id,
            chat,
            labeled,
        },
        SettingChange::MessageLabeled { message, labeled } => JsSettingChange::MessageLabeled {
            label_id: message.label_id,
            chat: message.chat,
            message_id: message.message_id,
            labeled,
        },
        SettingChange::Ignored { name } => JsSettingChange::Ignored { name },
    }
}

#[derive(Serialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub(crate) enum JsAppStateFailure {
    Patch { message: String },
    Rejected { code: u16, text: String },
    NotAnswered,
    Download,
}

pub(crate) fn app_state_failure_to_js(failure: &AppStateFailure) -> JsAppStateFailure {
    match failure {
        AppStateFailure::Patch(error) => JsAppStateFailure::Patch {
            message: error.to_string(),
        },
        AppStateFailure::Rejected { code, text } => JsAppStateFailure::Rejected {
            code: *code,
            text: text.clone(),
        },
        AppStateFailure::NotAnswered => JsAppStateFailure::NotAnswered,
        AppStateFailure::Download => JsAppStateFailure::Download,
    }
}
