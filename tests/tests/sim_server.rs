//! walink-sim's server driven by a hand-wired companion (walink-core's Noise client, codec and
//! pairing crypto, not walink's Client): handshake, pairing by QR and by code, login, prekeys,
//! device lists, delivery and stream errors, and seeded reproducibility.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sim_support;

use sim_support::{Keys, Net, bytes, iq};
use walink_core::binary::{Jid, Node};
use walink_core::pair::code::{FinishRandom, PairingCode, companion_finish, wrap_ephemeral_key};
use walink_core::pair::{AdvSecret, ClientType, KeyPair, qr_payload, verify_device_identity};
use walink_sim::sim::{CloseReason, ConnId, ServerEvent, SimError, StreamErrorKind};

const USER: &str = "15550001111";

fn refs(net: &mut Net, conn: ConnId) -> (String, Vec<String>) {
    let pair_device = net.take(conn, "iq");
    assert_eq!(pair_device.attr_str("xmlns"), Some("md"));
    assert_eq!(pair_device.attr_str("type"), Some("set"));
    let refs: Vec<String> = pair_device
        .child("pair-device")
        .unwrap()
        .children_by_tag("ref")
        .map(|r| String::from_utf8(r.content_bytes().unwrap().to_vec()).unwrap())
        .collect();
    (pair_device.attr_str("id").unwrap().to_owned(), refs)
}

fn qr(keys: &Keys, reference: &str, adv: &AdvSecret) -> String {
    let noise = KeyPair::from_private(keys.noise.private_key());
    qr_payload(reference, &noise, &keys.identity, adv, ClientType::Chrome)
}

/// Answers pair-success as a companion does (walink-core's ADV check) and returns the device.
fn answer_pair_success(net: &mut Net, conn: ConnId, keys: &Keys, adv: &AdvSecret) -> u16 {
    let success = net.take(conn, "iq");
    let pair = success.child("pair-success").unwrap();
    let identity = pair
        .child("device-identity")
        .unwrap()
        .content_bytes()
        .unwrap();
    let device = pair.child("device").unwrap().attr_jid("jid").unwrap();
    assert_eq!(device.user, USER);
    let lid = pair.child("device").unwrap().attr_jid("lid").unwrap();
    assert_eq!(lid.server, "lid");
    assert_eq!(lid.device, device.device);
    let verified = verify_device_identity(identity, adv, &keys.identity, &[7; 64]).unwrap();
    let reply = iq(
        success.attr_str("id").unwrap(),
        "result",
        "md",
        vec![
            Node::new("pair-device-sign").children_from([Node::new("device-identity")
                .attr("key-index", verified.key_index.to_string())
                .bytes(verified.reply)]),
        ],
    );
    net.send(conn, &reply);
    device.device
}

fn pair_by_qr(net: &mut Net, keys: &Keys, ephemeral: u8) -> u16 {
    let conn = net.connect(keys, ephemeral, keys.registration_payload());
    let (id, refs) = refs(net, conn);
    assert_eq!(refs.len(), 6);
    net.send(conn, &iq(&id, "result", "md", vec![]));
    let adv = AdvSecret::new([ephemeral; 32]);
    net.server
        .phone_scan_qr(net.now, USER, &qr(keys, &refs[0], &adv))
        .unwrap();
    let device = answer_pair_success(net, conn, keys, &adv);
    let error = net.take(conn, "stream:error");
    assert_eq!(error.attr_str("code"), Some("515"));
    // WhatsApp ends the stream and lets the client close the socket.
    assert_eq!(net.closed(conn), None);
    net.server.handle_closed(net.now, conn);
    device
}

fn login(net: &mut Net, keys: &Keys, device: u16, ephemeral: u8) -> ConnId {
    let conn = net.connect(keys, ephemeral, keys.login_payload(USER, device));
    let success = net.take(conn, "success");
    let lid = success.attr_jid("lid").unwrap();
    assert_eq!(lid.device, device);
    assert!(success.attr_str("t").is_some());
    net.send(conn, &iq("a1", "set", "passive", vec![Node::new("active")]));
    assert_eq!(net.take(conn, "iq").attr_str("type"), Some("result"));
    conn
}

fn net_with_account(seed: u8) -> Net {
    let mut net = Net::new(seed);
    net.server.create_account(USER, "Alice").unwrap();
    net
}

#[test]
fn qr_pairing_then_restart_then_login() {
    let mut net = net_with_account(1);
    let keys = Keys::new(10);
    let device = pair_by_qr(&mut net, &keys, 20);
    assert_eq!(device, 1);
    assert!(net.server.account(USER).unwrap().devices.contains_key(&1));

    let conn = login(&mut net, &keys, device, 21);
    let edge = net.take(conn, "ib");
    assert!(
        edge.child("edge_routing")
            .unwrap()
            .child("routing_info")
            .is_some()
    );
    let marker = net.take(conn, "ib");
    assert_eq!(
        marker.child("offline").unwrap().attr_str("count"),
        Some("0")
    );
    // Keepalive.
    net.send(conn, &iq("p1", "get", "w:p", vec![]));
    let pong = net.take(conn, "iq");
    assert_eq!(pong.attr_str("id"), Some("p1"));
    assert_eq!(pong.attr_str("type"), Some("result"));
}

#[test]
fn unknown_or_removed_device_gets_failure_401() {
    let mut net = net_with_account(2);
    let keys = Keys::new(10);
    let conn = net.connect(&keys, 30, keys.login_payload(USER, 4));
    assert_eq!(net.take(conn, "failure").attr_str("reason"), Some("401"));
    assert_eq!(net.closed(conn), Some(&CloseReason::Failure(401)));

    let device = pair_by_qr(&mut net, &keys, 20);
    let conn = login(&mut net, &keys, device, 21);
    net.server.remove_device(USER, device).unwrap();
    net.pump();
    let error = net.take(conn, "stream:error");
    assert_eq!(error.attr_str("code"), Some("401"));
    assert_eq!(
        error.child("conflict").unwrap().attr_str("type"),
        Some("device_removed")
    );
    let again = net.connect(&keys, 31, keys.login_payload(USER, device));
    assert_eq!(net.take(again, "failure").attr_str("reason"), Some("401"));

    // Another noise key claiming the device is refused too.
    let device = pair_by_qr(&mut net, &keys, 22);
    let other = Keys::new(50);
    let conn = net.connect(&other, 32, other.login_payload(USER, device));
    assert_eq!(net.take(conn, "failure").attr_str("reason"), Some("401"));
}

#[test]
fn wrong_adv_secret_is_reported_by_the_companion_and_nothing_is_paired() {
    let mut net = net_with_account(3);
    let keys = Keys::new(10);
    let conn = net.connect(&keys, 20, keys.registration_payload());
    let (_, refs) = refs(&mut net, conn);
    // The QR shows one secret; the companion checks against another.
    let shown = AdvSecret::new([1; 32]);
    net.server
        .phone_scan_qr(net.now, USER, &qr(&keys, &refs[0], &shown))
        .unwrap();
    let success = net.take(conn, "iq");
    let identity = success
        .child("pair-success")
        .unwrap()
        .child("device-identity")
        .unwrap()
        .content_bytes()
        .unwrap();
    let error =
        verify_device_identity(identity, &AdvSecret::new([2; 32]), &keys.identity, &[0; 64])
            .unwrap_err();
    let (code, text) = error.reply_error();
    net.send(
        conn,
        &iq(
            success.attr_str("id").unwrap(),
            "error",
            "md",
            vec![
                Node::new("error")
                    .attr("code", code.to_string())
                    .attr("text", text),
            ],
        ),
    );
    let events: Vec<ServerEvent> = std::iter::from_fn(|| net.server.poll_event()).collect();
    assert!(events.contains(&ServerEvent::PairRejectedByCompanion {
        conn,
        code: 401,
        text: "hmac-mismatch".into()
    }));
    assert_eq!(net.server.account(USER).unwrap().devices.len(), 1);
    assert_eq!(net.closed(conn), None);
}

#[test]
fn a_forged_device_signature_is_refused() {
    let mut net = net_with_account(4);
    let keys = Keys::new(10);
    let conn = net.connect(&keys, 20, keys.registration_payload());
    let (_, refs) = refs(&mut net, conn);
    let adv = AdvSecret::new([9; 32]);
    net.server
        .phone_scan_qr(net.now, USER, &qr(&keys, &refs[0], &adv))
        .unwrap();
    let success = net.take(conn, "iq");
    let identity = success
        .child("pair-success")
        .unwrap()
        .child("device-identity")
        .unwrap()
        .content_bytes()
        .unwrap();
    let verified = verify_device_identity(identity, &adv, &keys.identity, &[0; 64]).unwrap();
    let mut forged = verified.reply.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    net.send(
        conn,
        &iq(
            success.attr_str("id").unwrap(),
            "result",
            "md",
            vec![
                Node::new("pair-device-sign").children_from([Node::new("device-identity")
                    .attr("key-index", verified.key_index.to_string())
                    .bytes(forged)]),
            ],
        ),
    );
    let events: Vec<ServerEvent> = std::iter::from_fn(|| net.server.poll_event()).collect();
    assert!(events.contains(&ServerEvent::BadDeviceSignature { conn }));
    assert_eq!(net.server.account(USER).unwrap().devices.len(), 1);
}

/// A registration on a new connection whose first ref the phone scans with `shown` (the QR
/// text, given the connection's keys, first ref and adv secret) and whose pair-success the
/// companion answers; returns the connection once the server's stream end arrived.
fn pair_until_the_stream_end(
    net: &mut Net,
    seed: u8,
    shown: impl Fn(&Keys, &str, &AdvSecret) -> String,
) -> ConnId {
    let keys = Keys::new(seed);
    let conn = net.connect(&keys, seed, keys.registration_payload());
    let (_, issued) = refs(net, conn);
    let adv = AdvSecret::new([seed; 32]);
    let text = shown(&keys, &issued[0], &adv);
    assert_eq!(net.server.phone_scan_qr(net.now, USER, &text), Ok(conn));
    answer_pair_success(net, conn, &keys, &adv);
    assert_eq!(net.take(conn, "stream:error").attr_str("code"), Some("515"));
    conn
}

/// After pair-success the server sends the `515` and leaves the socket open for the client to
/// close; a client that does not is closed after `STREAM_END_CLOSE_MS`, and nothing it sends
/// meanwhile is handled. The abrupt close of older simulations stays as a fault option.
#[test]
fn the_stream_end_after_pairing_leaves_the_close_to_the_client() {
    let mut net = net_with_account(31);
    let conn = pair_until_the_stream_end(&mut net, 20, qr);
    assert_eq!(net.closed(conn), None);
    net.send(conn, &iq("late", "get", "w:p", vec![]));
    assert!(net.probes[&conn].inbox.is_empty(), "nothing is answered");
    net.advance(walink_sim::sim::STREAM_END_CLOSE_MS - 1);
    assert_eq!(net.closed(conn), None);
    net.advance(1);
    assert_eq!(
        net.closed(conn),
        Some(&CloseReason::StreamError(StreamErrorKind::RestartRequired))
    );

    // The fault: the socket closes with the 515.
    net.server.set_abrupt_restart(true);
    let conn = pair_until_the_stream_end(&mut net, 21, qr);
    assert_eq!(
        net.closed(conn),
        Some(&CloseReason::StreamError(StreamErrorKind::RestartRequired))
    );
}

/// Phones accept the four-field QR (`ref,noise,identity,adv`) older companions show, without
/// the client type, and pair as with five fields.
#[test]
fn a_four_field_qr_pairs() {
    let mut net = net_with_account(32);
    let four_fields = |keys: &Keys, reference: &str, adv: &AdvSecret| {
        let five = qr(keys, reference, adv);
        let four = five.rsplit_once(',').unwrap().0.to_owned();
        assert_eq!(four.matches(',').count(), 3);
        four
    };
    pair_until_the_stream_end(&mut net, 22, four_fields);
    assert_eq!(net.server.account(USER).unwrap().devices.len(), 2);
}

#[test]
fn qr_checks_ref_lifetime_keys_and_client_type() {
    let mut net = net_with_account(5);
    let keys = Keys::new(10);
    let conn = net.connect(&keys, 20, keys.registration_payload());
    let (_, refs) = refs(&mut net, conn);
    let adv = AdvSecret::new([3; 32]);
    let other = Keys::new(77);
    let noise = KeyPair::from_private(keys.noise.private_key());
    assert_eq!(
        net.server
            .phone_scan_qr(net.now, USER, &qr(&other, &refs[0], &adv)),
        Err(SimError::KeyMismatch)
    );
    let firefox = qr_payload(&refs[0], &noise, &keys.identity, &adv, ClientType::Firefox);
    assert_eq!(
        net.server.phone_scan_qr(net.now, USER, &firefox),
        Err(SimError::ClientTypeMismatch {
            expected: '1',
            found: '3'
        })
    );
    assert!(matches!(
        net.server.phone_scan_qr(net.now, USER, "not,a,qr"),
        Err(SimError::Phone(_))
    ));
    // The first ref lives 60 s, the sixth until 160 s.
    net.advance(60_000);
    assert_eq!(
        net.server
            .phone_scan_qr(net.now, USER, &qr(&keys, &refs[0], &adv)),
        Err(SimError::RefExpired)
    );
    net.advance(99_999);
    net.server
        .phone_scan_qr(net.now, USER, &qr(&keys, &refs[5], &adv))
        .unwrap();
    assert_eq!(net.closed(conn), None);
}

fn companion_hello(
    net: &mut Net,
    conn: ConnId,
    keys: &Keys,
    number: &str,
    link: &KeyPair,
    code: &PairingCode,
) -> Node {
    let wrapped = wrap_ephemeral_key(code, link.public(), &[4; 32], &[5; 16]);
    let node = iq(
        "c1",
        "set",
        "md",
        vec![
            Node::new("link_code_companion_reg")
                .attr("jid", format!("{number}@s.whatsapp.net"))
                .attr("stage", "companion_hello")
                .attr("should_show_push_notification", "true")
                .children_from([
                    bytes(
                        "link_code_pairing_wrapped_companion_ephemeral_pub",
                        wrapped.to_vec(),
                    ),
                    bytes(
                        "companion_server_auth_key_pub",
                        keys.noise.public_key().to_vec(),
                    ),
                    bytes("companion_platform_id", b"1".to_vec()),
                    bytes("companion_platform_display", b"Chrome (Linux)".to_vec()),
                    bytes("link_code_pairing_nonce", vec![0]),
                ]),
        ],
    );
    net.send(conn, &node);
    net.take(conn, "iq")
}

#[test]
fn code_pairing_stages() {
    let mut net = net_with_account(6);
    let keys = Keys::new(10);
    let conn = net.connect(&keys, 20, keys.registration_payload());
    let _ = refs(&mut net, conn);
    let link = KeyPair::from_private([0x61; 32]);
    let code = PairingCode::from_random([1, 2, 3, 4, 5]);

    // Typed errors first: a bad number, then an injected rate limit.
    let reply = companion_hello(&mut net, conn, &keys, "0123", &link, &code);
    assert_eq!(reply.attr_str("type"), Some("error"));
    assert_eq!(reply.child("error").unwrap().attr_str("code"), Some("400"));
    net.server.fail_next_link_code(429);
    let reply = companion_hello(&mut net, conn, &keys, USER, &link, &code);
    assert_eq!(reply.child("error").unwrap().attr_str("code"), Some("429"));
    assert_eq!(
        reply.child("error").unwrap().attr_str("text"),
        Some("rate-overlimit")
    );

    let reply = companion_hello(&mut net, conn, &keys, USER, &link, &code);
    assert_eq!(reply.attr_str("type"), Some("result"));
    let reference = reply
        .child("link_code_companion_reg")
        .unwrap()
        .child("link_code_pairing_ref")
        .unwrap()
        .content_bytes()
        .unwrap()
        .to_vec();

    net.server
        .phone_enter_code(net.now, USER, &code.display())
        .unwrap();
    let hello = net.take(conn, "notification");
    assert_eq!(hello.attr_str("type"), Some("link_code_companion_reg"));
    let stage = hello.child("link_code_companion_reg").unwrap();
    assert_eq!(stage.attr_str("stage"), Some("primary_hello"));
    assert_eq!(
        stage
            .child("link_code_pairing_ref")
            .unwrap()
            .content_bytes(),
        Some(&reference[..])
    );
    let wrapped = stage
        .child("link_code_pairing_wrapped_primary_ephemeral_pub")
        .unwrap()
        .content_bytes()
        .unwrap();
    let primary: [u8; 32] = stage
        .child("primary_identity_pub")
        .unwrap()
        .content_bytes()
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(
        primary,
        net.server.account(USER).unwrap().phone.identity_public()
    );
    let finish = companion_finish(
        &code,
        &link,
        &keys.identity,
        &primary,
        wrapped,
        &FinishRandom {
            adv_random: [8; 32],
            bundle_salt: [9; 32],
            nonce: [10; 12],
        },
    )
    .unwrap();
    net.send(
        conn,
        &iq(
            "c2",
            "set",
            "md",
            vec![
                Node::new("link_code_companion_reg")
                    .attr("jid", format!("{USER}@s.whatsapp.net"))
                    .attr("stage", "companion_finish")
                    .children_from([
                        bytes(
                            "link_code_pairing_wrapped_key_bundle",
                            finish.wrapped_key_bundle,
                        ),
                        bytes("companion_identity_public", keys.identity.public().to_vec()),
                        bytes("link_code_pairing_ref", reference),
                    ]),
            ],
        ),
    );
    assert_eq!(net.take(conn, "iq").attr_str("id"), Some("c2"));
    let device = answer_pair_success(&mut net, conn, &keys, &finish.adv_secret);
    assert_eq!(net.take(conn, "stream:error").attr_str("code"), Some("515"));
    assert!(
        net.server
            .account(USER)
            .unwrap()
            .devices
            .contains_key(&device)
    );
}

#[test]
fn a_mistyped_code_pairs_nothing() {
    let mut net = net_with_account(7);
    let keys = Keys::new(10);
    let conn = net.connect(&keys, 20, keys.registration_payload());
    let _ = refs(&mut net, conn);
    let link = KeyPair::from_private([0x61; 32]);
    let code = PairingCode::from_random([1, 2, 3, 4, 5]);
    let reply = companion_hello(&mut net, conn, &keys, USER, &link, &code);
    let reference = reply
        .child("link_code_companion_reg")
        .unwrap()
        .child("link_code_pairing_ref")
        .unwrap()
        .content_bytes()
        .unwrap()
        .to_vec();
    let typo = PairingCode::from_random([1, 2, 3, 4, 6]);
    net.server
        .phone_enter_code(net.now, USER, typo.as_str())
        .unwrap();
    let hello = net.take(conn, "notification");
    let stage = hello.child("link_code_companion_reg").unwrap();
    let wrapped = stage
        .child("link_code_pairing_wrapped_primary_ephemeral_pub")
        .unwrap()
        .content_bytes()
        .unwrap();
    let primary: [u8; 32] = stage
        .child("primary_identity_pub")
        .unwrap()
        .content_bytes()
        .unwrap()
        .try_into()
        .unwrap();
    let finish = companion_finish(
        &code,
        &link,
        &keys.identity,
        &primary,
        wrapped,
        &FinishRandom {
            adv_random: [8; 32],
            bundle_salt: [9; 32],
            nonce: [10; 12],
        },
    )
    .unwrap();
    net.send(
        conn,
        &iq(
            "c2",
            "set",
            "md",
            vec![
                Node::new("link_code_companion_reg")
                    .attr("stage", "companion_finish")
                    .children_from([
                        bytes(
                            "link_code_pairing_wrapped_key_bundle",
                            finish.wrapped_key_bundle,
                        ),
                        bytes("companion_identity_public", keys.identity.public().to_vec()),
                        bytes("link_code_pairing_ref", reference),
                    ]),
            ],
        ),
    );
    assert_eq!(net.take(conn, "iq").attr_str("type"), Some("result"));
    let events: Vec<ServerEvent> = std::iter::from_fn(|| net.server.poll_event()).collect();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ServerEvent::LinkCodeBundleRejected { .. }))
    );
    assert!(net.probes[&conn].inbox.is_empty(), "no pair-success");
}

fn prekey_upload(keys: &Keys, ids: std::ops::Range<u32>) -> Node {
    let list = ids.map(|id| {
        Node::new("key").children_from([
            bytes("id", id.to_be_bytes()[1..].to_vec()),
            bytes(
                "value",
                KeyPair::from_private([id as u8; 32]).public().to_vec(),
            ),
        ])
    });
    iq(
        "k1",
        "set",
        "encrypt",
        vec![
            bytes("registration", 4242u32.to_be_bytes().to_vec()),
            bytes("type", vec![5]),
            bytes("identity", keys.identity.public().to_vec()),
            Node::new("list").children_from(list),
            Node::new("skey").children_from([
                bytes("id", vec![0, 0, 1]),
                bytes("value", keys.registration.signed_prekey_public.to_vec()),
                bytes(
                    "signature",
                    keys.registration.signed_prekey_signature.to_vec(),
                ),
            ]),
        ],
    )
}

fn count(net: &mut Net, conn: ConnId) -> String {
    net.send(conn, &iq("n", "get", "encrypt", vec![Node::new("count")]));
    let reply = net.take(conn, "iq");
    reply
        .child("count")
        .unwrap()
        .attr_str("value")
        .unwrap()
        .to_owned()
}

#[test]
fn prekeys_upload_count_fetch_and_device_lists() {
    let mut net = net_with_account(8);
    let alice = Keys::new(10);
    let bob = Keys::new(40);
    let a = pair_by_qr(&mut net, &alice, 20);
    let b = pair_by_qr(&mut net, &bob, 22);
    let a_conn = login(&mut net, &alice, a, 21);
    let b_conn = login(&mut net, &bob, b, 23);
    assert_eq!(count(&mut net, a_conn), "0");
    net.send(a_conn, &prekey_upload(&alice, 1..4));
    assert_eq!(net.take(a_conn, "iq").attr_str("type"), Some("result"));
    assert_eq!(count(&mut net, a_conn), "3");

    // Bob fetches Alice's device bundle and the phone's: one one-time prekey each is consumed.
    let a_jid = Jid::device(USER, a, "s.whatsapp.net");
    let phone = Jid::new(USER, "s.whatsapp.net");
    net.send(
        b_conn,
        &iq(
            "f1",
            "get",
            "encrypt",
            vec![Node::new("key").children_from([
                Node::new("user").attr("jid", a_jid.clone()),
                Node::new("user").attr("jid", phone.clone()),
                Node::new("user").attr("jid", Jid::new("19998887777", "s.whatsapp.net")),
            ])],
        ),
    );
    let reply = net.take(b_conn, "iq");
    let users: Vec<&Node> = reply.child("list").unwrap().children().iter().collect();
    assert_eq!(users.len(), 3);
    assert_eq!(users[0].attr_jid("jid"), Some(a_jid));
    assert_eq!(
        users[0].child("identity").unwrap().content_bytes(),
        Some(&alice.identity.public()[..])
    );
    assert_eq!(
        users[0]
            .child("key")
            .unwrap()
            .child("id")
            .unwrap()
            .content_bytes(),
        Some(&[0u8, 0, 1][..])
    );
    assert_eq!(
        users[1].child("identity").unwrap().content_bytes(),
        Some(&net.server.account(USER).unwrap().phone.identity_public()[..])
    );
    assert!(users[1].child("skey").is_some());
    assert_eq!(
        users[2].child("error").unwrap().attr_str("code"),
        Some("404")
    );
    assert_eq!(count(&mut net, a_conn), "2");
    // Alice runs low: the server asks her for more, once until she uploads.
    let low = net.take(a_conn, "notification");
    assert_eq!(low.attr_str("type"), Some("encrypt"));
    assert_eq!(low.child("count").unwrap().attr_str("value"), Some("2"));
    net.send(
        b_conn,
        &iq(
            "f2",
            "get",
            "encrypt",
            vec![Node::new("key").children_from([
                Node::new("user").attr("jid", Jid::device(USER, a, "s.whatsapp.net")),
            ])],
        ),
    );
    let _ = net.take(b_conn, "iq");
    assert!(
        net.probes[&a_conn]
            .inbox
            .iter()
            .all(|n| n.tag != "notification")
    );

    // usync: the phone and both companions, with their key indexes.
    net.send(
        b_conn,
        &iq(
            "u1",
            "get",
            "usync",
            vec![
                Node::new("usync")
                    .attr("sid", "s1")
                    .attr("mode", "query")
                    .attr("context", "message")
                    .children_from([
                        Node::new("query")
                            .children_from([Node::new("devices").attr("version", "2")]),
                        Node::new("list").children_from([Node::new("user").attr("jid", phone)]),
                    ]),
            ],
        ),
    );
    let reply = net.take(b_conn, "iq");
    let user = reply
        .child("usync")
        .unwrap()
        .child("list")
        .unwrap()
        .child("user")
        .unwrap();
    let devices: Vec<(String, Option<String>)> = user
        .child("devices")
        .unwrap()
        .child("device-list")
        .unwrap()
        .children()
        .iter()
        .map(|d| {
            (
                d.attr_str("id").unwrap().to_owned(),
                d.attr_str("key-index").map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(
        devices,
        vec![
            ("0".into(), None),
            ("1".into(), Some("1".into())),
            ("2".into(), Some("2".into()))
        ]
    );
}

#[test]
fn messages_route_to_devices_and_queue_offline() {
    let mut net = net_with_account(9);
    net.server.create_account("15550002222", "Bob").unwrap();
    let alice = Keys::new(10);
    let a = pair_by_qr(&mut net, &alice, 20);
    let a_conn = login(&mut net, &alice, a, 21);
    let _ = net.take(a_conn, "ib");
    let phone = Jid::new("15550002222", "s.whatsapp.net");
    let message = Node::new("message")
        .attr("id", "M1")
        .attr("to", phone.clone())
        .attr("type", "text")
        .children_from([Node::new("participants").children_from([Node::new("to")
            .attr("jid", phone.clone())
            .children_from([Node::new("enc")
                .attr("v", "2")
                .attr("type", "pkmsg")
                .bytes(vec![1, 2, 3])])])]);
    net.send(a_conn, &message);
    let ack = net.take(a_conn, "ack");
    assert_eq!(ack.attr_str("class"), Some("message"));
    assert_eq!(ack.attr_str("id"), Some("M1"));
    // Bob's phone takes it at once; [1, 2, 3] is no Signal message, so it records a failure
    // (never a silent drop).
    let inbox = net.server.phone_messages("15550002222").unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].id, "M1");
    assert_eq!(
        inbox[0].from,
        Jid::device(USER, a, "s.whatsapp.net").to_string()
    );
    assert!(inbox[0].text.is_none() && inbox[0].error.is_some());

    // A second companion of Alice is offline: a copy for it (own device) waits in its queue,
    // with `recipient` naming the chat.
    let other = Keys::new(60);
    let b = pair_by_qr(&mut net, &other, 25);
    let own = Jid::device(USER, b, "s.whatsapp.net");
    net.send(
        a_conn,
        &Node::new("message")
            .attr("id", "M2")
            .attr("to", phone.clone())
            .attr("type", "text")
            .children_from([Node::new("participants").children_from([Node::new("to")
                .attr("jid", own)
                .children_from([Node::new("enc")
                    .attr("v", "2")
                    .attr("type", "msg")
                    .bytes(vec![4, 5])])])]),
    );
    let _ = net.take(a_conn, "ack");
    let queued = &net.server.account(USER).unwrap().devices[&b].offline;
    assert_eq!(queued.len(), 1);
    assert_eq!(
        queued[0].attr_jid("from"),
        Some(Jid::device(USER, a, "s.whatsapp.net"))
    );
    assert_eq!(queued[0].attr_jid("recipient"), Some(phone.clone()));
    assert_eq!(
        queued[0].child("enc").unwrap().content_bytes(),
        Some(&[4u8, 5][..])
    );

    // A replaced connection: the second login of the same device takes over.
    let second = net.connect(&alice, 24, alice.login_payload(USER, a));
    let _ = net.take(second, "success");
    let error = net.take(a_conn, "stream:error");
    assert_eq!(
        error.child("conflict").unwrap().attr_str("type"),
        Some("replaced")
    );
    assert_eq!(
        net.closed(a_conn),
        Some(&CloseReason::StreamError(StreamErrorKind::Replaced))
    );
}

/// Runs one scenario and returns the transcript hash.
fn scenario(seed: u8) -> [u8; 32] {
    let mut net = net_with_account(seed);
    let keys = Keys::new(10);
    let device = pair_by_qr(&mut net, &keys, 20);
    let conn = login(&mut net, &keys, device, 21);
    net.send(conn, &prekey_upload(&keys, 1..20));
    net.server
        .send_stream_error(conn, StreamErrorKind::ServerError(503))
        .unwrap();
    net.pump();
    net.server.transcript_hash()
}

#[test]
fn the_same_seed_gives_the_same_transcript() {
    let first = scenario(11);
    assert_eq!(first, scenario(11));
    assert_ne!(first, scenario(12));
}

#[test]
fn handshake_timeout_and_bad_bytes_close_the_connection() {
    let mut net = net_with_account(13);
    let conn = net.server.connect(net.now);
    net.server
        .handle_bytes(net.now, conn, b"WA\x06\x03\x00\x00\x02\x12");
    assert_eq!(net.server.poll_timeout(), Some(net.now + 20_000));
    net.server.handle_timeout(net.now + 19_999);
    assert_eq!(net.server.poll_output(), None);
    net.server.handle_timeout(net.now + 20_000);
    assert_eq!(
        net.server.poll_output(),
        Some(walink_sim::sim::ServerOutput::Close {
            conn,
            reason: CloseReason::Timeout
        })
    );
    let conn = net.server.connect(net.now);
    net.server.handle_bytes(net.now, conn, b"XX\x06\x03");
    assert!(matches!(
        net.server.poll_output(),
        Some(walink_sim::sim::ServerOutput::Close {
            reason: CloseReason::Protocol(_),
            ..
        })
    ));
}

struct CompanionPreKeys {
    signed_id: u32,
    signed_private: [u8; 32],
}

impl walink_core::signal::PreKeySource for CompanionPreKeys {
    fn signed_pre_key(
        &self,
        id: walink_core::signal::SignedPreKeyId,
    ) -> Option<walink_core::signal::KeyPair> {
        (id.0 == self.signed_id).then(|| {
            walink_core::signal::KeyPair::from_private(walink_core::signal::PrivateKey::from_bytes(
                self.signed_private,
            ))
        })
    }

    fn pre_key(&self, id: walink_core::signal::PreKeyId) -> Option<walink_core::signal::KeyPair> {
        Some(walink_core::signal::KeyPair::from_private(
            walink_core::signal::PrivateKey::from_bytes([id.0 as u8; 32]),
        ))
    }
}

/// The phones speak Signal through the server like any device: Bob's phone writes to Alice,
/// reaching Alice's phone and her companion (which decrypts with walink-core's Signal code and
/// answers); Alice's phone and Bob's phone read what they were sent.
#[test]
fn phones_exchange_signal_messages_with_a_companion() {
    use prost::Message as _;
    use walink_core::proto::wa;
    use walink_core::signal::{IdentityKeyPair, PrivateKey, SessionRecord, pad, unpad};
    use walink_sim::sim::SimRng;

    const BOB: &str = "15550002222";
    let mut net = net_with_account(14);
    net.server.create_account(BOB, "Bob").unwrap();
    let alice = Keys::new(10);
    let a = pair_by_qr(&mut net, &alice, 20);
    let conn = login(&mut net, &alice, a, 21);
    net.send(conn, &prekey_upload(&alice, 1..4));
    let _ = net.take(conn, "ib");
    let _ = net.take(conn, "iq");

    let id = net
        .server
        .phone_send_text(net.now, BOB, USER, "hello alice")
        .unwrap();
    net.pump();
    let inbox = net.server.phone_messages(USER).unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].text.as_deref(), Some("hello alice"));
    assert_eq!(inbox[0].chat, format!("{BOB}@s.whatsapp.net"));
    assert_eq!(inbox[0].id, id);

    let message = net.take(conn, "message");
    assert_eq!(message.attr_str("id"), Some(id.as_str()));
    assert_eq!(
        message.attr_jid("from"),
        Some(Jid::new(BOB, "s.whatsapp.net"))
    );
    let enc = message.child("enc").unwrap();
    assert_eq!(enc.attr_str("type"), Some("pkmsg"));
    let identity = IdentityKeyPair::from_private(PrivateKey::from_bytes(alice.identity_private));
    let mut rng = SimRng::from_u64(1);
    let mut session = SessionRecord::new();
    let keys = CompanionPreKeys {
        signed_id: 1,
        signed_private: [11; 32],
    };
    let done = session
        .decrypt_pre_key_message(
            enc.content_bytes().unwrap(),
            &identity,
            4242,
            &keys,
            &mut rng,
        )
        .unwrap();
    let text = wa::Message::decode(unpad(&done.plaintext).unwrap()).unwrap();
    assert_eq!(text.conversation.as_deref(), Some("hello alice"));
    // One of Alice's companion prekeys was consumed by the phone's bundle fetch.
    assert_eq!(count(&mut net, conn), "2");

    // The companion acknowledges with a receipt and answers on the session.
    net.send(
        conn,
        &Node::new("receipt")
            .attr("id", id.clone())
            .attr("to", Jid::new(BOB, "s.whatsapp.net")),
    );
    assert_eq!(net.take(conn, "ack").attr_str("class"), Some("receipt"));
    let reply = wa::Message {
        conversation: Some("hi bob".into()),
        ..Default::default()
    };
    let ciphertext = session
        .encrypt(&pad(&reply.encode_to_vec(), &mut rng))
        .unwrap();
    let bob_phone = Jid::new(BOB, "s.whatsapp.net");
    net.send(
        conn,
        &Node::new("message")
            .attr("id", "R1")
            .attr("to", bob_phone.clone())
            .attr("type", "text")
            .children_from([Node::new("participants").children_from([Node::new("to")
                .attr("jid", bob_phone)
                .children_from([Node::new("enc")
                    .attr("v", "2")
                    .attr("type", ciphertext.enc_type())
                    .bytes(ciphertext.serialize().to_vec())])])]),
    );
    assert_eq!(net.take(conn, "ack").attr_str("id"), Some("R1"));
    let inbox = net.server.phone_messages(BOB).unwrap();
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert_eq!(inbox[0].text.as_deref(), Some("hi bob"));
    assert_eq!(inbox[0].from, format!("{USER}:{a}@s.whatsapp.net"));
    // Bob's phone sent a delivery receipt back to the companion.
    let receipt = net.take(conn, "receipt");
    assert_eq!(receipt.attr_str("id"), Some("R1"));
}

#[test]
fn refresh_notification_injected_login_failures_and_reissued_refs() {
    let mut net = net_with_account(15);
    let keys = Keys::new(10);
    let conn = net.connect(&keys, 20, keys.registration_payload());
    let _ = refs(&mut net, conn);
    net.server
        .send_companion_reg_refresh(net.now, conn)
        .unwrap();
    let refresh = net.take(conn, "notification");
    assert_eq!(refresh.attr_str("type"), Some("companion_reg_refresh"));
    assert!(refresh.child("companion_reg_refresh").is_some());

    let device = pair_by_qr(&mut net, &keys, 21);
    net.server.fail_next_login(405);
    let refused = net.connect(&keys, 22, keys.login_payload(USER, device));
    assert_eq!(net.take(refused, "failure").attr_str("reason"), Some("405"));
    // Only the next login: the one after succeeds.
    let _ = login(&mut net, &keys, device, 23);

    // With re-issuing on, an unpaired connection gets fresh refs once all six expired.
    let mut config = walink_sim::sim::ServerConfig::new([16; 32]);
    config.reissue_refs = true;
    net.server = walink_sim::sim::Server::new(config);
    net.probes.clear();
    net.server.create_account(USER, "Alice").unwrap();
    let conn = net.connect(&keys, 24, keys.registration_payload());
    let (_, first) = refs(&mut net, conn);
    net.advance(159_999);
    assert!(net.probes[&conn].inbox.is_empty());
    net.advance(1);
    let (_, second) = refs(&mut net, conn);
    assert_eq!(second.len(), 6);
    assert!(first.iter().all(|r| !second.contains(r)));
}

/// Groups: create by IQ, metadata query, fan-out of a group message to every member device
/// except the sender (its own `to` entries, then the skmsg), and group receipts.
#[test]
fn groups_create_query_fan_out_and_receipts() {
    const BOB: &str = "15550002222";
    let mut net = net_with_account(17);
    net.server.create_account(BOB, "Bob").unwrap();
    let alice = Keys::new(10);
    let second = Keys::new(60);
    let a = pair_by_qr(&mut net, &alice, 20);
    let b = pair_by_qr(&mut net, &second, 22);
    let a_conn = login(&mut net, &alice, a, 21);
    let _ = net.take(a_conn, "ib");

    let mut create = iq(
        "g1",
        "set",
        "w:g2",
        vec![
            Node::new("create")
                .attr("subject", "Friends")
                .children_from([
                    Node::new("participant").attr("jid", Jid::new(BOB, "s.whatsapp.net"))
                ]),
        ],
    );
    // Addressed to the group server (replacing the helper's `to`, as a client sends it).
    create.set_attr("to", Jid::new("", "g.us"));
    net.send(a_conn, &create);
    let created = net.take(a_conn, "iq");
    let group_node = created.child("group").unwrap();
    assert_eq!(group_node.attr_str("subject"), Some("Friends"));
    let group = Jid::new(group_node.attr_str("id").unwrap(), "g.us");
    let mut query = iq(
        "g2",
        "get",
        "w:g2",
        vec![Node::new("query").attr("request", "interactive")],
    );
    query.set_attr("to", group.clone());
    net.send(a_conn, &query);
    let info = net.take(a_conn, "iq");
    let members: Vec<Jid> = info
        .child("group")
        .unwrap()
        .children_by_tag("participant")
        .map(|p| p.attr_jid("jid").unwrap())
        .collect();
    assert_eq!(
        members,
        vec![
            Jid::new(USER, "s.whatsapp.net"),
            Jid::new(BOB, "s.whatsapp.net")
        ]
    );

    let own = Jid::device(USER, b, "s.whatsapp.net");
    net.send(
        a_conn,
        &Node::new("message")
            .attr("id", "G1")
            .attr("to", group.clone())
            .attr("type", "text")
            .children_from([
                Node::new("participants").children_from([Node::new("to")
                    .attr("jid", own.clone())
                    .children_from([Node::new("enc")
                        .attr("v", "2")
                        .attr("type", "pkmsg")
                        .bytes(vec![7])])]),
                Node::new("enc")
                    .attr("v", "2")
                    .attr("type", "skmsg")
                    .bytes(vec![9, 9]),
            ]),
    );
    assert_eq!(
        net.take(a_conn, "ack").attr_jid("from"),
        Some(group.clone())
    );
    // Alice's other companion: its distribution message, then the skmsg (after the group's
    // creation notification, queued first).
    let queued = net.server.account(USER).unwrap().devices[&b]
        .offline
        .iter()
        .find(|node| node.tag == "message")
        .unwrap()
        .clone();
    assert_eq!(queued.attr_jid("from"), Some(group.clone()));
    assert_eq!(
        queued.attr_jid("participant"),
        Some(Jid::device(USER, a, "s.whatsapp.net"))
    );
    let types: Vec<&str> = queued
        .children_by_tag("enc")
        .map(|e| e.attr_str("type").unwrap())
        .collect();
    assert_eq!(types, ["pkmsg", "skmsg"]);
    // Bob's phone got the skmsg only, with no sender key: it records that it could not read
    // it.
    let inbox = net.server.phone_messages(BOB).unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].chat, group.to_string());
    assert!(inbox[0].text.is_none() && inbox[0].error.is_some());

    // The other companion logs in, reads the backlog and sends a group receipt.
    let b_conn = login(&mut net, &second, b, 23);
    let created = net.take(b_conn, "notification");
    assert_eq!(created.attr_str("type"), Some("w:gp2"));
    net.send(
        b_conn,
        &Node::new("ack")
            .attr("id", created.attr_str("id").unwrap().to_owned())
            .attr("class", "notification"),
    );
    let message = net.take(b_conn, "message");
    assert_eq!(message.attr_str("offline"), Some("1"));
    net.send(
        b_conn,
        &Node::new("receipt")
            .attr("id", "G1")
            .attr("to", group.clone())
            .attr("participant", Jid::device(USER, a, "s.whatsapp.net")),
    );
    // Alice's own phone and Bob's phone answered with delivery receipts already; then the
    // companion's.
    let mut receipts = Vec::new();
    while net.probes[&a_conn].inbox.iter().any(|n| n.tag == "receipt") {
        receipts.push(net.take(a_conn, "receipt"));
    }
    let participants: Vec<Jid> = receipts
        .iter()
        .map(|r| {
            assert_eq!(r.attr_jid("from"), Some(group.clone()));
            r.attr_jid("participant").unwrap()
        })
        .collect();
    assert_eq!(
        participants,
        vec![
            Jid::new(USER, "s.whatsapp.net"),
            Jid::new(BOB, "s.whatsapp.net"),
            own
        ]
    );
    assert!(
        net.server.account(USER).unwrap().devices[&b]
            .unacked
            .is_empty()
    );
}

/// The phone reads group messages: a companion distributes its sender key to the phone in a
/// pkmsg (session from the phone's bundle, fetched through the server) and sends the text as
/// a skmsg; the phone's inbox has the text, in the group's chat.
#[test]
fn the_phone_reads_a_sender_key_group_message() {
    use prost::Message as _;
    use walink_core::proto::wa;
    use walink_core::signal::{
        IdentityKey, IdentityKeyPair, PreKeyBundle, PreKeyId, PrivateKey, PublicKey,
        SenderKeyRecord, SessionRecord, SignedPreKeyId, pad,
    };
    use walink_sim::sim::SimRng;

    const BOB: &str = "15550002222";
    let mut net = net_with_account(18);
    net.server.create_account(BOB, "Bob").unwrap();
    let alice = Keys::new(10);
    let a = pair_by_qr(&mut net, &alice, 20);
    let conn = login(&mut net, &alice, a, 21);
    let group = net
        .server
        .create_group(net.now, USER, "Friends", &[BOB])
        .unwrap();

    // Bob's phone bundle, through the server.
    let bob_phone = Jid::new(BOB, "s.whatsapp.net");
    net.send(
        conn,
        &iq(
            "f",
            "get",
            "encrypt",
            vec![
                Node::new("key").children_from([Node::new("user").attr("jid", bob_phone.clone())]),
            ],
        ),
    );
    let reply = net.take(conn, "iq");
    let user = reply.child("list").unwrap().child("user").unwrap();
    let raw = |node: &Node, tag: &str| node.child(tag).unwrap().content_bytes().unwrap().to_vec();
    let be = |bytes: Vec<u8>| bytes.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
    let skey = user.child("skey").unwrap();
    let key = user.child("key").unwrap();
    let bundle = PreKeyBundle {
        registration_id: be(raw(user, "registration")),
        identity_key: IdentityKey(PublicKey::from_raw(
            raw(user, "identity").try_into().unwrap(),
        )),
        signed_pre_key_id: SignedPreKeyId(be(raw(skey, "id"))),
        signed_pre_key: PublicKey::from_raw(raw(skey, "value").try_into().unwrap()),
        signed_pre_key_signature: raw(skey, "signature").try_into().unwrap(),
        pre_key: Some((
            PreKeyId(be(raw(key, "id"))),
            PublicKey::from_raw(raw(key, "value").try_into().unwrap()),
        )),
    };
    let identity = IdentityKeyPair::from_private(PrivateKey::from_bytes(alice.identity_private));
    let mut rng = SimRng::from_u64(7);
    let mut session = SessionRecord::new();
    session
        .process_bundle(&bundle, &identity, 4242, &mut rng)
        .unwrap();

    let mut sender_key = SenderKeyRecord::new();
    let distribution = sender_key.create_distribution_message(&mut rng);
    let skdm = wa::Message {
        sender_key_distribution_message: Some(wa::message::SenderKeyDistributionMessage {
            group_id: Some(group.to_string()),
            axolotl_sender_key_distribution_message: Some(distribution.serialize().to_vec()),
        }),
        ..Default::default()
    };
    let pkmsg = session
        .encrypt(&pad(&skdm.encode_to_vec(), &mut rng))
        .unwrap();
    let text = wa::Message {
        conversation: Some("hello group".into()),
        ..Default::default()
    };
    let skmsg = sender_key
        .encrypt(&pad(&text.encode_to_vec(), &mut rng), &mut rng)
        .unwrap();
    net.send(
        conn,
        &Node::new("message")
            .attr("id", "G7")
            .attr("to", group.clone())
            .attr("type", "text")
            .children_from([
                Node::new("participants").children_from([Node::new("to")
                    .attr("jid", bob_phone)
                    .children_from([Node::new("enc")
                        .attr("v", "2")
                        .attr("type", pkmsg.enc_type())
                        .bytes(pkmsg.serialize().to_vec())])]),
                Node::new("enc")
                    .attr("v", "2")
                    .attr("type", "skmsg")
                    .bytes(skmsg),
            ]),
    );
    let inbox = net.server.phone_messages(BOB).unwrap();
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert_eq!(inbox[0].text.as_deref(), Some("hello group"), "{inbox:?}");
    assert_eq!(inbox[0].chat, group.to_string());
    assert_eq!(inbox[0].error, None);
}

/// A companion that could not decrypt a phone's message asks again with a retry receipt
/// carrying fresh keys; the phone starts a new session from them and resends to that device
/// only, with the retry count.
#[test]
fn the_phone_answers_a_retry_receipt() {
    use prost::Message as _;
    use walink_core::proto::wa;
    use walink_core::signal::{IdentityKeyPair, PrivateKey, SessionRecord, unpad};
    use walink_sim::sim::SimRng;

    const BOB: &str = "15550002222";
    let mut net = net_with_account(19);
    net.server.create_account(BOB, "Bob").unwrap();
    let alice = Keys::new(10);
    let a = pair_by_qr(&mut net, &alice, 20);
    let conn = login(&mut net, &alice, a, 21);
    let _ = net.take(conn, "ib");
    let id = net
        .server
        .phone_send_text(net.now, BOB, USER, "again please")
        .unwrap();
    let first = net.take(conn, "message");
    assert!(first.child("enc").unwrap().attr_str("count").is_none());

    // Pretend the first copy failed: ask again with a fresh one-time prekey (id 100).
    let fresh = walink_core::pair::KeyPair::from_private([100; 32]);
    net.send(
        conn,
        &Node::new("receipt")
            .attr("id", id.clone())
            .attr("to", Jid::new(BOB, "s.whatsapp.net"))
            .attr("type", "retry")
            .children_from([
                Node::new("retry")
                    .attr("count", "1")
                    .attr("id", id.clone())
                    .attr("t", "1800000000")
                    .attr("v", "1")
                    .attr("error", "0"),
                bytes("registration", 4242u32.to_be_bytes().to_vec()),
                Node::new("keys").children_from([
                    bytes("type", vec![5]),
                    bytes("identity", alice.identity.public().to_vec()),
                    Node::new("key").children_from([
                        bytes("id", vec![0, 0, 100]),
                        bytes("value", fresh.public().to_vec()),
                    ]),
                    Node::new("skey").children_from([
                        bytes("id", vec![0, 0, 1]),
                        bytes("value", alice.registration.signed_prekey_public.to_vec()),
                        bytes(
                            "signature",
                            alice.registration.signed_prekey_signature.to_vec(),
                        ),
                    ]),
                ]),
            ]),
    );
    let _ = net.take(conn, "ack");
    let resent = net.take(conn, "message");
    assert_eq!(resent.attr_str("id"), Some(id.as_str()));
    assert_eq!(
        resent.attr_jid("from"),
        Some(Jid::new(BOB, "s.whatsapp.net"))
    );
    let enc = resent.child("enc").unwrap();
    assert_eq!(enc.attr_str("count"), Some("1"));
    assert_eq!(enc.attr_str("type"), Some("pkmsg"));
    let identity = IdentityKeyPair::from_private(PrivateKey::from_bytes(alice.identity_private));
    let keys = CompanionPreKeys {
        signed_id: 1,
        signed_private: [11; 32],
    };
    let done = SessionRecord::new()
        .decrypt_pre_key_message(
            enc.content_bytes().unwrap(),
            &identity,
            4242,
            &keys,
            &mut SimRng::from_u64(3),
        )
        .unwrap();
    assert_eq!(done.consumed_pre_key.map(|k| k.0), Some(100));
    let message = wa::Message::decode(unpad(&done.plaintext).unwrap()).unwrap();
    assert_eq!(message.conversation.as_deref(), Some("again please"));
    // Nobody else got the resend.
    assert!(net.probes[&conn].inbox.iter().all(|n| n.tag != "message"));
}
