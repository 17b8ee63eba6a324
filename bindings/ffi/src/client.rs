//! The `Client` state machine for Kotlin, Swift and Python: the eight calls of
//! `walink_core::client::Client` (plus `handle_loaded` and `handle_fetched`, the answers to
//! `Load` and `Fetch` outputs) on an object with a lock inside, and the outputs, events and
//! commands as uniffi enums.
//!
//! Nothing here calls into the foreign language: each method runs one step of the core and
//! returns, so a driver owns every await (see `bindings/python/walink/driver.py`,
//! `bindings/kotlin/src/main/kotlin/walink/Driver.kt`, `bindings/swift/Sources/Walink/Driver.swift`).
//! Type names that would clash with enum variants in the generated Kotlin (`Event`, `State`)
//! carry a `Client` prefix.
//!
//! Every conversion matches the core's enums exhaustively (walink-core's `exhaustive` feature):
//! a variant added to the core fails to compile here until it is converted, so no binding
//! reports a variant as "other".

use std::sync::Arc;

use walink_core::client::{self, ConfigOptions, FetchId, LoadId, PairingMode};
use walink_core::store::{self, Space};

use crate::WalinkError;
use crate::appstate::{AppStateFailure, ChatSettings, Collection, SettingChange, SyncAction};
use crate::content::{PollVote, WaMessage};
use crate::error::Guarded;

/// How a client presents itself and what it trusts: the core's `ConfigOptions`, every field
/// optional (absent means WhatsApp Web's default; [`default_config`]). Tests set
/// `unsafe_test_rng_seed` and `trust_root`. Its `Debug` never shows the seed.
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
    /// `UserAgent` language, ISO 639-1 (default `en`).
    #[uniffi(default = None)]
    pub language: Option<String>,
    /// `UserAgent` country, ISO 3166-1 alpha-2 (default `US`).
    #[uniffi(default = None)]
    pub country: Option<String>,
    /// `windows`, `macos`, `linux` (default), `android` or `ios`: named when pairing by code.
    #[uniffi(default = None)]
    pub companion_os: Option<String>,
    /// A test server's root public key (32 bytes) instead of WhatsApp's.
    #[uniffi(default = None)]
    pub trust_root: Option<Vec<u8>>,
    /// The serial of `trust_root`.
    #[uniffi(default = None)]
    pub trust_root_serial: Option<u32>,
    /// Reconnect after another connection took over, instead of resting in `Replaced`.
    #[uniffi(default = None)]
    pub retry_when_replaced: Option<bool>,
    /// Shortest interval between keepalive pings (15 s).
    #[uniffi(default = None)]
    pub keepalive_min_ms: Option<u64>,
    /// Longest interval between keepalive pings (30 s).
    #[uniffi(default = None)]
    pub keepalive_max_ms: Option<u64>,
    /// How long a ping may wait for its answer (20 s).
    #[uniffi(default = None)]
    pub keepalive_deadline_ms: Option<u64>,
    /// How long the socket may take to open and the handshake to finish (20 s).
    #[uniffi(default = None)]
    pub connect_timeout_ms: Option<u64>,
    /// How long any other IQ may wait for its answer (60 s).
    #[uniffi(default = None)]
    pub iq_timeout_ms: Option<u64>,
    /// First reconnect delay of the Fibonacci schedule (1 s).
    #[uniffi(default = None)]
    pub backoff_first_ms: Option<u64>,
    /// Cap of the reconnect delay (900 s).
    #[uniffi(default = None)]
    pub backoff_max_ms: Option<u64>,
    /// Jitter of each reconnect delay, in thousandths (100).
    #[uniffi(default = None)]
    pub backoff_jitter_permille: Option<u32>,
    /// A connection up this long resets the backoff (30 s).
    #[uniffi(default = None)]
    pub backoff_reset_after_ms: Option<u64>,
    /// How many messaging records stay in memory (256); the rest load on demand.
    #[uniffi(default = None)]
    pub record_cache_limit: Option<u64>,
    /// The media host files are fetched from (`https://mmg.whatsapp.net`; a test server).
    #[uniffi(default = None)]
    pub media_origin: Option<String>,
    /// What a contact's changed identity key leads to (default: accept and notify, as
    /// WhatsApp does).
    #[uniffi(default = None)]
    pub identity_policy: Option<IdentityPolicy>,
    /// How much history to ask the phone for when pairing: `recent` (default, as WhatsApp
    /// Web), `full` or `none` (no conversations; push names still arrive).
    #[uniffi(default = None)]
    pub history: Option<String>,
    /// Days of history to ask for; older messages are dropped by the client too.
    #[uniffi(default = None)]
    pub history_days: Option<u32>,
    /// Messages per chat in the initial history.
    #[uniffi(default = None)]
    pub history_messages_per_chat: Option<u32>,
    /// Size limit of a full history, in MB.
    #[uniffi(default = None)]
    pub history_size_mb: Option<u32>,
    /// Tests only, never in production: 32 bytes seeding the client's generator, so that
    /// every key it makes follows from them (and it is never reseeded from the operating
    /// system).
    #[uniffi(default = None)]
    pub unsafe_test_rng_seed: Option<Vec<u8>>,
}

/// What the client does when a contact device presents a new identity key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum IdentityPolicy {
    /// WhatsApp's behaviour: trusted at once and reported (`ClientEvent::IdentityChanged`).
    AcceptAndNotify,
    /// Messages from and to the device are refused until `Command::ApproveIdentity`.
    Strict,
}

impl From<IdentityPolicy> for client::IdentityPolicy {
    fn from(policy: IdentityPolicy) -> client::IdentityPolicy {
        match policy {
            IdentityPolicy::AcceptAndNotify => client::IdentityPolicy::AcceptAndNotify,
            IdentityPolicy::Strict => client::IdentityPolicy::Strict,
        }
    }
}

impl From<ClientConfig> for ConfigOptions {
    fn from(c: ClientConfig) -> ConfigOptions {
        // A struct literal without `..`: an option added to the core fails to compile here.
        ConfigOptions {
            web_version: c.web_version,
            device_name: c.device_name,
            platform: c.platform,
            push_name: c.push_name,
            language: c.language,
            country: c.country,
            companion_os: c.companion_os,
            trust_root: c.trust_root,
            trust_root_serial: c.trust_root_serial,
            retry_when_replaced: c.retry_when_replaced,
            keepalive_min_ms: c.keepalive_min_ms,
            keepalive_max_ms: c.keepalive_max_ms,
            keepalive_deadline_ms: c.keepalive_deadline_ms,
            connect_timeout_ms: c.connect_timeout_ms,
            iq_timeout_ms: c.iq_timeout_ms,
            backoff_first_ms: c.backoff_first_ms,
            backoff_max_ms: c.backoff_max_ms,
            backoff_jitter_permille: c.backoff_jitter_permille,
            backoff_reset_after_ms: c.backoff_reset_after_ms,
            record_cache_limit: c.record_cache_limit,
            media_origin: c.media_origin,
            identity_policy: c.identity_policy.map(Into::into),
            history: c.history,
            history_days: c.history_days,
            history_messages_per_chat: c.history_messages_per_chat,
            history_size_mb: c.history_size_mb,
            unsafe_test_rng_seed: c.unsafe_test_rng_seed,
        }
    }
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

/// WhatsApp's endpoints and the web version announced by default, as the core states them.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Endpoints {
    /// The chat socket to open on `Output::Connect`: `wss://web.whatsapp.com/ws/chat`.
    pub chat_url: String,
    /// The `Origin` header the chat socket needs: `https://web.whatsapp.com`.
    pub origin: String,
    /// WhatsApp's media host: `https://mmg.whatsapp.net`.
    pub media_origin: String,
    /// `2.3000.1045649367`.
    pub web_version: String,
}

/// WhatsApp's endpoints, as the core states them.
#[uniffi::export]
pub fn endpoints() -> Endpoints {
    use client::endpoints::{CHAT_URL, MEDIA_ORIGIN, ORIGIN, WEB_VERSION};
    Endpoints {
        chat_url: CHAT_URL.to_owned(),
        origin: ORIGIN.to_owned(),
        media_origin: MEDIA_ORIGIN.to_owned(),
        web_version: WEB_VERSION.to_string(),
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
    let space = Space::parse(&r.space).ok_or_else(|| {
        WalinkError::invalid(
            "invalid_record",
            format!("unknown record space {:?}", r.space),
        )
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
        }
    }
}

/// What a host reports to `handle_closed`, taken as it is named: every reason but `Protocol`
/// (only the client finds the peer at fault), which is `InvalidInput`.
impl TryFrom<CloseReason> for client::CloseReason {
    type Error = WalinkError;

    fn try_from(reason: CloseReason) -> Result<client::CloseReason, WalinkError> {
        use client::CloseReason as C;
        Ok(match reason {
            CloseReason::Network => C::Network,
            CloseReason::Local => C::Local,
            CloseReason::StreamError { code, conflict } => C::StreamError { code, conflict },
            CloseReason::Failure { reason } => C::Failure { reason },
            CloseReason::ServerClosed => C::ServerClosed,
            CloseReason::Protocol { .. } => {
                return Err(WalinkError::invalid(
                    "invalid_close_reason",
                    "a host cannot report a protocol error",
                ));
            }
            CloseReason::ConnectTimeout => C::ConnectTimeout,
            CloseReason::KeepaliveTimeout => C::KeepaliveTimeout,
            CloseReason::QrRefsExhausted => C::QrRefsExhausted,
            CloseReason::LoggedOut => C::LoggedOut,
        })
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
    /// The server refused the pairing code request; QR codes remain.
    PairingCodeFailed,
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
            R::PairingCodeFailed => StateReason::PairingCodeFailed,
            R::LoginAccepted => StateReason::LoginAccepted,
            R::PostLoginDone => StateReason::PostLoginDone,
            R::Closed(reason) => StateReason::Closed {
                reason: reason.into(),
            },
            R::DisconnectRequested => StateReason::DisconnectRequested,
            R::LogoutRequested => StateReason::LogoutRequested,
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
    /// The identity keys of the device `GetIdentity` asked for.
    Identity {
        /// The device (the LID form when known).
        address: String,
        /// The identity public key trusted (32 bytes), when the device was ever met.
        identity: Option<Vec<u8>>,
        /// A new identity public key waiting for approval.
        pending: Option<Vec<u8>>,
    },
    /// The plaintext of downloaded media, its hashes and MAC checked.
    MediaDownloaded {
        /// The file.
        data: Vec<u8>,
    },
    /// What a group command produced.
    Group {
        /// The output.
        output: crate::groups::GroupOutput,
    },
    /// One entry per number of `CheckNumbers`, in the order given.
    Numbers {
        /// The numbers.
        numbers: Vec<crate::social::NumberInfo>,
    },
    /// The profile picture asked for, or why there is none.
    ProfilePicture {
        /// The picture.
        picture: crate::social::ProfilePicture,
    },
    /// The about text asked for, or why there is none.
    About {
        /// The about text.
        about: crate::social::About,
    },
    /// The business profile asked for (`None`: not a business).
    BusinessProfile {
        /// The profile.
        profile: Option<crate::social::BusinessProfile>,
    },
    /// The blocked users.
    BlockList {
        /// Their JIDs.
        jids: Vec<String>,
    },
    /// Downloaded media decrypted into the host's sink, its MAC and hashes checked: the host
    /// may release the sink's bytes.
    MediaSaved {
        /// The sink the command named.
        sink: u64,
        /// The plaintext length.
        length: u64,
    },
}

impl From<&client::CommandOutput> for CommandOutput {
    fn from(output: &client::CommandOutput) -> CommandOutput {
        use client::CommandOutput as O;
        match output {
            O::None => CommandOutput::Done,
            O::PairingCode(code) => CommandOutput::PairingCode { code: code.clone() },
            O::MessageSent { id } => CommandOutput::MessageSent { id: id.clone() },
            O::ChatSettings(settings) => CommandOutput::ChatSettings {
                settings: settings.into(),
            },
            O::Identity(info) => CommandOutput::Identity {
                address: info.address.to_string(),
                identity: info.identity.map(|key| key.to_vec()),
                pending: info.pending.map(|key| key.to_vec()),
            },
            O::MediaDownloaded(data) => CommandOutput::MediaDownloaded {
                data: data.0.clone(),
            },
            O::Group(output) => CommandOutput::Group {
                output: output.as_ref().into(),
            },
            O::Numbers(numbers) => CommandOutput::Numbers {
                numbers: numbers.iter().map(Into::into).collect(),
            },
            O::ProfilePicture(picture) => CommandOutput::ProfilePicture {
                picture: picture.into(),
            },
            O::About(about) => CommandOutput::About {
                about: about.into(),
            },
            O::BusinessProfile(profile) => CommandOutput::BusinessProfile {
                profile: profile.as_ref().map(Into::into),
            },
            O::BlockList(jids) => CommandOutput::BlockList {
                jids: jids.iter().map(ToString::to_string).collect(),
            },

            &O::MediaSaved { sink, length } => CommandOutput::MediaSaved { sink, length },
        }
    }
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
    /// A recipient device's identity key changed and waits for `Command::ApproveIdentity`.
    UntrustedIdentity {
        /// The device JID.
        address: String,
    },
    /// No media host took the upload.
    UploadFailed,
    /// No media host served the file.
    DownloadFailed,
    /// The downloaded file's hash or MAC does not match its message.
    MediaInvalid,
    /// The hosts no longer keep the media and the phone did not upload it again.
    MediaExpired,
    /// The file is larger than walink handles in memory.
    MediaTooLarge,
    /// No poll with that id is kept for the chat.
    UnknownPoll,
    /// Not allowed (not an admin, not a member).
    Forbidden,
    /// No such group or invite code.
    NotFound,
    /// A server limit was reached (group full).
    ResourceLimit,
    /// The server found the request malformed or unacceptable.
    BadRequest,

    /// The server's prekey answer could not be read (`address` `None`), or the bundle of the
    /// device `address` is malformed or badly signed: the message was sent to no device.
    BadPrekeyAnswer {
        /// The device JID whose bundle was refused, when one was.
        address: Option<String>,
    },
    /// Setting our presence needs a push name.
    PushNameRequired,
    /// The server's answer did not have the expected shape.
    BadAnswer,
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
            E::UntrustedIdentity { address } => CommandError::UntrustedIdentity {
                address: address.clone(),
            },
            E::UploadFailed => CommandError::UploadFailed,
            E::DownloadFailed => CommandError::DownloadFailed,
            E::MediaInvalid => CommandError::MediaInvalid,
            E::MediaExpired => CommandError::MediaExpired,
            E::MediaTooLarge => CommandError::MediaTooLarge,
            E::UnknownPoll => CommandError::UnknownPoll,
            E::Forbidden => CommandError::Forbidden,
            E::NotFound => CommandError::NotFound,
            E::ResourceLimit => CommandError::ResourceLimit,
            E::BadRequest => CommandError::BadRequest,

            E::BadPrekeyAnswer { address } => CommandError::BadPrekeyAnswer {
                address: address.clone(),
            },
            E::PushNameRequired => CommandError::PushNameRequired,
            E::BadAnswer => CommandError::BadAnswer,
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
        /// The core's stable code of the error (`not_connected`, `invalid_phone_number`, ...),
        /// the same in every binding.
        code: String,
    },
}

impl From<&Result<client::CommandOutput, client::CommandError>> for CommandResult {
    fn from(result: &Result<client::CommandOutput, client::CommandError>) -> CommandResult {
        match result {
            Ok(output) => CommandResult::Ok {
                output: output.into(),
            },
            Err(error) => CommandResult::Err {
                error: error.into(),
                code: error.code().to_owned(),
            },
        }
    }
}

/// Something for the application.
#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
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
        /// Whether this account sent it (from another of its devices).
        from_me: bool,
        /// The sender's push name, when the server gave it.
        push_name: Option<String>,
        /// Whether it came from a history sync rather than live.
        history: bool,
        /// Whether it is a status post (`chat` is `status@broadcast`, `sender` its poster).
        status: bool,
        /// The content: wrappers removed, the keys of add-ons (reactions, votes, revokes,
        /// edits) rewritten to this device's point of view.
        message: Box<WaMessage>,
        /// The wrappers the content was found in, outermost first, by their `wa.Message`
        /// field name (`ephemeralMessage`, `viewOnceMessageV2`, ...).
        wrappers: Vec<String>,
        /// The message as it arrived, encoded: fields walink's schema lacks are kept here.
        raw: Vec<u8>,
        /// The text: `conversation`, or `extendedTextMessage.text`.
        text: Option<String>,
        /// A poll vote, opened with its poll's secret and counted.
        poll_vote: Option<PollVote>,
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
        /// What failed.
        kind: DecryptFailureKind,
        /// Why, in words.
        reason: String,
    },
    /// A contact device presented a new identity key: trusted now (`accepted`), or waiting
    /// for `Command::ApproveIdentity` (`IdentityPolicy::Strict`).
    IdentityChanged {
        /// The device (the LID form when known).
        address: String,
        /// The new identity public key (32 bytes), the input of a safety number.
        identity: Vec<u8>,
        /// The identity public key trusted before.
        previous: Vec<u8>,
        /// Whether it is trusted now.
        accepted: bool,
    },
    /// A stored record (given at start or loaded on demand) could not be read: it is treated
    /// as absent and overwritten by the next write. Names the record, never its content.
    RecordCorrupt {
        /// The record's space (`session`, `identity`, ...).
        space: String,
        /// The record's key.
        key: String,
        /// Why: `too_large`, `bad_protobuf`, `unsupported_format`, `bad_field` or `too_many`.
        error: String,
    },
    /// A retry request for one of our messages was refused (reported once per message and
    /// device).
    RetryRefused {
        /// The message id.
        id: String,
        /// The device that asked.
        requester: String,
        /// Why.
        reason: RetryRefusal,
        /// Every retry request refused since the client started.
        refused_total: u64,
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
    /// A collection could not be synced even from a snapshot.
    AppStateFatal {
        /// The collection.
        collection: Collection,
        /// Why.
        error: AppStateFailure,
    },
    /// A conversation of the phone's history; its messages follow as `Message` events with
    /// `history` set.
    HistoryConversation {
        /// The chat.
        chat: String,
        /// Its name, when the phone gave one.
        name: Option<String>,
        /// Unread messages.
        unread_count: u32,
        /// When it was last active (Unix seconds; 0 when unknown).
        timestamp: u64,
        /// Whether it is archived.
        archived: bool,
        /// Whether it is pinned.
        pinned: bool,
        /// Until when it is muted (Unix seconds; 0 when not).
        mute_end_time: u64,
        /// Disappearing-messages timer in seconds (0: off).
        ephemeral_expiration: u32,
        /// The chat's phone-number form, when given.
        pn: Option<String>,
        /// The chat's LID form, when given.
        lid: Option<String>,
        /// The chunk's type (`initial_bootstrap`, `recent`, `on_demand`, ...).
        sync_type: String,
    },
    /// A contact's push name, from the phone's history.
    PushName {
        /// The contact.
        jid: String,
        /// The name.
        name: String,
    },
    /// A history chunk was read, or failed (`failure`: `empty`, `download`, `decrypt`,
    /// `decode`, `busy`, `reuploading`: expired, asked for again).
    HistorySync {
        /// The chunk's type.
        sync_type: String,
        /// Its order among the chunks of its type.
        chunk_order: u32,
        /// The phone's progress (percent), when given.
        progress: Option<u32>,
        /// Conversations reported from it.
        conversations: u32,
        /// Messages reported from it.
        messages: u32,
        /// Why it was not read (completely), if so.
        failure: Option<String>,
    },
    /// A group changed (a `w:gp2` notification), after the client applied it.
    Group {
        /// The group JID.
        group: String,
        /// Who changed it.
        actor: Option<String>,
        /// When, Unix seconds.
        timestamp: u64,
        /// The changes, in order.
        changes: Vec<crate::groups::GroupChange>,
    },
    /// A call: offered, ringing, accepted or rejected (maybe elsewhere), ended or missed.
    Call {
        /// The call.
        call: crate::social::CallInfo,
    },
    /// A contact's presence (after `Command::SubscribePresence`).
    Presence {
        /// The contact.
        jid: String,
        /// Online now.
        available: bool,
        /// Last seen, Unix seconds, when shared.
        last_seen: Option<u64>,
        /// They hide their last-seen time.
        last_seen_hidden: bool,
    },
    /// Someone is typing, recording or stopped in a chat.
    ChatState {
        /// The chat (contact or group).
        chat: String,
        /// Who (the group participant in groups).
        sender: String,
        /// What they do.
        state: crate::social::ChatState,
    },
    /// A command ended.
    CommandDone {
        /// The id `command` returned.
        id: u64,
        /// Its outcome.
        result: CommandResult,
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
                status: m.is_status(),
                id: m.id,
                chat: m.chat.to_string(),
                sender: m.sender.to_string(),
                timestamp: m.timestamp,
                from_me: m.from_me,
                push_name: m.push_name,
                history: m.history,
                message: Box::new((*m.message).into()),
                wrappers: m
                    .wrappers
                    .iter()
                    .map(|wrapper| wrapper.field_name().to_owned())
                    .collect(),
                raw: m.raw,
                text: m.text,
                poll_vote: m.poll_vote.map(Into::into),
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
                kind: (&f.kind).into(),
                reason: f.reason,
            },
            E::IdentityChanged(change) => ClientEvent::IdentityChanged {
                address: change.address.to_string(),
                identity: change.identity.to_vec(),
                previous: change.previous.to_vec(),
                accepted: change.accepted,
            },
            E::RecordCorrupt { space, key, error } => ClientEvent::RecordCorrupt {
                space: space.as_str().to_owned(),
                key,
                error: error.code().to_owned(),
            },
            E::RetryRefused(refused) => ClientEvent::RetryRefused {
                id: refused.id,
                requester: refused.requester.to_string(),
                reason: match refused.reason {
                    client::RetryRefusal::NotARecipient => RetryRefusal::NotARecipient,
                    client::RetryRefusal::TooManyRetries => RetryRefusal::TooManyRetries,
                },
                refused_total: refused.refused_total,
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
            E::AppStateFatal { collection, error } => ClientEvent::AppStateFatal {
                collection: collection.into(),
                error: (&error).into(),
            },
            E::HistoryConversation(c) => ClientEvent::HistoryConversation {
                chat: c.chat.to_string(),
                name: c.name,
                unread_count: c.unread_count,
                timestamp: c.timestamp,
                archived: c.archived,
                pinned: c.pinned,
                mute_end_time: c.mute_end_time,
                ephemeral_expiration: c.ephemeral_expiration,
                pn: c.pn.map(|j| j.to_string()),
                lid: c.lid.map(|j| j.to_string()),
                sync_type: c.sync_type.as_str().to_owned(),
            },
            E::PushName(p) => ClientEvent::PushName {
                jid: p.jid.to_string(),
                name: p.name,
            },
            E::HistorySync(p) => ClientEvent::HistorySync {
                sync_type: p.sync_type.as_str().to_owned(),
                chunk_order: p.chunk_order,
                progress: p.progress,
                conversations: p.conversations,
                messages: p.messages,
                failure: p.failure.map(|f| f.code().to_owned()),
            },
            E::Group(n) => ClientEvent::Group {
                group: n.group,
                actor: n.actor,
                timestamp: n.timestamp,
                changes: n.changes.iter().map(Into::into).collect(),
            },
            E::Call(call) => ClientEvent::Call {
                call: (&*call).into(),
            },
            E::Presence(p) => ClientEvent::Presence {
                jid: p.jid.to_string(),
                available: p.available,
                last_seen: p.last_seen,
                last_seen_hidden: p.last_seen_hidden,
            },
            E::ChatState(s) => ClientEvent::ChatState {
                chat: s.chat.to_string(),
                sender: s.sender.to_string(),
                state: s.state.into(),
            },
            E::CommandDone { id, result } => ClientEvent::CommandDone {
                id: id.as_u64(),
                result: (&result).into(),
            },
        }
    }
}

/// An HTTPS request the core asks for (`Output::Fetch`): carry it out off the loop and answer
/// with `Client::handle_fetched`.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct FetchRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// The whole URL.
    pub url: String,
    /// Headers to send, in order.
    pub headers: Vec<Header>,
    /// The body to send, when there is one.
    pub body: Option<Vec<u8>>,
    /// A body the host holds, to stream as it is (an upload of a `SendMedia` with `host_body`).
    pub host_body: Option<crate::media::HostBody>,
    /// Decrypt a 2xx response into the host's sink and answer `FetchResult::Streamed` (a
    /// `DownloadMedia` with `sink`); `None`: read the body into memory.
    pub decrypt: Option<crate::media::DecryptInto>,
    /// Read at most this many bytes of the response body; a longer body is
    /// `FetchError::TooLarge`.
    pub max_response_bytes: u64,
    /// Give up after this long (`FetchError::TimedOut`).
    pub timeout_ms: u64,
}

impl std::fmt::Debug for FetchRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A query may carry a token: only the path is shown, no header values, no body.
        f.debug_struct("FetchRequest")
            .field("method", &self.method)
            .field("url", &self.url.split('?').next().unwrap_or_default())
            .field("body_len", &self.body.as_ref().map(Vec::len))
            .field("host_body", &self.host_body)
            .field("decrypt", &self.decrypt)
            .finish_non_exhaustive()
    }
}

/// One header of a request.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Header {
    /// The header's name.
    pub name: String,
    /// Its value.
    pub value: String,
}

impl From<client::FetchRequest> for FetchRequest {
    fn from(request: client::FetchRequest) -> FetchRequest {
        FetchRequest {
            method: request.method.as_str().to_owned(),
            url: request.url,
            headers: request
                .headers
                .into_iter()
                .map(|(name, value)| Header { name, value })
                .collect(),
            host_body: match request.body {
                client::Body::Host { id, length } => Some(crate::media::HostBody { id, length }),
                client::Body::Empty | client::Body::Bytes(_) => None,
            },
            body: match request.body {
                client::Body::Empty | client::Body::Host { .. } => None,
                client::Body::Bytes(bytes) => Some(bytes),
            },
            decrypt: match request.response {
                client::ResponseTarget::Memory => None,
                client::ResponseTarget::Decrypt(into) => Some(into.into()),
            },
            max_response_bytes: request.max_response_bytes,
            timeout_ms: request.timeout_ms,
        }
    }
}

/// Why a fetch got no response (a response with any status is not an error).
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum FetchError {
    /// The connection could not be made or broke.
    Network,
    /// The exchange took longer than the request's `timeout_ms`.
    TimedOut,
    /// The body is longer than the request's `max_response_bytes`.
    TooLarge,
    /// The host could not read the body it holds or write its sink.
    HostBody,
}

/// The answer to `Output::Fetch`.
#[derive(Clone, PartialEq, Eq, uniffi::Enum)]
pub enum FetchResult {
    /// The server answered (any status).
    Response {
        /// The HTTP status.
        status: u16,
        /// The body as read.
        body: Vec<u8>,
    },
    /// A 2xx response to a `decrypt` request, decrypted into the host's sink.
    Streamed {
        /// The HTTP status.
        status: u16,
        /// What the decryptor made of the body.
        body: crate::media::StreamedBody,
    },
    /// No response came.
    Failed {
        /// Why.
        error: FetchError,
    },
}

impl std::fmt::Debug for FetchResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchResult::Response { status, body } => {
                write!(f, "Response({status}, {} bytes)", body.len())
            }
            FetchResult::Streamed { status, body } => write!(f, "Streamed({status}, {body:?})"),
            FetchResult::Failed { error } => write!(f, "Failed({error:?})"),
        }
    }
}

impl From<FetchResult> for client::FetchResult {
    fn from(result: FetchResult) -> client::FetchResult {
        match result {
            FetchResult::Response { status, body } => Ok(client::FetchResponse::new(status, body)),
            FetchResult::Streamed { status, body } => Ok(client::FetchResponse {
                streamed: Some(body.into()),
                ..client::FetchResponse::new(status, Vec::new())
            }),
            FetchResult::Failed { error } => Err(match error {
                FetchError::Network => client::FetchError::Network,
                FetchError::TimedOut => client::FetchError::TimedOut,
                FetchError::TooLarge => client::FetchError::TooLarge,
                FetchError::HostBody => client::FetchError::HostBody,
            }),
        }
    }
}

/// What kind of failure a `DecryptFailed` event reports.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum DecryptFailureKind {
    /// The stanza could not be read.
    Malformed,
    /// The client could not take it now; the server delivers it again.
    NotReady,
    /// Signal did not decrypt it (a retry was requested).
    Undecryptable,
    /// The stanza carried more `<enc>` children than the client accepts; nothing decrypted.
    TooManyEncs {
        /// How many it carried.
        count: u32,
    },
    /// An `<enc>` repeated a message key of the same stanza; nothing changed.
    ReplayedEnc,
    /// More than one `<enc>` carried a message; nothing changed.
    SeveralMessages,
    /// The sender's identity key changed and waits for `Command::ApproveIdentity`.
    UntrustedIdentity,
}

impl From<&client::DecryptFailureKind> for DecryptFailureKind {
    fn from(kind: &client::DecryptFailureKind) -> DecryptFailureKind {
        use client::DecryptFailureKind as K;
        match kind {
            K::Malformed => DecryptFailureKind::Malformed,
            K::NotReady => DecryptFailureKind::NotReady,
            K::Undecryptable => DecryptFailureKind::Undecryptable,
            K::TooManyEncs { count } => DecryptFailureKind::TooManyEncs { count: *count },
            K::ReplayedEnc => DecryptFailureKind::ReplayedEnc,
            K::SeveralMessages => DecryptFailureKind::SeveralMessages,
            K::UntrustedIdentity => DecryptFailureKind::UntrustedIdentity,
        }
    }
}

/// Why a retry request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum RetryRefusal {
    /// The device was not a recipient of the message (not a member, for a group).
    NotARecipient,
    /// The device asked more often than the protocol's retry count allows.
    TooManyRetries,
}

/// One thing for the host to do, in order.
#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
pub enum Output {
    /// Open the socket ([`endpoints`]' `chat_url` with its `origin`), then call
    /// `handle_connected` (or `handle_closed` if it fails).
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
    /// Carry out this HTTPS request off the loop and hand what happened to `handle_fetched`
    /// with `id`, exactly once.
    Fetch {
        /// Names the answer.
        id: u64,
        /// The request.
        request: FetchRequest,
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
                id: id.as_u64(),
                keys: keys
                    .into_iter()
                    .map(|k| StoreKey {
                        space: k.space.as_str().to_owned(),
                        key: k.key,
                    })
                    .collect(),
            },
            client::Output::Fetch { id, request } => Output::Fetch {
                id: id.as_u64(),
                request: request.into(),
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
#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
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
    /// Send an encoded `wa.Message` (built with a copy of WhatsApp's schema, or
    /// `encode_message`); the client adds a message secret and the send time of add-ons.
    SendMessage {
        /// The recipient's JID (user, LID or group).
        to: String,
        /// The encoded message.
        message: Vec<u8>,
    },
    /// Send any content (text, reply, reaction, edit, revoke, media, location, contact, poll);
    /// like `SendMessage`. A status post goes with `SendStatus`.
    SendContent {
        /// The recipient's JID (user, LID or group).
        to: String,
        /// The content.
        message: Box<WaMessage>,
    },
    /// Post a status (`status@broadcast`) that `recipients` (user or LID JIDs) may see; ends
    /// with `MessageSent`. A text post is an `extendedTextMessage` (with `background_argb` and
    /// `font` if wanted).
    SendStatus {
        /// Who may see the post.
        recipients: Vec<String>,
        /// The content.
        message: Box<WaMessage>,
    },
    /// Vote in a poll this device sent or received; ends with `MessageSent`. An empty
    /// `options` withdraws the vote.
    SendPollVote {
        /// The poll's chat.
        chat: String,
        /// The poll's message id.
        poll_id: String,
        /// The names of the options chosen.
        options: Vec<String>,
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
    /// Read the identity keys kept for a device; ends with `CommandOutput::Identity`.
    GetIdentity {
        /// The device JID.
        address: String,
    },
    /// Trust the new identity key of a device that waits for approval
    /// (`IdentityPolicy::Strict`); the messages refused meanwhile are asked for again.
    ApproveIdentity {
        /// The device JID.
        address: String,
        /// The 32-byte key `ClientEvent::IdentityChanged` named.
        identity: Vec<u8>,
    },
    /// Group administration; ends with `CommandOutput::Group` or `Done`, or a typed error.
    Group {
        /// The request.
        command: crate::groups::GroupCommand,
    },
    /// Upload a media file and send it to a user or group; ends at the ack with
    /// `CommandOutput::MessageSent`.
    SendMedia {
        /// The recipient's JID.
        to: String,
        /// The kind of message.
        kind: MediaKind,
        /// The file.
        data: Vec<u8>,
        /// Its MIME type.
        mimetype: String,
        /// A caption (image, video, GIF, document).
        caption: Option<String>,
        /// The file name (document).
        file_name: Option<String>,
        /// Width in pixels.
        width: Option<u32>,
        /// Height in pixels.
        height: Option<u32>,
        /// Duration in seconds.
        seconds: Option<u32>,
        /// A small inline JPEG.
        thumbnail: Option<Vec<u8>>,
        /// The file encrypted and held by the host instead of `data` (which is then empty).
        host_body: Option<crate::media::HostUpload>,
    },
    /// Download and decrypt the media of a received message (its event's fields); ends with
    /// `CommandOutput::MediaDownloaded`, or with `MediaSaved` when `sink` names a host sink
    /// (the body then comes as a fetch with `decrypt`).
    DownloadMedia {
        /// The message id.
        id: String,
        /// The chat.
        chat: String,
        /// The sending device.
        sender: String,
        /// The encoded `wa.Message`.
        message: Vec<u8>,
        /// The host's sink to decrypt into, instead of memory.
        sink: Option<u64>,
    },
    /// Asks the phone for `count` messages of `chat` older than the oldest the host has (its
    /// id, whether we sent it, its time in Unix seconds). Ends with `MessageSent` once sent;
    /// the messages arrive as an `on_demand` history chunk, if the phone answers.
    RequestHistory {
        /// The chat.
        chat: String,
        /// The id of the oldest message the host has.
        oldest_id: String,
        /// Whether this account sent it.
        oldest_from_me: bool,
        /// Its time, Unix seconds.
        oldest_timestamp: u64,
        /// How many older messages to ask for.
        count: u32,
    },
    /// Reject an incoming call (`ClientEvent::Call`'s `call_id` and `caller`).
    RejectCall {
        /// The call id.
        call_id: String,
        /// The caller.
        caller: String,
    },
    /// Set our presence; needs a push name. Renewed after reconnects.
    SetPresence {
        /// Online or not.
        available: bool,
    },
    /// Subscribe to a contact's presence (`ClientEvent::Presence` follows). Renewed after
    /// reconnects.
    SubscribePresence {
        /// The contact's JID.
        jid: String,
    },
    /// Stop a presence subscription (no longer renewed).
    UnsubscribePresence {
        /// The contact's JID.
        jid: String,
    },
    /// Show typing, recording or paused in a chat.
    SendChatState {
        /// The chat JID.
        to: String,
        /// What to show.
        state: crate::social::ChatState,
    },
    /// Which numbers are on WhatsApp: ends with `CommandOutput::Numbers`.
    CheckNumbers {
        /// International numbers.
        phones: Vec<String>,
    },
    /// A profile picture's URL: ends with `CommandOutput::ProfilePicture`.
    GetProfilePicture {
        /// The user or group JID.
        jid: String,
        /// The thumbnail (`true`) or the full picture.
        preview: bool,
    },
    /// A user's about text: ends with `CommandOutput::About`.
    GetAbout {
        /// The user JID.
        jid: String,
    },
    /// A business profile: ends with `CommandOutput::BusinessProfile`.
    GetBusinessProfile {
        /// The user JID.
        jid: String,
    },
    /// Block or unblock a user.
    SetBlocked {
        /// The user JID.
        jid: String,
        /// Block or unblock.
        blocked: bool,
    },
    /// The blocked users: ends with `CommandOutput::BlockList`.
    GetBlockList,
}

/// The kinds of media message walink sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum MediaKind {
    /// A photo.
    Image,
    /// A video.
    Video,
    /// A looping GIF (a video).
    Gif,
    /// An audio file.
    Audio,
    /// A voice note.
    VoiceNote,
    /// A document.
    Document,
    /// A sticker.
    Sticker,
    /// A round video note.
    VideoNote,
}

impl From<MediaKind> for client::MediaKind {
    fn from(kind: MediaKind) -> client::MediaKind {
        match kind {
            MediaKind::Image => client::MediaKind::Image,
            MediaKind::Video => client::MediaKind::Video,
            MediaKind::Gif => client::MediaKind::Gif,
            MediaKind::Audio => client::MediaKind::Audio,
            MediaKind::VoiceNote => client::MediaKind::VoiceNote,
            MediaKind::Document => client::MediaKind::Document,
            MediaKind::Sticker => client::MediaKind::Sticker,
            MediaKind::VideoNote => client::MediaKind::VideoNote,
        }
    }
}

impl From<Command> for client::Command {
    fn from(command: Command) -> client::Command {
        match command {
            Command::PairWithCode { phone } => client::Command::PairWithCode { phone },
            Command::SendText { to, text } => client::Command::SendText { to, text },
            Command::SendMessage { to, message } => client::Command::SendMessage { to, message },
            Command::SendContent { to, message } => client::Command::SendMessage {
                to,
                message: prost::Message::encode_to_vec(&walink_core::proto::wa::Message::from(
                    *message,
                )),
            },
            Command::SendStatus {
                recipients,
                message,
            } => client::Command::SendStatus {
                recipients,
                message: prost::Message::encode_to_vec(&walink_core::proto::wa::Message::from(
                    *message,
                )),
            },
            Command::SendPollVote {
                chat,
                poll_id,
                options,
            } => client::Command::SendPollVote {
                chat,
                poll_id,
                options,
            },
            Command::MarkRead { chat, sender, ids } => {
                client::Command::MarkRead { chat, sender, ids }
            }
            Command::Connect => client::Command::Connect,
            Command::Disconnect => client::Command::Disconnect,
            Command::Logout => client::Command::Logout,
            Command::AppState { action } => client::Command::AppState(action.into()),
            Command::GetChatSettings { chat } => client::Command::GetChatSettings { chat },
            Command::GetIdentity { address } => client::Command::GetIdentity { address },
            Command::ApproveIdentity { address, identity } => {
                client::Command::ApproveIdentity { address, identity }
            }
            Command::Group { command } => client::Command::Group(command.into()),
            Command::SendMedia {
                to,
                kind,
                data,
                mimetype,
                caption,
                file_name,
                width,
                height,
                seconds,
                thumbnail,
                host_body,
            } => client::Command::SendMedia {
                to,
                kind: kind.into(),
                media: client::OutgoingMedia {
                    data,
                    host_body: host_body.and_then(crate::media::host_upload),
                    mimetype,
                    caption,
                    file_name,
                    width,
                    height,
                    seconds,
                    thumbnail,
                },
            },
            Command::RejectCall { call_id, caller } => {
                client::Command::RejectCall { call_id, caller }
            }
            Command::SetPresence { available } => client::Command::SetPresence { available },
            Command::SubscribePresence { jid } => client::Command::SubscribePresence { jid },
            Command::UnsubscribePresence { jid } => client::Command::UnsubscribePresence { jid },
            Command::SendChatState { to, state } => client::Command::SendChatState {
                to,
                state: state.into(),
            },
            Command::CheckNumbers { phones } => client::Command::CheckNumbers { phones },
            Command::GetProfilePicture { jid, preview } => {
                client::Command::GetProfilePicture { jid, preview }
            }
            Command::GetAbout { jid } => client::Command::GetAbout { jid },
            Command::GetBusinessProfile { jid } => client::Command::GetBusinessProfile { jid },
            Command::SetBlocked { jid, blocked } => client::Command::SetBlocked { jid, blocked },
            Command::GetBlockList => client::Command::GetBlockList,
            Command::DownloadMedia {
                id,
                chat,
                sender,
                message,
                sink,
            } => client::Command::DownloadMedia {
                id,
                chat,
                sender,
                message,
                sink,
            },
            Command::RequestHistory {
                chat,
                oldest_id,
                oldest_from_me,
                oldest_timestamp,
                count,
            } => client::Command::RequestHistory {
                chat,
                oldest_id,
                oldest_from_me,
                oldest_timestamp,
                count,
            },
        }
    }
}

/// One linked device as a sans-IO state machine. Drive it with the loop of the package's
/// driver: after each `handle_*` or `command`, drain `poll_output` to `None`, carry each out in
/// order (awaiting `Persist` and answering `Load` before the next; a `Fetch` off the loop), then
/// re-arm one timer from `poll_timeout`.
///
/// Every method fails with `WalinkError::Panicked` if walink panics (a bug), and so does every
/// later call: the client is then dropped and rebuilt from its store, as after a crash.
#[derive(uniffi::Object)]
pub struct Client {
    inner: Guarded<client::Client>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Client")
    }
}

fn records_from_ffi(records: Vec<StoreRecord>) -> Result<Vec<store::Record>, WalinkError> {
    records.into_iter().map(record_from_ffi).collect()
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
        crate::error::guard(|| {
            let config = ConfigOptions::from(config).build()?;
            let inner = client::Client::new(config, records_from_ffi(records)?)?;
            Ok(Arc::new(Client {
                inner: Guarded::new(inner),
            }))
        })
    }

    /// The socket opened.
    pub fn handle_connected(&self, now: u64) -> Result<(), WalinkError> {
        self.inner.with(|c| {
            c.handle_connected(now);
            Ok(())
        })
    }

    /// Bytes arrived on the socket (any chunking).
    pub fn handle_bytes(&self, now: u64, bytes: Vec<u8>) -> Result<(), WalinkError> {
        self.inner.with(|c| {
            c.handle_bytes(now, &bytes);
            Ok(())
        })
    }

    /// The socket closed or failed (`Network`), or the host closed it (`Local`); any reason
    /// but `Protocol` is passed on as named (`Protocol` is `InvalidInput`).
    pub fn handle_closed(&self, now: u64, reason: CloseReason) -> Result<(), WalinkError> {
        let reason = client::CloseReason::try_from(reason)?;
        self.inner.with(|c| {
            c.handle_closed(now, reason);
            Ok(())
        })
    }

    /// The timer armed from `poll_timeout` fired (late or spurious calls are harmless).
    pub fn handle_timeout(&self, now: u64) -> Result<(), WalinkError> {
        self.inner.with(|c| {
            c.handle_timeout(now);
            Ok(())
        })
    }

    /// The records a `Load` output asked for (those that exist). Fails with `InvalidInput`
    /// for an unknown space (nothing is handed to the client then).
    pub fn handle_loaded(
        &self,
        now: u64,
        id: u64,
        records: Vec<StoreRecord>,
    ) -> Result<(), WalinkError> {
        let records = records_from_ffi(records)?;
        self.inner.with(|c| {
            c.handle_loaded(now, LoadId::from_u64(id), records);
            Ok(())
        })
    }

    /// What happened to the request of a `Fetch` output: the response (any status) or why
    /// none came.
    pub fn handle_fetched(
        &self,
        now: u64,
        id: u64,
        result: FetchResult,
    ) -> Result<(), WalinkError> {
        self.inner.with(|c| {
            c.handle_fetched(now, FetchId::from_u64(id), result.into());
            Ok(())
        })
    }

    /// Starts a command; returns its id, which its `CommandDone` event names.
    pub fn command(&self, now: u64, command: Command) -> Result<u64, WalinkError> {
        let command = command.into();
        self.inner.with(|c| Ok(c.command(now, command).as_u64()))
    }

    /// The next output, or `None` when there is nothing to do.
    pub fn poll_output(&self) -> Result<Option<Output>, WalinkError> {
        self.inner.with(|c| Ok(c.poll_output().map(Output::from)))
    }

    /// When `handle_timeout` is next needed (Unix ms), or `None`.
    pub fn poll_timeout(&self) -> Result<Option<u64>, WalinkError> {
        self.inner.with(|c| Ok(c.poll_timeout()))
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
        std::iter::from_fn(|| client.poll_output().expect("not panicked")).collect()
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
            Err(WalinkError::InvalidInput { code, .. }) if code == "invalid_config"
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
                Err(WalinkError::InvalidInput { code, reason })
                    if code == "invalid_config" && reason.contains("trust_root")
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
        let id = client
            .command(
                1_760_000_000_000,
                Command::PairWithCode { phone: "12".into() },
            )
            .expect("not panicked");
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
                error: CommandError::InvalidPhoneNumber,
                code: "invalid_phone_number".into(),
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
    fn get_chat_settings_ends_with_the_settings() {
        let client = Client::new(seeded(), Vec::new()).expect("a fresh client");
        drain(&client);
        let id = client
            .command(
                1_760_000_000_000,
                Command::GetChatSettings {
                    chat: "123@s.whatsapp.net".into(),
                },
            )
            .expect("not panicked");
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
            other => panic!("not the settings: {other:?}"),
        }
    }

    #[test]
    fn a_host_close_reason_is_passed_on_as_named() {
        let client = Client::new(seeded(), Vec::new()).expect("a fresh client");
        drain(&client);
        client.handle_connected(1_000).expect("not panicked");
        drain(&client);
        assert!(matches!(
            client.handle_closed(1_001, CloseReason::Protocol { message: "x".into() }),
            Err(WalinkError::InvalidInput { ref code, .. }) if code == "invalid_close_reason"
        ));
        client
            .handle_closed(1_002, CloseReason::KeepaliveTimeout)
            .expect("a reason the host may report");
        let reasons: Vec<StateReason> = drain(&client)
            .into_iter()
            .filter_map(|o| match o {
                Output::Event {
                    event: ClientEvent::State { reason, .. },
                } => Some(reason),
                _ => None,
            })
            .collect();
        // Not rewritten to Network: a dead keepalive reconnects at once.
        assert_eq!(
            reasons.first(),
            Some(&StateReason::Closed {
                reason: CloseReason::KeepaliveTimeout
            }),
            "{reasons:?}"
        );
        for reason in [
            CloseReason::Network,
            CloseReason::Local,
            CloseReason::StreamError {
                code: Some(515),
                conflict: None,
            },
            CloseReason::Failure { reason: 503 },
            CloseReason::ServerClosed,
            CloseReason::ConnectTimeout,
            CloseReason::QrRefsExhausted,
            CloseReason::LoggedOut,
        ] {
            let core = client::CloseReason::try_from(reason.clone()).expect("convertible");
            assert_eq!(CloseReason::from(&core), reason);
        }
    }

    #[test]
    fn pairing_code_failed_is_its_own_reason() {
        assert_eq!(
            StateReason::from(&client::StateReason::PairingCodeFailed),
            StateReason::PairingCodeFailed
        );
    }

    #[test]
    fn fetches_cross_both_ways() {
        let request = FetchRequest::from(client::FetchRequest {
            method: client::Method::Post,
            url: "https://mmg.whatsapp.net/v/x?auth=secret".into(),
            headers: vec![("Origin".into(), "https://web.whatsapp.com".into())],
            body: client::Body::Bytes(vec![1, 2]),
            response: client::ResponseTarget::Memory,
            max_response_bytes: 10,
            timeout_ms: 20,
        });
        assert_eq!(request.method, "POST");
        assert_eq!(request.body, Some(vec![1, 2]));
        assert_eq!(request.headers[0].name, "Origin");
        assert!(!format!("{request:?}").contains("secret"));
        let ok: client::FetchResult = FetchResult::Response {
            status: 404,
            body: vec![7],
        }
        .into();
        assert_eq!(ok, Ok(client::FetchResponse::new(404, vec![7])));
        for (ffi, core) in [
            (FetchError::Network, client::FetchError::Network),
            (FetchError::TimedOut, client::FetchError::TimedOut),
            (FetchError::TooLarge, client::FetchError::TooLarge),
            (FetchError::HostBody, client::FetchError::HostBody),
        ] {
            let answer: client::FetchResult = FetchResult::Failed { error: ffi }.into();
            assert_eq!(answer, Err(core));
        }
        // An answer to a fetch nobody asked for is ignored.
        let client = Client::new(seeded(), Vec::new()).expect("a fresh client");
        drain(&client);
        client
            .handle_fetched(
                1,
                99,
                FetchResult::Failed {
                    error: FetchError::Network,
                },
            )
            .expect("ignored");
    }

    #[test]
    fn every_config_option_is_taken_and_checked_by_the_core() {
        let config = ClientConfig {
            record_cache_limit: Some(3),
            backoff_jitter_permille: Some(2000),
            ..seeded()
        };
        assert!(matches!(
            Client::new(config, Vec::new()),
            Err(WalinkError::InvalidInput { ref code, ref reason })
                if code == "invalid_config" && reason.contains("backoff_jitter_permille")
        ));
        let endpoints = endpoints();
        assert_eq!(endpoints.chat_url, "wss://web.whatsapp.com/ws/chat");
        assert_eq!(endpoints.origin, "https://web.whatsapp.com");
    }
}
