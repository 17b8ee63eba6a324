// The page at `/` in headless Chromium (Debian's chromium, driven by playwright-core): a person
// opens it with the key, creates an instance, scans the QR with the simulated phone, sees it
// connected, gets a message live and sends one. A screenshot is saved in test-output/.
import assert from 'node:assert/strict'
import { existsSync, mkdirSync } from 'node:fs'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'

import { devPhoneFeature } from '../src/dev-phone.js'
import { API_KEY, inProcessGateway, removeDir, startMockServer, tempDir, until, withMock } from './support.js'

const CHROMIUM = [process.env.WALINK_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter(Boolean).find((p) => existsSync(p))
const OUTPUT = fileURLToPath(new URL('../test-output/', import.meta.url))

withMock(test, () => {
  if (!CHROMIUM) {
    if (process.env.CI || process.env.WALINK_REQUIRE_MOCK) test('Chromium is required', () => assert.fail('no Chromium: install Debian chromium'))
    else console.log('# skipped: no Chromium')
    return
  }
  let mock
  let gw
  let dir
  let browser
  before(async () => {
    mock = await startMockServer({ seed: 41 })
    await mock.control('POST', '/accounts', { phone: '15554000001', name: 'Pia' })
    await mock.control('POST', '/accounts', { phone: '15554000002', name: 'Quinn' })
    dir = tempDir()
    gw = await inProcessGateway(mock, dir, {}, { extraFeatures: [devPhoneFeature(mock, ['15554000001', '15554000002'])] })
    const { chromium } = await import('playwright-core')
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'] })
  })
  after(async () => {
    await browser?.close()
    await gw?.stop()
    mock?.stop()
    removeDir(dir)
  })

  test('create, scan the QR, connected live, a message both ways, screenshot', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } })
    const errors = []
    page.on('pageerror', (error) => errors.push(error.message))
    await page.goto(`${gw.url}/#key=${API_KEY}`)
    await page.waitForSelector('#app:not([hidden])')
    await page.fill('#new-name', 'page-pia')
    await page.click('#create button')
    await page.waitForSelector('tr[data-name="page-pia"]')
    await page.click('#connect-qr')
    await page.waitForSelector('#qr img[src^="data:image/png;base64,"]')
    await page.click('#sim-scan')
    await page.waitForSelector('tr[data-name="page-pia"] .state.connected', { timeout: 20_000 })
    assert.match(await page.textContent('#share'), /100 % connected/)
    // The other account's phone writes: the message appears live.
    await page.fill('#sim-from', '15554000002')
    await page.fill('#sim-text', 'hello page')
    await page.click('#sim-send button')
    await page.waitForSelector('#messages .msg:has-text("hello page")', { timeout: 20_000 })
    // The person answers from the page; the phone gets it.
    await page.fill('#to', '15554000002')
    await page.fill('#text', 'hello phone')
    await page.click('#send button')
    await page.waitForSelector('#messages .msg:has-text("hello phone")', { timeout: 20_000 })
    await until(async () => (await mock.control('GET', '/accounts/15554000002/messages')).messages.some((m) => m.text === 'hello phone' && m.error === null), 'the phone got it')
    mkdirSync(OUTPUT, { recursive: true })
    await page.screenshot({ path: `${OUTPUT}gateway-page.png`, fullPage: true })
    assert.deepEqual(errors, [])
    assert.ok(existsSync(`${OUTPUT}gateway-page.png`))
  })
})
