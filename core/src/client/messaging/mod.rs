//! Sending and receiving end-to-end encrypted messages: message ids, the message content
//! protobuf, device lists (usync), prekey bundles, outgoing and incoming `<message>` stanzas,
//! acks, receipts and retry receipts, and the records all of this persists.
//!
//! Everything here is a pure function or a value: nothing sees the client's output queue. The
//! [`Keystore`] holds the Signal state of one linked device (sessions, identities, sender keys,
//! the LID mapping, the outgoing retry buffer) and reports every change as a [`RecordChange`]
//! for the caller to persist before it transmits what depends on it. Protocol details and their
//! sources are in `docs/messaging.md`.

pub mod address;
pub mod content;
mod error;
pub mod id;
pub mod incoming;
pub mod keystore;
pub mod outgoing;
pub mod prekeys;
pub mod receipt;
pub mod routing;
pub mod usync;

pub use address::{DeviceAddress, LidMap};
pub use error::MessagingError;
pub use keystore::{Keystore, OwnIdentity, RecordChange, RecordSpace};
#[cfg(test)]
mod tests;
