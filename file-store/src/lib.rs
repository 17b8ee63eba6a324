//! walink's durable record store: one directory per client, safe against a crash at any point.
//!
//! - `wal`: the batches applied since the last snapshot, one checksummed frame each
//!   ([`format`]), appended and synced (fdatasync) before [`FileStore::apply_batch`] returns;
//! - `snapshot`: every record at some point, written to `snapshot.tmp`, synced, then renamed
//!   over the old one;
//! - `snapshot.tmp`: a snapshot being written; deleted on open.
//!
//! A crash in the middle of an append leaves a torn last frame, which the next open cuts off,
//! so a reopened store holds exactly the batches whose `apply_batch` returned (and possibly the
//! one in flight, if its frame reached the disk whole). When the wal outgrows both
//! `compact_bytes` and the snapshot, the two are folded into a new snapshot; replaying a wal on
//! a snapshot that already contains it gives the same records (puts and deletes are
//! last-writer-wins), so a crash between the rename and the truncation of the wal is harmless.
//!
//! The records live in memory as well (read once at open), so loads never touch the disk. Files
//! are created readable by their owner only (0600, and 0700 for the directory on Unix): they
//! hold the device's private keys. The format is the npm package's `FileStore`'s, so a
//! directory moves between hosts. This crate is the store of the Kotlin, Python and Swift
//! packages (through walink-ffi) and of the native driver.

#![warn(unreachable_pub)]
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};

pub mod format;

use format::{ChangeRef, SNAPSHOT_MAGIC, encode_frame, read_frames};

const SNAPSHOT: &str = "snapshot";
const SNAPSHOT_TMP: &str = "snapshot.tmp";
const WAL: &str = "wal";

/// The wal size from which a batch also folds the wal into a new snapshot (unless the wal is
/// smaller than the snapshot).
pub const DEFAULT_COMPACT_BYTES: u64 = 1 << 20;

/// One change of a batch.
#[derive(Clone, PartialEq, Eq)]
pub enum Change {
    /// Insert or overwrite a record.
    Put {
        /// A non-empty space without NUL.
        space: String,
        /// Any key.
        key: String,
        /// Opaque bytes.
        value: Vec<u8>,
    },
    /// Remove a record (absent is fine).
    Delete {
        /// The space.
        space: String,
        /// The key.
        key: String,
    },
    /// Remove every record.
    DeleteAll,
}

impl std::fmt::Debug for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values hold private keys: only their length is shown.
        match self {
            Change::Put { space, key, value } => {
                write!(f, "Put({space}/{key}, {} bytes)", value.len())
            }
            Change::Delete { space, key } => write!(f, "Delete({space}/{key})"),
            Change::DeleteAll => f.write_str("DeleteAll"),
        }
    }
}

/// One stored record.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    /// The space.
    pub space: String,
    /// The key.
    pub key: String,
    /// The value.
    pub value: Vec<u8>,
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Record({}/{}, {} bytes)",
            self.space,
            self.key,
            self.value.len()
        )
    }
}

/// Why the store refused or failed an operation; [`StoreError::code`] is stable.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A change of the batch is malformed; nothing of the batch was applied.
    #[error("change {index}: {problem}")]
    InvalidChange {
        /// The change's position in the batch.
        index: usize,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The store was closed.
    #[error("the store is closed")]
    Closed,
    /// The file system failed. The store holds none or all of the batch, and repairs itself
    /// before its next operation.
    #[error("{context}: {source}")]
    Io {
        /// What the store was doing.
        context: &'static str,
        /// The file system's error.
        source: io::Error,
    },
    /// The files are damaged beyond a torn last write.
    #[error("the store is corrupt: {0}")]
    Corrupt(String),
    /// A batch is too large for one frame.
    #[error("a batch of {0} bytes exceeds the frame limit")]
    TooLarge(u64),
}

impl StoreError {
    /// `invalid_change`, `closed`, `io`, `corrupt` or `too_large`: the codes every walink
    /// store uses (docs/hosts.md).
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::InvalidChange { .. } => "invalid_change",
            StoreError::Closed => "closed",
            StoreError::Io { .. } => "io",
            StoreError::Corrupt(_) => "corrupt",
            StoreError::TooLarge(_) => "too_large",
        }
    }
}

fn io(context: &'static str) -> impl FnOnce(io::Error) -> StoreError {
    move |source| StoreError::Io { context, source }
}

/// How a [`FileStore`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Sync each batch (and each snapshot) to the disk before returning (default): durable.
    /// Without it a batch survives a process crash but not a power loss.
    pub sync: bool,
    /// The wal size from which a batch also writes a new snapshot.
    pub compact_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sync: true,
            compact_bytes: DEFAULT_COMPACT_BYTES,
        }
    }
}

type Records = BTreeMap<(String, String), Vec<u8>>;

/// Faults injected by the unit tests.
#[cfg(test)]
#[derive(Debug, Default)]
struct Faults {
    /// The next append writes this many bytes of its frame, then fails.
    write_limit: Option<usize>,
    /// Truncating the wal after a failed append fails too.
    fail_truncate: bool,
}

/// A store in a directory of the local file system. One `FileStore` per directory at a time.
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
    options: Options,
    wal: Option<File>,
    records: Records,
    wal_size: u64,
    snapshot_size: u64,
    needs_repair: bool,
    closed: bool,
    #[cfg(test)]
    faults: Faults,
}

impl FileStore {
    /// Opens the store in `dir` (creating it, 0700, when missing), cutting off a torn last
    /// write and discarding a half-written snapshot.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<FileStore, StoreError> {
        let mut store = FileStore {
            dir: dir.as_ref().to_path_buf(),
            options,
            wal: None,
            records: Records::new(),
            wal_size: 0,
            snapshot_size: 0,
            needs_repair: true,
            closed: false,
            #[cfg(test)]
            faults: Faults::default(),
        };
        store.repair()?;
        Ok(store)
    }

    /// The directory the store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Applies `changes` in order, atomically and durably: once this returns `Ok` the batch
    /// survives a crash; on an error the store holds none of it (or, after a failed
    /// compaction, all of it: the batch itself was synced first).
    pub fn apply_batch(&mut self, changes: &[Change]) -> Result<(), StoreError> {
        check(changes)?;
        self.ready()?;
        if changes.is_empty() {
            return Ok(());
        }
        let frame = encode_frame(changes.iter().map(ChangeRef::from))?;
        if let Err(source) = self.append(&frame) {
            self.undo_append();
            return Err(StoreError::Io {
                context: "writing the batch failed",
                source,
            });
        }
        self.wal_size += frame.len() as u64;
        for change in changes {
            apply(&mut self.records, change.clone());
        }
        if self.wal_size >= self.options.compact_bytes.max(self.snapshot_size) {
            self.compact()?;
        }
        Ok(())
    }

    /// Every record.
    pub fn load_all(&mut self) -> Result<Vec<Record>, StoreError> {
        self.ready()?;
        Ok(self.records.iter().map(record).collect())
    }

    /// Every record of the given spaces.
    pub fn load_spaces(&mut self, spaces: &[&str]) -> Result<Vec<Record>, StoreError> {
        self.ready()?;
        Ok(self
            .records
            .iter()
            .filter(|((space, _), _)| spaces.contains(&space.as_str()))
            .map(record)
            .collect())
    }

    /// The records under `keys` (space, key) that exist.
    pub fn load(&mut self, keys: &[(&str, &str)]) -> Result<Vec<Record>, StoreError> {
        self.ready()?;
        Ok(keys
            .iter()
            .filter_map(|(space, key)| {
                let id = ((*space).to_owned(), (*key).to_owned());
                self.records.get_key_value(&id).map(record)
            })
            .collect())
    }

    /// How many records the store holds.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the store holds no record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Closes the wal; every later operation fails with `Closed`.
    pub fn close(&mut self) {
        self.closed = true;
        self.wal = None;
    }

    /// Fails when closed; repairs first when an earlier failure left the files in doubt.
    fn ready(&mut self) -> Result<(), StoreError> {
        if self.closed {
            return Err(StoreError::Closed);
        }
        if self.needs_repair {
            self.repair()?;
        }
        Ok(())
    }

    /// Re-reads the files, cuts a torn wal tail, and reopens the wal for appending.
    fn repair(&mut self) -> Result<(), StoreError> {
        self.wal = None;
        create_private_dir(&self.dir)?;
        match fs::remove_file(self.dir.join(SNAPSHOT_TMP)) {
            Ok(()) => {}
            Err(error) if error.kind() == ErrorKind::NotFound => {}
            Err(error) => return Err(io("removing a half-written snapshot failed")(error)),
        }
        let mut records = Records::new();
        let snapshot_path = self.dir.join(SNAPSHOT);
        let snapshot = read_optional(&snapshot_path)?;
        if let Some(bytes) = &snapshot {
            narrow_permissions(&snapshot_path).map_err(io("narrowing permissions failed"))?;
            let body = bytes.strip_prefix(&SNAPSHOT_MAGIC[..]).ok_or_else(|| {
                StoreError::Corrupt("the snapshot lacks the walink header".into())
            })?;
            let frames = read_frames(body, 0, |change| apply(&mut records, change))?;
            // A snapshot only ever appears whole (renamed into place): any damage is corruption.
            if frames.torn || frames.count != 1 {
                return Err(StoreError::Corrupt("the snapshot file is damaged".into()));
            }
        }
        let wal_path = self.dir.join(WAL);
        let wal = read_optional(&wal_path)?.unwrap_or_default();
        let frames = read_frames(&wal, 0, |change| apply(&mut records, change))?;
        let file = open_private(&wal_path, OpenOptions::new().append(true).create(true))
            .map_err(io("opening the wal failed"))?;
        if frames.torn {
            file.set_len(frames.end as u64)
                .map_err(io("cutting off a torn write failed"))?;
        }
        self.wal = Some(file);
        self.records = records;
        self.wal_size = frames.end as u64;
        self.snapshot_size = snapshot.map_or(0, |s| s.len() as u64);
        self.needs_repair = false;
        Ok(())
    }

    /// Appends a frame to the wal and syncs it.
    fn append(&mut self, frame: &[u8]) -> io::Result<()> {
        let wal = self
            .wal
            .as_mut()
            .ok_or_else(|| io::Error::other("the wal is not open"))?;
        #[cfg(test)]
        if let Some(limit) = self.faults.write_limit.take() {
            wal.write_all(frame.get(..limit).unwrap_or(frame))?;
            return Err(io::Error::other("injected write failure"));
        }
        wal.write_all(frame)?;
        if self.options.sync {
            wal.sync_data()?;
        }
        Ok(())
    }

    /// After a failed append: cut the wal back to its last good size, or repair before the
    /// next operation.
    fn undo_append(&mut self) {
        #[cfg(test)]
        if core::mem::take(&mut self.faults.fail_truncate) {
            self.needs_repair = true;
            return;
        }
        let cut = self.wal.as_ref().map(|wal| wal.set_len(self.wal_size));
        if !matches!(cut, Some(Ok(()))) {
            self.needs_repair = true;
        }
    }

    /// Folds the wal into a new snapshot: write the temporary file, sync, rename, sync the
    /// directory, then empty the wal.
    fn compact(&mut self) -> Result<(), StoreError> {
        let result = self.write_snapshot();
        if result.is_err() {
            // The batch itself is durable; the store is consistent whichever step failed.
            self.needs_repair = true;
        }
        result
    }

    fn write_snapshot(&mut self) -> Result<(), StoreError> {
        let puts = self
            .records
            .iter()
            .map(|((space, key), value)| ChangeRef::Put { space, key, value });
        let frame = encode_frame(puts)?;
        let tmp = self.dir.join(SNAPSHOT_TMP);
        let failed = io("compacting the store failed");
        {
            let mut file = open_private(
                &tmp,
                OpenOptions::new().write(true).create(true).truncate(true),
            )
            .map_err(io("compacting the store failed"))?;
            file.write_all(&SNAPSHOT_MAGIC)
                .and_then(|()| file.write_all(&frame))
                .and_then(|()| {
                    if self.options.sync {
                        file.sync_all()
                    } else {
                        Ok(())
                    }
                })
                .map_err(io("compacting the store failed"))?;
        }
        fs::rename(&tmp, self.dir.join(SNAPSHOT)).map_err(io("compacting the store failed"))?;
        if self.options.sync {
            sync_dir(&self.dir).map_err(io("compacting the store failed"))?;
        }
        let wal = self
            .wal
            .as_ref()
            .ok_or_else(|| failed(io::Error::other("the wal is not open")))?;
        wal.set_len(0)
            .and_then(|()| {
                if self.options.sync {
                    wal.sync_data()
                } else {
                    Ok(())
                }
            })
            .map_err(io("compacting the store failed"))?;
        self.wal_size = 0;
        self.snapshot_size = (SNAPSHOT_MAGIC.len() + frame.len()) as u64;
        Ok(())
    }
}

/// Checks a whole batch before anything is applied.
fn check(changes: &[Change]) -> Result<(), StoreError> {
    for (index, change) in changes.iter().enumerate() {
        if let Change::Put { space, .. } | Change::Delete { space, .. } = change
            && (space.is_empty() || space.contains('\0'))
        {
            return Err(StoreError::InvalidChange {
                index,
                problem: "space must be a non-empty string without NUL",
            });
        }
    }
    Ok(())
}

fn apply(records: &mut Records, change: Change) {
    match change {
        Change::Put { space, key, value } => {
            records.insert((space, key), value);
        }
        Change::Delete { space, key } => {
            records.remove(&(space, key));
        }
        Change::DeleteAll => records.clear(),
    }
}

fn record(((space, key), value): (&(String, String), &Vec<u8>)) -> Record {
    Record {
        space: space.clone(),
        key: key.clone(),
        value: value.clone(),
    }
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
        Err(error) => Err(io("reading the store failed")(error)),
    }
}

/// Creates `dir` and its missing parents, readable by the owner only (0700 on Unix). An existing
/// directory is left as it is.
fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(io("creating the store's directory failed"))
}

/// Opens (or creates) a store file readable and writable by the owner only (0600 on Unix); a
/// file an older walink created with wider permissions is narrowed.
fn open_private(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(options, 0o600);
    let file = options.open(path)?;
    narrow_permissions(path)?;
    Ok(file)
}

/// Narrows an existing file an older walink created with wider permissions to 0600 (Unix).
fn narrow_permissions(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if fs::metadata(path)?.permissions().mode() & 0o077 != 0 {
            fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Syncs a directory after a rename. Some platforms cannot open or sync a directory; the
/// rename is atomic there all the same.
fn sync_dir(dir: &Path) -> io::Result<()> {
    match File::open(dir).and_then(|d| d.sync_all()) {
        Ok(()) => Ok(()),
        Err(error)
            if matches!(
                error.kind(),
                ErrorKind::PermissionDenied | ErrorKind::InvalidInput | ErrorKind::Unsupported
            ) =>
        {
            Ok(())
        }
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests;
