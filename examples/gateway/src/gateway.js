// The gateway: instance rows, one live walink connection per running instance, the lifecycle and
// its exposed state machine, and the walink events handed to the features (src/features/).
//
// A walink event reaches the gateway twice: `onEvent` (at once, in memory: the QR, the client's
// state) and, through the instance's store, in the transaction of the key batch it came with
// (`writeEvents`: the instance row, messages, chats, the event log and the webhook outbox). Waiters
// (a connect call waiting for the QR or the login) settle once those rows are durable.
//
// With several workers (PostgreSQL, src/cluster.js) an instance runs only on the worker holding
// its lease: every write about it checks the lease's epoch in the same transaction.
import { Client, connect } from 'walink'
import WebSocket from 'ws'

import { ApiError, fromCommandError } from './errors.js'
import { hashToken, newToken, randomId } from './ids.js'
import { ProxyAgent, openTunnel, proxyFetch } from './proxy.js'
import { qrDataUrl } from './qr.js'
import { GatewayStore, checkLease } from './store.js'

/** The states an instance is in, as the API shows them. */
export const STATES = ['pending', 'qr_required', 'code_required', 'connecting', 'connected', 'reconnecting', 'logged_out']

/**
 * The walink client states that rest until a command: the driver keeps the client there, and the
 * gateway decides. Unless the gateway asked for it (its own disconnect), it ends the session:
 * logged out (keys wiped by the core) stays `logged_out`; replaced, client outdated and a close
 * that retrying cannot fix (a refusal, the QR codes run out) are `pending`; autostart goes off,
 * so nothing brings the session back but `connect` (no QR loop, no two processes knocking each
 * other off one device).
 */
const RESTING = ['disconnected', 'loggedOut', 'replaced', 'clientOutdated']

/** True when `event` puts the client in a resting state the gateway did not ask for. */
export function restsUnasked(event) {
  const { state, reason } = event
  if (!RESTING.includes(state.kind)) return false
  // The gateway's own disconnect: `disconnectRequested`, or `closed:local` when a socket was open.
  const asked = reason?.kind === 'disconnectRequested' || (reason?.kind === 'closed' && reason.reason?.kind === 'local')
  return !(state.kind === 'disconnected' && asked)
}

/** The per-instance settings and their defaults (Evolution's names). */
export const DEFAULT_SETTINGS = Object.freeze({
  rejectCall: false,
  msgCall: '',
  groupsIgnore: false,
  alwaysOnline: false,
  readMessages: false,
  readStatus: false,
  syncFullHistory: false,
  pushName: '',
})

/** Settings the current walink core cannot carry out yet: `true` is refused with a 400. */
export const UNSUPPORTED_SETTINGS = {
  syncFullHistory: 'history sync arrives with walink issue 16',
}

/** walink's client configuration for an instance: the gateway's, with the instance's push name. */
export function clientConfigOf(base, settings) {
  return settings.pushName ? { ...base, pushName: settings.pushName } : base
}

/** The lifecycle's reason as one short string: `loginAccepted`, `closed:streamError:515`, ... */
export function reasonText(reason) {
  if (!reason) return 'unknown'
  if (reason.kind !== 'closed') return reason.kind
  const r = reason.reason ?? {}
  const parts = ['closed', r.kind]
  if (r.code !== undefined) parts.push(String(r.code))
  if (r.conflict) parts.push(r.conflict)
  if (r.reason !== undefined) parts.push(String(r.reason))
  if (r.message) parts.push(r.message)
  return parts.join(':')
}

/** The gateway's state for a walink client state. */
export function gatewayState(state, wasConnected) {
  switch (state.kind) {
    case 'disconnected':
    case 'replaced':
    case 'clientOutdated':
      return 'pending'
    case 'awaitingPairing':
      return state.mode === 'code' ? 'code_required' : 'qr_required'
    case 'connected':
      return 'connected'
    case 'reconnecting':
      return 'reconnecting'
    case 'loggedOut':
      return 'logged_out'
    default:
      return wasConnected ? 'reconnecting' : 'connecting'
  }
}

/** A JID from a phone number or a JID (`15551234567` → `15551234567@s.whatsapp.net`). */
export function toJid(value) {
  const text = String(value).trim()
  if (text.includes('@')) return text
  const digits = text.replace(/[^0-9]/g, '')
  return `${digits}@s.whatsapp.net`
}

/** The user part of a JID (`15551234567:3@s.whatsapp.net` → `15551234567`). */
export const userOf = (jid) => (jid ? String(jid).split('@')[0].split(':')[0] : null)

/** Public view of an instance row (no token hash). */
export function publicInstance(row, runtime) {
  return {
    ...(row.owner ? { worker: row.owner } : {}),
    id: row.id,
    name: row.name,
    state: row.state,
    reason: row.reason,
    stateAt: new Date(row.state_at).toISOString(),
    jid: row.jid ?? null,
    lid: row.lid ?? null,
    platform: row.platform ?? null,
    running: Boolean(runtime),
    autostart: Boolean(row.autostart),
    createdAt: new Date(row.created_at).toISOString(),
    deletedAt: row.deleted_at ? new Date(row.deleted_at).toISOString() : null,
    settings: JSON.parse(row.settings),
    proxy: row.proxy ? redactProxy(JSON.parse(row.proxy)) : null,
    history: JSON.parse(row.history),
  }
}

export function redactProxy(proxy) {
  const { password, ...rest } = proxy
  return { ...rest, hasPassword: Boolean(password) }
}

/** Waits for a predicate over events of one runtime (QR shown, state reached, ...). */
class Waiter {
  constructor(test, timeoutMs, onTimeout) {
    this.test = test
    this.promise = new Promise((resolve, reject) => {
      this.resolve = resolve
      this.reject = reject
    })
    this.timer = setTimeout(() => this.reject(onTimeout()), timeoutMs)
    this.timer.unref?.()
  }

  settle(kind, value) {
    clearTimeout(this.timer)
    if (kind === 'ok') this.resolve(value)
    else this.reject(value)
  }
}

/** One running instance: its walink connection, its QR and pairing code, its send queue. */
export class Runtime {
  /**
   * @param {Gateway} gateway
   * @param {object} row the instance row
   * @param {object | null} lease the worker's lease on it (several workers), else null
   */
  constructor(gateway, row, lease = null) {
    this.gateway = gateway
    this.id = row.id
    this.name = row.name
    this.lease = lease
    this.connection = null
    this.store = new GatewayStore(gateway.db, row.id, { lease })
    this.store.onEvents = (q, events) => this.writeEvents(q, events)
    this.store.afterEvents = (events) => this.eventsStored(events)
    this.sockets = new Set()
    this.qr = null // { payload, expiresAt, count }
    this.code = null // { code, phone, at }
    this.wasConnected = false
    this.storedConnected = false
    this.clientState = null
    this.state = row.state
    this.reason = row.reason
    this.waiters = new Set()
    this.sendChain = Promise.resolve()
    this.queued = 0
    this.lastSendAt = 0
    this.ended = false
    this.fenced = false
    this.started = null // start()'s promise
    this.closing = null // close()'s promise, once asked to close
    this.qrCount = 0
  }

  /** Starts the walink connection on this instance's store (once; `close` waits for it). */
  start() {
    this.started ??= this.#start()
    return this.started
  }

  async #start() {
    const gw = this.gateway
    const row = await gw.rowById(this.id)
    const proxy = row.proxy ? JSON.parse(row.proxy) : null
    const url = gw.config.waUrl
    const tls = url.startsWith('wss:')
    const agent = proxy ? new ProxyAgent(proxy, { tls }) : undefined
    this.connection = await connect({
      url,
      store: this.store,
      config: clientConfigOf(gw.config.clientConfig, JSON.parse(row.settings)),
      // The core's HTTP requests (app-state blobs) go through the proxy too, or fail.
      fetch: proxy ? proxyFetch(proxy) : undefined,
      // No socket without the lease (several workers): checked before every login, reconnects too.
      mayConnect: () => !this.fenced && (!this.lease || this.lease.valid()),
      socket: (target) => {
        const socket = new WebSocket(target, { origin: Client.endpoints().origin, agent, handshakeTimeout: 20_000, perMessageDeflate: false })
        this.sockets.add(socket)
        socket.on('close', () => this.sockets.delete(socket))
        socket.on('error', (error) => this.socketError(error))
        return socket
      },
      onEvent: (event) => this.onEvent(event),
      onError: (error) => {
        if (error.code === 'fenced') gw.metrics.fencedConnections++
        gw.log(error.code === 'fenced' ? 'info' : 'warn', `instance ${this.name}: ${error.code ?? 'error'}: ${error.message}`)
      },
    })
    this.connection.ended.then(({ error }) => this.onEnded(error))
  }

  socketError(error) {
    this.lastSocketError = error?.message ?? String(error)
  }

  /** At once, in memory (the rows follow in the step's transaction, `writeEvents`). */
  onEvent(event) {
    if (event.type === 'state') {
      this.clientState = event.state
      if (event.state.kind === 'connected') {
        this.wasConnected = true
        this.qr = null
        this.code = null
      }
    } else if (event.type === 'qr') {
      this.qrCount++
      this.qr = { payload: event.payload, expiresAt: event.expiresAt, count: this.qrCount }
    }
  }

  /** The rows of a step's events, in the transaction `q` of its key batch (src/store.js). */
  async writeEvents(q, events) {
    const gw = this.gateway
    for (const event of events) {
      if (event.type === 'state') await this.writeState(q, event)
      else if (event.type === 'qr') await gw.emit(q, this.id, 'instance.qr', { qr: event.payload, png: qrDataUrl(event.payload), expiresAt: event.expiresAt, count: this.qrCount })
      for (const feature of gw.features) await feature.clientEvents?.[event.type]?.(this, event, gw, q)
    }
  }

  async writeState(q, event) {
    const gw = this.gateway
    const { state, reason } = event
    if (state.kind === 'connected') {
      this.storedConnected = true
      gw.recoveryDelays.delete(this.id)
    }
    const next = gatewayState(state, this.storedConnected)
    let why = reasonText(reason)
    if (state.kind === 'replaced') why = 'replaced'
    if (state.kind === 'clientOutdated') why = 'client_outdated'
    if (reason?.kind === 'closed' && reason.reason?.kind === 'network' && this.lastSocketError) why = `${why}:${this.lastSocketError}`
    const row = await gw.rowById(this.id, q)
    // While the gateway closes the session, a disconnect is its own doing, whatever the reason.
    const ends = restsUnasked(event) && !(state.kind === 'disconnected' && this.closing)
    if (state.kind === 'reconnecting') gw.metrics.reconnects++
    await gw.setState(q, row, next, why, ends ? { autostart: 0 } : {})
    this.state = next
    this.reason = why
    if (state.kind === 'loggedOut') {
      await q.run('UPDATE instances SET jid = NULL, lid = NULL, platform = NULL WHERE id = ?', this.id)
      await gw.emit(q, this.id, 'instance.logged_out', { reason: why })
    }
  }

  /** The step's rows are durable: settle the waiters. */
  eventsStored(events) {
    for (const event of events) {
      for (const waiter of [...this.waiters]) {
        let verdict
        try {
          verdict = waiter.test(event, this)
        } catch (error) {
          verdict = { error }
        }
        if (!verdict) continue
        this.waiters.delete(waiter)
        if (verdict.error) waiter.settle('error', verdict.error)
        else waiter.settle('ok', verdict.value)
      }
      // A resting state the gateway did not ask for ends the session (see RESTING), once its row
      // (autostart off) is durable. Queued behind the driver's current step, so what the step
      // still carries out (the core's wipe of a logged-out device) is done first.
      if (event.type === 'state' && restsUnasked(event)) this.close()
    }
  }

  async onEnded(error) {
    this.ended = true
    const gw = this.gateway
    if (gw.runtimes.get(this.id) === this) gw.runtimes.delete(this.id)
    for (const waiter of this.waiters) waiter.settle('error', new ApiError(error?.code === 'fenced' ? 503 : 500, error?.code === 'fenced' ? 'owner_changed' : 'connection_ended', `the connection ended${error ? `: ${error.message}` : ''}`))
    this.waiters.clear()
    // Fenced: the instance belongs to another worker now; nothing of it may be written from here.
    if (gw.closing || this.fenced || error?.code === 'fenced') return
    if (this.closing || (gw.runtimes.has(this.id) && gw.runtimes.get(this.id) !== this)) return
    try {
      // A connection that ended without the gateway closing it (a fatal driver error) is not running any more.
      await gw.instanceTx(this.id, async (q) => {
        const row = await gw.rowById(this.id, q)
        if (row && !['logged_out', 'pending'].includes(row.state)) await gw.setState(q, row, 'pending', error ? `ended:${error.code ?? error.message}` : 'ended')
      })
    } catch (cause) {
      gw.log('warn', `instance ${this.name}: recording the end failed: ${cause.message}`)
    }
    // A store that failed (the database went away for a moment): start again soon, not at the
    // next reconcile heartbeat.
    if (error) gw.recover(this.id)
  }

  /** Drops the sockets at once and ends without writing anything (the lease is gone). */
  fence() {
    this.fenced = true
    for (const socket of this.sockets) socket.terminate()
    this.sockets.clear()
    if (this.connection && !this.ended) this.connection.close().catch(() => {})
  }

  /** Resolves with the first `test(event)` verdict `{ value }`, rejects on `{ error }` or after `ms`. */
  waitFor(test, ms, what) {
    const waiter = new Waiter(test, ms, () => new ApiError(504, 'timed_out', `no ${what} within ${ms} ms (state ${this.state}, reason ${this.reason})`))
    this.waiters.add(waiter)
    waiter.promise.catch(() => {})
    return waiter.promise.finally(() => this.waiters.delete(waiter))
  }

  /** Running: started or starting, and neither closing, fenced nor ended. */
  get live() {
    return !this.ended && !this.closing && !this.fenced
  }

  /** Any walink command, its error turned into an ApiError. */
  async command(command) {
    if (!this.connection || !this.live) throw new ApiError(409, 'not_running', `instance ${this.name} is not running`)
    try {
      return await this.connection.command(command)
    } catch (error) {
      throw fromCommandError(error)
    }
  }

  /** Runs `send` in this instance's send queue, paced `sendIntervalMs` apart. */
  paced(send) {
    const { sendIntervalMs, sendQueueMax } = this.gateway.config
    if (this.queued >= sendQueueMax) throw new ApiError(429, 'send_queue_full', `the send queue of ${this.name} holds ${sendQueueMax} messages`)
    this.queued++
    const run = this.sendChain.then(async () => {
      const wait = this.lastSendAt + sendIntervalMs - Date.now()
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
      this.lastSendAt = Date.now()
      return send()
    })
    this.sendChain = run.catch(() => {}).finally(() => this.queued--)
    return run
  }

  /**
   * Ends the session (the device stays paired unless the core logged it out); resolves once the
   * connection has ended. Called again, it answers the same promise.
   */
  close() {
    this.closing ??= (async () => {
      await this.started?.catch(() => {})
      if (this.connection && !this.ended) await this.connection.close()
    })().catch((error) => this.gateway.log('warn', `instance ${this.name}: closing failed: ${error.message}`))
    return this.closing
  }
}

export { openTunnel }

/** Runs `fn` over `items`, `limit` at a time. */
async function eachLimited(items, limit, fn) {
  let next = 0
  const worker = async () => {
    while (next < items.length) await fn(items[next++])
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}

/** The gateway: instance rows, runtimes, events and features. */
export class Gateway {
  constructor({ db, config, features, events, metrics, log }) {
    this.db = db
    this.config = config
    this.features = features
    this.events = events
    this.metrics = metrics
    this.log = log
    /** Set when several workers share a PostgreSQL database (src/cluster.js). */
    this.cluster = null
    this.runtimes = new Map()
    this.starting = new Map()
    this.recoveryDelays = new Map()
    this.closing = false
  }

  // --- rows ---

  rowById(id, q = this.db) {
    return q.get('SELECT * FROM instances WHERE id = ?', id)
  }

  /** The live (not deleted) instance named `name`, or a 404. */
  async instance(name) {
    const row = await this.db.get('SELECT * FROM instances WHERE name = ? AND deleted_at IS NULL', name)
    if (!row) throw new ApiError(404, 'not_found', `instance ${JSON.stringify(name)} not found`)
    return row
  }

  list({ includeDeleted = false } = {}) {
    return this.db.all(`SELECT * FROM instances ${includeDeleted ? '' : 'WHERE deleted_at IS NULL'} ORDER BY created_at, id`)
  }

  async setState(q, row, state, reason, extra = {}) {
    const now = Date.now()
    const sets = ['state = ?', 'reason = ?', 'state_at = ?']
    const args = [state, reason, now]
    for (const [column, value] of Object.entries(extra)) {
      sets.push(`${column} = ?`)
      args.push(value)
    }
    await q.run(`UPDATE instances SET ${sets.join(', ')} WHERE id = ?`, ...args, row.id)
    if (row.state !== state || row.reason !== reason) await this.emit(q, row.id, 'instance.state', { state, reason, previous: row.state, at: now })
  }

  /** Records an event (event log + webhook outbox) with `q`, inside the caller's transaction. */
  emit(q, instanceId, type, data) {
    return this.events.emit(q, instanceId, type, data)
  }

  /**
   * A transaction about one instance: with several workers it first checks that this worker still
   * holds the instance's lease (its epoch), and refuses with 503 otherwise.
   */
  async instanceTx(instanceId, fn) {
    const lease = this.cluster?.lease(instanceId) ?? null
    if (this.cluster && !lease) throw new ApiError(503, 'owner_changed', `instance ${instanceId} is not owned by this worker`)
    try {
      return await this.db.tx(async (q) => {
        await checkLease(q, instanceId, lease)
        return fn(q)
      })
    } catch (error) {
      if (error?.code === 'fenced') throw new ApiError(503, 'owner_changed', error.message)
      throw error
    }
  }

  async create({ name, token, settings = {}, proxy = null, history = { mode: 'none' } }, q) {
    const existing = await q.get('SELECT id FROM instances WHERE name = ? AND deleted_at IS NULL', name)
    if (existing) throw new ApiError(409, 'name_taken', `an instance named ${JSON.stringify(name)} exists`)
    const id = randomId('inst')
    const secret = token ?? newToken()
    const now = Date.now()
    const owner = this.cluster?.workerId ?? null
    await q.run(
      'INSERT INTO instances (id, name, token_hash, created_at, state, reason, state_at, settings, proxy, history, owner, epoch) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      id, name, hashToken(secret), now, 'pending', 'created', now, JSON.stringify({ ...DEFAULT_SETTINGS, ...settings }), proxy ? JSON.stringify(proxy) : null, JSON.stringify(history), owner, owner ? 1 : 0,
    )
    if (owner) q.onCommit(() => this.cluster.granted(id, 1))
    await this.emit(q, id, 'instance.created', { name })
    return { row: await this.rowById(id, q), token: secret }
  }

  async update(row, fields) {
    const sets = []
    const args = []
    for (const [column, value] of Object.entries(fields)) {
      sets.push(`${column} = ?`)
      args.push(value)
    }
    await this.instanceTx(row.id, (q) => q.run(`UPDATE instances SET ${sets.join(', ')} WHERE id = ?`, ...args, row.id))
    return this.rowById(row.id)
  }

  // --- runtimes ---

  /** The instance's running session (not one being closed), or undefined. */
  runtime(row) {
    const runtime = this.runtimes.get(row.id)
    return runtime?.live ? runtime : undefined
  }

  /** The running instance, or a 409 `not_connected`. */
  connected(row) {
    const runtime = this.runtime(row)
    if (!runtime || row.state !== 'connected') throw new ApiError(409, 'not_connected', `instance ${row.name} is ${row.state}, not connected`)
    return runtime
  }

  /** Starts the instance's connection (once; concurrent callers share the start). */
  async ensureRunning(row) {
    // A session being closed ends first: two clients never run on one device's keys.
    const previous = this.runtimes.get(row.id)
    if (previous?.closing) await previous.closing
    const running = this.runtimes.get(row.id)
    if (running?.live) return this.starting.get(row.id) ?? running
    let starting = this.starting.get(row.id)
    if (!starting) {
      const lease = this.cluster ? this.cluster.lease(row.id) : null
      if (this.cluster && !lease) throw new ApiError(503, 'owner_changed', `instance ${row.name} is not owned by this worker`)
      const runtime = new Runtime(this, row, lease)
      this.runtimes.set(row.id, runtime)
      starting = runtime
        .start()
        .then(() => runtime)
        .catch((error) => {
          if (this.runtimes.get(row.id) === runtime) this.runtimes.delete(row.id)
          throw new ApiError(500, 'start_failed', `starting ${row.name} failed: ${error.message}`)
        })
        .finally(() => this.starting.delete(row.id))
      this.starting.set(row.id, starting)
    }
    return starting
  }

  /**
   * Connects: a paired instance logs in; otherwise the QR (default) or, with `phone`, a pairing
   * code. Answers once the QR is shown, the server accepted the code, or the login is done.
   */
  async connect(row, { phone, history } = {}) {
    if (history) row = await this.update(row, { history: JSON.stringify(history) })
    const paired = Boolean(row.jid)
    const runtime = await this.ensureRunning(row)
    row = await this.rowById(row.id)
    if (!row.autostart) row = await this.update(row, { autostart: 1 })
    const timeout = this.config.connectTimeoutMs
    const failure = (event) => {
      if (event.type !== 'state') return null
      const kind = event.state.kind
      if (restsUnasked(event) || (kind === 'reconnecting' && !runtime.wasConnected)) {
        return { error: new ApiError(500, 'connect_failed', `connecting failed: ${runtime.reason}`, { state: runtime.state, reason: runtime.reason }) }
      }
      return null
    }
    if (paired) {
      if (row.state === 'connected' && runtime.clientState?.kind === 'connected') return { state: 'connected' }
      await runtime.waitFor((event) => (event.type === 'state' && event.state.kind === 'connected' ? { value: true } : failure(event)), timeout, 'login')
      return { state: 'connected' }
    }
    if (phone !== undefined) {
      const digits = String(phone).replace(/[^0-9]/g, '')
      if (runtime.code && runtime.code.phone === digits && Date.now() - runtime.code.at < this.config.pairCodeLifetimeMs) {
        return { state: 'code_required', code: runtime.code.code, phone: digits, reused: true }
      }
      let code
      try {
        code = await Promise.race([
          runtime.connection.pairWithCode(digits),
          runtime.waitFor(failure, timeout, 'pairing code'),
        ])
      } catch (error) {
        throw fromCommandError(error)
      }
      if (typeof code !== 'string' || code.length !== 8) throw new ApiError(502, 'no_code', 'the server answered without a pairing code')
      runtime.code = { code, phone: digits, at: Date.now() }
      return { state: 'code_required', code, phone: digits, reused: false }
    }
    if (row.state === 'connected') return { state: 'connected' }
    if (!runtime.qr || runtime.qr.expiresAt <= Date.now()) {
      await runtime.waitFor((event) => (event.type === 'qr' ? { value: true } : failure(event)), timeout, 'QR code')
    }
    const qr = runtime.qr
    return { state: 'qr_required', qr: qr.payload, png: qrDataUrl(qr.payload), expiresAt: qr.expiresAt, count: qr.count }
  }

  /** Status: what is true now, read from the row and the runtime; never connects. */
  async status(row) {
    const runtime = this.runtime(row)
    const { n } = await this.db.get('SELECT count(*) AS n FROM records WHERE instance_id = ?', row.id)
    return {
      ...publicInstance(row, runtime),
      records: n,
      qr: runtime?.qr ? { qr: runtime.qr.payload, expiresAt: runtime.qr.expiresAt, count: runtime.qr.count } : null,
      code: runtime?.code ? { code: runtime.code.code, phone: runtime.code.phone } : null,
    }
  }

  /** Closes `runtime` and forgets it (unless a newer session took its place meanwhile). */
  async closeRuntime(runtime) {
    if (!runtime) return
    await runtime.close()
    if (this.runtimes.get(runtime.id) === runtime) this.runtimes.delete(runtime.id)
  }

  /** Closes the socket (the device stays paired) and stops autostart. */
  async stop(row, reason = 'stopped') {
    await this.update(row, { autostart: 0 })
    await this.closeRuntime(this.runtimes.get(row.id))
    await this.instanceTx(row.id, async (q) => {
      const current = await this.rowById(row.id, q)
      if (current.state !== 'logged_out') await this.setState(q, current, 'pending', reason)
    })
  }

  /** Closes and connects again (a paired instance logs in again; keys untouched). */
  async restart(row) {
    await this.closeRuntime(this.runtimes.get(row.id))
    const current = await this.rowById(row.id)
    if (!current.jid) throw new ApiError(409, 'not_paired', `instance ${row.name} is not paired; connect it first`)
    await this.instanceTx(row.id, (q) => this.setState(q, current, 'connecting', 'restartRequested', { autostart: 1 }))
    return this.connect(await this.rowById(row.id))
  }

  /** Unlinks the device (the server forgets it, the keys are wiped); ends in logged_out. */
  async logout(row) {
    // A paired device is logged out on the server, so the phone forgets it too: log in first if needed.
    if (row.jid && row.state !== 'connected') {
      try {
        await this.connect(row)
        row = await this.rowById(row.id)
      } catch (error) {
        this.log('warn', `logout of ${row.name}: could not log in to unlink on the server (${error.message}); wiping locally`)
        row = await this.rowById(row.id)
      }
    }
    const runtime = this.runtime(row)
    if (runtime && row.state === 'connected') {
      try {
        await runtime.command({ type: 'logout' })
      } catch (error) {
        if (error.code !== 'ended' && error.code !== 'connection_ended') throw error
      }
      // The core wiped the keys and rests in loggedOut, where the gateway ends the session.
      await this.closeRuntime(runtime)
    } else {
      await this.closeRuntime(this.runtimes.get(row.id))
      await this.instanceTx(row.id, async (q) => {
        await q.run('DELETE FROM records WHERE instance_id = ?', row.id)
        await q.run('UPDATE instances SET jid = NULL, lid = NULL, platform = NULL WHERE id = ?', row.id)
        const current = await this.rowById(row.id, q)
        await this.setState(q, current, 'logged_out', 'logoutRequested', { autostart: 0 })
        if (row.jid) await this.emit(q, row.id, 'instance.logged_out', { reason: 'logoutRequested' })
      })
    }
    await this.instanceTx(row.id, async (q) => {
      const current = await this.rowById(row.id, q)
      if (current.state !== 'logged_out') await this.setState(q, current, 'logged_out', 'logoutRequested', { autostart: 0 })
    })
    return this.rowById(row.id)
  }

  /** Soft delete: logs the device out, wipes the keys, keeps the row with its delete time. */
  async remove(row) {
    if (row.jid || this.runtimes.has(row.id)) await this.logout(row)
    await this.instanceTx(row.id, async (q) => {
      await q.run('DELETE FROM records WHERE instance_id = ?', row.id)
      await q.run('UPDATE instances SET deleted_at = ?, autostart = 0 WHERE id = ?', Date.now(), row.id)
      await q.run('UPDATE webhooks SET enabled = 0 WHERE instance_id = ?', row.id)
      await this.emit(q, row.id, 'instance.deleted', { name: row.name })
    })
    return this.rowById(row.id)
  }

  // --- operations ---

  /** Starts `rows` (paired, to run), `resumeConcurrency` at a time, each until logged in; never shows a QR. */
  async resume(rows) {
    await eachLimited(rows, this.config.resumeConcurrency, async (row) => {
      if (this.closing || this.runtimes.has(row.id)) return
      if (this.cluster && !this.cluster.lease(row.id)) return
      try {
        const runtime = await this.ensureRunning(row)
        await runtime
          .waitFor((event) => (event.type === 'state' && ['connected', 'loggedOut', 'replaced', 'clientOutdated', 'reconnecting'].includes(event.state.kind) ? { value: true } : null), this.config.connectTimeoutMs, 'login')
          .catch(() => {})
      } catch (error) {
        this.log('warn', `resuming ${row.name} failed: ${error.message}`)
      }
    })
  }

  /** The rows this process should run: every paired autostart row (SQLite), or those it holds the lease of. */
  async rowsToRun() {
    const rows = await this.db.all('SELECT * FROM instances WHERE deleted_at IS NULL AND autostart = 1 AND jid IS NOT NULL ORDER BY created_at')
    return this.cluster ? rows.filter((row) => this.cluster.lease(row.id)) : rows
  }

  /** Resumes every paired instance that should run here. */
  async resumeAll() {
    const rows = await this.rowsToRun()
    await this.resume(rows)
    return rows.length
  }

  /**
   * Reconciles the live sessions with the store: starts paired instances that should run and do
   * not, closes sessions whose instance was deleted or stopped, and fixes rows that claim a state
   * no session backs (only the instances this worker owns, with several workers).
   */
  async heartbeat() {
    if (this.closing) return
    for (const [id, runtime] of this.runtimes) {
      const row = await this.rowById(id)
      if (!row || row.deleted_at) await this.closeRuntime(runtime)
    }
    let rows = await this.db.all('SELECT * FROM instances WHERE deleted_at IS NULL')
    if (this.cluster) rows = rows.filter((row) => this.cluster.lease(row.id))
    const orphaned = rows.filter((row) => !this.runtimes.has(row.id) && !this.starting.has(row.id) && !['pending', 'logged_out'].includes(row.state))
    for (const row of orphaned) await this.instanceTx(row.id, (q) => this.setState(q, row, 'pending', 'no_session')).catch(() => {})
    const missing = rows.filter((row) => row.autostart && row.jid && !this.runtimes.has(row.id))
    if (missing.length) await this.resume(missing)
  }

  /**
   * Starts an instance whose connection ended on an error again, if it should run here (paired,
   * autostart, the lease held): after 1 s, doubling up to 30 s while it keeps failing (reset once
   * it is connected).
   */
  recover(instanceId) {
    const delayMs = this.recoveryDelays.get(instanceId) ?? 1000
    this.recoveryDelays.set(instanceId, Math.min(delayMs * 2, 30_000))
    const timer = setTimeout(async () => {
      if (this.closing || this.runtimes.has(instanceId) || this.starting.has(instanceId)) return
      if (this.cluster && !this.cluster.lease(instanceId)) return
      let row
      try {
        row = await this.rowById(instanceId)
      } catch {
        this.recover(instanceId)
        return
      }
      if (row && !row.deleted_at && row.autostart && row.jid) await this.resume([row])
    }, delayMs)
    timer.unref?.()
  }

  /** The lease of these instances is gone: drop their sockets now, write nothing. */
  fenceAll() {
    for (const runtime of this.runtimes.values()) runtime.fence()
    this.runtimes.clear()
  }

  /** Drops one instance's runtime at once (its lease is gone). */
  fenceOne(instanceId) {
    const runtime = this.runtimes.get(instanceId)
    if (!runtime) return
    runtime.fence()
    this.runtimes.delete(instanceId)
  }

  /** Closes every session (devices stay paired); the rows keep autostart for the next start. */
  async shutdown() {
    this.closing = true
    await Promise.all([...this.runtimes.values()].map((runtime) => runtime.close().catch(() => {})))
    let rows = await this.db.all("SELECT * FROM instances WHERE deleted_at IS NULL AND state NOT IN ('pending', 'logged_out')")
    if (this.cluster) rows = rows.filter((row) => this.cluster.lease(row.id))
    for (const row of rows) await this.instanceTx(row.id, (q) => this.setState(q, row, 'pending', 'shutdown')).catch(() => {})
    this.runtimes.clear()
  }

  /** Counts of instances by state (the page and /metrics). */
  async counts() {
    const counts = Object.fromEntries(STATES.map((s) => [s, 0]))
    for (const { state, n } of await this.db.all('SELECT state, count(*) AS n FROM instances WHERE deleted_at IS NULL GROUP BY state')) counts[state] = n
    return counts
  }
}
