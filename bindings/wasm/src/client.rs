//! The `Client` state machine as a JavaScript class: the eight calls of
//! `walink_core::client::Client` in camelCase, with plain objects crossing the boundary
//! (written by hand in `crate::js`). Timestamps are numbers (Unix milliseconds), bytes are `Uint8Array`s,
//! outputs are tagged with `kind`, events with `type`, and errors are `Error`s with a stable
//! `code`. The shapes are documented in `npm/src/index.d.ts`.
//!
//! Nothing here calls into JavaScript: each method runs one step of the core and returns.

use crate::appstate::{
    app_state_failure_to_js, chat_settings_to_js, collection_to_js, setting_change_to_js,
    sync_action_from_js,
};
use crate::js::{Obj, Reader, array, coded_error, strings};
use crate::poison::{Poisonable, Poisoned};
use walink_core::client::{
    self, Body, CloseReason, Command, CommandError, CommandOutput, Config, ConfigOptions,
    DecryptFailureKind, Event, FetchError, FetchId, FetchRequest, FetchResponse, FetchResult,
    IdentityPolicy, LoadId, MediaKind, OutgoingMedia, Output, PairingMode, PollVote, RetryRefusal,
    State, StateReason,
};
use walink_core::client::{HostUpload, ResponseTarget};
use walink_core::media::{MediaError, MediaHashes, MediaKeys};
use walink_core::store::{Change, Record, RecordKey, Space};
use wasm_bindgen::prelude::*;
use zeroize::Zeroizing;

/// A timestamp from JavaScript: a finite, non-negative number of milliseconds.
fn timestamp(now: f64) -> client::Timestamp {
    if now.is_finite() && now > 0.0 {
        // Saturating float-to-int conversion; milliseconds fit a u64 for 584 million years.
        now as u64
    } else {
        0
    }
}

// --- the configuration --------------------------------------------------------------------

/// The options of `new Client(config, records)` (every one optional), by their name in
/// JavaScript and in `ConfigOptions`; a misspelt option is refused instead of being ignored.
/// The core's `ConfigOptions::build` checks them and fills in WhatsApp Web's defaults.
const CONFIG_OPTIONS: [(&str, &str); 27] = [
    ("webVersion", "web_version"),
    ("deviceName", "device_name"),
    ("platform", "platform"),
    ("pushName", "push_name"),
    ("language", "language"),
    ("country", "country"),
    ("companionOs", "companion_os"),
    ("trustRoot", "trust_root"),
    ("trustRootSerial", "trust_root_serial"),
    ("retryWhenReplaced", "retry_when_replaced"),
    ("keepaliveMinMs", "keepalive_min_ms"),
    ("keepaliveMaxMs", "keepalive_max_ms"),
    ("keepaliveDeadlineMs", "keepalive_deadline_ms"),
    ("connectTimeoutMs", "connect_timeout_ms"),
    ("iqTimeoutMs", "iq_timeout_ms"),
    ("backoffFirstMs", "backoff_first_ms"),
    ("backoffMaxMs", "backoff_max_ms"),
    ("backoffJitterPermille", "backoff_jitter_permille"),
    ("backoffResetAfterMs", "backoff_reset_after_ms"),
    ("recordCacheLimit", "record_cache_limit"),
    ("mediaOrigin", "media_origin"),
    ("identityPolicy", "identity_policy"),
    ("history", "history"),
    ("historyDays", "history_days"),
    ("historyMessagesPerChat", "history_messages_per_chat"),
    ("historySizeMb", "history_size_mb"),
    ("unsafeTestRngSeed", "unsafe_test_rng_seed"),
];

fn config_from_js(value: JsValue) -> Result<Config, JsValue> {
    let options = if value.is_undefined() || value.is_null() {
        ConfigOptions::default()
    } else {
        let r = Reader::new(&value, "invalid_config", "config")?;
        let names: Vec<&str> = CONFIG_OPTIONS.iter().map(|(js, _)| *js).collect();
        r.only(&names)?;
        let ms = |key: &str| Ok::<_, JsValue>(r.opt_f64(key)?.map(timestamp));
        ConfigOptions {
            web_version: r.opt_string("webVersion")?,
            device_name: r.opt_string("deviceName")?,
            platform: r.opt_string("platform")?,
            push_name: r.opt_string("pushName")?,
            language: r.opt_string("language")?,
            country: r.opt_string("country")?,
            companion_os: r.opt_string("companionOs")?,
            trust_root: r.opt_bytes("trustRoot")?,
            trust_root_serial: r.opt_u32("trustRootSerial")?,
            retry_when_replaced: r.opt_bool("retryWhenReplaced")?,
            keepalive_min_ms: ms("keepaliveMinMs")?,
            keepalive_max_ms: ms("keepaliveMaxMs")?,
            keepalive_deadline_ms: ms("keepaliveDeadlineMs")?,
            connect_timeout_ms: ms("connectTimeoutMs")?,
            iq_timeout_ms: ms("iqTimeoutMs")?,
            backoff_first_ms: ms("backoffFirstMs")?,
            backoff_max_ms: ms("backoffMaxMs")?,
            backoff_jitter_permille: r.opt_u32("backoffJitterPermille")?,
            backoff_reset_after_ms: ms("backoffResetAfterMs")?,
            record_cache_limit: ms("recordCacheLimit")?,
            media_origin: r.opt_string("mediaOrigin")?,
            identity_policy: r
                .opt_string("identityPolicy")?
                .map(|name| match name.as_str() {
                    "acceptAndNotify" => Ok(IdentityPolicy::AcceptAndNotify),
                    "strict" => Ok(IdentityPolicy::Strict),
                    _ => Err(coded_error(
                        "invalid_config",
                        "identityPolicy must be acceptAndNotify or strict",
                    )),
                })
                .transpose()?,
            history: r.opt_string("history")?,
            history_days: r.opt_u32("historyDays")?,
            history_messages_per_chat: r.opt_u32("historyMessagesPerChat")?,
            history_size_mb: r.opt_u32("historySizeMb")?,
            unsafe_test_rng_seed: r.opt_bytes("unsafeTestRngSeed")?,
        }
    };
    options.build().map_err(|error| {
        let name = CONFIG_OPTIONS
            .iter()
            .find(|(_, rust)| *rust == error.option)
            .map_or(error.option, |(js, _)| *js);
        coded_error(error.code(), &format!("{name} {}", error.problem))
    })
}

// --- records ------------------------------------------------------------------------------

fn records_from_js(value: JsValue) -> Result<Vec<Record>, JsValue> {
    if value.is_undefined() || value.is_null() {
        return Ok(Vec::new());
    }
    let array = value
        .dyn_ref::<js_sys::Array>()
        .ok_or_else(|| coded_error("invalid_record", "records must be an array"))?;
    array
        .iter()
        .map(|record| {
            let r = Reader::new(&record, "invalid_record", "a record")?;
            let name = r.string("space")?;
            let space = Space::parse(&name)
                .ok_or_else(|| coded_error("invalid_record", &format!("unknown space {name:?}")))?;
            Ok(Record {
                space,
                key: r.string("key")?,
                value: r.bytes("value")?,
            })
        })
        .collect()
}

// --- outputs and events -------------------------------------------------------------------
//
// Every conversion below matches the core's enums exhaustively (walink-core's `exhaustive`
// feature): a variant added to the core fails to compile here until it is converted. The tag
// of each variant comes from one name function per enum (`event_type`, `state_kind`, ...), which
// `names::tests` checks against `npm/src/index.d.ts`.

fn tagged(tag: &'static str, name: &str) -> Obj {
    Obj::tagged(tag, name)
}

/// The `kind` of a close reason.
pub(crate) fn close_kind(reason: &CloseReason) -> &'static str {
    match reason {
        CloseReason::Network => "network",
        CloseReason::Local => "local",
        CloseReason::StreamError { .. } => "streamError",
        CloseReason::Failure { .. } => "failure",
        CloseReason::ServerClosed => "serverClosed",
        CloseReason::Protocol(_) => "protocol",
        CloseReason::ConnectTimeout => "connectTimeout",
        CloseReason::KeepaliveTimeout => "keepaliveTimeout",
        CloseReason::QrRefsExhausted => "qrRefsExhausted",
        CloseReason::LoggedOut => "loggedOut",
    }
}

fn close_reason_to_js(reason: &CloseReason) -> JsValue {
    let js = tagged("kind", close_kind(reason));
    match reason {
        CloseReason::StreamError { code, conflict } => js
            .opt_num("code", code.map(f64::from))
            .opt_str("conflict", conflict.as_deref()),
        CloseReason::Failure { reason } => js.num("reason", (*reason).into()),
        CloseReason::Protocol(error) => js.str("message", &error.to_string()),
        CloseReason::Network
        | CloseReason::Local
        | CloseReason::ServerClosed
        | CloseReason::ConnectTimeout
        | CloseReason::KeepaliveTimeout
        | CloseReason::QrRefsExhausted
        | CloseReason::LoggedOut => js,
    }
    .done()
}

/// What the host reports to `handleClosed`, taken as it is named: every kind `pollOutput`
/// names, except `protocol` (only the client finds the peer at fault).
fn close_reason_from_js(value: &JsValue) -> Result<CloseReason, JsValue> {
    let r = Reader::new(value, "invalid_close_reason", "reason")?;
    let kind = r.string("kind")?;
    let fields: &[&str] = match kind.as_str() {
        "streamError" => &["kind", "code", "conflict"],
        "failure" => &["kind", "reason"],
        _ => &["kind"],
    };
    r.only(fields)?;
    Ok(match kind.as_str() {
        "network" => CloseReason::Network,
        "local" => CloseReason::Local,
        "streamError" => CloseReason::StreamError {
            code: r
                .opt_u32("code")?
                .map(u16::try_from)
                .transpose()
                .map_err(|_| r.error("code: expected an integer in range"))?,
            conflict: r.opt_string("conflict")?,
        },
        "failure" => CloseReason::Failure {
            reason: u16::try_from(r.u64("reason")?)
                .map_err(|_| r.error("reason: expected an integer in range"))?,
        },
        "serverClosed" => CloseReason::ServerClosed,
        "connectTimeout" => CloseReason::ConnectTimeout,
        "keepaliveTimeout" => CloseReason::KeepaliveTimeout,
        "qrRefsExhausted" => CloseReason::QrRefsExhausted,
        "loggedOut" => CloseReason::LoggedOut,
        _ => return Err(r.error(&format!("a host cannot report a close of kind {kind:?}"))),
    })
}

/// The `kind` of a state.
pub(crate) fn state_kind(state: &State) -> &'static str {
    match state {
        State::Disconnected => "disconnected",
        State::Connecting => "connecting",
        State::Handshaking => "handshaking",
        State::AwaitingPairing { .. } => "awaitingPairing",
        State::LoggingIn => "loggingIn",
        State::Connected => "connected",
        State::Reconnecting { .. } => "reconnecting",
        State::LoggedOut => "loggedOut",
        State::Replaced => "replaced",
        State::ClientOutdated => "clientOutdated",
    }
}

fn state_to_js(state: &State) -> JsValue {
    let js = tagged("kind", state_kind(state));
    match state {
        State::AwaitingPairing { mode } => js.str(
            "mode",
            match mode {
                PairingMode::Qr => "qr",
                PairingMode::Code => "code",
            },
        ),
        State::Reconnecting { attempt, at } => {
            js.num("attempt", (*attempt).into()).num("at", *at as f64)
        }
        State::Disconnected
        | State::Connecting
        | State::Handshaking
        | State::LoggingIn
        | State::Connected
        | State::LoggedOut
        | State::Replaced
        | State::ClientOutdated => js,
    }
    .done()
}

/// The `kind` of a state reason.
pub(crate) fn state_reason_kind(reason: &StateReason) -> &'static str {
    match reason {
        StateReason::Started => "started",
        StateReason::ConnectRequested => "connectRequested",
        StateReason::BackoffElapsed => "backoffElapsed",
        StateReason::RestartRequired => "restartRequired",
        StateReason::SocketOpened => "socketOpened",
        StateReason::PairingOffered => "pairingOffered",
        StateReason::PairingCodeRequested => "pairingCodeRequested",
        StateReason::PairingCodeFailed => "pairingCodeFailed",
        StateReason::LoginAccepted => "loginAccepted",
        StateReason::PostLoginDone => "postLoginDone",
        StateReason::Closed(_) => "closed",
        StateReason::DisconnectRequested => "disconnectRequested",
        StateReason::LogoutRequested => "logoutRequested",
    }
}

fn state_reason_to_js(reason: &StateReason) -> JsValue {
    let js = tagged("kind", state_reason_kind(reason));
    match reason {
        StateReason::Closed(reason) => js.set("reason", close_reason_to_js(reason)),
        StateReason::Started
        | StateReason::ConnectRequested
        | StateReason::BackoffElapsed
        | StateReason::RestartRequired
        | StateReason::SocketOpened
        | StateReason::PairingOffered
        | StateReason::PairingCodeRequested
        | StateReason::PairingCodeFailed
        | StateReason::LoginAccepted
        | StateReason::PostLoginDone
        | StateReason::DisconnectRequested
        | StateReason::LogoutRequested => js,
    }
    .done()
}

/// The `kind` of a command's output.
pub(crate) fn command_output_kind(output: &CommandOutput) -> &'static str {
    match output {
        CommandOutput::None => "none",
        CommandOutput::PairingCode(_) => "pairingCode",
        CommandOutput::MessageSent { .. } => "messageSent",
        CommandOutput::ChatSettings(_) => "chatSettings",
        CommandOutput::Identity(_) => "identity",
        CommandOutput::MediaDownloaded(_) => "mediaDownloaded",
        CommandOutput::Group(output) => crate::groups::output_kind(output),

        CommandOutput::Numbers(_) => "numbers",
        CommandOutput::ProfilePicture(_) => "profilePicture",
        CommandOutput::About(_) => "about",
        CommandOutput::BusinessProfile(_) => "businessProfile",
        CommandOutput::BlockList(_) => "blockList",
        CommandOutput::MediaSaved { .. } => "mediaSaved",
    }
}

/// `{ ok: true, output }` or `{ ok: false, error: { code, message, serverCode?, serverText?,
/// retryAfterMs? } }`; `code` is the core's `CommandError::code`.
fn command_result_to_js(result: &Result<CommandOutput, CommandError>) -> JsValue {
    match result {
        Ok(output) => {
            let js = tagged("kind", command_output_kind(output));
            let output = match output {
                CommandOutput::None => js,
                CommandOutput::PairingCode(code) => js.str("code", code),
                CommandOutput::MessageSent { id } => js.str("id", id),
                CommandOutput::ChatSettings(settings) => {
                    js.set("settings", chat_settings_to_js(settings))
                }
                CommandOutput::Identity(info) => js
                    .str("address", &info.address.to_string())
                    .opt_bytes("identity", info.identity.as_ref().map(|key| &key[..]))
                    .opt_bytes("pending", info.pending.as_ref().map(|key| &key[..])),
                CommandOutput::MediaDownloaded(data) => js.bytes("data", &data.0),
                CommandOutput::Group(output) => crate::groups::output_fields(js, output),

                CommandOutput::Numbers(numbers) => {
                    js.set("numbers", crate::social::numbers_to_js(numbers))
                }
                CommandOutput::ProfilePicture(picture) => {
                    js.set("picture", crate::social::picture_to_js(picture))
                }
                CommandOutput::About(about) => js.set("about", crate::social::about_to_js(about)),
                CommandOutput::BusinessProfile(profile) => {
                    js.set("profile", crate::social::business_to_js(profile.as_ref()))
                }
                CommandOutput::BlockList(list) => {
                    js.set("jids", strings(list.iter().map(ToString::to_string)))
                }
                &CommandOutput::MediaSaved { sink, length } => {
                    js.num("sink", sink as f64).num("length", length as f64)
                }
            };
            Obj::new()
                .bool("ok", true)
                .set("output", output.done())
                .done()
        }
        Err(error) => {
            let js = Obj::new()
                .str("code", error.code())
                .str("message", &error.to_string());
            // Absent fields are left out, not set to undefined.
            let js = match error {
                CommandError::Rejected { code, text } => {
                    js.num("serverCode", (*code).into()).str("serverText", text)
                }
                CommandError::RateLimited {
                    retry_after_ms: Some(ms),
                } => js.num("retryAfterMs", *ms as f64),
                CommandError::RateLimited {
                    retry_after_ms: None,
                }
                | CommandError::InvalidPhoneNumber
                | CommandError::AlreadyPaired
                | CommandError::NotPaired
                | CommandError::PairingCodeOutstanding
                | CommandError::UnsupportedPlatform
                | CommandError::NotConnected
                | CommandError::TimedOut
                | CommandError::InvalidAddress
                | CommandError::InvalidMessage
                | CommandError::InvalidState
                | CommandError::AppState(_)
                | CommandError::UploadFailed
                | CommandError::DownloadFailed
                | CommandError::MediaInvalid
                | CommandError::MediaExpired
                | CommandError::MediaTooLarge
                | CommandError::UnknownPoll
                | CommandError::Forbidden
                | CommandError::NotFound
                | CommandError::ResourceLimit
                | CommandError::BadRequest
                | CommandError::PushNameRequired
                | CommandError::BadAnswer => js,
                CommandError::UntrustedIdentity { address } => js.str("address", address),
                CommandError::BadPrekeyAnswer { address } => {
                    js.opt_str("address", address.as_deref())
                }
            };
            Obj::new().bool("ok", false).set("error", js.done()).done()
        }
    }
}

/// The `type` of an event.
pub(crate) fn event_type(event: &Event) -> &'static str {
    match event {
        Event::State { .. } => "state",
        Event::Qr { .. } => "qr",
        Event::QrRefsExhausted => "qrRefsExhausted",
        Event::PairingCode { .. } => "pairingCode",
        Event::Paired { .. } => "paired",
        Event::OfflinePreview(_) => "offlinePreview",
        Event::OfflineSyncDone { .. } => "offlineSyncDone",
        Event::Message(_) => "message",
        Event::Receipt(_) => "receipt",
        Event::DecryptFailed(_) => "decryptFailed",
        Event::IdentityChanged(_) => "identityChanged",
        Event::RecordCorrupt { .. } => "recordCorrupt",
        Event::RetryRefused(_) => "retryRefused",
        Event::AppStateChanged { .. } => "appStateChanged",
        Event::ChatSettings { .. } => "chatSettings",
        Event::AppStateWaitingForKeys { .. } => "appStateWaitingForKeys",
        Event::AppStateFatal { .. } => "appStateFatal",
        Event::HistoryConversation(_) => "historyConversation",
        Event::PushName(_) => "pushName",
        Event::HistorySync(_) => "historySync",
        Event::Group(_) => "group",
        Event::Call(_) => "call",
        Event::Presence(_) => "presence",
        Event::ChatState(_) => "chatState",
        Event::CommandDone { .. } => "commandDone",
    }
}

/// A counted poll vote: voters as JID strings, the tally in option order.
fn poll_vote_to_js(vote: &PollVote) -> JsValue {
    Obj::new()
        .str("pollId", &vote.poll_id)
        .str("voter", &vote.voter.to_string())
        .set("selected", strings(&vote.selected))
        .set(
            "tally",
            array(&vote.tally, |option| {
                Obj::new()
                    .str("name", &option.name)
                    .set(
                        "voters",
                        strings(option.voters.iter().map(ToString::to_string)),
                    )
                    .done()
            }),
        )
        .done()
}

pub(crate) fn event_to_js(event: Event) -> JsValue {
    let js = tagged("type", event_type(&event));
    match event {
        Event::State { state, reason } => js
            .set("state", state_to_js(&state))
            .set("reason", state_reason_to_js(&reason)),
        Event::Qr {
            payload,
            expires_at,
        } => js
            .str("payload", &payload)
            .num("expiresAt", expires_at as f64),
        Event::QrRefsExhausted => js,
        Event::PairingCode { code } => js.str("code", &code),
        Event::Paired {
            jid,
            lid,
            platform,
            business_name,
        } => js
            .str("jid", &jid.to_string())
            .opt_str("lid", lid.map(|l| l.to_string()).as_deref())
            .str("platform", &platform)
            .opt_str("businessName", business_name.as_deref()),
        Event::OfflinePreview(preview) => js
            .num("count", preview.count.into())
            .num("messages", preview.messages.into())
            .num("notifications", preview.notifications.into())
            .num("receipts", preview.receipts.into())
            .num("appData", preview.app_data.into()),
        Event::OfflineSyncDone { count } => js.num("count", count.into()),
        Event::Message(m) => js
            .str("id", &m.id)
            .str("chat", &m.chat.to_string())
            .str("sender", &m.sender.to_string())
            .num("timestamp", m.timestamp as f64)
            .bool("fromMe", m.from_me)
            .opt_str("pushName", m.push_name.as_deref())
            .bool("history", m.history)
            .bool("status", m.is_status())
            .bytes("message", &prost::Message::encode_to_vec(&m.message))
            .set(
                "wrappers",
                strings(m.wrappers.iter().map(|wrapper| wrapper.field_name())),
            )
            .bytes("raw", &m.raw)
            .opt_str("text", m.text.as_deref())
            .set(
                "pollVote",
                m.poll_vote
                    .map_or(JsValue::UNDEFINED, |vote| poll_vote_to_js(&vote)),
            ),
        Event::Receipt(r) => js
            .str("chat", &r.chat.to_string())
            .str("sender", &r.sender.to_string())
            .str("receiptType", &r.kind)
            .set("ids", strings(&r.ids))
            .num("timestamp", r.timestamp as f64),
        Event::DecryptFailed(f) => {
            let failure = js
                .str("id", &f.id)
                .str("chat", &f.chat.to_string())
                .opt_str("sender", f.sender.map(|s| s.to_string()).as_deref())
                .str("kind", decrypt_failure_kind(&f.kind))
                .str("reason", &f.reason);
            match f.kind {
                DecryptFailureKind::TooManyEncs { count } => failure.num("encs", count.into()),
                _ => failure,
            }
        }
        Event::IdentityChanged(change) => js
            .str("address", &change.address.to_string())
            .bytes("identity", &change.identity)
            .bytes("previous", &change.previous)
            .bool("accepted", change.accepted),
        Event::RecordCorrupt { space, key, error } => js
            .str("space", space.as_str())
            .str("key", &key)
            .str("error", error.code()),
        Event::RetryRefused(refused) => js
            .str("id", &refused.id)
            .str("requester", &refused.requester.to_string())
            .str(
                "reason",
                match refused.reason {
                    RetryRefusal::NotARecipient => "notARecipient",
                    RetryRefusal::TooManyRetries => "tooManyRetries",
                },
            )
            .num("refusedTotal", refused.refused_total as f64),
        Event::AppStateChanged { collection, change } => js
            .str("collection", collection_to_js(collection))
            .set("change", setting_change_to_js(change)),
        Event::ChatSettings { chat, settings } => js
            .str("chat", &chat)
            .set("settings", chat_settings_to_js(&settings)),
        Event::AppStateWaitingForKeys {
            collection,
            key_ids,
        } => js.str("collection", collection_to_js(collection)).set(
            "keyIds",
            array(key_ids, |id| js_sys::Uint8Array::from(&id[..]).into()),
        ),
        Event::AppStateFatal { collection, error } => js
            .str("collection", collection_to_js(collection))
            .set("error", app_state_failure_to_js(&error)),
        Event::HistoryConversation(c) => js
            .str("chat", &c.chat.to_string())
            .opt_str("name", c.name.as_deref())
            .num("unreadCount", c.unread_count.into())
            .num("timestamp", c.timestamp as f64)
            .bool("archived", c.archived)
            .bool("pinned", c.pinned)
            .num("muteEndTime", c.mute_end_time as f64)
            .num("ephemeralExpiration", c.ephemeral_expiration.into())
            .opt_str("pn", c.pn.map(|j| j.to_string()).as_deref())
            .opt_str("lid", c.lid.map(|j| j.to_string()).as_deref())
            .str("syncType", c.sync_type.as_str()),
        Event::PushName(p) => js.str("jid", &p.jid.to_string()).str("name", &p.name),
        Event::HistorySync(p) => js
            .str("syncType", p.sync_type.as_str())
            .num("chunkOrder", p.chunk_order.into())
            .opt_num("progress", p.progress.map(f64::from))
            .num("conversations", p.conversations.into())
            .num("messages", p.messages.into())
            .opt_str("failure", p.failure.map(|f| f.code())),
        Event::Group(n) => crate::groups::notification_fields(js, &n),
        Event::Call(call) => crate::social::call_to_js(js, &call),
        Event::Presence(update) => crate::social::presence_to_js(js, &update),
        Event::ChatState(update) => crate::social::chat_state_to_js(js, &update),
        Event::CommandDone { id, result } => js
            .num("id", id.as_u64() as f64)
            .set("result", command_result_to_js(&result)),
    }
    .done()
}

/// The `kind` of a `decryptFailed` event.
fn decrypt_failure_kind(kind: &DecryptFailureKind) -> &'static str {
    match kind {
        DecryptFailureKind::Malformed => "malformed",
        DecryptFailureKind::NotReady => "notReady",
        DecryptFailureKind::Undecryptable => "undecryptable",
        DecryptFailureKind::TooManyEncs { .. } => "tooManyEncs",
        DecryptFailureKind::ReplayedEnc => "replayedEnc",
        DecryptFailureKind::SeveralMessages => "severalMessages",
        DecryptFailureKind::UntrustedIdentity => "untrustedIdentity",
    }
}

fn change_to_js(change: Change) -> JsValue {
    let op = |name: &str| tagged("op", name);
    match change {
        Change::Put(record) => op("put")
            .str("space", record.space.as_str())
            .str("key", &record.key)
            .bytes("value", &record.value),
        Change::Delete { space, key } => op("delete").str("space", space.as_str()).str("key", &key),
        Change::DeleteAll => op("deleteAll"),
    }
    .done()
}

fn key_to_js(key: RecordKey) -> JsValue {
    Obj::new()
        .str("space", key.space.as_str())
        .str("key", &key.key)
        .done()
}

/// `{ method, url, headers: [[name, value], ...], body?, hostBody?: { id, length }, decrypt?:
/// { sink, mediaKey, mediaType, iv, cipherKey, macKey }, maxResponseBytes, timeoutMs }`:
/// `headers` is what `fetch` takes as `HeadersInit`; `hostBody` names a body the host holds,
/// `decrypt` a sink a 2xx body is decrypted into (answered with `streamed`).
fn fetch_request_to_js(request: FetchRequest) -> JsValue {
    let headers = array(request.headers, |(name, value)| {
        strings([name.as_str(), value.as_str()])
    });
    let js = Obj::new()
        .str("method", request.method.as_str())
        .str("url", &request.url)
        .set("headers", headers);
    let js = match request.body {
        Body::Empty => js.set("body", JsValue::UNDEFINED),
        Body::Bytes(bytes) => js.bytes("body", &bytes),
        Body::Host { id, length } => js.set(
            "hostBody",
            Obj::new()
                .num("id", id as f64)
                .num("length", length as f64)
                .done(),
        ),
    };
    let js = match request.response {
        ResponseTarget::Memory => js,
        ResponseTarget::Decrypt(into) => {
            let decrypt = Obj::new()
                .num("sink", into.sink as f64)
                .bytes("mediaKey", &into.media_key)
                .str("mediaType", into.media_type.as_str());
            let decrypt = match MediaKeys::derive(&into.media_key, into.media_type) {
                Ok(keys) => decrypt
                    .bytes("iv", keys.iv())
                    .bytes("cipherKey", keys.cipher_key())
                    .bytes("macKey", keys.mac_key()),
                // An empty key: the host's decryptor refuses it (`empty_key`).
                Err(_) => decrypt,
            };
            js.set("decrypt", decrypt.done())
        }
    };
    js.num("maxResponseBytes", request.max_response_bytes as f64)
        .num("timeoutMs", request.timeout_ms as f64)
        .done()
}

/// The `kind` of an output.
pub(crate) fn output_kind(output: &Output) -> &'static str {
    match output {
        Output::Connect => "connect",
        Output::Persist(_) => "persist",
        Output::Load { .. } => "load",
        Output::Fetch { .. } => "fetch",
        Output::Transmit(_) => "transmit",
        Output::Event(_) => "event",
        Output::Close(_) => "close",
    }
}

fn output_to_js(output: Output) -> JsValue {
    let js = tagged("kind", output_kind(&output));
    match output {
        Output::Connect => js,
        Output::Persist(batch) => js.set("changes", array(batch.changes, change_to_js)),
        Output::Load { id, keys } => js
            .num("id", id.as_u64() as f64)
            .set("keys", array(keys, key_to_js)),
        Output::Fetch { id, request } => js
            .num("id", id.as_u64() as f64)
            .set("request", fetch_request_to_js(request)),
        Output::Transmit(bytes) => js.bytes("bytes", &bytes),
        Output::Event(event) => js.set("event", event_to_js(event)),
        Output::Close(reason) => js.set("reason", close_reason_to_js(&reason)),
    }
    .done()
}

/// The answer a host hands `handleFetched`: `{ status, body }` (a response: any status, the
/// body as read) or `{ error }` (`network`, `timed_out` or `too_large`: no response).
fn fetch_result_from_js(value: &JsValue) -> Result<FetchResult, JsValue> {
    let r = Reader::new(value, "invalid_fetch_result", "a fetch result")?;
    let error = r.opt_string("error")?;
    match error {
        Some(code) => {
            r.only(&["error"])?;
            FetchError::ALL
                .into_iter()
                .find(|e| e.code() == code)
                .map(Err)
                .ok_or_else(|| r.error(&format!("unknown fetch error {code:?}")))
        }
        None => {
            r.only(&["status", "body", "streamed"])?;
            let status = u16::try_from(r.u64("status")?)
                .map_err(|_| r.error("status: expected an HTTP status"))?;
            let streamed = r.get("streamed");
            let streamed = if streamed.is_undefined() || streamed.is_null() {
                None
            } else {
                Some(streamed_from_js(&streamed)?)
            };
            Ok(Ok(FetchResponse {
                status,
                body: r.opt_bytes("body")?.unwrap_or_default(),
                streamed,
            }))
        }
    }
}

/// What a host's decryptor made of a body: `{ fileSha256, fileEncSha256, fileLength }`, or
/// `{ error }` with a `MediaError` code (`mac_mismatch`, `invalid_padding`, ...).
fn streamed_from_js(value: &JsValue) -> Result<Result<MediaHashes, MediaError>, JsValue> {
    let r = Reader::new(value, "invalid_fetch_result", "a streamed body")?;
    if let Some(code) = r.opt_string("error")? {
        r.only(&["error"])?;
        return MediaError::from_code(&code)
            .map(Err)
            .ok_or_else(|| r.error(&format!("unknown media error {code:?}")));
    }
    r.only(&["fileSha256", "fileEncSha256", "fileLength"])?;
    Ok(Ok(hashes_from_js(&r)?))
}

fn hashes_from_js(r: &Reader<'_>) -> Result<MediaHashes, JsValue> {
    let hash = |key: &str| -> Result<[u8; 32], JsValue> {
        r.bytes(key)?
            .try_into()
            .map_err(|_| r.error(&format!("{key}: expected 32 bytes")))
    };
    Ok(MediaHashes {
        file_sha256: hash("fileSha256")?,
        file_enc_sha256: hash("fileEncSha256")?,
        file_length: r.u64("fileLength")?,
    })
}

/// `sendMedia`'s `hostBody`: `{ id, mediaKey, fileSha256, fileEncSha256, fileLength }`, a file
/// the host encrypted and holds.
fn host_upload_from_js(value: &JsValue) -> Result<HostUpload, JsValue> {
    let r = Reader::new(value, "invalid_command", "a host body")?;
    r.only(&[
        "id",
        "mediaKey",
        "fileSha256",
        "fileEncSha256",
        "fileLength",
    ])?;
    let key: [u8; 32] = r
        .bytes("mediaKey")?
        .try_into()
        .map_err(|_| r.error("mediaKey: expected 32 bytes"))?;
    Ok(HostUpload {
        body: r.u64("id")?,
        media_key: Zeroizing::new(key),
        hashes: hashes_from_js(&r)?,
    })
}

// --- commands -----------------------------------------------------------------------------

fn command_from_js(value: JsValue) -> Result<Command, JsValue> {
    let r = Reader::new(&value, "invalid_command", "a command")?;
    let name = r.string("type")?;
    if let Some(command) = crate::groups::command_from_js(&name, &r)? {
        return Ok(command);
    }
    let fields: &[&str] = match name.as_str() {
        "pairWithCode" => &["type", "phone"],
        "sendText" => &["type", "to", "text"],
        "sendMessage" => &["type", "to", "message"],
        "sendStatus" => &["type", "recipients", "message"],
        "sendPollVote" => &["type", "chat", "pollId", "options"],
        "markRead" => &["type", "chat", "sender", "ids"],
        "connect" | "disconnect" | "logout" => &["type"],
        "appState" => &["type", "action"],
        "getChatSettings" => &["type", "chat"],
        "getIdentity" => &["type", "address"],
        "approveIdentity" => &["type", "address", "identity"],
        "sendMedia" => &[
            "type",
            "to",
            "kind",
            "data",
            "hostBody",
            "mimetype",
            "caption",
            "fileName",
            "width",
            "height",
            "seconds",
            "thumbnail",
        ],
        "downloadMedia" => &["type", "id", "chat", "sender", "message", "sink"],
        "requestHistory" => &[
            "type",
            "chat",
            "oldestId",
            "oldestFromMe",
            "oldestTimestamp",
            "count",
        ],
        other => match crate::social::command_fields(other) {
            Some(fields) => fields,
            None => return Err(r.error(&format!("unknown command type {name:?}"))),
        },
    };
    r.only(fields)?;
    if let Some(command) = crate::social::command_from_js(&name, &r)? {
        return Ok(command);
    }
    Ok(match name.as_str() {
        "pairWithCode" => Command::PairWithCode {
            phone: r.string("phone")?,
        },
        "sendText" => Command::SendText {
            to: r.string("to")?,
            text: r.string("text")?,
        },
        "sendMessage" => Command::SendMessage {
            to: r.string("to")?,
            message: r.bytes("message")?,
        },
        "sendStatus" => Command::SendStatus {
            recipients: r.strings("recipients")?,
            message: r.bytes("message")?,
        },
        "sendPollVote" => Command::SendPollVote {
            chat: r.string("chat")?,
            poll_id: r.string("pollId")?,
            options: r.strings("options")?,
        },
        "markRead" => Command::MarkRead {
            chat: r.string("chat")?,
            sender: r.opt_string("sender")?,
            ids: r.strings("ids")?,
        },
        "connect" => Command::Connect,
        "disconnect" => Command::Disconnect,
        "logout" => Command::Logout,
        "appState" => {
            let action = r.get("action");
            if action.is_undefined() || action.is_null() {
                return Err(r.error("missing field \"action\""));
            }
            Command::AppState(sync_action_from_js(&action)?)
        }
        "getChatSettings" => Command::GetChatSettings {
            chat: r.string("chat")?,
        },
        "getIdentity" => Command::GetIdentity {
            address: r.string("address")?,
        },
        "approveIdentity" => Command::ApproveIdentity {
            address: r.string("address")?,
            identity: r.bytes("identity")?,
        },
        "sendMedia" => {
            let kind = r.string("kind")?;
            Command::SendMedia {
                to: r.string("to")?,
                kind: MediaKind::parse(&kind)
                    .ok_or_else(|| r.error(&format!("unknown media kind {kind:?}")))?,
                media: OutgoingMedia {
                    data: r.opt_bytes("data")?.unwrap_or_default(),
                    host_body: {
                        let host = r.get("hostBody");
                        if host.is_undefined() {
                            None
                        } else {
                            Some(host_upload_from_js(&host)?)
                        }
                    },
                    mimetype: r.string("mimetype")?,
                    caption: r.opt_string("caption")?,
                    file_name: r.opt_string("fileName")?,
                    width: r.opt_u32("width")?,
                    height: r.opt_u32("height")?,
                    seconds: r.opt_u32("seconds")?,
                    thumbnail: r.opt_bytes("thumbnail")?,
                },
            }
        }
        "downloadMedia" => Command::DownloadMedia {
            id: r.string("id")?,
            chat: r.string("chat")?,
            sender: r.string("sender")?,
            message: r.bytes("message")?,
            sink: match r.opt_f64("sink")? {
                Some(sink) if sink >= 0.0 && sink.fract() == 0.0 => Some(sink as u64),
                Some(_) => return Err(r.error("sink: expected a whole number")),
                None => None,
            },
        },
        "requestHistory" => Command::RequestHistory {
            chat: r.string("chat")?,
            oldest_id: r.string("oldestId")?,
            oldest_from_me: r.bool("oldestFromMe")?,
            oldest_timestamp: r.u64("oldestTimestamp")?,
            count: r
                .opt_u32("count")?
                .ok_or_else(|| r.error("missing field \"count\""))?,
        },
        _ => return Err(r.error(&format!("unknown command type {name:?}"))),
    })
}

// --- the class ----------------------------------------------------------------------------

/// An `Error` with code `client_panicked`, for a call on a client an earlier panic poisoned.
fn poisoned(error: Poisoned) -> JsValue {
    coded_error(Poisoned::CODE, &error.message())
}

/// One linked device: `new Client(config, records)`, then the driver loop (see the package
/// README). Call `free()` when done with it, or let the garbage collector do it (weak refs).
///
/// Every method takes `&self`: a call that panics traps and never returns, and the client is
/// then poisoned (`crate::poison`); every later call throws an `Error` whose `code` is
/// `client_panicked`, while other clients of the module go on.
#[wasm_bindgen]
pub struct Client {
    inner: Poisonable<client::Client>,
}

#[wasm_bindgen]
impl Client {
    /// A client for the device stored in `records` (those of `Client.startSpaces()`), or a new
    /// device when `records` is empty. Throws an `Error` whose `code` is `invalid_config`,
    /// `invalid_record`, or `restore_*` naming what is wrong with the records.
    #[wasm_bindgen(constructor)]
    pub fn new(config: JsValue, records: JsValue) -> Result<Client, JsValue> {
        crate::poison::install_hook();
        let config = config_from_js(config)?;
        let records = records_from_js(records)?;
        client::Client::new(config, records)
            .map(|inner| Client {
                inner: Poisonable::new(inner),
            })
            .map_err(|e| coded_error(e.code(), &e.to_string()))
    }

    /// The spaces whose records `new Client` wants; the client asks for the others with
    /// `load` outputs.
    #[wasm_bindgen(js_name = startSpaces)]
    pub fn start_spaces() -> Vec<String> {
        Space::ALL
            .into_iter()
            .filter(|s| s.loaded_at_start())
            .map(|s| s.as_str().to_owned())
            .collect()
    }

    /// WhatsApp's endpoints as the core states them: `{ chatUrl, origin, mediaOrigin,
    /// webVersion }` (the socket to open on `connect`, its Origin header, the media host, and
    /// the web version announced by default).
    pub fn endpoints() -> JsValue {
        use walink_core::client::endpoints::{CHAT_URL, MEDIA_ORIGIN, ORIGIN, WEB_VERSION};
        Obj::new()
            .str("chatUrl", CHAT_URL)
            .str("origin", ORIGIN)
            .str("mediaOrigin", MEDIA_ORIGIN)
            .str("webVersion", &WEB_VERSION.to_string())
            .done()
    }

    /// The socket opened.
    #[wasm_bindgen(js_name = handleConnected)]
    pub fn handle_connected(&self, now: f64) -> Result<(), JsValue> {
        self.inner
            .with(|c| c.handle_connected(timestamp(now)))
            .map_err(poisoned)
    }

    /// Bytes arrived on the socket (any chunking).
    #[wasm_bindgen(js_name = handleBytes)]
    pub fn handle_bytes(&self, now: f64, bytes: &[u8]) -> Result<(), JsValue> {
        self.inner
            .with(|c| c.handle_bytes(timestamp(now), bytes))
            .map_err(poisoned)
    }

    /// The socket closed or failed: `reason` as `pollOutput` names close reasons (usually
    /// `{ kind: 'network' }`, or `{ kind: 'local' }` when the host closed it; omitted means
    /// network). Throws `invalid_close_reason` for anything else, changing nothing.
    #[wasm_bindgen(js_name = handleClosed)]
    pub fn handle_closed(&self, now: f64, reason: JsValue) -> Result<(), JsValue> {
        let reason = if reason.is_undefined() || reason.is_null() {
            CloseReason::Network
        } else {
            close_reason_from_js(&reason)?
        };
        self.inner
            .with(|c| c.handle_closed(timestamp(now), reason))
            .map_err(poisoned)
    }

    /// The timer armed from `pollTimeout()` fired (late or spurious calls are harmless).
    #[wasm_bindgen(js_name = handleTimeout)]
    pub fn handle_timeout(&self, now: f64) -> Result<(), JsValue> {
        self.inner
            .with(|c| c.handle_timeout(timestamp(now)))
            .map_err(poisoned)
    }

    /// The records a `load` output asked for (those that exist), with its `id`.
    #[wasm_bindgen(js_name = handleLoaded)]
    pub fn handle_loaded(&self, now: f64, id: f64, records: JsValue) -> Result<(), JsValue> {
        let records = records_from_js(records)?;
        self.inner
            .with(|c| c.handle_loaded(timestamp(now), LoadId::from_u64(timestamp(id)), records))
            .map_err(poisoned)
    }

    /// What happened to the request of a `fetch` output, with its `id`: `{ status, body }`
    /// (any status) or `{ error: 'network' | 'timed_out' | 'too_large' }`. Throws
    /// `invalid_fetch_result` for anything else, changing nothing.
    #[wasm_bindgen(js_name = handleFetched)]
    pub fn handle_fetched(&self, now: f64, id: f64, result: JsValue) -> Result<(), JsValue> {
        let result = fetch_result_from_js(&result)?;
        self.inner
            .with(|c| c.handle_fetched(timestamp(now), FetchId::from_u64(timestamp(id)), result))
            .map_err(poisoned)
    }

    /// Starts a command (`{ type: 'sendText', to, text }`, ...); returns its id, which the
    /// `commandDone` event names. Throws `invalid_command` for a malformed command object.
    pub fn command(&self, now: f64, command: JsValue) -> Result<f64, JsValue> {
        let command = command_from_js(command)?;
        let id = self
            .inner
            .with(|c| c.command(timestamp(now), command))
            .map_err(poisoned)?;
        Ok(id.as_u64() as f64)
    }

    /// The next output (`{ kind: 'connect' | 'persist' | 'load' | 'fetch' | 'transmit' |
    /// 'event' | 'close', ... }`), or `undefined` when there is nothing to do.
    #[wasm_bindgen(js_name = pollOutput)]
    pub fn poll_output(&self) -> Result<JsValue, JsValue> {
        let output = self.inner.with(|c| c.poll_output()).map_err(poisoned)?;
        Ok(output.map_or(JsValue::UNDEFINED, output_to_js))
    }

    /// When `handleTimeout` is next needed (Unix milliseconds), or `undefined`.
    #[wasm_bindgen(js_name = pollTimeout)]
    pub fn poll_timeout(&self) -> Result<Option<f64>, JsValue> {
        self.inner
            .with(|c| c.poll_timeout().map(|t| t as f64))
            .map_err(poisoned)
    }
}
