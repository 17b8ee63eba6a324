//! Shared pieces of the Signal tests: a seeded generator, a walink party with its keys and
//! stored records, and helpers to talk to the libsignal-node / Baileys oracle.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use serde_json::{Value, json};
use walink_core::signal::{
    IdentityKeyPair, KeyPair, PreKey, PreKeyBundle, PreKeyId, PreKeySource, PublicKey,
    SenderKeyRecord, SessionRecord, SignedPreKey, SignedPreKeyId,
};
use walink_sim::oracle::Oracle;

/// SplitMix64: deterministic test randomness; every test prints or fixes its seed.
pub use walink_core::signal::testing::BenchRng as SeededRng;

/// A party's own keys.
pub struct Keys {
    pub identity: IdentityKeyPair,
    pub registration_id: u32,
    pub signed: SignedPreKey,
    pub pre_keys: HashMap<PreKeyId, KeyPair>,
    pub next_pre_key: u32,
}

impl PreKeySource for Keys {
    fn signed_pre_key(&self, id: SignedPreKeyId) -> Option<KeyPair> {
        (id == self.signed.id).then(|| self.signed.key_pair.clone())
    }
    fn pre_key(&self, id: PreKeyId) -> Option<KeyPair> {
        self.pre_keys.get(&id).cloned()
    }
}

/// A walink party: keys plus records stored serialized, as a host would keep them.
pub struct Party {
    pub keys: Keys,
    pub sessions: HashMap<String, Vec<u8>>,
    pub sender_keys: HashMap<(String, String), Vec<u8>>,
    pub rng: SeededRng,
}

/// What a decryption attempt did.
pub type Decrypted = Result<Vec<u8>, walink_core::signal::DecryptError>;

impl Party {
    pub fn new(seed: u64) -> Party {
        let mut rng = SeededRng::new(seed);
        let identity = IdentityKeyPair::generate(&mut rng);
        let signed = SignedPreKey::generate(SignedPreKeyId(7), &identity, &mut rng);
        Party {
            keys: Keys {
                identity,
                registration_id: (seed as u32) & 0x3fff,
                signed,
                pre_keys: HashMap::new(),
                next_pre_key: 100,
            },
            sessions: HashMap::new(),
            sender_keys: HashMap::new(),
            rng,
        }
    }

    /// A bundle, with a fresh one-time prekey when asked.
    pub fn bundle(&mut self, one_time: bool) -> PreKeyBundle {
        let pre_key = one_time.then(|| {
            let key = PreKey::generate(PreKeyId(self.keys.next_pre_key), &mut self.rng);
            self.keys.next_pre_key += 1;
            self.keys.pre_keys.insert(key.id, key.key_pair.clone());
            (key.id, key.key_pair.public)
        });
        PreKeyBundle {
            registration_id: self.keys.registration_id,
            identity_key: self.keys.identity.identity_key(),
            signed_pre_key_id: self.keys.signed.id,
            signed_pre_key: self.keys.signed.key_pair.public,
            signed_pre_key_signature: self.keys.signed.signature,
            pre_key,
        }
    }

    /// The stored record for `peer`; every load checks that the encoding round-trips exactly.
    pub fn session(&self, peer: &str) -> SessionRecord {
        self.sessions
            .get(peer)
            .map(|bytes| {
                let record = SessionRecord::deserialize(bytes).expect("stored record reads back");
                assert_eq!(&record.serialize(), bytes, "record encoding round-trips");
                record
            })
            .unwrap_or_default()
    }

    pub fn session_bytes(&self, peer: &str) -> Vec<u8> {
        self.sessions.get(peer).cloned().unwrap_or_default()
    }

    fn store(&mut self, peer: &str, record: &SessionRecord) {
        self.sessions.insert(peer.to_owned(), record.serialize());
    }

    pub fn process_bundle(&mut self, peer: &str, bundle: &PreKeyBundle) {
        let mut record = self.session(peer);
        record
            .process_bundle(
                bundle,
                &self.keys.identity,
                self.keys.registration_id,
                &mut self.rng,
            )
            .expect("bundle verifies");
        self.store(peer, &record);
    }

    /// Encrypts for `peer`: (type 3 for pkmsg or 1 for msg, bytes), like libsignal-node.
    pub fn encrypt(&mut self, peer: &str, plaintext: &[u8]) -> (u8, Vec<u8>) {
        let mut record = self.session(peer);
        let message = record.encrypt(plaintext).expect("session to encrypt with");
        self.store(peer, &record);
        let kind = if message.enc_type() == "pkmsg" { 3 } else { 1 };
        (kind, message.serialize().to_vec())
    }

    /// Decrypts from `peer`; stores the record only on success and removes a consumed prekey.
    pub fn decrypt(&mut self, peer: &str, kind: u8, body: &[u8]) -> Decrypted {
        let mut record = self.session(peer);
        let plaintext = if kind == 3 {
            let result = record.decrypt_pre_key_message(
                body,
                &self.keys.identity,
                self.keys.registration_id,
                &self.keys,
                &mut self.rng,
            )?;
            if let Some(id) = result.consumed_pre_key {
                self.keys.pre_keys.remove(&id);
            }
            result.plaintext
        } else {
            record.decrypt_message(body, &mut self.rng)?
        };
        self.store(peer, &record);
        Ok(plaintext)
    }

    fn sender_key(&self, group: &str, sender: &str) -> SenderKeyRecord {
        self.sender_keys
            .get(&(group.to_owned(), sender.to_owned()))
            .map(|bytes| {
                let record = SenderKeyRecord::deserialize(bytes).expect("stored record reads back");
                assert_eq!(&record.serialize(), bytes, "record encoding round-trips");
                record
            })
            .unwrap_or_default()
    }

    pub fn sender_key_bytes(&self, group: &str, sender: &str) -> Vec<u8> {
        self.sender_keys
            .get(&(group.to_owned(), sender.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    fn store_sender_key(&mut self, group: &str, sender: &str, record: &SenderKeyRecord) {
        self.sender_keys
            .insert((group.to_owned(), sender.to_owned()), record.serialize());
    }

    /// Our distribution message for `group` (we are `me`).
    pub fn group_create(&mut self, group: &str, me: &str) -> Vec<u8> {
        let mut record = self.sender_key(group, me);
        let message = record.create_distribution_message(&mut self.rng);
        self.store_sender_key(group, me, &record);
        message.serialize().to_vec()
    }

    pub fn group_process(&mut self, group: &str, sender: &str, skdm: &[u8]) {
        let message = walink_core::signal::SenderKeyDistributionMessage::deserialize(skdm)
            .expect("distribution message parses");
        let mut record = self.sender_key(group, sender);
        record.process_distribution_message(&message);
        self.store_sender_key(group, sender, &record);
    }

    pub fn group_encrypt(&mut self, group: &str, me: &str, plaintext: &[u8]) -> Vec<u8> {
        let mut record = self.sender_key(group, me);
        let body = record
            .encrypt(plaintext, &mut self.rng)
            .expect("own sender key");
        self.store_sender_key(group, me, &record);
        body
    }

    pub fn group_decrypt(&mut self, group: &str, sender: &str, body: &[u8]) -> Decrypted {
        let mut record = self.sender_key(group, sender);
        let plaintext = record.decrypt(body)?;
        self.store_sender_key(group, sender, &record);
        Ok(plaintext)
    }
}

/// Starts the Signal oracle.
pub fn oracle() -> Oracle {
    Oracle::spawn("signal.mjs").expect("node and tests/oracle/node_modules (./build.sh setup)")
}

pub fn call(oracle: &mut Oracle, method: &str, params: Value) -> Value {
    oracle
        .call(method, params)
        .unwrap_or_else(|e| panic!("oracle {method}: {e}"))
}

pub fn unhex(value: &Value) -> Vec<u8> {
    hex::decode(value.as_str().expect("hex string")).expect("hex")
}

/// Creates an oracle party.
pub fn oracle_party(oracle: &mut Oracle, name: &str) {
    call(oracle, "party", json!({ "name": name }));
}

/// A bundle of an oracle party, converted for walink.
pub fn oracle_bundle(oracle: &mut Oracle, name: &str, one_time: bool) -> PreKeyBundle {
    let b = call(
        oracle,
        "bundle",
        json!({ "name": name, "oneTime": one_time }),
    );
    let key = |field: &str| PublicKey::deserialize(&unhex(&b[field])).expect("key");
    PreKeyBundle {
        registration_id: b["registrationId"].as_u64().unwrap() as u32,
        identity_key: walink_core::signal::IdentityKey(key("identityKey")),
        signed_pre_key_id: SignedPreKeyId(b["signedPreKeyId"].as_u64().unwrap() as u32),
        signed_pre_key: key("signedPreKey"),
        signed_pre_key_signature: unhex(&b["signature"]).try_into().unwrap(),
        pre_key: b.get("preKey").map(|_| {
            (
                PreKeyId(b["preKeyId"].as_u64().unwrap() as u32),
                key("preKey"),
            )
        }),
    }
}

/// A walink bundle in the oracle's JSON shape.
pub fn bundle_json(bundle: &PreKeyBundle) -> Value {
    let mut value = json!({
        "registrationId": bundle.registration_id,
        "identityKey": hex::encode(bundle.identity_key.serialize()),
        "signedPreKeyId": bundle.signed_pre_key_id.0,
        "signedPreKey": hex::encode(bundle.signed_pre_key.serialize()),
        "signature": hex::encode(bundle.signed_pre_key_signature),
    });
    if let Some((id, key)) = bundle.pre_key {
        value["preKeyId"] = json!(id.0);
        value["preKey"] = json!(hex::encode(key.serialize()));
    }
    value
}

/// Encrypts with an oracle party: (type, body).
pub fn oracle_encrypt(
    oracle: &mut Oracle,
    name: &str,
    peer: &str,
    plaintext: &[u8],
) -> (u8, Vec<u8>) {
    let r = call(
        oracle,
        "encrypt",
        json!({ "name": name, "peer": peer, "plaintext": hex::encode(plaintext) }),
    );
    (r["type"].as_u64().unwrap() as u8, unhex(&r["body"]))
}

/// Decrypts with an oracle party; `Err` carries the oracle's error text.
pub fn oracle_decrypt(
    oracle: &mut Oracle,
    name: &str,
    peer: &str,
    kind: u8,
    body: &[u8],
) -> Result<Vec<u8>, String> {
    oracle
        .call(
            "decrypt",
            json!({ "name": name, "peer": peer, "type": kind, "body": hex::encode(body) }),
        )
        .map(|v| unhex(&v))
        .map_err(|e| e.to_string())
}
