//! App-state sync ("syncd"): LTHash, mutation keys, patch and snapshot codec, sync actions.
//!
//! Chat settings (mute, pin, archive, read, stars, contacts, labels) travel between a user's
//! devices as encrypted app-state mutations, grouped in five collections. The server keeps, for
//! each collection, a version and a list of patches; a device that falls behind downloads the
//! patches (or a snapshot) and applies them. Everything here is a pure function or value: the
//! client owns the connection, the storage and the timers.
//!
//! - [`keys`]: app-state sync keys ([`SyncKey`], [`KeyRing`]), their expansion into
//!   [`MutationKeys`] and the request for keys this device lacks;
//! - [`lthash`]: the LTHash that summarises a collection;
//! - [`crypto`]: index, value, snapshot and patch MACs and the value encryption;
//! - [`state`]: [`Collection`], [`CollectionState`] and the transactional
//!   [`CollectionState::apply_snapshot`] / [`CollectionState::apply_patch`];
//! - [`actions`]: the typed sync actions, decoded and outgoing, and [`encode_patch`];
//! - [`view`]: the materialized view of settings and the [`SettingChange`] events;
//! - [`persist`]: walink's versioned storage encoding of states, keys and the view.
//!
//! The protocol, its sources and the decisions are in `docs/appstate.md`.

pub mod actions;
pub mod crypto;
mod index;
pub mod keys;
pub mod lthash;
pub mod persist;
pub mod state;
pub mod view;

#[cfg(test)]
mod tests;

pub use actions::{
    MessageRange, MessageRef, MuteUntil, OutgoingPatch, SyncAction, encode_patch, encode_snapshot,
    snapshot_from_records,
};
pub use crypto::MutationKeys;
pub use keys::requested_key_ids;
pub use keys::{KeyId, KeyRing, SyncKey, key_request_message};
pub use lthash::LtHash;
pub use state::{
    Applied, ApplyWarning, Collection, CollectionState, DecodedMutation, Mac, Operation,
    decode_external_mutations, decode_patch, decode_snapshot, decrypt_external_blob,
};
pub use view::{
    ChatSettings, Contact, Label, MessageLabel, SettingChange, SettingsView, StarredMessage,
};

/// Why app-state data could not be decoded, verified, applied or encoded.
///
/// Variants are grouped by who is at fault: malformed input (the server or storage sent bytes
/// that do not parse or break a bound), a peer breaking the protocol (versions, duplicates, MACs
/// and the LTHash; the MAC variants carry no detail), state this device lacks (a key), and the
/// caller's misuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    // --- malformed input ---
    /// A protobuf did not decode.
    #[error("app-state protobuf does not decode")]
    Protobuf,
    /// A required field is missing, or a field has the wrong length.
    #[error("app-state data is malformed: {0}")]
    Malformed(&'static str),
    /// A bound of `limits.rs` was exceeded.
    #[error("app-state data exceeds the limit on {0}")]
    TooLarge(&'static str),
    /// A mutation's index is not a JSON array of strings.
    #[error("app-state index is not a JSON array of strings")]
    InvalidIndex,
    /// A value decrypted to bytes without valid PKCS#7 padding (after its MAC verified).
    #[error("app-state value has invalid padding")]
    InvalidPadding,
    /// An unknown collection name.
    #[error("unknown app-state collection")]
    UnknownCollection,

    // --- the peer broke the protocol ---
    /// The patch's version is not above the state's: it was applied already.
    #[error("app-state patch version {got} is not above the current version {current}")]
    StaleVersion {
        /// The collection state's version.
        current: u64,
        /// The patch's version.
        got: u64,
    },
    /// The patch's version skips versions: earlier patches are missing.
    #[error("app-state patch version {got} skips versions after {current}")]
    VersionGap {
        /// The collection state's version.
        current: u64,
        /// The patch's version.
        got: u64,
    },
    /// The same mutation appears twice in a patch, or the same index twice in a snapshot.
    #[error("duplicate app-state mutation")]
    DuplicateMutation,
    /// The patch MAC does not verify.
    #[error("app-state patch mac mismatch")]
    PatchMacMismatch,
    /// The snapshot MAC does not verify the LTHash reached at the version.
    #[error("app-state lthash mismatch")]
    LtHashMismatch,
    /// A mutation's value MAC does not verify.
    #[error("app-state value mac mismatch")]
    ValueMacMismatch,
    /// A mutation's index MAC does not match its decrypted index.
    #[error("app-state index mac mismatch")]
    IndexMacMismatch,

    // --- state this device lacks ---
    /// Sync keys named by the data are not in the key ring: request them
    /// ([`key_request_message`]) and retry once they arrive.
    #[error("missing app-state sync keys: {0:?}")]
    MissingKeys(Vec<KeyId>),
    /// The patch names external mutations but none were supplied.
    #[error("the patch's external mutations were not supplied")]
    MissingExternalMutations,

    // --- the caller's misuse ---
    /// External mutations were supplied for a patch that names none.
    #[error("external mutations supplied for a patch without an external blob")]
    UnexpectedExternalMutations,
    /// An outgoing action is invalid (negative mute duration, empty JID, ...).
    #[error("invalid app-state action: {0}")]
    InvalidAction(&'static str),
    /// An outgoing patch must hold at least one mutation of one collection.
    #[error("an outgoing patch needs mutations of a single collection")]
    InvalidPatch,
}

/// What a client does about a [`PatchError`]: the recovery ladder of issue #8 (wait for keys and
/// ask for them; on a MAC or LTHash mismatch fetch a full snapshot; if that fails too, report a
/// fatal error for the collection and keep the last good state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// Park the data, send [`key_request_message`] for these ids, retry when keys arrive.
    WaitForKeys(Vec<KeyId>),
    /// Drop the patch: it was applied already.
    Ignore,
    /// Fetch the patches after the state's version, then retry.
    FetchMissingPatches,
    /// Discard the patches and fetch a full snapshot of the collection. When the snapshot
    /// fails in the same way, the failure is fatal for the collection.
    FetchSnapshot,
    /// A bug on this side (the caller's misuse) or data no retry can fix: report it.
    Fatal,
}

impl PatchError {
    /// The recovery step for this error.
    pub fn recovery(&self) -> Recovery {
        match self {
            PatchError::MissingKeys(ids) => Recovery::WaitForKeys(ids.clone()),
            PatchError::StaleVersion { .. } => Recovery::Ignore,
            PatchError::VersionGap { .. } => Recovery::FetchMissingPatches,
            PatchError::Protobuf
            | PatchError::Malformed(_)
            | PatchError::InvalidIndex
            | PatchError::InvalidPadding
            | PatchError::DuplicateMutation
            | PatchError::PatchMacMismatch
            | PatchError::LtHashMismatch
            | PatchError::ValueMacMismatch
            | PatchError::IndexMacMismatch => Recovery::FetchSnapshot,
            PatchError::TooLarge(_)
            | PatchError::UnknownCollection
            | PatchError::MissingExternalMutations
            | PatchError::UnexpectedExternalMutations
            | PatchError::InvalidAction(_)
            | PatchError::InvalidPatch => Recovery::Fatal,
        }
    }
}
