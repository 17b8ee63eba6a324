//! Interoperability of walink's Signal layer with libsignal-node (libsignal@6.0.0, the 1:1
//! implementation Baileys uses) and Baileys' group implementation, in both directions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod signal_support;

use serde_json::json;
use signal_support::*;
use walink_core::signal::{DecryptError, PrivateKey, PublicKey};

fn text(i: usize) -> Vec<u8> {
    format!("message {i} {}", "x".repeat(i % 37)).into_bytes()
}

/// walink starts the session from a libsignal bundle (with a one-time prekey), then 1,000
/// messages alternate between the two sides.
#[test]
fn walink_starts_from_libsignal_bundle_and_alternates_1000_messages() {
    let mut oracle = oracle();
    oracle_party(&mut oracle, "bob");
    let mut alice = Party::new(1);
    let bundle = oracle_bundle(&mut oracle, "bob", true);
    alice.process_bundle("bob", &bundle);
    for i in 0..1000 {
        if i % 2 == 0 {
            let (kind, body) = alice.encrypt("bob", &text(i));
            assert_eq!(kind, if i == 0 { 3 } else { 1 }, "message {i}");
            assert_eq!(
                oracle_decrypt(&mut oracle, "bob", "alice", kind, &body),
                Ok(text(i))
            );
        } else {
            let (kind, body) = oracle_encrypt(&mut oracle, "bob", "alice", &text(i));
            assert_eq!(kind, 1);
            assert_eq!(
                alice.decrypt("bob", kind, &body),
                Ok(text(i)),
                "message {i}"
            );
        }
    }
    let consumed = call(
        &mut oracle,
        "hasPreKey",
        json!({ "name": "bob", "id": bundle.pre_key.unwrap().0.0 }),
    );
    assert_eq!(
        consumed,
        json!(false),
        "libsignal consumed its one-time prekey"
    );
}

/// libsignal starts the session from a walink bundle, with and without a one-time prekey; then
/// 1,000 messages go in bursts of varying length from each side.
#[test]
fn libsignal_starts_from_walink_bundle_and_sends_bursts() {
    for one_time in [true, false] {
        let mut oracle = oracle();
        oracle_party(&mut oracle, "alice");
        let mut bob = Party::new(2);
        let bundle = bob.bundle(one_time);
        call(
            &mut oracle,
            "processBundle",
            json!({ "name": "alice", "peer": "bob", "bundle": bundle_json(&bundle) }),
        );
        let mut sent = 0usize;
        let mut burst = 1usize;
        let mut from_oracle = true;
        while sent < 1000 {
            let n = burst.min(1000 - sent);
            for i in sent..sent + n {
                if from_oracle {
                    let (kind, body) = oracle_encrypt(&mut oracle, "alice", "bob", &text(i));
                    assert_eq!(
                        bob.decrypt("alice", kind, &body),
                        Ok(text(i)),
                        "message {i}"
                    );
                } else {
                    let (kind, body) = bob.encrypt("alice", &text(i));
                    assert_eq!(kind, 1, "bob answers with plain messages");
                    assert_eq!(
                        oracle_decrypt(&mut oracle, "alice", "bob", kind, &body),
                        Ok(text(i))
                    );
                }
            }
            sent += n;
            burst = burst * 3 % 97 + 1;
            from_oracle = !from_oracle;
        }
        if let Some((id, _)) = bundle.pre_key {
            assert!(
                !bob.keys.pre_keys.contains_key(&id),
                "walink reports the consumed prekey"
            );
        }
    }
}

/// Messages delivered out of order and with counters skipped (some never delivered), in both
/// directions and across ratchet steps.
#[test]
fn out_of_order_and_skipped_counters() {
    let mut oracle = oracle();
    oracle_party(&mut oracle, "bob");
    let mut alice = Party::new(3);
    alice.process_bundle("bob", &oracle_bundle(&mut oracle, "bob", true));
    let (kind, body) = alice.encrypt("bob", b"hello");
    assert_eq!(
        oracle_decrypt(&mut oracle, "bob", "alice", kind, &body),
        Ok(b"hello".to_vec())
    );

    for round in 0..3 {
        // libsignal → walink: 60 messages, delivered in a scrambled order, every 7th dropped.
        let batch: Vec<_> = (0..60)
            .map(|i| oracle_encrypt(&mut oracle, "bob", "alice", &text(i)))
            .collect();
        let mut order: Vec<usize> = (0..60).filter(|i| i % 7 != 3).collect();
        order.reverse();
        order.rotate_left(17 + round);
        for &i in &order {
            let (kind, body) = &batch[i];
            assert_eq!(
                alice.decrypt("bob", *kind, body),
                Ok(text(i)),
                "round {round} message {i}"
            );
        }
        // walink → libsignal, the same.
        let batch: Vec<_> = (0..60).map(|i| alice.encrypt("bob", &text(i))).collect();
        for &i in &order {
            let (kind, body) = &batch[i];
            assert_eq!(
                oracle_decrypt(&mut oracle, "bob", "alice", *kind, body),
                Ok(text(i))
            );
        }
    }
}

/// A session replaced by a new prekey message while messages of the old session are still in
/// flight: the late messages still decrypt (archived session), and replies use the new one.
#[test]
fn session_replaced_while_old_messages_in_flight() {
    // libsignal replaces its session with walink.
    let mut oracle = oracle();
    oracle_party(&mut oracle, "alice");
    let mut bob = Party::new(4);
    call(
        &mut oracle,
        "processBundle",
        json!({ "name": "alice", "peer": "bob", "bundle": bundle_json(&bob.bundle(true)) }),
    );
    let (kind, body) = oracle_encrypt(&mut oracle, "alice", "bob", b"first");
    assert_eq!(bob.decrypt("alice", kind, &body), Ok(b"first".to_vec()));
    let (kind, body) = bob.encrypt("alice", b"reply");
    assert_eq!(
        oracle_decrypt(&mut oracle, "alice", "bob", kind, &body),
        Ok(b"reply".to_vec())
    );
    let in_flight: Vec<_> = (0..5)
        .map(|i| oracle_encrypt(&mut oracle, "alice", "bob", &text(i)))
        .collect();
    call(
        &mut oracle,
        "processBundle",
        json!({ "name": "alice", "peer": "bob", "bundle": bundle_json(&bob.bundle(true)) }),
    );
    let (kind, body) = oracle_encrypt(&mut oracle, "alice", "bob", b"new session");
    assert_eq!(kind, 3);
    assert_eq!(
        bob.decrypt("alice", kind, &body),
        Ok(b"new session".to_vec())
    );
    assert_eq!(bob.session("alice").archived_sessions(), 1);
    for (i, (kind, body)) in in_flight.iter().enumerate().rev() {
        assert_eq!(
            bob.decrypt("alice", *kind, body),
            Ok(text(i)),
            "late message {i}"
        );
    }
    let (kind, body) = bob.encrypt("alice", b"on the new session");
    assert_eq!(
        oracle_decrypt(&mut oracle, "alice", "bob", kind, &body),
        Ok(b"on the new session".to_vec())
    );

    // walink replaces its session with libsignal.
    oracle_party(&mut oracle, "carol");
    let mut dave = Party::new(5);
    dave.process_bundle("carol", &oracle_bundle(&mut oracle, "carol", true));
    let (kind, body) = dave.encrypt("carol", b"hi");
    assert_eq!(
        oracle_decrypt(&mut oracle, "carol", "dave", kind, &body),
        Ok(b"hi".to_vec())
    );
    let in_flight: Vec<_> = (0..5).map(|i| dave.encrypt("carol", &text(i))).collect();
    dave.process_bundle("carol", &oracle_bundle(&mut oracle, "carol", true));
    let (kind, body) = dave.encrypt("carol", b"new");
    assert_eq!(kind, 3);
    assert_eq!(
        oracle_decrypt(&mut oracle, "carol", "dave", kind, &body),
        Ok(b"new".to_vec())
    );
    for (i, (kind, body)) in in_flight.iter().enumerate() {
        assert_eq!(
            oracle_decrypt(&mut oracle, "carol", "dave", *kind, body),
            Ok(text(i))
        );
    }
    let (kind, body) = oracle_encrypt(&mut oracle, "carol", "dave", b"back");
    assert_eq!(dave.decrypt("carol", kind, &body), Ok(b"back".to_vec()));
}

/// A prekey message naming a one-time prekey walink already consumed is refused with a typed
/// error and leaves the record unchanged.
#[test]
fn prekey_message_for_consumed_one_time_prekey() {
    let mut oracle = oracle();
    oracle_party(&mut oracle, "alice");
    oracle_party(&mut oracle, "mallory");
    let mut bob = Party::new(6);
    let bundle = bob.bundle(true);
    let (id, _) = bundle.pre_key.unwrap();
    for name in ["alice", "mallory"] {
        call(
            &mut oracle,
            "processBundle",
            json!({ "name": name, "peer": "bob", "bundle": bundle_json(&bundle) }),
        );
    }
    let (kind, body) = oracle_encrypt(&mut oracle, "alice", "bob", b"first");
    assert_eq!(bob.decrypt("alice", kind, &body), Ok(b"first".to_vec()));
    // Mallory's message uses the same one-time prekey; it reaches the record we keep for Alice's
    // address (as a replay with a new base key would).
    let (kind, body) = oracle_encrypt(&mut oracle, "mallory", "bob", b"second");
    let before = bob.session_bytes("alice");
    assert_eq!(
        bob.decrypt("alice", kind, &body),
        Err(DecryptError::MissingPreKey(id))
    );
    assert_eq!(
        bob.session_bytes("alice"),
        before,
        "record unchanged byte for byte"
    );
}

/// Group messages through sender keys, walink → Baileys and Baileys → walink, with gaps and out
/// of order delivery.
#[test]
fn group_messages_both_ways() {
    let mut oracle = oracle();
    oracle_party(&mut oracle, "baileys");
    let mut us = Party::new(7);

    let skdm = us.group_create("g@g.us", "walink");
    call(
        &mut oracle,
        "groupProcess",
        json!({ "name": "baileys", "group": "g@g.us", "sender": "walink", "skdm": hex::encode(&skdm) }),
    );
    let bodies: Vec<_> = (0..300)
        .map(|i| us.group_encrypt("g@g.us", "walink", &text(i)))
        .collect();
    for (i, body) in bodies.iter().enumerate() {
        let plaintext = call(
            &mut oracle,
            "groupDecrypt",
            json!({ "name": "baileys", "group": "g@g.us", "sender": "walink", "body": hex::encode(body) }),
        );
        assert_eq!(unhex(&plaintext), text(i));
    }

    let skdm = unhex(&call(
        &mut oracle,
        "groupCreate",
        json!({ "name": "baileys", "group": "g@g.us" }),
    ));
    us.group_process("g@g.us", "baileys", &skdm);
    let bodies: Vec<Vec<u8>> = (0..300)
        .map(|i| {
            unhex(&call(
                &mut oracle,
                "groupEncrypt",
                json!({ "name": "baileys", "group": "g@g.us", "plaintext": hex::encode(text(i)) }),
            ))
        })
        .collect();
    let mut order: Vec<usize> = (0..300).filter(|i| i % 11 != 5).collect();
    order.swap(3, 40);
    order.swap(100, 250);
    for &i in &order {
        assert_eq!(
            us.group_decrypt("g@g.us", "baileys", &bodies[i]),
            Ok(text(i)),
            "message {i}"
        );
    }
    // A replayed group message is refused and changes nothing.
    let before = us.sender_key_bytes("g@g.us", "baileys");
    assert!(matches!(
        us.group_decrypt("g@g.us", "baileys", &bodies[order[7]]),
        Err(DecryptError::DuplicateMessage { .. })
    ));
    assert_eq!(us.sender_key_bytes("g@g.us", "baileys"), before);
}

/// XEdDSA signatures made by each side verify on the other; a changed message does not.
#[test]
fn xeddsa_signatures_cross_verify() {
    let mut oracle = oracle();
    let mut rng = SeededRng::new(8);
    for i in 0..20u8 {
        let message: Vec<u8> = (0..(i as usize * 13)).map(|j| j as u8 ^ i).collect();
        // walink signs, libsignal verifies.
        let private = PrivateKey::generate(&mut rng);
        let public = private.public_key();
        let signature = private.sign(&message, &mut rng);
        let ok = call(
            &mut oracle,
            "verify",
            json!({ "publicKey": hex::encode(public.serialize()), "message": hex::encode(&message), "signature": hex::encode(signature) }),
        );
        assert_eq!(ok, json!(true));
        let mut other = message.clone();
        other.push(1);
        let ok = call(
            &mut oracle,
            "verify",
            json!({ "publicKey": hex::encode(public.serialize()), "message": hex::encode(&other), "signature": hex::encode(signature) }),
        );
        assert_eq!(ok, json!(false));
        // libsignal signs, walink verifies.
        let pair = call(&mut oracle, "keyPair", json!({}));
        let signature = unhex(&call(
            &mut oracle,
            "sign",
            json!({ "privateKey": pair["private"], "message": hex::encode(&message) }),
        ));
        let public = PublicKey::deserialize(&unhex(&pair["public"])).unwrap();
        assert_eq!(public.verify(&message, &signature), Ok(()));
        assert!(public.verify(&other, &signature).is_err());
        // Both derive the same public key from the private key.
        let private = PrivateKey::deserialize(&unhex(&pair["private"])).unwrap();
        assert_eq!(private.public_key(), public);
    }
}
