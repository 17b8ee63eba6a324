// The webhook dispatcher: claims due deliveries from the outbox (shared by every worker on
// PostgreSQL), POSTs them signed, and
// records each attempt. At least once across crashes and restarts (a delivery is marked done only
// after a 2xx), a stable event id, an HMAC-SHA256 signature over `timestamp.body`, retries with a
// capped, jittered exponential backoff, a cap on concurrent deliveries per receiving host, and a
// delivery log with replay.
import { createHmac } from 'node:crypto'

import { nativePayload } from './events.js'

/** Headers a webhook's custom headers may not replace. */
export const RESERVED_HEADERS = new Set(['content-type', 'content-length', 'host', 'x-walink-event-id', 'x-walink-timestamp', 'x-walink-signature', 'x-walink-attempt', 'x-walink-event'])

/** `v1=<hex>`: HMAC-SHA256 with the webhook's secret over `<timestamp>.<body>`. */
export function sign(secret, timestamp, body) {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`
}

/** The delay before attempt `attempt + 1`: full jitter over min(cap, base * 2^(attempt - 1)). */
export function backoffMs(attempt, { baseMs, maxMs }, random = Math.random) {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt - 1, 30))
  return Math.round(ceiling / 2 + (random() * ceiling) / 2)
}

/** How long a claimed delivery stays with the worker that took it, beyond the request timeout. */
const CLAIM_MARGIN_MS = 5000

export class Dispatcher {
  #timer = null
  #inflight = new Map() // host -> count
  #active = new Set() // delivery ids in flight
  #running = false
  #again = false
  #stopped = false

  /** `workerId`: who claims deliveries (several workers share the outbox on PostgreSQL). */
  /**
   * `mediaBase64(instance, data, type)`: `{base64}` or `{base64Error}` for the media of a received
   * (`message.received`) or sent (`message.sent`) message, or null when it carries none.
   */
  constructor({ db, gateway, config, metrics, evolutionBody, mediaBase64, log, workerId = 'local' }) {
    this.db = db
    this.mediaBase64 = mediaBase64
    this.gateway = gateway
    this.config = config
    this.metrics = metrics
    this.evolutionBody = evolutionBody
    this.log = log
    this.workerId = workerId
  }

  async start() {
    // One process per SQLite file: claims left by a crashed run are nobody's now.
    if (this.db.dialect === 'sqlite') await this.db.run('UPDATE deliveries SET locked_until = NULL, locked_by = NULL WHERE locked_until IS NOT NULL')
    this.kick()
  }

  /** Runs a pass soon. */
  kick(delay = 0) {
    if (this.#stopped) return
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      this.#timer = null
      this.#pass().catch((error) => {
        this.log('warn', `webhook dispatcher: ${error.message}`)
        this.kick(1000)
      })
    }, Math.max(0, Math.min(delay, 2 ** 31 - 1)))
    this.#timer.unref?.()
  }

  get inflight() {
    return this.#active.size
  }

  /**
   * Claims due deliveries (each for this worker, until its request could have timed out; on
   * PostgreSQL with FOR UPDATE SKIP LOCKED, so workers take disjoint ones), keeps what the
   * per-host caps allow, gives the rest back, and delivers.
   */
  async #pass() {
    if (this.#stopped) return
    if (this.#running) {
      this.#again = true
      return
    }
    this.#running = true
    try {
      const free = this.config.webhookConcurrency - this.#active.size
      if (free > 0) {
        const now = Date.now()
        const skipLocked = this.db.dialect === 'postgres' ? ' FOR UPDATE SKIP LOCKED' : ''
        const claimed = await this.db.tx((q) =>
          q.all(
            `UPDATE deliveries SET locked_until = ?, locked_by = ? WHERE id IN (SELECT id FROM deliveries WHERE status = 'pending' AND next_at <= ? AND (locked_until IS NULL OR locked_until < ?) ORDER BY id LIMIT ?${skipLocked}) RETURNING *`,
            // The request, and before it a `base64` media download bounded by the same timeout.
            now + 2 * this.config.webhookTimeoutMs + CLAIM_MARGIN_MS,
            this.workerId,
            now,
            now,
            Math.min(free, 200),
          ),
        )
        claimed.sort((a, b) => a.id - b.id)
        const giveBack = []
        for (const delivery of claimed) {
          const count = this.#inflight.get(delivery.host) ?? 0
          if (this.#active.has(delivery.id) || count >= this.config.webhookPerHost) {
            giveBack.push(delivery.id)
            continue
          }
          this.#inflight.set(delivery.host, count + 1)
          this.#active.add(delivery.id)
          this.#deliver(delivery)
            .catch((error) => this.log('warn', `webhook delivery ${delivery.id}: ${error.message}`))
            .finally(() => {
              this.#active.delete(delivery.id)
              const left = (this.#inflight.get(delivery.host) ?? 1) - 1
              if (left > 0) this.#inflight.set(delivery.host, left)
              else this.#inflight.delete(delivery.host)
              this.kick()
            })
        }
        if (giveBack.length) {
          await this.db.tx(async (q) => {
            for (const id of giveBack) await q.run('UPDATE deliveries SET locked_until = NULL, locked_by = NULL WHERE id = ? AND locked_by = ?', id, this.workerId)
          })
        }
      }
      const next = await this.db.get("SELECT min(CASE WHEN locked_until IS NOT NULL AND locked_until > next_at THEN locked_until ELSE next_at END) AS at FROM deliveries WHERE status = 'pending'")
      // Other workers' deliveries appear without a kick here: look again at least every second.
      const poll = this.db.dialect === 'postgres' ? 1000 : 2 ** 31 - 1
      if (next?.at !== null && next?.at !== undefined) this.kick(Math.min(poll, Math.max(next.at - Date.now(), this.#active.size ? 50 : 0)))
      else if (this.db.dialect === 'postgres') this.kick(poll)
    } finally {
      this.#running = false
      if (this.#again) {
        this.#again = false
        this.kick()
      }
    }
  }

  /** The request of one delivery: URL, headers and body. */
  async request(delivery, hook, event, attempt) {
    const instance = await this.gateway.rowById(event.instance_id)
    let body
    let url = hook.url
    if (hook.format === 'evolution') {
      const payload = this.evolutionBody(delivery.kind, event, instance)
      // The webhook's `base64` setting: received media goes out with its file, downloaded now;
      // media this instance sent with the file it kept.
      const withFile = (delivery.kind === 'MESSAGES_UPSERT' && event.type === 'message.received') || (delivery.kind === 'SEND_MESSAGE' && event.type === 'message.sent')
      if (hook.base64 && withFile && payload.data?.message && this.mediaBase64) {
        const media = await this.mediaBase64(instance, JSON.parse(event.data), event.type)
        if (media) Object.assign(payload.data.message, media)
      }
      body = JSON.stringify(payload)
      if (hook.by_events) url = `${url.replace(/\/+$/, '')}/${delivery.kind.toLowerCase().replace(/_/g, '-')}`
    } else {
      const payload = nativePayload(event, instance?.name)
      // `base64` on a native webhook: `data.base64` (or `data.base64Error`) on message.received and message.sent.
      if (hook.base64 && (event.type === 'message.received' || event.type === 'message.sent') && payload.data && this.mediaBase64) {
        const media = await this.mediaBase64(instance, payload.data, event.type)
        if (media) Object.assign(payload.data, media)
      }
      body = JSON.stringify(payload)
    }
    const timestamp = String(Math.floor(Date.now() / 1000))
    const headers = {
      ...JSON.parse(hook.headers),
      'content-type': 'application/json',
      'x-walink-event-id': hook.format === 'evolution' ? `${event.id}.${delivery.kind}` : event.id,
      'x-walink-event': delivery.kind,
      'x-walink-timestamp': timestamp,
      'x-walink-signature': sign(hook.secret, timestamp, body),
      'x-walink-attempt': String(attempt),
    }
    return { url, headers, body }
  }

  async #deliver(delivery) {
    const db = this.db
    const hook = await db.get('SELECT * FROM webhooks WHERE id = ?', delivery.webhook_id)
    const event = await db.get('SELECT * FROM events WHERE seq = ?', delivery.event_seq)
    if (!hook || !event) {
      await db.run("UPDATE deliveries SET status = 'dead', last_error = ?, updated_at = ?, locked_until = NULL WHERE id = ?", 'webhook or event gone', Date.now(), delivery.id)
      return
    }
    const attempt = delivery.attempts + 1
    const { url, headers, body } = await this.request(delivery, hook, event, attempt)
    let status = null
    let error = null
    try {
      const response = await fetch(url, { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.timeout(this.config.webhookTimeoutMs) })
      status = response.status
      await response.arrayBuffer().catch(() => {})
    } catch (cause) {
      error = cause?.cause?.code ?? cause?.name ?? 'error'
    }
    const now = Date.now()
    const ok = status !== null && status >= 200 && status < 300
    if (this.#stopped && !ok) return
    // Each outcome is one statement, committed on its own (on PostgreSQL a round trip each; no
    // BEGIN/COMMIT around them): nothing else has to change with it atomically.
    if (ok) {
      await db.run("UPDATE deliveries SET status = 'delivered', attempts = ?, last_status = ?, last_error = NULL, updated_at = ?, locked_until = NULL WHERE id = ?", attempt, status, now, delivery.id)
      // The host answers again: what waits for it is due now, not at its backoff.
      await db.run("UPDATE deliveries SET next_at = ? WHERE host = ? AND status = 'pending' AND next_at > ?", now, delivery.host, now)
    } else if (attempt >= this.config.webhookMaxAttempts || status === 410) {
      await db.run("UPDATE deliveries SET status = 'dead', attempts = ?, last_status = ?, last_error = ?, updated_at = ?, locked_until = NULL WHERE id = ?", attempt, status, error, now, delivery.id)
    } else {
      const next = now + backoffMs(attempt, { baseMs: this.config.webhookBackoffBaseMs, maxMs: this.config.webhookBackoffMaxMs })
      await db.run('UPDATE deliveries SET attempts = ?, last_status = ?, last_error = ?, next_at = ?, updated_at = ?, locked_until = NULL WHERE id = ?', attempt, status, error, next, now, delivery.id)
    }
    this.metrics.webhookDeliveries[ok ? 'delivered' : 'failed']++
  }

  /** Makes a delivery due again (replay): delivered and dead ones too. */
  async replay(deliveryId) {
    const now = Date.now()
    await this.db.run("UPDATE deliveries SET status = 'pending', attempts = 0, next_at = ?, updated_at = ?, locked_until = NULL WHERE id = ?", now, now, deliveryId)
    this.kick()
  }

  async queueDepth() {
    return (await this.db.get("SELECT count(*) AS n FROM deliveries WHERE status = 'pending'")).n
  }

  /** Stops starting deliveries; waits up to `ms` for those in flight. */
  async stop(ms = 5000) {
    this.#stopped = true
    if (this.#timer) clearTimeout(this.#timer)
    const deadline = Date.now() + ms
    while ((this.#active.size || this.#running) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
    // What this worker claimed and did not finish is due again for the others at once.
    await this.db.run("UPDATE deliveries SET locked_until = NULL, locked_by = NULL WHERE locked_by = ? AND status = 'pending'", this.workerId).catch(() => {})
  }
}
