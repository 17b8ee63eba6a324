//! A native host for one walink [`Client`]: a blocking websocket (tungstenite), the wall clock,
//! one timer, and a file store, following the driver contract in `walink_core`'s crate docs:
//! outputs are drained in order after every input, a `Persist` batch is written (atomically)
//! before the next output is carried out, and a single timer is re-armed from `poll_timeout`.
//!
//! The driver is single-threaded and pull-based: [`Driver::next_event`] runs the loop until the
//! client emits an event or a deadline passes, which suits the demo and the end-to-end tests.

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::io::{self, ErrorKind, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};
use walink_core::client::{
    Client, CloseReason, Command, CommandId, Config, Event, Output, Timestamp,
};
use walink_core::store::{Batch, Record, RecordKey, RestoreError, Space};

use crate::mock_server::now_ms;
use crate::record_map::{self, RecordMap};

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

/// Why the file store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file system failed.
    #[error("i/o error on {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        error: io::Error,
    },
    /// A line of the store file is not `space<TAB>key<TAB>hex` (the file is damaged).
    #[error("line {line} of the store file is damaged")]
    Damaged {
        /// The line number, from 1.
        line: usize,
    },
}

/// A store of records in one file, one record a line (`space<TAB>key<TAB>hex value`, the key
/// escaped). Each
/// batch rewrites the whole file into a temporary file, syncs it and renames it over the old
/// one, so a crash leaves either the old or the new state, never a mix.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    records: RecordMap,
}

impl FileStore {
    /// Opens the store at `path`; a missing file is an empty store.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == ErrorKind::NotFound => String::new(),
            Err(error) => return Err(StoreError::Io { path, error }),
        };
        let mut records = BTreeMap::new();
        for (index, line) in text.lines().enumerate() {
            let damaged = StoreError::Damaged { line: index + 1 };
            let mut fields = line.split('\t');
            let (Some(space), Some(key), Some(value), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err(damaged);
            };
            let value = hex::decode(value).map_err(|_| StoreError::Damaged { line: index + 1 })?;
            let key = unescape(key).ok_or(StoreError::Damaged { line: index + 1 })?;
            records.insert((space.to_owned(), key), value);
        }
        Ok(FileStore { path, records })
    }

    /// The records of the spaces loaded at start, for `Client::new`. Records of a space this
    /// build does not know are kept in the file but never handed to the client.
    pub fn records_at_start(&self) -> Vec<Record> {
        record_map::records(&self.records, Space::loaded_at_start)
    }

    /// The records that exist among `keys`, for `Client::handle_loaded`.
    pub fn load(&self, keys: &[RecordKey]) -> Vec<Record> {
        record_map::load(&self.records, keys)
    }

    /// How many records the store holds.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Applies a batch atomically: all of it is on disk when this returns `Ok`, none of it if
    /// it returns `Err` (the in-memory copy is left unchanged too).
    pub fn apply(&mut self, batch: &Batch) -> Result<(), StoreError> {
        let mut next = self.records.clone();
        record_map::apply(&mut next, batch);
        let mut text = String::new();
        for ((space, key), value) in &next {
            text.push_str(space);
            text.push('\t');
            text.push_str(&escape(key));
            text.push('\t');
            text.push_str(&hex::encode(value));
            text.push('\n');
        }
        let temporary = self.path.with_extension("tmp");
        let io = |error| StoreError::Io {
            path: self.path.clone(),
            error,
        };
        let mut file = fs::File::create(&temporary).map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        drop(file);
        fs::rename(&temporary, &self.path).map_err(io)?;
        self.records = next;
        Ok(())
    }
}

/// A key with `%`, tab, line feed and carriage return written as `%25`, `%09`, `%0A`, `%0D`,
/// so any key fits in one tab-separated field.
fn escape(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for c in key.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\t' => out.push_str("%09"),
            '\n' => out.push_str("%0A"),
            '\r' => out.push_str("%0D"),
            c => out.push(c),
        }
    }
    out
}

/// The inverse of [`escape`]; `None` for an escape it never writes.
fn unescape(field: &str) -> Option<String> {
    let mut out = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 3)?;
        out.push(match code {
            "25" => '%',
            "09" => '\t',
            "0A" => '\n',
            "0D" => '\r',
            _ => return None,
        });
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Some(out)
}

type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

/// One client, its socket, its store and its timer.
pub struct Driver {
    client: Client,
    store: FileStore,
    url: String,
    socket: Option<Socket>,
    events: VecDeque<Event>,
    /// What the driver did, one line per step (connects, closes, frames in and out, batches).
    pub log: Vec<String>,
}

impl Driver {
    /// Builds the client from the store's records; it connects to `url` when it asks to.
    pub fn new(config: Config, store: FileStore, url: &str) -> Result<Self, DriverError> {
        let client = Client::new(config, store.records_at_start()).map_err(DriverError::Restore)?;
        let mut driver = Driver {
            client,
            store,
            url: url.to_owned(),
            socket: None,
            events: VecDeque::new(),
            log: Vec::new(),
        };
        driver.drain()?;
        Ok(driver)
    }

    /// The store, e.g. to count its records.
    pub fn store(&self) -> &FileStore {
        &self.store
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
                    self.store.apply(&batch)?;
                    self.log
                        .push(format!("stored a batch of {} changes", batch.changes.len()));
                }
                Output::Close(reason) => {
                    self.log.push(format!("closing the websocket: {reason:?}"));
                    if let Some(mut socket) = self.socket.take() {
                        let _ = socket.close(None);
                        let _ = socket.flush();
                    }
                }
                Output::Load { id, keys } => {
                    let records = self.store.load(&keys);
                    self.log.push(format!(
                        "loaded {} of {} records asked for",
                        records.len(),
                        keys.len()
                    ));
                    self.client.handle_loaded(now_ms(), id, records);
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
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use walink_core::store::Change;

    fn dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("walink-filestore-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn put(space: Space, key: &str, value: &[u8]) -> Change {
        Change::Put(Record {
            space,
            key: key.to_owned(),
            value: value.to_vec(),
        })
    }

    #[test]
    fn batches_survive_a_reopen_and_deletes_apply() {
        let dir = dir("reopen");
        let path = dir.join("store.tsv");
        let mut store = FileStore::open(&path).unwrap();
        assert!(store.is_empty());
        store
            .apply(&Batch {
                changes: vec![
                    put(Space::Device, "device", &[1, 2, 3]),
                    put(Space::Session, "1.0@s.whatsapp.net", &[]),
                    put(Space::PreKey, "7", &[0xff; 40]),
                ],
            })
            .unwrap();
        store
            .apply(&Batch {
                changes: vec![Change::Delete {
                    space: Space::PreKey,
                    key: "7".into(),
                }],
            })
            .unwrap();
        let again = FileStore::open(&path).unwrap();
        assert_eq!(again.len(), 2);
        let at_start = again.records_at_start();
        assert_eq!(at_start.len(), 1, "sessions are loaded on demand");
        assert_eq!(at_start[0].value, [1, 2, 3]);
        let loaded = again.load(&[
            RecordKey::new(Space::Session, "1.0@s.whatsapp.net"),
            RecordKey::new(Space::PreKey, "7"),
        ]);
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].key, "1.0@s.whatsapp.net");
        assert!(loaded[0].value.is_empty());
        let mut again = again;
        again
            .apply(&Batch {
                changes: vec![Change::DeleteAll],
            })
            .unwrap();
        assert!(FileStore::open(&path).unwrap().is_empty());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn keys_with_separators_round_trip() {
        for key in ["plain", "a\tb", "line\nbreak\r", "100%", "%09", ""] {
            assert_eq!(unescape(&escape(key)).as_deref(), Some(key));
            assert!(!escape(key).contains(['\t', '\n', '\r']));
        }
        assert_eq!(unescape("%zz"), None);
        assert_eq!(unescape("%2"), None);
        let dir = dir("keys");
        let path = dir.join("store.tsv");
        let mut store = FileStore::open(&path).unwrap();
        store
            .apply(&Batch {
                changes: vec![put(Space::Device, "odd\tkey\n%", &[1])],
            })
            .unwrap();
        let again = FileStore::open(&path).unwrap();
        assert_eq!(again.records_at_start()[0].key, "odd\tkey\n%");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_failed_write_changes_nothing() {
        let dir = dir("failed");
        let path = dir.join("store.tsv");
        let mut store = FileStore::open(&path).unwrap();
        store
            .apply(&Batch {
                changes: vec![put(Space::Device, "device", &[9])],
            })
            .unwrap();
        // The directory disappears: the temporary file cannot be created.
        fs::remove_dir_all(&dir).unwrap();
        let error = store.apply(&Batch {
            changes: vec![put(Space::Device, "device", &[10])],
        });
        assert!(matches!(error, Err(StoreError::Io { .. })));
        assert_eq!(store.records_at_start()[0].value, [9]);
    }

    #[test]
    fn damaged_files_are_refused_and_unknown_spaces_kept() {
        let dir = dir("damaged");
        let path = dir.join("store.tsv");
        fs::write(&path, "device\tdevice\t0102\nsession\tx\tzz\n").unwrap();
        assert!(matches!(
            FileStore::open(&path),
            Err(StoreError::Damaged { line: 2 })
        ));
        fs::write(&path, "device\tdevice\n").unwrap();
        assert!(matches!(
            FileStore::open(&path),
            Err(StoreError::Damaged { line: 1 })
        ));
        let device = Space::Device.as_str();
        fs::write(
            &path,
            format!("{device}\tdevice\t0102\nfuture-space\tk\t00\n"),
        )
        .unwrap();
        let mut store = FileStore::open(&path).unwrap();
        assert_eq!(store.len(), 2);
        assert_eq!(store.records_at_start().len(), 1);
        store.apply(&Batch { changes: vec![] }).unwrap();
        assert!(
            fs::read_to_string(&path)
                .unwrap()
                .contains("future-space\tk\t00")
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
