// walink's key records for one instance, in the gateway's SQLite database: the `Store` contract
// of the npm package (applyBatch, loadAll, loadSpaces, load, close) over the `records` table.
//
// Two commit modes:
// - `group` (what the gateway runs): a batch is written into the database's open transaction and
//   commits with it: at the end of the event-loop turn, or before the next byte reaches the socket
//   (the gateway's socket calls `db.commit()` first), so the chat rows, messages and webhook
//   outbox entries written from the events of the same turn commit in the same transaction;
// - `batch`: every batch commits before applyBatch resolves (the npm contract to the letter).
import { StoreError } from 'walink'

const MAX_SPACE = 64
const MAX_KEY = 1024

/** Validates one change like the package's own stores; returns it in normal form. */
function checkChange(change, index) {
  const where = `change ${index}`
  if (change === null || typeof change !== 'object') throw new StoreError('invalid_change', `${where}: not an object`)
  const { op, space, key } = change
  if (op === 'deleteAll') return { op }
  if (typeof space !== 'string' || space.length === 0 || space.includes('\0') || space.length > MAX_SPACE) {
    throw new StoreError('invalid_change', `${where}: space must be a non-empty string without NUL`)
  }
  if (typeof key !== 'string' || key.length > MAX_KEY) throw new StoreError('invalid_change', `${where}: key must be a string`)
  if (op === 'put') {
    if (!(change.value instanceof Uint8Array)) throw new StoreError('invalid_change', `${where}: value of a put must be a Uint8Array`)
    return { op, space, key, value: change.value }
  }
  if (op === 'delete') return { op, space, key }
  throw new StoreError('invalid_change', `${where}: op must be "put", "delete" or "deleteAll", not ${JSON.stringify(op)}`)
}

const toRecord = (row) => ({ space: row.space, key: row.key, value: new Uint8Array(row.value.buffer, row.value.byteOffset, row.value.byteLength).slice() })

export class SqliteStore {
  #db
  #instance
  #mode
  #closed = false
  #failNext = false

  /**
   * @param {import('./db.js').Db} db
   * @param {string} instanceId
   * @param {{ mode?: 'group' | 'batch' }} [options]
   */
  constructor(db, instanceId, { mode = 'group' } = {}) {
    this.#db = db
    this.#instance = instanceId
    this.#mode = mode
  }

  async applyBatch(changes) {
    this.#open()
    if (!Array.isArray(changes)) throw new StoreError('invalid_change', 'a batch must be an array of changes')
    const checked = changes.map(checkChange)
    const db = this.#db
    try {
      db.write(() => {
        for (const [index, c] of checked.entries()) {
          if (this.#failNext && index === Math.floor(checked.length / 2)) {
            this.#failNext = false
            throw new Error('injected write failure')
          }
          if (c.op === 'put') db.prepare('INSERT OR REPLACE INTO records (instance_id, space, key, value) VALUES (?, ?, ?, ?)').run(this.#instance, c.space, c.key, Buffer.from(c.value))
          else if (c.op === 'delete') db.prepare('DELETE FROM records WHERE instance_id = ? AND space = ? AND key = ?').run(this.#instance, c.space, c.key)
          else db.prepare('DELETE FROM records WHERE instance_id = ?').run(this.#instance)
        }
      })
      if (this.#mode === 'batch') db.commit()
    } catch (cause) {
      throw new StoreError('io', `applying a batch failed: ${cause.message}`, { cause })
    }
  }

  async loadAll() {
    this.#open()
    return this.#db.all('SELECT space, key, value FROM records WHERE instance_id = ?', this.#instance).map(toRecord)
  }

  async loadSpaces(spaces) {
    if (!Array.isArray(spaces) || spaces.some((s) => typeof s !== 'string')) throw new StoreError('invalid_key', 'loadSpaces needs an array of space names')
    this.#open()
    const out = []
    for (const space of new Set(spaces)) {
      for (const row of this.#db.all('SELECT space, key, value FROM records WHERE instance_id = ? AND space = ?', this.#instance, space)) out.push(toRecord(row))
    }
    return out
  }

  async load(keys) {
    if (!Array.isArray(keys)) throw new StoreError('invalid_key', 'load needs an array of { space, key }')
    for (const [index, k] of keys.entries()) {
      if (k === null || typeof k !== 'object' || typeof k.space !== 'string' || typeof k.key !== 'string') {
        throw new StoreError('invalid_key', `key ${index}: not a { space, key } of strings`)
      }
    }
    this.#open()
    const out = []
    for (const k of keys) {
      const row = this.#db.get('SELECT space, key, value FROM records WHERE instance_id = ? AND space = ? AND key = ?', this.#instance, k.space, k.key)
      if (row) out.push(toRecord(row))
    }
    return out
  }

  /** How many records the instance has (for status and the metrics). */
  count() {
    return this.#db.get('SELECT count(*) AS n FROM records WHERE instance_id = ?', this.#instance).n
  }

  async close() {
    this.#closed = true
  }

  /** The next batch fails half way (the conformance suite's faulty medium). */
  failNextWriteForTestingOnly() {
    this.#failNext = true
  }

  #open() {
    if (this.#closed || this.#db.closed) throw new StoreError('closed', 'the store is closed')
  }
}
