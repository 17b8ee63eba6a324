//! The simulated WhatsApp server: connections, the Noise responder, the ClientPayload, pairing,
//! login and the stanzas a logged-in device exchanges with the server.
//!
//! # API (the mock-server binary and the World harness drive exactly this)
//!
//! ```text
//! Server::new(config)                       one server, seeded
//! connect(now) -> ConnId                    a client opened a socket
//! handle_bytes(now, conn, &[u8])            bytes arrived, in chunks of any size
//! handle_closed(now, conn)                  the client's socket closed
//! handle_timeout(now)                       the timer from poll_timeout fired
//! poll_output() -> Option<ServerOutput>     Transmit { conn, bytes } | Close { conn, reason }
//! poll_timeout() -> Option<Timestamp>       when to call handle_timeout next
//! ```
//!
//! After any call, drain `poll_output` to `None` and re-arm the timer from `poll_timeout`, as
//! with walink's client. Phone and fault controls (`phone_scan_qr`, `phone_enter_code`,
//! `send_stream_error`, `remove_device`, `restart`, ...) follow the same rule.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use prost::Message as _;
use sha2::{Digest, Sha256};
use walink_core::binary::{
    Content, DEFAULT_USER_SERVER, GROUP_SERVER, HIDDEN_USER_SERVER, Jid, Node,
};
use walink_core::frame::{self, FrameDecoder};
use walink_core::noise::TransportCipher;
use walink_core::proto::wa::{ClientPayload, DeviceProps};

use super::Timestamp;
use super::account::{Account, Device, KeyIndexListFault, SignedPreKey};
use super::phone::{
    HistoryRequest, IssuedIdentity, Phone, PhoneError, PhoneMessage, QrScan,
    client_type_of_platform,
};
use super::rng::SimRng;
use super::stanza::{be_u32, bytes_node, child_array, child_bytes, id3, iq_error, iq_result};
use crate::noise_server::{Responder, ServerIdentity};
pub use account_iq::MAX_UNIMPLEMENTED_KINDS;
pub use app_state::{EXTERNAL_MUTATIONS_ABOVE, MAX_PATCHES_PER_ANSWER, SNAPSHOT_EVERY};
pub use attacks::{ForgedRetry, Held, Hostility};
pub use group_admin::{GroupRules, SimParticipantResult};
pub use social::{
    ChatStateSeen, MAX_BLOCKED, MAX_PRESENCE_SUBSCRIPTIONS, MAX_SOCIAL_LOG, MAX_USYNC_CONTACTS,
    RejectedCall,
};
pub use wire::{DELIVERED_KEPT, KeyUse, MAX_KEY_USES, ROUTED_IDS_PER_DEVICE, participant_hash};

// Connection and login (the driving API, the handshake, the ClientPayload, pairing).
mod connection;
mod login;
mod pairing;
// Phone and fault controls (the tests' hands).
mod faults;
mod phone_controls;
// Routing: delivery, fan-out and the offline queue.
mod delivery;
// What a logged-in device asks of the server.
mod account_iq;
#[path = "../app_state.rs"]
mod app_state;
mod attacks;
mod device;
mod device_lists;
mod group_admin;
mod group_requests;
mod groups;
mod keys;
mod media;
mod phone_ops;
mod social;
mod wire;

use connection::{DeviceSession, LinkCode, PendingPair, Registration, Stage};
use keys::{bundle_from_node, bundle_of, parse_signed_prekey, published_keys, signed_prekey_node};

pub use media::{
    HISTORY_BOOTSTRAP_MESSAGES, HISTORY_CHUNK_MESSAGES, HISTORY_MAX_CONVERSATIONS,
    HISTORY_RECENT_MESSAGES, HistoryAsk, HistoryBlob, MAX_BLOB_BYTES, MAX_BLOBS, MAX_MEDIA_AUTHS,
    MAX_STORE_BYTES, MEDIA_AUTH_TTL_S, MEDIA_CONN_TTL_S, MEDIA_HOSTS, MEDIA_KINDS,
    PHONE_MEDIA_KEPT, PHONE_SENT_KEPT, PhoneMedia,
};

/// Refs in one `pair-device` IQ.
pub const PAIR_REFS: usize = 6;
/// Lifetime of the first ref (transport notes §4.3).
pub const FIRST_REF_MS: u64 = 60_000;
/// Lifetime of each later ref.
pub const NEXT_REF_MS: u64 = 20_000;
/// A connection that has not finished the handshake by then is closed.
pub const HANDSHAKE_TIMEOUT_MS: u64 = 20_000;
/// A logged-in connection that sends nothing for this long is closed (clients ping every
/// 15-30 s).
pub const IDLE_TIMEOUT_MS: u64 = 120_000;
/// Largest frame the server accepts from a client.
pub const MAX_CLIENT_FRAME: usize = 4 << 20;
/// Below this many one-time prekeys the server asks a device to upload more
/// (`<notification type="encrypt"><count/></notification>`, transport notes §6.2).
pub const PREKEYS_LOW: usize = 5;
/// After the `515` that ends a pairing stream the server waits this long for the client to
/// close the socket, then closes it itself.
pub const STREAM_END_CLOSE_MS: u64 = 20_000;
/// Stanzas kept per device, queued or delivered and not acknowledged (each list); older ones
/// are dropped beyond it.
pub const MAX_OFFLINE_QUEUE: usize = 10_000;

/// One client connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// A stream error the server can be told to send (transport notes §6.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamErrorKind {
    /// `code="515"`: restart required (sent after pairing).
    RestartRequired,
    /// `code="401"` with `<conflict type="device_removed"/>`: the companion was unlinked.
    DeviceRemoved,
    /// `<conflict type="replaced"/>` (Baileys calls it 440): another connection took over.
    Replaced,
    /// `code="401"` without a child: unauthorized.
    Unauthorized,
    /// `code="429"`: rate limited.
    RateLimited,
    /// A `5xx` code: the server is unwell (503 when restarting).
    ServerError(u16),
    /// `<conflict type="…"/>` of any other type, without a code (an attacker's choice: only
    /// `device_removed` means the device is gone).
    Conflict(&'static str),
}

impl StreamErrorKind {
    fn node(self) -> Node {
        let error = Node::new("stream:error");
        match self {
            StreamErrorKind::RestartRequired => error.attr("code", "515"),
            StreamErrorKind::DeviceRemoved => error
                .attr("code", "401")
                .children_from([Node::new("conflict").attr("type", "device_removed")]),
            StreamErrorKind::Replaced => {
                error.children_from([Node::new("conflict").attr("type", "replaced")])
            }
            StreamErrorKind::Unauthorized => error.attr("code", "401"),
            StreamErrorKind::RateLimited => error.attr("code", "429"),
            StreamErrorKind::ServerError(code) => error.attr("code", code.to_string()),
            StreamErrorKind::Conflict(kind) => {
                error.children_from([Node::new("conflict").attr("type", kind)])
            }
        }
    }
}

/// Why the server closed a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// After sending this stream error.
    StreamError(StreamErrorKind),
    /// After sending `<failure reason>`.
    Failure(u16),
    /// The client broke the protocol: bad framing, handshake or ciphertext.
    Protocol(String),
    /// The handshake or the connection idled past its deadline.
    Timeout,
    /// The server restarted (no bytes are sent).
    Restart,
}

/// What the host must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerOutput {
    /// Write these bytes (whole frames) to the connection, in order.
    Transmit {
        /// The connection.
        conn: ConnId,
        /// The framed, encrypted bytes.
        bytes: Vec<u8>,
    },
    /// Close the connection after the bytes before.
    Close {
        /// The connection.
        conn: ConnId,
        /// Why.
        reason: CloseReason,
    },
}

/// Something that happened, for tests to assert on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerEvent {
    /// A handshake completed with a registration payload; pair-device was sent.
    PairDeviceSent {
        /// The connection.
        conn: ConnId,
        /// The refs sent.
        refs: Vec<String>,
    },
    /// A new companion finished pairing.
    Paired {
        /// The connection.
        conn: ConnId,
        /// The account.
        user: String,
        /// The new device id.
        device: u16,
    },
    /// The companion answered pair-success with an error.
    PairRejectedByCompanion {
        /// The connection.
        conn: ConnId,
        /// The error code.
        code: u16,
        /// The error text.
        text: String,
    },
    /// The companion's pair-device-sign did not verify.
    BadDeviceSignature {
        /// The connection.
        conn: ConnId,
    },
    /// The phone could not open the link-code key bundle (wrong code typed).
    LinkCodeBundleRejected {
        /// The connection.
        conn: ConnId,
        /// Why.
        error: PhoneError,
    },
    /// A device logged in.
    LoggedIn {
        /// The connection.
        conn: ConnId,
        /// The account.
        user: String,
        /// The device id.
        device: u16,
        /// The edge-routing blob the client sent in its pre-intro, if any.
        routing_info: Option<Vec<u8>>,
    },
    /// A login was refused with `<failure>`.
    LoginRefused {
        /// The connection.
        conn: ConnId,
        /// The failure reason.
        reason: u16,
    },
    /// A connection ended.
    Closed {
        /// The connection.
        conn: ConnId,
    },
    /// A device logged in while it had a live connection: the old one got `replaced`.
    Replaced {
        /// The connection that was replaced (and closed).
        old: ConnId,
        /// The connection whose login replaced it.
        by: ConnId,
        /// The account.
        user: String,
        /// The device id.
        device: u16,
    },
}

/// Why a phone or fault control could not be carried out (the test's mistake, never the
/// client's: a client's mistake is answered on the wire).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// No account with that phone number.
    #[error("no account {0}")]
    UnknownAccount(String),
    /// No call with that id is ringing.
    #[error("no call {0}")]
    UnknownCall(String),
    /// An account with that phone number exists already.
    #[error("account {0} exists")]
    AccountExists(String),
    /// No such connection, or it is closed.
    #[error("no open connection {0}")]
    UnknownConnection(ConnId),
    /// A raw frame body larger than a frame can carry.
    #[error("a frame body of {0} bytes does not fit a frame")]
    FrameTooLarge(usize),
    /// The phone refused the QR or code.
    #[error("phone: {0}")]
    Phone(#[from] PhoneError),
    /// No unpaired connection sent this ref.
    #[error("no unpaired connection has ref {0}")]
    UnknownRef(String),
    /// The ref's time is over.
    #[error("ref expired")]
    RefExpired,
    /// The QR's keys are not the ones the connection registered.
    #[error("QR keys do not match the registration")]
    KeyMismatch,
    /// The QR's client type is not the one the registered platform shows.
    #[error("QR client type {found} does not match the platform's {expected}")]
    ClientTypeMismatch {
        /// What the platform shows.
        expected: char,
        /// What the QR says.
        found: char,
    },
    /// No companion asked for a code for this number on an open connection.
    #[error("no pairing code requested for {0}")]
    NoCodeRequested(String),
    /// No such device.
    #[error("no device {0}:{1}")]
    UnknownDevice(String, u16),
    /// No such group.
    #[error("no group {0}")]
    UnknownGroup(String),
    /// An upload named a media kind the store does not know.
    #[error("unknown media kind {0}")]
    UnknownMediaKind(String),
    /// An upload was larger than `MAX_BLOB_BYTES`.
    #[error("blob of {0} bytes is too large")]
    BlobTooLarge(usize),
    /// An upload's token is not the base64 of the blob's SHA-256.
    #[error("upload token does not match the blob's hash")]
    BlobHashMismatch,
    /// The phone could not compress its history.
    #[error("compression: {0}")]
    Compression(String),
    /// The phone could not encrypt media.
    #[error("media: {0}")]
    Media(String),
    /// The phone could not encode an app-state action.
    #[error("app state: {0}")]
    AppState(walink_core::appstate::PatchError),
}

/// How to build a server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The seed of every random choice the server (and each phone) makes.
    pub seed: [u8; 32],
    /// The Noise static key and certificate chain.
    pub identity: ServerIdentity,
    /// Whether to send a fresh `pair-device` when an unpaired connection's refs run out (the
    /// real server does not; WhatsApp Web stops rotating and keeps the socket).
    pub reissue_refs: bool,
    /// Whether the phone sends a new companion its initial history sync (INITIAL_BOOTSTRAP and
    /// RECENT blobs with their notifications) right after pairing, as a real phone does.
    pub history_sync: bool,
    /// A fault: close the socket in the same instant as the `515` that ends a pairing stream
    /// (WhatsApp sends the stream end and lets the client close; a client that sees the close
    /// before the `515` must still reconnect).
    pub abrupt_restart: bool,
}

impl ServerConfig {
    /// The test identity ([`ServerIdentity::test`], trusted via `ChainSpec::default()`) and
    /// `seed`.
    pub fn new(seed: [u8; 32]) -> ServerConfig {
        ServerConfig {
            seed,
            identity: ServerIdentity::test(),
            reissue_refs: false,
            history_sync: true,
            abrupt_restart: false,
        }
    }
}

/// The simulated server. See the module documentation for the driving contract.
pub struct Server {
    identity: ServerIdentity,
    reissue_refs: bool,
    abrupt_restart: bool,
    rng: SimRng,
    conns: connection::Connections,
    accounts: BTreeMap<String, Account>,
    lids: BTreeMap<String, String>,
    events: VecDeque<ServerEvent>,
    next_id: u64,
    link_code_error: Option<u16>,
    login_failure: Option<u16>,
    groups: BTreeMap<String, Group>,
    history_sync: bool,
    media: media::MediaStore,
    history: BTreeMap<String, Vec<HistoryBlob>>,
    phone_sent: BTreeMap<String, VecDeque<PhoneMessage>>,
    app_state: app_state::AppStates,
    wire: wire::WireChecks,
    attacker: attacks::Attacker,
    /// Group messages also reach the devices of members who left (a fault).
    leak_to_past_members: bool,
    account_iqs: account_iq::AccountIqs,
    group_rules: group_admin::GroupRules,
    group_extras: group_requests::GroupExtras,
    social: social::SocialState,
}

/// A group: its subject, creator and members (accounts, by phone number).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// The group id (the user part of `id@g.us`).
    pub id: String,
    /// The subject.
    pub subject: String,
    /// The creator's account.
    pub creator: String,
    /// Creation time, Unix seconds.
    pub creation: u64,
    /// Member accounts, creator first.
    pub members: Vec<String>,
    /// Accounts removed from the group (or that left), in order.
    pub past_members: Vec<String>,
    /// Whether the group is addressed by LID (`addressing_mode="lid"`: members, senders and
    /// the participant hash in the LID form) rather than by phone number.
    pub lid_addressed: bool,
    /// Admin accounts besides the creator (the super-admin).
    pub admins: Vec<String>,
    /// The description: its id and text.
    pub description: Option<(String, String)>,
    /// Only admins send.
    pub announce: bool,
    /// Only admins edit the info.
    pub locked: bool,
    /// Joining by link needs an admin's approval.
    pub approval: bool,
    /// Disappearing-messages timer, seconds (0: off).
    pub ephemeral: u32,
    /// The invite code.
    pub invite_code: String,
}

impl Group {
    /// The `addressing_mode` value of the group.
    pub fn addressing_mode(&self) -> &'static str {
        if self.lid_addressed { "lid" } else { "pn" }
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("connections", &self.conns.len())
            .field("accounts", &self.accounts.len())
            .finish_non_exhaustive()
    }
}

fn seconds(now: Timestamp) -> String {
    (now / 1000).to_string()
}

fn error_text(code: u16) -> &'static str {
    match code {
        400 => "bad-request",
        401 => "not-authorized",
        403 => "forbidden",
        404 => "item-not-found",
        429 => "rate-overlimit",
        452 => "feature-not-available",
        500 => "internal-server-error",
        501 => "feature-not-implemented",
        503 => "service-unavailable",
        _ => "error",
    }
}

impl Server {
    /// A server with no accounts and no connections.
    pub fn new(config: ServerConfig) -> Server {
        Server {
            identity: config.identity,
            reissue_refs: config.reissue_refs,
            abrupt_restart: config.abrupt_restart,
            rng: SimRng::new(config.seed),
            conns: connection::Connections::new(),
            accounts: BTreeMap::new(),
            lids: BTreeMap::new(),
            events: VecDeque::new(),
            next_id: 1,
            link_code_error: None,
            login_failure: None,
            groups: BTreeMap::new(),
            history_sync: config.history_sync,
            media: media::MediaStore::default(),
            history: BTreeMap::new(),
            phone_sent: BTreeMap::new(),
            app_state: app_state::AppStates::default(),
            wire: wire::WireChecks::default(),
            attacker: attacks::Attacker::default(),
            leak_to_past_members: false,
            account_iqs: account_iq::AccountIqs::default(),
            group_rules: group_admin::GroupRules::default(),
            group_extras: group_requests::GroupExtras::default(),
            social: social::SocialState::default(),
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// SHA-256 over every byte transmitted so far, with the connection ids and frame
    /// boundaries: two runs with the same seed and inputs give the same hash.
    pub fn transcript_hash(&self) -> [u8; 32] {
        self.conns.transcript_hash()
    }

    fn new_id(&mut self) -> String {
        let id = self.next_id;
        self.next_id += 1;
        format!("{}.{}-{id}", self.rng.below(65_536), self.rng.below(65_536))
    }
}

/// `companion_platform_display` must be `<Browser> (<OS>)` with a browser and OS the server
/// knows (transport notes §5.2).
fn valid_display(display: &str) -> bool {
    let Some((browser, rest)) = display.split_once(" (") else {
        return false;
    };
    let Some(os) = rest.strip_suffix(')') else {
        return false;
    };
    matches!(
        browser,
        "Chrome" | "Edge" | "Firefox" | "IE" | "Opera" | "Safari"
    ) && matches!(
        os,
        "Windows" | "Mac OS" | "Linux" | "Android" | "iOS" | "Ubuntu" | "Chrome OS"
    )
}
