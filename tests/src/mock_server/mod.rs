//! The network face of the simulation: a real websocket on 127.0.0.1 that carries the
//! simulated server's bytes, and an HTTP control endpoint (JSON) that drives the simulated
//! phone.
//!
//! Threads: one accepts websocket connections, two per websocket connection move bytes (one
//! reads the socket, one owns the websocket state and writes), one
//! accepts control connections (one short thread per request), and a single simulation thread
//! owns the [`Backend`]. They talk over channels only, so the backend stays a plain sans-IO
//! state machine driven with a real clock (Unix milliseconds) and one timer from its
//! `poll_timeout`.

pub mod control;
pub mod handshakes;
pub mod http;
pub mod process;
pub mod sim_backend;

use std::collections::{HashMap, VecDeque};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tungstenite::handshake::HandshakeError;
use tungstenite::handshake::server::{Callback, ErrorResponse, Request, Response};
use tungstenite::protocol::WebSocket;
use tungstenite::{Message, accept_hdr};

pub use control::{ControlError, ControlRequest};
pub use handshakes::{Handshake, HandshakeLog};

/// How long a new connection may take to send its websocket upgrade request.
const UPGRADE_DEADLINE: Duration = Duration::from_secs(10);

/// The most bytes one read of a socket takes.
const READ_CHUNK: usize = 64 * 1024;

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
        to_socket: Sender<ToSocket>,
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

/// What one connection's thread hears: from the simulation thread (`Send`, `Close`) and from
/// the thread reading its socket (`Received`, `PeerGone`).
enum ToSocket {
    Send(Vec<u8>),
    Close,
    Received(Vec<u8>),
    PeerGone,
}

/// Where a running mock server listens; stops it when dropped.
pub struct MockServer {
    ws_addr: SocketAddr,
    control_addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    to_sim: Sender<ToSim>,
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
        let (sim, stop, log) = (to_sim.clone(), Arc::clone(&stopping), handshakes.clone());
        threads.push(
            thread::Builder::new()
                .name("mock-ws-accept".into())
                .spawn(move || accept_websockets(&ws_listener, &sim, &stop, &log))?,
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
        // Wake the blocking accept calls so they see the flag.
        let _ = TcpStream::connect(self.ws_addr);
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
    let mut sockets: HashMap<ConnId, Sender<ToSocket>> = HashMap::new();
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

fn accept_websockets(
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
            .name("mock-ws".into())
            .spawn(move || serve_websocket(stream, &to_sim, &handshakes));
    }
}

/// The socket side of one connection as tungstenite sees it: reads come from the bytes the
/// reader thread handed over (`WouldBlock` when there are none yet), writes go straight to the
/// socket. This lets one thread wait on a single channel for both directions, with no polling.
struct Pipe {
    inbox: VecDeque<u8>,
    out: TcpStream,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.inbox.is_empty() && !buf.is_empty() {
            return Err(io::Error::from(ErrorKind::WouldBlock));
        }
        self.inbox.read(buf)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Reads the socket and hands every chunk to the connection thread, until the socket ends.
fn read_socket(mut stream: TcpStream, to_conn: &Sender<ToSocket>) {
    let mut buffer = vec![0u8; READ_CHUNK];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => {
                let _ = to_conn.send(ToSocket::PeerGone);
                return;
            }
            Ok(read) => {
                if to_conn
                    .send(ToSocket::Received(buffer[..read].to_vec()))
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// One websocket connection: the upgrade (its Origin and path recorded), then bytes both ways
/// until either side closes.
fn serve_websocket(stream: TcpStream, to_sim: &Sender<ToSim>, handshakes: &HandshakeLog) {
    let _ = stream.set_nodelay(true);
    let (Ok(reader), Ok(writer)) = (stream.try_clone(), stream.try_clone()) else {
        return;
    };
    let (to_conn, events) = mpsc::channel();
    let from_reader = to_conn.clone();
    if thread::Builder::new()
        .name("mock-ws-read".into())
        .spawn(move || read_socket(reader, &from_reader))
        .is_err()
    {
        return;
    }
    let pipe = Pipe {
        inbox: VecDeque::new(),
        out: writer,
    };
    let mut offered = None;
    // The signature is tungstenite's `Callback`; its error type is not ours to shrink.
    #[allow(clippy::result_large_err)]
    let remember = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        let origin = request
            .headers()
            .get("origin")
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        offered = Some((origin, request.uri().path().to_owned()));
        Ok(response)
    };
    if let Some(mut socket) = upgrade(pipe, &events, remember) {
        let (reply, conn) = mpsc::channel();
        let opened = to_sim.send(ToSim::Opened {
            to_socket: to_conn,
            reply,
        });
        if let (Ok(()), Ok(conn)) = (opened, conn.recv()) {
            let (origin, path) = offered.take().unwrap_or_default();
            handshakes.record(Handshake {
                conn,
                origin,
                path,
                at: now_ms(),
            });
            let closed_by_server = pump_websocket(&mut socket, conn, to_sim, &events);
            if !closed_by_server {
                let _ = to_sim.send(ToSim::Closed(conn));
            }
        }
    }
    // Ends the reader thread too.
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// The websocket upgrade, fed with the bytes the reader thread hands over; `callback` sees the
/// client's request.
fn upgrade<C: Callback>(
    pipe: Pipe,
    events: &Receiver<ToSocket>,
    callback: C,
) -> Option<WebSocket<Pipe>> {
    let mut attempt = accept_hdr(pipe, callback);
    loop {
        match attempt {
            Ok(socket) => return Some(socket),
            Err(HandshakeError::Failure(_)) => return None,
            Err(HandshakeError::Interrupted(mut mid)) => {
                match events.recv_timeout(UPGRADE_DEADLINE) {
                    Ok(ToSocket::Received(bytes)) => {
                        mid.get_mut().get_mut().inbox.extend(bytes);
                    }
                    _ => return None,
                }
                attempt = mid.handshake();
            }
        }
    }
}

/// Moves bytes until the connection ends; true when the server side asked to close it.
fn pump_websocket(
    socket: &mut WebSocket<Pipe>,
    conn: ConnId,
    to_sim: &Sender<ToSim>,
    events: &Receiver<ToSocket>,
) -> bool {
    loop {
        match events.recv() {
            Ok(ToSocket::Send(bytes)) => {
                if socket.send(Message::Binary(bytes.into())).is_err() {
                    return false;
                }
            }
            Ok(ToSocket::Close) | Err(_) => {
                let _ = socket.close(None);
                let _ = socket.flush();
                return true;
            }
            Ok(ToSocket::PeerGone) => return false,
            Ok(ToSocket::Received(bytes)) => {
                socket.get_mut().inbox.extend(bytes);
                loop {
                    match socket.read() {
                        Ok(Message::Binary(bytes)) => {
                            if to_sim.send(ToSim::Bytes(conn, bytes.to_vec())).is_err() {
                                return false;
                            }
                        }
                        Ok(Message::Close(_)) => {
                            let _ = socket.flush();
                            return false;
                        }
                        Ok(_) => {}
                        Err(tungstenite::Error::Io(error))
                            if error.kind() == ErrorKind::WouldBlock =>
                        {
                            // All bytes used; answer any queued control frame (a pong).
                            let _ = socket.flush();
                            break;
                        }
                        Err(_) => return false,
                    }
                }
            }
        }
    }
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
