// The Node.js entry: loads the wasm module synchronously from the package directory.
import { readFileSync } from 'node:fs'
import * as wasm from '../wasm/walink_wasm.js'
import { attach } from './codec.js'

const instance = wasm.initSync({ module: readFileSync(new URL('../wasm/walink_wasm_bg.wasm', import.meta.url)) })
attach(wasm, instance)

/** Already initialised in Node; kept so code can call `await init()` on every platform. */
export async function init() {}

export { decodeNode, encodeNode } from './codec.js'
