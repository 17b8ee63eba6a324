//! walink-sim's simulation of WhatsApp: the server, the primary phone of each account, and the
//! [`World`](world) harness that drives walink clients against them.
//!
//! Everything here is a deterministic, sans-IO state machine driven by bytes: the server never
//! reads a clock or draws randomness from the operating system. Time comes in as `now` (Unix
//! milliseconds) and randomness from a [`SimRng`] seeded at construction, so the same seed and
//! the same inputs give the same transmitted bytes, byte for byte.
//!
//! The server speaks the protocol as walink's transport notes describe it (sections 1-6):
//! framing, the Noise XX responder with a test certificate chain, the ClientPayload, QR and
//! link-code pairing, login, prekeys, device lists, offline delivery and stream errors. It does
//! not reuse walink's client code; it shares only the primitives (frame, binary codec, noise
//! certificate types, pairing and Signal crypto).

pub mod account;
pub mod phone;
pub mod rng;
pub mod server;
mod stanza;
pub mod world;

pub use account::{
    Account, Device, KeyIndexListFault, PreKey, SignedKeyIndexList, SignedPreKey, SimCompanion,
};
pub use phone::{Phone, PhoneError, PhoneMessage, QrScan};
pub use rng::SimRng;
pub use server::{
    CloseReason, ConnId, ForgedRetry, Group, Held, HistoryBlob, Hostility, STREAM_END_CLOSE_MS,
    Server, ServerConfig, ServerEvent, ServerOutput, SimError, StreamErrorKind,
};
pub use world::{Faults, SimClient, World, WorldNote};

/// Unix milliseconds, as everywhere in walink.
pub type Timestamp = u64;
