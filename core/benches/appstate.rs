//! App-state speed: applying a snapshot of 10,000 mutations, a patch of 100 mutations on top of
//! a 10,000-entry collection, encoding a patch of 100, and folding the mutations into the view.
//! Run with `cargo bench -p walink-core --bench appstate`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use cpu_time::ThreadTime;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, criterion_group, criterion_main};
use walink_core::appstate::{
    Collection, CollectionState, KeyId, KeyRing, MuteUntil, SettingsView, SyncAction, SyncKey,
    encode_patch, encode_snapshot,
};
use walink_core::proto::wa;
use walink_core::signal::testing::BenchRng;

/// Measures the benchmark thread's CPU time rather than wall time: the machine the numbers are
/// taken on is shared, and wall time there counts other processes' work.
struct ThreadCpu {
    wall: WallTime,
}

impl Measurement for ThreadCpu {
    type Intermediate = ThreadTime;
    type Value = Duration;
    fn start(&self) -> ThreadTime {
        ThreadTime::now()
    }
    fn end(&self, start: ThreadTime) -> Duration {
        start.elapsed()
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        self.wall.formatter()
    }
}

type Bench = Criterion<ThreadCpu>;

fn criterion() -> Bench {
    Criterion::default().with_measurement(ThreadCpu { wall: WallTime })
}

fn mute(i: usize) -> SyncAction {
    SyncAction::Mute {
        chat: format!("{:011}@s.whatsapp.net", 15_550_000_000u64 + i as u64),
        until: MuteUntil::Until(1_800_000_000_000 + i as i64),
    }
}

fn appstate(c: &mut Bench) {
    let mut rng = BenchRng(7);
    let key = SyncKey::new(
        KeyId::new(b"\x00\x00\x00\x00\x00\x01").unwrap(),
        [9; 32],
        None,
        1,
    );
    let mut ring = KeyRing::new();
    ring.insert(key.clone());
    let collection = Collection::RegularHigh;

    let actions: Vec<_> = (0..10_000).map(mute).collect();
    let snapshot = encode_snapshot(collection, &key, 10, &actions, 1, &mut rng).unwrap();
    let mut group = c.benchmark_group("appstate");
    group.sample_size(10);
    group.bench_function("apply snapshot of 10000 mutations", |b| {
        b.iter(|| black_box(CollectionState::apply_snapshot(collection, &snapshot, &ring).unwrap()))
    });
    let base = CollectionState::apply_snapshot(collection, &snapshot, &ring).unwrap();
    group.bench_function("view from 10000 mutations", |b| {
        b.iter(|| {
            let mut view = SettingsView::new();
            black_box(view.apply_mutations(&base.mutations))
        })
    });
    group.finish();

    // 50 mutations that replace existing values and 50 new ones.
    let changes: Vec<_> = (0..50)
        .map(|i| SyncAction::Unmute {
            chat: format!("{:011}@s.whatsapp.net", 15_550_000_000u64 + i as u64 * 7),
        })
        .chain((10_000..10_050).map(mute))
        .collect();
    let out = encode_patch(&base.state, collection, &key, &changes, 2, &mut rng).unwrap();
    let mut patch = out.patch.clone();
    patch.version = Some(wa::SyncdVersion {
        version: Some(out.state.version()),
    });
    c.bench_function("appstate apply patch of 100 on 10000", |b| {
        b.iter(|| {
            black_box(
                base.state
                    .apply_patch(collection, &patch, None, &ring)
                    .unwrap(),
            )
        })
    });
    c.bench_function("appstate encode patch of 100", |b| {
        b.iter(|| {
            black_box(encode_patch(&base.state, collection, &key, &changes, 2, &mut rng).unwrap())
        })
    });
}

criterion_group! {
    name = benches;
    config = criterion();
    targets = appstate
}
criterion_main!(benches);
