// The driver: runs one walink Client (the wasm state machine) against a WebSocket, a store and
// one timer, following the core's contract (core/src/lib.rs):
// - every input (socket open, bytes, close, timer, command) is fed to the client one at a time,
//   and after each one the outputs are drained in order before the next input is fed;
// - a Persist batch is awaited before any later output is carried out, and a Load is answered
//   (store.load, then handleLoaded) before the next output; if the store rejects either,
//   the client is dropped, the socket closed, and a new client is built from the store (its
//   loadSpaces of the start spaces, or loadAll filtered when it has none):
//   the same path as a crash;
// - after each drain, pollTimeout() re-arms the single timer;
// - every event handed to onEvent also reaches the store, if it wants events: with the next
//   Persist of the step (`applyBatch(changes, { events })`), or, for events no Persist follows,
//   through `store.applyEvents(events)` before the next transmit, connect, close or the end of the
//   step; a command's promise settles only after the events before it reached the store;
// - a store error with code `fenced` (another process owns the store now) ends the connection
//   instead of rebuilding (a fenced process must never log in again); so does a `mayConnect()`
//   guard that refuses, consulted before every socket is opened;
// - a Fetch is carried out outside the input queue (fetch.js: one HTTP call) and answered with
//   handleFetched to the client that asked, if it is still the current one;
// - no state ends the loop: the client rests in loggedOut, replaced or clientOutdated until a
//   command (connect) or close(), as the core decides (core/src/lib.rs).
// The core never calls back into JavaScript: the driver owns every await.

import { performFetch } from './fetch.js'
import { decodeMessage, encodeMessage } from './content.js'

/** The close code and reason the driver uses when it closes a socket itself. */
const LOCAL_CLOSE = 1000

/** Runs `fn` after the current turn of the event loop (its I/O and promise jobs). */
const afterTurn = typeof setImmediate === 'function' ? setImmediate : (fn) => setTimeout(fn, 0)

/**
 * Builds `connect` for one platform.
 * - `createClient(config, records)`: a new core client (the wasm `Client`);
 * - `openSocket(url)`: the platform's default WebSocket-like object;
 * - `ready()`: resolves once the wasm module is loaded;
 * - `endpoints()`: the core's endpoints (`Client.endpoints()`): the default socket URL.
 */
export function makeConnect({ createClient, openSocket, ready, startSpaces, endpoints, mediaHost }) {
  return async function connect(options) {
    const { store } = options
    if (!store || typeof store.applyBatch !== 'function' || typeof store.loadAll !== 'function') {
      throw codedError('invalid_options', 'connect needs a store with applyBatch and loadAll')
    }
    await ready?.()
    const connection = new Connection({
      ...options,
      url: options.url ?? endpoints?.().chatUrl,
      createClient: options.createClient ?? createClient,
      startSpaces: options.createClient ? undefined : startSpaces,
      openSocket: typeof options.socket === 'function' ? options.socket : (u) => openSocket(u),
      mediaHost: options.mediaHost ?? mediaHost?.(options),
    })
    await connection.start()
    return connection
  }
}

const isBytes = (value) => value instanceof Uint8Array || value instanceof ArrayBuffer

function codedError(code, message, cause) {
  const error = new Error(message, cause === undefined ? undefined : { cause })
  error.code = code
  return error
}

/** A store operation failed: `fenced` when the store says so (ends), else `store_failed` (rebuilds). */
function storeFailure(what, cause) {
  return codedError(cause?.code === 'fenced' ? 'fenced' : 'store_failed', `${what}: ${cause?.message ?? cause}`, cause)
}

/** Copies what a socket delivered into a Uint8Array (ArrayBuffer, typed array or Node Buffer). */
function toBytes(data) {
  if (data instanceof Uint8Array) return data
  if (data instanceof ArrayBuffer) return new Uint8Array(data)
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  if (Array.isArray(data)) return new Uint8Array(Buffer.concat(data))
  throw codedError('invalid_socket_data', `the socket delivered ${typeof data}, not bytes`)
}

/** One running client: the object `connect` resolves to. */
export class Connection {
  #options
  #client = null
  #socket = null
  #socketId = 0
  #timer = null
  #timerAt = null
  #corked = null
  #queue = Promise.resolve()
  #pending = new Map()
  #ended = false
  #endedResolve
  #state = null
  // Events handed to onEvent that have not reached the store yet, and the command settlements
  // that wait for them.
  #unstoredEvents = []
  #settlements = []

  /** Resolves when the connection ended for good: close(), a fenced store, or a fatal error. */
  ended

  constructor(options) {
    this.#options = options
    this.ended = new Promise((resolve) => (this.#endedResolve = resolve))
  }

  /** The last `state` event's state (`{ kind, ... }`), or null before the first. */
  get state() {
    return this.#state
  }

  /** Builds the client from the store and runs its first outputs. */
  async start() {
    await this.#enqueue(async () => {
      await this.#build()
    })
  }

  // --- commands: each resolves with the command's output or rejects with its typed error ---

  /** Sends any core command (`{ type: 'sendText', to, text }`, ...); resolves with its output. */
  command(command) {
    return new Promise((resolve, reject) => {
      this.#enqueue(async () => {
        if (this.#ended || !this.#client) {
          reject(codedError('ended', 'the connection has ended'))
          return
        }
        let id
        try {
          id = this.#client.command(this.#now(), command)
        } catch (error) {
          // A malformed command (code invalid_command) fails alone; the client is untouched.
          reject(error)
          return
        }
        this.#pending.set(id, { resolve, reject })
        await this.#drain()
      }).catch(reject)
    })
  }

  /** Asks for a pairing code for `phone` (digits with country code); resolves with the code. */
  async pairWithCode(phone) {
    const output = await this.command({ type: 'pairWithCode', phone })
    return output.code
  }

  /** Sends a text message; resolves with `{ id }` once the server acknowledged it. */
  sendText(to, text) {
    return this.command({ type: 'sendText', to, text })
  }

  /**
   * Sends any content: a `wa.Message` as protobuf JSON (Baileys' `proto.IMessage` shape: a reply,
   * reaction, edit, revoke, poll, location, contact, media message, ...) or already encoded; resolves with `{ id }` once the server
   * acknowledged it. The core adds a message secret and the send time of add-ons.
   */
  sendMessage(to, message) {
    let bytes
    try {
      bytes = isBytes(message) ? message : encodeMessage(message)
    } catch (error) {
      return Promise.reject(error)
    }
    return this.command({ type: 'sendMessage', to, message: bytes })
  }

  /** Votes in a poll this device sent or received (options by name; none withdraws the vote). */
  sendPollVote(chat, pollId, options) {
    return this.command({ type: 'sendPollVote', chat, pollId, options })
  }

  /** Marks messages read. */
  markRead(chat, ids, sender) {
    return this.command({ type: 'markRead', chat, ids, sender })
  }

  /** The identity keys kept for a device: `{ kind: 'identity', address, identity?, pending? }`. */
  getIdentity(address) {
    return this.command({ type: 'getIdentity', address })
  }

  /** Trusts a device's new identity key (strict policy); refused messages are asked for again. */
  approveIdentity(address, identity) {
    return this.command({ type: 'approveIdentity', address, identity })
  }

  /**
   * Uploads and sends media (`{ kind, data, mimetype, caption?, ... }`); resolves with `{ id }`
   * at the ack. With `path` or `stream` (a Node stream or any async iterable of bytes) instead
   * of `data`, the file is encrypted a piece at a time into a temporary file the driver streams
   * to the media host: it never sits whole in memory (Node). In a browser, `blob` (a Blob or
   * File) or `stream` is encrypted a piece at a time into a Blob.
   */
  async sendMedia(to, media) {
    const { path, stream, blob, ...rest } = media
    const source = path ?? stream ?? blob
    if (source === undefined) return this.command({ ...rest, type: 'sendMedia', to })
    const host = this.#mediaHost()
    const hostBody = await host.prepareUpload(source, media.kind)
    try {
      return await this.command({ ...rest, type: 'sendMedia', to, hostBody })
    } finally {
      await host.releaseBody(hostBody.id)
    }
  }

  /**
   * Downloads and decrypts the media of a received `message` event; resolves with the plaintext.
   * With `{ to }` (a file path or a writable stream) the body is decrypted as it arrives into a
   * temporary file that becomes `to` only after the MAC and both hashes matched (Node); resolves
   * with `{ kind: 'mediaSaved', sink, length }`. In a browser `to` is `'blob'` or
   * `'arrayBuffer'` (the output then carries `blob` or `arrayBuffer`) or a WritableStream.
   */
  async downloadMedia(message, { to } = {}) {
    const { id, chat, sender } = message
    const command = {
      type: 'downloadMedia',
      id,
      chat,
      sender,
      // The raw wa.Message (the event's `message` is decoded content); the core unwraps it.
      message: message.raw ?? (message.message instanceof Uint8Array ? message.message : encodeMessage(message.message)),
    }
    if (to === undefined) return (await this.command(command)).data
    const host = this.#mediaHost()
    const sink = await host.newSink()
    let output
    try {
      output = await this.command({ ...command, sink })
    } catch (error) {
      await host.discardSink(sink)
      throw error
    }
    const committed = await host.commitSink(sink, to)
    return committed === undefined ? output : { ...output, [to]: committed }
  }

  #mediaHost() {
    const host = this.#options.mediaHost
    if (!host) throw codedError('unsupported', 'streamed media needs a media host (built in for Node)')
    return host
  }

  /** Unlinks this device (its records are deleted); the client then rests in `loggedOut`. */
  logout() {
    return this.command({ type: 'logout' })
  }

  /** Disconnects (the client stays paired; a later connect with the same store resumes). */
  async close() {
    await this.#enqueue(async () => {
      if (this.#ended) return
      if (this.#client) {
        const id = this.#client.command(this.#now(), { type: 'disconnect' })
        this.#pending.set(id, { resolve: () => {}, reject: () => {} })
        await this.#drain()
      }
      this.#end(null)
    })
  }

  // --- the loop ---

  #now() {
    return (this.#options.now ?? Date.now)()
  }

  /** Runs `step` after every earlier step has finished (one input at a time). */
  #enqueue(step) {
    const run = this.#queue.then(async () => {
      try {
        await step()
      } catch (error) {
        if (error?.code === 'fenced') this.#fenced(error)
        else if (error?.code === 'store_failed') await this.#rebuild(error)
        else throw error
      }
    })
    this.#queue = run.catch((error) => this.#fatal(error))
    return run
  }

  /** Feeds one input to the client, then drains; ignored once ended. */
  #input(feed) {
    return this.#enqueue(async () => {
      if (this.#ended || !this.#client) return
      feed(this.#client)
      await this.#drain()
    })
  }

  async #build() {
    // Only the spaces the core wants at start; it asks for the others with `load` outputs. A store
    // with `loadSpaces` reads just those; one without it is read whole and filtered.
    const store = this.#options.store
    const startSpaces = this.#options.startSpaces?.()
    let records
    if (startSpaces && typeof store.loadSpaces === 'function') {
      records = await store.loadSpaces(startSpaces)
    } else {
      records = await store.loadAll()
      if (startSpaces) records = records.filter((r) => startSpaces.includes(r.space))
    }
    this.#client = this.#options.createClient(this.#options.config ?? {}, records)
    await this.#drain()
  }

  /** A store failed: drop the client (its unsaved state is gone, as in a crash) and rebuild it. */
  async #rebuild(error) {
    this.#options.onError?.(error)
    this.#dropSocket()
    this.#clearTimer()
    this.#client?.free?.()
    this.#client = null
    this.#unstoredEvents = []
    this.#settle()
    for (const { reject } of this.#pending.values()) reject(codedError('client_rebuilt', 'the client was rebuilt from its store after a store failure', error))
    this.#pending.clear()
    try {
      await this.#build()
    } catch (cause) {
      if (cause?.code === 'fenced') this.#fenced(cause)
      else this.#fatal(cause)
    }
  }

  /** The store belongs to another owner now: end without reconnecting (see the top of the file). */
  #fenced(error) {
    if (this.#ended) return
    this.#options.onError?.(error)
    this.#end(error)
  }

  /** Hands the events not stored yet to `store.applyEvents` (when it has it), then settles commands. */
  async #storeEvents() {
    const events = this.#unstoredEvents
    if (events.length > 0) {
      this.#unstoredEvents = []
      const store = this.#options.store
      if (typeof store.applyEvents === 'function') {
        try {
          await store.applyEvents(events)
        } catch (cause) {
          throw storeFailure('the store failed to record events', cause)
        }
      }
    }
    this.#settle()
  }

  /** Settles the commands whose `commandDone` has reached the store. */
  #settle() {
    const settlements = this.#settlements
    this.#settlements = []
    for (const settle of settlements) settle()
  }

  /** Drains the client's outputs, carrying each out in order; then re-arms the timer. */
  async #drain() {
    const client = this.#client
    for (;;) {
      if (this.#client !== client || this.#ended) return
      const output = client.pollOutput()
      if (output === undefined || output === null) break
      switch (output.kind) {
        case 'connect':
          await this.#storeEvents()
          if (this.#options.mayConnect && !(await this.#options.mayConnect())) {
            throw codedError('fenced', 'mayConnect refused to open a socket: this process does not own the client any more')
          }
          if (this.#client !== client || this.#ended) return
          this.#openSocket()
          break
        case 'persist': {
          const events = this.#unstoredEvents
          this.#unstoredEvents = []
          try {
            await this.#options.store.applyBatch(output.changes, { events })
          } catch (cause) {
            throw storeFailure('the store failed to apply a batch', cause)
          }
          this.#settle()
          break
        }
        case 'fetch':
          this.#fetch(client, output)
          break
        case 'load': {
          let records
          try {
            records = await this.#options.store.load(output.keys)
          } catch (cause) {
            throw storeFailure('the store failed to load records', cause)
          }
          if (this.#client !== client || this.#ended) return
          client.handleLoaded(this.#now(), output.id, records)
          break
        }
        case 'transmit':
          await this.#storeEvents()
          if (this.#client !== client || this.#ended) return
          this.#send(output.bytes)
          break
        case 'event':
          this.#event(output.event)
          break
        case 'close':
          await this.#storeEvents()
          this.#dropSocket()
          break
        default:
          throw codedError('unknown_output', `unknown output kind ${output.kind}`)
      }
    }
    await this.#storeEvents()
    this.#armTimer()
  }

  #event(event) {
    // The core hands content over encoded; a Connection hands it on as protobuf JSON.
    if (event.type === 'message' && event.message instanceof Uint8Array) event.message = decodeMessage(event.message)
    if (event.type === 'commandDone') {
      const waiter = this.#pending.get(event.id)
      this.#pending.delete(event.id)
      if (waiter) {
        // Settled once the events before it (and this one) reached the store.
        if (event.result.ok) this.#settlements.push(() => waiter.resolve(event.result.output))
        else this.#settlements.push(() => waiter.reject(Object.assign(codedError(event.result.error.code, event.result.error.message), { detail: event.result.error })))
      }
    }
    this.#unstoredEvents.push(event)
    if (event.type === 'state') this.#state = event.state
    try {
      this.#options.onEvent?.(event)
    } catch (error) {
      // An application's handler must not break the loop; report it and go on.
      this.#options.onError?.(codedError('handler_failed', `onEvent threw: ${error?.message ?? error}`, error))
    }
  }

  /**
   * Carries out a fetch without holding up the input queue, then hands the result (a response
   * of any status, or the failure) to the client that asked, if it is still the current one.
   */
  #fetch(client, { id, request }) {
    performFetch(this.#options.fetch ?? globalThis.fetch, request, this.#options.mediaHost)
      .then(({ result, error }) => {
        if (error) this.#options.onError?.(error)
        return this.#enqueue(async () => {
          if (this.#ended || this.#client !== client) return
          client.handleFetched(this.#now(), id, result)
          await this.#drain()
        })
      })
      .catch((error) => this.#options.onError?.(error))
  }

  #armTimer() {
    const at = this.#ended || !this.#client ? null : this.#client.pollTimeout()
    // The same deadline as the armed timer (the usual case after a message): nothing to do.
    if (this.#timer !== null && at === this.#timerAt) return
    this.#clearTimer()
    if (at === undefined || at === null) return
    this.#timerAt = at
    const delay = Math.max(0, Math.min(at - this.#now(), 2 ** 31 - 1))
    this.#timer = setTimeout(() => {
      this.#timer = null
      this.#input((client) => client.handleTimeout(this.#now()))
    }, delay)
    this.#timer.unref?.()
  }

  #clearTimer() {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    this.#timerAt = null
  }

  #openSocket() {
    this.#dropSocket()
    const id = ++this.#socketId
    let socket
    try {
      socket = this.#options.openSocket(this.#options.url)
    } catch (error) {
      this.#options.onError?.(codedError('socket_failed', `opening the socket failed: ${error?.message ?? error}`, error))
      queueMicrotask(() => this.#socketClosed(id))
      return
    }
    this.#socket = socket
    socket.binaryType = 'arraybuffer'
    const current = () => this.#socketId === id
    socket.onopen = () => {
      if (current()) this.#input((client) => client.handleConnected(this.#now()))
    }
    socket.onmessage = (message) => {
      if (!current()) return
      let bytes
      try {
        bytes = toBytes(message.data)
      } catch (error) {
        this.#options.onError?.(error)
        return
      }
      // The socket may reuse its buffer: copy before the bytes wait in the queue.
      const copy = bytes.slice()
      this.#input((client) => client.handleBytes(this.#now(), copy))
    }
    socket.onclose = () => this.#socketClosed(id)
    socket.onerror = () => {}
  }

  #socketClosed(id) {
    if (this.#socketId !== id) return
    this.#socketId++
    this.#socket = null
    this.#input((client) => client.handleClosed(this.#now(), { kind: 'network' }))
  }

  #send(bytes) {
    const socket = this.#socket
    if (!socket || socket.readyState !== 1) return // the core learns of the close from onclose
    // A socket that can hold its writes (the Node socket: `cork`) sends everything of this turn
    // of the event loop in one system call: the receipts of a burst of messages leave together.
    if (this.#corked !== socket && typeof socket.cork === 'function') {
      this.#uncork()
      socket.cork()
      this.#corked = socket
      afterTurn(() => {
        if (this.#corked === socket) this.#uncork()
      })
    }
    socket.send(bytes)
  }

  /** Lets the held writes of the corked socket go. */
  #uncork() {
    const socket = this.#corked
    this.#corked = null
    socket?.uncork()
  }

  /** Closes the current socket without telling the client (it asked, or it is being dropped). */
  #dropSocket() {
    this.#uncork()
    const socket = this.#socket
    this.#socket = null
    this.#socketId++
    if (socket) {
      socket.onopen = socket.onmessage = socket.onclose = null
      socket.onerror = () => {}
      try {
        socket.close(LOCAL_CLOSE)
      } catch {
        // Closing a socket that never opened may throw; it is gone either way.
      }
    }
  }

  #fatal(error) {
    if (this.#ended) return
    this.#options.onError?.(error)
    this.#end(error)
  }

  #end(error) {
    if (this.#ended) return
    this.#ended = true
    this.#clearTimer()
    this.#dropSocket()
    this.#unstoredEvents = []
    this.#settle()
    for (const { reject } of this.#pending.values()) reject(codedError('ended', 'the connection has ended'))
    this.#pending.clear()
    this.#client?.free?.()
    this.#client = null
    this.#options.mediaHost?.dispose?.().catch((cause) => this.#options.onError?.(cause))
    this.#endedResolve({ error })
  }
}
