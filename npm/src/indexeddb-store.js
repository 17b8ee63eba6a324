// A durable store for browsers (pages, extensions, workers): one IndexedDB database per client,
// one object store of records keyed by [space, key], and one readwrite transaction per batch, so
// IndexedDB itself makes each batch atomic and durable.

import { StoreError, checkBatch, checkKeys, checkSpaces } from './store.js'

const OBJECT_STORE = 'records'
const VERSION = 1

/** A store in an IndexedDB database. */
export class IndexedDBStore {
  #db
  #keyRange
  #closed = false

  /**
   * Opens (creating it if needed) the database `name`. `options.indexedDB` is the IDBFactory to
   * use (default: the global `indexedDB`), `options.IDBKeyRange` its key range class (default: the
   * global `IDBKeyRange`).
   */
  static async open(name, options = {}) {
    const factory = options.indexedDB ?? globalThis.indexedDB
    if (!factory) throw new StoreError('unavailable', 'IndexedDB is not available here')
    const db = await new Promise((resolve, reject) => {
      const request = factory.open(name, VERSION)
      request.onupgradeneeded = () => {
        const db = request.result
        if (!db.objectStoreNames.contains(OBJECT_STORE)) db.createObjectStore(OBJECT_STORE, { keyPath: ['space', 'key'] })
      }
      request.onsuccess = () => resolve(request.result)
      request.onerror = () => reject(idbError('opening the database', request.error))
      request.onblocked = () => reject(new StoreError('blocked', `database ${name} is held open at an older version`))
    })
    return new IndexedDBStore(db, options.IDBKeyRange ?? globalThis.IDBKeyRange)
  }

  /** Deletes the database `name` (for tests and logout). */
  static deleteDatabase(name, options = {}) {
    const factory = options.indexedDB ?? globalThis.indexedDB
    return new Promise((resolve, reject) => {
      const request = factory.deleteDatabase(name)
      request.onsuccess = () => resolve()
      request.onerror = () => reject(idbError('deleting the database', request.error))
    })
  }

  constructor(db, keyRange) {
    this.#db = db
    this.#keyRange = keyRange
  }

  /** Applies the batch in one transaction; resolves when the transaction has committed. */
  async applyBatch(changes) {
    const checked = checkBatch(changes)
    this.#open()
    if (checked.length === 0) return
    await new Promise((resolve, reject) => {
      let tx
      try {
        tx = this.#db.transaction(OBJECT_STORE, 'readwrite', { durability: 'strict' })
        const store = tx.objectStore(OBJECT_STORE)
        for (const c of checked) {
          if (c.op === 'put') store.put({ space: c.space, key: c.key, value: c.value.slice() })
          else if (c.op === 'delete') store.delete([c.space, c.key])
          else store.clear()
        }
      } catch (error) {
        tx?.abort()
        reject(idbError('writing the batch', error))
        return
      }
      tx.oncomplete = () => resolve()
      tx.onerror = () => reject(idbError('writing the batch', tx.error))
      tx.onabort = () => reject(idbError('writing the batch (aborted)', tx.error))
    })
  }

  /** Every record, read in one transaction. */
  async loadAll() {
    this.#open()
    return new Promise((resolve, reject) => {
      const tx = this.#db.transaction(OBJECT_STORE, 'readonly')
      const request = tx.objectStore(OBJECT_STORE).getAll()
      request.onsuccess = () =>
        resolve(request.result.map((r) => ({ space: r.space, key: r.key, value: new Uint8Array(r.value) })))
      request.onerror = () => reject(idbError('reading the records', request.error))
    })
  }

  /**
   * Every record of the given spaces, read in one transaction: a key range per space over the
   * `[space, key]` primary keys (`[space]` sorts before every `[space, key]`, an array after every
   * string key), so other spaces are never read.
   */
  async loadSpaces(spaces) {
    checkSpaces(spaces)
    this.#open()
    if (spaces.length === 0) return []
    return new Promise((resolve, reject) => {
      const tx = this.#db.transaction(OBJECT_STORE, 'readonly')
      const store = tx.objectStore(OBJECT_STORE)
      const found = []
      if (this.#keyRange) {
        for (const space of new Set(spaces)) {
          const request = store.getAll(this.#keyRange.bound([space], [space, []]))
          request.onsuccess = () => found.push(...request.result)
        }
      } else {
        // No key range class (an IDBFactory given without one): read all and filter.
        const wanted = new Set(spaces)
        const request = store.getAll()
        request.onsuccess = () => found.push(...request.result.filter((r) => wanted.has(r.space)))
      }
      tx.oncomplete = () => resolve(found.map((r) => ({ space: r.space, key: r.key, value: new Uint8Array(r.value) })))
      tx.onerror = () => reject(idbError('reading the records', tx.error))
      tx.onabort = () => reject(idbError('reading the records (aborted)', tx.error))
    })
  }

  /** The records under `keys` that exist, read in one transaction. */
  async load(keys) {
    checkKeys(keys)
    this.#open()
    if (keys.length === 0) return []
    return new Promise((resolve, reject) => {
      const tx = this.#db.transaction(OBJECT_STORE, 'readonly')
      const store = tx.objectStore(OBJECT_STORE)
      const found = new Array(keys.length)
      keys.forEach((k, i) => {
        const request = store.get([k.space, k.key])
        request.onsuccess = () => (found[i] = request.result)
      })
      tx.oncomplete = () =>
        resolve(found.filter((r) => r !== undefined).map((r) => ({ space: r.space, key: r.key, value: new Uint8Array(r.value) })))
      tx.onerror = () => reject(idbError('reading the records', tx.error))
      tx.onabort = () => reject(idbError('reading the records (aborted)', tx.error))
    })
  }

  /** Closes the database connection; later calls reject with code `closed`. */
  async close() {
    this.#closed = true
    this.#db.close()
  }

  #open() {
    if (this.#closed) throw new StoreError('closed', 'the store is closed')
  }
}

function idbError(what, cause) {
  return new StoreError('io', `IndexedDB: ${what} failed: ${cause?.message ?? cause}`, { cause })
}
