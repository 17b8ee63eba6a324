//! A hand-driven companion for the server tests: walink-core's primitives (Noise client,
//! codec, pairing crypto) wired together by the test, without walink's Client state machine,
//! so the server is checked against the protocol and not against the client it will serve.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, VecDeque};

use prost::Message as _;
use walink_core::binary::{Jid, Node};
use walink_core::frame::{self, FrameDecoder};
use walink_core::noise::payload::{
    ClientProfile, RegistrationKeys, WebVersion, login_payload, registration_payload,
};
use walink_core::noise::{ClientHandshake, EphemeralKey, NoiseKeyPair, TransportCipher};
use walink_core::pair::KeyPair;
use walink_core::signal::xeddsa;
use walink_sim::noise_server::ChainSpec;
use walink_sim::sim::{CloseReason, ConnId, Server, ServerConfig, ServerOutput};

/// 2027-01-15, inside the test chain's validity.
pub const T0: u64 = 1_800_000_000_000;

pub fn profile() -> ClientProfile {
    ClientProfile::new(WebVersion::new(2, 3000, 1_045_649_367), "walink")
}

/// A companion's long-term keys.
pub struct Keys {
    pub noise: NoiseKeyPair,
    pub identity_private: [u8; 32],
    pub identity: KeyPair,
    pub registration: RegistrationKeys,
}

impl Keys {
    pub fn new(seed: u8) -> Keys {
        let identity_private = [seed; 32];
        let identity = KeyPair::from_private(identity_private);
        let spk = KeyPair::from_private([seed.wrapping_add(1); 32]);
        let mut message = [5u8; 33];
        message[1..].copy_from_slice(spk.public());
        let signature = xeddsa::sign(&identity_private, &message, &[seed; 64]);
        Keys {
            noise: NoiseKeyPair::from_private([seed.wrapping_add(2); 32]),
            identity_private,
            registration: RegistrationKeys {
                registration_id: 4242,
                identity_public: *identity.public(),
                signed_prekey_id: 1,
                signed_prekey_public: *spk.public(),
                signed_prekey_signature: signature,
            },
            identity,
        }
    }

    pub fn registration_payload(&self) -> Vec<u8> {
        registration_payload(&profile(), &self.registration)
            .unwrap()
            .encode_to_vec()
    }

    pub fn login_payload(&self, user: &str, device: u16) -> Vec<u8> {
        login_payload(&profile(), user.parse().unwrap(), u32::from(device)).encode_to_vec()
    }
}

enum Phase {
    Hello(Box<ClientHandshake>, Vec<u8>),
    Open(Box<TransportCipher>),
    Closed,
}

/// One connection of a hand-driven companion.
pub struct Probe {
    pub conn: ConnId,
    phase: Phase,
    decoder: FrameDecoder,
    noise: NoiseKeyPair,
    pub inbox: VecDeque<Node>,
    pub closed: Option<CloseReason>,
}

/// A server and the probes connected to it, with a clock.
pub struct Net {
    pub server: Server,
    pub now: u64,
    pub probes: BTreeMap<ConnId, Probe>,
}

impl Net {
    pub fn new(seed: u8) -> Net {
        Net {
            server: Server::new(ServerConfig::new([seed; 32])),
            now: T0,
            probes: BTreeMap::new(),
        }
    }

    /// Opens a connection and runs the handshake with `payload` as the ClientPayload.
    pub fn connect(&mut self, keys: &Keys, ephemeral: u8, payload: Vec<u8>) -> ConnId {
        let conn = self.server.connect(self.now);
        let (handshake, hello) = ClientHandshake::start(
            EphemeralKey::from_private([ephemeral; 32]),
            ChainSpec::default().trust_root(),
        );
        let mut first = frame::connection_header(None).unwrap();
        first.extend(frame::encode_frame(&hello).unwrap());
        self.probes.insert(
            conn,
            Probe {
                conn,
                phase: Phase::Hello(Box::new(handshake), payload),
                decoder: FrameDecoder::new(),
                noise: keys.noise.clone(),
                inbox: VecDeque::new(),
                closed: None,
            },
        );
        // Split the first write to exercise the server's reassembly.
        let (a, b) = first.split_at(5);
        self.server.handle_bytes(self.now, conn, a);
        self.server.handle_bytes(self.now, conn, b);
        self.pump();
        conn
    }

    /// Carries server outputs to the probes until none are left.
    pub fn pump(&mut self) {
        while let Some(output) = self.server.poll_output() {
            match output {
                ServerOutput::Transmit { conn, bytes } => self.receive(conn, &bytes),
                ServerOutput::Close { conn, reason } => {
                    if let Some(probe) = self.probes.get_mut(&conn) {
                        probe.closed = Some(reason);
                        probe.phase = Phase::Closed;
                    }
                }
            }
        }
    }

    fn receive(&mut self, conn: ConnId, bytes: &[u8]) {
        let now = self.now;
        let probe = self.probes.get_mut(&conn).unwrap();
        probe.decoder.push(bytes);
        let mut reply = None;
        while let Some(payload) = probe.decoder.next_frame().unwrap() {
            match std::mem::replace(&mut probe.phase, Phase::Closed) {
                Phase::Hello(handshake, client_payload) => {
                    let done = handshake
                        .finish(&payload, &probe.noise, &client_payload, now)
                        .unwrap();
                    reply = Some(frame::encode_frame(&done.client_finish).unwrap());
                    probe.phase = Phase::Open(Box::new(done.transport));
                }
                Phase::Open(mut transport) => {
                    probe
                        .inbox
                        .push_back(transport.decrypt_node(&payload).unwrap());
                    probe.phase = Phase::Open(transport);
                }
                Phase::Closed => panic!("frame after close"),
            }
        }
        if let Some(reply) = reply {
            self.server.handle_bytes(now, conn, &reply);
        }
    }

    /// Sends a node from a probe and carries the answers back.
    pub fn send(&mut self, conn: ConnId, node: &Node) {
        let probe = self.probes.get_mut(&conn).unwrap();
        let Phase::Open(transport) = &mut probe.phase else {
            panic!("probe {conn} is not open");
        };
        let bytes = transport.encrypt_node(node).unwrap();
        self.server.handle_bytes(self.now, conn, &bytes);
        self.pump();
    }

    /// Removes and returns the first received node with this tag.
    pub fn take(&mut self, conn: ConnId, tag: &str) -> Node {
        self.pump();
        let inbox = &mut self.probes.get_mut(&conn).unwrap().inbox;
        let index = inbox
            .iter()
            .position(|node| node.tag == tag)
            .unwrap_or_else(|| panic!("no <{tag}> in {inbox:?}"));
        inbox.remove(index).unwrap()
    }

    pub fn closed(&mut self, conn: ConnId) -> Option<&CloseReason> {
        self.pump();
        self.probes.get(&conn).unwrap().closed.as_ref()
    }

    /// Advances the clock, firing the server's timer on the way.
    pub fn advance(&mut self, ms: u64) {
        let target = self.now + ms;
        while let Some(at) = self.server.poll_timeout().filter(|&at| at <= target) {
            self.now = self.now.max(at);
            self.server.handle_timeout(self.now);
            self.pump();
        }
        self.now = target;
    }
}

pub fn iq(id: &str, kind: &'static str, xmlns: &'static str, children: Vec<Node>) -> Node {
    let node = Node::new("iq")
        .attr("id", id.to_owned())
        .attr("to", Jid::server_jid())
        .attr("type", kind)
        .attr("xmlns", xmlns);
    if children.is_empty() {
        node
    } else {
        node.children_from(children)
    }
}

pub fn bytes(tag: &'static str, content: impl Into<Vec<u8>>) -> Node {
    Node::new(tag).bytes(content)
}
