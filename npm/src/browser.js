// The browser entry (bundlers, extensions, workers): `await init()` once before using the codec.
import initWasm, * as wasm from '../wasm/walink_wasm.js'
import { attach } from './codec.js'

let pending = null

/** WhatsApp Web's chat socket (the core's); set once the module is loaded (`await init()`). */
export let DEFAULT_URL

/**
 * Loads the wasm module (by default from next to this file, which bundlers follow); safe to call
 * more than once. `input` may be a URL, a Response, bytes or a compiled WebAssembly.Module.
 */
export function init(input) {
  if (pending === null) {
    const module_or_path = input ?? new URL('../wasm/walink_wasm_bg.wasm', import.meta.url)
    pending = initWasm({ module_or_path }).then((instance) => {
      attach(wasm, instance)
      DEFAULT_URL = wasm.Client.endpoints().chatUrl
    })
  }
  return pending
}

export { decodeNode, encodeNode } from './codec.js'
export { decodeMessage, encodeMessage } from './content.js'
export * as content from './builders.js'
export { MemoryStore, StoreError } from './store.js'
export { IndexedDBStore } from './indexeddb-store.js'

import { makeConnect } from './driver.js'
import { BlobMediaHost } from './media-browser.js'
import { wasmMediaCrypto } from './media-crypto.js'

/** Runs a client against the browser's WebSocket, a store and a timer; loads the wasm first. */
export const connect = makeConnect({
  createClient: (config, records) => new wasm.Client(config, records),
  openSocket: (url) => new WebSocket(url),
  // Only the records the core needs at start; the rest arrive through `load` outputs.
  startSpaces: () => wasm.Client.startSpaces(),
  endpoints: () => wasm.Client.endpoints(),
  ready: () => init(),
  // Streamed media bodies as Blobs, through the core's wasm crypto and the page's fetch.
  mediaHost: (options) => new BlobMediaHost({ crypto: wasmMediaCrypto(wasm), core: wasm, fetch: options.fetch }),
})
export { Connection } from './driver.js'
/** The core state machine itself, for hosts that write their own driver (after `await init()`). */
export { Client } from '../wasm/walink_wasm.js'
export { newMediaKey, mediaKeys, MediaEncryptor, MediaDecryptor } from '../wasm/walink_wasm.js'
export { BlobMediaHost } from './media-browser.js'
export { wasmMediaCrypto } from './media-crypto.js'
