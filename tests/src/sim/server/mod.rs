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
pub use addons::AddOnTarget;
pub use app_state::{MAX_PATCHES_PER_ANSWER, SNAPSHOT_EVERY};
pub use attacks::{ForgedRetry, Held, Hostility};
pub use group_admin::{GroupRules, SimParticipantResult};
pub use social::{
    ChatStateSeen, MAX_BLOCKED, MAX_PRESENCE_SUBSCRIPTIONS, MAX_SOCIAL_LOG, MAX_USYNC_CONTACTS,
    RejectedCall,
};
pub use status::{MAX_STATUS_RECEIPTS, STATUS_BROADCAST, StatusReceipt};
pub use wire::{DELIVERED_KEPT, KeyUse, MAX_KEY_USES, ROUTED_IDS_PER_DEVICE, participant_hash};

mod account_iq;
mod addons;
#[path = "../app_state.rs"]
mod app_state;
mod attacks;
mod delivery;
mod device;
mod device_lists;
mod group_admin;
mod groups;
mod history_reupload;
mod media;
mod pairing;
mod phone_ops;
mod social;
mod status;
mod wire;

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

/// The registration an unpaired connection sent, and its pairing progress.
struct Registration {
    noise_public: [u8; 32],
    identity_public: [u8; 32],
    registration_id: u32,
    signed_prekey: SignedPreKey,
    platform_type: i32,
    name: String,
    /// How much history the companion asked for (`DeviceProps`).
    history: HistoryAsk,
    /// `(ref, expires_at)`.
    refs: Vec<(String, Timestamp)>,
    /// The id of the `pair-device` IQ.
    pair_device_id: String,
    link: Option<LinkCode>,
    pairing: Option<PendingPair>,
}

/// A `companion_hello` the server accepted.
struct LinkCode {
    user: String,
    wrapped_companion_ephemeral: Vec<u8>,
    reference: Vec<u8>,
    /// The phone answered with `primary_hello`.
    hello_sent: bool,
}

/// A pair-success waiting for pair-device-sign.
struct PendingPair {
    iq_id: String,
    user: String,
    device: u16,
    issued: IssuedIdentity,
}

/// A logged-in device's connection.
struct DeviceSession {
    user: String,
    device: u16,
    active: bool,
}

enum Stage {
    AwaitHello,
    AwaitFinish(Box<Responder>),
    Unpaired(Box<Registration>),
    Device(DeviceSession),
    /// The server ended the stream with this error and waits for the client to close.
    Ended(StreamErrorKind),
}

struct Conn {
    decoder: FrameDecoder,
    stage: Stage,
    transport: Option<TransportCipher>,
    deadline: Option<Timestamp>,
}

/// The simulated server. See the module documentation for the driving contract.
pub struct Server {
    identity: ServerIdentity,
    reissue_refs: bool,
    abrupt_restart: bool,
    rng: SimRng,
    conns: BTreeMap<ConnId, Conn>,
    next_conn: u64,
    accounts: BTreeMap<String, Account>,
    lids: BTreeMap<String, String>,
    outputs: VecDeque<ServerOutput>,
    events: VecDeque<ServerEvent>,
    transcript: Sha256,
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
    status: status::StatusLog,
    history_reuploads: history_reupload::HistoryReuploads,
    account_iqs: account_iq::AccountIqs,
    group_rules: group_admin::GroupRules,
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
            conns: BTreeMap::new(),
            next_conn: 1,
            accounts: BTreeMap::new(),
            lids: BTreeMap::new(),
            outputs: VecDeque::new(),
            events: VecDeque::new(),
            transcript: Sha256::new(),
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
            status: status::StatusLog::default(),
            history_reuploads: history_reupload::HistoryReuploads::default(),
            account_iqs: account_iq::AccountIqs::default(),
            group_rules: group_admin::GroupRules::default(),
            social: social::SocialState::default(),
        }
    }

    // ----- accounts and phones -------------------------------------------------------------

    /// Creates an account for phone number `user` (digits) with its primary phone, whose keys
    /// come from the server's seed. Returns the account's LID user.
    pub fn create_account(&mut self, user: &str, push_name: &str) -> Result<String, SimError> {
        if self.accounts.contains_key(user) {
            return Err(SimError::AccountExists(user.to_owned()));
        }
        let lid = format!(
            "{}",
            100_000_000_000_000 + self.rng.below(900_000_000_000_000)
        );
        let phone = Phone::new(self.rng.fork_seed());
        let mut devices = BTreeMap::new();
        devices.insert(
            0,
            Device {
                id: 0,
                noise_public: None,
                identity_public: phone.identity_public(),
                registration_id: phone.registration_id(),
                signed_prekey: phone.signed_prekey().clone(),
                prekeys: phone
                    .prekeys()
                    .into_iter()
                    .map(|key| (key.id, key.public))
                    .collect(),
                key_index: 0,
                name: "phone".to_owned(),
                platform_type: 0,
                prekeys_low_notified: false,
                offline: VecDeque::new(),
                unacked: Vec::new(),
            },
        );
        let account = Account {
            user: user.to_owned(),
            lid: lid.clone(),
            push_name: push_name.to_owned(),
            raw_id: self.rng.next_u32(),
            phone,
            devices,
            next_device_id: 1,
            next_key_index: 1,
            key_index_lists: Vec::new(),
            key_index_list_fault: KeyIndexListFault::Honest,
            sim_companions: BTreeMap::new(),
        };
        self.lids.insert(lid.clone(), user.to_owned());
        self.accounts.insert(user.to_owned(), account);
        Ok(lid)
    }

    /// The account with phone number `user`.
    pub fn account(&self, user: &str) -> Option<&Account> {
        self.accounts.get(user)
    }

    /// Every account, by phone number.
    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.values()
    }

    /// Every open connection, with the account and device logged in on it (`None` while the
    /// handshake runs or the device is unpaired).
    pub fn connections(&self) -> Vec<(ConnId, Option<(String, u16)>)> {
        self.conns
            .iter()
            .map(|(&id, conn)| match &conn.stage {
                Stage::Device(session) => (id, Some((session.user.clone(), session.device))),
                _ => (id, None),
            })
            .collect()
    }

    /// Creates a phone-number-addressed group of `creator` with `members` (phone numbers; the
    /// creator is added) and returns its JID.
    pub fn create_group(
        &mut self,
        now: Timestamp,
        creator: &str,
        subject: &str,
        members: &[&str],
    ) -> Result<Jid, SimError> {
        self.create_group_addressed(now, creator, subject, members, false)
    }

    /// Creates a group as [`Server::create_group`], addressed by LID when `lid` is set (as
    /// WhatsApp makes new groups now).
    pub fn create_group_addressed(
        &mut self,
        now: Timestamp,
        creator: &str,
        subject: &str,
        members: &[&str],
        lid: bool,
    ) -> Result<Jid, SimError> {
        let mut list = vec![creator.to_owned()];
        for member in members {
            if !self.accounts.contains_key(*member) {
                return Err(SimError::UnknownAccount((*member).to_owned()));
            }
            if !list.iter().any(|m| m == member) {
                list.push((*member).to_owned());
            }
        }
        if !self.accounts.contains_key(creator) {
            return Err(SimError::UnknownAccount(creator.to_owned()));
        }
        let id = format!("120363{:012}", self.rng.below(1_000_000_000_000));
        let invite_code = self.new_invite_code();
        self.groups.insert(
            id.clone(),
            Group {
                id: id.clone(),
                subject: subject.to_owned(),
                creator: creator.to_owned(),
                creation: now / 1000,
                members: list,
                past_members: Vec::new(),
                lid_addressed: lid,
                admins: Vec::new(),
                description: None,
                announce: false,
                locked: false,
                approval: false,
                ephemeral: 0,
                invite_code,
            },
        );
        Ok(Jid::new(id, GROUP_SERVER))
    }

    /// The group with this id (the user part of its JID).
    pub fn group(&self, id: &str) -> Option<&Group> {
        self.groups.get(id)
    }

    /// The account with phone number `user`, mutably (for the phone's own messaging).
    pub fn account_mut(&mut self, user: &str) -> Option<&mut Account> {
        self.accounts.get_mut(user)
    }

    /// The phone of `user` scans the QR text a companion shows: it checks the fields against
    /// the unpaired connection that holds the ref (live ref, same Noise and identity keys, the
    /// client type of its platform when the QR has the fifth field), signs a device identity with the account key
    /// and the QR's adv secret, and the server sends pair-success.
    pub fn phone_scan_qr(
        &mut self,
        now: Timestamp,
        user: &str,
        qr: &str,
    ) -> Result<ConnId, SimError> {
        if !self.accounts.contains_key(user) {
            return Err(SimError::UnknownAccount(user.to_owned()));
        }
        let scan = QrScan::parse(qr)?;
        let conn = self
            .conns
            .iter()
            .find_map(|(&id, conn)| match &conn.stage {
                Stage::Unpaired(reg) if reg.refs.iter().any(|(r, _)| *r == scan.reference) => {
                    Some(id)
                }
                _ => None,
            })
            .ok_or_else(|| SimError::UnknownRef(scan.reference.clone()))?;
        let Some(Stage::Unpaired(reg)) = self.conns.get(&conn).map(|c| &c.stage) else {
            return Err(SimError::UnknownConnection(conn));
        };
        let live = reg
            .refs
            .iter()
            .any(|(r, expires)| *r == scan.reference && now < *expires);
        if !live {
            return Err(SimError::RefExpired);
        }
        if scan.noise_public != reg.noise_public || scan.identity_public != reg.identity_public {
            return Err(SimError::KeyMismatch);
        }
        // The four-field QR of older companions names no client type: nothing to compare.
        let expected = client_type_of_platform(reg.platform_type);
        if let Some(found) = scan.client_type
            && found != expected
        {
            return Err(SimError::ClientTypeMismatch { expected, found });
        }
        self.start_pairing(now, conn, user, &scan.adv_secret);
        Ok(conn)
    }

    /// The user types `code` on the phone of `user`: the phone answers the latest
    /// `companion_hello` for this number with `primary_hello`. A wrong code is not detected
    /// here (as on a real phone); the key bundle then fails to open.
    pub fn phone_enter_code(
        &mut self,
        now: Timestamp,
        user: &str,
        code: &str,
    ) -> Result<ConnId, SimError> {
        if !self.accounts.contains_key(user) {
            return Err(SimError::UnknownAccount(user.to_owned()));
        }
        let (conn, wrapped, reference) = self
            .conns
            .iter()
            .rev()
            .find_map(|(&id, conn)| match &conn.stage {
                Stage::Unpaired(reg) => reg.link.as_ref().and_then(|link| {
                    (link.user == user).then(|| {
                        (
                            id,
                            link.wrapped_companion_ephemeral.clone(),
                            link.reference.clone(),
                        )
                    })
                }),
                _ => None,
            })
            .ok_or_else(|| SimError::NoCodeRequested(user.to_owned()))?;
        let account = self
            .accounts
            .get_mut(user)
            .ok_or_else(|| SimError::UnknownAccount(user.to_owned()))?;
        let hello = account.phone.primary_hello(code, &wrapped)?;
        if let Some(Stage::Unpaired(reg)) = self.conns.get_mut(&conn).map(|c| &mut c.stage)
            && let Some(link) = reg.link.as_mut()
        {
            link.hello_sent = true;
        }
        let id = self.new_id();
        let node = Node::new("notification")
            .attr("from", Jid::server_jid())
            .attr("id", id)
            .attr("type", "link_code_companion_reg")
            .attr("t", seconds(now))
            .children_from([Node::new("link_code_companion_reg")
                .attr("stage", "primary_hello")
                .children_from([
                    bytes_node("link_code_pairing_ref", reference),
                    bytes_node(
                        "link_code_pairing_wrapped_primary_ephemeral_pub",
                        hello.wrapped_primary_ephemeral.to_vec(),
                    ),
                    bytes_node("primary_identity_pub", hello.primary_identity.to_vec()),
                ])]);
        self.send(conn, &node);
        Ok(conn)
    }

    /// Sends `<notification type="companion_reg_refresh">` to an unpaired connection
    /// (transport notes §4.5): the companion must make a new adv secret and re-show its QR.
    pub fn send_companion_reg_refresh(
        &mut self,
        now: Timestamp,
        conn: ConnId,
    ) -> Result<(), SimError> {
        if !matches!(
            self.conns.get(&conn).map(|c| &c.stage),
            Some(Stage::Unpaired(_))
        ) {
            return Err(SimError::UnknownConnection(conn));
        }
        let id = self.new_id();
        let node = Node::new("notification")
            .attr("from", Jid::server_jid())
            .attr("id", id)
            .attr("type", "companion_reg_refresh")
            .attr("t", seconds(now))
            .children_from([Node::new("companion_reg_refresh")]);
        self.send(conn, &node);
        Ok(())
    }

    /// The next `companion_hello` is refused with this error code (400, 403, 429, 452, 500).
    pub fn fail_next_link_code(&mut self, code: u16) {
        self.link_code_error = Some(code);
    }

    /// The next login is refused with `<failure reason>` (e.g. 405 outdated, 403 locked, 503).
    pub fn fail_next_login(&mut self, reason: u16) {
        self.login_failure = Some(reason);
    }

    /// Sends a stream error on `conn` and closes it.
    pub fn send_stream_error(
        &mut self,
        conn: ConnId,
        kind: StreamErrorKind,
    ) -> Result<(), SimError> {
        if self.conns.get(&conn).is_none_or(|c| c.transport.is_none()) {
            return Err(SimError::UnknownConnection(conn));
        }
        self.send(conn, &kind.node());
        self.close(conn, CloseReason::StreamError(kind));
        Ok(())
    }

    /// Sends a stream error on `conn` and waits for the client to close the socket, as
    /// WhatsApp does after a pairing (`515`); nothing the client sends is handled any more, and
    /// after [`STREAM_END_CLOSE_MS`] the server closes. With `abrupt_restart` set the socket is
    /// closed at once instead.
    pub(super) fn end_stream(&mut self, now: Timestamp, conn: ConnId, kind: StreamErrorKind) {
        if self.abrupt_restart {
            let _ = self.send_stream_error(conn, kind);
            return;
        }
        self.send(conn, &kind.node());
        if let Some(state) = self.conns.get_mut(&conn) {
            state.stage = Stage::Ended(kind);
            state.deadline = Some(now + STREAM_END_CLOSE_MS);
        }
    }

    /// Closes the socket in the same instant as the `515` that ends a pairing stream (a fault;
    /// see [`ServerConfig::abrupt_restart`]).
    pub fn set_abrupt_restart(&mut self, on: bool) {
        self.abrupt_restart = on;
    }

    /// Whether the `515` after pairing comes with an abrupt close (a fault).
    pub fn abrupt_restart(&self) -> bool {
        self.abrupt_restart
    }

    /// Plays a hostile (or broken) server: sends `body`, any bytes as a frame body (a flags
    /// byte, then a node, compressed or not, or garbage), on `conn`, encrypted with the
    /// connection's transport keys so that the client decrypts it and hands it to its decoder.
    pub fn send_raw_body(&mut self, conn: ConnId, body: &[u8]) -> Result<(), SimError> {
        let Some(transport) = self.conns.get_mut(&conn).and_then(|c| c.transport.as_mut()) else {
            return Err(SimError::UnknownConnection(conn));
        };
        let frame = transport
            .encrypt(body)
            .ok()
            .and_then(|ciphertext| walink_core::frame::encode_frame(&ciphertext).ok());
        match frame {
            Some(frame) => {
                self.transmit(conn, frame);
                Ok(())
            }
            None => Err(SimError::FrameTooLarge(body.len())),
        }
    }

    /// The phone unlinks a companion: the device is deleted, the phone signs the new
    /// key-index list, and the device's open connection gets `401 device_removed`.
    pub fn remove_device(&mut self, user: &str, device: u16) -> Result<(), SimError> {
        let account = self
            .accounts
            .get_mut(user)
            .ok_or_else(|| SimError::UnknownAccount(user.to_owned()))?;
        if device == 0 || account.devices.remove(&device).is_none() {
            return Err(SimError::UnknownDevice(user.to_owned(), device));
        }
        if let Some(companion) = account.sim_companions.get_mut(&device) {
            companion.linked = false;
        }
        Self::sign_device_list(account, None);
        if let Some(conn) = self.device_conn(user, device) {
            let _ = self.send_stream_error(conn, StreamErrorKind::DeviceRemoved);
        }
        Ok(())
    }

    /// The server restarts: every connection drops without a word. Accounts, devices, prekeys
    /// and offline queues survive (they are the server's database); unacknowledged deliveries
    /// are queued again.
    pub fn restart(&mut self) {
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in conns {
            self.close(conn, CloseReason::Restart);
        }
    }

    /// The open connection of a logged-in device.
    pub fn device_conn(&self, user: &str, device: u16) -> Option<ConnId> {
        self.conns.iter().find_map(|(&id, conn)| match &conn.stage {
            Stage::Device(session) if session.user == user && session.device == device => Some(id),
            _ => None,
        })
    }

    /// The unpaired connections, oldest first.
    pub fn unpaired_conns(&self) -> Vec<ConnId> {
        self.conns
            .iter()
            .filter(|(_, conn)| matches!(conn.stage, Stage::Unpaired(_)))
            .map(|(&id, _)| id)
            .collect()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// SHA-256 over every byte transmitted so far, with the connection ids and frame
    /// boundaries: two runs with the same seed and inputs give the same hash.
    pub fn transcript_hash(&self) -> [u8; 32] {
        self.transcript.clone().finalize().into()
    }

    // ----- the driving API -----------------------------------------------------------------

    /// A client opened a connection.
    pub fn connect(&mut self, now: Timestamp) -> ConnId {
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                decoder: FrameDecoder::expecting_header().with_max_payload(MAX_CLIENT_FRAME),
                stage: Stage::AwaitHello,
                transport: None,
                deadline: Some(now + HANDSHAKE_TIMEOUT_MS),
            },
        );
        id
    }

    /// Bytes arrived on `conn`: any chunking, several frames or part of one.
    pub fn handle_bytes(&mut self, now: Timestamp, conn: ConnId, bytes: &[u8]) {
        let Some(state) = self.conns.get_mut(&conn) else {
            return;
        };
        state.decoder.push(bytes);
        loop {
            let Some(state) = self.conns.get_mut(&conn) else {
                return;
            };
            match state.decoder.next_frame() {
                Ok(Some(frame)) => self.handle_frame(now, conn, &frame),
                Ok(None) => return,
                Err(error) => {
                    self.close(conn, CloseReason::Protocol(format!("framing: {error}")));
                    return;
                }
            }
        }
    }

    /// The client's side of `conn` closed.
    pub fn handle_closed(&mut self, _now: Timestamp, conn: ConnId) {
        if self.conns.contains_key(&conn) {
            self.drop_conn(conn);
        }
    }

    /// The timer fired: handshakes and idle connections past their deadline are closed, and
    /// exhausted refs are re-issued if configured.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let expired: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, conn)| conn.deadline.is_some_and(|at| at <= now))
            .map(|(&id, _)| id)
            .collect();
        for conn in expired {
            let reason = match self.conns.get(&conn).map(|c| &c.stage) {
                Some(Stage::Ended(kind)) => CloseReason::StreamError(*kind),
                _ => CloseReason::Timeout,
            };
            self.close(conn, reason);
        }
        if self.reissue_refs {
            let exhausted: Vec<ConnId> = self
                .conns
                .iter()
                .filter(|(_, conn)| match &conn.stage {
                    Stage::Unpaired(reg) => {
                        reg.pairing.is_none() && reg.refs.iter().all(|(_, at)| *at <= now)
                    }
                    _ => false,
                })
                .map(|(&id, _)| id)
                .collect();
            for conn in exhausted {
                self.send_pair_device(now, conn);
            }
        }
    }

    /// The next thing the host must do.
    pub fn poll_output(&mut self) -> Option<ServerOutput> {
        self.outputs.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let deadlines = self.conns.values().filter_map(|conn| conn.deadline);
        let refs = self.conns.values().filter_map(|conn| match &conn.stage {
            Stage::Unpaired(reg) if self.reissue_refs && reg.pairing.is_none() => {
                reg.refs.iter().map(|(_, at)| *at).max()
            }
            _ => None,
        });
        deadlines.chain(refs).min()
    }

    // ----- connection plumbing -------------------------------------------------------------

    fn new_id(&mut self) -> String {
        let id = self.next_id;
        self.next_id += 1;
        format!("{}.{}-{id}", self.rng.below(65_536), self.rng.below(65_536))
    }

    fn transmit(&mut self, conn: ConnId, bytes: Vec<u8>) {
        self.transcript.update(conn.0.to_be_bytes());
        self.transcript.update((bytes.len() as u64).to_be_bytes());
        self.transcript.update(&bytes);
        self.outputs
            .push_back(ServerOutput::Transmit { conn, bytes });
    }

    /// Encrypts and sends one node on `conn`.
    fn send(&mut self, conn: ConnId, node: &Node) {
        let Some(transport) = self.conns.get_mut(&conn).and_then(|c| c.transport.as_mut()) else {
            return;
        };
        match transport.encrypt_node(node) {
            Ok(bytes) => self.transmit(conn, bytes),
            Err(error) => self.close(conn, CloseReason::Protocol(format!("encrypt: {error}"))),
        }
    }

    fn close(&mut self, conn: ConnId, reason: CloseReason) {
        if !self.conns.contains_key(&conn) {
            return;
        }
        self.transcript.update(conn.0.to_be_bytes());
        self.transcript.update(b"close");
        self.outputs.push_back(ServerOutput::Close { conn, reason });
        self.drop_conn(conn);
    }

    /// Forgets a connection; a device's unacknowledged deliveries go back to its queue.
    fn drop_conn(&mut self, conn: ConnId) {
        let Some(state) = self.conns.remove(&conn) else {
            return;
        };
        if let Stage::Device(session) = state.stage
            && let Some(device) = self
                .accounts
                .get_mut(&session.user)
                .and_then(|account| account.devices.get_mut(&session.device))
        {
            for stanza in device.unacked.drain(..).rev() {
                device.offline.push_front(stanza);
            }
        }
        self.events.push_back(ServerEvent::Closed { conn });
    }

    fn handle_frame(&mut self, now: Timestamp, conn: ConnId, frame: &[u8]) {
        let Some(state) = self.conns.get_mut(&conn) else {
            return;
        };
        if let Some(transport) = state.transport.as_mut() {
            let node = match transport.decrypt_node(frame) {
                Ok(node) => node,
                Err(error) => {
                    self.close(conn, CloseReason::Protocol(format!("transport: {error}")));
                    return;
                }
            };
            if matches!(state.stage, Stage::Device(_)) {
                state.deadline = Some(now + IDLE_TIMEOUT_MS);
            }
            self.handle_node(now, conn, node);
            return;
        }
        match std::mem::replace(&mut state.stage, Stage::AwaitHello) {
            Stage::AwaitHello => {
                let ephemeral = self.rng.bytes::<32>();
                match Responder::respond(&self.identity, ephemeral, frame) {
                    Ok((responder, hello)) => {
                        if let Some(state) = self.conns.get_mut(&conn) {
                            state.stage = Stage::AwaitFinish(Box::new(responder));
                        }
                        match frame::encode_frame(&hello) {
                            Ok(bytes) => self.transmit(conn, bytes),
                            Err(error) => {
                                self.close(conn, CloseReason::Protocol(error.to_string()));
                            }
                        }
                    }
                    Err(error) => {
                        self.close(
                            conn,
                            CloseReason::Protocol(format!("client hello: {error}")),
                        );
                    }
                }
            }
            Stage::AwaitFinish(responder) => match responder.finish(frame) {
                Ok(accepted) => {
                    if let Some(state) = self.conns.get_mut(&conn) {
                        state.transport = Some(accepted.transport);
                    }
                    self.accept_payload(now, conn, accepted.client_static, &accepted.payload);
                }
                Err(error) => {
                    self.close(
                        conn,
                        CloseReason::Protocol(format!("client finish: {error}")),
                    );
                }
            },
            _ => {}
        }
    }

    // ----- ClientPayload -------------------------------------------------------------------

    fn accept_payload(
        &mut self,
        now: Timestamp,
        conn: ConnId,
        client_static: [u8; 32],
        payload: &ClientPayload,
    ) {
        if let Some(data) = &payload.device_pairing_data {
            let parsed = (|| {
                let registration_id = be_u32(data.e_regid.as_deref()?)?;
                if data.e_keytype.as_deref() != Some(&[5u8][..]) {
                    return None;
                }
                let identity_public: [u8; 32] = data.e_ident.as_deref()?.try_into().ok()?;
                let skey_id = data.e_skey_id.as_deref()?;
                if skey_id.len() != 3 {
                    return None;
                }
                let signed_prekey = SignedPreKey {
                    id: be_u32(skey_id)?,
                    public: data.e_skey_val.as_deref()?.try_into().ok()?,
                    signature: data.e_skey_sig.as_deref()?.try_into().ok()?,
                };
                let mut message = [5u8; 33];
                message[1..].copy_from_slice(&signed_prekey.public);
                if !walink_core::signal::xeddsa::verify(
                    &identity_public,
                    &message,
                    &signed_prekey.signature,
                ) {
                    return None;
                }
                let props = DeviceProps::decode(data.device_props.as_deref()?).ok()?;
                Some(Registration {
                    noise_public: client_static,
                    identity_public,
                    registration_id,
                    signed_prekey,
                    platform_type: props.platform_type.unwrap_or(0),
                    history: HistoryAsk::from_props(&props),
                    name: props.os.unwrap_or_default(),
                    refs: Vec::new(),
                    pair_device_id: String::new(),
                    link: None,
                    pairing: None,
                })
            })();
            let Some(registration) = parsed else {
                self.refuse_login(conn, 400);
                return;
            };
            if let Some(state) = self.conns.get_mut(&conn) {
                state.stage = Stage::Unpaired(Box::new(registration));
                state.deadline = None;
            }
            self.send_pair_device(now, conn);
            return;
        }

        let user = payload.username.map(|u| u.to_string()).unwrap_or_default();
        let device = payload
            .device
            .and_then(|d| u16::try_from(d).ok())
            .unwrap_or(0);
        if let Some(reason) = self.login_failure.take() {
            self.refuse_login(conn, reason);
            return;
        }
        let known = self
            .accounts
            .get(&user)
            .and_then(|account| account.devices.get(&device))
            .is_some_and(|d| device != 0 && d.noise_public == Some(client_static));
        if !known {
            self.refuse_login(conn, 401);
            return;
        }
        // A second connection of the same device replaces the first.
        if let Some(old) = self.device_conn(&user, device) {
            self.events.push_back(ServerEvent::Replaced {
                old,
                by: conn,
                user: user.clone(),
                device,
            });
            let _ = self.send_stream_error(old, StreamErrorKind::Replaced);
        }
        let Some(account) = self.accounts.get(&user) else {
            return;
        };
        let success = Node::new("success")
            .attr("t", seconds(now))
            .attr("props", "1")
            .attr("abprops", "1")
            .attr("location", "sim")
            .attr("lid", account.device_lid(device))
            .attr("display_name", account.push_name.clone())
            .attr("creation", seconds(now));
        if let Some(state) = self.conns.get_mut(&conn) {
            state.stage = Stage::Device(DeviceSession {
                user: user.clone(),
                device,
                active: false,
            });
            state.deadline = Some(now + IDLE_TIMEOUT_MS);
        }
        self.send(conn, &success);
        // Edge routing for the next connection (transport notes §1.3): the client should send
        // it back in its pre-intro.
        let routing = format!("sim-edge-{}", self.rng.below(1_000_000)).into_bytes();
        let edge = Node::new("ib").children_from([
            Node::new("edge_routing").children_from([bytes_node("routing_info", routing)])
        ]);
        self.send(conn, &edge);
        let routing_info = self
            .conns
            .get(&conn)
            .and_then(|c| c.decoder.routing_info())
            .map(<[u8]>::to_vec);
        self.events.push_back(ServerEvent::LoggedIn {
            conn,
            user,
            device,
            routing_info,
        });
    }

    fn refuse_login(&mut self, conn: ConnId, reason: u16) {
        self.send(
            conn,
            &Node::new("failure").attr("reason", reason.to_string()),
        );
        self.events
            .push_back(ServerEvent::LoginRefused { conn, reason });
        self.close(conn, CloseReason::Failure(reason));
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

/// A device's prekey bundle from what the server stores, consuming one one-time prekey.
fn bundle_of(device: &mut Device) -> walink_core::signal::PreKeyBundle {
    use walink_core::signal::{IdentityKey, PreKeyId, PublicKey, SignedPreKeyId};
    let pre_key = device
        .take_prekey()
        .map(|key| (PreKeyId(key.id), PublicKey::from_raw(key.public)));
    walink_core::signal::PreKeyBundle {
        registration_id: device.registration_id,
        identity_key: IdentityKey(PublicKey::from_raw(device.identity_public)),
        signed_pre_key_id: SignedPreKeyId(device.signed_prekey.id),
        signed_pre_key: PublicKey::from_raw(device.signed_prekey.public),
        signed_pre_key_signature: device.signed_prekey.signature,
        pre_key,
    }
}

/// A bundle from a node holding `identity`, `skey` and optionally `key` (a prekey fetch's
/// `<user>` or a retry receipt's `<keys>`), with the registration id given.
fn bundle_from_node(
    node: &Node,
    registration_id: u32,
) -> Option<walink_core::signal::PreKeyBundle> {
    use walink_core::signal::{IdentityKey, PreKeyId, PublicKey, SignedPreKeyId};
    let identity: [u8; 32] = child_array(node, "identity")?;
    let skey = parse_signed_prekey(node.child("skey")?)?;
    let pre_key = match node.child("key") {
        Some(key) => Some((
            PreKeyId(be_u32(child_bytes(key, "id")?)?),
            PublicKey::from_raw(child_array(key, "value")?),
        )),
        None => None,
    };
    Some(walink_core::signal::PreKeyBundle {
        registration_id,
        identity_key: IdentityKey(PublicKey::from_raw(identity)),
        signed_pre_key_id: SignedPreKeyId(skey.id),
        signed_pre_key: PublicKey::from_raw(skey.public),
        signed_pre_key_signature: skey.signature,
        pre_key,
    })
}

fn parse_signed_prekey(node: &Node) -> Option<SignedPreKey> {
    let id = child_bytes(node, "id")?;
    if id.len() != 3 {
        return None;
    }
    Some(SignedPreKey {
        id: be_u32(id)?,
        public: child_array(node, "value")?,
        signature: child_array(node, "signature")?,
    })
}

/// The keys a device published, as a bundle fetch and a digest name them: `registration`,
/// `type`, `identity` and the signed prekey.
fn published_keys(device: &Device) -> [Node; 4] {
    [
        bytes_node(
            "registration",
            device.registration_id.to_be_bytes().to_vec(),
        ),
        bytes_node("type", vec![5]),
        bytes_node("identity", device.identity_public.to_vec()),
        signed_prekey_node(&device.signed_prekey),
    ]
}

fn signed_prekey_node(skey: &SignedPreKey) -> Node {
    Node::new("skey").children_from([
        bytes_node("id", id3(skey.id)),
        bytes_node("value", skey.public.to_vec()),
        bytes_node("signature", skey.signature.to_vec()),
    ])
}
