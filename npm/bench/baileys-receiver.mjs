// A Baileys-based receiver for the gateway's load bench (examples/gateway/bench/load.js): one
// process holding many Baileys sockets (`makeWASocket` of the `baileys` dev dependency) against
// walink-sim's mock-server, the mock-server's certificate root put in place of WhatsApp's at run
// time. Each socket pairs by QR (the mock-server's phone scans it) and keeps its keys in memory; a
// received text is counted. This is a minimal harness of its own, for measuring, not a test.
//
// Protocol on stdin/stdout, one JSON line each:
//   in  {"pair": {"name", "phone"}}            out {"paired": name} once the socket is open
//   in  {"stats": true}                        out {"stats": {"sockets", "received": {text: n}}}
// The mock-server is given by WALINK_MOCK_WS and WALINK_MOCK_CONTROL, its root key (hex) by
// WALINK_MOCK_ROOT_HEX.
import { createInterface } from 'node:readline'

import makeWASocket, { BufferJSON, DisconnectReason, WA_CERT_DETAILS, initAuthCreds } from 'baileys'
import pino from 'pino'

WA_CERT_DETAILS.PUBLIC_KEY = Buffer.from(process.env.WALINK_MOCK_ROOT_HEX, 'hex')
const WS = process.env.WALINK_MOCK_WS
const CONTROL = process.env.WALINK_MOCK_CONTROL
const logger = pino({ level: 'silent' })
const received = new Map()
let sockets = 0

const out = (value) => process.stdout.write(`${JSON.stringify(value)}\n`)

/** Baileys' signal keys in memory (what `useMultiFileAuthState` keeps in files). */
function memoryKeys() {
  const data = new Map()
  return {
    async get(type, ids) {
      const found = {}
      for (const id of ids) {
        const value = data.get(`${type}:${id}`)
        if (value !== undefined) found[id] = JSON.parse(value, BufferJSON.reviver)
      }
      return found
    },
    async set(changes) {
      for (const [type, values] of Object.entries(changes)) {
        for (const [id, value] of Object.entries(values)) {
          if (value) data.set(`${type}:${id}`, JSON.stringify(value, BufferJSON.replacer))
          else data.delete(`${type}:${id}`)
        }
      }
    },
  }
}

async function control(method, path, body) {
  const response = await fetch(`${CONTROL}${path}`, { method, body: body === undefined ? undefined : JSON.stringify(body) })
  return response.json()
}

/** Pairs one socket by QR; keeps it open (and reopens it after the 515 restart). */
function pair(name, phone) {
  const auth = { creds: initAuthCreds(), keys: memoryKeys() }
  let scanned = false
  let opened = false
  const open = () => {
    const sock = makeWASocket({
      waWebSocketUrl: WS,
      auth,
      logger,
      printQRInTerminal: false,
      markOnlineOnConnect: false,
      syncFullHistory: false,
      shouldSyncHistoryMessage: () => false,
      fireInitQueries: false,
      generateHighQualityLinkPreview: false,
    })
    sock.ev.on('creds.update', (update) => Object.assign(auth.creds, update))
    sock.ev.on('connection.update', ({ qr, connection, lastDisconnect }) => {
      if (qr && !scanned) {
        scanned = true
        control('POST', `/accounts/${phone}/scan`, { qr }).catch((error) => out({ error: `${name}: scan: ${error.message}` }))
      }
      if (connection === 'open' && !opened) {
        opened = true
        sockets++
        out({ paired: name })
      }
      if (connection === 'close') {
        const code = lastDisconnect?.error?.output?.statusCode
        if (code === DisconnectReason.restartRequired || (code !== DisconnectReason.loggedOut && code !== DisconnectReason.connectionReplaced)) open()
      }
    })
    sock.ev.on('messages.upsert', ({ messages }) => {
      for (const m of messages) {
        const text = m.message?.conversation ?? m.message?.extendedTextMessage?.text
        if (text) received.set(text, (received.get(text) ?? 0) + 1)
      }
    })
  }
  open()
}

for await (const line of createInterface({ input: process.stdin })) {
  const request = JSON.parse(line)
  if (request.pair) pair(request.pair.name, request.pair.phone)
  else if (request.stats) out({ stats: { sockets, received: Object.fromEntries(received) } })
}
