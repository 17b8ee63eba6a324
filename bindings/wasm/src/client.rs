//! The `Client` state machine as a JavaScript class: the eight calls of
//! `walink_core::client::Client` in camelCase, with plain objects crossing the boundary
//! (serde-wasm-bindgen). Timestamps are numbers (Unix milliseconds), bytes are `Uint8Array`s,
//! outputs are tagged with `kind`, events with `type`, and errors are `Error`s with a stable
//! `code`. The shapes are documented in `npm/src/index.d.ts`.
//!
//! Nothing here calls into JavaScript: each method runs one step of the core and returns.

use serde::{Deserialize, Serialize};

use crate::appstate::{
    JsAppStateFailure, JsChatSettings, JsSettingChange, JsSyncAction, app_state_failure_to_js,
    chat_settings_to_js, collection_to_js, setting_change_to_js,
};
use walink_core::client::{
    self, CloseReason, Command, CommandError, CommandId, CommandOutput, Config, Event, LoadId,
    Output, PairingMode, ProtocolError, State, StateReason,
};
use walink_core::noise::TrustRoot;
use walink_core::noise::payload::{ClientProfile, WebVersion};
use walink_core::pair::CompanionOs;
use walink_core::proto::wa::device_props::PlatformType;
use walink_core::store::{Change, Record, RecordKey, RestoreError, Space};
use wasm_bindgen::prelude::*;

/// An `Error` with a stable `code` property.
fn coded_error(code: &str, message: &str) -> JsValue {
    let error = js_sys::Error::new(message);
    // Setting a property on a fresh Error object cannot fail.
    let _ = js_sys::Reflect::set(&error, &JsValue::from_str("code"), &JsValue::from_str(code));
    error.into()
}

fn serializer() -> serde_wasm_bindgen::Serializer {
    serde_wasm_bindgen::Serializer::new().serialize_maps_as_objects(true)
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serializer())
        .map_err(|e| coded_error("internal", &e.to_string()))
}

fn from_js<T: for<'de> Deserialize<'de>>(value: JsValue, code: &str) -> Result<T, JsValue> {
    serde_wasm_bindgen::from_value(value).map_err(|e| coded_error(code, &e.to_string()))
}

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

/// `new Client(config, records)`'s config; every field is optional.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JsConfig {
    /// The WhatsApp Web version to announce, `"2.3000.1045649367"`.
    web_version: Option<String>,
    /// The name the phone shows for this linked device.
    device_name: Option<String>,
    /// `CHROME`, `FIREFOX`, `SAFARI`, `EDGE`, `OPERA`, `DESKTOP`, ... (DeviceProps.PlatformType).
    platform: Option<String>,
    push_name: Option<String>,
    language: Option<String>,
    country: Option<String>,
    /// `windows`, `macos`, `linux`, `android`, `ios`.
    companion_os: Option<String>,
    /// 32 bytes: a deterministic client (tests only).
    #[serde(with = "serde_bytes")]
    rng_seed: Option<Vec<u8>>,
    /// A test server's root public key (32 bytes) instead of WhatsApp's.
    #[serde(with = "serde_bytes")]
    trust_root: Option<Vec<u8>>,
    trust_root_serial: Option<u32>,
    retry_when_replaced: Option<bool>,
    keepalive_min_ms: Option<f64>,
    keepalive_max_ms: Option<f64>,
    connect_timeout_ms: Option<f64>,
    iq_timeout_ms: Option<f64>,
    backoff_first_ms: Option<f64>,
    backoff_max_ms: Option<f64>,
}

/// The option names of [`JsConfig`]: serde-wasm-bindgen reads only the fields it knows, so a
/// misspelt option is caught here instead of being ignored.
const CONFIG_OPTIONS: [&str; 17] = [
    "webVersion",
    "deviceName",
    "platform",
    "pushName",
    "language",
    "country",
    "companionOs",
    "rngSeed",
    "trustRoot",
    "trustRootSerial",
    "retryWhenReplaced",
    "keepaliveMinMs",
    "keepaliveMaxMs",
    "connectTimeoutMs",
    "iqTimeoutMs",
    "backoffFirstMs",
    "backoffMaxMs",
];

/// The WhatsApp Web version announced unless the host chooses one.
const DEFAULT_WEB_VERSION: WebVersion = WebVersion::new(2, 3000, 1_045_649_367);

fn invalid_config(message: &str) -> JsValue {
    coded_error("invalid_config", message)
}

fn config_from_js(value: JsValue) -> Result<Config, JsValue> {
    let js: JsConfig = if value.is_undefined() || value.is_null() {
        JsConfig::default()
    } else {
        if let Some(object) = value.dyn_ref::<js_sys::Object>() {
            for key in js_sys::Object::keys(object).iter() {
                let name = key.as_string().unwrap_or_default();
                if !CONFIG_OPTIONS.contains(&name.as_str()) {
                    return Err(invalid_config(&format!("unknown option {name:?}")));
                }
            }
        }
        from_js(value, "invalid_config")?
    };
    let version = match &js.web_version {
        Some(text) => WebVersion::parse(text)
            .ok_or_else(|| invalid_config("webVersion must look like 2.3000.1045649367"))?,
        None => DEFAULT_WEB_VERSION,
    };
    let mut profile = ClientProfile::new(
        version,
        js.device_name.unwrap_or_else(|| "walink".to_owned()),
    );
    if let Some(platform) = &js.platform {
        profile.platform_type = PlatformType::from_str_name(&platform.to_ascii_uppercase())
            .ok_or_else(|| invalid_config("platform is not a DeviceProps.PlatformType name"))?;
    }
    profile.push_name = js.push_name;
    if let Some(language) = js.language {
        profile.language = language;
    }
    if let Some(country) = js.country {
        profile.country = country;
    }
    let mut config = Config::new(profile);
    if let Some(os) = &js.companion_os {
        config.companion_os = match os.to_ascii_lowercase().as_str() {
            "windows" => CompanionOs::Windows,
            "macos" | "mac os" => CompanionOs::MacOs,
            "linux" => CompanionOs::Linux,
            "android" => CompanionOs::Android,
            "ios" => CompanionOs::Ios,
            _ => {
                return Err(invalid_config(
                    "companionOs must be windows, macos, linux, android or ios",
                ));
            }
        };
    }
    if let Some(seed) = js.rng_seed {
        config.rng_seed = Some(
            seed.try_into()
                .map_err(|_| invalid_config("rngSeed must be 32 bytes"))?,
        );
    }
    if let Some(root) = js.trust_root {
        config.trust_root = TrustRoot {
            public_key: root
                .try_into()
                .map_err(|_| invalid_config("trustRoot must be 32 bytes"))?,
            serial: js.trust_root_serial.unwrap_or(0),
        };
    }
    if let Some(retry) = js.retry_when_replaced {
        config.retry_when_replaced = retry;
    }
    let ms = |value: Option<f64>, field: &mut u64| {
        if let Some(v) = value {
            *field = timestamp(v);
        }
    };
    ms(js.keepalive_min_ms, &mut config.keepalive_min_ms);
    ms(js.keepalive_max_ms, &mut config.keepalive_max_ms);
    ms(js.connect_timeout_ms, &mut config.connect_timeout_ms);
    ms(js.iq_timeout_ms, &mut config.iq_timeout_ms);
    ms(js.backoff_first_ms, &mut config.backoff_first_ms);
    ms(js.backoff_max_ms, &mut config.backoff_max_ms);
    Ok(config)
}

// --- records ------------------------------------------------------------------------------

#[derive(Deserialize)]
struct JsRecord {
    space: String,
    key: String,
    #[serde(with = "serde_bytes")]
    value: Vec<u8>,
}

fn records_from_js(value: JsValue) -> Result<Vec<Record>, JsValue> {
    if value.is_undefined() || value.is_null() {
        return Ok(Vec::new());
    }
    let records: Vec<JsRecord> = from_js(value, "invalid_record")?;
    records
        .into_iter()
        .map(|r| {
            let space = Space::parse(&r.space).ok_or_else(|| {
                coded_error("invalid_record", &format!("unknown space {:?}", r.space))
            })?;
            Ok(Record {
                space,
                key: r.key,
                value: r.value,
            })
        })
        .collect()
}

fn restore_error_code(error: &RestoreError) -> &'static str {
    match error {
        RestoreError::Malformed { .. } => "restore_malformed",
        RestoreError::Duplicate { .. } => "restore_duplicate",
        RestoreError::MissingDevice => "restore_missing_device",
        RestoreError::NoRandomness => "no_randomness",
        _ => "restore_failed",
    }
}

// --- outputs and events -------------------------------------------------------------------

#[derive(Serialize)]
#[serde(tag = "op", rename_all = "camelCase")]
enum JsChange {
    Put {
        space: &'static str,
        key: String,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },
    Delete {
        space: &'static str,
        key: String,
    },
    DeleteAll,
}

#[derive(Serialize)]
struct JsKey {
    space: &'static str,
    key: String,
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
enum JsOutput {
    Connect,
    Persist {
        changes: Vec<JsChange>,
    },
    Load {
        id: f64,
        keys: Vec<JsKey>,
    },
    Transmit {
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    Event {
        event: JsEvent,
    },
    Close {
        reason: JsCloseReason,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
enum JsCloseReason {
    Network,
    Local,
    StreamError {
        code: Option<u16>,
        conflict: Option<String>,
    },
    Failure {
        reason: u16,
    },
    ServerClosed,
    Protocol {
        message: String,
    },
    ConnectTimeout,
    KeepaliveTimeout,
    QrRefsExhausted,
    LoggedOut,
    Other {
        message: String,
    },
}

#[derive(Serialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
enum JsState {
    Disconnected,
    Connecting,
    Handshaking,
    AwaitingPairing { mode: &'static str },
    LoggingIn,
    Connected,
    Reconnecting { attempt: u32, at: f64 },
    LoggedOut,
    Replaced,
    ClientOutdated,
    Other { description: String },
}

#[derive(Serialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
enum JsStateReason {
    Started,
    ConnectRequested,
    BackoffElapsed,
    RestartRequired,
    SocketOpened,
    PairingOffered,
    PairingCodeRequested,
    LoginAccepted,
    PostLoginDone,
    Closed { reason: JsCloseReason },
    DisconnectRequested,
    LogoutRequested,
    Other { description: String },
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
enum JsCommandOutput {
    None,
    PairingCode { code: String },
    MessageSent { id: String },
    ChatSettings { settings: JsChatSettings },
    Other { description: String },
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsCommandError {
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_ms: Option<f64>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum JsCommandResult {
    Ok { ok: bool, output: JsCommandOutput },
    Err { ok: bool, error: JsCommandError },
}

#[derive(Serialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
enum JsEvent {
    State {
        state: JsState,
        reason: JsStateReason,
    },
    Qr {
        payload: String,
        expires_at: f64,
    },
    QrRefsExhausted,
    PairingCode {
        code: String,
    },
    Paired {
        jid: String,
        lid: Option<String>,
        platform: String,
        business_name: Option<String>,
    },
    OfflinePreview {
        count: u32,
        messages: u32,
        notifications: u32,
        receipts: u32,
        app_data: u32,
    },
    OfflineSyncDone {
        count: u32,
    },
    Message {
        id: String,
        chat: String,
        sender: String,
        timestamp: f64,
        #[serde(with = "serde_bytes")]
        message: Vec<u8>,
        text: Option<String>,
    },
    Receipt {
        chat: String,
        sender: String,
        receipt_type: String,
        ids: Vec<String>,
        timestamp: f64,
    },
    DecryptFailed {
        id: String,
        chat: String,
        sender: Option<String>,
        reason: String,
    },
    AppStateChanged {
        collection: &'static str,
        change: JsSettingChange,
    },
    ChatSettings {
        chat: String,
        settings: JsChatSettings,
    },
    AppStateWaitingForKeys {
        collection: &'static str,
        key_ids: Vec<serde_bytes::ByteBuf>,
    },
    AppStateDownload {
        download_id: f64,
        direct_path: String,
    },
    AppStateFatal {
        collection: &'static str,
        error: JsAppStateFailure,
    },
    CommandDone {
        id: f64,
        result: JsCommandResult,
    },
    Other {
        description: String,
    },
}

fn close_reason_to_js(reason: &CloseReason) -> JsCloseReason {
    match reason {
        CloseReason::Network => JsCloseReason::Network,
        CloseReason::Local => JsCloseReason::Local,
        CloseReason::StreamError { code, conflict } => JsCloseReason::StreamError {
            code: *code,
            conflict: conflict.clone(),
        },
        CloseReason::Failure { reason } => JsCloseReason::Failure { reason: *reason },
        CloseReason::ServerClosed => JsCloseReason::ServerClosed,
        CloseReason::Protocol(error) => JsCloseReason::Protocol {
            message: protocol_message(error),
        },
        CloseReason::ConnectTimeout => JsCloseReason::ConnectTimeout,
        CloseReason::KeepaliveTimeout => JsCloseReason::KeepaliveTimeout,
        CloseReason::QrRefsExhausted => JsCloseReason::QrRefsExhausted,
        CloseReason::LoggedOut => JsCloseReason::LoggedOut,
        other => JsCloseReason::Other {
            message: format!("{other:?}"),
        },
    }
}

fn protocol_message(error: &ProtocolError) -> String {
    error.to_string()
}

fn close_reason_from_js(reason: JsCloseReason) -> CloseReason {
    match reason {
        JsCloseReason::Local => CloseReason::Local,
        // A host reports what its socket did; anything else it names is a network failure.
        _ => CloseReason::Network,
    }
}

fn state_to_js(state: &State) -> JsState {
    match state {
        State::Disconnected => JsState::Disconnected,
        State::Connecting => JsState::Connecting,
        State::Handshaking => JsState::Handshaking,
        State::AwaitingPairing { mode } => JsState::AwaitingPairing {
            mode: match mode {
                PairingMode::Qr => "qr",
                PairingMode::Code => "code",
            },
        },
        State::LoggingIn => JsState::LoggingIn,
        State::Connected => JsState::Connected,
        State::Reconnecting { attempt, at } => JsState::Reconnecting {
            attempt: *attempt,
            at: *at as f64,
        },
        State::LoggedOut => JsState::LoggedOut,
        State::Replaced => JsState::Replaced,
        State::ClientOutdated => JsState::ClientOutdated,
        other => JsState::Other {
            description: format!("{other:?}"),
        },
    }
}

fn state_reason_to_js(reason: &StateReason) -> JsStateReason {
    match reason {
        StateReason::Started => JsStateReason::Started,
        StateReason::ConnectRequested => JsStateReason::ConnectRequested,
        StateReason::BackoffElapsed => JsStateReason::BackoffElapsed,
        StateReason::RestartRequired => JsStateReason::RestartRequired,
        StateReason::SocketOpened => JsStateReason::SocketOpened,
        StateReason::PairingOffered => JsStateReason::PairingOffered,
        StateReason::PairingCodeRequested => JsStateReason::PairingCodeRequested,
        StateReason::LoginAccepted => JsStateReason::LoginAccepted,
        StateReason::PostLoginDone => JsStateReason::PostLoginDone,
        StateReason::Closed(reason) => JsStateReason::Closed {
            reason: close_reason_to_js(reason),
        },
        StateReason::DisconnectRequested => JsStateReason::DisconnectRequested,
        StateReason::LogoutRequested => JsStateReason::LogoutRequested,
        other => JsStateReason::Other {
            description: format!("{other:?}"),
        },
    }
}

/// The stable code of a command error (snake case of its variant).
pub(crate) fn command_error_code(error: &CommandError) -> &'static str {
    match error {
        CommandError::InvalidPhoneNumber => "invalid_phone_number",
        CommandError::AlreadyPaired => "already_paired",
        CommandError::NotPaired => "not_paired",
        CommandError::PairingCodeOutstanding => "pairing_code_outstanding",
        CommandError::UnsupportedPlatform => "unsupported_platform",
        CommandError::NotConnected => "not_connected",
        CommandError::Rejected { .. } => "rejected",
        CommandError::RateLimited { .. } => "rate_limited",
        CommandError::TimedOut => "timed_out",
        CommandError::InvalidAddress => "invalid_address",
        CommandError::InvalidMessage => "invalid_message",
        CommandError::InvalidState => "invalid_state",
        CommandError::AppState(_) => "app_state",
        _ => "command_failed",
    }
}

fn command_result_to_js(result: &Result<CommandOutput, CommandError>) -> JsCommandResult {
    match result {
        Ok(output) => JsCommandResult::Ok {
            ok: true,
            output: match output {
                CommandOutput::None => JsCommandOutput::None,
                CommandOutput::PairingCode(code) => {
                    JsCommandOutput::PairingCode { code: code.clone() }
                }
                CommandOutput::MessageSent { id } => {
                    JsCommandOutput::MessageSent { id: id.clone() }
                }
                CommandOutput::ChatSettings(settings) => JsCommandOutput::ChatSettings {
                    settings: chat_settings_to_js(settings),
                },
                other => JsCommandOutput::Other {
                    description: format!("{other:?}"),
                },
            },
        },
        Err(error) => {
            let (server_code, server_text, retry_after_ms) = match error {
                CommandError::Rejected { code, text } => (Some(*code), Some(text.clone()), None),
                CommandError::RateLimited { retry_after_ms } => {
                    (None, None, retry_after_ms.map(|ms| ms as f64))
                }
                _ => (None, None, None),
            };
            JsCommandResult::Err {
                ok: false,
                error: JsCommandError {
                    code: command_error_code(error),
                    message: error.to_string(),
                    server_code,
                    server_text,
                    retry_after_ms,
                },
            }
        }
    }
}

fn event_to_js(event: Event) -> JsEvent {
    match event {
        Event::State { state, reason } => JsEvent::State {
            state: state_to_js(&state),
            reason: state_reason_to_js(&reason),
        },
        Event::Qr {
            payload,
            expires_at,
        } => JsEvent::Qr {
            payload,
            expires_at: expires_at as f64,
        },
        Event::QrRefsExhausted => JsEvent::QrRefsExhausted,
        Event::PairingCode { code } => JsEvent::PairingCode { code },
        Event::Paired {
            jid,
            lid,
            platform,
            business_name,
        } => JsEvent::Paired {
            jid: jid.to_string(),
            lid: lid.map(|l| l.to_string()),
            platform,
            business_name,
        },
        Event::OfflinePreview(preview) => JsEvent::OfflinePreview {
            count: preview.count,
            messages: preview.messages,
            notifications: preview.notifications,
            receipts: preview.receipts,
            app_data: preview.app_data,
        },
        Event::OfflineSyncDone { count } => JsEvent::OfflineSyncDone { count },
        Event::Message(m) => JsEvent::Message {
            id: m.id,
            chat: m.chat.to_string(),
            sender: m.sender.to_string(),
            timestamp: m.timestamp as f64,
            message: m.message,
            text: m.text,
        },
        Event::Receipt(r) => JsEvent::Receipt {
            chat: r.chat.to_string(),
            sender: r.sender.to_string(),
            receipt_type: r.kind,
            ids: r.ids,
            timestamp: r.timestamp as f64,
        },
        Event::DecryptFailed(f) => JsEvent::DecryptFailed {
            id: f.id,
            chat: f.chat.to_string(),
            sender: f.sender.map(|s| s.to_string()),
            reason: f.reason,
        },
        Event::AppStateChanged { collection, change } => JsEvent::AppStateChanged {
            collection: collection_to_js(collection),
            change: setting_change_to_js(change),
        },
        Event::ChatSettings { chat, settings } => JsEvent::ChatSettings {
            chat,
            settings: chat_settings_to_js(&settings),
        },
        Event::AppStateWaitingForKeys {
            collection,
            key_ids,
        } => JsEvent::AppStateWaitingForKeys {
            collection: collection_to_js(collection),
            key_ids: key_ids
                .into_iter()
                .map(serde_bytes::ByteBuf::from)
                .collect(),
        },
        Event::AppStateDownload {
            download_id,
            direct_path,
        } => JsEvent::AppStateDownload {
            download_id: download_id as f64,
            direct_path,
        },
        Event::AppStateFatal { collection, error } => JsEvent::AppStateFatal {
            collection: collection_to_js(collection),
            error: app_state_failure_to_js(&error),
        },
        Event::CommandDone { id, result } => JsEvent::CommandDone {
            id: id.0 as f64,
            result: command_result_to_js(&result),
        },
        other => JsEvent::Other {
            description: format!("{other:?}"),
        },
    }
}

fn change_to_js(change: Change) -> JsChange {
    match change {
        Change::Put(mut record) => JsChange::Put {
            space: record.space.as_str(),
            key: std::mem::take(&mut record.key),
            value: std::mem::take(&mut record.value),
        },
        Change::Delete { space, key } => JsChange::Delete {
            space: space.as_str(),
            key,
        },
        Change::DeleteAll => JsChange::DeleteAll,
    }
}

fn key_to_js(key: RecordKey) -> JsKey {
    JsKey {
        space: key.space.as_str(),
        key: key.key,
    }
}

fn output_to_js(output: Output) -> JsOutput {
    match output {
        Output::Connect => JsOutput::Connect,
        Output::Persist(batch) => JsOutput::Persist {
            changes: batch.changes.into_iter().map(change_to_js).collect(),
        },
        Output::Load { id, keys } => JsOutput::Load {
            id: id.0 as f64,
            keys: keys.into_iter().map(key_to_js).collect(),
        },
        Output::Transmit(bytes) => JsOutput::Transmit { bytes },
        Output::Event(event) => JsOutput::Event {
            event: event_to_js(event),
        },
        Output::Close(reason) => JsOutput::Close {
            reason: close_reason_to_js(&reason),
        },
    }
}

// --- commands -----------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
enum JsCommand {
    PairWithCode {
        phone: String,
    },
    SendText {
        to: String,
        text: String,
    },
    SendMessage {
        to: String,
        #[serde(with = "serde_bytes")]
        message: Vec<u8>,
    },
    MarkRead {
        chat: String,
        #[serde(default)]
        sender: Option<String>,
        ids: Vec<String>,
    },
    Connect,
    Disconnect,
    Logout,
    AppState {
        action: JsSyncAction,
    },
    GetChatSettings {
        chat: String,
    },
    AppStateBlob {
        download_id: u64,
        #[serde(default, with = "serde_bytes")]
        bytes: Option<Vec<u8>>,
    },
}

fn command_from_js(value: JsValue) -> Result<Command, JsValue> {
    Ok(match from_js::<JsCommand>(value, "invalid_command")? {
        JsCommand::PairWithCode { phone } => Command::PairWithCode { phone },
        JsCommand::SendText { to, text } => Command::SendText { to, text },
        JsCommand::SendMessage { to, message } => Command::SendMessage { to, message },
        JsCommand::MarkRead { chat, sender, ids } => Command::MarkRead { chat, sender, ids },
        JsCommand::Connect => Command::Connect,
        JsCommand::Disconnect => Command::Disconnect,
        JsCommand::Logout => Command::Logout,
        JsCommand::AppState { action } => Command::AppState(action.into()),
        JsCommand::GetChatSettings { chat } => Command::GetChatSettings { chat },
        JsCommand::AppStateBlob { download_id, bytes } => {
            Command::AppStateBlob { download_id, bytes }
        }
    })
}

// --- the class ----------------------------------------------------------------------------

/// One linked device: `new Client(config, records)`, then the driver loop (see the package
/// README). Call `free()` when done with it, or let the garbage collector do it (weak refs).
#[wasm_bindgen]
pub struct Client {
    inner: client::Client,
}

#[wasm_bindgen]
impl Client {
    /// A client for the device stored in `records` (those of `Client.startSpaces()`), or a new
    /// device when `records` is empty. Throws an `Error` whose `code` is `invalid_config`,
    /// `invalid_record`, or `restore_*` naming what is wrong with the records.
    #[wasm_bindgen(constructor)]
    pub fn new(config: JsValue, records: JsValue) -> Result<Client, JsValue> {
        let config = config_from_js(config)?;
        let records = records_from_js(records)?;
        client::Client::new(config, records)
            .map(|inner| Client { inner })
            .map_err(|e| coded_error(restore_error_code(&e), &e.to_string()))
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

    /// The socket opened.
    #[wasm_bindgen(js_name = handleConnected)]
    pub fn handle_connected(&mut self, now: f64) {
        self.inner.handle_connected(timestamp(now));
    }

    /// Bytes arrived on the socket (any chunking).
    #[wasm_bindgen(js_name = handleBytes)]
    pub fn handle_bytes(&mut self, now: f64, bytes: &[u8]) {
        self.inner.handle_bytes(timestamp(now), bytes);
    }

    /// The socket closed or failed (`reason`: `{ kind: 'network' }` or `{ kind: 'local' }`;
    /// omitted means network).
    #[wasm_bindgen(js_name = handleClosed)]
    pub fn handle_closed(&mut self, now: f64, reason: JsValue) -> Result<(), JsValue> {
        let reason = if reason.is_undefined() || reason.is_null() {
            CloseReason::Network
        } else {
            close_reason_from_js(from_js(reason, "invalid_close_reason")?)
        };
        self.inner.handle_closed(timestamp(now), reason);
        Ok(())
    }

    /// The timer armed from `pollTimeout()` fired (late or spurious calls are harmless).
    #[wasm_bindgen(js_name = handleTimeout)]
    pub fn handle_timeout(&mut self, now: f64) {
        self.inner.handle_timeout(timestamp(now));
    }

    /// The records a `load` output asked for (those that exist), with its `id`.
    #[wasm_bindgen(js_name = handleLoaded)]
    pub fn handle_loaded(&mut self, now: f64, id: f64, records: JsValue) -> Result<(), JsValue> {
        let records = records_from_js(records)?;
        self.inner
            .handle_loaded(timestamp(now), LoadId(timestamp(id)), records);
        Ok(())
    }

    /// Starts a command (`{ type: 'sendText', to, text }`, ...); returns its id, which the
    /// `commandDone` event names. Throws `invalid_command` for a malformed command object.
    pub fn command(&mut self, now: f64, command: JsValue) -> Result<f64, JsValue> {
        let command = command_from_js(command)?;
        let CommandId(id) = self.inner.command(timestamp(now), command);
        Ok(id as f64)
    }

    /// The next output (`{ kind: 'connect' | 'persist' | 'load' | 'transmit' | 'event' |
    /// 'close', ... }`), or `undefined` when there is nothing to do.
    #[wasm_bindgen(js_name = pollOutput)]
    pub fn poll_output(&mut self) -> Result<JsValue, JsValue> {
        match self.inner.poll_output() {
            Some(output) => to_js(&output_to_js(output)),
            None => Ok(JsValue::UNDEFINED),
        }
    }

    /// When `handleTimeout` is next needed (Unix milliseconds), or `undefined`.
    #[wasm_bindgen(js_name = pollTimeout)]
    pub fn poll_timeout(&self) -> Option<f64> {
        self.inner.poll_timeout().map(|t| t as f64)
    }
}
