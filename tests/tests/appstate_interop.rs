//! walink's app-state sync against Baileys 7 and whatsapp-rust-bridge (tests/oracle/appstate.mjs):
//! key expansion, LTHash and the four MACs equal the bridge's on the same inputs; patches
//! walink encodes decode and verify in Baileys' `decodeSyncdPatch` (same LTHash, same MACs,
//! same actions) for every action; patches Baileys encodes (`encodeSyncdPatch`) and snapshots
//! built in JavaScript decode and verify in walink, and walink's snapshots in Baileys'
//! `decodeSyncdSnapshot`.

use std::collections::BTreeMap;
use std::convert::Infallible;

use prost::Message as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use walink_core::appstate::{
    Collection, CollectionState, KeyId, KeyRing, LtHash, MessageRange, MessageRef, MutationKeys,
    MuteUntil, Operation, SyncAction, SyncKey, encode_patch, encode_snapshot,
};
use walink_core::proto::wa;
use walink_sim::oracle::Oracle;

type Oops = Box<dyn std::error::Error>;

/// Deterministic bytes: SHA-256 of a seed and a counter (the seed is in each test).
struct Rng(u64, u64);

impl Rng {
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        rand_core::TryRng::try_fill_bytes(self, &mut out).unwrap_or(());
        out
    }
}

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

fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn bytes(value: &Value) -> Result<Vec<u8>, Oops> {
    Ok(hex::decode(value.as_str().ok_or("not a string")?)?)
}

fn sync_key(id: &[u8], data: [u8; 32]) -> Result<SyncKey, Oops> {
    Ok(SyncKey::new(KeyId::new(id)?, data, None, 1_700_000_000_000))
}

fn keys_json(keys: &[&SyncKey]) -> Value {
    let map: serde_json::Map<String, Value> = keys
        .iter()
        .map(|k| (base64(k.id().as_bytes()), json!(hex::encode(k.data()))))
        .collect();
    Value::Object(map)
}

fn state_json(state: &CollectionState) -> Value {
    let map: serde_json::Map<String, Value> = state
        .index_value_macs()
        .iter()
        .map(|(index, value)| (base64(index), json!(hex::encode(value))))
        .collect();
    json!({
        "version": state.version(),
        "hash": hex::encode(state.hash().as_bytes()),
        "indexValueMap": map,
    })
}

fn assert_state_matches(ours: &CollectionState, theirs: &Value, what: &str) {
    assert_eq!(state_json(ours), *theirs, "{what}");
}

const CHAT: &str = "15551234567@s.whatsapp.net";

fn range() -> MessageRange {
    MessageRange {
        last_message_timestamp: 1_700_000_100,
        last_system_message_timestamp: None,
        messages: vec![MessageRef {
            id: "3EB0AAAA".into(),
            from_me: true,
            participant: None,
            timestamp: 1_700_000_100,
        }],
    }
}

fn range_json() -> Value {
    json!({
        "lastMessageTimestamp": 1_700_000_100,
        "messages": [{ "remoteJid": CHAT, "fromMe": true, "id": "3EB0AAAA", "timestamp": 1_700_000_100 }],
    })
}

/// Every action walink encodes, for the walink → Baileys direction.
fn walink_actions() -> Vec<SyncAction> {
    vec![
        SyncAction::Mute {
            chat: CHAT.into(),
            until: MuteUntil::Until(1_800_000_000_000),
        },
        SyncAction::Mute {
            chat: CHAT.into(),
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
            from_me: true,
            participant: None,
            starred: true,
        },
        SyncAction::Star {
            chat: "120363000000000000@g.us".into(),
            message_id: "3EB0CCCC".into(),
            from_me: false,
            participant: Some("15550000000@s.whatsapp.net".into()),
            starred: true,
        },
        SyncAction::Star {
            chat: CHAT.into(),
            message_id: "3EB0BBBB".into(),
            from_me: true,
            participant: None,
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
            name: "Clients ✓".into(),
            color: 3,
            deleted: false,
            predefined_id: Some(2),
        },
        SyncAction::LabelChat {
            label_id: "5".into(),
            chat: CHAT.into(),
            labeled: true,
        },
        SyncAction::LabelChat {
            label_id: "5".into(),
            chat: CHAT.into(),
            labeled: false,
        },
        SyncAction::LabelMessage {
            label_id: "5".into(),
            chat: CHAT.into(),
            message_id: "3EB0DDDD".into(),
            labeled: true,
        },
    ]
}

#[test]
fn key_expansion_lthash_and_macs_match_the_bridge() -> Result<(), Oops> {
    let mut oracle = Oracle::spawn("appstate.mjs")?;
    let mut rng = Rng(11, 0);
    for round in 0..8 {
        let key_data = rng.bytes(32);
        let theirs = oracle.call("expandKeys", json!({ "keyData": hex::encode(&key_data) }))?;
        let ours = MutationKeys::expand(&key_data);
        assert_eq!(
            ours.index_key().to_vec(),
            bytes(&theirs["indexKey"])?,
            "{round}"
        );
        assert_eq!(
            ours.value_encryption_key().to_vec(),
            bytes(&theirs["valueEncryptionKey"])?
        );
        assert_eq!(
            ours.value_mac_key().to_vec(),
            bytes(&theirs["valueMacKey"])?
        );
        assert_eq!(
            ours.snapshot_mac_key().to_vec(),
            bytes(&theirs["snapshotMacKey"])?
        );
        assert_eq!(
            ours.patch_mac_key().to_vec(),
            bytes(&theirs["patchMacKey"])?
        );

        // LTHash: a random base, some items subtracted, some added.
        let base: [u8; 128] = rng.bytes(128).try_into().map_err(|_| "len")?;
        let subtract: Vec<Vec<u8>> = (0..round).map(|_| rng.bytes(32)).collect();
        let add: Vec<Vec<u8>> = (0..round + 2).map(|i| rng.bytes(16 + i)).collect();
        let theirs = oracle.call(
            "ltHash",
            json!({
                "base": hex::encode(base),
                "subtract": subtract.iter().map(hex::encode).collect::<Vec<_>>(),
                "add": add.iter().map(hex::encode).collect::<Vec<_>>(),
            }),
        )?;
        let mut ours = LtHash::from_bytes(base);
        ours.subtract_then_add(&subtract, &add);
        assert_eq!(ours.as_bytes().to_vec(), bytes(&theirs)?, "lthash {round}");

        // The four MACs.
        let key_id = rng.bytes(6);
        let value = rng.bytes(48);
        let index = br#"["mute","1@s.whatsapp.net"]"#;
        let snapshot_mac = rng.bytes(32);
        let value_macs: Vec<Vec<u8>> = (0..round).map(|_| rng.bytes(32)).collect();
        let version = 1u64 << (round * 4);
        for operation in [Operation::Set, Operation::Remove] {
            let theirs = oracle.call(
                "macs",
                json!({
                    "keyData": hex::encode(&key_data),
                    // The bridge takes the byte that starts the MAC input (1 SET, 2 REMOVE).
                    "operation": operation.mac_byte(),
                    "keyId": hex::encode(&key_id),
                    "value": hex::encode(&value),
                    "index": hex::encode(index),
                    "hash": hex::encode(base),
                    "version": version,
                    "name": "regular_high",
                    "snapshotMac": hex::encode(&snapshot_mac),
                    "valueMacs": value_macs.iter().map(hex::encode).collect::<Vec<_>>(),
                }),
            )?;
            let keys = MutationKeys::expand(&key_data);
            assert_eq!(keys.index_mac(index).to_vec(), bytes(&theirs["indexMac"])?);
            assert_eq!(
                keys.value_mac(operation, &key_id, &value).to_vec(),
                bytes(&theirs["valueMac"])?,
                "{operation:?}"
            );
            assert_eq!(
                keys.snapshot_mac(&LtHash::from_bytes(base), version, "regular_high")
                    .to_vec(),
                bytes(&theirs["snapshotMac"])?
            );
            assert_eq!(
                keys.patch_mac(
                    &snapshot_mac,
                    value_macs.iter().map(Vec::as_slice),
                    version,
                    "regular_high"
                )
                .to_vec(),
                bytes(&theirs["patchMac"])?
            );
        }
    }
    Ok(())
}

#[test]
fn walink_patches_decode_and_verify_in_baileys_for_every_action() -> Result<(), Oops> {
    let mut oracle = Oracle::spawn("appstate.mjs")?;
    let key = sync_key(b"\x00\x00\x00\x00\x01\x07", [0x42; 32])?;
    let keys = keys_json(&[&key]);
    let mut rng = Rng(12, 0);
    let mut states: BTreeMap<Collection, CollectionState> = BTreeMap::new();
    let actions = walink_actions();
    // One patch per action, and one patch with several actions of a collection.
    let mut batches: Vec<Vec<SyncAction>> = actions.iter().cloned().map(|a| vec![a]).collect();
    batches.push(actions[..3].to_vec());
    batches.push(actions[16..].to_vec());
    for batch in batches {
        let collection = batch[0].collection()?;
        let state = states.entry(collection).or_default();
        let out = encode_patch(state, collection, &key, &batch, 1_700_000_000_123, &mut rng)?;
        let mut patch = out.patch.clone();
        patch.version = Some(wa::SyncdVersion {
            version: Some(out.state.version()),
        });
        let theirs = oracle.call(
            "decodePatch",
            json!({
                "patch": hex::encode(patch.encode_to_vec()),
                "name": collection.name(),
                "state": state_json(state),
                "keys": keys,
            }),
        )?;
        assert_eq!(theirs["snapshotMacOk"], json!(true), "{batch:?}");
        assert_state_matches(&out.state, &theirs["state"], &format!("{batch:?}"));
        let mutations = theirs["mutations"].as_array().ok_or("mutations")?;
        assert_eq!(mutations.len(), out.mutations.len());
        for (mine, theirs) in out.mutations.iter().zip(mutations) {
            let index: Vec<String> = serde_json::from_value(theirs["index"].clone())?;
            assert_eq!(index, mine.index);
            let value = wa::SyncActionValue::decode(bytes(&theirs["value"])?.as_slice())?;
            assert_eq!(Some(&value), mine.value.as_ref());
            assert_eq!(theirs["version"], json!(mine.action_version));
        }
        *state = out.state;
    }
    Ok(())
}

/// A Baileys ChatModification (JSON form of appstate.mjs) and the action walink must read.
fn baileys_modifications() -> Vec<(Value, SyncAction)> {
    vec![
        (
            json!({ "kind": "mute", "until": 1_800_000_000_000i64 }),
            SyncAction::Mute {
                chat: CHAT.into(),
                until: MuteUntil::Until(1_800_000_000_000),
            },
        ),
        (
            json!({ "kind": "mute", "until": -1 }),
            SyncAction::Mute {
                chat: CHAT.into(),
                until: MuteUntil::Forever,
            },
        ),
        (
            json!({ "kind": "mute", "until": null }),
            SyncAction::Unmute { chat: CHAT.into() },
        ),
        (
            json!({ "kind": "pin", "pinned": true }),
            SyncAction::Pin {
                chat: CHAT.into(),
                pinned: true,
            },
        ),
        (
            json!({ "kind": "pin", "pinned": false }),
            SyncAction::Pin {
                chat: CHAT.into(),
                pinned: false,
            },
        ),
        (
            json!({ "kind": "archive", "archived": true, "range": range_json() }),
            SyncAction::Archive {
                chat: CHAT.into(),
                archived: true,
                range: range(),
            },
        ),
        (
            json!({ "kind": "archive", "archived": false, "range": range_json() }),
            SyncAction::Archive {
                chat: CHAT.into(),
                archived: false,
                range: range(),
            },
        ),
        (
            json!({ "kind": "markRead", "read": false, "range": range_json() }),
            SyncAction::MarkRead {
                chat: CHAT.into(),
                read: false,
                range: range(),
            },
        ),
        (
            json!({ "kind": "markRead", "read": true, "range": range_json() }),
            SyncAction::MarkRead {
                chat: CHAT.into(),
                read: true,
                range: range(),
            },
        ),
        (
            json!({ "kind": "star", "id": "3EB0BBBB", "fromMe": true, "starred": true }),
            SyncAction::Star {
                chat: CHAT.into(),
                message_id: "3EB0BBBB".into(),
                from_me: true,
                participant: None,
                starred: true,
            },
        ),
        (
            json!({ "kind": "star", "id": "3EB0BBBB", "fromMe": true, "starred": false }),
            SyncAction::Star {
                chat: CHAT.into(),
                message_id: "3EB0BBBB".into(),
                from_me: true,
                participant: None,
                starred: false,
            },
        ),
        (
            json!({ "kind": "delete", "range": range_json() }),
            SyncAction::DeleteChat {
                chat: CHAT.into(),
                range: range(),
            },
        ),
        (
            json!({ "kind": "clear", "range": range_json() }),
            SyncAction::ClearChat {
                chat: CHAT.into(),
                range: range(),
            },
        ),
        (
            json!({ "kind": "contact", "contact": { "fullName": "Ada Lovelace", "firstName": "Ada" } }),
            SyncAction::Contact {
                jid: CHAT.into(),
                full_name: Some("Ada Lovelace".into()),
                first_name: Some("Ada".into()),
            },
        ),
        (
            json!({ "kind": "contact", "contact": null }),
            SyncAction::RemoveContact { jid: CHAT.into() },
        ),
        (
            json!({ "kind": "addLabel", "label": { "id": "5", "name": "Clients", "color": 3, "deleted": false, "predefinedId": 2 } }),
            SyncAction::LabelEdit {
                label_id: "5".into(),
                name: "Clients".into(),
                color: 3,
                deleted: false,
                predefined_id: Some(2),
            },
        ),
        (
            json!({ "kind": "addChatLabel", "labelId": "5" }),
            SyncAction::LabelChat {
                label_id: "5".into(),
                chat: CHAT.into(),
                labeled: true,
            },
        ),
        (
            json!({ "kind": "removeChatLabel", "labelId": "5" }),
            SyncAction::LabelChat {
                label_id: "5".into(),
                chat: CHAT.into(),
                labeled: false,
            },
        ),
        (
            json!({ "kind": "addMessageLabel", "labelId": "5", "messageId": "3EB0DDDD" }),
            SyncAction::LabelMessage {
                label_id: "5".into(),
                chat: CHAT.into(),
                message_id: "3EB0DDDD".into(),
                labeled: true,
            },
        ),
        (
            json!({ "kind": "removeMessageLabel", "labelId": "5", "messageId": "3EB0DDDD" }),
            SyncAction::LabelMessage {
                label_id: "5".into(),
                chat: CHAT.into(),
                message_id: "3EB0DDDD".into(),
                labeled: false,
            },
        ),
    ]
}

#[test]
fn baileys_patches_decode_and_verify_in_walink_for_every_action() -> Result<(), Oops> {
    let mut oracle = Oracle::spawn("appstate.mjs")?;
    let key = sync_key(b"\x00\x00\x00\x00\x02\x09", [0x17; 32])?;
    let mut ring = KeyRing::new();
    ring.insert(key.clone());
    let mut states: BTreeMap<Collection, CollectionState> = BTreeMap::new();
    for (modification, expected) in baileys_modifications() {
        // Baileys files stars under regular_low; walink reads whatever collection it is given.
        let probe = oracle.call(
            "encodePatch",
            json!({
                "modification": modification,
                "jid": CHAT,
                "keyId": base64(key.id().as_bytes()),
                "keys": keys_json(&[&key]),
                "state": state_json(&CollectionState::new()),
            }),
        )?;
        let collection = Collection::from_name(probe["type"].as_str().ok_or("type")?)?;
        let state = states.entry(collection).or_default();
        let theirs = oracle.call(
            "encodePatch",
            json!({
                "modification": modification,
                "jid": CHAT,
                "keyId": base64(key.id().as_bytes()),
                "keys": keys_json(&[&key]),
                "state": state_json(state),
            }),
        )?;
        let patch = wa::SyncdPatch::decode(bytes(&theirs["patch"])?.as_slice())?;
        let applied = state.apply_patch(collection, &patch, None, &ring)?;
        // Baileys' encoder keeps a REMOVEd index in the state it returns (encodeSyncdPatch sets
        // indexValueMap[index] after the LTHash update whatever the operation); its decoder
        // does not. walink matches the decoder, and the LTHash of both.
        let decoded = oracle.call(
            "decodePatch",
            json!({
                "patch": theirs["patch"],
                "name": collection.name(),
                "state": state_json(state),
                "keys": keys_json(&[&key]),
            }),
        )?;
        assert_eq!(decoded["snapshotMacOk"], json!(true));
        assert_state_matches(
            &applied.state,
            &decoded["state"],
            &format!("{modification}"),
        );
        assert_eq!(
            json!(hex::encode(applied.state.hash().as_bytes())),
            theirs["state"]["hash"]
        );
        assert_eq!(applied.mutations.len(), 1);
        assert_eq!(
            SyncAction::from_mutation(&applied.mutations[0]),
            expected,
            "{modification}"
        );
        // A tampered copy fails and leaves the state as it was.
        let mut bad = patch.clone();
        if let Some(mac) = bad.patch_mac.as_mut() {
            mac[3] ^= 0x10;
        }
        assert!(state.apply_patch(collection, &bad, None, &ring).is_err());
        *state = applied.state;
    }
    Ok(())
}

#[test]
fn snapshots_cross_both_ways() -> Result<(), Oops> {
    let mut oracle = Oracle::spawn("appstate.mjs")?;
    let key = sync_key(b"\x00\x00\x00\x00\x03\x01", [0x99; 32])?;
    let mut ring = KeyRing::new();
    ring.insert(key.clone());

    // Baileys → walink: a regular_high snapshot of mutes, stars, deletes and clears on many
    // chats (distinct indexes), built in JavaScript.
    let mut modifications = Vec::new();
    let mut expected = Vec::new();
    for i in 0..30 {
        let jid = format!("1555000{i:04}@s.whatsapp.net");
        let (m, action) = match i % 3 {
            0 => (
                json!({ "kind": "mute", "until": 1_800_000_000_000i64 + i, "jid": jid }),
                SyncAction::Mute {
                    chat: jid.clone(),
                    until: MuteUntil::Until(1_800_000_000_000 + i),
                },
            ),
            1 => (
                json!({ "kind": "mute", "until": -1, "jid": jid }),
                SyncAction::Mute {
                    chat: jid.clone(),
                    until: MuteUntil::Forever,
                },
            ),
            _ => (
                json!({ "kind": "delete", "range": range_json(), "jid": jid }),
                SyncAction::DeleteChat {
                    chat: jid.clone(),
                    range: MessageRange {
                        messages: vec![MessageRef {
                            id: "3EB0AAAA".into(),
                            from_me: true,
                            participant: None,
                            timestamp: 1_700_000_100,
                        }],
                        ..range()
                    },
                },
            ),
        };
        modifications.push(m);
        expected.push(action);
    }
    let theirs = oracle.call(
        "encodeSnapshot",
        json!({
            "modifications": modifications,
            "jid": CHAT,
            "keyId": base64(key.id().as_bytes()),
            "keys": keys_json(&[&key]),
            "version": 42,
            "name": "regular_high",
        }),
    )?;
    let snapshot = wa::SyncdSnapshot::decode(bytes(&theirs["snapshot"])?.as_slice())?;
    let applied = CollectionState::apply_snapshot(Collection::RegularHigh, &snapshot, &ring)?;
    assert_eq!(applied.state.version(), 42);
    assert_eq!(
        applied.state.hash().as_bytes().to_vec(),
        bytes(&theirs["hash"])?
    );
    let actions: Vec<_> = applied
        .mutations
        .iter()
        .map(SyncAction::from_mutation)
        .collect();
    assert_eq!(actions, expected);
    let mut tampered = snapshot.clone();
    tampered.records.swap(0, 1);
    tampered.records.pop();
    assert!(CollectionState::apply_snapshot(Collection::RegularHigh, &tampered, &ring).is_err());

    // walink → Baileys: every regular_low action on distinct chats.
    let mut rng = Rng(13, 0);
    let actions: Vec<_> = (0..25)
        .map(|i| {
            let chat = format!("1666000{i:04}@s.whatsapp.net");
            match i % 3 {
                0 => SyncAction::Pin { chat, pinned: true },
                1 => SyncAction::Archive {
                    chat,
                    archived: true,
                    range: range(),
                },
                _ => SyncAction::MarkRead {
                    chat,
                    read: false,
                    range: range(),
                },
            }
        })
        .collect();
    let snapshot = encode_snapshot(Collection::RegularLow, &key, 17, &actions, 5, &mut rng)?;
    let ours = CollectionState::apply_snapshot(Collection::RegularLow, &snapshot, &ring)?;
    let theirs = oracle.call(
        "decodeSnapshot",
        json!({
            "snapshot": hex::encode(snapshot.encode_to_vec()),
            "name": "regular_low",
            "keys": keys_json(&[&key]),
        }),
    )?;
    assert_state_matches(&ours.state, &theirs["state"], "walink snapshot");
    assert_eq!(
        theirs["mutations"].as_array().map(Vec::len),
        Some(actions.len())
    );
    Ok(())
}

#[test]
fn indexes_serialize_as_json_stringify_does() -> Result<(), Oops> {
    let mut oracle = Oracle::spawn("appstate.mjs")?;
    let key = sync_key(b"\x00\x00\x00\x00\x04\x02", [0x31; 32])?;
    let mut rng = Rng(14, 0);
    let odd = [
        "plain",
        "quote \" and backslash \\",
        "controls \u{1}\u{8}\u{c}\n\r\t\u{1f}",
        "non-ASCII é 😀 \u{2028}\u{2029}",
        "html <b>&amp;</b> / slash",
        "\u{7f}\u{0}",
    ];
    for id in odd {
        let action = SyncAction::Star {
            chat: CHAT.into(),
            message_id: id.into(),
            from_me: false,
            participant: None,
            starred: true,
        };
        let out = encode_patch(
            &CollectionState::new(),
            Collection::RegularHigh,
            &key,
            std::slice::from_ref(&action),
            1,
            &mut rng,
        )?;
        let theirs = oracle.call(
            "indexMac",
            json!({ "index": action.index()?, "keyData": hex::encode(key.data()) }),
        )?;
        assert_eq!(
            out.mutations[0].index_mac.to_vec(),
            bytes(&theirs)?,
            "{id:?}"
        );
    }
    Ok(())
}
