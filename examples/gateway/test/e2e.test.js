// The gateway end to end, with real HTTP, against walink-sim's mock-server (its control API plays
// the phones): pairing by QR and by code, the connect failures as typed errors, messages both ways
// with signed webhooks, a receiver that is down for a while, logout and device removal, 515,
// replaced, client outdated and a refused login, chat settings from app-state, and proxies that
// fail closed.
import assert from 'node:assert/strict'
import { connect as netConnect, createServer as createTcpServer } from 'node:net'
import { after, before, test } from 'node:test'

import { API_KEY, connectProxy, inProcessGateway, ok, removeDir, sleep, startSuite, stopSuite, tempDir, until, withMock } from './support.js'

withMock(test, () => {
  let mock
  let gw
  let hooks
  let suite
  before(async () => {
    suite = await startSuite(11)
    ;({ mock, gw, hooks } = suite)
  })
  after(() => stopSuite(suite))

  const state = async (name) => (await gw.api('GET', `/instances/${name}`)).body

  /** Creates `name` with a native webhook to the receiver; returns the token. */
  async function create(name, extra = {}) {
    const created = await ok(gw.api('POST', '/instances', { name, webhook: { url: `${hooks.url}/hook/${name}` }, ...extra }), 201)
    hooks.addSecret(name, created.webhook.secret)
    const [hook] = (await ok(gw.api('GET', `/instances/${name}/webhooks`))).webhooks
    assert.equal(hook.url, `${hooks.url}/hook/${name}`)
    return created.token
  }

  async function account(phone, name) {
    await mock.control('POST', '/accounts', { phone, name })
    // The phone shares its app-state keys with each new companion, as a real phone does.
    await mock.control('POST', `/accounts/${phone}/app-state-options`, { auto_share: true })
  }

  async function pairByQr(name, phone) {
    await account(phone, name)
    await create(name)
    const connect = await ok(gw.api('POST', `/instances/${name}/connect`, {}))
    assert.equal(connect.state, 'qr_required')
    assert.match(connect.qr, /2@[^,]+,/)
    assert.match(connect.png, /^data:image\/png;base64,iVBORw0KGgo/)
    await mock.control('POST', `/accounts/${phone}/scan`, { qr: connect.qr })
    await until(async () => (await state(name)).state === 'connected', `${name} connected`)
  }

  async function pairByCode(name, phone) {
    await account(phone, name)
    await create(name)
    const connect = await ok(gw.api('POST', `/instances/${name}/connect`, { phone }))
    assert.match(connect.code, /^[0-9A-Z]{8}$/)
    await mock.control('POST', `/accounts/${phone}/code`, { code: connect.code })
    await until(async () => (await state(name)).state === 'connected', `${name} connected`)
  }

  const hooksFor = (name, type) => hooks.received.filter((h) => h.path === `/hook/${name}` && (!type || h.body.type === type))

  test('QR pairing through the API: QR string and PNG, then connected, events signed and delivered', { timeout: 180_000 }, async () => {
    await pairByQr('qr-alice', '15551000001')
    const status = await state('qr-alice')
    assert.match(status.jid, /^15551000001:\d+@s\.whatsapp\.net$/)
    assert.equal(status.reason, 'postLoginDone')
    assert.ok(status.records > 0, 'keys stored in SQLite')
    await until(() => hooksFor('qr-alice', 'instance.paired').length && hooksFor('qr-alice', 'instance.qr').length, 'webhooks')
    for (const h of hooksFor('qr-alice')) {
      assert.ok(h.valid, 'signature checks')
      assert.equal(h.headers['x-walink-event-id'], h.body.id)
      assert.ok(!JSON.stringify(h.body).includes(API_KEY), 'no key in a payload')
    }
  })

  test('code pairing through the API, asked before the socket is up, answers a real code once', { timeout: 180_000 }, async () => {
    await mock.control('POST', '/accounts', { phone: '15551000002', name: 'Bob' })
    await create('code-bob')
    // The instance is not running: connect starts the socket and asks for the code at once.
    const first = await ok(gw.api('POST', '/instances/code-bob/connect', { phone: '15551000002' }))
    assert.match(first.code, /^[0-9A-Z]{8}$/)
    assert.equal(first.reused, false)
    // Asking again while it is being typed returns the same code: never a new one that cancels it.
    const again = await ok(gw.api('POST', '/instances/code-bob/connect', { phone: '15551000002' }))
    assert.equal(again.code, first.code)
    await mock.control('POST', '/accounts/15551000002/code', { code: first.code })
    await until(async () => (await state('code-bob')).state === 'connected', 'code-bob connected')
  })

  test('connect failures are typed: 400, 401, 404, 429, 500 with the reason, a refused code', { timeout: 180_000 }, async () => {
    // 400: a name is required (Evolution's create), and a malformed one.
    const noName = await gw.api('POST', '/instance/create', {})
    assert.equal(noName.status, 400)
    assert.match(noName.body.response.message[0], /instanceName/)
    const badName = await gw.api('POST', '/instances', { name: 'no spaces allowed' })
    assert.equal(badName.status, 400)
    assert.equal(badName.body.error.code, 'invalid_request')
    // 401: no key, a wrong key.
    assert.equal((await gw.api('POST', '/instances/code-bob/connect', {}, { key: null })).status, 401)
    const wrong = await gw.api('POST', '/instances/code-bob/connect', {}, { key: 'not-a-valid-token-at-all' })
    assert.equal(wrong.status, 401)
    assert.equal(wrong.body.error.code, 'invalid_token')
    // 404.
    const missing = await gw.api('GET', '/instance/connect/nobody-here')
    assert.equal(missing.status, 404)
    assert.equal(missing.body.response.code, 'not_found')
    // A token of one instance cannot drive another.
    const token = (await ok(gw.api('POST', '/instances', { name: 'other-one' }), 201)).token
    assert.equal((await gw.api('POST', '/instances/code-bob/connect', {}, { key: token })).status, 403)
    // 500 with the reason: the instance's proxy refuses, and nothing goes direct.
    const closed = createTcpServer()
    await new Promise((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const deadPort = closed.address().port
    await new Promise((resolve) => closed.close(resolve))
    await ok(gw.api('POST', '/instances', { name: 'dead-proxy', proxy: { protocol: 'socks5', host: '127.0.0.1', port: deadPort } }), 201)
    const before = (await mock.control('GET', '/connections')).connections.length
    const failed = await gw.api('POST', '/instances/dead-proxy/connect', {})
    assert.equal(failed.status, 500)
    assert.equal(failed.body.error.code, 'connect_failed')
    assert.match(failed.body.error.message, /ECONNREFUSED|proxy/)
    assert.equal((await mock.control('GET', '/connections')).connections.length, before, 'no direct connection')
    await ok(gw.api('POST', '/instances/dead-proxy/stop'))
    // A code the server refuses (no account for the number): 502 with the server's code, never an empty code.
    await ok(gw.api('POST', '/instances', { name: 'refused-code' }), 201)
    const refused = await gw.api('POST', '/instances/refused-code/connect', { phone: '15559999999' })
    assert.equal(refused.status, 502, JSON.stringify(refused.body))
    assert.equal(refused.body.error.code, 'rejected')
    assert.equal(refused.body.error.serverCode, 400)
    await ok(gw.api('POST', '/instances/refused-code/stop'))
    // 429: a gateway limited to 5 requests a minute per key.
    const limitedDir = tempDir()
    const limited = await inProcessGateway(mock, limitedDir, { rateLimitPerMinute: 5 })
    try {
      const statuses = []
      for (let i = 0; i < 7; i++) statuses.push((await limited.api('GET', '/instances')).status)
      assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429])
      const refusedByLimit = await limited.api('GET', '/instances')
      assert.equal(refusedByLimit.body.error.code, 'rate_limited')
      assert.ok(Number(refusedByLimit.headers.get('retry-after')) >= 1)
    } finally {
      await limited.stop()
      removeDir(limitedDir)
    }
  })

  test('messages both ways, stored, with signed webhooks; receipts; a group', { timeout: 180_000 }, async () => {
    await pairByCode('msg-carol', '15551000003')
    await pairByCode('msg-dave', '15551000004')
    // walink -> walink
    const sent = await ok(gw.api('POST', '/instances/msg-carol/messages/text', { to: '15551000004', text: 'hello Dave' }), 201)
    assert.equal(sent.chat, '15551000004@s.whatsapp.net')
    const atDave = await until(() => hooksFor('msg-dave', 'message.received').find((h) => h.body.data.text === 'hello Dave'), 'Dave got it')
    assert.equal(atDave.body.data.chat, '15551000003@s.whatsapp.net')
    assert.equal(atDave.body.data.fromMe, false)
    assert.ok(atDave.valid)
    // A phone -> walink
    await mock.control('POST', '/accounts/15551000004/send', { to: '15551000003', text: 'from Dave\'s phone' })
    await until(() => hooksFor('msg-carol', 'message.received').find((h) => h.body.data.text === "from Dave's phone"), 'Carol got the phone message')
    const stored = await ok(gw.api('GET', '/instances/msg-carol/messages?chat=15551000004%40s.whatsapp.net'))
    assert.deepEqual(stored.messages.map((m) => m.text).sort(), ["from Dave's phone", 'hello Dave'].sort())
    // Receipts reach the sender as message.status.
    await ok(gw.api('POST', '/instances/msg-dave/messages/read', { chat: '15551000003@s.whatsapp.net', ids: [atDave.body.data.id] }))
    await until(() => hooksFor('msg-carol', 'message.status').find((h) => h.body.data.id === sent.id), 'a receipt for the sent message')
    // A group, both ways.
    const group = await mock.control('POST', '/groups', { creator: '15551000003', subject: 'gw', members: ['15551000004'] })
    await ok(gw.api('POST', '/instances/msg-carol/messages/text', { to: group.jid, text: 'hello group' }), 201)
    const inGroup = await until(() => hooksFor('msg-dave', 'message.received').find((h) => h.body.data.text === 'hello group'), 'group message')
    assert.equal(inGroup.body.data.chat, group.jid)
    assert.equal(hooks.state.bad, 0, 'every signature valid')
  })

  test('settings take effect: groupsIgnore drops group messages; custom headers and event filters on webhooks', { timeout: 180_000 }, async () => {
    await ok(gw.api('PUT', '/instances/msg-dave/settings', { groupsIgnore: true }))
    const filtered = await ok(gw.api('POST', '/instances/msg-dave/webhooks', { url: `${hooks.url}/filtered`, events: ['message.received'], headers: { 'x-tenant': 't-1' } }), 201)
    hooks.addSecret('filtered', filtered.secret)
    assert.equal((await gw.api('POST', '/instances/msg-dave/webhooks', { url: `${hooks.url}/x`, headers: { 'x-walink-signature': 'forged' } })).status, 400)
    assert.equal((await gw.api('POST', '/instances/msg-dave/webhooks', { url: `${hooks.url}/x`, events: ['no.such.event'] })).status, 400)
    const group = await mock.control('POST', '/groups', { creator: '15551000003', subject: 'ignored', members: ['15551000004'] })
    await ok(gw.api('POST', '/instances/msg-carol/messages/text', { to: group.jid, text: 'to an ignored group' }), 201)
    await ok(gw.api('POST', '/instances/msg-carol/messages/text', { to: '15551000004', text: 'direct, not ignored' }), 201)
    const direct = await until(() => hooks.received.find((h) => h.path === '/filtered' && h.body.data.text === 'direct, not ignored'), 'the direct message')
    assert.equal(direct.headers['x-tenant'], 't-1')
    assert.ok(direct.valid)
    await sleep(500)
    assert.ok(!hooks.received.some((h) => h.body.data?.text === 'to an ignored group' && h.path.startsWith('/hook/msg-dave')), 'the group message was ignored')
    const stored = (await ok(gw.api('GET', '/instances/msg-dave/messages?limit=100'))).messages
    assert.ok(!stored.some((m) => m.text === 'to an ignored group'))
    assert.ok(hooks.received.filter((h) => h.path === '/filtered').every((h) => h.body.type === 'message.received'), 'only the filtered type')
    await ok(gw.api('PUT', '/instances/msg-dave/settings', { groupsIgnore: false }))
    await ok(gw.api('DELETE', `/instances/msg-dave/webhooks/${filtered.id}`))
  })

  test('a webhook receiver down for a while gets every event once it is back', { timeout: 180_000 }, async () => {
    hooks.state.down = true
    const texts = Array.from({ length: 5 }, (_, i) => `while down ${i}`)
    for (const text of texts) await mock.control('POST', '/accounts/15551000004/send', { to: '15551000003', text })
    await until(async () => (await ok(gw.api('GET', '/instances/msg-carol/messages?limit=50'))).messages.filter((m) => texts.includes(m.text)).length === 5, 'stored while down')
    await sleep(1500) // several failed attempts
    const [hook] = (await ok(gw.api('GET', '/instances/msg-carol/webhooks'))).webhooks
    const pending = (await ok(gw.api('GET', `/instances/msg-carol/webhooks/${hook.id}/deliveries?status=pending`))).deliveries
    assert.ok(pending.some((d) => d.attempts >= 1 && d.lastStatus === 503), 'failed attempts are logged')
    hooks.state.down = false
    await until(() => texts.every((t) => hooksFor('msg-carol', 'message.received').some((h) => h.body.data.text === t)), 'every event after the outage', 15_000)
    // Replay: the same event id again.
    const log = (await ok(gw.api('GET', `/instances/msg-carol/webhooks/${hook.id}/deliveries?status=delivered&limit=1`))).deliveries
    const count = hooks.received.length
    await ok(gw.api('POST', `/instances/msg-carol/webhooks/${hook.id}/deliveries/${log[0].id}/replay`), 202)
    const replayed = await until(() => hooks.received.slice(count).find((h) => h.body.id === log[0].eventId), 'the replay')
    assert.ok(replayed.valid)
  })

  test('chat settings through app-state: mute (0 for ever, bounds), pin, archive, read, labels', { timeout: 180_000 }, async () => {
    const chat = encodeURIComponent('15551000004@s.whatsapp.net')
    const base = `/instances/msg-carol/chats/${chat}`
    const forever = await ok(gw.api('PUT', `${base}/mute`, { seconds: 0 }))
    assert.equal(forever.mutedUntil, 'forever')
    const hour = await ok(gw.api('PUT', `${base}/mute`, { seconds: 3600 }))
    assert.ok(Math.abs(Date.parse(hour.mutedUntil) - Date.now() - 3600_000) < 60_000)
    assert.equal((await gw.api('PUT', `${base}/mute`, { seconds: -1 })).status, 400)
    assert.equal((await gw.api('PUT', `${base}/mute`, { seconds: 366 * 24 * 3600 })).status, 400)
    assert.equal((await ok(gw.api('DELETE', `${base}/mute`))).mutedUntil, null)
    assert.equal((await ok(gw.api('PUT', `${base}/pin`, { pinned: true }))).pinned, true)
    assert.equal((await ok(gw.api('PUT', `${base}/archive`, { archived: true }))).archived, true)
    assert.equal((await ok(gw.api('PUT', `${base}/read`, { read: false }))).markedUnread, true)
    await ok(gw.api('PUT', '/instances/msg-carol/labels/7', { name: 'clients', color: 3 }))
    assert.deepEqual((await ok(gw.api('PUT', `${base}/labels/7`, { labeled: true }))).labels, ['7'])
    // The phone changes a setting: the chat row follows and a chat.updated event goes out.
    await mock.control('POST', '/accounts/15551000003/app-state', { action: 'unpin', chat: '15551000004@s.whatsapp.net' })
    await until(async () => (await ok(gw.api('GET', base))).pinned === false, 'the phone unpinned')
  })

  test('logout and device removal end in logged_out without a QR loop', { timeout: 180_000 }, async () => {
    await pairByCode('out-erin', '15551000005')
    const loggedOut = await ok(gw.api('POST', '/instances/out-erin/logout'))
    assert.equal(loggedOut.state, 'logged_out')
    assert.equal((await state('out-erin')).records, 0, 'keys wiped')

    await pairByCode('rm-frank', '15551000006')
    const device = (await state('rm-frank')).jid
    await mock.control('POST', '/accounts/15551000006/remove-device', { device })
    await until(async () => (await state('rm-frank')).state === 'logged_out', 'device removed -> logged_out')
    const count = () => hooksFor('rm-frank', 'instance.qr').length + hooksFor('out-erin', 'instance.qr').length
    const qrs = count()
    await sleep(2500)
    assert.equal(count(), qrs, 'no QR after logged_out')
    assert.equal((await state('rm-frank')).state, 'logged_out')
    assert.equal((await state('rm-frank')).running, false)
    await until(() => hooksFor('rm-frank', 'instance.logged_out').length, 'logged_out event')
  })

  test('515 and replaced never delete an instance', { timeout: 180_000 }, async () => {
    await pairByCode('keep-gina', '15551000007')
    const { jid, records, stateAt } = await state('keep-gina')
    await mock.control('POST', '/stream-error', { device: jid, code: 515 })
    // Connected again after the restart the 515 asked for (the state read at once may still be the
    // one from before it, and the next stream error would then find no connection).
    await until(async () => {
      const now = await state('keep-gina')
      return now.state === 'connected' && now.stateAt > stateAt
    }, 'back after 515')
    await mock.control('POST', '/stream-error', { device: jid, code: 440 })
    await until(async () => (await state('keep-gina')).reason === 'replaced', 'replaced')
    const after440 = await state('keep-gina')
    assert.equal(after440.state, 'pending')
    assert.equal(after440.jid, jid)
    assert.ok(after440.records >= records * 0.5, 'keys kept')
    // The session ended and nothing brings it back by itself (the other connection keeps it).
    assert.equal(after440.running, false)
    assert.equal(after440.autostart, false)
    await gw.gateway.heartbeat()
    assert.equal((await state('keep-gina')).running, false, 'the heartbeat does not resume a replaced instance')
    // Connect again: logs in with the same keys, no QR.
    const again = await ok(gw.api('POST', '/instances/keep-gina/connect', {}))
    assert.equal(again.state, 'connected')
  })

  test('client outdated and a login refusal end the session as pending with the keys; connect logs in again', { timeout: 180_000 }, async () => {
    const { jid, records } = await state('keep-gina')
    assert.equal((await state('keep-gina')).state, 'connected')
    for (const [failure, reason] of [[405, 'client_outdated'], [402, 'closed:failure:402']]) {
      // The next login is refused; a 515 makes the instance log in again.
      await mock.control('POST', '/fail-next-login', { reason: failure })
      await mock.control('POST', '/stream-error', { device: jid, code: 515 })
      await until(async () => (await state('keep-gina')).reason === reason, reason)
      const after = await state('keep-gina')
      assert.equal(after.state, 'pending', reason)
      assert.equal(after.running, false, reason)
      assert.equal(after.jid, jid, reason)
      assert.ok(after.records >= records * 0.5, `${reason}: keys kept`)
      const again = await ok(gw.api('POST', '/instances/keep-gina/connect', {}))
      assert.equal(again.state, 'connected', reason)
    }
  })

  test('the heartbeat reconciles sessions with the store: orphaned states reset, stopped autostart instances resumed', { timeout: 180_000 }, async () => {
    const row = await gw.db.get("SELECT * FROM instances WHERE name = 'keep-gina'")
    await ok(gw.api('POST', '/instances/keep-gina/stop'))
    assert.equal((await state('keep-gina')).state, 'pending')
    // A row that claims a state no session backs (as after a crash of an older version).
    await gw.db.run("UPDATE instances SET state = 'connected' WHERE id = ?", row.id)
    await gw.gateway.heartbeat()
    assert.equal((await state('keep-gina')).reason, 'no_session')
    // A paired instance that should run and does not is started, without a QR.
    await gw.db.run('UPDATE instances SET autostart = 1 WHERE id = ?', row.id)
    await gw.gateway.heartbeat()
    await until(async () => (await state('keep-gina')).state === 'connected', 'resumed by the heartbeat')
  })

  test('the send queue paces an instance\'s sends and refuses beyond its bound', { timeout: 180_000 }, async () => {
    const pacedDir = tempDir()
    const interval = 1000
    const paced = await inProcessGateway(mock, pacedDir, { sendIntervalMs: interval, sendQueueMax: 3 })
    try {
      await account('15551000011', 'Pace')
      await ok(paced.api('POST', '/instances', { name: 'pace' }), 201)
      const { code } = await ok(paced.api('POST', '/instances/pace/connect', { phone: '15551000011' }))
      await mock.control('POST', '/accounts/15551000011/code', { code })
      await until(async () => (await paced.api('GET', '/instances/pace')).body.state === 'connected', 'pace connected')
      // The bound counts the send in flight, which leaves the queue once the server acknowledged
      // it. A first send makes the four below wait for their pacing slot (a whole interval), so
      // all four reach the queue before any of them leaves it; without it they raced the first
      // send's round trip to the server (tens of ms), which a loaded machine can lose.
      await ok(paced.api('POST', '/instances/pace/messages/text', { to: '15551000004', text: 'paced first' }), 201)
      const done = []
      const begun = performance.now()
      const sends = Array.from({ length: 4 }, (_, i) => paced.api('POST', '/instances/pace/messages/text', { to: '15551000004', text: `paced ${i}` }).then((r) => (done.push(performance.now()), r)))
      const results = await Promise.all(sends)
      assert.deepEqual(results.map((r) => r.status).sort(), [201, 201, 201, 429])
      assert.equal(results.find((r) => r.status === 429).body.error.code, 'send_queue_full')
      done.sort((a, b) => a - b)
      // The three accepted sends are paced an interval apart (the refusal answers at once), so the
      // last answer cannot come before two intervals after they were all asked for.
      const spread = done[done.length - 1] - begun
      assert.ok(spread >= 2 * interval, `paced: ${spread} ms`)
    } finally {
      await paced.stop()
      removeDir(pacedDir)
    }
  })

  test('soft delete keeps the row with its delete time and wipes the keys', { timeout: 180_000 }, async () => {
    await pairByCode('del-hugo', '15551000008')
    const deleted = await ok(gw.api('DELETE', '/instances/del-hugo'))
    assert.ok(deleted.instance.deletedAt)
    assert.equal((await gw.api('GET', '/instances/del-hugo')).status, 404)
    const all = await ok(gw.api('GET', '/instances?deleted=true'))
    const row = all.instances.find((i) => i.name === 'del-hugo')
    assert.ok(row.deletedAt)
    assert.equal(row.state, 'logged_out')
    assert.equal((await gw.db.get('SELECT count(*) AS n FROM records WHERE instance_id = ?', row.id)).n, 0)
    // The name can be used again.
    await ok(gw.api('POST', '/instances', { name: 'del-hugo' }), 201)
  })

  test('proxies: HTTP CONNECT and SOCKS5 carry the session and the app-state downloads; a dead proxy fails closed', { timeout: 180_000 }, async () => {
    const tunnels = { socks5: 0 }
    const target = new URL(mock.url)
    const httpProxy = await connectProxy()
    const open = new Set()
    const socks = createTcpServer((socket) => {
      open.add(socket)
      socket.on('close', () => open.delete(socket))
      socket.once('data', () => {
        socket.write(Buffer.from([5, 0]))
        socket.once('data', (req) => {
          const length = req[4]
          const host = req.subarray(5, 5 + length).toString()
          const port = req.readUInt16BE(5 + length)
          tunnels.socks5++
          const upstream = netConnect(port, host, () => {
            socket.write(Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, 0, 0]))
            upstream.pipe(socket)
            socket.pipe(upstream)
          })
          upstream.on('error', () => socket.destroy())
          socket.on('error', () => upstream.destroy())
        })
      })
    })
    await new Promise((resolve) => socks.listen(0, '127.0.0.1', resolve))
    try {
      assert.equal(target.hostname, '127.0.0.1')
      // Ivy's phone serves its app-state snapshot as a blob on the media host (the mock-server's
      // control address): 4 mutes make a snapshot at version 4.
      await mock.control('POST', '/accounts', { phone: '15551000009', name: 'Ivy' })
      await mock.control('POST', '/accounts/15551000009/app-state-options', { auto_share: true, external_snapshots: true })
      const muted = ['15557770001', '15557770002', '15557770003', '15557770004'].map((n) => `${n}@s.whatsapp.net`)
      for (const chat of muted) await mock.control('POST', '/accounts/15551000009/app-state', { action: 'mute', chat, until: 0 })
      await ok(gw.api('POST', '/instances', { name: 'via-http', proxy: { protocol: 'http', host: '127.0.0.1', port: httpProxy.address().port } }), 201)
      const code = (await ok(gw.api('POST', '/instances/via-http/connect', { phone: '15551000009' }))).code
      await mock.control('POST', '/accounts/15551000009/code', { code })
      await until(async () => (await state('via-http')).state === 'connected', 'connected through the HTTP proxy')
      assert.ok(httpProxy.targets.includes(target.host), 'the chat socket through the proxy')
      // The snapshot blob came through the proxy too (walink's fetch on the instance's proxy).
      const mutedChats = async () => (await ok(gw.api('GET', '/instances/via-http/chats'))).chats.filter((c) => muted.includes(c.jid) && c.mutedUntil === 'forever').length
      await until(async () => (await mutedChats()) === muted.length, 'the snapshot settings from the blob')
      assert.ok(httpProxy.targets.includes(new URL(mock.controlUrl).host), `the media host through the proxy: ${httpProxy.targets.join(', ')}`)
      await mock.control('POST', '/accounts', { phone: '15551000010', name: 'Jon' })
      await ok(gw.api('POST', '/instances', { name: 'via-socks', proxy: { protocol: 'socks5', host: '127.0.0.1', port: socks.address().port } }), 201)
      const code2 = (await ok(gw.api('POST', '/instances/via-socks/connect', { phone: '15551000010' }))).code
      await mock.control('POST', '/accounts/15551000010/code', { code: code2 })
      await until(async () => (await state('via-socks')).state === 'connected', 'connected through SOCKS5')
      assert.ok(tunnels.socks5 >= 1)
      // The proxy goes away: the session does not fall back to a direct connection.
      await ok(gw.api('POST', '/instances/via-socks/stop'))
      const offline = async () => (await mock.control('GET', '/accounts/15551000010/devices')).devices.filter((d) => d.id !== 0).every((d) => !d.online)
      await until(offline, 'offline after stop')
      const closed = new Promise((resolve) => socks.close(resolve))
      for (const socket of open) socket.destroy()
      await closed
      const failed = await gw.api('POST', '/instances/via-socks/connect', {})
      assert.equal(failed.status, 500)
      await sleep(500)
      assert.ok(await offline(), 'not online through any other route')
      await ok(gw.api('POST', '/instances/via-socks/stop'))
    } finally {
      httpProxy.close()
      socks.close?.()
    }
  })

  test('health, metrics with bounded labels, the OpenAPI document, the event stream', { timeout: 180_000 }, async () => {
    const health = await ok(gw.api('GET', '/health', undefined, { key: null }))
    assert.equal(health.status, 'ok')
    const metrics = await fetch(`${gw.url}/metrics`).then((r) => r.text())
    assert.match(metrics, /walink_gateway_instances\{state="connected"\} \d+/)
    assert.match(metrics, /walink_gateway_http_requests_total\{method="GET",route="\/instances\/\{name\}",status="2xx"\} \d+/)
    assert.ok(!/route="\/instances\/msg-carol/.test(metrics), 'route patterns, never raw paths')
    const doc = await ok(gw.api('GET', '/openapi.json', undefined, { key: null }))
    assert.equal(doc.openapi, '3.1.0')
    assert.ok(doc.paths['/instances/{name}/connect'].post)
    assert.ok(doc.paths['/message/sendText/{instanceName}'].post)
    // SSE: replay from 0 for one instance, then live.
    const controller = new AbortController()
    const response = await fetch(`${gw.url}/events?instance=msg-carol&since=0&types=message.received`, { headers: { apikey: API_KEY }, signal: controller.signal })
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
    let text = ''
    await mock.control('POST', '/accounts/15551000004/send', { to: '15551000003', text: 'live on the stream' })
    while (!text.includes('live on the stream')) text += (await reader.read()).value
    assert.match(text, /event: message.received/)
    assert.ok(text.includes('from Dave'), 'replayed older events')
    controller.abort()
  })
})
