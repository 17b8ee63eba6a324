#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use prost::Message as _;

use super::*;
use crate::client::context::testing::Parts;
use crate::client::{FetchError, FetchResponse, Output};
use crate::proto::wa::message::HistorySyncType as T;

const NOW_S: u64 = 1_780_000_000;

fn history(sync_type: T, days_old: &[u64]) -> wa::HistorySync {
    let message = |i: usize, age: u64, chat: &str, participant: Option<&str>| wa::HistorySyncMsg {
        message: Some(wa::WebMessageInfo {
            key: Some(wa::MessageKey {
                remote_jid: Some(chat.to_owned()),
                from_me: Some(false),
                id: Some(format!("M{i}")),
                participant: participant.map(str::to_owned),
            }),
            message: Some(wa::Message {
                conversation: Some(format!("text {i}")),
                ..Default::default()
            }),
            message_timestamp: Some(NOW_S - age * 86_400),
            ..Default::default()
        }),
        msg_order_id: None,
    };
    wa::HistorySync {
        sync_type: Some(sync_type as i32),
        conversations: vec![
            wa::Conversation {
                id: Some("1@s.whatsapp.net".into()),
                name: Some("One".into()),
                unread_count: Some(2),
                pn_jid: Some("1@s.whatsapp.net".into()),
                lid_jid: Some("101@lid".into()),
                messages: days_old
                    .iter()
                    .enumerate()
                    .map(|(i, age)| message(i, *age, "1@s.whatsapp.net", None))
                    .collect(),
                ..Default::default()
            },
            wa::Conversation {
                id: Some("5@g.us".into()),
                messages: vec![
                    message(9, 0, "5@g.us", Some("2@s.whatsapp.net")),
                    // No participant: the sender is unknown, the message is skipped.
                    message(10, 0, "5@g.us", None),
                ],
                ..Default::default()
            },
        ],
        chunk_order: Some(2),
        progress: Some(60),
        pushnames: vec![
            wa::Pushname {
                id: Some("2@s.whatsapp.net".into()),
                pushname: Some("Two".into()),
            },
            wa::Pushname {
                id: Some("3@s.whatsapp.net".into()),
                pushname: Some("-".into()),
            },
        ],
        phone_number_to_lid_mappings: vec![wa::PhoneNumberToLidMapping {
            pn_jid: Some("2@s.whatsapp.net".into()),
            lid_jid: Some("202@lid".into()),
        }],
        ..Default::default()
    }
}

fn inline(sync_type: T, days_old: &[u64]) -> HistorySyncNotification {
    HistorySyncNotification {
        sync_type: Some(sync_type as i32),
        chunk_order: Some(2),
        initial_hist_bootstrap_inline_payload: Some(compress_for_testing(&history(
            sync_type, days_old,
        ))),
        ..Default::default()
    }
}

/// Steps the machine as `Client::poll_output` does, collecting every event (other outputs,
/// the next chunk's fetch, are put back), and checks that no step left more than one event
/// waiting.
fn drain(history: &mut History, parts: &mut Parts, out: &mut Outputs) -> Vec<Event> {
    let mut events = Vec::new();
    let mut others = Vec::new();
    loop {
        let mut stepped = 0;
        while let Some(output) = out.pop() {
            match output {
                Output::Event(event) => {
                    stepped += 1;
                    events.push(event);
                }
                other => others.push(other),
            }
        }
        assert!(
            stepped <= 1 || events.len() == stepped,
            "one event per step"
        );
        if !history.is_decoding() {
            for other in others {
                out.push(other);
            }
            return events;
        }
        history.step(&mut parts.ctx(NOW_S * 1000), out);
    }
}

fn messages(events: &[Event]) -> Vec<(String, String, Option<String>, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some((
                m.id.clone(),
                m.sender.to_string(),
                m.text.clone(),
                m.history,
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn an_inline_chunk_becomes_conversations_messages_names_mappings_and_progress() {
    let mut parts = Parts::new();
    let mut history = History::default();
    let mut out = Outputs::default();
    history.notification(
        String::new(),
        inline(T::InitialBootstrap, &[0, 1]),
        &mut parts.ctx(0),
        &mut out,
    );
    let events = drain(&mut history, &mut parts, &mut out);
    let conversations: Vec<&HistoryConversation> = events
        .iter()
        .filter_map(|e| match e {
            Event::HistoryConversation(c) => Some(&**c),
            _ => None,
        })
        .collect();
    assert_eq!(conversations.len(), 2);
    assert_eq!(conversations[0].chat.to_string(), "1@s.whatsapp.net");
    assert_eq!(conversations[0].name.as_deref(), Some("One"));
    assert_eq!(conversations[0].unread_count, 2);
    assert_eq!(
        conversations[0].lid.as_ref().unwrap().to_string(),
        "101@lid"
    );
    assert_eq!(
        conversations[0].sync_type,
        HistorySyncType::InitialBootstrap
    );
    assert_eq!(
        messages(&events),
        [
            (
                "M0".into(),
                "1@s.whatsapp.net".into(),
                Some("text 0".into()),
                true
            ),
            (
                "M1".into(),
                "1@s.whatsapp.net".into(),
                Some("text 1".into()),
                true
            ),
            (
                "M9".into(),
                "2@s.whatsapp.net".into(),
                Some("text 9".into()),
                true
            ),
        ]
    );
    let names: Vec<&PushName> = events
        .iter()
        .filter_map(|e| match e {
            Event::PushName(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(names.len(), 1, "\"-\" is no name");
    assert_eq!(names[0].name, "Two");
    assert_eq!(
        events.last(),
        Some(&Event::HistorySync(HistorySyncProgress {
            sync_type: HistorySyncType::InitialBootstrap,
            chunk_order: 2,
            progress: Some(60),
            conversations: 2,
            messages: 3,
            failure: None,
        }))
    );
    // Both mappings, the conversation's and the list's, go to the LID store.
    assert_eq!(
        parts.requests.lid_mappings,
        [
            ("1".to_owned(), "101".to_owned()),
            ("2".to_owned(), "202".to_owned())
        ]
    );
}

#[test]
fn messages_older_than_the_days_asked_for_are_dropped() {
    let mut parts = Parts::new();
    parts.config.profile.history.days = Some(7);
    let mut history = History::default();
    let mut out = Outputs::default();
    history.notification(
        String::new(),
        inline(T::Recent, &[0, 3, 8, 30]),
        &mut parts.ctx(0),
        &mut out,
    );
    let events = drain(&mut history, &mut parts, &mut out);
    let ids: Vec<String> = messages(&events).into_iter().map(|m| m.0).collect();
    assert_eq!(ids, ["M0", "M1", "M9"]);
}

#[test]
fn a_blob_is_fetched_decrypted_with_its_hashes_checked_and_read() {
    let mut parts = Parts::new();
    let mut history = History::default();
    let mut out = Outputs::default();
    let compressed = compress_for_testing(&history_of(T::Recent));
    let key = [0x31; 32];
    let (file, hashes) = media::encrypt(&key, MediaType::History, &compressed).unwrap();
    let note = |path: &str| HistorySyncNotification {
        sync_type: Some(T::Recent as i32),
        chunk_order: Some(1),
        media_key: Some(key.to_vec()),
        direct_path: Some(path.to_owned()),
        file_sha256: Some(hashes.file_sha256.to_vec()),
        file_enc_sha256: Some(hashes.file_enc_sha256.to_vec()),
        ..Default::default()
    };
    for path in ["/v/t62/a", "/v/t62/b", "/v/t62/c", "/v/t62/d"] {
        history.notification(String::new(), note(path), &mut parts.ctx(0), &mut out);
    }
    let fetch = |out: &mut Outputs| -> (FetchId, FetchRequest) {
        let outputs: Vec<Output> = core::iter::from_fn(|| out.pop()).collect();
        assert_eq!(outputs.len(), 1, "one download at a time: {outputs:?}");
        match outputs.into_iter().next() {
            Some(Output::Fetch { id, request }) => (id, request),
            other => panic!("{other:?}"),
        }
    };
    // a: served and read.
    let (id, request) = fetch(&mut out);
    assert!(request.url.ends_with("/v/t62/a"), "{}", request.url);
    assert_eq!(request.max_response_bytes, HISTORY_MAX_BLOB_BYTES as u64);
    let ok = |body: Vec<u8>| Ok(FetchResponse::new(200, body));
    history.handle_fetched(id, ok(file.clone()), &mut parts.ctx(0), &mut out);
    let events = drain(&mut history, &mut parts, &mut out);
    assert!(matches!(
        events.last(),
        Some(Event::HistorySync(HistorySyncProgress {
            messages: 2,
            failure: None,
            ..
        }))
    ));
    // b: a flipped byte fails the MAC.
    let (id, _) = fetch(&mut out);
    let mut bad = file.clone();
    bad[3] ^= 1;
    history.handle_fetched(FetchId(999), ok(file.clone()), &mut parts.ctx(0), &mut out);
    assert!(out.is_empty(), "an unknown fetch is ignored");
    history.handle_fetched(id, ok(bad), &mut parts.ctx(0), &mut out);
    let failure = |out: &mut Outputs| -> Option<HistoryFailure> {
        match out.pop() {
            Some(Output::Event(Event::HistorySync(p))) => p.failure,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(failure(&mut out), Some(HistoryFailure::Decrypt));
    // c: a 404, d: a transport failure.
    let (id, _) = fetch(&mut out);
    history.handle_fetched(
        id,
        Ok(FetchResponse::new(404, Vec::new())),
        &mut parts.ctx(0),
        &mut out,
    );
    assert_eq!(failure(&mut out), Some(HistoryFailure::Download));
    let (id, _) = fetch(&mut out);
    history.handle_fetched(id, Err(FetchError::Network), &mut parts.ctx(0), &mut out);
    assert_eq!(failure(&mut out), Some(HistoryFailure::Download));
    assert!(out.is_empty() && !history.is_decoding());
}

fn history_of(sync_type: T) -> wa::HistorySync {
    history(sync_type, &[0])
}

#[test]
fn with_no_history_asked_for_conversation_chunks_are_skipped_and_names_still_read() {
    let mut parts = Parts::new();
    parts.config.profile.history.scope = HistoryScope::None;
    let mut history = History::default();
    let mut out = Outputs::default();
    history.notification(
        String::new(),
        inline(T::InitialBootstrap, &[0]),
        &mut parts.ctx(0),
        &mut out,
    );
    assert!(out.is_empty() && !history.is_decoding());
    history.notification(
        String::new(),
        inline(T::PushName, &[0]),
        &mut parts.ctx(0),
        &mut out,
    );
    let events = drain(&mut history, &mut parts, &mut out);
    assert!(messages(&events).is_empty());
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::HistoryConversation(_)))
    );
    assert!(events.iter().any(|e| matches!(e, Event::PushName(_))));
}

#[test]
fn a_corrupt_chunk_reports_what_it_read_and_why_it_stopped() {
    let mut parts = Parts::new();
    let mut history = History::default();
    let mut out = Outputs::default();
    let mut note = inline(T::Recent, &[0]);
    let payload = note.initial_hist_bootstrap_inline_payload.as_mut().unwrap();
    payload.truncate(payload.len() - 8);
    history.notification(String::new(), note, &mut parts.ctx(0), &mut out);
    let events = drain(&mut history, &mut parts, &mut out);
    match events.last() {
        Some(Event::HistorySync(p)) => assert!(matches!(
            p.failure,
            Some(HistoryFailure::Decode(
                HistoryDecodeError::Truncated | HistoryDecodeError::Corrupt
            ))
        )),
        other => panic!("{other:?}"),
    }
    // An empty notification fails at once; a full queue refuses.
    history.notification(
        String::new(),
        HistorySyncNotification::default(),
        &mut parts.ctx(0),
        &mut out,
    );
    assert!(matches!(
        out.pop(),
        Some(Output::Event(Event::HistorySync(HistorySyncProgress {
            failure: Some(HistoryFailure::Empty),
            ..
        })))
    ));
}

#[test]
fn the_on_demand_request_is_a_peer_data_operation() {
    let message = on_demand_request("1@s.whatsapp.net", "M0", true, 1_700_000_000, 50);
    let bytes = message.encode_to_vec();
    let decoded = wa::Message::decode(bytes.as_slice()).unwrap();
    let protocol = decoded.protocol_message.unwrap();
    assert_eq!(protocol.r#type, Some(16));
    let pdo = protocol.peer_data_operation_request_message.unwrap();
    assert_eq!(pdo.peer_data_operation_request_type, Some(3));
    let request = pdo.history_sync_on_demand_request.unwrap();
    assert_eq!(request.chat_jid.as_deref(), Some("1@s.whatsapp.net"));
    assert_eq!(request.oldest_msg_id.as_deref(), Some("M0"));
    assert_eq!(request.oldest_msg_from_me, Some(true));
    assert_eq!(request.on_demand_msg_count, Some(50));
    assert_eq!(request.oldest_msg_timestamp_ms, Some(1_700_000_000));
}

#[test]
fn only_our_own_account_may_send_history() {
    let own: Jid = "1@s.whatsapp.net".parse().unwrap();
    let phone: Jid = "1@s.whatsapp.net".parse().unwrap();
    let stranger: Jid = "2@s.whatsapp.net".parse().unwrap();
    let message = wa::Message {
        protocol_message: Some(Box::new(wa::message::ProtocolMessage {
            history_sync_notification: Some(HistorySyncNotification::default()),
            ..Default::default()
        })),
        ..Default::default()
    };
    assert!(notification_of(&message, &phone, Some(&own)).is_some());
    assert!(notification_of(&message, &stranger, Some(&own)).is_none());
    assert!(notification_of(&message, &phone, None).is_none());
    let receipt = hist_sync_receipt("ID1", &own);
    assert_eq!(receipt.attr_str("type"), Some("hist_sync"));
    assert_eq!(receipt.attr_str("id"), Some("ID1"));
}

/// The message secrets of a chunk's messages are persisted in batches of
/// `HISTORY_SECRETS_PER_BATCH`, the rest when the chunk ends.
#[test]
fn history_message_secrets_are_persisted_in_batches() {
    let mut parts = Parts::new();
    let mut history = History::default();
    let mut out = Outputs::default();
    let count = crate::limits::HISTORY_SECRETS_PER_BATCH + 3;
    let messages = (0..count)
        .map(|i| wa::HistorySyncMsg {
            message: Some(wa::WebMessageInfo {
                key: Some(wa::MessageKey {
                    remote_jid: Some("1@s.whatsapp.net".into()),
                    from_me: Some(false),
                    id: Some(format!("S{i}")),
                    participant: None,
                }),
                message: Some(wa::Message {
                    conversation: Some(format!("text {i}")),
                    message_context_info: Some(wa::MessageContextInfo {
                        // The last one without a secret: nothing kept for it.
                        message_secret: (i + 1 < count).then(|| vec![7; 32]),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                message_timestamp: Some(NOW_S),
                ..Default::default()
            }),
            msg_order_id: None,
        })
        .collect();
    let sync = wa::HistorySync {
        sync_type: Some(T::Recent as i32),
        conversations: vec![wa::Conversation {
            id: Some("1@s.whatsapp.net".into()),
            messages,
            ..Default::default()
        }],
        ..Default::default()
    };
    let note = HistorySyncNotification {
        sync_type: Some(T::Recent as i32),
        initial_hist_bootstrap_inline_payload: Some(compress_for_testing(&sync)),
        ..Default::default()
    };
    history.notification(String::new(), note, &mut parts.ctx(0), &mut out);
    let events = drain(&mut history, &mut parts, &mut out);
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::Message(_)))
            .count(),
        count
    );
    let batches: Vec<Vec<String>> = core::iter::from_fn(|| out.pop())
        .filter_map(|output| match output {
            Output::Persist(batch) => Some(
                batch
                    .changes
                    .into_iter()
                    .filter_map(|change| match change {
                        crate::store::Change::Put(record)
                            if record.space == crate::store::Space::MessageSecret =>
                        {
                            Some(record.key.clone())
                        }
                        _ => None,
                    })
                    .collect(),
            ),
            _ => None,
        })
        .collect();
    assert_eq!(
        batches.iter().map(Vec::len).collect::<Vec<_>>(),
        [crate::limits::HISTORY_SECRETS_PER_BATCH, 2]
    );
    assert_eq!(batches[0][0], "1@s.whatsapp.net|S0");
    assert_eq!(batches[1][1], format!("1@s.whatsapp.net|S{}", count - 2));
}
