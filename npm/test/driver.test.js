// The driver's loop against a scripted core (FakeCore: a tiny protocol with the real Client's
// shape), a fake socket and controllable stores: the ordering rules, store failures, sockets that
// close mid-frame, timers and commands. test/client-*.test.js run the driver on the real wasm core.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { makeConnect } from '../src/driver.js'
import { ControlledStore, FakeSocket, settle } from './support/fakes.js'

/**
 * A scripted core: a fresh one persists a device record then asks to connect; once connected it
 * sends "hello" (0x68); frames are one length byte then the payload; each frame received is
 * persisted (session/m<n>) before it is acknowledged with 0x61 + payload; a close drops a partial
 * frame and reconnects after 100 ms.
 */
class FakeCore {
  static built = []

  constructor(config, records) {
    this.config = config
    this.records = records
    this.out = []
    this.buffer = []
    this.timeout = undefined
    this.freed = false
    this.received = records.filter((r) => r.space === 'session').length
    this.nextId = 1
    this.connected = false
    this.closes = []
    FakeCore.built.push(this)
    if (!records.some((r) => r.space === 'device')) {
      this.out.push({ kind: 'persist', changes: [{ op: 'put', space: 'device', key: '', value: new Uint8Array([7]) }] })
    }
    this.out.push({ kind: 'connect' })
  }

  handleConnected() {
    this.connected = true
    this.out.push({ kind: 'event', event: { type: 'state', state: { kind: 'connected' }, reason: { kind: 'loggedIn' } } })
    this.out.push({ kind: 'transmit', bytes: new Uint8Array([0x68]) })
  }

  handleBytes(now, bytes) {
    this.buffer.push(...bytes)
    while (this.buffer.length > 0 && this.buffer.length >= 1 + this.buffer[0]) {
      const payload = this.buffer.slice(1, 1 + this.buffer[0])
      this.buffer = this.buffer.slice(1 + this.buffer[0])
      const n = ++this.received
      this.out.push({ kind: 'persist', changes: [{ op: 'put', space: 'session', key: `m${n}`, value: new Uint8Array(payload) }] })
      this.out.push({ kind: 'transmit', bytes: new Uint8Array([0x61, ...payload]) })
      this.out.push({ kind: 'event', event: { type: 'message', n } })
    }
  }

  handleClosed(now, reason) {
    this.closes.push({ reason, partial: this.buffer.length })
    this.buffer = []
    this.connected = false
    this.timeout = now + 100
    this.out.push({ kind: 'event', event: { type: 'state', state: { kind: 'reconnecting', attempt: 1, at: now + 100 }, reason: { kind: 'network' } } })
  }

  handleTimeout(now) {
    if (this.timeout !== undefined && now >= this.timeout) {
      this.timeout = undefined
      this.out.push({ kind: 'connect' })
    }
  }

  command(now, command) {
    const id = this.nextId++
    if (command.type === 'sendText') {
      if (!this.connected) {
        this.out.push({ kind: 'event', event: { type: 'commandDone', id, result: { ok: false, error: { code: 'not_connected' } } } })
      } else {
        this.out.push({ kind: 'persist', changes: [{ op: 'put', space: 'sent', key: String(id), value: new TextEncoder().encode(command.text) }] })
        this.out.push({ kind: 'transmit', bytes: new Uint8Array([0x73, ...new TextEncoder().encode(command.text)]) })
        this.out.push({ kind: 'event', event: { type: 'commandDone', id, result: { ok: true, output: { kind: 'messageSent', id: `M${id}` } } } })
      }
    } else if (command.type === 'lookup') {
      // Needs a record it does not hold: asks the host to load it, and answers once loaded.
      this.lookups = (this.lookups ?? new Map()).set(77, id)
      this.out.push({ kind: 'load', id: 77, keys: [{ space: 'session', key: command.key }, { space: 'session', key: 'absent' }] })
    } else if (command.type === 'logout') {
      this.out.push({ kind: 'event', event: { type: 'commandDone', id, result: { ok: true, output: { kind: 'none' } } } })
      this.out.push({ kind: 'event', event: { type: 'state', state: { kind: 'loggedOut' }, reason: { kind: 'logoutCommand' } } })
      this.out.push({ kind: 'persist', changes: [{ op: 'delete', space: 'device', key: '' }] })
      this.out.push({ kind: 'close', reason: { kind: 'local' } })
    } else {
      this.out.push({ kind: 'event', event: { type: 'commandDone', id, result: { ok: true, output: { kind: 'none' } } } })
    }
    return id
  }

  handleLoaded(now, id, records) {
    const command = this.lookups.get(id)
    this.out.push({ kind: 'transmit', bytes: new Uint8Array([0x6c, records.length]) })
    this.out.push({ kind: 'event', event: { type: 'commandDone', id: command, result: { ok: true, output: { kind: 'found', values: records.map((r) => [...r.value]) } } } })
  }

  pollOutput() {
    return this.out.shift()
  }

  pollTimeout() {
    return this.timeout
  }

  free() {
    this.freed = true
  }
}

function harness({ store, now } = {}) {
  const log = []
  const sockets = []
  const events = []
  const errors = []
  store ??= new ControlledStore(log)
  store.log = log
  FakeCore.built = []
  const connect = makeConnect({ createClient: (config, records) => new FakeCore(config, records), openSocket: () => assert.fail('no default socket in tests') })
  const start = () =>
    connect({
      url: 'ws://test',
      store,
      config: { name: 'test' },
      now,
      socket: (url) => {
        const socket = new FakeSocket(url, log)
        sockets.push(socket)
        log.push('open socket')
        return socket
      },
      onEvent: (event) => {
        events.push(event)
        log.push(`event ${event.type}${event.state ? ' ' + event.state.kind : ''}`)
      },
      onError: (error) => errors.push(error),
    })
  return { log, sockets, events, errors, store, start }
}

test('a fresh client persists its device record before it opens the socket', async () => {
  const h = harness()
  h.store.hold = true
  const starting = h.start()
  await settle()
  assert.deepEqual(h.log, [], 'nothing happens while the device record is being stored')
  h.store.release()
  const connection = await starting
  assert.deepEqual(h.log, ['persist put device/', 'open socket'])
  h.sockets[0].open()
  await settle()
  assert.deepEqual(h.log.slice(2), ['event state connected', 'send 68'])
  assert.deepEqual(connection.state, { kind: 'connected' })
  await connection.close()
})

test('each batch is applied before any later output, and inputs wait for it', async () => {
  const h = harness()
  const connection = await h.start()
  h.sockets[0].open()
  await settle()
  h.log.length = 0
  h.store.hold = true
  h.sockets[0].receive([2, 0xaa, 0xbb, 1, 0xcc])
  h.sockets[0].receive([1, 0xdd])
  await settle()
  assert.deepEqual(h.log, [], 'the first frame waits on its batch, and so does everything after it')
  for (let i = 0; i < 3; i++) {
    h.store.release()
    await settle()
  }
  assert.deepEqual(h.log, [
    'persist put session/m1',
    'send 61aabb',
    'event message',
    'persist put session/m2',
    'send 61cc',
    'event message',
    'persist put session/m3',
    'send 61dd',
    'event message',
  ])
  await connection.close()
})

test('a socket that can cork gets every write of a turn in one go, in order, and is uncorked before it closes', async () => {
  const h = harness()
  const connection = await h.start()
  const socket = h.sockets[0]
  socket.corked = 0
  socket.cork = () => (socket.corked++, h.log.push('cork'))
  socket.uncork = () => (socket.corked--, h.log.push('uncork'))
  socket.open()
  await settle()
  await settle()
  assert.equal(socket.corked, 0)
  h.log.length = 0
  // Three frames in two socket messages of one turn: their three answers are held together.
  socket.receive([2, 0xaa, 0xbb, 1, 0xcc])
  socket.receive([1, 0xdd])
  for (let i = 0; i < 20; i++) await Promise.resolve()
  assert.equal(socket.corked, 1, 'held while the turn lasts')
  await settle()
  assert.equal(socket.corked, 0)
  assert.deepEqual(
    h.log.filter((line) => !line.startsWith('persist') && !line.startsWith('event')),
    ['cork', 'send 61aabb', 'send 61cc', 'send 61dd', 'uncork'],
  )
  // A write, then the driver closes the socket in the same turn: uncorked first.
  h.log.length = 0
  socket.receive([1, 0xee])
  for (let i = 0; i < 20; i++) await Promise.resolve()
  await connection.close()
  assert.equal(socket.corked, 0)
  const closing = h.log.filter((line) => ['cork', 'uncork', 'send 61ee'].includes(line))
  assert.deepEqual(closing, ['cork', 'send 61ee', 'uncork'])
  assert.ok(socket.closedByDriver)
})

test('a store that throws drops the client and rebuilds it from the store', async () => {
  const h = harness()
  const connection = await h.start()
  h.sockets[0].open()
  h.sockets[0].receive([1, 0x01])
  await settle()
  assert.equal(FakeCore.built.length, 1)
  h.log.length = 0
  h.store.failNext = 1
  h.sockets[0].receive([1, 0x02])
  await settle()
  await settle()
  // Nothing of the failed step left: no acknowledgement, the old socket closed by the driver.
  assert.deepEqual(h.log, ['persist failed', 'open socket'])
  assert.equal(h.errors[0].code, 'store_failed')
  assert.ok(h.sockets[0].closedByDriver)
  assert.equal(FakeCore.built.length, 2)
  assert.ok(FakeCore.built[0].freed)
  const rebuilt = FakeCore.built[1]
  assert.deepEqual(rebuilt.records.map((r) => `${r.space}/${r.key}`).sort(), ['device/', 'session/m1'])
  // The rebuilt client carries on: the next frame is m2 again, stored then acknowledged.
  h.sockets[1].open()
  h.sockets[1].receive([1, 0x02])
  await settle()
  assert.deepEqual(h.log.slice(2), ['event state connected', 'send 68', 'persist put session/m2', 'send 6102', 'event message'])
  await connection.close()
})

test('a socket closed mid-frame: the client hears of it, drops the partial frame and reconnects on its timer', async () => {
  let clock = 1_000_000
  const h = harness({ now: () => clock })
  const connection = await h.start()
  h.sockets[0].open()
  h.sockets[0].receive([3, 0x01])
  await settle()
  h.sockets[0].drop()
  await settle()
  const core = FakeCore.built[0]
  assert.deepEqual(core.closes, [{ reason: { kind: 'network' }, partial: 2 }])
  assert.equal(h.sockets.length, 1)
  clock += 100
  await new Promise((resolve) => setTimeout(resolve, 120))
  assert.equal(h.sockets.length, 2, 'reconnected when the timer fired')
  h.sockets[1].open()
  h.sockets[1].receive([1, 0x09])
  await settle()
  assert.equal(core.received, 1)
  assert.deepEqual((await h.store.loadAll()).filter((r) => r.space === 'session').map((r) => [...r.value]), [[9]])
  // A late close of the old socket is not the new socket's close.
  h.sockets[0].onclose?.({})
  await settle()
  assert.equal(core.closes.length, 1)
  await connection.close()
})

test('commands resolve with their output or reject with a typed error', async () => {
  const h = harness()
  const connection = await h.start()
  await assert.rejects(connection.sendText('1@s.whatsapp.net', 'too early'), { code: 'not_connected' })
  h.sockets[0].open()
  await settle()
  h.log.length = 0
  const sent = await connection.sendText('1@s.whatsapp.net', 'hi')
  assert.deepEqual(sent, { kind: 'messageSent', id: 'M2' })
  assert.deepEqual(h.log, ['persist put sent/2', 'send 736869', 'event commandDone'])
  await connection.close()
  await assert.rejects(connection.sendText('1@s.whatsapp.net', 'after close'), { code: 'ended' })
  assert.deepEqual(await connection.ended, { error: null })
})

test('a load is answered from the store before the next output', async () => {
  const h = harness()
  const connection = await h.start()
  h.sockets[0].open()
  h.sockets[0].receive([2, 0xab, 0xcd])
  await settle()
  h.log.length = 0
  const found = await connection.command({ type: 'lookup', key: 'm1' })
  assert.deepEqual(found, { kind: 'found', values: [[0xab, 0xcd]] })
  assert.deepEqual(h.log, ['send 6c01', 'event commandDone'])
  await connection.close()
})

test('logout carries out the outputs queued with loggedOut; the client rests until close()', async () => {
  const h = harness()
  const connection = await h.start()
  h.sockets[0].open()
  await settle()
  await connection.logout()
  await settle()
  assert.equal(connection.state.kind, 'loggedOut')
  assert.deepEqual((await h.store.loadAll()).map((r) => r.space), [])
  assert.ok(h.sockets[0].closedByDriver)
  // Not ended: no state is a dead end, the host may still command the client.
  assert.deepEqual(await connection.command({ type: 'connect' }), { kind: 'none' })
  await connection.close()
  assert.deepEqual(await connection.ended, { error: null })
})

test('an onEvent handler that throws is reported and does not stop the loop', async () => {
  const h = harness()
  let thrown = 0
  const connect = makeConnect({ createClient: (c, r) => new FakeCore(c, r) })
  const sockets = []
  const connection = await connect({
    store: h.store,
    socket: (url) => {
      const s = new FakeSocket(url)
      sockets.push(s)
      return s
    },
    onEvent: () => {
      thrown++
      throw new Error('app bug')
    },
    onError: (e) => h.errors.push(e),
  })
  sockets[0].open()
  sockets[0].receive([1, 5])
  await settle()
  assert.equal(thrown, 2)
  assert.deepEqual(h.errors.map((e) => e.code), ['handler_failed', 'handler_failed'])
  assert.equal(sockets[0].sent.length, 2)
  await connection.close()
})

test('a malformed command fails alone and the connection goes on', async () => {
  const h = harness()
  const connection = await h.start()
  const core = FakeCore.built[0]
  core.command = (now, command) => {
    if (command.type === 'fly') throw Object.assign(new Error('unknown command'), { code: 'invalid_command' })
    return FakeCore.prototype.command.call(core, now, command)
  }
  await assert.rejects(connection.command({ type: 'fly' }), { code: 'invalid_command' })
  h.sockets[0].open()
  await settle()
  assert.deepEqual(await connection.sendText('1@s.whatsapp.net', 'still here'), { kind: 'messageSent', id: 'M1' })
  await connection.close()
})

test('connect refuses a missing store', async () => {
  const connect = makeConnect({ createClient: (c, r) => new FakeCore(c, r) })
  await assert.rejects(connect({}), { code: 'invalid_options' })
})

/** A store that records the events the driver hands it, and can say it is fenced. */
class EventStore extends ControlledStore {
  constructor() {
    super()
    this.fencedNow = false
    this.recorded = []
  }

  async applyBatch(changes, { events } = {}) {
    if (this.fencedNow) throw Object.assign(new Error('another process owns this store'), { code: 'fenced' })
    await super.applyBatch(changes)
    this.recorded.push({ batch: changes.map((c) => `${c.space}/${c.key}`), events: events.map((e) => e.type) })
  }

  async applyEvents(events) {
    if (this.fencedNow) throw Object.assign(new Error('another process owns this store'), { code: 'fenced' })
    this.log?.push(`store events ${events.map((e) => e.type).join(',')}`)
    this.recorded.push({ events: events.map((e) => e.type) })
  }

  async loadAll() {
    if (this.fencedNow) throw Object.assign(new Error('another process owns this store'), { code: 'fenced' })
    return super.loadAll()
  }
}

test('events reach the store with the batch after them, or before the next transmit; commands settle after', async () => {
  const store = new EventStore()
  const h = harness({ store })
  const connection = await h.start()
  h.sockets[0].open()
  await settle()
  // The state event reached the store before the hello left.
  assert.deepEqual(h.log.slice(-3), ['event state connected', 'store events state', 'send 68'])
  store.recorded.length = 0
  h.sockets[0].receive([1, 0x01, 1, 0x02])
  await settle()
  assert.deepEqual(store.recorded, [
    { batch: ['session/m1'], events: [] },
    { batch: ['session/m2'], events: ['message'] },
    { events: ['message'] },
  ])
  store.recorded.length = 0
  h.log.length = 0
  const sending = connection.sendText('1@s.whatsapp.net', 'hi')
  const sent = await sending
  assert.deepEqual(sent, { kind: 'messageSent', id: 'M1' })
  assert.deepEqual(h.log, ['persist put sent/1', 'send 736869', 'event commandDone', 'store events commandDone'])
  await connection.close()
})

test('a fenced store ends the connection: no rebuild, no reconnect', async () => {
  const store = new EventStore()
  const h = harness({ store })
  const connection = await h.start()
  h.sockets[0].open()
  await settle()
  store.fencedNow = true
  h.sockets[0].receive([1, 0x05])
  const { error } = await connection.ended
  assert.equal(error.code, 'fenced')
  assert.equal(FakeCore.built.length, 1, 'no client rebuilt')
  assert.equal(h.sockets.length, 1, 'no socket opened again')
  assert.ok(h.sockets[0].closedByDriver)
  assert.deepEqual(h.sockets[0].sent.map((b) => Buffer.from(b).toString('hex')), ['68'], 'nothing of the refused step left')
  assert.deepEqual(h.errors.map((e) => e.code), ['fenced'])
  await assert.rejects(connection.sendText('1@s.whatsapp.net', 'late'), { code: 'ended' })
})

test('a store fenced at start or at a rebuild ends the connection', async () => {
  const store = new EventStore()
  await store.applyBatch([{ op: 'put', space: 'device', key: '', value: new Uint8Array([7]) }], { events: [] })
  store.fencedNow = true
  const h = harness({ store })
  const connection = await h.start()
  assert.equal((await connection.ended).error.code, 'fenced')
  assert.equal(h.sockets.length, 0)
})

test('mayConnect is asked before every socket; a refusal ends the connection as fenced', async () => {
  let clock = 1_000_000
  let allowed = true
  let asked = 0
  const h = harness({ now: () => clock })
  const connect = makeConnect({ createClient: (c, r) => new FakeCore(c, r) })
  const sockets = []
  const connection = await connect({
    store: h.store,
    now: () => clock,
    mayConnect: async () => {
      asked++
      return allowed
    },
    socket: (url) => {
      const s = new FakeSocket(url)
      sockets.push(s)
      return s
    },
    onError: (e) => h.errors.push(e),
  })
  assert.equal(asked, 1)
  assert.equal(sockets.length, 1)
  sockets[0].open()
  await settle()
  allowed = false
  sockets[0].drop()
  await settle()
  clock += 100
  await new Promise((resolve) => setTimeout(resolve, 120))
  const { error } = await connection.ended
  assert.equal(asked, 2)
  assert.equal(error.code, 'fenced')
  assert.equal(sockets.length, 1, 'the refused reconnect opened no socket')
})
