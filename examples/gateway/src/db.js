// The gateway's one database, behind one small async interface for both engines:
// - SQLite (better-sqlite3), embedded, the default: one process owns the file (the lock is held for
//   the life of the process, so a second gateway on the same file refuses to start);
// - PostgreSQL (`pg`), chosen with one setting (a postgres:// URL): several gateway workers share
//   it (src/cluster.js).
//
// The interface: `get(sql, ...args)`, `all(...)`, `run(...)` (→ `{ changes, rows }`) and
// `tx(async (q) => ...)`, which runs the function in one transaction (`q` has the same three
// methods, and `q.onCommit(callback)`) and resolves once the transaction is durable. SQL is written
// once, with `?` placeholders, in the subset both engines take; `RETURNING`, `ON CONFLICT` and
// partial indexes included.
//
// SQLite group commit: transactions run one at a time (a savepoint each, inside one open
// transaction), and the open transaction commits at the end of the event-loop turn, so many
// instances' key batches share one fsync; `tx` resolves only after that commit. Reads outside a
// transaction see the open transaction's writes (one connection); nothing leaves the process
// before its transaction resolved.
import Database from 'better-sqlite3'

/**
 * The schema, written once for both engines: `{int64}` (times in milliseconds, counters: INTEGER / BIGINT), `{bytes}`
 * (BLOB / BYTEA), `{serial}` (an ascending key: AUTOINCREMENT / BIGSERIAL) and `{keyed}` (a table
 * read by its primary key: WITHOUT ROWID on SQLite) are filled in by `schemaFor`.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS instances (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  token_hash {bytes} NOT NULL,
  created_at {int64} NOT NULL,
  deleted_at {int64},
  state TEXT NOT NULL,
  reason TEXT NOT NULL,
  state_at {int64} NOT NULL,
  jid TEXT,
  lid TEXT,
  platform TEXT,
  autostart INTEGER NOT NULL DEFAULT 0,
  settings TEXT NOT NULL,
  proxy TEXT,
  history TEXT NOT NULL DEFAULT '{"mode":"none"}',
  owner TEXT,
  epoch {int64} NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS instances_live_name ON instances(name) WHERE deleted_at IS NULL;
CREATE TABLE IF NOT EXISTS records (
  instance_id TEXT NOT NULL,
  space TEXT NOT NULL,
  key TEXT NOT NULL,
  value {bytes} NOT NULL,
  PRIMARY KEY (instance_id, space, key)
){keyed};
CREATE TABLE IF NOT EXISTS chats (
  instance_id TEXT NOT NULL,
  jid TEXT NOT NULL,
  muted_until {int64},
  pinned_at {int64},
  archived INTEGER NOT NULL DEFAULT 0,
  marked_unread INTEGER NOT NULL DEFAULT 0,
  labels TEXT NOT NULL DEFAULT '[]',
  last_message_at {int64},
  unread INTEGER NOT NULL DEFAULT 0,
  updated_at {int64} NOT NULL,
  PRIMARY KEY (instance_id, jid)
){keyed};
CREATE TABLE IF NOT EXISTS contacts (
  instance_id TEXT NOT NULL,
  jid TEXT NOT NULL,
  full_name TEXT,
  first_name TEXT,
  updated_at {int64} NOT NULL,
  PRIMARY KEY (instance_id, jid)
){keyed};
CREATE TABLE IF NOT EXISTS labels (
  instance_id TEXT NOT NULL,
  label_id TEXT NOT NULL,
  name TEXT NOT NULL,
  color INTEGER NOT NULL,
  deleted INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (instance_id, label_id)
){keyed};
CREATE TABLE IF NOT EXISTS messages (
  instance_id TEXT NOT NULL,
  chat TEXT NOT NULL,
  id TEXT NOT NULL,
  from_me INTEGER NOT NULL,
  sender TEXT,
  timestamp {int64} NOT NULL,
  text TEXT,
  status TEXT NOT NULL,
  PRIMARY KEY (instance_id, chat, id, from_me)
){keyed};
CREATE INDEX IF NOT EXISTS messages_recent ON messages(instance_id, timestamp);
CREATE TABLE IF NOT EXISTS sent_media (
  instance_id TEXT NOT NULL,
  chat TEXT NOT NULL,
  id TEXT NOT NULL,
  mimetype TEXT NOT NULL,
  file_name TEXT,
  caption TEXT,
  data {bytes} NOT NULL,
  created_at {int64} NOT NULL,
  PRIMARY KEY (instance_id, chat, id)
){keyed};
CREATE INDEX IF NOT EXISTS sent_media_age ON sent_media(created_at);
CREATE TABLE IF NOT EXISTS events (
  seq {serial},
  id TEXT NOT NULL UNIQUE,
  instance_id TEXT,
  type TEXT NOT NULL,
  at {int64} NOT NULL,
  data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS webhooks (
  id TEXT PRIMARY KEY,
  instance_id TEXT NOT NULL,
  url TEXT NOT NULL,
  format TEXT NOT NULL,
  events TEXT NOT NULL,
  headers TEXT NOT NULL,
  secret TEXT NOT NULL,
  enabled INTEGER NOT NULL,
  by_events INTEGER NOT NULL DEFAULT 0,
  created_at {int64} NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
  id {serial},
  event_seq {int64} NOT NULL,
  webhook_id TEXT NOT NULL,
  host TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at {int64} NOT NULL,
  last_status INTEGER,
  last_error TEXT,
  kind TEXT NOT NULL,
  updated_at {int64} NOT NULL,
  locked_until {int64},
  locked_by TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(status, next_at);
CREATE INDEX IF NOT EXISTS deliveries_webhook ON deliveries(webhook_id, id);
`

/** Columns added after the first release of the schema: added to an older database on open. */
const ADDED_COLUMNS = [
  ['instances', 'owner', 'TEXT'],
  ['instances', 'epoch', '{int64} NOT NULL DEFAULT 0'],
  ['deliveries', 'locked_until', '{int64}'],
  ['deliveries', 'locked_by', 'TEXT'],
  ['messages', 'message_type', 'TEXT'],
  ['messages', 'media_content', '{bytes}'],
  ['webhooks', 'base64', 'INTEGER NOT NULL DEFAULT 0'],
]

const TYPES = {
  sqlite: { int64: 'INTEGER', bytes: 'BLOB', serial: 'INTEGER PRIMARY KEY AUTOINCREMENT', keyed: ' WITHOUT ROWID' },
  postgres: { int64: 'BIGINT', bytes: 'BYTEA', serial: 'BIGSERIAL PRIMARY KEY', keyed: '' },
}

/** `text` with the schema's placeholders filled in for `dialect`. */
const schemaFor = (dialect, text) => text.replace(/\{(int64|bytes|serial|keyed)\}/g, (_, name) => TYPES[dialect][name])

/** PostgreSQL only: the workers' leases (src/cluster.js) and the owner index. */
const POSTGRES_SCHEMA = `${schemaFor('postgres', SCHEMA)}
CREATE TABLE IF NOT EXISTS workers (
  id TEXT PRIMARY KEY,
  addr TEXT NOT NULL,
  started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS instances_owner ON instances(owner);
${ADDED_COLUMNS.map(([table, column, type]) => `ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS ${column} ${schemaFor('postgres', type)};`).join('\n')}
`

/** An error of the database layer with a stable code (`closed`, `locked`, `commit_failed`). */
export class DbError extends Error {
  constructor(code, message, options) {
    super(message, options)
    this.code = code
  }
}

/** True for a `postgres://` or `postgresql://` URL. */
export const isPostgresUrl = (value) => /^postgres(ql)?:\/\//.test(String(value ?? ''))

/**
 * Opens the database `location` names: a postgres:// URL, or a SQLite file path (`:memory:` for
 * tests). Resolves with a `SqliteDb` or a `PostgresDb`.
 */
export async function openDatabase(location, options = {}) {
  if (isPostgresUrl(location)) return PostgresDb.open(location, options)
  return SqliteDb.open(location)
}

/** One waiting line: `run(fn)` runs fn after every earlier fn settled. */
class Mutex {
  #tail = Promise.resolve()
  #held = 0

  get held() {
    return this.#held > 0
  }

  run(fn) {
    const result = this.#tail.then(async () => {
      this.#held++
      try {
        return await fn()
      } finally {
        this.#held--
      }
    })
    this.#tail = result.catch(() => {})
    return result
  }
}

/** SQLite with group commit (see the top of this file). */
export class SqliteDb {
  dialect = 'sqlite'
  #statements = new Map()
  #mutex = new Mutex()
  #group = null // { promise, resolve, reject, callbacks }
  #savepoints = 0

  static open(path) {
    const sql = new Database(path, { timeout: 0 })
    try {
      // One process per file: the lock taken by the first write below is held until close, so a
      // second gateway on the same file fails here instead of writing over the first one's keys.
      sql.pragma('locking_mode = EXCLUSIVE')
      sql.pragma('journal_mode = WAL')
      sql.exec('BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID; COMMIT')
    } catch (cause) {
      sql.close()
      if (/locked|busy/i.test(cause.message)) throw new DbError('locked', `${path} is in use by another process (one gateway process per SQLite file; use PostgreSQL for several workers)`, { cause })
      throw cause
    }
    // FULL: a commit survives a power cut, not only a process crash.
    sql.pragma('synchronous = FULL')
    sql.exec(schemaFor('sqlite', SCHEMA))
    for (const [table, column, type] of ADDED_COLUMNS) {
      const columns = sql.prepare(`PRAGMA table_info(${table})`).all().map((c) => c.name)
      if (!columns.includes(column)) sql.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${schemaFor('sqlite', type)}`)
    }
    return new SqliteDb(sql)
  }

  constructor(sql) {
    this.sql = sql
    this.closed = false
  }

  #prepare(text) {
    if (this.closed) throw new DbError('closed', 'the database is closed')
    let statement = this.#statements.get(text)
    if (!statement) {
      statement = this.sql.prepare(text)
      this.#statements.set(text, statement)
    }
    return statement
  }

  #get(text, args) {
    return this.#prepare(text).get(...args)
  }

  #all(text, args) {
    const statement = this.#prepare(text)
    return statement.reader ? statement.all(...args) : (statement.run(...args), [])
  }

  #run(text, args) {
    const statement = this.#prepare(text)
    if (statement.reader) {
      const rows = statement.all(...args)
      return { changes: rows.length, rows }
    }
    const { changes } = statement.run(...args)
    return { changes, rows: [] }
  }

  async get(text, ...args) {
    return this.#get(text, args)
  }

  async all(text, ...args) {
    return this.#all(text, args)
  }

  /** A write outside any caller's transaction: a transaction of its own. */
  async run(text, ...args) {
    return this.tx((q) => q.run(text, ...args))
  }

  /** Runs `fn(q)` as one transaction (all of it or none); resolves with its result once durable. */
  async tx(fn) {
    const callbacks = []
    const { result, group } = await this.#mutex.run(async () => {
      if (this.closed) throw new DbError('closed', 'the database is closed')
      if (!this.sql.inTransaction) this.#begin()
      const group = this.#group
      const name = `tx${++this.#savepoints}`
      this.sql.exec(`SAVEPOINT ${name}`)
      const q = {
        get: async (text, ...args) => this.#get(text, args),
        all: async (text, ...args) => this.#all(text, args),
        run: async (text, ...args) => this.#run(text, args),
        onCommit: (callback) => callbacks.push(callback),
      }
      try {
        const result = await fn(q)
        this.sql.exec(`RELEASE ${name}`)
        group.callbacks.push(...callbacks)
        return { result, group }
      } catch (error) {
        if (this.sql.inTransaction) {
          this.sql.exec(`ROLLBACK TO ${name}`)
          this.sql.exec(`RELEASE ${name}`)
        }
        throw error
      }
    })
    await group.promise
    return result
  }

  #begin() {
    this.sql.exec('BEGIN IMMEDIATE')
    let resolve
    let reject
    const promise = new Promise((res, rej) => {
      resolve = res
      reject = rej
    })
    promise.catch(() => {})
    this.#group = { promise, resolve, reject, callbacks: [] }
    setImmediate(() => this.#mutex.run(async () => this.#commit()))
  }

  /** Commits the open group; every transaction in it resolves, or all reject with `commit_failed`. */
  #commit() {
    const group = this.#group
    if (!group || !this.sql.inTransaction) return
    this.#group = null
    try {
      this.sql.exec('COMMIT')
    } catch (cause) {
      try {
        if (this.sql.inTransaction) this.sql.exec('ROLLBACK')
      } catch {
        // a failed rollback leaves the connection to be closed; the waiters hear of the commit
      }
      group.reject(new DbError('commit_failed', `commit failed: ${cause.message}`, { cause }))
      return
    }
    group.resolve()
    for (const callback of group.callbacks) callback()
  }

  /** Commits what is open now and waits for it (tests, shutdown). */
  async flush() {
    await this.#mutex.run(async () => this.#commit())
  }

  async close() {
    if (this.closed) return
    await this.flush()
    this.closed = true
    this.sql.close()
  }

  /** Drops the connection without committing: what a crash does (tests only). */
  crashForTestingOnly() {
    const group = this.#group
    this.#group = null
    this.closed = true
    this.sql.close()
    group?.reject(new DbError('closed', 'the database was dropped'))
  }
}

/** `?` placeholders → `$1, $2, ...` (the gateway's SQL has no `?` inside string literals). */
function numbered(text) {
  let n = 0
  return text.replace(/\?/g, () => `$${++n}`)
}

/** PostgreSQL through a `pg` pool; every transaction on one pooled connection. */
export class PostgresDb {
  dialect = 'postgres'
  #pg

  /**
   * `idleInTransactionMs`: the server ends a session that sits inside a transaction that long, so a
   * stalled worker (a pause, a stopped process) cannot keep row locks, and with them a takeover,
   * waiting past its lease.
   */
  static async open(url, { max = 16, statementTimeoutMs = 10_000, idleInTransactionMs = 2000 } = {}) {
    const pg = (await import('pg')).default
    // BIGINT (milliseconds, counts) as JavaScript numbers: every value the gateway stores fits.
    const types = { getTypeParser: (oid, format) => (oid === 20 ? (value) => (value === null ? null : Number(value)) : pg.types.getTypeParser(oid, format)) }
    const pool = new pg.Pool({
      connectionString: url,
      max,
      types,
      connectionTimeoutMillis: 5000,
      statement_timeout: statementTimeoutMs,
      query_timeout: statementTimeoutMs + 1000,
      idle_in_transaction_session_timeout: idleInTransactionMs,
      keepAlive: true,
    })
    // A pooled connection that breaks (the server restarted) is dropped by the pool; its error
    // must not end the process.
    pool.on('error', () => {})
    const db = new PostgresDb(pool, pg, url, types)
    await db.#migrate()
    return db
  }

  constructor(pool, pg, url, types) {
    this.pool = pool
    this.#pg = pg
    this.url = url
    this.types = types
    this.closed = false
  }

  async #migrate() {
    const client = await this.pool.connect()
    try {
      // One migrating worker at a time (CREATE ... IF NOT EXISTS races with itself otherwise).
      await client.query('SELECT pg_advisory_lock(7235471)')
      await client.query(POSTGRES_SCHEMA)
    } finally {
      await client.query('SELECT pg_advisory_unlock(7235471)').catch(() => {})
      client.release()
    }
  }

  #check() {
    if (this.closed) throw new DbError('closed', 'the database is closed')
  }

  async get(text, ...args) {
    this.#check()
    return (await this.pool.query(numbered(text), args)).rows[0]
  }

  async all(text, ...args) {
    this.#check()
    return (await this.pool.query(numbered(text), args)).rows
  }

  async run(text, ...args) {
    this.#check()
    const result = await this.pool.query(numbered(text), args)
    return { changes: result.rowCount ?? 0, rows: result.rows }
  }

  /**
   * Runs `fn(q)` in one transaction on one connection; resolves with its result after COMMIT. A
   * transaction the server chose as a deadlock victim runs again (at most twice more).
   */
  async tx(fn) {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#tx(fn)
      } catch (error) {
        if (error?.code !== '40P01' || attempt >= 3) throw error
      }
    }
  }

  async #tx(fn) {
    this.#check()
    const client = await this.pool.connect()
    const callbacks = []
    let broken = false
    // The server may end the session under us (idle in transaction too long, a restart): the
    // query in flight rejects; the client's error event must not end the process.
    const onError = () => {
      broken = true
    }
    client.on('error', onError)
    try {
      await client.query('BEGIN')
      const beforeCommit = []
      const q = {
        get: async (text, ...args) => (await client.query(numbered(text), args)).rows[0],
        all: async (text, ...args) => (await client.query(numbered(text), args)).rows,
        run: async (text, ...args) => {
          const result = await client.query(numbered(text), args)
          return { changes: result.rowCount ?? 0, rows: result.rows }
        },
        onCommit: (callback) => callbacks.push(callback),
        /** Runs `callback(q)` once `fn` is done, inside the transaction, before COMMIT (PostgreSQL only). */
        beforeCommit: (callback) => beforeCommit.push(callback),
      }
      let result
      try {
        result = await fn(q)
        for (const callback of beforeCommit) await callback(q)
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {
          broken = true
        })
        throw error
      }
      try {
        await client.query('COMMIT')
      } catch (cause) {
        broken = true
        throw new DbError('commit_failed', `commit failed: ${cause.message}`, { cause })
      }
      for (const callback of callbacks) callback()
      return result
    } finally {
      client.off('error', onError)
      client.release(broken)
    }
  }

  /** A dedicated connection (LISTEN), outside the pool. */
  async connection() {
    const client = new this.#pg.Client({ connectionString: this.url, types: this.types, connectionTimeoutMillis: 5000, keepAlive: true })
    await client.connect()
    return client
  }

  async flush() {}

  async close() {
    if (this.closed) return
    this.closed = true
    await this.pool.end().catch(() => {})
  }
}
