#!/usr/bin/env node
// The gateway: `GATEWAY_API_KEY=... node examples/gateway` (see the README for every variable).
import { loadConfig } from '../src/config.js'
import { startGateway } from '../src/app.js'

let config
try {
  config = loadConfig()
} catch (error) {
  console.error(`walink gateway: ${error.message}`)
  process.exit(2)
}
let gateway
try {
  gateway = await startGateway(config)
} catch (error) {
  // A SQLite file another gateway holds, an unreachable database, a port in use: say it and stop.
  console.error(`walink gateway: ${error.message}`)
  process.exit(2)
}
console.log(`walink gateway listening ${gateway.url}`)

let stopping = false
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, async () => {
    if (stopping) return
    stopping = true
    console.error(`walink gateway: ${signal}, stopping`)
    const force = setTimeout(() => process.exit(1), 15_000)
    force.unref()
    await gateway.stop()
    process.exit(0)
  })
}
