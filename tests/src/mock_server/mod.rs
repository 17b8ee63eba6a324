//! The network face of the simulation: a real websocket on 127.0.0.1 that carries the
//! simulated server's bytes, and an HTTP control endpoint (JSON) that drives the simulated
//! phone.
//!
//! Threads: one network thread runs every websocket (accept, upgrade, reads and writes) on one
//! readiness loop (mio), so tens of thousands of connections cost one thread and one file
//! descriptor each; one accepts control connections (one short thread per request), and a single
//! simulation thread owns the [`Backend`]. They talk over channels only (the simulation wakes the
//! network thread when it queued something), so the backend stays a plain sans-IO state machine
//! driven with a real clock (Unix milliseconds) and one timer from its `poll_timeout`.

pub mod control;
pub mod device_connections;
pub mod handshakes;
pub mod http;
pub mod process;
pub mod sim_backend;
pub mod social;
pub mod status;

use std::collections::HashMap;
use std::io::{self, ErrorKind};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::{TcpListener as MioListener, TcpStream as MioStream};
use mio::{Events, Interest, Poll, Token, Waker};
use tungstenite::handshake::server::{Callback, ErrorResponse, Request, Response, ServerHandshake};
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::protocol::WebSocket;
use tungstenite::{Message, accept_hdr};

pub use control::{ControlError, ControlRequest};
pub use handshakes::{Handshake, HandshakeLog};

/// How long a new connection may take to send its websocket upgrade request.
const UPGRADE_DEADLINE: Duration = Duration::from_secs(10);

/// The most readiness events the network thread takes from one poll.
const EVENTS_PER_POLL: usize = 1024;

/// The most websocket connections served at once; more are refused at accept.
pub const MAX_CONNECTIONS: usize = 100_000;

/// How long a control request waits for the simulation thread's answer.
const CONTROL_DEADLINE: Duration = Duration::from_secs(10);

/// A connection's number, as the backend knows it.
pub type ConnId = u64;

/// Something the backend asks the network to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendOutput {
    /// Send these bytes on this connection (one websocket binary message).
    Transmit {
        /// The connection.
        conn: ConnId,
        /// The bytes, framed by the backend.
        bytes: Vec<u8>,
    },
    /// Close this connection.
    Close {
        /// The connection.
        conn: ConnId,
    },
}

/// A sans-IO server the mock serves: the simulation, or a trivial one in tests.
pub trait Backend: Send + 'static {
    /// A new client connection was accepted at `now` (Unix milliseconds).
    fn connect(&mut self, now: u64) -> ConnId;
    /// Bytes arrived on a connection.
    fn handle_bytes(&mut self, now: u64, conn: ConnId, bytes: &[u8]);
    /// The client closed a connection (or it broke).
    fn handle_closed(&mut self, now: u64, conn: ConnId);
    /// The timer from [`Backend::poll_timeout`] fired.
    fn handle_timeout(&mut self, now: u64);
    /// The next thing to carry out, in order.
    fn poll_output(&mut self) -> Option<BackendOutput>;
    /// When to call [`Backend::handle_timeout`] next, if ever.
    fn poll_timeout(&self) -> Option<u64>;
    /// Carries out one control request and returns its JSON answer.
    fn control(
        &mut self,
        now: u64,
        request: ControlRequest,
    ) -> Result<serde_json::Value, ControlError>;
}

/// The wall clock in Unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// What the network threads tell the simulation thread.
enum ToSim {
    Opened {
        to_socket: Outbox,
        reply: Sender<ConnId>,
    },
    Bytes(ConnId, Vec<u8>),
    Closed(ConnId),
    Control {
        request: ControlRequest,
        reply: Sender<Result<serde_json::Value, ControlError>>,
    },
    Stop,
}

/// What the simulation asks of one connection.
enum ToSocket {
    Send(Vec<u8>),
    Close,
}

/// The way to one connection from the simulation thread: a message on the network thread's
/// channel, tagged with the connection's token, and a wake-up.
#[derive(Clone)]
struct Outbox {
    token: Token,
    to_net: Sender<(Token, ToSocket)>,
    waker: Arc<Waker>,
}

impl Outbox {
    fn send(&self, message: ToSocket) -> Result<(), ()> {
        self.to_net.send((self.token, message)).map_err(|_| ())?;
        self.waker.wake().map_err(|_| ())
    }
}

/// Where a running mock server listens; stops it when dropped.
pub struct MockServer {
    ws_addr: SocketAddr,
    control_addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    to_sim: Sender<ToSim>,
    net_waker: Arc<Waker>,
    threads: Vec<JoinHandle<()>>,
    handshakes: HandshakeLog,
}

impl MockServer {
    /// Binds the websocket and control ports on 127.0.0.1 (0 lets the OS choose) and starts
    /// serving `backend`.
    pub fn start<B: Backend>(backend: B, ws_port: u16, control_port: u16) -> io::Result<Self> {
        let ws_listener = TcpListener::bind(("127.0.0.1", ws_port))?;
        let control_listener = TcpListener::bind(("127.0.0.1", control_port))?;
        let ws_addr = ws_listener.local_addr()?;
        let control_addr = control_listener.local_addr()?;
        let stopping = Arc::new(AtomicBool::new(false));
        let handshakes = HandshakeLog::default();
        let (to_sim, from_net) = mpsc::channel();
        let mut threads = Vec::new();
        threads.push(
            thread::Builder::new()
                .name("mock-sim".into())
                .spawn(move || run_simulation(backend, &from_net))?,
        );
        ws_listener.set_nonblocking(true)?;
        let poll = Poll::new()?;
        let net_waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
        let network = Network {
            poll,
            listener: MioListener::from_std(ws_listener),
            waker: Arc::clone(&net_waker),
            to_sim: to_sim.clone(),
            stopping: Arc::clone(&stopping),
            conns: HashMap::new(),
            next_token: FIRST_CONN,
            handshakes: handshakes.clone(),
        };
        threads.push(
            thread::Builder::new()
                .name("mock-ws".into())
                .spawn(move || network.run())?,
        );
        let (sim, stop, log) = (to_sim.clone(), Arc::clone(&stopping), handshakes.clone());
        threads.push(
            thread::Builder::new()
                .name("mock-control-accept".into())
                .spawn(move || accept_control(&control_listener, &sim, &stop, &log))?,
        );
        Ok(MockServer {
            ws_addr,
            control_addr,
            stopping,
            to_sim,
            net_waker,
            threads,
            handshakes,
        })
    }

    /// The websocket upgrades so far (their `Origin` and path), oldest first; the control
    /// endpoint's `GET /handshakes`.
    pub fn handshakes(&self) -> Vec<Handshake> {
        self.handshakes.handshakes()
    }

    /// The websocket URL clients connect to.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws/chat", self.ws_addr)
    }

    /// The control endpoint's base URL.
    pub fn control_url(&self) -> String {
        format!("http://{}", self.control_addr)
    }

    /// The control endpoint's address.
    pub fn control_addr(&self) -> SocketAddr {
        self.control_addr
    }

    /// The one machine-readable line the `mock-server` binary prints on stdout.
    pub fn banner(&self) -> String {
        format!(
            "walink-sim listening ws://{} control http://{}",
            self.ws_addr, self.control_addr
        )
    }

    /// Stops accepting, stops the simulation thread and waits for the listener threads.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if self.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        let _ = self.to_sim.send(ToSim::Stop);
        // Wake the network loop and the blocking control accept so they see the flag.
        let _ = self.net_waker.wake();
        let _ = TcpStream::connect(self.control_addr);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The simulation thread: feeds the backend what the network threads report, with a real
/// clock and a single timer, and hands its outputs to the connection threads.
fn run_simulation<B: Backend>(mut backend: B, from_net: &Receiver<ToSim>) {
    let mut sockets: HashMap<ConnId, Outbox> = HashMap::new();
    loop {
        let message = match backend.poll_timeout() {
            None => match from_net.recv() {
                Ok(message) => Some(message),
                Err(_) => return,
            },
            Some(at) => {
                let now = now_ms();
                // At least a millisecond, so a timer that does not move cannot spin.
                let wait = Duration::from_millis(at.saturating_sub(now).max(1));
                match from_net.recv_timeout(wait) {
                    Ok(message) => Some(message),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
        };
        let now = now_ms();
        match message {
            None => backend.handle_timeout(now),
            Some(ToSim::Opened { to_socket, reply }) => {
                let conn = backend.connect(now);
                sockets.insert(conn, to_socket);
                let _ = reply.send(conn);
            }
            Some(ToSim::Bytes(conn, bytes)) => backend.handle_bytes(now, conn, &bytes),
            Some(ToSim::Closed(conn)) => {
                if sockets.remove(&conn).is_some() {
                    backend.handle_closed(now, conn);
                }
            }
            Some(ToSim::Control { request, reply }) => {
                let _ = reply.send(backend.control(now, request));
            }
            Some(ToSim::Stop) => {
                for socket in sockets.values() {
                    let _ = socket.send(ToSocket::Close);
                }
                return;
            }
        }
        while let Some(output) = backend.poll_output() {
            match output {
                BackendOutput::Transmit { conn, bytes } => {
                    if let Some(socket) = sockets.get(&conn) {
                        let _ = socket.send(ToSocket::Send(bytes));
                    }
                }
                BackendOutput::Close { conn } => {
                    if let Some(socket) = sockets.remove(&conn) {
                        let _ = socket.send(ToSocket::Close);
                    }
                }
            }
        }
    }
}

const LISTENER: Token = Token(0);
const WAKE: Token = Token(1);
const FIRST_CONN: usize = 2;

/// One websocket connection on the network thread.
enum Conn {
    /// The upgrade request is still arriving.
    Upgrading {
        mid: MidHandshake<ServerHandshake<MioStream, Offer>>,
        offer: Offer,
        since: Instant,
    },
    /// Open: bytes flow both ways; `conn` is the backend's number for it.
    Open {
        socket: WebSocket<MioStream>,
        conn: ConnId,
    },
}

/// What an upgrade request offered: its `Origin` header and path.
#[derive(Default)]
struct Offered {
    origin: Option<String>,
    path: String,
}

/// The upgrade's callback: keeps what the request offered until the backend has numbered the
/// connection and the handshake can be logged.
#[derive(Clone, Default)]
struct Offer(Arc<Mutex<Offered>>);

impl Offer {
    fn take(&self) -> Offered {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Callback for Offer {
    // The signature is tungstenite's `Callback`; its error type is not ours to shrink.
    #[allow(clippy::result_large_err)]
    fn on_request(self, request: &Request, response: Response) -> Result<Response, ErrorResponse> {
        let origin = request
            .headers()
            .get("origin")
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Offered {
            origin,
            path: request.uri().path().to_owned(),
        };
        Ok(response)
    }
}

/// The network thread: every websocket on one mio poll.
struct Network {
    poll: Poll,
    listener: MioListener,
    waker: Arc<Waker>,
    to_sim: Sender<ToSim>,
    stopping: Arc<AtomicBool>,
    conns: HashMap<Token, Conn>,
    next_token: usize,
    handshakes: HandshakeLog,
}

/// What became of a connection after some work on it.
enum Next {
    Keep(Box<Conn>),
    /// Gone; `Some(conn)` when the backend must hear of it (the peer left, not the server).
    Gone(Option<ConnId>),
}

impl Network {
    fn run(mut self) {
        let (to_net, from_sim) = mpsc::channel::<(Token, ToSocket)>();
        if self
            .poll
            .registry()
            .register(&mut self.listener, LISTENER, Interest::READABLE)
            .is_err()
        {
            return;
        }
        let mut events = Events::with_capacity(EVENTS_PER_POLL);
        loop {
            if self.stopping.load(Ordering::SeqCst) {
                // The simulation's last closes are in the channel already (it sends them first).
                self.drain_sim(&from_sim);
                return;
            }
            if let Err(error) = self.poll.poll(&mut events, Some(Duration::from_secs(1))) {
                if error.kind() == ErrorKind::Interrupted {
                    continue;
                }
                return;
            }
            for event in &events {
                match event.token() {
                    LISTENER => self.accept(&to_net),
                    WAKE => {}
                    token => {
                        if let Some(conn) = self.conns.remove(&token) {
                            let next = self.ready(token, conn, &to_net);
                            self.settle(token, next);
                        }
                    }
                }
            }
            self.drain_sim(&from_sim);
            self.expire_upgrades();
        }
    }

    fn accept(&mut self, to_net: &Sender<(Token, ToSocket)>) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    if self.conns.len() >= MAX_CONNECTIONS {
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let token = Token(self.next_token);
                    self.next_token += 1;
                    if self
                        .poll
                        .registry()
                        .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
                        .is_err()
                    {
                        continue;
                    }
                    let offer = Offer::default();
                    let next = match accept_hdr(stream, offer.clone()) {
                        Ok(socket) => self.opened(token, socket, &offer, to_net),
                        Err(HandshakeError::Interrupted(mid)) => keep(Conn::Upgrading {
                            mid,
                            offer,
                            since: Instant::now(),
                        }),
                        Err(HandshakeError::Failure(_)) => Next::Gone(None),
                    };
                    self.settle(token, next);
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                // Out of descriptors and the like: try again at the next readiness event.
                Err(_) => return,
            }
        }
    }

    /// The upgrade is done: the backend numbers the connection and its handshake is logged.
    fn opened(
        &mut self,
        token: Token,
        socket: WebSocket<MioStream>,
        offer: &Offer,
        to_net: &Sender<(Token, ToSocket)>,
    ) -> Next {
        let (reply, conn) = mpsc::channel();
        let outbox = Outbox {
            token,
            to_net: to_net.clone(),
            waker: Arc::clone(&self.waker),
        };
        let opened = self.to_sim.send(ToSim::Opened {
            to_socket: outbox,
            reply,
        });
        match (opened, conn.recv()) {
            (Ok(()), Ok(conn)) => {
                let Offered { origin, path } = offer.take();
                self.handshakes.record(Handshake {
                    conn,
                    origin,
                    path,
                    at: now_ms(),
                });
                // Bytes may have arrived with the upgrade request: read them now (edge-triggered).
                self.read(socket, conn)
            }
            _ => Next::Gone(None),
        }
    }

    /// A readiness event on a connection.
    fn ready(&mut self, token: Token, conn: Conn, to_net: &Sender<(Token, ToSocket)>) -> Next {
        match conn {
            Conn::Upgrading { mid, offer, since } => match mid.handshake() {
                Ok(socket) => self.opened(token, socket, &offer, to_net),
                Err(HandshakeError::Interrupted(mid)) => {
                    keep(Conn::Upgrading { mid, offer, since })
                }
                Err(HandshakeError::Failure(_)) => Next::Gone(None),
            },
            Conn::Open { mut socket, conn } => {
                // Writable: send what waits in the websocket's buffer.
                match socket.flush() {
                    Err(tungstenite::Error::Io(error)) if would_block(&error) => {}
                    Err(_) => return Next::Gone(Some(conn)),
                    Ok(()) => {}
                }
                self.read(socket, conn)
            }
        }
    }

    /// Reads every message available (the poll is edge-triggered) and hands it to the backend.
    fn read(&mut self, mut socket: WebSocket<MioStream>, conn: ConnId) -> Next {
        loop {
            match socket.read() {
                Ok(Message::Binary(bytes)) => {
                    if self
                        .to_sim
                        .send(ToSim::Bytes(conn, bytes.to_vec()))
                        .is_err()
                    {
                        return Next::Gone(None);
                    }
                }
                Ok(Message::Close(_)) => {
                    let _ = socket.flush();
                    return Next::Gone(Some(conn));
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(error)) if error.kind() == ErrorKind::WouldBlock => {
                    // All bytes used; answer any queued control frame (a pong).
                    let _ = socket.flush();
                    return keep(Conn::Open { socket, conn });
                }
                Err(_) => return Next::Gone(Some(conn)),
            }
        }
    }

    /// Carries out what the simulation asked (sends, closes).
    fn drain_sim(&mut self, from_sim: &Receiver<(Token, ToSocket)>) {
        while let Ok((token, message)) = from_sim.try_recv() {
            let Some(conn) = self.conns.remove(&token) else {
                continue;
            };
            let next = match (conn, message) {
                (Conn::Open { mut socket, conn }, ToSocket::Send(bytes)) => {
                    match socket.send(Message::Binary(bytes.into())) {
                        Ok(()) => keep(Conn::Open { socket, conn }),
                        // Buffered: the rest goes out on the next writable event.
                        Err(tungstenite::Error::Io(error)) if would_block(&error) => {
                            keep(Conn::Open { socket, conn })
                        }
                        Err(_) => Next::Gone(Some(conn)),
                    }
                }
                (Conn::Open { mut socket, .. }, ToSocket::Close) => {
                    let _ = socket.close(None);
                    let _ = socket.flush();
                    // Closed by the server: the backend knows.
                    Next::Gone(None)
                }
                (upgrading @ Conn::Upgrading { .. }, _) => keep(upgrading),
            };
            self.settle(token, next);
        }
    }

    fn expire_upgrades(&mut self) {
        let expired: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, conn)| {
                matches!(conn, Conn::Upgrading { since, .. } if since.elapsed() > UPGRADE_DEADLINE)
            })
            .map(|(token, _)| *token)
            .collect();
        for token in expired {
            self.settle(token, Next::Gone(None));
        }
    }

    fn settle(&mut self, token: Token, next: Next) {
        match next {
            Next::Keep(conn) => {
                self.conns.insert(token, *conn);
            }
            Next::Gone(tell) => {
                if let Some(conn) = self.conns.remove(&token) {
                    self.deregister(conn);
                }
                if let Some(conn) = tell {
                    let _ = self.to_sim.send(ToSim::Closed(conn));
                }
            }
        }
    }

    fn deregister(&self, mut conn: Conn) {
        let stream = match &mut conn {
            Conn::Upgrading { mid, .. } => mid.get_mut().get_mut(),
            Conn::Open { socket, .. } => socket.get_mut(),
        };
        let _ = self.poll.registry().deregister(stream);
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }
}

/// Keeps a connection (boxed: an upgrade in progress is large).
fn keep(conn: Conn) -> Next {
    Next::Keep(Box::new(conn))
}

fn would_block(error: &io::Error) -> bool {
    error.kind() == ErrorKind::WouldBlock
}

fn accept_control(
    listener: &TcpListener,
    to_sim: &Sender<ToSim>,
    stopping: &AtomicBool,
    handshakes: &HandshakeLog,
) {
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let (to_sim, handshakes) = (to_sim.clone(), handshakes.clone());
        let _ = thread::Builder::new()
            .name("mock-control".into())
            .spawn(move || serve_control(stream, &to_sim, &handshakes));
    }
}

/// A blob answer (the blob in base64 under [`sim_backend::BLOB_FIELD`]) as raw bytes, as a
/// media host serves it.
fn blob_response(value: &serde_json::Value) -> http::Response {
    use base64::Engine as _;
    match value
        .get(sim_backend::BLOB_FIELD)
        .and_then(serde_json::Value::as_str)
        .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok())
    {
        Some(bytes) => http::Response::bytes(200, bytes),
        None => http::Response::error(500, "the backend answered a blob request without a blob"),
    }
}

/// One control request: parse it, let the simulation thread carry it out, answer with JSON
/// (`GET /handshakes` is the network layer's own, answered here).
fn serve_control(mut stream: TcpStream, to_sim: &Sender<ToSim>, handshakes: &HandshakeLog) {
    let _ = stream.set_read_timeout(Some(CONTROL_DEADLINE));
    let response = match http::read_request(&mut stream) {
        Err(error) => http::Response::error(400, &error.to_string()),
        Ok(request) if handshakes::is_handshakes_route(&request) => {
            http::Response::json(200, &handshakes.to_json())
        }
        Ok(request) => match control::parse(&request) {
            Err(error) => error.response(),
            Ok(request) => {
                let blob = matches!(request, ControlRequest::Blob { .. });
                let (reply, answer) = mpsc::channel();
                if to_sim.send(ToSim::Control { request, reply }).is_err() {
                    http::Response::error(503, "the simulation has stopped")
                } else {
                    match answer.recv_timeout(CONTROL_DEADLINE) {
                        Ok(Ok(value)) if blob => blob_response(&value),
                        Ok(Ok(value)) => http::Response::json(200, &value),
                        Ok(Err(error)) => error.response(),
                        Err(_) => http::Response::error(503, "the simulation did not answer"),
                    }
                }
            }
        },
    };
    let _ = response.write_to(&mut stream);
}
