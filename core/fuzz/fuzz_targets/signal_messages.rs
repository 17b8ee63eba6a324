//! The Signal message decoders on arbitrary bytes: `SignalMessage`, `PreKeySignalMessage`,
//! `SenderKeyDistributionMessage`, a group (sender-key) message, the padded `Message` content,
//! and decryption of each by an established session and a group member. Never a panic; a
//! message that fails leaves the record exactly as it was; nothing that was not encrypted by
//! the peer decrypts; what parses serializes back to the same bytes; every decoder stays
//! within the input's decode budget.
#![no_main]

#[path = "common/counting.rs"]
mod counting;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use walink_core::client::messaging::content::decode_padded;
use walink_core::limits::decode_budget;
use walink_core::signal::testing::{BenchRng, established, sender_keys};
use walink_core::signal::{
    IdentityKeyPair, PreKeySignalMessage, SenderKeyDistributionMessage, SenderKeyRecord,
    SessionRecord, SignalMessage, unpad,
};

struct Fixture {
    bob: SessionRecord,
    member: SenderKeyRecord,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut rng = BenchRng(11);
        let alice_identity = IdentityKeyPair::generate(&mut rng);
        let (_, bob) = established(&mut rng, &alice_identity).expect("a session");
        let (_, member) = sender_keys(&mut rng);
        Fixture { bob, member }
    })
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    let budget = decode_budget(data.len());
    let (_, peak) = counting::peak_of(|| {
        if let Ok(message) = SignalMessage::deserialize(data) {
            assert_eq!(message.serialize(), data);
        }
        if let Ok(message) = PreKeySignalMessage::deserialize(data) {
            assert_eq!(message.serialize(), data);
        }
        if let Ok(message) = SenderKeyDistributionMessage::deserialize(data) {
            assert_eq!(message.serialize(), data);
            let mut record = SenderKeyRecord::new();
            record.process_distribution_message(&message);
        }
        let _ = decode_padded(data);
        let _ = unpad(data);
    });
    assert!(peak <= budget, "decoding {} bytes held {peak}", data.len());

    // Decryption by parties that hold keys: forgeries must fail and change nothing.
    let mut bob = fixture.bob.clone();
    let before = bob.serialize();
    let mut rng = BenchRng(1);
    assert!(
        bob.decrypt_message(data, &mut rng).is_err(),
        "an arbitrary message decrypted"
    );
    assert_eq!(bob.serialize(), before, "a failed decryption changed the session");
    let mut member = fixture.member.clone();
    let before = member.serialize();
    assert!(member.decrypt(data).is_err(), "an arbitrary group message decrypted");
    assert_eq!(member.serialize(), before, "a failed decryption changed the record");
});
