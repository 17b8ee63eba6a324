//! The Noise handshake end to end: walink's client against walink-sim's responder, walink's
//! bytes against Baileys' noise handler with the same keys, and Baileys' client against the same
//! responder (with Baileys' `WA_CERT_DETAILS` pointed at the test root).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use prost::Message;
use serde_json::{Value, json};
use walink_core::noise::payload::{ClientProfile, WebVersion, login_payload};
use walink_core::noise::{ClientHandshake, EphemeralKey, NoiseKeyPair, PROLOGUE, TrustRoot};
use walink_core::proto::wa::CertChain;
use walink_core::proto::wa::cert_chain::NoiseCertificate;
use walink_sim::noise_server::{ChainSpec, Responder, ServerIdentity};
use walink_sim::oracle::Oracle;

/// 2027-01-15, inside the test chain's validity.
const NOW_MS: u64 = 1_800_000_000_000;
const SERVER_EPHEMERAL: [u8; 32] = [0x33; 32];

/// Test-only 3-byte length prefix (the library's framing lives in the frame module).
fn framed(payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut out = len[1..].to_vec();
    out.extend_from_slice(payload);
    out
}

fn unhex(value: &Value) -> Vec<u8> {
    hex::decode(value.as_str().unwrap()).unwrap()
}

fn profile() -> ClientProfile {
    ClientProfile::new(WebVersion::new(2, 3000, 1_045_649_367), "walink")
}

#[test]
fn walink_client_and_sim_responder_exchange_frames() {
    let identity = ServerIdentity::test();
    let root = ChainSpec::default().trust_root();
    let noise_key = NoiseKeyPair::from_private([0x22; 32]);
    let (client, hello) = ClientHandshake::start(EphemeralKey::from_private([0x11; 32]), root);
    let (responder, server_hello) =
        Responder::respond(&identity, SERVER_EPHEMERAL, &hello).unwrap();
    let payload = login_payload(&profile(), 15_551_234_567, 7).encode_to_vec();
    let done = client
        .finish(&server_hello, &noise_key, &payload, NOW_MS)
        .unwrap();
    assert_eq!(done.server_static, identity.static_public());
    let accepted = responder.finish(&done.client_finish).unwrap();
    assert_eq!(accepted.client_static, noise_key.public_key());
    assert_eq!(accepted.payload_bytes, payload);
    assert_eq!(accepted.payload.username, Some(15_551_234_567));
    assert_eq!(accepted.payload.device, Some(7));

    let mut client = done.transport;
    let mut server = accepted.transport;
    for round in 0..4u8 {
        let up = client.encrypt(&[0, round, 1, 2]).unwrap();
        assert_eq!(server.decrypt(&up).unwrap(), [0, round, 1, 2]);
        let down = server.encrypt(&[0, round, 9]).unwrap();
        assert_eq!(client.decrypt(&down).unwrap(), [0, round, 9]);
    }
}

/// Same ephemeral key, same noise key, same ServerHello, same payload: walink's ClientHello,
/// ClientFinish and transport frames equal Baileys' byte for byte.
#[test]
fn walink_bytes_equal_baileys_bytes() {
    let mut baileys = Oracle::spawn("noise.mjs").unwrap();
    let identity = ServerIdentity::test();
    let root = ChainSpec::default().trust_root();
    let ephemeral_private = [0x11; 32];
    let noise_key = NoiseKeyPair::from_private([0x22; 32]);
    let ephemeral = EphemeralKey::from_private(ephemeral_private);
    // Baileys takes the key pair as given; hand it the clamped scalar X25519 uses.
    let baileys_start = baileys
        .call(
            "start",
            json!({
                "ephemeral_private": hex::encode(ephemeral_private),
                "ephemeral_public": hex::encode(ephemeral.public_key()),
            }),
        )
        .unwrap();
    let (client, hello) = ClientHandshake::start(ephemeral, root);
    let mut first = PROLOGUE.to_vec();
    first.extend(framed(&hello));
    assert_eq!(unhex(&baileys_start["frame"]), first);

    let (responder, server_hello) =
        Responder::respond(&identity, SERVER_EPHEMERAL, &hello).unwrap();
    let payload = login_payload(&profile(), 15_551_234_567, 7).encode_to_vec();
    let done = client
        .finish(&server_hello, &noise_key, &payload, NOW_MS)
        .unwrap();
    let id = baileys_start["id"].clone();
    let baileys_finish = baileys
        .call(
            "finish",
            json!({
                "id": id,
                "server_hello": hex::encode(&server_hello),
                "noise_private": hex::encode(noise_key.private_key()),
                "noise_public": hex::encode(noise_key.public_key()),
                "payload": hex::encode(&payload),
                "root_public": hex::encode(root.public_key),
            }),
        )
        .unwrap();
    assert_eq!(unhex(&baileys_finish), framed(&done.client_finish));

    let mut client = done.transport;
    let mut server = responder.finish(&done.client_finish).unwrap().transport;
    for size in [1usize, 200, 65_536] {
        let plaintext: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let ours = client.encrypt(&plaintext).unwrap();
        let theirs = baileys
            .call(
                "encrypt",
                json!({ "id": id, "plaintext": hex::encode(&plaintext) }),
            )
            .unwrap();
        assert_eq!(
            unhex(&theirs),
            framed(&ours),
            "client frame of {size} bytes"
        );
        assert_eq!(server.decrypt(&ours).unwrap(), plaintext);

        let reply = server.encrypt(&plaintext[..size.min(50)]).unwrap();
        assert_eq!(client.decrypt(&reply).unwrap(), &plaintext[..size.min(50)]);
        let theirs = baileys
            .call(
                "decrypt",
                json!({ "id": id, "ciphertext": hex::encode(&reply) }),
            )
            .unwrap();
        assert_eq!(unhex(&theirs), &plaintext[..size.min(50)]);
    }
}

/// Baileys' client, with its own login payload, completes a handshake against the responder and
/// exchanges frames with it. libsignal-node confirms the test chain's signatures.
#[test]
fn baileys_client_completes_a_handshake_with_the_sim_responder() {
    let mut baileys = Oracle::spawn("noise.mjs").unwrap();
    let identity = ServerIdentity::test();
    let root = ChainSpec::default().trust_root();
    let ephemeral = NoiseKeyPair::from_private([0x44; 32]);
    let noise_key = NoiseKeyPair::from_private([0x55; 32]);
    let start = baileys
        .call(
            "start",
            json!({
                "ephemeral_private": hex::encode(ephemeral.private_key()),
                "ephemeral_public": hex::encode(ephemeral.public_key()),
            }),
        )
        .unwrap();
    let first = unhex(&start["frame"]);
    assert_eq!(first[..4], PROLOGUE);
    let hello = &first[7..];
    let (responder, server_hello) = Responder::respond(&identity, SERVER_EPHEMERAL, hello).unwrap();
    let payload = unhex(
        &baileys
            .call(
                "login_payload",
                json!({ "jid": "15551234567:7@s.whatsapp.net" }),
            )
            .unwrap(),
    );
    let finish = unhex(
        &baileys
            .call(
                "finish",
                json!({
                    "id": start["id"],
                    "server_hello": hex::encode(&server_hello),
                    "noise_private": hex::encode(noise_key.private_key()),
                    "noise_public": hex::encode(noise_key.public_key()),
                    "payload": hex::encode(&payload),
                    "root_public": hex::encode(root.public_key),
                }),
            )
            .unwrap(),
    );
    let accepted = responder.finish(&finish[3..]).unwrap();
    assert_eq!(accepted.client_static, noise_key.public_key());
    assert_eq!(accepted.payload.username, Some(15_551_234_567));
    assert_eq!(accepted.payload.device, Some(7));
    assert_eq!(accepted.payload.passive, Some(true));

    let mut server = accepted.transport;
    let up = unhex(
        &baileys
            .call(
                "encrypt",
                json!({ "id": start["id"], "plaintext": "00f801" }),
            )
            .unwrap(),
    );
    assert_eq!(server.decrypt(&up[3..]).unwrap(), [0x00, 0xf8, 0x01]);
    let down = server.encrypt(b"\x00hello").unwrap();
    let plain = baileys
        .call(
            "decrypt",
            json!({ "id": start["id"], "ciphertext": hex::encode(&down) }),
        )
        .unwrap();
    assert_eq!(unhex(&plain), b"\x00hello");

    // Baileys' own check cannot refuse a forged chain: its `Curve.verify` treats anything that
    // does not throw as valid, and libsignal-node's `verifySignature` returns false instead of
    // throwing. So the test chain's signatures are checked with libsignal-node directly.
    let chain = CertChain::decode(
        ChainSpec::default()
            .encode(&identity.static_public())
            .as_slice(),
    )
    .unwrap();
    let verify = |oracle: &mut Oracle, key: [u8; 32], cert: &NoiseCertificate| {
        oracle
            .call(
                "verify_signature",
                json!({
                    "public": hex::encode(key),
                    "message": hex::encode(cert.details.as_ref().unwrap()),
                    "signature": hex::encode(cert.signature.as_ref().unwrap()),
                }),
            )
            .unwrap()
    };
    let intermediate = chain.intermediate.as_ref().unwrap();
    let leaf = chain.leaf.as_ref().unwrap();
    assert_eq!(
        verify(&mut baileys, root.public_key, intermediate),
        json!(true)
    );
    assert_eq!(
        verify(&mut baileys, TrustRoot::WHATSAPP.public_key, intermediate),
        json!(false)
    );
    let intermediate_key = NoiseKeyPair::from_private(ChainSpec::default().intermediate_private);
    assert_eq!(
        verify(&mut baileys, intermediate_key.public_key(), leaf),
        json!(true)
    );
    assert_eq!(verify(&mut baileys, root.public_key, leaf), json!(false));
}

/// The ServerHello the handshake benchmark replays (core cannot depend on walink-sim). This test
/// keeps the fixture equal to what the responder produces; `WALINK_WRITE_FIXTURES=1` rewrites it.
#[test]
fn bench_fixture_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../core/benches/noise_server_hello.hex");
    let (_, hello) = ClientHandshake::start(
        EphemeralKey::from_private([0x11; 32]),
        ChainSpec::default().trust_root(),
    );
    let (_, server_hello) =
        Responder::respond(&ServerIdentity::test(), SERVER_EPHEMERAL, &hello).unwrap();
    let expected = format!(
        "{}\n{}\n",
        hex::encode(ChainSpec::default().trust_root().public_key),
        hex::encode(&server_hello)
    );
    if std::env::var_os("WALINK_WRITE_FIXTURES").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);
}
