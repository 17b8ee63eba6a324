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
 * What the driver needs of a store. `applyBatch` applies the changes in order and atomically:
 * once it resolves, `loadAll` sees all of them (a durable store keeps them across a crash); if
 * it rejects, the store holds either none or all of them, never a part, and the driver rebuilds
 * its client from `loadAll`. A store applies overlapping calls in call order.
 */
export interface Store {
  applyBatch(changes: StoreChange[]): Promise<void>
  /** Every record (used when a client is built or rebuilt). */
  loadAll(): Promise<StoreRecord[]>
  /** The records under `keys` that exist (the core's on-demand loads). */
  load(keys: StoreKey[]): Promise<StoreRecord[]>
  close?(): Promise<void>
}

/** The error every shipped store throws; `code` is stable. */
export class StoreError extends Error {
  readonly name: 'StoreError'
  /** `invalid_change`, `invalid_key`, `closed`, `io`, `corrupt`, `too_large`, `unavailable`, `blocked` */
  readonly code: string
}

/** Records in a Map: tests, short-lived clients, hosts that persist elsewhere. Not durable. */
export class MemoryStore implements Store {
  constructor()
  applyBatch(changes: StoreChange[]): Promise<void>
  loadAll(): Promise<StoreRecord[]>
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
  load(keys: StoreKey[]): Promise<StoreRecord[]>
  close(): Promise<void>
}

/** Browsers (pages, extensions, workers): one IndexedDB database, one transaction per batch. */
export class IndexedDBStore implements Store {
  static open(name: string, options?: { indexedDB?: object }): Promise<IndexedDBStore>
  static deleteDatabase(name: string, options?: { indexedDB?: object }): Promise<void>
  applyBatch(changes: StoreChange[]): Promise<void>
  loadAll(): Promise<StoreRecord[]>
  load(keys: StoreKey[]): Promise<StoreRecord[]>
  close(): Promise<void>
}
