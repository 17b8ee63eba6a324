//! The `Client` state machine that ties every protocol layer together.
//!
//! One `Client` is one linked device. The host drives it with the eight calls of the driver
//! contract (see the crate docs) plus the answers to its requests: [`Client::handle_loaded`]
//! for records loaded on demand and [`Client::handle_fetched`] for HTTPS requests.
//! This file only dispatches: each input goes to the sub-machine that owns it, which works on
//! a `context::Context` and the one output queue:
//!
//! - `connection`: header, Noise handshake, transport frames;
//! - `state` / `backoff`: the lifecycle, its reasons, the reconnect schedule;
//! - `pairing`: QR refs, `companion_reg_refresh`, pairing codes, pair-success;
//! - `login`: `<success>`/`<failure>`, the post-login round trip, prekeys, `<ib>`;
//! - `keepalive`, `iq`: pings, pending IQs with deadlines;
//! - `device`: own keys and identity, persisted;
//! - `messaging`: messages, receipts, retries (the msg module).
//!
//! The lifecycle, its reasons, timers and what a host must do are in `docs/client.md`.

mod app_sync;
mod backoff;
mod command;
mod config;
mod connection;
mod context;
mod device;
pub mod endpoints;
mod event;
mod fetch;
pub mod groups;
pub mod history;
mod iq;
mod keepalive;
mod login;
pub mod media;
pub mod messaging;
mod output;
mod owner;
mod pairing;
mod per_collection;
mod rng;
pub mod social;
mod stanza;
mod state;

pub use app_sync::{AppStateFailure, VIEW_KEY as APP_STATE_VIEW_KEY};
pub use command::{Command, CommandError, CommandId, CommandOutput};
pub use config::{Config, ConfigError, ConfigOptions, DEFAULT_DEVICE_NAME, IdentityPolicy};
pub use event::{Event, OfflinePreview, PairingMode, State, StateReason};
pub use fetch::{
    Body, DecryptInto, FetchError, FetchId, FetchRequest, FetchResponse, FetchResult, Method,
    ResponseTarget,
};
pub use media::{HostUpload, MediaData, MediaFields, MediaKind, OutgoingMedia, media_fields};
pub use messaging::{
    DecryptFailure, DecryptFailureKind, IdentityChange, IdentityInfo, IncomingMessage,
    PollOptionVotes, PollVote, Receipt, RefusedRetry, RetryRefusal,
};
pub use output::{
    CloseReason, LoadId, LocalFault, Output, PeerFault, PostLoginStep, ProtocolError,
};
pub use social::{
    About, BusinessProfile, CallAction, CallEvent, ChatState, ChatStateUpdate, NumberInfo,
    PresenceUpdate, ProfilePicture,
};

use crate::binary::{Jid, Node};
use crate::limits::CLIENT_RNG_RESEED_MS;
use crate::store::{Batch, Change, Record, RecordKey, RestoreError, Space};

use connection::Connection;
use context::{Context, Loads, Requests};
use device::Device;
use fetch::Fetches;
use iq::{IqError, IqResult, Iqs};
use keepalive::Keepalive;
use login::{Login, LoginProgress};
use messaging::Messaging;
use output::Outputs;
use owner::{AnyTag, Owner, Tag};
use pairing::Pairing;
use rng::Rng;
use state::{AfterClose, Lifecycle};

/// Unix milliseconds.
pub type Timestamp = u64;

/// The tag of the logout IQ: the command it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LogoutIq(CommandId);

impl Tag for LogoutIq {
    const OWNER: Owner = Owner::Client;
}

/// One linked device of one WhatsApp account, as a sans-IO state machine.
///
/// Its `Debug` shows the lifecycle state, the device's JIDs and how many outputs wait: never a
/// key, a record or a message (docs/security.md).
pub struct Client {
    config: Config,
    rng: Rng,
    out: Outputs,
    device: Device,
    conn: Connection,
    iqs: Iqs,
    loads: Loads,
    fetches: Fetches,
    requests: Requests,
    lifecycle: Lifecycle,
    backoff: backoff::Backoff,
    keepalive: Keepalive,
    pairing: Pairing,
    login: Login,
    messaging: Messaging,
    app_sync: app_sync::AppSync,
    media: media::Media,
    history: history::History,
    groups: groups::Groups,
    social: social::Social,
    /// When a backoff delay ends.
    reconnect_at: Option<Timestamp>,
    /// When the generator is next reseeded from the operating system (set by the first input).
    rng_reseed_at: Option<Timestamp>,
    next_command: u64,
    /// The latest `now` seen; time never runs backwards inside the client.
    now: Timestamp,
}

impl core::fmt::Debug for Client {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Client")
            .field("state", self.lifecycle.state())
            .field("jid", &self.device.jid())
            .field("lid", &self.device.lid())
            .field("out", &self.out)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// Borrows the shared parts of `$client` as a `Context` and the queue, leaving the named
/// sub-machines free. What the sub-machine asks for through the context is carried out when
/// the step it runs in ends ([`Client::step`]).
macro_rules! split {
    ($client:ident, $now:expr) => {
        (
            Context::new(
                $now,
                matches!($client.lifecycle.state(), State::Connected),
                context::Lent {
                    config: &$client.config,
                    device: &mut $client.device,
                    rng: &mut $client.rng,
                    conn: &mut $client.conn,
                    iqs: &mut $client.iqs,
                    loads: &mut $client.loads,
                    fetches: &mut $client.fetches,
                    requests: &mut $client.requests,
                },
            ),
            &mut $client.out,
        )
    };
}

impl Client {
    /// A client for the device stored in `records`, or a new device when there are none (its
    /// records are the first output). The records are those of the spaces loaded at start
    /// ([`Space::loaded_at_start`]); records of other spaces may be given too and are handed
    /// to the module that owns them. The first outputs start a connection.
    /// A configuration whose trust root cannot check signatures ([`Config::check`]) is refused
    /// with [`RestoreError::InvalidConfig`].
    pub fn new(config: Config, records: Vec<Record>) -> Result<Client, RestoreError> {
        config.check()?;
        let mut rng = match config.unsafe_test_rng_seed {
            Some(seed) => Rng::from_seed(seed),
            None => Rng::from_os().ok_or(RestoreError::NoRandomness)?,
        };
        // Record keys (not `(Space, &str)` pairs): the messaging machine sorts the same type,
        // so the module holds one sort for both (docs/decisions.md, "wasm size").
        let mut seen: Vec<RecordKey> = records
            .iter()
            .map(|r| RecordKey::new(r.space, r.key.as_str()))
            .collect();
        crate::sort::sort_unstable(&mut seen);
        if let Some(pair) = seen.windows(2).find(|w| w.first() == w.get(1)) {
            let (space, key) = pair
                .first()
                .map_or((Space::Device, String::new()), |k| (k.space, k.key.clone()));
            return Err(RestoreError::Duplicate { space, key });
        }
        drop(seen);
        let mut out = Outputs::default();
        let device_record = records.iter().find(|r| r.space == Space::Device);
        let device = match device_record {
            Some(record) => {
                let signed: Vec<&Record> = records
                    .iter()
                    .filter(|r| r.space == Space::SignedPreKey)
                    .collect();
                Device::restore(record, &signed)?
            }
            None if records.is_empty() => {
                let (device, batch) = Device::generate(&mut rng);
                out.persist(batch);
                device
            }
            None => return Err(RestoreError::MissingDevice),
        };
        for record in records.iter().filter(|r| r.space == Space::PreKey) {
            crate::store::decode_pre_key(record)?;
        }
        for record in records.iter().filter(|r| r.space == Space::Identity) {
            crate::store::decode_identity(record)?;
        }
        let app_sync = app_sync::AppSync::restore(&records);
        let social = social::Social::restore(&records, &mut out);
        let others: Vec<Record> = records
            .into_iter()
            .filter(|r| {
                !matches!(
                    r.space,
                    Space::Device | Space::SignedPreKey | Space::PreKey | Space::PrivacyToken
                )
            })
            .collect();
        let messaging = Messaging::restore(others)?;
        let mut client = Client {
            config,
            rng,
            out,
            device,
            conn: Connection::default(),
            iqs: Iqs::default(),
            loads: Loads::default(),
            fetches: Fetches::default(),
            requests: Requests::default(),
            lifecycle: Lifecycle::default(),
            backoff: backoff::Backoff::default(),
            keepalive: Keepalive::default(),
            pairing: Pairing::default(),
            login: Login::default(),
            messaging,
            app_sync,
            media: media::Media::default(),
            history: history::History::default(),
            groups: groups::Groups::default(),
            social,
            reconnect_at: None,
            rng_reseed_at: None,
            next_command: 0,
            now: 0,
        };
        client.start_connection(None, StateReason::Started);
        Ok(client)
    }

    /// The current lifecycle state.
    pub fn state(&self) -> &State {
        self.lifecycle.state()
    }

    /// Own phone-number device JID, once paired.
    pub fn jid(&self) -> Option<&Jid> {
        self.device.jid()
    }

    /// Own LID device JID, once known.
    pub fn lid(&self) -> Option<&Jid> {
        self.device.lid()
    }

    /// What the client knows of a group: its last metadata with the changes announced since.
    pub fn group(&self, jid: &str) -> Option<&groups::GroupInfo> {
        self.groups.known(jid)
    }

    /// The host opened the socket asked for by `Output::Connect`.
    pub fn handle_connected(&mut self, now: Timestamp) {
        let now = self.clock(now);
        self.step(now, |client| client.connected(now));
    }

    fn connected(&mut self, now: Timestamp) {
        if !self.conn.is_opening() {
            return;
        }
        // Every login starts from fresh entropy: the handshake's ephemeral key comes next.
        self.reseed_rng(now);
        self.iqs.reset_prefix(&mut self.rng);
        let result =
            self.conn
                .handle_connected(&self.device, &self.config, &mut self.rng, &mut self.out);
        match result {
            Ok(()) => {
                self.lifecycle
                    .set(State::Handshaking, StateReason::SocketOpened, &mut self.out)
            }
            Err(error) => self.close(now, CloseReason::Protocol(error), true),
        }
    }

    /// Bytes arrived on the socket (any chunking).
    pub fn handle_bytes(&mut self, now: Timestamp, bytes: &[u8]) {
        let now = self.clock(now);
        if !self.conn.is_active() || self.conn.is_opening() {
            return;
        }
        self.conn.push(bytes);
        loop {
            let next = self
                .conn
                .next_node(now, &self.device, &self.config, &mut self.out);
            match next {
                Ok(Some(node)) => {
                    self.conn.clear_deadline();
                    self.step(now, |client| client.dispatch(now, node));
                    if !self.conn.is_open() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    self.step(now, |client| {
                        client.close(now, CloseReason::Protocol(error), true);
                    });
                    break;
                }
            }
        }
    }

    /// The socket closed (or could not be opened) for `reason` (usually `Network`).
    pub fn handle_closed(&mut self, now: Timestamp, reason: CloseReason) {
        let now = self.clock(now);
        if self.conn.is_active() {
            self.step(now, |client| client.close(now, reason, false));
        }
    }

    /// A timer fired; spurious or late calls are harmless.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let now = self.clock(now);
        self.step(now, |client| {
            if client.reconnect_at.is_some_and(|at| now >= at) {
                client.reconnect_at = None;
                client.start_connection(Some(now), StateReason::BackoffElapsed);
            }
            if client.conn.deadline().is_some_and(|d| now >= d) {
                client.close(now, CloseReason::ConnectTimeout, true);
            }
            for tag in client.iqs.take_expired(now) {
                client.route_iq(now, tag, Err(IqError::TimedOut));
            }
        });
        self.step(now, |client| {
            let (mut ctx, out) = split!(client, now);
            client.keepalive.handle_timeout(&mut ctx, out);
            client.pairing.handle_timeout(&mut ctx, out);
        });
        self.step(now, |client| {
            let (mut ctx, out) = split!(client, now);
            client.messaging.handle_timeout(now, &mut ctx, out);
        });
        self.step(now, |client| {
            let (mut ctx, out) = split!(client, now);
            client.app_sync.handle_timeout(&mut ctx, out);
            client.media.handle_timeout(now, out);
        });
    }

    /// Starts `command`; it ends in exactly one `Event::CommandDone` with the returned id.
    pub fn command(&mut self, now: Timestamp, command: Command) -> CommandId {
        let now = self.clock(now);
        self.next_command += 1;
        let id = CommandId(self.next_command);
        self.step(now, |client| client.run_command(now, id, command));
        id
    }

    fn run_command(&mut self, now: Timestamp, id: CommandId, command: Command) {
        match command {
            Command::PairWithCode { phone } => {
                let expected = !self.lifecycle.is_resting();
                let (mut ctx, out) = split!(self, now);
                self.pairing
                    .command_pair_code(id, &phone, expected, &mut ctx, out);
            }
            Command::Connect => {
                let result = if self.lifecycle.is_resting()
                    || matches!(self.lifecycle.state(), State::Reconnecting { .. })
                {
                    if matches!(self.lifecycle.state(), State::LoggedOut) {
                        let (device, batch) = Device::generate(&mut self.rng);
                        self.device = device;
                        self.out.persist(batch);
                    }
                    self.backoff.reset();
                    self.reconnect_at = None;
                    self.start_connection(Some(now), StateReason::ConnectRequested);
                    Ok(CommandOutput::None)
                } else {
                    Err(CommandError::InvalidState)
                };
                self.out.event(Event::CommandDone { id, result });
            }
            Command::Disconnect => {
                self.reconnect_at = None;
                if self.conn.is_active() {
                    self.close(now, CloseReason::Local, true);
                }
                self.pairing.cancel_parked(&mut self.out);
                if !matches!(
                    self.lifecycle.state(),
                    State::LoggedOut | State::Replaced | State::ClientOutdated
                ) {
                    self.lifecycle.set(
                        State::Disconnected,
                        StateReason::DisconnectRequested,
                        &mut self.out,
                    );
                }
                self.out.event(Event::CommandDone {
                    id,
                    result: Ok(CommandOutput::None),
                });
            }
            Command::Logout => self.logout(now, id),
            Command::AppState(action) => {
                let (mut ctx, out) = split!(self, now);
                self.app_sync.command(id, action, &mut ctx, out);
            }
            Command::RequestHistory {
                chat,
                oldest_id,
                oldest_from_me,
                oldest_timestamp,
                count,
            } => {
                let own = self.device.jid().map(Jid::to_non_device);
                let chat_ok = chat.parse::<Jid>().is_ok_and(|jid| !jid.user.is_empty());
                let error = if !chat_ok {
                    Some(CommandError::InvalidAddress)
                } else if count == 0
                    || count > crate::limits::HISTORY_MAX_ON_DEMAND_MESSAGES
                    || oldest_id.is_empty()
                {
                    Some(CommandError::InvalidMessage)
                } else if own.is_none() {
                    Some(CommandError::NotPaired)
                } else {
                    None
                };
                match (error, own) {
                    (None, Some(_)) => {
                        let request = history::on_demand_request(
                            &chat,
                            &oldest_id,
                            oldest_from_me,
                            oldest_timestamp,
                            count,
                        );
                        let (mut ctx, out) = split!(self, now);
                        self.messaging.send_to_primary(id, request, &mut ctx, out);
                    }
                    (error, _) => self.out.event(Event::CommandDone {
                        id,
                        result: Err(error.unwrap_or(CommandError::NotPaired)),
                    }),
                }
            }
            Command::GetChatSettings { chat } => {
                let (mut ctx, out) = split!(self, now);
                self.app_sync.get_chat_settings(id, chat, &mut ctx, out);
            }
            Command::SendMedia { to, kind, media } => {
                let (mut ctx, out) = split!(self, now);
                self.media.send(id, to, kind, media, &mut ctx, out);
            }
            Command::DownloadMedia {
                id: message_id,
                chat,
                sender,
                message,
                sink,
            } => {
                let (mut ctx, out) = split!(self, now);
                let received = media::Received {
                    message_id,
                    chat,
                    sender,
                    message: &message,
                    sink,
                };
                self.media.download(id, received, &mut ctx, out);
            }
            Command::Group(command) => {
                let (mut ctx, out) = split!(self, now);
                self.groups.command(id, command, &mut ctx, out);
            }
            social if social::owns(&social) => {
                let (mut ctx, out) = split!(self, now);
                self.social.command(id, social, &mut ctx, out);
            }
            other => {
                let (mut ctx, out) = split!(self, now);
                self.messaging.send(now, id, other, &mut ctx, out);
            }
        }
    }

    /// The records asked for by `Output::Load { id, .. }` (those that exist).
    pub fn handle_loaded(&mut self, now: Timestamp, id: LoadId, records: Vec<Record>) {
        let now = self.clock(now);
        let Some(tag) = self.loads.take(id) else {
            return;
        };
        self.step(now, |client| client.route_loaded(now, id, tag, records));
    }

    /// Gives loaded records to the tag's owner.
    fn route_loaded(&mut self, now: Timestamp, id: LoadId, tag: AnyTag, records: Vec<Record>) {
        match tag.owner() {
            Owner::Messaging => {
                if let Some(tag) = tag.take() {
                    let (mut ctx, out) = split!(self, now);
                    self.messaging
                        .handle_loaded(now, id, tag, records, &mut ctx, out);
                }
            }
            Owner::AppState => {
                let (mut ctx, out) = split!(self, now);
                self.app_sync.handle_loaded(records, &mut ctx, out);
            }
            // Nobody else loads records on demand.
            Owner::Client
            | Owner::Keepalive
            | Owner::Login
            | Owner::Pairing
            | Owner::Media
            | Owner::History
            | Owner::Groups
            | Owner::Social => {}
        }
    }

    /// What happened to the request of `Output::Fetch { id, .. }`: the response (any status)
    /// or the transport's failure. An unknown or repeated id is ignored.
    pub fn handle_fetched(&mut self, now: Timestamp, id: FetchId, result: FetchResult) {
        let now = self.clock(now);
        let Some(tag) = self.fetches.take(id) else {
            return;
        };
        self.step(now, |client| client.route_fetched(now, id, tag, result));
    }

    /// Gives a fetch's answer to the tag's owner.
    fn route_fetched(&mut self, now: Timestamp, id: FetchId, tag: AnyTag, result: FetchResult) {
        match tag.owner() {
            Owner::AppState => {
                let (mut ctx, out) = split!(self, now);
                self.app_sync.handle_fetched(id, result, &mut ctx, out);
            }
            Owner::Media => {
                let Some(media::MediaFetch(job)) = tag.take() else {
                    return;
                };
                let (mut ctx, out) = split!(self, now);
                self.media.handle_fetched(job, result, &mut ctx, out);
            }
            Owner::History => {
                let (mut ctx, out) = split!(self, now);
                self.history.handle_fetched(id, result, &mut ctx, out);
            }
            // Nobody else fetches.
            Owner::Client
            | Owner::Keepalive
            | Owner::Login
            | Owner::Pairing
            | Owner::Messaging
            | Owner::Groups
            | Owner::Social => {}
        }
    }

    /// The next output, in order; `None` when there is nothing to do.
    ///
    /// A history chunk is decoded here, a piece at a time, whenever the queue runs empty: the
    /// host's draining paces it, and its events never pile up.
    pub fn poll_output(&mut self) -> Option<Output> {
        if let Some(output) = self.out.pop() {
            return Some(output);
        }
        while self.history.is_decoding() && self.out.is_empty() {
            let now = self.now;
            self.step(now, |client| {
                let (mut ctx, out) = split!(client, now);
                client.history.step(&mut ctx, out);
            });
        }
        self.out.pop()
    }

    /// When `handle_timeout` is next needed.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        [
            self.reconnect_at,
            self.conn.deadline(),
            self.iqs.next_deadline(),
            self.keepalive.poll_timeout(),
            self.pairing.poll_timeout(),
            self.messaging.poll_timeout(),
            self.app_sync.poll_timeout(),
            self.media.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Clamps `now` so that time never runs backwards, and reseeds the generator when its time
    /// has come.
    fn clock(&mut self, now: Timestamp) -> Timestamp {
        self.now = self.now.max(now);
        self.conn.arm(self.now, self.config.connect_timeout_ms);
        match self.rng_reseed_at {
            None => {
                self.rng_reseed_at = Some(self.now.saturating_add(CLIENT_RNG_RESEED_MS));
            }
            Some(at) if self.now >= at => self.reseed_rng(self.now),
            Some(_) => {}
        }
        self.now
    }

    /// Mixes 32 fresh bytes from the operating system into the generator and schedules the next
    /// reseed. A client seeded by `Config::unsafe_test_rng_seed` stays reproducible: it is never
    /// reseeded. When the operating system has no randomness to give, the generator goes on
    /// from its own state (it was seeded from the operating system at `Client::new`) and the
    /// next input tries again.
    fn reseed_rng(&mut self, now: Timestamp) {
        if self.config.unsafe_test_rng_seed.is_some() {
            self.rng_reseed_at = Some(now.saturating_add(CLIENT_RNG_RESEED_MS));
            return;
        }
        let Some(mut fresh) = rng::os_entropy() else {
            return;
        };
        self.rng.reseed(&fresh);
        zeroize::Zeroize::zeroize(&mut fresh);
        self.rng_reseed_at = Some(now.saturating_add(CLIENT_RNG_RESEED_MS));
    }

    /// Routes one received node by tag, type and xmlns.
    fn dispatch(&mut self, now: Timestamp, node: Node) {
        let from_server = node
            .attr_jid("from")
            .is_some_and(|from| from == Jid::server_jid());
        self.social.learn_push_name(&node, &mut self.out);
        match node.tag.as_ref() {
            "iq" => self.dispatch_iq(now, node, from_server),
            "success" => {
                let (mut ctx, out) = split!(self, now);
                let progress = self.login.handle_success(&node, &mut ctx, out);
                self.login_progress(now, progress);
            }
            "failure" => self.requests.close = Some(Login::failure_reason(&node)),
            "stream:error" => {
                let code = node.attr_str("code").and_then(|c| c.parse().ok());
                let conflict = node
                    .child("conflict")
                    .map(|c| c.attr_str("type").unwrap_or_default().to_owned());
                self.requests.close = Some(CloseReason::StreamError { code, conflict });
            }
            "xmlstreamend" => self.requests.close = Some(CloseReason::ServerClosed),
            "ib" => {
                let (mut ctx, out) = split!(self, now);
                self.login.handle_ib(&node, &mut ctx, out);
            }
            "message" => {
                let (mut ctx, out) = split!(self, now);
                self.messaging.handle_message(now, node, &mut ctx, out);
            }
            "receipt" => {
                let (mut ctx, out) = split!(self, now);
                if node.attr_str("type") == Some("retry") {
                    self.messaging.handle_retry(now, node, &mut ctx, out);
                } else {
                    self.messaging.handle_receipt(now, node, &mut ctx, out);
                }
            }
            "ack" if node.attr_str("class") == Some("call") => {
                self.social.handle_call_ack(&node, &mut self.out);
            }
            "ack" => {
                let (mut ctx, out) = split!(self, now);
                self.messaging.handle_ack(now, node, &mut ctx, out);
            }
            "notification" => self.dispatch_notification(now, node, from_server),
            "call" => {
                let (mut ctx, out) = split!(self, now);
                self.social.handle_call(&node, &mut ctx, out);
            }
            "presence" | "chatstate" => self.social.handle_presence(&node, &mut self.out),
            _ => {}
        }
    }

    fn dispatch_iq(&mut self, now: Timestamp, node: Node, from_server: bool) {
        let node = match self.iqs.take_answer(node) {
            Ok((tag, result)) => return self.route_iq(now, tag, result),
            Err(node) => node,
        };
        let kind = node.attr_str("type").unwrap_or_default();
        let (mut ctx, out) = split!(self, now);
        match kind {
            "get" if node.attr_str("xmlns") == Some("urn:xmpp:ping") => {
                let _ = ctx.send(&keepalive::pong(&node), out);
            }
            "set" if from_server && node.children().len() == 1 => {
                match node.children().first().map(|c| c.tag.as_ref()) {
                    Some("pair-device") => {
                        self.pairing.handle_pair_device(&node, &mut ctx, out);
                        if self.requests.state.is_some() {
                            let (mut ctx, _) = split!(self, now);
                            self.keepalive.start(&mut ctx);
                        }
                    }
                    Some("pair-success") => {
                        self.pairing.handle_pair_success(&node, &mut ctx, out);
                    }
                    _ => {
                        let _ =
                            ctx.send(&iq::error_for(&node, 501, "feature-not-implemented"), out);
                    }
                }
            }
            "get" | "set" => {
                let _ = ctx.send(&iq::error_for(&node, 501, "feature-not-implemented"), out);
            }
            _ => {}
        }
    }

    fn dispatch_notification(&mut self, now: Timestamp, node: Node, from_server: bool) {
        let (mut ctx, out) = split!(self, now);
        match node.attr_str("type").unwrap_or_default() {
            "encrypt" => self
                .messaging
                .handle_notification_encrypt(now, node, &mut ctx, out),
            "companion_reg_refresh" if from_server => {
                self.pairing.handle_reg_refresh(&node, &mut ctx, out);
            }
            "link_code_companion_reg" => self.pairing.handle_link_code(&node, &mut ctx, out),
            "server_sync" => self.app_sync.handle_server_sync(&node, &mut ctx, out),
            "mediaretry" => self.media.handle_retry_notification(&node, &mut ctx, out),
            "w:gp2" => {
                let followups = self.groups.handle_notification(&node, &mut ctx, out);
                for group in followups.departed {
                    self.messaging
                        .rotate_group_sender_key(&group, &mut ctx, out);
                }
            }
            "privacy_token" => self.social.handle_privacy_tokens(&node, &mut ctx, out),
            _ => self.messaging.handle_notification(now, node, &mut ctx, out),
        }
    }

    /// Gives an IQ answer (or its failure) to the tag's owner.
    fn route_iq(&mut self, now: Timestamp, tag: AnyTag, result: IqResult) {
        match tag.owner() {
            Owner::Keepalive => {
                if matches!(result, Err(IqError::TimedOut)) {
                    self.requests.close = Some(CloseReason::KeepaliveTimeout);
                }
            }
            Owner::Login => {
                let Some(tag) = tag.take::<login::LoginIq>() else {
                    return;
                };
                let (mut ctx, out) = split!(self, now);
                let progress = self.login.handle_iq(&tag, result, &mut ctx, out);
                self.login_progress(now, progress);
            }
            Owner::Pairing => {
                let Some(tag) = tag.take::<pairing::PairingIq>() else {
                    return;
                };
                let (mut ctx, out) = split!(self, now);
                self.pairing.handle_iq(&tag, result, &mut ctx, out);
                // At once, as every answer comes: when the connection ends, the state this
                // answer's failure asks for comes before the one `close` decides.
                let state = self.requests.state.take();
                self.apply_state(state);
            }
            Owner::Client => {
                let Some(LogoutIq(command)) = tag.take() else {
                    return;
                };
                // Whatever the answer, the device forgets itself.
                self.out.event(Event::CommandDone {
                    id: command,
                    result: Ok(CommandOutput::None),
                });
                // Carried out by apply_requests, or by `close` when the connection is ending.
                self.requests.close = Some(CloseReason::LoggedOut);
            }
            Owner::Messaging => {
                let Some(tag) = tag.take() else {
                    return;
                };
                let (mut ctx, out) = split!(self, now);
                self.messaging
                    .handle_iq_result(now, tag, result, &mut ctx, out);
            }
            Owner::AppState => {
                let Some(tag) = tag.take() else {
                    return;
                };
                let (mut ctx, out) = split!(self, now);
                self.app_sync.handle_iq(tag, result, &mut ctx, out);
            }
            Owner::Groups => {
                let Some(tag) = tag.take() else {
                    return;
                };
                let (mut ctx, out) = split!(self, now);
                self.groups.handle_iq(tag, result, &mut ctx, out);
            }
            Owner::Social => {
                if let Some(tag) = tag.take() {
                    self.social.handle_iq(tag, result, &mut self.out);
                }
            }
            Owner::Media => {
                let (mut ctx, out) = split!(self, now);
                self.media.handle_iq(result, &mut ctx, out);
            }
            // History sends no IQ.
            Owner::History => {}
        }
    }

    fn login_progress(&mut self, now: Timestamp, progress: LoginProgress) {
        match progress {
            LoginProgress::Nothing => {}
            LoginProgress::Accepted => {
                self.lifecycle
                    .set(State::LoggingIn, StateReason::LoginAccepted, &mut self.out);
                let (mut ctx, _) = split!(self, now);
                self.keepalive.start(&mut ctx);
            }
            LoginProgress::Done => {
                self.backoff.connected(now);
                self.lifecycle
                    .set(State::Connected, StateReason::PostLoginDone, &mut self.out);
                let (mut ctx, out) = split!(self, now);
                self.messaging.handle_connected(now, &mut ctx, out);
                self.app_sync.handle_connected(&mut ctx, out);
                self.social.handle_connected(&mut ctx, out);
            }
        }
    }

    fn apply_state(&mut self, state: Option<(State, StateReason)>) {
        if let Some((state, reason)) = state {
            self.lifecycle.set(state, reason, &mut self.out);
        }
    }

    /// Runs `work` (one input, or one part of it), then carries out what the sub-machines
    /// asked for through their contexts. Every entry point runs its work through here, and
    /// nothing else calls `apply_requests`: a call into a sub-machine cannot leave a request
    /// waiting for a later input.
    fn step(&mut self, now: Timestamp, work: impl FnOnce(&mut Client)) {
        work(self);
        self.apply_requests(now);
    }

    /// Carries out what sub-machines asked for (only `step` calls it).
    fn apply_requests(&mut self, now: Timestamp) {
        let state = self.requests.state.take();
        self.apply_state(state);
        for (command, to, message) in core::mem::take(&mut self.requests.messages) {
            let (mut ctx, out) = split!(self, now);
            self.messaging
                .send_message(command, &to, message, &mut ctx, out);
        }
        let keys = core::mem::take(&mut self.requests.app_state_keys);
        if !keys.is_empty() {
            let (mut ctx, out) = split!(self, now);
            self.app_sync.keys_arrived(keys, &mut ctx, out);
        }
        if let Some(request) = self.requests.app_state_key_request.take()
            && let Some(own) = self.device.jid().map(Jid::to_non_device)
        {
            let message = prost::Message::encode_to_vec(&request);
            let command = Command::SendMessage {
                to: own.to_string(),
                message,
            };
            let (mut ctx, out) = split!(self, now);
            self.messaging
                .send(now, CommandId::INTERNAL, command, &mut ctx, out);
        }
        let notes = core::mem::take(&mut self.requests.history_notifications);
        for (message_id, note) in notes {
            let (mut ctx, out) = split!(self, now);
            self.history.notification(message_id, note, &mut ctx, out);
        }
        let pairs = core::mem::take(&mut self.requests.lid_mappings);
        if !pairs.is_empty() {
            let (mut ctx, out) = split!(self, now);
            self.messaging.learn_lids(pairs, &mut ctx, out);
        }
        if core::mem::take(&mut self.requests.refill_prekeys) {
            let (mut ctx, out) = split!(self, now);
            login::upload_prekeys(&mut ctx, out);
        }
        match self.requests.close.take() {
            Some(reason) if self.conn.is_active() => {
                let tell_host = !matches!(reason, CloseReason::Network);
                self.close(now, reason, tell_host);
            }
            Some(CloseReason::LoggedOut) => self.enter_logged_out(StateReason::LogoutRequested),
            _ => {}
        }
    }

    /// Starts a connection attempt (`now` is `None` before the first input).
    fn start_connection(&mut self, now: Option<Timestamp>, reason: StateReason) {
        self.lifecycle.set(State::Connecting, reason, &mut self.out);
        self.conn
            .open(now, self.config.connect_timeout_ms, &mut self.out);
    }

    /// Ends the connection for `reason` (telling the host to close the socket when it does not
    /// know yet), fails what depended on it, and decides what comes next.
    fn close(&mut self, now: Timestamp, reason: CloseReason, tell_host: bool) {
        if tell_host {
            self.out.push(Output::Close(reason.clone()));
        }
        self.conn.close();
        self.keepalive.stop();
        self.login.reset();
        self.pairing.reset();
        self.requests.close = None;
        for tag in self.iqs.take_all() {
            self.route_iq(now, tag, Err(IqError::Disconnected));
        }
        // A Logout answered by the disconnect asked for LoggedOut itself.
        let reason = match self.requests.close.take() {
            Some(CloseReason::LoggedOut) => CloseReason::LoggedOut,
            _ => reason,
        };
        self.messaging.handle_disconnected(now, &mut self.out);
        self.app_sync.handle_disconnected();
        self.media.handle_disconnected();
        self.social.handle_disconnected(&mut self.out);
        self.fetches.forget(Owner::AppState);
        self.backoff.disconnected(now, &self.config);
        let closed = StateReason::Closed(reason.clone());
        match state::after_close(&reason, &self.config) {
            AfterClose::ReconnectNow => {
                let why = if matches!(
                    reason,
                    CloseReason::StreamError {
                        code: Some(515),
                        ..
                    }
                ) {
                    StateReason::RestartRequired
                } else {
                    closed
                };
                self.start_connection(Some(now), why);
            }
            AfterClose::Backoff { extra_steps } => {
                let (attempt, delay) = self.backoff.next(extra_steps, &self.config, &mut self.rng);
                let at = now.saturating_add(delay);
                self.reconnect_at = Some(at);
                self.lifecycle
                    .set(State::Reconnecting { attempt, at }, closed, &mut self.out);
            }
            AfterClose::LoggedOut
                if matches!(reason, CloseReason::Failure { reason: 401 })
                    && self.device.is_paired()
                    && self.device.data().login_count == 0 =>
            {
                // The first login after pairing was refused: the server never registered the
                // pairing (its pair-device-sign was lost with the link, docs/client.md
                // "Unconfirmed pairing"). Resting in LoggedOut would leave the user without a
                // QR; pair again with a new device instead.
                self.wipe();
                let (device, batch) = Device::generate(&mut self.rng);
                self.device = device;
                self.out.persist(batch);
                self.backoff.reset();
                self.start_connection(Some(now), closed);
            }
            AfterClose::LoggedOut => self.enter_logged_out(closed),
            AfterClose::Replaced => {
                self.pairing.cancel_parked(&mut self.out);
                self.lifecycle.set(State::Replaced, closed, &mut self.out);
            }
            AfterClose::Outdated => {
                self.pairing.cancel_parked(&mut self.out);
                self.lifecycle
                    .set(State::ClientOutdated, closed, &mut self.out);
            }
            AfterClose::Rest => {
                self.pairing.cancel_parked(&mut self.out);
                self.lifecycle
                    .set(State::Disconnected, closed, &mut self.out);
            }
        }
    }

    /// The device is gone: delete every record, end in `LoggedOut`.
    fn enter_logged_out(&mut self, reason: StateReason) {
        self.wipe();
        self.lifecycle.set(State::LoggedOut, reason, &mut self.out);
    }

    /// Forgets the device: no reconnect pending, app state dropped, parked pairing commands
    /// failed, every record deleted.
    fn wipe(&mut self) {
        self.reconnect_at = None;
        self.app_sync = app_sync::AppSync::default();
        self.fetches.forget(Owner::AppState);
        self.fetches.forget(Owner::Media);
        self.media.wipe(&mut self.out);
        self.history.wipe();
        self.groups.wipe();
        self.social.wipe();
        self.fetches.forget(Owner::History);
        self.messaging.wipe(&mut self.out);
        self.pairing.cancel_parked(&mut self.out);
        self.out.persist(Batch {
            changes: vec![Change::DeleteAll],
        });
    }

    /// `Command::Logout`: tell the server (when connected and paired), then forget the device.
    fn logout(&mut self, now: Timestamp, id: CommandId) {
        if matches!(self.lifecycle.state(), State::LoggedOut) {
            self.out.event(Event::CommandDone {
                id,
                result: Err(CommandError::NotPaired),
            });
            return;
        }
        let own = self.device.jid().cloned();
        if let Some(own) = own.filter(|_| self.conn.is_open()) {
            let request = iq::iq(
                "set",
                "md",
                vec![
                    Node::new("remove-companion-device")
                        .attr("jid", own)
                        .attr("reason", "user_initiated"),
                ],
            );
            let (mut ctx, out) = split!(self, now);
            if ctx.send_iq(request, LogoutIq(id), None, out).is_ok() {
                return;
            }
        }
        if self.conn.is_active() {
            self.close(now, CloseReason::LoggedOut, true);
        } else {
            self.enter_logged_out(StateReason::LogoutRequested);
        }
        self.out.event(Event::CommandDone {
            id,
            result: Ok(CommandOutput::None),
        });
    }
}

#[cfg(test)]
mod tests;
