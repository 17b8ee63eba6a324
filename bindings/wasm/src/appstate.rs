//! The app-state shapes of the JS API: sync actions (in commands), chat settings, setting
//! changes and collection failures (in events). Mute ends are Unix milliseconds, 0 meaning
//! forever.

use crate::js::{Obj, Reader, strings};
use walink_core::appstate::{
    ChatSettings, Collection, MessageRange, MessageRef, MuteUntil, SettingChange, SyncAction,
};
use walink_core::client::AppStateFailure;
use wasm_bindgen::JsValue;

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

/// The error code of a malformed command.
const CODE: &str = "invalid_command";

/// A message range (`{ lastMessageTimestamp, lastSystemMessageTimestamp?, messages? }`); a
/// missing range is the empty one.
fn range_from_js(value: JsValue) -> Result<MessageRange, JsValue> {
    if value.is_undefined() || value.is_null() {
        return Ok(MessageRange::default());
    }
    let r = Reader::new(&value, CODE, "range")?;
    r.only(&[
        "lastMessageTimestamp",
        "lastSystemMessageTimestamp",
        "messages",
    ])?;
    let messages = r.opt_array("messages", |m| {
        let m = Reader::new(m, CODE, "range message")?;
        m.only(&["id", "fromMe", "participant", "timestamp"])?;
        Ok(MessageRef {
            id: m.string("id")?,
            from_me: m.bool("fromMe")?,
            participant: m.opt_string("participant")?,
            timestamp: m.i64("timestamp")?,
        })
    })?;
    Ok(MessageRange {
        last_message_timestamp: r.i64("lastMessageTimestamp")?,
        last_system_message_timestamp: r.opt_i64("lastSystemMessageTimestamp")?,
        messages: messages.unwrap_or_default(),
    })
}

/// `{ kind: "mute", chat, untilMs }` and the other actions (see `index.d.ts`).
pub(crate) fn sync_action_from_js(value: &JsValue) -> Result<SyncAction, JsValue> {
    let r = Reader::new(value, CODE, "action")?;
    let kind = r.string("kind")?;
    let fields: &[&str] = match kind.as_str() {
        "mute" => &["kind", "chat", "untilMs"],
        "unmute" => &["kind", "chat"],
        "pin" => &["kind", "chat", "pinned"],
        "archive" => &["kind", "chat", "archived", "range"],
        "markRead" => &["kind", "chat", "read", "range"],
        "star" => &[
            "kind",
            "chat",
            "messageId",
            "fromMe",
            "participant",
            "starred",
        ],
        "deleteChat" | "clearChat" => &["kind", "chat", "range"],
        "contact" => &["kind", "jid", "fullName", "firstName"],
        "removeContact" => &["kind", "jid"],
        "labelEdit" => &[
            "kind",
            "labelId",
            "name",
            "color",
            "deleted",
            "predefinedId",
        ],
        "labelChat" => &["kind", "labelId", "chat", "labeled"],
        "labelMessage" => &["kind", "labelId", "chat", "messageId", "labeled"],
        _ => return Err(r.error(&format!("unknown action kind {kind:?}"))),
    };
    r.only(fields)?;
    let range = || range_from_js(r.get("range"));
    Ok(match kind.as_str() {
        "mute" => SyncAction::Mute {
            chat: r.string("chat")?,
            until: mute_from_js(r.i64("untilMs")?),
        },
        "unmute" => SyncAction::Unmute {
            chat: r.string("chat")?,
        },
        "pin" => SyncAction::Pin {
            chat: r.string("chat")?,
            pinned: r.bool("pinned")?,
        },
        "archive" => SyncAction::Archive {
            chat: r.string("chat")?,
            archived: r.bool("archived")?,
            range: range()?,
        },
        "markRead" => SyncAction::MarkRead {
            chat: r.string("chat")?,
            read: r.bool("read")?,
            range: range()?,
        },
        "star" => SyncAction::Star {
            chat: r.string("chat")?,
            message_id: r.string("messageId")?,
            from_me: r.bool("fromMe")?,
            participant: r.opt_string("participant")?,
            starred: r.bool("starred")?,
        },
        "deleteChat" => SyncAction::DeleteChat {
            chat: r.string("chat")?,
            range: range()?,
        },
        "clearChat" => SyncAction::ClearChat {
            chat: r.string("chat")?,
            range: range()?,
        },
        "contact" => SyncAction::Contact {
            jid: r.string("jid")?,
            full_name: r.opt_string("fullName")?,
            first_name: r.opt_string("firstName")?,
        },
        "removeContact" => SyncAction::RemoveContact {
            jid: r.string("jid")?,
        },
        "labelEdit" => SyncAction::LabelEdit {
            label_id: r.string("labelId")?,
            name: r.string("name")?,
            color: r.i32("color")?,
            deleted: r.opt_bool("deleted")?.unwrap_or(false),
            predefined_id: r.opt_i32("predefinedId")?,
        },
        "labelChat" => SyncAction::LabelChat {
            label_id: r.string("labelId")?,
            chat: r.string("chat")?,
            labeled: r.bool("labeled")?,
        },
        _ => SyncAction::LabelMessage {
            label_id: r.string("labelId")?,
            chat: r.string("chat")?,
            message_id: r.string("messageId")?,
            labeled: r.bool("labeled")?,
        },
    })
}

/// A collection's wire name (`regular_high`, ...).
pub(crate) fn collection_to_js(collection: Collection) -> &'static str {
    collection.name()
}

/// `{ mutedUntilMs, pinnedAt, archived, markedUnread, labels }`.
pub(crate) fn chat_settings_to_js(settings: &ChatSettings) -> JsValue {
    Obj::new()
        .opt_num(
            "mutedUntilMs",
            settings.muted_until.as_ref().map(mute_to_js),
        )
        .opt_num("pinnedAt", settings.pinned_at.map(|at| at as f64))
        .bool("archived", settings.archived)
        .bool("markedUnread", settings.marked_unread)
        .set("labels", strings(&settings.labels))
        .done()
}

/// A setting change, tagged with `kind`.
pub(crate) fn setting_change_to_js(change: SettingChange) -> JsValue {
    let tagged = |kind: &str| Obj::tagged("kind", kind);
    match change {
        SettingChange::Muted { chat, until } => tagged("muted")
            .str("chat", &chat)
            .opt_num("untilMs", until.as_ref().map(mute_to_js)),
        SettingChange::Pinned { chat, pinned } => {
            tagged("pinned").str("chat", &chat).bool("pinned", pinned)
        }
        SettingChange::Archived { chat, archived } => tagged("archived")
            .str("chat", &chat)
            .bool("archived", archived),
        SettingChange::MarkedUnread { chat, unread } => tagged("markedUnread")
            .str("chat", &chat)
            .bool("unread", unread),
        SettingChange::Starred { message, starred } => tagged("starred")
            .str("chat", &message.chat)
            .str("messageId", &message.message_id)
            .bool("fromMe", message.from_me)
            .opt_str("participant", message.participant.as_deref())
            .bool("starred", starred),
        SettingChange::ChatDeleted { chat } => tagged("chatDeleted").str("chat", &chat),
        SettingChange::ChatCleared { chat } => tagged("chatCleared").str("chat", &chat),
        SettingChange::Contact { jid, contact } => tagged("contact").str("jid", &jid).set(
            "contact",
            contact.map_or(JsValue::UNDEFINED, |c| {
                Obj::new()
                    .opt_str("fullName", c.full_name.as_deref())
                    .opt_str("firstName", c.first_name.as_deref())
                    .done()
            }),
        ),
        SettingChange::Label { label_id, label } => tagged("label").str("labelId", &label_id).set(
            "label",
            label.map_or(JsValue::UNDEFINED, |l| {
                Obj::new()
                    .str("name", &l.name)
                    .num("color", l.color.into())
                    .bool("deleted", l.deleted)
                    .opt_num("predefinedId", l.predefined_id.map(f64::from))
                    .done()
            }),
        ),
        SettingChange::ChatLabeled {
            label_id,
            chat,
            labeled,
        } => tagged("chatLabeled")
            .str("labelId", &label_id)
            .str("chat", &chat)
            .bool("labeled", labeled),
        SettingChange::MessageLabeled { message, labeled } => tagged("messageLabeled")
            .str("labelId", &message.label_id)
            .str("chat", &message.chat)
            .str("messageId", &message.message_id)
            .bool("labeled", labeled),
        SettingChange::Ignored { name } => tagged("ignored").str("name", &name),
    }
    .done()
}

/// A collection failure, tagged with `kind`.
pub(crate) fn app_state_failure_to_js(failure: &AppStateFailure) -> JsValue {
    match failure {
        AppStateFailure::Patch(error) => {
            Obj::tagged("kind", "patch").str("message", &error.to_string())
        }
        AppStateFailure::Rejected { code, text } => Obj::tagged("kind", "rejected")
            .num("code", (*code).into())
            .str("text", text),
        AppStateFailure::NotAnswered => Obj::tagged("kind", "notAnswered"),
        AppStateFailure::Download => Obj::tagged("kind", "download"),
    }
    .done()
}
