#!/usr/bin/env node
// Offline mode: the gateway against walink-sim's mock-server, SQLite in a temporary folder, two
// simulated phones the page can play. `node examples/gateway/bin/dev.js` after `./build.sh setup`
// and `cargo build -p walink-sim --bin mock-server`; then open the printed URL.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { startGateway } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { devPhoneFeature } from '../src/dev-phone.js'
import { mockTrustRoot, startMockServer } from '../src/mock.js'

const PHONES = ['15550001111', '15550002222']
const mock = await startMockServer()
await mock.control('POST', '/accounts', { phone: PHONES[0], name: 'Alice' })
await mock.control('POST', '/accounts', { phone: PHONES[1], name: 'Bob' })
// The phones share their app-state keys with each new companion, as real phones do.
for (const phone of PHONES) await mock.control('POST', `/accounts/${phone}/app-state-options`, { auto_share: true })
const dir = mkdtempSync(join(tmpdir(), 'walink-gateway-'))
const apiKey = process.env.GATEWAY_API_KEY ?? randomBytes(18).toString('base64url')
const config = loadConfig(process.env, {
  apiKey,
  port: Number(process.env.GATEWAY_PORT ?? 8080),
  dbPath: join(dir, 'gateway.sqlite'),
  waUrl: mock.url,
  mediaOrigin: mock.controlUrl,
  clientConfig: { deviceName: 'walink gateway', trustRoot: mockTrustRoot() },
})
const gateway = await startGateway(config, { extraFeatures: [devPhoneFeature(mock, PHONES)] })
console.log(`walink gateway (offline, mock-server ${mock.controlUrl}, database ${dir})`)
console.log(`open ${gateway.url}/#key=${apiKey}`)
console.log(`API key: ${apiKey}   simulated phones: ${PHONES.join(', ')}`)

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, async () => {
    await gateway.stop()
    mock.stop()
    rmSync(dir, { recursive: true, force: true })
    process.exit(0)
  })
}
