//! App-state decoding and application on arbitrary bytes: a patch applied to a state holding
//! values, a snapshot, external mutations and the persisted records never panic; whatever
//! applies advances the version by exactly one, keeps the LTHash equal to the sum of the value
//! MACs, and leaves the starting state untouched; the view takes any decoded mutations.
#![no_main]

use libfuzzer_sys::fuzz_target;
use walink_core::appstate::{
    Collection, CollectionState, KeyId, KeyRing, LtHash, MuteUntil, SettingsView, SyncAction,
    SyncKey, decode_external_mutations, decode_patch, decode_snapshot, encode_patch, persist,
};

struct Zero;

impl rand_core::TryRng for Zero {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(0)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(0)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        dst.fill(0);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for Zero {}

fuzz_target!(|data: &[u8]| {
    let key = SyncKey::new(KeyId::new(&[0, 0, 0, 0, 0, 1]).unwrap(), [7; 32], None, 1);
    let mut ring = KeyRing::new();
    ring.insert(key.clone());
    let collection = Collection::RegularHigh;
    let base = encode_patch(
        &CollectionState::new(),
        collection,
        &key,
        &[SyncAction::Mute {
            chat: "1@s.whatsapp.net".into(),
            until: MuteUntil::Forever,
        }],
        1,
        &mut Zero,
    )
    .unwrap()
    .state;
    let before = base.clone();

    let (split, rest) = data.split_at(data.len() / 2);
    if let Ok(patch) = decode_patch(data) {
        let external = decode_external_mutations(rest).ok();
        for ext in [None, external.as_ref()] {
            if let Ok(applied) = base.apply_patch(collection, &patch, ext, &ring) {
                assert_eq!(applied.state.version(), base.version() + 1);
                let mut sum = LtHash::ZERO;
                sum.subtract_then_add(
                    std::iter::empty::<&[u8]>(),
                    applied.state.index_value_macs().values(),
                );
                assert_eq!(&sum, applied.state.hash());
                let _ = SettingsView::new().apply_mutations(&applied.mutations);
            }
        }
    }
    assert_eq!(base, before, "a failed or successful apply changed the base state");
    if let Ok(snapshot) = decode_snapshot(split) {
        if let Ok(applied) = CollectionState::apply_snapshot(collection, &snapshot, &ring) {
            let _ = SettingsView::new().apply_mutations(&applied.mutations);
        }
    }
    let _ = persist::decode_collection(data);
    let _ = persist::decode_view(data);
    let _ = persist::decode_key(data);
});
