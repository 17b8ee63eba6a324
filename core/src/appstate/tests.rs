//! Unit and property tests of the app-state layer as a whole: encode, apply, bad input,
//! transactionality, the view and persistence.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;

use proptest::prelude::*;
use sha2::{Digest, Sha256};

use super::actions::{
    MessageRange, MessageRef, MuteUntil, SyncAction, encode_patch, encode_snapshot,
};
use super::keys::{KeyId, KeyRing, SyncKey};
use super::persist;
use super::state::{ApplyWarning, Collection, CollectionState, Operation};
use super::view::{SettingChange, SettingsView, StarredMessage};
use super::{LtHash, PatchError};
use crate::proto::wa;

/// Deterministic bytes: SHA-256 of a seed and a counter.
pub(crate) struct Rng(u64, u64);

impl rand_core::TryRng for Rng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(32) {
            let out = Sha256::new()
                .chain_update(self.0.to_le_bytes())
                .chain_update(self.1.to_le_bytes())
                .finalize();
            self.1 += 1;
            chunk.copy_from_slice(&out[..chunk.len()]);
        }
        Ok(())
    }
}
impl rand_core::TryCryptoRng for Rng {}

fn key(id: u8) -> SyncKey {
    SyncKey::new(
        KeyId::new(&[0, 0, 0, 0, 0, id]).unwrap(),
        [id; 32],
        None,
        1000 + i64::from(id),
    )
}

fn ring(keys: &[&SyncKey]) -> KeyRing {
    let mut ring = KeyRing::new();
    for k in keys {
        ring.insert((*k).clone());
    }
    ring
}

const CHAT: &str = "15551234567@s.whatsapp.net";

fn range() -> MessageRange {
    MessageRange {
        last_message_timestamp: 1_700_000_000,
        last_system_message_timestamp: None,
        messages: vec![MessageRef {
            id: "3EB0AAAA".into(),
            from_me: true,
            participant: None,
            timestamp: 1_700_000_000,
        }],
    }
}

/// One of each action, with its collection.
pub(crate) fn every_action() -> Vec<SyncAction> {
    vec![
        SyncAction::Mute {
            chat: CHAT.into(),
            until: MuteUntil::Until(1_800_000_000_000),
        },
        SyncAction::Mute {
            chat: "g@g.us".into(),
            until: MuteUntil::Forever,
        },
        SyncAction::Unmute { chat: CHAT.into() },
        SyncAction::Pin {
            chat: CHAT.into(),
            pinned: true,
        },
        SyncAction::Pin {
            chat: CHAT.into(),
            pinned: false,
        },
        SyncAction::Archive {
            chat: CHAT.into(),
            archived: true,
            range: range(),
        },
        SyncAction::Archive {
            chat: CHAT.into(),
            archived: false,
            range: range(),
        },
        SyncAction::MarkRead {
            chat: CHAT.into(),
            read: false,
            range: range(),
        },
        SyncAction::MarkRead {
            chat: CHAT.into(),
            read: true,
            range: range(),
        },
        SyncAction::Star {
            chat: CHAT.into(),
            message_id: "3EB0BBBB".into(),
            from_me: false,
            participant: None,
            starred: true,
        },
        SyncAction::Star {
            chat: "g@g.us".into(),
            message_id: "3EB0CCCC".into(),
            from_me: false,
            participant: Some("15550000000@s.whatsapp.net".into()),
            starred: false,
        },
        SyncAction::DeleteChat {
            chat: CHAT.into(),
            range: range(),
        },
        SyncAction::ClearChat {
            chat: CHAT.into(),
            range: range(),
        },
        SyncAction::Contact {
            jid: CHAT.into(),
            full_name: Some("Ada Lovelace".into()),
            first_name: Some("Ada".into()),
        },
        SyncAction::RemoveContact { jid: CHAT.into() },
        SyncAction::LabelEdit {
            label_id: "5".into(),
            name: "Clients".into(),
            color: 3,
            deleted: false,
            predefined_id: None,
        },
        SyncAction::LabelChat {
            label_id: "5".into(),
            chat: CHAT.into(),
            labeled: true,
        },
        SyncAction::LabelMessage {
            label_id: "5".into(),
            chat: CHAT.into(),
            message_id: "3EB0DDDD".into(),
            labeled: true,
        },
    ]
}

fn with_version(mut patch: wa::SyncdPatch, version: u64) -> wa::SyncdPatch {
    patch.version = Some(wa::SyncdVersion {
        version: Some(version),
    });
    patch
}

#[test]
fn every_action_round_trips_through_a_patch() {
    let k = key(1);
    let keys = ring(&[&k]);
    let mut rng = Rng(1, 0);
    let mut states: std::collections::BTreeMap<Collection, CollectionState> = Default::default();
    for action in every_action() {
        let collection = action.collection().unwrap();
        let state = states.entry(collection).or_default();
        let out = encode_patch(
            state,
            collection,
            &k,
            std::slice::from_ref(&action),
            42,
            &mut rng,
        )
        .unwrap();
        assert!(out.patch.version.is_none());
        let patch = with_version(out.patch.clone(), state.version() + 1);
        let applied = state.apply_patch(collection, &patch, None, &keys).unwrap();
        assert_eq!(applied.state, out.state);
        assert_eq!(applied.mutations, out.mutations);
        assert_eq!(SyncAction::from_mutation(&applied.mutations[0]), action);
        assert_eq!(applied.mutations[0].operation, action.operation());
        *state = applied.state;
    }
}

#[test]
fn mute_durations() {
    assert_eq!(MuteUntil::after(1000, 0), Ok(MuteUntil::Forever));
    assert_eq!(MuteUntil::after(1000, 500), Ok(MuteUntil::Until(1500)));
    assert!(MuteUntil::after(1000, -1).is_err());
    assert!(MuteUntil::after(i64::MAX, 1).is_err());
    assert_eq!(MuteUntil::at(0), Ok(MuteUntil::Forever));
    assert!(MuteUntil::at(-5).is_err());
    assert_eq!(MuteUntil::Forever.wire(), -1);
    assert!(MuteUntil::Until(10).is_active(9) && !MuteUntil::Until(10).is_active(10));
}

#[test]
fn outgoing_patches_refuse_bad_actions() {
    let k = key(1);
    let mut rng = Rng(2, 0);
    let state = CollectionState::new();
    let mute = SyncAction::Unmute { chat: CHAT.into() };
    let pin = SyncAction::Pin {
        chat: CHAT.into(),
        pinned: true,
    };
    assert_eq!(
        encode_patch(
            &state,
            Collection::RegularHigh,
            &k,
            &[mute, pin],
            1,
            &mut rng
        ),
        Err(PatchError::InvalidPatch)
    );
    assert_eq!(
        encode_patch(&state, Collection::RegularHigh, &k, &[], 1, &mut rng),
        Err(PatchError::InvalidPatch)
    );
    let empty = SyncAction::Unmute {
        chat: String::new(),
    };
    assert!(matches!(
        encode_patch(&state, Collection::RegularHigh, &k, &[empty], 1, &mut rng),
        Err(PatchError::InvalidAction(_))
    ));
    let unsupported = SyncAction::Unsupported { name: "x".into() };
    assert!(encode_patch(&state, Collection::Regular, &k, &[unsupported], 1, &mut rng).is_err());
}

/// A base state at version 1 with two values, and a valid patch (version 2) on top of it.
fn fixture() -> (SyncKey, KeyRing, CollectionState, wa::SyncdPatch) {
    let k = key(1);
    let keys = ring(&[&k]);
    let mut rng = Rng(3, 0);
    let first = encode_patch(
        &CollectionState::new(),
        Collection::RegularHigh,
        &k,
        &[
            SyncAction::Mute {
                chat: CHAT.into(),
                until: MuteUntil::Forever,
            },
            SyncAction::Mute {
                chat: "a@s.whatsapp.net".into(),
                until: MuteUntil::Forever,
            },
        ],
        1,
        &mut rng,
    )
    .unwrap();
    let second = encode_patch(
        &first.state,
        Collection::RegularHigh,
        &k,
        &[
            SyncAction::Unmute { chat: CHAT.into() },
            SyncAction::Star {
                chat: CHAT.into(),
                message_id: "X".into(),
                from_me: true,
                participant: None,
                starred: true,
            },
        ],
        2,
        &mut rng,
    )
    .unwrap();
    (k, keys, first.state, with_version(second.patch, 2))
}

fn expect_failure(
    state: &CollectionState,
    patch: &wa::SyncdPatch,
    keys: &KeyRing,
    want: PatchError,
) {
    let before = persist::encode_collection(Collection::RegularHigh, state);
    let got = state.apply_patch(Collection::RegularHigh, patch, None, keys);
    assert_eq!(got.err(), Some(want));
    assert_eq!(
        persist::encode_collection(Collection::RegularHigh, state),
        before
    );
}

#[test]
fn fixture_applies() {
    let (_, keys, state, patch) = fixture();
    let applied = state
        .apply_patch(Collection::RegularHigh, &patch, None, &keys)
        .unwrap();
    assert_eq!(applied.state.version(), 2);
    assert_eq!(applied.state.index_value_macs().len(), 3);
    // Wrong collection name: the MACs cover it.
    assert_eq!(
        state
            .apply_patch(Collection::RegularLow, &patch, None, &keys)
            .err(),
        Some(PatchError::PatchMacMismatch)
    );
}

#[test]
fn tampered_macs_are_refused_and_the_state_is_unchanged() {
    let (_, keys, state, patch) = fixture();

    let mut bad = patch.clone();
    bad.patch_mac.as_mut().unwrap()[0] ^= 1;
    expect_failure(&state, &bad, &keys, PatchError::PatchMacMismatch);

    let mut bad = patch.clone();
    bad.snapshot_mac.as_mut().unwrap()[5] ^= 1;
    expect_failure(&state, &bad, &keys, PatchError::PatchMacMismatch);

    // A flipped ciphertext bit: the patch MAC still covers the (unchanged) value MAC, so the
    // value MAC check catches it.
    let mut bad = patch.clone();
    let blob = bad.mutations[1]
        .record
        .as_mut()
        .unwrap()
        .value
        .as_mut()
        .unwrap()
        .blob
        .as_mut()
        .unwrap();
    blob[20] ^= 1;
    expect_failure(&state, &bad, &keys, PatchError::ValueMacMismatch);

    // A changed index MAC on a mutation that replaces a value changes the LTHash bookkeeping
    // (the old value is no longer subtracted): the snapshot MAC catches it.
    let mut bad = patch.clone();
    bad.mutations[0]
        .record
        .as_mut()
        .unwrap()
        .index
        .as_mut()
        .unwrap()
        .blob = Some(vec![7; 32]);
    expect_failure(&state, &bad, &keys, PatchError::LtHashMismatch);

    // On a mutation of a new index the LTHash is the same: the index MAC check catches it.
    let mut bad = patch.clone();
    bad.mutations[1]
        .record
        .as_mut()
        .unwrap()
        .index
        .as_mut()
        .unwrap()
        .blob = Some(vec![7; 32]);
    expect_failure(&state, &bad, &keys, PatchError::IndexMacMismatch);

    // An operation flipped: the value MAC (which covers the operation) no longer verifies, but
    // the LTHash changes first.
    let mut bad = patch.clone();
    bad.mutations[1].operation = Some(Operation::Remove.to_wire());
    expect_failure(&state, &bad, &keys, PatchError::LtHashMismatch);
}

#[test]
fn index_mac_mismatch_is_detected() {
    // A sender that MACs a different index than it encrypts: everything else is consistent.
    let k = key(1);
    let keys = ring(&[&k]);
    let mut rng = Rng(4, 0);
    let out = encode_patch(
        &CollectionState::new(),
        Collection::RegularLow,
        &k,
        &[SyncAction::Pin {
            chat: CHAT.into(),
            pinned: true,
        }],
        1,
        &mut rng,
    )
    .unwrap();
    let forged_index = k.mutation_keys().index_mac(b"[\"pin_v1\",\"other\"]");
    let mut patch = out.patch;
    patch.mutations[0]
        .record
        .as_mut()
        .unwrap()
        .index
        .as_mut()
        .unwrap()
        .blob = Some(forged_index.to_vec());
    let value_mac = out.mutations[0].value_mac;
    let mut hash = LtHash::ZERO;
    hash.add(&value_mac);
    let snapshot_mac = k.mutation_keys().snapshot_mac(&hash, 1, "regular_low");
    patch.snapshot_mac = Some(snapshot_mac.to_vec());
    patch.patch_mac = Some(
        k.mutation_keys()
            .patch_mac(&snapshot_mac, [value_mac.as_slice()], 1, "regular_low")
            .to_vec(),
    );
    let patch = with_version(patch, 1);
    assert_eq!(
        CollectionState::new()
            .apply_patch(Collection::RegularLow, &patch, None, &keys)
            .err(),
        Some(PatchError::IndexMacMismatch)
    );
}

#[test]
fn versions_must_follow_on() {
    let (_, keys, state, patch) = fixture();
    expect_failure(
        &state,
        &with_version(patch.clone(), 1),
        &keys,
        PatchError::StaleVersion { current: 1, got: 1 },
    );
    expect_failure(
        &state,
        &with_version(patch.clone(), 3),
        &keys,
        PatchError::VersionGap { current: 1, got: 3 },
    );
    let mut unversioned = patch;
    unversioned.version = None;
    expect_failure(
        &state,
        &unversioned,
        &keys,
        PatchError::Malformed("patch version"),
    );
}

#[test]
fn duplicate_mutations_are_refused() {
    let (_, keys, state, patch) = fixture();
    let mut bad = patch.clone();
    let copy = bad.mutations[0].clone();
    bad.mutations.push(copy);
    expect_failure(&state, &bad, &keys, PatchError::DuplicateMutation);
}

#[test]
fn missing_keys_are_named() {
    let (_, _, state, patch) = fixture();
    let other = ring(&[&key(9)]);
    expect_failure(
        &state,
        &patch,
        &other,
        PatchError::MissingKeys(vec![KeyId::new(&[0, 0, 0, 0, 0, 1]).unwrap()]),
    );
}

#[test]
fn external_mutations_are_required_and_appended() {
    let (_, keys, state, patch) = fixture();
    let mut split = patch.clone();
    let tail = split.mutations.split_off(1);
    split.external_mutations = Some(wa::ExternalBlobReference::default());
    expect_failure(&state, &split, &keys, PatchError::MissingExternalMutations);
    let external = wa::SyncdMutations { mutations: tail };
    let applied = state
        .apply_patch(Collection::RegularHigh, &split, Some(&external), &keys)
        .unwrap();
    let whole = state
        .apply_patch(Collection::RegularHigh, &patch, None, &keys)
        .unwrap();
    assert_eq!(applied.state, whole.state);
    assert_eq!(
        state
            .apply_patch(Collection::RegularHigh, &patch, Some(&external), &keys)
            .err(),
        Some(PatchError::UnexpectedExternalMutations)
    );
}

#[test]
fn remove_of_an_unknown_index_is_a_warning() {
    let k = key(1);
    let keys = ring(&[&k]);
    let mut rng = Rng(5, 0);
    let out = encode_patch(
        &CollectionState::new(),
        Collection::CriticalUnblockLow,
        &k,
        &[SyncAction::RemoveContact { jid: CHAT.into() }],
        1,
        &mut rng,
    )
    .unwrap();
    let applied = CollectionState::new()
        .apply_patch(
            Collection::CriticalUnblockLow,
            &with_version(out.patch, 1),
            None,
            &keys,
        )
        .unwrap();
    assert_eq!(applied.state.hash(), &LtHash::ZERO);
    assert_eq!(
        applied.warnings,
        vec![ApplyWarning::RemovedUnknownIndex {
            index_mac: applied.mutations[0].index_mac
        }]
    );
}

#[test]
fn snapshots_verify_and_replace_the_state() {
    let k = key(2);
    let keys = ring(&[&k]);
    let mut rng = Rng(6, 0);
    let actions: Vec<_> = (0..20)
        .map(|i| SyncAction::Pin {
            chat: format!("{i}@s.whatsapp.net"),
            pinned: true,
        })
        .collect();
    let snapshot = encode_snapshot(Collection::RegularLow, &k, 7, &actions, 5, &mut rng).unwrap();
    let applied =
        CollectionState::apply_snapshot(Collection::RegularLow, &snapshot, &keys).unwrap();
    assert_eq!(applied.state.version(), 7);
    assert_eq!(applied.mutations.len(), 20);
    let rebuilt = CollectionState::from_parts(
        7,
        applied.state.hash().clone(),
        applied.state.index_value_macs().clone(),
    )
    .unwrap();
    assert_eq!(rebuilt, applied.state);

    let mut bad = snapshot.clone();
    bad.mac.as_mut().unwrap()[0] ^= 1;
    assert_eq!(
        CollectionState::apply_snapshot(Collection::RegularLow, &bad, &keys).err(),
        Some(PatchError::LtHashMismatch)
    );
    let mut bad = snapshot.clone();
    bad.records.pop();
    assert_eq!(
        CollectionState::apply_snapshot(Collection::RegularLow, &bad, &keys).err(),
        Some(PatchError::LtHashMismatch)
    );
    let mut bad = snapshot.clone();
    let first = bad.records[0].clone();
    bad.records.push(first);
    assert_eq!(
        CollectionState::apply_snapshot(Collection::RegularLow, &bad, &keys).err(),
        Some(PatchError::DuplicateMutation)
    );
    assert!(matches!(
        CollectionState::apply_snapshot(Collection::RegularLow, &snapshot, &KeyRing::new()),
        Err(PatchError::MissingKeys(_))
    ));
    // A snapshot followed by a patch, atomically.
    let next = encode_patch(
        &applied.state,
        Collection::RegularLow,
        &k,
        &[SyncAction::Pin {
            chat: "0@s.whatsapp.net".into(),
            pinned: false,
        }],
        6,
        &mut rng,
    )
    .unwrap();
    let all = CollectionState::new()
        .apply_all(
            Collection::RegularLow,
            Some(&snapshot),
            &[(with_version(next.patch.clone(), 8), None)],
            &keys,
        )
        .unwrap();
    assert_eq!(all.state, next.state);
    assert_eq!(all.mutations.len(), 21);
    assert!(
        CollectionState::new()
            .apply_all(
                Collection::RegularLow,
                Some(&snapshot),
                &[(with_version(next.patch, 9), None)],
                &keys,
            )
            .is_err()
    );
}

#[test]
fn view_follows_mutations_and_emits_changes() {
    let k = key(1);
    let keys = ring(&[&k]);
    let mut rng = Rng(7, 0);
    let mut view = SettingsView::new();
    let mut states: std::collections::BTreeMap<Collection, CollectionState> = Default::default();
    let mut apply = |view: &mut SettingsView, actions: &[SyncAction]| -> Vec<SettingChange> {
        let collection = actions[0].collection().unwrap();
        let state = states.entry(collection).or_default();
        let out = encode_patch(state, collection, &k, actions, 1234, &mut rng).unwrap();
        let patch = with_version(out.patch, state.version() + 1);
        let applied = state.apply_patch(collection, &patch, None, &keys).unwrap();
        *state = applied.state;
        view.apply_mutations(&applied.mutations)
    };
    let mute = SyncAction::Mute {
        chat: CHAT.into(),
        until: MuteUntil::Until(99),
    };
    assert_eq!(
        apply(&mut view, std::slice::from_ref(&mute)),
        vec![SettingChange::Muted {
            chat: CHAT.into(),
            until: Some(MuteUntil::Until(99))
        }]
    );
    assert_eq!(apply(&mut view, &[mute]), vec![], "no change, no event");
    assert_eq!(view.chat(CHAT).muted_until, Some(MuteUntil::Until(99)));
    apply(
        &mut view,
        &[SyncAction::Pin {
            chat: CHAT.into(),
            pinned: true,
        }],
    );
    assert_eq!(view.chat(CHAT).pinned_at, Some(1234));
    apply(
        &mut view,
        &[SyncAction::Star {
            chat: CHAT.into(),
            message_id: "M".into(),
            from_me: true,
            participant: None,
            starred: true,
        }],
    );
    assert_eq!(view.starred().len(), 1);
    apply(
        &mut view,
        &[SyncAction::Contact {
            jid: CHAT.into(),
            full_name: Some("Ada".into()),
            first_name: None,
        }],
    );
    apply(
        &mut view,
        &[
            SyncAction::LabelEdit {
                label_id: "1".into(),
                name: "New".into(),
                color: 2,
                deleted: false,
                predefined_id: None,
            },
            SyncAction::LabelChat {
                label_id: "1".into(),
                chat: CHAT.into(),
                labeled: true,
            },
        ],
    );
    assert!(view.chat(CHAT).labels.contains("1"));

    // Persisted and restored, the view is the same.
    let restored = persist::decode_view(&persist::encode_view(&view)).unwrap();
    assert_eq!(restored, view);

    let changes = apply(
        &mut view,
        &[SyncAction::DeleteChat {
            chat: CHAT.into(),
            range: range(),
        }],
    );
    assert_eq!(
        changes,
        vec![SettingChange::ChatDeleted { chat: CHAT.into() }]
    );
    assert_eq!(view.chat(CHAT), Default::default());
    assert!(view.starred().is_empty());
    let changes = apply(&mut view, &[SyncAction::RemoveContact { jid: CHAT.into() }]);
    assert_eq!(
        changes,
        vec![SettingChange::Contact {
            jid: CHAT.into(),
            contact: None
        }]
    );
}

#[test]
fn removes_reset_and_unknown_actions_are_ignored() {
    let k = key(1);
    let keys = ring(&[&k]);
    let mut rng = Rng(8, 0);
    // A mutation with an index walink does not know, built by hand.
    let data = wa::SyncActionData {
        index: Some(br#"["setting_locale"]"#.to_vec()),
        value: Some(wa::SyncActionValue {
            timestamp: Some(1),
            ..Default::default()
        }),
        padding: Some(vec![]),
        version: Some(1),
    };
    let mkeys = k.mutation_keys();
    let sealed = mkeys.encrypt_value(&[1; 16], &prost::Message::encode_to_vec(&data));
    let value_mac = mkeys.value_mac(Operation::Set, k.id().as_bytes(), &sealed);
    let index_mac = mkeys.index_mac(br#"["setting_locale"]"#);
    let mut blob = sealed;
    blob.extend_from_slice(&value_mac);
    let record = wa::SyncdRecord {
        index: Some(wa::SyncdIndex {
            blob: Some(index_mac.to_vec()),
        }),
        value: Some(wa::SyncdValue { blob: Some(blob) }),
        key_id: Some(wa::KeyId {
            id: Some(k.id().as_bytes().to_vec()),
        }),
    };
    let snapshot =
        super::actions::snapshot_from_records(Collection::CriticalBlock, &k, 1, vec![record])
            .unwrap();
    let applied =
        CollectionState::apply_snapshot(Collection::CriticalBlock, &snapshot, &keys).unwrap();
    let mut view = SettingsView::new();
    assert_eq!(
        view.apply_mutations(&applied.mutations),
        vec![SettingChange::Ignored {
            name: "setting_locale".into()
        }]
    );
    assert_eq!(view, SettingsView::new());

    // SET then REMOVE of a star in one patch.
    let star = SyncAction::Star {
        chat: CHAT.into(),
        message_id: "M".into(),
        from_me: false,
        participant: None,
        starred: true,
    };
    let out = encode_patch(
        &CollectionState::new(),
        Collection::RegularHigh,
        &k,
        &[star],
        1,
        &mut rng,
    )
    .unwrap();
    let mut applied = out.mutations.clone();
    let mut remove = applied[0].clone();
    remove.operation = Operation::Remove;
    applied.push(remove);
    let changes = view.apply_mutations(&applied);
    let message = StarredMessage {
        chat: CHAT.into(),
        message_id: "M".into(),
        from_me: false,
        participant: None,
    };
    assert_eq!(
        changes,
        vec![
            SettingChange::Starred {
                message: message.clone(),
                starred: true
            },
            SettingChange::Starred {
                message,
                starred: false
            }
        ]
    );
}

#[test]
fn persisted_records_round_trip_and_are_checked() {
    let (k, keys, state, patch) = fixture();
    let applied = state
        .apply_patch(Collection::RegularHigh, &patch, None, &keys)
        .unwrap();
    let bytes = persist::encode_collection(Collection::RegularHigh, &applied.state);
    let (collection, restored) = persist::decode_collection(&bytes).unwrap();
    assert_eq!(collection, Collection::RegularHigh);
    assert_eq!(restored, applied.state);

    // A stored hash that does not match the stored MACs is refused.
    let mut record: crate::proto::walink::AppStateCollection =
        prost::Message::decode(bytes.as_slice()).unwrap();
    record.hash.as_mut().unwrap()[0] ^= 1;
    assert_eq!(
        persist::decode_collection(&prost::Message::encode_to_vec(&record)),
        Err(PatchError::LtHashMismatch)
    );
    record.format = Some(99);
    assert!(persist::decode_collection(&prost::Message::encode_to_vec(&record)).is_err());

    let key_bytes = persist::encode_key(&k);
    assert_eq!(persist::decode_key(&key_bytes).unwrap(), k);
    assert!(persist::decode_key(&key_bytes[..key_bytes.len() - 3]).is_err());
    assert!(persist::decode_view(b"\xff\xff").is_err());
}

#[derive(Debug, Clone)]
enum Op {
    Mute(u8, i64),
    Unmute(u8),
    Star(u8, u8, bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..6, 0i64..5).prop_map(|(c, t)| Op::Mute(c, t)),
        (0u8..6).prop_map(Op::Unmute),
        (0u8..6, 0u8..4, any::<bool>()).prop_map(|(c, m, s)| Op::Star(c, m, s)),
    ]
}

fn to_action(op: &Op) -> SyncAction {
    match op {
        Op::Mute(c, t) => SyncAction::Mute {
            chat: format!("{c}@s.whatsapp.net"),
            until: MuteUntil::at(*t * 1000).unwrap(),
        },
        Op::Unmute(c) => SyncAction::Unmute {
            chat: format!("{c}@s.whatsapp.net"),
        },
        Op::Star(c, m, s) => SyncAction::Star {
            chat: format!("{c}@s.whatsapp.net"),
            message_id: format!("M{m}"),
            from_me: false,
            participant: None,
            starred: *s,
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// A receiver that applies the sender's patches reaches the sender's state and view; the
    /// LTHash equals the sum of the current value MACs; a snapshot of the result gives the same
    /// state; a patch with any single flipped byte never applies and never changes the state.
    #[test]
    fn sender_and_receiver_agree(batches in proptest::collection::vec(proptest::collection::vec(op(), 1..5), 1..6), seed in any::<u64>(), flip in any::<(usize, u8)>()) {
        let k = key(3);
        let keys = ring(&[&k]);
        let mut rng = Rng(seed, 0);
        let collection = Collection::RegularHigh;
        let mut sender = CollectionState::new();
        let mut receiver = CollectionState::new();
        let mut sender_view = SettingsView::new();
        let mut receiver_view = SettingsView::new();
        let mut last = None;
        for (i, batch) in batches.iter().enumerate() {
            let actions: Vec<_> = batch.iter().map(to_action).collect();
            let out = encode_patch(&sender, collection, &k, &actions, i as i64, &mut rng).unwrap();
            sender_view.apply_mutations(&out.mutations);
            sender = out.state.clone();
            let patch = with_version(out.patch, receiver.version() + 1);
            let applied = receiver.apply_patch(collection, &patch, None, &keys).unwrap();
            receiver_view.apply_mutations(&applied.mutations);
            last = Some((patch, receiver.clone()));
            receiver = applied.state;
        }
        prop_assert_eq!(&sender, &receiver);
        prop_assert_eq!(&sender_view, &receiver_view);
        let mut sum = LtHash::ZERO;
        sum.subtract_then_add(std::iter::empty::<&[u8]>(), receiver.index_value_macs().values());
        prop_assert_eq!(&sum, receiver.hash());

        // Tampering: flip one byte of the encoded last patch and apply it to the state it was
        // built on: it fails, unless the flip decodes to the very same patch, and the state the
        // attempt started from is byte-identical afterwards.
        let (patch, before) = last.unwrap();
        let before_bytes = persist::encode_collection(collection, &before);
        let mut bytes = prost::Message::encode_to_vec(&patch);
        let at = flip.0 % bytes.len();
        bytes[at] ^= flip.1.max(1);
        if let Ok(tampered) = super::state::decode_patch(&bytes) {
            let result = before.apply_patch(collection, &tampered, None, &keys);
            prop_assert!(result.is_err() || tampered == patch, "tampered patch applied");
        }
        prop_assert_eq!(persist::encode_collection(collection, &before), before_bytes);
    }
}

#[test]
fn a_snapshot_replaces_what_its_collection_holds() {
    let k = key(1);
    let keys = ring(&[&k]);
    let mut rng = Rng(9, 0);
    let mut view = SettingsView::new();
    // Before: two chats muted, one pinned (another collection), one starred message.
    let before = encode_patch(
        &CollectionState::new(),
        Collection::RegularHigh,
        &k,
        &[
            SyncAction::Mute {
                chat: "a@s.whatsapp.net".into(),
                until: MuteUntil::Forever,
            },
            SyncAction::Mute {
                chat: "b@s.whatsapp.net".into(),
                until: MuteUntil::Forever,
            },
            SyncAction::Star {
                chat: "a@s.whatsapp.net".into(),
                message_id: "M".into(),
                from_me: true,
                participant: None,
                starred: true,
            },
        ],
        1,
        &mut rng,
    )
    .unwrap();
    view.apply_mutations(&before.mutations);
    let pin = encode_patch(
        &CollectionState::new(),
        Collection::RegularLow,
        &k,
        &[SyncAction::Pin {
            chat: "b@s.whatsapp.net".into(),
            pinned: true,
        }],
        1,
        &mut rng,
    )
    .unwrap();
    view.apply_mutations(&pin.mutations);

    // The snapshot holds only a's mute (until a time now) and a delete record of b.
    let snapshot = encode_snapshot(
        Collection::RegularHigh,
        &k,
        9,
        &[
            SyncAction::Mute {
                chat: "a@s.whatsapp.net".into(),
                until: MuteUntil::Until(5),
            },
            SyncAction::DeleteChat {
                chat: "b@s.whatsapp.net".into(),
                range: range(),
            },
        ],
        2,
        &mut rng,
    )
    .unwrap();
    let applied =
        CollectionState::apply_snapshot(Collection::RegularHigh, &snapshot, &keys).unwrap();
    let changes = view.replace_collection(Collection::RegularHigh, &applied.mutations);
    assert_eq!(
        changes,
        vec![
            SettingChange::Muted {
                chat: "a@s.whatsapp.net".into(),
                until: Some(MuteUntil::Until(5))
            },
            SettingChange::Muted {
                chat: "b@s.whatsapp.net".into(),
                until: None
            },
            SettingChange::Starred {
                message: StarredMessage {
                    chat: "a@s.whatsapp.net".into(),
                    message_id: "M".into(),
                    from_me: true,
                    participant: None,
                },
                starred: false
            },
        ]
    );
    // b's pin lives in regular_low and the delete record is history: it stays.
    assert!(view.chat("b@s.whatsapp.net").pinned_at.is_some());
    // Replaying the same snapshot changes nothing.
    assert!(
        view.replace_collection(Collection::RegularHigh, &applied.mutations)
            .is_empty()
    );
}

#[test]
fn errors_map_to_the_recovery_ladder() {
    use super::Recovery;
    let id = KeyId::new(&[1]).unwrap();
    assert_eq!(
        PatchError::MissingKeys(vec![id.clone()]).recovery(),
        Recovery::WaitForKeys(vec![id])
    );
    assert_eq!(
        PatchError::StaleVersion { current: 2, got: 2 }.recovery(),
        Recovery::Ignore
    );
    assert_eq!(
        PatchError::VersionGap { current: 2, got: 4 }.recovery(),
        Recovery::FetchMissingPatches
    );
    for e in [
        PatchError::PatchMacMismatch,
        PatchError::LtHashMismatch,
        PatchError::ValueMacMismatch,
        PatchError::IndexMacMismatch,
        PatchError::DuplicateMutation,
    ] {
        assert_eq!(e.recovery(), Recovery::FetchSnapshot);
    }
    assert_eq!(PatchError::InvalidPatch.recovery(), Recovery::Fatal);
}

#[test]
fn external_blobs_open_with_the_app_state_media_keys() {
    let (_, keys, state, patch) = fixture();
    let external = wa::SyncdMutations {
        mutations: patch.mutations.clone(),
    };
    let plain = prost::Message::encode_to_vec(&external);
    let media_key = [5u8; 32];
    let (file, hashes) =
        crate::media::encrypt(&media_key, crate::media::MediaType::AppState, &plain).unwrap();
    let reference = wa::ExternalBlobReference {
        media_key: Some(media_key.to_vec()),
        file_sha256: Some(hashes.file_sha256.to_vec()),
        file_enc_sha256: Some(hashes.file_enc_sha256.to_vec()),
        ..Default::default()
    };
    let opened = super::decrypt_external_blob(&reference, &file).unwrap();
    let mutations = super::decode_external_mutations(&opened).unwrap();
    let mut outer = patch.clone();
    outer.mutations.clear();
    outer.external_mutations = Some(reference.clone());
    let applied = state
        .apply_patch(Collection::RegularHigh, &outer, Some(&mutations), &keys)
        .unwrap();
    assert_eq!(applied.mutations.len(), 2);

    let mut tampered = file.clone();
    tampered[3] ^= 1;
    assert!(super::decrypt_external_blob(&reference, &tampered).is_err());
    let mut wrong_hash = reference;
    wrong_hash.file_sha256 = Some(vec![0; 32]);
    assert!(super::decrypt_external_blob(&wrong_hash, &file).is_err());
}
