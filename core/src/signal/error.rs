//! The errors of the Signal layer, split by operation.

use super::message::{MessageError, PreKeyId, SignedPreKeyId};

/// Why a message (1:1 or group) did not decrypt. The record it was decrypted with is unchanged
/// after any of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    /// The bytes are not a well-formed message (length, version byte, protobuf, keys).
    #[error("malformed message: {0}")]
    InvalidMessage(#[from] MessageError),
    /// There is no session (or sender key) to decrypt with.
    #[error("no session to decrypt with")]
    NoSession,
    /// The MAC (or, for groups, the signature) did not verify.
    #[error("bad MAC")]
    BadMac,
    /// A sender-key message's signature did not verify.
    #[error("bad signature")]
    BadSignature,
    /// The MAC verified but the ciphertext did not decrypt (length or CBC padding): a peer bug.
    #[error("ciphertext does not decrypt")]
    BadCiphertext,
    /// The message key for this counter was already used: a replay or a duplicate delivery.
    #[error("message {counter} was already decrypted")]
    DuplicateMessage {
        /// The message's counter (or sender-key iteration).
        counter: u32,
    },
    /// The counter jumps further ahead of the chain than the limit allows.
    #[error("message {counter} is too far ahead of chain index {index}")]
    TooFarAhead {
        /// The message's counter (or sender-key iteration).
        counter: u32,
        /// The chain's next index.
        index: u32,
    },
    /// The signed prekey named by a prekey message is unknown.
    #[error("unknown signed prekey {0:?}")]
    MissingSignedPreKey(SignedPreKeyId),
    /// The one-time prekey named by a prekey message is unknown (already consumed).
    #[error("unknown or consumed one-time prekey {0:?}")]
    MissingPreKey(PreKeyId),
    /// No sender-key state has the message's key id.
    #[error("no sender key with id {key_id}")]
    NoSenderKey {
        /// The key id the message names.
        key_id: u32,
    },
}

/// Why a message could not be encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncryptError {
    /// There is no current session (or own sender key).
    #[error("no session to encrypt with")]
    NoSession,
    /// The sending chain has used every counter.
    #[error("sending chain exhausted")]
    ChainExhausted,
    /// The sender-key state has no private signing key (it is someone else's).
    #[error("sender key has no signing key")]
    NotOwnSenderKey,
}

/// Why a prekey bundle was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The signed prekey's signature does not verify with the bundle's identity key.
    #[error("signed prekey signature does not verify")]
    BadSignature,
}

/// Why a stored record could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The record is larger than the limit.
    #[error("record is too large")]
    TooLarge,
    /// The protobuf does not decode.
    #[error("record protobuf does not decode")]
    BadProtobuf,
    /// The record's format version is not one this build reads.
    #[error("unsupported record format version {0}")]
    UnsupportedFormat(u32),
    /// A required field is missing or has the wrong length.
    #[error("record field {0} is missing or malformed")]
    BadField(&'static str),
    /// A list is longer than its limit.
    #[error("record list {0} exceeds its limit")]
    TooMany(&'static str),
}

impl RecordError {
    /// A stable machine-readable code, the variant's name in snake case (`bad_protobuf`, ...),
    /// the same in every binding.
    pub fn code(&self) -> &'static str {
        match self {
            RecordError::TooLarge => "too_large",
            RecordError::BadProtobuf => "bad_protobuf",
            RecordError::UnsupportedFormat(_) => "unsupported_format",
            RecordError::BadField(_) => "bad_field",
            RecordError::TooMany(_) => "too_many",
        }
    }
}

impl From<crate::proto_bounds::BoundsError> for RecordError {
    fn from(error: crate::proto_bounds::BoundsError) -> RecordError {
        use crate::proto_bounds::BoundsError;
        match error {
            BoundsError::Malformed => RecordError::BadProtobuf,
            BoundsError::TooMany(_) => RecordError::TooMany("list"),
            BoundsError::OverBudget => RecordError::TooLarge,
        }
    }
}
