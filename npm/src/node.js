// The Node.js entry: loads the wasm module synchronously from the package directory.
import { readFileSync } from 'node:fs'
import * as wasm from '../wasm/walink_wasm.js'
import { attach } from './codec.js'

const instance = wasm.initSync({ module: readFileSync(new URL('../wasm/walink_wasm_bg.wasm', import.meta.url)) })
// Large encode results need no zero-filling (every byte is written): a dedicated, uninitialised
// ArrayBuffer, handed out as a plain Uint8Array.
attach(wasm, instance, (length) => new Uint8Array(Buffer.allocUnsafeSlow(length).buffer, 0, length))

/** Already initialised in Node; kept so code can call `await init()` on every platform. */
export async function init() {}

export { decodeNode, encodeNode } from './codec.js'
export { decodeMessage, encodeMessage } from './content.js'
export * as content from './builders.js'
export { MemoryStore, StoreError } from './store.js'
export { FileStore } from './file-store.js'
export { IndexedDBStore } from './indexeddb-store.js'

// The driver, with the `ws` package as the default socket (WhatsApp checks the Origin header).
import WebSocket from 'ws'
import { makeConnect } from './driver.js'
import { FileMediaHost, nodeMediaCrypto } from './media-node.js'
import { wasmMediaCrypto } from './media-crypto.js'

// WhatsApp's endpoints, as the core states them.
const endpoints = wasm.Client.endpoints()

/** WhatsApp Web's chat socket (the core's). */
export const DEFAULT_URL = endpoints.chatUrl

/** Runs a client against a WebSocket, a store and a timer (see the README's Client section). */
export const connect = makeConnect({
  createClient: (config, records) => new wasm.Client(config, records),
  openSocket: (url) => corkable(new WebSocket(url, { origin: endpoints.origin })),
  // Only the records the core needs at start; the rest arrive through `load` outputs.
  startSpaces: () => wasm.Client.startSpaces(),
  endpoints: () => endpoints,
  // Streamed media bodies in temporary files, through Node's native AES (or the core's wasm
  // crypto with `mediaCrypto: 'wasm'`).
  mediaHost: (options) =>
    new FileMediaHost({
      crypto: options.mediaCrypto === 'wasm' ? wasmMediaCrypto(wasm) : nodeMediaCrypto(),
      core: wasm,
      directory: options.mediaDirectory,
      agent: options.mediaAgent,
      gc: options.mediaGc,
    }),
})
export { Connection } from './driver.js'
export const Client = wasm.Client
export { FileMediaHost, nodeMediaCrypto } from './media-node.js'
export { wasmMediaCrypto } from './media-crypto.js'
/** The core's media crypto for hosts that stream bodies themselves. */
export const { newMediaKey, mediaKeys, MediaEncryptor, MediaDecryptor } = wasm

/**
 * Gives a `ws` socket `cork()` and `uncork()` (its TCP socket's): the driver holds the writes of
 * one turn of the event loop and sends them in one system call.
 */
function corkable(socket) {
  socket.cork = () => socket._socket?.cork()
  socket.uncork = () => socket._socket?.uncork()
  return socket
}
