//! What the app-state sync sends out: the commit of a collection (one batch, then its events),
//! the end of a command, and why a collection failed.

use std::collections::BTreeSet;

use crate::appstate::{
    Collection, CollectionState, PatchError, SettingChange, SettingsView, persist,
};
use crate::store::{Batch, Change, Record, Space};

use super::super::command::{CommandError, CommandId, CommandOutput};
use super::super::event::Event;
use super::super::output::Outputs;
use super::{AppSync, VIEW_KEY};

/// Why a collection could not be synced (in [`Event::AppStateFatal`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppStateFailure {
    /// The data failed to verify even from a fresh snapshot, or broke a bound.
    #[error("app-state data failed: {0}")]
    Patch(PatchError),
    /// The server refused the sync IQ.
    #[error("the server refused the app-state sync: {code} {text}")]
    Rejected {
        /// The `<error code>`.
        code: u16,
        /// The `<error text>`.
        text: String,
    },
    /// The server's answer did not name the collection.
    #[error("the server's answer left the collection out")]
    NotAnswered,
    /// The host could not download an external blob, even after retries.
    #[error("the host could not download an app-state blob")]
    Download,
}

impl AppSync {
    /// Persists the collection state and the view in one batch, adopts them, and reports
    /// the changes.
    pub(super) fn commit(
        &mut self,
        collection: Collection,
        state: CollectionState,
        view: SettingsView,
        changes: Vec<SettingChange>,
        out: &mut Outputs,
    ) {
        out.persist(Batch {
            changes: vec![
                Change::Put(Record {
                    space: Space::AppStateVersion,
                    key: collection.name().to_owned(),
                    value: persist::encode_collection(collection, &state),
                }),
                Change::Put(Record {
                    space: Space::AppStateVersion,
                    key: VIEW_KEY.to_owned(),
                    value: persist::encode_view(&view),
                }),
            ],
        });
        self.states.insert(collection, state);
        self.view = view;
        let mut chats = BTreeSet::new();
        for change in changes {
            if let Some(chat) = chat_of(&change) {
                chats.insert(chat.to_owned());
            }
            out.event(Event::AppStateChanged { collection, change });
        }
        for chat in chats {
            let settings = self.view.chat(&chat);
            out.event(Event::ChatSettings { chat, settings });
        }
    }
}

/// The chat a setting change is about, if any.
fn chat_of(change: &SettingChange) -> Option<&str> {
    match change {
        SettingChange::Muted { chat, .. }
        | SettingChange::Pinned { chat, .. }
        | SettingChange::Archived { chat, .. }
        | SettingChange::MarkedUnread { chat, .. }
        | SettingChange::ChatDeleted { chat }
        | SettingChange::ChatLabeled { chat, .. } => Some(chat),
        _ => None,
    }
}

/// Ends a command.
pub(super) fn done(out: &mut Outputs, id: CommandId, result: Result<CommandOutput, CommandError>) {
    out.event(Event::CommandDone { id, result });
}
