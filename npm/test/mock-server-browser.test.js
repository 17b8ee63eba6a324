// The browser entry in headless Chromium against walink-sim's mock-server over the browser's own
// WebSocket, with the IndexedDB store: pairing by code, a page reload in the middle of the session
// (the tab died), then the reloaded page logs in from IndexedDB without pairing again and
// exchanges messages with another account's phone.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { chromiumPath, launch, servePackage } from './support/browser.js'
import { startMockServer, testTrustRoot, withMockServer } from './support/mock-server.js'

const PAGE = `<!doctype html><script type="module">
  import { connect, IndexedDBStore } from '/src/browser.js'
  window.events = []
  window.start = async (dbName, url, trustRoot) => {
    const store = await IndexedDBStore.open(dbName)
    window.restored = (await store.loadAll()).length
    window.connection = await connect({
      url,
      store,
      config: { trustRoot: new Uint8Array(trustRoot), deviceName: 'walink chromium' },
      onEvent(event) {
        const plain = { type: event.type, state: event.state?.kind, jid: event.jid, chat: event.chat, sender: event.sender, text: event.text }
        window.events.push(plain)
      },
    })
    return window.restored
  }
  window.ready = true
</script>`

if (!chromiumPath()) {
  console.log('# skipped: no Chromium installed (apt-get install chromium)')
} else {
  withMockServer(test, 'mock-server browser tests', () => {
    let browser
    let http
    let server
    before(async () => {
      server = await startMockServer(19)
      http = await servePackage({ '/mock.html': PAGE })
      browser = await launch()
    })
    after(async () => {
      await browser?.close()
      http?.server.close()
      server?.stop()
    })

    /** Waits until the page saw an event matching `predicate` (a function source over `e`). */
    const waitEvent = (page, predicate) =>
      page.waitForFunction((source) => window.events.some(new Function('e', `return ${source}`)), predicate, { timeout: 20_000 })

    test('pairing by code in Chromium, a reload mid-session, then login from IndexedDB and messages', async () => {
      await server.control('POST', '/accounts', { phone: '15550009999', name: 'Ivan' })
      await server.control('POST', '/accounts', { phone: '15550001010', name: 'Judy' })
      const trustRoot = Array.from(testTrustRoot())
      const page = await browser.newPage()
      await page.goto(`${http.origin}/mock.html`)
      await page.waitForFunction(() => window.ready === true)
      assert.equal(await page.evaluate(([url, root]) => window.start('walink-mock-test', url, root), [server.url, trustRoot]), 0)
      const code = await page.evaluate(() => window.connection.pairWithCode('15550009999'))
      assert.match(code, /^[0-9A-Z]{8}$/)
      await server.control('POST', '/accounts/15550009999/code', { code })
      await waitEvent(page, "e.type === 'paired'")
      await waitEvent(page, "e.type === 'state' && e.state === 'connected'")
      const paired = (await page.evaluate(() => window.events)).find((e) => e.type === 'paired')
      assert.match(paired.jid, /^15550009999:\d+@s\.whatsapp\.net$/)

      // The tab dies in the middle of the session: no close, no logout.
      await page.reload()
      await page.waitForFunction(() => window.ready === true)
      const restored = await page.evaluate(([url, root]) => window.start('walink-mock-test', url, root), [server.url, trustRoot])
      assert.ok(restored > 0, 'the reloaded page finds its records in IndexedDB')
      await waitEvent(page, "e.type === 'state' && e.state === 'connected'")
      const events = await page.evaluate(() => window.events)
      assert.ok(!events.some((e) => e.type === 'qr' || e.type === 'paired'), 'no pairing after the reload')
      const devices = await server.control('GET', '/accounts/15550009999/devices')
      assert.ok(devices.devices.some((d) => d.jid === paired.jid && d.online), 'the same device is online again')

      // Messages both ways with Judy's phone after the reload.
      await page.evaluate(() => window.connection.sendText('15550001010@s.whatsapp.net', 'hello Judy from Chromium'))
      const deadline = Date.now() + 20_000
      for (;;) {
        const { messages } = await server.control('GET', '/accounts/15550001010/messages')
        const got = messages.find((m) => m.text === 'hello Judy from Chromium')
        if (got) {
          assert.equal(got.error, null)
          break
        }
        assert.ok(Date.now() < deadline, `Judy's phone did not get the message: ${JSON.stringify(messages)}`)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      await server.control('POST', '/accounts/15550001010/send', { to: '15550009999', text: 'hello Ivan from the phone' })
      await waitEvent(page, "e.type === 'message' && e.text === 'hello Ivan from the phone'")
      const reply = (await page.evaluate(() => window.events)).find((e) => e.text === 'hello Ivan from the phone')
      assert.equal(reply.chat, '15550001010@s.whatsapp.net')
      await page.evaluate(() => window.connection.close())
      await page.close()
    })
  })
}
