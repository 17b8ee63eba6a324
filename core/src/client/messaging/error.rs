//! The one error type of the messaging module, split by who is at fault.

use crate::signal::{BundleError, DecryptError, EncryptError, PaddingError, RecordError};

use super::address::DeviceAddress;

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

    // --- a stanza refused as a whole (docs/security.md, "Messaging peers") ---
    /// The stanza carries more `<enc>` children than `MESSAGING_MAX_ENCS_PER_STANZA`; none was
    /// decrypted.
    #[error("{count} <enc> children in one stanza")]
    TooManyEncs {
        /// How many it carries.
        count: usize,
    },
    /// An `<enc>` uses a message key an earlier `<enc>` of the same stanza used.
    #[error("an <enc> repeats a message key of the same stanza")]
    ReplayedEnc,
    /// More than one `<enc>` of the stanza carries a message.
    #[error("several messages in one stanza")]
    SeveralMessages,
    /// The device's identity key changed and `IdentityPolicy::Strict` waits for the
    /// application's approval (`Command::ApproveIdentity`).
    #[error("the identity key of {address} changed and waits for approval")]
    UntrustedIdentity {
        /// The device (canonical form).
        address: DeviceAddress,
    },

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
