//! The simulated primary phone of an account: it owns the account's identity key, reads the QR
//! a companion shows, types the pairing code a companion shows, and signs the companion's
//! device identity (transport notes §4.4, §5.3-5.4, from the primary's side).
//!
//! The primary side is written here from the protocol description, not from walink's client:
//! the QR is parsed field by field, the ADV identity is built and signed here, and the link-code
//! key bundle is opened here. Only the primitives (XEdDSA, the pairing-code key derivation and
//! the AES-CTR wrapping) come from walink-core, and the tests check them against Baileys.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use prost::Message as _;
use sha2::Sha256;
use walink_core::pair::code::{PairingCode, unwrap_ephemeral_key, wrap_ephemeral_key};
use walink_core::proto::wa;
use walink_core::signal::{
    IdentityKeyPair, KeyPair as SignalKeyPair, PreKeyBundle, PreKeyId, PreKeySource, PrivateKey,
    SenderKeyDistributionMessage, SenderKeyRecord, SessionRecord, SignedPreKeyId, pad, unpad,
    xeddsa,
};
use x25519_dalek::{PublicKey, StaticSecret};

use super::account::{PreKey, SignedPreKey};
use super::rng::SimRng;

/// The prefix WhatsApp Web puts in front of the QR fields (optional when scanning).
pub const QR_PREFIX: &str = "https://wa.me/settings/linked_devices#";
/// One-time prekeys the phone publishes for other devices to start sessions with it.
pub const PHONE_PREKEYS: u32 = 50;
/// Sent messages the phone keeps for retry requests.
pub const PHONE_OUTBOX: usize = 1000;
/// Prefix of the account signature (E2EE accounts).
const ACCOUNT_SIGNATURE_PREFIX: [u8; 2] = [6, 0];
/// Prefix of the device signature.
const DEVICE_SIGNATURE_PREFIX: [u8; 2] = [6, 1];
/// Prefix of the account signature over a device list's key indexes.
const KEY_INDEX_LIST_PREFIX: [u8; 2] = [6, 2];
/// HKDF info of the key-bundle encryption key.
const BUNDLE_INFO: &[u8] = b"link_code_pairing_key_bundle_encryption_key";
/// HKDF info of the adv secret.
const ADV_SECRET_INFO: &[u8] = b"adv_secret";

/// Why the phone refused a QR, a code or a companion's answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// The QR text is not four or five comma-separated fields with 32-byte base64 keys.
    #[error("malformed QR: {0}")]
    MalformedQr(&'static str),
    /// The QR's client type is unknown or `0` (the server refuses unknown clients).
    #[error("unknown client type {0:?}")]
    BadClientType(char),
    /// The code typed is not eight characters of the pairing-code alphabet.
    #[error("invalid pairing code")]
    InvalidCode,
    /// A wrapped ephemeral key or key bundle does not have its fixed length.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// The companion's key bundle did not decrypt (the code typed was wrong).
    #[error("key bundle does not decrypt")]
    BundleDecrypt,
    /// The key bundle names other identity keys than the ones registered.
    #[error("key bundle names the wrong identity keys")]
    BundleIdentityMismatch,
    /// A peer's public key is of small order.
    #[error("weak public key")]
    WeakKey,
    /// Signal encryption or decryption failed.
    #[error("signal: {0}")]
    Signal(String),
    /// `companion_finish` arrived with no `primary_hello` sent for this pairing.
    #[error("no code pairing in progress")]
    NoLinkInProgress,
}

/// The fields of a scanned QR.
#[derive(Clone, PartialEq, Eq)]
pub struct QrScan {
    /// The `<ref>` the QR was built from.
    pub reference: String,
    /// The companion's Noise static public key.
    pub noise_public: [u8; 32],
    /// The companion's identity public key.
    pub identity_public: [u8; 32],
    /// The adv secret that keys the pair-success HMAC.
    pub adv_secret: [u8; 32],
    /// The client-type character; absent in the four-field QR of older companions.
    pub client_type: Option<char>,
}

impl fmt::Debug for QrScan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QrScan")
            .field("reference", &self.reference)
            .field("client_type", &self.client_type)
            .finish_non_exhaustive()
    }
}

impl QrScan {
    /// Reads a QR payload: `[prefix]ref,b64(noise),b64(identity),b64(adv)[,type]` (standard
    /// padded base64, 32-byte keys, one client-type character `1`-`9` or `a`-`f`). Phones
    /// accept the four-field form older companions show, without the client type.
    pub fn parse(text: &str) -> Result<QrScan, PhoneError> {
        let body = text.strip_prefix(QR_PREFIX).unwrap_or(text);
        let fields: Vec<&str> = body.split(',').collect();
        let (reference, noise, identity, adv, client_type) = match fields.as_slice() {
            [reference, noise, identity, adv] => (reference, noise, identity, adv, None),
            [reference, noise, identity, adv, kind] => {
                (reference, noise, identity, adv, Some(*kind))
            }
            _ => return Err(PhoneError::MalformedQr("expected four or five fields")),
        };
        if reference.is_empty() {
            return Err(PhoneError::MalformedQr("empty ref"));
        }
        let key = |field: &str, what: &'static str| -> Result<[u8; 32], PhoneError> {
            STANDARD
                .decode(field)
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
                .ok_or(PhoneError::MalformedQr(what))
        };
        let client_type = match client_type {
            None => None,
            Some(field) => {
                let mut chars = field.chars();
                let (Some(kind), None) = (chars.next(), chars.next()) else {
                    return Err(PhoneError::MalformedQr("client type is not one character"));
                };
                if !matches!(kind, '1'..='9' | 'a'..='f') {
                    return Err(PhoneError::BadClientType(kind));
                }
                Some(kind)
            }
        };
        Ok(QrScan {
            reference: (*reference).to_owned(),
            noise_public: key(noise, "noise key")?,
            identity_public: key(identity, "identity key")?,
            adv_secret: key(adv, "adv secret")?,
            client_type,
        })
    }
}

/// The QR client-type character a companion with this `DeviceProps.platformType` shows
/// (transport notes §4.2): CHROME 1 → `1`, EDGE 6 → `2`, FIREFOX 2 → `3`, IE 3 → `4`, OPERA 4
/// → `5`, SAFARI 5 → `6`, DESKTOP 7 → `7`, UWP 21 → `8`, anything else `9`.
pub fn client_type_of_platform(platform_type: i32) -> char {
    match platform_type {
        1 => '1',
        6 => '2',
        2 => '3',
        3 => '4',
        4 => '5',
        5 => '6',
        7 => '7',
        21 => '8',
        _ => '9',
    }
}

/// What the phone sends in `primary_hello`.
#[derive(Clone, Debug)]
pub struct PrimaryHello {
    /// `link_code_pairing_wrapped_primary_ephemeral_pub`: salt ‖ iv ‖ AES-CTR ciphertext.
    pub wrapped_primary_ephemeral: [u8; 80],
    /// `primary_identity_pub`.
    pub primary_identity: [u8; 32],
}

/// The phone's half of a link-code pairing between `primary_hello` and `companion_finish`.
struct LinkState {
    ephemeral: StaticSecret,
    companion_ephemeral: [u8; 32],
}

/// The signed device identity the phone issues for a new companion.
#[derive(Clone, Debug)]
pub struct IssuedIdentity {
    /// The `<device-identity>` content of pair-success: an encoded
    /// `ADVSignedDeviceIdentityHMAC`.
    pub container: Vec<u8>,
    /// The encoded `ADVDeviceIdentity` the phone signed.
    pub details: Vec<u8>,
    /// The key index assigned.
    pub key_index: u32,
}

/// A message the phone received and decrypted (or failed to).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhoneMessage {
    /// The message id.
    pub id: String,
    /// The sending device's JID.
    pub from: String,
    /// The chat: the sender's account, or for a message from an own companion, its
    /// destination.
    pub chat: String,
    /// The text (`conversation` or `extendedTextMessage.text`), if the message decrypted and
    /// carried text.
    pub text: Option<String>,
    /// Why decryption failed, if it did.
    pub error: Option<String>,
    /// Server time, Unix seconds.
    pub timestamp: u64,
    /// The key ids of an app-state key request (`AppStateSyncKeyRequest`), if it was one.
    pub app_state_key_request: Option<Vec<Vec<u8>>>,
    /// An on-demand history request (`HistorySyncOnDemandRequest`), if it was one.
    pub history_request: Option<HistoryRequest>,
    /// The message's `messageContextInfo.messageSecret`, if it carried one (what add-ons to it
    /// are sealed with).
    pub secret: Option<Vec<u8>>,
}

/// A companion's request for older messages of one chat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryRequest {
    /// The chat.
    pub chat: String,
    /// The oldest message the companion has: messages before it are wanted.
    pub oldest_timestamp: u64,
    /// How many.
    pub count: usize,
}

/// The phone's own Signal keys, as walink-core's Signal code looks them up.
struct PhoneKeys<'a> {
    phone: &'a Phone,
}

impl PreKeySource for PhoneKeys<'_> {
    fn signed_pre_key(&self, id: SignedPreKeyId) -> Option<SignalKeyPair> {
        (id.0 == self.phone.signed_prekey.id).then(|| {
            SignalKeyPair::from_private(PrivateKey::from_bytes(
                self.phone.signed_prekey_private.to_bytes(),
            ))
        })
    }

    fn pre_key(&self, id: PreKeyId) -> Option<SignalKeyPair> {
        self.phone
            .prekeys
            .get(&id.0)
            .map(|secret| SignalKeyPair::from_private(PrivateKey::from_bytes(secret.to_bytes())))
    }
}

/// The simulated primary phone.
pub struct Phone {
    /// What the phone sent, by message id and recipient address, for retry requests.
    outbox: BTreeMap<String, BTreeMap<String, wa::Message>>,
    sessions: BTreeMap<String, SessionRecord>,
    sender_keys: BTreeMap<(String, String), SenderKeyRecord>,
    /// The phone's own sender key per group, and the devices it was distributed to.
    own_sender_keys: BTreeMap<String, (SenderKeyRecord, BTreeSet<String>)>,
    inbox: Vec<PhoneMessage>,
    identity: StaticSecret,
    identity_public: [u8; 32],
    registration_id: u32,
    signed_prekey: SignedPreKey,
    signed_prekey_private: StaticSecret,
    prekeys: BTreeMap<u32, StaticSecret>,
    rng: SimRng,
    link: Option<LinkState>,
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Phone")
            .field("identity_public", &self.identity_public)
            .field("registration_id", &self.registration_id)
            .finish_non_exhaustive()
    }
}

fn dh(private: &StaticSecret, public: &[u8; 32]) -> Result<[u8; 32], PhoneError> {
    let shared = private.diffie_hellman(&PublicKey::from(*public));
    if shared.was_contributory() {
        Ok(shared.to_bytes())
    } else {
        Err(PhoneError::WeakKey)
    }
}

impl Phone {
    /// A phone with keys drawn from `seed`: identity, registration id, signed prekey and
    /// [`PHONE_PREKEYS`] one-time prekeys.
    pub fn new(seed: [u8; 32]) -> Phone {
        let mut rng = SimRng::new(seed);
        let identity = StaticSecret::from(rng.bytes::<32>());
        let identity_public = PublicKey::from(&identity).to_bytes();
        let registration_id = (rng.next_u32() & 0x3fff).max(1);
        let signed_prekey_private = StaticSecret::from(rng.bytes::<32>());
        let signed_public = PublicKey::from(&signed_prekey_private).to_bytes();
        let mut message = [5u8; 33];
        message[1..].copy_from_slice(&signed_public);
        let signature = xeddsa::sign(&identity.to_bytes(), &message, &rng.bytes());
        let prekeys = (1..=PHONE_PREKEYS)
            .map(|id| (id, StaticSecret::from(rng.bytes::<32>())))
            .collect();
        Phone {
            identity,
            identity_public,
            registration_id,
            signed_prekey: SignedPreKey {
                id: 1,
                public: signed_public,
                signature,
            },
            signed_prekey_private,
            prekeys,
            rng,
            link: None,
            outbox: BTreeMap::new(),
            sessions: BTreeMap::new(),
            sender_keys: BTreeMap::new(),
            own_sender_keys: BTreeMap::new(),
            inbox: Vec::new(),
        }
    }

    /// The phone after a reinstall: new keys from `seed` and no sessions; the old phone's
    /// inbox is kept (the tests' record of what the account received).
    pub fn reinstalled(seed: [u8; 32], old: &Phone) -> Phone {
        let mut phone = Phone::new(seed);
        phone.inbox = old.inbox.clone();
        phone
    }

    fn signal_identity(&self) -> IdentityKeyPair {
        IdentityKeyPair::from_private(PrivateKey::from_bytes(self.identity.to_bytes()))
    }

    /// Whether the phone has a Signal session with `address` (a device JID in text form).
    pub fn has_session(&self, address: &str) -> bool {
        self.sessions
            .get(address)
            .is_some_and(SessionRecord::has_current_session)
    }

    /// Starts a session with `address` from its prekey bundle (X3DH as the initiator).
    pub fn start_session(
        &mut self,
        address: &str,
        bundle: &PreKeyBundle,
    ) -> Result<(), PhoneError> {
        let identity = self.signal_identity();
        let mut record = SessionRecord::new();
        record
            .process_bundle(bundle, &identity, self.registration_id, &mut self.rng)
            .map_err(|error| PhoneError::Signal(error.to_string()))?;
        self.sessions.insert(address.to_owned(), record);
        Ok(())
    }

    /// Encrypts a `wa.Message` for `address`: padded, then Signal-encrypted. Returns the
    /// `<enc type>` and the ciphertext.
    pub fn encrypt(
        &mut self,
        address: &str,
        message: &wa::Message,
    ) -> Result<(&'static str, Vec<u8>), PhoneError> {
        let padded = pad(&message.encode_to_vec(), &mut self.rng);
        let record = self
            .sessions
            .get_mut(address)
            .ok_or_else(|| PhoneError::Signal(format!("no session with {address}")))?;
        let ciphertext = record
            .encrypt(&padded)
            .map_err(|error| PhoneError::Signal(error.to_string()))?;
        Ok((ciphertext.enc_type(), ciphertext.serialize().to_vec()))
    }

    /// The phone's sender-key distribution message for `group`, serialized: its own chain
    /// (created on first use) at the iteration of the next message.
    pub fn sender_key_distribution(&mut self, group: &str) -> Vec<u8> {
        let (record, _) = self.own_sender_keys.entry(group.to_owned()).or_default();
        record
            .create_distribution_message(&mut self.rng)
            .serialize()
            .to_vec()
    }

    /// Whether device `address` does not hold the phone's sender key for `group` yet; it is
    /// counted as holding it from now on.
    pub fn first_sender_key_for(&mut self, group: &str, address: &str) -> bool {
        let (_, holders) = self.own_sender_keys.entry(group.to_owned()).or_default();
        holders.insert(address.to_owned())
    }

    /// Encrypts a `wa.Message` for `group` with the phone's own sender key (padded, then the
    /// `skmsg` bytes).
    pub fn group_encrypt(
        &mut self,
        group: &str,
        message: &wa::Message,
    ) -> Result<Vec<u8>, PhoneError> {
        let padded = pad(&message.encode_to_vec(), &mut self.rng);
        let (record, _) = self.own_sender_keys.entry(group.to_owned()).or_default();
        if record.is_empty() {
            let _ = record.create_distribution_message(&mut self.rng);
        }
        record
            .encrypt(&padded, &mut self.rng)
            .map_err(|error| PhoneError::Signal(error.to_string()))
    }

    /// Decrypts the `<enc>`s of one message stanza from `address` (in order: a `pkmsg`/`msg`
    /// may carry a sender-key distribution for `group`, then a `skmsg` uses it) and records the
    /// message in the inbox: its text, or why nothing readable came out.
    pub fn receive(
        &mut self,
        id: &str,
        address: &str,
        group: Option<&str>,
        encs: &[(String, Vec<u8>)],
        timestamp: u64,
    ) -> &PhoneMessage {
        let sender_chat = address
            .split_once('@')
            .map(|(user, server)| {
                let user = user.split(':').next().unwrap_or(user);
                format!("{user}@{server}")
            })
            .unwrap_or_else(|| address.to_owned());
        let mut chat = group.map_or(sender_chat, str::to_owned);
        let mut text = None;
        let mut app_state_key_request = None;
        let mut history_request = None;
        let mut secret = None;
        let mut error = None;
        for (enc_type, ciphertext) in encs {
            let result = if enc_type == "skmsg" {
                self.decrypt_group(group, address, ciphertext)
            } else {
                self.decrypt(address, enc_type, ciphertext)
            };
            match result {
                Ok(message) => {
                    if let (Some(group), Some(distribution)) =
                        (group, message.sender_key_distribution_message.as_ref())
                        && let Some(bytes) = distribution
                            .axolotl_sender_key_distribution_message
                            .as_deref()
                    {
                        match SenderKeyDistributionMessage::deserialize(bytes) {
                            Ok(parsed) => self
                                .sender_keys
                                .entry((group.to_owned(), address.to_owned()))
                                .or_default()
                                .process_distribution_message(&parsed),
                            Err(e) => error = Some(format!("sender key distribution: {e}")),
                        }
                    }
                    let (destination, inner) = match &message.device_sent_message {
                        Some(sent) => (
                            sent.destination_jid.clone(),
                            sent.message.as_deref().cloned().unwrap_or_default(),
                        ),
                        None => (None, message),
                    };
                    if let Some(destination) = destination {
                        chat = destination;
                    }
                    if let Some(found) = message_secret(&inner) {
                        secret = Some(found);
                    }
                    let found = inner.conversation.clone().or_else(|| {
                        inner
                            .extended_text_message
                            .as_ref()
                            .and_then(|m| m.text.clone())
                    });
                    if found.is_some() {
                        text = found;
                    }
                    if let Some(request) = inner
                        .protocol_message
                        .as_ref()
                        .and_then(|p| p.app_state_sync_key_request.as_ref())
                    {
                        app_state_key_request = Some(
                            request
                                .key_ids
                                .iter()
                                .filter_map(|id| id.key_id.clone())
                                .collect(),
                        );
                    }
                    if let Some(request) = inner
                        .protocol_message
                        .as_ref()
                        .and_then(|p| p.peer_data_operation_request_message.as_ref())
                        .and_then(|p| p.history_sync_on_demand_request.as_ref())
                    {
                        history_request = Some(HistoryRequest {
                            chat: request.chat_jid.clone().unwrap_or_default(),
                            oldest_timestamp: u64::try_from(
                                request.oldest_msg_timestamp_ms.unwrap_or_default(),
                            )
                            .unwrap_or_default(),
                            count: usize::try_from(request.on_demand_msg_count.unwrap_or(0))
                                .unwrap_or_default(),
                        });
                    }
                }
                Err(e) => error = Some(e.to_string()),
            }
        }
        self.inbox.push(PhoneMessage {
            id: id.to_owned(),
            from: address.to_owned(),
            chat,
            text,
            error,
            timestamp,
            app_state_key_request,
            history_request,
            secret,
        });
        let index = self.inbox.len() - 1;
        &self.inbox[index]
    }

    fn decrypt_group(
        &mut self,
        group: Option<&str>,
        address: &str,
        ciphertext: &[u8],
    ) -> Result<wa::Message, PhoneError> {
        let group = group.ok_or_else(|| PhoneError::Signal("skmsg outside a group".into()))?;
        let record = self
            .sender_keys
            .get_mut(&(group.to_owned(), address.to_owned()))
            .ok_or_else(|| {
                PhoneError::Signal(format!("no sender key from {address} in {group}"))
            })?;
        let plaintext = record
            .decrypt(ciphertext)
            .map_err(|error| PhoneError::Signal(error.to_string()))?;
        let unpadded = unpad(&plaintext).map_err(|error| PhoneError::Signal(error.to_string()))?;
        wa::Message::decode(unpadded).map_err(|_| PhoneError::Malformed("wa.Message"))
    }

    fn decrypt(
        &mut self,
        address: &str,
        enc_type: &str,
        ciphertext: &[u8],
    ) -> Result<wa::Message, PhoneError> {
        let identity = self.signal_identity();
        let mut record = self.sessions.get(address).cloned().unwrap_or_default();
        let plaintext = match enc_type {
            "pkmsg" => {
                let keys = PhoneKeys { phone: self };
                let mut rng = self.rng.clone();
                let done = record
                    .decrypt_pre_key_message(
                        ciphertext,
                        &identity,
                        self.registration_id,
                        &keys,
                        &mut rng,
                    )
                    .map_err(|error| PhoneError::Signal(error.to_string()))?;
                self.rng = rng;
                if let Some(used) = done.consumed_pre_key {
                    self.prekeys.remove(&used.0);
                }
                done.plaintext
            }
            "msg" => record
                .decrypt_message(ciphertext, &mut self.rng)
                .map_err(|error| PhoneError::Signal(error.to_string()))?,
            other => return Err(PhoneError::Signal(format!("unsupported enc type {other}"))),
        };
        self.sessions.insert(address.to_owned(), record);
        let unpadded = unpad(&plaintext).map_err(|error| PhoneError::Signal(error.to_string()))?;
        wa::Message::decode(unpadded).map_err(|_| PhoneError::Malformed("wa.Message"))
    }

    /// Keeps what was sent to `address` as message `id`, so that a retry request can be
    /// answered (the oldest ids are forgotten beyond [`PHONE_OUTBOX`]).
    pub fn remember_sent(&mut self, id: &str, address: &str, message: &wa::Message) {
        self.outbox
            .entry(id.to_owned())
            .or_default()
            .insert(address.to_owned(), message.clone());
        while self.outbox.len() > PHONE_OUTBOX {
            self.outbox.pop_first();
        }
    }

    /// What was sent to `address` as message `id`, if it is still kept.
    pub fn sent(&self, id: &str, address: &str) -> Option<&wa::Message> {
        self.outbox.get(id)?.get(address)
    }

    /// Every message the phone received, in arrival order.
    pub fn inbox(&self) -> &[PhoneMessage] {
        &self.inbox
    }

    /// The account's identity public key (the ADV `accountSignatureKey`).
    pub fn identity_public(&self) -> [u8; 32] {
        self.identity_public
    }

    /// The phone's Signal registration id.
    pub fn registration_id(&self) -> u32 {
        self.registration_id
    }

    /// The phone's signed prekey.
    pub fn signed_prekey(&self) -> &SignedPreKey {
        &self.signed_prekey
    }

    /// The phone's one-time prekeys (public halves), as the server publishes them.
    pub fn prekeys(&self) -> Vec<PreKey> {
        self.prekeys
            .iter()
            .map(|(&id, secret)| PreKey {
                id,
                public: PublicKey::from(secret).to_bytes(),
            })
            .collect()
    }

    /// The signed prekey's private half, for the phone's own Signal sessions.
    pub fn signed_prekey_private(&self) -> [u8; 32] {
        self.signed_prekey_private.to_bytes()
    }

    /// Builds and signs the device identity of a new companion with identity key
    /// `companion_identity` (transport notes §4.4, from the phone's side):
    /// `ADVDeviceIdentity {rawId, timestamp, keyIndex}`, the account signature over
    /// `06 00 ‖ details ‖ companion identity`, and the HMAC-SHA256 under `adv_secret` over the
    /// encoded `ADVSignedDeviceIdentity`.
    pub fn issue_identity(
        &mut self,
        companion_identity: &[u8; 32],
        adv_secret: &[u8; 32],
        raw_id: u32,
        key_index: u32,
        timestamp_s: u64,
    ) -> IssuedIdentity {
        let details = wa::AdvDeviceIdentity {
            raw_id: Some(raw_id),
            timestamp: Some(timestamp_s),
            key_index: Some(key_index),
            account_type: None,
            device_type: None,
        }
        .encode_to_vec();
        let message = [&ACCOUNT_SIGNATURE_PREFIX[..], &details, companion_identity].concat();
        let signature = xeddsa::sign(&self.identity.to_bytes(), &message, &self.rng.bytes());
        let signed = wa::AdvSignedDeviceIdentity {
            details: Some(details.clone()),
            account_signature_key: Some(self.identity_public.to_vec()),
            account_signature: Some(signature.to_vec()),
            device_signature: None,
        }
        .encode_to_vec();
        let hmac = hmac_sha256(adv_secret, &signed).unwrap_or_default();
        let container = wa::AdvSignedDeviceIdentityHmac {
            details: Some(signed),
            hmac: Some(hmac.to_vec()),
            account_type: None,
        }
        .encode_to_vec();
        IssuedIdentity {
            container,
            details,
            key_index,
        }
    }

    /// Checks the companion's `pair-device-sign` content: an `ADVSignedDeviceIdentity` with the
    /// issued `details`, no account key, and a device signature by `companion_identity` over
    /// `06 01 ‖ details ‖ companion identity ‖ account key`.
    pub fn check_device_signature(
        &self,
        reply: &[u8],
        issued_details: &[u8],
        companion_identity: &[u8; 32],
    ) -> bool {
        let Ok(signed) = wa::AdvSignedDeviceIdentity::decode(reply) else {
            return false;
        };
        if signed.details.as_deref() != Some(issued_details) {
            return false;
        }
        if signed
            .account_signature_key
            .as_ref()
            .is_some_and(|key| !key.is_empty())
        {
            return false;
        }
        let Some(signature) = signed
            .device_signature
            .as_deref()
            .and_then(|sig| <[u8; 64]>::try_from(sig).ok())
        else {
            return false;
        };
        let message = [
            &DEVICE_SIGNATURE_PREFIX[..],
            issued_details,
            companion_identity,
            &self.identity_public,
        ]
        .concat();
        xeddsa::verify(companion_identity, &message, &signature)
    }

    /// The user types `code`: the phone opens the companion's wrapped ephemeral key with it,
    /// makes its own link ephemeral key and wraps it under the same code (transport notes
    /// §5.3). A wrong code yields a wrong companion key, which only the bundle check reveals.
    pub fn primary_hello(
        &mut self,
        code: &str,
        companion_wrapped: &[u8],
    ) -> Result<PrimaryHello, PhoneError> {
        let code = PairingCode::parse(code).map_err(|_| PhoneError::InvalidCode)?;
        let companion_ephemeral = unwrap_ephemeral_key(&code, companion_wrapped)
            .map_err(|_| PhoneError::Malformed("wrapped companion ephemeral key"))?;
        let ephemeral = StaticSecret::from(self.rng.bytes::<32>());
        let public = PublicKey::from(&ephemeral).to_bytes();
        let salt = self.rng.bytes::<32>();
        let iv = self.rng.bytes::<16>();
        let wrapped_primary_ephemeral = wrap_ephemeral_key(&code, &public, &salt, &iv);
        self.link = Some(LinkState {
            ephemeral,
            companion_ephemeral,
        });
        Ok(PrimaryHello {
            wrapped_primary_ephemeral,
            primary_identity: self.identity_public,
        })
    }

    /// Opens `companion_finish`'s key bundle (transport notes §5.4 from the primary's side):
    /// `bundle_key = HKDF(X25519(own link key, companion link key), salt, info)`, AES-GCM open,
    /// check `companion identity ‖ own identity ‖ adv random`, then the adv secret
    /// `HKDF(ephemeral shared ‖ X25519(own identity, companion identity) ‖ adv random,
    /// "adv_secret")`. The link state is consumed.
    pub fn open_key_bundle(
        &mut self,
        bundle: &[u8],
        companion_identity: &[u8; 32],
    ) -> Result<[u8; 32], PhoneError> {
        let link = self.link.take().ok_or(PhoneError::NoLinkInProgress)?;
        if bundle.len() != 156 {
            return Err(PhoneError::Malformed("key bundle"));
        }
        let (salt, rest) = bundle.split_at(32);
        let (nonce, sealed) = rest.split_at(12);
        let shared = dh(&link.ephemeral, &link.companion_ephemeral)?;
        let mut key = [0u8; 32];
        Hkdf::<Sha256>::new(Some(salt), &shared)
            .expand(BUNDLE_INFO, &mut key)
            .map_err(|_| PhoneError::Malformed("bundle key"))?;
        let nonce: [u8; 12] = nonce
            .try_into()
            .map_err(|_| PhoneError::Malformed("nonce"))?;
        let plain = Aes256Gcm::new(&key.into())
            .decrypt(&nonce.into(), sealed)
            .map_err(|_| PhoneError::BundleDecrypt)?;
        if plain.len() != 96
            || plain[..32] != companion_identity[..]
            || plain[32..64] != self.identity_public[..]
        {
            return Err(PhoneError::BundleIdentityMismatch);
        }
        let identity_shared = dh(&self.identity, companion_identity)?;
        let ikm = [&shared[..], &identity_shared, &plain[64..96]].concat();
        let mut adv_secret = [0u8; 32];
        Hkdf::<Sha256>::new(None, &ikm)
            .expand(ADV_SECRET_INFO, &mut adv_secret)
            .map_err(|_| PhoneError::Malformed("adv secret"))?;
        Ok(adv_secret)
    }

    /// Signs an `ADVKeyIndexList` (prefix `06 02`) for the device list. The XEdDSA nonce is
    /// derived from the key and the message, so the same list gives the same signature.
    pub fn sign_key_index_list(&self, details: &[u8]) -> [u8; 64] {
        use sha2::Digest;
        let message = [&KEY_INDEX_LIST_PREFIX[..], details].concat();
        let private = self.identity.to_bytes();
        let first: [u8; 32] = Sha256::new()
            .chain_update(private)
            .chain_update(&message)
            .finalize()
            .into();
        let second: [u8; 32] = Sha256::new()
            .chain_update(first)
            .chain_update(private)
            .finalize()
            .into();
        let mut random = [0u8; 64];
        random[..32].copy_from_slice(&first);
        random[32..].copy_from_slice(&second);
        xeddsa::sign(&private, &message, &random)
    }

    /// Whether a code pairing is waiting for `companion_finish`.
    pub fn link_in_progress(&self) -> bool {
        self.link.is_some()
    }

    /// The phone's identity private key, for its own Signal sessions.
    pub fn identity_private(&self) -> [u8; 32] {
        self.identity.to_bytes()
    }

    /// The private half of one-time prekey `id`.
    pub fn prekey_private(&self, id: u32) -> Option<[u8; 32]> {
        self.prekeys.get(&id).map(StaticSecret::to_bytes)
    }
}

/// HMAC-SHA256 under a 32-byte key (HMAC takes keys of any length, so keying cannot fail;
/// `None` would only mean a broken HMAC implementation).
fn hmac_sha256(key: &[u8; 32], data: &[u8]) -> Option<[u8; 32]> {
    let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key).ok()?;
    mac.update(data);
    Some(mac.finalize().into_bytes().into())
}

/// The `messageContextInfo.messageSecret` of `message` (on the message or, for wrapped content,
/// as the sender put it on the outer message).
fn message_secret(message: &wa::Message) -> Option<Vec<u8>> {
    message
        .message_context_info
        .as_ref()
        .and_then(|context| context.message_secret.clone())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn b64(byte: u8) -> String {
        STANDARD.encode([byte; 32])
    }

    #[test]
    fn qr_with_and_without_prefix() {
        let body = format!("2@ref,{},{},{},1", b64(1), b64(2), b64(3));
        let plain = QrScan::parse(&body).unwrap();
        let prefixed = QrScan::parse(&format!("{QR_PREFIX}{body}")).unwrap();
        assert_eq!(plain, prefixed);
        assert_eq!(plain.reference, "2@ref");
        assert_eq!(plain.noise_public, [1; 32]);
        assert_eq!(plain.identity_public, [2; 32]);
        assert_eq!(plain.adv_secret, [3; 32]);
        assert_eq!(plain.client_type, Some('1'));
    }

    #[test]
    fn a_four_field_qr_has_no_client_type() {
        let body = format!("2@ref,{},{},{}", b64(1), b64(2), b64(3));
        let scan = QrScan::parse(&body).unwrap();
        assert_eq!(scan.reference, "2@ref");
        assert_eq!(scan.adv_secret, [3; 32]);
        assert_eq!(scan.client_type, None);
        assert_eq!(QrScan::parse(&format!("{QR_PREFIX}{body}")).unwrap(), scan);
    }

    #[test]
    fn malformed_qrs_are_refused() {
        let good = [b64(1), b64(2), b64(3)];
        for text in [
            format!("2@ref,{},{}", good[0], good[1]),
            format!("2@ref,{},{},{},1,extra", good[0], good[1], good[2]),
            format!("2@ref,{},{},{},", good[0], good[1], good[2]),
            format!(",{},{},{},1", good[0], good[1], good[2]),
            format!(
                "2@ref,{},{},{},1",
                STANDARD.encode([1; 31]),
                good[1],
                good[2]
            ),
            format!("2@ref,not base64!,{},{},1", good[1], good[2]),
            format!("2@ref,{},{},{},12", good[0], good[1], good[2]),
        ] {
            assert!(
                matches!(QrScan::parse(&text), Err(PhoneError::MalformedQr(_))),
                "{text}"
            );
        }
        let unknown = format!("2@ref,{},{},{},0", good[0], good[1], good[2]);
        assert_eq!(QrScan::parse(&unknown), Err(PhoneError::BadClientType('0')));
    }

    #[test]
    fn client_types_follow_the_platform() {
        assert_eq!(client_type_of_platform(1), '1'); // Chrome
        assert_eq!(client_type_of_platform(6), '2'); // Edge
        assert_eq!(client_type_of_platform(2), '3'); // Firefox
        assert_eq!(client_type_of_platform(7), '7'); // Desktop
        assert_eq!(client_type_of_platform(21), '8'); // UWP
        assert_eq!(client_type_of_platform(0), '9');
    }

    #[test]
    fn issued_identity_verifies_and_only_the_right_reply_passes() {
        let mut phone = Phone::new([4; 32]);
        let companion = walink_core::pair::KeyPair::from_private([5; 32]);
        let secret = walink_core::pair::AdvSecret::new([6; 32]);
        let issued =
            phone.issue_identity(companion.public(), secret.as_bytes(), 77, 3, 1_700_000_000);
        let verified = walink_core::pair::verify_device_identity(
            &issued.container,
            &secret,
            &companion,
            &[8; 64],
        )
        .unwrap();
        assert_eq!(verified.key_index, 3);
        assert_eq!(verified.primary_identity_key, phone.identity_public());
        assert!(phone.check_device_signature(&verified.reply, &issued.details, companion.public()));
        let other = walink_core::pair::KeyPair::from_private([9; 32]);
        assert!(!phone.check_device_signature(&verified.reply, &issued.details, other.public()));
        assert!(!phone.check_device_signature(
            &verified.reply,
            b"other details",
            companion.public()
        ));
        // The stored form (with the account key) is not a valid reply.
        let stored = verified.signed_identity.encode_to_vec();
        assert!(!phone.check_device_signature(&stored, &issued.details, companion.public()));
    }
}
