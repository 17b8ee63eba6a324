//! A host's record store as an ordered map, for walink-sim's simulated hosts: applying a batch,
//! answering a load, and the records `Client::new` takes.

use std::collections::BTreeMap;

use walink_core::store::{Batch, Change, Record, RecordKey, Space};

/// Stored records by (space name, key); a space this build does not know is kept as it is.
pub type RecordMap = BTreeMap<(String, String), Vec<u8>>;

/// Applies every change of `batch` to `map`, in order.
pub fn apply(map: &mut RecordMap, batch: &Batch) {
    for change in &batch.changes {
        match change {
            Change::Put(record) => {
                map.insert(
                    (record.space.as_str().to_owned(), record.key.clone()),
                    record.value.clone(),
                );
            }
            Change::Delete { space, key } => {
                map.remove(&(space.as_str().to_owned(), key.clone()));
            }
            Change::DeleteAll => map.clear(),
        }
    }
}

/// The records that exist among `keys`, as `Client::handle_loaded` takes them.
pub fn load(map: &RecordMap, keys: &[RecordKey]) -> Vec<Record> {
    keys.iter()
        .filter_map(|key| {
            let value = map.get(&(key.space.as_str().to_owned(), key.key.clone()))?;
            Some(Record {
                space: key.space,
                key: key.key.clone(),
                value: value.clone(),
            })
        })
        .collect()
}

/// The records of the spaces this build knows that `keep` accepts, for `Client::new`.
pub fn records(map: &RecordMap, keep: impl Fn(Space) -> bool) -> Vec<Record> {
    map.iter()
        .filter_map(|((space, key), value)| {
            let space = Space::parse(space)?;
            keep(space).then(|| Record {
                space,
                key: key.clone(),
                value: value.clone(),
            })
        })
        .collect()
}
