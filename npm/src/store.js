// The storage contract between the driver and a host's store, and the in-memory store.
//
// A store holds opaque records `{ space, key, value }` and applies batches of changes atomically:
// after `applyBatch(changes)` resolves, every change of the batch is visible to `loadAll()` (and
// survives a crash, for a durable store); if it rejects, none of them is. The driver applies each
// batch the core asks for before it carries out any later output, so a crash at any point leaves
// a store that a fresh client can be rebuilt from.

/** The error every store throws for a change it cannot take: `code` says why. */
export class StoreError extends Error {
  /**
   * @param {string} code a stable, machine-readable reason (`invalid_change`, `closed`, ...)
   * @param {string} message a human-readable description
   * @param {{ cause?: unknown }} [options]
   */
  constructor(code, message, options) {
    super(message, options)
    this.name = 'StoreError'
    this.code = code
  }
}

/**
 * Checks one change and returns it in normal form (`{ op, space, key, value? }`), or throws a
 * `StoreError` with code `invalid_change`. Every store validates a whole batch before it applies
 * any of it, so a malformed change never leaves half a batch behind.
 */
export function checkChange(change, index = 0) {
  const where = `change ${index}`
  if (change === null || typeof change !== 'object') {
    throw new StoreError('invalid_change', `${where}: not an object`)
  }
  const { op, space, key } = change
  if (op === 'deleteAll') return { op }
  if (typeof space !== 'string' || space.length === 0 || space.includes('\0')) {
    throw new StoreError('invalid_change', `${where}: space must be a non-empty string without NUL`)
  }
  if (typeof key !== 'string') {
    throw new StoreError('invalid_change', `${where}: key must be a string`)
  }
  if (op === 'put') {
    if (!(change.value instanceof Uint8Array)) {
      throw new StoreError('invalid_change', `${where}: value of a put must be a Uint8Array`)
    }
    return { op, space, key, value: change.value }
  }
  if (op === 'delete') return { op, space, key }
  throw new StoreError('invalid_change', `${where}: op must be "put", "delete" or "deleteAll", not ${JSON.stringify(op)}`)
}

/** Checks a whole batch (an array of changes) and returns the changes in normal form. */
export function checkBatch(changes) {
  if (!Array.isArray(changes)) throw new StoreError('invalid_change', 'a batch must be an array of changes')
  return changes.map(checkChange)
}

/** Checks the keys of a `load` call: an array of `{ space, key }`. */
export function checkKeys(keys) {
  if (!Array.isArray(keys)) throw new StoreError('invalid_key', 'load needs an array of { space, key }')
  for (const [index, k] of keys.entries()) {
    if (k === null || typeof k !== 'object' || typeof k.space !== 'string' || typeof k.key !== 'string') {
      throw new StoreError('invalid_key', `key ${index}: not a { space, key } of strings`)
    }
  }
  return keys
}

/** Checks the spaces of a `loadSpaces` call: an array of strings. */
export function checkSpaces(spaces) {
  if (!Array.isArray(spaces) || spaces.some((s) => typeof s !== 'string')) {
    throw new StoreError('invalid_key', 'loadSpaces needs an array of space names')
  }
  return spaces
}

/** Applies checked changes to a Map of records keyed by `recordId` (the stores' shared semantics). */
export function applyChanges(records, changes, copy = (value) => value) {
  for (const c of changes) {
    if (c.op === 'put') records.set(recordId(c.space, c.key), { space: c.space, key: c.key, value: copy(c.value) })
    else if (c.op === 'delete') records.delete(recordId(c.space, c.key))
    else records.clear()
  }
}

/** The map key of a record: space and key cannot collide because a space holds no NUL. */
export function recordId(space, key) {
  return `${space}\0${key}`
}

/**
 * A store that keeps the records in a Map: for tests, short-lived clients and hosts that persist
 * elsewhere. Values are copied on the way in and out, so callers may reuse their buffers.
 */
export class MemoryStore {
  #records = new Map()
  #closed = false

  /** Applies the changes in order, all or none (the batch is checked before anything changes). */
  async applyBatch(changes) {
    this.#open()
    applyChanges(this.#records, checkBatch(changes), (value) => value.slice())
  }

  /** The records under `keys` that exist. */
  async load(keys) {
    this.#open()
    return checkKeys(keys)
      .map((k) => this.#records.get(recordId(k.space, k.key)))
      .filter((r) => r !== undefined)
      .map((r) => ({ space: r.space, key: r.key, value: r.value.slice() }))
  }

  /** Every record of the given spaces, in no particular order. */
  async loadSpaces(spaces) {
    const wanted = new Set(checkSpaces(spaces))
    this.#open()
    return [...this.#records.values()]
      .filter((r) => wanted.has(r.space))
      .map((r) => ({ space: r.space, key: r.key, value: r.value.slice() }))
  }

  /** Every record, in no particular order. */
  async loadAll() {
    this.#open()
    return [...this.#records.values()].map((r) => ({ space: r.space, key: r.key, value: r.value.slice() }))
  }

  /** How many records the store holds. */
  get size() {
    return this.#records.size
  }

  /** Marks the store closed; later calls reject with code `closed`. */
  async close() {
    this.#closed = true
  }

  #open() {
    if (this.#closed) throw new StoreError('closed', 'the store is closed')
  }
}
