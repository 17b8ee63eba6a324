//! Messaging end to end between keystores: 1:1 with own-device copies, groups with sender keys,
//! transactional decryption, retries, and restore from the persisted records.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use crate::binary::Node;
use crate::signal::{
    IdentityKeyPair, KeyPair, PreKey, PreKeyBundle, PreKeyId, PreKeySource, SignedPreKey,
    SignedPreKeyId,
};

use super::content::tests::Rng;
use super::content::{text_message, text_of};
use super::incoming::{decrypt_message, learn_addressing, parse_message};
use super::keystore::{Keystore, OwnIdentity, RecordChange, RecordSpace, RetryDenied};
use super::outgoing::{
    DirectMessage, GroupMessage, RetryResend, build_direct, build_group, build_retry_resend,
};
use super::prekeys::build_keys_node;
use super::receipt::{
    ReceiptKind, build_delivery_receipt, build_retry_receipt, parse_receipt, retry_needs_keys,
};
use super::routing::deliver;
use super::{DeviceAddress, MessagingError};

pub(crate) struct Device {
    pub keystore: Keystore,
    pub signed: SignedPreKey,
    pub pre_keys: HashMap<u32, KeyPair>,
    pub next_pre_key: u32,
    pub rng: Rng,
    pub store: HashMap<(RecordSpace, String), Vec<u8>>,
    identity: IdentityKeyPair,
    registration_id: u32,
}

impl PreKeySource for Device {
    fn signed_pre_key(&self, id: SignedPreKeyId) -> Option<KeyPair> {
        (id == self.signed.id).then(|| self.signed.key_pair.clone())
    }
    fn pre_key(&self, id: PreKeyId) -> Option<KeyPair> {
        self.pre_keys.get(&id.0).cloned()
    }
}

pub(crate) fn addr(text: &str) -> DeviceAddress {
    DeviceAddress::parse(text).unwrap()
}

impl Device {
    pub(crate) fn new(pn: &str, lid: Option<&str>, seed: u64) -> Device {
        let mut rng = Rng(seed);
        let identity = IdentityKeyPair::generate(&mut rng);
        let signed = SignedPreKey::generate(SignedPreKeyId(1), &identity, &mut rng);
        let registration_id = (seed as u32 * 7919) & 0x3fff;
        let own = OwnIdentity {
            pn: addr(pn),
            lid: lid.map(addr),
            identity: identity.clone(),
            registration_id,
        };
        let mut keystore = Keystore::new(own);
        if let Some(lid) = lid {
            keystore.set_own_lid(addr(lid));
        }
        let mut device = Device {
            keystore,
            signed,
            pre_keys: HashMap::new(),
            next_pre_key: 1,
            rng,
            store: HashMap::new(),
            identity,
            registration_id,
        };
        device.persist();
        device
    }

    pub(crate) fn address(&self) -> DeviceAddress {
        self.keystore.own().pn.clone()
    }

    pub(crate) fn bundle(&mut self) -> PreKeyBundle {
        let pre_key = PreKey::generate(PreKeyId(self.next_pre_key), &mut self.rng);
        self.next_pre_key += 1;
        self.pre_keys.insert(pre_key.id.0, pre_key.key_pair.clone());
        PreKeyBundle {
            registration_id: self.registration_id,
            identity_key: self.identity.identity_key(),
            signed_pre_key_id: self.signed.id,
            signed_pre_key: self.signed.key_pair.public,
            signed_pre_key_signature: self.signed.signature,
            pre_key: Some((pre_key.id, pre_key.key_pair.public)),
        }
    }

    /// Applies the keystore's changes to this device's map, as a host applies Persist.
    pub(crate) fn persist(&mut self) -> Vec<RecordChange> {
        let changes = self.keystore.take_changes();
        for change in &changes {
            let key = (change.space, change.key.clone());
            match &change.value {
                Some(value) => {
                    self.store.insert(key, value.clone());
                }
                None => {
                    self.store.remove(&key);
                }
            }
        }
        changes
    }

    /// Rebuilds the keystore from the persisted records, as after a crash.
    pub(crate) fn restart(&mut self) {
        let own = self.keystore.own().clone();
        let mut keystore = Keystore::new(own);
        // Mappings first, as the client does (other records are keyed canonically already).
        let mut records: Vec<_> = self.store.iter().collect();
        records.sort_by_key(|((space, _), _)| *space != RecordSpace::LidMapping);
        for ((space, key), value) in records {
            keystore.restore(*space, key, value).unwrap();
        }
        self.keystore = keystore;
    }

    /// Parses and decrypts a delivered stanza; returns the text (or `None` for a message with
    /// no user content) and the delivery receipt.
    pub(crate) fn receive(
        &mut self,
        node: &Node,
    ) -> Result<(Option<String>, Node, bool), MessagingError> {
        let stanza = parse_message(node, self.keystore.own())?;
        learn_addressing(&mut self.keystore, &stanza);
        let mut rng = Rng(self.rng.0 ^ 0x55);
        let pre_keys = PreKeysView(&self.signed, &self.pre_keys);
        let result = decrypt_message(&mut self.keystore, &stanza, &pre_keys, &mut rng);
        self.rng = rng;
        let decrypted = result?;
        for id in &decrypted.consumed_pre_keys {
            self.pre_keys.remove(&id.0);
        }
        self.persist();
        let text = text_of(&decrypted.message).map(str::to_owned);
        Ok((text, build_delivery_receipt(&stanza), stanza.from_me))
    }
}

struct PreKeysView<'a>(&'a SignedPreKey, &'a HashMap<u32, KeyPair>);
impl PreKeySource for PreKeysView<'_> {
    fn signed_pre_key(&self, id: SignedPreKeyId) -> Option<KeyPair> {
        (id == self.0.id).then(|| self.0.key_pair.clone())
    }
    fn pre_key(&self, id: PreKeyId) -> Option<KeyPair> {
        self.1.get(&id.0).cloned()
    }
}

/// Alice's phone (0) and two companions (1, 2); Bob's phone (0) and a companion (3).
fn world() -> Vec<Device> {
    vec![
        Device::new("111@s.whatsapp.net", Some("901@lid"), 1),
        Device::new("111:1@s.whatsapp.net", Some("901:1@lid"), 2),
        Device::new("111:2@s.whatsapp.net", Some("901:2@lid"), 3),
        Device::new("222@s.whatsapp.net", None, 4),
        Device::new("222:3@s.whatsapp.net", None, 5),
    ]
}

fn connect(world: &mut [Device], from: usize, to: usize) {
    let address = world[to].address();
    let bundle = world[to].bundle();
    let mut rng = Rng(1000 + (from * 10 + to) as u64);
    world[from]
        .keystore
        .process_bundle(&address, &bundle, &mut rng)
        .unwrap();
    world[from].persist();
}

fn send_direct(world: &mut [Device], from: usize, text: &str, id: &str) -> Node {
    let peers = [addr("222@s.whatsapp.net"), addr("222:3@s.whatsapp.net")];
    let own = [
        addr("111@s.whatsapp.net"),
        addr("111:1@s.whatsapp.net"),
        addr("111:2@s.whatsapp.net"),
    ];
    let message = text_message(text, Some([9; 32]));
    let to = addr("222@s.whatsapp.net");
    let mut rng = Rng(77 + id.len() as u64);
    let out = build_direct(
        &mut world[from].keystore,
        &DirectMessage {
            id,
            to: &to,
            message: &message,
            peer_devices: &peers,
            own_devices: &own,
            device_identity: b"adv-identity",
        },
        &mut rng,
    )
    .unwrap();
    assert!(out.skipped.is_empty());
    world[from].persist();
    out.node
}

#[test]
fn direct_message_reaches_every_device_once_with_own_copies() {
    let mut w = world();
    for to in [0, 2, 3, 4] {
        connect(&mut w, 1, to);
    }
    let stanza = send_direct(&mut w, 1, "hello bob", "3EB0AAAAAAAAAAAAAAAAAA");
    assert_eq!(stanza.attr_str("type"), Some("text"));
    assert!(
        stanza.child("device-identity").is_some(),
        "pkmsg carries the device identity"
    );
    let targets = stanza.child("participants").unwrap().children().len();
    assert_eq!(targets, 4, "two peer devices and two own devices");
    let sender = w[1].address();
    for to in [0, 2, 3, 4] {
        let recipient = w[to].address();
        let delivered = deliver(&stanza, &sender, &recipient, 1_700_000_000).unwrap();
        let (text, receipt, from_me) = w[to].receive(&delivered).unwrap();
        assert_eq!(text.as_deref(), Some("hello bob"), "device {to}");
        assert_eq!(from_me, to < 3);
        if from_me {
            assert_eq!(receipt.attr_str("type"), Some("sender"));
            assert_eq!(
                receipt.attr_jid("recipient").unwrap().to_string(),
                "222@s.whatsapp.net"
            );
        } else {
            assert_eq!(receipt.get_attr("type"), None);
            assert_eq!(
                receipt.attr_jid("to").unwrap().to_string(),
                "111@s.whatsapp.net"
            );
        }
        // The same stanza again is a duplicate: an error, and nothing changes.
        let again = w[to].receive(&delivered);
        assert!(
            matches!(again, Err(MessagingError::Decrypt(_))),
            "{again:?}"
        );
        assert!(w[to].keystore.take_changes().is_empty());
    }
    assert!(
        deliver(&stanza, &sender, &w[1].address(), 0).is_none(),
        "not to itself"
    );

    // Bob's companion answers; Alice's device 1 reads it on the established session.
    connect(&mut w, 4, 3);
    let reply = {
        let to = addr("111@s.whatsapp.net");
        let peers = [addr("111:1@s.whatsapp.net")];
        let message = text_message("hi alice", None);
        let mut rng = Rng(5);
        build_direct(
            &mut w[4].keystore,
            &DirectMessage {
                id: "3EB0BBBBBBBBBBBBBBBBBB",
                to: &to,
                message: &message,
                peer_devices: &peers,
                own_devices: &[addr("222@s.whatsapp.net"), addr("222:3@s.whatsapp.net")],
                device_identity: b"adv",
            },
            &mut rng,
        )
        .unwrap()
        .node
    };
    let delivered = deliver(&reply, &w[4].address(), &w[1].address(), 1).unwrap();
    let enc = delivered.child("enc").unwrap();
    assert_eq!(
        enc.attr_str("type"),
        Some("msg"),
        "Bob's companion answers on the session"
    );
    let (text, _, _) = w[1].receive(&delivered).unwrap();
    assert_eq!(text.as_deref(), Some("hi alice"));
}

#[test]
fn group_messages_distribute_the_sender_key_once() {
    let mut w = world();
    for to in [0, 2, 3, 4] {
        connect(&mut w, 1, to);
    }
    let group = "120363000000000001@g.us";
    let members = [
        addr("111@s.whatsapp.net"),
        addr("111:1@s.whatsapp.net"),
        addr("111:2@s.whatsapp.net"),
        addr("222@s.whatsapp.net"),
        addr("222:3@s.whatsapp.net"),
    ];
    for round in 0..3 {
        let message = text_message(&format!("group {round}"), None);
        let id = format!("3EB0{round:018}");
        let mut rng = Rng(300 + round);
        let out = build_group(
            &mut w[1].keystore,
            &GroupMessage {
                id: &id,
                group,
                message: &message,
                member_devices: &members,
                device_identity: b"adv",
                addressing_mode: Some("pn"),
            },
            &mut rng,
        )
        .unwrap();
        w[1].persist();
        let distributed = out
            .node
            .child("participants")
            .map_or(0, |p| p.children().len());
        assert_eq!(distributed, if round == 0 { 4 } else { 0 }, "round {round}");
        let sender = w[1].address();
        for to in [0, 2, 3, 4] {
            let recipient = w[to].address();
            let delivered = deliver(&out.node, &sender, &recipient, 5).unwrap();
            let (text, receipt, _) = w[to].receive(&delivered).unwrap();
            assert_eq!(
                text,
                Some(format!("group {round}")),
                "device {to} round {round}"
            );
            assert_eq!(receipt.attr_jid("to").unwrap().to_string(), group);
            assert!(receipt.get_attr("participant").is_some());
        }
    }
}

#[test]
fn failed_decryption_changes_nothing_and_retry_recovers() {
    let mut w = world();
    for to in [0, 2, 3, 4] {
        connect(&mut w, 1, to);
    }
    let stanza = send_direct(&mut w, 1, "first", "3EB0000000000000000001");
    let sender = w[1].address();
    let bob = w[3].address();
    let mut delivered = deliver(&stanza, &sender, &bob, 10).unwrap();
    // Tamper with the ciphertext: decryption fails, the record stays as it was.
    let pristine = delivered.clone();
    if let crate::binary::Content::Nodes(children) = &mut delivered.content {
        if let crate::binary::Content::Bytes(bytes) = &mut children[0].content {
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
        }
    }
    let before = w[3].store.clone();
    let error = w[3].receive(&delivered).unwrap_err();
    assert!(matches!(error, MessagingError::Decrypt(_)), "{error:?}");
    assert!(w[3].keystore.take_changes().is_empty());
    assert_eq!(w[3].store, before);

    // Bob asks for a retry with fresh keys; Alice re-encrypts from her buffer.
    w[1].keystore.remember_sent(
        "3EB0000000000000000001",
        (
            "222@s.whatsapp.net",
            &prost::Message::encode_to_vec(&text_message("first", None)),
        ),
        [&bob],
        None,
        1,
    );
    w[1].persist();
    let parsed = parse_message(&delivered, w[3].keystore.own()).unwrap();
    let keys = {
        let bundle = w[3].bundle();
        let (id, key) = bundle.pre_key.unwrap();
        build_keys_node(
            &bundle.identity_key,
            (id, &key),
            (
                bundle.signed_pre_key_id,
                &bundle.signed_pre_key,
                &bundle.signed_pre_key_signature,
            ),
            b"bob-adv",
        )
    };
    let retry = build_retry_receipt(&parsed, 2, w[3].registration_id, Some(keys));
    assert!(retry_needs_keys(2, &error));
    // As the server delivers it to Alice.
    let mut at_alice = retry.clone();
    at_alice.set_attr("from", crate::binary::Value::Jid(bob.to_jid()));
    let receipt = parse_receipt(&at_alice).unwrap();
    let ReceiptKind::Retry(request) = receipt.kind else {
        panic!("not a retry")
    };
    assert_eq!(request.count, 2);
    let requester = receipt.device.unwrap();
    assert_eq!(requester, bob);
    let mut rng = Rng(42);
    w[1].keystore
        .process_bundle(&requester, request.bundle.as_ref().unwrap(), &mut rng)
        .unwrap();
    let entry = w[1]
        .keystore
        .take_retry("3EB0000000000000000001", &requester, request.count)
        .unwrap();
    let resend = build_retry_resend(
        &mut w[1].keystore,
        &RetryResend {
            id: "3EB0000000000000000001",
            chat: &entry.chat,
            message: &entry.message,
            requester: &requester,
            count: request.count,
            device_identity: b"adv",
            sender_key_id: entry.sender_key_id,
        },
        &mut rng,
    )
    .unwrap();
    w[1].persist();
    let redelivered = deliver(&resend, &sender, &bob, 11).unwrap();
    assert_eq!(
        redelivered.child("enc").unwrap().attr_str("count"),
        Some("2")
    );
    let (text, _, _) = w[3].receive(&redelivered).unwrap();
    assert_eq!(text.as_deref(), Some("first"));
    // The untampered original still decrypts on the old session (archived, kept).
    let (text, _, _) = w[3].receive(&pristine).unwrap();
    assert_eq!(text.as_deref(), Some("first"));
}

#[test]
fn restored_keystores_continue_every_session() {
    let mut w = world();
    for to in [0, 2, 3, 4] {
        connect(&mut w, 1, to);
    }
    let stanza = send_direct(&mut w, 1, "before", "3EB0000000000000000010");
    let sender = w[1].address();
    for to in [0, 2, 3, 4] {
        let recipient = w[to].address();
        w[to]
            .receive(&deliver(&stanza, &sender, &recipient, 1).unwrap())
            .unwrap();
    }
    for device in w.iter_mut() {
        device.restart();
    }
    let stanza = send_direct(&mut w, 1, "after", "3EB0000000000000000011");
    for to in [0, 2, 3, 4] {
        let recipient = w[to].address();
        let (text, _, _) = w[to]
            .receive(&deliver(&stanza, &sender, &recipient, 2).unwrap())
            .unwrap();
        assert_eq!(text.as_deref(), Some("after"));
    }
}

#[test]
fn lid_mapping_moves_sessions_to_the_lid_form() {
    let mut w = world();
    connect(&mut w, 3, 1); // Bob's phone knows Alice's device 1 by phone number.
    assert!(w[3].keystore.has_session(&addr("111:1@s.whatsapp.net")));
    w[3].keystore.learn_lid("111", "901");
    let changes = w[3].persist();
    assert!(changes.iter().any(|c| c.space == RecordSpace::LidMapping));
    assert!(
        changes
            .iter()
            .any(|c| c.space == RecordSpace::Session && c.value.is_none())
    );
    assert!(w[3].keystore.has_session(&addr("901:1@lid")));
    assert!(w[3].keystore.has_session(&addr("111:1@s.whatsapp.net")));
    assert!(
        w[3].store
            .contains_key(&(RecordSpace::Session, "901.1@lid".to_owned()))
    );
    w[3].restart();
    assert!(w[3].keystore.has_session(&addr("111:1@s.whatsapp.net")));
}

#[test]
fn retry_buffer_is_bounded_and_counts_retries() {
    let mut device = Device::new("111:1@s.whatsapp.net", None, 9);
    let bob = addr("222:3@s.whatsapp.net");
    for i in 0..(crate::limits::MESSAGING_RETRY_BUFFER + 10) {
        device.keystore.remember_sent(
            &format!("id{i}"),
            ("222@s.whatsapp.net", b"x"),
            [&bob],
            None,
            i as u64,
        );
    }
    device.persist();
    assert_eq!(
        device.keystore.retry_buffer_len(),
        crate::limits::MESSAGING_RETRY_BUFFER
    );
    assert!(device.keystore.sent_message("id0").is_none());
    assert!(device.keystore.sent_message("id10").is_some());
    for _ in 0..crate::limits::MESSAGING_MAX_RETRIES {
        assert!(device.keystore.take_retry("id20", &bob, 1).is_ok());
    }
    assert_eq!(
        device.keystore.take_retry("id20", &bob, 1),
        Err(RetryDenied::TooManyRetries)
    );
    device.persist();
    device.restart();
    assert_eq!(
        device.keystore.retry_buffer_len(),
        crate::limits::MESSAGING_RETRY_BUFFER
    );
    assert_eq!(
        device.keystore.take_retry("id20", &bob, 1),
        Err(RetryDenied::TooManyRetries),
        "counts survive a restart"
    );
    assert!(device.keystore.take_retry("id21", &bob, 1).is_ok());
}

/// Only the devices a message was encrypted for may have it again, in either address form; a
/// record written before recipients were kept (format 1) allows the 1:1 chat's user and our own
/// devices, and nobody for a group.
#[test]
fn retries_are_answered_only_for_recorded_recipients() {
    let mut device = Device::new("111:1@s.whatsapp.net", None, 11);
    let bob = addr("222:3@s.whatsapp.net");
    let eve = addr("666:0@s.whatsapp.net");
    device
        .keystore
        .remember_sent("m1", ("222@s.whatsapp.net", b"x"), [&bob], None, 1);
    assert_eq!(
        device.keystore.take_retry("m1", &eve, 1),
        Err(RetryDenied::NotARecipient)
    );
    assert_eq!(
        device.keystore.take_retry("m1", &bob.with_device(4), 1),
        Err(RetryDenied::NotARecipient)
    );
    assert_eq!(
        device.keystore.take_retry("nope", &bob, 1),
        Err(RetryDenied::NotKept)
    );
    assert_eq!(
        device.keystore.take_retry("m1", &bob, 6),
        Err(RetryDenied::TooManyRetries)
    );
    // Bob's LID becomes known after the send: the LID form is the same recipient.
    device.keystore.learn_lid("222", "902");
    assert!(
        device
            .keystore
            .take_retry("m1", &addr("902:3@lid"), 1)
            .is_ok()
    );
    device.persist();
    device.restart();
    assert!(device.keystore.take_retry("m1", &bob, 1).is_ok());
    assert_eq!(
        device.keystore.take_retry("m1", &eve, 1),
        Err(RetryDenied::NotARecipient)
    );

    // Format-1 records, as walink wrote them before.
    let old = |chat: &str| {
        prost::Message::encode_to_vec(&crate::proto::walink::RetryEntryRecord {
            format_version: Some(1),
            chat: Some(chat.to_owned()),
            message: Some(b"x".to_vec()),
            sent_at: Some(1),
            sequence: Some(90),
            retries: Vec::new(),
            recipients: Vec::new(),
            sender_key_id: None,
        })
    };
    let keystore = &mut device.keystore;
    keystore
        .restore(RecordSpace::RetryBuffer, "old1", &old("222@s.whatsapp.net"))
        .unwrap();
    keystore
        .restore(
            RecordSpace::RetryBuffer,
            "old2",
            &old("120363000000000001@g.us"),
        )
        .unwrap();
    assert!(keystore.take_retry("old1", &bob.with_device(7), 1).is_ok());
    assert!(
        keystore
            .take_retry("old1", &addr("111:2@s.whatsapp.net"), 1)
            .is_ok()
    );
    assert_eq!(
        keystore.take_retry("old1", &eve, 1),
        Err(RetryDenied::NotARecipient)
    );
    assert_eq!(
        keystore.take_retry("old2", &bob, 1),
        Err(RetryDenied::NotARecipient)
    );
}

/// A group resend carries our sender key only while our current key is the one the message
/// used: after a rotation (a member left) the message goes alone, pairwise.
#[test]
fn a_group_resend_carries_our_sender_key_only_while_it_is_current() {
    let mut w = world();
    for to in [0, 2, 3, 4] {
        connect(&mut w, 1, to);
    }
    let group = "120363000000000001@g.us";
    let members = [addr("222@s.whatsapp.net"), addr("222:3@s.whatsapp.net")];
    let message = text_message("team", None);
    let mut rng = Rng(400);
    build_group(
        &mut w[1].keystore,
        &GroupMessage {
            id: "3EB0000000000000000070",
            group,
            message: &message,
            member_devices: &members,
            device_identity: b"adv",
            addressing_mode: Some("pn"),
        },
        &mut rng,
    )
    .unwrap();
    let used = w[1]
        .keystore
        .current_own_sender_key(group, &mut rng)
        .map(|d| d.key_id());
    assert!(used.is_some());
    let bob = addr("222:3@s.whatsapp.net");
    let resend = |keystore: &mut Keystore, rng: &mut Rng| {
        build_retry_resend(
            keystore,
            &RetryResend {
                id: "3EB0000000000000000070",
                chat: group,
                message: &prost::Message::encode_to_vec(&message),
                requester: &bob,
                count: 1,
                device_identity: b"adv",
                sender_key_id: used,
            },
            rng,
        )
        .unwrap()
    };
    w[1].keystore
        .forget_sender_key_holder_for_testing(group, &bob);
    resend(&mut w[1].keystore, &mut rng);
    assert!(
        w[1].keystore.sender_key_missing(group, [&bob]).is_empty(),
        "the current key went with the resend"
    );
    w[1].keystore.rotate_sender_key(group);
    w[1].keystore.own_sender_key_distribution(group, &mut rng);
    resend(&mut w[1].keystore, &mut rng);
    assert_eq!(
        w[1].keystore.sender_key_missing(group, [&bob]).len(),
        1,
        "a rotated key is not handed out by a resend"
    );
}

mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::binary::Value;
    use crate::client::messaging::prekeys::parse_prekey_reply;
    use crate::client::messaging::usync::parse_device_reply;

    const TAGS: &[&str] = &[
        "message",
        "receipt",
        "enc",
        "participants",
        "to",
        "usync",
        "list",
        "user",
        "devices",
        "device-list",
        "device",
        "lid",
        "registration",
        "identity",
        "skey",
        "key",
        "id",
        "value",
        "signature",
        "retry",
        "keys",
        "type",
        "error",
        "item",
    ];
    const KEYS: &[&str] = &[
        "id",
        "from",
        "to",
        "type",
        "participant",
        "recipient",
        "t",
        "count",
        "jid",
        "val",
        "key-index",
        "code",
        "v",
        "sender_lid",
        "participant_pn",
    ];
    const VALUES: &[&str] = &[
        "pkmsg",
        "msg",
        "skmsg",
        "retry",
        "read",
        "1",
        "0",
        "x",
        "111:1@s.whatsapp.net",
        "901@lid",
        "1-2@g.us",
        "222@s.whatsapp.net",
        "result",
        "error",
        "",
    ];

    fn node() -> impl Strategy<Value = Node> {
        let leaf = (
            0..TAGS.len(),
            proptest::collection::vec((0..KEYS.len(), 0..VALUES.len()), 0..5),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..80)),
        )
            .prop_map(|(tag, attrs, bytes)| {
                let mut node = Node::new(TAGS[tag]);
                for (k, v) in attrs {
                    node.set_attr(KEYS[k], Value::Str(VALUES[v].into()));
                }
                match bytes {
                    Some(bytes) => node.bytes(bytes),
                    None => node,
                }
            });
        leaf.prop_recursive(4, 40, 6, |inner| {
            (
                0..TAGS.len(),
                proptest::collection::vec((0..KEYS.len(), 0..VALUES.len()), 0..5),
                proptest::collection::vec(inner, 0..6),
            )
                .prop_map(|(tag, attrs, children)| {
                    let mut node = Node::new(TAGS[tag]);
                    for (k, v) in attrs {
                        node.set_attr(KEYS[k], Value::Str(VALUES[v].into()));
                    }
                    node.children_from(children)
                })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// No node makes a parser panic, and a stanza that does not decrypt changes no key
        /// material.
        #[test]
        fn arbitrary_nodes_are_refused_without_panic_or_change(node in node()) {
            let _ = parse_receipt(&node);
            let _ = parse_device_reply(&node);
            let _ = parse_prekey_reply(&node);
            let mut device = Device::new("111:1@s.whatsapp.net", Some("901:1@lid"), 77);
            device.persist();
            let before = device.store.clone();
            let mut message = node.clone();
            message.tag = "message".into();
            if device.receive(&message).is_err() {
                // Only the addressing the server states (the LID mapping) may be learned.
                let changes = device.keystore.take_changes();
                prop_assert!(changes.iter().all(|c| c.space == RecordSpace::LidMapping));
                prop_assert_eq!(&device.store, &before);
            }
        }
    }
}

#[test]
fn lid_mapping_moves_received_sender_keys() {
    let mut w = world();
    connect(&mut w, 1, 3);
    let group = "120363000000000002@g.us";
    let members = [addr("222@s.whatsapp.net")];
    let send = |w: &mut Vec<Device>, text: &str, seed: u64| {
        let message = text_message(text, None);
        let mut rng = Rng(seed);
        let out = build_group(
            &mut w[1].keystore,
            &GroupMessage {
                id: "3EB0000000000000000099",
                group,
                message: &message,
                member_devices: &members,
                device_identity: b"adv",
                addressing_mode: None,
            },
            &mut rng,
        )
        .unwrap();
        w[1].persist();
        out.node
    };
    // Bob's phone gets the key while it knows Alice's device by phone number only.
    let first = send(&mut w, "one", 1);
    let sender = w[1].address();
    let bob = w[3].address();
    let (text, _, _) = w[3]
        .receive(&deliver(&first, &sender, &bob, 1).unwrap())
        .unwrap();
    assert_eq!(text.as_deref(), Some("one"));
    // It learns Alice's LID; her next message (no distribution) still decrypts.
    w[3].keystore.learn_lid("111", "901");
    w[3].persist();
    let second = send(&mut w, "two", 2);
    assert!(second.child("participants").is_none());
    let (text, _, _) = w[3]
        .receive(&deliver(&second, &sender, &bob, 2).unwrap())
        .unwrap();
    assert_eq!(text.as_deref(), Some("two"));
    w[3].restart();
    let third = send(&mut w, "three", 3);
    let (text, _, _) = w[3]
        .receive(&deliver(&third, &sender, &bob, 3).unwrap())
        .unwrap();
    assert_eq!(text.as_deref(), Some("three"));
}

#[test]
fn received_ids_are_bounded_per_sender_and_survive_a_restart() {
    use crate::limits::MESSAGING_RECEIVED_IDS_PER_SENDER as BOUND;
    let mut device = Device::new("111:1@s.whatsapp.net", None, 11);
    let bob = addr("222:3@s.whatsapp.net");
    let carol = addr("333@s.whatsapp.net");
    let group = "120363000000000002@g.us";
    for i in 0..BOUND + 5 {
        device
            .keystore
            .remember_received(None, &bob, &format!("3EB0{i:018}"));
    }
    device.keystore.remember_received(Some(group), &bob, "G1");
    device.keystore.remember_received(None, &carol, "C1");
    device.persist();
    device.restart();
    let ks = &device.keystore;
    // The oldest six are forgotten (the group message pushed one more out), the rest kept.
    for i in 0..6 {
        assert!(!ks.was_received(None, &bob, &format!("3EB0{i:018}")), "{i}");
    }
    for i in 6..BOUND + 5 {
        assert!(ks.was_received(None, &bob, &format!("3EB0{i:018}")), "{i}");
    }
    // Scoped by group and sender.
    assert!(ks.was_received(Some(group), &bob, "G1"));
    assert!(!ks.was_received(None, &bob, "G1"));
    assert!(!ks.was_received(Some(group), &carol, "C1"));
    assert!(ks.was_received(None, &carol, "C1"));
    assert!(!ks.was_received(None, &carol, "3EB0000000000000000010"));
    // A record holds at most the bound.
    let record = device
        .store
        .get(&(RecordSpace::ReceivedIds, bob.record_key()))
        .unwrap();
    let decoded =
        <crate::proto::walink::ReceivedIdsRecord as prost::Message>::decode(record.as_slice())
            .unwrap();
    assert_eq!(decoded.hashes.len(), BOUND);
}

#[test]
fn received_ids_follow_the_lid_mapping() {
    let mut device = Device::new("111:1@s.whatsapp.net", None, 12);
    let bob_pn = addr("222:3@s.whatsapp.net");
    let bob_lid = addr("902:3@lid");
    device.keystore.remember_received(None, &bob_pn, "M1");
    device.persist();
    device.keystore.learn_lid("222", "902");
    device.persist();
    device.restart();
    assert!(device.keystore.was_received(None, &bob_lid, "M1"));
    assert!(device.keystore.was_received(None, &bob_pn, "M1"));
    assert!(
        !device
            .store
            .contains_key(&(RecordSpace::ReceivedIds, bob_pn.record_key()))
    );
}

#[test]
fn the_record_cache_evicts_the_least_recently_used_persisted_records() {
    let mut device = Device::new("111:1@s.whatsapp.net", None, 21);
    let peers: Vec<DeviceAddress> = (0..5)
        .map(|i| addr(&format!("30{i}@s.whatsapp.net")))
        .collect();
    for peer in &peers {
        device.keystore.remember_received(None, peer, "A");
    }
    device.persist();
    assert_eq!(device.keystore.cached_records(), 5);
    // Using peer 0 again makes peer 1 the least recently used.
    device
        .keystore
        .touch(RecordSpace::ReceivedIds, &peers[0].record_key());
    let evicted = device.keystore.evict(3, |_, _| false);
    let keys: Vec<String> = evicted.iter().map(|(_, key)| key.clone()).collect();
    assert_eq!(keys, vec![peers[1].record_key(), peers[2].record_key()]);
    assert_eq!(device.keystore.cached_records(), 3);
    // Dropped from memory, so not known as received until loaded again...
    assert!(!device.keystore.was_received(None, &peers[1], "A"));
    assert!(device.keystore.was_received(None, &peers[0], "A"));
    // ... and the store still has it: a load brings it back unchanged.
    let key = (RecordSpace::ReceivedIds, peers[1].record_key());
    let value = device.store.get(&key).unwrap().clone();
    device
        .keystore
        .restore(RecordSpace::ReceivedIds, &key.1, &value)
        .unwrap();
    assert!(device.keystore.was_received(None, &peers[1], "A"));
    // Nothing to evict below the limit; a pinned record stays even beyond it.
    assert!(device.keystore.evict(4, |_, _| false).is_empty());
    let pinned = peers[3].record_key();
    let evicted = device.keystore.evict(0, |space, key| {
        space == RecordSpace::ReceivedIds && key == pinned
    });
    assert_eq!(evicted.len(), 3);
    assert_eq!(device.keystore.cached_records(), 1);
    assert!(device.keystore.was_received(None, &peers[3], "A"));
}

#[test]
fn a_record_with_a_change_not_yet_persisted_is_never_evicted() {
    let mut w = world();
    connect(&mut w, 3, 1);
    connect(&mut w, 3, 2);
    let alice1 = w[1].address();
    let alice2 = w[2].address();
    // A session stepped by an encryption whose change was not taken yet: dirty.
    w[3].keystore.encrypt(&alice1, b"pending").unwrap();
    let evicted = w[3].keystore.evict(0, |_, _| false);
    let keys: Vec<(RecordSpace, String)> = evicted.clone();
    assert!(!keys.contains(&(RecordSpace::Session, alice1.record_key())));
    assert!(keys.contains(&(RecordSpace::Session, alice2.record_key())));
    assert!(w[3].keystore.has_session(&alice1));
    assert!(!w[3].keystore.has_session(&alice2));
    // Once the change is taken (handed to the host), it may go; the store has its latest
    // state, so a restart (or a load) continues the session where it was.
    w[3].persist();
    let evicted = w[3].keystore.evict(0, |_, _| false);
    assert!(evicted.contains(&(RecordSpace::Session, alice1.record_key())));
    assert_eq!(w[3].keystore.cached_records(), 0);
    w[3].restart();
    let message = w[3].keystore.encrypt(&alice1, b"after eviction");
    assert!(message.is_ok());
    // A deletion waiting to be persisted keeps nothing in memory and is not re-created by
    // eviction.
    w[3].keystore.delete_session(&alice2);
    w[3].keystore.evict(0, |_, _| false);
    assert!(!w[3].keystore.has_session(&alice2));
    assert!(
        w[3].keystore
            .has_pending_change(RecordSpace::Session, &alice2.record_key())
    );
}

#[test]
fn a_departed_holder_rotates_our_sender_key_and_holders_survive_a_restart() {
    let mut w = world();
    for to in [0, 2, 3, 4] {
        connect(&mut w, 1, to);
    }
    let group = "120363000000000004@g.us";
    let members: Vec<DeviceAddress> = [0, 2, 3, 4].iter().map(|&i| w[i].address()).collect();
    let send = |w: &mut Vec<Device>, members: &[DeviceAddress], text: &str, seed: u64| {
        let message = text_message(text, None);
        let out = build_group(
            &mut w[1].keystore,
            &GroupMessage {
                id: &format!("3EB0{seed:018}"),
                group,
                message: &message,
                member_devices: members,
                device_identity: b"adv",
                addressing_mode: None,
            },
            &mut Rng(900 + seed),
        )
        .unwrap();
        w[1].persist();
        out.node
    };
    let distributed = |node: &Node| node.child("participants").map_or(0, |p| p.children().len());
    let first = send(&mut w, &members, "one", 1);
    assert_eq!(distributed(&first), 4);
    // Handed out in a stanza not acknowledged yet: offered, which a restart keeps, and still
    // holders; the next message hands the key out again.
    w[1].keystore.offer_sender_key(group, members.iter());
    w[1].persist();
    w[1].restart();
    assert!(
        members
            .iter()
            .all(|m| w[1].keystore.holds_sender_key(group, m))
    );
    assert!(
        !w[1]
            .keystore
            .rotate_sender_key_if_departed(group, &members, &[])
    );
    assert_eq!(
        w[1].keystore
            .sender_key_missing(group, members.iter())
            .len(),
        4
    );
    // Acknowledged: no distribution again.
    w[1].keystore.confirm_sender_key(group, members.iter());
    w[1].persist();
    assert!(
        w[1].keystore
            .sender_key_missing(group, members.iter())
            .is_empty()
    );
    let sender = w[1].address();
    let leaver = members[3].clone();
    let (got, _, _) = w[4]
        .receive(&deliver(&first, &sender, &leaver, 1).unwrap())
        .unwrap();
    assert_eq!(got.as_deref(), Some("one"));
    // Device 4 is no longer a member device (or device 3 was replaced): a new chain, handed
    // to the remaining devices only.
    let remaining = &members[..3];
    assert!(w[1].keystore.rotate_sender_key_if_departed(
        group,
        &members,
        std::slice::from_ref(&members[2])
    ));
    w[1].persist();
    let second = send(&mut w, remaining, "two", 2);
    assert_eq!(distributed(&second), 3);
    assert!(
        !w[1]
            .keystore
            .rotate_sender_key_if_departed(group, remaining, &[])
    );
    for to in [0, 2, 3] {
        let recipient = w[to].address();
        let (got, _, _) = w[to]
            .receive(&deliver(&second, &sender, &recipient, 2).unwrap())
            .unwrap();
        assert_eq!(got.as_deref(), Some("two"), "device {to}");
    }
    // The departed device, handed the stanza anyway, cannot read it.
    assert!(
        w[4].receive(&deliver(&second, &sender, &leaver, 2).unwrap())
            .is_err()
    );
    assert!(
        w[1].keystore
            .rotate_sender_key_if_departed(group, &members[..2], &[])
    );
}

#[test]
fn a_sender_key_sent_record_of_the_first_release_reads_as_acknowledged_holders() {
    use prost::Message as _;
    let mut device = Device::new("111:1@s.whatsapp.net", None, 21);
    let group = "120363000000000005@g.us";
    // Written before `offered` existed: format 1, devices only.
    let old = crate::proto::walink::SenderKeySentRecord {
        format_version: Some(super::keystore::MESSAGING_RECORD_FORMAT),
        devices: vec!["222.3@s.whatsapp.net".to_owned()],
        offered: Vec::new(),
    }
    .encode_to_vec();
    device
        .keystore
        .restore(RecordSpace::SenderKeySent, group, &old)
        .unwrap();
    let holder = addr("222:3@s.whatsapp.net");
    assert!(device.keystore.holds_sender_key(group, &holder));
    assert!(
        device
            .keystore
            .sender_key_missing(group, [&holder])
            .is_empty()
    );
}

/// WhatsApp names the other address form of a 1:1 sender in `sender_lid` / `sender_pn`, of a
/// group sender in `participant_lid` / `participant_pn`, and on a copy of our own message the
/// other form of the recipient in `peer_recipient_lid` / `peer_recipient_pn`: each mapping is
/// learned for the account it belongs to, and our own number is never mapped to a peer's LID.
#[test]
fn addressing_attributes_map_the_account_they_name() {
    let stanza = |attrs: &[(&'static str, &str)]| {
        let mut node = Node::new("message")
            .attr("id", "3EB0CCCCCCCCCCCCCCCCCC")
            .attr("t", "1700000000");
        for (key, value) in attrs {
            node = node.attr(*key, (*value).to_owned());
        }
        node.children_from([Node::new("enc").attr("type", "msg").bytes(vec![1])])
    };
    let learn = |device: &mut Device, node: &Node| {
        let parsed = parse_message(node, device.keystore.own()).unwrap();
        learn_addressing(&mut device.keystore, &parsed);
    };

    // Bob's LID-addressed 1:1 message names his number.
    let mut bob_side = Device::new("111:1@s.whatsapp.net", Some("901:1@lid"), 11);
    learn(
        &mut bob_side,
        &stanza(&[("from", "902:3@lid"), ("sender_pn", "222@s.whatsapp.net")]),
    );
    assert_eq!(bob_side.keystore.lids().lid_for("222"), Some("902"));

    // A phone-number-addressed group message names the sender's LID.
    let mut group_side = Device::new("111:1@s.whatsapp.net", Some("901:1@lid"), 12);
    learn(
        &mut group_side,
        &stanza(&[
            ("from", "120363000000000001@g.us"),
            ("participant", "333:2@s.whatsapp.net"),
            ("participant_lid", "903@lid"),
            ("addressing_mode", "pn"),
        ]),
    );
    assert_eq!(group_side.keystore.lids().lid_for("333"), Some("903"));

    // Our phone's copy of a message to Bob's LID names Bob's number, not ours.
    let mut own_side = Device::new("111:1@s.whatsapp.net", Some("901:1@lid"), 13);
    learn(
        &mut own_side,
        &stanza(&[
            ("from", "111@s.whatsapp.net"),
            ("recipient", "902@lid"),
            ("peer_recipient_pn", "222@s.whatsapp.net"),
        ]),
    );
    assert_eq!(own_side.keystore.lids().lid_for("222"), Some("902"));
    assert_eq!(own_side.keystore.lids().lid_for("111"), Some("901"));
    // And the other way round: a copy of a message to Bob's number names his LID.
    let mut own_pn = Device::new("111:1@s.whatsapp.net", Some("901:1@lid"), 14);
    learn(
        &mut own_pn,
        &stanza(&[
            ("from", "111@s.whatsapp.net"),
            ("recipient", "222@s.whatsapp.net"),
            ("peer_recipient_lid", "902@lid"),
        ]),
    );
    assert_eq!(own_pn.keystore.lids().lid_for("222"), Some("902"));
    assert_eq!(own_pn.keystore.lids().lid_for("111"), Some("901"));
}

/// A status post (`status@broadcast`) parses as a message of that chat from its `participant`,
/// like a group message (whatsmeow `parseMessageSource`); without a participant it is refused.
#[test]
fn a_status_post_is_a_message_of_status_broadcast_from_its_participant() {
    let w = world();
    let post = |participant: Option<&str>| {
        let node = Node::new("message")
            .attr("from", "status@broadcast")
            .attr("id", "3EB0STATUS")
            .attr("t", "1780000000")
            .attr("type", "text");
        let node = match participant {
            Some(p) => node.attr("participant", p.to_owned()),
            None => node,
        };
        node.children_from([Node::new("enc")
            .attr("v", "2")
            .attr("type", "skmsg")
            .bytes(vec![1, 2, 3])])
    };
    let parsed = parse_message(&post(Some("222@s.whatsapp.net")), w[0].keystore.own()).unwrap();
    assert_eq!(parsed.chat, "status@broadcast");
    assert_eq!(parsed.group.as_deref(), Some("status@broadcast"));
    assert_eq!(parsed.sender.to_jid().to_string(), "222@s.whatsapp.net");
    assert!(!parsed.from_me);
    assert!(parse_message(&post(None), w[0].keystore.own()).is_err());
}
