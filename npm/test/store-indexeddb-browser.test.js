// The IndexedDB store passes the conformance suite in headless Chromium: each store call runs in
// the page, and a crash is a page reload (the tab dies, the committed transactions stay).
import { after, before } from 'node:test'

import { StoreError } from '../src/store.js'
import { chromiumPath, launch, servePackage } from './support/browser.js'
import { storeConformance } from './support/store-conformance.js'

if (!chromiumPath()) {
  console.log('# skipped: no Chromium installed (apt-get install chromium)')
} else {
  let browser
  let page
  let http
  const PAGE = `<!doctype html><script type="module">
    import { IndexedDBStore } from '/src/indexeddb-store.js'
    const stores = new Map()
    const wire = (records) => records.map((r) => ({ ...r, value: [...r.value] }))
    window.call = async (label, method, args) => {
      try {
        if (method === 'open') { stores.set(label, await IndexedDBStore.open(label)); return { ok: null } }
        const store = stores.get(label)
        if (method === 'applyBatch') {
          const changes = Array.isArray(args) ? args.map((c) => (c && Array.isArray(c.value) && c.wire ? { ...c, value: new Uint8Array(c.value), wire: undefined } : c)) : args
          if (Array.isArray(changes)) for (const c of changes) if (c && 'wire' in c) delete c.wire
          return { ok: await store.applyBatch(changes) ?? null }
        }
        if (method === 'loadAll') return { ok: wire(await store.loadAll()) }
        if (method === 'load') return { ok: wire(await store.load(args)) }
        if (method === 'loadSpaces') return { ok: wire(await store.loadSpaces(args)) }
        if (method === 'close') return { ok: await store.close() ?? null }
      } catch (error) {
        return { error: { name: error.name, code: error.code, message: error.message } }
      }
    }
    window.ready = true
  </script>`

  before(async () => {
    http = await servePackage({ '/idb.html': PAGE })
    browser = await launch()
    page = await browser.newPage()
    await page.goto(`${http.origin}/idb.html`)
    await page.waitForFunction(() => window.ready === true)
  })
  after(async () => {
    await browser?.close()
    http?.server.close()
  })

  /** Encodes Uint8Array values as arrays for the trip into the page. */
  const toWire = (changes) =>
    Array.isArray(changes) ? changes.map((c) => (c && c.value instanceof Uint8Array ? { ...c, value: [...c.value], wire: true } : c)) : changes

  async function call(label, method, args) {
    const result = await page.evaluate(([l, m, a]) => window.call(l, m, a), [label, method, args ?? null])
    if (result.error) {
      const error = result.error.name === 'StoreError' ? new StoreError(result.error.code, result.error.message) : Object.assign(new Error(result.error.message), { code: result.error.code })
      throw error
    }
    return result.ok
  }

  const remote = async (label) => {
    await call(label, 'open')
    return {
      applyBatch: (changes) => call(label, 'applyBatch', toWire(changes)),
      loadAll: async () => (await call(label, 'loadAll')).map((r) => ({ ...r, value: new Uint8Array(r.value) })),
      load: async (keys) => (await call(label, 'load', keys)).map((r) => ({ ...r, value: new Uint8Array(r.value) })),
      loadSpaces: async (spaces) => (await call(label, 'loadSpaces', spaces)).map((r) => ({ ...r, value: new Uint8Array(r.value) })),
      close: () => call(label, 'close'),
    }
  }

  storeConformance('IndexedDBStore (Chromium)', {
    open: remote,
    reopen: async (store, label) => {
      await store.close()
      return remote(label)
    },
    crash: async (_store, label) => {
      await page.reload()
      await page.waitForFunction(() => window.ready === true)
      return remote(label)
    },
  })
}
