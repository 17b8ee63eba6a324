// Units: input validation, the configuration, the webhook signature and backoff, the rate limiter,
// the QR image, the state mapping and the resting states that end a session, the proxy handshakes
// refusing garbage, and walink's HTTP requests through a proxy.
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { createServer as createHttpServer } from 'node:http'
import { inflateSync } from 'node:zlib'
import { createServer } from 'node:net'
import { test } from 'node:test'

import { Client } from 'walink'

import { loadConfig } from '../src/config.js'
import { isPrivateAddress } from '../src/media-url.js'
import { isProtocolOnly, isWebp, mediaOf, topLevelFields, webhookMedia, writtenBySender } from '../src/features/messages.js'
import { ApiError, fromCommandError } from '../src/errors.js'
import groups from '../src/features/groups.js'
import social from '../src/features/social.js'
import { gatewayState, reasonText, restsUnasked, toJid } from '../src/gateway.js'
import { RateLimiter } from '../src/http/server.js'
import { S, check, problems } from '../src/http/schema.js'
import { hashToken, tokenMatches } from '../src/ids.js'
import { openTunnel, proxyFetch } from '../src/proxy.js'
import { qrPng } from '../src/qr.js'
import { backoffMs, sign } from '../src/webhooks.js'
import { connectProxy } from './support.js'

test('schemas: clear 400s listing each problem', () => {
  const schema = { type: 'object', additionalProperties: false, required: ['name'], properties: { name: S.name, n: { type: 'integer', minimum: 0, maximum: 5 } } }
  assert.deepEqual(problems(schema, { name: 'ok-1', n: 3 }), [])
  const found = problems(schema, { name: ' bad', n: 9, extra: 1 })
  assert.deepEqual(found.map((p) => p.path).sort(), ['/extra', '/n', '/name'])
  assert.throws(() => check(schema, undefined, 'body'), { status: 400, code: 'invalid_request' })
  assert.throws(() => check(schema, { n: 1.5 }, 'body'), /\/n must be integer/)
  assert.deepEqual(problems(S.jid, '15551234567@s.whatsapp.net'), [])
  assert.equal(problems(S.jid, 'x@evil.com').length, 1)
})

test('webhook signature: HMAC-SHA256 over timestamp.body; backoff capped and jittered', () => {
  const expected = createHmac('sha256', 'whsec_x').update('1700000000.{"a":1}').digest('hex')
  assert.equal(sign('whsec_x', '1700000000', '{"a":1}'), `v1=${expected}`)
  const config = { baseMs: 1000, maxMs: 60_000 }
  assert.equal(backoffMs(1, config, () => 0), 500)
  assert.equal(backoffMs(1, config, () => 1), 1000)
  assert.equal(backoffMs(4, config, () => 1), 8000)
  assert.equal(backoffMs(40, config, () => 1), 60_000)
  for (let i = 0; i < 100; i++) {
    const d = backoffMs(10, config)
    assert.ok(d >= 30_000 && d <= 60_000)
  }
})

test('rate limiter: a bucket per key refilling over a minute', () => {
  const limiter = new RateLimiter(3)
  const t = 1_000_000
  assert.deepEqual([1, 2, 3, 4].map(() => limiter.take('k', t).ok), [true, true, true, false])
  assert.equal(limiter.take('other', t).ok, true)
  assert.equal(limiter.take('k', t + 20_000).ok, true)
  assert.equal(limiter.take('k', t + 20_001).ok, false)
  assert.ok(limiter.take('k', t + 20_002).retryAfterS >= 1)
})

test('tokens: stored hashed, compared in constant time', () => {
  const hash = hashToken('secret-token')
  assert.equal(hash.length, 32)
  assert.ok(tokenMatches('secret-token', hash))
  assert.ok(!tokenMatches('secret-tokem', hash))
  assert.ok(!tokenMatches(undefined, hash))
})

test('the QR PNG is a valid greyscale PNG of the QR matrix', () => {
  const png = qrPng('2@' + 'A'.repeat(120) + ',' + 'B'.repeat(44) + ',' + 'C'.repeat(44) + ',' + 'D'.repeat(44))
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
  const width = png.readUInt32BE(16)
  assert.equal(width % 6, 0)
  const idat = png.indexOf('IDAT')
  const length = png.readUInt32BE(idat - 4)
  const raw = inflateSync(png.subarray(idat + 4, idat + 4 + length))
  assert.equal(raw.length, (width + 1) * width)
  // The top-left finder pattern: dark at the quiet zone's edge, white outside it.
  const pixel = (x, y) => raw[y * (width + 1) + 1 + x]
  assert.equal(pixel(0, 0), 255)
  assert.equal(pixel(4 * 6, 4 * 6), 0)
})

test('states: the exposed machine and its reasons', () => {
  assert.equal(gatewayState({ kind: 'awaitingPairing', mode: 'code' }), 'code_required')
  assert.equal(gatewayState({ kind: 'awaitingPairing', mode: 'qr' }), 'qr_required')
  assert.equal(gatewayState({ kind: 'handshaking' }, false), 'connecting')
  assert.equal(gatewayState({ kind: 'handshaking' }, true), 'reconnecting')
  assert.equal(gatewayState({ kind: 'replaced' }), 'pending')
  assert.equal(gatewayState({ kind: 'loggedOut' }), 'logged_out')
  assert.equal(reasonText({ kind: 'closed', reason: { kind: 'streamError', code: 515 } }), 'closed:streamError:515')
  assert.equal(reasonText({ kind: 'loginAccepted' }), 'loginAccepted')
  assert.equal(toJid('+1 (555) 123-4567'), '15551234567@s.whatsapp.net')
})

test("configuration: walink's endpoints by default, its mediaOrigin, and an option it refuses stops the start", () => {
  const key = { GATEWAY_API_KEY: 'a-key-of-sixteen-or-more' }
  const defaults = loadConfig(key)
  assert.equal(defaults.waUrl, Client.endpoints().chatUrl)
  assert.equal(defaults.clientConfig.mediaOrigin, undefined, "walink's own media origin")
  assert.equal(defaults.clientConfig.retryWhenReplaced, false)
  assert.equal(loadConfig({ ...key, GATEWAY_MEDIA_ORIGIN: 'http://127.0.0.1:8081' }).clientConfig.mediaOrigin, 'http://127.0.0.1:8081')
  for (const origin of ['ftp://media.example', 'https://media.example/path']) {
    assert.throws(() => loadConfig({ ...key, GATEWAY_MEDIA_ORIGIN: origin }), /refused \(invalid_config\).*mediaOrigin/, origin)
  }
})

test('a resting client state the gateway did not ask for ends the session; its own disconnect does not', () => {
  const closed = (kind, extra = {}) => ({ kind: 'closed', reason: { kind, ...extra } })
  const ends = (kind, reason) => restsUnasked({ type: 'state', state: { kind }, reason })
  assert.equal(ends('loggedOut', closed('streamError', { code: 401 })), true)
  assert.equal(ends('loggedOut', { kind: 'logoutRequested' }), true)
  assert.equal(ends('replaced', closed('streamError', { conflict: 'replaced' })), true)
  assert.equal(ends('clientOutdated', closed('failure', { reason: 405 })), true)
  assert.equal(ends('disconnected', closed('failure', { reason: 402 })), true)
  assert.equal(ends('disconnected', closed('qrRefsExhausted')), true)
  assert.equal(ends('disconnected', { kind: 'disconnectRequested' }), false)
  assert.equal(ends('disconnected', closed('local')), false, 'the gateway closed an open socket')
  for (const kind of ['connecting', 'handshaking', 'loggingIn', 'connected']) assert.equal(ends(kind, { kind: 'socketOpened' }), false)
  assert.equal(restsUnasked({ type: 'state', state: { kind: 'reconnecting', attempt: 1, at: 0 }, reason: closed('network') }), false)
})

test('proxies fail closed: refused, garbage and a non-200 CONNECT are errors, never a direct socket', async () => {
  const garbage = createServer((socket) => socket.end('HTTP/1.1 407 Proxy Authentication Required\r\n\r\n'))
  await new Promise((resolve) => garbage.listen(0, '127.0.0.1', resolve))
  const port = garbage.address().port
  await assert.rejects(openTunnel({ protocol: 'http', host: '127.0.0.1', port }, 'example.invalid', 443), { code: 'proxy_failed', message: /407/ })
  await assert.rejects(openTunnel({ protocol: 'socks5', host: '127.0.0.1', port }, 'example.invalid', 443), { code: 'proxy_failed' })
  garbage.close()
  await assert.rejects(openTunnel({ protocol: 'http', host: '127.0.0.1', port }, 'example.invalid', 443), { code: 'proxy_failed', message: /ECONNREFUSED/ })
})

test('protocol-only messages are told apart from content by their top-level protobuf fields', () => {
  const conversation = new Uint8Array([0x0a, 0x02, 0x68, 0x69]) // field 1 "hi"
  const protocol = new Uint8Array([0x62, 0x02, 0x08, 0x05]) // field 12 { type: 5 }
  const both = new Uint8Array([...protocol, 0x9a, 0x02, 0x00]) // field 12 and field 35 (empty)
  assert.deepEqual([...topLevelFields(conversation)], [1])
  assert.equal(isProtocolOnly(conversation), false)
  assert.equal(isProtocolOnly(protocol), true)
  assert.equal(isProtocolOnly(both), true)
  assert.equal(isProtocolOnly(new Uint8Array([0x62, 0x7f])), false, 'truncated: not parsed, kept')
  assert.equal(isProtocolOnly(new Uint8Array([])), false)
  assert.equal(topLevelFields(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])), null)
})

test('edits and revokes: applied only when their sender wrote the target; stickers are WebP; media fields found', () => {
  const peer = '15550001111@s.whatsapp.net'
  // One person: the peer changes its own messages, this account's other devices ours.
  assert.equal(writtenBySender({ fromMe: false, participant: null }, peer, false), true)
  assert.equal(writtenBySender({ fromMe: true, participant: null }, peer, false), false, 'the peer cannot edit our message')
  assert.equal(writtenBySender({ fromMe: false, participant: null }, '15550002222:3@s.whatsapp.net', true), false, 'our device cannot edit the peer\'s')
  // Groups: the author named in the key is the sender (a device suffix aside); other addressing not compared.
  assert.equal(writtenBySender({ fromMe: false, participant: peer }, '15550001111:7@s.whatsapp.net', false), true)
  assert.equal(writtenBySender({ fromMe: false, participant: peer }, '15550003333@s.whatsapp.net', false), false)
  assert.equal(writtenBySender({ fromMe: false, participant: '42@lid' }, peer, false), true)
  assert.equal(isWebp(new Uint8Array(Buffer.from('RIFF\x10\0\0\0WEBPVP8L', 'latin1'))), true)
  assert.equal(isWebp(new Uint8Array(Buffer.from('\x89PNG\r\n\x1a\n0000', 'latin1'))), false)
  assert.equal(isWebp(new Uint8Array(4)), false)
  assert.deepEqual(mediaOf({ messageContextInfo: {}, stickerMessage: { mimetype: 'image/webp' } }), ['stickerMessage', { mimetype: 'image/webp' }])
  assert.equal(mediaOf({ conversation: 'hi' }), null)
})

test('webhook base64: the message goes out with base64Error when the file cannot be had, never held back', async () => {
  const config = { mediaBase64MaxBytes: 1000, mediaDownloadTimeoutMs: 5000, webhookTimeoutMs: 50 }
  const data = (fileLength) => ({ id: 'A1', chat: '1@s.whatsapp.net', sender: '1@s.whatsapp.net', raw: 'AA==', message: { imageMessage: { mimetype: 'image/jpeg', fileLength } } })
  let asked = 0
  const offline = { config, connected: () => { asked++; throw new ApiError(409, 'not_connected', 'instance x is pending, not connected') } }
  assert.deepEqual(await webhookMedia(offline, { id: 'i' }, data(2000)), { base64Error: { code: 'media_too_large', message: 'the media is 2000 bytes; the bound is 1000 (GATEWAY_MEDIA_BASE64_MAX_BYTES)' } })
  assert.equal(asked, 0, 'too large by its announced size: no download attempted')
  assert.equal((await webhookMedia(offline, { id: 'i' }, data(10))).base64Error.code, 'not_connected')
  const stalled = { config, connected: () => ({ connection: { downloadMedia: () => new Promise(() => {}) } }) }
  assert.equal((await webhookMedia(stalled, { id: 'i' }, data(10))).base64Error.code, 'timed_out', 'bounded by the webhook timeout')
  const online = { config, connected: () => ({ connection: { downloadMedia: async () => new Uint8Array([1, 2, 3]) } }) }
  assert.deepEqual(await webhookMedia(online, { id: 'i' }, data(3)), { base64: 'AQID' })
  assert.equal(await webhookMedia(online, { id: 'i' }, { ...data(3), message: { conversation: 'hi' } }), null, 'no media, nothing added')
})

test('media URLs: private, loopback, link-local and mapped addresses are told apart from public ones', () => {
  for (const a of ['127.0.0.1', '10.1.2.3', '172.20.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', '::', '::ffff:127.0.0.1', 'fe80::1', 'fd00::1', 'not an address']) assert.equal(isPrivateAddress(a), true, a)
  for (const a of ['8.8.8.8', '1.1.1.1', '2001:4860:4860::8888', '::ffff:8.8.8.8']) assert.equal(isPrivateAddress(a), false, a)
})

test("walink's HTTP requests through a proxy: any status is a response, the body streams, nothing goes direct", async () => {
  const seen = []
  const origin = createHttpServer((req, res) => {
    seen.push(`${req.method} ${req.url} ${req.headers['x-test'] ?? ''}`)
    if (req.url === '/blob') res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 3 }).end(Buffer.from([1, 2, 3]))
    else if (req.url === '/slow') res.writeHead(200).write('partial')
    else res.writeHead(404).end('gone')
  })
  await new Promise((resolve) => origin.listen(0, '127.0.0.1', resolve))
  const proxy = await connectProxy()
  const base = `http://127.0.0.1:${origin.address().port}`
  try {
    const fetchVia = proxyFetch({ protocol: 'http', host: '127.0.0.1', port: proxy.address().port })
    const blob = await fetchVia(`${base}/blob`, { method: 'GET', headers: [['x-test', 'one']] })
    assert.equal(blob.status, 200)
    assert.equal(blob.headers.get('content-length'), '3')
    assert.deepEqual([...new Uint8Array(await blob.arrayBuffer())], [1, 2, 3])
    const missing = await fetchVia(`${base}/missing`, { method: 'GET' })
    assert.equal(missing.status, 404, 'a status is the core\'s to judge, not an error')
    assert.equal(await missing.text(), 'gone')
    const controller = new AbortController()
    const slow = await fetchVia(`${base}/slow`, { method: 'GET', signal: controller.signal })
    const reader = slow.body.getReader()
    assert.equal(Buffer.from((await reader.read()).value).toString(), 'partial')
    controller.abort()
    await assert.rejects(reader.read(), 'an aborted request ends its body')
    assert.deepEqual(seen, ['GET /blob one', 'GET /missing ', 'GET /slow '])
    assert.deepEqual(proxy.targets, Array(3).fill(`127.0.0.1:${origin.address().port}`), 'every request went through the proxy')
    // A proxy that is gone: the request fails, and the origin sees nothing.
    const deadPort = proxy.address().port
    await new Promise((resolve) => {
      proxy.close(resolve)
      proxy.closeAllConnections?.()
    })
    await assert.rejects(proxyFetch({ protocol: 'socks5', host: '127.0.0.1', port: deadPort })(`${base}/blob`, { method: 'GET' }), { code: 'proxy_failed' })
    assert.equal(seen.length, 3, 'no direct request')
  } finally {
    origin.closeAllConnections?.()
    origin.close()
    proxy.close()
  }
})

test('group notifications, calls and presence in Evolution shapes; the core\'s group and contact errors typed', () => {
  const instance = { id: 'inst_1' }
  const map = groups.evolutionEvents['group.updated']
  const info = { jid: '1203630001@g.us', subject: 'Team', subjectTime: 1, creation: 1, owner: '1555@s.whatsapp.net', description: 'plan', descriptionId: 'd1', participants: [{ jid: '1555@s.whatsapp.net', role: 'superadmin' }, { jid: '1556@s.whatsapp.net', role: 'member', lid: '99@lid' }], admins: ['1555@s.whatsapp.net'], size: 2, announce: false, locked: true, approvalRequired: false, ephemeralSeconds: 0, addressingMode: 'pn' }
  const [[name, data]] = map({ group: info.jid, actor: '1555@s.whatsapp.net', timestamp: 5, change: { kind: 'created', info } }, instance)
  assert.equal(name, 'GROUPS_UPSERT')
  assert.deepEqual(data[0].participants, [{ id: '1555@s.whatsapp.net', admin: 'superadmin' }, { id: '1556@s.whatsapp.net', lid: '99@lid', admin: null }])
  assert.equal(data[0].desc, 'plan')
  assert.equal(data[0].restrict, true)
  assert.equal(data[0].author, '1555@s.whatsapp.net')
  const left = map({ group: info.jid, actor: '1556@s.whatsapp.net', timestamp: 5, change: { kind: 'participants', change: 'left', participants: [{ jid: '1556@s.whatsapp.net', role: 'member' }] } }, instance)
  assert.deepEqual(left, [['GROUP_PARTICIPANTS_UPDATE', { id: info.jid, author: '1556@s.whatsapp.net', participants: ['1556@s.whatsapp.net'], action: 'remove', instanceId: 'inst_1' }]])
  assert.deepEqual(map({ group: info.jid, actor: null, timestamp: 5, change: { kind: 'description' } }, instance), [['GROUP_UPDATE', [{ id: info.jid, author: null, desc: null, descId: null, instanceId: 'inst_1' }]]])
  const [[callName, call]] = social.evolutionEvents.call({ callId: 'C1', action: 'ended', caller: '1555@s.whatsapp.net', timestamp: 10, offline: false, video: true, isGroup: false, group: null }, instance)
  assert.equal(callName, 'CALL')
  assert.deepEqual([call.id, call.status, call.isVideo, call.date], ['C1', 'terminate', true, '1970-01-01T00:00:10.000Z'])
  assert.deepEqual(social.evolutionEvents['chat.state']({ chat: 'g@g.us', sender: '1555@s.whatsapp.net', state: 'recording' }), [['PRESENCE_UPDATE', { id: 'g@g.us', presences: { '1555@s.whatsapp.net': { lastKnownPresence: 'recording' } } }]])
  for (const [code, status] of [['forbidden', 403], ['not_found', 404], ['resource_limit', 409], ['bad_request', 400], ['push_name_required', 409], ['bad_answer', 502]]) {
    assert.equal(fromCommandError(Object.assign(new Error(code), { code })).status, status, code)
  }
})
