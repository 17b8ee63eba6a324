//! The one error type of the messaging module, split by who is at fault.

use crate::signal::{BundleError, DecryptError, EncryptError, PaddingError, RecordError};

/// Why a messaging operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessagingError {
    // --- malformed input from the network ---
    /// A stanza lacks a required attribute or child, or one has the wrong form.
    #[error("malformed stanza: {0}")]
    Malformed(&'static str),
    /// The decrypted plaintext is not a valid `Message` protobuf.
    #[error("the message content is not a valid protobuf")]
    BadProtobuf,
    /// The decrypted plaintext's padding is invalid.
    #[error(transparent)]
    Padding(#[from] PaddingError),

    // --- the peer broke the protocol or the cryptography failed ---
    /// Signal decryption failed (bad MAC, unknown session, missing prekey ...).
    #[error(transparent)]
    Decrypt(#[from] DecryptError),
    /// A prekey bundle was refused (bad signature).
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The server answered an IQ with an error.
    #[error("server error {code}: {text}")]
    ServerError {
        /// The error code.
        code: u16,
        /// The error text.
        text: String,
    },

    // --- the caller's misuse or missing state ---
    /// The address is not a user, LID or group JID walink can send to.
    #[error("invalid address")]
    InvalidAddress,
    /// There is no session with a device the caller asked to encrypt for.
    #[error(transparent)]
    Encrypt(#[from] EncryptError),
    /// A stored record could not be decoded.
    #[error(transparent)]
    Record(#[from] RecordError),
}
