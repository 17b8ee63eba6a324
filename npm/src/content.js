// Message content as WhatsApp's protobuf JSON, the shape Baileys users know (`conversation`,
// `extendedTextMessage.contextInfo.quotedMessage`, `imageMessage.caption`, ...): what
// protobufjs' `proto.Message.toObject(message, { longs: Number, defaults: false })` gives for
// the fields of walink's schema (src/wa-schema.js, generated from core/proto/wa_e2e.proto).
//
// Values: strings; booleans; numbers for 32-bit integers, enums, float and double; 64-bit
// integers as numbers when they are safe integers, else as BigInts; bytes as Uint8Array;
// repeated fields as arrays; an absent field is not a key. Encoding takes the same, plus what
// protobufjs' `fromObject` takes: 64-bit integers as BigInt, decimal strings or Long objects, and
// bytes as Buffer, ArrayBuffer, arrays of numbers or base64. Fields are written in number order,
// as walink-core (prost) and whatsmeow write them. Fields walink's schema lacks are not decoded
// (the message event's `raw` keeps them); encoding one is an `invalid_message` error.
import { TYPES } from './wa-schema.js'

/** How deep messages may nest (prost's recursion limit, which walink-core decodes with). */
export const MAX_NESTING = 100

const FIELDS = new Map(Object.entries(TYPES).map(([name, fields]) => [name, new Map(fields.map((f) => [f[0], f]))]))
const BY_NAME = new Map(Object.entries(TYPES).map(([name, fields]) => [name, new Map(fields.map((f) => [f[1], f]))]))

const VARINT = new Set(['bool', 'enum', 'int32', 'uint32', 'int64', 'uint64'])
const WIRE = { bool: 0, enum: 0, int32: 0, uint32: 0, int64: 0, uint64: 0, fixed32: 5, float: 5, double: 1, string: 2, bytes: 2 }
const utf8 = new TextDecoder('utf-8')
const utf8Encoder = new TextEncoder()

function invalid(message) {
  const error = new Error(message)
  error.code = 'invalid_message'
  return error
}

function toBytes(value, what) {
  if (value instanceof Uint8Array) return value
  if (value instanceof ArrayBuffer) return new Uint8Array(value)
  if (Array.isArray(value) && value.every((b) => Number.isInteger(b) && b >= 0 && b <= 255)) return Uint8Array.from(value)
  if (typeof value === 'string' && /^[A-Za-z0-9+/_-]*={0,2}$/.test(value)) {
    const binary = atob(value.replace(/-/g, '+').replace(/_/g, '/'))
    return Uint8Array.from(binary, (c) => c.charCodeAt(0))
  }
  throw invalid(`${what}: expected bytes (Uint8Array, ArrayBuffer, byte array or base64)`)
}

// --- decoding ------------------------------------------------------------------------------

class Reader {
  constructor(bytes, pos, end) {
    this.bytes = bytes
    this.pos = pos
    this.end = end
  }

  byte() {
    if (this.pos >= this.end) throw invalid('truncated message')
    return this.bytes[this.pos++]
  }

  /** A varint: a number below 2^49, else a BigInt. */
  varint() {
    let value = 0
    let scale = 1
    for (let i = 0; i < 7; i++) {
      const b = this.byte()
      value += (b & 0x7f) * scale
      if (b < 0x80) return value
      scale *= 128
    }
    let big = BigInt(value)
    for (let shift = 49n; shift < 70n; shift += 7n) {
      const b = this.byte()
      big |= BigInt(b & 0x7f) << shift
      if (b < 0x80) return BigInt.asUintN(64, big)
    }
    throw invalid('malformed varint')
  }

  take(length) {
    if (length > this.end - this.pos) throw invalid('truncated message')
    const start = this.pos
    this.pos += length
    return this.bytes.subarray(start, this.pos)
  }

  length() {
    const length = this.varint()
    if (typeof length !== 'number') throw invalid('truncated message')
    return length
  }
}

const safe = (big) => (big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big)

function scalarFromVarint(type, raw) {
  switch (type) {
    case 'bool':
      return raw !== 0 && raw !== 0n
    case 'uint32':
      return typeof raw === 'number' ? raw % 2 ** 32 : Number(BigInt.asUintN(32, raw))
    case 'int32':
    case 'enum':
      return typeof raw === 'number' && raw < 2 ** 31 ? raw : Number(BigInt.asIntN(32, BigInt(raw)))
    case 'uint64':
      return safe(BigInt(raw))
    case 'int64':
      return typeof raw === 'number' ? raw : safe(BigInt.asIntN(64, raw))
  }
  throw invalid(`no varint reading for ${type}`)
}

function readScalar(type, wire, reader) {
  if (wire !== WIRE[type]) throw invalid(`wire type ${wire} for a ${type} field`)
  switch (type) {
    case 'string':
      return utf8.decode(reader.take(reader.length()))
    case 'bytes':
      return reader.take(reader.length()).slice()
    case 'fixed32': {
      const b = reader.take(4)
      return (b[0] | (b[1] << 8) | (b[2] << 16)) + b[3] * 2 ** 24
    }
    case 'float': {
      const b = reader.take(4)
      return new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true)
    }
    case 'double': {
      const b = reader.take(8)
      return new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true)
    }
  }
  return scalarFromVarint(type, reader.varint())
}

function skip(wire, reader) {
  switch (wire) {
    case 0:
      reader.varint()
      return
    case 1:
      reader.take(8)
      return
    case 2:
      reader.take(reader.length())
      return
    case 5:
      reader.take(4)
      return
  }
  throw invalid(`unsupported wire type ${wire}`)
}

function decodeType(typeName, reader, depth, into) {
  if (depth > MAX_NESTING) throw invalid(`messages nest deeper than ${MAX_NESTING}`)
  const fields = FIELDS.get(typeName)
  const out = into ?? {}
  while (reader.pos < reader.end) {
    const key = reader.varint()
    if (typeof key !== 'number') throw invalid('invalid field key')
    const number = Math.floor(key / 8)
    const wire = key % 8
    if (number === 0) throw invalid('field number 0')
    const field = fields.get(number)
    if (!field) {
      skip(wire, reader)
      continue
    }
    const [, name, type, repeated] = field
    if (FIELDS.has(type)) {
      if (wire !== 2) throw invalid(`wire type ${wire} for message field ${name}`)
      const length = reader.length()
      if (length > reader.end - reader.pos) throw invalid('truncated message')
      const inner = new Reader(reader.bytes, reader.pos, reader.pos + length)
      reader.pos += length
      if (repeated) (out[name] ??= []).push(decodeType(type, inner, depth + 1))
      else out[name] = decodeType(type, inner, depth + 1, out[name])
    } else if (repeated && wire === 2 && type !== 'string' && type !== 'bytes') {
      const length = reader.length()
      if (length > reader.end - reader.pos) throw invalid('truncated message')
      const packed = new Reader(reader.bytes, reader.pos, reader.pos + length)
      reader.pos += length
      const list = (out[name] ??= [])
      while (packed.pos < packed.end) list.push(readScalar(type, WIRE[type], packed))
    } else if (repeated) {
      ;(out[name] ??= []).push(readScalar(type, wire, reader))
    } else {
      out[name] = readScalar(type, wire, reader)
    }
  }
  return out
}

/**
 * Decodes an encoded `wa.Message` (a message event's `raw`, or bytes from Baileys'
 * `proto.Message.encode`) into its protobuf JSON. Throws an `invalid_message` error for bytes
 * that are not a message.
 */
export function decodeMessage(bytes) {
  const input = toBytes(bytes, 'message')
  return decodeType('Message', new Reader(input, 0, input.length), 0)
}

// --- encoding ------------------------------------------------------------------------------

class Writer {
  constructor() {
    this.bytes = new Uint8Array(64)
    this.length = 0
  }

  reserve(extra) {
    if (this.length + extra <= this.bytes.length) return
    let size = this.bytes.length * 2
    while (size < this.length + extra) size *= 2
    const grown = new Uint8Array(size)
    grown.set(this.bytes.subarray(0, this.length))
    this.bytes = grown
  }

  byte(b) {
    this.reserve(1)
    this.bytes[this.length++] = b
  }

  raw(bytes) {
    this.reserve(bytes.length)
    this.bytes.set(bytes, this.length)
    this.length += bytes.length
  }

  /** A non-negative varint from a number below 2^53 or a BigInt below 2^64. */
  varint(value) {
    if (typeof value === 'number') {
      while (value >= 0x80) {
        this.byte((value % 0x80) | 0x80)
        value = Math.floor(value / 0x80)
      }
      this.byte(value)
      return
    }
    while (value >= 0x80n) {
      this.byte(Number(value & 0x7fn) | 0x80)
      value >>= 7n
    }
    this.byte(Number(value))
  }

  key(number, wire) {
    this.varint(number * 8 + wire)
  }

  finish() {
    return this.bytes.slice(0, this.length)
  }
}

/** A 64-bit integer given as a number, BigInt, decimal string or Long object, as a BigInt. */
function bigOf(value, where) {
  if (typeof value === 'bigint') return value
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value)
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return BigInt(value)
  if (value && typeof value === 'object' && Number.isInteger(value.low) && Number.isInteger(value.high)) {
    return (BigInt(value.high >>> 0) << 32n) | BigInt(value.low >>> 0)
  }
  throw invalid(`${where}: expected an integer`)
}

function ranged(value, min, max, where) {
  const big = bigOf(value, where)
  if (big < min || big > max) throw invalid(`${where}: ${big} is out of range`)
  return big
}

const I32 = [-(2n ** 31n), 2n ** 31n - 1n]
const U32 = [0n, 2n ** 32n - 1n]
const I64 = [-(2n ** 63n), 2n ** 63n - 1n]
const U64 = [0n, 2n ** 64n - 1n]

function writeScalar(type, value, writer, where) {
  switch (type) {
    case 'string':
      if (typeof value !== 'string') throw invalid(`${where}: expected a string`)
      {
        const bytes = utf8Encoder.encode(value)
        writer.varint(bytes.length)
        writer.raw(bytes)
      }
      return
    case 'bytes': {
      const bytes = toBytes(value, where)
      writer.varint(bytes.length)
      writer.raw(bytes)
      return
    }
    case 'bool':
      if (typeof value !== 'boolean') throw invalid(`${where}: expected a boolean`)
      writer.byte(value ? 1 : 0)
      return
    case 'int32':
    case 'enum':
      writer.varint(BigInt.asUintN(64, ranged(value, ...I32, where)))
      return
    case 'uint32':
      writer.varint(ranged(value, ...U32, where))
      return
    case 'int64':
      writer.varint(BigInt.asUintN(64, ranged(value, ...I64, where)))
      return
    case 'uint64':
      writer.varint(ranged(value, ...U64, where))
      return
    case 'fixed32': {
      const word = Number(ranged(value, ...U32, where))
      writer.raw([word & 0xff, (word >>> 8) & 0xff, (word >>> 16) & 0xff, word >>> 24])
      return
    }
    case 'float':
    case 'double': {
      if (typeof value !== 'number') throw invalid(`${where}: expected a number`)
      const size = type === 'float' ? 4 : 8
      const bytes = new Uint8Array(size)
      const view = new DataView(bytes.buffer)
      if (size === 4) view.setFloat32(0, value, true)
      else view.setFloat64(0, value, true)
      writer.raw(bytes)
      return
    }
  }
  throw invalid(`${where}: no encoding for ${type}`)
}

function encodeType(typeName, object, writer, depth, where) {
  if (depth > MAX_NESTING) throw invalid(`messages nest deeper than ${MAX_NESTING}`)
  if (object === null || typeof object !== 'object' || Array.isArray(object) || object instanceof Uint8Array) {
    throw invalid(`${where}: expected an object`)
  }
  const fields = BY_NAME.get(typeName)
  for (const name of Object.keys(object)) {
    if (!fields.has(name) && object[name] !== undefined && object[name] !== null) {
      throw invalid(`${where}.${name}: not a field of ${typeName} in walink's schema (send it as encoded bytes)`)
    }
  }
  for (const [number, name, type, repeated] of TYPES[typeName]) {
    const value = object[name]
    if (value === undefined || value === null) continue
    const at = `${where}.${name}`
    const values = repeated ? value : [value]
    if (repeated && !Array.isArray(value)) throw invalid(`${at}: expected an array`)
    if (FIELDS.has(type)) {
      values.forEach((item, i) => {
        const inner = new Writer()
        encodeType(type, item, inner, depth + 1, repeated ? `${at}[${i}]` : at)
        writer.key(number, 2)
        writer.varint(inner.length)
        writer.raw(inner.bytes.subarray(0, inner.length))
      })
    } else if (repeated === 2) {
      if (values.length === 0) continue
      const inner = new Writer()
      values.forEach((item, i) => writeScalar(type, item, inner, `${at}[${i}]`))
      writer.key(number, 2)
      writer.varint(inner.length)
      writer.raw(inner.bytes.subarray(0, inner.length))
    } else {
      values.forEach((item, i) => {
        writer.key(number, WIRE[type])
        writeScalar(type, item, writer, repeated ? `${at}[${i}]` : at)
      })
    }
  }
}

/**
 * Encodes a message given as protobuf JSON (what `decodeMessage` and message events give, or a
 * Baileys `proto.IMessage` of the fields walink knows) as WhatsApp's protobuf bytes. Throws an
 * `invalid_message` error naming the first field that does not fit.
 */
export function encodeMessage(message) {
  const writer = new Writer()
  encodeType('Message', message, writer, 0, 'message')
  return writer.finish()
}
