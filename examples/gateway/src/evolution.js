// Evolution API v2 shapes: connection states, the stored-message object, the webhook envelope,
// and the mapping of native events to Evolution events (each feature adds its own entries in
// its `evolutionEvents`).

/** Evolution's connection state (`open`, `connecting`, `close`) for a gateway state. */
export function evolutionState(state) {
  if (state === 'connected') return 'open'
  if (['qr_required', 'code_required', 'connecting', 'reconnecting'].includes(state)) return 'connecting'
  return 'close'
}

/** Evolution's message status names for WhatsApp receipts. */
export const RECEIPT_STATUS = { edited: 'EDITED', deleted: 'DELETED', sent: 'SERVER_ACK', delivery: 'DELIVERY_ACK', delivered: 'DELIVERY_ACK', read: 'READ', 'read-self': 'READ', played: 'PLAYED', pending: 'PENDING', error: 'ERROR' }

/** The stored-message object Evolution sends in MESSAGES_UPSERT / SEND_MESSAGE and answers sendText with. */
export function evolutionMessage(message, instance) {
  return {
    key: { remoteJid: message.chat, fromMe: Boolean(message.fromMe), id: message.id, ...(message.chat.endsWith('@g.us') && message.sender ? { participant: message.sender } : {}) },
    pushName: message.pushName ?? '',
    status: RECEIPT_STATUS[message.status] ?? 'SERVER_ACK',
    message: message.message ?? { conversation: message.text ?? '' },
    contextInfo: contextInfoOf(message.message),
    messageType: message.message ? (message.messageType ?? 'unknown') : message.text == null ? 'unknown' : 'conversation',
    messageTimestamp: message.timestamp,
    instanceId: instance.id,
    source: 'unknown',
  }
}

/** The `contextInfo` of a message's content (quote, mentions), as Evolution lifts it, or null. */
function contextInfoOf(content) {
  if (!content) return null
  for (const value of Object.values(content)) if (value && typeof value === 'object' && value.contextInfo) return value.contextInfo
  return null
}

/** The webhook envelope: no `apikey` (Evolution puts the instance token there; we never do). */
export function evolutionEnvelope(kind, data, instance, at, serverUrl) {
  return {
    event: kind.toLowerCase().replace(/_/g, '.'),
    instance: instance?.name ?? null,
    data,
    destination: null,
    date_time: new Date(at).toISOString(),
    sender: instance?.jid ? `${instance.jid.split('@')[0].split(':')[0]}@s.whatsapp.net` : null,
    server_url: serverUrl,
  }
}

/** Builds `toEvolution(type, data, instance)` and `evolutionBody(kind, event, instance)` from the features. */
export function evolutionMapper(features, serverUrl) {
  const table = {}
  for (const feature of features) Object.assign(table, feature.evolutionEvents ?? {})
  const toEvolution = (type, data, instance) => {
    const map = table[type]
    if (!map) return []
    return map(data ?? {}, instance ?? {})
  }
  const evolutionBody = (kind, event, instance) => {
    const data = JSON.parse(event.data)
    const pair = toEvolution(event.type, data, instance).find(([name]) => name === kind)
    return evolutionEnvelope(kind, pair ? pair[1] : data, instance, event.at, typeof serverUrl === 'function' ? serverUrl() : serverUrl)
  }
  return { toEvolution, evolutionBody, events: Object.keys(table) }
}

/** Every Evolution event name this gateway can send (for webhook filters). */
export const EVOLUTION_EVENTS = [
  'INSTANCE_CREATE',
  'INSTANCE_DELETE',
  'REMOVE_INSTANCE',
  'QRCODE_UPDATED',
  'CONNECTION_UPDATE',
  'LOGOUT_INSTANCE',
  'MESSAGES_UPSERT',
  'MESSAGES_UPDATE',
  'MESSAGES_EDITED',
  'MESSAGES_DELETE',
  'SEND_MESSAGE',
  'SEND_MESSAGE_UPDATE',
  'CHATS_UPSERT',
  'CHATS_UPDATE',
  'CONTACTS_UPSERT',
  'LABELS_EDIT',
  'LABELS_ASSOCIATION',
  'GROUPS_UPSERT',
  'GROUP_UPDATE',
  'GROUP_PARTICIPANTS_UPDATE',
  'CALL',
  'PRESENCE_UPDATE',
]

/** Evolution's `{status, error, response}` success body. */
export const evolutionOk = (message) => ({ status: 'SUCCESS', error: false, response: { message } })
