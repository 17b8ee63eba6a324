// Module hook for group-notifications.mjs: Baileys' Socket/messages-recv.js builds on
// makeMessagesSocket (a live socket with encryption, a store and a connection); here it gets
// group-notifications-stub.mjs instead, which records what the receive code emits and stores.
// Baileys' groups.js (imported for extractGroupMetadata) gets the groups oracle's chats stub.
export async function resolve(specifier, context, next) {
  const parent = context.parentURL ?? ''
  if (specifier === './messages-send.js' && parent.endsWith('/Socket/messages-recv.js')) {
    return { url: new URL('./group-notifications-stub.mjs', import.meta.url).href, shortCircuit: true }
  }
  if (specifier === './chats.js' && parent.endsWith('/Socket/groups.js')) {
    return { url: new URL('./groups-chats-stub.mjs', import.meta.url).href, shortCircuit: true }
  }
  return next(specifier, context)
}
