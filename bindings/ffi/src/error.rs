//! The one public error of the foreign bindings.

/// What went wrong, by what the caller can do about it.
///
/// The core's per-module errors are mapped here at the edge; each variant carries the core's
/// message as `reason`.
#[derive(Debug, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum WalinkError {
    /// The input is malformed (for example bytes that are not a valid binary node): fix or drop
    /// the input; retrying it will fail the same way.
    #[error("invalid input: {reason}")]
    InvalidInput {
        /// The core's description of the problem.
        reason: String,
    },
    /// The configuration is refused (a malformed field, or a trust root that cannot check
    /// signatures): fix the configuration; retrying it will fail the same way.
    #[error("invalid config: {reason}")]
    InvalidConfig {
        /// The core's description of the problem.
        reason: String,
    },
    /// The stored records cannot be restored (malformed, duplicated, or without a device):
    /// repair or clear the store and pair again.
    #[error("corrupt store: {reason}")]
    CorruptStore {
        /// The core's description of the record at fault.
        reason: String,
    },
    /// The platform lacks something walink needs (a random source): report a bug.
    #[error("platform: {reason}")]
    Platform {
        /// The core's description.
        reason: String,
    },
}

impl From<walink_core::binary::DecodeError> for WalinkError {
    fn from(error: walink_core::binary::DecodeError) -> Self {
        WalinkError::InvalidInput {
            reason: error.to_string(),
        }
    }
}
