//! The client against a scripted server: the real Noise responder of walink-sim, and nodes
//! written by hand, to reach the states and failures the full simulation does not produce on
//! its own (a dead socket, a prekey refill, stray stanzas, a foreign certificate chain).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use walink_core::binary::{Jid, Node};
use walink_core::client::{
    Client, CloseReason, Command, CommandError, Config, Event, Output, ProtocolError, State,
    StateReason,
};
use walink_core::frame::{self, FrameDecoder};
use walink_core::noise::TransportCipher;
use walink_core::noise::payload::{ClientProfile, WebVersion};
use walink_core::store::{Change, Record, Space};
use walink_sim::noise_server::{ChainSpec, Responder, ServerIdentity};
use walink_sim::sim::{Faults, World};

const T0: u64 = 1_780_000_000_000;

fn config() -> Config {
    Config {
        trust_root: ChainSpec::default().trust_root(),
        unsafe_test_rng_seed: Some([3; 32]),
        ..Config::new(ClientProfile::new(
            WebVersion::new(2, 3000, 1_023_456_789),
            "walink",
        ))
    }
}

/// The records of a device paired through walink-sim.
fn paired_records() -> Vec<Record> {
    let mut world = World::new(77, T0, Faults::none());
    world.server.create_account("15551234567", "Alice").unwrap();
    let client = world.add_client(config());
    assert!(world.run_until(T0 + 10_000, |w| !w.clients[client].qrs().is_empty()));
    let qr = world.clients[client].qrs().last().unwrap().clone();
    let now = world.now;
    world.server.phone_scan_qr(now, "15551234567", &qr).unwrap();
    assert!(world.run_until(T0 + 30_000, |w| w.client_state(client)
        == Some(&State::Connected)));
    world.clients[client]
        .records()
        .into_iter()
        .filter(|r| r.space.loaded_at_start())
        .collect()
}

/// One client and a hand-driven server end.
struct Scripted {
    client: Client,
    now: u64,
    identity: ServerIdentity,
    decoder: FrameDecoder,
    responder: Option<Responder>,
    transport: Option<TransportCipher>,
    /// Nodes the client sent, in order.
    received: Vec<Node>,
    /// Every output, in order.
    outputs: Vec<Output>,
    /// Whether the host opens sockets when asked.
    accept: bool,
}

impl Scripted {
    fn new(records: Vec<Record>, identity: ServerIdentity) -> Scripted {
        let mut scripted = Scripted {
            client: Client::new(config(), records).unwrap(),
            now: T0,
            identity,
            decoder: FrameDecoder::expecting_header(),
            responder: None,
            transport: None,
            received: Vec::new(),
            outputs: Vec::new(),
            accept: true,
        };
        scripted.client.handle_timeout(T0);
        scripted.pump();
        scripted
    }

    fn pump(&mut self) {
        while let Some(output) = self.client.poll_output() {
            self.outputs.push(output.clone());
            match output {
                Output::Connect if self.accept => {
                    self.decoder = FrameDecoder::expecting_header();
                    self.responder = None;
                    self.transport = None;
                    self.client.handle_connected(self.now);
                }
                Output::Transmit(bytes) => self.server_receives(&bytes),
                Output::Close(_) => {
                    self.responder = None;
                    self.transport = None;
                }
                _ => {}
            }
        }
    }

    fn server_receives(&mut self, bytes: &[u8]) {
        self.decoder.push(bytes);
        while let Some(payload) = self.decoder.next_frame().unwrap() {
            if let Some(transport) = self.transport.as_mut() {
                self.received
                    .push(transport.decrypt_node(&payload).unwrap());
            } else if let Some(responder) = self.responder.take() {
                self.transport = Some(responder.finish(&payload).unwrap().transport);
            } else {
                let (responder, hello) =
                    Responder::respond(&self.identity, [9; 32], &payload).unwrap();
                self.responder = Some(responder);
                let framed = frame::encode_frame(&hello).unwrap();
                self.client.handle_bytes(self.now, &framed);
            }
        }
    }

    fn send(&mut self, node: &Node) {
        let framed = self.transport.as_mut().unwrap().encrypt_node(node).unwrap();
        self.client.handle_bytes(self.now, &framed);
        self.pump();
    }

    fn advance_to(&mut self, at: u64) {
        self.now = self.now.max(at);
        self.client.handle_timeout(self.now);
        self.pump();
    }

    /// The last IQ the client sent with this xmlns (and not answered yet by the script).
    fn iq(&self, xmlns: &str) -> Node {
        self.received
            .iter()
            .rev()
            .find(|n| n.tag == "iq" && n.attr_str("xmlns") == Some(xmlns))
            .cloned()
            .unwrap_or_else(|| panic!("no {xmlns} iq in {:?}", self.received))
    }

    fn result(&mut self, request: &Node, children: Vec<Node>) {
        let mut reply = Node::new("iq")
            .attr("from", Jid::server_jid())
            .attr("type", "result")
            .attr("id", request.attr_str("id").unwrap().to_owned());
        if !children.is_empty() {
            reply = reply.children_from(children);
        }
        self.send(&reply);
    }

    fn states(&self) -> Vec<(State, StateReason)> {
        self.outputs
            .iter()
            .filter_map(|o| match o {
                Output::Event(Event::State { state, reason }) => {
                    Some((state.clone(), reason.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// Logs in: `<success>`, then answers the prekey count with `count` and `<active/>`.
    fn log_in(&mut self, count: u32) {
        self.send(
            &Node::new("success")
                .attr("t", (self.now / 1000).to_string())
                .attr("lid", "123456789012345@lid"),
        );
        assert_eq!(self.client.state(), &State::LoggingIn);
        let count_iq = self.iq("encrypt");
        let active_iq = self.iq("passive");
        self.result(
            &count_iq,
            vec![Node::new("count").attr("value", count.to_string())],
        );
        self.result(&active_iq, Vec::new());
    }
}

#[test]
fn connected_only_after_the_post_login_round_trip() {
    let mut s = Scripted::new(paired_records(), ServerIdentity::test());
    assert_eq!(s.client.state(), &State::Handshaking);
    s.send(
        &Node::new("success")
            .attr("t", (s.now / 1000).to_string())
            .attr("lid", "123456789012345@lid"),
    );
    assert_eq!(s.client.state(), &State::LoggingIn);
    let count_iq = s.iq("encrypt");
    assert!(count_iq.child("count").is_some());
    let active_iq = s.iq("passive");
    assert!(active_iq.child("active").is_some());
    assert!(
        s.received
            .iter()
            .any(|n| n.tag == "ib" && n.child("unified_session").is_some())
    );
    s.result(&active_iq, Vec::new());
    assert_eq!(s.client.state(), &State::LoggingIn);
    s.result(&count_iq, vec![Node::new("count").attr("value", "40")]);
    assert_eq!(s.client.state(), &State::Connected);
    assert_eq!(
        s.states().last(),
        Some(&(State::Connected, StateReason::PostLoginDone))
    );
    assert_eq!(s.client.lid().unwrap().user, "123456789012345");
    assert!(s.client.lid().unwrap().device > 0);
}

#[test]
fn a_low_prekey_count_uploads_812_keys_persisted_first() {
    let mut s = Scripted::new(paired_records(), ServerIdentity::test());
    s.send(&Node::new("success").attr("t", (s.now / 1000).to_string()));
    let count_iq = s.iq("encrypt");
    let active_iq = s.iq("passive");
    s.result(&active_iq, Vec::new());
    let before = s.outputs.len();
    s.result(&count_iq, vec![Node::new("count").attr("value", "3")]);
    // Still logging in: the upload must be answered first.
    assert_eq!(s.client.state(), &State::LoggingIn);
    let upload = s.iq("encrypt");
    assert_eq!(upload.attr_str("type"), Some("set"));
    let keys = upload.child("list").unwrap().children();
    assert_eq!(keys.len(), 812);
    assert!(upload.child("skey").unwrap().child("signature").is_some());
    // The new prekeys were persisted before the upload left.
    let new = &s.outputs[before..];
    let persist = new
        .iter()
        .position(|o| matches!(o, Output::Persist(b) if b.changes.len() > 800))
        .unwrap();
    let transmit = new
        .iter()
        .position(|o| matches!(o, Output::Transmit(_)))
        .unwrap();
    assert!(persist < transmit);
    let Output::Persist(batch) = &new[persist] else {
        unreachable!()
    };
    assert!(batch.changes.iter().all(|c| matches!(c, Change::Put(_))));
    s.result(&upload, Vec::new());
    assert_eq!(s.client.state(), &State::Connected);

    // The server asks for more later: another batch, with new ids.
    let first_ids: Vec<Vec<u8>> = keys
        .iter()
        .map(|k| k.child("id").unwrap().content_bytes().unwrap().to_vec())
        .collect();
    s.send(
        &Node::new("notification")
            .attr("from", Jid::server_jid())
            .attr("id", "n1")
            .attr("type", "encrypt")
            .children_from([Node::new("count").attr("value", "2")]),
    );
    assert!(s.received.iter().any(|n| n.tag == "ack"
        && n.attr_str("id") == Some("n1")
        && n.attr_str("class") == Some("notification")));
    let refill = s.iq("encrypt");
    let ids: Vec<Vec<u8>> = refill
        .child("list")
        .unwrap()
        .children()
        .iter()
        .map(|k| k.child("id").unwrap().content_bytes().unwrap().to_vec())
        .collect();
    assert_eq!(ids.len(), 812);
    assert!(ids.iter().all(|id| !first_ids.contains(id)));
}

#[test]
fn a_dead_socket_is_detected_by_keepalive_and_replaced_at_once() {
    let mut s = Scripted::new(paired_records(), ServerIdentity::test());
    s.log_in(100);
    assert_eq!(s.client.state(), &State::Connected);
    // The first ping comes 15-30 s later; answer it.
    let logged_in = s.now;
    let next = s.client.poll_timeout().unwrap();
    assert!(
        (logged_in + 15_000..=logged_in + 30_000).contains(&next),
        "{next}"
    );
    s.advance_to(next);
    let ping = s.iq("w:p");
    assert_eq!(ping.attr_str("type"), Some("get"));
    s.result(&ping, Vec::new());
    // The next ping goes unanswered: 20 s later the socket counts as dead.
    let next = s.client.poll_timeout().unwrap();
    s.advance_to(next);
    let silent = s.iq("w:p");
    assert_ne!(silent.attr_str("id"), ping.attr_str("id"));
    s.accept = false;
    let sent_at = s.now;
    while s.client.state() == &State::Connected {
        let at = s.client.poll_timeout().unwrap();
        s.advance_to(at);
    }
    assert_eq!(s.now, sent_at + 20_000);
    assert!(
        s.outputs
            .contains(&Output::Close(CloseReason::KeepaliveTimeout))
    );
    assert_eq!(
        s.states().last(),
        Some(&(
            State::Connecting,
            StateReason::Closed(CloseReason::KeepaliveTimeout)
        ))
    );
}

#[test]
fn server_pings_are_answered_and_ib_notices_become_events() {
    let mut s = Scripted::new(paired_records(), ServerIdentity::test());
    s.log_in(100);
    s.send(
        &Node::new("iq")
            .attr("from", Jid::server_jid())
            .attr("id", "ping-1")
            .attr("type", "get")
            .attr("xmlns", "urn:xmpp:ping"),
    );
    let pong = s.received.last().unwrap().clone();
    assert_eq!(pong.attr_str("id"), Some("ping-1"));
    assert_eq!(pong.attr_str("type"), Some("result"));
    s.send(
        &Node::new("ib").children_from([Node::new("offline_preview")
            .attr("count", "7")
            .attr("message", "5")
            .attr("receipt", "2")]),
    );
    s.send(&Node::new("ib").children_from([Node::new("offline").attr("count", "7")]));
    s.send(
        &Node::new("ib").children_from([Node::new("dirty")
            .attr("type", "account_sync")
            .attr("timestamp", "1700000000")]),
    );
    let events: Vec<&Event> = s
        .outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e),
            _ => None,
        })
        .collect();
    assert!(events.iter().any(|e| matches!(
        e,
        Event::OfflinePreview(p) if p.count == 7 && p.messages == 5 && p.receipts == 2
    )));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::OfflineSyncDone { count: 7 }))
    );
    let clean = s.iq("urn:xmpp:whatsapp:dirty");
    assert_eq!(
        clean.child("clean").unwrap().attr_str("type"),
        Some("account_sync")
    );
    // An unknown server IQ is refused politely, and the connection stays up.
    s.send(
        &Node::new("iq")
            .attr("from", Jid::server_jid())
            .attr("id", "odd")
            .attr("type", "set")
            .attr("xmlns", "w:odd")
            .children_from([Node::new("odd")]),
    );
    let reply = s.received.last().unwrap();
    assert_eq!(reply.attr_str("type"), Some("error"));
    assert_eq!(reply.child("error").unwrap().attr_str("code"), Some("501"));
    assert_eq!(s.client.state(), &State::Connected);
}

#[test]
fn pair_device_is_accepted_only_from_the_server_with_one_child() {
    let mut s = Scripted::new(Vec::new(), ServerIdentity::test());
    let refs = || {
        Node::new("pair-device")
            .children_from((0..6).map(|i| Node::new("ref").bytes(format!("2@ref{i}").into_bytes())))
    };
    // From a user: refused, no QR.
    s.send(
        &Node::new("iq")
            .attr("from", "15550001111@s.whatsapp.net")
            .attr("id", "p1")
            .attr("type", "set")
            .attr("xmlns", "md")
            .children_from([refs()]),
    );
    // Two children: refused.
    s.send(
        &Node::new("iq")
            .attr("from", Jid::server_jid())
            .attr("id", "p2")
            .attr("type", "set")
            .attr("xmlns", "md")
            .children_from([refs(), Node::new("extra")]),
    );
    let qrs = |s: &Scripted| {
        s.outputs
            .iter()
            .filter(|o| matches!(o, Output::Event(Event::Qr { .. })))
            .count()
    };
    assert_eq!(qrs(&s), 0);
    assert_eq!(s.client.state(), &State::Handshaking);
    // The real thing: acknowledged, first QR for 60 s.
    s.send(
        &Node::new("iq")
            .attr("from", Jid::server_jid())
            .attr("id", "p3")
            .attr("type", "set")
            .attr("xmlns", "md")
            .children_from([refs()]),
    );
    let ack = s.received.last().unwrap();
    assert_eq!(ack.attr_str("id"), Some("p3"));
    assert_eq!(ack.attr_str("type"), Some("result"));
    assert_eq!(qrs(&s), 1);
    let qr = s
        .outputs
        .iter()
        .find_map(|o| match o {
            Output::Event(Event::Qr {
                payload,
                expires_at,
            }) => Some((payload.clone(), *expires_at)),
            _ => None,
        })
        .unwrap();
    assert!(qr.0.contains("#2@ref0,"), "{}", qr.0);
    assert_eq!(qr.1, s.now + 60_000);
    assert_eq!(
        s.client.state(),
        &State::AwaitingPairing {
            mode: walink_core::client::PairingMode::Qr
        }
    );
    // A pair-success with a forged identity is answered with 401 and nothing is stored.
    let persisted = s
        .outputs
        .iter()
        .filter(|o| matches!(o, Output::Persist(_)))
        .count();
    s.send(
        &Node::new("iq")
            .attr("from", Jid::server_jid())
            .attr("id", "ps")
            .attr("type", "set")
            .attr("xmlns", "md")
            .children_from([Node::new("pair-success").children_from([
                Node::new("device-identity").bytes(vec![0x0a, 0x02, 1, 2, 0x12, 0x02, 3, 4]),
                Node::new("device")
                    .attr("jid", "15551234567:4@s.whatsapp.net")
                    .attr("lid", "123:4@lid"),
                Node::new("platform").attr("name", "android"),
            ])]),
    );
    let reply = s.received.last().unwrap();
    assert_eq!(reply.attr_str("id"), Some("ps"));
    assert_eq!(reply.attr_str("type"), Some("error"));
    assert_eq!(reply.child("error").unwrap().attr_str("code"), Some("401"));
    assert_eq!(
        s.outputs
            .iter()
            .filter(|o| matches!(o, Output::Persist(_)))
            .count(),
        persisted
    );
    assert!(s.client.jid().is_none());
}

#[test]
fn a_foreign_certificate_chain_is_refused_and_retried_later() {
    let foreign = ChainSpec {
        intermediate_signer_private: [0x55; 32],
        ..ChainSpec::default()
    };
    let s = Scripted::new(Vec::new(), ServerIdentity::new([0x44; 32], &foreign));
    assert!(s.outputs.iter().any(|o| matches!(
        o,
        Output::Close(CloseReason::Protocol(ProtocolError::Handshake(_)))
    )));
    assert!(matches!(
        s.client.state(),
        State::Reconnecting { attempt: 1, .. }
    ));
}

#[test]
fn stream_end_and_unknown_stream_errors_back_off() {
    let mut s = Scripted::new(paired_records(), ServerIdentity::test());
    s.log_in(100);
    s.send(&Node::new("xmlstreamend"));
    assert!(matches!(
        s.states().last(),
        Some((
            State::Reconnecting { attempt: 1, .. },
            StateReason::Closed(CloseReason::ServerClosed)
        ))
    ));
    let at = s.client.poll_timeout().unwrap();
    s.advance_to(at);
    s.log_in(100);
    s.send(&Node::new("stream:error").children_from([Node::new("xml-not-well-formed")]));
    assert!(matches!(
        s.states().last(),
        Some((
            State::Reconnecting { attempt: 2, .. },
            StateReason::Closed(CloseReason::StreamError {
                code: None,
                conflict: None
            })
        ))
    ));
}

#[test]
fn edge_routing_is_stored_and_sent_in_front_of_the_next_header() {
    let mut s = Scripted::new(paired_records(), ServerIdentity::test());
    s.log_in(100);
    let routing = vec![8, 0, 8, 5];
    s.send(&Node::new("ib").children_from([
        Node::new("edge_routing").children_from([Node::new("routing_info").bytes(routing.clone())]),
    ]));
    let stored = s.outputs.iter().rev().find_map(|o| match o {
        Output::Persist(batch) => Some(batch.clone()),
        _ => None,
    });
    assert!(stored.is_some());
    // The next connection starts with the pre-intro: "ED" 0 1, 3-byte length, the blob, "WA".
    s.accept = false;
    s.send(&Node::new("stream:error").attr("code", "503"));
    let at = s.client.poll_timeout().unwrap();
    s.advance_to(at);
    assert!(s.outputs.ends_with(&[Output::Connect]));
    s.client.handle_connected(s.now);
    let Some(Output::Transmit(first)) = s.client.poll_output() else {
        panic!()
    };
    let mut expected = b"ED\x00\x01\x00\x00\x04".to_vec();
    expected.extend_from_slice(&routing);
    expected.extend_from_slice(b"WA\x06\x03");
    assert_eq!(&first[..expected.len()], expected.as_slice());
}

#[test]
fn pairing_code_refresh_and_primary_hello_limits() {
    use walink_core::client::{Command, CommandOutput};
    let mut s = Scripted::new(Vec::new(), ServerIdentity::test());
    s.send(
        &Node::new("iq")
            .attr("from", Jid::server_jid())
            .attr("id", "p1")
            .attr("type", "set")
            .attr("xmlns", "md")
            .children_from([Node::new("pair-device")
                .children_from([Node::new("ref").bytes(b"2@only".to_vec())])]),
    );
    let id = s.client.command(
        s.now,
        Command::PairWithCode {
            phone: "15551234567".into(),
        },
    );
    s.pump();
    let hello = s.iq("md");
    let reg = hello.child("link_code_companion_reg").unwrap();
    assert_eq!(reg.attr_str("stage"), Some("companion_hello"));
    assert_eq!(
        reg.child("companion_platform_display")
            .unwrap()
            .content_bytes(),
        Some(&b"Chrome (Linux)"[..])
    );
    assert_eq!(
        reg.child("link_code_pairing_nonce")
            .unwrap()
            .content_bytes(),
        Some(&[0u8][..])
    );
    let wrapped = reg
        .child("link_code_pairing_wrapped_companion_ephemeral_pub")
        .unwrap()
        .content_bytes()
        .unwrap()
        .to_vec();
    assert_eq!(wrapped.len(), 80);
    let reference = b"REF-1".to_vec();
    let answer = |reference: &[u8]| {
        vec![
            Node::new("link_code_companion_reg")
                .children_from([Node::new("link_code_pairing_ref").bytes(reference.to_vec())]),
        ]
    };
    s.result(&hello, answer(&reference));
    let codes = |s: &Scripted| -> Vec<String> {
        s.outputs
            .iter()
            .filter_map(|o| match o {
                Output::Event(Event::PairingCode { code }) => Some(code.clone()),
                _ => None,
            })
            .collect()
    };
    let first = codes(&s);
    assert_eq!(first.len(), 1);
    assert!(s.outputs.iter().any(|o| matches!(
        o,
        Output::Event(Event::CommandDone { id: done, result: Ok(CommandOutput::PairingCode(c)) })
            if *done == id && *c == first[0]
    )));

    // The server asks for a new code: a new companion_hello with a fresh link key.
    s.send(
        &Node::new("notification")
            .attr("from", Jid::server_jid())
            .attr("id", "r1")
            .attr("type", "link_code_companion_reg")
            .children_from([Node::new("link_code_companion_reg")
                .attr("stage", "refresh_code")
                .children_from([Node::new("link_code_pairing_ref").bytes(reference.clone())])]),
    );
    let again = s.iq("md");
    assert_ne!(again.attr_str("id"), hello.attr_str("id"));
    let rewrapped = again
        .child("link_code_companion_reg")
        .unwrap()
        .child("link_code_pairing_wrapped_companion_ephemeral_pub")
        .unwrap()
        .content_bytes()
        .unwrap()
        .to_vec();
    assert_ne!(rewrapped, wrapped);
    let reference = b"REF-2".to_vec();
    s.result(&again, answer(&reference));
    let both = codes(&s);
    assert_eq!(both.len(), 2);
    assert_ne!(both[0], both[1]);
    let dones = s
        .outputs
        .iter()
        .filter(|o| matches!(o, Output::Event(Event::CommandDone { .. })))
        .count();
    assert_eq!(dones, 1, "a refresh resolves no command");

    // primary_hello: the stale ref is ignored; the current one gets companion_finish.
    let primary_hello = |s: &mut Scripted, reference: &[u8], id: &'static str| {
        s.send(
            &Node::new("notification")
                .attr("from", Jid::server_jid())
                .attr("id", id)
                .attr("type", "link_code_companion_reg")
                .children_from([Node::new("link_code_companion_reg")
                    .attr("stage", "primary_hello")
                    .children_from([
                        Node::new("link_code_pairing_ref").bytes(reference.to_vec()),
                        Node::new("link_code_pairing_wrapped_primary_ephemeral_pub")
                            .bytes(vec![7; 80]),
                        Node::new("primary_identity_pub").bytes(vec![9; 32]),
                    ])]),
        );
    };
    let finishes = |s: &Scripted| {
        s.received
            .iter()
            .filter(|n| {
                n.child("link_code_companion_reg")
                    .and_then(|r| r.attr_str("stage"))
                    == Some("companion_finish")
            })
            .count()
    };
    primary_hello(&mut s, b"REF-1", "h0");
    assert_eq!(finishes(&s), 0);
    // At most three primary_hello per code are answered.
    for (n, id) in ["h1", "h2", "h3", "h4"].into_iter().enumerate() {
        primary_hello(&mut s, &reference, id);
        assert!(
            s.received
                .iter()
                .any(|n| n.tag == "ack" && n.attr_str("id") == Some(id))
        );
        assert_eq!(finishes(&s), (n + 1).min(3), "{id}");
    }
    let finish = s.iq("md");
    let reg = finish.child("link_code_companion_reg").unwrap();
    assert_eq!(
        reg.child("link_code_pairing_wrapped_key_bundle")
            .unwrap()
            .content_bytes()
            .unwrap()
            .len(),
        156
    );
    assert_eq!(
        reg.child("link_code_pairing_ref").unwrap().content_bytes(),
        Some(reference.as_slice())
    );
}

#[test]
fn a_logout_cut_short_by_the_network_still_logs_out() {
    use walink_core::client::{Command, CommandOutput};
    let mut s = Scripted::new(paired_records(), ServerIdentity::test());
    s.log_in(100);
    let id = s.client.command(s.now, Command::Logout);
    s.pump();
    let remove = s.iq("md");
    assert!(remove.child("remove-companion-device").is_some());
    // The socket dies before the answer.
    s.accept = false;
    s.client.handle_closed(s.now, CloseReason::Network);
    s.pump();
    assert_eq!(s.client.state(), &State::LoggedOut);
    assert!(s.outputs.iter().any(|o| matches!(
        o,
        Output::Persist(batch) if batch.changes == [Change::DeleteAll]
    )));
    let dones: Vec<_> = s
        .outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(Event::CommandDone { id: done, result }) if *done == id => {
                Some(result.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(dones, [Ok(CommandOutput::None)]);
    // It rests: no reconnect timer.
    assert_eq!(s.client.poll_timeout(), None);
}

#[test]
fn a_companion_hello_without_answer_times_out() {
    use walink_core::client::{Command, CommandError};
    let mut s = Scripted::new(Vec::new(), ServerIdentity::test());
    s.send(
        &Node::new("iq")
            .attr("from", Jid::server_jid())
            .attr("id", "p1")
            .attr("type", "set")
            .attr("xmlns", "md")
            .children_from([Node::new("pair-device").children_from(
                (0..6).map(|i| Node::new("ref").bytes(format!("2@{i}").into_bytes())),
            )]),
    );
    let requested = s.now;
    let id = s.client.command(
        s.now,
        Command::PairWithCode {
            phone: "15551234567".into(),
        },
    );
    s.pump();
    let result = loop {
        let at = s.client.poll_timeout().unwrap();
        assert!(at <= requested + 61_000);
        s.advance_to(at);
        // Keep the connection alive: answer pings, nothing else.
        let pings: Vec<Node> = s
            .received
            .drain(..)
            .filter(|n| n.attr_str("xmlns") == Some("w:p"))
            .collect();
        for ping in pings {
            s.result(&ping, Vec::new());
        }
        if let Some(result) = s.outputs.iter().find_map(|o| match o {
            Output::Event(Event::CommandDone { id: done, result }) if *done == id => {
                Some(result.clone())
            }
            _ => None,
        }) {
            break result;
        }
    };
    assert_eq!(result, Err(CommandError::TimedOut));
    assert_eq!(s.now, requested + 60_000);
    // Back to QR codes on the same connection.
    assert_eq!(
        s.client.state(),
        &State::AwaitingPairing {
            mode: walink_core::client::PairingMode::Qr
        }
    );
}

/// Answers every load the client asked for since output `from`: a session record with bytes
/// that do not decode, nothing for the other keys. Returns the session keys answered.
fn answer_loads_with_a_corrupt_session(s: &mut Scripted, from: usize) -> Vec<String> {
    let loads: Vec<_> = s.outputs[from..]
        .iter()
        .filter_map(|o| match o {
            Output::Load { id, keys } => Some((*id, keys.clone())),
            _ => None,
        })
        .collect();
    let mut corrupt = Vec::new();
    for (id, keys) in loads {
        let records: Vec<Record> = keys
            .iter()
            .filter(|key| key.space == Space::Session)
            .map(|key| Record {
                space: key.space,
                key: key.key.clone(),
                value: vec![0xff; 7],
            })
            .collect();
        corrupt.extend(records.iter().map(|r| r.key.clone()));
        s.client.handle_loaded(s.now, id, records);
        s.pump();
    }
    corrupt
}

/// Sends a text to a user with one device and answers the device query; the prekey fetch is
/// left to the test. Returns the command's id.
fn send_until_the_prekey_fetch(s: &mut Scripted) -> walink_core::client::CommandId {
    s.log_in(40);
    let before = s.outputs.len();
    let command = s.client.command(
        s.now,
        Command::SendText {
            to: "15550001111@s.whatsapp.net".into(),
            text: "hello".into(),
        },
    );
    s.pump();
    let mut corrupt = answer_loads_with_a_corrupt_session(s, before);
    let after_usync = s.outputs.len();
    let usync = s.iq("usync");
    s.result(
        &usync,
        vec![
            Node::new("usync").children_from([Node::new("list").children_from([Node::new(
                "user",
            )
            .attr("jid", "15550001111@s.whatsapp.net".parse::<Jid>().unwrap())
            .children_from([Node::new("devices").children_from([
                Node::new("device-list").children_from([Node::new("device").attr("id", "0")])
            ])])])]),
        ],
    );
    corrupt.extend(answer_loads_with_a_corrupt_session(s, after_usync));
    assert!(!corrupt.is_empty(), "the send loads the peer's session");
    // The corrupt record is reported by space and key, never by its bytes.
    let reported: Vec<_> = s.outputs[before..]
        .iter()
        .filter_map(|o| match o {
            Output::Event(Event::RecordCorrupt { space, key, .. }) => Some((*space, key.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        reported,
        corrupt
            .iter()
            .map(|key| (Space::Session, key.clone()))
            .collect::<Vec<_>>()
    );
    command
}

/// The outcome of command `id`, if it ended.
fn command_result(
    s: &Scripted,
    id: walink_core::client::CommandId,
) -> Option<Result<(), CommandError>> {
    s.outputs.iter().find_map(|o| match o {
        Output::Event(Event::CommandDone { id: done, result }) if *done == id => {
            Some(result.clone().map(|_| ()))
        }
        _ => None,
    })
}

#[test]
fn a_corrupt_session_is_reported_and_an_unreadable_prekey_answer_fails_the_send() {
    let mut s = Scripted::new(paired_records(), ServerIdentity::test());
    let command = send_until_the_prekey_fetch(&mut s);
    let fetch = s.iq("encrypt");
    assert!(fetch.child("key").is_some(), "a prekey fetch: {fetch:?}");
    let sent_before = s.received.iter().filter(|n| n.tag == "message").count();
    // No <list>: the answer cannot be read.
    s.result(&fetch, vec![Node::new("garbage")]);
    assert_eq!(
        command_result(&s, command),
        Some(Err(CommandError::BadPrekeyAnswer { address: None }))
    );
    assert_eq!(
        s.received.iter().filter(|n| n.tag == "message").count(),
        sent_before
    );
}

#[test]
fn a_malformed_bundle_fails_the_send_naming_the_device() {
    let mut s = Scripted::new(paired_records(), ServerIdentity::test());
    let command = send_until_the_prekey_fetch(&mut s);
    let fetch = s.iq("encrypt");
    // A bundle without its keys.
    s.result(
        &fetch,
        vec![
            Node::new("list").children_from([Node::new("user")
                .attr("jid", "15550001111@s.whatsapp.net".parse::<Jid>().unwrap())
                .children_from([Node::new("registration").bytes(vec![0, 0, 0, 7])])]),
        ],
    );
    assert_eq!(
        command_result(&s, command),
        Some(Err(CommandError::BadPrekeyAnswer {
            address: Some("15550001111@s.whatsapp.net".into())
        }))
    );
    assert!(!s.received.iter().any(|n| n.tag == "message"));
}
