// The published wasm module stays under the size bound (issues 7 and 16; docs/decisions.md, "wasm
// size with content, media and history (issue 16)"): a change that grows it past 1,078 KiB raw or
// 463 KiB gzipped fails here instead of going unnoticed (an interim bound with groups, calls,
// presence, contacts, status posts and sealed add-ons in the module; issue 16's aim, 1 MiB and 420 KiB, is not met).
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { test } from 'node:test'

import { PUBLISHED_WASM, WASM_SIZE_AIM, describeWasmSize, wasmSize } from '../scripts/wasm-size.mjs'

test('the published wasm module is under 1,078 KiB raw and 463 KiB gzipped', () => {
  assert.ok(existsSync(PUBLISHED_WASM), 'npm/wasm/ is missing: run `bash scripts/build-wasm.sh` first')
  const size = wasmSize()
  const line = describeWasmSize(size)
  console.log(line)
  assert.ok(size.raw < WASM_SIZE_AIM.raw, line)
  assert.ok(size.gzip < WASM_SIZE_AIM.gzip, line)
})

test('the size check measures what it is given', () => {
  const size = wasmSize(new Uint8Array(2048))
  assert.equal(size.raw, 2048)
  assert.ok(size.gzip > 0 && size.gzip < 100)
  assert.match(describeWasmSize({ raw: WASM_SIZE_AIM.raw, gzip: 1 }), /OVER the 1078\.0 KiB aim.*under the 463\.0 KiB aim/)
})
