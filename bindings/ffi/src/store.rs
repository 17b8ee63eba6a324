//! walink's file store (`walink-file-store`) for Kotlin, Python and Swift: one implementation of
//! the checksummed log with torn-tail repair for every host, in the npm package's format. Each
//! host's `FileStore` wraps this object in its own asynchronous `Store` interface and runs its
//! calls off the event loop (they block on the disk).

use std::sync::Arc;

use walink_file_store::{self as file, Options};

use crate::WalinkError;
use crate::client::{StoreChange, StoreKey, StoreRecord};
use crate::error::Guarded;

/// A durable store in a directory (0700; its files 0600): a write-ahead log of checksummed
/// batches, synced before `apply_batch` returns, and a snapshot replaced by write, sync and
/// rename. Opening cuts off a torn last write. The records are also held in memory, so loads
/// never touch the disk. One store per directory at a time; calls are serialized.
#[derive(Debug, uniffi::Object)]
pub struct NativeFileStore {
    inner: Guarded<file::FileStore>,
}

fn change_from_ffi(change: StoreChange) -> file::Change {
    match change {
        StoreChange::Put { space, key, value } => file::Change::Put { space, key, value },
        StoreChange::Delete { space, key } => file::Change::Delete { space, key },
        StoreChange::DeleteAll => file::Change::DeleteAll,
    }
}

fn record_to_ffi(record: file::Record) -> StoreRecord {
    StoreRecord {
        space: record.space,
        key: record.key,
        value: record.value,
    }
}

fn records(
    result: Result<Vec<file::Record>, file::StoreError>,
) -> Result<Vec<StoreRecord>, WalinkError> {
    Ok(result?.into_iter().map(record_to_ffi).collect())
}

#[uniffi::export]
impl NativeFileStore {
    /// Opens (creating it if needed) the store in `directory`. `sync`: sync each batch to the
    /// disk before returning (durable; false survives a process crash, not a power loss).
    /// `compact_bytes`: the wal size from which a batch also writes a new snapshot (1 MiB is a
    /// good default). Fails with `Store` (`corrupt`, `io`).
    #[uniffi::constructor]
    pub fn open(
        directory: String,
        sync: bool,
        compact_bytes: u64,
    ) -> Result<Arc<NativeFileStore>, WalinkError> {
        crate::error::guard(|| {
            let store = file::FileStore::open(
                directory,
                Options {
                    sync,
                    compact_bytes,
                },
            )?;
            Ok(Arc::new(NativeFileStore {
                inner: Guarded::new(store),
            }))
        })
    }

    /// Applies the changes in order, atomically and durably. On an error the store holds none
    /// of them (`invalid_change`, `io`, `too_large`, `closed`), or, after a failed compaction
    /// (`io`), all of them.
    pub fn apply_batch(&self, changes: Vec<StoreChange>) -> Result<(), WalinkError> {
        let changes: Vec<file::Change> = changes.into_iter().map(change_from_ffi).collect();
        self.inner.with(|store| Ok(store.apply_batch(&changes)?))
    }

    /// Every record.
    pub fn load_all(&self) -> Result<Vec<StoreRecord>, WalinkError> {
        self.inner.with(|store| records(store.load_all()))
    }

    /// Every record of the given spaces (`start_spaces()` when a client is built).
    pub fn load_spaces(&self, spaces: Vec<String>) -> Result<Vec<StoreRecord>, WalinkError> {
        let spaces: Vec<&str> = spaces.iter().map(String::as_str).collect();
        self.inner.with(|store| records(store.load_spaces(&spaces)))
    }

    /// The records under `keys` that exist (the answer to a `Load` output).
    pub fn load(&self, keys: Vec<StoreKey>) -> Result<Vec<StoreRecord>, WalinkError> {
        let keys: Vec<(&str, &str)> = keys
            .iter()
            .map(|k| (k.space.as_str(), k.key.as_str()))
            .collect();
        self.inner.with(|store| records(store.load(&keys)))
    }

    /// Closes the store's files; later calls fail with `Store` code `closed`. (Not `close`:
    /// uniffi's Kotlin objects already have a `close()` that frees the object.)
    pub fn close_store(&self) -> Result<(), WalinkError> {
        self.inner.with(|store| {
            store.close();
            Ok(())
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_store_round_trips_through_the_ffi_types() {
        let dir = std::env::temp_dir().join(format!("walink-ffi-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.to_string_lossy().into_owned();
        let store = NativeFileStore::open(path.clone(), true, 1 << 20).unwrap();
        store
            .apply_batch(vec![
                StoreChange::Put {
                    space: "device".into(),
                    key: "device".into(),
                    value: vec![1],
                },
                StoreChange::Put {
                    space: "session".into(),
                    key: "a".into(),
                    value: vec![2],
                },
            ])
            .unwrap();
        let bad = store.apply_batch(vec![StoreChange::Delete {
            space: String::new(),
            key: "k".into(),
        }]);
        assert!(
            matches!(&bad, Err(WalinkError::Store { code, .. }) if code == "invalid_change"),
            "{bad:?}"
        );
        assert_eq!(store.load_spaces(vec!["device".into()]).unwrap().len(), 1);
        let found = store
            .load(vec![
                StoreKey {
                    space: "session".into(),
                    key: "a".into(),
                },
                StoreKey {
                    space: "session".into(),
                    key: "b".into(),
                },
            ])
            .unwrap();
        assert_eq!(found.len(), 1);
        store.close_store().unwrap();
        assert!(
            matches!(store.load_all(), Err(WalinkError::Store { code, .. }) if code == "closed")
        );
        assert_eq!(
            NativeFileStore::open(path, true, 1 << 20)
                .unwrap()
                .load_all()
                .unwrap()
                .len(),
            2
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
