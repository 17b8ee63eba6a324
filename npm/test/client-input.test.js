// The wasm Client's conversions of host input (written by hand in bindings/wasm/src/js.rs since
// serde left the module): what they accept, what they refuse with which code, and that a refused
// call changes nothing. Also: the driver reads only the start spaces when the store can.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { Client, MemoryStore, connect } from 'walink'
import { FakeSocket, settle } from './support/fakes.js'

const SEED = Uint8Array.from({ length: 32 }, (_, i) => i)
const NOW = 1_760_000_000_000
const config = (extra = {}) => ({ unsafeTestRngSeed: SEED, ...extra })

const codeOf = (fn) => {
  try {
    fn()
  } catch (error) {
    assert.ok(error instanceof Error, 'an Error')
    assert.equal(typeof error.message, 'string')
    return error.code
  }
  assert.fail('did not throw')
}

function drain(client) {
  const out = []
  for (let o = client.pollOutput(); o !== undefined; o = client.pollOutput()) out.push(o)
  return out
}

test('config: every option is type-checked, null and undefined mean absent', () => {
  assert.equal(codeOf(() => new Client(5, [])), 'invalid_config')
  assert.equal(codeOf(() => new Client(config({ deviceName: 7 }), [])), 'invalid_config')
  assert.equal(codeOf(() => new Client(config({ retryWhenReplaced: 'yes' }), [])), 'invalid_config')
  assert.equal(codeOf(() => new Client(config({ trustRootSerial: -1 }), [])), 'invalid_config')
  assert.equal(codeOf(() => new Client(config({ trustRootSerial: 1.5 }), [])), 'invalid_config')
  assert.equal(codeOf(() => new Client(config({ keepaliveMinMs: '10' }), [])), 'invalid_config')
  assert.equal(codeOf(() => new Client({ unsafeTestRngSeed: 'seed' }, [])), 'invalid_config')
  // Bytes as a Uint8Array, an ArrayBuffer or an array of byte numbers give the same device.
  const device = (seed) => drain(new Client({ unsafeTestRngSeed: seed, deviceName: null, platform: undefined }, []))[0]
  const a = device(SEED)
  assert.deepEqual(device(SEED.buffer.slice(0)), a)
  assert.deepEqual(device([...SEED]), a)
  assert.equal(codeOf(() => new Client({ unsafeTestRngSeed: [...SEED.slice(1), 256] }, [])), 'invalid_config')
  assert.equal(a.kind, 'persist')
  assert.equal(a.changes[0].op, 'put')
  assert.ok(a.changes[0].value instanceof Uint8Array)
})

test('records: an array of { space, key, value }', () => {
  assert.equal(codeOf(() => new Client(config(), 'records')), 'invalid_record')
  assert.equal(codeOf(() => new Client(config(), [null])), 'invalid_record')
  assert.equal(codeOf(() => new Client(config(), [{ space: 'device', key: 'device' }])), 'invalid_record')
  assert.equal(codeOf(() => new Client(config(), [{ space: 'device', key: 1, value: new Uint8Array() }])), 'invalid_record')
  // A restored client from the records a fresh one persisted.
  const fresh = new Client(config(), [])
  const records = drain(fresh)[0].changes.map(({ space, key, value }) => ({ space, key, value }))
  const restored = new Client(config(), records)
  const outputs = drain(restored)
  assert.ok(outputs.some((o) => o.kind === 'connect'))
  assert.ok(!outputs.some((o) => o.kind === 'persist'), 'a restored device is not persisted anew')
})

test('commands: unknown types and fields, wrong types and missing fields are invalid_command', () => {
  const client = new Client(config(), [])
  drain(client)
  const bad = [
    null,
    'connect',
    {},
    { type: 5 },
    { type: 'connect', extra: 1 },
    { type: 'sendText', to: 'x', text: 'hi', also: true },
    { type: 'sendText', to: 'x', text: 5 },
    { type: 'sendMessage', to: 'x', message: 'not bytes' },
    { type: 'markRead', chat: 'x', ids: 'id' },
    { type: 'markRead', chat: 'x', ids: ['a', 1] },
    { type: 'appState' },
    { type: 'appState', action: { kind: 'fly', chat: 'x' } },
    { type: 'appState', action: { kind: 'mute', chat: 'x', untilMs: 1.5 } },
    { type: 'appState', action: { kind: 'pin', chat: 'x', pinned: true, extra: 1 } },
    { type: 'appState', action: { kind: 'archive', chat: 'x', archived: true, range: { lastMessageTimestamp: 1, messages: [{ id: 'a' }] } } },
    { type: 'appStateBlob', downloadId: 7 },
  ]
  for (const command of bad) assert.equal(codeOf(() => client.command(NOW, command)), 'invalid_command', JSON.stringify(command))
  assert.deepEqual(drain(client), [], 'a refused command queues nothing')
  // Accepted shapes: optional fields absent, null or undefined; BigInt integers.
  const ok = [
    { type: 'markRead', chat: '1@s.whatsapp.net', sender: null, ids: ['a'] },
    { type: 'appState', action: { kind: 'mute', chat: '1@s.whatsapp.net', untilMs: 0 } },
    { type: 'appState', action: { kind: 'archive', chat: '1@s.whatsapp.net', archived: true, range: { lastMessageTimestamp: 5n, messages: [{ id: 'a', fromMe: true, timestamp: 5 }] } } },
    { type: 'disconnect' },
  ]
  const ids = ok.map((command) => client.command(NOW, command))
  const done = drain(client).filter((o) => o.kind === 'event' && o.event.type === 'commandDone').map((o) => o.event.id)
  assert.deepEqual(done.sort(), [...ids].sort(), 'each accepted command ends in commandDone')
})

test('handleClosed: a known kind or nothing; anything else is invalid_close_reason and changes nothing', () => {
  const client = new Client(config(), [])
  drain(client)
  client.handleConnected(NOW)
  drain(client)
  assert.equal(codeOf(() => client.handleClosed(NOW, { kind: 'meteor' })), 'invalid_close_reason')
  assert.equal(codeOf(() => client.handleClosed(NOW, 'local')), 'invalid_close_reason')
  // Only the client finds the peer at fault; and fields are checked like every input.
  assert.equal(codeOf(() => client.handleClosed(NOW, { kind: 'protocol', message: 'x' })), 'invalid_close_reason')
  assert.equal(codeOf(() => client.handleClosed(NOW, { kind: 'failure', reason: 70000 })), 'invalid_close_reason')
  assert.equal(codeOf(() => client.handleClosed(NOW, { kind: 'local', extra: 1 })), 'invalid_close_reason')
  assert.deepEqual(drain(client), [])
  client.handleClosed(NOW, { kind: 'local' })
  const state = drain(client).find((o) => o.kind === 'event' && o.event.type === 'state')
  assert.equal(state.event.reason.kind, 'closed')
  assert.equal(state.event.reason.reason.kind, 'local')
})

test('handleClosed passes a reason on as named, not rewritten to network', () => {
  const client = new Client(config(), [])
  drain(client)
  client.handleConnected(NOW)
  drain(client)
  client.handleClosed(NOW, { kind: 'keepaliveTimeout' })
  const state = drain(client).find((o) => o.kind === 'event' && o.event.type === 'state')
  assert.deepEqual(state.event.reason, { kind: 'closed', reason: { kind: 'keepaliveTimeout' } })
  // A dead keepalive reconnects at once, where a network failure backs off.
  assert.equal(state.event.state.kind, 'connecting')
})

test('handleFetched: a response or a failure; anything else is invalid_fetch_result and changes nothing', () => {
  const client = new Client(config(), [])
  drain(client)
  const bad = [null, 'x', {}, { status: -1 }, { status: 70000 }, { status: 200, body: 'x' }, { status: 200, extra: 1 }, { error: 'meteor' }, { error: 'network', status: 200 }]
  for (const result of bad) assert.equal(codeOf(() => client.handleFetched(NOW, 1, result)), 'invalid_fetch_result', JSON.stringify(result))
  // Well-formed answers to fetches nobody asked for are ignored.
  for (const result of [{ status: 404 }, { status: 200, body: new Uint8Array([1]) }, { error: 'network' }, { error: 'timed_out' }, { error: 'too_large' }]) {
    client.handleFetched(NOW, 99, result)
  }
  assert.deepEqual(drain(client), [])
})

test('config: the options every host takes, checked by the core', () => {
  const full = config({
    keepaliveDeadlineMs: 5_000,
    backoffJitterPermille: 50,
    backoffResetAfterMs: 1_000,
    recordCacheLimit: 16,
    mediaOrigin: 'http://127.0.0.1:9',
    language: 'pt',
    country: 'BR',
  })
  assert.equal(drain(new Client(full, []))[0].kind, 'persist')
  assert.equal(codeOf(() => new Client(config({ backoffJitterPermille: 1001 }), [])), 'invalid_config')
  assert.equal(codeOf(() => new Client(config({ mediaOrigin: 'mmg.whatsapp.net' }), [])), 'invalid_config')
  assert.equal(codeOf(() => new Client(config({ keepaliveMinMs: 40_000 }), [])), 'invalid_config')
  const endpoints = Client.endpoints()
  assert.deepEqual(Object.keys(endpoints).sort(), ['chatUrl', 'mediaOrigin', 'origin', 'webVersion'])
  assert.equal(endpoints.chatUrl, 'wss://web.whatsapp.com/ws/chat')
})

test('driver: a store with loadSpaces is read for the start spaces only', async () => {
  const store = new MemoryStore()
  const first = await connect({ url: 'ws://test', store, config: config(), socket: (url) => new FakeSocket(url, []) })
  await first.close()
  await store.applyBatch([{ op: 'put', space: 'session', key: '1.0@s.whatsapp.net', value: new Uint8Array([1]) }])
  const asked = []
  store.loadAll = async () => assert.fail('loadAll must not be called when loadSpaces exists')
  const loadSpaces = store.loadSpaces.bind(store)
  store.loadSpaces = async (spaces) => {
    asked.push(spaces)
    return loadSpaces(spaces)
  }
  const sockets = []
  const connection = await connect({
    url: 'ws://test',
    store,
    config: config(),
    socket: (url) => {
      const socket = new FakeSocket(url, [])
      sockets.push(socket)
      return socket
    },
  })
  await settle()
  assert.deepEqual(asked, [Client.startSpaces()])
  assert.ok(!Client.startSpaces().includes('session'))
  assert.equal(sockets.length, 1, 'the restored device connects')
  await connection.close()
})
