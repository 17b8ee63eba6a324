//! The Noise handshake end to end: walink's client against walink-sim's responder, walink's
//! bytes against Baileys' noise handler with the same keys, and Baileys' client against the same
//! responder (with Baileys' `WA_CERT_DETAILS` pointed at the test root).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use prost::Message;
use serde_json::{Value, json};
use walink_core::binary::Node;
use walink_core::frame::{self, CONNECTION_HEADER, FrameDecoder};
use walink_core::noise::payload::{ClientProfile, WebVersion, login_payload};
use walink_core::noise::{ClientHandshake, EphemeralKey, NoiseKeyPair, PROLOGUE, TrustRoot};
use walink_core::proto::wa::CertChain;
use walink_core::proto::wa::cert_chain::NoiseCertificate;
use walink_sim::noise_server::{ChainSpec, Responder, ServerIdentity};
use walink_sim::oracle::Oracle;

/// 2027-01-15, inside the test chain's validity.
const NOW_MS: u64 = 1_800_000_000_000;
const SERVER_EPHEMERAL: [u8; 32] = [0x33; 32];

fn framed(payload: &[u8]) -> Vec<u8> {
    frame::encode_frame(payload).unwrap()
}

/// Cuts framed bytes into exactly one frame payload.
fn unframe(bytes: &[u8]) -> Vec<u8> {
    let mut decoder = FrameDecoder::new();
    decoder.push(bytes);
    let payload = decoder.next_frame().unwrap().unwrap();
    assert_eq!(decoder.next_frame().unwrap(), None);
    payload
}

/// Attributes in key order: serde_json objects are sorted, and Baileys keeps object order.
fn ping() -> Node {
    Node::new("iq")
        .attr("id", "1.2-3")
        .attr("type", "get")
        .attr("xmlns", "w:p")
        .children_from([Node::new("ping")])
}

fn ping_json() -> Value {
    json!({
        "tag": "iq",
        "attrs": { "id": "1.2-3", "xmlns": "w:p", "type": "get" },
        "content": [{ "tag": "ping", "attrs": {}, "content": null }],
    })
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
    // Nodes, one frame each, in both directions.
    let sent = client.encrypt_node(&ping()).unwrap();
    assert_eq!(server.decrypt_node(&unframe(&sent)).unwrap(), ping());
    let reply = Node::new("iq").attr("id", "1.2-3").attr("type", "result");
    let sent = server.encrypt_node(&reply).unwrap();
    assert_eq!(client.decrypt_node(&unframe(&sent)).unwrap(), reply);
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
    let mut first = frame::connection_header(None).unwrap();
    assert_eq!(first, PROLOGUE);
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
    // A node: walink's codec + cipher + framing against Baileys' encodeBinaryNode + encodeFrame.
    let ours = client.encrypt_node(&ping()).unwrap();
    let theirs = baileys
        .call("send_node", json!({ "id": id, "node": ping_json() }))
        .unwrap();
    assert_eq!(unhex(&theirs), ours);
    assert_eq!(server.decrypt_node(&unframe(&ours)).unwrap(), ping());
}

/// The same comparison against whatsapp-rust's Noise implementation (whatsapp-rust-bridge):
/// with walink's keys and the responder's ServerHello, its ClientFinish and transport frames
/// equal walink's, and it decrypts the same certificate chain.
#[test]
fn walink_bytes_equal_whatsapp_rust_bytes() {
    let mut oracle = Oracle::spawn("noise.mjs").unwrap();
    let identity = ServerIdentity::test();
    let root = ChainSpec::default().trust_root();
    let ephemeral_private = [0x11; 32];
    let ephemeral = EphemeralKey::from_private(ephemeral_private);
    let ephemeral_public = ephemeral.public_key();
    let noise_key = NoiseKeyPair::from_private([0x22; 32]);
    let (client, hello) = ClientHandshake::start(ephemeral, root);
    let (_, server_hello) = Responder::respond(&identity, SERVER_EPHEMERAL, &hello).unwrap();
    let payload = login_payload(&profile(), 15_551_234_567, 7).encode_to_vec();
    let done = client
        .finish(&server_hello, &noise_key, &payload, NOW_MS)
        .unwrap();
    let mut transport = done.transport;
    let plaintexts: Vec<Vec<u8>> = vec![vec![0], vec![0x5a; 200], vec![7; 65_536]];
    let theirs = oracle
        .call(
            "bridge_handshake",
            json!({
                "ephemeral_private": hex::encode(ephemeral_private),
                "ephemeral_public": hex::encode(ephemeral_public),
                "server_hello": hex::encode(&server_hello),
                "noise_private": hex::encode(noise_key.private_key()),
                "noise_public": hex::encode(noise_key.public_key()),
                "payload": hex::encode(&payload),
                "plaintexts": plaintexts.iter().map(hex::encode).collect::<Vec<_>>(),
            }),
        )
        .unwrap();
    assert_eq!(
        unhex(&theirs["chain"]),
        ChainSpec::default().encode(&identity.static_public())
    );
    assert_eq!(unhex(&theirs["client_finish"]), done.client_finish);
    for (plaintext, frame) in plaintexts.iter().zip(theirs["frames"].as_array().unwrap()) {
        assert_eq!(unhex(frame), transport.encrypt(plaintext).unwrap());
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
    assert_eq!(first[..4], CONNECTION_HEADER);
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

    // Nodes both ways: Baileys' codec on one side, walink's on the other.
    let up = unhex(
        &baileys
            .call(
                "send_node",
                json!({ "id": start["id"], "node": ping_json() }),
            )
            .unwrap(),
    );
    assert_eq!(server.decrypt_node(&unframe(&up)).unwrap(), ping());
    let down = server.encrypt_node(&ping()).unwrap();
    let nodes = baileys
        .call(
            "receive",
            json!({ "id": start["id"], "bytes": hex::encode(&down) }),
        )
        .unwrap();
    assert_eq!(nodes, json!([ping_json()]));

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

/// transport.md A.3 (a synthetic transcript whose certificate is a placeholder) reproduced by
/// whatsapp-rust's implementation, so the vector walink's unit test replays is itself checked
/// by an independent implementation.
#[test]
fn a3_transcript_is_reproduced_by_whatsapp_rust() {
    let mut oracle = Oracle::spawn("noise.mjs").unwrap();
    let theirs = oracle
        .call(
            "bridge_handshake",
            json!({
                "ephemeral_private": hex::encode([1u8; 32]),
                "ephemeral_public": hex::encode(EphemeralKey::from_private([1; 32]).public_key()),
                "server_hello": "1a7b0a205dfedd3b6bd47f6fa28ee15d969d5bb0ea53774d488bdaf9df1c6e0124b3ef22\
                    1230fad351e77ceb11c0a3c7a310c84044831d305ad1677bb5b736eff6f6392eee8cdc9e\
                    71ab200c437245ad235dd9ed16941a254675fd8f85a50efd4f9712c329ba2aa49dbb1270\
                    998ef8238aa48b5e096d62499f230369ad",
                "noise_private": hex::encode([2u8; 32]),
                "noise_public": hex::encode(NoiseKeyPair::from_private([2; 32]).public_key()),
                "payload": hex::encode(b"CLIENTPAYLOAD-PLACEHOLDER"),
                "plaintexts": ["00"],
            }),
        )
        .unwrap();
    assert_eq!(unhex(&theirs["chain"]), b"CERTCHAIN-PLACEHOLDER");
    assert_eq!(
        theirs["client_finish"],
        json!(
            "225d0a306f7715b54f3863d7c6b58baab8f65a070327545ff9ce8db3e46a1e6447aaea6f\
             3936f0b881493e1535a737159851cce312297a977c4258f86fa0ec7cb5ad102422e7d21cf\
             d76c1fb623c145cbc0122f342465b29bce8f94586e708"
        )
    );
    assert_eq!(
        theirs["frames"],
        json!(["d07b506f2f6549ba03ecd5b08268efafc4"])
    );
}
