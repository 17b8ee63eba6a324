// The on-disk format of the file stores (the same in the npm, Python and Kotlin FileStores, so a
// directory written by one can be read by another; docs/hosts.md describes it).
//
// A frame is `u32 length | u32 crc32(payload) | payload` (little endian). A payload is
// `u32 count` followed by `count` changes, each `u8 op (1 put, 2 delete) | u32 n | space (UTF-8) |
// u32 n | key (UTF-8)` and, for a put, `u32 n | value`; op 3 (delete all) has no space or key.

import { StoreError } from './store.js'

/** A frame larger than this is treated as damage, not as data (the Rust core's records are far smaller). */
export const MAX_FRAME_BYTES = 1 << 30

/** The header of a snapshot file: "WLKS" and the format version. */
export const SNAPSHOT_MAGIC = new Uint8Array([0x57, 0x4c, 0x4b, 0x53, 1, 0, 0, 0])

const OP_PUT = 1
const OP_DELETE = 2
const OP_DELETE_ALL = 3
const FRAME_HEADER = 8

const CRC_TABLE = (() => {
  const table = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    table[n] = c >>> 0
  }
  return table
})()

/** CRC-32 (IEEE 802.3, the zlib one) of `bytes`. */
export function crc32(bytes) {
  let c = 0xffffffff
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** Encodes checked changes (see `checkBatch`) into one frame. */
export function encodeFrame(changes) {
  const parts = changes.map((c) =>
    c.op === 'deleteAll'
      ? { op: OP_DELETE_ALL }
      : {
          op: c.op === 'put' ? OP_PUT : OP_DELETE,
          space: encoder.encode(c.space),
          key: encoder.encode(c.key),
          value: c.op === 'put' ? c.value : null,
        },
  )
  let size = 4
  for (const p of parts) {
    size += p.op === OP_DELETE_ALL ? 1 : 1 + 4 + p.space.length + 4 + p.key.length + (p.value ? 4 + p.value.length : 0)
  }
  if (size > MAX_FRAME_BYTES) throw new StoreError('too_large', `a batch of ${size} bytes exceeds ${MAX_FRAME_BYTES}`)
  const frame = new Uint8Array(FRAME_HEADER + size)
  const view = new DataView(frame.buffer)
  let at = FRAME_HEADER
  view.setUint32(at, parts.length, true)
  at += 4
  const bytes = (b) => {
    view.setUint32(at, b.length, true)
    frame.set(b, at + 4)
    at += 4 + b.length
  }
  for (const p of parts) {
    frame[at++] = p.op
    if (p.op === OP_DELETE_ALL) continue
    bytes(p.space)
    bytes(p.key)
    if (p.value) bytes(p.value)
  }
  view.setUint32(0, size, true)
  view.setUint32(4, crc32(frame.subarray(FRAME_HEADER)), true)
  return frame
}

/**
 * Reads the frames of `bytes` from `start`. Returns `{ frames, end, torn }`: the decoded change
 * lists, the offset after the last good frame, and whether the bytes after `end` are a torn
 * (partly written) last frame. Damage anywhere but in the last frame throws `corrupt`.
 */
export function readFrames(bytes, start = 0) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const frames = []
  let at = start
  while (at < bytes.length) {
    if (bytes.length - at < FRAME_HEADER) return { frames, end: at, torn: true }
    const size = view.getUint32(at, true)
    const crc = view.getUint32(at + 4, true)
    // No frame is shorter than its change count. A zero-filled tail (the file's length reached the
    // disk, its data did not) is a torn write; anything else there is damage.
    if (size < 4) {
      if (bytes.subarray(at).every((b) => b === 0)) return { frames, end: at, torn: true }
      throw new StoreError('corrupt', `a frame too short at offset ${at}`)
    }
    const next = at + FRAME_HEADER + size
    if (size > MAX_FRAME_BYTES || next > bytes.length) return { frames, end: at, torn: true }
    const payload = bytes.subarray(at + FRAME_HEADER, next)
    if (crc32(payload) !== crc) {
      if (next === bytes.length) return { frames, end: at, torn: true }
      throw new StoreError('corrupt', `damaged frame at offset ${at} followed by more data`)
    }
    frames.push(decodePayload(payload, at))
    at = next
  }
  return { frames, end: at, torn: false }
}

function decodePayload(payload, offset) {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength)
  let at = 0
  const fail = () => {
    throw new StoreError('corrupt', `malformed frame at offset ${offset}`)
  }
  const u32 = () => {
    if (at + 4 > payload.length) fail()
    const v = view.getUint32(at, true)
    at += 4
    return v
  }
  const bytes = () => {
    const n = u32()
    if (at + n > payload.length) fail()
    const b = payload.subarray(at, at + n)
    at += n
    return b
  }
  const text = () => {
    try {
      return decoder.decode(bytes())
    } catch (error) {
      if (error instanceof StoreError) throw error
      return fail()
    }
  }
  const count = u32()
  const changes = []
  for (let i = 0; i < count; i++) {
    if (at >= payload.length) fail()
    const op = payload[at++]
    if (op === OP_DELETE_ALL) {
      changes.push({ op: 'deleteAll' })
      continue
    }
    const space = text()
    const key = text()
    if (op === OP_PUT) changes.push({ op: 'put', space, key, value: bytes().slice() })
    else if (op === OP_DELETE) changes.push({ op: 'delete', space, key })
    else fail()
  }
  if (at !== payload.length) fail()
  return changes
}
