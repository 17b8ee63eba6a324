//! QR pairing, pairing by phone-number code, and the ADV device identity checks.
//!
//! Pure functions over bytes: the Client state machine sends and receives the nodes, this module
//! does the cryptography. Randomness is always passed in, so every result is reproducible.
//!
//! - [`qr`]: the QR payload a companion shows;
//! - [`adv`]: checking `pair-success` and producing the `pair-device-sign` reply;
//! - [`code`]: the eight-character pairing code, the wrapped ephemeral key and `companion_finish`.
//!
//! The protocol is described, with its sources, in `docs/pairing.md`.

pub mod adv;
pub mod code;
mod keys;
pub mod qr;

pub use adv::{VerifiedIdentity, verify_device_identity};
pub use code::{
    CompanionFinish, FinishRandom, PairingCode, companion_finish, normalize_phone_number,
    unwrap_ephemeral_key, wrap_ephemeral_key,
};
pub use keys::{AdvSecret, KeyPair};
pub use qr::{ClientType, CompanionOs, platform_display, qr_payload};

/// Why pairing failed.
///
/// [`HmacMismatch`](PairError::HmacMismatch) and
/// [`SignatureMismatch`](PairError::SignatureMismatch) are the peer's fault and are answered with
/// their own 401 error; see [`PairError::reply_error`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairError {
    /// The HMAC over the signed device identity does not match the adv secret.
    #[error("device identity hmac mismatch")]
    HmacMismatch,
    /// The primary's account signature over the device identity does not verify.
    #[error("account signature mismatch")]
    SignatureMismatch,
    /// A protobuf or field from the peer is missing, truncated or of the wrong length.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// A pairing code is not eight characters of the pairing-code alphabet.
    #[error("invalid pairing code")]
    InvalidCode,
    /// Only the six browsers can be named in `companion_platform_display`.
    #[error("client type has no browser name for code pairing")]
    UnsupportedPlatform,
    /// A phone number has fewer than seven digits.
    #[error("phone number too short")]
    PhoneNumberTooShort,
    /// A phone number has more than fifteen digits (the E.164 maximum).
    #[error("phone number too long")]
    PhoneNumberTooLong,
    /// A phone number starts with 0: it is national, not international.
    #[error("phone number is not in international format")]
    PhoneNumberNotInternational,
    /// A phone number holds something other than digits, spaces, `+`, `-`, `.`, `(` and `)`.
    #[error("phone number holds an invalid character")]
    PhoneNumberInvalidCharacter,
}

impl PairError {
    /// The `<error code text>` with which the companion answers a `pair-success` that failed
    /// this way (tulir/whatsmeow:pair.go `handlePair`, `sendPairError`).
    pub fn reply_error(&self) -> (u16, &'static str) {
        match self {
            PairError::HmacMismatch => (401, "hmac-mismatch"),
            PairError::SignatureMismatch => (401, "signature-mismatch"),
            _ => (500, "internal-error"),
        }
    }
}
