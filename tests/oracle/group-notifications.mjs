// Group notifications oracle: Baileys 7's own receive code (Socket/messages-recv.js,
// processNotification / handleGroupNotification) fed a `w:gp2` notification through its
// `CB:notification` handler; returns what it stored (message stub type and parameters, or the
// ephemeral protocol message) and the groups it upserted. Nodes travel as JSON (bytes as hex).
import { register } from 'node:module'
import { serve, unhex } from './rpc.mjs'

register('./group-notifications-hooks.mjs', import.meta.url)
const { recorded } = await import('./group-notifications-stub.mjs')
const { makeMessagesRecvSocket } = await import('baileys/lib/Socket/messages-recv.js')
const { WAMessageStubType } = await import('baileys/lib/Types/index.js')

const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, child() { return quiet }, level: 'silent' }
const sock = makeMessagesRecvSocket({ logger: quiet, shouldIgnoreJid: () => false, getMessage: async () => undefined })
const stubName = Object.fromEntries(Object.entries(WAMessageStubType).map(([k, v]) => [v, k]))

function fromJson(json) {
  let content
  if (Array.isArray(json.content)) content = json.content.map(fromJson)
  else if (json.content?.hex !== undefined) content = unhex(json.content.hex)
  return { tag: json.tag, attrs: json.attrs ?? {}, content }
}

serve({
  notification: async ({ node }) => {
    recorded.events.length = 0
    recorded.messages.length = 0
    recorded.sent.length = 0
    const listeners = sock.ws.listeners('CB:notification')
    for (const listener of listeners) await listener(fromJson(node))
    const messages = recorded.messages.map((m) => ({
      stub: m.messageStubType ? stubName[m.messageStubType] ?? String(m.messageStubType) : null,
      params: m.messageStubParameters ?? [],
      ephemeral: m.message?.protocolMessage ? Number(m.message.protocolMessage.ephemeralExpiration ?? 0) : null,
      participant: m.key?.participant ?? null,
    }))
    const groups = recorded.events.filter((e) => e.name === 'groups.upsert').flatMap((e) => e.data.map((g) => ({ id: g.id, subject: g.subject, size: g.size })))
    return { messages, groups, acked: recorded.sent.length }
  },
})
