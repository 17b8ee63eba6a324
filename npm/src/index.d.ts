/**
 * A WhatsApp binary node, the shape Baileys uses: `{ tag, attrs, content }`.
 *
 * - `attrs` values are strings; JIDs are strings in Baileys' notation
 *   (`user_agent:device@server`, `@s.whatsapp.net` for the server itself).
 * - `content` is `undefined`, child nodes, bytes, or a string. Decoding gives bytes for content
 *   the peer sent length-prefixed, and a string when it sent a token, packed digits or a JID.
 *   Encoding a string content follows the string rules (token, packed, JID, else UTF-8 bytes).
 */
export interface BinaryNode {
  tag: string
  attrs: { [key: string]: string }
  content?: BinaryNode[] | Uint8Array | string
}

/**
 * Encodes a node into a frame body: the `0x00` flags byte, then the node, byte for byte what
 * WhatsApp Web sends. Attributes whose value is `undefined` or `null` are left out.
 * Throws an `Error` with `code === 'invalid_node'` for a malformed node.
 */
export function encodeNode(node: BinaryNode): Uint8Array

/**
 * Decodes a frame body (flags byte first; zlib-inflated when flag `0x02` is set). Byte content
 * of an uncompressed body is a view into `bytes`, as in Baileys: copy it before reusing `bytes`.
 * Throws an `Error` whose `code` names the defect (`unexpected_end`, `invalid_tag`, `inflate`, ...).
 */
export function decodeNode(bytes: Uint8Array): BinaryNode

export * from './wa-message'
import type { WaMessage, MessageKey } from './wa-message'

/** Decodes an encoded `wa.Message` (a message event's `raw`, Baileys' `proto.Message.encode`) into protobuf JSON. */
export function decodeMessage(bytes: Uint8Array): WaMessage
/** Encodes protobuf JSON as WhatsApp's protobuf bytes; `invalid_message` names a field that does not fit. */
export function encodeMessage(message: WaMessage): Uint8Array

/** Content for each kind of message, for `Connection.sendMessage`. */
export declare namespace content {
  /** The key of a received message: what a reply, reaction, edit or revoke names it by. */
  function keyOf(message: MessageEvent): MessageKey
  function text(body: string, options?: { mentions?: string[] }): WaMessage
  function reply(message: MessageEvent, content: string | WaMessage): WaMessage
  /** An empty emoji removes the reaction. */
  function reaction(key: MessageKey, emoji: string): WaMessage
  function edit(key: MessageKey, content: string | WaMessage): WaMessage
  function revoke(key: MessageKey): WaMessage
  /** `selectable`: how many options a voter may choose (0, the default: any number). */
  function poll(name: string, options: string[], selectable?: number): WaMessage
  function location(latitude: number, longitude: number, options?: { name?: string; address?: string }): WaMessage
  function contact(displayName: string, vcard: string): WaMessage
}

/**
 * Loads the wasm module. Required once in browsers before the codec is used; a no-op in Node.
 * `input` may be a URL, a Response, bytes or a compiled `WebAssembly.Module`.
 */
export function init(input?: URL | string | Response | BufferSource | WebAssembly.Module): Promise<void>

// ---------------------------------------------------------------------------------------------
// Stores

/** One persisted record: an opaque value under a space and a key. */
export interface StoreRecord {
  /** The kind of record (`device`, `session`, `identity`, ...): a non-empty string without NUL. */
  space: string
  /** The record's key within its space (for example a session address). */
  key: string
  /** The core's own encoding of the record; opaque to the host. */
  value: Uint8Array
}

/**
 * One change of a batch: put (insert or overwrite) a record, delete one (absent is fine), or
 * delete every record of the client (logout).
 */
export type StoreChange =
  | { op: 'put'; space: string; key: string; value: Uint8Array }
  | { op: 'delete'; space: string; key: string }
  | { op: 'deleteAll' }

/** The address of a record. */
export interface StoreKey {
  space: string
  key: string
}

/**
 * What the driver hands `applyBatch` besides the changes: the events it gave `onEvent` since the
 * previous batch of the same step (`Event::Message` comes right before the batch holding its
 * ratchet step and received id), so a store can write them in the batch's transaction.
 */
export interface BatchContext {
  events: ConnectionEvent[]
}

/**
 * What the driver needs of a store. `applyBatch` applies the changes in order and atomically:
 * once it resolves, `loadAll` sees all of them (a durable store keeps them across a crash); if
 * it rejects, the store holds either none or all of them, never a part, and the driver rebuilds
 * its client from `loadAll`; a rejection with code `fenced` (another process owns the store now)
 * ends the connection instead. A store applies overlapping calls in call order.
 */
export interface Store {
  applyBatch(changes: StoreChange[], context?: BatchContext): Promise<void>
  /**
   * Optional: the events no batch followed, handed over before the driver's next transmit,
   * connect or close and at the end of each step (each event reaches the store exactly once,
   * with a batch or here). A command's promise settles after its `commandDone` got here.
   */
  applyEvents?(events: ConnectionEvent[]): Promise<void>
  /** Every record. */
  loadAll(): Promise<StoreRecord[]>
  /**
   * Every record of the given spaces (`Client.startSpaces()`: what the driver reads when a client
   * is built or rebuilt). Optional: without it the driver reads `loadAll` and filters.
   */
  loadSpaces?(spaces: string[]): Promise<StoreRecord[]>
  /** The records under `keys` that exist (the core's on-demand loads). */
  load(keys: StoreKey[]): Promise<StoreRecord[]>
  close?(): Promise<void>
}

/** The error every shipped store throws; `code` is stable. */
export class StoreError extends Error {
  readonly name: 'StoreError'
  /**
   * `invalid_change`, `invalid_key`, `closed`, `io`, `corrupt`, `too_large`, `unavailable`,
   * `blocked`; and `fenced`, which a host's store throws when another process owns the records
   * now (the driver then ends the connection instead of rebuilding and reconnecting)
   */
  readonly code: string
}

/** Records in a Map: tests, short-lived clients, hosts that persist elsewhere. Not durable. */
export class MemoryStore implements Store {
  constructor()
  applyBatch(changes: StoreChange[]): Promise<void>
  loadAll(): Promise<StoreRecord[]>
  loadSpaces(spaces: string[]): Promise<StoreRecord[]>
  load(keys: StoreKey[]): Promise<StoreRecord[]>
  close(): Promise<void>
  readonly size: number
}

/** Options of `FileStore.open`. */
export interface FileStoreOptions {
  /** fsync each batch before it resolves (default true). */
  sync?: boolean
  /** Fold the wal into a new snapshot once it is this large and larger than the snapshot (default 1 MiB). */
  compactBytes?: number
  /** A stand-in for `node:fs/promises` (fault injection in tests). */
  fs?: unknown
}

/**
 * Node only: a directory holding a snapshot and a write-ahead log of checksummed batches. A torn
 * last write is cut off on open; compaction writes a temporary file, syncs it and renames it.
 */
export class FileStore implements Store {
  static open(dir: string, options?: FileStoreOptions): Promise<FileStore>
  readonly dir: string
  applyBatch(changes: StoreChange[]): Promise<void>
  loadAll(): Promise<StoreRecord[]>
  loadSpaces(spaces: string[]): Promise<StoreRecord[]>
  load(keys: StoreKey[]): Promise<StoreRecord[]>
  close(): Promise<void>
}

/** Browsers (pages, extensions, workers): one IndexedDB database, one transaction per batch. */
export class IndexedDBStore implements Store {
  static open(name: string, options?: { indexedDB?: object; IDBKeyRange?: object }): Promise<IndexedDBStore>
  static deleteDatabase(name: string, options?: { indexedDB?: object }): Promise<void>
  applyBatch(changes: StoreChange[]): Promise<void>
  loadAll(): Promise<StoreRecord[]>
  loadSpaces(spaces: string[]): Promise<StoreRecord[]>
  load(keys: StoreKey[]): Promise<StoreRecord[]>
  close(): Promise<void>
}

// ---------------------------------------------------------------------------------------------
// The client (the core state machine) and its driver

/** Unix milliseconds. */
export type Timestamp = number

/** `new Client(config, records)`'s configuration; every field is optional. */
export interface ClientConfig {
  /** The WhatsApp Web version to announce, `"2.3000.1045649367"`. */
  webVersion?: string
  /** The name the phone shows for this linked device (default `walink`). */
  deviceName?: string
  /** A `DeviceProps.PlatformType` name: `CHROME` (default), `FIREFOX`, `SAFARI`, `EDGE`, ... */
  platform?: string
  pushName?: string
  language?: string
  country?: string
  /** Named when pairing by code: `windows`, `macos`, `linux` (default), `android`, `ios`. */
  companionOs?: string
  /**
   * Tests only, never in production: 32 bytes seeding the client's generator, so that every key
   * it makes follows from them (and it is never reseeded from the operating system).
   */
  unsafeTestRngSeed?: Uint8Array
  /** A test server's root public key (32 bytes) instead of WhatsApp's, and its serial. */
  trustRoot?: Uint8Array
  trustRootSerial?: number
  /** Reconnect after another connection took over instead of ending in `replaced`. */
  retryWhenReplaced?: boolean
  /** Keepalive pings every 15-30 s; a ping unanswered for 20 s means the socket is dead. */
  keepaliveMinMs?: number
  keepaliveMaxMs?: number
  keepaliveDeadlineMs?: number
  /** The socket's open and handshake (20 s); any IQ's answer (60 s). */
  connectTimeoutMs?: number
  iqTimeoutMs?: number
  /** Reconnect delays: Fibonacci from 1 s to 900 s, ±10 % (100 ‰) jitter, reset after 30 s up. */
  backoffFirstMs?: number
  backoffMaxMs?: number
  backoffJitterPermille?: number
  backoffResetAfterMs?: number
  /** How many messaging records stay in memory (default 256); the rest load on demand. */
  recordCacheLimit?: number
  /** The media host files are fetched from (default `https://mmg.whatsapp.net`; a test server). */
  mediaOrigin?: string
  /**
   * What a contact's changed identity key leads to: `acceptAndNotify` (default, as WhatsApp:
   * trusted at once, an `identityChanged` event) or `strict` (messages from and to the device
   * are refused until an `approveIdentity` command).
   */
  identityPolicy?: 'acceptAndNotify' | 'strict'
  /**
   * How much history to ask the phone for when pairing (sent once, at pairing): `recent`
   * (default, as WhatsApp Web), `full`, or `none` (no conversations; push names still arrive).
   */
  history?: 'recent' | 'full' | 'none'
  /** Days of history to ask for; older messages are dropped by the client too. */
  historyDays?: number
  /** Messages per chat in the initial history. */
  historyMessagesPerChat?: number
  /** Size limit of a full history, in MB. */
  historySizeMb?: number
}

/** The kind of a history chunk. */
export type HistorySyncType =
  | 'initial_bootstrap'
  | 'initial_status_v3'
  | 'full'
  | 'recent'
  | 'push_name'
  | 'non_blocking_data'
  | 'on_demand'
  | 'no_history'
  | 'message_access_status'
  | 'unknown'

/** Why a history chunk was not read (completely). */
export type HistoryFailure = 'empty' | 'download' | 'decrypt' | 'decode' | 'busy'

/** Why a connection ended. */
export type CloseReason =
  | { kind: 'network' }
  | { kind: 'local' }
  | { kind: 'streamError'; code?: number; conflict?: string }
  | { kind: 'failure'; reason: number }
  | { kind: 'serverClosed' }
  | { kind: 'protocol'; message: string }
  | { kind: 'connectTimeout' }
  | { kind: 'keepaliveTimeout' }
  | { kind: 'qrRefsExhausted' }
  | { kind: 'loggedOut' }

/** The lifecycle of a client. */
export type ClientState =
  | { kind: 'disconnected' }
  | { kind: 'connecting' }
  | { kind: 'handshaking' }
  | { kind: 'awaitingPairing'; mode: 'qr' | 'code' }
  | { kind: 'loggingIn' }
  | { kind: 'connected' }
  | { kind: 'reconnecting'; attempt: number; at: Timestamp }
  | { kind: 'loggedOut' }
  | { kind: 'replaced' }
  | { kind: 'clientOutdated' }

/** Why the lifecycle moved. */
export type StateReason =
  | { kind: 'started' }
  | { kind: 'connectRequested' }
  | { kind: 'backoffElapsed' }
  | { kind: 'restartRequired' }
  | { kind: 'socketOpened' }
  | { kind: 'pairingOffered' }
  | { kind: 'pairingCodeRequested' }
  /** The server refused the pairing code request; QR codes remain. */
  | { kind: 'pairingCodeFailed' }
  | { kind: 'loginAccepted' }
  | { kind: 'postLoginDone' }
  | { kind: 'closed'; reason: CloseReason }
  | { kind: 'disconnectRequested' }
  | { kind: 'logoutRequested' }

/** An app-state collection, by its wire name. */
export type AppStateCollection =
  | 'regular'
  | 'regular_low'
  | 'regular_high'
  | 'critical_block'
  | 'critical_unblock_low'

/** A chat's last messages as this device saw them (timestamps in seconds). */
export interface MessageRange {
  lastMessageTimestamp: number
  lastSystemMessageTimestamp?: number
  messages?: { id: string; fromMe: boolean; participant?: string; timestamp: number }[]
}

/** An app-state action, synced to the account's other devices. Mute ends are Unix ms, 0 = forever. */
export type SyncAction =
  | { kind: 'mute'; chat: string; untilMs: number }
  | { kind: 'unmute'; chat: string }
  | { kind: 'pin'; chat: string; pinned: boolean }
  | { kind: 'archive'; chat: string; archived: boolean; range?: MessageRange }
  | { kind: 'markRead'; chat: string; read: boolean; range?: MessageRange }
  | { kind: 'star'; chat: string; messageId: string; fromMe: boolean; participant?: string; starred: boolean }
  | { kind: 'deleteChat'; chat: string; range?: MessageRange }
  | { kind: 'clearChat'; chat: string; range?: MessageRange }
  | { kind: 'contact'; jid: string; fullName?: string; firstName?: string }
  | { kind: 'removeContact'; jid: string }
  | { kind: 'labelEdit'; labelId: string; name: string; color: number; deleted?: boolean; predefinedId?: number }
  | { kind: 'labelChat'; labelId: string; chat: string; labeled: boolean }
  | { kind: 'labelMessage'; labelId: string; chat: string; messageId: string; labeled: boolean }

/** The app-state settings of a chat. `mutedUntilMs` is Unix ms, 0 = forever; `pinnedAt` Unix ms. */
export interface ChatSettings {
  mutedUntilMs?: number
  pinnedAt?: number
  archived: boolean
  markedUnread: boolean
  labels: string[]
}

/** What changed in the app-state settings. */
export type SettingChange =
  | { kind: 'muted'; chat: string; untilMs?: number }
  | { kind: 'pinned'; chat: string; pinned: boolean }
  | { kind: 'archived'; chat: string; archived: boolean }
  | { kind: 'markedUnread'; chat: string; unread: boolean }
  | { kind: 'starred'; chat: string; messageId: string; fromMe: boolean; participant?: string; starred: boolean }
  | { kind: 'chatDeleted'; chat: string }
  | { kind: 'chatCleared'; chat: string }
  | { kind: 'contact'; jid: string; contact?: { fullName?: string; firstName?: string } }
  | { kind: 'label'; labelId: string; label?: { name: string; color: number; deleted: boolean; predefinedId?: number } }
  | { kind: 'chatLabeled'; labelId: string; chat: string; labeled: boolean }
  | { kind: 'messageLabeled'; labelId: string; chat: string; messageId: string; labeled: boolean }
  | { kind: 'ignored'; name: string }

/** Why a collection could not be synced. */
export type AppStateFailure =
  | { kind: 'patch'; message: string }
  | { kind: 'rejected'; code: number; text: string }
  | { kind: 'notAnswered' }
  | { kind: 'download' }

/** What a successful command produced. */
export type CommandOutput =
  | { kind: 'none' }
  | { kind: 'pairingCode'; code: string }
  | { kind: 'messageSent'; id: string }
  | { kind: 'chatSettings'; settings: ChatSettings }
  /** The identity keys kept for a device (`getIdentity`): 32-byte public keys. */
  | { kind: 'identity'; address: string; identity?: Uint8Array; pending?: Uint8Array }
  /** The plaintext of downloaded media (`downloadMedia`), its hashes and MAC checked. */
  | { kind: 'mediaDownloaded'; data: Uint8Array }
  /** `createGroup`: the group, and each participant's result. */
  | { kind: 'groupCreated'; info: GroupInfo; participants: GroupParticipantResult[] }
  /** `groupInfo`. */
  | { kind: 'groupInfo'; info: GroupInfo }
  /** `listGroups`: the groups this account is in. */
  | { kind: 'groupList'; groups: GroupInfo[] }
  /** `changeGroupParticipants`: one result per participant. */
  | { kind: 'groupParticipants'; results: GroupParticipantResult[] }
  /** `groupInviteCode` and `revokeGroupInvite` (the new code). */
  | { kind: 'groupInviteCode'; code: string }
  /** `joinGroup`: joined, or (`pendingApproval`) a request waits for an admin. */
  | { kind: 'groupJoined'; group: string; pendingApproval: boolean }
  /** `groupJoinRequests`: the requests waiting for an admin. */
  | { kind: 'groupJoinRequests'; requests: GroupJoinRequest[] }
  /** `setPicture`: the new picture's id, absent when removed. */
  | { kind: 'picture'; id?: string }
  /** `checkNumbers`: one entry per number, in the order given. */
  | { kind: 'numbers'; numbers: NumberInfo[] }
  /** `getProfilePicture`: the URL, or why there is none (answers, not errors). */
  | { kind: 'profilePicture'; picture: ProfilePicture }
  /** `getAbout`: the about text, or why there is none. */
  | { kind: 'about'; about: About }
  /** `getBusinessProfile`: undefined for accounts that are no business. */
  | { kind: 'businessProfile'; profile?: BusinessProfile }
  /** `getBlockList`: the blocked users. */
  | { kind: 'blockList'; jids: string[] }
  /** Media decrypted into the host's sink (`downloadMedia` with `sink`): MAC and hashes checked. */
  | { kind: 'mediaSaved'; sink: number; length: number }

/** A group member. */
export interface GroupParticipant {
  /** In the group's addressing mode. */
  jid: string
  /** The phone-number JID, when `jid` is a LID. */
  phoneNumber?: string
  /** The LID, when `jid` is a phone number. */
  lid?: string
  role: 'member' | 'admin' | 'superadmin'
}

/** A group's metadata. */
export interface GroupInfo {
  jid: string
  subject: string
  subjectOwner?: string
  /** Unix seconds. */
  subjectTime: number
  /** Unix seconds. */
  creation: number
  owner?: string
  ownerPn?: string
  description?: string
  descriptionId?: string
  participants: GroupParticipant[]
  /** The JIDs of the admins and the super-admin. */
  admins: string[]
  size: number
  /** Only admins send. */
  announce: boolean
  /** Only admins edit the info. */
  locked: boolean
  /** Joining needs an admin's approval. */
  approvalRequired: boolean
  /** Disappearing-messages timer, seconds (0: off). */
  ephemeralSeconds: number
  /** Every member may add members (else only admins). */
  membersCanAdd: boolean
  addressingMode: 'pn' | 'lid'
}

/** A request to join a group that needs approval. */
export interface GroupJoinRequest {
  jid: string
  /** The phone-number JID, when `jid` is a LID. */
  phoneNumber?: string
  /** Unix seconds (0: not said). */
  requestedAt: number
}

/** What became of one participant of a group change. */
export interface GroupParticipantResult {
  jid: string
  /** The other address form, when the server gave it. */
  alt?: string
  /**
   * `inviteRequired`: only their contacts may add them; send them `inviteCode` (a group invite
   * message) instead. `failed`: another server `code`.
   */
  status: 'ok' | 'inviteRequired' | 'notAuthorized' | 'notFound' | 'recentlyLeft' | 'alreadyMember' | 'groupFull' | 'failed'
  inviteCode?: string
  /** Unix seconds. */
  inviteExpiration?: number
  code?: number
}

/** One change a `group` event announces (already applied to what the client knows). */
export type GroupChange =
  | { kind: 'created'; info: GroupInfo }
  | { kind: 'participants'; change: 'added' | 'removed' | 'left' | 'promoted' | 'demoted'; participants: GroupParticipant[] }
  | { kind: 'subject'; subject: string }
  /** `text` absent: deleted. */
  | { kind: 'description'; id?: string; text?: string }
  | { kind: 'announce'; on: boolean }
  | { kind: 'locked'; on: boolean }
  | { kind: 'approvalRequired'; on: boolean }
  | { kind: 'membersCanAdd'; on: boolean }
  /** Seconds, 0: off. */
  | { kind: 'ephemeral'; seconds: number }
  | { kind: 'inviteCode'; code: string }
  | { kind: 'deleted' }

/** A phone number `checkNumbers` asked about. Not being on WhatsApp is an answer. */
export interface NumberInfo {
  /** The number as asked, digits only. */
  phone: string
  onWhatsApp: boolean
  /** Its phone-number JID. */
  jid: string
  /** Its LID, when it is on WhatsApp and the server told. */
  lid?: string
}

/** A profile picture (a plain JPEG to GET), or why there is none. */
export type ProfilePicture =
  | { kind: 'url'; url: string; id: string; directPath?: string }
  | { kind: 'none' }
  | { kind: 'notAllowed' }

/** An about text, or why there is none. */
export type About =
  | { kind: 'text'; text: string; setAt: number }
  | { kind: 'none' }
  | { kind: 'notAllowed' }

/** A business account's public profile. */
export interface BusinessProfile {
  jid: string
  description?: string
  address?: string
  email?: string
  websites: string[]
  categories: string[]
}

/** Typing, recording a voice note, or stopped. */
export type ChatState =
  | 'composing'
  | 'recording'
  | 'paused'

/** What happened to a call: offered (ringing here), ringing at the callee, accepted or rejected (possibly elsewhere), ended, or missed. */
export type CallAction =
  | 'offer'
  | 'ringing'
  | 'accepted'
  | 'rejected'
  | 'ended'
  | 'timedOut'

/** The stable code of a command error: the core's `CommandError::code()`, the same in every binding. */
export type CommandErrorCode =
  | 'invalid_phone_number'
  | 'already_paired'
  | 'not_paired'
  | 'pairing_code_outstanding'
  | 'unsupported_platform'
  | 'not_connected'
  | 'rejected'
  | 'rate_limited'
  | 'timed_out'
  | 'invalid_address'
  | 'invalid_message'
  | 'invalid_state'
  | 'app_state'
  | 'untrusted_identity'
  | 'upload_failed'
  | 'download_failed'
  | 'media_invalid'
  | 'media_expired'
  | 'media_too_large'
  | 'unknown_poll'
  /** Not allowed: not an admin, not a member (401/403). */
  | 'forbidden'
  /** No such group or invite code (404/410). */
  | 'not_found'
  /** A server limit: the group is full (419). */
  | 'resource_limit'
  /** The server refused the request as malformed or unacceptable (400/406). */
  | 'bad_request'
  /** The prekey answer, or the bundle of one device in it, was unusable: the message went to no device. */
  | 'bad_prekey_answer'
  /** `setPresence` needs a push name (`pushName` in the config). */
  | 'push_name_required'
  /** The answer from the server did not have the expected shape. */
  | 'bad_answer'

/** Why a command failed. */
export interface CommandError {
  code: CommandErrorCode
  message: string
  /** For `rejected`: the server's error code and text. */
  serverCode?: number
  serverText?: string
  /** For `rate_limited`, when the server said. */
  retryAfterMs?: number
  /**
   * For `untrusted_identity`: the device whose new identity key waits for approval; for
   * `bad_prekey_answer`: the device whose bundle was malformed or badly signed (absent when the
   * whole answer could not be read). Nothing was sent.
   */
  address?: string
}

/** What kind of failure a `decryptFailed` event reports. */
export type DecryptFailureKind =
  | 'malformed'
  | 'notReady'
  | 'undecryptable'
  /** More `<enc>` children than the client accepts (`encs` says how many); nothing decrypted. */
  | 'tooManyEncs'
  /** An `<enc>` repeated a message key of the same stanza; nothing changed. */
  | 'replayedEnc'
  /** More than one `<enc>` carried a message; nothing changed. */
  | 'severalMessages'
  /** The sender's identity key changed and waits for `approveIdentity` (strict policy). */
  | 'untrustedIdentity'
  | 'other'

/** Something for the application. */
export type ClientEvent =
  | { type: 'state'; state: ClientState; reason: StateReason }
  | { type: 'qr'; payload: string; expiresAt: Timestamp }
  | { type: 'qrRefsExhausted' }
  | { type: 'pairingCode'; code: string }
  | { type: 'paired'; jid: string; lid?: string; platform: string; businessName?: string }
  | { type: 'offlinePreview'; count: number; messages: number; notifications: number; receipts: number; appData: number }
  | { type: 'offlineSyncDone'; count: number }
  /**
   * A message received and decrypted. From `Client.pollOutput`, `message` is the content encoded
   * (`decodeMessage` reads it); a `Connection` hands it decoded, as a `MessageEvent`.
   */
  | (MessageEventOf<Uint8Array> & { type: 'message' })
  | { type: 'receipt'; chat: string; sender: string; receiptType: string; ids: string[]; timestamp: number }
  | { type: 'decryptFailed'; id: string; chat: string; sender?: string; kind: DecryptFailureKind; encs?: number; reason: string }
  /**
   * A contact device presented a new identity key (32-byte public keys): trusted now
   * (`accepted`, the default policy) or waiting for an `approveIdentity` command (strict).
   */
  | { type: 'identityChanged'; address: string; identity: Uint8Array; previous: Uint8Array; accepted: boolean }
  /**
   * A stored record (handed over at start or loaded on demand) could not be read: it is treated as
   * absent and overwritten by the next write. Names the record, never its content.
   */
  | { type: 'recordCorrupt'; space: string; key: string; error: 'too_large' | 'bad_protobuf' | 'unsupported_format' | 'bad_field' | 'too_many' }
  /** A retry request for one of our messages was refused; once per message and device. */
  | { type: 'retryRefused'; id: string; requester: string; reason: 'notARecipient' | 'tooManyRetries' | 'other'; refusedTotal: number }
  | { type: 'appStateChanged'; collection: AppStateCollection; change: SettingChange }
  | { type: 'chatSettings'; chat: string; settings: ChatSettings }
  | { type: 'appStateWaitingForKeys'; collection: AppStateCollection; keyIds: Uint8Array[] }
  | { type: 'appStateFatal'; collection: AppStateCollection; error: AppStateFailure }
  /** A conversation of the phone's history; its messages follow as `message` events. */
  | { type: 'historyConversation'; chat: string; name?: string; unreadCount: number; timestamp: number; archived: boolean; pinned: boolean; muteEndTime: number; ephemeralExpiration: number; pn?: string; lid?: string; syncType: HistorySyncType }
  /** A contact's push name, from the phone's history or (once per change) the stanzas they send. */
  | { type: 'pushName'; jid: string; name: string }
  /**
   * A call: `caller` and `callId` go to `rejectCall`; `device` is the sending device, `timestamp`
   * Unix seconds; `offline` when it was queued while this device was away.
   */
  | { type: 'call'; callId: string; action: CallAction; caller: string; callerPn?: string; device: string; timestamp: number; offline: boolean; video: boolean; isGroup: boolean; group?: string; reason?: string }
  /** A contact's presence (after `subscribePresence`); `lastSeen` in Unix seconds when shared. */
  | { type: 'presence'; jid: string; available: boolean; lastSeen?: number; lastSeenHidden: boolean }
  /** Someone typing, recording or stopped in a chat (`sender` is the group participant in groups). */
  | { type: 'chatState'; chat: string; sender: string; state: ChatState }
  /** A history chunk was read (or failed: `failure`). */
  | { type: 'historySync'; syncType: HistorySyncType; chunkOrder: number; progress?: number; conversations: number; messages: number; failure?: HistoryFailure }
  /** A group changed (a `w:gp2` notification): who did it, when (Unix seconds), what changed. */
  | { type: 'group'; group: string; actor?: string; timestamp: number; changes: GroupChange[] }
  | { type: 'commandDone'; id: number; result: { ok: true; output: CommandOutput } | { ok: false; error: CommandError } }

/**
 * An HTTPS request the core asks for (a `fetch` output): carry it out and answer with
 * `handleFetched(now, id, result)`. `headers` is what `fetch` takes; read at most
 * `maxResponseBytes` of the body (more is `too_large`) and give up after `timeoutMs`.
 */
export interface FetchRequest {
  method: 'GET' | 'POST'
  url: string
  headers: [string, string][]
  body?: Uint8Array
  /** A body the host holds (the encrypted file of a `sendMedia` with `hostBody`): send it as it is. */
  hostBody?: { id: number; length: number }
  /**
   * Decrypt a 2xx body as it arrives into the host's sink (`downloadMedia` with `sink`) and answer
   * `{ status, streamed }`; keep the plaintext unreleased until the command ends with `mediaSaved`.
   * A non-2xx body is not read. `iv`, `cipherKey`, `macKey`: the keys expanded from `mediaKey`.
   */
  decrypt?: { sink: number; mediaKey: Uint8Array; mediaType: MediaType; iv: Uint8Array; cipherKey: Uint8Array; macKey: Uint8Array }
  maxResponseBytes: number
  timeoutMs: number
}

/** The key family of a media file (the HKDF info), as the core names it. */
export type MediaType = 'image' | 'video' | 'audio' | 'document' | 'history' | 'app_state' | 'image_thumbnail' | 'video_thumbnail' | 'document_thumbnail' | 'link_thumbnail' | 'payment_background'

/** The hashes of a media file, from an encryptor or a decryptor. */
export interface MediaHashes {
  fileSha256: Uint8Array
  fileEncSha256: Uint8Array
  fileLength: number
}

/** Why a media body was refused (the core's `MediaError::code`). */
export type MediaErrorCode = 'empty_key' | 'invalid_length' | 'mac_mismatch' | 'invalid_padding' | 'encrypted_hash_mismatch' | 'hash_mismatch' | 'too_large'

/** A file the host encrypted and holds, for `sendMedia`'s `hostBody`. */
export interface HostBody extends MediaHashes {
  id: number
  mediaKey: Uint8Array
}

/** Why a fetch got no response (a response with any status is not an error). */
export type FetchErrorCode =
  | 'network'
  | 'timed_out'
  | 'too_large'
  /** The host could not read the body it holds or write its sink. */
  | 'host_body'

/** The answer to a `fetch` output: the response (any status) or the transport's failure. */
export type FetchResult =
  | { status: number; body?: Uint8Array; streamed?: MediaHashes | { error: MediaErrorCode } }
  | { error: FetchErrorCode }

/** One thing for the host to do, in order. */
export type ClientOutput =
  | { kind: 'connect' }
  | { kind: 'persist'; changes: StoreChange[] }
  | { kind: 'load'; id: number; keys: StoreKey[] }
  | { kind: 'fetch'; id: number; request: FetchRequest }
  | { kind: 'transmit'; bytes: Uint8Array }
  | { kind: 'event'; event: ClientEvent }
  | { kind: 'close'; reason: CloseReason }

/**
 * A message event. `message` is the content with its wrappers removed (`wrappers` names them,
 * outermost first) and the keys of add-ons (reactions, poll votes, revokes, edits, pins)
 * rewritten to this device's point of view; `raw` is the message as it arrived, encoded, with
 * the fields walink's schema lacks.
 */
export interface MessageEventOf<Content> {
  type: 'message'
  id: string
  /** The sender (1:1), the group, `status@broadcast`, or for this account's own message the chat it went to. */
  chat: string
  /** The sending device. */
  sender: string
  /** Server time, Unix seconds. */
  timestamp: number
  /** Whether this account sent it (from another of its devices). */
  fromMe: boolean
  pushName?: string
  /** Whether it came from a history sync rather than live. */
  history: boolean
  message: Content
  /** `ephemeralMessage`, `viewOnceMessageV2`, `documentWithCaptionMessage`, `editedMessage`, ... */
  wrappers: string[]
  raw: Uint8Array
  /** `conversation`, or `extendedTextMessage.text`. */
  text?: string
  /** A poll vote, opened with its poll's secret and counted (voters as user JIDs, the LID when known). */
  pollVote?: {
    pollId: string
    voter: string
    /** The options this vote chose (none: withdrawn). */
    selected: string[]
    /** Every option with the voters whose latest vote chose it. */
    tally: { name: string; voters: string[] }[]
  }
}

/** A message event as a `Connection` hands it: the content decoded. */
export type MessageEvent = MessageEventOf<WaMessage>

/** The events a `Connection` hands to `onEvent`: a client's, with message content decoded. */
export type ConnectionEvent = Exclude<ClientEvent, { type: 'message' }> | MessageEvent

/** A request from the application. */
export type ClientCommand =
  | { type: 'pairWithCode'; phone: string }
  | { type: 'sendText'; to: string; text: string }
  | { type: 'sendMessage'; to: string; message: Uint8Array }
  /** Ends with `messageSent`; `unknown_poll` when no such poll is kept for the chat. */
  | { type: 'sendPollVote'; chat: string; pollId: string; options: string[] }
  | { type: 'markRead'; chat: string; sender?: string; ids: string[] }
  | { type: 'connect' }
  | { type: 'disconnect' }
  | { type: 'logout' }
  /** Ends once the server accepted the patch. */
  | { type: 'appState'; action: SyncAction }
  /** Ends with `{ kind: 'chatSettings' }`. */
  | { type: 'getChatSettings'; chat: string }
  /** Ends with `{ kind: 'identity' }`. */
  | { type: 'getIdentity'; address: string }
  /** Trusts the 32-byte key an `identityChanged` event named (strict policy); needs a connection. */
  | { type: 'approveIdentity'; address: string; identity: Uint8Array }
  /** Uploads `data` and sends it as a message of `kind`; ends at the ack with `messageSent`. */
  | ({ type: 'sendMedia'; to: string } & OutgoingMedia)
  /**
   * The media of a received message (`message` event fields); ends with `mediaDownloaded`, or
   * with `mediaSaved` when `sink` names a host sink the body is decrypted into.
   */
  | { type: 'downloadMedia'; id: string; chat: string; sender: string; message: Uint8Array; sink?: number }
  /**
   * Asks the phone for `count` messages of `chat` older than the oldest the host has (its id,
   * whether we sent it, its time in Unix seconds). Ends with `messageSent` once the request
   * went out; the messages arrive as an `on_demand` history chunk, if the phone answers.
   */
  | { type: 'requestHistory'; chat: string; oldestId: string; oldestFromMe: boolean; oldestTimestamp: number; count: number }
  /** Creates a group (participants: user JIDs); ends with `groupCreated`. */
  | { type: 'createGroup'; subject: string; participants: string[] }
  /** Ends with `groupInfo` (fails with `forbidden` or `not_found`). */
  | { type: 'groupInfo'; group: string }
  /** Ends with `groupList`. */
  | { type: 'listGroups' }
  /** Admins only; ends with `groupParticipants`, a result per participant. */
  | { type: 'changeGroupParticipants'; group: string; action: 'add' | 'remove' | 'promote' | 'demote'; participants: string[] }
  | { type: 'setGroupSubject'; group: string; subject: string }
  /** No `description` (or null) deletes it. */
  | { type: 'setGroupDescription'; group: string; description?: string | null }
  /** `ephemeral` takes seconds (0: off; WhatsApp accepts 86400, 604800, 7776000). */
  /** `membersCanAdd`: every member may add (else admins only). */
  | { type: 'setGroupSetting'; group: string; setting: 'announce' | 'locked' | 'approvalRequired' | 'membersCanAdd'; value: boolean }
  | { type: 'setGroupSetting'; group: string; setting: 'ephemeral'; value: number }
  /** Admins only; ends with `groupInviteCode`. */
  | { type: 'groupInviteCode'; group: string }
  /** Admins only; ends with the new `groupInviteCode`. */
  | { type: 'revokeGroupInvite'; group: string }
  /** The code or the whole `https://chat.whatsapp.com/<code>` link; ends with `groupJoined`. */
  | { type: 'joinGroup'; code: string }
  | { type: 'leaveGroup'; group: string }
  /** Admins only; ends with `groupJoinRequests`. */
  | { type: 'groupJoinRequests'; group: string }
  /** Admins only; approve (or reject) requests; ends with `groupParticipants`. */
  | { type: 'resolveGroupJoinRequests'; group: string; approve: boolean; participants: string[] }
  /** Accepts a group invite message (V4 invite; `inviter`: the chat it came in); ends with `groupJoined`. */
  | { type: 'acceptGroupInvite'; group: string; code: string; expiration: number; inviter: string }
  /** A group's picture or our own (`jid` our JID): a JPEG, or no `jpeg` to remove; ends with `picture`. Read with `getProfilePicture`. */
  | { type: 'setPicture'; jid: string; jpeg?: Uint8Array | null }
  /** Rejects an incoming call (`call` event's `callId` and `caller`) as WhatsApp Web does; ends on the server's ack. */
  | { type: 'rejectCall'; callId: string; caller: string }
  /** Online or not; needs `pushName` (else `push_name_required`); renewed after reconnects. */
  | { type: 'setPresence'; available: boolean }
  /** `presence` events follow; renewed after reconnects. */
  | { type: 'subscribePresence'; jid: string }
  /** Stops `presence` events of `jid`; no longer renewed after reconnects. */
  | { type: 'unsubscribePresence'; jid: string }
  | { type: 'sendChatState'; to: string; state: ChatState }
  /** Ends with `{ kind: 'numbers' }`; at most 1,000 numbers. */
  | { type: 'checkNumbers'; phones: string[] }
  /** Ends with `{ kind: 'profilePicture' }`; `preview` (the default) is the thumbnail. */
  | { type: 'getProfilePicture'; jid: string; preview?: boolean }
  | { type: 'getAbout'; jid: string }
  | { type: 'getBusinessProfile'; jid: string }
  | { type: 'setBlocked'; jid: string; blocked: boolean }
  | { type: 'getBlockList' }

/** The kinds of media message walink sends. */
export type MediaKind = 'image' | 'video' | 'gif' | 'audio' | 'ptt' | 'document' | 'sticker' | 'ptv'

/** A media file to send and what its message says about it. */
export interface OutgoingMedia {
  kind: MediaKind
  /** The file (or, to the core, `hostBody`; to a Connection, `path` or `stream`). */
  data?: Uint8Array
  /** A file the host encrypted and holds (the core's command). */
  hostBody?: HostBody
  /** A Connection in Node: a file to stream from instead of `data`. */
  path?: string
  /** A Connection in Node: a Node stream or async iterable of bytes instead of `data`. */
  stream?: AsyncIterable<Uint8Array>
  /** `image/jpeg`, `audio/ogg; codecs=opus`, ... */
  mimetype: string
  /** Image, video, GIF, document. */
  caption?: string
  /** Document. */
  fileName?: string
  width?: number
  height?: number
  /** Video, GIF, audio, voice note. */
  seconds?: number
  /** A small inline JPEG. */
  thumbnail?: Uint8Array
}

/** WhatsApp's endpoints and the web version announced by default, from the core. */
export interface Endpoints {
  /** `wss://web.whatsapp.com/ws/chat` */
  chatUrl: string
  /** `https://web.whatsapp.com`: the Origin header the chat socket needs. */
  origin: string
  /** `https://mmg.whatsapp.net` */
  mediaOrigin: string
  /** `2.3000.1045649367` */
  webVersion: string
}

/**
 * The core state machine (one linked device). Most hosts use `connect` instead; a host with its
 * own loop follows the rules in the README. Errors are `Error`s with a stable `code`
 * (`invalid_config`, `invalid_record`, `restore_malformed`, `restore_duplicate`,
 * `restore_missing_device`, `invalid_command`, `invalid_fetch_result`, ...). A call after one
 * that panicked (a bug) throws `client_panicked`: rebuild the client from its store.
 */
/** A fresh 32-byte media key from the platform's generator (the core's). */
export function newMediaKey(): Uint8Array
/** The keys expanded from `mediaKey` for `mediaType` (a `MediaType` or a `MediaKind`). */
export function mediaKeys(mediaKey: Uint8Array, mediaType: MediaType | MediaKind): { iv: Uint8Array; cipherKey: Uint8Array; macKey: Uint8Array }
/** The core's streaming media encryptor: `update` pieces, then `finish`. */
export class MediaEncryptor {
  constructor(mediaKey: Uint8Array, mediaType: MediaType | MediaKind)
  update(plaintext: Uint8Array): Uint8Array
  finish(): MediaHashes & { tail: Uint8Array }
  free(): void
}
/**
 * The core's streaming media decryptor. `update` returns plaintext that is NOT verified yet: keep
 * it unreleased until `finish` (MAC, constant time) succeeded. Errors carry a `MediaErrorCode`.
 */
export class MediaDecryptor {
  constructor(mediaKey: Uint8Array, mediaType: MediaType | MediaKind, maxBytes: number)
  update(piece: Uint8Array): Uint8Array
  finish(): MediaHashes & { tail: Uint8Array }
  free(): void
}

/** How a media body is encrypted and decrypted a piece at a time (media-crypto.js). */
export interface MediaCrypto {
  /** `node:crypto` or `wasm`. */
  name: string
  encryptor(keys: { mediaKey: Uint8Array; mediaType: MediaType | MediaKind; iv: Uint8Array; cipherKey: Uint8Array; macKey: Uint8Array }): {
    update(plaintext: Uint8Array): Uint8Array
    finish(): MediaHashes & { tail: Uint8Array }
  }
  /** `update` returns unverified plaintext; `finish` checks the MAC (codes as `MediaErrorCode`). */
  decryptor(keys: { mediaKey: Uint8Array; mediaType: MediaType | MediaKind; iv: Uint8Array; cipherKey: Uint8Array; macKey: Uint8Array }, maxBytes: number): {
    update(piece: Uint8Array): Uint8Array
    finish(): MediaHashes & { tail: Uint8Array }
  }
}

/** Node: AES-256-CBC, HMAC-SHA256 and SHA-256 from node:crypto under the core's expanded keys. */
export function nodeMediaCrypto(): MediaCrypto
/** The core's own streaming encryptor and decryptor (the wasm module's exports). */
export function wasmMediaCrypto(wasm: { MediaEncryptor: typeof MediaEncryptor; MediaDecryptor: typeof MediaDecryptor }): MediaCrypto

/**
 * Node: keeps streamed media bodies in temporary files (what `connect` builds for each
 * connection; `sendMedia` with `path`/`stream`, `downloadMedia` with `to`). Plaintext in a sink
 * reaches the caller only through `commitSink`, after the core ended the download with `mediaSaved`.
 */
export class FileMediaHost {
  constructor(options: { crypto: MediaCrypto; core: { newMediaKey(): Uint8Array; mediaKeys: typeof mediaKeys }; directory?: string; agent?: unknown })
  readonly cryptoName: string
  /** Encrypts `source` into a temporary file under a fresh key: `sendMedia`'s `hostBody`. */
  prepareUpload(source: string | URL | Uint8Array | AsyncIterable<Uint8Array>, mediaType: MediaType | MediaKind): Promise<HostBody>
  openBody(id: number): AsyncIterable<Uint8Array>
  releaseBody(id: number): Promise<void>
  newSink(): Promise<number>
  /** Carries out a `fetch` output that has `hostBody` or `decrypt`; resolves with what `handleFetched` takes. */
  perform(request: FetchRequest, signal?: AbortSignal): Promise<FetchResult>
  decryptInto(decrypt: NonNullable<FetchRequest['decrypt']>, body: AsyncIterable<Uint8Array>, maxBytes: number): Promise<MediaHashes | { error: MediaErrorCode }>
  commitSink(id: number, to: string | URL | NodeJS.WritableStream): Promise<void>
  discardSink(id: number): Promise<void>
  dispose(): Promise<void>
}

export class Client {
  constructor(config?: ClientConfig, records?: StoreRecord[])
  /** The spaces whose records the constructor wants (the others arrive through `load`). */
  static startSpaces(): string[]
  /** WhatsApp's endpoints, as the core states them. */
  static endpoints(): Endpoints
  handleConnected(now: Timestamp): void
  handleBytes(now: Timestamp, bytes: Uint8Array): void
  /** What the socket did (`network`, or `local` when the host closed it; omitted: network). */
  handleClosed(now: Timestamp, reason?: Exclude<CloseReason, { kind: 'protocol' }>): void
  handleTimeout(now: Timestamp): void
  handleLoaded(now: Timestamp, id: number, records: StoreRecord[]): void
  handleFetched(now: Timestamp, id: number, result: FetchResult): void
  command(now: Timestamp, command: ClientCommand): number
  pollOutput(): ClientOutput | undefined
  pollTimeout(): Timestamp | undefined
  free(): void
}

/** A WebSocket-like object: what `socket` returns (the browser's WebSocket and `ws` qualify). */
export interface WebSocketLike {
  binaryType: string
  readonly readyState: number
  onopen: ((event: unknown) => void) | null
  onmessage: ((event: { data: unknown }) => void) | null
  onclose: ((event: unknown) => void) | null
  onerror: ((event: unknown) => void) | null
  send(data: Uint8Array): void
  close(code?: number): void
}

/** Options of `connect`. */
export interface ConnectOptions {
  /** Where the client's records live. */
  store: Store
  /** Default: the core's chat socket, `wss://web.whatsapp.com/ws/chat`. */
  url?: string
  /** Opens a socket (default: `ws` in Node, the browser's WebSocket). */
  socket?: (url: string) => WebSocketLike
  config?: ClientConfig
  /** Every event of the client, in order. */
  onEvent?: (event: ConnectionEvent) => void
  /** Node: how streamed media bodies are encrypted and decrypted (default `native`: node:crypto). */
  mediaCrypto?: 'native' | 'wasm'
  /** Node: where streamed media's temporary files go (default: the system's temporary directory). */
  mediaDirectory?: string
  /** Failures the driver recovered from or ended on (`store_failed`, `fenced`, `socket_failed`, ...). */
  onError?: (error: Error & { code?: string }) => void
  /**
   * Asked before every socket the driver opens (the first and each reconnect); `false` ends the
   * connection with a `fenced` error and opens nothing. For hosts where several processes share
   * a store and only the owner may log in.
   */
  mayConnect?: () => boolean | Promise<boolean>
  /** The clock (default `Date.now`). */
  now?: () => Timestamp
  /**
   * The HTTP client for the core's `fetch` outputs (app-state blobs; media later): called as
   * `fetch(url, { method, headers, body, signal })` and read as a `Response`. Default
   * `globalThis.fetch`. The driver reads at most the request's `maxResponseBytes` and answers the
   * core with the status and body, whatever the status; a rejection, a timeout or a larger body
   * answers with the failure and is reported to `onError` as `fetch_failed`.
   */
  fetch?: typeof globalThis.fetch
}

/**
 * A running client: the object `connect` resolves to. No state ends it: after `loggedOut`,
 * `replaced` or `clientOutdated` the client rests until a `connect` command (a logged-out client
 * then pairs a new device) or `close()`.
 */
export class Connection {
  /** The last `state` event's state, or null before the first. */
  readonly state: ClientState | null
  /**
   * Resolves when the connection ended for good: `close()`, or a fatal error (`error` is set; its
   * `code` is `fenced` when the store or `mayConnect` said another process owns the client).
   */
  readonly ended: Promise<{ error: unknown }>
  /** Any command; resolves with its output, rejects with an Error whose `code` is the CommandError's. */
  command(command: ClientCommand): Promise<CommandOutput>
  /** Resolves with the eight characters to type on the phone. */
  pairWithCode(phone: string): Promise<string>
  sendText(to: string, text: string): Promise<CommandOutput>
  /** Any content, as protobuf JSON (`content.*` builds each kind) or encoded. */
  sendMessage(to: string, message: WaMessage | Uint8Array): Promise<CommandOutput>
  /** Votes in a poll this device sent or received (options by name; none withdraws the vote). */
  sendPollVote(chat: string, pollId: string, options: string[]): Promise<CommandOutput>
  markRead(chat: string, ids: string[], sender?: string): Promise<CommandOutput>
  /** The identity keys kept for a device: `{ kind: 'identity', address, identity?, pending? }`. */
  getIdentity(address: string): Promise<CommandOutput>
  /** Trusts a device's new identity key (strict policy); refused messages are asked for again. */
  approveIdentity(address: string, identity: Uint8Array): Promise<CommandOutput>
  /** Uploads and sends media to a user or group; resolves with `{ kind: 'messageSent', id }` at the ack. */
  sendMedia(to: string, media: OutgoingMedia): Promise<CommandOutput>
  /** Downloads and decrypts the media of a received `message` event; resolves with the plaintext. */
  downloadMedia(message: { id: string; chat: string; sender: string; raw: Uint8Array }): Promise<Uint8Array>
  /**
   * Node: decrypts the media as it downloads into a temporary file that becomes `to` (a path, or
   * is copied into a writable stream) only after the MAC and both hashes matched.
   */
  downloadMedia(message: { id: string; chat: string; sender: string; raw: Uint8Array }, options: { to: string | NodeJS.WritableStream }): Promise<CommandOutput>
  logout(): Promise<CommandOutput>
  /** Disconnects and stops; the device stays paired in the store. */
  close(): Promise<void>
}

/**
 * Runs a client against a WebSocket, a store and one timer: each Persist batch is awaited before
 * any later output, and a store failure rebuilds the client from the store (a `fenced` one ends
 * the connection).
 */
export function connect(options: ConnectOptions): Promise<Connection>

/** WhatsApp Web's chat socket, the core's (`Client.endpoints().chatUrl`; in browsers once `init()` resolved). */
export const DEFAULT_URL: string
