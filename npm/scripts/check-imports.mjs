// Fails unless the wasm module imports only wasm-bindgen's glue module (./walink_wasm_bg.js),
// so the package never reaches for WASI, the file system or anything else of the host.
import { readFileSync } from 'node:fs'

const file = process.argv[2]
const module = new WebAssembly.Module(readFileSync(file))
const imports = WebAssembly.Module.imports(module)
const unexpected = imports.filter((entry) => entry.module !== './walink_wasm_bg.js')
if (unexpected.length > 0) {
  console.error('unexpected wasm imports:', unexpected)
  process.exit(1)
}
console.log(`wasm imports: ${imports.length}, all from wasm-bindgen glue: ${imports.map((i) => i.name).join(', ')}`)
