//! The `World` harness: a virtual clock, one [`Server`], and walink [`Client`]s, each with its
//! own record store, wired together by bytes, with faults injected under a seed.
//!
//! The World follows the driver contract of `walink_core` for every client: it drains
//! `poll_output` after each call, applies `Persist` batches to the client's store before the
//! next output, answers `Load` from the store, and fires timers from `poll_timeout`. Bytes
//! travel over simulated TCP connections: in order, re-chunked at random, with a latency; a
//! loss is a connection drop (the stream is cut, possibly mid-frame, and both ends are told).
//!
//! Faults under the World's seed ([`Faults`]): connection drops at any byte, random chunking,
//! latency, server restarts and host crashes (the client is dropped and rebuilt from its store,
//! which holds exactly the batches it persisted). Duplicated frames are not injected: TCP never
//! duplicates bytes, and the protocol's own re-sends (redelivery after a drop) are what the
//! server already does.

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};
use walink_core::client::{
    Client, CloseReason as ClientClose, Command, CommandError, CommandId, CommandOutput, Config,
    Event, FetchError, FetchResponse, LoadId, Output,
};
use walink_core::store::{Record, RecordKey};

use super::Timestamp;
use super::rng::SimRng;
use super::server::{ConnId, Server, ServerConfig, ServerOutput, StreamErrorKind};
use crate::record_map::{self, RecordMap};

/// Which faults the World injects, and how often (per mille of opportunities).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Chance that a transmitted chunk is cut part-way and the connection dropped.
    pub drop_per_mille: u32,
    /// Chance that a chunk is split into several smaller ones.
    pub split_per_mille: u32,
    /// Latency of each direction, drawn uniformly in `0..=latency_max_ms` per chunk (order is
    /// kept: a chunk never overtakes an earlier one on the same connection).
    pub latency_max_ms: u64,
    /// Chance, per World step, that the server restarts (every connection drops).
    pub restart_per_mille: u32,
    /// Chance, per World step, that one client's host crashes and is rebuilt from its store.
    pub crash_per_mille: u32,
    /// Chance, per World step, that the server ends one logged-in connection with a 5xx stream
    /// error (500 or 503, drawn evenly).
    pub stream_5xx_per_mille: u32,
    /// Chance, per World step, that the server answers its next IQ from a logged-in device
    /// with an `<error>` 500 or 503 (drawn evenly).
    pub iq_5xx_per_mille: u32,
    /// When set, a host crash drawn by `crash_per_mille` strikes in the middle of the client's
    /// next outputs (after 0 to 7 of them: between a Persist and the Transmit after it, ...)
    /// instead of between two steps.
    pub crash_within_outputs: bool,
}

impl Faults {
    /// No faults and no latency: every byte arrives at once, in one piece.
    pub fn none() -> Faults {
        Faults::default()
    }

    /// A hostile network: drops, splits, latency, restarts and crashes, all moderately rare.
    pub fn hostile() -> Faults {
        Faults {
            drop_per_mille: 20,
            split_per_mille: 300,
            latency_max_ms: 200,
            restart_per_mille: 2,
            crash_per_mille: 2,
            ..Faults::none()
        }
    }
}

/// What happened in the World, in order: for traces and assertions.
#[derive(Clone, Debug, PartialEq)]
pub enum WorldNote {
    /// A client's event.
    Event {
        /// The client index.
        client: usize,
        /// The event.
        event: Event,
    },
    /// A fault was injected.
    Fault(String),
}

/// One client and its host-side state.
pub struct SimClient {
    /// The state machine.
    pub client: Client,
    config: Config,
    /// The client's records, as the host stores them.
    pub store: RecordMap,
    /// Every event the client emitted, in order.
    pub events: Vec<Event>,
    conn: Option<ConnId>,
    /// Set when the client asked to connect and the socket is not open yet.
    connecting: bool,
    /// How many times the host crashed and rebuilt this client.
    pub crashes: u32,
    /// The store as the last crash left it (what the rebuilt client started from).
    pub store_at_last_crash: RecordMap,
    /// Message events not yet committed with the Persist that follows them.
    pending_messages: Vec<Event>,
    /// Whether the host holds the answers to the client's loads (see `World::hold_loads`).
    hold_loads: bool,
    /// The loads held, in the order the client asked for them.
    held_loads: Vec<(LoadId, Vec<RecordKey>)>,
    /// The URL of every `Output::Fetch` the client asked for, in order.
    pub fetched: Vec<String>,
}

impl fmt::Debug for SimClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimClient")
            .field("state", self.client.state())
            .field("records", &self.store.len())
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl SimClient {
    /// The stored records of `keys` (those that exist), as a load is answered.
    fn load_records(&self, keys: &[RecordKey]) -> Vec<Record> {
        record_map::load(&self.store, keys)
    }

    /// The records in the store, as `Client::new` takes them.
    pub fn records(&self) -> Vec<Record> {
        record_map::records(&self.store, |_| true)
    }

    /// The pairing QR payloads the client showed, in order.
    pub fn qrs(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|event| match event {
                Event::Qr { payload, .. } => Some(payload.clone()),
                _ => None,
            })
            .collect()
    }

    /// The last pairing code the client showed.
    pub fn pairing_code(&self) -> Option<String> {
        self.events.iter().rev().find_map(|event| match event {
            Event::PairingCode { code } => Some(code.clone()),
            _ => None,
        })
    }
}

/// Something scheduled on the virtual network.
#[derive(Clone, Debug)]
enum Packet {
    /// The socket a client asked for is open.
    Opened { client: usize, conn: ConnId },
    /// Bytes for the server.
    ToServer { conn: ConnId, bytes: Vec<u8> },
    /// Bytes for a client.
    ToClient { conn: ConnId, bytes: Vec<u8> },
    /// The client's side closed: the server learns it.
    ClosedByClient { conn: ConnId },
    /// The server's side closed (or the link broke): the client learns it.
    ClosedByServer { conn: ConnId },
}

/// The simulation: a clock, a server, clients and the network between them.
pub struct World {
    /// The virtual clock, Unix milliseconds.
    pub now: Timestamp,
    /// The server.
    pub server: Server,
    /// The clients, by index.
    pub clients: Vec<SimClient>,
    /// Everything that happened, in order.
    pub notes: Vec<WorldNote>,
    /// The fault schedule's rates (may be changed between steps).
    pub faults: Faults,
    rng: SimRng,
    links: BTreeMap<ConnId, usize>,
    /// `(at, sequence) -> packet`: the sequence keeps same-time packets in order.
    network: BTreeMap<(Timestamp, u64), Packet>,
    sequence: u64,
    /// Per connection and direction (true = to server), the time of the last scheduled chunk.
    last_at: BTreeMap<(ConnId, bool), Timestamp>,
    /// SHA-256 over every chunk the clients transmitted, with client index and connection.
    uplink: Sha256,
    trace: bool,
    /// The hosts answer the next this many app-state blob downloads with a corrupted file.
    pub corrupt_blob_downloads: u32,
    /// The hosts answer the next this many app-state blob downloads with a failure.
    pub failed_blob_downloads: u32,
    /// App-state blob downloads the hosts answered.
    pub blob_downloads: u64,
    /// A planned host crash: (client, outputs it still carries out first).
    crash_plan: Option<(usize, usize)>,
}

impl fmt::Debug for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("World")
            .field("now", &self.now)
            .field("clients", &self.clients)
            .finish_non_exhaustive()
    }
}

impl World {
    /// A world at time `now` whose server and fault schedule are seeded by `seed`.
    pub fn new(seed: u64, now: Timestamp, faults: Faults) -> World {
        let mut rng = SimRng::from_u64(seed);
        let mut server = Server::new(ServerConfig::new(rng.fork_seed()));
        // The World's scenarios count the messages a client receives; a test that wants the
        // phone's initial history sync calls `world.server.set_history_sync(true)`.
        server.set_history_sync(false);
        World {
            now,
            server,
            clients: Vec::new(),
            notes: Vec::new(),
            faults,
            rng,
            links: BTreeMap::new(),
            network: BTreeMap::new(),
            sequence: 0,
            last_at: BTreeMap::new(),
            uplink: Sha256::new(),
            trace: std::env::var_os("WALINK_SIM_TRACE").is_some(),
            crash_plan: None,
            corrupt_blob_downloads: 0,
            failed_blob_downloads: 0,
            blob_downloads: 0,
        }
    }

    /// Adds a fresh client (no records). Its generator is seeded from the World's seed unless
    /// `config.unsafe_test_rng_seed` is set. Returns its index.
    pub fn add_client(&mut self, mut config: Config) -> usize {
        if config.unsafe_test_rng_seed.is_none() {
            config.unsafe_test_rng_seed = Some(self.rng.fork_seed());
        }
        let client = Client::new(config.clone(), Vec::new());
        let index = self.clients.len();
        match client {
            Ok(client) => self.clients.push(SimClient {
                client,
                config,
                store: BTreeMap::new(),
                events: Vec::new(),
                conn: None,
                connecting: false,
                crashes: 0,
                store_at_last_crash: BTreeMap::new(),
                pending_messages: Vec::new(),
                hold_loads: false,
                held_loads: Vec::new(),
                fetched: Vec::new(),
            }),
            Err(error) => {
                self.notes.push(WorldNote::Fault(format!(
                    "client {index}: cannot start: {error}"
                )));
                return index;
            }
        }
        self.drain_client(index);
        index
    }

    /// Hands a command to a client and carries out what follows.
    pub fn command(&mut self, client: usize, command: Command) -> Option<CommandId> {
        let sim = self.clients.get_mut(client)?;
        let id = sim.client.command(self.now, command);
        self.drain_client(client);
        Some(id)
    }

    /// Adds a client with `config` and links it to `account` by the phone scanning its latest
    /// QR; its index once connected, or `None` when no QR came within 10 s, the phone refused
    /// the scan, or it was not connected within 40 s.
    pub fn link_by_qr(&mut self, config: Config, account: &str) -> Option<usize> {
        let client = self.add_client(config);
        let start = self.now;
        if !self.run_until(start + 10_000, |w| !w.clients[client].qrs().is_empty()) {
            return None;
        }
        let qr = self.clients[client].qrs().last()?.clone();
        let now = self.now;
        self.server.phone_scan_qr(now, account, &qr).ok()?;
        let connected = self.run_until(start + 40_000, |w| {
            w.client_state(client) == Some(&walink_core::client::State::Connected)
        });
        connected.then_some(client)
    }

    /// Hands a command to a client and runs until it ends or `within` ms pass; its result, or
    /// `None` when it did not end in time (or the client does not exist).
    pub fn command_and_wait(
        &mut self,
        client: usize,
        command: Command,
        within: u64,
    ) -> Option<Result<CommandOutput, CommandError>> {
        let before = self.clients.get(client)?.events.len();
        let command = self.command(client, command)?;
        // Only events after this command: ids restart with a client rebuilt after a crash.
        let done = |w: &World| {
            w.clients[client].events[before..]
                .iter()
                .find_map(|e| match e {
                    Event::CommandDone { id, result } if *id == command => Some(result.clone()),
                    _ => None,
                })
        };
        self.run_until(self.now + within, |w| done(w).is_some());
        done(self)
    }

    /// The host of `client` crashes: the client is dropped, its socket dies, and a new client
    /// is built from the records it had persisted (with a fresh generator seed).
    pub fn crash(&mut self, client: usize) {
        let seed = self.rng.fork_seed();
        let now = self.now;
        let Some(sim) = self.clients.get_mut(client) else {
            return;
        };
        if let Some(conn) = sim.conn.take() {
            self.links.remove(&conn);
            self.server.handle_closed(now, conn);
        }
        sim.connecting = false;
        sim.crashes += 1;
        sim.store_at_last_crash = sim.store.clone();
        sim.pending_messages.clear();
        sim.held_loads.clear();
        let mut config = sim.config.clone();
        config.unsafe_test_rng_seed = Some(seed);
        match Client::new(config, sim.records()) {
            Ok(rebuilt) => sim.client = rebuilt,
            Err(error) => self.notes.push(WorldNote::Fault(format!(
                "client {client}: restore failed: {error}"
            ))),
        }
        self.notes
            .push(WorldNote::Fault(format!("host of client {client} crashed")));
        self.drain_server();
        self.drain_client(client);
    }

    /// Makes the host of `client` hold the answers to the loads the client asks for from now
    /// on (`hold`), or answer them at once again (loads already held stay held until
    /// `release_loads`).
    pub fn hold_loads(&mut self, client: usize, hold: bool) {
        if let Some(sim) = self.clients.get_mut(client) {
            sim.hold_loads = hold;
        }
    }

    /// The keys of each load of `client` held, in the order they were asked for.
    pub fn held_loads(&self, client: usize) -> Vec<Vec<RecordKey>> {
        self.clients.get(client).map_or_else(Vec::new, |sim| {
            sim.held_loads
                .iter()
                .map(|(_, keys)| keys.clone())
                .collect()
        })
    }

    /// Answers the held load of `client` at `index` (in the order they were asked for) from
    /// the store as it is now.
    pub fn release_load(&mut self, client: usize, index: usize) {
        let Some(sim) = self.clients.get_mut(client) else {
            return;
        };
        if index >= sim.held_loads.len() {
            return;
        }
        let (id, keys) = sim.held_loads.remove(index);
        let records = sim.load_records(&keys);
        sim.client.handle_loaded(self.now, id, records);
        self.drain_client(client);
    }

    /// Answers every held load of `client`, in the order they were asked for.
    pub fn release_loads(&mut self, client: usize) {
        while !self.held_loads(client).is_empty() {
            self.release_load(client, 0);
        }
    }

    /// Plans a host crash of `client`: it carries out `outputs` more of its outputs (applies a
    /// Persist, writes a Transmit to its socket, ...), then the host dies before the next one
    /// and the client is rebuilt from its store. Walking `outputs` over 0, 1, 2, ... crashes the
    /// host at every point of whatever the client does next.
    pub fn crash_after_outputs(&mut self, client: usize, outputs: usize) {
        self.crash_plan = Some((client, outputs));
    }

    /// Whether a crash planned with [`World::crash_after_outputs`] is still pending.
    pub fn crash_pending(&self) -> bool {
        self.crash_plan.is_some()
    }

    /// Cancels a crash planned with [`World::crash_after_outputs`] that has not happened.
    pub fn cancel_crash(&mut self) {
        self.crash_plan = None;
    }

    /// The server restarts: every connection drops; accounts and queues survive.
    pub fn restart_server(&mut self) {
        self.notes.push(WorldNote::Fault("server restart".into()));
        self.server.restart();
        self.drain_server();
    }

    /// Cuts a client's connection now, as a network failure: both ends are told.
    pub fn drop_connection(&mut self, client: usize) {
        let Some(conn) = self.clients.get(client).and_then(|c| c.conn) else {
            return;
        };
        self.notes.push(WorldNote::Fault(format!(
            "connection {conn} of client {client} dropped"
        )));
        self.cut(conn);
    }

    /// Cuts a client's connection now and loses every byte still in flight on it, both ways
    /// (what was written to the socket but not read by the other end).
    pub fn drop_connection_in_flight(&mut self, client: usize) {
        let Some(conn) = self.clients.get(client).and_then(|c| c.conn) else {
            return;
        };
        self.network.retain(|_, packet| match packet {
            Packet::ToServer { conn: c, .. } | Packet::ToClient { conn: c, .. } => *c != conn,
            _ => true,
        });
        self.notes.push(WorldNote::Fault(format!(
            "connection {conn} of client {client} dropped with its bytes in flight"
        )));
        self.cut(conn);
    }

    /// Runs until `predicate` holds or the clock passes `deadline`; returns whether it held.
    pub fn run_until(
        &mut self,
        deadline: Timestamp,
        mut predicate: impl FnMut(&World) -> bool,
    ) -> bool {
        loop {
            if predicate(self) {
                return true;
            }
            if !self.step(deadline) {
                return predicate(self);
            }
        }
    }

    /// Runs until nothing is scheduled before `deadline`, then sets the clock to it.
    pub fn run_for(&mut self, duration: u64) {
        let deadline = self.now + duration;
        while self.step(deadline) {}
        self.now = self.now.max(deadline);
    }

    /// Advances to the next scheduled thing (a packet, a client timer, the server's timer) at
    /// or before `deadline` and handles it. `false` when nothing is due by then.
    pub fn step(&mut self, deadline: Timestamp) -> bool {
        let packet_at = self.network.keys().next().map(|(at, _)| *at);
        let client_at = self
            .clients
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.client.poll_timeout().map(|at| (at, i)))
            .min();
        let server_at = self.server.poll_timeout();
        let next = [packet_at, client_at.map(|(at, _)| at), server_at]
            .into_iter()
            .flatten()
            .min();
        let Some(at) = next.filter(|&at| at <= deadline) else {
            return false;
        };
        self.now = self.now.max(at);
        self.random_faults();
        if packet_at == Some(at) {
            if let Some((_, packet)) = self.network.pop_first() {
                self.deliver(packet);
            }
        } else if let Some((_, index)) = client_at.filter(|(t, _)| *t == at) {
            if let Some(sim) = self.clients.get_mut(index) {
                sim.client.handle_timeout(self.now);
            }
            self.drain_client(index);
        } else {
            self.server.handle_timeout(self.now);
            self.drain_server();
        }
        true
    }

    fn random_faults(&mut self) {
        if self.faults.restart_per_mille > 0
            && self
                .rng
                .chance(u64::from(self.faults.restart_per_mille), 1000)
        {
            self.restart_server();
        }
        if self.faults.crash_per_mille > 0
            && !self.clients.is_empty()
            && self
                .rng
                .chance(u64::from(self.faults.crash_per_mille), 1000)
        {
            let index = self.rng.below(self.clients.len() as u64) as usize;
            if !self.faults.crash_within_outputs {
                self.crash(index);
            } else if self.crash_plan.is_none() {
                let after = self.rng.below(8) as usize;
                self.notes.push(WorldNote::Fault(format!(
                    "host of client {index} will crash after {after} outputs"
                )));
                self.crash_plan = Some((index, after));
            }
        }
        if self.faults.stream_5xx_per_mille > 0
            && self
                .rng
                .chance(u64::from(self.faults.stream_5xx_per_mille), 1000)
        {
            let logged_in: Vec<ConnId> = self
                .server
                .connections()
                .into_iter()
                .filter(|(_, device)| device.is_some())
                .map(|(conn, _)| conn)
                .collect();
            if !logged_in.is_empty() {
                let conn = logged_in[self.rng.below(logged_in.len() as u64) as usize];
                let code = if self.rng.chance(1, 2) { 500 } else { 503 };
                if self
                    .server
                    .send_stream_error(conn, StreamErrorKind::ServerError(code))
                    .is_ok()
                {
                    self.notes.push(WorldNote::Fault(format!(
                        "stream error {code} on connection {conn}"
                    )));
                    self.drain_server();
                }
            }
        }
        if self.faults.iq_5xx_per_mille > 0
            && self
                .rng
                .chance(u64::from(self.faults.iq_5xx_per_mille), 1000)
        {
            let code = if self.rng.chance(1, 2) { 500 } else { 503 };
            self.server.fail_next_iqs(1, code);
            self.notes
                .push(WorldNote::Fault(format!("next IQ answered {code}")));
        }
    }

    fn schedule(&mut self, at: Timestamp, packet: Packet) {
        self.sequence += 1;
        self.network.insert((at, self.sequence), packet);
    }

    /// When a chunk sent now on `conn` in this direction arrives: after a random latency and
    /// never before the previous chunk.
    fn arrival(&mut self, conn: ConnId, to_server: bool) -> Timestamp {
        let latency = self.rng.below(self.faults.latency_max_ms + 1);
        let last = self.last_at.get(&(conn, to_server)).copied().unwrap_or(0);
        let at = (self.now + latency).max(last);
        self.last_at.insert((conn, to_server), at);
        at
    }

    /// Sends bytes over the simulated TCP link, with splitting and drops.
    fn send_bytes(&mut self, conn: ConnId, to_server: bool, bytes: Vec<u8>) {
        if self.faults.drop_per_mille > 0
            && self.rng.chance(u64::from(self.faults.drop_per_mille), 1000)
        {
            // The stream breaks part-way: a prefix arrives, then both ends see the close.
            let keep = self.rng.below(bytes.len() as u64) as usize;
            let at = self.arrival(conn, to_server);
            let prefix = bytes.get(..keep).unwrap_or_default().to_vec();
            if !prefix.is_empty() {
                let packet = if to_server {
                    Packet::ToServer {
                        conn,
                        bytes: prefix,
                    }
                } else {
                    Packet::ToClient {
                        conn,
                        bytes: prefix,
                    }
                };
                self.schedule(at, packet);
            }
            self.notes.push(WorldNote::Fault(format!(
                "link {conn} cut after {keep} bytes"
            )));
            self.schedule(at, Packet::ClosedByClient { conn });
            self.schedule(at, Packet::ClosedByServer { conn });
            return;
        }
        let mut chunks = vec![bytes];
        if self.faults.split_per_mille > 0
            && chunks[0].len() > 1
            && self
                .rng
                .chance(u64::from(self.faults.split_per_mille), 1000)
        {
            let whole = chunks.remove(0);
            let cut = 1 + self.rng.below(whole.len() as u64 - 1) as usize;
            let (a, b) = whole.split_at(cut);
            chunks = vec![a.to_vec(), b.to_vec()];
        }
        for chunk in chunks {
            let at = self.arrival(conn, to_server);
            let packet = if to_server {
                Packet::ToServer { conn, bytes: chunk }
            } else {
                Packet::ToClient { conn, bytes: chunk }
            };
            self.schedule(at, packet);
        }
    }

    fn cut(&mut self, conn: ConnId) {
        let at = self.now;
        self.schedule(at, Packet::ClosedByClient { conn });
        self.schedule(at, Packet::ClosedByServer { conn });
    }

    fn deliver(&mut self, packet: Packet) {
        let now = self.now;
        match packet {
            Packet::Opened { client, conn } => {
                let Some(sim) = self.clients.get_mut(client) else {
                    return;
                };
                if sim.conn == Some(conn) && sim.connecting {
                    sim.connecting = false;
                    sim.client.handle_connected(now);
                    self.drain_client(client);
                }
            }
            Packet::ToServer { conn, bytes } => {
                self.server.handle_bytes(now, conn, &bytes);
                self.drain_server();
            }
            Packet::ToClient { conn, bytes } => {
                let Some(&index) = self.links.get(&conn) else {
                    return;
                };
                if let Some(sim) = self.clients.get_mut(index)
                    && sim.conn == Some(conn)
                {
                    sim.client.handle_bytes(now, &bytes);
                    self.drain_client(index);
                }
            }
            Packet::ClosedByClient { conn } => {
                self.server.handle_closed(now, conn);
                self.drain_server();
            }
            Packet::ClosedByServer { conn } => {
                let Some(index) = self.links.remove(&conn) else {
                    return;
                };
                if let Some(sim) = self.clients.get_mut(index)
                    && sim.conn == Some(conn)
                {
                    sim.conn = None;
                    sim.connecting = false;
                    sim.client.handle_closed(now, ClientClose::Network);
                    self.drain_client(index);
                }
            }
        }
    }

    /// Carries out a client's outputs, in order.
    fn drain_client(&mut self, index: usize) {
        loop {
            let Some(sim) = self.clients.get_mut(index) else {
                return;
            };
            let Some(output) = sim.client.poll_output() else {
                // Nothing follows: the host's transaction ends here.
                let committed = core::mem::take(&mut sim.pending_messages);
                sim.events.extend(committed);
                return;
            };
            match self.crash_plan {
                Some((planned, 0)) if planned == index => {
                    // The host dies before it carries out this output (and the rest).
                    self.crash_plan = None;
                    self.crash(index);
                    return;
                }
                Some((planned, left)) if planned == index => {
                    self.crash_plan = Some((planned, left - 1));
                }
                _ => {}
            }
            let Some(sim) = self.clients.get_mut(index) else {
                return;
            };
            match output {
                Output::Connect => {
                    if let Some(old) = sim.conn.take() {
                        self.links.remove(&old);
                        self.server.handle_closed(self.now, old);
                    }
                    let conn = self.server.connect(self.now);
                    if let Some(sim) = self.clients.get_mut(index) {
                        sim.conn = Some(conn);
                        sim.connecting = true;
                    }
                    self.links.insert(conn, index);
                    let at = self.arrival(conn, true);
                    self.schedule(
                        at,
                        Packet::Opened {
                            client: index,
                            conn,
                        },
                    );
                }
                Output::Persist(batch) => {
                    let committed = core::mem::take(&mut sim.pending_messages);
                    sim.events.extend(committed);
                    record_map::apply(&mut sim.store, &batch);
                }
                Output::Load { id, keys } => {
                    if sim.hold_loads {
                        sim.held_loads.push((id, keys));
                    } else {
                        let records = sim.load_records(&keys);
                        sim.client.handle_loaded(self.now, id, records);
                    }
                }
                Output::Transmit(bytes) => {
                    if let Some(conn) = sim.conn {
                        self.uplink.update((index as u64).to_be_bytes());
                        self.uplink.update(conn.0.to_be_bytes());
                        self.uplink.update((bytes.len() as u64).to_be_bytes());
                        self.uplink.update(&bytes);
                        if self.trace {
                            eprintln!(
                                "[{}] client {index} -> {conn}: {} bytes",
                                self.now,
                                bytes.len()
                            );
                        }
                        self.send_bytes(conn, true, bytes);
                    }
                }
                Output::Event(event) => {
                    if self.trace {
                        eprintln!("[{}] client {index}: {event:?}", self.now);
                    }
                    if matches!(event, Event::Message(_)) {
                        // Stored by the host in the same transaction as the Persist that
                        // follows it (which commits the message as received): a crash before
                        // that Persist loses both, and the server delivers the message again.
                        sim.pending_messages.push(event.clone());
                    } else {
                        sim.events.push(event.clone());
                    }
                    self.notes.push(WorldNote::Event {
                        client: index,
                        event,
                    });
                }
                Output::Fetch { id, request } => {
                    // The host downloads the file from the media hosts (the server's blob
                    // store) and answers at once.
                    sim.fetched.push(request.url.clone());
                    self.blob_downloads += 1;
                    let mut result = match self.server.download_blob(&request.url) {
                        Some(body) => Ok(FetchResponse::new(200, body)),
                        None => Ok(FetchResponse::new(404, Vec::new())),
                    };
                    if self.failed_blob_downloads > 0 {
                        self.failed_blob_downloads -= 1;
                        result = Err(FetchError::Network);
                    } else if self.corrupt_blob_downloads > 0
                        && let Ok(response) = result.as_mut()
                        && let Some(first) = response.body.first_mut()
                    {
                        self.corrupt_blob_downloads -= 1;
                        *first ^= 0x01;
                    }
                    sim.client.handle_fetched(self.now, id, result);
                }
                Output::Close(_) => {
                    if let Some(conn) = sim.conn.take() {
                        sim.connecting = false;
                        self.links.remove(&conn);
                        let at = self.arrival(conn, true);
                        self.schedule(at, Packet::ClosedByClient { conn });
                    }
                }
            }
        }
    }

    /// Carries out what the server queued after a control call made directly on
    /// [`World::server`] (`phone_scan_qr`, `send_stream_error`, ...).
    pub fn flush(&mut self) {
        self.drain_server();
    }

    /// Whether client `index` is in `state`.
    pub fn client_state(&self, index: usize) -> Option<&walink_core::client::State> {
        self.clients.get(index).map(|c| c.client.state())
    }

    /// Carries out the server's outputs, in order.
    fn drain_server(&mut self) {
        while let Some(output) = self.server.poll_output() {
            match output {
                ServerOutput::Transmit { conn, bytes } => {
                    if self.trace {
                        eprintln!("[{}] {conn} -> client: {} bytes", self.now, bytes.len());
                    }
                    if self.links.contains_key(&conn) {
                        self.send_bytes(conn, false, bytes);
                    }
                }
                ServerOutput::Close { conn, reason } => {
                    if self.trace {
                        eprintln!("[{}] server closes {conn}: {reason:?}", self.now);
                    }
                    let at = self.arrival(conn, false);
                    self.schedule(at, Packet::ClosedByServer { conn });
                }
            }
        }
    }

    /// SHA-256 over both directions: the server's transcript (see
    /// [`Server::transcript_hash`]) and every chunk the clients transmitted. Two runs with the
    /// same seed give the same hash.
    pub fn transcript_hash(&self) -> [u8; 32] {
        Sha256::new()
            .chain_update(self.server.transcript_hash())
            .chain_update(self.uplink.clone().finalize())
            .finalize()
            .into()
    }
}
