// The browser driver's media host in headless Chromium against walink-sim's mock-server: a Blob
// of a few MiB is sent by one page connection (encrypted a piece at a time by the core's wasm
// encryptor into a Blob, uploaded with the page's fetch) and downloaded by another into a Blob
// (decrypted as it arrives; released only after the MAC and both hashes matched); a body altered
// on the way ends in `media_invalid` and releases nothing. The mock-server's media routes are
// reached through a small proxy that adds CORS headers (WhatsApp's media hosts answer
// web.whatsapp.com's CORS requests; an extension's host permissions skip CORS).
import assert from 'node:assert/strict'
import { createServer, request as httpRequest } from 'node:http'
import { after, before, test } from 'node:test'

import { chromiumPath, launch, servePackage } from './support/browser.js'
import { startMockServer, testTrustRoot, withMockServer } from './support/mock-server.js'

const PAGE = `<!doctype html><script type="module">
  import { connect, MemoryStore } from '/src/browser.js'
  window.events = {}
  window.tamper = false
  // Flips one bit 1 MiB into a media body while window.tamper is set.
  const tampering = async (url, init) => {
    const response = await fetch(url, init)
    if (!window.tamper || !response.body || init?.method !== 'GET') return response
    let at = 0
    const flip = new TransformStream({
      transform(chunk, controller) {
        const copy = new Uint8Array(chunk)
        if (at <= 1048576 && 1048576 < at + copy.length) copy[1048576 - at] ^= 1
        at += copy.length
        controller.enqueue(copy)
      },
    })
    return new Response(response.body.pipeThrough(flip), { status: response.status, headers: response.headers })
  }
  window.start = async (name, url, trustRoot, mediaOrigin) => {
    window.events[name] = []
    window[name] = await connect({
      url,
      store: new MemoryStore(),
      fetch: tampering,
      config: { trustRoot: new Uint8Array(trustRoot), deviceName: 'walink chromium', mediaOrigin },
      onEvent(event) {
        window.events[name].push(event)
      },
    })
  }
  window.hex = async (blob) =>
    Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer())), (b) => b.toString(16).padStart(2, '0')).join('')
  window.ready = true
</script>`

/** A proxy to `target` that answers CORS preflights and adds CORS headers. */
async function corsProxy(target) {
  const base = new URL(target)
  const cors = { 'access-control-allow-origin': '*', 'access-control-allow-headers': '*', 'access-control-allow-methods': 'GET, POST, OPTIONS' }
  const server = createServer((request, response) => {
    if (request.method === 'OPTIONS') {
      response.writeHead(204, cors).end()
      return
    }
    const upstream = httpRequest({ host: base.hostname, port: base.port, path: request.url, method: request.method, headers: { ...request.headers, host: base.host, connection: 'close' } }, (answer) => {
      response.writeHead(answer.statusCode, { ...answer.headers, ...cors })
      answer.pipe(response)
    })
    upstream.on('error', () => response.writeHead(502, cors).end())
    request.pipe(upstream)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, origin: `http://127.0.0.1:${server.address().port}` }
}

if (!chromiumPath()) {
  console.log('# skipped: no Chromium installed (apt-get install chromium)')
} else {
  withMockServer(test, 'media in the browser driver', () => {
    let browser
    let http
    let proxy
    let server
    before(async () => {
      server = await startMockServer(43)
      http = await servePackage({ '/media.html': PAGE })
      proxy = await corsProxy(server.controlUrl)
      browser = await launch()
    })
    after(async () => {
      await browser?.close()
      http?.server.close()
      proxy?.server.close()
      server?.stop()
    })

    test('a Blob goes up and comes down into a Blob; a tampered body releases nothing', async () => {
      const page = await browser.newPage()
      await page.goto(`${http.origin}/media.html`)
      await page.waitForFunction(() => window.ready === true)
      const trustRoot = Array.from(testTrustRoot())
      for (const [name, phone] of [['ann', '15550004301'], ['bob', '15550004302']]) {
        await server.control('POST', '/accounts', { phone, name })
        await page.evaluate(([n, url, root, origin]) => window.start(n, url, root, origin), [name, server.url, trustRoot, proxy.origin])
        const code = await page.evaluate(([n, p]) => window[n].pairWithCode(p), [name, phone])
        await server.control('POST', `/accounts/${phone}/code`, { code })
        await page.waitForFunction((n) => window.events[n].some((e) => e.type === 'state' && e.state?.kind === 'connected'), name, { timeout: 20_000 })
      }
      const sent = await page.evaluate(async () => {
        const bytes = new Uint8Array(3 * 1024 * 1024 + 4321)
        for (let i = 0; i < bytes.length; i += 65536) crypto.getRandomValues(bytes.subarray(i, Math.min(i + 65536, bytes.length)))
        window.source = new Blob([bytes], { type: 'video/mp4' })
        const { id } = await window.ann.sendMedia('15550004302@s.whatsapp.net', { kind: 'video', blob: window.source, mimetype: 'video/mp4', caption: 'from a Blob' })
        return { id, hex: await window.hex(window.source), size: window.source.size }
      })
      await page.waitForFunction((id) => window.events.bob.some((e) => e.type === 'message' && e.id === id), sent.id, { timeout: 20_000 })
      const got = await page.evaluate(async (id) => {
        const event = window.events.bob.find((e) => e.type === 'message' && e.id === id)
        const saved = await window.bob.downloadMedia(event, { to: 'blob' })
        return { kind: saved.kind, length: saved.length, size: saved.blob.size, hex: await window.hex(saved.blob) }
      }, sent.id)
      assert.deepEqual(got, { kind: 'mediaSaved', length: sent.size, size: sent.size, hex: sent.hex })

      const refused = await page.evaluate(async (id) => {
        window.tamper = true
        const event = window.events.bob.find((e) => e.type === 'message' && e.id === id)
        try {
          const saved = await window.bob.downloadMedia(event, { to: 'arrayBuffer' })
          return { released: saved.arrayBuffer?.byteLength ?? -1 }
        } catch (error) {
          return { code: error.code }
        } finally {
          window.tamper = false
        }
      }, sent.id)
      assert.deepEqual(refused, { code: 'media_invalid' })

      // Without tampering the same download into an ArrayBuffer works again.
      const again = await page.evaluate(async (id) => {
        const event = window.events.bob.find((e) => e.type === 'message' && e.id === id)
        const saved = await window.bob.downloadMedia(event, { to: 'arrayBuffer' })
        return window.hex(new Blob([saved.arrayBuffer]))
      }, sent.id)
      assert.equal(again, sent.hex)
      await page.evaluate(() => Promise.all([window.ann.close(), window.bob.close()]))
      await page.close()
    })
  })
}
