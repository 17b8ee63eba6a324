// Just enough of WhatsApp's Message protobuf to tell a message a person wrote from the protocol
// traffic that also arrives as messages (a phone's protocolMessage to its own devices, a group's
// sender key): the top-level field numbers, read without a protobuf library.

/** Fields that carry no content for a person: senderKeyDistributionMessage, protocolMessage, messageContextInfo. */
const BOOKKEEPING_FIELDS = new Set([2, 12, 35])

/** The top-level field numbers of an encoded message, or null when the bytes are not a protobuf. */
export function topLevelFields(bytes) {
  const fields = new Set()
  let at = 0
  const varint = () => {
    let value = 0
    for (let shift = 0; shift < 35; shift += 7) {
      if (at >= bytes.length) return null
      const byte = bytes[at++]
      value += (byte & 0x7f) * 2 ** shift
      if (byte < 0x80) return value
    }
    return null
  }
  while (at < bytes.length) {
    const key = varint()
    if (key === null || key < 8) return null
    const skip = { 0: () => varint() !== null, 1: () => (at += 8) <= bytes.length, 2: () => { const n = varint(); return n !== null && (at += n) <= bytes.length }, 5: () => (at += 4) <= bytes.length }[key & 7]
    if (!skip || !skip()) return null
    fields.add(Math.floor(key / 8))
  }
  return fields
}

/** True when the message is protocol traffic only, nothing to show. */
export function isBookkeeping(bytes) {
  const fields = topLevelFields(bytes)
  return fields !== null && [...fields].every((field) => BOOKKEEPING_FIELDS.has(field))
}
