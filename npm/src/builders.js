// Content for each kind of message, as protobuf JSON for `Connection.sendMessage` (the shapes
// Baileys' `generateWAMessageContent` builds). Keys name a message from this device's point of
// view: `keyOf(event)` for a received one, `{ remoteJid: to, fromMe: true, id }` for one sent.

/** `ProtocolMessage.Type` values. */
const REVOKE = 0
const MESSAGE_EDIT = 14

const bare = (jid) => jid.replace(/:\d+@/, '@')
const isGroup = (jid) => jid.endsWith('@g.us') || jid.endsWith('@broadcast')

/** The key of a received message event: what a reply, reaction, edit or revoke names it by. */
export function keyOf(message) {
  const key = { remoteJid: message.chat, fromMe: message.fromMe, id: message.id }
  if (isGroup(message.chat)) key.participant = bare(message.sender)
  return key
}

/** A text, with `mentions` (user JIDs, also written as `@<user>` in the text) when given. */
export function text(body, { mentions } = {}) {
  if (!mentions?.length) return { conversation: body }
  return { extendedTextMessage: { text: body, contextInfo: { mentionedJid: mentions } } }
}

/** `content` (a text string or any content) as a reply quoting the received `message`. */
export function reply(message, content) {
  const context = { stanzaId: message.id, participant: bare(message.sender), quotedMessage: message.message }
  if (typeof content === 'string') content = { conversation: content }
  if (content.conversation !== undefined) {
    const { conversation, ...rest } = content
    return { ...rest, extendedTextMessage: { text: conversation, contextInfo: context } }
  }
  const [field, inner] = Object.entries(content).find(([name]) => name !== 'messageContextInfo') ?? []
  if (!field || inner === null || typeof inner !== 'object') throw Object.assign(new Error('reply: no content to quote with'), { code: 'invalid_message' })
  return { ...content, [field]: { ...inner, contextInfo: { ...inner.contextInfo, ...context } } }
}

/** A reaction to the message `key` names; an empty `emoji` removes this account's reaction. */
export function reaction(key, emoji) {
  return { reactionMessage: { key, text: emoji } }
}

/** An edit of this account's message `key` to `content` (a text string or any content). */
export function edit(key, content) {
  const editedMessage = typeof content === 'string' ? { conversation: content } : content
  return { protocolMessage: { key, type: MESSAGE_EDIT, editedMessage } }
}

/** Deletes the message `key` names for everyone (this account's, or any as a group admin). */
export function revoke(key) {
  return { protocolMessage: { key, type: REVOKE } }
}

/** A poll; `selectable` is how many options a voter may choose (0: any number). */
export function poll(name, options, selectable = 0) {
  const creation = { name, options: options.map((optionName) => ({ optionName })), selectableOptionsCount: selectable }
  return selectable === 1 ? { pollCreationMessageV3: creation } : { pollCreationMessage: creation }
}

/** A location pin. */
export function location(degreesLatitude, degreesLongitude, { name, address } = {}) {
  return { locationMessage: { degreesLatitude, degreesLongitude, name, address } }
}

/** A contact card (`vcard` is the vCard text). */
export function contact(displayName, vcard) {
  return { contactMessage: { displayName, vcard } }
}
