//! App-state exports for the npm benchmarks (cargo feature `bench`; `npm/bench/appstate.mjs`).
//!
//! [`bench_app_state_setup`] builds, in wasm memory, the fixture of the native bench
//! (`core/benches/appstate.rs`): a `regular_high` snapshot of `records` mute mutations at version
//! 10, and a patch on top of it whose first half unmutes existing chats and second half mutes new
//! ones. The apply functions then run the core's `apply_snapshot` / `apply_patch` on the decoded
//! protobuf values, as the native bench does. The same snapshot and patch are exported as
//! protobuf bytes, with the key, so that another implementation (Baileys) can apply exactly the
//! same data, and the resulting LTHashes are exported so the benchmark can check that both sides
//! reached the same state.

use std::cell::RefCell;

use prost::Message;
use walink_core::appstate::{
    Collection, CollectionState, KeyId, KeyRing, MuteUntil, SyncAction, SyncKey, encode_patch,
    encode_snapshot,
};
use walink_core::proto::wa;
use walink_core::signal::testing::BenchRng;
use wasm_bindgen::prelude::*;

/// The collection the fixture lives in (mutes belong to `regular_high`).
const COLLECTION: Collection = Collection::RegularHigh;
/// The snapshot's version.
const SNAPSHOT_VERSION: u64 = 10;
/// The fixture's key id and key data (the native bench's).
const KEY_ID: &[u8] = b"\x00\x00\x00\x00\x00\x01";
const KEY_DATA: [u8; 32] = [9; 32];
/// A mute end far in the future (2027), plus the chat's number.
const MUTE_END_MS: i64 = 1_800_000_000_000;
/// The first chat's phone number.
const FIRST_CHAT: u64 = 15_550_000_000;

/// The fixture: the key ring, the snapshot, the state it gives, and the patch on top.
struct Fixture {
    ring: KeyRing,
    snapshot: wa::SyncdSnapshot,
    base: CollectionState,
    patch: wa::SyncdPatch,
    patched: CollectionState,
}

thread_local! {
    static FIXTURE: RefCell<Option<Fixture>> = const { RefCell::new(None) };
}

fn chat(i: u64) -> String {
    format!("{:011}@s.whatsapp.net", FIRST_CHAT + i)
}

fn mute(i: u64) -> SyncAction {
    SyncAction::Mute {
        chat: chat(i),
        until: MuteUntil::Until(MUTE_END_MS + i as i64),
    }
}

fn bench_error(what: &str, err: impl std::fmt::Display) -> JsError {
    JsError::new(&format!("{what}: {err}"))
}

/// Builds the fixture: a snapshot of `records` mutes, and a patch of `patch` mutations (half
/// replacing existing values, half new; `patch` at most `2 * records`). Returns the number of
/// mutations the patch holds.
#[wasm_bindgen(js_name = benchAppStateSetup)]
pub fn bench_app_state_setup(records: u32, patch: u32) -> Result<u32, JsError> {
    let records = u64::from(records);
    let replacing = u64::from(patch / 2);
    let fresh = u64::from(patch) - replacing;
    if replacing > records {
        return Err(JsError::new(
            "the patch replaces more values than the snapshot holds",
        ));
    }
    let mut rng = BenchRng(7);
    let key_id = KeyId::new(KEY_ID).map_err(|err| bench_error("key id", err))?;
    let key = SyncKey::new(key_id, KEY_DATA, None, 1);
    let mut ring = KeyRing::new();
    ring.insert(key.clone());

    let actions: Vec<_> = (0..records).map(mute).collect();
    let snapshot = encode_snapshot(COLLECTION, &key, SNAPSHOT_VERSION, &actions, 1, &mut rng)
        .map_err(|err| bench_error("snapshot", err))?;
    let base = CollectionState::apply_snapshot(COLLECTION, &snapshot, &ring)
        .map_err(|err| bench_error("apply snapshot", err))?
        .state;

    // Unmute every 7th chat (wrapping inside the snapshot), then mute chats it lacks.
    let changes: Vec<_> = (0..replacing)
        .map(|i| SyncAction::Unmute {
            chat: chat((i * 7) % records.max(1)),
        })
        .chain((records..records + fresh).map(mute))
        .collect();
    let out = encode_patch(&base, COLLECTION, &key, &changes, 2, &mut rng)
        .map_err(|err| bench_error("encode patch", err))?;
    let mut patch = out.patch;
    patch.version = Some(wa::SyncdVersion {
        version: Some(out.state.version()),
    });
    let mutations = u32::try_from(patch.mutations.len()).unwrap_or(u32::MAX);
    FIXTURE.set(Some(Fixture {
        ring,
        snapshot,
        base,
        patch,
        patched: out.state,
    }));
    Ok(mutations)
}

fn with_fixture<T>(f: impl FnOnce(&Fixture) -> Result<T, JsError>) -> Result<T, JsError> {
    FIXTURE.with_borrow(|fixture| match fixture {
        Some(fixture) => f(fixture),
        None => Err(JsError::new("call benchAppStateSetup first")),
    })
}

/// Applies the snapshot `n` times (each from scratch, with every MAC checked and every value
/// decrypted). Returns the number of mutations the last application decoded.
#[wasm_bindgen(js_name = benchAppStateApplySnapshot)]
pub fn bench_app_state_apply_snapshot(n: u32) -> Result<u32, JsError> {
    with_fixture(|fixture| {
        let mut decoded = 0;
        for _ in 0..n {
            let applied =
                CollectionState::apply_snapshot(COLLECTION, &fixture.snapshot, &fixture.ring)
                    .map_err(|err| bench_error("apply snapshot", err))?;
            decoded = applied.mutations.len();
        }
        Ok(u32::try_from(decoded).unwrap_or(u32::MAX))
    })
}

/// Applies the patch on the snapshot's state `n` times. Returns the number of mutations the last
/// application decoded.
#[wasm_bindgen(js_name = benchAppStateApplyPatch)]
pub fn bench_app_state_apply_patch(n: u32) -> Result<u32, JsError> {
    with_fixture(|fixture| {
        let mut decoded = 0;
        for _ in 0..n {
            let applied = fixture
                .base
                .apply_patch(COLLECTION, &fixture.patch, None, &fixture.ring)
                .map_err(|err| bench_error("apply patch", err))?;
            decoded = applied.mutations.len();
        }
        Ok(u32::try_from(decoded).unwrap_or(u32::MAX))
    })
}

/// The snapshot as `SyncdSnapshot` protobuf bytes.
#[wasm_bindgen(js_name = benchAppStateSnapshotBytes)]
pub fn bench_app_state_snapshot_bytes() -> Result<Vec<u8>, JsError> {
    with_fixture(|fixture| Ok(fixture.snapshot.encode_to_vec()))
}

/// The patch as `SyncdPatch` protobuf bytes (with its version set).
#[wasm_bindgen(js_name = benchAppStatePatchBytes)]
pub fn bench_app_state_patch_bytes() -> Result<Vec<u8>, JsError> {
    with_fixture(|fixture| Ok(fixture.patch.encode_to_vec()))
}

/// The fixture's key id.
#[wasm_bindgen(js_name = benchAppStateKeyId)]
pub fn bench_app_state_key_id() -> Vec<u8> {
    KEY_ID.to_vec()
}

/// The fixture's key data (a benchmark constant, not a secret).
#[wasm_bindgen(js_name = benchAppStateKeyData)]
pub fn bench_app_state_key_data() -> Vec<u8> {
    KEY_DATA.to_vec()
}

/// The collection's name on the wire.
#[wasm_bindgen(js_name = benchAppStateCollection)]
pub fn bench_app_state_collection() -> String {
    COLLECTION.name().to_owned()
}

/// The LTHash after the snapshot (`after_patch` false) or after the patch.
#[wasm_bindgen(js_name = benchAppStateHash)]
pub fn bench_app_state_hash(after_patch: bool) -> Result<Vec<u8>, JsError> {
    with_fixture(|fixture| {
        let state = if after_patch {
            &fixture.patched
        } else {
            &fixture.base
        };
        Ok(state.hash().as_bytes().to_vec())
    })
}
