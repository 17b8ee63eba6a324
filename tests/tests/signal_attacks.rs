//! Bad input and attacks on walink's Signal layer: every one gives a typed error and leaves the
//! stored record exactly as it was, checked byte for byte on the serialized record.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod signal_support;

use prost::Message as _;
use signal_support::*;
use walink_core::proto::wa;
use walink_core::signal::{DecryptError, MessageError, PrivateKey, SenderKeyRecord, SessionRecord};

/// Two walink parties with an established session (Bob has answered once).
fn pair() -> (Party, Party) {
    let mut alice = Party::new(11);
    let mut bob = Party::new(12);
    let bundle = bob.bundle(true);
    alice.process_bundle("bob", &bundle);
    let (kind, body) = alice.encrypt("bob", b"hello");
    assert_eq!(bob.decrypt("alice", kind, &body), Ok(b"hello".to_vec()));
    let (kind, body) = bob.encrypt("alice", b"hi");
    assert_eq!(alice.decrypt("bob", kind, &body), Ok(b"hi".to_vec()));
    (alice, bob)
}

/// Decrypting `body` fails with an error `check` accepts and leaves Bob's record unchanged.
fn refused(bob: &mut Party, kind: u8, body: &[u8], check: impl Fn(&DecryptError) -> bool) {
    let before = bob.session_bytes("alice");
    let result = bob.decrypt("alice", kind, body);
    match &result {
        Err(error) => assert!(check(error), "unexpected error {error:?}"),
        Ok(_) => panic!("bad input decrypted"),
    }
    assert_eq!(
        bob.session_bytes("alice"),
        before,
        "record changed after {result:?}"
    );
}

#[test]
fn tampered_mac_and_ciphertext() {
    let (mut alice, mut bob) = pair();
    let (kind, body) = alice.encrypt("bob", b"secret");
    for position in [body.len() - 1, body.len() - 8, body.len() - 12, 40] {
        let mut tampered = body.clone();
        tampered[position] ^= 0x01;
        refused(&mut bob, kind, &tampered, |e| {
            matches!(e, DecryptError::BadMac | DecryptError::InvalidMessage(_))
        });
    }
    let mut tampered = body.clone();
    *tampered.last_mut().unwrap() ^= 0x80;
    refused(&mut bob, kind, &tampered, |e| *e == DecryptError::BadMac);
    // The genuine message still decrypts afterwards.
    assert_eq!(bob.decrypt("alice", kind, &body), Ok(b"secret".to_vec()));
}

#[test]
fn wrong_version_byte() {
    let (mut alice, mut bob) = pair();
    let (kind, body) = alice.encrypt("bob", b"secret");
    for version in [0x00, 0x22, 0x23, 0x43, 0x44, 0xff] {
        let mut wrong = body.clone();
        wrong[0] = version;
        refused(&mut bob, kind, &wrong, |e| {
            *e == DecryptError::InvalidMessage(MessageError::UnsupportedVersion(version))
        });
    }
    // A prekey message with a wrong outer version byte.
    let mut carol = Party::new(13);
    carol.process_bundle("bob", &bob.bundle(true));
    let (kind, body) = carol.encrypt("bob", b"pk");
    assert_eq!(kind, 3);
    let mut wrong = body.clone();
    wrong[0] = 0x23;
    refused(&mut bob, kind, &wrong, |e| {
        *e == DecryptError::InvalidMessage(MessageError::UnsupportedVersion(0x23))
    });
}

#[test]
fn truncated_messages() {
    let (mut alice, mut bob) = pair();
    let (kind, body) = alice.encrypt("bob", &[7u8; 200]);
    for cut in 0..body.len() {
        refused(&mut bob, kind, &body[..cut], |_| true);
    }
    let mut carol = Party::new(14);
    carol.process_bundle("bob", &bob.bundle(true));
    let (kind, body) = carol.encrypt("bob", b"pk");
    for cut in 0..body.len() {
        let before = bob.session_bytes("carol");
        assert!(
            bob.decrypt("carol", kind, &body[..cut]).is_err(),
            "cut {cut}"
        );
        assert_eq!(bob.session_bytes("carol"), before);
    }
}

/// A counter 100,000 ahead: refused before any key is derived, both when forged (the MAC
/// would not verify anyway) and when genuinely authenticated by a peer that skipped ahead.
#[test]
fn counter_100000_ahead() {
    let (mut alice, mut bob) = pair();
    let (kind, body) = alice.encrypt("bob", b"secret");
    let mut proto = wa::WhisperMessage::decode(&body[1..body.len() - 8]).unwrap();
    proto.counter = Some(proto.counter.unwrap() + 100_000);
    let mut forged = vec![body[0]];
    forged.extend(proto.encode_to_vec());
    forged.extend_from_slice(&body[body.len() - 8..]);
    refused(
        &mut bob,
        kind,
        &forged,
        |e| matches!(e, DecryptError::TooFarAhead { counter, .. } if *counter >= 100_000),
    );

    // Authenticated: Alice's sending chain advanced 100,000 times without delivery.
    let mut record = alice.session("bob");
    for _ in 0..100_000 {
        record.encrypt(b"").unwrap();
    }
    let far = record.encrypt(b"far ahead").unwrap();
    refused(&mut bob, 1, far.serialize(), |e| {
        matches!(e, DecryptError::TooFarAhead { .. })
    });
    // Within the bound, a skip decrypts.
    let mut record = alice.session("bob");
    for _ in 0..1_999 {
        record.encrypt(b"").unwrap();
    }
    let near = record.encrypt(b"near").unwrap();
    assert_eq!(
        bob.decrypt("alice", 1, near.serialize()),
        Ok(b"near".to_vec())
    );
}

#[test]
fn replayed_messages() {
    let (mut alice, mut bob) = pair();
    let (kind, body) = alice.encrypt("bob", b"once");
    assert_eq!(bob.decrypt("alice", kind, &body), Ok(b"once".to_vec()));
    refused(&mut bob, kind, &body, |e| {
        matches!(e, DecryptError::DuplicateMessage { .. })
    });

    // A replayed prekey message after its session is set up: the one-time prekey is gone, the
    // base key is known, and the message key was used.
    let mut carol = Party::new(15);
    carol.process_bundle("bob", &bob.bundle(true));
    let (kind, body) = carol.encrypt("bob", b"pk");
    assert_eq!(bob.decrypt("carol", kind, &body), Ok(b"pk".to_vec()));
    let before = bob.session_bytes("carol");
    assert!(matches!(
        bob.decrypt("carol", kind, &body),
        Err(DecryptError::DuplicateMessage { .. })
    ));
    assert_eq!(bob.session_bytes("carol"), before);
}

#[test]
fn message_from_a_different_identity() {
    let (_alice, mut bob) = pair();
    // Eve sets up her own session with Bob's bundle but her messages reach Alice's record as
    // plain messages.
    let mut eve = Party::new(16);
    eve.process_bundle("bob", &bob.bundle(false));
    let (_, body) = eve.encrypt("bob", b"spoof");
    let whisper = walink_core::signal::PreKeySignalMessage::deserialize(&body).unwrap();
    refused(&mut bob, 1, whisper.message().serialize(), |e| {
        *e == DecryptError::BadMac
    });
}

#[test]
fn no_session() {
    let mut bob = Party::new(17);
    let (mut alice, _) = pair();
    let (kind, body) = alice.encrypt("bob", b"x");
    assert_eq!(
        bob.decrypt("alice", kind, &body),
        Err(DecryptError::NoSession)
    );
    assert!(bob.session_bytes("alice").is_empty());
}

/// Sender keys: tampered signature, unknown key id, wrong version, truncation, an iteration
/// 100,000 ahead and a replay; the record is unchanged after each.
#[test]
fn sender_key_attacks() {
    let mut sender = Party::new(18);
    let mut member = Party::new(19);
    let skdm = sender.group_create("g", "s");
    member.group_process("g", "s", &skdm);
    let body = sender.group_encrypt("g", "s", b"group");
    let check = |member: &mut Party, bytes: &[u8], ok: &dyn Fn(&DecryptError) -> bool| {
        let before = member.sender_key_bytes("g", "s");
        match member.group_decrypt("g", "s", bytes) {
            Err(error) => assert!(ok(&error), "unexpected {error:?}"),
            Ok(_) => panic!("bad input decrypted"),
        }
        assert_eq!(member.sender_key_bytes("g", "s"), before);
    };
    let mut tampered = body.clone();
    *tampered.last_mut().unwrap() ^= 1;
    check(&mut member, &tampered, &|e| {
        *e == DecryptError::BadSignature
    });
    let mut tampered = body.clone();
    tampered[5] ^= 1;
    check(&mut member, &tampered, &|e| {
        matches!(
            e,
            DecryptError::BadSignature
                | DecryptError::NoSenderKey { .. }
                | DecryptError::InvalidMessage(_)
        )
    });
    let mut wrong = body.clone();
    wrong[0] = 0x23;
    check(&mut member, &wrong, &|e| {
        *e == DecryptError::InvalidMessage(MessageError::UnsupportedVersion(0x23))
    });
    for cut in 0..body.len() {
        check(&mut member, &body[..cut], &|_| true);
    }

    // A sender we know (its signing key distributed) that jumps 100,000 ahead.
    let signing = PrivateKey::generate(&mut SeededRng::new(99));
    let skdm = wa::SenderKeyDistributionMessage {
        id: Some(42),
        iteration: Some(0),
        chain_key: Some(vec![3; 32]),
        signing_key: Some(signing.public_key().serialize().to_vec()),
    };
    let mut bytes = vec![0x33];
    bytes.extend(skdm.encode_to_vec());
    member.group_process("g", "s", &bytes);
    let far = wa::SenderKeyMessage {
        id: Some(42),
        iteration: Some(100_000),
        ciphertext: Some(vec![0; 16]),
    };
    let mut far_bytes = vec![0x33];
    far_bytes.extend(far.encode_to_vec());
    let signature = signing.sign(&far_bytes, &mut SeededRng::new(5));
    far_bytes.extend_from_slice(&signature);
    check(&mut member, &far_bytes, &|e| {
        matches!(
            e,
            DecryptError::TooFarAhead {
                counter: 100_000,
                ..
            }
        )
    });
    let unknown = wa::SenderKeyMessage {
        id: Some(43),
        iteration: Some(0),
        ciphertext: Some(vec![0; 16]),
    };
    let mut unknown_bytes = vec![0x33];
    unknown_bytes.extend(unknown.encode_to_vec());
    unknown_bytes.extend_from_slice(&signature);
    check(&mut member, &unknown_bytes, &|e| {
        *e == DecryptError::NoSenderKey { key_id: 43 }
    });

    assert_eq!(member.group_decrypt("g", "s", &body), Ok(b"group".to_vec()));
    check(&mut member, &body, &|e| {
        matches!(e, DecryptError::DuplicateMessage { .. })
    });
}

/// Records that are not walink's own encoding are refused with typed errors.
#[test]
fn bad_records() {
    assert!(SessionRecord::deserialize(&[0xff, 0xff]).is_err());
    assert!(
        SessionRecord::deserialize(&[]).is_err(),
        "no format version"
    );
    assert!(
        SenderKeyRecord::deserialize(&[0x08, 0x09]).is_err(),
        "format version 9"
    );
    let (alice, _) = pair();
    let bytes = alice.session_bytes("bob");
    for cut in 0..bytes.len() {
        let _ = SessionRecord::deserialize(&bytes[..cut]);
    }
    assert!(SessionRecord::deserialize(&bytes).is_ok());
}

/// Replacing sessions over and over keeps at most `SIGNAL_ARCHIVED_SESSIONS` archived ones; the
/// newest still works and a message for a dropped session is refused without change.
#[test]
fn archived_sessions_are_bounded() {
    use walink_core::limits::SIGNAL_ARCHIVED_SESSIONS;
    let mut alice = Party::new(20);
    let mut bob = Party::new(21);
    alice.process_bundle("bob", &bob.bundle(true));
    let (kind, oldest) = alice.encrypt("bob", b"oldest");
    assert_eq!(bob.decrypt("alice", kind, &oldest), Ok(b"oldest".to_vec()));
    let (_, late) = alice.encrypt("bob", b"late");
    for i in 0..SIGNAL_ARCHIVED_SESSIONS + 5 {
        alice.process_bundle("bob", &bob.bundle(i % 2 == 0));
        let (kind, body) = alice.encrypt("bob", b"again");
        assert_eq!(kind, 3);
        assert_eq!(bob.decrypt("alice", kind, &body), Ok(b"again".to_vec()));
    }
    assert_eq!(
        bob.session("alice").archived_sessions(),
        SIGNAL_ARCHIVED_SESSIONS
    );
    assert_eq!(
        alice.session("bob").archived_sessions(),
        SIGNAL_ARCHIVED_SESSIONS
    );
    // The first session was dropped from Bob's record: its late message no longer decrypts.
    let before = bob.session_bytes("alice");
    assert!(bob.decrypt("alice", 3, &late).is_err());
    assert_eq!(bob.session_bytes("alice"), before);
    let (kind, body) = bob.encrypt("alice", b"reply");
    assert_eq!(alice.decrypt("bob", kind, &body), Ok(b"reply".to_vec()));
}
