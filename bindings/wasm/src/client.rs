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

/// The option names of `new Client(config, records)`'s config (every one optional); a misspelt
/// option is refused instead of being ignored.
const CONFIG_OPTIONS: [&str; 17] = [
    "webVersion",
    "deviceName",
    "platform",
    "pushName",
    "language",
    "country",
    "companionOs",
    "unsafeTestRngSeed",
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

/// The configuration fields as JavaScript gave them.
#[derive(Default)]
struct JsConfig {
    web_version: Option<String>,
    device_name: Option<String>,
    platform: Option<String>,
    push_name: Option<String>,
    language: Option<String>,
    country: Option<String>,
    companion_os: Option<String>,
    unsafe_test_rng_seed: Option<Vec<u8>>,
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

fn js_config(value: &JsValue) -> Result<JsConfig, JsValue> {
    if value.is_undefined() || value.is_null() {
        return Ok(JsConfig::default());
    }
    let r = Reader::new(value, "invalid_config", "config")?;
    r.only(&CONFIG_OPTIONS)?;
    Ok(JsConfig {
        web_version: r.opt_string("webVersion")?,
        device_name: r.opt_string("deviceName")?,
        platform: r.opt_string("platform")?,
        push_name: r.opt_string("pushName")?,
        language: r.opt_string("language")?,
        country: r.opt_string("country")?,
        companion_os: r.opt_string("companionOs")?,
        unsafe_test_rng_seed: r.opt_bytes("unsafeTestRngSeed")?,
        trust_root: r.opt_bytes("trustRoot")?,
        trust_root_serial: r.opt_u32("trustRootSerial")?,
        retry_when_replaced: r.opt_bool("retryWhenReplaced")?,
        keepalive_min_ms: r.opt_f64("keepaliveMinMs")?,
        keepalive_max_ms: r.opt_f64("keepaliveMaxMs")?,
        connect_timeout_ms: r.opt_f64("connectTimeoutMs")?,
        iq_timeout_ms: r.opt_f64("iqTimeoutMs")?,
        backoff_first_ms: r.opt_f64("backoffFirstMs")?,
        backoff_max_ms: r.opt_f64("backoffMaxMs")?,
    })
}

fn config_from_js(value: JsValue) -> Result<Config, JsValue> {
    let js = js_config(&value)?;
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
        config.companion_os = CompanionOs::parse(os).ok_or_else(|| {
            invalid_config("companionOs must be windows, macos, linux, android or ios")
        })?;
    }
    if let Some(seed) = js.unsafe_test_rng_seed {
        config.unsafe_test_rng_seed = Some(
            seed.try_into()
                .map_err(|_| invalid_config("unsafeTestRngSeed must be 32 bytes"))?,
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

fn restore_error_code(error: &RestoreError) -> &'static str {
    match error {
        RestoreError::Malformed { .. } => "restore_malformed",
        RestoreError::Duplicate { .. } => "restore_duplicate",
        RestoreError::MissingDevice => "restore_missing_device",
        RestoreError::NoRandomness => "no_randomness",
        RestoreError::InvalidConfig(_) => "invalid_config",
        _ => "restore_failed",
    }
}

// --- outputs and events -------------------------------------------------------------------

/// The description of a variant this binding does not know (the core's enums are
/// non-exhaustive). Not the variant's `Debug` text: that would link every `Debug` impl of the
/// client's events and states into the module.
const UNKNOWN: &str = "unknown to this version of walink-wasm";

fn tagged(tag: &str, name: &str) -> Obj {
    Obj::tagged(tag, name)
}

fn close_reason_to_js(reason: &CloseReason) -> JsValue {
    let kind = |name: &str| tagged("kind", name);
    match reason {
        CloseReason::Network => kind("network"),
        CloseReason::Local => kind("local"),
        CloseReason::StreamError { code, conflict } => kind("streamError")
            .opt_num("code", code.map(f64::from))
            .opt_str("conflict", conflict.as_deref()),
        CloseReason::Failure { reason } => kind("failure").num("reason", (*reason).into()),
        CloseReason::ServerClosed => kind("serverClosed"),
        CloseReason::Protocol(error) => kind("protocol").str("message", &protocol_message(error)),
        CloseReason::ConnectTimeout => kind("connectTimeout"),
        CloseReason::KeepaliveTimeout => kind("keepaliveTimeout"),
        CloseReason::QrRefsExhausted => kind("qrRefsExhausted"),
        CloseReason::LoggedOut => kind("loggedOut"),
        _ => kind("other").str("message", UNKNOWN),
    }
    .done()
}

fn protocol_message(error: &ProtocolError) -> String {
    error.to_string()
}

/// The kinds of close reason `handleClosed` accepts (those `pollOutput` names).
const CLOSE_KINDS: [&str; 11] = [
    "network",
    "local",
    "streamError",
    "failure",
    "serverClosed",
    "protocol",
    "connectTimeout",
    "keepaliveTimeout",
    "qrRefsExhausted",
    "loggedOut",
    "other",
];

fn close_reason_from_js(value: &JsValue) -> Result<CloseReason, JsValue> {
    let r = Reader::new(value, "invalid_close_reason", "reason")?;
    let kind = r.string("kind")?;
    match kind.as_str() {
        "local" => Ok(CloseReason::Local),
        // A host reports what its socket did; anything else it names is a network failure.
        known if CLOSE_KINDS.contains(&known) => Ok(CloseReason::Network),
        _ => Err(r.error(&format!("unknown close reason kind {kind:?}"))),
    }
}

fn state_to_js(state: &State) -> JsValue {
    let kind = |name: &str| tagged("kind", name);
    match state {
        State::Disconnected => kind("disconnected"),
        State::Connecting => kind("connecting"),
        State::Handshaking => kind("handshaking"),
        State::AwaitingPairing { mode } => kind("awaitingPairing").str(
            "mode",
            match mode {
                PairingMode::Qr => "qr",
                PairingMode::Code => "code",
            },
        ),
        State::LoggingIn => kind("loggingIn"),
        State::Connected => kind("connected"),
        State::Reconnecting { attempt, at } => kind("reconnecting")
            .num("attempt", (*attempt).into())
            .num("at", *at as f64),
        State::LoggedOut => kind("loggedOut"),
        State::Replaced => kind("replaced"),
        State::ClientOutdated => kind("clientOutdated"),
        _ => kind("other").str("description", UNKNOWN),
    }
    .done()
}

fn state_reason_to_js(reason: &StateReason) -> JsValue {
    let kind = |name: &str| tagged("kind", name).done();
    match reason {
        StateReason::Started => kind("started"),
        StateReason::ConnectRequested => kind("connectRequested"),
        StateReason::BackoffElapsed => kind("backoffElapsed"),
        StateReason::RestartRequired => kind("restartRequired"),
        StateReason::SocketOpened => kind("socketOpened"),
        StateReason::PairingOffered => kind("pairingOffered"),
        StateReason::PairingCodeRequested => kind("pairingCodeRequested"),
        StateReason::LoginAccepted => kind("loginAccepted"),
        StateReason::PostLoginDone => kind("postLoginDone"),
        StateReason::Closed(reason) => tagged("kind", "closed")
            .set("reason", close_reason_to_js(reason))
            .done(),
        StateReason::DisconnectRequested => kind("disconnectRequested"),
        StateReason::LogoutRequested => kind("logoutRequested"),
        _ => tagged("kind", "other").str("description", UNKNOWN).done(),
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

/// `{ ok: true, output }` or `{ ok: false, error: { code, message, serverCode?, serverText?,
/// retryAfterMs? } }`.
fn command_result_to_js(result: &Result<CommandOutput, CommandError>) -> JsValue {
    match result {
        Ok(output) => {
            let kind = |name: &str| tagged("kind", name);
            let output = match output {
                CommandOutput::None => kind("none"),
                CommandOutput::PairingCode(code) => kind("pairingCode").str("code", code),
                CommandOutput::MessageSent { id } => kind("messageSent").str("id", id),
                CommandOutput::ChatSettings(settings) => {
                    kind("chatSettings").set("settings", chat_settings_to_js(settings))
                }
                _ => kind("other").str("description", UNKNOWN),
            };
            Obj::new()
                .bool("ok", true)
                .set("output", output.done())
                .done()
        }
        Err(error) => {
            let mut js = Obj::new()
                .str("code", command_error_code(error))
                .str("message", &error.to_string());
            // Absent fields are left out, not set to undefined.
            match error {
                CommandError::Rejected { code, text } => {
                    js = js.num("serverCode", (*code).into()).str("serverText", text);
                }
                CommandError::RateLimited {
                    retry_after_ms: Some(ms),
                } => js = js.num("retryAfterMs", *ms as f64),
                _ => {}
            }
            Obj::new().bool("ok", false).set("error", js.done()).done()
        }
    }
}

fn event_to_js(event: Event) -> JsValue {
    let kind = |name: &str| tagged("type", name);
    match event {
        Event::State { state, reason } => kind("state")
            .set("state", state_to_js(&state))
            .set("reason", state_reason_to_js(&reason)),
        Event::Qr {
            payload,
            expires_at,
        } => kind("qr")
            .str("payload", &payload)
            .num("expiresAt", expires_at as f64),
        Event::QrRefsExhausted => kind("qrRefsExhausted"),
        Event::PairingCode { code } => kind("pairingCode").str("code", &code),
        Event::Paired {
            jid,
            lid,
            platform,
            business_name,
        } => kind("paired")
            .str("jid", &jid.to_string())
            .opt_str("lid", lid.map(|l| l.to_string()).as_deref())
            .str("platform", &platform)
            .opt_str("businessName", business_name.as_deref()),
        Event::OfflinePreview(preview) => kind("offlinePreview")
            .num("count", preview.count.into())
            .num("messages", preview.messages.into())
            .num("notifications", preview.notifications.into())
            .num("receipts", preview.receipts.into())
            .num("appData", preview.app_data.into()),
        Event::OfflineSyncDone { count } => kind("offlineSyncDone").num("count", count.into()),
        Event::Message(m) => kind("message")
            .str("id", &m.id)
            .str("chat", &m.chat.to_string())
            .str("sender", &m.sender.to_string())
            .num("timestamp", m.timestamp as f64)
            .bytes("message", &m.message)
            .opt_str("text", m.text.as_deref()),
        Event::Receipt(r) => kind("receipt")
            .str("chat", &r.chat.to_string())
            .str("sender", &r.sender.to_string())
            .str("receiptType", &r.kind)
            .set("ids", strings(&r.ids))
            .num("timestamp", r.timestamp as f64),
        Event::DecryptFailed(f) => kind("decryptFailed")
            .str("id", &f.id)
            .str("chat", &f.chat.to_string())
            .opt_str("sender", f.sender.map(|s| s.to_string()).as_deref())
            .str("reason", &f.reason),
        Event::AppStateChanged { collection, change } => kind("appStateChanged")
            .str("collection", collection_to_js(collection))
            .set("change", setting_change_to_js(change)),
        Event::ChatSettings { chat, settings } => kind("chatSettings")
            .str("chat", &chat)
            .set("settings", chat_settings_to_js(&settings)),
        Event::AppStateWaitingForKeys {
            collection,
            key_ids,
        } => kind("appStateWaitingForKeys")
            .str("collection", collection_to_js(collection))
            .set(
                "keyIds",
                array(key_ids, |id| js_sys::Uint8Array::from(&id[..]).into()),
            ),
        Event::AppStateDownload {
            download_id,
            direct_path,
        } => kind("appStateDownload")
            .num("downloadId", download_id as f64)
            .str("directPath", &direct_path),
        Event::AppStateFatal { collection, error } => kind("appStateFatal")
            .str("collection", collection_to_js(collection))
            .set("error", app_state_failure_to_js(&error)),
        Event::CommandDone { id, result } => kind("commandDone")
            .num("id", id.0 as f64)
            .set("result", command_result_to_js(&result)),
        _ => kind("other").str("description", UNKNOWN),
    }
    .done()
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

fn output_to_js(output: Output) -> JsValue {
    let kind = |name: &str| tagged("kind", name);
    match output {
        Output::Connect => kind("connect"),
        Output::Persist(batch) => {
            kind("persist").set("changes", array(batch.changes, change_to_js))
        }
        Output::Load { id, keys } => kind("load")
            .num("id", id.0 as f64)
            .set("keys", array(keys, key_to_js)),
        Output::Transmit(bytes) => kind("transmit").bytes("bytes", &bytes),
        Output::Event(event) => kind("event").set("event", event_to_js(event)),
        Output::Close(reason) => kind("close").set("reason", close_reason_to_js(&reason)),
    }
    .done()
}

// --- commands -----------------------------------------------------------------------------

fn command_from_js(value: JsValue) -> Result<Command, JsValue> {
    let r = Reader::new(&value, "invalid_command", "a command")?;
    let name = r.string("type")?;
    let fields: &[&str] = match name.as_str() {
        "pairWithCode" => &["type", "phone"],
        "sendText" => &["type", "to", "text"],
        "sendMessage" => &["type", "to", "message"],
        "markRead" => &["type", "chat", "sender", "ids"],
        "connect" | "disconnect" | "logout" => &["type"],
        "appState" => &["type", "action"],
        "getChatSettings" => &["type", "chat"],
        "appStateBlob" => &["type", "downloadId", "bytes"],
        _ => return Err(r.error(&format!("unknown command type {name:?}"))),
    };
    r.only(fields)?;
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
        _ => Command::AppStateBlob {
            download_id: r.u64("downloadId")?,
            bytes: r.opt_bytes("bytes")?,
        },
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
            close_reason_from_js(&reason)?
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
            Some(output) => Ok(output_to_js(output)),
            None => Ok(JsValue::UNDEFINED),
        }
    }

    /// When `handleTimeout` is next needed (Unix milliseconds), or `undefined`.
    #[wasm_bindgen(js_name = pollTimeout)]
    pub fn poll_timeout(&self) -> Option<f64> {
        self.inner.poll_timeout().map(|t| t as f64)
    }
}
