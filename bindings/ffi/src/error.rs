//! The one public error of the foreign bindings, and the panic guard every exported call runs
//! behind.

use std::panic::{AssertUnwindSafe, catch_unwind};

/// What went wrong, by what the caller can do about it. Every variant carries a stable `code`
/// (the core's: `too_deep`, `invalid_config`, `restore_malformed`, `io`, ...; the same codes as
/// the npm package) and a description as `reason`.
#[derive(Debug, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum WalinkError {
    /// The input is malformed (bytes that are not a valid binary node, a bad configuration, an
    /// unknown record space): fix or drop the input; retrying it will fail the same way.
    #[error("invalid input ({code}): {reason}")]
    InvalidInput {
        /// The stable code of the defect.
        code: String,
        /// The core's description of the problem.
        reason: String,
    },
    /// The stored records cannot be restored (malformed, duplicated, or without a device):
    /// repair or clear the store and pair again.
    #[error("corrupt store ({code}): {reason}")]
    CorruptStore {
        /// `restore_malformed`, `restore_duplicate`, `restore_missing_device`, ...
        code: String,
        /// The core's description of the record at fault.
        reason: String,
    },
    /// The platform lacks something walink needs (a random source): report a bug.
    #[error("platform ({code}): {reason}")]
    Platform {
        /// `no_randomness`.
        code: String,
        /// The core's description.
        reason: String,
    },
    /// The file store failed: `io` (the disk; the store holds none or all of the batch and
    /// repairs itself), `corrupt` (damage beyond a torn last write), `closed`, `too_large`,
    /// `invalid_change` (nothing of the batch was applied).
    #[error("store ({code}): {reason}")]
    Store {
        /// The store's stable code.
        code: String,
        /// What failed.
        reason: String,
    },
    /// walink panicked (a bug; please report it). The object it happened on can no longer be
    /// used: every later call fails the same way. Drop it; a client is rebuilt from its store.
    #[error("walink panicked ({code}): {reason}")]
    Panicked {
        /// `panicked`.
        code: String,
        /// The panic's message.
        reason: String,
    },
}

impl WalinkError {
    /// An `InvalidInput` with this code and description.
    pub(crate) fn invalid(code: &str, reason: impl Into<String>) -> WalinkError {
        WalinkError::InvalidInput {
            code: code.to_owned(),
            reason: reason.into(),
        }
    }

    /// A `Panicked` with this message.
    pub(crate) fn panicked(reason: impl Into<String>) -> WalinkError {
        WalinkError::Panicked {
            code: "panicked".to_owned(),
            reason: reason.into(),
        }
    }
}

impl From<walink_core::binary::DecodeError> for WalinkError {
    fn from(error: walink_core::binary::DecodeError) -> Self {
        WalinkError::invalid(error.code(), error.to_string())
    }
}

impl From<walink_core::store::RestoreError> for WalinkError {
    fn from(error: walink_core::store::RestoreError) -> Self {
        let (code, reason) = (error.code().to_owned(), error.to_string());
        match error {
            walink_core::store::RestoreError::NoRandomness => {
                WalinkError::Platform { code, reason }
            }
            walink_core::store::RestoreError::InvalidConfig(_) => {
                WalinkError::InvalidInput { code, reason }
            }
            _ => WalinkError::CorruptStore { code, reason },
        }
    }
}

impl From<walink_core::client::ConfigError> for WalinkError {
    fn from(error: walink_core::client::ConfigError) -> Self {
        WalinkError::invalid(error.code(), error.to_string())
    }
}

impl From<walink_file_store::StoreError> for WalinkError {
    fn from(error: walink_file_store::StoreError) -> Self {
        WalinkError::Store {
            code: error.code().to_owned(),
            reason: error.to_string(),
        }
    }
}

/// The message of a caught panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// A value behind a lock that a panic poisons for good: every call runs `f` under the lock and
/// catches a panic (the library is built with `panic = "unwind"`), turning it into
/// [`WalinkError::Panicked`]; the value, perhaps left half changed, is never used again.
#[derive(Debug)]
pub(crate) struct Guarded<T> {
    inner: std::sync::Mutex<Result<T, String>>,
}

impl<T> Guarded<T> {
    /// Guards `value`.
    pub(crate) fn new(value: T) -> Self {
        Guarded {
            inner: std::sync::Mutex::new(Ok(value)),
        }
    }

    /// Runs `f` on the value, or fails with `Panicked` when this or an earlier call panicked.
    pub(crate) fn with<R>(
        &self,
        f: impl FnOnce(&mut T) -> Result<R, WalinkError>,
    ) -> Result<R, WalinkError> {
        // The lock is never poisoned: a panic is caught before the guard is dropped.
        let mut slot = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let value = match &mut *slot {
            Ok(value) => value,
            Err(message) => {
                return Err(WalinkError::panicked(format!(
                    "an earlier call panicked, this object can no longer be used: {message}"
                )));
            }
        };
        match catch_unwind(AssertUnwindSafe(|| f(value))) {
            Ok(result) => result,
            Err(payload) => {
                let message = panic_message(payload.as_ref());
                *slot = Err(message.clone());
                Err(WalinkError::panicked(message))
            }
        }
    }
}

/// Runs `f`, turning a panic into [`WalinkError::Panicked`] (for calls with no state to poison).
pub(crate) fn guard<R>(f: impl FnOnce() -> Result<R, WalinkError>) -> Result<R, WalinkError> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|payload| Err(WalinkError::panicked(panic_message(payload.as_ref()))))
}

// The guard above only works when panics unwind: the cdylib must not be built with
// `panic = "abort"` (the workspace's release profile sets "unwind"; the wasm build alone
// overrides it).
#[cfg(not(panic = "unwind"))]
compile_error!("walink-ffi must be built with panic = \"unwind\" so that a panic is a typed error");

#[cfg(test)]
#[allow(clippy::panic, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_a_typed_error_and_poisons_the_value() {
        let counter = Guarded::new(0u32);
        assert_eq!(
            counter.with(|c| {
                *c += 1;
                Ok(*c)
            }),
            Ok(1)
        );
        let error = counter
            .with(|_| -> Result<(), WalinkError> { panic!("a bug in the core") })
            .unwrap_err();
        assert_eq!(error, WalinkError::panicked("a bug in the core"));
        let later = counter.with(|c| Ok(*c)).unwrap_err();
        assert!(
            matches!(&later, WalinkError::Panicked { code, reason }
                if code == "panicked" && reason.contains("a bug in the core")),
            "{later:?}"
        );
        let formatted = guard(|| -> Result<(), WalinkError> { panic!("{} {}", "with", "args") });
        assert_eq!(formatted, Err(WalinkError::panicked("with args")));
    }
}
