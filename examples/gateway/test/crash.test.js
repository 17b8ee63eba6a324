// The gateway SIGKILLed in the middle of traffic and restarted on the same database loses no
// message and no key: every text the phone sent is stored and delivered to the webhook, none
// failed to decrypt, the instance resumes without a QR, and every send the API acknowledged
// reached the phone.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { childGateway, ok, removeDir, sleep, startMockServer, tempDir, until, webhookReceiver, withMock } from './support.js'

withMock(test, () => {
  let mock
  let dir
  let hooks
  const children = []
  before(async () => {
    mock = await startMockServer({ seed: 21 })
    dir = tempDir()
    hooks = await webhookReceiver()
  })
  after(async () => {
    for (const c of children) c.child.kill('SIGKILL')
    await hooks.close()
    mock.stop()
    removeDir(dir)
  })

  test('SIGKILL mid-traffic, restart: no message and no key lost', async () => {
    const ME = '15552000001'
    const PEER = '15552000002'
    await mock.control('POST', '/accounts', { phone: ME, name: 'Kim' })
    await mock.control('POST', '/accounts', { phone: PEER, name: 'Lee' })
    let gw = await childGateway(mock, dir)
    children.push(gw)
    const created = await ok(gw.api('POST', '/instances', { name: 'crashy', webhook: { url: `${hooks.url}/hook` } }), 201)
    hooks.addSecret('crashy', created.webhook.secret)
    const { code } = await ok(gw.api('POST', '/instances/crashy/connect', { phone: ME }))
    await mock.control('POST', `/accounts/${ME}/code`, { code })
    await until(async () => (await gw.api('GET', '/instances/crashy')).body.state === 'connected', 'paired')

    const TOTAL = 30
    const phoneTexts = Array.from({ length: TOTAL }, (_, i) => `phone ${i}`)
    const acknowledged = []
    let killed = false
    // The peer's phone keeps sending while the gateway sends too; the kill comes in the middle.
    const phoneTraffic = (async () => {
      for (const [i, text] of phoneTexts.entries()) {
        await mock.control('POST', `/accounts/${PEER}/send`, { to: ME, text })
        await sleep(i < 10 ? 40 : 20)
      }
    })()
    const apiTraffic = (async () => {
      for (let i = 0; !killed && i < 50; i++) {
        const result = await gw.api('POST', '/instances/crashy/messages/text', { to: PEER, text: `api ${i}` }).catch(() => null)
        if (result?.status === 201) acknowledged.push(`api ${i}`)
        await sleep(25)
      }
    })()
    await until(() => hooks.received.filter((h) => h.body.type === 'message.received').length >= 8, 'traffic under way')
    gw.child.kill('SIGKILL')
    killed = true
    await new Promise((resolve) => gw.child.once('exit', resolve))
    await apiTraffic
    await phoneTraffic

    gw = await childGateway(mock, dir)
    children.push(gw)
    await until(async () => (await gw.api('GET', '/instances/crashy')).body.state === 'connected', 'resumed after the crash', 30_000)
    const stored = async () => (await ok(gw.api('GET', '/instances/crashy/messages?limit=500'))).messages
    await until(async () => (await stored()).filter((m) => phoneTexts.includes(m.text)).length === TOTAL, 'every phone message stored', 30_000)
    await until(() => phoneTexts.every((t) => hooks.received.some((h) => h.body.type === 'message.received' && h.body.data.text === t)), 'every phone message delivered', 30_000)
    const types = hooks.received.map((h) => h.body.type)
    assert.ok(!types.includes('message.undecryptable'), 'no message failed to decrypt')
    assert.ok(!types.slice(types.lastIndexOf('instance.paired') + 1).includes('instance.qr'), 'no QR after the restart')
    // Every send the API acknowledged reached the peer's phone, and sending still works.
    await ok(gw.api('POST', '/instances/crashy/messages/text', { to: PEER, text: 'after the crash' }), 201)
    const phone = await until(async () => {
      const { messages } = await mock.control('GET', `/accounts/${PEER}/messages`)
      return messages.some((m) => m.text === 'after the crash') ? messages : null
    }, 'the peer got the message sent after the crash')
    for (const text of acknowledged) assert.ok(phone.some((m) => m.text === text && m.error === null), `${text} reached the phone`)
    assert.ok(phone.every((m) => m.error === null), 'the phone decrypted everything')
    assert.equal(hooks.state.bad, 0, 'every delivery signed')
    // And the peer can still reach us (our keys are intact on both sides).
    await mock.control('POST', `/accounts/${PEER}/send`, { to: ME, text: 'still there?' })
    await until(async () => (await stored()).some((m) => m.text === 'still there?'), 'a message after the restart')
    // A graceful stop: exit 0, sessions closed, the instance left to resume on the next start.
    gw.child.kill('SIGTERM')
    const exitCode = await new Promise((resolve) => gw.child.once('exit', resolve))
    assert.equal(exitCode, 0)
    gw = await childGateway(mock, dir)
    children.push(gw)
    await until(async () => (await gw.api('GET', '/instances/crashy')).body.state === 'connected', 'resumed after a graceful stop')
    assert.ok(!hooks.received.slice(-20).some((h) => h.body.type === 'instance.qr'))
  })
})
