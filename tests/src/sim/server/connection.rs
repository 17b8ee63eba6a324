//! Connections: the Noise handshake, framing, the stages of a connection and the driving API
//! (`connect`, `handle_bytes`, `handle_closed`, `handle_timeout`, `poll_output`,
//! `poll_timeout`).
//!
//! The connection table, the output queue and the transcript live in [`Connections`], which
//! knows nothing else of the server; the `impl Server` below joins it to the accounts (a closed
//! device's unacknowledged deliveries go back to its queue) and to the stanza handlers.

use super::*;

/// The registration an unpaired connection sent, and its pairing progress.
pub(super) struct Registration {
    pub(super) noise_public: [u8; 32],
    pub(super) identity_public: [u8; 32],
    pub(super) registration_id: u32,
    pub(super) signed_prekey: SignedPreKey,
    pub(super) platform_type: i32,
    pub(super) name: String,
    /// How much history the companion asked for (`DeviceProps`).
    pub(super) history: HistoryAsk,
    /// `(ref, expires_at)`.
    pub(super) refs: Vec<(String, Timestamp)>,
    /// The id of the `pair-device` IQ.
    pub(super) pair_device_id: String,
    pub(super) link: Option<LinkCode>,
    pub(super) pairing: Option<PendingPair>,
}

/// A `companion_hello` the server accepted.
pub(super) struct LinkCode {
    pub(super) user: String,
    pub(super) wrapped_companion_ephemeral: Vec<u8>,
    pub(super) reference: Vec<u8>,
    /// The phone answered with `primary_hello`.
    pub(super) hello_sent: bool,
}

/// A pair-success waiting for pair-device-sign.
pub(super) struct PendingPair {
    pub(super) iq_id: String,
    pub(super) user: String,
    pub(super) device: u16,
    pub(super) issued: IssuedIdentity,
}

/// A logged-in device's connection.
pub(super) struct DeviceSession {
    pub(super) user: String,
    pub(super) device: u16,
    pub(super) active: bool,
}

/// Where a connection is in its life.
pub(super) enum Stage {
    /// Waiting for the client's Noise hello.
    AwaitHello,
    /// Waiting for the client's Noise finish.
    AwaitFinish(Box<Responder>),
    /// A companion that registered and is not paired yet.
    Unpaired(Box<Registration>),
    /// A logged-in device.
    Device(DeviceSession),
    /// The server ended the stream with this error and waits for the client to close.
    Ended(StreamErrorKind),
}

/// One connection: its framing, stage, transport keys and deadline.
pub(super) struct Conn {
    pub(super) decoder: FrameDecoder,
    pub(super) stage: Stage,
    pub(super) transport: Option<TransportCipher>,
    pub(super) deadline: Option<Timestamp>,
}

/// The connection table with what the server writes to the connections: the output queue and
/// the transcript of every byte. It knows nothing of accounts or stanzas.
pub(super) struct Connections {
    conns: BTreeMap<ConnId, Conn>,
    next_conn: u64,
    outputs: VecDeque<ServerOutput>,
    transcript: Sha256,
}

impl Connections {
    pub(super) fn new() -> Connections {
        Connections {
            conns: BTreeMap::new(),
            next_conn: 1,
            outputs: VecDeque::new(),
            transcript: Sha256::new(),
        }
    }

    /// A new connection waiting for the client's hello.
    fn open(&mut self, now: Timestamp) -> ConnId {
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

    pub(super) fn get(&self, conn: &ConnId) -> Option<&Conn> {
        self.conns.get(conn)
    }

    pub(super) fn get_mut(&mut self, conn: &ConnId) -> Option<&mut Conn> {
        self.conns.get_mut(conn)
    }

    pub(super) fn contains_key(&self, conn: &ConnId) -> bool {
        self.conns.contains_key(conn)
    }

    pub(super) fn iter(&self) -> impl DoubleEndedIterator<Item = (&ConnId, &Conn)> {
        self.conns.iter()
    }

    pub(super) fn len(&self) -> usize {
        self.conns.len()
    }

    /// Queues `bytes` (whole frames) for `conn` and adds them to the transcript.
    fn transmit(&mut self, conn: ConnId, bytes: Vec<u8>) {
        self.transcript.update(conn.0.to_be_bytes());
        self.transcript.update((bytes.len() as u64).to_be_bytes());
        self.transcript.update(&bytes);
        self.outputs
            .push_back(ServerOutput::Transmit { conn, bytes });
    }

    /// Encrypts and queues one node on `conn` (nothing without transport keys); the reason to
    /// close the connection if it cannot be encrypted.
    fn send(&mut self, conn: ConnId, node: &Node) -> Result<(), CloseReason> {
        let Some(transport) = self.conns.get_mut(&conn).and_then(|c| c.transport.as_mut()) else {
            return Ok(());
        };
        match transport.encrypt_node(node) {
            Ok(bytes) => {
                self.transmit(conn, bytes);
                Ok(())
            }
            Err(error) => Err(CloseReason::Protocol(format!("encrypt: {error}"))),
        }
    }

    /// Queues the close of `conn` and removes it; the connection, if it was open.
    fn close(&mut self, conn: ConnId, reason: CloseReason) -> Option<Conn> {
        if !self.conns.contains_key(&conn) {
            return None;
        }
        self.transcript.update(conn.0.to_be_bytes());
        self.transcript.update(b"close");
        self.outputs.push_back(ServerOutput::Close { conn, reason });
        self.conns.remove(&conn)
    }

    /// Removes `conn` without a word (the client closed it).
    fn remove(&mut self, conn: ConnId) -> Option<Conn> {
        self.conns.remove(&conn)
    }

    /// The connections past their deadline, with the reason each is closed for: the stream
    /// error that ended it, or a timeout.
    fn expired(&self, now: Timestamp) -> Vec<(ConnId, CloseReason)> {
        self.conns
            .iter()
            .filter(|(_, conn)| conn.deadline.is_some_and(|at| at <= now))
            .map(|(&id, conn)| match &conn.stage {
                Stage::Ended(kind) => (id, CloseReason::StreamError(*kind)),
                _ => (id, CloseReason::Timeout),
            })
            .collect()
    }

    /// The unpaired connections, not pairing, whose refs have all expired.
    fn exhausted_refs(&self, now: Timestamp) -> Vec<ConnId> {
        self.conns
            .iter()
            .filter(|(_, conn)| match &conn.stage {
                Stage::Unpaired(reg) => {
                    reg.pairing.is_none() && reg.refs.iter().all(|(_, at)| *at <= now)
                }
                _ => false,
            })
            .map(|(&id, _)| id)
            .collect()
    }

    /// The earliest deadline, or the last ref's expiry of an unpaired connection when refs are
    /// re-issued.
    fn next_timeout(&self, reissue_refs: bool) -> Option<Timestamp> {
        let deadlines = self.conns.values().filter_map(|conn| conn.deadline);
        let refs = self.conns.values().filter_map(|conn| match &conn.stage {
            Stage::Unpaired(reg) if reissue_refs && reg.pairing.is_none() => {
                reg.refs.iter().map(|(_, at)| *at).max()
            }
            _ => None,
        });
        deadlines.chain(refs).min()
    }

    fn poll_output(&mut self) -> Option<ServerOutput> {
        self.outputs.pop_front()
    }

    pub(super) fn transcript_hash(&self) -> [u8; 32] {
        self.transcript.clone().finalize().into()
    }

    /// The open connection of a logged-in device.
    pub(super) fn device_conn(&self, user: &str, device: u16) -> Option<ConnId> {
        self.conns.iter().find_map(|(&id, conn)| match &conn.stage {
            Stage::Device(session) if session.user == user && session.device == device => Some(id),
            _ => None,
        })
    }
}

impl Server {
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

    /// The open connection of a logged-in device.
    pub fn device_conn(&self, user: &str, device: u16) -> Option<ConnId> {
        self.conns.device_conn(user, device)
    }

    /// The unpaired connections, oldest first.
    pub fn unpaired_conns(&self) -> Vec<ConnId> {
        self.conns
            .iter()
            .filter(|(_, conn)| matches!(conn.stage, Stage::Unpaired(_)))
            .map(|(&id, _)| id)
            .collect()
    }

    // ----- the driving API -----------------------------------------------------------------

    /// A client opened a connection.
    pub fn connect(&mut self, now: Timestamp) -> ConnId {
        self.conns.open(now)
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
        for (conn, reason) in self.conns.expired(now) {
            self.close(conn, reason);
        }
        if self.reissue_refs {
            for conn in self.conns.exhausted_refs(now) {
                self.send_pair_device(now, conn);
            }
        }
    }

    /// The next thing the host must do.
    pub fn poll_output(&mut self) -> Option<ServerOutput> {
        self.conns.poll_output()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.conns.next_timeout(self.reissue_refs)
    }

    // ----- connection plumbing -------------------------------------------------------------

    pub(super) fn transmit(&mut self, conn: ConnId, bytes: Vec<u8>) {
        self.conns.transmit(conn, bytes);
    }

    /// Encrypts and sends one node on `conn`.
    pub(super) fn send(&mut self, conn: ConnId, node: &Node) {
        if let Err(reason) = self.conns.send(conn, node) {
            self.close(conn, reason);
        }
    }

    pub(super) fn close(&mut self, conn: ConnId, reason: CloseReason) {
        if let Some(state) = self.conns.close(conn, reason) {
            self.forget(conn, state);
        }
    }

    /// Forgets a connection the client closed.
    fn drop_conn(&mut self, conn: ConnId) {
        if let Some(state) = self.conns.remove(conn) {
            self.forget(conn, state);
        }
    }

    /// After a connection is gone: a device's unacknowledged deliveries go back to its queue.
    fn forget(&mut self, conn: ConnId, state: Conn) {
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
}
