// Baileys' whole socket (`makeWASocket` of the `baileys` dev dependency) as an independent client
// of walink-sim's mock-server. Nothing of Baileys is patched on disk; two things are set at run
// time, as a DNS entry and a certificate store would be for a test server:
// - the Noise certificate root Baileys trusts (`WA_CERT_DETAILS.PUBLIC_KEY`) is the simulation's
//   test root instead of WhatsApp's;
// - requests to WhatsApp's media host (`https://mmg.whatsapp.net/...`, where Baileys downloads
//   history blobs and media and uploads media) go to the mock-server's control port, which
//   serves the simulation's blobs and takes uploads.
// A peer reconnects as a Baileys application does: on every close except a logout or its own stop.
import { mkdtemp, rm } from 'node:fs/promises'
import http from 'node:http'
import https from 'node:https'
import { syncBuiltinESMExports } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import makeWASocket, { Browsers, DisconnectReason, WA_CERT_DETAILS, initAuthCreds, proto, useMultiFileAuthState } from 'baileys'

import { testTrustRoot } from './mock-server.js'

const MEDIA_HOST = 'https://mmg.whatsapp.net'

/** Points Baileys' Noise certificate check at the simulation's test root. */
export function trustSimulationRoot() {
  WA_CERT_DETAILS.PUBLIC_KEY = Buffer.from(testTrustRoot())
  WA_CERT_DETAILS.SERIAL = 0
}

let mediaRedirect = null

/**
 * Sends requests for WhatsApp's media host to `controlUrl` (the mock-server's media host): `fetch`
 * (Baileys' downloads) and `https.request` (Baileys' uploads in Node, `uploadWithNodeHttp`).
 */
export function routeMediaHost(controlUrl) {
  if (!mediaRedirect) {
    const original = globalThis.fetch
    globalThis.fetch = (input, init) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url
      if (mediaRedirect && url.startsWith(MEDIA_HOST)) return original(mediaRedirect + url.slice(MEDIA_HOST.length), init)
      return original(input, init)
    }
    const request = https.request
    https.request = (options, callback) => {
      if (mediaRedirect && typeof options === 'object' && options.hostname === new URL(MEDIA_HOST).hostname) {
        const target = new URL(mediaRedirect)
        const { agent, ...rest } = options
        return http.request({ ...rest, hostname: target.hostname, port: target.port }, callback)
      }
      return request(options, callback)
    }
    syncBuiltinESMExports()
  }
  mediaRedirect = controlUrl
}

/** Baileys' logger interface: silent, or to stderr from `level` up (WALINK_BAILEYS_LOG=debug). */
function makeLogger(level) {
  const levels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal']
  const from = levels.indexOf(level)
  const logger = { level, child: () => logger }
  for (const [i, name] of levels.entries()) {
    logger[name] = from >= 0 && i >= from ? (obj, msg) => console.error(`[baileys ${name}]`, msg ?? '', typeof obj === 'string' ? obj : JSON.stringify(obj)?.slice(0, 400)) : () => {}
  }
  return logger
}

const UNDECRYPTABLE = proto.WebMessageInfo.StubType.CIPHERTEXT

/** The text of a Baileys message, if it has one. */
export function textOf(message) {
  const m = message.message
  return m?.conversation ?? m?.extendedTextMessage?.text ?? null
}

/**
 * An auth state held in memory only (Baileys' `AuthenticationState`: creds and a key store of
 * `get(type, ids)` / `set({ type: { id: value | null } })`), for measurements without disk.
 */
export function memoryAuthState() {
  const keys = new Map()
  const state = {
    creds: initAuthCreds(),
    keys: {
      async get(type, ids) {
        const found = {}
        for (const id of ids) {
          const value = keys.get(`${type}/${id}`)
          if (value !== undefined) found[id] = value
        }
        return found
      },
      async set(data) {
        for (const [type, values] of Object.entries(data)) {
          for (const [id, value] of Object.entries(values)) {
            if (value) keys.set(`${type}/${id}`, value)
            else keys.delete(`${type}/${id}`)
          }
        }
      },
    },
  }
  return { state, saveCreds: async () => {} }
}

/** One Baileys client: an auth directory (or an in-memory auth state), its current socket, and what it saw. */
export class BaileysPeer {
  #url
  #dir
  #logger
  #stopped = false
  #waiters = []
  #sent = new Map()

  /** The current socket (replaced on every reconnect). */
  sock = null
  /** Every message Baileys emitted in `messages.upsert`, in order. */
  messages = []
  /** Messages Baileys could not decrypt (stubs of type CIPHERTEXT). */
  undecryptable = []
  /** Status updates of sent messages (`messages.update`) and group receipts. */
  receipts = []
  /** How many times the socket opened. */
  opened = 0
  /** The messages of every history sync Baileys processed (`messaging-history.set`). */
  history = []
  /** The QR strings shown. */
  qrs = []

  /** Called with each message Baileys emits (decrypted or not). */
  onMessage = null

  #memoryAuth = null

  /**
   * `dir`: the auth directory (`useMultiFileAuthState`), or null to keep the auth state in
   * memory. `keep: false` keeps no messages in `messages` (for measurements); `onMessage` still
   * hears of each.
   */
  constructor({ url, dir, logLevel = process.env.WALINK_BAILEYS_LOG ?? 'silent', keep = true }) {
    this.#url = url
    this.#dir = dir
    this.#logger = makeLogger(logLevel)
    this.keep = keep
    if (!dir) this.#memoryAuth = memoryAuthState()
  }

  /** A peer with a fresh auth directory under the system's temporary directory. */
  static async create(url) {
    return new BaileysPeer({ url, dir: await mkdtemp(join(tmpdir(), 'walink-baileys-')) })
  }

  /** This account's phone-number JID (after pairing). */
  get jid() {
    const id = this.sock?.authState?.creds?.me?.id
    return id ? id.replace(/:\d+@/, '@') : null
  }

  /** Opens a socket from the auth directory (pairing if it holds no device yet). */
  async start() {
    this.#stopped = false
    const { state, saveCreds } = this.#memoryAuth ?? (await useMultiFileAuthState(this.#dir))
    const sock = makeWASocket({
      auth: state,
      waWebSocketUrl: this.#url,
      logger: this.#logger,
      browser: Browsers.ubuntu('Chrome'),
      markOnlineOnConnect: false,
      syncFullHistory: false,
      getMessage: async (key) => this.#sent.get(key.id),
    })
    this.sock = sock
    sock.ev.on('creds.update', saveCreds)
    sock.ev.on('connection.update', (update) => {
      if (sock !== this.sock) return
      if (update.qr) this.qrs.push(update.qr)
      if (update.connection === 'open') this.opened++
      if (update.connection === 'close') {
        const code = update.lastDisconnect?.error?.output?.statusCode
        if (!this.#stopped && code !== DisconnectReason.loggedOut) this.start().catch(() => {})
      }
      this.#notify()
    })
    sock.ev.on('messages.upsert', ({ messages }) => {
      if (sock !== this.sock) return
      for (const message of messages) {
        this.onMessage?.(message)
        if (message.messageStubType === UNDECRYPTABLE) this.undecryptable.push(message)
        else if (this.keep) this.messages.push(message)
      }
      this.#notify()
    })
    sock.ev.on('messaging-history.set', ({ messages }) => {
      this.history.push(...messages)
      this.#notify()
    })
    sock.ev.on('messages.update', (updates) => {
      for (const { key, update } of updates) if (update.status !== undefined) this.receipts.push({ key, status: update.status })
      this.#notify()
    })
    sock.ev.on('message-receipt.update', (updates) => {
      for (const { key, receipt } of updates) this.receipts.push({ key, receipt })
      this.#notify()
    })
    return sock
  }

  /** Sends a text; resolves with the sent message (kept for Baileys' retry answers). */
  async sendText(jid, text) {
    const sent = await this.sock.sendMessage(jid, { text })
    this.#sent.set(sent.key.id, sent.message)
    return sent
  }

  /** Resolves once `predicate(this)` holds; rejects after `ms`. */
  waitFor(predicate, what, ms = 20_000) {
    if (predicate(this)) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w.resolve !== resolve)
        reject(new Error(`Baileys: timed out waiting for ${what}; texts: ${JSON.stringify(this.messages.map(textOf))}`))
      }, ms)
      this.#waiters.push({ predicate, resolve: () => (clearTimeout(timer), resolve()) })
    })
  }

  /** Resolves with the first received message whose text is `text`. */
  async receives(text, ms) {
    const find = () => this.messages.find((m) => textOf(m) === text)
    await this.waitFor(() => find() !== undefined, `the text ${JSON.stringify(text)}`, ms)
    return find()
  }

  /** Resolves once the socket opened `count` times in all. */
  opens(count, ms) {
    return this.waitFor(() => this.opened >= count, `connection ${count} to open`, ms)
  }

  #notify() {
    for (const waiter of [...this.#waiters]) {
      if (waiter.predicate(this)) {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1)
        waiter.resolve()
      }
    }
  }

  /** Closes the socket without logging out; `start()` resumes from the auth directory. */
  stop() {
    this.#stopped = true
    this.sock?.end(undefined)
  }

  /** Stops and deletes the auth directory. */
  async dispose() {
    this.stop()
    if (this.#dir) await rm(this.#dir, { recursive: true, force: true })
  }
}
