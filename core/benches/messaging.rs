//! Messaging speed: a text message encrypted for 10 devices (stanza built, sessions stepped and
//! serialized for persistence), an incoming stanza parsed and decrypted, and a user's device list
//! checked against its signed key-index list (the first time, and again at the next send). Run
//! with `cargo bench -p walink-core --bench messaging`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use cpu_time::ThreadTime;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, criterion_group, criterion_main};
use prost::Message as _;
use walink_core::binary::Node;
use walink_core::client::messaging::content::text_message;
use walink_core::client::messaging::device_list::{KEY_INDEX_LIST_PREFIX, resolve};
use walink_core::client::messaging::incoming::{decrypt_message, parse_message};
use walink_core::client::messaging::outgoing::{DirectMessage, build_direct};
use walink_core::client::messaging::routing::deliver;
use walink_core::client::messaging::usync::{SignedKeyIndexList, UserDevices};
use walink_core::client::messaging::{DeviceAddress, Keystore, OwnIdentity};
use walink_core::proto::wa;
use walink_core::signal::testing::BenchRng;
use walink_core::signal::xeddsa;
use walink_core::signal::{
    IdentityKeyPair, KeyPair, PreKey, PreKeyBundle, PreKeyId, PreKeySource, SignedPreKey,
    SignedPreKeyId,
};

/// Measures the benchmark thread's CPU time rather than wall time: the machine the numbers are
/// taken on is shared, and wall time there counts other processes' work.
struct ThreadCpu {
    wall: WallTime,
}

impl Measurement for ThreadCpu {
    type Intermediate = ThreadTime;
    type Value = Duration;
    fn start(&self) -> ThreadTime {
        ThreadTime::now()
    }
    fn end(&self, start: ThreadTime) -> Duration {
        start.elapsed()
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        self.wall.formatter()
    }
}

type Bench = Criterion<ThreadCpu>;

fn criterion() -> Bench {
    Criterion::default().with_measurement(ThreadCpu { wall: WallTime })
}

struct Device {
    keystore: Keystore,
    identity: IdentityKeyPair,
    signed: SignedPreKey,
    one_time: HashMap<u32, KeyPair>,
}

impl PreKeySource for Device {
    fn signed_pre_key(&self, id: SignedPreKeyId) -> Option<KeyPair> {
        (id == self.signed.id).then(|| self.signed.key_pair.clone())
    }
    fn pre_key(&self, id: PreKeyId) -> Option<KeyPair> {
        self.one_time.get(&id.0).cloned()
    }
}

struct Keys<'a>(&'a SignedPreKey, &'a HashMap<u32, KeyPair>);

impl PreKeySource for Keys<'_> {
    fn signed_pre_key(&self, id: SignedPreKeyId) -> Option<KeyPair> {
        (id == self.0.id).then(|| self.0.key_pair.clone())
    }
    fn pre_key(&self, id: PreKeyId) -> Option<KeyPair> {
        self.1.get(&id.0).cloned()
    }
}

fn address(text: &str) -> DeviceAddress {
    DeviceAddress::parse(text).unwrap()
}

impl Device {
    fn new(jid: &str, rng: &mut BenchRng) -> Device {
        let identity = IdentityKeyPair::generate(rng);
        let signed = SignedPreKey::generate(SignedPreKeyId(1), &identity, rng);
        let keystore = Keystore::new(OwnIdentity {
            pn: address(jid),
            lid: None,
            identity: identity.clone(),
            registration_id: 7,
        });
        Device {
            keystore,
            identity,
            signed,
            one_time: HashMap::new(),
        }
    }

    fn bundle(&mut self, rng: &mut BenchRng) -> PreKeyBundle {
        let id = self.one_time.len() as u32 + 1;
        let key = PreKey::generate(PreKeyId(id), rng);
        self.one_time.insert(id, key.key_pair.clone());
        PreKeyBundle {
            registration_id: 7,
            identity_key: self.identity.identity_key(),
            signed_pre_key_id: self.signed.id,
            signed_pre_key: self.signed.key_pair.public,
            signed_pre_key_signature: self.signed.signature,
            pre_key: Some((key.id, key.key_pair.public)),
        }
    }

    fn receive(&mut self, node: &Node, rng: &mut BenchRng) {
        let stanza = parse_message(node, self.keystore.own()).unwrap();
        let keys = Keys(&self.signed, &self.one_time);
        decrypt_message(&mut self.keystore, &stanza, &keys, rng).unwrap();
        black_box(self.keystore.take_changes());
    }
}

fn send(sender: &mut Device, peers: &[DeviceAddress], id: &str, rng: &mut BenchRng) -> Node {
    let to = peers[0].with_device(0);
    let message = text_message(
        "a message of about the length people type, with an emoji 🙂",
        None,
    );
    let out = build_direct(
        &mut sender.keystore,
        &DirectMessage {
            id,
            to: &to,
            message: &message,
            peer_devices: peers,
            own_devices: &[],
            device_identity: b"device identity",
        },
        rng,
    )
    .unwrap();
    black_box(sender.keystore.take_changes());
    out.node
}

fn messaging(c: &mut Bench) {
    let mut rng = BenchRng(3);
    let mut alice = Device::new("111:1@s.whatsapp.net", &mut rng);
    let mut peers = Vec::new();
    let mut devices = Vec::new();
    for device in 0..10u16 {
        let jid = format!("222:{device}@s.whatsapp.net");
        let mut peer = Device::new(&jid, &mut rng);
        let bundle = peer.bundle(&mut rng);
        alice
            .keystore
            .process_bundle(&address(&jid), &bundle, &mut rng)
            .unwrap();
        peers.push(address(&jid));
        devices.push(peer);
    }
    alice.keystore.take_changes();
    // Every peer answers once, so the fan-out runs on established sessions (`msg`).
    let first = send(&mut alice, &peers, "3EB0000000000000000000", &mut rng);
    let alice_address = alice.keystore.own().pn.clone();
    for peer in devices.iter_mut() {
        let own = peer.keystore.own().pn.clone();
        let delivered = deliver(&first, &alice_address, &own, 1).unwrap();
        peer.receive(&delivered, &mut rng);
        let reply = send(
            peer,
            std::slice::from_ref(&alice_address),
            "3EB0000000000000000009",
            &mut rng,
        );
        let delivered = deliver(&reply, &own, &alice_address, 1).unwrap();
        alice.receive(&delivered, &mut rng);
    }
    c.bench_function("fan-out encrypt text to 10 devices", |b| {
        b.iter(|| {
            send(
                &mut alice,
                black_box(&peers),
                "3EB0000000000000000001",
                &mut rng,
            )
        })
    });

    // Receive: a fresh pair (the fan-out run moved Alice's chains far ahead); stanzas are
    // prepared outside the timing, then parsed and decrypted in order.
    let mut sender = Device::new("333:1@s.whatsapp.net", &mut rng);
    let mut receiver = Device::new("444:2@s.whatsapp.net", &mut rng);
    let sender_address = sender.keystore.own().pn.clone();
    let receiver_address = receiver.keystore.own().pn.clone();
    let bundle = receiver.bundle(&mut rng);
    sender
        .keystore
        .process_bundle(&receiver_address, &bundle, &mut rng)
        .unwrap();
    let one = [receiver_address.clone()];
    c.bench_function("receive: parse and decrypt a text stanza", |b| {
        b.iter_custom(|iters| {
            let stanzas: Vec<Node> = (0..iters)
                .map(|_| {
                    let node = send(&mut sender, &one, "3EB0000000000000000002", &mut rng);
                    deliver(&node, &sender_address, &receiver_address, 1).unwrap()
                })
                .collect();
            let start = ThreadTime::now();
            for stanza in &stanzas {
                receiver.receive(black_box(stanza), &mut rng);
            }
            start.elapsed()
        })
    });
}

/// One user's usync answer: device 0 and three companions, with the key-index list its primary
/// signed; and the primary's identity key.
fn signed_devices() -> (UserDevices, [u8; 32]) {
    let private = [7u8; 32];
    let key = *walink_core::signal::PrivateKey::from_bytes(private)
        .public_key()
        .raw();
    let details = wa::AdvKeyIndexList {
        raw_id: Some(1234),
        timestamp: Some(1_780_000_000),
        current_index: Some(3),
        valid_indexes: vec![1, 2, 3],
        account_type: None,
    }
    .encode_to_vec();
    let message = [&KEY_INDEX_LIST_PREFIX[..], &details].concat();
    let signature = xeddsa::sign(&private, &message, &[9; 64]);
    let bytes = wa::AdvSignedKeyIndexList {
        details: Some(details),
        account_signature: Some(signature.to_vec()),
        account_signature_key: Some(key.to_vec()),
    }
    .encode_to_vec();
    let user = UserDevices {
        user: address("555@s.whatsapp.net"),
        lid: None,
        devices: vec![0, 1, 2, 3],
        key_indexes: vec![(1, 1), (2, 2), (3, 3)],
        key_index_list: Some(SignedKeyIndexList {
            timestamp: 1_780_000_000,
            bytes,
        }),
    };
    (user, key)
}

fn device_lists(c: &mut Bench) {
    let (user, key) = signed_devices();
    c.bench_function("device list checked: signature verified", |b| {
        b.iter(|| resolve(black_box(&user), Some(&key), None))
    });
    let stored = resolve(&user, Some(&key), None).store.unwrap();
    c.bench_function("device list checked again: same list, known digest", |b| {
        b.iter(|| resolve(black_box(&user), Some(&key), Some(&stored)))
    });
}

criterion_group! {
    name = benches;
    config = criterion().measurement_time(Duration::from_secs(3));
    targets = messaging, device_lists
}
criterion_main!(benches);
