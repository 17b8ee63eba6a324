// The wasm Client and the driver on it: outputs of a fresh and a restored client, typed errors
// with stable codes, and the driver's rules on the real core with a fake socket (persist before
// anything else, a store that throws, a socket closed mid-frame, commands in the wrong state).
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { Client, connect } from 'walink'
import { ControlledStore, FakeSocket, settle } from './support/fakes.js'

const SEED = Uint8Array.from({ length: 32 }, (_, i) => i)
const NOW = 1_760_000_000_000
const config = (extra = {}) => ({ unsafeTestRngSeed: SEED, ...extra })

function drain(client) {
  const outputs = []
  for (let output; (output = client.pollOutput()) !== undefined; ) outputs.push(output)
  return outputs
}

function persisted(outputs) {
  const records = new Map()
  for (const output of outputs.filter((o) => o.kind === 'persist')) {
    for (const c of output.changes) {
      if (c.op === 'put') records.set(`${c.space}\0${c.key}`, { space: c.space, key: c.key, value: c.value })
      else if (c.op === 'delete') records.delete(`${c.space}\0${c.key}`)
      else records.clear()
    }
  }
  return [...records.values()]
}

test('a fresh client persists its device before it asks to connect', () => {
  const client = new Client(config(), [])
  const outputs = drain(client)
  const kinds = outputs.map((o) => o.kind)
  assert.ok(kinds.indexOf('persist') >= 0 && kinds.indexOf('persist') < kinds.indexOf('connect'), kinds.join(','))
  const device = persisted(outputs).find((r) => r.space === 'device')
  assert.ok(device.value instanceof Uint8Array && device.value.length > 0)
  assert.ok(Client.startSpaces().includes('device'))
  const state = outputs.find((o) => o.kind === 'event' && o.event.type === 'state')
  assert.equal(typeof state.event.state.kind, 'string')
  client.free()
})

test('a restored client keeps its device and starts with the connection header', () => {
  const records = persisted(drain(new Client(config(), [])))
  const client = new Client(config(), records)
  const outputs = drain(client)
  assert.ok(outputs.some((o) => o.kind === 'connect'))
  assert.ok(!persisted(outputs).some((r) => r.space === 'device'))
  client.handleConnected(NOW)
  const transmit = drain(client).find((o) => o.kind === 'transmit')
  assert.deepEqual([...transmit.bytes.subarray(0, 4)], [0x57, 0x41, 6, 3])
  assert.equal(typeof client.pollTimeout(), 'number')
})

test('bad input is an Error with a stable code', () => {
  const codeOf = (fn) => {
    try {
      fn()
    } catch (error) {
      assert.ok(error instanceof Error)
      return error.code
    }
    assert.fail('did not throw')
  }
  assert.equal(codeOf(() => new Client({ unsafeTestRngSeed: new Uint8Array(3) }, [])), 'invalid_config')
  assert.equal(codeOf(() => new Client({ webVersion: 'two' }, [])), 'invalid_config')
  assert.equal(codeOf(() => new Client({ noSuchOption: 1 }, [])), 'invalid_config')
  // A trust root that cannot check signatures (all zeros, or of small order) is refused.
  const smallOrder = new Uint8Array(32)
  smallOrder[0] = 1
  for (const trustRoot of [new Uint8Array(32), smallOrder]) {
    assert.equal(codeOf(() => new Client(config({ trustRoot }), [])), 'invalid_config')
  }
  assert.equal(codeOf(() => new Client(config(), [{ space: 'no-such-space', key: 'k', value: new Uint8Array() }])), 'invalid_record')
  assert.equal(codeOf(() => new Client(config(), [{ space: 'device', key: 'device', value: new Uint8Array([255, 0, 1]) }])), 'restore_malformed')
  assert.equal(codeOf(() => new Client(config(), [{ space: 'session', key: '1.0@s.whatsapp.net', value: new Uint8Array() }])), 'restore_missing_device')
  const client = new Client(config(), [])
  assert.equal(codeOf(() => client.command(NOW, { type: 'fly' })), 'invalid_command')
  assert.equal(codeOf(() => client.command(NOW, { type: 'sendText', to: 'x' })), 'invalid_command')
})

test('commands in the wrong state end in typed errors, each exactly once', () => {
  const client = new Client(config(), [])
  drain(client)
  const ids = [
    client.command(NOW, { type: 'pairWithCode', phone: '12' }),
    client.command(NOW, { type: 'sendText', to: '15551234567@s.whatsapp.net', text: 'hi' }),
    client.command(NOW, { type: 'connect' }),
  ]
  const done = drain(client).filter((o) => o.kind === 'event' && o.event.type === 'commandDone').map((o) => o.event)
  assert.deepEqual(done.map((e) => e.id).sort(), [...ids].sort())
  for (const event of done) assert.equal(event.result.ok, false)
  assert.equal(done.find((e) => e.id === ids[0]).result.error.code, 'invalid_phone_number')
})

function harness() {
  const log = []
  const sockets = []
  const events = []
  const errors = []
  const store = new ControlledStore(log)
  const start = () =>
    connect({
      url: 'ws://test',
      store,
      config: config(),
      socket: (url) => {
        const socket = new FakeSocket(url, log)
        sockets.push(socket)
        log.push('open socket')
        return socket
      },
      onEvent: (event) => events.push(event),
      onError: (error) => errors.push(error),
    })
  return { log, sockets, events, errors, store, start }
}

test('driver: the device is stored before the socket opens, and before the first frame', async () => {
  const h = harness()
  h.store.hold = true
  const starting = h.start()
  await settle()
  assert.deepEqual(h.log, [])
  h.store.release()
  const connection = await starting
  assert.equal(h.log.length, 2)
  assert.match(h.log[0], /^persist .*put device\/device/)
  assert.equal(h.log[1], 'open socket')
  h.sockets[0].open()
  await settle()
  assert.ok(h.log[2].startsWith('send 57410603'))
  await connection.close()
})

test('driver: a store that throws drops the client and rebuilds it from the store', async () => {
  const h = harness()
  h.store.failNext = 1
  const connection = await h.start()
  assert.equal(h.log[0], 'persist failed')
  assert.match(h.log[1], /^persist .*put device\/device/)
  assert.equal(h.log[2], 'open socket')
  assert.deepEqual(h.errors.map((e) => e.code), ['store_failed'])
  assert.ok((await h.store.loadAll()).some((r) => r.space === 'device'))
  await connection.close()
})

test('driver: a socket closed mid-frame reconnects and loses nothing', async () => {
  const h = harness()
  const connection = await h.start()
  h.sockets[0].open()
  await settle()
  const before = await h.store.loadAll()
  h.sockets[0].receive([0, 1])
  h.sockets[0].drop()
  await settle()
  assert.ok(h.events.some((e) => e.type === 'state' && e.state.kind === 'reconnecting'))
  for (let i = 0; i < 300 && h.sockets.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  assert.equal(h.sockets.length, 2, 'reconnected on the timer')
  h.sockets[1].open()
  await settle()
  assert.deepEqual([...h.sockets[1].sent[0].subarray(0, 4)], [0x57, 0x41, 6, 3])
  assert.deepEqual(await h.store.loadAll(), before)
  await connection.close()
})

test('driver: a command in the wrong state rejects with the core error code', async () => {
  const h = harness()
  const connection = await h.start()
  await assert.rejects(connection.pairWithCode('12'), { code: 'invalid_phone_number' })
  await connection.close()
  await assert.rejects(connection.sendText('1@s.whatsapp.net', 'late'), { code: 'ended' })
})
