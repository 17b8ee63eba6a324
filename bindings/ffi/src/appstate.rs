//! The app-state types of the uniffi binding: sync actions, chat settings, setting changes and
//! collection failures, converted from and to the core's `appstate` types.

use walink_core::appstate;
use walink_core::client;

/// Until when a chat is muted.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum MuteUntil {
    /// Muted with no end.
    Forever,
    /// Muted until this time.
    Until {
        /// Unix milliseconds.
        at_ms: i64,
    },
}

impl From<&appstate::MuteUntil> for MuteUntil {
    fn from(until: &appstate::MuteUntil) -> MuteUntil {
        match until {
            appstate::MuteUntil::Forever => MuteUntil::Forever,
            appstate::MuteUntil::Until(at_ms) => MuteUntil::Until { at_ms: *at_ms },
        }
    }
}

impl From<MuteUntil> for appstate::MuteUntil {
    fn from(until: MuteUntil) -> appstate::MuteUntil {
        match until {
            MuteUntil::Forever => appstate::MuteUntil::Forever,
            MuteUntil::Until { at_ms } => appstate::MuteUntil::Until(at_ms),
        }
    }
}

/// One of a chat's last messages.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
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

/// The last messages of a chat, as this device saw them.
#[derive(Clone, Debug, Default, PartialEq, Eq, uniffi::Record)]
pub struct MessageRange {
    /// The timestamp of the last message (seconds).
    pub last_message_timestamp: i64,
    /// The timestamp of the last system message, if any.
    pub last_system_message_timestamp: Option<i64>,
    /// The last messages.
    pub messages: Vec<MessageRef>,
}

impl From<&appstate::MessageRange> for MessageRange {
    fn from(range: &appstate::MessageRange) -> MessageRange {
        MessageRange {
            last_message_timestamp: range.last_message_timestamp,
            last_system_message_timestamp: range.last_system_message_timestamp,
            messages: range
                .messages
                .iter()
                .map(|m| MessageRef {
                    id: m.id.clone(),
                    from_me: m.from_me,
                    participant: m.participant.clone(),
                    timestamp: m.timestamp,
                })
                .collect(),
        }
    }
}

impl From<MessageRange> for appstate::MessageRange {
    fn from(range: MessageRange) -> appstate::MessageRange {
        appstate::MessageRange {
            last_message_timestamp: range.last_message_timestamp,
            last_system_message_timestamp: range.last_system_message_timestamp,
            messages: range
                .messages
                .into_iter()
                .map(|m| appstate::MessageRef {
                    id: m.id,
                    from_me: m.from_me,
                    participant: m.participant,
                    timestamp: m.timestamp,
                })
                .collect(),
        }
    }
}

/// An app-state action, synced to the account's other devices.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
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
    /// Clear a chat's messages.
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
    /// Remove a contact.
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
    /// An action walink does not interpret.
    Unsupported {
        /// The action's name.
        name: String,
    },
}

impl From<SyncAction> for appstate::SyncAction {
    fn from(action: SyncAction) -> appstate::SyncAction {
        use appstate::SyncAction as A;
        match action {
            SyncAction::Mute { chat, until } => A::Mute {
                chat,
                until: until.into(),
            },
            SyncAction::Unmute { chat } => A::Unmute { chat },
            SyncAction::Pin { chat, pinned } => A::Pin { chat, pinned },
            SyncAction::Archive {
                chat,
                archived,
                range,
            } => A::Archive {
                chat,
                archived,
                range: range.into(),
            },
            SyncAction::MarkRead { chat, read, range } => A::MarkRead {
                chat,
                read,
                range: range.into(),
            },
            SyncAction::Star {
                chat,
                message_id,
                from_me,
                participant,
                starred,
            } => A::Star {
                chat,
                message_id,
                from_me,
                participant,
                starred,
            },
            SyncAction::DeleteChat { chat, range } => A::DeleteChat {
                chat,
                range: range.into(),
            },
            SyncAction::ClearChat { chat, range } => A::ClearChat {
                chat,
                range: range.into(),
            },
            SyncAction::Contact {
                jid,
                full_name,
                first_name,
            } => A::Contact {
                jid,
                full_name,
                first_name,
            },
            SyncAction::RemoveContact { jid } => A::RemoveContact { jid },
            SyncAction::LabelEdit {
                label_id,
                name,
                color,
                deleted,
                predefined_id,
            } => A::LabelEdit {
                label_id,
                name,
                color,
                deleted,
                predefined_id,
            },
            SyncAction::LabelChat {
                label_id,
                chat,
                labeled,
            } => A::LabelChat {
                label_id,
                chat,
                labeled,
            },
            SyncAction::LabelMessage {
                label_id,
                chat,
                message_id,
                labeled,
            } => A::LabelMessage {
                label_id,
                chat,
                message_id,
                labeled,
            },
            SyncAction::Unsupported { name } => A::Unsupported { name },
        }
    }
}

impl From<&appstate::SyncAction> for SyncAction {
    fn from(action: &appstate::SyncAction) -> SyncAction {
        use appstate::SyncAction as A;
        match action.clone() {
            A::Mute { chat, until } => SyncAction::Mute {
                chat,
                until: (&until).into(),
            },
            A::Unmute { chat } => SyncAction::Unmute { chat },
            A::Pin { chat, pinned } => SyncAction::Pin { chat, pinned },
            A::Archive {
                chat,
                archived,
                range,
            } => SyncAction::Archive {
                chat,
                archived,
                range: (&range).into(),
            },
            A::MarkRead { chat, read, range } => SyncAction::MarkRead {
                chat,
                read,
                range: (&range).into(),
            },
            A::Star {
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
            A::DeleteChat { chat, range } => SyncAction::DeleteChat {
                chat,
                range: (&range).into(),
            },
            A::ClearChat { chat, range } => SyncAction::ClearChat {
                chat,
                range: (&range).into(),
            },
            A::Contact {
                jid,
                full_name,
                first_name,
            } => SyncAction::Contact {
                jid,
                full_name,
                first_name,
            },
            A::RemoveContact { jid } => SyncAction::RemoveContact { jid },
            A::LabelEdit {
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
            A::LabelChat {
                label_id,
                chat,
                labeled,
            } => SyncAction::LabelChat {
                label_id,
                chat,
                labeled,
            },
            A::LabelMessage {
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
            A::Unsupported { name } => SyncAction::Unsupported { name },
        }
    }
}

/// The five app-state collections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum Collection {
    /// `regular`: labels.
    Regular,
    /// `regular_low`: pin, archive, mark read.
    RegularLow,
    /// `regular_high`: mute, star, delete and clear chat.
    RegularHigh,
    /// `critical_block`: push name, locale.
    CriticalBlock,
    /// `critical_unblock_low`: contacts.
    CriticalUnblockLow,
}

impl From<appstate::Collection> for Collection {
    fn from(collection: appstate::Collection) -> Collection {
        match collection {
            appstate::Collection::Regular => Collection::Regular,
            appstate::Collection::RegularLow => Collection::RegularLow,
            appstate::Collection::RegularHigh => Collection::RegularHigh,
            appstate::Collection::CriticalBlock => Collection::CriticalBlock,
            appstate::Collection::CriticalUnblockLow => Collection::CriticalUnblockLow,
        }
    }
}

/// The app-state settings of one chat.
#[derive(Clone, Debug, Default, PartialEq, Eq, uniffi::Record)]
pub struct ChatSettings {
    /// Until when the chat is muted, if it is.
    pub muted_until: Option<MuteUntil>,
    /// When the chat was pinned (Unix milliseconds), if it is.
    pub pinned_at: Option<i64>,
    /// Whether the chat is archived.
    pub archived: bool,
    /// Whether the chat was marked unread.
    pub marked_unread: bool,
    /// The labels on the chat, sorted.
    pub labels: Vec<String>,
}

impl From<&appstate::ChatSettings> for ChatSettings {
    fn from(settings: &appstate::ChatSettings) -> ChatSettings {
        ChatSettings {
            muted_until: settings.muted_until.as_ref().map(MuteUntil::from),
            pinned_at: settings.pinned_at,
            archived: settings.archived,
            marked_unread: settings.marked_unread,
            labels: settings.labels.iter().cloned().collect(),
        }
    }
}

/// A contact's names.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Contact {
    /// The full name.
    pub full_name: Option<String>,
    /// The first name.
    pub first_name: Option<String>,
}

/// A label.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Label {
    /// Its name.
    pub name: String,
    /// Its colour index.
    pub color: i32,
    /// Whether it was deleted.
    pub deleted: bool,
    /// The predefined label it stands for.
    pub predefined_id: Option<i32>,
}

/// What changed in the app-state settings.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum SettingChange {
    /// A chat was muted (`Some`) or unmuted (`None`).
    Muted {
        /// The chat JID.
        chat: String,
        /// Until when.
        until: Option<MuteUntil>,
    },
    /// A chat was pinned or unpinned.
    Pinned {
        /// The chat JID.
        chat: String,
        /// Pinned or not.
        pinned: bool,
    },
    /// A chat was archived or unarchived.
    Archived {
        /// The chat JID.
        chat: String,
        /// Archived or not.
        archived: bool,
    },
    /// A chat was marked unread, or read.
    MarkedUnread {
        /// The chat JID.
        chat: String,
        /// Marked unread or not.
        unread: bool,
    },
    /// A message was starred or unstarred.
    Starred {
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
    /// A chat was deleted.
    ChatDeleted {
        /// The chat JID.
        chat: String,
    },
    /// A chat was cleared.
    ChatCleared {
        /// The chat JID.
        chat: String,
    },
    /// A contact was set (`Some`) or removed (`None`).
    Contact {
        /// The contact's JID.
        jid: String,
        /// The names.
        contact: Option<Contact>,
    },
    /// A label was created or edited (`Some`) or removed (`None`).
    Label {
        /// The label id.
        label_id: String,
        /// The label.
        label: Option<Label>,
    },
    /// A label was put on a chat or taken off.
    ChatLabeled {
        /// The label id.
        label_id: String,
        /// The chat JID.
        chat: String,
        /// On or off.
        labeled: bool,
    },
    /// A label was put on a message or taken off.
    MessageLabeled {
        /// The label id.
        label_id: String,
        /// The chat JID.
        chat: String,
        /// The message id.
        message_id: String,
        /// On or off.
        labeled: bool,
    },
    /// A mutation walink does not interpret; nothing changed.
    Ignored {
        /// The action's name.
        name: String,
    },
}

impl From<appstate::SettingChange> for SettingChange {
    fn from(change: appstate::SettingChange) -> SettingChange {
        use appstate::SettingChange as C;
        match change {
            C::Muted { chat, until } => SettingChange::Muted {
                chat,
                until: until.as_ref().map(MuteUntil::from),
            },
            C::Pinned { chat, pinned } => SettingChange::Pinned { chat, pinned },
            C::Archived { chat, archived } => SettingChange::Archived { chat, archived },
            C::MarkedUnread { chat, unread } => SettingChange::MarkedUnread { chat, unread },
            C::Starred { message, starred } => SettingChange::Starred {
                chat: message.chat,
                message_id: message.message_id,
                from_me: message.from_me,
                participant: message.participant,
                starred,
            },
            C::ChatDeleted { chat } => SettingChange::ChatDeleted { chat },
            C::ChatCleared { chat } => SettingChange::ChatCleared { chat },
            C::Contact { jid, contact } => SettingChange::Contact {
                jid,
                contact: contact.map(|c| Contact {
                    full_name: c.full_name,
                    first_name: c.first_name,
                }),
            },
            C::Label { label_id, label } => SettingChange::Label {
                label_id,
                label: label.map(|l| Label {
                    name: l.name,
                    color: l.color,
                    deleted: l.deleted,
                    predefined_id: l.predefined_id,
                }),
            },
            C::ChatLabeled {
                label_id,
                chat,
                labeled,
            } => SettingChange::ChatLabeled {
                label_id,
                chat,
                labeled,
            },
            C::MessageLabeled { message, labeled } => SettingChange::MessageLabeled {
                label_id: message.label_id,
                chat: message.chat,
                message_id: message.message_id,
                labeled,
            },
            C::Ignored { name } => SettingChange::Ignored { name },
        }
    }
}

/// Why a collection could not be synced.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum AppStateFailure {
    /// The data failed to verify even from a fresh snapshot, or broke a bound.
    Patch {
        /// The core's description.
        reason: String,
    },
    /// The server refused the sync.
    Rejected {
        /// The `<error code>`.
        code: u16,
        /// The `<error text>`.
        text: String,
    },
    /// The server's answer left the collection out.
    NotAnswered,
    /// The host could not download an external blob.
    Download,
}

impl From<&client::AppStateFailure> for AppStateFailure {
    fn from(failure: &client::AppStateFailure) -> AppStateFailure {
        match failure {
            client::AppStateFailure::Patch(error) => AppStateFailure::Patch {
                reason: error.to_string(),
            },
            client::AppStateFailure::Rejected { code, text } => AppStateFailure::Rejected {
                code: *code,
                text: text.clone(),
            },
            client::AppStateFailure::NotAnswered => AppStateFailure::NotAnswered,
            client::AppStateFailure::Download => AppStateFailure::Download,
        }
    }
}
