// Module hook for groups.mjs: Baileys' Socket/groups.js builds on makeChatsSocket (a live socket);
// here it gets groups-chats-stub.mjs instead, whose `query` records each IQ Baileys builds and
// answers with the reply the test chose. Nothing else of Baileys is replaced.
export async function resolve(specifier, context, next) {
  if (specifier === './chats.js' && context.parentURL?.endsWith('/Socket/groups.js')) {
    return { url: new URL('./groups-chats-stub.mjs', import.meta.url).href, shortCircuit: true }
  }
  return next(specifier, context)
}
