// Several gateway workers on one PostgreSQL database, each instance owned by one worker at a time.
//
// - A worker registers a row in `workers` with a lease (`expires_at`, on the database's clock) and
//   renews it every `leaseRenewMs`. One lease covers every instance the worker owns; an instance's
//   row names its owner and an epoch, the fencing token, bumped by every takeover.
// - Self-fencing: the worker's deadline is the send time of its last successful renewal plus the
//   TTL minus a margin, on this process's monotonic clock. Past it (a stall, a lost database), the
//   worker drops every socket at once, writes nothing more for those instances, refuses every
//   login (`mayConnect`), and registers again as a new incarnation with no instances.
// - Every write about an owned instance (key batches, the rows of its events, its state) first
//   checks `owner` and `epoch` in the same transaction (src/store.js `checkLease`), so a worker
//   that stalled past its lease can never write over its successor.
// - Takeover only after a reaper deleted the dead worker's row (`expires_at < now()`), then
//   `UPDATE ... SET owner = me, epoch = epoch + 1` (FOR UPDATE SKIP LOCKED, a few per renewal, the
//   least loaded workers taking the most), then the login from what that transaction saw.
// - Any worker answers any request: the HTTP layer forwards an instance's request to its owner's
//   address (`ownerOf`), a new instance goes to the least loaded worker (`placement`); events reach
//   every worker's streams through LISTEN/NOTIFY; webhook deliveries are claimed from the shared
//   outbox by any worker (src/webhooks.js).
import { performance } from 'node:perf_hooks'

import { ApiError } from './errors.js'
import { EVENTS_CHANNEL } from './events.js'
import { randomId } from './ids.js'
import { FORWARDED_HEADER } from './http/server.js'

/** Headers a forwarded request carries on (authentication and body); the rest stays with the hop. */
const FORWARD_HEADERS = ['apikey', 'authorization', 'content-type', 'accept', 'last-event-id']

/** How often the watchdog compares the clock with the lease deadline. */
const WATCHDOG_MS = 100

export class Cluster {
  #current = null // { id, deadline, fenced }
  #leases = new Map() // instanceId -> lease
  #timers = []
  #renewing = false
  #listener = null
  #stopped = false
  #pendingEvents = { seqs: [], deliveries: false, timer: null }

  constructor({ db, gateway, events, dispatcher, config, metrics, log, addr }) {
    this.db = db
    this.gateway = gateway
    this.events = events
    this.dispatcher = dispatcher
    this.config = config
    this.metrics = metrics
    this.log = log
    this.addr = addr
    this.stats = { fences: 0, adopted: 0, forwarded: 0, refusedWrites: { deadline: 0, epoch: 0 } }
  }

  /** This incarnation's worker id (a new one after each self-fence). */
  get workerId() {
    return this.#current?.id ?? null
  }

  get ownedCount() {
    return this.#leases.size
  }

  /** True while this worker's lease holds by its own clock. */
  leaseValid() {
    const current = this.#current
    return Boolean(current && !current.fenced && performance.now() < current.deadline)
  }

  async start() {
    await this.#register()
    this.#timers.push(setInterval(() => this.#renew(), this.config.leaseRenewMs))
    this.#timers.push(setInterval(() => this.#watch(), WATCHDOG_MS))
    for (const timer of this.#timers) timer.unref?.()
    await this.#listen()
    await this.#renew()
  }

  /** The lease on `instanceId` if this worker holds it and it is still valid, else null. */
  lease(instanceId) {
    const lease = this.#leases.get(instanceId)
    return lease && lease.valid() ? lease : null
  }

  /** Records a lease this worker was granted (a created instance, a claim). */
  granted(instanceId, epoch) {
    const incarnation = this.#current
    if (!incarnation || incarnation.fenced) return null
    const stats = this.stats
    const lease = {
      workerId: incarnation.id,
      epoch: Number(epoch),
      valid: () => !incarnation.fenced && performance.now() < incarnation.deadline,
      refused: (by) => stats.refusedWrites[by]++,
    }
    this.#leases.set(instanceId, lease)
    return lease
  }

  // --- the lease ---

  async #register() {
    const id = randomId('w')
    const sent = performance.now()
    await this.db.run("INSERT INTO workers (id, addr, expires_at) VALUES (?, ?, now() + (? * interval '1 millisecond'))", id, this.addr, this.config.leaseTtlMs)
    this.#current = { id, deadline: sent + this.config.leaseTtlMs - this.config.leaseMarginMs, fenced: false }
    this.dispatcher.workerId = id
    this.log('info', `worker ${id} registered (${this.addr})`)
  }

  /** Renews the lease, reaps dead workers, adopts orphaned instances. Never overlaps itself. */
  async #renew() {
    if (this.#renewing || this.#stopped) return
    this.#renewing = true
    try {
      const current = this.#current
      if (!current || current.fenced) {
        await this.#register()
      } else {
        const sent = performance.now()
        const renewed = await this.db.run("UPDATE workers SET expires_at = now() + (? * interval '1 millisecond') WHERE id = ?", this.config.leaseTtlMs, current.id)
        if (renewed.changes === 0) {
          this.fence('the lease was reaped')
          return
        }
        if (current.fenced) return
        current.deadline = sent + this.config.leaseTtlMs - this.config.leaseMarginMs
      }
      await this.db.run('DELETE FROM workers WHERE expires_at < now()')
      await this.#adopt()
    } catch (error) {
      this.log('warn', `lease renewal: ${error.message}`)
    } finally {
      this.#renewing = false
    }
  }

  #watch() {
    const current = this.#current
    if (current && !current.fenced && performance.now() >= current.deadline) this.fence('the lease deadline passed')
  }

  /** Self-fencing: drop every socket now, forget every lease, write nothing more for them. */
  fence(reason) {
    const current = this.#current
    if (!current || current.fenced) return
    current.fenced = true
    this.stats.fences++
    const owned = this.#leases.size
    this.#leases.clear()
    this.gateway.fenceAll()
    this.log('warn', `worker ${current.id} fenced itself (${reason}): ${owned} instance(s) dropped; registering again`)
    setImmediate(() => this.#renew())
  }

  /**
   * Claims instances whose owner is gone (a few per renewal; a worker above its fair share takes
   * none) and resumes them.
   */
  async #adopt() {
    if (!this.leaseValid()) return
    const me = this.#current.id
    const orphans = (await this.db.get(
      `SELECT count(*) AS n FROM instances i WHERE i.deleted_at IS NULL AND i.autostart = 1 AND i.jid IS NOT NULL
         AND (i.owner IS NULL OR NOT EXISTS (SELECT 1 FROM workers w WHERE w.id = i.owner))`,
    )).n
    if (orphans === 0) return
    const loads = await this.db.all(
      `SELECT w.id, (SELECT count(*) FROM instances i WHERE i.owner = w.id AND i.deleted_at IS NULL AND i.autostart = 1) AS n
         FROM workers w WHERE w.expires_at > now()`,
    )
    const total = loads.reduce((sum, l) => sum + l.n, 0) + orphans
    const mine = loads.find((l) => l.id === me)?.n ?? this.#leases.size
    const fair = Math.ceil(total / Math.max(1, loads.length))
    const least = Math.min(...loads.map((l) => l.n), mine)
    let want = Math.min(this.config.adoptBatch, orphans, fair - mine)
    if (want <= 0 && mine === least) want = 1
    if (want <= 0) return
    const claimed = await this.db.all(
      `UPDATE instances SET owner = ?, epoch = epoch + 1 WHERE id IN (
         SELECT id FROM instances i WHERE i.deleted_at IS NULL AND i.autostart = 1 AND i.jid IS NOT NULL
           AND (i.owner IS NULL OR NOT EXISTS (SELECT 1 FROM workers w WHERE w.id = i.owner))
         ORDER BY i.id LIMIT ? FOR UPDATE SKIP LOCKED)
       RETURNING *`,
      me,
      want,
    )
    if (!claimed.length) return
    if (this.#current?.id !== me || this.#current.fenced) return
    for (const row of claimed) this.granted(row.id, row.epoch)
    this.stats.adopted += claimed.length
    this.log('info', `worker ${me} adopted ${claimed.length} instance(s)`)
    this.gateway.resume(claimed).catch((error) => this.log('warn', `resuming adopted instances: ${error.message}`))
  }

  /** Takes over one instance whose owner is gone (a request for it arrived here). */
  async #claim(instanceId) {
    if (!this.leaseValid()) return null
    const me = this.#current.id
    await this.db.run('DELETE FROM workers WHERE expires_at < now()')
    const row = await this.db.get(
      `UPDATE instances SET owner = ?, epoch = epoch + 1
        WHERE id = ? AND (owner IS NULL OR NOT EXISTS (SELECT 1 FROM workers w WHERE w.id = instances.owner))
        RETURNING epoch`,
      me,
      instanceId,
    )
    if (!row || this.#current?.id !== me) return null
    return this.granted(instanceId, row.epoch)
  }

  // --- routing ---

  /**
   * Where a request for `row` is served: null here (this worker holds its lease, or just took it
   * over from a dead owner), or the owner's address.
   */
  async ownerOf(row) {
    if (this.lease(row.id)) return null
    if (!this.leaseValid()) throw new ApiError(503, 'worker_fenced', 'this worker has no valid lease right now; retry', { retryAfterS: 1 })
    for (let attempt = 0; attempt < 2; attempt++) {
      const owner = await this.db.get(
        `SELECT i.owner, i.epoch, w.addr FROM instances i LEFT JOIN workers w ON w.id = i.owner AND w.expires_at > now() WHERE i.id = ?`,
        row.id,
      )
      if (!owner) return null
      if (owner.owner === this.#current.id) {
        this.granted(row.id, owner.epoch)
        return null
      }
      if (owner.owner && owner.addr) return owner.addr
      if (await this.#claim(row.id)) return null
    }
    throw new ApiError(503, 'owner_unavailable', `the owner of ${row.name} is changing; retry`, { retryAfterS: 1 })
  }

  /** The least loaded live worker's address for a new instance (null: this one). */
  async placement() {
    if (!this.leaseValid()) throw new ApiError(503, 'worker_fenced', 'this worker has no valid lease right now; retry', { retryAfterS: 1 })
    const least = await this.db.get(
      `SELECT w.id, w.addr, (SELECT count(*) FROM instances i WHERE i.owner = w.id AND i.deleted_at IS NULL) AS n
         FROM workers w WHERE w.expires_at > now() ORDER BY n, w.id LIMIT 1`,
    )
    return !least || least.id === this.#current.id ? null : least.addr
  }

  /** Sends the request on to `addr` once and answers with what it said. */
  async forward(addr, req, rawBody) {
    const headers = { [FORWARDED_HEADER]: this.#current?.id ?? 'fenced' }
    for (const name of FORWARD_HEADERS) if (req.headers[name] !== undefined) headers[name] = req.headers[name]
    this.stats.forwarded++
    let response
    try {
      response = await fetch(new URL(req.url, addr), {
        method: req.method,
        headers,
        body: rawBody ?? undefined,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.config.connectTimeoutMs + 10_000),
      })
    } catch (cause) {
      throw new ApiError(503, 'owner_unavailable', `the owner at ${addr} did not answer (${cause?.cause?.code ?? cause?.name ?? 'error'}); retry`, { retryAfterS: 1 })
    }
    const body = Buffer.from(await response.arrayBuffer())
    const out = { 'content-type': response.headers.get('content-type') ?? 'application/json; charset=utf-8' }
    for (const name of ['retry-after', 'x-ratelimit-limit', 'x-ratelimit-remaining']) {
      const value = response.headers.get(name)
      if (value !== null) out[name] = value
    }
    out['x-walink-worker'] = response.headers.get('x-walink-worker') ?? addr
    return { status: response.status, headers: out, body }
  }

  // --- events from every worker ---

  async #listen() {
    try {
      const client = await this.db.connection()
      client.on('notification', (message) => this.#notified(message.payload))
      client.on('error', () => this.#relisten(client))
      client.on('end', () => this.#relisten(client))
      await client.query(`LISTEN ${EVENTS_CHANNEL}`)
      this.#listener = client
    } catch (error) {
      this.log('warn', `LISTEN failed (${error.message}); trying again`)
      this.#relisten(null)
    }
  }

  #relisten(client) {
    if (this.#stopped || (client && this.#listener !== client)) return
    this.#listener = null
    client?.end().catch(() => {})
    const timer = setTimeout(() => this.#listen(), 1000)
    timer.unref?.()
  }

  /** A NOTIFY of committed events: `seq:deliveries` entries separated by commas. */
  #notified(payload) {
    const pending = this.#pendingEvents
    for (const entry of String(payload).split(',')) {
      const [seq, deliveries] = entry.split(':').map(Number)
      if (!Number.isSafeInteger(seq)) continue
      pending.seqs.push(seq)
      pending.deliveries ||= deliveries > 0
    }
    if (pending.timer || !pending.seqs.length) return
    pending.timer = setTimeout(() => {
      const seqs = pending.seqs
      const kick = pending.deliveries
      this.#pendingEvents = { seqs: [], deliveries: false, timer: null }
      // The rows are read only for event-stream subscribers; the dispatcher needs only the kick.
      if (!this.events.subscriberCount) return this.events.published([], kick)
      this.db
        .all('SELECT * FROM events WHERE seq = ANY(?) ORDER BY seq', seqs)
        .then((rows) => this.events.published(rows.map((row) => ({ ...row, seq: Number(row.seq) })), kick))
        .catch((error) => this.log('warn', `reading notified events: ${error.message}`))
    }, 5)
  }

  // --- operations ---

  /** Gauges for /metrics. */
  snapshot() {
    return { worker: this.workerId, leaseValid: this.leaseValid(), owned: this.#leases.size, ...this.stats }
  }

  /** Graceful stop (after the sessions closed): hands every instance back and leaves the table. */
  async stop() {
    this.#stopped = true
    for (const timer of this.#timers) clearInterval(timer)
    const current = this.#current
    if (current && !current.fenced) {
      await this.db.run('UPDATE instances SET owner = NULL WHERE owner = ?', current.id).catch(() => {})
      await this.db.run('DELETE FROM workers WHERE id = ?', current.id).catch(() => {})
    }
    this.#leases.clear()
    await this.#listener?.end().catch(() => {})
  }
}
