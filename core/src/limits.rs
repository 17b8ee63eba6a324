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
/// whatsapp-rust caps it (oxidezap/whatsapp-rust:wacore/binary/src/util.rs `unpack`). The
/// frame's decode budget ([`decode_budget`]) usually stops inflation well before.
pub const MAX_INFLATED_NODE: usize = MAX_FRAME_PAYLOAD;

// --- decode budgets ---

/// Bytes of memory a decoder may allocate per byte of its input: a frame body (compressed or
/// not), an app-state blob, a stored record. The densest real stanzas (attributes of two token
/// bytes become 88-byte `Attr`s, nodes of three bytes 112-byte `Node`s) cost under 45 times
/// their wire size; 60 leaves room, and with the three copies a frame goes through in the
/// client (receive buffer, frame, plaintext) a frame of `N` bytes costs it at most `64 N` plus
/// the fixed part.
pub const DECODE_BUDGET_PER_BYTE: usize = 60;

/// Bytes of memory every decode may allocate on top of [`DECODE_BUDGET_PER_BYTE`] per input
/// byte: room for a compressed stanza that inflates well (the inflater's state is 11 KB) and for
/// a small record's fixed-size parts.
pub const DECODE_BUDGET_BASE: usize = 4 << 20;

/// The memory budget of decoding one input of `len` bytes: [`DECODE_BUDGET_BASE`] plus
/// [`DECODE_BUDGET_PER_BYTE`] per byte. Every allocation of the node decoder (the inflated body
/// included) and of the app-state blob decoders is charged against it before it is made, so no
/// frame or blob of `N` bytes makes them allocate more than `60 N + 4 MiB`.
pub const fn decode_budget(len: usize) -> usize {
    DECODE_BUDGET_BASE.saturating_add(len.saturating_mul(DECODE_BUDGET_PER_BYTE))
}

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

/// Largest persisted app-state record (a collection state or the materialized view) accepted
/// from storage.
pub const APPSTATE_MAX_RECORD_LEN: usize = 64 << 20;

/// Most entries of each kind (chats, starred messages, contacts, labels, label associations) a
/// persisted materialized view may hold: every entry comes from an index of one of the five
/// collections.
pub const APPSTATE_MAX_VIEW_ENTRIES: usize = 5 * APPSTATE_MAX_SNAPSHOT_RECORDS;
// --- client ---------------------------------------------------------------------------------

/// Shortest keepalive interval: WhatsApp Web pings every `15 s × (1 + random())`
/// (oxidezap/whatsapp-rust:src/keepalive.rs, transport.md §6.3).
pub const CLIENT_KEEPALIVE_MIN_MS: u64 = 15_000;

/// Longest keepalive interval.
pub const CLIENT_KEEPALIVE_MAX_MS: u64 = 30_000;

/// How long a keepalive ping waits for its answer (WhatsApp Web's dead-socket time, 20 s).
pub const CLIENT_KEEPALIVE_DEADLINE_MS: u64 = 20_000;

/// How long opening the socket plus the Noise handshake may take (20 s in all references).
pub const CLIENT_CONNECT_TIMEOUT_MS: u64 = 20_000;

/// Default deadline of an IQ (Baileys 60 s; whatsmeow 75 s).
pub const CLIENT_IQ_TIMEOUT_MS: u64 = 60_000;

/// How long a host may take for one `Output::Fetch` (the whole exchange) before it answers
/// `FetchError::TimedOut`.
pub const CLIENT_FETCH_TIMEOUT_MS: u64 = 60_000;

/// First reconnect delay of WhatsApp Web's Fibonacci backoff (1 s, then 1, 2, 3, 5 s ...).
pub const CLIENT_BACKOFF_FIRST_MS: u64 = 1_000;

/// Cap of the reconnect delay: 900 s (WhatsApp Web `max: 9e5`).
pub const CLIENT_BACKOFF_MAX_MS: u64 = 900_000;

/// Jitter of each reconnect delay, in thousandths: ±10 %.
pub const CLIENT_BACKOFF_JITTER_PERMILLE: u32 = 100;

/// A connection that stayed up this long resets the backoff (WhatsApp Web `resetDelay`).
pub const CLIENT_BACKOFF_RESET_AFTER_MS: u64 = 30_000;

/// Extra backoff steps after a 429 stream error (oxidezap/whatsapp-rust).
pub const CLIENT_BACKOFF_RATE_LIMIT_STEPS: u32 = 5;

/// Lifetime of the first QR ref (60 s); every later ref lives [`CLIENT_QR_NEXT_MS`].
pub const CLIENT_QR_FIRST_MS: u64 = 60_000;

/// Lifetime of every QR ref after the first (20 s).
pub const CLIENT_QR_NEXT_MS: u64 = 20_000;

/// Most QR refs kept from one `pair-device` IQ (the server sends six).
pub const CLIENT_MAX_QR_REFS: usize = 16;

/// Longest QR ref accepted, in bytes.
pub const CLIENT_MAX_QR_REF_LEN: usize = 256;

/// A `companion_finish` that got no pair-success within this is written off (60 s,
/// oxidezap/whatsapp-rust wacore/src/pair_code.rs).
pub const CLIENT_PAIR_CODE_FINISH_TIMEOUT_MS: u64 = 60_000;

/// A pairing code older than this is no longer answered (about 180 s, WhatsApp Web).
pub const CLIENT_PAIR_CODE_LIFETIME_MS: u64 = 180_000;

/// Most `primary_hello` notifications answered per code (WhatsApp Web: 3).
pub const CLIENT_PAIR_CODE_MAX_HELLOS: u32 = 3;

/// A server prekey count below this triggers an upload (all references: 5).
pub const CLIENT_PREKEY_MIN_COUNT: u32 = 5;

/// One-time prekeys uploaded when the server has none, and per refill (812 as in all three
/// references' first upload).
pub const CLIENT_PREKEY_UPLOAD_COUNT: u32 = 812;

/// Most IQs awaiting an answer at once; a further one fails at once.
pub const CLIENT_MAX_PENDING_IQS: usize = 256;

/// How often the client's generator is reseeded from the operating system while it runs
/// (besides at every login): 10 minutes.
pub const CLIENT_RNG_RESEED_MS: u64 = 10 * 60 * 1000;

/// Capacity an empty output queue or receive buffer keeps after use; anything larger is
/// released, so an idle client holds no large buffer.
pub const CLIENT_IDLE_BUFFER_CAPACITY: usize = 1024;
// --- messaging ---

/// Phone-number ↔ LID user mappings a client keeps (one per peer it has met). New users beyond
/// this are not mapped (their records stay under the form they were reached by).
pub const MESSAGING_MAX_LID_MAPPINGS: usize = 100_000;

/// Sent messages kept for re-encryption when a recipient asks for a retry (WhatsApp Web keeps
/// recent messages the same way; Baileys' `MessageRetryManager` keeps 512 by default). The
/// oldest is dropped first.
pub const MESSAGING_RETRY_BUFFER: usize = 256;

/// Largest message plaintext kept in the retry buffer; a larger one is sent but not kept.
pub const MESSAGING_RETRY_MAX_MESSAGE: usize = 64 * 1024;

/// Retry receipts honoured per message and recipient device (whatsmeow and Baileys stop at 5).
pub const MESSAGING_MAX_RETRIES: u32 = 5;

/// Devices accepted per user in a usync reply (the server allows a phone and up to 4 companions
/// today; the bound leaves room for hosted and future devices).
pub const MESSAGING_MAX_DEVICES_PER_USER: usize = 64;

/// Recipient devices a single outgoing message fans out to (a 1,024-member group with a few
/// devices each).
pub const MESSAGING_MAX_FANOUT: usize = 8_192;

/// Deepest nesting of protobuf messages any decode accepts (prost's own recursion limit, which
/// walink's shared nested-message loop in `proto::prost_shim` keeps in its place).
pub const PROTO_MAX_NESTING: usize = 100;

/// Messages nested in one decrypted `Message` through each kind of nesting (quoted messages,
/// wrappers such as `viewOnceMessage` and `ephemeralMessage`, `deviceSentMessage`, edits),
/// counted before it is decoded: each costs a boxed `Message` of several KB for a few bytes.
/// Real messages nest two or three deep.
pub const MESSAGING_MAX_NESTED_MESSAGES: usize = 32;

/// Elements of any one list in a decrypted `Message` (mentions, shared or requested app-state
/// keys, resend requests and their answers), counted before it is decoded.
pub const MESSAGING_MAX_CONTENT_LIST: usize = 1024;

/// Incoming message stanzas parked while their records load; more are nacked (the server
/// delivers them again later). Also bounds the per-message retry counters kept in memory.
pub const MESSAGING_MAX_PARKED: usize = 1_024;

// ----- app-state sync in the client (core/src/client/app_sync/) -----

/// App-state commands waiting for the IQ slot; more are refused with `RateLimited`.
pub const APPSTATE_CLIENT_MAX_QUEUED_COMMANDS: usize = 256;

/// Refetches of a collection whose answer leaves a version gap before a snapshot is asked for;
/// also the retries of a command the server refused with a conflict (409).
pub const APPSTATE_CLIENT_MAX_REFETCHES: u32 = 3;

// ----- app-state external blobs in the client (core/src/client/app_sync/) -----

/// External blobs (a snapshot and patches' mutations) one sync answer may ask the host to
/// download; an answer needing more is fatal for the collection.
pub const APPSTATE_CLIENT_MAX_DOWNLOADS: usize = 64;

/// Refetches of a collection after a failed or corrupt blob download, before the client falls
/// back to a snapshot (and, when that was the snapshot, reports the collection fatal).
pub const APPSTATE_CLIENT_MAX_BLOB_RETRIES: u32 = 2;

// ----- exactly-once messaging in the client (core/src/client/messaging/) -----

/// Message ids remembered per sending device (8 bytes each, oldest dropped first): a
/// redelivery of one of these is acknowledged but neither decrypted nor reported again. The
/// server redelivers only what it holds without a receipt, which is at most what was in flight
/// when a connection or host died.
pub const MESSAGING_RECEIVED_IDS_PER_SENDER: usize = 128;

/// Transmitted message stanzas kept until the server acknowledges them (resent unchanged after
/// the next login); beyond this a stanza is sent once, not kept, and a cut before its ack
/// fails its command with `NotConnected`.
pub const MESSAGING_MAX_UNACKED: usize = 64;

/// Largest encoded stanza kept for a resend; a larger one is sent once and, when its ack does
/// not come, fails with `NotConnected` as before.
pub const MESSAGING_MAX_UNACKED_STANZA: usize = 256 * 1024;

/// Transmissions of one message stanza (the first and the resends after reconnecting) before
/// its command fails with `TimedOut`.
pub const MESSAGING_MAX_SEND_ATTEMPTS: u32 = 5;

// ----- app-state key requests in the client (core/src/client/app_sync/) -----

/// Key requests sent for a collection waiting for app-state keys (the first one included); when
/// the wait after the last one ends with no share, the collection is reported fatal.
pub const APPSTATE_CLIENT_KEY_REQUESTS: u32 = 3;

/// The wait after the first key request, in milliseconds; it doubles after each one (10 s,
/// 20 s, 40 s: about 70 s from the first request to the fatal event).
pub const APPSTATE_CLIENT_KEY_REQUEST_WAIT_MS: u64 = 10_000;

// ----- sender-key verification speed (core/src/signal/xeddsa.rs) -----

/// Teeth of the comb table a sender-key member state keeps for its signing key, in memory only
/// (never in the record): `2^t − 1` Edwards points of 160 bytes (32-bit limbs, wasm), so 5
/// teeth are 4,960 bytes per member state that has decrypted a message, plus the same once per
/// process for the basepoint. Each tooth fewer halves the table and adds about a fifth to a
/// verification (4 teeth: 2,400 bytes, -10 % sender-key decrypt in wasm; 6: 10,080 bytes, +5 %).
pub const SIGNAL_SENDER_KEY_COMB_TEETH: usize = 5;

// ----- the client's record cache (core/src/client/messaging/keystore/cache.rs) -----

/// Messaging records (sessions, identities, sender keys, sender-key-sent lists, received-id
/// lists, verified device lists) a client keeps in memory, together; beyond it the least recently used ones whose
/// latest state was handed to the host in a `Persist` are dropped, and loaded again
/// (`Output::Load`) when needed. Records of operations in progress stay beyond it (a group
/// send to `MESSAGING_MAX_FANOUT` members pins its devices' records until it is encrypted).
/// The default of `Config::record_cache_limit`.
pub const MESSAGING_RECORD_CACHE: usize = 256;

// ----- hostile peers in messaging (core/src/client/messaging/, docs/security.md) -----

/// `<enc>` children one incoming message stanza may carry. WhatsApp sends one (a 1:1 message)
/// or two (a sender-key distribution beside a group message); a stanza with more is refused as
/// a whole before anything is decrypted, so that one stanza cannot make the client decrypt (and
/// copy a session record for) thousands of ciphertexts.
pub const MESSAGING_MAX_ENCS_PER_STANZA: usize = 4;

/// Bytes the retry buffer may hold in memory, kept messages and their recipient lists together
/// (on top of `MESSAGING_RETRY_BUFFER` entries); the oldest entries are dropped first. A message
/// to a group of a thousand members with three devices each keeps about 80 KB of recipients.
pub const MESSAGING_RETRY_BUFFER_BYTES: usize = 8 << 20;

/// Refused retry requests (message, device) remembered so that each is reported once; beyond
/// it the memory is cleared and a repeat may be reported again.
pub const MESSAGING_MAX_REPORTED_REFUSALS: usize = 1_024;

/// Messages held per device whose new identity waits for the application's approval
/// (`IdentityPolicy::Strict`); each is asked for again once the identity is approved.
pub const MESSAGING_MAX_HELD_PER_IDENTITY: usize = 32;

/// One-time prekeys created for retry receipts that are kept at once; creating one more deletes
/// the oldest. A stranger's undecryptable messages cannot make the client store prekeys without
/// bound; a real sender uses its prekey within seconds.
pub const MESSAGING_MAX_RETRY_PRE_KEYS: usize = 64;

/// Chain-key steps one incoming Signal message may cost across all the sessions of a record it
/// is tried on (a session knowing the message's ratchet key is tried first, so a genuine message
/// is never refused by this). Without it a forged message costs up to 41 sessions times
/// `SIGNAL_MAX_FORWARD_JUMP` steps.
pub const SIGNAL_MAX_CHAIN_STEPS_PER_MESSAGE: u32 = SIGNAL_MAX_FORWARD_JUMP;

/// Media uploads and downloads one client carries out at once; a further `SendMedia` or
/// `DownloadMedia` command fails with `RateLimited` until one ends.
pub const MEDIA_MAX_JOBS: usize = 16;

/// The largest media file (plaintext) a `SendMedia` or `DownloadMedia` command handles in the
/// client's memory; the encrypted copy is at most 26 bytes longer. A download announcing more is
/// refused before anything is fetched.
pub const MEDIA_MAX_IN_MEMORY_BYTES: u64 = 128 << 20;

/// The largest media file (plaintext) a transfer streamed through the host handles
/// (`OutgoingMedia::host_body`, `DownloadMedia`'s `sink`): the client never holds it, so this
/// bounds only what a host is asked to store (WhatsApp's own cap for documents is 2 GB).
pub const MEDIA_MAX_STREAMED_BYTES: u64 = 2 << 30;

/// The piece of a streamed media body a driver reads, encrypts or decrypts at a time: with the
/// decryptor's one held block and MAC, what a streamed transfer costs the process at most,
/// beside the HTTP client's own buffers.
pub const MEDIA_STREAM_CHUNK_BYTES: usize = 64 << 10;

/// The largest answer body of a media upload (`{"url": …, "direct_path": …}` and a few more
/// fields) read and parsed.
pub const MEDIA_UPLOAD_ANSWER_MAX_BYTES: u64 = 64 << 10;

/// Host names kept from one `media_conn` answer (WhatsApp lists one to three).
pub const MEDIA_CONN_MAX_HOSTS: usize = 8;

/// Longest host name or auth token kept from a `media_conn` answer, in bytes.
pub const MEDIA_CONN_MAX_FIELD: usize = 1024;

/// How long a download waits for the phone's answer to a media re-upload request.
pub const MEDIA_RETRY_TIMEOUT_MS: u64 = 60_000;

/// How long the host may take for one media upload or download.
pub const MEDIA_FETCH_TIMEOUT_MS: u64 = 300_000;

/// Nesting depth of the upload answer's JSON beyond which it is refused.
pub const MEDIA_ANSWER_MAX_DEPTH: usize = 32;

// --- history sync ---------------------------------------------------------------------------

/// Largest history-sync blob downloaded (the encrypted file, held while it is decrypted). Real
/// chunks are a few MiB; FULL chunks reach tens.
pub const HISTORY_MAX_BLOB_BYTES: usize = 64 << 20;

/// Most bytes one history blob may inflate to. Never held at once (the blob is inflated and
/// decoded a piece at a time); the bound stops a compression bomb from costing unbounded time.
pub const HISTORY_MAX_INFLATED_BYTES: usize = 1 << 30;

/// Bytes inflated per step of the history decoder.
pub const HISTORY_INFLATE_STEP: usize = 64 << 10;

/// Largest element of a `HistorySync` decoded at once: one conversation with its messages, one
/// push name, one LID mapping. The decoder holds at most one such element and one step of
/// inflated bytes beyond it.
pub const HISTORY_MAX_ITEM_BYTES: usize = 16 << 20;

/// Participants of one history conversation decoded (a group of 1024 members and room).
pub const HISTORY_MAX_PARTICIPANTS: usize = 4_096;

/// Lists of one historical `WebMessageInfo` (receipts, reactions, labels, stub parameters).
pub const HISTORY_MAX_MESSAGE_LIST: usize = 4_096;

/// History-sync notifications waiting for their turn (one chunk is downloaded and decoded at
/// a time); beyond it a new one is reported failed and the phone may send it again.
pub const HISTORY_MAX_QUEUED_CHUNKS: usize = 64;

/// Messages a `Command::RequestHistory` may ask for (WhatsApp Web asks for 50).
pub const HISTORY_MAX_ON_DEMAND_MESSAGES: u32 = 500;
/// Wrappers (ephemeral, view-once, edited, ...) removed around one message's content; a deeper
/// nesting is left wrapped (WhatsApp nests two at most; Baileys stops at 5).
pub const CONTENT_MAX_WRAPPERS: usize = 8;

/// Polls whose secret, options and votes are kept (those this device sent or received, the
/// oldest dropped first), so that a vote arriving later, even after a restart, opens.
pub const CONTENT_MAX_POLLS: usize = 512;

/// Options of a poll that are kept (WhatsApp allows 12); a poll with more is not kept.
pub const CONTENT_MAX_POLL_OPTIONS: usize = 64;

/// Voters counted per poll; later voters still arrive as events, uncounted.
pub const CONTENT_MAX_POLL_VOTERS: usize = 2048;

/// Poll records kept in memory (loaded on demand).
pub const CONTENT_POLL_CACHE: usize = 16;

/// Message-secret records kept in memory (loaded on demand, for encrypted reactions and edits).
pub const CONTENT_SECRET_CACHE: usize = 64;

/// Message secrets of a history chunk persisted together (one `Persist` per this many).
pub const HISTORY_SECRETS_PER_BATCH: usize = 256;

/// Poll votes (`Command::SendPollVote`) and poll sends waiting for their poll records.
pub const CONTENT_MAX_WAITING_POLL_COMMANDS: usize = 64;

/// How long a status post can be answered: after 24 hours it is only acknowledged, no retry is
/// asked for (Baileys `STATUS_EXPIRY_SECONDS`).
pub const CONTENT_STATUS_EXPIRY_SECONDS: u64 = 24 * 60 * 60;

/// Participants one group command may name, and members kept per group parsed from the network
/// (WhatsApp groups hold at most 1,024 members).
pub const GROUP_MAX_PARTICIPANTS: usize = 2048;

/// Groups read from one `ListJoined` answer.
pub const GROUPS_MAX_LISTED: usize = 10_000;

/// Groups whose metadata the client keeps in memory (updated by notifications).
pub const GROUPS_MAX_KNOWN: usize = 1024;

/// Changes read from one group notification.
pub const GROUP_MAX_CHANGES_PER_NOTIFICATION: usize = 64;

/// Bytes of a group subject (WhatsApp allows 100 characters).
pub const GROUP_MAX_SUBJECT_BYTES: usize = 1024;

/// Bytes of a group description (WhatsApp allows 2,048 characters).
pub const GROUP_MAX_DESCRIPTION_BYTES: usize = 8192;

/// Bytes of a JPEG set as a group's or our own profile picture (WhatsApp shows 640×640; such a
/// JPEG is well under 200 KB).
pub const PROFILE_PICTURE_MAX_BYTES: usize = 1024 * 1024;

// --- calls, presence and contacts (core/src/client/social/) ---------------------------------

/// Call offers remembered to complete the later events of their call (video, group), oldest
/// dropped first. A phone rings for one or two calls at a time; this leaves room for bursts.
pub const CALLS_MAX_TRACKED_OFFERS: usize = 64;

/// Bytes of one privacy token kept and stored (WhatsApp's are a few dozen bytes).
pub const PRIVACY_TOKEN_MAX_BYTES: usize = 1024;

/// `RejectCall`s waiting for the server's ack; beyond, the oldest ends `TimedOut`.
pub const CALLS_MAX_PENDING_REJECTS: usize = 64;

/// Presence subscriptions renewed after every reconnect, oldest dropped first.
pub const PRESENCE_MAX_SUBSCRIPTIONS: usize = 1024;

/// Trusted-contact privacy tokens kept (in memory) for presence and profile-picture queries,
/// oldest dropped first.
pub const CONTACTS_MAX_PRIVACY_TOKENS: usize = 4096;

/// Phone numbers in one `Command::CheckNumbers` (one usync query).
pub const CONTACTS_MAX_NUMBERS_PER_QUERY: usize = 1000;

/// Push names remembered to report each one once per change, oldest dropped first.
pub const CONTACTS_MAX_PUSH_NAMES: usize = 4096;

/// Phone-number users and their LIDs kept from `CheckNumbers` answers (to block by LID),
/// oldest dropped first.
pub const CONTACTS_MAX_KNOWN_LIDS: usize = 4096;

/// Blocked users read from one block-list answer.
pub const CONTACTS_MAX_BLOCK_LIST: usize = 10_000;

/// Websites and categories read from one business profile (each).
pub const CONTACTS_MAX_BUSINESS_ITEMS: usize = 16;
