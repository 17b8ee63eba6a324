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

// --- signal ---------------------------------------------------------------------------------

/// Archived (previous) sessions kept per remote device so that messages still in flight for an
/// older session decrypt. libsignal: `ARCHIVED_STATES_MAX_LENGTH = 40` (rust/protocol/src/consts.rs);
/// libsignal-node: `CLOSED_SESSIONS_MAX = 40` (src/session_record.js).
pub const SIGNAL_ARCHIVED_SESSIONS: usize = 40;

/// Receiving chains kept per session (one per ratchet step of the peer). libsignal:
/// `MAX_RECEIVER_CHAINS = 5`.
pub const SIGNAL_RECEIVER_CHAINS: usize = 5;

/// Message keys kept per receiving chain for skipped counters; the oldest is dropped first.
/// libsignal: `MAX_MESSAGE_KEYS = 2000`.
pub const SIGNAL_SKIPPED_KEYS_PER_CHAIN: usize = 2000;

/// How far ahead of its chain a message counter may jump. libsignal-node refuses more than 2000
/// (`fillMessageKeys`: "Over 2000 messages into the future!"); libsignal (Rust) allows 25,000.
/// walink follows the WhatsApp peers: 2000.
pub const SIGNAL_MAX_FORWARD_JUMP: u32 = 2000;

/// Sender-key states kept per (group, sender). libsignal: `MAX_SENDER_KEY_STATES = 5`; Baileys
/// `SenderKeyRecord.MAX_STATES = 5`.
pub const SIGNAL_SENDER_KEY_STATES: usize = 5;

/// Message keys kept per sender-key state for skipped iterations. Baileys
/// `SenderKeyState.MAX_MESSAGE_KEYS = 2000`; libsignal the same.
pub const SIGNAL_SENDER_KEY_SKIPPED_KEYS: usize = 2000;

/// How far ahead a sender-key message's iteration may jump. Baileys `GroupCipher.getSenderKey`:
/// "Over 2000 messages into the future!"; libsignal (Rust) allows 25,000.
pub const SIGNAL_SENDER_KEY_MAX_FORWARD_JUMP: u32 = 2000;

/// Largest serialized Signal message (any type) accepted for decryption. A WhatsApp message node
/// never approaches this; it bounds what a decoder allocates.
pub const SIGNAL_MAX_MESSAGE_LEN: usize = 1 << 20;

/// Largest serialized session or sender-key record accepted from storage. The fullest record the
/// bounds above allow (41 sessions × 5 receiving chains × 2000 kept keys of about 40 bytes) is
/// about 16 MiB; anything larger was not written by walink.
pub const SIGNAL_MAX_RECORD_LEN: usize = 32 << 20;

// --- noise ---

/// Largest handshake message (ServerHello) accepted. A real one is about 350 bytes (ephemeral,
/// encrypted static, encrypted two-certificate chain); 64 KiB leaves room for padding fields.
pub const NOISE_MAX_HANDSHAKE_MESSAGE: usize = 64 * 1024;

// --- appstate ---

/// Largest key id accepted in an app-state sync key (real ids are 6 bytes).
pub const APPSTATE_MAX_KEY_ID_LEN: usize = 64;

/// Most keys taken from one `AppStateSyncKeyShare` or asked for in one key request (a primary
/// shares a handful; whatsmeow and Baileys ask for the ids one patch list names).
pub const APPSTATE_MAX_KEYS_PER_SHARE: usize = 256;

/// Most app-state sync keys kept in a [`crate::appstate::KeyRing`]; the oldest (by timestamp)
/// goes first. WhatsApp rotates keys rarely; an account accumulates a few dozen.
pub const APPSTATE_MAX_KEYS: usize = 1024;

/// Most mutations in one patch, inline and external together. WhatsApp moves large patches to
/// an external blob; the bulk of a big account lives in snapshots instead.
pub const APPSTATE_MAX_PATCH_MUTATIONS: usize = 50_000;

/// Most records in one snapshot, and most index entries a collection state holds. A record in
/// memory costs about 64 bytes of MACs plus its decoded action; contact lists of tens of
/// thousands fit.
pub const APPSTATE_MAX_SNAPSHOT_RECORDS: usize = 200_000;

/// Largest JSON index (`SyncActionData.index`) accepted or produced. Real indexes (action name,
/// chat JID, message id, flags) are under 200 bytes.
pub const APPSTATE_MAX_INDEX_JSON: usize = 4096;

/// Most elements in a JSON index (the longest real one, `label_message`, has six).
pub const APPSTATE_MAX_INDEX_PARTS: usize = 32;

/// Largest encrypted value blob (IV, ciphertext and MAC) of one mutation.
pub const APPSTATE_MAX_VALUE_BLOB: usize = 1 << 20;

/// Largest decrypted external blob (a `SyncdMutations` list or a `SyncdSnapshot`) accepted.
pub const APPSTATE_MAX_EXTERNAL_BLOB: usize = 64 << 20;

/// Most collections a persisted app-state record may hold (WhatsApp has five).
pub const APPSTATE_MAX_COLLECTIONS: usize = 16;

/// Largest persisted app-state record (a collection state or the materialized view) accepted
/// from storage.
pub const APPSTATE_MAX_RECORD_LEN: usize = 64 << 20;

/// Most entries of each kind (chats, starred messages, contacts, labels, label associations) a
/// persisted materialized view may hold: every entry comes from an index of one of the five
/// collections.
pub const APPSTATE_MAX_VIEW_ENTRIES: usize = 5 * APPSTATE_MAX_SNAPSHOT_RECORDS;
