// What Baileys' groups socket needs of the chats socket: `query` records each IQ and answers with
// `captured.reply` (see groups-hooks.mjs).
export const captured = { nodes: [], reply: null }

export const makeChatsSocket = () => ({
  authState: { creds: { me: { id: '15550000000:1@s.whatsapp.net' } } },
  ev: { emit() {}, on() {}, createBufferedFunction: (work) => work },
  ws: { on() {} },
  query: async (node) => {
    captured.nodes.push(node)
    return captured.reply ?? { tag: 'iq', attrs: { type: 'result' }, content: [] }
  },
  upsertMessage: async () => {},
  cleanDirtyBits: async () => {},
})
