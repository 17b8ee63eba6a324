// The event log and the webhook outbox. `emit` writes the event and one delivery row per
// matching webhook inside the caller's transaction (for a walink event: the transaction of the
// key batch it came with), so an event exists on disk exactly when the change that produced it
// does; subscribers (the SSE stream) and the dispatcher hear of it only after the commit.
import { eventId } from './ids.js'

/** Every native event type (the values a webhook's `events` filter takes). */
export const EVENT_TYPES = [
  'instance.created',
  'instance.deleted',
  'instance.state',
  'instance.qr',
  'instance.pairing_code',
  'instance.paired',
  'instance.logged_out',
  'message.received',
  'message.sent',
  'message.status',
  'message.undecryptable',
  'message.edited',
  'message.deleted',
  'message.poll_vote',
  'chat.updated',
  'contact.updated',
  'label.updated',
  'label.association',
  'group.updated',
  'call',
  'presence.updated',
  'chat.state',
]

/** The NOTIFY channel that tells every worker of a committed event (PostgreSQL). */
export const EVENTS_CHANNEL = 'walink_events'

/** The most `seq:deliveries` entries of one NOTIFY payload (PostgreSQL takes at most 8,000 bytes). */
const NOTICES_PER_PAYLOAD = 200

/** Tells every worker of `notices` (`seq:deliveries` of the events of one transaction). */
async function notify(q, notices) {
  for (let i = 0; i < notices.length; i += NOTICES_PER_PAYLOAD) await q.run(`SELECT pg_notify('${EVENTS_CHANNEL}', ?)`, notices.slice(i, i + NOTICES_PER_PAYLOAD).join(','))
}

export class EventLog {
  #subscribers = new Set()

  /**
   * @param {import('./db.js').SqliteDb | import('./db.js').PostgresDb} db
   * @param {(type: string, data: object, instance: object) => Array<[string, object]>} toEvolution
   *   the Evolution events (name, data) of a native event
   */
  constructor(db, toEvolution) {
    this.db = db
    this.toEvolution = toEvolution
    this.onDeliveries = () => {}
  }

  /**
   * Writes an event and its deliveries with `q` (inside the caller's transaction); returns the
   * event row. Subscribers and the dispatcher hear of it once the transaction committed: here
   * (SQLite) or through NOTIFY, on every worker (PostgreSQL, `published`).
   */
  async emit(q, instanceId, type, data) {
    const at = Date.now()
    const id = eventId(at)
    const json = JSON.stringify(data)
    const { seq } = await q.get('INSERT INTO events (id, instance_id, type, at, data) VALUES (?, ?, ?, ?, ?) RETURNING seq', id, instanceId, type, at, json)
    const event = { seq: Number(seq), id, instance_id: instanceId, type, at, data: json }
    let deliveries = 0
    if (instanceId) {
      const hooks = await q.all('SELECT * FROM webhooks WHERE instance_id = ? AND enabled = 1', instanceId)
      // Which Evolution events a native one becomes depends on its data only: no instance row needed.
      const instance = { id: instanceId }
      for (const hook of hooks) {
        const wanted = JSON.parse(hook.events)
        const host = new URL(hook.url).host
        const names = hook.format === 'evolution' ? this.toEvolution(type, data, instance).map(([name]) => name) : [type]
        for (const name of names) {
          if (wanted.length && !wanted.includes(name)) continue
          await q.run("INSERT INTO deliveries (event_seq, webhook_id, host, status, next_at, updated_at, kind) VALUES (?, ?, ?, 'pending', ?, ?, ?)", event.seq, hook.id, host, at, at, name)
          deliveries++
        }
      }
    }
    if (this.db.dialect === 'postgres') {
      // One NOTIFY per transaction, sent just before its COMMIT (delivered with it, or not at all).
      if (!q.notices) {
        q.notices = []
        q.beforeCommit(() => notify(q, q.notices))
      }
      q.notices.push(`${event.seq}:${deliveries}`)
    } else {
      q.onCommit(() => this.published([event], deliveries > 0))
    }
    return event
  }

  /** Committed events (from this process or, on PostgreSQL, any worker): to subscribers and the dispatcher. */
  published(events, deliveries) {
    for (const event of events) for (const subscriber of this.#subscribers) subscriber(event)
    if (deliveries) this.onDeliveries()
  }

  /** Calls `subscriber(eventRow)` for every committed event from now on; returns the unsubscribe. */
  subscribe(subscriber) {
    this.#subscribers.add(subscriber)
    return () => this.#subscribers.delete(subscriber)
  }

  get subscriberCount() {
    return this.#subscribers.size
  }

  /** Events after `seq` (oldest first, at most `limit`), optionally of one instance. */
  since(seq, { instanceId, limit = 500 } = {}) {
    if (instanceId) return this.db.all('SELECT * FROM events WHERE seq > ? AND instance_id = ? ORDER BY seq LIMIT ?', seq, instanceId, limit)
    return this.db.all('SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?', seq, limit)
  }
}

/** The native webhook body and stream payload of an event row. */
export function nativePayload(event, instanceName) {
  return { id: event.id, seq: event.seq, type: event.type, instance: instanceName, at: new Date(event.at).toISOString(), data: JSON.parse(event.data) }
}
