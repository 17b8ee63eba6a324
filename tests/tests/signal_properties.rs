//! Properties of walink's sessions under arbitrary interleavings of sends and deliveries:
//! every message decrypts exactly once (a second delivery is a typed error that changes
//! nothing), except a message on a receiving chain older than the last
//! `SIGNAL_RECEIVER_CHAINS` ratchet keys, which is refused without changing the record.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod signal_support;

use proptest::prelude::*;
use signal_support::*;
use walink_core::limits::SIGNAL_RECEIVER_CHAINS;
use walink_core::signal::{DecryptError, PreKeySignalMessage, PublicKey, SignalMessage};

/// One message in flight.
struct Flight {
    id: u32,
    kind: u8,
    body: Vec<u8>,
}

fn ratchet_key(kind: u8, body: &[u8]) -> PublicKey {
    if kind == 3 {
        *PreKeySignalMessage::deserialize(body)
            .unwrap()
            .message()
            .ratchet_key()
    } else {
        *SignalMessage::deserialize(body).unwrap().ratchet_key()
    }
}

/// A receiver's view for the expectation: ratchet keys in the order first decrypted.
#[derive(Default)]
struct Seen(Vec<PublicKey>);

impl Seen {
    fn expect_ok(&self, key: &PublicKey) -> bool {
        match self.0.iter().position(|k| k == key) {
            Some(position) => self.0.len() - position <= SIGNAL_RECEIVER_CHAINS,
            None => true,
        }
    }
    fn note(&mut self, key: PublicKey) {
        if !self.0.contains(&key) {
            self.0.push(key);
        }
    }
}

fn payload(id: u32) -> Vec<u8> {
    format!("payload {id}").into_bytes()
}

/// Delivers `flight` to `receiver` (from `sender_name`), checks the outcome, then replays it.
fn deliver(receiver: &mut Party, sender_name: &str, seen: &mut Seen, flight: &Flight) {
    let key = ratchet_key(flight.kind, &flight.body);
    let expect_ok = seen.expect_ok(&key);
    let before = receiver.session_bytes(sender_name);
    let result = receiver.decrypt(sender_name, flight.kind, &flight.body);
    if expect_ok {
        assert_eq!(result, Ok(payload(flight.id)), "message {}", flight.id);
        seen.note(key);
    } else {
        assert!(result.is_err(), "evicted chain must not decrypt");
        assert_eq!(receiver.session_bytes(sender_name), before);
        return;
    }
    let before = receiver.session_bytes(sender_name);
    let replay = receiver.decrypt(sender_name, flight.kind, &flight.body);
    assert!(
        matches!(replay, Err(DecryptError::DuplicateMessage { .. })),
        "replay of {} gave {replay:?}",
        flight.id
    );
    assert_eq!(receiver.session_bytes(sender_name), before);
}

fn run_schedule(seed: u64, ops: &[(u8, u16)]) {
    let mut alice = Party::new(seed.wrapping_mul(2) + 1);
    let mut bob = Party::new(seed.wrapping_mul(2) + 2);
    let bundle = bob.bundle(seed.is_multiple_of(2));
    alice.process_bundle("bob", &bundle);
    let (mut to_bob, mut to_alice): (Vec<Flight>, Vec<Flight>) = (Vec::new(), Vec::new());
    let (mut seen_by_bob, mut seen_by_alice) = (Seen::default(), Seen::default());
    let mut next_id = 0u32;
    for &(op, pick) in ops {
        match op % 5 {
            0 => {
                let (kind, body) = alice.encrypt("bob", &payload(next_id));
                to_bob.push(Flight {
                    id: next_id,
                    kind,
                    body,
                });
                next_id += 1;
            }
            1 if bob.session("alice").has_current_session() => {
                let (kind, body) = bob.encrypt("alice", &payload(next_id));
                to_alice.push(Flight {
                    id: next_id,
                    kind,
                    body,
                });
                next_id += 1;
            }
            2 if !to_bob.is_empty() => {
                let flight = to_bob.remove(pick as usize % to_bob.len());
                deliver(&mut bob, "alice", &mut seen_by_bob, &flight);
            }
            3 if !to_alice.is_empty() => {
                let flight = to_alice.remove(pick as usize % to_alice.len());
                deliver(&mut alice, "bob", &mut seen_by_alice, &flight);
            }
            4 if !to_bob.is_empty() && pick % 4 == 0 => {
                // Lost in transit: never delivered.
                to_bob.remove(pick as usize % to_bob.len());
            }
            _ => {}
        }
    }
    for flight in to_bob.drain(..).rev() {
        deliver(&mut bob, "alice", &mut seen_by_bob, &flight);
    }
    for flight in to_alice.drain(..) {
        deliver(&mut alice, "bob", &mut seen_by_alice, &flight);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn any_interleaving_decrypts_exactly_once(
        seed in any::<u64>(),
        ops in proptest::collection::vec((0u8..5, any::<u16>()), 0..120),
    ) {
        run_schedule(seed, &ops);
    }
}

/// The same kind of random schedule between walink (Alice) and libsignal-node (Bob). libsignal
/// keeps message keys of old chains without a chain-count bound, so everything walink sends
/// decrypts there; walink's side follows the bound above.
#[test]
fn random_schedules_against_libsignal() {
    for seed in [1u64, 2, 3] {
        println!("seed {seed}");
        let mut rng = SeededRng::new(seed);
        let mut oracle = oracle();
        oracle_party(&mut oracle, "bob");
        let mut alice = Party::new(seed + 100);
        alice.process_bundle("bob", &oracle_bundle(&mut oracle, "bob", seed != 2));
        let (mut to_bob, mut to_alice): (Vec<Flight>, Vec<Flight>) = (Vec::new(), Vec::new());
        let mut seen_by_alice = Seen::default();
        let mut bob_has_session = false;
        for id in 0..300u32 {
            let r = rand_core::Rng::next_u32(&mut rng);
            match r % 4 {
                0 => {
                    let (kind, body) = alice.encrypt("bob", &payload(id));
                    to_bob.push(Flight { id, kind, body });
                }
                1 if bob_has_session => {
                    let (kind, body) = oracle_encrypt(&mut oracle, "bob", "alice", &payload(id));
                    to_alice.push(Flight { id, kind, body });
                }
                2 if !to_bob.is_empty() => {
                    let flight = to_bob.remove((r >> 8) as usize % to_bob.len());
                    let result =
                        oracle_decrypt(&mut oracle, "bob", "alice", flight.kind, &flight.body);
                    assert_eq!(
                        result,
                        Ok(payload(flight.id)),
                        "seed {seed} message {}",
                        flight.id
                    );
                    bob_has_session = true;
                }
                3 if !to_alice.is_empty() => {
                    let flight = to_alice.remove((r >> 8) as usize % to_alice.len());
                    deliver(&mut alice, "bob", &mut seen_by_alice, &flight);
                }
                _ => {}
            }
        }
        for flight in to_bob.drain(..) {
            let result = oracle_decrypt(&mut oracle, "bob", "alice", flight.kind, &flight.body);
            assert_eq!(
                result,
                Ok(payload(flight.id)),
                "seed {seed} message {}",
                flight.id
            );
        }
        for flight in to_alice.drain(..).rev() {
            deliver(&mut alice, "bob", &mut seen_by_alice, &flight);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Arbitrary bytes never panic any decoder, and never change an established record.
    #[test]
    fn arbitrary_bytes_are_refused_without_change(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        prefix in any::<bool>(),
    ) {
        use walink_core::signal::{SenderKeyRecord, SessionRecord};
        let mut bytes = bytes;
        if prefix && !bytes.is_empty() {
            bytes[0] = 0x33;
        }
        let _ = SignalMessage::deserialize(&bytes);
        let _ = PreKeySignalMessage::deserialize(&bytes);
        let _ = SessionRecord::deserialize(&bytes);
        let _ = SenderKeyRecord::deserialize(&bytes);
        let mut alice = Party::new(1);
        let mut bob = Party::new(2);
        alice.process_bundle("bob", &bob.bundle(true));
        let (kind, body) = alice.encrypt("bob", b"x");
        prop_assert_eq!(bob.decrypt("alice", kind, &body), Ok(b"x".to_vec()));
        for kind in [1u8, 3] {
            let before = bob.session_bytes("alice");
            prop_assert!(bob.decrypt("alice", kind, &bytes).is_err());
            prop_assert_eq!(bob.session_bytes("alice"), before);
        }
        let skdm = alice.group_create("g", "a");
        bob.group_process("g", "a", &skdm);
        let before = bob.sender_key_bytes("g", "a");
        prop_assert!(bob.group_decrypt("g", "a", &bytes).is_err());
        prop_assert_eq!(bob.sender_key_bytes("g", "a"), before);
    }
}
