// The webhook dispatcher: reads due deliveries from the outbox (SQLite), POSTs them signed, and
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

export class Dispatcher {
  #timer = null
  #inflight = new Map() // host -> count
  #active = new Set() // delivery ids in flight
  #running = false
  #stopped = false

  constructor({ db, gateway, config, metrics, evolutionBody, log }) {
    this.db = db
    this.gateway = gateway
    this.config = config
    this.metrics = metrics
    this.evolutionBody = evolutionBody
    this.log = log
  }

  start() {
    this.kick()
  }

  /** Runs a pass soon. */
  kick(delay = 0) {
    if (this.#stopped) return
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      this.#timer = null
      this.#pass()
    }, Math.max(0, Math.min(delay, 2 ** 31 - 1)))
    this.#timer.unref?.()
  }

  get inflight() {
    return this.#active.size
  }

  #pass() {
    if (this.#running || this.#stopped) return
    this.#running = true
    try {
      const now = Date.now()
      const due = this.db.all("SELECT * FROM deliveries WHERE status = 'pending' AND next_at <= ? ORDER BY id LIMIT 200", now)
      for (const delivery of due) {
        if (this.#active.has(delivery.id)) continue
        if (this.#active.size >= this.config.webhookConcurrency) break
        const count = this.#inflight.get(delivery.host) ?? 0
        if (count >= this.config.webhookPerHost) continue
        this.#inflight.set(delivery.host, count + 1)
        this.#active.add(delivery.id)
        this.#deliver(delivery).finally(() => {
          this.#active.delete(delivery.id)
          const left = (this.#inflight.get(delivery.host) ?? 1) - 1
          if (left > 0) this.#inflight.set(delivery.host, left)
          else this.#inflight.delete(delivery.host)
          this.kick()
        })
      }
      const next = this.db.get("SELECT min(next_at) AS at FROM deliveries WHERE status = 'pending'")
      if (next?.at !== null && next?.at !== undefined && this.#active.size === 0) this.kick(next.at - Date.now())
      else if (next?.at !== null && next?.at !== undefined) this.kick(Math.max(next.at - Date.now(), 50))
    } finally {
      this.#running = false
    }
  }

  /** The request of one delivery: URL, headers and body. */
  request(delivery, hook, event, attempt) {
    const instance = this.gateway.rowById(event.instance_id)
    let body
    let url = hook.url
    if (hook.format === 'evolution') {
      body = JSON.stringify(this.evolutionBody(delivery.kind, event, instance))
      if (hook.by_events) url = `${url.replace(/\/+$/, '')}/${delivery.kind.toLowerCase().replace(/_/g, '-')}`
    } else {
      body = JSON.stringify(nativePayload(event, instance?.name))
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
    const hook = db.get('SELECT * FROM webhooks WHERE id = ?', delivery.webhook_id)
    const event = db.get('SELECT * FROM events WHERE seq = ?', delivery.event_seq)
    if (!hook || !event) {
      db.write(() => db.prepare("UPDATE deliveries SET status = 'dead', last_error = ?, updated_at = ? WHERE id = ?").run('webhook or event gone', Date.now(), delivery.id))
      db.commit()
      return
    }
    const attempt = delivery.attempts + 1
    const { url, headers, body } = this.request(delivery, hook, event, attempt)
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
    db.write(() => {
      if (ok) {
        db.prepare("UPDATE deliveries SET status = 'delivered', attempts = ?, last_status = ?, last_error = NULL, updated_at = ? WHERE id = ?").run(attempt, status, now, delivery.id)
        // The host answers again: what waits for it is due now, not at its backoff.
        db.prepare("UPDATE deliveries SET next_at = ? WHERE host = ? AND status = 'pending' AND next_at > ?").run(now, delivery.host, now)
      } else if (attempt >= this.config.webhookMaxAttempts || status === 410) {
        db.prepare("UPDATE deliveries SET status = 'dead', attempts = ?, last_status = ?, last_error = ?, updated_at = ? WHERE id = ?").run(attempt, status, error, now, delivery.id)
      } else {
        const next = now + backoffMs(attempt, { baseMs: this.config.webhookBackoffBaseMs, maxMs: this.config.webhookBackoffMaxMs })
        db.prepare('UPDATE deliveries SET attempts = ?, last_status = ?, last_error = ?, next_at = ?, updated_at = ? WHERE id = ?').run(attempt, status, error, next, now, delivery.id)
      }
    })
    db.commit()
    this.metrics.webhookDeliveries[ok ? 'delivered' : 'failed']++
  }

  /** Makes a delivery due again (replay): delivered and dead ones too. */
  replay(deliveryId) {
    const db = this.db
    const now = Date.now()
    db.write(() => db.prepare("UPDATE deliveries SET status = 'pending', attempts = 0, next_at = ?, updated_at = ? WHERE id = ?").run(now, now, deliveryId))
    db.commit()
    this.kick()
  }

  queueDepth() {
    return this.db.get("SELECT count(*) AS n FROM deliveries WHERE status = 'pending'").n
  }

  /** Stops starting deliveries; waits up to `ms` for those in flight. */
  async stop(ms = 5000) {
    this.#stopped = true
    if (this.#timer) clearTimeout(this.#timer)
    const deadline = Date.now() + ms
    while (this.#active.size && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
