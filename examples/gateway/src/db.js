// The gateway's one store: an embedded SQLite database (better-sqlite3) holding the instance rows,
// walink's key records, chats, contacts, labels, messages, the event log and the webhook outbox.
//
// Group commit. Every write runs inside one open transaction (`write(fn)`: a savepoint inside it,
// so a write that throws leaves nothing behind). The transaction commits at the end of the
// current event-loop turn, or earlier when `commit()` is called: before any byte is written to a
// WhatsApp socket, before an HTTP answer, before a webhook or a stream event leaves. A key batch
// and the events the client produced right after it (the driver hands them to `onEvent` in the
// same turn) therefore commit together, and a crash at any point loses only what nobody outside
// the process has seen. Listeners registered with `afterCommit` run once their writes are durable.
import Database from 'better-sqlite3'

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS instances (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  token_hash BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  deleted_at INTEGER,
  state TEXT NOT NULL,
  reason TEXT NOT NULL,
  state_at INTEGER NOT NULL,
  jid TEXT,
  lid TEXT,
  platform TEXT,
  autostart INTEGER NOT NULL DEFAULT 0,
  settings TEXT NOT NULL,
  proxy TEXT,
  history TEXT NOT NULL DEFAULT '{"mode":"none"}'
);
CREATE UNIQUE INDEX IF NOT EXISTS instances_live_name ON instances(name) WHERE deleted_at IS NULL;
CREATE TABLE IF NOT EXISTS records (
  instance_id TEXT NOT NULL,
  space TEXT NOT NULL,
  key TEXT NOT NULL,
  value BLOB NOT NULL,
  PRIMARY KEY (instance_id, space, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS chats (
  instance_id TEXT NOT NULL,
  jid TEXT NOT NULL,
  muted_until INTEGER,
  pinned_at INTEGER,
  archived INTEGER NOT NULL DEFAULT 0,
  marked_unread INTEGER NOT NULL DEFAULT 0,
  labels TEXT NOT NULL DEFAULT '[]',
  last_message_at INTEGER,
  unread INTEGER NOT NULL DEFAULT 0,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (instance_id, jid)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS contacts (
  instance_id TEXT NOT NULL,
  jid TEXT NOT NULL,
  full_name TEXT,
  first_name TEXT,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (instance_id, jid)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS labels (
  instance_id TEXT NOT NULL,
  label_id TEXT NOT NULL,
  name TEXT NOT NULL,
  color INTEGER NOT NULL,
  deleted INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (instance_id, label_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
  instance_id TEXT NOT NULL,
  chat TEXT NOT NULL,
  id TEXT NOT NULL,
  from_me INTEGER NOT NULL,
  sender TEXT,
  timestamp INTEGER NOT NULL,
  text TEXT,
  status TEXT NOT NULL,
  PRIMARY KEY (instance_id, chat, id, from_me)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS messages_recent ON messages(instance_id, timestamp);
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  instance_id TEXT,
  type TEXT NOT NULL,
  at INTEGER NOT NULL,
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
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  event_seq INTEGER NOT NULL,
  webhook_id TEXT NOT NULL,
  host TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at INTEGER NOT NULL,
  last_status INTEGER,
  last_error TEXT,
  kind TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(status, next_at);
CREATE INDEX IF NOT EXISTS deliveries_webhook ON deliveries(webhook_id, id);
`

/** Opens (and creates) the database at `path` (`:memory:` for tests). */
export function openDatabase(path) {
  const sql = new Database(path)
  sql.pragma('journal_mode = WAL')
  // FULL: a commit survives a power cut, not only a process crash.
  sql.pragma('synchronous = FULL')
  sql.pragma('busy_timeout = 5000')
  sql.exec(SCHEMA)
  return new Db(sql)
}

/** The database with group commit (see the top of this file). */
export class Db {
  #after = []
  #scheduled = false
  #statements = new Map()
  #failure = null

  constructor(sql) {
    this.sql = sql
    this.closed = false
  }

  /** A cached prepared statement. */
  prepare(text) {
    let statement = this.#statements.get(text)
    if (!statement) {
      statement = this.sql.prepare(text)
      this.#statements.set(text, statement)
    }
    return statement
  }

  /** Runs `fn` inside the open transaction (a savepoint: all of `fn` or nothing); returns its result. */
  write(fn) {
    if (this.closed) throw Object.assign(new Error('the database is closed'), { code: 'closed' })
    if (this.#failure) throw this.#failure
    if (!this.sql.inTransaction) {
      this.sql.exec('BEGIN IMMEDIATE')
      this.#schedule()
    }
    return this.sql.transaction(fn)()
  }

  /** Reads see the open transaction's writes (one connection). */
  get(text, ...args) {
    return this.prepare(text).get(...args)
  }

  all(text, ...args) {
    return this.prepare(text).all(...args)
  }

  /** Runs `callback` once the writes made so far are committed (at once if nothing is open). */
  afterCommit(callback) {
    if (this.sql.inTransaction) this.#after.push(callback)
    else queueMicrotask(callback)
  }

  /**
   * Commits the open transaction, if any, then runs the afterCommit callbacks. A failed commit
   * rolls back and is kept: every later write throws it (`commit_failed`) until `reset()`, so the
   * drivers rebuild their clients from what is on disk, exactly as after a crash.
   */
  commit() {
    if (!this.sql.inTransaction || this.closed) return
    try {
      this.sql.exec('COMMIT')
    } catch (cause) {
      try {
        if (this.sql.inTransaction) this.sql.exec('ROLLBACK')
      } catch {
        // the rollback of a failed commit may itself fail; the connection is reset either way
      }
      this.#after = []
      this.#failure = Object.assign(new Error(`commit failed: ${cause.message}`, { cause }), { code: 'commit_failed' })
      throw this.#failure
    }
    const after = this.#after
    this.#after = []
    for (const callback of after) callback()
  }

  /** Forgets a failed commit (after the clients were rebuilt). */
  reset() {
    this.#failure = null
  }

  #schedule() {
    if (this.#scheduled) return
    this.#scheduled = true
    setImmediate(() => {
      this.#scheduled = false
      try {
        this.commit()
      } catch {
        // kept in #failure; the next write reports it
      }
    })
  }

  close() {
    if (this.closed) return
    this.commit()
    this.closed = true
    this.sql.close()
  }

  /** Drops the connection without committing: what a crash does (tests only). */
  crashForTestingOnly() {
    this.closed = true
    this.sql.close()
  }
}
