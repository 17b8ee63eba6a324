// The extension in headless Chromium against walink-sim's mock-server, whose control API plays
// the phones: link by QR (the QR is read back from the popup's canvas and decoded), receive and
// reply, the worker stopped (the client goes on), the client's document closed and the worker
// stopped until its alarm brings both back from IndexedDB, the browser restarted on the same
// profile, logout, and linking again by pairing code; every socket's Origin as the mock-server
// recorded it. A screenshot of the popup in each state goes to test-output/.
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'

import jsQR from 'jsqr'
import { Client } from 'walink'

import { build } from '../build.mjs'
import { chromiumPath } from '../../../npm/test/support/browser.js'
import { startMockServer, testTrustRoot, withMockServer } from '../../../npm/test/support/mock-server.js'

const EXAMPLE = fileURLToPath(new URL('..', import.meta.url))
const SCREENSHOTS = join(EXAMPLE, 'test-output')
const WAIT = { timeout: 20_000 }

const ALICE = '15550002001' // the account this browser links to
const BOB = '15550002002' // a contact, played by the mock-server's phone
const BOB_JID = `${BOB}@s.whatsapp.net`

/** Waits until `check()` resolves truthy (polling every 50 ms), or fails after 20 s. */
async function until(check, what) {
  const deadline = Date.now() + WAIT.timeout
  for (;;) {
    const value = await check()
    if (value) return value
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

if (!chromiumPath()) {
  console.log('# skipped: no Chromium installed (apt-get install chromium)')
} else {
  withMockServer(test, 'browser extension tests', () => {
    let server
    let extension
    let profile
    let browser // { context, worker, id }
    let popup
    let linkedDevice

    /** Launches Chromium with the extension on `profile`; resolves once its worker runs. */
    async function launch() {
      const { chromium } = await import('playwright-core')
      const context = await chromium.launchPersistentContext(profile, {
        executablePath: chromiumPath(),
        headless: true,
        viewport: { width: 380, height: 600 },
        args: [
          `--disable-extensions-except=${extension}`,
          `--load-extension=${extension}`,
          '--no-sandbox',
          '--disable-gpu',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
          '--disable-dev-shm-usage',
        ],
      })
      const worker = context.serviceWorkers()[0] ?? (await context.waitForEvent('serviceworker', WAIT))
      return { context, worker, id: new URL(worker.url()).host }
    }

    /** Opens the popup (as a tab: a headless popup is not a page Playwright sees). */
    async function openPopup() {
      await popup?.close()
      popup = await browser.context.newPage()
      await popup.goto(`chrome-extension://${browser.id}/popup.html`)
      return popup
    }

    const state = () => popup.evaluate(() => document.body.dataset.state)
    const waitState = (kind) => popup.waitForFunction((kind) => document.body.dataset.state === kind, kind, WAIT)
    const shot = (name) => popup.screenshot({ path: join(SCREENSHOTS, `${name}.png`) })
    const handshakes = async () => (await server.control('GET', '/handshakes')).handshakes
    const devices = async () => (await server.control('GET', `/accounts/${ALICE}/devices`)).devices
    const online = async (jid) => (await devices()).some((device) => device.jid === jid && device.online)
    const events = async () => (await server.control('GET', '/events')).events

    /** The worker of the running browser (Chromium starts a new one after a stop). */
    async function currentWorker() {
      return browser.context.serviceWorkers()[0] ?? browser.context.waitForEvent('serviceworker', WAIT)
    }

    /**
     * Stops the extension's service worker the way Chromium does when it is idle (CDP
     * `ServiceWorker.stopWorker`, from `page`: an extension page sees the extension's worker);
     * resolves once CDP reports it stopped.
     */
    async function stopWorker(page) {
      const cdp = await browser.context.newCDPSession(page)
      const versions = new Map()
      cdp.on('ServiceWorker.workerVersionUpdated', ({ versions: updated }) => {
        for (const version of updated) versions.set(version.versionId, version)
      })
      await cdp.send('ServiceWorker.enable')
      const ours = () => [...versions.values()].find((v) => v.scriptURL === `chrome-extension://${browser.id}/worker.js`)
      const running = await until(() => ours()?.runningStatus === 'running' && ours(), 'the worker in CDP')
      await cdp.send('ServiceWorker.stopWorker', { versionId: running.versionId })
      await until(() => ours().runningStatus === 'stopped', 'the worker to stop')
      await cdp.detach()
    }

    /** Bob's phone sends `text` to Alice; resolves once the popup shows it in Bob's chat. */
    async function phoneSends(text) {
      await server.control('POST', `/accounts/${BOB}/send`, { to: ALICE, text })
      await popup.click(`#chat-list li[data-jid="${BOB_JID}"]`, WAIT)
      await popup.waitForFunction(
        (text) => [...document.querySelectorAll('#messages li:not(.mine)')].some((li) => li.textContent === text),
        text,
        WAIT,
      )
    }

    /** Replies from the popup; resolves once Bob's phone decrypted it. */
    async function popupReplies(text) {
      await popup.fill('#reply', text)
      await popup.click('#reply-form button')
      await popup.waitForFunction((text) => [...document.querySelectorAll('#messages li.mine')].some((li) => li.textContent === text), text, WAIT)
      const got = await until(async () => {
        const { messages } = await server.control('GET', `/accounts/${BOB}/messages`)
        return messages.find((message) => message.text === text)
      }, `Bob's phone to get "${text}"`)
      assert.equal(got.error, null)
    }

    before(async () => {
      await mkdir(SCREENSHOTS, { recursive: true })
      server = await startMockServer(20)
      await server.control('POST', '/accounts', { phone: ALICE, name: 'Alice' })
      await server.control('POST', '/accounts', { phone: BOB, name: 'Bob' })
      extension = join(EXAMPLE, 'dist', 'test')
      await build({ out: extension, server: server.url, trustRoot: Buffer.from(testTrustRoot()).toString('hex') })
      profile = await mkdtemp(join(tmpdir(), 'walink-extension-'))
      browser = await launch()
    })

    after(async () => {
      await browser?.context.close()
      server?.stop()
      if (profile) await rm(profile, { recursive: true, force: true })
    })

    test('the release build: WhatsApp only, the wasm CSP, a zip under 2 MiB', async () => {
      const out = await mkdtemp(join(tmpdir(), 'walink-extension-release-'))
      try {
        const release = await build({ out: join(out, 'extension'), zipTo: join(out, 'walink-extension.zip') })
        const manifest = JSON.parse(await readFile(join(release.out, 'manifest.json'), 'utf8'))
        assert.deepEqual(manifest.host_permissions, ['wss://web.whatsapp.com/*', 'https://mmg.whatsapp.net/*'])
        assert.match(manifest.content_security_policy.extension_pages, /'wasm-unsafe-eval'/)
        assert.deepEqual(manifest.background, { service_worker: 'worker.js', type: 'module' })
        assert.deepEqual(JSON.parse(await readFile(join(release.out, 'config.json'), 'utf8')), {})
        assert.ok(release.files.includes('walink/wasm/walink_wasm_bg.wasm'))
        assert.ok(!release.files.some((file) => /node\.js|file-store/.test(file)), 'no Node-only module')
        assert.ok(release.zipBytes < 2 * 1024 * 1024, `zip ${release.zipBytes} bytes`)
        console.log(`# release zip: ${release.zipBytes} bytes, ${release.files.length} files`)
        // The test build differs in its config and one host permission only.
        const test = JSON.parse(await readFile(join(extension, 'manifest.json'), 'utf8'))
        assert.deepEqual(test, { ...manifest, host_permissions: [...manifest.host_permissions, 'ws://127.0.0.1/*'] })
      } finally {
        await rm(out, { recursive: true, force: true })
      }
    })

    test('links by QR: the popup draws the code, the phone scans it', async () => {
      await openPopup()
      await waitState('awaitingPairing')
      await popup.waitForFunction(() => document.getElementById('qr').dataset.drawn, null, WAIT)
      await shot('1-qr')
      const image = await popup.evaluate(() => {
        const canvas = document.getElementById('qr')
        const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height)
        return { width: canvas.width, height: canvas.height, data: Array.from(data) }
      })
      const decoded = jsQR(Uint8ClampedArray.from(image.data), image.width, image.height)
      assert.ok(decoded, 'the drawn QR decodes')
      assert.match(decoded.data, /2@[^,]+,[^,]+,[^,]+,[^,]+,/)
      await server.control('POST', `/accounts/${ALICE}/scan`, { qr: decoded.data })
      await waitState('connected')
      assert.match(await popup.textContent('#me'), new RegExp(`Linked as \\+${ALICE}`))
      const linked = (await devices()).filter((device) => device.online && device.name === 'walink extension')
      assert.equal(linked.length, 1)
      linkedDevice = linked[0].jid
      await shot('2-linked')
    })

    test('shows a message as it arrives and sends a reply', async () => {
      await phoneSends('hello from Bob’s phone')
      assert.equal(await popup.textContent('#chat-title'), `+${BOB}`)
      assert.equal(await popup.getAttribute('#chat-list li', 'data-jid'), BOB_JID)
      await shot('3-message')
      await popupReplies('hi Bob, from the extension')
      await shot('4-reply')
    })

    test('the worker stopped: the client goes on; its document closed too: the alarm brings it back from IndexedDB', async () => {
      const before = (await handshakes()).length
      await stopWorker(popup)
      // The popup's message starts the worker again; the client in the offscreen document never
      // stopped, so there is no new connection and no pairing.
      await openPopup()
      await waitState('connected')
      assert.equal((await handshakes()).length, before, 'the same connection')
      assert.ok(await online(linkedDevice))

      // Now the client goes too (Chromium closing the document, a crash), then the worker, with
      // the wake alarm due in 5 s: the alarm starts the worker, which starts the client.
      await popup.close()
      // CDP from an extension page that sends nothing (the popup would wake the worker).
      popup = await browser.context.newPage()
      await popup.goto(`chrome-extension://${browser.id}/popup.css`)
      const eventsBefore = (await events()).length
      const alarmAt = await (await currentWorker()).evaluate(async () => {
        await chrome.offscreen.closeDocument()
        const when = Date.now() + 5000
        await chrome.alarms.create('walink-wake', { when })
        return when
      })
      await stopWorker(popup)
      assert.ok(Date.now() < alarmAt, 'the worker stopped before the alarm')
      await until(async () => !(await online(linkedDevice)), 'the device to go offline with its document')
      await until(async () => (await handshakes()).length > before && (await online(linkedDevice)), 'the alarm to reconnect the client')
      const since = (await events()).slice(eventsBefore).map(String)
      assert.ok(since.some((event) => event.startsWith('LoggedIn') && event.includes(ALICE)), `a login: ${since}`)
      assert.ok(!since.some((event) => /pair|qr/i.test(event)), `no pairing: ${since}`)
      await openPopup()
      await waitState('connected')
      const view = await popup.evaluate(() => chrome.runtime.sendMessage({ to: 'offscreen', type: 'view' }))
      assert.equal(view.view.session, 'restored', 'the client was rebuilt from IndexedDB')
      assert.equal((await inWorker(() => chrome.alarms.get('walink-wake'))).periodInMinutes, 1, 'the periodic alarm is back')
      await phoneSends('still there?')
      await popupReplies('yes, restored from IndexedDB')
      await shot('5-resumed')
    })

    /** Runs `fn` in the current worker. */
    async function inWorker(fn) {
      return (await currentWorker()).evaluate(fn)
    }

    test('the browser restarts on the same profile: the client logs in without pairing', async () => {
      const before = (await handshakes()).length
      await browser.context.close()
      popup = null
      await until(async () => !(await online(linkedDevice)), 'the device to go offline')
      browser = await launch()
      // No popup yet: the worker's start alone brings the client back.
      await until(async () => (await handshakes()).length > before && (await online(linkedDevice)), 'the client to log in again')
      await openPopup()
      await waitState('connected')
      assert.equal(await popup.textContent('#chat-title'), `+${BOB}`, 'the chats are still there')
      await popup.waitForFunction(() => document.querySelectorAll('#messages li').length >= 4, null, WAIT)
      await phoneSends('after the restart')
      await popupReplies('back after the restart')
      await shot('6-restarted')
    })

    test('logout unlinks the device and deletes its keys', async () => {
      await popup.click('#logout')
      await waitState('loggedOut')
      await until(async () => !(await devices()).some((device) => device.jid === linkedDevice), 'the device to be unlinked')
      const left = await popup.evaluate(async () => {
        const db = await new Promise((resolve, reject) => {
          const request = indexedDB.open('walink-session')
          request.onsuccess = () => resolve(request.result)
          request.onerror = () => reject(request.error)
        })
        const count = await new Promise((resolve) => {
          const request = db.transaction('records').objectStore('records').count()
          request.onsuccess = () => resolve(request.result)
        })
        db.close()
        return count
      })
      assert.equal(left, 0, 'no record left in IndexedDB')
      assert.equal(await popup.isVisible('#chats'), false)
      await shot('7-logged-out')
    })

    test('links again by pairing code', async () => {
      await popup.click('#link-again')
      await waitState('awaitingPairing')
      await popup.fill('#phone', `+${ALICE}`)
      await popup.click('#phone-form button')
      await popup.waitForFunction(() => /^[0-9A-Z]{4}-[0-9A-Z]{4}$/.test(document.getElementById('code').textContent), null, WAIT)
      await shot('8-code')
      const code = (await popup.textContent('#code')).replace('-', '')
      await server.control('POST', `/accounts/${ALICE}/code`, { code })
      await waitState('connected')
      const linked = (await devices()).filter((device) => device.online && device.name === 'walink extension')
      assert.equal(linked.length, 1)
      assert.notEqual(linked[0].jid, linkedDevice, 'a new device')
      assert.equal(await popup.isVisible('#no-chats'), true, 'the old account’s chats are gone')
      await server.control('POST', `/accounts/${BOB}/send`, { to: ALICE, text: 'welcome back' })
      await popup.waitForFunction(() => [...document.querySelectorAll('#messages li')].some((li) => li.textContent === 'welcome back'), null, WAIT)
      await shot('9-code-linked')
    })

    test('every socket said what WhatsApp Web says: Origin https://web.whatsapp.com', async () => {
      const all = await handshakes()
      // The QR link (and its restart), the alarm's reconnect, the browser restart, the code link.
      assert.ok(all.length >= 5, JSON.stringify(all))
      for (const handshake of all) {
        assert.equal(handshake.origin, Client.endpoints().origin, JSON.stringify(handshake))
        assert.equal(handshake.path, '/ws/chat')
      }
      assert.equal(Client.endpoints().origin, 'https://web.whatsapp.com')
    })
  })
}
