// What Baileys' messages-recv.js needs of the send socket, for group notifications only: an
// event emitter and `upsertMessage` that record, `sendNode` that records acks, mutexes that run
// their work at once. Nothing that parses a notification is replaced.
import { EventEmitter } from 'node:events'

export const recorded = { events: [], messages: [], sent: [] }

export const makeMessagesSocket = () => {
  const ws = new EventEmitter()
  ws.isOpen = true
  const ev = {
    emit: (name, data) => recorded.events.push({ name, data }),
    on() {},
    off() {},
    buffer() {},
    flush() {},
    createBufferedFunction: (work) => work,
  }
  const mutex = { mutex: (work) => work() }
  return {
    ev,
    ws,
    authState: { creds: { me: { id: '15550000000:1@s.whatsapp.net', lid: '99999:1@lid' } }, keys: {} },
    messageMutex: mutex,
    notificationMutex: mutex,
    receiptMutex: mutex,
    devicesMutex: mutex,
    userDevicesCache: undefined,
    signalRepository: { lidMapping: { getLIDForPN: async () => null, getPNForLID: async () => null, storeLIDPNMappings: async () => {} } },
    query: async () => ({ tag: 'iq', attrs: { type: 'result' }, content: [] }),
    upsertMessage: async (msg) => recorded.messages.push(msg),
    sendNode: async (node) => recorded.sent.push(node),
    onUnexpectedError: (err) => { throw err },
    registerSocketEndHandler() {},
    resyncAppState: async () => {},
    assertSessions: async () => {},
    relayMessage: async () => {},
    sendReceipt: async () => {},
    uploadPreKeys: async () => {},
    sendPeerDataOperationMessage: async () => {},
    issuePrivacyTokens: async () => {},
    fetchAccountReachoutTimelock: async () => {},
  }
}
