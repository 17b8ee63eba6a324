// Groups oracle: the IQs Baileys 7's groups socket builds (groupCreate, groupParticipantsUpdate,
// settings, invite codes, leave, ...) for given arguments, what it returns for a given answer,
// and its extractGroupMetadata over a given answer. Nodes travel as JSON (bytes as hex).
import { register } from 'node:module'
import { serve, hex, unhex } from './rpc.mjs'

register('./groups-hooks.mjs', import.meta.url)
const { captured } = await import('./groups-chats-stub.mjs')
const { makeGroupsSocket, extractGroupMetadata } = await import('baileys/lib/Socket/groups.js')

const sock = makeGroupsSocket({})

function toJson(node) {
  const content = Array.isArray(node.content)
    ? node.content.map(toJson)
    : node.content instanceof Uint8Array ? { hex: hex(node.content) }
    : node.content === undefined || node.content === null ? null : { hex: hex(Buffer.from(String(node.content))) }
  const attrs = Object.fromEntries(Object.entries(node.attrs ?? {}).filter(([, v]) => v !== undefined))
  return { tag: node.tag, attrs, content }
}

function fromJson(json) {
  let content
  if (Array.isArray(json.content)) content = json.content.map(fromJson)
  else if (json.content?.hex !== undefined) content = unhex(json.content.hex)
  else if (json.content?.text !== undefined) content = json.content.text
  return { tag: json.tag, attrs: json.attrs ?? {}, content }
}

serve({
  // Calls `sock[op](...args)` with `reply` as every answer; the IQs it sent and its result.
  build: async ({ op, args, reply }) => {
    captured.nodes = []
    captured.reply = reply ? fromJson(reply) : null
    let result = await sock[op](...args)
    // Participant results as { status, jid } (their `content` node left out); other lists as given.
    if (Array.isArray(result)) result = result.map((r) => ('status' in r ? { status: r.status, jid: r.jid } : r))
    return { nodes: captured.nodes.map(toJson), result: result ?? null }
  },
  metadata: ({ node }) => extractGroupMetadata(fromJson(node)),
})
