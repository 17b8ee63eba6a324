#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use prost::Message as _;

use super::*;

fn text(id: &str, chat: &str, text: &str, at: u64, from_me: bool) -> wa::HistorySyncMsg {
    wa::HistorySyncMsg {
        message: Some(wa::WebMessageInfo {
            key: Some(wa::MessageKey {
                remote_jid: Some(chat.to_owned()),
                from_me: Some(from_me),
                id: Some(id.to_owned()),
                participant: None,
            }),
            message: Some(wa::Message {
                conversation: Some(text.to_owned()),
                ..Default::default()
            }),
            message_timestamp: Some(at),
            ..Default::default()
        }),
        msg_order_id: Some(at),
    }
}

fn sample(messages_per_chat: usize) -> wa::HistorySync {
    let chats = ["1@s.whatsapp.net", "2@s.whatsapp.net", "3@g.us"];
    wa::HistorySync {
        sync_type: Some(wa::message::HistorySyncType::Recent as i32),
        conversations: chats
            .iter()
            .enumerate()
            .map(|(c, chat)| wa::Conversation {
                id: Some((*chat).to_owned()),
                name: Some(format!("chat {c}")),
                unread_count: Some(c as u32),
                messages: (0..messages_per_chat)
                    .map(|m| {
                        text(
                            &format!("{c}-{m}"),
                            chat,
                            &format!("text {m}"),
                            100 + m as u64,
                            m % 2 == 0,
                        )
                    })
                    .collect(),
                pn_jid: Some(format!("{c}@s.whatsapp.net")),
                lid_jid: Some(format!("9{c}@lid")),
                ..Default::default()
            })
            .collect(),
        chunk_order: Some(3),
        progress: Some(42),
        pushnames: vec![wa::Pushname {
            id: Some("1@s.whatsapp.net".into()),
            pushname: Some("One".into()),
        }],
        thread_id_user_secret: Some(vec![7; 32]),
        phone_number_to_lid_mappings: vec![wa::PhoneNumberToLidMapping {
            pn_jid: Some("5@s.whatsapp.net".into()),
            lid_jid: Some("55@lid".into()),
        }],
        ..Default::default()
    }
}

/// What prost's whole-message decode says, as items in the decoder's order.
fn expected(history: &wa::HistorySync) -> Vec<HistoryItem> {
    let mut items = Vec::new();
    for conversation in &history.conversations {
        let mut meta = conversation.clone();
        meta.messages.clear();
        items.push(HistoryItem::Conversation(Box::new(meta)));
        for entry in &conversation.messages {
            let mut info = entry.message.clone().unwrap();
            let message = info.message.take();
            items.push(HistoryItem::Message(Box::new(HistoryMessage {
                chat: conversation.id.clone().unwrap(),
                info,
                message_bytes: message
                    .as_ref()
                    .map(|m| m.encode_to_vec())
                    .unwrap_or_default(),
                message,
            })));
        }
    }
    items.extend(history.pushnames.iter().cloned().map(HistoryItem::PushName));
    items.extend(
        history
            .phone_number_to_lid_mappings
            .iter()
            .cloned()
            .map(HistoryItem::LidMapping),
    );
    items.push(HistoryItem::End(ChunkHeader {
        sync_type: history.sync_type,
        chunk_order: history.chunk_order,
        progress: history.progress,
    }));
    items
}

#[test]
fn a_blob_decodes_to_what_prost_reads_in_order() {
    let history = sample(5);
    let items = decode_all(compress_for_testing(&history)).unwrap();
    assert_eq!(items, expected(&history));
}

#[test]
fn a_blob_larger_than_many_steps_decodes_a_piece_at_a_time() {
    // About 2 MiB inflated: many inflate steps, and conversations that straddle them.
    let history = sample(20_000);
    let compressed = compress_for_testing(&history);
    let inflated = history.encoded_len();
    assert!(inflated > 20 * HISTORY_INFLATE_STEP);
    let mut decoder = HistoryDecoder::new(compressed);
    let mut largest_window = 0;
    let mut count = 0;
    let want = expected(&history);
    while let Some(item) = decoder.next_item().unwrap() {
        assert_eq!(item, want[count]);
        count += 1;
        largest_window = largest_window.max(decoder.window.capacity());
    }
    assert_eq!(count, want.len());
    // One conversation (about a third of the blob) and a step or two, never the whole.
    let conversation = history.conversations[0].encoded_len();
    assert!(
        largest_window < 2 * conversation + 4 * HISTORY_INFLATE_STEP,
        "{largest_window}"
    );
    assert!(largest_window < inflated, "{largest_window} of {inflated}");
}

#[test]
fn every_cut_of_the_stream_is_refused_as_truncated_or_corrupt() {
    let compressed = compress_for_testing(&sample(3));
    for cut in 0..compressed.len() {
        let result = decode_all(compressed[..cut].to_vec());
        assert!(
            matches!(
                result,
                Err(HistoryDecodeError::Truncated | HistoryDecodeError::Corrupt)
            ),
            "cut {cut}: {result:?}"
        );
    }
}

#[test]
fn a_flipped_bit_never_panics_and_never_yields_other_items() {
    let history = sample(3);
    let compressed = compress_for_testing(&history);
    let want = expected(&history);
    for at in 0..compressed.len() {
        for bit in 0..8 {
            let mut bad = compressed.clone();
            bad[at] ^= 1 << bit;
            // Refused, or (a padding bit after the last block) read as it was.
            match decode_all(bad) {
                Err(_) => {}
                Ok(items) => assert_eq!(items, want, "flip at {at} bit {bit}"),
            }
        }
    }
    // A flip in the Adler-32 trailer is caught.
    let mut bad = compressed.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert_eq!(decode_all(bad), Err(HistoryDecodeError::Corrupt));
}

#[test]
fn an_element_over_its_bound_is_refused_before_it_is_held() {
    // A conversation announcing more than the bound: refused from its length alone.
    let mut wire = vec![0x12];
    let mut len = HISTORY_MAX_ITEM_BYTES as u64 + 1;
    while len >= 0x80 {
        wire.push((len as u8) | 0x80);
        len >>= 7;
    }
    wire.push(len as u8);
    wire.extend_from_slice(&[0; 64]);
    let compressed = miniz_oxide::deflate::compress_to_vec_zlib(&wire, 6);
    assert_eq!(
        decode_all(compressed),
        Err(HistoryDecodeError::TooLarge("history element"))
    );
}

#[test]
fn skipped_fields_are_dropped_without_being_held() {
    // A large field the decoder does not read (status messages, 3) is skipped across steps.
    let history = wa::HistorySync {
        sync_type: Some(1),
        status_v3_messages: vec![wa::WebMessageInfo {
            push_name: Some("x".repeat(HISTORY_MAX_ITEM_BYTES + 10)),
            ..Default::default()
        }],
        progress: Some(7),
        ..Default::default()
    };
    let items = decode_all(compress_for_testing(&history)).unwrap();
    assert_eq!(
        items,
        [HistoryItem::End(ChunkHeader {
            sync_type: Some(1),
            chunk_order: None,
            progress: Some(7),
        })]
    );
}

#[test]
fn a_conversation_without_id_or_a_bad_message_is_malformed() {
    let mut history = sample(1);
    history.conversations[0].id = None;
    assert_eq!(
        decode_all(compress_for_testing(&history)),
        Err(HistoryDecodeError::Malformed("conversation without id"))
    );
    // A message whose content is not a Message.
    let mut wire = Vec::new();
    let conversation = {
        let mut c = vec![0x0a, 1, b'x'];
        let entry = [0x0a, 4, 0x12, 2, 0x0a, 0xff];
        c.push(0x12);
        c.push(entry.len() as u8);
        c.extend_from_slice(&entry);
        c
    };
    wire.push(0x12);
    wire.push(conversation.len() as u8);
    wire.extend_from_slice(&conversation);
    let mut decoder = HistoryDecoder::new(miniz_oxide::deflate::compress_to_vec_zlib(&wire, 6));
    assert!(matches!(
        decoder.next_item(),
        Ok(Some(HistoryItem::Conversation(_)))
    ));
    assert!(decoder.next_item().is_err());
    assert_eq!(decoder.next_item(), Ok(None));
}

#[test]
fn codes_are_stable() {
    assert_eq!(HistoryDecodeError::Corrupt.code(), "corrupt");
    assert_eq!(HistoryDecodeError::TooLarge("x").code(), "too_large");
}
