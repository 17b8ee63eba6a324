// Stand-ins for the driver's tests: a WebSocket-like object driven by the test, and stores that
// delay or fail on demand.
import { MemoryStore } from '../../src/store.js'

/** A WebSocket-like object: the test opens it, feeds it bytes and closes it. */
export class FakeSocket {
  static CONNECTING = 0
  static OPEN = 1
  static CLOSED = 3

  constructor(url, log) {
    this.url = url
    this.log = log
    this.readyState = FakeSocket.CONNECTING
    this.sent = []
    this.closedByDriver = false
    this.onopen = this.onmessage = this.onclose = this.onerror = null
  }

  open() {
    this.readyState = FakeSocket.OPEN
    this.onopen?.({})
  }

  receive(bytes) {
    this.onmessage?.({ data: new Uint8Array(bytes).buffer })
  }

  /** The peer (or the network) closes the socket. */
  drop() {
    this.readyState = FakeSocket.CLOSED
    this.onclose?.({ code: 1006 })
  }

  send(bytes) {
    if (this.readyState !== FakeSocket.OPEN) throw new Error('send on a socket that is not open')
    this.sent.push(Uint8Array.from(bytes))
    this.log?.push(`send ${Buffer.from(bytes).toString('hex')}`)
  }

  close() {
    this.closedByDriver = true
    this.readyState = FakeSocket.CLOSED
  }
}

/** A MemoryStore that logs each batch, can hold a batch until released, and can fail the next batch. */
export class ControlledStore extends MemoryStore {
  constructor(log) {
    super()
    this.log = log
    this.hold = false
    this.held = []
    this.failNext = 0
    this.batches = 0
  }

  async applyBatch(changes) {
    if (this.failNext > 0) {
      this.failNext--
      this.log?.push('persist failed')
      throw Object.assign(new Error('disk full'), { code: 'io' })
    }
    if (this.hold) await new Promise((resolve) => this.held.push(resolve))
    await super.applyBatch(changes)
    this.batches++
    this.log?.push(`persist ${changes.map((c) => `${c.op} ${c.space}/${c.key}`).join(', ')}`)
  }

  release() {
    const held = this.held
    this.held = []
    for (const resolve of held) resolve()
  }
}

/** Resolves after the microtask queue and pending timers of this tick have run. */
export const settle = () => new Promise((resolve) => setImmediate(resolve))
