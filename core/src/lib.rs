//! walink-core: the WhatsApp Web multi-device (linked device) protocol as sans-IO state machines.
//!
//! The core never opens a socket, reads a clock, sleeps, spawns a thread or touches a disk. Hosts
//! own the socket, the timers and the storage; they feed the core what happened and carry out what
//! it asks. Each protocol layer is usable on its own:
//!
//! - [`frame`]: the connection header and the 3-byte length framing;
//! - [`binary`]: the WABinary node codec (tokens, nodes, JIDs);
//! - [`noise`]: the Noise handshake, the server certificate chain and the transport cipher;
//! - [`signal`]: X3DH, double-ratchet sessions, sender keys and XEdDSA;
//! - [`pair`]: QR pairing, pairing by phone-number code and the ADV device identity;
//! - [`appstate`]: app-state sync (LTHash, mutation MACs, patches and snapshots);
//! - [`media`]: media key expansion and media encryption;
//! - [`store`]: the persistent record model;
//! - [`client`]: the `Client` state machine that ties them together.
//!
//! # The driver contract
//!
//! Every host drives a client with the same loop, and the rules are stated here once:
//!
//! - After any `handle_*` call or `command`, drain `poll_output` until it returns `None`, in
//!   order, then read `poll_timeout` and re-arm a single timer. A late or spurious
//!   `handle_timeout` is harmless.
//! - An `Output::Persist` batch is applied atomically (awaited, for asynchronous stores) before
//!   the next output is carried out. A ratchet step is therefore stored before the ciphertext that
//!   used it leaves. If applying fails, the host drops the client and rebuilds it from its store:
//!   the same path as a crash.
//! - An `Output::Load` is answered exactly once, with `handle_loaded` and the records that
//!   exist, read after every earlier `Persist` was applied.
//! - An `Output::Fetch` is an HTTPS request the host carries out off the step loop (later
//!   inputs need not wait for it) and answers exactly once, with `handle_fetched` and the
//!   response (any status) or the transport's failure. The request names everything: method,
//!   URL, headers, body, the largest body to read back and the time allowed; a driver makes one
//!   HTTP call and judges nothing.
//! - No state ends the loop. `LoggedOut`, `Replaced`, `ClientOutdated` and `Disconnected` rest
//!   (no socket, nothing scheduled) until a command moves on (`Command::Connect` pairs a new
//!   device after a logout, takes the session back after `Replaced`, retries after
//!   `ClientOutdated`); a driver keeps the client and stops only when its host closes it or a
//!   failed store cannot rebuild it.
//! - `now` is wall-clock milliseconds; a step backwards is clamped. Randomness comes from the
//!   client's own CSPRNG, seeded from the operating system or, in tests, from the configuration.
#![warn(unreachable_pub)]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod appstate;
pub mod binary;
pub mod client;
pub mod content;
pub mod frame;
mod json;
pub mod limits;
pub mod media;
pub mod noise;
pub mod pair;
pub mod proto;
mod proto_bounds;
#[cfg(test)]
mod redaction_tests;
pub mod signal;
mod sort;
pub mod store;
