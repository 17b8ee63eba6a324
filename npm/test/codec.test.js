// Known answers, error codes and the package's shape.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { deflateSync } from 'node:zlib'

import * as walink from 'walink'
import { decodeNode, encodeNode, init } from 'walink'

const hex = (bytes) => Buffer.from(bytes).toString('hex')
const unhex = (text) => new Uint8Array(Buffer.from(text.replace(/ /g, ''), 'hex'))

test('keepalive iq matches transport.md A.1', async () => {
  await init()
  const node = { tag: 'iq', attrs: { id: '1.2-3', xmlns: 'w:p', type: 'get', to: '@s.whatsapp.net' } }
  const bytes = encodeNode(node)
  assert.equal(hex(bytes), '00f8091908ff831b2a3f1657042911fa0003')
  assert.deepEqual(decodeNode(bytes), { ...node, content: undefined })
})

test('device JIDs, hex packing and the empty string', () => {
  const bytes = encodeNode({ tag: 'to', attrs: { jid: '15551234567:12@s.whatsapp.net', id: '3EB0ABCDEF', zz: '' } })
  assert.ok(hex(bytes).includes('f7000cff86155512345 67f'.replace(/ /g, '')))
  assert.ok(hex(bytes).includes('fb053eb0abcdef'))
  assert.ok(hex(bytes).endsWith('fc00'))
  const lid = encodeNode({ tag: 'to', attrs: { jid: '123456789012345:3@lid' } })
  assert.ok(hex(lid).endsWith('f70103ff8812345678901234 5f'.replace(/ /g, '')))
})

test('content kinds come back as Baileys gives them', () => {
  const node = {
    tag: 'message',
    attrs: { to: '120363001234567890@g.us', type: 'text', skip: undefined, gone: null },
    content: [
      { tag: 'enc', attrs: { v: '2', type: 'pkmsg' }, content: new Uint8Array([1, 2, 3]) },
      { tag: 'token', attrs: {}, content: 'result' },
      { tag: 'text', attrs: {}, content: 'hello world' },
      { tag: 'empty', attrs: {}, content: [] },
    ],
  }
  const decoded = decodeNode(encodeNode(node))
  assert.deepEqual(decoded.attrs, { to: '120363001234567890@g.us', type: 'text' })
  assert.deepEqual([...decoded.content[0].content], [1, 2, 3])
  assert.equal(decoded.content[1].content, 'result')
  assert.deepEqual(Buffer.from(decoded.content[2].content).toString(), 'hello world')
  assert.deepEqual(decoded.content[3].content, [])
})

test('compressed frame bodies are inflated', () => {
  const plain = encodeNode({ tag: 'iq', attrs: { id: 'x' }, content: new Uint8Array(5000).fill(7) })
  const body = new Uint8Array([2, ...deflateSync(plain.subarray(1))])
  assert.equal(hex(encodeNode(decodeNode(body))), hex(plain))
})

test('bad input throws an Error with a stable code', () => {
  const cases = [
    ['', 'empty'],
    ['00 f8 02 19 fe ff ff ff ff', 'unexpected_end'],
    ['00 f8 01 f0', 'invalid_tag'],
    ['00 f8 01 fc 02 ff fe', 'invalid_utf8'],
    ['00 f8 02 19 f9 ff ff', 'unexpected_end'],
    ['02 00 01 02', 'inflate'],
    ['00 f8 01 19 00', 'trailing_bytes'],
    ['00 f8 00', 'empty_node'],
  ]
  for (const [input, code] of cases) {
    assert.throws(() => decodeNode(unhex(input)), (err) => err instanceof Error && err.code === code, input)
  }
  let deep = '00'
  for (let i = 0; i < 70; i++) deep += 'f80219f801'
  deep += 'f80119'
  assert.throws(() => decodeNode(unhex(deep)), { code: 'too_deep' })
  assert.throws(() => decodeNode('00'), { code: 'invalid_input' })
  assert.throws(() => encodeNode({ tag: '', attrs: {} }), { code: 'invalid_node' })
  assert.throws(() => encodeNode({ tag: 'x', attrs: { n: 1 } }), { code: 'invalid_node' })
  assert.throws(() => encodeNode({ tag: 'x', attrs: {}, content: 5 }), { code: 'invalid_node' })
})

test('the package exports exactly the documented API, with types', () => {
  assert.deepEqual(Object.keys(walink).sort(), [
    'Client',
    'Connection',
    'DEFAULT_URL',
    'FileMediaHost',
    'FileStore',
    'IndexedDBStore',
    'MediaDecryptor',
    'MediaEncryptor',
    'MemoryStore',
    'StoreError',
    'connect',
    'content',
    'decodeMessage',
    'decodeNode',
    'encodeMessage',
    'encodeNode',
    'init',
    'mediaKeys',
    'newMediaKey',
    'nodeMediaCrypto',
    'wasmMediaCrypto',
  ])
  const types = readFileSync(new URL('../src/index.d.ts', import.meta.url), 'utf8')
  for (const name of Object.keys(walink)) assert.match(types, new RegExp(`export (function|class|const|declare namespace) ${name}\\b`))
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
  assert.equal(pkg.exports['.'].node, './src/node.js')
  assert.equal(pkg.exports['.'].browser, './src/browser.js')
})

test('the browser entry needs init() and then works on its own', () => {
  // A fresh process, so the Node entry has not initialised the shared module.
  const script = `
    import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
    const browser = await import('./src/browser.js')
    try { browser.encodeNode({ tag: 'iq', attrs: {} }); process.exit(3) } catch (err) { if (err.code !== 'not_initialized') process.exit(4) }
    await browser.init(readFileSync('./wasm/walink_wasm_bg.wasm'))
    await browser.init()
    const bytes = browser.encodeNode({ tag: 'iq', attrs: { id: '1' }, content: [{ tag: 'ping', attrs: {} }] })
    process.stdout.write(Buffer.from(bytes).toString('hex'))`
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: new URL('..', import.meta.url),
  })
  const node = { tag: 'iq', attrs: { id: '1' }, content: [{ tag: 'ping', attrs: {} }] }
  assert.equal(out.toString(), hex(encodeNode(node)))
})

test('large bodies: contents are views of the input, whatever their structure', () => {
  const big = new Uint8Array(64 * 1024).map((_, i) => (i * 7) & 0xff)
  // One large content after a short structure: only the structure is copied into wasm.
  const body = encodeNode({ tag: 'enc', attrs: { v: '2', type: 'skmsg' }, content: big })
  const node = decodeNode(body)
  assert.deepEqual(node.content, big)
  assert.equal(node.content.buffer, body.buffer)
  // Structure past the first kilobyte: decoded from the whole body.
  const users = Array.from({ length: 500 }, (_, i) => ({
    tag: 'user',
    attrs: { jid: `1555${1000000 + i}@s.whatsapp.net` },
    content: [{ tag: 'device', attrs: { id: String(i % 5) }, content: undefined }],
  }))
  const iq = { tag: 'iq', attrs: { type: 'result', id: '7' }, content: [...users, { tag: 'enc', attrs: {}, content: big }] }
  const iqBody = encodeNode(iq)
  assert.ok(iqBody.length > 64 * 1024 + 4096)
  const decoded = decodeNode(iqBody)
  assert.equal(decoded.content.length, 501)
  assert.deepEqual(decoded.content[499], users[499])
  assert.deepEqual(decoded.content[500].content, big)
  assert.equal(decoded.content[500].content.buffer, iqBody.buffer)
  // Large content followed by more structure, and a large compressed body.
  const tail = { tag: 'iq', attrs: {}, content: [{ tag: 'enc', attrs: {}, content: big }, { tag: 'ping', attrs: { id: '9' } }] }
  assert.deepEqual(decodeNode(encodeNode(tail)).content[1], { tag: 'ping', attrs: { id: '9' }, content: undefined })
  const compressed = new Uint8Array([2, ...deflateSync(body.subarray(1))])
  assert.deepEqual(decodeNode(compressed).content, big)
  // Cut short: the error of the whole body, not a partial node.
  for (const cut of [body.length - 1, 5000, 2000]) {
    assert.throws(() => decodeNode(body.subarray(0, cut)), (err) => err.code === 'unexpected_end')
  }
  assert.throws(() => decodeNode(iqBody.subarray(0, 9000)), (err) => err.code === 'unexpected_end')
  const trailing = new Uint8Array([...body, 0, 0])
  assert.throws(() => decodeNode(trailing), (err) => err.code === 'trailing_bytes')
})
