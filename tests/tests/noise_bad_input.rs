//! Bad input: every truncation and every single-bit flip of each of the three handshake messages
//! ends the handshake with a typed error (never a panic, never success), and so do random
//! corruptions (proptest). The responder is walink-sim's; the client is walink's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use walink_core::noise::payload::{ClientProfile, WebVersion, login_payload};
use walink_core::noise::{ClientHandshake, EphemeralKey, HandshakeError, NoiseKeyPair};
use walink_sim::noise_server::{ChainSpec, Responder, ResponderError, ServerIdentity};

const NOW_MS: u64 = 1_800_000_000_000;

struct Transcript {
    hello: Vec<u8>,
    server_hello: Vec<u8>,
    client_finish: Vec<u8>,
}

fn client() -> ClientHandshake {
    ClientHandshake::start(
        EphemeralKey::from_private([0x11; 32]),
        ChainSpec::default().trust_root(),
    )
    .0
}

fn noise_key() -> NoiseKeyPair {
    NoiseKeyPair::from_private([0x22; 32])
}

fn payload() -> Vec<u8> {
    use prost::Message;
    let profile = ClientProfile::new(WebVersion::new(2, 3000, 1), "walink");
    login_payload(&profile, 15_551_234_567, 3).encode_to_vec()
}

fn transcript() -> Transcript {
    let (client, hello) = ClientHandshake::start(
        EphemeralKey::from_private([0x11; 32]),
        ChainSpec::default().trust_root(),
    );
    let (_, server_hello) =
        Responder::respond(&ServerIdentity::test(), [0x33; 32], &hello).unwrap();
    let done = client
        .finish(&server_hello, &noise_key(), &payload(), NOW_MS)
        .unwrap();
    Transcript {
        hello,
        server_hello,
        client_finish: done.client_finish,
    }
}

/// The client's verdict on a ServerHello.
fn client_on(server_hello: &[u8]) -> Result<(), HandshakeError> {
    client()
        .finish(server_hello, &noise_key(), &payload(), NOW_MS)
        .map(|_| ())
}

/// The whole handshake with a ClientHello altered in transit: the responder refuses it, or the
/// client refuses the ServerHello that answers it.
fn handshake_with_hello(hello: &[u8]) -> Result<(), String> {
    let (_, server_hello) = Responder::respond(&ServerIdentity::test(), [0x33; 32], hello)
        .map_err(|e| format!("responder: {e}"))?;
    client_on(&server_hello).map_err(|e| format!("client: {e}"))
}

/// The responder's verdict on a ClientFinish.
fn responder_on(client_finish: &[u8]) -> Result<(), ResponderError> {
    let t = transcript();
    let (responder, _) = Responder::respond(&ServerIdentity::test(), [0x33; 32], &t.hello).unwrap();
    responder.finish(client_finish).map(|_| ())
}

fn flips(message: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    (0..message.len() * 8).map(move |bit| {
        let mut flipped = message.to_vec();
        flipped[bit / 8] ^= 1 << (bit % 8);
        flipped
    })
}

#[test]
fn the_untouched_transcript_succeeds() {
    let t = transcript();
    assert!(client_on(&t.server_hello).is_ok());
    assert!(handshake_with_hello(&t.hello).is_ok());
    assert!(responder_on(&t.client_finish).is_ok());
}

#[test]
fn every_truncation_of_every_message_fails() {
    let t = transcript();
    for len in 0..t.server_hello.len() {
        assert!(
            client_on(&t.server_hello[..len]).is_err(),
            "server hello cut at {len}"
        );
    }
    for len in 0..t.hello.len() {
        assert!(
            handshake_with_hello(&t.hello[..len]).is_err(),
            "hello cut at {len}"
        );
    }
    for len in 0..t.client_finish.len() {
        assert!(
            responder_on(&t.client_finish[..len]).is_err(),
            "finish cut at {len}"
        );
    }
}

#[test]
fn every_bit_flip_of_every_message_fails() {
    let t = transcript();
    for (bit, flipped) in flips(&t.server_hello).enumerate() {
        assert!(client_on(&flipped).is_err(), "server hello bit {bit}");
    }
    for (bit, flipped) in flips(&t.hello).enumerate() {
        assert!(handshake_with_hello(&flipped).is_err(), "hello bit {bit}");
    }
    for (bit, flipped) in flips(&t.client_finish).enumerate() {
        assert!(responder_on(&flipped).is_err(), "finish bit {bit}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random corruption of the ServerHello: bytes xored at random places, then an optional
    /// truncation or garbage tail.
    #[test]
    fn corrupted_server_hello_fails(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..6),
        cut in proptest::option::of(any::<prop::sample::Index>()),
        tail in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let mut message = transcript().server_hello;
        for (at, xor) in edits {
            let i = at.index(message.len());
            message[i] ^= xor;
        }
        if let Some(cut) = cut {
            message.truncate(cut.index(message.len()));
        }
        message.extend(tail);
        prop_assert!(client_on(&message).is_err());
    }

    /// Arbitrary bytes as a ServerHello never panic.
    #[test]
    fn arbitrary_server_hello_is_refused(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        prop_assert!(client_on(&bytes).is_err());
    }
}
