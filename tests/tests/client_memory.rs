//! How much heap a client holds, measured with a counting allocator: the numbers behind the
//! storage decision in docs/client.md (records loaded on demand, not all at `Client::new`).
//!
//! Run with `--nocapture` to see the figures.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use walink_core::client::{Client, Config, State};
use walink_core::noise::payload::{ClientProfile, WebVersion};
use walink_core::signal::{
    IdentityKeyPair, PreKey, PreKeyBundle, PreKeyId, SessionRecord, SignedPreKey, SignedPreKeyId,
};
use walink_core::store::Space;
use walink_sim::noise_server::ChainSpec;
use walink_sim::sim::{Faults, World};

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same layout, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same pointer and layout, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: same pointer and layout, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

const T0: u64 = 1_780_000_000_000;

fn config() -> Config {
    Config {
        trust_root: ChainSpec::default().trust_root(),
        ..Config::new(ClientProfile::new(
            WebVersion::new(2, 3000, 1_023_456_789),
            "walink",
        ))
    }
}

/// Heap owned by `client`: what dropping it frees.
fn owned_by(client: Client) -> isize {
    let before = live();
    drop(client);
    before - live()
}

/// Heap held by a session record with one exchanged message, serialized and decoded.
fn session_sizes() -> (usize, isize) {
    struct Rng(u64);
    impl rand_core::TryRng for Rng {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok(self.try_next_u64()? as u32)
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            Ok(self.0 >> 11)
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            for byte in dst {
                *byte = self.try_next_u64()? as u8;
            }
            Ok(())
        }
    }
    impl rand_core::TryCryptoRng for Rng {}
    let mut rng = Rng(7);
    let alice = IdentityKeyPair::generate(&mut rng);
    let bob = IdentityKeyPair::generate(&mut rng);
    let signed = SignedPreKey::generate(SignedPreKeyId(1), &bob, &mut rng);
    let one_time = PreKey::generate(PreKeyId(2), &mut rng);
    let bundle = PreKeyBundle {
        registration_id: 9,
        identity_key: bob.identity_key(),
        signed_pre_key_id: signed.id,
        signed_pre_key: signed.key_pair.public,
        signed_pre_key_signature: signed.signature,
        pre_key: Some((one_time.id, one_time.key_pair.public)),
    };
    let mut record = SessionRecord::new();
    record.process_bundle(&bundle, &alice, 5, &mut rng).unwrap();
    record.encrypt(b"hello").unwrap();
    let bytes = record.serialize();
    let before = live();
    let decoded = SessionRecord::deserialize(&bytes).unwrap();
    let held = live() - before;
    drop(decoded);
    (bytes.len(), held)
}

#[test]
fn heap_per_idle_client() {
    let mut world = World::new(41, T0, Faults::none());
    world.server.create_account("15551234567", "Alice").unwrap();
    let client = world.add_client(config());
    assert!(world.run_until(T0 + 10_000, |w| !w.clients[client].qrs().is_empty()));
    let unpaired_spare = Client::new(config(), Vec::new()).unwrap();
    let qr = world.clients[client].qrs().last().unwrap().clone();
    let now = world.now;
    world.server.phone_scan_qr(now, "15551234567", &qr).unwrap();
    assert!(world.run_until(T0 + 30_000, |w| w.client_state(client)
        == Some(&State::Connected)));
    // Ten idle minutes: keepalives and nothing else.
    world.run_for(600_000);
    assert_eq!(world.client_state(client), Some(&State::Connected));

    let records = world.clients[client].records();
    let mut by_space = std::collections::BTreeMap::<&str, (usize, usize)>::new();
    for record in &records {
        let entry = by_space.entry(record.space.as_str()).or_default();
        entry.0 += 1;
        entry.1 += record.key.len() + record.value.len();
    }
    let idle = std::mem::replace(&mut world.clients[client].client, unpaired_spare);
    let idle_heap = owned_by(idle);
    let idle_total = idle_heap + std::mem::size_of::<Client>() as isize;

    // The same device restored from the records of the spaces loaded at start.
    let startup: Vec<_> = records
        .iter()
        .filter(|r| r.space.loaded_at_start())
        .cloned()
        .collect();
    let restored = Client::new(config(), startup).unwrap();
    let restored_heap = owned_by(restored);

    let (session_bytes, session_heap) = session_sizes();
    let prekeys = by_space
        .get(Space::PreKey.as_str())
        .copied()
        .unwrap_or_default();
    eprintln!("records of a paired device, by space (count, key+value bytes): {by_space:?}");
    eprintln!(
        "size_of::<Client>() = {} bytes",
        std::mem::size_of::<Client>()
    );
    eprintln!("idle connected client: {idle_heap} heap bytes, {idle_total} with the struct");
    eprintln!("restored client before connecting: {restored_heap} heap bytes");
    eprintln!(
        "one session record: {session_bytes} bytes stored, {session_heap} heap bytes decoded"
    );
    eprintln!(
        "loading everything at new would add {} bytes of one-time prekeys alone, plus about \
         {session_heap} bytes per session",
        prekeys.1
    );
    // The budget: under 64 KiB per idle connected client.
    assert!(idle_total < 64 * 1024, "{idle_total}");
    // Keeping the 812 prekeys in memory alone would break it.
    assert!(prekeys.0 >= 812);
}

/// Heap of a client linked to Alice's account after `peers` other accounts each sent it one
/// message, with at most `cache` messaging records in memory.
fn heap_after_peers(peers: usize, cache: usize) -> isize {
    let mut world = World::new(43, T0, Faults::none());
    world.server.create_account("15551234567", "Alice").unwrap();
    let config = Config {
        record_cache_limit: cache,
        ..config()
    };
    let client = world.add_client(config.clone());
    assert!(world.run_until(T0 + 10_000, |w| !w.clients[client].qrs().is_empty()));
    let qr = world.clients[client].qrs().last().unwrap().clone();
    let now = world.now;
    world.server.phone_scan_qr(now, "15551234567", &qr).unwrap();
    assert!(world.run_until(T0 + 30_000, |w| w.client_state(client)
        == Some(&State::Connected)));
    let received = |w: &World| {
        w.clients[client]
            .events
            .iter()
            .filter(|e| matches!(e, walink_core::client::Event::Message(_)))
            .count()
    };
    for i in 0..peers {
        let peer = format!("1555900{i:04}");
        world.server.create_account(&peer, "Peer").unwrap();
        let now = world.now;
        world
            .server
            .phone_send_text(now, &peer, "15551234567", "hello")
            .unwrap();
        world.flush();
        assert!(
            world.run_until(world.now + 5_000, |w| received(w) > i),
            "peer {i}"
        );
    }
    let spare = Client::new(config, Vec::new()).unwrap();
    let client = std::mem::replace(&mut world.clients[client].client, spare);
    owned_by(client)
}

/// The record cache bounds the heap a client holds for the peers it heard from: with a cache
/// of 4 records, 32 peers cost about what 8 do; without a bound (the default cache holds all
/// 96 records of 32 peers: a session, an identity and a received-id list each) the heap grows
/// with every peer. The difference gives the heap per cached record.
#[test]
fn the_record_cache_bounds_the_heap_per_peer() {
    const FEW: usize = 8;
    const MANY: usize = 32;
    const TINY: usize = 4;
    let bounded_few = heap_after_peers(FEW, TINY);
    let bounded_many = heap_after_peers(MANY, TINY);
    let unbounded_many = heap_after_peers(MANY, walink_core::limits::MESSAGING_RECORD_CACHE);
    let records_dropped = (MANY * 3 - TINY) as isize;
    let per_record = (unbounded_many - bounded_many) / records_dropped;
    eprintln!(
        "client heap after {FEW} peers, cache {TINY}: {bounded_few} bytes; after {MANY} \
         peers: {bounded_many} bytes (cache {TINY}), {unbounded_many} bytes (default cache); \
         about {per_record} heap bytes per cached record (session + identity + received ids, \
         averaged)"
    );
    // Growth from 8 to 32 peers with the tiny cache: the LID map and loaded-key bookkeeping
    // only, far below what the records themselves cost.
    let bounded_growth = bounded_many - bounded_few;
    assert!(
        bounded_growth < (unbounded_many - bounded_many) / 4,
        "{bounded_growth} vs {}",
        unbounded_many - bounded_many
    );
    assert!(per_record > 100, "{per_record}");
}
