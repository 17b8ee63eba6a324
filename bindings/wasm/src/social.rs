//! The JavaScript forms of calls, presence and chat state, and contact queries: their
//! commands, command outputs and events (`npm/src/index.d.ts`: `CallEvent`, `PresenceEvent`,
//! `ChatStateEvent`, `NumberInfo`, `ProfilePicture`, `About`, `BusinessProfile`).

use walink_core::client::{
    About, BusinessProfile, CallAction, CallEvent, ChatState, ChatStateUpdate, Command, NumberInfo,
    PresenceUpdate, ProfilePicture,
};
use wasm_bindgen::JsValue;

use crate::js::{Obj, Reader, array, strings};

/// The fields of each command of this module, or `None` for another module's command.
pub(crate) fn command_fields(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "rejectCall" => &["type", "callId", "caller"],
        "setPresence" => &["type", "available"],
        "subscribePresence" | "unsubscribePresence" | "getAbout" | "getBusinessProfile" => {
            &["type", "jid"]
        }
        "sendChatState" => &["type", "to", "state"],
        "checkNumbers" => &["type", "phones"],
        "getProfilePicture" => &["type", "jid", "preview"],
        "setBlocked" => &["type", "jid", "blocked"],
        "getBlockList" => &["type"],
        _ => return None,
    })
}

/// The command `name` of this module (its fields checked by `command_fields`).
pub(crate) fn command_from_js(name: &str, r: &Reader<'_>) -> Result<Option<Command>, JsValue> {
    Ok(Some(match name {
        "rejectCall" => Command::RejectCall {
            call_id: r.string("callId")?,
            caller: r.string("caller")?,
        },
        "setPresence" => Command::SetPresence {
            available: r.bool("available")?,
        },
        "subscribePresence" => Command::SubscribePresence {
            jid: r.string("jid")?,
        },
        "unsubscribePresence" => Command::UnsubscribePresence {
            jid: r.string("jid")?,
        },
        "sendChatState" => {
            let state = r.string("state")?;
            Command::SendChatState {
                to: r.string("to")?,
                state: match state.as_str() {
                    "composing" => ChatState::Composing,
                    "recording" => ChatState::Recording,
                    "paused" => ChatState::Paused,
                    _ => return Err(r.error(&format!("unknown chat state {state:?}"))),
                },
            }
        }
        "checkNumbers" => Command::CheckNumbers {
            phones: r.strings("phones")?,
        },
        "getProfilePicture" => Command::GetProfilePicture {
            jid: r.string("jid")?,
            preview: r.opt_bool("preview")?.unwrap_or(true),
        },
        "getAbout" => Command::GetAbout {
            jid: r.string("jid")?,
        },
        "getBusinessProfile" => Command::GetBusinessProfile {
            jid: r.string("jid")?,
        },
        "setBlocked" => Command::SetBlocked {
            jid: r.string("jid")?,
            blocked: r.bool("blocked")?,
        },
        "getBlockList" => Command::GetBlockList,
        _ => return Ok(None),
    }))
}

/// `'composing' | 'recording' | 'paused'`.
pub(crate) fn chat_state_name(state: ChatState) -> &'static str {
    match state {
        ChatState::Composing => "composing",
        ChatState::Recording => "recording",
        ChatState::Paused => "paused",
    }
}

/// The `action` of a call event.
pub(crate) fn call_action_name(action: CallAction) -> &'static str {
    match action {
        CallAction::Offer => "offer",
        CallAction::Ringing => "ringing",
        CallAction::Accepted => "accepted",
        CallAction::Rejected => "rejected",
        CallAction::Ended => "ended",
        CallAction::TimedOut => "timedOut",
    }
}

/// The fields of a `call` event.
pub(crate) fn call_to_js(js: Obj, call: &CallEvent) -> Obj {
    js.str("callId", &call.call_id)
        .str("action", call_action_name(call.action))
        .str("caller", &call.caller.to_string())
        .opt_str(
            "callerPn",
            call.caller_pn.as_ref().map(ToString::to_string).as_deref(),
        )
        .str("device", &call.device.to_string())
        .num("timestamp", call.timestamp as f64)
        .bool("offline", call.offline)
        .bool("video", call.video)
        .bool("isGroup", call.is_group)
        .opt_str(
            "group",
            call.group.as_ref().map(ToString::to_string).as_deref(),
        )
        .opt_str("reason", call.reason.as_deref())
}

/// The fields of a `presence` event.
pub(crate) fn presence_to_js(js: Obj, update: &PresenceUpdate) -> Obj {
    js.str("jid", &update.jid.to_string())
        .bool("available", update.available)
        .opt_num("lastSeen", update.last_seen.map(|t| t as f64))
        .bool("lastSeenHidden", update.last_seen_hidden)
}

/// The fields of a `chatState` event.
pub(crate) fn chat_state_to_js(js: Obj, update: &ChatStateUpdate) -> Obj {
    js.str("chat", &update.chat.to_string())
        .str("sender", &update.sender.to_string())
        .str("state", chat_state_name(update.state))
}

/// `{ phone, onWhatsApp, jid, lid? }` for each number.
pub(crate) fn numbers_to_js(numbers: &[NumberInfo]) -> JsValue {
    array(numbers, |n| {
        Obj::new()
            .str("phone", &n.phone)
            .bool("onWhatsApp", n.on_whatsapp)
            .str("jid", &n.jid.to_string())
            .opt_str("lid", n.lid.as_ref().map(ToString::to_string).as_deref())
            .done()
    })
}

/// `{ kind: 'url', url, id, directPath? } | { kind: 'none' } | { kind: 'notAllowed' }`.
pub(crate) fn picture_to_js(picture: &ProfilePicture) -> JsValue {
    match picture {
        ProfilePicture::Url {
            url,
            id,
            direct_path,
        } => Obj::tagged("kind", "url")
            .str("url", url)
            .str("id", id)
            .opt_str("directPath", direct_path.as_deref()),
        ProfilePicture::None => Obj::tagged("kind", "none"),
        ProfilePicture::NotAllowed => Obj::tagged("kind", "notAllowed"),
    }
    .done()
}

/// `{ kind: 'text', text, setAt } | { kind: 'none' } | { kind: 'notAllowed' }`.
pub(crate) fn about_to_js(about: &About) -> JsValue {
    match about {
        About::Text { text, set_at } => Obj::tagged("kind", "text")
            .str("text", text)
            .num("setAt", *set_at as f64),
        About::None => Obj::tagged("kind", "none"),
        About::NotAllowed => Obj::tagged("kind", "notAllowed"),
    }
    .done()
}

/// The business profile, or `undefined` for other accounts.
pub(crate) fn business_to_js(profile: Option<&BusinessProfile>) -> JsValue {
    let Some(profile) = profile else {
        return JsValue::UNDEFINED;
    };
    Obj::new()
        .str("jid", &profile.jid.to_string())
        .opt_str("description", profile.description.as_deref())
        .opt_str("address", profile.address.as_deref())
        .opt_str("email", profile.email.as_deref())
        .set("websites", strings(&profile.websites))
        .set("categories", strings(&profile.categories))
        .done()
}
