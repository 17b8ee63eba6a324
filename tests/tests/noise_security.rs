//! Every way the server's identity can be wrong ends walink's handshake with a typed error, and
//! every tampered, replayed or reordered frame ends the connection: nothing unauthenticated is
//! ever accepted. The chains come from walink-sim's responder, so they travel through a real
//! handshake, and the test root takes exactly the code path of WhatsApp's root.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use walink_core::noise::{
    CertError, CertRole, ClientHandshake, Completed, EphemeralKey, HandshakeError, NoiseKeyPair,
    TransportCipher, TransportError, TrustRoot,
};
use walink_sim::noise_server::{ChainSpec, Responder, ServerIdentity};

const NOW_MS: u64 = 1_800_000_000_000;
const NOW_S: u64 = NOW_MS / 1000;

fn handshake(
    identity: &ServerIdentity,
    root: TrustRoot,
    now_ms: u64,
) -> Result<(Completed, Responder), HandshakeError> {
    let (client, hello) = ClientHandshake::start(EphemeralKey::from_private([0x11; 32]), root);
    let (responder, server_hello) = Responder::respond(identity, [0x33; 32], &hello).unwrap();
    let done = client.finish(
        &server_hello,
        &NoiseKeyPair::from_private([0x22; 32]),
        &[], // an empty ClientPayload
        now_ms,
    )?;
    Ok((done, responder))
}

fn refused(spec: ChainSpec) -> HandshakeError {
    let root = ChainSpec::default().trust_root();
    let identity = ServerIdentity::new([0x73; 32], &spec);
    handshake(&identity, root, NOW_MS).unwrap_err()
}

#[test]
fn a_valid_chain_is_accepted_and_the_real_root_refuses_it() {
    let identity = ServerIdentity::test();
    assert!(handshake(&identity, ChainSpec::default().trust_root(), NOW_MS).is_ok());
    assert_eq!(
        handshake(&identity, TrustRoot::WHATSAPP, NOW_MS).unwrap_err(),
        HandshakeError::Certificate(CertError::BadSignature(CertRole::Intermediate))
    );
}

#[test]
fn each_bad_chain_gives_its_typed_error() {
    use CertError::*;
    use CertRole::{Intermediate, Leaf};
    let cases: Vec<(&str, ChainSpec, CertError)> = vec![
        (
            "intermediate signed by another key",
            ChainSpec {
                intermediate_signer_private: [0x99; 32],
                ..ChainSpec::default()
            },
            BadSignature(Intermediate),
        ),
        (
            "intermediate names another issuer serial",
            ChainSpec {
                intermediate_issuer_serial: 1,
                ..ChainSpec::default()
            },
            WrongIssuer {
                role: Intermediate,
                found: 1,
                expected: 0,
            },
        ),
        (
            "leaf names another issuer serial",
            ChainSpec {
                leaf_issuer_serial: 0x2b,
                ..ChainSpec::default()
            },
            WrongIssuer {
                role: Leaf,
                found: 0x2b,
                expected: 0x2a,
            },
        ),
        (
            "intermediate expired",
            ChainSpec {
                intermediate_validity: (1_600_000_000, NOW_S - 1),
                ..ChainSpec::default()
            },
            Expired(Intermediate),
        ),
        (
            "intermediate not yet valid",
            ChainSpec {
                intermediate_validity: (NOW_S + 1, 4_000_000_000),
                ..ChainSpec::default()
            },
            NotYetValid(Intermediate),
        ),
        (
            "leaf expired",
            ChainSpec {
                leaf_validity: (1_600_000_000, NOW_S - 1),
                ..ChainSpec::default()
            },
            Expired(Leaf),
        ),
        (
            "leaf not yet valid",
            ChainSpec {
                leaf_validity: (NOW_S + 1, 4_000_000_000),
                ..ChainSpec::default()
            },
            NotYetValid(Leaf),
        ),
        (
            "leaf certifies another key",
            ChainSpec {
                leaf_key: Some([0x42; 32]),
                ..ChainSpec::default()
            },
            LeafKeyMismatch,
        ),
    ];
    for (name, spec, expected) in cases {
        assert_eq!(
            refused(spec),
            HandshakeError::Certificate(expected),
            "{name}"
        );
    }
}

#[test]
fn the_leaf_signed_by_a_foreign_intermediate_is_refused() {
    // A valid intermediate, but the leaf is signed by a key the intermediate does not certify.
    let mut spec = ChainSpec::default();
    let genuine = spec.encode(&NoiseKeyPair::from_private([0x73; 32]).public_key());
    spec.intermediate_private = [0x98; 32];
    let forged = spec.encode(&NoiseKeyPair::from_private([0x73; 32]).public_key());
    use prost::Message;
    use walink_core::proto::wa::CertChain;
    let mut chain = CertChain::decode(genuine.as_slice()).unwrap();
    chain.leaf = CertChain::decode(forged.as_slice()).unwrap().leaf;
    let result = walink_core::noise::verify_chain(
        &chain.encode_to_vec(),
        &ChainSpec::default().trust_root(),
        &NoiseKeyPair::from_private([0x73; 32]).public_key(),
        NOW_MS,
    );
    assert_eq!(result, Err(CertError::BadSignature(CertRole::Leaf)));
}

fn connected() -> (TransportCipher, TransportCipher) {
    let identity = ServerIdentity::test();
    let (done, responder) =
        handshake(&identity, ChainSpec::default().trust_root(), NOW_MS).unwrap();
    let accepted = responder.finish(&done.client_finish).unwrap();
    (done.transport, accepted.transport)
}

#[test]
fn tampered_replayed_and_reordered_frames_end_the_connection() {
    // Tampered: every single bit of a frame.
    let (mut client, mut server) = connected();
    let frame = server.encrypt(b"\x00<success/>").unwrap();
    for bit in 0..frame.len() * 8 {
        let (mut client, _) = connected();
        let mut bad = frame.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert_eq!(
            client.decrypt(&bad),
            Err(TransportError::Decrypt),
            "bit {bit}"
        );
        assert_eq!(client.decrypt(&frame), Err(TransportError::Poisoned));
    }
    assert_eq!(client.decrypt(&frame).unwrap(), b"\x00<success/>");

    // Replayed.
    assert_eq!(client.decrypt(&frame), Err(TransportError::Decrypt));
    let next = server.encrypt(b"\x00next").unwrap();
    assert_eq!(client.decrypt(&next), Err(TransportError::Poisoned));

    // Reordered.
    let (mut client, mut server) = connected();
    let first = server.encrypt(b"\x00one").unwrap();
    let second = server.encrypt(b"\x00two").unwrap();
    assert_eq!(client.decrypt(&second), Err(TransportError::Decrypt));
    assert_eq!(client.decrypt(&first), Err(TransportError::Poisoned));

    // A frame from another connection (other keys).
    let (mut client, _) = connected();
    let (_, mut other_server) = {
        let identity = ServerIdentity::new([0x74; 32], &ChainSpec::default());
        let (done, responder) =
            handshake(&identity, ChainSpec::default().trust_root(), NOW_MS).unwrap();
        (
            done.transport,
            responder.finish(&done.client_finish).unwrap().transport,
        )
    };
    let foreign = other_server.encrypt(b"\x00hi").unwrap();
    assert_eq!(client.decrypt(&foreign), Err(TransportError::Decrypt));

    // A client frame reflected back to the client (the directions use different keys).
    let (mut client, _) = connected();
    let reflected = client.encrypt(b"\x00me").unwrap();
    assert_eq!(client.decrypt(&reflected), Err(TransportError::Decrypt));
}
