//! The `Debug` text of every type that holds a key or plaintext shows neither (docs/security.md,
//! "Host mistakes"): each is built around known secret bytes and its `Debug` searched for them,
//! and for any printed byte array.
#![allow(clippy::unwrap_used)]

use crate::appstate::{KeyId, KeyRing, MutationKeys, SyncKey};
use crate::client::messaging::IncomingMessage;
use crate::client::{Config, Event};
use crate::media::{MediaKeys, MediaType};
use crate::noise::payload::{ClientProfile, WebVersion};
use crate::noise::{ClientHandshake, EphemeralKey, NoiseKeyPair, TransportCipher, TrustRoot};
use crate::pair::{AdvSecret, PairingCode};
use crate::signal::testing::{BenchRng, established, sender_keys};
use crate::signal::{
    IdentityKeyPair, KeyPair, PreKey, PreKeyId, PrivateKey, SenderKeyRecord, SignedPreKey,
    SignedPreKeyId,
};
use crate::store::{self, DeviceData, Record, Space};

/// Secret bytes with no run of equal bytes, so that a window of them is unmistakable.
fn secret(tag: u8) -> [u8; 32] {
    core::array::from_fn(|i| tag.wrapping_mul(31).wrapping_add((i as u8).wrapping_mul(7)) | 1)
}

/// The longest run of numbers separated by `, ` in `text`: how a `Vec<u8>` or `[u8; N]` prints.
fn longest_number_list(text: &str) -> usize {
    let mut longest = 0;
    let mut run = 0;
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| c.is_ascii_digit()) {
        let after_digits = &rest[start..];
        let digits = after_digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after_digits.len());
        let tail = &after_digits[digits..];
        let continues =
            tail.starts_with(", ") && tail[2..].starts_with(|c: char| c.is_ascii_digit());
        run += 1;
        longest = longest.max(run);
        if !continues {
            run = 0;
        }
        rest = tail;
    }
    longest
}

/// Fails when `debug` (the `Debug` text of `what`) shows a window of 8 bytes of any of
/// `secrets` (as decimal bytes, lowercase or uppercase hex), or any list of 16 or more numbers.
#[track_caller]
fn assert_redacted(what: &str, debug: &str, secrets: &[&[u8]]) {
    assert!(
        longest_number_list(debug) < 16,
        "{what} prints a byte array: {debug}"
    );
    for secret in secrets {
        for window in secret.windows(8) {
            let decimal = window
                .iter()
                .map(u8::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            let lower: String = window.iter().map(|b| format!("{b:02x}")).collect();
            let upper = lower.to_uppercase();
            for form in [decimal, lower, upper] {
                assert!(
                    !debug.contains(&form),
                    "{what} shows secret bytes {form}: {debug}"
                );
            }
        }
    }
}

#[test]
fn the_number_list_finder_finds_byte_arrays() {
    assert_eq!(longest_number_list(&format!("{:?}", [7u8; 20])), 20);
    assert_eq!(longest_number_list("a 1, 2 b 3, 4, 5"), 3);
    assert_eq!(longest_number_list("none"), 0);
}

#[test]
fn signal_keys_and_records_hide_their_secrets() {
    let private = secret(1);
    let key = PrivateKey::from_bytes(private);
    assert_redacted("PrivateKey", &format!("{key:?}"), &[&private]);
    let pair = KeyPair::from_private(key.clone());
    assert_redacted("KeyPair", &format!("{pair:?}"), &[&private]);
    let identity = IdentityKeyPair::from_private(key);
    assert_redacted("IdentityKeyPair", &format!("{identity:?}"), &[&private]);
    let mut rng = BenchRng(5);
    let signed = SignedPreKey::generate(SignedPreKeyId(1), &identity, &mut rng);
    let signed_private = signed.key_pair.private.to_bytes();
    assert_redacted(
        "SignedPreKey",
        &format!("{signed:?}"),
        &[&private, &*signed_private],
    );
    let one_time = PreKey::generate(PreKeyId(3), &mut rng);
    let one_time_private = one_time.key_pair.private.to_bytes();
    assert_redacted("PreKey", &format!("{one_time:?}"), &[&*one_time_private]);
    let signer = crate::signal::xeddsa::SigningKey::new(&private);
    assert_redacted("xeddsa::SigningKey", &format!("{signer:?}"), &[&private]);

    let alice_identity = IdentityKeyPair::generate(&mut rng);
    let (alice, bob) = established(&mut rng, &alice_identity).unwrap();
    for record in [&alice, &bob] {
        let bytes = record.serialize();
        assert_redacted("SessionRecord", &format!("{record:?}"), &[&bytes]);
    }
    let (sender, member): (SenderKeyRecord, SenderKeyRecord) = sender_keys(&mut rng);
    for record in [&sender, &member] {
        let bytes = record.serialize();
        assert_redacted("SenderKeyRecord", &format!("{record:?}"), &[&bytes]);
    }
    let mut own = SenderKeyRecord::new();
    let distribution = own.create_distribution_message(&mut rng);
    let serialized = distribution.serialize().to_vec();
    assert_redacted(
        "SenderKeyDistributionMessage",
        &format!("{distribution:?}"),
        &[&serialized[1..]],
    );
}

#[test]
fn decrypted_plaintext_is_not_shown() {
    let plaintext = secret(2).to_vec();
    let decryption = crate::signal::PreKeyDecryption {
        plaintext: plaintext.clone(),
        consumed_pre_key: None,
    };
    assert_redacted(
        "PreKeyDecryption",
        &format!("{decryption:?}"),
        &[&plaintext],
    );
    let text = "the plaintext of a message, never printed";
    let message = IncomingMessage {
        id: "3EB0".into(),
        chat: "1@s.whatsapp.net".parse().unwrap(),
        sender: "1@s.whatsapp.net".parse().unwrap(),
        timestamp: 1,
        from_me: false,
        push_name: None,
        history: false,
        message: Box::new(crate::proto::wa::Message {
            conversation: Some(text.into()),
            ..Default::default()
        }),
        wrappers: Vec::new(),
        raw: plaintext.clone(),
        text: Some(text.into()),
        poll_vote: None,
    };
    let event = format!("{:?}", Event::Message(Box::new(message)));
    assert_redacted("Event::Message", &event, &[&plaintext, text.as_bytes()]);
    assert!(!event.contains("plaintext of a message"), "{event}");
}

#[test]
fn noise_pairing_app_state_and_media_keys_are_hidden() {
    let private = secret(3);
    assert_redacted(
        "NoiseKeyPair",
        &format!("{:?}", NoiseKeyPair::from_private(private)),
        &[&private],
    );
    assert_redacted(
        "EphemeralKey",
        &format!("{:?}", EphemeralKey::from_private(private)),
        &[&private],
    );
    let (send, receive) = (secret(4), secret(5));
    assert_redacted(
        "TransportCipher",
        &format!("{:?}", TransportCipher::new(&send, &receive)),
        &[&send, &receive],
    );
    let root = TrustRoot {
        public_key: NoiseKeyPair::from_private(secret(6)).public_key(),
        serial: 0,
    };
    let (handshake, _) = ClientHandshake::start(EphemeralKey::from_private(private), root);
    assert_redacted("ClientHandshake", &format!("{handshake:?}"), &[&private]);
    let adv = secret(7);
    assert_redacted("AdvSecret", &format!("{:?}", AdvSecret::new(adv)), &[&adv]);
    let pair_key = secret(8);
    assert_redacted(
        "pair::KeyPair",
        &format!("{:?}", crate::pair::KeyPair::from_private(pair_key)),
        &[&pair_key],
    );
    let code = PairingCode::from_random([1, 2, 3, 4, 5]);
    let shown = format!("{code:?}");
    assert!(!shown.contains(code.as_str()), "{shown}");

    let data = secret(9);
    let key = SyncKey::new(KeyId::new(&[0, 0, 0, 0, 0, 1]).unwrap(), data, None, 1);
    let expanded = MutationKeys::expand(&data);
    let derived = [
        *expanded.index_key(),
        *expanded.value_encryption_key(),
        *expanded.value_mac_key(),
        *expanded.snapshot_mac_key(),
        *expanded.patch_mac_key(),
    ];
    let mut secrets: Vec<&[u8]> = derived.iter().map(|k| k.as_slice()).collect();
    secrets.push(&data);
    assert_redacted("SyncKey", &format!("{key:?}"), &secrets);
    assert_redacted("MutationKeys", &format!("{expanded:?}"), &secrets);
    let mut ring = KeyRing::new();
    ring.insert(key);
    assert_redacted("KeyRing", &format!("{ring:?}"), &secrets);

    let media_key = secret(10);
    let media = MediaKeys::derive(&media_key, MediaType::Image).unwrap();
    assert_redacted(
        "MediaKeys",
        &format!("{media:?}"),
        &[&media_key, media.cipher_key(), media.mac_key()],
    );
}

#[test]
fn stored_records_and_the_config_hide_their_secrets() {
    let seed = secret(11);
    let mut config = Config::new(ClientProfile::new(WebVersion::new(2, 3000, 1), "walink"));
    config.unsafe_test_rng_seed = Some(seed);
    assert_redacted("Config", &format!("{config:?}"), &[&seed]);

    let client = crate::client::Client::new(config, Vec::new()).unwrap();
    let records: Vec<Record> = {
        let mut client = client;
        let shown = format!("{client:?}");
        let mut records = Vec::new();
        while let Some(output) = client.poll_output() {
            if let crate::client::Output::Persist(batch) = output {
                for change in batch.changes {
                    if let store::Change::Put(record) = change {
                        records.push(record);
                    }
                }
            }
        }
        // The client's own Debug, while its first batch (the device's private keys) waited.
        let values: Vec<&[u8]> = records.iter().map(|r| r.value.as_slice()).collect();
        assert_redacted("Client", &shown, &values);
        records
    };
    let device = records.iter().find(|r| r.space == Space::Device).unwrap();
    let data: DeviceData = store::decode_device(device).unwrap();
    for record in &records {
        assert_redacted("Record", &format!("{record:?}"), &[&record.value]);
    }
    let shown = format!("{data:?}");
    assert_redacted("DeviceData", &shown, &[&device.value]);
}
