// The walink client of the extension: one linked device, its records in IndexedDB (walink's
// IndexedDBStore), its chats in a History, and a small view of both for the popup. It runs in
// the offscreen document (offscreen.js), where the socket it opens carries the Origin header
// WhatsApp Web's own client sends (the worker installs the rule that sets it, see worker.js).

import { Client, IndexedDBStore, connect, init } from './walink/src/browser.js'
import { History, userOf } from './history.js'
import { isBookkeeping } from './wa-message.js'

/** walink's records (keys, sessions, the device) for this extension. */
export const SESSION_DB = 'walink-session'
/** The chats the popup shows. */
export const HISTORY_DB = 'walink-chats'

/**
 * Keepalive pings every 15-20 s: WhatsApp Web's own cadence is 15-30 s, and the lower maximum
 * keeps every gap under the 30 s after which Chromium stops an idle extension service worker
 * (should the client ever run in one: docs in ../README.md).
 */
const KEEPALIVE = { keepaliveMinMs: 15_000, keepaliveMaxMs: 20_000 }

/** The last `state` event as the popup names it. */
function describeState(state) {
  if (!state) return { kind: 'starting' }
  return state.kind === 'awaitingPairing' ? { kind: 'awaitingPairing', mode: state.mode } : { kind: state.kind }
}

/**
 * Starts the client. `options`:
 * - `config`: the extension's config.json (`{ url?, trustRoot?, mediaOrigin? }`: a test server);
 * - `installOriginRule(url, origin)`: resolves once sockets to `url` will carry `origin`;
 * - `publish(message)`: tells the popup (`{ type: 'view', view }` or `{ type: 'message', ... }`).
 * Resolves with `{ handle(request) }`, which answers the popup's requests.
 */
export async function startHost({ config, installOriginRule, publish }) {
  await init()
  const endpoints = Client.endpoints()
  const url = config.url ?? endpoints.chatUrl
  await installOriginRule(url, endpoints.origin)

  const store = await IndexedDBStore.open(SESSION_DB)
  const history = await History.open(HISTORY_DB)
  const restored = (await store.loadSpaces(Client.startSpaces())).length > 0
  const view = {
    state: { kind: 'starting' },
    session: restored ? 'restored' : 'new',
    me: await history.me(),
    qr: null,
    code: null,
    qrExhausted: false,
    error: null,
  }

  const publishView = async () => publish({ type: 'view', view: { ...view, chats: await history.chats() } })

  const remember = async (chat, message, options) => {
    if (!(await history.add(chat, message, options))) return
    publish({ type: 'message', chat, message })
    await publishView()
  }

  const onEvent = (event) => {
    switch (event.type) {
      case 'state':
        view.state = describeState(event.state)
        if (event.state.kind === 'connected') Object.assign(view, { qr: null, code: null, qrExhausted: false })
        if (event.state.kind === 'loggedOut') {
          Object.assign(view, { me: null, qr: null, code: null })
          history.clear().then(publishView)
          return
        }
        break
      case 'qr':
        Object.assign(view, { qr: event.payload, qrExhausted: false })
        break
      case 'qrRefsExhausted':
        Object.assign(view, { qr: null, qrExhausted: true })
        break
      case 'pairingCode':
        view.code = event.code
        break
      case 'paired':
        Object.assign(view, { me: event.jid, session: 'new' })
        history.setMe(event.jid)
        break
      case 'message': {
        if (event.text === undefined && isBookkeeping(event.message)) return
        const fromMe = view.me !== null && userOf(event.sender) === userOf(view.me)
        const message = { id: event.id, fromMe, sender: event.sender, text: event.text, timestamp: event.timestamp }
        remember(event.chat, message).catch((error) => console.error('walink: keeping a message failed', error))
        return
      }
      default:
        return
    }
    publishView()
  }

  const connection = await connect({
    url,
    store,
    config: {
      ...KEEPALIVE,
      deviceName: 'walink extension',
      platform: 'CHROME',
      ...(config.trustRoot ? { trustRoot: hexBytes(config.trustRoot) } : {}),
      ...(config.mediaOrigin ? { mediaOrigin: config.mediaOrigin } : {}),
    },
    onEvent,
    onError: (error) => console.warn('walink:', error.code, error.message),
  })

  /** Each popup request, by type; each resolves with its answer. */
  const requests = {
    view: async () => ({ view: { ...view, chats: await history.chats() } }),
    chat: async ({ jid }) => {
      await history.read(jid)
      return { messages: await history.messages(jid) }
    },
    pairWithCode: async ({ phone }) => {
      view.code = await connection.pairWithCode(String(phone).replace(/\D/g, ''))
      await publishView()
      return { code: view.code }
    },
    send: async ({ chat, text }) => {
      const sent = await connection.sendText(chat, text)
      await remember(chat, { id: sent.id, fromMe: true, sender: view.me, text, timestamp: Math.floor(Date.now() / 1000) }, { unread: false })
      return { id: sent.id }
    },
    logout: async () => {
      await connection.logout()
      return {}
    },
    // Link again after a logout, or show a new QR once the old ones ran out.
    connect: async () => {
      await connection.command({ type: 'connect' })
      return {}
    },
    // The alarm: a client resting after a dropped connection tries again.
    wake: async () => {
      if (connection.state?.kind === 'disconnected' && view.me !== null) await connection.command({ type: 'connect' })
      return { state: view.state }
    },
  }

  return {
    async handle(request) {
      const handler = requests[request.type]
      if (!handler) return { error: { code: 'unknown_request', message: `no request ${request.type}` } }
      try {
        return await handler(request)
      } catch (error) {
        return { error: { code: error.code ?? 'failed', message: error.message } }
      }
    },
  }
}

function hexBytes(hex) {
  return new Uint8Array(hex.match(/../g).map((byte) => parseInt(byte, 16)))
}
