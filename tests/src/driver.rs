//! A native host for one walink [`Client`]: a blocking websocket (tungstenite), the wall clock,
//! one timer, and a file store, following the driver contract in `walink_core`'s crate docs:
//! outputs are drained in order after every input, a `Persist` batch is written (atomically)
//! before the next output is carried out, and a single timer is re-armed from `poll_timeout`.
//!
//! The driver is single-threaded and pull-based: [`Driver::next_event`] runs the loop until the
//! client emits an event or a deadline passes, which suits the demo and the end-to-end tests.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};
use walink_core::client::{
    Client, CloseReason, Command, CommandId, Config, Event, FetchError, FetchRequest,
    FetchResponse, FetchResult, Method, Output, Timestamp,
};
use walink_core::store::{Batch, Change, Record, RecordKey, RestoreError, Space};
pub use walink_file_store::{FileStore, Options as StoreOptions, StoreError};

use crate::mock_server::now_ms;

/// The longest the loop blocks on the socket before it looks at the clock again.
const SOCKET_POLL: Duration = Duration::from_millis(20);

/// Why the driver stopped.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The store could not be read or written (the host's fault): rebuild from the store.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The stored records were refused by the client.
    #[error("restore: {0:?}")]
    Restore(RestoreError),
    /// No event came before the deadline.
    #[error("no event before the deadline")]
    Deadline,
}

/// The records of the spaces loaded at start, for `Client::new`. Records of a space this build
/// does not know stay in the store but are never handed to the client.
pub fn records_at_start(store: &mut FileStore) -> Result<Vec<Record>, StoreError> {
    let spaces: Vec<&str> = Space::ALL
        .into_iter()
        .filter(|s| s.loaded_at_start())
        .map(Space::as_str)
        .collect();
    Ok(store
        .load_spaces(&spaces)?
        .into_iter()
        .filter_map(core_record)
        .collect())
}

fn core_record(record: walink_file_store::Record) -> Option<Record> {
    Some(Record {
        space: Space::parse(&record.space)?,
        key: record.key,
        value: record.value,
    })
}

/// Applies one of the client's batches to the store.
fn persist(store: &mut FileStore, batch: Batch) -> Result<(), StoreError> {
    let changes: Vec<walink_file_store::Change> = batch
        .changes
        .into_iter()
        .map(|change| match change {
            Change::Put(mut record) => walink_file_store::Change::Put {
                space: record.space.as_str().to_owned(),
                key: core::mem::take(&mut record.key),
                value: core::mem::take(&mut record.value),
            },
            Change::Delete { space, key } => walink_file_store::Change::Delete {
                space: space.as_str().to_owned(),
                key,
            },
            Change::DeleteAll => walink_file_store::Change::DeleteAll,
        })
        .collect();
    store.apply_batch(&changes)
}

/// The records that exist among `keys`, for `Client::handle_loaded`.
fn load(store: &mut FileStore, keys: &[RecordKey]) -> Result<Vec<Record>, StoreError> {
    let keys: Vec<(&str, &str)> = keys
        .iter()
        .map(|k| (k.space.as_str(), k.key.as_str()))
        .collect();
    Ok(store
        .load(&keys)?
        .into_iter()
        .filter_map(core_record)
        .collect())
}

/// Carries out one `Output::Fetch`: the driver's one HTTP call. Plain `http://` only (the
/// mock-server's media path; this driver has no TLS), HTTP/1.1 with `Connection: close`, at most
/// `max_response_bytes` of body; anything it cannot do is a `Network` failure.
fn fetch(request: &FetchRequest) -> FetchResult {
    let timeout = Duration::from_millis(request.timeout_ms.max(1));
    let rest = request
        .url
        .strip_prefix("http://")
        .ok_or(FetchError::Network)?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let addr = authority
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or(FetchError::Network)?;
    let failed = |error: std::io::Error| match error.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => FetchError::TimedOut,
        _ => FetchError::Network,
    };
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(failed)?;
    stream.set_read_timeout(Some(timeout)).map_err(failed)?;
    stream.set_write_timeout(Some(timeout)).map_err(failed)?;
    let mut head = format!(
        "{} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n",
        request.method.as_str()
    );
    for (name, value) in &request.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = request.body.as_slice();
    if request.method != Method::Get || !body.is_empty() {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).map_err(failed)?;
    stream.write_all(body).map_err(failed)?;
    // The head (a few KiB at most) and the body, never more than the request allows.
    let limit = request.max_response_bytes.saturating_add(16 * 1024);
    let mut response = Vec::new();
    stream
        .take(limit.saturating_add(1))
        .read_to_end(&mut response)
        .map_err(failed)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(FetchError::Network)?;
    let head = String::from_utf8_lossy(&response[..split]);
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or(FetchError::Network)?;
    let body = response.split_off(split + 4);
    if body.len() as u64 > request.max_response_bytes {
        return Err(FetchError::TooLarge);
    }
    Ok(FetchResponse::new(status, body))
}

type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

/// One client, its socket, its store and its timer.
pub struct Driver {
    client: Client,
    store: FileStore,
    url: String,
    socket: Option<Socket>,
    events: VecDeque<Event>,
    fetched: Vec<String>,
    /// What the driver did, one line per step (connects, closes, frames in and out, batches).
    pub log: Vec<String>,
}

impl Driver {
    /// Builds the client from the store's records; it connects to `url` when it asks to.
    pub fn new(config: Config, mut store: FileStore, url: &str) -> Result<Self, DriverError> {
        let client =
            Client::new(config, records_at_start(&mut store)?).map_err(DriverError::Restore)?;
        let mut driver = Driver {
            client,
            store,
            url: url.to_owned(),
            socket: None,
            events: VecDeque::new(),
            fetched: Vec::new(),
            log: Vec::new(),
        };
        driver.drain()?;
        Ok(driver)
    }

    /// The store, e.g. to count its records.
    pub fn store(&self) -> &FileStore {
        &self.store
    }

    /// The URLs of the fetches the client asked for, in order.
    pub fn fetched(&self) -> &[String] {
        &self.fetched
    }

    /// Whether a websocket is open.
    pub fn is_connected(&self) -> bool {
        self.socket.is_some()
    }

    /// Hands the client a command and carries out what follows.
    pub fn command(&mut self, command: Command) -> Result<CommandId, DriverError> {
        let id = self.client.command(now_ms(), command);
        self.drain()?;
        Ok(id)
    }

    /// Runs the loop until the client emits an event, or fails with [`DriverError::Deadline`].
    pub fn next_event(&mut self, timeout: Duration) -> Result<Event, DriverError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(event) = self.events.pop_front() {
                return Ok(event);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(DriverError::Deadline);
            }
            self.step(deadline - now)?;
        }
    }

    /// Runs the loop until an event satisfies `want` and returns it; the events passed over on
    /// the way are handed to `seen`.
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        mut want: impl FnMut(&Event) -> bool,
        mut seen: impl FnMut(&Event),
    ) -> Result<Event, DriverError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = self.next_event(left)?;
            if want(&event) {
                return Ok(event);
            }
            seen(&event);
        }
    }

    /// One turn: wait for bytes (at most until the timer or `limit`), or fire the timer.
    fn step(&mut self, limit: Duration) -> Result<(), DriverError> {
        let now = now_ms();
        let timer = self.client.poll_timeout();
        if timer.is_some_and(|at| at <= now) {
            self.client.handle_timeout(now);
            return self.drain();
        }
        let until_timer = timer.map_or(limit, |at| Duration::from_millis(at.saturating_sub(now)));
        let wait = limit
            .min(until_timer)
            .min(SOCKET_POLL)
            .max(Duration::from_millis(1));
        let Some(socket) = self.socket.as_mut() else {
            std::thread::sleep(wait);
            return Ok(());
        };
        if let MaybeTlsStream::Plain(stream) = socket.get_ref() {
            let _ = stream.set_read_timeout(Some(wait));
        }
        match socket.read() {
            Ok(Message::Binary(bytes)) => {
                self.log.push(format!("<- {} bytes", bytes.len()));
                self.client.handle_bytes(now_ms(), &bytes);
            }
            Ok(Message::Close(_)) => {
                self.log.push("<- websocket closed by the server".into());
                self.socket = None;
                self.client.handle_closed(now_ms(), CloseReason::Network);
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(error))
                if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                return Ok(());
            }
            Err(error) => {
                self.log.push(format!("<- websocket failed: {error}"));
                self.socket = None;
                self.client.handle_closed(now_ms(), CloseReason::Network);
            }
        }
        self.drain()
    }

    /// Drains the client's outputs in order and carries each out.
    fn drain(&mut self) -> Result<(), DriverError> {
        while let Some(output) = self.client.poll_output() {
            match output {
                Output::Connect => self.connect(),
                Output::Transmit(bytes) => {
                    let sent = match self.socket.as_mut() {
                        Some(socket) => socket.send(Message::Binary(bytes.clone().into())),
                        None => Err(tungstenite::Error::AlreadyClosed),
                    };
                    match sent {
                        Ok(()) => self.log.push(format!("-> {} bytes", bytes.len())),
                        Err(error) => {
                            self.log.push(format!("-> send failed: {error}"));
                            self.socket = None;
                            self.client.handle_closed(now_ms(), CloseReason::Network);
                        }
                    }
                }
                Output::Persist(batch) => {
                    let changes = batch.changes.len();
                    persist(&mut self.store, batch)?;
                    self.log
                        .push(format!("stored a batch of {changes} changes"));
                }
                Output::Close(reason) => {
                    self.log.push(format!("closing the websocket: {reason:?}"));
                    if let Some(mut socket) = self.socket.take() {
                        let _ = socket.close(None);
                        let _ = socket.flush();
                    }
                }
                Output::Load { id, keys } => {
                    let records = load(&mut self.store, &keys)?;
                    self.log.push(format!(
                        "loaded {} of {} records asked for",
                        records.len(),
                        keys.len()
                    ));
                    self.client.handle_loaded(now_ms(), id, records);
                }
                Output::Fetch { id, request } => {
                    let result = fetch(&request);
                    self.log.push(format!(
                        "fetched {} {}: {:?}",
                        request.method.as_str(),
                        request.url,
                        result.as_ref().map(|r| r.status)
                    ));
                    self.fetched.push(request.url);
                    self.client.handle_fetched(now_ms(), id, result);
                }
                Output::Event(event) => self.events.push_back(event),
            }
        }
        Ok(())
    }

    fn connect(&mut self) {
        let now: Timestamp = now_ms();
        if let Some(mut old) = self.socket.take() {
            let _ = old.close(None);
        }
        match tungstenite::connect(self.url.as_str()) {
            Ok((socket, _)) => {
                if let MaybeTlsStream::Plain(stream) = socket.get_ref() {
                    let _ = stream.set_nodelay(true);
                }
                self.log.push(format!("connected to {}", self.url));
                self.socket = Some(socket);
                self.client.handle_connected(now);
            }
            Err(error) => {
                self.log
                    .push(format!("connect to {} failed: {error}", self.url));
                self.client.handle_closed(now, CloseReason::Network);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-shot HTTP server on 127.0.0.1 answering with `response`; returns its origin.
    fn serve(response: Vec<u8>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request);
                let _ = stream.write_all(&response);
            }
        });
        format!("http://{addr}")
    }

    fn get(url: String, max_response_bytes: u64) -> FetchRequest {
        FetchRequest {
            method: Method::Get,
            url,
            headers: vec![("X-Test".into(), "1".into())],
            body: walink_core::client::Body::Empty,
            response: walink_core::client::ResponseTarget::Memory,
            max_response_bytes,
            timeout_ms: 5_000,
        }
    }

    #[test]
    fn one_http_call_answers_any_status_and_caps_the_body() {
        let ok = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc".to_vec());
        assert_eq!(
            fetch(&get(format!("{ok}/v/x"), 10)),
            Ok(FetchResponse::new(200, b"abc".to_vec()))
        );
        let missing = serve(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec());
        assert_eq!(fetch(&get(missing, 10)).map(|r| r.status), Ok(404));
        let large = serve([&b"HTTP/1.1 200 OK\r\n\r\n"[..], &[7; 64]].concat());
        assert_eq!(fetch(&get(large, 10)), Err(FetchError::TooLarge));
        // No TLS in this driver: an https URL is a network failure, as is nobody listening.
        assert_eq!(
            fetch(&get("https://127.0.0.1:1/v/x".into(), 10)),
            Err(FetchError::Network)
        );
        assert_eq!(
            fetch(&get("http://127.0.0.1:1/v/x".into(), 10)),
            Err(FetchError::Network)
        );
    }
}
