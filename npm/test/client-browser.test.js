// The browser entry in headless Chromium: `connect` loads the wasm, stores the new device in
// IndexedDB before the socket opens, and after a page reload (the tab died) the same device is
// restored from IndexedDB instead of a new one being made.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { chromiumPath, launch, servePackage } from './support/browser.js'

const PAGE = `<!doctype html><script type="module">
  import { connect, IndexedDBStore, Client } from '/src/browser.js'
  window.run = async (dbName) => {
    const log = []
    const store = await IndexedDBStore.open(dbName)
    const before = (await store.loadAll()).map((r) => r.space + '/' + r.key).sort()
    const inner = store.applyBatch.bind(store)
    store.applyBatch = async (changes) => {
      await inner(changes)
      log.push('persist ' + changes.map((c) => c.op + ' ' + c.space + '/' + c.key).join(', '))
    }
    let socket
    const connection = await connect({
      store,
      url: 'ws://unused',
      config: { unsafeTestRngSeed: new Uint8Array(32).fill(9) },
      socket: () => {
        log.push('open socket')
        socket = { readyState: 0, sent: [], send(b) { this.sent.push(b); log.push('send ' + b.length) }, close() { this.readyState = 3 } }
        return socket
      },
    })
    socket.readyState = 1
    socket.onopen({})
    await new Promise((resolve) => setTimeout(resolve, 50))
    const header = Array.from(socket.sent[0].subarray(0, 4))
    await connection.close()
    const records = (await store.loadAll()).map((r) => r.space + '/' + r.key).sort()
    const device = Array.from((await store.load([{ space: 'device', key: 'device' }]))[0].value.subarray(0, 16))
    await store.close()
    return { log, header, before, records, device, startSpaces: Client.startSpaces() }
  }
  window.ready = true
</script>`

if (!chromiumPath()) {
  console.log('# skipped: no Chromium installed (apt-get install chromium)')
} else {
  let browser
  let http
  before(async () => {
    http = await servePackage({ '/client.html': PAGE })
    browser = await launch()
  })
  after(async () => {
    await browser?.close()
    http?.server.close()
  })

  test('a client in a page stores its device in IndexedDB and gets it back after a reload', async () => {
    const page = await browser.newPage()
    await page.goto(`${http.origin}/client.html`)
    await page.waitForFunction(() => window.ready === true)
    const first = await page.evaluate(() => window.run('walink-reload-test'))
    assert.deepEqual(first.before, [])
    assert.match(first.log[0], /^persist .*put device\/device/)
    assert.equal(first.log[1], 'open socket')
    assert.deepEqual(first.header, [0x57, 0x41, 6, 3])
    assert.ok(first.records.includes('device/device'))

    await page.reload()
    await page.waitForFunction(() => window.ready === true)
    const second = await page.evaluate(() => window.run('walink-reload-test'))
    assert.deepEqual(second.before, first.records, 'the reloaded page finds the records')
    assert.ok(!second.log.some((l) => l.includes('put device/device')), 'no new device after the reload')
    assert.equal(second.log[0], 'open socket')
    assert.deepEqual(second.device, first.device)
    assert.deepEqual(second.header, [0x57, 0x41, 6, 3])
    await page.close()
  })
}
