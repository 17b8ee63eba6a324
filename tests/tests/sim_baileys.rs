//! walink-sim's server against Baileys (tests/oracle): Baileys' Noise client completes a
//! handshake with the server over bytes, registers with Baileys' own registration payload and
//! receives pair-device; the phone scans Baileys' QR and Baileys' `configureSuccessfulPairing`
//! accepts the pair-success, whose reply the server accepts; libsignal-node verifies the
//! phone's account signature (Baileys' `Curve.verify` accepts anything, see decisions.md); and
//! the link-code stages interoperate with Baileys' pairing-code crypto.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sim_support;

use serde_json::{Value, json};
use sim_support::{Keys, Net, T0, bytes, iq};
use walink_core::binary::Node;
use walink_core::frame::FrameDecoder;
use walink_core::noise::NoiseKeyPair;
use walink_core::pair::KeyPair;
use walink_sim::noise_server::ChainSpec;
use walink_sim::oracle::Oracle;
use walink_sim::sim::{Server, ServerConfig, ServerEvent, ServerOutput};

const USER: &str = "15550001111";

fn unhex(value: &Value) -> Vec<u8> {
    hex::decode(value.as_str().unwrap()).unwrap()
}

/// A clamped private key, as libsignal makes them.
fn clamped(seed: u8) -> [u8; 32] {
    let mut private = [seed; 32];
    private[0] &= 248;
    private[31] &= 127;
    private[31] |= 64;
    private
}

/// Every byte the server sent on the one connection, then whether it closed.
fn drain(server: &mut Server) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut closed = false;
    while let Some(output) = server.poll_output() {
        match output {
            ServerOutput::Transmit { bytes, .. } => out.extend(bytes),
            ServerOutput::Close { .. } => closed = true,
        }
    }
    (out, closed)
}

fn ref_texts(node: &Value) -> Vec<String> {
    node["content"][0]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| String::from_utf8(unhex(&r["content"]["bytes"])).unwrap())
        .collect()
}

#[test]
fn baileys_registers_gets_pair_device_and_pairs_through_the_phone() {
    let mut baileys = Oracle::spawn("noise.mjs").unwrap();
    let mut pair = Oracle::spawn("pair.mjs").unwrap();
    let mut server = Server::new(ServerConfig::new([42; 32]));
    server.create_account(USER, "Alice").unwrap();
    let now = T0;

    // Baileys' client keys.
    let ephemeral = NoiseKeyPair::from_private(clamped(0x44));
    let noise = NoiseKeyPair::from_private(clamped(0x55));
    let identity_private = clamped(0x66);
    let identity = KeyPair::from_private(identity_private);
    let keys = Keys::new(0x66);
    let registration = baileys
        .call(
            "registration_payload",
            json!({
                "registration_id": 1234,
                "identity_public": hex::encode(identity.public()),
                "spk_id": 1,
                "spk_public": hex::encode(keys.registration.signed_prekey_public),
                "spk_signature": hex::encode(sign_spk(&identity_private, &keys.registration.signed_prekey_public)),
                "browser": ["Ubuntu", "Chrome", "22.04"],
            }),
        )
        .unwrap();

    // Handshake over bytes: Baileys' first write (header + ClientHello) in two chunks.
    let start = baileys
        .call(
            "start",
            json!({
                "ephemeral_private": hex::encode(ephemeral.private_key()),
                "ephemeral_public": hex::encode(ephemeral.public_key()),
            }),
        )
        .unwrap();
    let id = start["id"].clone();
    let first = unhex(&start["frame"]);
    let conn = server.connect(now);
    server.handle_bytes(now, conn, &first[..9]);
    server.handle_bytes(now, conn, &first[9..]);
    let (hello, closed) = drain(&mut server);
    assert!(!closed);
    let mut decoder = FrameDecoder::new();
    decoder.push(&hello);
    let server_hello = decoder.next_frame().unwrap().unwrap();
    let finish = unhex(
        &baileys
            .call(
                "finish",
                json!({
                    "id": id,
                    "server_hello": hex::encode(&server_hello),
                    "noise_private": hex::encode(noise.private_key()),
                    "noise_public": hex::encode(noise.public_key()),
                    "payload": registration,
                    "root_public": hex::encode(ChainSpec::default().trust_root().public_key),
                }),
            )
            .unwrap(),
    );
    server.handle_bytes(now, conn, &finish);
    let (down, closed) = drain(&mut server);
    assert!(!closed);
    let nodes = baileys
        .call("receive", json!({ "id": id, "bytes": hex::encode(&down) }))
        .unwrap();
    let pair_device = &nodes[0];
    assert_eq!(pair_device["tag"], "iq");
    assert_eq!(pair_device["attrs"]["xmlns"], "md");
    assert_eq!(pair_device["content"][0]["tag"], "pair-device");
    let refs = ref_texts(pair_device);
    assert_eq!(refs.len(), 6);

    // Baileys acks pair-device, shows its QR; the phone scans it.
    let ack = json!({ "tag": "iq", "attrs": { "to": "@s.whatsapp.net", "type": "result", "id": pair_device["attrs"]["id"] } });
    let up = unhex(
        &baileys
            .call("send_node", json!({ "id": id, "node": ack }))
            .unwrap(),
    );
    server.handle_bytes(now, conn, &up);
    let adv = [0x77u8; 32];
    let qr = pair
        .call(
            "qr",
            json!({
                "ref": refs[0],
                "noise": hex::encode(noise.public_key()),
                "identity": hex::encode(identity.public()),
                "adv": hex::encode(adv),
                "browser": ["Ubuntu", "Chrome", "22.04"],
            }),
        )
        .unwrap();
    server
        .phone_scan_qr(now, USER, qr.as_str().unwrap())
        .unwrap();
    let (down, _) = drain(&mut server);
    let nodes = baileys
        .call("receive", json!({ "id": id, "bytes": hex::encode(&down) }))
        .unwrap();
    let success = &nodes[0];
    assert_eq!(success["content"][0]["tag"], "pair-success");

    // libsignal (not Baileys' lenient Curve.verify) checks the phone's account signature.
    let device_identity = unhex(&success["content"][0]["content"][0]["content"]["bytes"]);
    let verdict = pair
        .call(
            "accountSignatureVerifies",
            json!({
                "deviceIdentity": hex::encode(&device_identity),
                "companionIdentity": hex::encode(identity.public()),
            }),
        )
        .unwrap();
    assert_eq!(verdict, json!(true));
    let other = KeyPair::from_private(clamped(0x67));
    let verdict = pair
        .call(
            "accountSignatureVerifies",
            json!({
                "deviceIdentity": hex::encode(&device_identity),
                "companionIdentity": hex::encode(other.public()),
            }),
        )
        .unwrap();
    assert_eq!(verdict, json!(false));

    // Baileys' companion accepts it (its HMAC check is real) and replies; the server checks
    // the device signature and ends the stream with 515.
    let answer = baileys
        .call(
            "pair_success",
            json!({
                "stanza": success,
                "adv_secret": hex::encode(adv),
                "identity_private": hex::encode(identity_private),
                "identity_public": hex::encode(identity.public()),
            }),
        )
        .unwrap();
    assert!(answer.get("error").is_none(), "{answer}");
    let wrong = baileys
        .call(
            "pair_success",
            json!({
                "stanza": success,
                "adv_secret": hex::encode([0x78u8; 32]),
                "identity_private": hex::encode(identity_private),
                "identity_public": hex::encode(identity.public()),
            }),
        )
        .unwrap();
    assert_eq!(wrong["error"], "Invalid account signature");
    let up = unhex(
        &baileys
            .call("send_node", json!({ "id": id, "node": answer["reply"] }))
            .unwrap(),
    );
    server.handle_bytes(now, conn, &up);
    let (down, closed) = drain(&mut server);
    assert!(
        !closed,
        "the server ends the stream and leaves the close to the client"
    );
    server.handle_closed(now, conn);
    let nodes = baileys
        .call("receive", json!({ "id": id, "bytes": hex::encode(&down) }))
        .unwrap();
    assert_eq!(nodes[0]["tag"], "stream:error");
    assert_eq!(nodes[0]["attrs"]["code"], "515");
    let events: Vec<ServerEvent> = std::iter::from_fn(|| server.poll_event()).collect();
    assert!(events.contains(&ServerEvent::Paired {
        conn,
        user: USER.into(),
        device: 1
    }));
    assert_eq!(
        server.account(USER).unwrap().devices[&1].noise_public,
        Some(noise.public_key())
    );

    // Baileys logs in as the new device and gets <success>.
    let login = baileys
        .call(
            "login_payload",
            json!({ "jid": format!("{USER}:1@s.whatsapp.net") }),
        )
        .unwrap();
    let start = baileys
        .call(
            "start",
            json!({
                "ephemeral_private": hex::encode(clamped(0x45)),
                "ephemeral_public": hex::encode(NoiseKeyPair::from_private(clamped(0x45)).public_key()),
            }),
        )
        .unwrap();
    let id = start["id"].clone();
    let conn = server.connect(now);
    server.handle_bytes(now, conn, &unhex(&start["frame"]));
    let (hello, _) = drain(&mut server);
    let finish = unhex(
        &baileys
            .call(
                "finish",
                json!({
                    "id": id,
                    "server_hello": hex::encode(&hello[3..]),
                    "noise_private": hex::encode(noise.private_key()),
                    "noise_public": hex::encode(noise.public_key()),
                    "payload": login,
                    "root_public": hex::encode(ChainSpec::default().trust_root().public_key),
                }),
            )
            .unwrap(),
    );
    server.handle_bytes(now, conn, &finish);
    let (down, closed) = drain(&mut server);
    assert!(!closed);
    let nodes = baileys
        .call("receive", json!({ "id": id, "bytes": hex::encode(&down) }))
        .unwrap();
    assert_eq!(nodes[0]["tag"], "success");
    assert_eq!(
        nodes[0]["attrs"]["lid"].as_str().unwrap().split('@').nth(1),
        Some("lid")
    );
}

fn sign_spk(identity_private: &[u8; 32], spk_public: &[u8; 32]) -> [u8; 64] {
    let mut message = [5u8; 33];
    message[1..].copy_from_slice(spk_public);
    walink_core::signal::xeddsa::sign(identity_private, &message, &[3; 64])
}

/// The link-code stages with Baileys' crypto on the companion side: the companion's wrapped
/// key is built from Baileys' PBKDF2 and AES-CTR, the phone's primary_hello is opened by
/// Baileys' companion_finish computation, and the adv secret the phone derives from the bundle
/// is the one Baileys derived: Baileys' pairing accepts the pair-success it keys.
#[test]
fn link_code_stages_interoperate_with_baileys_pairing_code_crypto() {
    let mut pair = Oracle::spawn("pair.mjs").unwrap();
    let mut net = Net::new(43);
    net.server.create_account(USER, "Alice").unwrap();
    let keys = Keys::new(0x20);
    let conn = net.connect(&keys, 0x21, keys.registration_payload());
    let _ = net.take(conn, "iq");

    let code = pair
        .call("crockford", json!({ "bytes": "0a1b2c3d4e" }))
        .unwrap();
    let code = code.as_str().unwrap().to_owned();
    let link_private = clamped(0x31);
    let link = KeyPair::from_private(link_private);
    let salt = [0x32u8; 32];
    let iv = [0x33u8; 16];
    let key = unhex(
        &pair
            .call(
                "pairingKey",
                json!({ "code": code, "salt": hex::encode(salt) }),
            )
            .unwrap(),
    );
    let ciphertext = unhex(
        &pair
            .call(
                "ctr",
                json!({ "key": hex::encode(&key), "iv": hex::encode(iv), "data": hex::encode(link.public()) }),
            )
            .unwrap(),
    );
    let wrapped = [&salt[..], &iv, &ciphertext].concat();
    net.send(
        conn,
        &iq(
            "h1",
            "set",
            "md",
            vec![
                Node::new("link_code_companion_reg")
                    .attr("jid", format!("{USER}@s.whatsapp.net"))
                    .attr("stage", "companion_hello")
                    .children_from([
                        bytes("link_code_pairing_wrapped_companion_ephemeral_pub", wrapped),
                        bytes(
                            "companion_server_auth_key_pub",
                            keys.noise.public_key().to_vec(),
                        ),
                        bytes("companion_platform_id", b"1".to_vec()),
                        bytes("companion_platform_display", b"Chrome (Mac OS)".to_vec()),
                        bytes("link_code_pairing_nonce", vec![0]),
                    ]),
            ],
        ),
    );
    let reply = net.take(conn, "iq");
    let reference = reply
        .child("link_code_companion_reg")
        .unwrap()
        .child("link_code_pairing_ref")
        .unwrap()
        .content_bytes()
        .unwrap()
        .to_vec();
    net.server.phone_enter_code(net.now, USER, &code).unwrap();
    let hello = net.take(conn, "notification");
    let stage = hello.child("link_code_companion_reg").unwrap();
    let wrapped_primary = stage
        .child("link_code_pairing_wrapped_primary_ephemeral_pub")
        .unwrap()
        .content_bytes()
        .unwrap();
    let primary_identity = stage
        .child("primary_identity_pub")
        .unwrap()
        .content_bytes()
        .unwrap();
    let finish = pair
        .call(
            "baileysCompanionFinish",
            json!({
                "code": code,
                "linkPrivate": hex::encode(link_private),
                "identityPrivate": hex::encode(keys.identity_private),
                "identityPublic": hex::encode(keys.identity.public()),
                "primaryIdentity": hex::encode(primary_identity),
                "wrappedPrimary": hex::encode(wrapped_primary),
                "advRandom": hex::encode([0x41u8; 32]),
                "bundleSalt": hex::encode([0x42u8; 32]),
                "nonce": hex::encode([0x43u8; 12]),
            }),
        )
        .unwrap();
    net.send(
        conn,
        &iq(
            "h2",
            "set",
            "md",
            vec![
                Node::new("link_code_companion_reg")
                    .attr("jid", format!("{USER}@s.whatsapp.net"))
                    .attr("stage", "companion_finish")
                    .children_from([
                        bytes(
                            "link_code_pairing_wrapped_key_bundle",
                            unhex(&finish["bundle"]),
                        ),
                        bytes("companion_identity_public", keys.identity.public().to_vec()),
                        bytes("link_code_pairing_ref", reference),
                    ]),
            ],
        ),
    );
    assert_eq!(net.take(conn, "iq").attr_str("type"), Some("result"));
    let success = net.take(conn, "iq");
    let device_identity = success
        .child("pair-success")
        .unwrap()
        .child("device-identity")
        .unwrap()
        .content_bytes()
        .unwrap();
    let theirs = pair
        .call(
            "baileysPairing",
            json!({
                "deviceIdentity": hex::encode(device_identity),
                "advSecret": finish["advSecret"],
                "identityPrivate": hex::encode(keys.identity_private),
                "identityPublic": hex::encode(keys.identity.public()),
            }),
        )
        .unwrap();
    assert!(theirs.get("error").is_none(), "{theirs}");
    // And the reply Baileys built passes the server's check.
    let reply = unhex(&theirs["reply"]);
    net.send(
        conn,
        &iq(
            success.attr_str("id").unwrap(),
            "result",
            "md",
            vec![
                Node::new("pair-device-sign").children_from([Node::new("device-identity")
                    .attr("key-index", theirs["keyIndex"].as_str().unwrap().to_owned())
                    .bytes(reply)]),
            ],
        ),
    );
    assert_eq!(net.take(conn, "stream:error").attr_str("code"), Some("515"));
}
