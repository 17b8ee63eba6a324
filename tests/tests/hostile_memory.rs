//! A hostile server against a real client's memory (issue 13, "allocation before bounds"): a
//! small compressed frame that inflates into a flood of attributes, and app-state blobs of empty
//! records. Each input of `N` bytes may cost at most `64 N` plus a few MiB at its peak
//! (`limits::decode_budget` and the client's copies of a frame); the client refuses it with a
//! typed error, reconnects, and loses nothing.
//!
//! Memory is counted per thread (the tests of this file run in parallel), with a reallocation
//! counted as the new block beside the old one. Run with `--nocapture` to see the figures.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write as _;

use walink_core::appstate::{decode_external_mutations, decode_patch, decode_snapshot};
use walink_core::client::{Config, State};
use walink_core::noise::payload::{ClientProfile, WebVersion};
use walink_sim::noise_server::ChainSpec;
use walink_sim::sim::{Faults, World};

struct PerThread;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn grew(bytes: usize) {
    // `try_with`: a thread being torn down has no counters left.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + bytes;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn shrank(bytes: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(bytes)));
}

// SAFETY: every call is forwarded unchanged to the system allocator; only sizes are counted.
unsafe impl GlobalAlloc for PerThread {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: same layout, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrank(layout.size());
        // SAFETY: same pointer and layout, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grew(new_size);
        shrank(layout.size());
        // SAFETY: same pointer and layout, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: PerThread = PerThread;

/// Runs `f`; returns its result and the most bytes this thread held at once beyond what it held
/// when `f` started.
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(before));
    let out = f();
    (out, PEAK.with(Cell::get).saturating_sub(before))
}

/// The aim: an input of `len` bytes costs at most 64 bytes per byte plus a fixed few MiB.
fn aim(len: usize) -> usize {
    64 * len + (6 << 20)
}

const PHONE: &str = "15550001111";
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

fn connected(world: &World, client: usize) -> bool {
    world.client_state(client) == Some(&State::Connected)
}

/// A world with one account and one client paired to it by QR and connected.
fn paired(seed: u64) -> (World, usize) {
    let mut world = World::new(seed, T0, Faults::none());
    world.server.create_account(PHONE, "Alice").unwrap();
    let client = world.add_client(config());
    assert!(world.run_until(T0 + 10_000, |w| !w.clients[client].qrs().is_empty()));
    let qr = world.clients[client].qrs().last().unwrap().clone();
    let now = world.now;
    world.server.phone_scan_qr(now, PHONE, &qr).unwrap();
    assert!(world.run_until(T0 + 30_000, |w| connected(w, client)));
    (world, client)
}

/// A node whose `children` children each hold 32,767 attributes of two one-byte tokens: 64 KiB
/// of wire per child, and an `Attr` of 80-odd bytes per two of them once decoded.
fn attribute_flood(children: u16) -> Vec<u8> {
    let mut node = vec![0xF8, 0x02, 0x19, 0xF9];
    node.extend_from_slice(&children.to_be_bytes());
    for _ in 0..children {
        node.extend_from_slice(&[0xF9, 0xFF, 0xFF, 0x19]);
        for _ in 0..32_767 {
            node.extend_from_slice(&[0x0A, 0x0B]);
        }
    }
    node
}

/// A compressed frame body (flags byte 0x02, then zlib) of `node`.
fn compressed(node: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(vec![0x02], flate2::Compression::best());
    encoder.write_all(node).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn a_small_frame_that_inflates_into_attributes_costs_at_most_its_budget() {
    let (mut world, client) = paired(31);
    let device = world.clients[client].client.jid().unwrap().device;
    let conn = world.server.device_conn(PHONE, device).unwrap();
    let records: Vec<(String, String)> = world.clients[client].store.keys().cloned().collect();
    // 64 children: 4 MiB inflated, about 2 million attributes.
    let body = compressed(&attribute_flood(64));
    world.server.send_raw_body(conn, &body).unwrap();
    let now = world.now;
    let (_, peak) = peak_of(|| {
        world.run_until(now + 1_000, |w| !connected(w, client));
    });
    println!(
        "compressed frame of {} bytes (4 MiB inflated): peak {peak} bytes, aim {}",
        body.len(),
        aim(body.len())
    );
    assert!(
        peak <= aim(body.len()),
        "a frame of {} bytes cost {peak} bytes",
        body.len()
    );
    // Refused, the connection closed; the client logs in again and lost nothing.
    assert!(!connected(&world, client), "the flood was accepted");
    assert!(world.run_until(world.now + 60_000, |w| connected(w, client)));
    let after: Vec<(String, String)> = world.clients[client].store.keys().cloned().collect();
    for key in &records {
        assert!(after.contains(key), "{key:?} was lost");
    }
}

/// Whether a decoder accepted a blob.
type Decoder = fn(&[u8]) -> bool;

/// A `repeated` message field (tag byte `tag`) of `count` empty elements: two bytes each.
fn empty_elements(tag: u8, count: usize) -> Vec<u8> {
    [tag, 0x00].repeat(count)
}

#[test]
fn app_state_blobs_are_counted_before_they_are_decoded() {
    // 1 MiB of empty records (`SyncdSnapshot.records`, field 2) and of empty mutations
    // (`SyncdMutations.mutations`, field 1; `SyncdPatch.mutations`, field 2): half a million
    // elements each, which prost would decode into structs of 50 to 100 bytes.
    let count = 512 * 1024;
    let blobs: [(&str, Vec<u8>, Decoder); 3] = [
        ("snapshot", empty_elements(0x12, count), |b| {
            decode_snapshot(b).is_ok()
        }),
        ("external mutations", empty_elements(0x0A, count), |b| {
            decode_external_mutations(b).is_ok()
        }),
        ("patch", empty_elements(0x12, count), |b| {
            decode_patch(b).is_ok()
        }),
    ];
    for (what, blob, decode) in blobs {
        let (decoded, peak) = peak_of(|| decode(&blob));
        println!(
            "{what} blob of {} bytes: peak {peak} bytes, aim {}",
            blob.len(),
            aim(blob.len())
        );
        assert!(!decoded, "{what}: half a million elements decoded");
        assert!(
            peak <= aim(blob.len()),
            "{what}: a blob of {} bytes cost {peak} bytes",
            blob.len()
        );
    }
}
