//! The Signal wire messages: `WhisperMessage` (libsignal `SignalMessage`) and
//! `PreKeyWhisperMessage` (libsignal `PreKeySignalMessage`).
//!
//! Layout (libsignal-node `src/session_cipher.js`, `encrypt` and `doDecryptWhisperMessage`):
//! - WhisperMessage: version byte `0x33` (high nibble: message version 3, low nibble: current
//!   version 3), the protobuf, then the first 8 bytes of
//!   HMAC-SHA256(mac key, sender identity (33) ‖ receiver identity (33) ‖ version byte ‖ protobuf).
//! - PreKeyWhisperMessage: version byte `0x33`, then the protobuf whose `message` field holds a
//!   whole serialized WhisperMessage.
//!
//! A message whose high nibble is not 3 is refused (libsignal: `< 3` legacy, `> 3` unrecognized;
//! WhatsApp speaks only v3).

use prost::Message as _;
use subtle::ConstantTimeEq;

use super::crypto::hmac_sha256;
use super::keys::{IdentityKey, PublicKey};
use crate::limits::SIGNAL_MAX_MESSAGE_LEN;
use crate::proto::wa;

/// The message version walink speaks (libsignal `CIPHERTEXT_MESSAGE_CURRENT_VERSION`).
pub const MESSAGE_VERSION: u8 = 3;

/// The version byte in front of every v3 message: `(3 << 4) | 3`.
pub const VERSION_BYTE: u8 = (MESSAGE_VERSION << 4) | MESSAGE_VERSION;

/// Length of the truncated MAC at the end of a WhisperMessage.
pub const MAC_LEN: usize = 8;

/// Id of a one-time prekey.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PreKeyId(pub u32);

/// Id of a signed prekey.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SignedPreKeyId(pub u32);

/// Why bytes are not a well-formed Signal message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// Too short to hold the version byte (and MAC), or longer than the limit.
    #[error("message has a bad length: {0} bytes")]
    BadLength(usize),
    /// The version byte's high nibble is not 3.
    #[error("unsupported message version byte {0:#04x}")]
    UnsupportedVersion(u8),
    /// The protobuf does not decode.
    #[error("message protobuf does not decode")]
    BadProtobuf,
    /// A required field is absent.
    #[error("message field {0} is missing")]
    MissingField(&'static str),
    /// A key field is not a 33-byte 0x05 key.
    #[error("message field {0} is not a public key")]
    BadKey(&'static str),
}

fn check_version(bytes: &[u8], min_len: usize) -> Result<(), MessageError> {
    if bytes.len() < min_len || bytes.len() > SIGNAL_MAX_MESSAGE_LEN {
        return Err(MessageError::BadLength(bytes.len()));
    }
    match bytes.first() {
        Some(&byte) if byte >> 4 == MESSAGE_VERSION => Ok(()),
        Some(&byte) => Err(MessageError::UnsupportedVersion(byte)),
        None => Err(MessageError::BadLength(0)),
    }
}

/// A double-ratchet message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignalMessage {
    ratchet_key: PublicKey,
    counter: u32,
    previous_counter: u32,
    ciphertext: Vec<u8>,
    serialized: Vec<u8>,
}

impl SignalMessage {
    /// Builds and MACs a message.
    pub(crate) fn new(
        mac_key: &[u8; 32],
        ratchet_key: PublicKey,
        counter: u32,
        previous_counter: u32,
        ciphertext: Vec<u8>,
        sender: &IdentityKey,
        receiver: &IdentityKey,
    ) -> SignalMessage {
        let body = wa::WhisperMessage {
            ephemeral_key: Some(ratchet_key.serialize().to_vec()),
            counter: Some(counter),
            previous_counter: Some(previous_counter),
            ciphertext: Some(ciphertext.clone()),
        }
        .encode_to_vec();
        let mut serialized = Vec::with_capacity(1 + body.len() + MAC_LEN);
        serialized.push(VERSION_BYTE);
        serialized.extend_from_slice(&body);
        let mac = compute_mac(mac_key, sender, receiver, &serialized);
        serialized.extend_from_slice(&mac);
        SignalMessage {
            ratchet_key,
            counter,
            previous_counter,
            ciphertext,
            serialized,
        }
    }

    /// Parses a serialized message (the MAC is checked later, with the message keys).
    pub fn deserialize(bytes: &[u8]) -> Result<SignalMessage, MessageError> {
        check_version(bytes, 1 + MAC_LEN)?;
        let body = bytes
            .get(1..bytes.len() - MAC_LEN)
            .ok_or(MessageError::BadLength(bytes.len()))?;
        let proto = wa::WhisperMessage::decode(body).map_err(|_| MessageError::BadProtobuf)?;
        let ratchet_key = proto
            .ephemeral_key
            .ok_or(MessageError::MissingField("ephemeral_key"))?;
        let ratchet_key = PublicKey::deserialize(&ratchet_key)
            .map_err(|_| MessageError::BadKey("ephemeral_key"))?;
        Ok(SignalMessage {
            ratchet_key,
            counter: proto.counter.ok_or(MessageError::MissingField("counter"))?,
            previous_counter: proto.previous_counter.unwrap_or(0),
            ciphertext: proto
                .ciphertext
                .ok_or(MessageError::MissingField("ciphertext"))?,
            serialized: bytes.to_vec(),
        })
    }

    /// Whether the truncated MAC matches, compared in constant time.
    pub(crate) fn verify_mac(
        &self,
        mac_key: &[u8; 32],
        sender: &IdentityKey,
        receiver: &IdentityKey,
    ) -> bool {
        let split = self.serialized.len().saturating_sub(MAC_LEN);
        let (covered, mac) = self.serialized.split_at(split);
        let expected = compute_mac(mac_key, sender, receiver, covered);
        bool::from(expected.ct_eq(mac))
    }

    /// The sender's ratchet public key.
    pub fn ratchet_key(&self) -> &PublicKey {
        &self.ratchet_key
    }

    /// The message's index in its chain.
    pub fn counter(&self) -> u32 {
        self.counter
    }

    /// The length of the sender's previous sending chain.
    pub fn previous_counter(&self) -> u32 {
        self.previous_counter
    }

    /// The AES-256-CBC ciphertext.
    pub fn ciphertext(&self) -> &[u8] {
        &self.ciphertext
    }

    /// The bytes on the wire.
    pub fn serialize(&self) -> &[u8] {
        &self.serialized
    }
}

fn compute_mac(
    mac_key: &[u8; 32],
    sender: &IdentityKey,
    receiver: &IdentityKey,
    covered: &[u8],
) -> [u8; MAC_LEN] {
    let full = hmac_sha256(
        mac_key,
        &[&sender.serialize(), &receiver.serialize(), covered],
    );
    let mut mac = [0u8; MAC_LEN];
    mac.copy_from_slice(&full[..MAC_LEN]);
    mac
}

/// The message that starts a session: the sender's identity and base key, the ids of the
/// prekeys it used, and the first WhisperMessage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreKeySignalMessage {
    registration_id: u32,
    pre_key_id: Option<PreKeyId>,
    signed_pre_key_id: SignedPreKeyId,
    base_key: PublicKey,
    identity_key: IdentityKey,
    message: SignalMessage,
    serialized: Vec<u8>,
}

impl PreKeySignalMessage {
    /// Wraps `message` with the session-start fields.
    pub(crate) fn new(
        registration_id: u32,
        pre_key_id: Option<PreKeyId>,
        signed_pre_key_id: SignedPreKeyId,
        base_key: PublicKey,
        identity_key: IdentityKey,
        message: SignalMessage,
    ) -> PreKeySignalMessage {
        let body = wa::PreKeyWhisperMessage {
            pre_key_id: pre_key_id.map(|id| id.0),
            base_key: Some(base_key.serialize().to_vec()),
            identity_key: Some(identity_key.serialize().to_vec()),
            message: Some(message.serialize().to_vec()),
            registration_id: Some(registration_id),
            signed_pre_key_id: Some(signed_pre_key_id.0),
        }
        .encode_to_vec();
        let mut serialized = Vec::with_capacity(1 + body.len());
        serialized.push(VERSION_BYTE);
        serialized.extend_from_slice(&body);
        PreKeySignalMessage {
            registration_id,
            pre_key_id,
            signed_pre_key_id,
            base_key,
            identity_key,
            message,
            serialized,
        }
    }

    /// Parses a serialized prekey message and the WhisperMessage inside it.
    pub fn deserialize(bytes: &[u8]) -> Result<PreKeySignalMessage, MessageError> {
        check_version(bytes, 1)?;
        let body = bytes.get(1..).ok_or(MessageError::BadLength(bytes.len()))?;
        let proto =
            wa::PreKeyWhisperMessage::decode(body).map_err(|_| MessageError::BadProtobuf)?;
        let base_key = proto
            .base_key
            .ok_or(MessageError::MissingField("base_key"))?;
        let identity_key = proto
            .identity_key
            .ok_or(MessageError::MissingField("identity_key"))?;
        let message = proto.message.ok_or(MessageError::MissingField("message"))?;
        Ok(PreKeySignalMessage {
            registration_id: proto.registration_id.unwrap_or(0),
            pre_key_id: proto.pre_key_id.map(PreKeyId),
            signed_pre_key_id: SignedPreKeyId(
                proto
                    .signed_pre_key_id
                    .ok_or(MessageError::MissingField("signed_pre_key_id"))?,
            ),
            base_key: PublicKey::deserialize(&base_key)
                .map_err(|_| MessageError::BadKey("base_key"))?,
            identity_key: IdentityKey::deserialize(&identity_key)
                .map_err(|_| MessageError::BadKey("identity_key"))?,
            message: SignalMessage::deserialize(&message)?,
            serialized: bytes.to_vec(),
        })
    }

    /// The sender's registration id.
    pub fn registration_id(&self) -> u32 {
        self.registration_id
    }

    /// The one-time prekey the sender used, if any.
    pub fn pre_key_id(&self) -> Option<PreKeyId> {
        self.pre_key_id
    }

    /// The signed prekey the sender used.
    pub fn signed_pre_key_id(&self) -> SignedPreKeyId {
        self.signed_pre_key_id
    }

    /// The sender's X3DH base key; it names the session.
    pub fn base_key(&self) -> &PublicKey {
        &self.base_key
    }

    /// The sender's identity key.
    pub fn identity_key(&self) -> &IdentityKey {
        &self.identity_key
    }

    /// The WhisperMessage inside.
    pub fn message(&self) -> &SignalMessage {
        &self.message
    }

    /// The bytes on the wire.
    pub fn serialize(&self) -> &[u8] {
        &self.serialized
    }
}

/// An encrypted 1:1 message: `msg` or `pkmsg` in WhatsApp's `<enc type=…>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CiphertextMessage {
    /// A message on an established session (`<enc type="msg">`).
    Whisper(SignalMessage),
    /// A message that may start the session on the receiver (`<enc type="pkmsg">`).
    PreKey(PreKeySignalMessage),
}

impl CiphertextMessage {
    /// The bytes on the wire.
    pub fn serialize(&self) -> &[u8] {
        match self {
            CiphertextMessage::Whisper(message) => message.serialize(),
            CiphertextMessage::PreKey(message) => message.serialize(),
        }
    }

    /// WhatsApp's `<enc type=…>` attribute value.
    pub fn enc_type(&self) -> &'static str {
        match self {
            CiphertextMessage::Whisper(_) => "msg",
            CiphertextMessage::PreKey(_) => "pkmsg",
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::signal::keys::PrivateKey;

    fn identity(seed: u8) -> IdentityKey {
        IdentityKey(PrivateKey::from_bytes([seed; 32]).public_key())
    }

    #[test]
    fn whisper_message_round_trips_and_macs() {
        let key = PrivateKey::from_bytes([5; 32]).public_key();
        let message =
            SignalMessage::new(&[9; 32], key, 7, 3, vec![1; 16], &identity(1), &identity(2));
        assert_eq!(message.serialize()[0], 0x33);
        let parsed = SignalMessage::deserialize(message.serialize()).unwrap();
        assert_eq!(parsed, message);
        assert!(parsed.verify_mac(&[9; 32], &identity(1), &identity(2)));
        assert!(!parsed.verify_mac(&[9; 32], &identity(2), &identity(1)));
        assert!(!parsed.verify_mac(&[8; 32], &identity(1), &identity(2)));
    }

    #[test]
    fn refuses_bad_versions_and_lengths() {
        let key = PrivateKey::from_bytes([5; 32]).public_key();
        let message =
            SignalMessage::new(&[9; 32], key, 7, 3, vec![1; 16], &identity(1), &identity(2));
        let mut bytes = message.serialize().to_vec();
        bytes[0] = 0x23;
        assert_eq!(
            SignalMessage::deserialize(&bytes),
            Err(MessageError::UnsupportedVersion(0x23))
        );
        bytes[0] = 0x43;
        assert_eq!(
            SignalMessage::deserialize(&bytes),
            Err(MessageError::UnsupportedVersion(0x43))
        );
        assert_eq!(
            SignalMessage::deserialize(&[0x33; 8]),
            Err(MessageError::BadLength(8))
        );
        assert!(PreKeySignalMessage::deserialize(&[]).is_err());
        assert_eq!(
            PreKeySignalMessage::deserialize(&[0x33, 0x0a]),
            Err(MessageError::BadProtobuf)
        );
    }
}
