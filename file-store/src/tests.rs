//! The store conformance cases (docs/hosts.md) for the Rust store, and what only a file store
//! can suffer: torn and damaged files, failed writes and truncations, a crash between a
//! snapshot's rename and the wal's truncation, and the files' permissions. The hosts run the
//! same suites against this store through walink-ffi (Kotlin, Python), with a killed process
//! and directories written by the npm store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

/// A fresh directory under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("walink-file-store-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        TempDir(dir)
    }

    fn path(&self, child: &str) -> PathBuf {
        self.0.join(child)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn put(space: &str, key: &str, value: &[u8]) -> Change {
    Change::Put {
        space: space.into(),
        key: key.into(),
        value: value.to_vec(),
    }
}

fn del(space: &str, key: &str) -> Change {
    Change::Delete {
        space: space.into(),
        key: key.into(),
    }
}

fn dump(store: &mut FileStore) -> Vec<String> {
    let mut lines: Vec<String> = store
        .load_all()
        .unwrap()
        .into_iter()
        .map(|r| {
            let hex: String = r.value.iter().map(|b| format!("{b:02x}")).collect();
            format!("{}/{}={hex}", r.space, r.key)
        })
        .collect();
    lines.sort();
    lines
}

fn small() -> Options {
    Options {
        sync: true,
        compact_bytes: 64,
    }
}

#[test]
fn conformance_at_both_compaction_sizes() {
    for (name, options) in [("big", Options::default()), ("small", small())] {
        let dir = TempDir::new(&format!("conformance-{name}"));
        let mut store = FileStore::open(&dir.0, options).unwrap();
        assert!(dump(&mut store).is_empty());
        store
            .apply_batch(&[
                put("session", "a@s.whatsapp.net", &[1, 2]),
                put("identity", "a@s.whatsapp.net", &[3]),
            ])
            .unwrap();
        store
            .apply_batch(&[
                put("session", "a@s.whatsapp.net", &[0, 255, 0]),
                put("prekey", "7", &[]),
            ])
            .unwrap();
        store
            .apply_batch(&[
                del("identity", "a@s.whatsapp.net"),
                del("identity", "never-there"),
            ])
            .unwrap();
        store.apply_batch(&[put("device", "ключ ✓", &[9])]).unwrap();
        let want = [
            "device/ключ ✓=09",
            "prekey/7=",
            "session/a@s.whatsapp.net=00ff00",
        ];
        assert_eq!(dump(&mut store), want);
        // load and load_spaces give the records that exist.
        let found = store
            .load(&[("device", "ключ ✓"), ("device", "zz"), ("prekey", "7")])
            .unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(store.load_spaces(&["prekey", "nothing"]).unwrap().len(), 1);
        // Changes inside one batch apply in order.
        store
            .apply_batch(&[
                put("s", "x", &[1]),
                del("s", "x"),
                del("s", "y"),
                put("s", "y", &[2]),
                put("s", "y", &[3]),
            ])
            .unwrap();
        assert!(dump(&mut store).contains(&"s/y=03".to_owned()));
        // A malformed change applies nothing of its batch.
        let before = dump(&mut store);
        for bad in [put("", "k", &[]), put("a\0b", "k", &[]), del("", "k")] {
            let error = store
                .apply_batch(&[put("s", "new", &[1]), del("s", "y"), bad])
                .unwrap_err();
            assert_eq!(error.code(), "invalid_change");
        }
        assert_eq!(dump(&mut store), before);
        // DeleteAll, then later changes of its batch.
        store
            .apply_batch(&[
                put("x", "1", &[1]),
                Change::DeleteAll,
                put("device", "device", &[4]),
            ])
            .unwrap();
        assert_eq!(dump(&mut store), ["device/device=04"]);
        // A large batch.
        let many: Vec<Change> = (0..2000)
            .map(|i| put("k", &format!("k{i}"), &[i as u8; 50]))
            .collect();
        store.apply_batch(&many).unwrap();
        store.close();
        assert_eq!(store.load_all().unwrap_err().code(), "closed");
        assert_eq!(store.apply_batch(&[]).unwrap_err().code(), "closed");
        let again = FileStore::open(&dir.0, options).unwrap();
        assert_eq!(again.len(), 2001);
    }
}

#[test]
fn reopening_holds_exactly_the_applied_batches() {
    for (name, options) in [("big", Options::default()), ("small", small())] {
        let dir = TempDir::new(&format!("reopen-{name}"));
        let mut expected = BTreeMap::new();
        let mut store = FileStore::open(&dir.0, options).unwrap();
        for round in 0..5u8 {
            for i in 0..20u8 {
                let key = format!("k{}", (round as usize * 7 + i as usize) % 23);
                if i % 5 == 4 {
                    store
                        .apply_batch(&[del("s", &key), put("round", "last", &[round, i])])
                        .unwrap();
                    expected.remove(&key);
                } else {
                    store
                        .apply_batch(&[
                            put("s", &key, &[round, i]),
                            put("round", "last", &[round, i]),
                        ])
                        .unwrap();
                    expected.insert(key, format!("{round:02x}{i:02x}"));
                }
            }
            store.close();
            store = FileStore::open(&dir.0, options).unwrap();
            let mut want: Vec<String> =
                expected.iter().map(|(k, v)| format!("s/{k}={v}")).collect();
            want.push(format!("round/last={round:02x}13"));
            want.sort();
            assert_eq!(dump(&mut store), want);
        }
    }
}

/// Three batches through a store in `dir`; returns the wal's bytes.
fn three_batches(dir: &Path) -> Vec<u8> {
    let mut store = FileStore::open(dir, Options::default()).unwrap();
    store.apply_batch(&[put("s", "a", &[1])]).unwrap();
    store.apply_batch(&[put("s", "b", &[2])]).unwrap();
    store
        .apply_batch(&[put("s", "c", &[3; 100]), del("s", "a")])
        .unwrap();
    store.close();
    fs::read(dir.join(WAL)).unwrap()
}

#[test]
fn every_torn_tail_is_cut_off() {
    let dir = TempDir::new("torn");
    let wal = three_batches(&dir.0);
    let last = 8 + 4 + (1 + 4 + 1 + 4 + 1 + 4 + 100) + (1 + 4 + 1 + 4 + 1);
    let second_end = wal.len() - last;
    for cut in second_end..wal.len() {
        fs::write(dir.path(WAL), &wal[..cut]).unwrap();
        let mut store = FileStore::open(&dir.0, Options::default()).unwrap();
        assert_eq!(dump(&mut store), ["s/a=01", "s/b=02"], "cut at {cut}");
        assert_eq!(
            fs::metadata(dir.path(WAL)).unwrap().len(),
            second_end as u64
        );
        // The store goes on after the cut.
        store.apply_batch(&[put("s", "d", &[4])]).unwrap();
        store.close();
    }
    // A zero-filled last frame is a torn write too.
    fs::write(dir.path(WAL), [&wal[..second_end], &[0; 50][..]].concat()).unwrap();
    let mut store = FileStore::open(&dir.0, Options::default()).unwrap();
    assert_eq!(dump(&mut store), ["s/a=01", "s/b=02"]);
}

#[test]
fn damage_before_the_last_frame_or_in_a_snapshot_is_corruption() {
    let dir = TempDir::new("corrupt");
    let mut wal = three_batches(&dir.0);
    wal[20] ^= 0xff;
    fs::write(dir.path(WAL), &wal).unwrap();
    let error = FileStore::open(&dir.0, Options::default()).unwrap_err();
    assert_eq!(error.code(), "corrupt");

    let dir = TempDir::new("corrupt-snapshot");
    let mut store = FileStore::open(&dir.0, small()).unwrap();
    store.apply_batch(&[put("s", "a", &[1; 100])]).unwrap();
    store.close();
    let mut snapshot = fs::read(dir.path(SNAPSHOT)).unwrap();
    let end = snapshot.len() - 1;
    snapshot[end] ^= 0x01;
    fs::write(dir.path(SNAPSHOT), &snapshot).unwrap();
    assert_eq!(
        FileStore::open(&dir.0, small()).unwrap_err().code(),
        "corrupt"
    );
    fs::write(dir.path(SNAPSHOT), b"not a snapshot").unwrap();
    assert_eq!(
        FileStore::open(&dir.0, small()).unwrap_err().code(),
        "corrupt"
    );
}

#[test]
fn a_leftover_snapshot_tmp_is_discarded() {
    let dir = TempDir::new("tmp");
    three_batches(&dir.0);
    fs::write(dir.path(SNAPSHOT_TMP), b"half a snapshot").unwrap();
    let store = FileStore::open(&dir.0, Options::default()).unwrap();
    assert_eq!(store.len(), 2);
    assert!(!dir.path(SNAPSHOT_TMP).exists());
}

#[test]
fn a_crash_between_the_rename_and_the_wal_truncation_replays_to_the_same_records() {
    let dir = TempDir::new("rename");
    let wal = three_batches(&dir.0);
    let mut store = FileStore::open(&dir.0, Options::default()).unwrap();
    let records = dump(&mut store);
    // Compact by hand up to the rename, then "crash" with the old wal still in place.
    store.write_snapshot().unwrap();
    store.close();
    fs::write(dir.path(WAL), &wal).unwrap();
    let mut store = FileStore::open(&dir.0, Options::default()).unwrap();
    assert_eq!(dump(&mut store), records);
}

#[test]
fn a_write_that_fails_part_way_applies_none_of_its_batch_and_the_store_goes_on() {
    let dir = TempDir::new("failed-write");
    let mut store = FileStore::open(&dir.0, Options::default()).unwrap();
    store.apply_batch(&[put("s", "a", &[1])]).unwrap();
    store.faults.write_limit = Some(2000);
    let error = store
        .apply_batch(&[put("s", "b", &[2; 4096]), del("s", "a")])
        .unwrap_err();
    assert_eq!(error.code(), "io");
    assert_eq!(dump(&mut store), ["s/a=01"]);
    store.apply_batch(&[put("s", "c", &[3])]).unwrap();
    store.close();
    let mut again = FileStore::open(&dir.0, Options::default()).unwrap();
    assert_eq!(dump(&mut again), ["s/a=01", "s/c=03"]);
}

#[test]
fn a_failed_truncation_after_a_failed_write_is_repaired_before_the_next_batch() {
    let dir = TempDir::new("failed-truncate");
    let mut store = FileStore::open(&dir.0, Options::default()).unwrap();
    store.apply_batch(&[put("s", "a", &[1])]).unwrap();
    store.faults.write_limit = Some(30);
    store.faults.fail_truncate = true;
    let error = store
        .apply_batch(&[put("s", "b", &[2; 100]), del("s", "a")])
        .unwrap_err();
    assert_eq!(error.code(), "io");
    // The half frame is still in the wal: the next batch repairs (cuts it) first.
    assert!(store.needs_repair);
    store.apply_batch(&[put("s", "c", &[3])]).unwrap();
    assert_eq!(dump(&mut store), ["s/a=01", "s/c=03"]);
    store.close();
    let mut again = FileStore::open(&dir.0, Options::default()).unwrap();
    assert_eq!(dump(&mut again), ["s/a=01", "s/c=03"]);
}

#[test]
fn a_failed_compaction_keeps_the_batch_and_heals() {
    let dir = TempDir::new("failed-compaction");
    let mut store = FileStore::open(&dir.0, small()).unwrap();
    // A directory where the temporary snapshot goes makes the compaction fail.
    fs::create_dir(dir.path(SNAPSHOT_TMP)).unwrap();
    let error = store.apply_batch(&[put("s", "a", &[1; 100])]).unwrap_err();
    assert_eq!(error.code(), "io");
    fs::remove_dir(dir.path(SNAPSHOT_TMP)).unwrap();
    // The batch was synced before the compaction: it is there, and the store goes on.
    store.apply_batch(&[put("s", "b", &[2])]).unwrap();
    assert_eq!(
        dump(&mut store),
        ["s/a=".to_owned() + &"01".repeat(100), "s/b=02".into()]
    );
}

#[cfg(unix)]
#[test]
fn files_are_the_owners_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("permissions");
    let nested = dir.path("a/b");
    let mut store = FileStore::open(&nested, small()).unwrap();
    store
        .apply_batch(&[put("device", "device", &[7; 100])])
        .unwrap();
    let mode = |path: PathBuf| fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(nested.clone()), 0o700);
    assert_eq!(mode(dir.path("a")), 0o700);
    assert_eq!(mode(nested.join(WAL)), 0o600);
    assert_eq!(mode(nested.join(SNAPSHOT)), 0o600);
    store.close();
    // Files an older version left readable by others are narrowed when opened.
    fs::set_permissions(nested.join(WAL), fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(nested.join(SNAPSHOT), fs::Permissions::from_mode(0o644)).unwrap();
    FileStore::open(&nested, small()).unwrap();
    assert_eq!(mode(nested.join(WAL)), 0o600);
    assert_eq!(mode(nested.join(SNAPSHOT)), 0o600);
}
