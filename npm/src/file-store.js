// A durable store for Node: one directory per client, holding
//   snapshot   every record at some point (written to snapshot.tmp, synced, then renamed over)
//   wal        the batches applied since that snapshot, one checksummed frame each, appended
//              and synced before applyBatch resolves
// A batch is durable once its frame is synced. A crash in the middle of an append leaves a torn
// last frame, which the next open cuts off, so a reopened store holds exactly the batches whose
// applyBatch resolved (and possibly the one in flight, if its frame reached the disk whole).
// When the wal outgrows the snapshot, the two are folded into a new snapshot; replaying a wal on
// a snapshot that already contains it gives the same records (puts and deletes are last-writer-
// wins), so a crash between the rename and the truncation of the wal is harmless.
// The store keeps an index of every record in memory (read once at open), so loads never touch
// the disk; a host whose accounts hold more than fits in memory wants a database-backed store.
// The files hold the device's private keys: the directory is created 0700 and the files 0600
// (an existing file with wider permissions is narrowed when opened). The format and these rules
// are those of walink-file-store, the Rust store of the Kotlin, Python and Swift packages.

import * as nodeFs from 'node:fs/promises'
import { join } from 'node:path'

import { SNAPSHOT_MAGIC, encodeFrame, readFrames } from './record-format.js'
import { StoreError, applyChanges, checkBatch, checkKeys, checkSpaces, recordId } from './store.js'

const SNAPSHOT = 'snapshot'
const SNAPSHOT_TMP = 'snapshot.tmp'
const WAL = 'wal'

/** Owner-only permissions: the store holds private keys. */
const DIR_MODE = 0o700
const FILE_MODE = 0o600

/** The wal size from which a batch also folds the wal into a new snapshot (unless it is smaller than the snapshot). */
export const DEFAULT_COMPACT_BYTES = 1 << 20

/** A store in a directory of the local file system, safe against crashes at any point. */
export class FileStore {
  #dir
  #fs
  #sync
  #compactBytes
  #wal = null
  #records = new Map()
  #walSize = 0
  #snapshotSize = 0
  #needsRepair = false
  #closed = false
  #queue = Promise.resolve()

  /**
   * Opens (creating it if needed) the store in directory `dir` and repairs a torn last write.
   * Options: `sync` (default true: fsync each batch; false trades durability for speed),
   * `compactBytes` (default 1 MiB), `fs` (a stand-in for node:fs/promises, for fault injection).
   * One FileStore per directory at a time.
   */
  static async open(dir, options = {}) {
    const store = new FileStore(dir, options)
    await store.#run(() => store.#repair())
    return store
  }

  constructor(dir, options = {}) {
    if (typeof dir !== 'string' || dir.length === 0) throw new TypeError('FileStore needs a directory path')
    this.#dir = dir
    this.#fs = options.fs ?? nodeFs
    this.#sync = options.sync ?? true
    this.#compactBytes = options.compactBytes ?? DEFAULT_COMPACT_BYTES
  }

  /** The directory this store lives in. */
  get dir() {
    return this.#dir
  }

  /** Applies a batch atomically and durably: after this resolves the batch survives a crash. */
  async applyBatch(changes) {
    const checked = checkBatch(changes)
    return this.#run(async () => {
      if (this.#needsRepair) await this.#repair()
      if (checked.length === 0) return
      const frame = encodeFrame(checked)
      try {
        await writeAll(this.#wal, frame)
        if (this.#sync) await this.#wal.datasync()
      } catch (cause) {
        await this.#undoAppend()
        throw new StoreError('io', `writing the batch failed: ${cause?.message ?? cause}`, { cause })
      }
      this.#walSize += frame.length
      applyChanges(this.#records, checked, (value) => value.slice())
      if (this.#walSize >= Math.max(this.#compactBytes, this.#snapshotSize)) await this.#compact()
    })
  }

  /** Every record of the given spaces. */
  async loadSpaces(spaces) {
    const wanted = new Set(checkSpaces(spaces))
    return this.#run(async () => {
      if (this.#needsRepair) await this.#repair()
      return [...this.#records.values()].filter((r) => wanted.has(r.space)).map(copyRecord)
    })
  }

  /** Every record. */
  loadAll() {
    return this.#run(async () => {
      if (this.#needsRepair) await this.#repair()
      return [...this.#records.values()].map(copyRecord)
    })
  }

  /** The records under `keys` that exist. */
  async load(keys) {
    checkKeys(keys)
    return this.#run(async () => {
      if (this.#needsRepair) await this.#repair()
      return keys.map((k) => this.#records.get(recordId(k.space, k.key))).filter((r) => r !== undefined).map(copyRecord)
    })
  }

  /** Closes the wal file; later calls reject with code `closed`. */
  close() {
    return this.#run(async () => {
      this.#closed = true
      await this.#wal?.close()
      this.#wal = null
    }, true)
  }

  /** Runs one operation after the previous ones, so concurrent callers never interleave. */
  #run(operation, closing = false) {
    const result = this.#queue.then(() => {
      if (this.#closed && !closing) throw new StoreError('closed', 'the store is closed')
      return operation()
    })
    this.#queue = result.catch(() => {})
    return result
  }

  /** Re-reads the files, cuts a torn wal tail, and reopens the wal for appending. */
  async #repair() {
    await this.#wal?.close().catch(() => {})
    this.#wal = null
    await this.#fs.mkdir(this.#dir, { recursive: true, mode: DIR_MODE })
    await this.#fs.rm(join(this.#dir, SNAPSHOT_TMP), { force: true })
    this.#records = await this.#read(true)
    this.#wal = await this.#fs.open(join(this.#dir, WAL), 'a', FILE_MODE)
    for (const name of [WAL, SNAPSHOT]) await narrow(this.#fs, join(this.#dir, name))
    this.#needsRepair = false
  }

  /** Reads snapshot and wal into a Map; with `repair`, truncates a torn tail and records sizes. */
  async #read(repair) {
    const records = new Map()
    const apply = (changes) => applyChanges(records, changes)
    const snapshot = await readOptional(this.#fs, join(this.#dir, SNAPSHOT))
    if (snapshot !== null) {
      const header = snapshot.subarray(0, SNAPSHOT_MAGIC.length)
      if (header.length !== SNAPSHOT_MAGIC.length || !header.every((b, i) => b === SNAPSHOT_MAGIC[i])) {
        throw new StoreError('corrupt', 'the snapshot file does not start with the walink header')
      }
      const { frames, torn } = readFrames(snapshot, SNAPSHOT_MAGIC.length)
      // A snapshot is renamed into place only once complete, so any damage is corruption.
      if (torn || frames.length !== 1) throw new StoreError('corrupt', 'the snapshot file is damaged')
      apply(frames[0])
    }
    const walPath = join(this.#dir, WAL)
    const wal = (await readOptional(this.#fs, walPath)) ?? new Uint8Array(0)
    const { frames, end, torn } = readFrames(wal)
    for (const changes of frames) apply(changes)
    if (repair) {
      if (torn) await this.#fs.truncate(walPath, end)
      this.#walSize = end
      this.#snapshotSize = snapshot?.length ?? 0
    }
    return records
  }

  /** After a failed append: cut the wal back to its last good size, or repair before the next use. */
  async #undoAppend() {
    try {
      await this.#wal.truncate(this.#walSize)
    } catch {
      this.#needsRepair = true
    }
  }

  /** Folds the wal into a new snapshot: write the temporary file, sync, rename, then empty the wal. */
  async #compact() {
    const frame = encodeFrame([...this.#records.values()].map((r) => ({ op: 'put', ...r })))
    const bytes = new Uint8Array(SNAPSHOT_MAGIC.length + frame.length)
    bytes.set(SNAPSHOT_MAGIC)
    bytes.set(frame, SNAPSHOT_MAGIC.length)
    const tmp = join(this.#dir, SNAPSHOT_TMP)
    try {
      const handle = await this.#fs.open(tmp, 'w', FILE_MODE)
      try {
        await writeAll(handle, bytes)
        if (this.#sync) await handle.sync()
      } finally {
        await handle.close()
      }
      await this.#fs.rename(tmp, join(this.#dir, SNAPSHOT))
      if (this.#sync) await syncDir(this.#fs, this.#dir)
      await this.#wal.truncate(0)
      if (this.#sync) await this.#wal.datasync()
    } catch (cause) {
      // The batch itself is durable; the store is consistent whichever step failed. Reread on next use.
      this.#needsRepair = true
      throw new StoreError('io', `compacting the store failed: ${cause?.message ?? cause}`, { cause })
    }
    this.#walSize = 0
    this.#snapshotSize = bytes.length
  }
}

function copyRecord(r) {
  return { space: r.space, key: r.key, value: r.value.slice() }
}

async function writeAll(handle, bytes) {
  let done = 0
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done)
    if (bytesWritten <= 0) throw new Error('the file system wrote nothing')
    done += bytesWritten
  }
}

async function readOptional(fs, path) {
  try {
    const buffer = await fs.readFile(path)
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)
  } catch (error) {
    if (error?.code === 'ENOENT') return null
    throw error
  }
}

/** Narrows a file an older version created readable by others to owner-only (POSIX). */
async function narrow(fs, path) {
  if (process.platform === 'win32') return
  try {
    const { mode } = await fs.stat(path)
    if (mode & 0o077) await fs.chmod(path, FILE_MODE)
  } catch (error) {
    if (error?.code !== 'ENOENT') throw error
  }
}

async function syncDir(fs, dir) {
  let handle
  try {
    handle = await fs.open(dir, 'r')
    await handle.sync()
  } catch (error) {
    // Some platforms (Windows) cannot open or sync a directory; the rename is still atomic there.
    if (!['EISDIR', 'EPERM', 'EINVAL', 'EACCES'].includes(error?.code)) throw error
  } finally {
    await handle?.close()
  }
}
