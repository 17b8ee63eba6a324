//! The app-state sync's unit tests (flows through the mock-server live in walink-sim).

#![allow(clippy::unwrap_used, clippy::panic)]

use super::blobs::external_reference;
use super::events::AppStateFailure;
use super::keys::key_request_wait;
use super::*;
use crate::appstate::{PatchError, SyncKey};
use crate::client::context::testing::Parts;
use crate::client::event::Event;
use crate::client::fetch::{Body, Method};
use crate::limits::{
    APPSTATE_CLIENT_KEY_REQUEST_WAIT_MS, APPSTATE_CLIENT_MAX_BLOB_RETRIES,
    APPSTATE_MAX_EXTERNAL_BLOB,
};
use crate::store::Change;

fn share() -> (SyncKey, wa::Message) {
    let key = SyncKey::new(KeyId::new(&[0, 0, 1, 2]).unwrap(), [7; 32], None, 1_000);
    let message = wa::Message {
        protocol_message: Some(Box::new(wa::message::ProtocolMessage {
            r#type: Some(wa::message::protocol_message::Type::AppStateSyncKeyShare as i32),
            app_state_sync_key_share: Some(wa::message::AppStateSyncKeyShare {
                keys: vec![key.to_proto()],
            }),
            ..Default::default()
        })),
        ..Default::default()
    };
    (key, message)
}

#[test]
fn a_key_share_is_taken_only_from_an_own_device() {
    let (key, message) = share();
    let own: Jid = "15551234567:3@s.whatsapp.net".parse().unwrap();
    let phone: Jid = "15551234567@s.whatsapp.net".parse().unwrap();
    let stranger: Jid = "15557654321@s.whatsapp.net".parse().unwrap();
    let (keys, changes) = key_share_changes(&message, &phone, Some(&own)).unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].id(), key.id());
    let Some(Change::Put(record)) = changes.first() else {
        panic!("a put");
    };
    assert_eq!(record.space, Space::AppStateKey);
    assert_eq!(record.key, "00000102");
    assert_eq!(
        persist::decode_key(&record.value).unwrap().data(),
        key.data()
    );
    // The restored ring holds it.
    let restored = AppSync::restore(core::slice::from_ref(record));
    assert!(restored.ring.contains(key.id().as_bytes()));
    assert_eq!(restored.load, Load::Unloaded);
    assert!(key_share_changes(&message, &stranger, Some(&own)).is_none());
    assert!(key_share_changes(&message, &phone, None).is_none());
    assert!(key_share_changes(&wa::Message::default(), &phone, Some(&own)).is_none());
}

#[test]
fn restore_reads_states_and_the_view_and_skips_bad_records() {
    let state = CollectionState::new();
    let records = vec![
        Record {
            space: Space::AppStateVersion,
            key: "regular_low".to_owned(),
            value: persist::encode_collection(Collection::RegularLow, &state),
        },
        Record {
            space: Space::AppStateVersion,
            key: VIEW_KEY.to_owned(),
            value: persist::encode_view(&SettingsView::new()),
        },
        Record {
            space: Space::AppStateKey,
            key: "ff".to_owned(),
            value: vec![1, 2, 3],
        },
    ];
    let restored = AppSync::restore(&records);
    assert_eq!(restored.load, Load::Loaded);
    assert!(restored.ring.is_empty());
    assert!(restored.states.get(&Collection::RegularLow).is_some());
}

fn reference(path: &str) -> wa::ExternalBlobReference {
    wa::ExternalBlobReference {
        media_key: Some(vec![0xA7; 32]),
        direct_path: Some(path.to_owned()),
        handle: None,
        file_size_bytes: Some(64),
        file_sha256: Some(vec![1; 32]),
        file_enc_sha256: Some(vec![2; 32]),
    }
}

fn events(out: &mut Outputs) -> Vec<Event> {
    let mut events = Vec::new();
    while let Some(output) = out.pop() {
        if let crate::client::Output::Event(event) = output {
            events.push(event);
        }
    }
    events
}

#[test]
fn a_snapshot_reference_is_told_from_inline_snapshot_bytes() {
    let reference = reference("/v/t62/blob");
    let bytes = prost::Message::encode_to_vec(&reference);
    assert_eq!(external_reference(&bytes), Some(reference.clone()));
    let inline = wa::SyncdSnapshot {
        version: Some(wa::SyncdVersion { version: Some(8) }),
        records: Vec::new(),
        mac: Some(vec![3; 32]),
        key_id: Some(wa::KeyId {
            id: Some(vec![0, 0, 1, 2]),
        }),
    };
    assert_eq!(
        external_reference(&prost::Message::encode_to_vec(&inline)),
        None
    );
    // An incomplete reference is not one.
    let mut no_key = reference.clone();
    no_key.media_key = Some(vec![1; 16]);
    assert_eq!(
        external_reference(&prost::Message::encode_to_vec(&no_key)),
        None
    );
    let mut no_path = reference;
    no_path.direct_path = None;
    assert_eq!(
        external_reference(&prost::Message::encode_to_vec(&no_path)),
        None
    );
    assert_eq!(external_reference(&[0xFF, 0xFF]), None);
}

/// The URLs of the fetches in `out` (events and other outputs are dropped).
fn fetched(out: &mut Outputs) -> Vec<(crate::client::FetchId, String)> {
    core::iter::from_fn(|| out.pop())
        .filter_map(|output| match output {
            crate::client::Output::Fetch { id, request } => {
                assert_eq!(request.method, Method::Get);
                assert_eq!(request.body, Body::Empty);
                assert_eq!(
                    request.max_response_bytes,
                    APPSTATE_MAX_EXTERNAL_BLOB as u64
                );
                Some((id, request.url))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn an_answer_needing_blobs_is_parked_and_asks_the_host_without_the_key() {
    let mut parts = Parts::new();
    let mut state = AppSync::default();
    let mut out = Outputs::default();
    let patch = wa::SyncdPatch {
        version: Some(wa::SyncdVersion { version: Some(1) }),
        external_mutations: Some(reference("/v/t62/mutations")),
        ..Default::default()
    };
    state.apply_decoded(
        Collection::RegularHigh,
        false,
        false,
        Ok((
            None,
            Some(reference("/v/t62/snapshot")),
            vec![(patch, None)],
        )),
        &mut parts.ctx(0),
        &mut out,
    );
    assert_eq!(
        fetched(&mut out),
        vec![
            (
                crate::client::FetchId(1),
                "https://mmg.whatsapp.net/v/t62/snapshot".to_owned()
            ),
            (
                crate::client::FetchId(2),
                "https://mmg.whatsapp.net/v/t62/mutations".to_owned()
            )
        ]
    );
    assert!(state.is_parked(Collection::RegularHigh));
    // Nothing was persisted, and no debug output shows the media key.
    assert!(state.states.iter().next().is_none());
    let debug = format!("{state:?}");
    assert!(!debug.contains("167, 167"), "{debug}");
    // A disconnect drops the parked answer and fetches the collection again.
    state.handle_disconnected();
    assert!(!Collection::ALL.iter().any(|c| state.is_parked(*c)));
    assert_eq!(state.slot_mut(Collection::RegularHigh).due, Some(false));
}

#[test]
fn a_blob_answered_with_a_status_other_than_2xx_is_a_failed_download() {
    let mut parts = Parts::new();
    parts.config.media_origin = "http://127.0.0.1:9".to_owned();
    let mut state = AppSync::default();
    let mut out = Outputs::default();
    let collection = Collection::RegularHigh;
    state.apply_decoded(
        collection,
        false,
        false,
        Ok((None, Some(reference("/v/t62/snapshot")), Vec::new())),
        &mut parts.ctx(0),
        &mut out,
    );
    let asked = fetched(&mut out);
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].1, "http://127.0.0.1:9/v/t62/snapshot");
    let not_found = Ok(crate::client::FetchResponse::new(404, b"not here".to_vec()));
    state.handle_fetched(asked[0].0, not_found, &mut parts.ctx(1), &mut out);
    assert!(!Collection::ALL.iter().any(|c| state.is_parked(*c)));
    assert_eq!(state.slot_mut(collection).blob_failures, 1);
    // A second answer to the same fetch is ignored.
    state.handle_fetched(
        asked[0].0,
        Err(crate::client::FetchError::Network),
        &mut parts.ctx(2),
        &mut out,
    );
    assert_eq!(state.slot_mut(collection).blob_failures, 1);
}

#[test]
fn failed_blobs_retry_then_ask_for_a_snapshot_then_are_fatal() {
    let mut state = AppSync::default();
    let mut out = Outputs::default();
    let collection = Collection::RegularLow;
    for _ in 0..APPSTATE_CLIENT_MAX_BLOB_RETRIES {
        state.blob_failed(collection, false, AppStateFailure::Download, &mut out);
        assert_eq!(state.slot_mut(collection).due.take(), Some(false));
    }
    state.blob_failed(collection, false, AppStateFailure::Download, &mut out);
    assert_eq!(state.slot_mut(collection).due.take(), Some(true));
    assert!(events(&mut out).is_empty());
    let corrupt = AppStateFailure::Patch(PatchError::ValueMacMismatch);
    state.blob_failed(collection, true, corrupt.clone(), &mut out);
    assert!(state.slots.values().all(|slot| slot.due.is_none()));
    assert_eq!(
        events(&mut out),
        vec![Event::AppStateFatal {
            collection,
            error: corrupt
        }]
    );
    // The count starts again after the fatal report.
    assert_eq!(state.slot_mut(collection).blob_failures, 0);
}

#[test]
fn key_requests_wait_longer_each_time_and_are_bounded() {
    assert_eq!(key_request_wait(1), APPSTATE_CLIENT_KEY_REQUEST_WAIT_MS);
    assert_eq!(key_request_wait(2), 2 * APPSTATE_CLIENT_KEY_REQUEST_WAIT_MS);
    assert_eq!(key_request_wait(3), 4 * APPSTATE_CLIENT_KEY_REQUEST_WAIT_MS);
    // No overflow whatever the count.
    assert!(key_request_wait(u32::MAX) >= key_request_wait(3));
}

#[test]
fn a_patch_whose_external_mutations_arrived_is_not_parked_again() {
    let reference = wa::ExternalBlobReference {
        media_key: Some(vec![1; 32]),
        direct_path: Some("/v/t/x.enc".to_owned()),
        file_enc_sha256: Some(vec![2; 32]),
        ..Default::default()
    };
    let patch = wa::SyncdPatch {
        external_mutations: Some(reference),
        ..Default::default()
    };
    let collection = Collection::RegularHigh;
    let mut parts = Parts::new();
    let downloads = |out: &mut Outputs| fetched(out).len();

    // Mutations not downloaded yet: parked, one download asked.
    let mut state = AppSync::default();
    let mut out = Outputs::default();
    let decoded = Ok((None, None, vec![(patch.clone(), None)]));
    state.apply_decoded(
        collection,
        false,
        false,
        decoded,
        &mut parts.ctx(0),
        &mut out,
    );
    assert_eq!(downloads(&mut out), 1);
    assert!(state.is_parked(collection));

    // Downloaded: applied (here it fails to verify and takes the ladder), never re-parked.
    let mut state = AppSync::default();
    let mut out = Outputs::default();
    let mutations = wa::SyncdMutations::default();
    let decoded = Ok((None, None, vec![(patch, Some(mutations))]));
    state.apply_decoded(
        collection,
        false,
        false,
        decoded,
        &mut parts.ctx(0),
        &mut out,
    );
    assert_eq!(downloads(&mut out), 0);
    assert!(!Collection::ALL.iter().any(|c| state.is_parked(*c)));
}
