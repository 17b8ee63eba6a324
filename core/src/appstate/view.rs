//! The materialized view of the settings the collections carry: per-chat settings, starred
//! messages, contact names and labels, and the [`SettingChange`] events applying mutations
//! produces.
//!
//! A mutation sets the setting its index names; a REMOVE of an index resets it (unmute, unpin,
//! unarchive, unstar, forget the contact or label). Deleting a chat forgets its settings and
//! its starred messages; clearing a chat forgets its starred messages. Actions walink does not
//! interpret produce [`SettingChange::Ignored`] and change nothing, as WhatsApp Web skips
//! mutations it does not support. Events are produced only when the view actually changes (a
//! snapshot that repeats the view produces none), except for deletes and clears.

use std::collections::{BTreeMap, BTreeSet};

use super::actions::{MuteUntil, SyncAction};
use super::state::{Collection, DecodedMutation, Operation};

/// The settings of one chat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatSettings {
    /// Until when the chat is muted, if it is.
    pub muted_until: Option<MuteUntil>,
    /// When the chat was pinned (the action's timestamp, milliseconds), if it is.
    pub pinned_at: Option<i64>,
    /// Whether the chat is archived.
    pub archived: bool,
    /// Whether the chat was marked unread.
    pub marked_unread: bool,
    /// The labels on the chat.
    pub labels: BTreeSet<String>,
}

impl ChatSettings {
    fn is_default(&self) -> bool {
        *self == ChatSettings::default()
    }
}

/// A starred message.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StarredMessage {
    /// The chat JID.
    pub chat: String,
    /// The message id.
    pub message_id: String,
    /// Whether this account sent it.
    pub from_me: bool,
    /// The sender, in groups.
    pub participant: Option<String>,
}

/// A contact's names, as the address book on the primary has them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contact {
    /// The full name.
    pub full_name: Option<String>,
    /// The first name.
    pub first_name: Option<String>,
}

/// A label.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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

/// A message a label is on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageLabel {
    /// The label id.
    pub label_id: String,
    /// The chat JID.
    pub chat: String,
    /// The message id.
    pub message_id: String,
}

/// What changed in the view.
#[derive(Debug, Clone, PartialEq, Eq)]
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
        /// The message.
        message: StarredMessage,
        /// Starred or not.
        starred: bool,
    },
    /// A chat was deleted (its settings and stars are gone).
    ChatDeleted {
        /// The chat JID.
        chat: String,
    },
    /// A chat was cleared (its stars are gone).
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
        /// The label and message.
        message: MessageLabel,
        /// On or off.
        labeled: bool,
    },
    /// A mutation walink does not interpret; nothing changed.
    Ignored {
        /// The action's name (the first element of its index).
        name: String,
    },
}

/// The settings of every chat, the starred messages, the contacts and the labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsView {
    pub(crate) chats: BTreeMap<String, ChatSettings>,
    pub(crate) starred: BTreeSet<StarredMessage>,
    pub(crate) contacts: BTreeMap<String, Contact>,
    pub(crate) labels: BTreeMap<String, Label>,
    pub(crate) message_labels: BTreeSet<MessageLabel>,
}

impl SettingsView {
    /// An empty view.
    pub fn new() -> SettingsView {
        SettingsView::default()
    }

    /// The settings of a chat (the defaults when nothing was set).
    pub fn chat(&self, chat: &str) -> ChatSettings {
        self.chats.get(chat).cloned().unwrap_or_default()
    }

    /// Every chat with a non-default setting.
    pub fn chats(&self) -> &BTreeMap<String, ChatSettings> {
        &self.chats
    }

    /// The starred messages.
    pub fn starred(&self) -> &BTreeSet<StarredMessage> {
        &self.starred
    }

    /// The contacts, by JID.
    pub fn contacts(&self) -> &BTreeMap<String, Contact> {
        &self.contacts
    }

    /// The labels, by id.
    pub fn labels(&self) -> &BTreeMap<String, Label> {
        &self.labels
    }

    /// The labels on messages.
    pub fn message_labels(&self) -> &BTreeSet<MessageLabel> {
        &self.message_labels
    }

    /// Applies decoded mutations (of a patch) in order and returns what changed.
    pub fn apply_mutations(&mut self, mutations: &[DecodedMutation]) -> Vec<SettingChange> {
        let mut changes = Vec::new();
        for mutation in mutations {
            self.apply_one(mutation, false, &mut changes);
        }
        changes
    }

    /// Replaces what `collection` holds with the records of a snapshot of it, and returns what
    /// changed. The settings WhatsApp Web files under the collection (regular_high: mutes and
    /// stars; regular_low: pins, archives, unread marks; critical_unblock_low: contacts;
    /// regular: labels and their associations) are reset first, so a setting the snapshot no
    /// longer holds is dropped. Delete and clear records in a snapshot are history: they reset
    /// nothing and produce no event.
    pub fn replace_collection(
        &mut self,
        collection: Collection,
        mutations: &[DecodedMutation],
    ) -> Vec<SettingChange> {
        let mut next = self.clone();
        next.clear(collection);
        let mut ignored = Vec::new();
        for mutation in mutations {
            next.apply_one(mutation, true, &mut ignored);
        }
        let mut changes = self.diff(&next);
        changes.extend(
            ignored
                .into_iter()
                .filter(|c| matches!(c, SettingChange::Ignored { .. })),
        );
        *self = next;
        changes
    }

    fn clear(&mut self, collection: Collection) {
        match collection {
            Collection::RegularHigh => {
                self.chats.values_mut().for_each(|s| s.muted_until = None);
                self.starred.clear();
            }
            Collection::RegularLow => self.chats.values_mut().for_each(|s| {
                s.pinned_at = None;
                s.archived = false;
                s.marked_unread = false;
            }),
            Collection::CriticalUnblockLow => self.contacts.clear(),
            Collection::Regular => {
                self.chats.values_mut().for_each(|s| s.labels.clear());
                self.labels.clear();
                self.message_labels.clear();
            }
            Collection::CriticalBlock => {}
        }
        self.chats.retain(|_, s| !s.is_default());
    }

    /// The events that turn `self` into `next`.
    fn diff(&self, next: &SettingsView) -> Vec<SettingChange> {
        let mut out = Vec::new();
        let chats = union_sorted(self.chats.keys(), next.chats.keys());
        for chat in chats {
            let (a, b) = (self.chat(chat), next.chat(chat));
            if a.muted_until != b.muted_until {
                out.push(SettingChange::Muted {
                    chat: chat.clone(),
                    until: b.muted_until,
                });
            }
            if a.pinned_at.is_some() != b.pinned_at.is_some() {
                out.push(SettingChange::Pinned {
                    chat: chat.clone(),
                    pinned: b.pinned_at.is_some(),
                });
            }
            if a.archived != b.archived {
                out.push(SettingChange::Archived {
                    chat: chat.clone(),
                    archived: b.archived,
                });
            }
            if a.marked_unread != b.marked_unread {
                out.push(SettingChange::MarkedUnread {
                    chat: chat.clone(),
                    unread: b.marked_unread,
                });
            }
            for label in a.labels.symmetric_difference(&b.labels) {
                out.push(SettingChange::ChatLabeled {
                    label_id: label.clone(),
                    chat: chat.clone(),
                    labeled: b.labels.contains(label),
                });
            }
        }
        for message in self.starred.symmetric_difference(&next.starred) {
            out.push(SettingChange::Starred {
                message: message.clone(),
                starred: next.starred.contains(message),
            });
        }
        let jids = union_sorted(self.contacts.keys(), next.contacts.keys());
        for jid in jids {
            let after = next.contacts.get(jid);
            if self.contacts.get(jid) != after {
                out.push(SettingChange::Contact {
                    jid: jid.clone(),
                    contact: after.cloned(),
                });
            }
        }
        let ids = union_sorted(self.labels.keys(), next.labels.keys());
        for id in ids {
            let after = next.labels.get(id);
            if self.labels.get(id) != after {
                out.push(SettingChange::Label {
                    label_id: id.clone(),
                    label: after.cloned(),
                });
            }
        }
        for message in self
            .message_labels
            .symmetric_difference(&next.message_labels)
        {
            out.push(SettingChange::MessageLabeled {
                message: message.clone(),
                labeled: next.message_labels.contains(message),
            });
        }
        out
    }

    fn update_chat(
        &mut self,
        chat: &str,
        change: impl FnOnce(&mut ChatSettings) -> Option<SettingChange>,
        changes: &mut Vec<SettingChange>,
    ) {
        let mut settings = self.chats.remove(chat).unwrap_or_default();
        if let Some(event) = change(&mut settings) {
            changes.push(event);
        }
        if !settings.is_default() {
            self.chats.insert(chat.to_owned(), settings);
        }
    }

    fn set_mute(&mut self, chat: String, until: Option<MuteUntil>, out: &mut Vec<SettingChange>) {
        self.update_chat(
            &chat.clone(),
            |s| {
                (s.muted_until != until).then(|| {
                    s.muted_until = until;
                    SettingChange::Muted { chat, until }
                })
            },
            out,
        );
    }

    fn set_pin(&mut self, chat: String, at: Option<i64>, out: &mut Vec<SettingChange>) {
        self.update_chat(
            &chat.clone(),
            |s| {
                let changed = s.pinned_at.is_some() != at.is_some();
                s.pinned_at = at;
                changed.then_some(SettingChange::Pinned {
                    chat,
                    pinned: at.is_some(),
                })
            },
            out,
        );
    }

    fn set_archived(&mut self, chat: String, archived: bool, out: &mut Vec<SettingChange>) {
        self.update_chat(
            &chat.clone(),
            |s| {
                (s.archived != archived).then(|| {
                    s.archived = archived;
                    SettingChange::Archived { chat, archived }
                })
            },
            out,
        );
    }

    fn set_unread(&mut self, chat: String, unread: bool, out: &mut Vec<SettingChange>) {
        self.update_chat(
            &chat.clone(),
            |s| {
                (s.marked_unread != unread).then(|| {
                    s.marked_unread = unread;
                    SettingChange::MarkedUnread { chat, unread }
                })
            },
            out,
        );
    }

    fn set_star(&mut self, message: StarredMessage, starred: bool, out: &mut Vec<SettingChange>) {
        let changed = if starred {
            self.starred.insert(message.clone())
        } else {
            self.starred.remove(&message)
        };
        if changed {
            out.push(SettingChange::Starred { message, starred });
        }
    }

    fn set_contact(&mut self, jid: String, contact: Option<Contact>, out: &mut Vec<SettingChange>) {
        let previous = match &contact {
            Some(c) => self.contacts.insert(jid.clone(), c.clone()),
            None => self.contacts.remove(&jid),
        };
        if previous != contact {
            out.push(SettingChange::Contact { jid, contact });
        }
    }

    fn set_label(&mut self, label_id: String, label: Option<Label>, out: &mut Vec<SettingChange>) {
        let previous = match &label {
            Some(l) => self.labels.insert(label_id.clone(), l.clone()),
            None => self.labels.remove(&label_id),
        };
        if previous != label {
            out.push(SettingChange::Label { label_id, label });
        }
    }

    fn set_chat_label(
        &mut self,
        label_id: String,
        chat: String,
        labeled: bool,
        out: &mut Vec<SettingChange>,
    ) {
        self.update_chat(
            &chat.clone(),
            |s| {
                let changed = if labeled {
                    s.labels.insert(label_id.clone())
                } else {
                    s.labels.remove(&label_id)
                };
                changed.then_some(SettingChange::ChatLabeled {
                    label_id,
                    chat,
                    labeled,
                })
            },
            out,
        );
    }

    fn set_message_label(
        &mut self,
        message: MessageLabel,
        labeled: bool,
        out: &mut Vec<SettingChange>,
    ) {
        let changed = if labeled {
            self.message_labels.insert(message.clone())
        } else {
            self.message_labels.remove(&message)
        };
        if changed {
            out.push(SettingChange::MessageLabeled { message, labeled });
        }
    }

    fn apply_one(
        &mut self,
        mutation: &DecodedMutation,
        historical: bool,
        out: &mut Vec<SettingChange>,
    ) {
        let timestamp = mutation
            .value
            .as_ref()
            .and_then(|v| v.timestamp)
            .unwrap_or_default();
        if mutation.operation == Operation::Remove {
            self.apply_remove(mutation, out);
            return;
        }
        match SyncAction::from_mutation(mutation) {
            SyncAction::Mute { chat, until } => self.set_mute(chat, Some(until), out),
            SyncAction::Unmute { chat } => self.set_mute(chat, None, out),
            SyncAction::Pin { chat, pinned } => {
                self.set_pin(chat, pinned.then_some(timestamp), out)
            }
            SyncAction::Archive { chat, archived, .. } => self.set_archived(chat, archived, out),
            SyncAction::MarkRead { chat, read, .. } => self.set_unread(chat, !read, out),
            SyncAction::Star {
                chat,
                message_id,
                from_me,
                participant,
                starred,
            } => self.set_star(
                StarredMessage {
                    chat,
                    message_id,
                    from_me,
                    participant,
                },
                starred,
                out,
            ),
            SyncAction::DeleteChat { .. } | SyncAction::ClearChat { .. } if historical => {}
            SyncAction::DeleteChat { chat, .. } => {
                self.chats.remove(&chat);
                self.starred.retain(|m| m.chat != chat);
                self.message_labels.retain(|m| m.chat != chat);
                out.push(SettingChange::ChatDeleted { chat });
            }
            SyncAction::ClearChat { chat, .. } => {
                self.starred.retain(|m| m.chat != chat);
                out.push(SettingChange::ChatCleared { chat });
            }
            SyncAction::Contact {
                jid,
                full_name,
                first_name,
            } => self.set_contact(
                jid,
                Some(Contact {
                    full_name,
                    first_name,
                }),
                out,
            ),
            SyncAction::RemoveContact { jid } => self.set_contact(jid, None, out),
            SyncAction::LabelEdit {
                label_id,
                name,
                color,
                deleted,
                predefined_id,
            } => self.set_label(
                label_id,
                Some(Label {
                    name,
                    color,
                    deleted,
                    predefined_id,
                }),
                out,
            ),
            SyncAction::LabelChat {
                label_id,
                chat,
                labeled,
            } => self.set_chat_label(label_id, chat, labeled, out),
            SyncAction::LabelMessage {
                label_id,
                chat,
                message_id,
                labeled,
            } => self.set_message_label(
                MessageLabel {
                    label_id,
                    chat,
                    message_id,
                },
                labeled,
                out,
            ),
            SyncAction::Unsupported { name } => out.push(SettingChange::Ignored { name }),
        }
    }

    /// A REMOVE resets what its index names, whatever value it carries.
    fn apply_remove(&mut self, mutation: &DecodedMutation, out: &mut Vec<SettingChange>) {
        let index = &mutation.index;
        let at = |i: usize| index.get(i).cloned();
        let name = at(0).unwrap_or_default();
        match (name.as_str(), at(1)) {
            ("mute", Some(chat)) => self.set_mute(chat, None, out),
            ("pin_v1", Some(chat)) => self.set_pin(chat, None, out),
            ("archive", Some(chat)) => self.set_archived(chat, false, out),
            ("markChatAsRead", Some(chat)) => self.set_unread(chat, false, out),
            ("star", Some(chat)) => {
                if let (Some(message_id), Some(from_me)) = (at(2), at(3)) {
                    let message = StarredMessage {
                        chat,
                        message_id,
                        from_me: from_me == "1",
                        participant: at(4).filter(|p| p != "0"),
                    };
                    self.set_star(message, false, out);
                } else {
                    out.push(SettingChange::Ignored { name });
                }
            }
            ("contact", Some(jid)) => self.set_contact(jid, None, out),
            ("label_edit", Some(label_id)) => self.set_label(label_id, None, out),
            ("label_jid", Some(label_id)) => match at(2) {
                Some(chat) => self.set_chat_label(label_id, chat, false, out),
                None => out.push(SettingChange::Ignored { name }),
            },
            ("label_message", Some(label_id)) => match (at(2), at(3)) {
                (Some(chat), Some(message_id)) => self.set_message_label(
                    MessageLabel {
                        label_id,
                        chat,
                        message_id,
                    },
                    false,
                    out,
                ),
                _ => out.push(SettingChange::Ignored { name }),
            },
            // Removing a delete or clear record undoes nothing.
            ("deleteChat" | "clearChat", Some(_)) => {}
            _ => out.push(SettingChange::Ignored { name }),
        }
    }
}

/// The keys of two maps in order, each once: a merge of the two sorted key sequences (instead of
/// collecting them into a `BTreeSet`, whose node code is about 10 KB of the wasm module).
fn union_sorted<'a>(
    a: impl Iterator<Item = &'a String>,
    b: impl Iterator<Item = &'a String>,
) -> Vec<&'a String> {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    let mut out = Vec::new();
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x < y => a.next(),
            (Some(x), Some(y)) if x > y => b.next(),
            (Some(_), Some(_)) => {
                b.next();
                a.next()
            }
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => break,
        };
        out.extend(next);
    }
    out
}

#[cfg(test)]
mod union_tests {
    use super::*;

    #[test]
    fn union_sorted_matches_a_btreeset_union() {
        let cases: [(&[&str], &[&str]); 5] = [
            (&[], &[]),
            (&["a"], &[]),
            (&[], &["b"]),
            (&["a", "c", "e"], &["b", "c", "d", "f"]),
            (&["x", "y"], &["x", "y"]),
        ];
        for (a, b) in cases {
            let a: BTreeMap<String, ()> = a.iter().map(|k| (k.to_string(), ())).collect();
            let b: BTreeMap<String, ()> = b.iter().map(|k| (k.to_string(), ())).collect();
            let want: Vec<&String> = a
                .keys()
                .chain(b.keys())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            assert_eq!(union_sorted(a.keys(), b.keys()), want);
        }
    }
}
