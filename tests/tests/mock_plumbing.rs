//! The mock server's plumbing (websocket, control endpoint, threads, timers) against a trivial
//! in-file backend: it echoes bytes, lists its connections, and on a "stream error" request
//! sends a goodbye after a timer and closes the connection.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};
use walink_sim::mock_server::{
    Backend, BackendOutput, ConnId, ControlError, ControlRequest, MockServer, http,
};

/// The delay between a stream-error request and the goodbye, to exercise the timer path.
const GOODBYE_DELAY_MS: u64 = 30;

#[derive(Default)]
struct Echo {
    next: ConnId,
    open: BTreeSet<ConnId>,
    outputs: Vec<BackendOutput>,
    /// (when, connection, code) of the goodbyes to send.
    goodbyes: Vec<(u64, ConnId, u16)>,
    closed_by_client: Vec<ConnId>,
}

impl Backend for Echo {
    fn connect(&mut self, _now: u64) -> ConnId {
        self.next += 1;
        self.open.insert(self.next);
        self.next
    }

    fn handle_bytes(&mut self, _now: u64, conn: ConnId, bytes: &[u8]) {
        let mut reply = b"echo:".to_vec();
        reply.extend_from_slice(bytes);
        self.outputs
            .push(BackendOutput::Transmit { conn, bytes: reply });
    }

    fn handle_closed(&mut self, _now: u64, conn: ConnId) {
        self.open.remove(&conn);
        self.closed_by_client.push(conn);
    }

    fn handle_timeout(&mut self, now: u64) {
        let (due, later): (Vec<_>, Vec<_>) =
            self.goodbyes.drain(..).partition(|(at, _, _)| *at <= now);
        self.goodbyes = later;
        for (_, conn, code) in due {
            self.outputs.push(BackendOutput::Transmit {
                conn,
                bytes: format!("goodbye {code}").into_bytes(),
            });
            self.outputs.push(BackendOutput::Close { conn });
            self.open.remove(&conn);
        }
    }

    fn poll_output(&mut self) -> Option<BackendOutput> {
        if self.outputs.is_empty() {
            None
        } else {
            Some(self.outputs.remove(0))
        }
    }

    fn poll_timeout(&self) -> Option<u64> {
        self.goodbyes.iter().map(|(at, _, _)| *at).min()
    }

    fn control(&mut self, now: u64, request: ControlRequest) -> Result<Value, ControlError> {
        match request {
            ControlRequest::Health => Ok(json!({ "ok": true })),
            ControlRequest::ListConnections => Ok(json!({
                "open": self.open.iter().collect::<Vec<_>>(),
                "closed_by_client": self.closed_by_client,
            })),
            ControlRequest::StreamError {
                code,
                conn: Some(conn),
                ..
            } => {
                if !self.open.contains(&conn) {
                    return Err(ControlError::NotFound(format!("connection {conn}")));
                }
                self.goodbyes.push((now + GOODBYE_DELAY_MS, conn, code));
                Ok(json!({ "scheduled": true }))
            }
            other => Err(ControlError::Refused(format!("echo cannot {other:?}"))),
        }
    }
}

type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

fn connect(server: &MockServer) -> Socket {
    let (socket, response) = tungstenite::connect(server.ws_url()).expect("websocket connects");
    assert_eq!(response.status(), 101);
    socket
}

fn read_binary(socket: &mut Socket) -> Option<Vec<u8>> {
    loop {
        match socket.read() {
            Ok(Message::Binary(bytes)) => return Some(bytes.to_vec()),
            Ok(Message::Close(_)) => return None,
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

fn control(server: &MockServer, path: &str, body: Option<Value>) -> (u16, Value) {
    http::call(server.control_addr(), path, body.as_ref()).expect("control answers")
}

/// Polls the connection list until `check` holds or two seconds pass.
fn wait_connections(server: &MockServer, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let (status, value) = control(server, "/connections", None);
        assert_eq!(status, 200);
        if check(&value) || Instant::now() > deadline {
            return value;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn bytes_go_both_ways_in_order_on_several_connections() {
    let server = MockServer::start(Echo::default(), 0, 0).expect("binds");
    assert!(
        server
            .banner()
            .starts_with("walink-sim listening ws://127.0.0.1:")
    );
    assert!(server.banner().contains(" control http://127.0.0.1:"));
    let mut first = connect(&server);
    let mut second = connect(&server);
    for round in 0..20u8 {
        first.send(Message::Binary(vec![1, round].into())).unwrap();
        second.send(Message::Binary(vec![2, round].into())).unwrap();
    }
    for round in 0..20u8 {
        assert_eq!(
            read_binary(&mut first).unwrap(),
            [b"echo:".as_slice(), &[1, round]].concat()
        );
        assert_eq!(
            read_binary(&mut second).unwrap(),
            [b"echo:".as_slice(), &[2, round]].concat()
        );
    }
    let value = wait_connections(&server, |v| v["open"].as_array().map(Vec::len) == Some(2));
    assert_eq!(value["open"], json!([1, 2]));
    server.stop();
}

#[test]
fn a_client_close_reaches_the_backend() {
    let server = MockServer::start(Echo::default(), 0, 0).expect("binds");
    let mut socket = connect(&server);
    socket.send(Message::Binary(b"hi".to_vec().into())).unwrap();
    assert_eq!(read_binary(&mut socket).unwrap(), b"echo:hi");
    socket.close(None).unwrap();
    let _ = socket.flush();
    let value = wait_connections(&server, |v| v["closed_by_client"] == json!([1]));
    assert_eq!(value["closed_by_client"], json!([1]));
    assert_eq!(value["open"], json!([]));
}

#[test]
fn a_timer_fires_and_the_server_closes_the_connection() {
    let server = MockServer::start(Echo::default(), 0, 0).expect("binds");
    let mut socket = connect(&server);
    let started = Instant::now();
    let (status, value) = control(
        &server,
        "/stream-error",
        Some(json!({ "code": 515, "conn": 1 })),
    );
    assert_eq!((status, &value), (200, &json!({ "scheduled": true })));
    assert_eq!(read_binary(&mut socket).unwrap(), b"goodbye 515");
    assert!(started.elapsed() >= Duration::from_millis(GOODBYE_DELAY_MS));
    assert_eq!(
        read_binary(&mut socket),
        None,
        "the server closed the socket"
    );
    // A close the server asked for is not reported back as a client close.
    let value = wait_connections(&server, |v| v["open"] == json!([]));
    assert_eq!(value["closed_by_client"], json!([]));
}

#[test]
fn control_errors_have_status_codes_and_json_bodies() {
    let server = MockServer::start(Echo::default(), 0, 0).expect("binds");
    let (status, value) = control(&server, "/health", None);
    assert_eq!((status, value), (200, json!({ "ok": true })));
    let (status, value) = control(&server, "/nowhere", None);
    assert_eq!(status, 404);
    assert!(value["error"].as_str().unwrap().contains("/nowhere"));
    let (status, _) = control(&server, "/stream-error", Some(json!({ "code": "x" })));
    assert_eq!(status, 400);
    let (status, _) = control(
        &server,
        "/stream-error",
        Some(json!({ "code": 500, "conn": 99 })),
    );
    assert_eq!(status, 404);
    let (status, _) = control(&server, "/accounts", Some(json!({})));
    assert_eq!(status, 409);
}

#[test]
fn garbage_on_the_control_port_gets_a_400() {
    use std::io::{Read, Write};
    let server = MockServer::start(Echo::default(), 0, 0).expect("binds");
    let mut stream = TcpStream::connect(server.control_addr()).unwrap();
    stream.write_all(b"NONSENSE\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
}

#[test]
fn round_trips_are_fast() {
    let server = MockServer::start(Echo::default(), 0, 0).expect("binds");
    let mut socket = connect(&server);
    let rounds = 200u32;
    let started = Instant::now();
    for round in 0..rounds {
        let bytes = round.to_be_bytes().to_vec();
        socket.send(Message::Binary(bytes.clone().into())).unwrap();
        assert_eq!(
            read_binary(&mut socket).unwrap(),
            [b"echo:".as_slice(), &bytes].concat()
        );
    }
    let mean = started.elapsed() / rounds;
    println!("mean websocket round trip through the simulation thread: {mean:?}");
    // Nothing polls: each hop wakes on a channel or a socket (measured: tens of microseconds;
    // the bound leaves room for a loaded machine).
    assert!(mean < Duration::from_millis(5), "{mean:?}");
}

#[test]
fn garbage_on_the_websocket_port_is_dropped_and_others_are_served() {
    use std::io::{Read, Write};
    let server = MockServer::start(Echo::default(), 0, 0).expect("binds");
    let ws_addr = server
        .banner()
        .split_whitespace()
        .nth(2)
        .and_then(|url| url.strip_prefix("ws://"))
        .unwrap()
        .to_owned();
    let mut raw = TcpStream::connect(&ws_addr).unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = raw.read_to_end(&mut answer);
    assert!(
        !String::from_utf8_lossy(&answer).contains("101"),
        "no upgrade without websocket headers"
    );
    // A client that goes away in the middle of a frame.
    let mut half = TcpStream::connect(&ws_addr).unwrap();
    half.write_all(b"\x82\xfe").unwrap();
    drop(half);
    let mut socket = connect(&server);
    socket
        .send(Message::Binary(b"still here".to_vec().into()))
        .unwrap();
    assert_eq!(read_binary(&mut socket).unwrap(), b"echo:still here");
    let value = wait_connections(&server, |v| v["open"] == json!([1]));
    assert_eq!(
        value["open"],
        json!([1]),
        "only the real websocket reached the backend"
    );
}

#[test]
fn a_socket_that_vanishes_is_reported_closed() {
    let server = MockServer::start(Echo::default(), 0, 0).expect("binds");
    let mut socket = connect(&server);
    socket.send(Message::Binary(b"x".to_vec().into())).unwrap();
    assert_eq!(read_binary(&mut socket).unwrap(), b"echo:x");
    // No close frame: the TCP connection just ends.
    drop(socket);
    let value = wait_connections(&server, |v| v["closed_by_client"] == json!([1]));
    assert_eq!(value["closed_by_client"], json!([1]));
}

#[test]
fn the_origin_each_handshake_offered_is_reported() {
    use tungstenite::client::IntoClientRequest;
    let server = MockServer::start(Echo::default(), 0, 0).expect("binds");
    let mut request = server.ws_url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Origin", "https://web.whatsapp.com".parse().unwrap());
    let (mut with_origin, _) = tungstenite::connect(request).expect("websocket connects");
    let mut without_origin = connect(&server);
    for socket in [&mut with_origin, &mut without_origin] {
        socket.send(Message::Binary(b"x".to_vec().into())).unwrap();
        assert_eq!(read_binary(socket).unwrap(), b"echo:x");
    }
    let (status, value) = control(&server, "/handshakes", None);
    assert_eq!(status, 200);
    let handshakes = value["handshakes"].as_array().unwrap();
    assert_eq!(handshakes.len(), 2, "{value}");
    assert_eq!(handshakes[0]["conn"], 1);
    assert_eq!(handshakes[0]["origin"], "https://web.whatsapp.com");
    assert_eq!(handshakes[0]["path"], "/ws/chat");
    assert_eq!(handshakes[1]["conn"], 2);
    assert_eq!(handshakes[1]["origin"], Value::Null);
    assert_eq!(value["dropped"], 0);
    let kept = server.handshakes();
    assert_eq!(kept.len(), 2);
    assert_eq!(kept[0].origin.as_deref(), Some("https://web.whatsapp.com"));
    // The route is the network layer's: a POST is still the backend's (no such route there).
    let (status, _) = control(&server, "/handshakes", Some(json!({})));
    assert_eq!(status, 404);
}
