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
use walink_core::binary::{Content, DEFAULT_USER_SERVER, HIDDEN_USER_SERVER, Jid, Node, Value};
use walink_core::frame::{self, FrameDecoder};
use walink_core::noise::TransportCipher;
use walink_core::proto::wa::{ClientPayload, DeviceProps};

use super::Timestamp;
use super::account::{Account, Device, SignedPreKey};
use super::phone::{
    IssuedIdentity, Phone, PhoneError, PhoneMessage, QrScan, client_type_of_platform,
};
use super::rng::SimRng;
use super::stanza::{be_u32, bytes_node, child_array, child_bytes, id3, iq_error, iq_result};
use crate::noise_server::{Responder, ServerIdentity};

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
/// Stanzas kept per offline device; older ones are dropped beyond it.
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
}

/// Why a phone or fault control could not be carried out (the test's mistake, never the
/// client's: a client's mistake is answered on the wire).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// No account with that phone number.
    #[error("no account {0}")]
    UnknownAccount(String),
    /// An account with that phone number exists already.
    #[error("account {0} exists")]
    AccountExists(String),
    /// No such connection, or it is closed.
    #[error("no open connection {0}")]
    UnknownConnection(ConnId),
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
}

impl ServerConfig {
    /// The test identity ([`ServerIdentity::test`], trusted via `ChainSpec::default()`) and
    /// `seed`.
    pub fn new(seed: [u8; 32]) -> ServerConfig {
        ServerConfig {
            seed,
            identity: ServerIdentity::test(),
            reissue_refs: false,
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

    /// The account with phone number `user`, mutably (for the phone's own messaging).
    pub fn account_mut(&mut self, user: &str) -> Option<&mut Account> {
        self.accounts.get_mut(user)
    }

    /// The phone of `user` scans the QR text a companion shows: it checks the five fields
    /// against the unpaired connection that holds the ref (live ref, same Noise and identity
    /// keys, the client type of its platform), signs a device identity with the account key
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
        let expected = client_type_of_platform(reg.platform_type);
        if scan.client_type != expected {
            return Err(SimError::ClientTypeMismatch {
                expected,
                found: scan.client_type,
            });
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

    /// The phone unlinks a companion: the device is deleted, and its open connection gets
    /// `401 device_removed`.
    pub fn remove_device(&mut self, user: &str, device: u16) -> Result<(), SimError> {
        let account = self
            .accounts
            .get_mut(user)
            .ok_or_else(|| SimError::UnknownAccount(user.to_owned()))?;
        if device == 0 || account.devices.remove(&device).is_none() {
            return Err(SimError::UnknownDevice(user.to_owned(), device));
        }
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

    /// The phone of `user` sends a Signal-encrypted text to `to` (a JID, or digits for a
    /// phone number): to every device of the recipient account, and mirrored as a
    /// `DeviceSentMessage` to the account's own companions (a text to the own number reaches
    /// only the companions). Sessions are started from the prekey bundles the server holds,
    /// consuming one-time prekeys as a fetch would. Returns the message id.
    pub fn phone_send_text(
        &mut self,
        now: Timestamp,
        user: &str,
        to: &str,
        text: &str,
    ) -> Result<String, SimError> {
        let to: Jid = if to.contains('@') {
            to.parse()
                .map_err(|_| SimError::UnknownAccount(to.to_owned()))?
        } else {
            Jid::new(to, DEFAULT_USER_SERVER)
        };
        let to = to.to_non_device();
        let target = self
            .resolve_user(&to)
            .ok_or_else(|| SimError::UnknownAccount(to.to_string()))?;
        let sender = self
            .accounts
            .get(user)
            .ok_or_else(|| SimError::UnknownAccount(user.to_owned()))?;
        let from = sender.jid();
        let push_name = sender.push_name.clone();
        let mut recipients: Vec<(String, u16, bool)> = Vec::new();
        if target != user {
            let devices = self
                .accounts
                .get(&target)
                .map(|a| a.devices.keys().copied().collect::<Vec<_>>());
            recipients.extend(
                devices
                    .unwrap_or_default()
                    .into_iter()
                    .map(|d| (target.clone(), d, false)),
            );
        }
        recipients.extend(
            sender
                .devices
                .keys()
                .filter(|&&d| d != 0)
                .map(|&d| (user.to_owned(), d, true)),
        );
        let id = format!(
            "3EB0{}",
            self.rng
                .bytes::<8>()
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect::<String>()
        );
        let plain = walink_core::proto::wa::Message {
            conversation: Some(text.to_owned()),
            ..Default::default()
        };
        let mirrored = walink_core::proto::wa::Message {
            device_sent_message: Some(Box::new(
                walink_core::proto::wa::message::DeviceSentMessage {
                    destination_jid: Some(to.to_string()),
                    message: Some(Box::new(plain.clone())),
                    phash: None,
                },
            )),
            ..Default::default()
        };
        for (account, device, own) in recipients {
            let address = Jid::device(account.clone(), device, DEFAULT_USER_SERVER).to_string();
            let bundle = {
                let phone_has = self
                    .accounts
                    .get(user)
                    .is_some_and(|a| a.phone.has_session(&address));
                if phone_has {
                    None
                } else {
                    let Some(target_device) = self
                        .accounts
                        .get_mut(&account)
                        .and_then(|a| a.devices.get_mut(&device))
                    else {
                        continue;
                    };
                    Some(bundle_of(target_device))
                }
            };
            let Some(phone) = self.accounts.get_mut(user).map(|a| &mut a.phone) else {
                continue;
            };
            if let Some(bundle) = bundle {
                phone.start_session(&address, &bundle)?;
            }
            let (enc_type, ciphertext) =
                phone.encrypt(&address, if own { &mirrored } else { &plain })?;
            let mut stanza = Node::new("message")
                .attr("from", from.clone())
                .attr("id", id.clone())
                .attr("type", "text")
                .attr("t", seconds(now))
                .attr("notify", push_name.clone());
            if own {
                stanza = stanza.attr("recipient", to.clone());
            }
            let stanza = stanza.children_from([Node::new("enc")
                .attr("v", "2")
                .attr("type", enc_type)
                .bytes(ciphertext)]);
            self.deliver(&account, device, stanza);
        }
        Ok(id)
    }

    /// What the phone of `user` received, in arrival order.
    pub fn phone_messages(&self, user: &str) -> Option<&[PhoneMessage]> {
        self.accounts.get(user).map(|a| a.phone.inbox())
    }

    /// The phone of `user` handles a message stanza: decrypts it and sends a delivery
    /// receipt to the sender.
    fn phone_receive(&mut self, user: &str, stanza: &Node) {
        let Some(sender) = stanza
            .attr_jid("participant")
            .or_else(|| stanza.attr_jid("from"))
        else {
            return;
        };
        let id = stanza.attr_str("id").unwrap_or_default().to_owned();
        let timestamp = stanza
            .attr_str("t")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        let Some(enc) = stanza.child("enc") else {
            return;
        };
        let enc_type = enc.attr_str("type").unwrap_or_default().to_owned();
        let ciphertext = enc.content_bytes().unwrap_or_default().to_vec();
        let Some(account) = self.accounts.get_mut(user) else {
            return;
        };
        let phone_jid = account.jid();
        account
            .phone
            .receive(&id, &sender.to_string(), &enc_type, &ciphertext, timestamp);
        if let Some(sender_user) = self.resolve_user(&sender.to_non_device())
            && sender.device != 0
        {
            let receipt = Node::new("receipt")
                .attr("from", phone_jid)
                .attr("id", id)
                .attr("t", timestamp.to_string());
            self.deliver(&sender_user, sender.device, receipt);
        }
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
            self.close(conn, CloseReason::Timeout);
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
        self.events
            .push_back(ServerEvent::LoggedIn { conn, user, device });
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

    // ----- pairing -------------------------------------------------------------------------

    fn send_pair_device(&mut self, now: Timestamp, conn: ConnId) {
        let mut refs = Vec::with_capacity(PAIR_REFS);
        let mut expires = now;
        for index in 0..PAIR_REFS {
            expires += if index == 0 {
                FIRST_REF_MS
            } else {
                NEXT_REF_MS
            };
            let random = self.rng.bytes::<18>();
            let text: String = random
                .iter()
                .map(|b| {
                    char::from(
                        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
                            [usize::from(b & 63)],
                    )
                })
                .collect();
            refs.push((format!("2@{text}"), expires));
        }
        let id = self.new_id();
        let node = Node::new("iq")
            .attr("from", Jid::server_jid())
            .attr("type", "set")
            .attr("id", id.clone())
            .attr("xmlns", "md")
            .children_from([Node::new("pair-device").children_from(
                refs.iter()
                    .map(|(r, _)| Node::new("ref").bytes(r.as_bytes().to_vec())),
            )]);
        if let Some(Stage::Unpaired(reg)) = self.conns.get_mut(&conn).map(|c| &mut c.stage) {
            reg.refs = refs.clone();
            reg.pair_device_id = id;
        }
        self.send(conn, &node);
        self.events.push_back(ServerEvent::PairDeviceSent {
            conn,
            refs: refs.into_iter().map(|(r, _)| r).collect(),
        });
    }

    /// The phone signs a device identity for the companion on `conn` and the server sends
    /// pair-success.
    fn start_pairing(&mut self, now: Timestamp, conn: ConnId, user: &str, adv_secret: &[u8; 32]) {
        let Some(Stage::Unpaired(reg)) = self.conns.get(&conn).map(|c| &c.stage) else {
            return;
        };
        let companion_identity = reg.identity_public;
        let Some(account) = self.accounts.get_mut(user) else {
            return;
        };
        let device = account.next_device_id;
        account.next_device_id = account.next_device_id.wrapping_add(1).max(1);
        let key_index = account.next_key_index;
        account.next_key_index += 1;
        let raw_id = account.raw_id;
        let issued = account.phone.issue_identity(
            &companion_identity,
            adv_secret,
            raw_id,
            key_index,
            now / 1000,
        );
        let device_jid = account.device_jid(device);
        let device_lid = account.device_lid(device);
        let id = self.new_id();
        let node = Node::new("iq")
            .attr("from", Jid::server_jid())
            .attr("type", "set")
            .attr("id", id.clone())
            .attr("xmlns", "md")
            .attr("t", seconds(now))
            .children_from([Node::new("pair-success").children_from([
                bytes_node("device-identity", issued.container.clone()),
                Node::new("device")
                    .attr("jid", device_jid)
                    .attr("lid", device_lid),
                Node::new("platform").attr("name", "android"),
            ])]);
        if let Some(Stage::Unpaired(reg)) = self.conns.get_mut(&conn).map(|c| &mut c.stage) {
            reg.pairing = Some(PendingPair {
                iq_id: id,
                user: user.to_owned(),
                device,
                issued,
            });
        }
        self.send(conn, &node);
    }

    fn handle_unpaired(&mut self, now: Timestamp, conn: ConnId, node: Node) {
        if node.tag != "iq" {
            return;
        }
        let id = node.attr_str("id").unwrap_or_default().to_owned();
        let kind = node.attr_str("type").unwrap_or_default().to_owned();
        let Some(Stage::Unpaired(reg)) = self.conns.get_mut(&conn).map(|c| &mut c.stage) else {
            return;
        };
        let pairing_reply = reg.pairing.as_ref().is_some_and(|p| p.iq_id == id);
        match kind.as_str() {
            "result" if pairing_reply => self.finish_pairing(now, conn, &node),
            "error" if pairing_reply => {
                reg.pairing = None;
                let error = node.child("error");
                let code = error
                    .and_then(|e| e.attr_str("code"))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                let text = error
                    .and_then(|e| e.attr_str("text"))
                    .unwrap_or_default()
                    .to_owned();
                self.events
                    .push_back(ServerEvent::PairRejectedByCompanion { conn, code, text });
            }
            "result" | "error" => {}
            "set" if node.attr_str("xmlns") == Some("md") => {
                match node
                    .child("link_code_companion_reg")
                    .and_then(|c| c.attr_str("stage"))
                {
                    Some("companion_hello") => self.companion_hello(conn, &id, &node),
                    Some("companion_finish") => self.companion_finish(now, conn, &id, &node),
                    _ => self.send(conn, &iq_error(&id, 400, "bad-request")),
                }
            }
            "get" if node.attr_str("xmlns") == Some("w:p") => {
                self.send(conn, &iq_result(&id, Vec::new()));
            }
            _ => self.send(conn, &iq_error(&id, 501, "feature-not-implemented")),
        }
    }

    fn finish_pairing(&mut self, now: Timestamp, conn: ConnId, node: &Node) {
        let Some(Stage::Unpaired(reg)) = self.conns.get_mut(&conn).map(|c| &mut c.stage) else {
            return;
        };
        let Some(pending) = reg.pairing.take() else {
            return;
        };
        let identity = node
            .child("pair-device-sign")
            .and_then(|sign| sign.child("device-identity"));
        let key_index = identity
            .and_then(|i| i.attr_str("key-index"))
            .and_then(|k| k.parse::<u32>().ok());
        let reply = identity.and_then(Node::content_bytes).unwrap_or_default();
        let companion_identity = reg.identity_public;
        let new_device = Device {
            id: pending.device,
            noise_public: Some(reg.noise_public),
            identity_public: reg.identity_public,
            registration_id: reg.registration_id,
            signed_prekey: reg.signed_prekey.clone(),
            prekeys: BTreeMap::new(),
            key_index: pending.issued.key_index,
            name: reg.name.clone(),
            platform_type: reg.platform_type,
            offline: VecDeque::new(),
            unacked: Vec::new(),
        };
        let Some(account) = self.accounts.get_mut(&pending.user) else {
            return;
        };
        let valid = key_index == Some(pending.issued.key_index)
            && account.phone.check_device_signature(
                reply,
                &pending.issued.details,
                &companion_identity,
            );
        if !valid {
            self.events
                .push_back(ServerEvent::BadDeviceSignature { conn });
            self.close(
                conn,
                CloseReason::Protocol("bad pair-device-sign".to_owned()),
            );
            return;
        }
        account.devices.insert(pending.device, new_device);
        let _ = now;
        self.events.push_back(ServerEvent::Paired {
            conn,
            user: pending.user,
            device: pending.device,
        });
        let _ = self.send_stream_error(conn, StreamErrorKind::RestartRequired);
    }

    fn companion_hello(&mut self, conn: ConnId, id: &str, node: &Node) {
        let Some(reg_node) = node.child("link_code_companion_reg") else {
            return;
        };
        if let Some(code) = self.link_code_error.take() {
            self.send(conn, &iq_error(id, code, error_text(code)));
            return;
        }
        let user = reg_node
            .attr_jid("jid")
            .filter(|jid| jid.server == DEFAULT_USER_SERVER)
            .map(|jid| jid.user)
            .unwrap_or_default();
        let digits_ok = (7..=15).contains(&user.len())
            && user.bytes().all(|b| b.is_ascii_digit())
            && !user.starts_with('0');
        let wrapped = child_bytes(
            reg_node,
            "link_code_pairing_wrapped_companion_ephemeral_pub",
        );
        let noise: Option<[u8; 32]> = child_array(reg_node, "companion_server_auth_key_pub");
        let platform_id = child_bytes(reg_node, "companion_platform_id");
        let display = child_bytes(reg_node, "companion_platform_display")
            .and_then(|d| std::str::from_utf8(d).ok())
            .unwrap_or_default();
        let Some(Stage::Unpaired(reg)) = self.conns.get(&conn).map(|c| &c.stage) else {
            return;
        };
        let platform_ok = platform_id.is_some_and(|p| matches!(p, [b'1'..=b'9'] | [b'a'..=b'f']));
        let valid = digits_ok
            && wrapped.is_some_and(|w| w.len() == 80)
            && noise == Some(reg.noise_public)
            && platform_ok
            && valid_display(display)
            && self.accounts.contains_key(&user);
        if !valid {
            self.send(conn, &iq_error(id, 400, "bad-request"));
            return;
        }
        let reference = self
            .rng
            .bytes::<16>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        let link = LinkCode {
            user,
            wrapped_companion_ephemeral: wrapped.unwrap_or_default().to_vec(),
            reference: reference.clone().into_bytes(),
            hello_sent: false,
        };
        if let Some(Stage::Unpaired(reg)) = self.conns.get_mut(&conn).map(|c| &mut c.stage) {
            reg.link = Some(link);
        }
        self.send(
            conn,
            &iq_result(
                id,
                vec![
                    Node::new("link_code_companion_reg").children_from([bytes_node(
                        "link_code_pairing_ref",
                        reference.into_bytes(),
                    )]),
                ],
            ),
        );
    }

    fn companion_finish(&mut self, now: Timestamp, conn: ConnId, id: &str, node: &Node) {
        let Some(reg_node) = node.child("link_code_companion_reg") else {
            return;
        };
        let Some(Stage::Unpaired(reg)) = self.conns.get(&conn).map(|c| &c.stage) else {
            return;
        };
        let Some(link) = reg.link.as_ref().filter(|link| link.hello_sent) else {
            self.send(conn, &iq_error(id, 400, "bad-request"));
            return;
        };
        let bundle = child_bytes(reg_node, "link_code_pairing_wrapped_key_bundle")
            .unwrap_or_default()
            .to_vec();
        let identity: Option<[u8; 32]> = child_array(reg_node, "companion_identity_public");
        let same_ref = child_bytes(reg_node, "link_code_pairing_ref") == Some(&link.reference[..]);
        if identity != Some(reg.identity_public) || !same_ref {
            self.send(conn, &iq_error(id, 400, "bad-request"));
            return;
        }
        let user = link.user.clone();
        let companion_identity = reg.identity_public;
        self.send(conn, &iq_result(id, Vec::new()));
        let Some(account) = self.accounts.get_mut(&user) else {
            return;
        };
        match account.phone.open_key_bundle(&bundle, &companion_identity) {
            Ok(adv_secret) => self.start_pairing(now, conn, &user, &adv_secret),
            Err(error) => self
                .events
                .push_back(ServerEvent::LinkCodeBundleRejected { conn, error }),
        }
    }

    // ----- a logged-in device ----------------------------------------------------------------

    fn handle_node(&mut self, now: Timestamp, conn: ConnId, node: Node) {
        let session = match self.conns.get(&conn).map(|c| &c.stage) {
            Some(Stage::Unpaired(_)) => {
                self.handle_unpaired(now, conn, node);
                return;
            }
            Some(Stage::Device(session)) => (session.user.clone(), session.device),
            _ => return,
        };
        match node.tag.as_ref() {
            "iq" => self.handle_iq(now, conn, &session, &node),
            "ack" => {
                if let Some(id) = node.attr_str("id") {
                    self.acknowledged(&session, id);
                }
            }
            "receipt" => self.route_receipt(now, conn, &session, &node),
            "message" => self.route_message(now, conn, &session, &node),
            _ => {}
        }
    }

    fn handle_iq(&mut self, now: Timestamp, conn: ConnId, session: &(String, u16), node: &Node) {
        let id = node.attr_str("id").unwrap_or_default().to_owned();
        let kind = node.attr_str("type").unwrap_or_default();
        let xmlns = node.attr_str("xmlns").unwrap_or_default();
        match (kind, xmlns) {
            ("result" | "error", _) => {}
            ("get", "w:p") | ("get", "urn:xmpp:ping") => {
                let pong = iq_result(&id, Vec::new()).attr("t", seconds(now));
                self.send(conn, &pong);
            }
            ("set", "passive") => {
                let active = node.child("active").is_some();
                if let Some(Stage::Device(state)) = self.conns.get_mut(&conn).map(|c| &mut c.stage)
                {
                    state.active = active;
                }
                self.send(conn, &iq_result(&id, Vec::new()));
                if active {
                    self.flush_offline(conn, session);
                }
            }
            ("set", "encrypt") if node.child("rotate").is_some() => {
                let skey = node.child("rotate").and_then(|r| r.child("skey"));
                match skey.and_then(parse_signed_prekey) {
                    Some(skey) => {
                        if let Some(device) = self.device_mut(session) {
                            device.signed_prekey = skey;
                        }
                        self.send(conn, &iq_result(&id, Vec::new()));
                    }
                    None => self.send(conn, &iq_error(&id, 400, "bad-request")),
                }
            }
            ("set", "encrypt") => self.upload_prekeys(conn, session, &id, node),
            ("get", "encrypt") if node.child("count").is_some() => {
                let count = self.device_mut(session).map_or(0, |d| d.prekeys.len());
                let reply = iq_result(
                    &id,
                    vec![Node::new("count").attr("value", count.to_string())],
                );
                self.send(conn, &reply);
            }
            ("get", "encrypt") if node.child("key").is_some() => {
                self.fetch_bundles(conn, &id, node);
            }
            ("get", "usync") => self.usync(conn, &id, node),
            ("set", "md") if node.child("remove-companion-device").is_some() => {
                self.send(conn, &iq_result(&id, Vec::new()));
                let target = node
                    .child("remove-companion-device")
                    .and_then(|r| r.attr_jid("jid"))
                    .map_or(session.1, |jid| jid.device);
                let _ = self.remove_device(&session.0, target);
            }
            ("set", "urn:xmpp:whatsapp:dirty") => self.send(conn, &iq_result(&id, Vec::new())),
            _ => self.send(conn, &iq_error(&id, 501, "feature-not-implemented")),
        }
    }

    fn device_mut(&mut self, session: &(String, u16)) -> Option<&mut Device> {
        self.accounts
            .get_mut(&session.0)?
            .devices
            .get_mut(&session.1)
    }

    fn upload_prekeys(&mut self, conn: ConnId, session: &(String, u16), id: &str, node: &Node) {
        let parsed = (|| {
            let registration_id = be_u32(child_bytes(node, "registration")?)?;
            if child_bytes(node, "type")? != [5] {
                return None;
            }
            let identity: [u8; 32] = child_array(node, "identity")?;
            let skey = parse_signed_prekey(node.child("skey")?)?;
            let mut keys = Vec::new();
            for key in node.child("list")?.children_by_tag("key") {
                let key_id = be_u32(child_bytes(key, "id")?)?;
                let value: [u8; 32] = child_array(key, "value")?;
                keys.push((key_id, value));
            }
            Some((registration_id, identity, skey, keys))
        })();
        let Some((registration_id, identity, skey, keys)) = parsed else {
            self.send(conn, &iq_error(id, 400, "bad-request"));
            return;
        };
        let Some(device) = self.device_mut(session) else {
            return;
        };
        if identity != device.identity_public {
            self.send(conn, &iq_error(id, 409, "conflict"));
            return;
        }
        device.registration_id = registration_id;
        device.signed_prekey = skey;
        device.prekeys.extend(keys);
        self.send(conn, &iq_result(id, Vec::new()));
    }

    /// Resolves a user JID (phone number or LID) to the account's phone number.
    fn resolve_user(&self, jid: &Jid) -> Option<String> {
        match jid.server.as_ref() {
            DEFAULT_USER_SERVER => self
                .accounts
                .contains_key(&jid.user)
                .then(|| jid.user.clone()),
            HIDDEN_USER_SERVER => self.lids.get(&jid.user).cloned(),
            _ => None,
        }
    }

    fn fetch_bundles(&mut self, conn: ConnId, id: &str, node: &Node) {
        let mut users = Vec::new();
        for user in node.child("key").map(Node::children).unwrap_or_default() {
            let Some(jid) = user.attr_jid("jid") else {
                continue;
            };
            let found = self.resolve_user(&jid).and_then(|account| {
                let device = self
                    .accounts
                    .get_mut(&account)?
                    .devices
                    .get_mut(&jid.device)?;
                let prekey = device.take_prekey();
                let mut children = vec![
                    bytes_node(
                        "registration",
                        device.registration_id.to_be_bytes().to_vec(),
                    ),
                    bytes_node("type", vec![5]),
                    bytes_node("identity", device.identity_public.to_vec()),
                    signed_prekey_node(&device.signed_prekey),
                ];
                if let Some(prekey) = prekey {
                    children.push(Node::new("key").children_from([
                        bytes_node("id", id3(prekey.id)),
                        bytes_node("value", prekey.public.to_vec()),
                    ]));
                }
                Some(children)
            });
            let entry = Node::new("user").attr("jid", jid.clone());
            users.push(match found {
                Some(children) => entry.children_from(children),
                None => entry.children_from([Node::new("error")
                    .attr("code", "404")
                    .attr("text", "item-not-found")]),
            });
        }
        self.send(
            conn,
            &iq_result(id, vec![Node::new("list").children_from(users)]),
        );
    }

    fn usync(&mut self, conn: ConnId, id: &str, node: &Node) {
        let Some(usync) = node.child("usync") else {
            self.send(conn, &iq_error(id, 400, "bad-request"));
            return;
        };
        let wants_devices = usync
            .child("query")
            .is_some_and(|q| q.child("devices").is_some());
        let wants_lid = usync
            .child("query")
            .is_some_and(|q| q.child("lid").is_some());
        let mut users = Vec::new();
        for user in usync.child("list").map(Node::children).unwrap_or_default() {
            let Some(jid) = user.attr_jid("jid") else {
                continue;
            };
            let Some(account) = self.resolve_user(&jid).and_then(|u| self.accounts.get(&u)) else {
                users.push(
                    Node::new("user")
                        .attr("jid", jid)
                        .children_from([Node::new("devices").children_from([Node::new("error")
                            .attr("code", "404")
                            .attr("text", "item-not-found")])]),
                );
                continue;
            };
            let mut children = Vec::new();
            if wants_devices {
                let list = account.devices.values().map(|device| {
                    let entry = Node::new("device").attr("id", device.id.to_string());
                    if device.id == 0 {
                        entry
                    } else {
                        entry.attr("key-index", device.key_index.to_string())
                    }
                });
                children.push(
                    Node::new("devices").children_from([
                        Node::new("device-list").children_from(list),
                        Node::new("key-index-list")
                            .attr("ts", "0")
                            .bytes(key_index_list(account)),
                    ]),
                );
            }
            if wants_lid {
                children.push(Node::new("lid").attr("val", account.lid_jid()));
            }
            users.push(Node::new("user").attr("jid", jid).children_from(children));
        }
        let mut reply_usync = Node::new("usync");
        for key in ["sid", "mode", "context", "last", "index"] {
            if let Some(value) = usync.attr_str(key) {
                reply_usync = reply_usync.attr(key, value.to_owned());
            }
        }
        let reply_usync = reply_usync.children_from([
            Node::new("result").children_from([Node::new("devices")]),
            Node::new("list").children_from(users),
        ]);
        self.send(conn, &iq_result(id, vec![reply_usync]));
    }

    // ----- delivery ------------------------------------------------------------------------

    /// Hands `stanza` to a device: on its connection if it is logged in and active, else into
    /// its offline queue. The phone (device 0) keeps its inbox in the queue too.
    pub fn deliver(&mut self, user: &str, device: u16, stanza: Node) {
        if device == 0 {
            // The phone is always online and handles its stanzas at once.
            if stanza.tag == "message" {
                self.phone_receive(user, &stanza);
            }
            return;
        }
        let conn = self.device_conn(user, device).filter(|&conn| {
            matches!(self.conns.get(&conn).map(|c| &c.stage), Some(Stage::Device(s)) if s.active)
        });
        let Some(target) = self
            .accounts
            .get_mut(user)
            .and_then(|a| a.devices.get_mut(&device))
        else {
            return;
        };
        match conn {
            Some(conn) => {
                target.unacked.push(stanza.clone());
                self.send(conn, &stanza);
            }
            None => {
                if target.offline.len() >= MAX_OFFLINE_QUEUE {
                    target.offline.pop_front();
                }
                target.offline.push_back(stanza);
            }
        }
    }

    fn flush_offline(&mut self, conn: ConnId, session: &(String, u16)) {
        let Some(device) = self.device_mut(session) else {
            return;
        };
        let queued: Vec<Node> = device.offline.drain(..).collect();
        let count = queued.len();
        device.unacked.extend(queued.iter().cloned());
        for mut stanza in queued {
            stanza.set_attr("offline", "1");
            self.send(conn, &stanza);
        }
        let marker =
            Node::new("ib").children_from([Node::new("offline").attr("count", count.to_string())]);
        self.send(conn, &marker);
    }

    fn acknowledged(&mut self, session: &(String, u16), id: &str) {
        if let Some(device) = self.device_mut(session) {
            device
                .unacked
                .retain(|stanza| stanza.attr_str("id") != Some(id));
        }
    }

    fn route_message(
        &mut self,
        now: Timestamp,
        conn: ConnId,
        session: &(String, u16),
        node: &Node,
    ) {
        let id = node.attr_str("id").unwrap_or_default().to_owned();
        let Some(to) = node.attr_jid("to") else {
            return;
        };
        let Some(sender) = self.accounts.get(&session.0) else {
            return;
        };
        let via_lid = to.server == HIDDEN_USER_SERVER;
        let from = if via_lid {
            sender.device_lid(session.1)
        } else {
            sender.device_jid(session.1)
        };
        let push_name = sender.push_name.clone();
        let kind = node.attr_str("type").unwrap_or("text").to_owned();
        let extra: Vec<Node> = node
            .children()
            .iter()
            .filter(|child| child.tag != "participants" && child.tag != "enc")
            .cloned()
            .collect();
        // Targets: `participants/to[jid]` with their own `enc`, or the `enc` children for `to`.
        let mut targets: Vec<(Jid, Vec<Node>)> = Vec::new();
        if let Some(participants) = node.child("participants") {
            for to_node in participants.children_by_tag("to") {
                if let Some(jid) = to_node.attr_jid("jid") {
                    targets.push((jid, to_node.children().to_vec()));
                }
            }
        } else {
            let encs: Vec<Node> = node.children_by_tag("enc").cloned().collect();
            if !encs.is_empty() {
                targets.push((to.clone(), encs));
            }
        }
        for (jid, encs) in targets {
            let Some(user) = self.resolve_user(&jid) else {
                continue;
            };
            let mut delivered = Node::new("message")
                .attr(
                    "from",
                    if user == session.0 {
                        Value::from(from.to_non_device())
                    } else {
                        Value::from(from.clone())
                    },
                )
                .attr("id", id.clone())
                .attr("type", kind.clone())
                .attr("t", seconds(now))
                .attr("notify", push_name.clone());
            if user == session.0 {
                delivered = delivered
                    .attr("participant", from.clone())
                    .attr("recipient", to.clone());
            }
            let mut children = encs;
            children.extend(extra.iter().cloned());
            self.deliver(&user, jid.device, delivered.children_from(children));
        }
        let ack = Node::new("ack")
            .attr("class", "message")
            .attr("id", id)
            .attr("from", to)
            .attr("t", seconds(now));
        self.send(conn, &ack);
    }

    fn route_receipt(
        &mut self,
        now: Timestamp,
        conn: ConnId,
        session: &(String, u16),
        node: &Node,
    ) {
        let Some(id) = node.attr_str("id").map(str::to_owned) else {
            return;
        };
        self.acknowledged(session, &id);
        let Some(to) = node.attr_jid("to") else {
            return;
        };
        let Some(sender) = self.accounts.get(&session.0) else {
            return;
        };
        let from = if to.server == HIDDEN_USER_SERVER {
            sender.device_lid(session.1)
        } else {
            sender.device_jid(session.1)
        };
        let kind = node.attr_str("type").map(str::to_owned);
        let target = node.attr_jid("participant").unwrap_or_else(|| to.clone());
        if let Some(user) = self.resolve_user(&target) {
            let devices: Vec<u16> = self
                .accounts
                .get(&user)
                .map(|a| a.devices.keys().copied().collect())
                .unwrap_or_default();
            for device in devices {
                if user == session.0 && device == session.1 {
                    continue;
                }
                if target.device != 0 && device != target.device {
                    continue;
                }
                let mut receipt = Node::new("receipt")
                    .attr("from", from.clone())
                    .attr("id", id.clone())
                    .attr("t", seconds(now));
                if let Some(kind) = &kind {
                    receipt = receipt.attr("type", kind.clone());
                }
                if let Content::Nodes(children) = &node.content {
                    receipt = receipt.children_from(children.clone());
                }
                self.deliver(&user, device, receipt);
            }
        }
        let mut ack = Node::new("ack")
            .attr("class", "receipt")
            .attr("id", id)
            .attr("from", to);
        if let Some(kind) = kind {
            ack = ack.attr("type", kind);
        }
        self.send(conn, &ack);
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

fn signed_prekey_node(skey: &SignedPreKey) -> Node {
    Node::new("skey").children_from([
        bytes_node("id", id3(skey.id)),
        bytes_node("value", skey.public.to_vec()),
        bytes_node("signature", skey.signature.to_vec()),
    ])
}

/// The `ADVSignedKeyIndexList` of an account's device list: the phone signs the list of valid
/// key indexes with its identity key (prefix `06 02`).
fn key_index_list(account: &Account) -> Vec<u8> {
    use walink_core::proto::wa::{AdvKeyIndexList, AdvSignedKeyIndexList};
    let details = AdvKeyIndexList {
        raw_id: Some(account.raw_id),
        timestamp: Some(0),
        current_index: account.valid_key_indexes().last().copied(),
        valid_indexes: account.valid_key_indexes(),
        account_type: None,
    }
    .encode_to_vec();
    let signature = account.phone.sign_key_index_list(&details);
    AdvSignedKeyIndexList {
        details: Some(details),
        account_signature: Some(signature.to_vec()),
        account_signature_key: Some(account.phone.identity_public().to_vec()),
    }
    .encode_to_vec()
}
