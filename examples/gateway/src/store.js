// walink's key records for one instance, in the gateway's database (SQLite or PostgreSQL): the
// npm package's `Store` contract (applyBatch, applyEvents, loadAll, loadSpaces, load, close) over
// the `records` table.
//
// One transaction per step of the client: `applyBatch(changes, { events })` writes the batch and
// hands the events the driver gave with it to the gateway (`onEvents(q, events)`: message rows,
// chats, the event log and the webhook outbox) in the same transaction; `applyEvents(events)` does
// the same for events no batch followed. Both resolve once the transaction is durable (SQLite:
// its group commit), and the driver sends nothing after an event before that.
//
// Fencing (several workers on PostgreSQL): a store made with a `lease` checks, in the same
// transaction and before any write, that the instance row still names this worker and the epoch
// (fencing token) the lease was granted with (`SELECT ... FOR NO KEY UPDATE`, so a takeover waits
// for a batch in flight, and a batch after a takeover re-reads the new row and finds nothing). A stale epoch, or a lease whose
// deadline passed on this process's monotonic clock, rejects with `fenced` and writes nothing.
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

const PUT = 'INSERT INTO records (instance_id, space, key, value) VALUES (?, ?, ?, ?) ON CONFLICT (instance_id, space, key) DO UPDATE SET value = excluded.value'

/** The most records one multi-row upsert writes (4 parameters each, far below both engines' limits). */
const PUT_ROWS = 256

/**
 * Writes `changes` (checked) of `instanceId` with `q` (a transaction). On SQLite (in process) one
 * statement per change. On PostgreSQL, where each statement is a round trip, the batch is folded
 * to its outcome first (the last change of a key wins; `deleteAll` drops what came before it) and
 * the puts go out as multi-row upserts: the same records result, in a few round trips.
 */
async function writeChanges(q, instanceId, changes, dialect) {
  if (dialect !== 'postgres') {
    for (const c of changes) {
      if (c.op === 'put') await q.run(PUT, instanceId, c.space, c.key, Buffer.from(c.value))
      else if (c.op === 'delete') await q.run('DELETE FROM records WHERE instance_id = ? AND space = ? AND key = ?', instanceId, c.space, c.key)
      else await q.run('DELETE FROM records WHERE instance_id = ?', instanceId)
    }
    return
  }
  let wipe = false
  const last = new Map() // `${space}\0${key}` -> the key's last change
  for (const c of changes) {
    if (c.op === 'deleteAll') {
      wipe = true
      last.clear()
    } else {
      const id = `${c.space}\0${c.key}`
      last.delete(id) // re-inserted: its position is its last change's
      last.set(id, c)
    }
  }
  if (wipe) await q.run('DELETE FROM records WHERE instance_id = ?', instanceId)
  const puts = []
  for (const c of last.values()) {
    if (c.op === 'delete') await q.run('DELETE FROM records WHERE instance_id = ? AND space = ? AND key = ?', instanceId, c.space, c.key)
    else puts.push(c)
  }
  for (let i = 0; i < puts.length; i += PUT_ROWS) {
    const rows = puts.slice(i, i + PUT_ROWS)
    const values = rows.map(() => '(?, ?, ?, ?)').join(', ')
    const args = rows.flatMap((c) => [instanceId, c.space, c.key, Buffer.from(c.value)])
    await q.run(`INSERT INTO records (instance_id, space, key, value) VALUES ${values} ON CONFLICT (instance_id, space, key) DO UPDATE SET value = excluded.value`, ...args)
  }
}

/**
 * Checks, inside transaction `q`, that `lease` still owns `instanceId` (see the top of the file);
 * throws `fenced` otherwise. Used for every write of an owned instance, key records or not.
 */
export async function checkLease(q, instanceId, lease) {
  if (!lease) return
  if (!lease.valid()) {
    lease.refused('deadline')
    throw new StoreError('fenced', `the lease of worker ${lease.workerId} on ${instanceId} has run out`)
  }
  // FOR NO KEY UPDATE, not FOR SHARE: the same transaction may update the row (the instance's
  // state), and two writers of one instance holding share locks would deadlock on that upgrade.
  // It conflicts with the takeover's UPDATE just the same (see the top of the file).
  const row = await q.get('SELECT 1 AS ok FROM instances WHERE id = ? AND owner = ? AND epoch = ? FOR NO KEY UPDATE', instanceId, lease.workerId, lease.epoch)
  if (!row) {
    lease.refused('epoch')
    throw new StoreError('fenced', `instance ${instanceId} is owned by another worker now (epoch ${lease.epoch} is stale)`)
  }
}

export class GatewayStore {
  #db
  #instance
  #lease
  #closed = false
  #failNext = false
  // The writes in flight, chained: overlapping calls apply in call order (the npm contract), which
  // a pool of PostgreSQL connections would not keep by itself.
  #writes = Promise.resolve()

  /**
   * @param {import('./db.js').SqliteDb | import('./db.js').PostgresDb} db
   * @param {string} instanceId
   * @param {{ lease?: { workerId: string, epoch: number, valid(): boolean, refused(by: string): void } }} [options]
   */
  constructor(db, instanceId, { lease = null } = {}) {
    this.#db = db
    this.#instance = instanceId
    this.#lease = lease
    /** The gateway's writer of the events of a step, run in the step's transaction. */
    this.onEvents = null
    /** Runs once the events of a step are durable. */
    this.afterEvents = null
  }

  get lease() {
    return this.#lease
  }

  /** The instance whose records these are. */
  get id() {
    return this.#instance
  }

  async applyBatch(changes, { events = [] } = {}) {
    this.#open()
    if (!Array.isArray(changes)) throw new StoreError('invalid_change', 'a batch must be an array of changes')
    const checked = changes.map(checkChange)
    await this.#step(checked, events)
  }

  async applyEvents(events) {
    this.#open()
    if (!events.length) return
    await this.#step([], events)
  }

  #step(changes, events) {
    const step = this.#writes.then(() => this.#transaction(changes, events))
    this.#writes = step.catch(() => {})
    return step
  }

  async #transaction(changes, events) {
    try {
      await this.#db.tx(async (q) => {
        await checkLease(q, this.#instance, this.#lease)
        if (this.#failNext && changes.length > 1) {
          await writeChanges(q, this.#instance, changes.slice(0, Math.floor(changes.length / 2)), this.#db.dialect)
          this.#failNext = false
          throw new Error('injected write failure')
        }
        await writeChanges(q, this.#instance, changes, this.#db.dialect)
        if (events.length && this.onEvents) await this.onEvents(q, events)
      })
    } catch (cause) {
      if (cause instanceof StoreError) throw cause
      throw new StoreError('io', `applying a batch failed: ${cause.message}`, { cause })
    }
    if (events.length) this.afterEvents?.(events)
  }

  async loadAll() {
    this.#open()
    return (await this.#db.all('SELECT space, key, value FROM records WHERE instance_id = ?', this.#instance)).map(toRecord)
  }

  async loadSpaces(spaces) {
    if (!Array.isArray(spaces) || spaces.some((s) => typeof s !== 'string')) throw new StoreError('invalid_key', 'loadSpaces needs an array of space names')
    this.#open()
    const out = []
    for (const space of new Set(spaces)) {
      for (const row of await this.#db.all('SELECT space, key, value FROM records WHERE instance_id = ? AND space = ?', this.#instance, space)) out.push(toRecord(row))
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
      const row = await this.#db.get('SELECT space, key, value FROM records WHERE instance_id = ? AND space = ? AND key = ?', this.#instance, k.space, k.key)
      if (row) out.push(toRecord(row))
    }
    return out
  }

  /** How many records the instance has (for status and the metrics). */
  async count() {
    return (await this.#db.get('SELECT count(*) AS n FROM records WHERE instance_id = ?', this.#instance)).n
  }

  async close() {
    this.#closed = true
  }

  /** The next batch of two or more changes fails half way (the conformance suite's faulty medium). */
  failNextWriteForTestingOnly() {
    this.#failNext = true
  }

  #open() {
    if (this.#closed || this.#db.closed) throw new StoreError('closed', 'the store is closed')
  }
}
