//! A walink device for the messaging tests: a keystore, its prekeys, and the records it
//! persisted, kept as a host keeps them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use serde_json::{Value as Json, json};
use walink_core::binary::{Content, Node, Value};
use walink_core::client::messaging::incoming::{decrypt_message, learn_addressing, parse_message};
use walink_core::client::messaging::{DeviceAddress, Keystore, OwnIdentity};
use walink_core::signal::{
    IdentityKeyPair, KeyPair, PreKey, PreKeyBundle, PreKeyId, PreKeySource, SignedPreKey,
    SignedPreKeyId,
};
use walink_core::store::Space as RecordSpace;
use walink_sim::oracle::Oracle;

/// SplitMix64: deterministic test randomness; every test fixes its seed.
pub use walink_core::signal::testing::BenchRng as SeededRng;

/// The prekeys a device holds.
pub struct PreKeys {
    pub signed: SignedPreKey,
    pub one_time: HashMap<u32, KeyPair>,
    pub next: u32,
}

impl PreKeySource for PreKeys {
    fn signed_pre_key(&self, id: SignedPreKeyId) -> Option<KeyPair> {
        (id == self.signed.id).then(|| self.signed.key_pair.clone())
    }
    fn pre_key(&self, id: PreKeyId) -> Option<KeyPair> {
        self.one_time.get(&id.0).cloned()
    }
}

/// A walink device.
pub struct Device {
    pub keystore: Keystore,
    pub pre_keys: PreKeys,
    pub identity: IdentityKeyPair,
    pub registration_id: u32,
    pub rng: SeededRng,
    pub store: HashMap<(RecordSpace, String), Vec<u8>>,
}

pub fn addr(text: &str) -> DeviceAddress {
    DeviceAddress::parse(text).unwrap()
}

impl Device {
    pub fn new(pn: &str, seed: u64) -> Device {
        let mut rng = SeededRng(seed);
        let identity = IdentityKeyPair::generate(&mut rng);
        let signed = SignedPreKey::generate(SignedPreKeyId(3), &identity, &mut rng);
        let registration_id = (seed as u32).wrapping_mul(7919) & 0x3fff;
        let keystore = Keystore::new(OwnIdentity {
            pn: addr(pn),
            lid: None,
            identity: identity.clone(),
            registration_id,
        });
        Device {
            keystore,
            pre_keys: PreKeys {
                signed,
                one_time: HashMap::new(),
                next: 1,
            },
            identity,
            registration_id,
            rng,
            store: HashMap::new(),
        }
    }

    pub fn address(&self) -> DeviceAddress {
        self.keystore.own().pn.clone()
    }

    /// A fresh one-time prekey.
    pub fn fresh_pre_key(&mut self) -> PreKey {
        let key = PreKey::generate(PreKeyId(self.pre_keys.next), &mut self.rng);
        self.pre_keys.next += 1;
        self.pre_keys
            .one_time
            .insert(key.id.0, key.key_pair.clone());
        key
    }

    pub fn bundle(&mut self) -> PreKeyBundle {
        let key = self.fresh_pre_key();
        PreKeyBundle {
            registration_id: self.registration_id,
            identity_key: self.identity.identity_key(),
            signed_pre_key_id: self.pre_keys.signed.id,
            signed_pre_key: self.pre_keys.signed.key_pair.public,
            signed_pre_key_signature: self.pre_keys.signed.signature,
            pre_key: Some((key.id, key.key_pair.public)),
        }
    }

    /// Applies the keystore's changes to the device's map, as a host applies Persist.
    pub fn persist(&mut self) {
        for change in self.keystore.take_changes() {
            let key = (change.space, change.key);
            match change.value {
                Some(value) => {
                    self.store.insert(key, value);
                }
                None => {
                    self.store.remove(&key);
                }
            }
        }
    }

    /// Parses and decrypts a delivered stanza, returning its text.
    pub fn receive(&mut self, node: &Node) -> Option<String> {
        let stanza = parse_message(node, self.keystore.own()).expect("stanza parses");
        learn_addressing(&mut self.keystore, &stanza);
        let decrypted = decrypt_message(&mut self.keystore, &stanza, &self.pre_keys, &mut self.rng)
            .expect("stanza decrypts");
        for id in decrypted.consumed_pre_keys {
            self.pre_keys.one_time.remove(&id.0);
        }
        self.persist();
        walink_core::client::messaging::content::text_of(&decrypted.message).map(str::to_owned)
    }
}

pub fn oracle() -> Oracle {
    Oracle::spawn("messaging.mjs").expect("node and tests/oracle/node_modules are available")
}

pub fn call(oracle: &mut Oracle, method: &str, params: Json) -> Json {
    oracle
        .call(method, params)
        .unwrap_or_else(|e| panic!("{method}: {e}"))
}

/// A node as the oracle's JSON (`decode` in messaging.mjs): JIDs and strings as text, bytes
/// as hex.
pub fn node_json(node: &Node) -> Json {
    let attrs: serde_json::Map<String, Json> = node
        .attrs
        .iter()
        .map(|attr| {
            let text = match &attr.value {
                Value::Str(text) => text.to_string(),
                Value::Jid(jid) => jid.to_string(),
            };
            (attr.key.to_string(), Json::String(text))
        })
        .collect();
    let content = match &node.content {
        Content::None => Json::Null,
        Content::Nodes(children) => Json::Array(children.iter().map(node_json).collect()),
        Content::Bytes(bytes) => json!({ "hex": hex::encode(bytes) }),
        Content::Str(text) => json!({ "text": text.to_string() }),
        Content::Jid(jid) => json!({ "text": jid.to_string() }),
    };
    json!({ "tag": node.tag.to_string(), "attrs": attrs, "content": content })
}

/// The frame body (flag byte and node) of `node`, as hex.
pub fn encode_hex(node: &Node) -> String {
    hex::encode(walink_core::binary::encode(node))
}

/// Decodes a frame body the oracle encoded.
pub fn decode_hex(text: &str) -> Node {
    walink_core::binary::decode(&hex::decode(text).unwrap()).expect("walink decodes the node")
}
