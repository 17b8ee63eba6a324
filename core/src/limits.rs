//! Every bound that protects memory or time, in one place.
//!
//! A value that arrives from the network or from storage is checked against one of these before
//! anything is allocated for it, so no input can make the core allocate without bound.

/// Largest frame payload the 3-byte length prefix can express; a payload of `1 << 24` bytes or
/// more is refused (WA Web: `if (t >= 1 << 24)`).
pub const MAX_FRAME_PAYLOAD: usize = (1 << 24) - 1;

// --- binary / frame ---

/// Deepest node nesting a decoder accepts (the root is depth 0). Real stanzas are under ten
/// deep; the bound keeps recursion (and the stack) small for any input.
pub const MAX_NODE_DEPTH: usize = 64;

/// Most nodes decoded from one frame. A node costs about 100 bytes in memory but only 3 on the
/// wire, so this bounds the memory a frame can make the decoder use (~26 MB) independently of
/// the frame size. The largest real stanzas (device lists, group participants) hold thousands.
pub const MAX_DECODED_NODES: usize = 1 << 18;

/// Largest inflated size of a compressed frame body (flag `0x02`): the frame limit, as
/// whatsapp-rust caps it (oxidezap/whatsapp-rust:wacore/binary/src/util.rs `unpack`).
pub const MAX_INFLATED_NODE: usize = MAX_FRAME_PAYLOAD;

/// Largest edge-routing blob accepted for the pre-intro: its length prefix is 3 bytes.
pub const MAX_ROUTING_INFO: usize = (1 << 24) - 1;

/// Most bytes a [`crate::frame::FrameDecoder`] reserves ahead of data actually received, so a
/// peer that announces 16 MiB and sends nothing cannot pin memory.
pub const FRAME_PREALLOCATION: usize = 64 * 1024;

// --- noise ---

/// Largest handshake message (ServerHello) accepted. A real one is about 350 bytes (ephemeral,
/// encrypted static, encrypted two-certificate chain); 64 KiB leaves room for padding fields.
pub const NOISE_MAX_HANDSHAKE_MESSAGE: usize = 64 * 1024;
