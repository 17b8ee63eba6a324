//! The `Client` state machine for Kotlin, Swift and Python: the eight calls of
//! `walink_core::client::Client` (plus `handle_loaded`, the answer to a `Load` output) on an
//! object with a `Mutex<Client>` inside, and the outputs, events and commands as uniffi enums.
//!
//! Nothing here calls into the foreign language: each method runs one step of the core and
//! returns, so a driver owns every await (see `bindings/python/walink/driver.py`,
//! `bindings/kotlin/src/main/kotlin/walink/Driver.kt`, `bindings/swift/Sources/Walink/Driver.swift`).
//! Type names that would clash with enum variants in the generated Kotlin (`Event`, `State`)
//! carry a `Client` prefix.

use std::sync::{Arc, Mutex, MutexGuard};

use walink_core::client::{self, CommandId, Config, LoadId, PairingMode};
use walink_core::noise::TrustRoot;
use walink_core::noise::payload::{ClientProfile, WebVersion};
use walink_core::pair::CompanionOs;
use walink_core::proto::wa::device_props::PlatformType;
use walink_core::store::{self, RestoreError, Space};

use crate::WalinkError;
use crate::appstate::{AppStateFailure, ChatSettings, Collection, SettingChange, SyncAction};

/// The WhatsApp Web version announced unless the host chooses one.
const DEFAULT_WEB_VERSION: WebVersion = WebVersion::new(2, 3000, 1_045_649_367);

/// How a client presents itself and what it trusts. Every field has a default
/// ([`default_config`]); tests set `unsafe_test_rng_seed` and `trust_root`. Its `Debug` never
/// shows the seed.
#[derive(Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct ClientConfig {
    /// The WhatsApp Web version to announce, `"2.3000.1045649367"`.
    #[uniffi(default = None)]
    pub web_version: Option<String>,
    /// The name the phone shows for this linked device (default `walink`).
    #[uniffi(default = None)]
    pub device_name: Option<String>,
    /// A `DeviceProps.PlatformType` name: `CHROME` (default), `FIREFOX`, `SAFARI`, `EDGE`, ...
    #[uniffi(default = None)]
    pub platform: Option<String>,
    /// The push name sent at login.
    #[uniffi(default = None)]
    pub push_name: Option<String>,
    /// `windows`, `macos`, `linux` (default), `android` or `ios`: named when pairing by code.
    #[uniffi(default = None)]
    pub companion_os: Option<String>,
    /// Tests only, never in production: 32 bytes seeding the client's generator, so that
    /// every key it makes follows from them (and it is never reseeded from the operating
    /// system).
    #[uniffi(default = None)]
    pub unsafe_test_rng_seed: Option<Vec<u8>>,
    /// A test server's root public key (32 bytes) instead of WhatsApp's.
    #[uniffi(default = None)]
    pub trust_root: Option<Vec<u8>>,
    /// The serial of `trust_root`.
    #[uniffi(default = 0)]
    pub trust_root_serial: u32,
    /// Reconnect after another connection took over, instead of ending in `Replaced`.
    #[uniffi(default = false)]
    pub retry_when_replaced: bool,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("web_version", &self.web_version)
            .field("device_name", &self.device_name)
            .field("platform", &self.platform)
            .field("push_name", &self.push_name)
            .field("companion_os", &self.companion_os)
            .field(
                "unsafe_test_rng_seed",
                &self.unsafe_test_rng_seed.as_ref().map(|_| "<seeded>"),
            )
            .field("trust_root", &self.trust_root)
            .field("trust_root_serial", &self.trust_root_serial)
            .field("retry_when_replaced", &self.retry_when_replaced)
            .finish()
    }
}

/// The configuration with every default.
#[uniffi::export]
pub fn default_config() -> ClientConfig {
    ClientConfig::default()
}

fn invalid(reason: &str) -> WalinkError {
    WalinkError::InvalidConfig {
        reason: reason.to_owned(),
    }
}

impl TryFrom<ClientConfig> for Config {
    type Error = WalinkError;

    fn try_from(c: ClientConfig) -> Result<Config, WalinkError> {
        let version = match &c.web_version {
            Some(text) => WebVersion::parse(text)
                .ok_or_else(|| invalid("web_version must look like 2.3000.1045649367"))?,
            None => DEFAULT_WEB_VERSION,
        };
        let mut profile = ClientProfile::new(
            version,
            c.device_name.unwrap_or_else(|| "walink".to_owned()),
        );
        if let Some(platform) = &c.platform {
            profile.platform_type = PlatformType::from_str_name(&platform.to_ascii_uppercase())
                .ok_or_else(|| invalid("platform is not a DeviceProps.PlatformType name"))?;
        }
        profile.push_name = c.push_name;
        let mut config = Config::new(profile);
        if let Some(os) = &c.companion_os {
            config.companion_os = CompanionOs::parse(os).ok_or_else(|| {
                invalid("companion_os must be windows, macos, linux, android or ios")
            })?;
        }
        if let Some(seed) = c.unsafe_test_rng_seed {
            config.unsafe_test_rng_seed = Some(
                seed.try_into()
                    .map_err(|_| invalid("unsafe_test_rng_seed must be 32 bytes"))?,
            );
        }
        if let Some(root) = c.trust_root {
            config.trust_root = TrustRoot {
                public_key: root
                    .try_into()
                    .map_err(|_| invalid("trust_root must be 32 bytes"))?,
                serial: c.trust_root_serial,
            };
        }
        config.retry_when_replaced = c.retry_when_replaced;
        Ok(config)
    }
}

/// One stored record, as the host's store holds it.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct StoreRecord {
    /// The space (`device`, `session`, `signed-prekey`, ...).
    pub space: String,
    /// The key inside the space.
    pub key: String,
    /// The core's encoding; opaque to the host.
    pub value: Vec<u8>,
}

impl std::fmt::Debug for StoreRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may hold private keys: show only their length.
        f.debug_struct("StoreRecord")
            .field("space", &self.space)
            .field("key", &self.key)
            .field("value_len", &self.value.len())
            .finish()
    }
}

/// The address of a record.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct StoreKey {
    /// The space.
    pub space: String,
    /// The key inside the space.
    pub key: String,
}

/// One change of a `Persist` batch.
#[derive(Clone, PartialEq, Eq, uniffi::Enum)]
pub enum StoreChange {
    /// Insert or replace a record.
    Put {
        /// The space.
        space: String,
        /// The key.
        key: String,
        /// The value.
        value: Vec<u8>,
    },
    /// Remove a record (absent is fine).
    Delete {
        /// The space.
        space: String,
        /// The key.
        key: String,
    },
    /// Remove every record of this client (the device was logged out).
    DeleteAll,
}

impl std::fmt::Debug for StoreChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreChange::Put { space, key, value } => {
                write!(f, "Put({space}/{key}, {} bytes)", value.len())
            }
            StoreChange::Delete { space, key } => write!(f, "Delete({space}/{key})"),
            StoreChange::DeleteAll => f.write_str("DeleteAll"),
        }
    }
}

fn record_from_ffi(r: StoreRecord) -> Result<store::Record, WalinkError> {
    let space = Space::parse(&r.space).ok_or_else(|| WalinkError::InvalidInput {
        reason: format!("unknown record space {:?}", r.space),
    })?;
    Ok(store::Record {
        space,
        key: r.key,
        value: r.value,
    })
}

fn change_to_ffi(change: store::Change) -> StoreChange {
    match change {
        store::Change::Put(mut record) => StoreChange::Put {
            space: record.space.as_str().to_owned(),
            key: std::mem::take(&mut record.key),
            value: std::mem::take(&mut record.value),
        },
        store::Change::Delete { space, key } => StoreChange::Delete {
            space: space.as_str().to_owned(),
            key,
        },
        store::Change::DeleteAll => StoreChange::DeleteAll,
    }
}

/// The spaces whose records `Client::new` wants; the client asks for the others with `Load`.
#[uniffi::export]
pub fn start_spaces() -> Vec<String> {
    Space::ALL
        .into_iter()
        .filter(|s| s.loaded_at_start())
        .map(|s| s.as_str().to_owned())
        .collect()
}

/// Why a connection ended.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum CloseReason {
    /// The socket failed, could not be opened, or the peer closed it.
    Network,
    /// The host or a disconnect closed it.
    Local,
    /// The server ended the stream with `<stream:error>`.
    StreamError {
        /// The `code` attribute, when present.
        code: Option<u16>,
        /// The `type` of a `<conflict>` child, when present.
        conflict: Option<String>,
    },
    /// The server refused the login (`<failure reason>`).
    Failure {
        /// The reason code.
        reason: u16,
    },
    /// The server sent `xmlstreamend`.
    ServerClosed,
    /// The peer broke the protocol.
    Protocol {
        /// What went wrong.
        message: String,
    },
    /// The socket did not open or the handshake did not finish in time.
    ConnectTimeout,
    /// A keepalive ping got no answer in time.
    KeepaliveTimeout,
    /// Every QR ref expired and no pairing code is outstanding.
    QrRefsExhausted,
    /// The device was logged out locally.
    LoggedOut,
    /// A reason this binding does not name yet.
    Other {
        /// The core's description.
        description: String,
    },
}

impl From<&client::CloseReason> for CloseReason {
    fn from(reason: &client::CloseReason) -> CloseReason {
        use client::CloseReason as C;
        match reason {
            C::Network => CloseReason::Network,
            C::Local => CloseReason::Local,
            C::StreamError { code, conflict } => CloseReason::StreamError {
                code: *code,
                conflict: conflict.clone(),
            },
            C::Failure { reason } => CloseReason::Failure { reason: *reason },
            C::ServerClosed => CloseReason::ServerClosed,
            C::Protocol(error) => CloseReason::Protocol {
                message: error.to_string(),
            },
            C::ConnectTimeout => CloseReason::ConnectTimeout,
            C::KeepaliveTimeout => CloseReason::KeepaliveTimeout,
            C::QrRefsExhausted => CloseReason::QrRefsExhausted,
            C::LoggedOut => CloseReason::LoggedOut,
            other => CloseReason::Other {
                description: format!("{other:?}"),
            },
        }
    }
}

/// The lifecycle of a client.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum ClientState {
    /// No connection and none wanted.
    Disconnected,
    /// Waiting for the socket to open.
    Connecting,
    /// The handshake and login are under way.
    Handshaking,
    /// Unpaired and connected: waiting for the phone (`qr` is false when pairing by code).
    AwaitingPairing {
        /// Showing QR codes (true) or a pairing code (false).
        qr: bool,
    },
    /// The server accepted the login; the post-login round trip is under way.
    LoggingIn,
    /// Logged in: messages flow.
    Connected,
    /// The connection was lost; the next attempt starts at `at`.
    Reconnecting {
        /// Consecutive failed attempts so far.
        attempt: u32,
        /// When the next attempt starts (Unix ms).
        at: u64,
    },
    /// The device was unlinked; its records were deleted.
    LoggedOut,
    /// Another connection with the same device took over.
    Replaced,
    /// The server refused this client version.
    ClientOutdated,
    /// A state this binding does not name yet.
    Other {
        /// The core's description.
        description: String,
    },
}

impl From<&client::State> for ClientState {
    fn from(state: &client::State) -> ClientState {
        use client::State as S;
        match state {
            S::Disconnected => ClientState::Disconnected,
            S::Connecting => ClientState::Connecting,
            S::Handshaking => ClientState::Handshaking,
            S::AwaitingPairing { mode } => ClientState::AwaitingPairing {
                qr: matches!(mode, PairingMode::Qr),
            },
            S::LoggingIn => ClientState::LoggingIn,
            S::Connected => ClientState::Connected,
            S::Reconnecting { attempt, at } => ClientState::Reconnecting {
                attempt: *attempt,
                at: *at,
            },
            S::LoggedOut => ClientState::LoggedOut,
            S::Replaced => ClientState::Replaced,
            S::ClientOutdated => ClientState::ClientOutdated,
            other => ClientState::Other {
                description: format!("{other:?}"),
            },
        }
    }
}

/// Why the lifecycle moved.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum StateReason {
    /// The client was created.
    Started,
    /// A `Connect` command.
    ConnectRequested,
    /// The backoff delay elapsed.
    BackoffElapsed,
    /// The server asked for a restart (after pairing).
    RestartRequired,
    /// The socket opened.
    SocketOpened,
    /// The server offered QR refs.
    PairingOffered,
    /// A pairing code was requested.
    PairingCodeRequested,
    /// The server accepted the login.
    LoginAccepted,
    /// The post-login round trip succeeded.
    PostLoginDone,
    /// The connection ended.
    Closed {
        /// Why.
        reason: CloseReason,
    },
    /// A `Disconnect` command.
    DisconnectRequested,
    /// A `Logout` command.
    LogoutRequested,
    /// A reason this binding does not name yet.
    Other {
        /// The core's description.
        description: String,
    },
}

impl From<&client::StateReason> for StateReason {
    fn from(reason: &client::StateReason) -> StateReason {
        use client::StateReason as R;
        match reason {
            R::Started => StateReason::Started,
            R::ConnectRequested => StateReason::ConnectRequested,
            R::BackoffElapsed => StateReason::BackoffElapsed,
            R::RestartRequired => StateReason::RestartRequired,
            R::SocketOpened => StateReason::SocketOpened,
            R::PairingOffered => StateReason::PairingOffered,
            R::PairingCodeRequested => StateReason::PairingCodeRequested,
            R::LoginAccepted => StateReason::LoginAccepted,
            R::PostLoginDone => StateReason::PostLoginDone,
            R::Closed(reason) => StateReason::Closed {
                reason: reason.into(),
            },
            R::DisconnectRequested => StateReason::DisconnectRequested,
            R::LogoutRequested => StateReason::LogoutRequested,
            other => StateReason::Other {
                description: format!("{other:?}"),
            },
        }
    }
}

/// What a successful command produced.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum CommandOutput {
    /// Nothing beyond success.
    Done,
    /// The pairing code the server accepted.
    PairingCode {
        /// The eight characters.
        code: String,
    },
    /// A message was sent (the server acknowledged it).
    MessageSent {
        /// The message id.
        id: String,
    },
    /// The app-state settings of the chat `GetChatSettings` asked for.
    ChatSettings {
        /// The settings.
        settings: ChatSettings,
    },
    /// An output this binding does not name yet.
    Other {
        /// The core's description.
        description: String,
    },
}

/// Why a command failed (the core's `CommandError`).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum CommandError {
    /// Not an international number of 7 to 15 digits.
    InvalidPhoneNumber,
    /// The device is already paired.
    AlreadyPaired,
    /// The device is not paired yet.
    NotPaired,
    /// A pairing code is already outstanding on this connection.
    PairingCodeOutstanding,
    /// This platform cannot pair by code.
    UnsupportedPlatform,
    /// The command needs a connection and there is none.
    NotConnected,
    /// The server refused the request.
    Rejected {
        /// The `<error code>`.
        code: u16,
        /// The `<error text>`.
        text: String,
    },
    /// The server rate-limited the request.
    RateLimited {
        /// How long to wait, when the server said.
        retry_after_ms: Option<u64>,
    },
    /// No answer came in time.
    TimedOut,
    /// The JID is not a user or group address.
    InvalidAddress,
    /// The message could not be encoded or is too large.
    InvalidMessage,
    /// Not possible in the current state.
    InvalidState,
    /// An app-state action could not be encoded (invalid action, no sync key yet).
    AppState {
        /// The core's description.
        reason: String,
    },
    /// An error this binding does not name yet.
    Other {
        /// The core's description.
        description: String,
    },
}

impl From<&client::CommandError> for CommandError {
    fn from(error: &client::CommandError) -> CommandError {
        use client::CommandError as E;
        match error {
            E::InvalidPhoneNumber => CommandError::InvalidPhoneNumber,
            E::AlreadyPaired => CommandError::AlreadyPaired,
            E::NotPaired => CommandError::NotPaired,
            E::PairingCodeOutstanding => CommandError::PairingCodeOutstanding,
            E::UnsupportedPlatform => CommandError::UnsupportedPlatform,
            E::NotConnected => CommandError::NotConnected,
            E::Rejected { code, text } => CommandError::Rejected {
                code: *code,
                text: text.clone(),
            },
            E::RateLimited { retry_after_ms } => CommandError::RateLimited {
                retry_after_ms: *retry_after_ms,
            },
            E::TimedOut => CommandError::TimedOut,
            E::InvalidAddress => CommandError::InvalidAddress,
            E::InvalidMessage => CommandError::InvalidMessage,
            E::InvalidState => CommandError::InvalidState,
            E::AppState(error) => CommandError::AppState {
                reason: error.to_string(),
            },
            other => CommandError::Other {
                description: other.to_string(),
            },
        }
    }
}

/// How a command ended.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum CommandResult {
    /// It succeeded.
    Ok {
        /// What it produced.
        output: CommandOutput,
    },
    /// It failed.
    Err {
        /// Why.
        error: CommandError,
    },
}

/// Something for the application.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum ClientEvent {
    /// The lifecycle moved.
    State {
        /// The new state.
        state: ClientState,
        /// Why.
        reason: StateReason,
    },
    /// Show this QR code until `expires_at`.
    Qr {
        /// The QR content.
        payload: String,
        /// When the next QR is due (Unix ms).
        expires_at: u64,
    },
    /// The server's QR refs ran out.
    QrRefsExhausted,
    /// A pairing code the server accepted.
    PairingCode {
        /// The eight characters to type on the phone.
        code: String,
    },
    /// The phone linked this device.
    Paired {
        /// Own phone-number device JID.
        jid: String,
        /// Own LID device JID.
        lid: Option<String>,
        /// The primary's platform.
        platform: String,
        /// The business name, for business accounts.
        business_name: Option<String>,
    },
    /// The server announced an offline backlog.
    OfflinePreview {
        /// Total stanzas announced.
        count: u32,
        /// Messages among them.
        messages: u32,
    },
    /// The offline backlog was delivered.
    OfflineSyncDone {
        /// The stanza count the server gave.
        count: u32,
    },
    /// A message was received and decrypted.
    Message {
        /// The message id.
        id: String,
        /// The chat (the sender for 1:1, the group for a group).
        chat: String,
        /// The sending device.
        sender: String,
        /// Server timestamp, Unix seconds.
        timestamp: u64,
        /// The encoded `wa.Message`.
        message: Vec<u8>,
        /// The text, for text messages.
        text: Option<String>,
    },
    /// A delivery, read or played receipt.
    Receipt {
        /// The chat.
        chat: String,
        /// The device that sent the receipt.
        sender: String,
        /// `delivery`, `read`, `played`, ...
        receipt_type: String,
        /// The message ids.
        ids: Vec<String>,
        /// Server timestamp, Unix seconds.
        timestamp: u64,
    },
    /// A message could not be decrypted (a retry was requested).
    DecryptFailed {
        /// The message id.
        id: String,
        /// The chat.
        chat: String,
        /// The sending device, when known.
        sender: Option<String>,
        /// Why, in words.
        reason: String,
    },
    /// An app-state setting changed.
    AppStateChanged {
        /// The collection that carried it.
        collection: Collection,
        /// What changed.
        change: SettingChange,
    },
    /// The full settings of a chat after a change.
    ChatSettings {
        /// The chat JID.
        chat: String,
        /// Its settings now.
        settings: ChatSettings,
    },
    /// A collection waits for app-state sync keys this device lacks.
    AppStateWaitingForKeys {
        /// The collection.
        collection: Collection,
        /// The missing key ids.
        key_ids: Vec<Vec<u8>>,
    },
    /// Download the blob at `direct_path` from a media host and answer with
    /// `Command::AppStateBlob` carrying the same `download_id`.
    AppStateDownload {
        /// Names the download in the answer.
        download_id: u64,
        /// The blob's direct path.
        direct_path: String,
    },
    /// A collection could not be synced even from a snapshot.
    AppStateFatal {
        /// The collection.
        collection: Collection,
        /// Why.
        error: AppStateFailure,
    },
    /// A command ended.
    CommandDone {
        /// The id `command` returned.
        id: u64,
        /// Its outcome.
        result: CommandResult,
    },
    /// An event this binding does not name yet.
    Other {
        /// The core's description.
        description: String,
    },
}

impl From<client::Event> for ClientEvent {
    fn from(event: client::Event) -> ClientEvent {
        use client::Event as E;
        match event {
            E::State { state, reason } => ClientEvent::State {
                state: (&state).into(),
                reason: (&reason).into(),
            },
            E::Qr {
                payload,
                expires_at,
            } => ClientEvent::Qr {
                payload,
                expires_at,
            },
            E::QrRefsExhausted => ClientEvent::QrRefsExhausted,
            E::PairingCode { code } => ClientEvent::PairingCode { code },
            E::Paired {
                jid,
                lid,
                platform,
                business_name,
            } => ClientEvent::Paired {
                jid: jid.to_string(),
                lid: lid.map(|l| l.to_string()),
                platform,
                business_name,
            },
            E::OfflinePreview(p) => ClientEvent::OfflinePreview {
                count: p.count,
                messages: p.messages,
            },
            E::OfflineSyncDone { count } => ClientEvent::OfflineSyncDone { count },
            E::Message(m) => ClientEvent::Message {
                id: m.id,
                chat: m.chat.to_string(),
                sender: m.sender.to_string(),
                timestamp: m.timestamp,
                message: m.message,
                text: m.text,
            },
            E::Receipt(r) => ClientEvent::Receipt {
                chat: r.chat.to_string(),
                sender: r.sender.to_string(),
                receipt_type: r.kind,
                ids: r.ids,
                timestamp: r.timestamp,
            },
            E::DecryptFailed(f) => ClientEvent::DecryptFailed {
                id: f.id,
                chat: f.chat.to_string(),
                sender: f.sender.map(|s| s.to_string()),
                reason: f.reason,
            },
            E::AppStateChanged { collection, change } => ClientEvent::AppStateChanged {
                collection: collection.into(),
                change: change.into(),
            },
            E::ChatSettings { chat, settings } => ClientEvent::ChatSettings {
                chat,
                settings: (&settings).into(),
            },
            E::AppStateWaitingForKeys {
                collection,
                key_ids,
            } => ClientEvent::AppStateWaitingForKeys {
                collection: collection.into(),
                key_ids,
            },
            E::AppStateDownload {
                download_id,
                direct_path,
            } => ClientEvent::AppStateDownload {
                download_id,
                direct_path,
            },
            E::AppStateFatal { collection, error } => ClientEvent::AppStateFatal {
                collection: collection.into(),
                error: (&error).into(),
            },
            E::CommandDone { id, result } => ClientEvent::CommandDone {
                id: id.0,
                result: match &result {
                    Ok(output) => CommandResult::Ok {
                        output: match output {
                            client::CommandOutput::None => CommandOutput::Done,
                            client::CommandOutput::PairingCode(code) => {
                                CommandOutput::PairingCode { code: code.clone() }
                            }
                            client::CommandOutput::MessageSent { id } => {
                                CommandOutput::MessageSent { id: id.clone() }
                            }
                            client::CommandOutput::ChatSettings(settings) => {
                                CommandOutput::ChatSettings {
                                    settings: settings.into(),
                                }
                            }
                            other => CommandOutput::Other {
                                description: format!("{other:?}"),
                            },
                        },
                    },
                    Err(error) => CommandResult::Err {
                        error: error.into(),
                    },
                },
            },
            other => ClientEvent::Other {
                description: format!("{other:?}"),
            },
        }
    }
}

/// One thing for the host to do, in order.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum Output {
    /// Open the socket, then call `handle_connected` (or `handle_closed` if it fails).
    Connect,
    /// Apply these changes atomically before carrying out any later output.
    Persist {
        /// The changes, in order.
        changes: Vec<StoreChange>,
    },
    /// Read these records and hand the ones that exist to `handle_loaded` with `id`.
    Load {
        /// Names the answer.
        id: u64,
        /// The records wanted.
        keys: Vec<StoreKey>,
    },
    /// Write these bytes to the socket as one binary message.
    Transmit {
        /// One complete frame.
        bytes: Vec<u8>,
    },
    /// Something for the application.
    Event {
        /// The event.
        event: ClientEvent,
    },
    /// Close the socket (do not call `handle_closed` for it).
    Close {
        /// Why.
        reason: CloseReason,
    },
}

impl From<client::Output> for Output {
    fn from(output: client::Output) -> Output {
        match output {
            client::Output::Connect => Output::Connect,
            client::Output::Persist(batch) => Output::Persist {
                changes: batch.changes.into_iter().map(change_to_ffi).collect(),
            },
            client::Output::Load { id, keys } => Output::Load {
                id: id.0,
                keys: keys
                    .into_iter()
                    .map(|k| StoreKey {
                        space: k.space.as_str().to_owned(),
                        key: k.key,
                    })
                    .collect(),
            },
            client::Output::Transmit(bytes) => Output::Transmit { bytes },
            client::Output::Event(event) => Output::Event {
                event: event.into(),
            },
            client::Output::Close(reason) => Output::Close {
                reason: (&reason).into(),
            },
        }
    }
}

/// A request from the application.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum Command {
    /// Pair with a phone number; ends with the 8-character code.
    PairWithCode {
        /// The international number, country code first.
        phone: String,
    },
    /// Send a text message.
    SendText {
        /// The recipient's JID (user or group).
        to: String,
        /// The text.
        text: String,
    },
    /// Send an encoded `wa.Message`.
    SendMessage {
        /// The recipient's JID.
        to: String,
        /// The encoded message.
        message: Vec<u8>,
    },
    /// Mark messages read.
    MarkRead {
        /// The chat.
        chat: String,
        /// The sender, in a group.
        sender: Option<String>,
        /// The message ids.
        ids: Vec<String>,
    },
    /// Start connecting again (after `Disconnect`, a logout, `Replaced` or `ClientOutdated`).
    Connect,
    /// Close the connection and stay disconnected.
    Disconnect,
    /// Unlink this device and delete its records.
    Logout,
    /// An app-state action (mute, pin, archive, ...), synced to the account's other devices.
    AppState {
        /// The action.
        action: SyncAction,
    },
    /// Read the app-state settings of a chat; ends with `CommandOutput::ChatSettings`.
    GetChatSettings {
        /// The chat JID.
        chat: String,
    },
    /// The answer to `ClientEvent::AppStateDownload`: the downloaded (still encrypted) file,
    /// or `None` when the download failed.
    AppStateBlob {
        /// The event's `download_id`.
        download_id: u64,
        /// The file's bytes as served, or `None`.
        bytes: Option<Vec<u8>>,
    },
}

impl From<Command> for client::Command {
    fn from(command: Command) -> client::Command {
        match command {
            Command::PairWithCode { phone } => client::Command::PairWithCode { phone },
            Command::SendText { to, text } => client::Command::SendText { to, text },
            Command::SendMessage { to, message } => client::Command::SendMessage { to, message },
            Command::MarkRead { chat, sender, ids } => {
                client::Command::MarkRead { chat, sender, ids }
            }
            Command::Connect => client::Command::Connect,
            Command::Disconnect => client::Command::Disconnect,
            Command::Logout => client::Command::Logout,
            Command::AppState { action } => client::Command::AppState(action.into()),
            Command::GetChatSettings { chat } => client::Command::GetChatSettings { chat },
            Command::AppStateBlob { download_id, bytes } => {
                client::Command::AppStateBlob { download_id, bytes }
            }
        }
    }
}

fn restore_error(error: RestoreError) -> WalinkError {
    match error {
        RestoreError::NoRandomness => WalinkError::Platform {
            reason: error.to_string(),
        },
        RestoreError::InvalidConfig(config) => WalinkError::InvalidConfig {
            reason: config.to_string(),
        },
        other => WalinkError::CorruptStore {
            reason: other.to_string(),
        },
    }
}

/// One linked device as a sans-IO state machine. Drive it with the loop of the package's
/// driver: after each `handle_*` or `command`, drain `poll_output` to `None`, carry each out in
/// order (awaiting `Persist` and answering `Load` before the next), then re-arm one timer from
/// `poll_timeout`.
#[derive(uniffi::Object)]
pub struct Client {
    inner: Mutex<client::Client>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Client")
    }
}

impl Client {
    fn lock(&self) -> MutexGuard<'_, client::Client> {
        // A panic while the lock was held aborts the process (panic = "abort"), so a poisoned
        // lock can only be seen in a test build; the state inside is still the last one.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[uniffi::export]
impl Client {
    /// A client for the device in `records` (those of [`start_spaces`]), or a new device when
    /// `records` is empty. Fails with `InvalidConfig` for a bad config (a trust root that cannot
    /// check signatures among them), `InvalidInput` for an unknown space, and `CorruptStore`
    /// when the records cannot be restored.
    #[uniffi::constructor]
    pub fn new(
        config: ClientConfig,
        records: Vec<StoreRecord>,
    ) -> Result<Arc<Client>, WalinkError> {
        let config = Config::try_from(config)?;
        let records = records
            .into_iter()
            .map(record_from_ffi)
            .collect::<Result<Vec<_>, _>>()?;
        let inner = client::Client::new(config, records).map_err(restore_error)?;
        Ok(Arc::new(Client {
            inner: Mutex::new(inner),
        }))
    }

    /// The socket opened.
    pub fn handle_connected(&self, now: u64) {
        self.lock().handle_connected(now);
    }

    /// Bytes arrived on the socket (any chunking).
    pub fn handle_bytes(&self, now: u64, bytes: Vec<u8>) {
        self.lock().handle_bytes(now, &bytes);
    }

    /// The socket closed or failed (`Network`) or the host closed it (`Local`).
    pub fn handle_closed(&self, now: u64, reason: CloseReason) {
        let reason = match reason {
            CloseReason::Local => client::CloseReason::Local,
            _ => client::CloseReason::Network,
        };
        self.lock().handle_closed(now, reason);
    }

    /// The timer armed from `poll_timeout` fired (late or spurious calls are harmless).
    pub fn handle_timeout(&self, now: u64) {
        self.lock().handle_timeout(now);
    }

    /// The records a `Load` output asked for (those that exist). Fails with `InvalidInput`
    /// for an unknown space (nothing is handed to the client then).
    pub fn handle_loaded(
        &self,
        now: u64,
        id: u64,
        records: Vec<StoreRecord>,
    ) -> Result<(), WalinkError> {
        let records = records
            .into_iter()
            .map(record_from_ffi)
            .collect::<Result<Vec<_>, _>>()?;
        self.lock().handle_loaded(now, LoadId(id), records);
        Ok(())
    }

    /// Starts a command; returns its id, which its `CommandDone` event names.
    pub fn command(&self, now: u64, command: Command) -> u64 {
        let CommandId(id) = self.lock().command(now, command.into());
        id
    }

    /// The next output, or `None` when there is nothing to do.
    pub fn poll_output(&self) -> Option<Output> {
        self.lock().poll_output().map(Output::from)
    }

    /// When `handle_timeout` is next needed (Unix ms), or `None`.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.lock().poll_timeout()
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn seeded() -> ClientConfig {
        ClientConfig {
            unsafe_test_rng_seed: Some((0..32).collect()),
            ..ClientConfig::default()
        }
    }

    fn drain(client: &Client) -> Vec<Output> {
        std::iter::from_fn(|| client.poll_output()).collect()
    }

    #[test]
    fn fresh_client_persists_then_connects_and_restores() {
        let client = Client::new(seeded(), Vec::new()).expect("a fresh client");
        let outputs = drain(&client);
        let persist = outputs
            .iter()
            .position(|o| matches!(o, Output::Persist { .. }));
        let connect = outputs.iter().position(|o| matches!(o, Output::Connect));
        assert!(persist.is_some() && persist < connect, "{outputs:?}");
        let records: Vec<StoreRecord> = outputs
            .into_iter()
            .filter_map(|o| match o {
                Output::Persist { changes } => Some(changes),
                _ => None,
            })
            .flatten()
            .filter_map(|c| match c {
                StoreChange::Put { space, key, value } => Some(StoreRecord { space, key, value }),
                _ => None,
            })
            .collect();
        assert!(records.iter().any(|r| r.space == "device"));
        let restored = Client::new(seeded(), records).expect("restored");
        assert!(
            drain(&restored)
                .iter()
                .any(|o| matches!(o, Output::Connect))
        );
    }

    #[test]
    fn the_config_debug_hides_the_seed() {
        let config = ClientConfig {
            unsafe_test_rng_seed: Some((100..132).collect()),
            ..ClientConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(shown.contains("<seeded>"), "{shown}");
        assert!(!shown.contains("100, 101, 102"), "{shown}");
    }

    #[test]
    fn bad_input_is_typed() {
        let short = ClientConfig {
            unsafe_test_rng_seed: Some(vec![1, 2, 3]),
            ..ClientConfig::default()
        };
        assert!(matches!(
            Client::new(short, Vec::new()),
            Err(WalinkError::InvalidConfig { .. })
        ));
        for root in [vec![0; 32], {
            let mut one = vec![0; 32];
            one[0] = 1;
            one
        }] {
            let weak = ClientConfig {
                trust_root: Some(root),
                ..seeded()
            };
            assert!(matches!(
                Client::new(weak, Vec::new()),
                Err(WalinkError::InvalidConfig { reason }) if reason.contains("trust root")
            ));
        }
        let unknown = StoreRecord {
            space: "no-such-space".into(),
            key: "k".into(),
            value: Vec::new(),
        };
        assert!(matches!(
            Client::new(seeded(), vec![unknown]),
            Err(WalinkError::InvalidInput { .. })
        ));
        let garbage = StoreRecord {
            space: "device".into(),
            key: "device".into(),
            value: vec![0xff, 0, 1],
        };
        assert!(matches!(
            Client::new(seeded(), vec![garbage]),
            Err(WalinkError::CorruptStore { .. })
        ));
    }

    #[test]
    fn a_bad_phone_number_ends_in_a_typed_command_error() {
        let client = Client::new(seeded(), Vec::new()).expect("a fresh client");
        drain(&client);
        let id = client.command(
            1_760_000_000_000,
            Command::PairWithCode { phone: "12".into() },
        );
        let results: Vec<CommandResult> = drain(&client)
            .into_iter()
            .filter_map(|o| match o {
                Output::Event {
                    event: ClientEvent::CommandDone { id: done, result },
                } if done == id => Some(result),
                _ => None,
            })
            .collect();
        assert_eq!(
            results,
            vec![CommandResult::Err {
                error: CommandError::InvalidPhoneNumber
            }]
        );
    }

    #[test]
    fn a_mute_command_round_trips_through_the_conversion() {
        let action = SyncAction::Mute {
            chat: "123@s.whatsapp.net".into(),
            until: crate::appstate::MuteUntil::Until {
                at_ms: 1_760_000_000_000,
            },
        };
        let core: client::Command = Command::AppState {
            action: action.clone(),
        }
        .into();
        let client::Command::AppState(core_action) = &core else {
            panic!("not an app-state command: {core:?}");
        };
        assert_eq!(
            core_action,
            &walink_core::appstate::SyncAction::Mute {
                chat: "123@s.whatsapp.net".into(),
                until: walink_core::appstate::MuteUntil::Until(1_760_000_000_000),
            }
        );
        assert_eq!(SyncAction::from(core_action), action);
    }

    #[test]
    fn get_chat_settings_ends_typed_not_other() {
        let client = Client::new(seeded(), Vec::new()).expect("a fresh client");
        drain(&client);
        let id = client.command(
            1_760_000_000_000,
            Command::GetChatSettings {
                chat: "123@s.whatsapp.net".into(),
            },
        );
        // The settings are read once the app-state records are loaded: answer every load
        // with nothing stored.
        let mut results = Vec::new();
        let mut outputs = drain(&client);
        while !outputs.is_empty() {
            for output in std::mem::take(&mut outputs) {
                match output {
                    Output::Load { id: load, .. } => client
                        .handle_loaded(1_760_000_000_000, load, Vec::new())
                        .expect("an empty load"),
                    Output::Event {
                        event: ClientEvent::CommandDone { id: done, result },
                    } if done == id => results.push(result),
                    _ => {}
                }
            }
            outputs = drain(&client);
        }
        assert_eq!(results.len(), 1, "{results:?}");
        match &results[0] {
            CommandResult::Ok {
                output: CommandOutput::ChatSettings { settings },
            } => assert_eq!(settings, &ChatSettings::default()),
            CommandResult::Err { error } => {
                assert!(!matches!(error, CommandError::Other { .. }), "{error:?}")
            }
            other => panic!("untyped result: {other:?}"),
        }
    }
}
