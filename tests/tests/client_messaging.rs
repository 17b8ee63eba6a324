//! walink's messaging layer against Baileys 7 (its binary codec, its offline message decoding
//! `decryptMessageNode`, its retry-receipt key extraction, its ack builder) and libsignal-node
//! (the sessions and sender keys under Baileys): stanzas walink builds decode and decrypt there,
//! and what Baileys encrypts decrypts in walink.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod messaging_support;

use messaging_support::*;
use serde_json::json;
use walink_core::client::messaging::content::text_message;
use walink_core::client::messaging::id::{MESSAGE_ID_LEN, generate_message_id, is_generated_id};
use walink_core::client::messaging::incoming::parse_message;
use walink_core::client::messaging::outgoing::{
    DirectMessage, GroupMessage, build_direct, build_group, participant_hash,
};
use walink_core::client::messaging::prekeys::{build_keys_node, parse_prekey_reply};
use walink_core::client::messaging::receipt::{build_ack, build_retry_receipt};
use walink_core::client::messaging::routing::deliver;

const T: u64 = 1_700_000_000;

/// The group `phash` equals Node's SHA-256 over the devices in WhatsApp Web's AD form
/// (`user.0:device@server`, each JID split by Baileys' `jidDecode`), and walink-sim's own
/// implementation agrees. Baileys' `generateParticipantHashV2` hashes the plain JID strings
/// and keeps 6 base64 characters, so it differs (docs/messaging.md).
#[test]
fn participant_hash_is_the_ad_form_hash() {
    let mut oracle = oracle();
    let cases: Vec<Vec<&str>> = vec![
        vec!["15551234567@s.whatsapp.net"],
        vec![
            "15551234567:3@s.whatsapp.net",
            "15551234567@s.whatsapp.net",
            "4915112345678@s.whatsapp.net",
            "4915112345678:12@s.whatsapp.net",
        ],
        vec![
            "123456789012345:7@lid",
            "987654321@lid",
            "123456789012345@lid",
        ],
    ];
    for jids in cases {
        let parsed: Vec<walink_core::binary::Jid> =
            jids.iter().map(|j| j.parse().unwrap()).collect();
        let ours = participant_hash(&parsed);
        let answer = call(&mut oracle, "participantHash", json!({ "jids": jids }));
        assert_eq!(ours, answer["computed"].as_str().unwrap(), "{jids:?}");
        assert_eq!(ours.len(), 10, "{ours}");
        assert_ne!(ours, answer["baileys"].as_str().unwrap());
        assert_eq!(walink_sim::sim::server::participant_hash(&parsed), ours);
    }
}

#[test]
fn message_ids_match_the_reference_format() {
    let mut oracle = oracle();
    for (i, user) in ["15551234567", "4915112345678", "1"].iter().enumerate() {
        let random: [u8; 16] = core::array::from_fn(|j| (i * 31 + j * 7) as u8);
        let now = T * 1000 + i as u64 * 123_456;
        let id = generate_message_id(now, Some(user), &random);
        let answer = call(
            &mut oracle,
            "messageId",
            json!({ "seconds": now / 1000, "user": user, "random": hex::encode(random) }),
        );
        assert_eq!(id, answer["computed"].as_str().unwrap());
        let baileys = answer["baileys"].as_str().unwrap();
        assert_eq!(baileys.len(), MESSAGE_ID_LEN);
        assert!(is_generated_id(baileys), "{baileys}");
        assert!(is_generated_id(&id));
    }
}

fn connect_to_baileys(
    oracle: &mut walink_sim::oracle::Oracle,
    device: &mut Device,
    name: &str,
    jid: &str,
) {
    let reply = call(oracle, "bundleReply", json!({ "name": name, "jid": jid }));
    let node = decode_hex(reply.as_str().unwrap());
    let bundles = parse_prekey_reply(&node).unwrap();
    assert_eq!(bundles.len(), 1);
    let (address, bundle) = &bundles[0];
    assert_eq!(address.to_string(), jid);
    let mut rng = SeededRng(device.rng.0 ^ 1);
    device
        .keystore
        .process_bundle(address, bundle.as_ref().unwrap(), &mut rng)
        .unwrap();
    device.persist();
}

fn direct(
    device: &mut Device,
    to: &str,
    peers: &[&str],
    own: &[&str],
    text: &str,
    id: &str,
) -> walink_core::binary::Node {
    let peers: Vec<_> = peers.iter().map(|p| addr(p)).collect();
    let own: Vec<_> = own.iter().map(|p| addr(p)).collect();
    let to = addr(to);
    let message = text_message(text, Some([5; 32]));
    let mut rng = SeededRng(device.rng.0 ^ 2);
    device.rng.0 = device.rng.0.wrapping_add(1);
    let out = build_direct(
        &mut device.keystore,
        &DirectMessage {
            id,
            to: &to,
            message: &message,
            peer_devices: &peers,
            own_devices: &own,
            device_identity: b"adv-device-identity",
        },
        &mut rng,
    )
    .unwrap();
    assert!(out.skipped.is_empty());
    device.persist();
    out.node
}

/// 1:1 both ways, with walink's own-device copy decrypted and unwrapped by Baileys.
#[test]
fn direct_messages_interoperate_with_baileys() {
    let mut oracle = oracle();
    call(
        &mut oracle,
        "party",
        json!({ "name": "bob", "me": "222:3@s.whatsapp.net" }),
    );
    call(
        &mut oracle,
        "party",
        json!({ "name": "own", "me": "111:2@s.whatsapp.net" }),
    );
    let mut alice = Device::new("111:1@s.whatsapp.net", 11);
    connect_to_baileys(&mut oracle, &mut alice, "bob", "222:3@s.whatsapp.net");
    connect_to_baileys(&mut oracle, &mut alice, "own", "111:2@s.whatsapp.net");
    let sender = alice.address();
    for round in 0..6 {
        let id = format!("3EB0{round:018X}");
        let text = format!("walink to bob {round}");
        let stanza = direct(
            &mut alice,
            "222@s.whatsapp.net",
            &["222:3@s.whatsapp.net"],
            &["111:1@s.whatsapp.net", "111:2@s.whatsapp.net"],
            &text,
            &id,
        );
        // The stanza as built decodes in Baileys to exactly the same tree.
        let decoded = call(
            &mut oracle,
            "decode",
            json!({ "bytes": encode_hex(&stanza) }),
        );
        assert_eq!(decoded, node_json(&stanza), "round {round}");
        for (name, jid, from_me) in [
            ("bob", "222:3@s.whatsapp.net", false),
            ("own", "111:2@s.whatsapp.net", true),
        ] {
            let delivered = deliver(&stanza, &sender, &addr(jid), T + round).unwrap();
            let got = call(
                &mut oracle,
                "receive",
                json!({ "name": name, "bytes": encode_hex(&delivered) }),
            );
            assert_eq!(got["stub"], json!(null), "{name} round {round}: {got}");
            assert_eq!(got["conversation"], json!(text), "{name} round {round}");
            assert_eq!(got["key"]["fromMe"], json!(from_me));
            assert_eq!(got["key"]["id"], json!(id));
            // Baileys names the chat by the sending device for a peer's message, and by the
            // `recipient` for our own device's copy.
            let chat = if from_me {
                "222@s.whatsapp.net"
            } else {
                "111:1@s.whatsapp.net"
            };
            assert_eq!(got["key"]["remoteJid"], json!(chat));
        }
        // Bob answers every other round; afterwards walink sends `msg`, not `pkmsg`.
        if round % 2 == 1 {
            let reply = call(
                &mut oracle,
                "sendDirect",
                json!({ "name": "bob", "to": "111:1@s.whatsapp.net", "id": format!("{id}R"), "text": format!("bob {round}"), "t": T }),
            );
            let node = decode_hex(reply["bytes"].as_str().unwrap());
            assert_eq!(
                alice.receive(&node).as_deref(),
                Some(format!("bob {round}").as_str())
            );
        }
        let bob_enc = stanza.child("participants").unwrap().children()[0]
            .child("enc")
            .unwrap()
            .attr_str("type")
            .unwrap()
            .to_owned();
        assert_eq!(
            bob_enc,
            if round < 2 { "pkmsg" } else { "msg" },
            "round {round}"
        );
    }
}

/// Groups both ways: walink's sender key (distributed in a pkmsg beside the skmsg) decrypts in
/// Baileys, and Baileys' in walink.
#[test]
fn group_messages_interoperate_with_baileys() {
    let mut oracle = oracle();
    let group = "120363021234567890@g.us";
    call(
        &mut oracle,
        "party",
        json!({ "name": "bob", "me": "222:3@s.whatsapp.net" }),
    );
    let mut alice = Device::new("111:1@s.whatsapp.net", 12);
    connect_to_baileys(&mut oracle, &mut alice, "bob", "222:3@s.whatsapp.net");
    let members = [addr("222:3@s.whatsapp.net"), addr("111:1@s.whatsapp.net")];
    let sender = alice.address();
    for round in 0..5u64 {
        let id = format!("3EB0{round:018X}");
        let text = format!("group {round}");
        let message = text_message(&text, None);
        let mut rng = SeededRng(700 + round);
        let out = build_group(
            &mut alice.keystore,
            &GroupMessage {
                id: &id,
                group,
                message: &message,
                member_devices: &members,
                device_identity: b"adv",
                addressing_mode: Some("pn"),
            },
            &mut rng,
        )
        .unwrap();
        alice.persist();
        assert_eq!(out.node.child("participants").is_some(), round == 0);
        let decoded = call(
            &mut oracle,
            "decode",
            json!({ "bytes": encode_hex(&out.node) }),
        );
        assert_eq!(decoded, node_json(&out.node));
        let delivered = deliver(&out.node, &sender, &addr("222:3@s.whatsapp.net"), T).unwrap();
        let got = call(
            &mut oracle,
            "receive",
            json!({ "name": "bob", "bytes": encode_hex(&delivered) }),
        );
        assert_eq!(got["stub"], json!(null), "round {round}: {got}");
        assert_eq!(got["conversation"], json!(text));
        assert_eq!(got["key"]["remoteJid"], json!(group));
        assert_eq!(got["key"]["participant"], json!("111:1@s.whatsapp.net"));
    }
    // Baileys' sender key in walink: first with the distribution, then without.
    for round in 0..5u64 {
        let bytes = call(
            &mut oracle,
            "sendGroup",
            json!({ "name": "bob", "group": group, "to": "111:1@s.whatsapp.net", "id": format!("B{round}"), "text": format!("from bob {round}"), "t": T, "distribute": round == 0 }),
        );
        let node = decode_hex(bytes.as_str().unwrap());
        assert_eq!(
            alice.receive(&node).as_deref(),
            Some(format!("from bob {round}").as_str())
        );
    }
}

/// A retry receipt's `<keys>` block is accepted by Baileys' extractor, and the session Baileys
/// starts from it decrypts in walink.
#[test]
fn retry_receipt_keys_start_a_baileys_session() {
    let mut oracle = oracle();
    call(
        &mut oracle,
        "party",
        json!({ "name": "bob", "me": "222:3@s.whatsapp.net" }),
    );
    let mut alice = Device::new("111:1@s.whatsapp.net", 13);
    // A message from Bob that Alice cannot decrypt (she has no session).
    let stanza_from_bob = {
        let mut other = Device::new("111:9@s.whatsapp.net", 99);
        connect_to_baileys(&mut oracle, &mut other, "bob", "222:3@s.whatsapp.net");
        let reply = direct(
            &mut other,
            "222@s.whatsapp.net",
            &["222:3@s.whatsapp.net"],
            &[],
            "x",
            "3EB0000000000000000000",
        );
        let delivered =
            deliver(&reply, &other.address(), &addr("222:3@s.whatsapp.net"), T).unwrap();
        call(
            &mut oracle,
            "receive",
            json!({ "name": "bob", "bytes": encode_hex(&delivered) }),
        );
        let answer = call(
            &mut oracle,
            "sendDirect",
            json!({ "name": "bob", "to": "111:9@s.whatsapp.net", "id": "3EB0ABCDEF0123456789AB", "text": "lost", "t": T }),
        );
        let mut node = decode_hex(answer["bytes"].as_str().unwrap());
        node.set_attr(
            "from",
            walink_core::binary::Value::Jid("222:3@s.whatsapp.net".parse().unwrap()),
        );
        node
    };
    let parsed = parse_message(&stanza_from_bob, alice.keystore.own()).unwrap();
    let pre_key = alice.fresh_pre_key();
    let keys = build_keys_node(
        &alice.identity.identity_key(),
        (pre_key.id, &pre_key.key_pair.public),
        (
            alice.pre_keys.signed.id,
            &alice.pre_keys.signed.key_pair.public,
            &alice.pre_keys.signed.signature,
        ),
        b"adv",
    );
    let mut receipt = build_retry_receipt(&parsed, 2, alice.registration_id, Some(keys));
    let retry = receipt.child("retry").unwrap();
    assert_eq!(retry.attr_str("count"), Some("2"));
    assert_eq!(retry.attr_str("v"), Some("1"));
    // As the server delivers it to Bob.
    receipt.set_attr(
        "from",
        walink_core::binary::Value::Jid(alice.address().to_jid()),
    );
    let injected = call(
        &mut oracle,
        "injectReply",
        json!({ "name": "bob", "bytes": encode_hex(&receipt) }),
    );
    assert_eq!(injected["registrationId"], json!(alice.registration_id));
    let answer = call(
        &mut oracle,
        "sendDirect",
        json!({ "name": "bob", "to": "111:1@s.whatsapp.net", "id": "3EB0ABCDEF0123456789AB", "text": "again", "t": T }),
    );
    assert_eq!(answer["type"], json!("pkmsg"));
    let node = decode_hex(answer["bytes"].as_str().unwrap());
    assert_eq!(alice.receive(&node).as_deref(), Some("again"));
    assert!(
        !alice.pre_keys.one_time.contains_key(&pre_key.id.0),
        "the prekey was consumed"
    );
}

/// The ack walink builds equals the one Baileys builds (WA Web's rules) for messages,
/// receipts and notifications.
#[test]
fn acks_match_baileys() {
    let mut oracle = oracle();
    let own: walink_core::binary::Jid = "111:1@s.whatsapp.net".parse().unwrap();
    let cases = [
        json!({ "tag": "message", "attrs": { "id": "A1", "from": "120363021234567890@g.us", "participant": "222:3@s.whatsapp.net", "type": "text", "t": "1" }, "content": null }),
        json!({ "tag": "receipt", "attrs": { "id": "A2", "from": "222@s.whatsapp.net", "type": "read" }, "content": null }),
        json!({ "tag": "notification", "attrs": { "id": "A3", "from": "s.whatsapp.net", "type": "encrypt" }, "content": null }),
        json!({ "tag": "message", "attrs": { "id": "A4", "from": "111:2@s.whatsapp.net", "recipient": "222@s.whatsapp.net", "type": "text" }, "content": null }),
    ];
    for (i, case) in cases.iter().enumerate() {
        let node = decode_hex(
            call(&mut oracle, "encode", json!({ "node": case }))
                .as_str()
                .unwrap(),
        );
        let error = (i == 3).then_some(500u16);
        let ours = build_ack(&node, Some(&own), error);
        let theirs = call(
            &mut oracle,
            "ack",
            json!({ "node": case, "meId": own.to_string(), "error": error }),
        );
        let mut ours_json = node_json(&ours);
        // Compare attribute sets (the order of attributes is not significant on the wire).
        let sort = |v: &mut serde_json::Value| {
            let attrs = v["attrs"].as_object().unwrap().clone();
            v["attrs"] = serde_json::Value::Object(attrs.into_iter().collect());
        };
        let mut theirs = theirs;
        sort(&mut ours_json);
        sort(&mut theirs);
        assert_eq!(ours_json, theirs, "case {i}");
    }
}
