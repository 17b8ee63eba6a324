//! What the client tells the application: events, lifecycle states and their reasons.

use crate::binary::Jid;

use super::Timestamp;
use super::command::{CommandError, CommandId, CommandOutput};
use super::messaging::{DecryptFailure, IdentityChange, IncomingMessage, Receipt, RefusedRetry};
use super::output::CloseReason;

/// How an unpaired client is waiting to be linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PairingMode {
    /// Showing QR codes.
    Qr,
    /// A pairing code was requested (QR codes keep rotating on the same connection).
    Code,
}

/// The lifecycle of one client (see `docs/client.md` for the diagram). No state is a dead end:
/// `Disconnected`, `LoggedOut`, `Replaced` and `ClientOutdated` rest until a command moves on,
/// and drivers keep the client through them (the crate docs' driver contract).
#[cfg_attr(not(feature = "exhaustive"), non_exhaustive)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// No connection and none wanted (a new client before its first poll, or after
    /// `Command::Disconnect`).
    Disconnected,
    /// `Output::Connect` was issued; waiting for `handle_connected`.
    Connecting,
    /// The socket is open; the Noise handshake and the login payload are under way.
    Handshaking,
    /// Unpaired and connected: waiting for the phone to scan a QR code or enter a code.
    AwaitingPairing {
        /// QR codes, or a pairing code.
        mode: PairingMode,
    },
    /// The server accepted the login (`<success>`); the post-login round trip is under way.
    LoggingIn,
    /// Logged in and the post-login round trip succeeded: messages flow.
    Connected,
    /// The connection was lost; a new one starts at `at`.
    Reconnecting {
        /// Consecutive failed attempts so far (1 for the first retry).
        attempt: u32,
        /// When the next attempt starts.
        at: Timestamp,
    },
    /// The device was unlinked (or logged out); its records were deleted. `Command::Connect`
    /// starts over with a new device.
    LoggedOut,
    /// Another connection with the same device took over. `Command::Connect` reconnects.
    Replaced,
    /// The server refused this client version (405). `Command::Connect` retries, typically
    /// after the host updated `profile.version`.
    ClientOutdated,
}

/// Why the lifecycle moved to a state.
#[cfg_attr(not(feature = "exhaustive"), non_exhaustive)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateReason {
    /// The client was created and starts its first connection.
    Started,
    /// `Command::Connect` asked for a connection.
    ConnectRequested,
    /// The backoff delay elapsed.
    BackoffElapsed,
    /// The server asked for a restart (515, after pairing): reconnect at once.
    RestartRequired,
    /// The host reported the socket open.
    SocketOpened,
    /// The handshake finished and the server offered QR refs (`pair-device`).
    PairingOffered,
    /// A pairing code was requested.
    PairingCodeRequested,
    /// The server refused the pairing code request; QR codes remain.
    PairingCodeFailed,
    /// The server accepted the login (`<success>`).
    LoginAccepted,
    /// The post-login round trip (prekeys, `<active/>`) succeeded.
    PostLoginDone,
    /// The connection ended for this reason.
    Closed(CloseReason),
    /// `Command::Disconnect`.
    DisconnectRequested,
    /// `Command::Logout`.
    LogoutRequested,
}

/// `<ib><offline_preview …/></ib>`: the server is about to deliver a backlog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OfflinePreview {
    /// Total stanzas announced.
    pub count: u32,
    /// Messages among them.
    pub messages: u32,
    /// Notifications among them.
    pub notifications: u32,
    /// Receipts among them.
    pub receipts: u32,
    /// App-data stanzas among them.
    pub app_data: u32,
}

/// Something for the application. (`PartialEq` only: a message's content holds floating-point
/// fields.)
#[cfg_attr(not(feature = "exhaustive"), non_exhaustive)]
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The lifecycle moved (emitted for every transition).
    State {
        /// The new state.
        state: State,
        /// Why.
        reason: StateReason,
    },
    /// Show this QR code until `expires_at` (the five-field string, built now from the
    /// current adv secret).
    Qr {
        /// The QR content.
        payload: String,
        /// When the next QR (or [`Event::QrRefsExhausted`]) is due.
        expires_at: Timestamp,
    },
    /// The server's QR refs ran out. The socket stays open while a pairing code is
    /// outstanding; otherwise the client closes and reconnects to get new refs.
    QrRefsExhausted,
    /// A pairing code the server accepted, `XXXXXXXX` (also in the `CommandDone` of
    /// `PairWithCode`, and again after a server `refresh_code`).
    PairingCode {
        /// The eight characters to type on the phone.
        code: String,
    },
    /// The phone linked this device; a restart and the first login follow.
    Paired {
        /// Own phone-number device JID.
        jid: Jid,
        /// Own LID device JID.
        lid: Option<Jid>,
        /// The primary's platform (`android`, `smbi`, ...).
        platform: String,
        /// The business name, for business accounts.
        business_name: Option<String>,
    },
    /// The server announced an offline backlog.
    OfflinePreview(OfflinePreview),
    /// The offline backlog was delivered completely (`<ib><offline count/></ib>`).
    OfflineSyncDone {
        /// The stanza count the server gave.
        count: u32,
    },
    /// A message was received and decrypted.
    Message(Box<IncomingMessage>),
    /// A delivery, read or played receipt.
    Receipt(Receipt),
    /// A message could not be decrypted (a retry was requested); never a silent drop.
    DecryptFailed(DecryptFailure),
    /// A contact device presented a new identity key: trusted now
    /// (`IdentityPolicy::AcceptAndNotify`) or waiting for `Command::ApproveIdentity`
    /// (`IdentityPolicy::Strict`). Carries public keys only.
    IdentityChanged(IdentityChange),
    /// A stored record loaded on demand (or handed to `Client::new`) could not be read: it is
    /// treated as absent (a session is started again, an identity learned again) and
    /// overwritten by the next write to its key. Names the record, never its content.
    RecordCorrupt {
        /// The record's space.
        space: crate::store::Space,
        /// The record's key (an address or a group and sender, no secret).
        key: String,
        /// Why it could not be read.
        error: crate::signal::RecordError,
    },
    /// A retry request for one of our messages was refused (its device was not a recipient,
    /// or asked too often): reported once per message and device.
    RetryRefused(RefusedRetry),
    /// An app-state setting changed (from another device, a snapshot, or this device's own
    /// command once the server accepted it).
    AppStateChanged {
        /// The collection that carried it.
        collection: crate::appstate::Collection,
        /// What changed.
        change: crate::appstate::SettingChange,
    },
    /// The full settings of a chat after a change (one per chat per applied batch).
    ChatSettings {
        /// The chat JID.
        chat: String,
        /// Its settings now.
        settings: crate::appstate::ChatSettings,
    },
    /// A collection waits for app-state sync keys this device lacks; it is fetched again when
    /// a key share brings them.
    AppStateWaitingForKeys {
        /// The collection.
        collection: crate::appstate::Collection,
        /// The missing key ids.
        key_ids: Vec<Vec<u8>>,
    },
    /// A collection could not be synced even from a snapshot; its last good state is kept.
    AppStateFatal {
        /// The collection.
        collection: crate::appstate::Collection,
        /// Why.
        error: super::app_sync::AppStateFailure,
    },
    /// A conversation of the phone's history (its messages follow as `Message` events with
    /// `history` set).
    HistoryConversation(Box<super::history::HistoryConversation>),
    /// A contact's push name, from the phone's history or (once per change) from the
    /// stanzas they send.
    PushName(super::history::PushName),
    /// A history chunk was read (or failed): its type, order and the phone's progress.
    HistorySync(super::history::HistorySyncProgress),
    /// A group changed (`w:gp2` notification), after the client applied it.
    Group(super::groups::GroupNotification),
    /// A call: offered to us, ringing, accepted or rejected elsewhere, ended or missed.
    Call(Box<super::social::CallEvent>),
    /// A contact's presence (after `Command::SubscribePresence`).
    Presence(super::social::PresenceUpdate),
    /// Someone is typing, recording or stopped, in a chat with us or a group.
    ChatState(super::social::ChatStateUpdate),
    /// A command ended.
    CommandDone {
        /// The command's id.
        id: CommandId,
        /// Its outcome.
        result: Result<CommandOutput, CommandError>,
    },
}
