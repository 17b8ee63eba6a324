//! Every bound that protects memory or time, in one place.
//!
//! A value that arrives from the network or from storage is checked against one of these before
//! anything is allocated for it, so no input can make the core allocate without bound.

/// Largest frame payload the 3-byte length prefix can express; a payload of `1 << 24` bytes or
/// more is refused (WA Web: `if (t >= 1 << 24)`).
pub const MAX_FRAME_PAYLOAD: usize = (1 << 24) - 1;

// ---- noise ----

/// Largest handshake message (ServerHello) accepted. A real one is about 350 bytes (ephemeral,
/// encrypted static, encrypted two-certificate chain); 64 KiB leaves room for padding fields.
pub const NOISE_MAX_HANDSHAKE_MESSAGE: usize = 64 * 1024;
