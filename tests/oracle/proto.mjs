// Protobuf oracle: WhatsApp's schema as Baileys ships it (WAProto.proto, and the protobufjs
// static code Baileys encodes with), compared against walink's own .proto files in core/proto.
import { join } from 'node:path'
import protobuf from 'protobufjs'
import { proto } from 'baileys/WAProto/index.js'
import { serve, hex, unhex } from './rpc.mjs'

const protoDir = join(import.meta.dirname, '..', '..', 'core', 'proto')
// The files of walink's schema that mirror WAProto.proto (the handshake, certificate and Signal
// wire files come from other schemas and have their own tests).
const SCHEMA_FILES = ['wa_adv.proto', 'wa_e2e.proto', 'wa_history.proto', 'wa_syncd.proto']
const walink = protobuf.loadSync(SCHEMA_FILES.map((f) => join(protoDir, f)))
walink.resolveAll()
const whatsapp = protobuf.loadSync(join(import.meta.dirname, 'node_modules/baileys/WAProto/WAProto.proto'))
whatsapp.resolveAll()

const readOptions = { longs: String, enums: Number, bytes: String, defaults: false }

// Every message and enum type walink declares, by its path inside package `wa`.
function walinkTypes() {
  const types = []
  const visit = (ns) => {
    for (const nested of ns.nestedArray ?? []) {
      if (nested instanceof protobuf.Type || nested instanceof protobuf.Enum) types.push(nested)
      if (nested.nestedArray) visit(nested)
    }
  }
  visit(walink.lookup('wa'))
  return types
}

const pathOf = (type) => type.fullName.replace(/^\.wa\./, '')
const simpleName = (fullName) => fullName.split('.').pop()
const baileysStatic = (path) => path.split('.').reduce((ns, part) => ns?.[part], proto)

// Compares walink's schema with WhatsApp's, field by field and enum value by enum value.
// `newer` lists fields walink declares from newer sources than Baileys' schema.
function schemaDiff({ newer = [] }) {
  const problems = []
  let fields = 0
  let values = 0
  for (const type of walinkTypes()) {
    const path = pathOf(type)
    const theirs = whatsapp.lookup(`proto.${path}`)
    if (!theirs) {
      problems.push(`${path}: not in WhatsApp's schema`)
      continue
    }
    if (type instanceof protobuf.Enum) {
      for (const [name, id] of Object.entries(type.values)) {
        values++
        if (theirs.values?.[name] !== id) problems.push(`${path}.${name} = ${id}: theirs ${theirs.values?.[name]}`)
      }
      continue
    }
    for (const field of type.fieldsArray) {
      fields++
      const other = theirs.fields?.[field.name]
      const where = `${path}.${field.name}`
      if (!other) {
        if (!newer.includes(where)) problems.push(`${where}: no such field`)
        continue
      }
      if (other.id !== field.id) problems.push(`${where}: number ${field.id}, theirs ${other.id}`)
      if (other.repeated !== field.repeated) problems.push(`${where}: repeated ${field.repeated}, theirs ${other.repeated}`)
      // Only numeric fields can be packed; protobufjs reports `packed` for any proto3 list.
      const packable = !field.resolvedType || field.resolvedType instanceof protobuf.Enum
      if (field.repeated && packable && !['string', 'bytes'].includes(field.type) && other.packed !== field.packed) problems.push(`${where}: packed ${field.packed}, theirs ${other.packed}`)
      const mine = field.resolvedType ? simpleName(field.resolvedType.fullName) : field.type
      const their = other.resolvedType ? simpleName(other.resolvedType.fullName) : other.type
      // An enum kept as int32 is the same varint on the wire.
      const enumAsInt = mine === 'int32' && other.resolvedType instanceof protobuf.Enum
      if (mine !== their && !enumAsInt) problems.push(`${where}: type ${mine}, theirs ${their}`)
    }
  }
  return { problems, fields, values }
}

// A small seeded generator, so a failing sample can be reproduced from its seed.
function rng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const MAX_DEPTH = 3

// A fully populated object for `type` (every declared field set, lists of 1-3 items), built from
// walink's descriptor, so encoding it with Baileys exercises every field walink declares.
function sample(type, random, depth) {
  const pick = (n) => Math.floor(random() * n)
  const bigDigits = () => String(BigInt(pick(2 ** 32)) * 4294967296n + BigInt(pick(2 ** 32)))
  const scalar = (field) => {
    if (field.resolvedType instanceof protobuf.Enum) {
      const ids = Object.values(field.resolvedType.values)
      return ids[pick(ids.length)]
    }
    switch (field.type) {
      case 'string': return ['', 'hi', '15551234567@s.whatsapp.net', 'héllo ✓ 🙂', '3EB0' + pick(1e9)][pick(5)]
      case 'bytes': return Buffer.from(Array.from({ length: pick(40) }, () => pick(256))).toString('base64')
      case 'bool': return random() < 0.5
      case 'double': return [0, -33.8688, 151.2093, 1e300, (random() - 0.5) * 360][pick(5)]
      case 'float': return Math.fround([0, 1.5, -2.25, random() * 100][pick(4)])
      case 'uint32':
      case 'fixed32': return [0, 1, 127, 128, 2 ** 32 - 1, pick(2 ** 32)][pick(6)]
      case 'int32': return [0, -1, 2 ** 31 - 1, -(2 ** 31), pick(2 ** 31) - 2 ** 30][pick(5)]
      case 'uint64': return ['0', '1', '18446744073709551615', bigDigits()][pick(4)]
      case 'int64': return ['0', '-1', '9223372036854775807', '-9223372036854775808', bigDigits().slice(0, 18)][pick(5)]
      default: throw new Error(`no sample for ${field.type}`)
    }
  }
  const object = {}
  const theirs = whatsapp.lookup(`proto.${pathOf(type)}`)
  for (const field of type.fieldsArray) {
    // Baileys cannot encode a field its schema lacks.
    if (!theirs?.fields?.[field.name]) continue
    const isMessage = field.resolvedType instanceof protobuf.Type
    if (isMessage && depth >= MAX_DEPTH) continue
    const one = () => (isMessage ? sample(field.resolvedType, random, depth + 1) : scalar(field))
    object[field.name] = field.repeated ? Array.from({ length: 1 + pick(3) }, one) : one()
  }
  return object
}

function encodeWithBaileys(path, object) {
  const Type = baileysStatic(path)
  if (!Type?.encode) throw new Error(`Baileys has no static type ${path}`)
  return Type.encode(Type.fromObject(object)).finish()
}

function decodeWithBaileys(path, bytes) {
  const Type = baileysStatic(path)
  return Type.toObject(Type.decode(bytes), readOptions)
}

serve({
  schemaDiff,
  // Every walink message type with a sample encoded by Baileys, and Baileys' reading of it.
  samples: ({ seed }) => {
    const random = rng(seed)
    return walinkTypes()
      .filter((type) => type instanceof protobuf.Type)
      .map((type) => {
        const path = pathOf(type)
        const bytes = encodeWithBaileys(path, sample(type, random, 0))
        return { type: path, hex: hex(bytes), object: decodeWithBaileys(path, bytes) }
      })
  },
  encode: ({ type, object }) => hex(encodeWithBaileys(type, object)),
  decode: ({ type, hex: bytes }) => decodeWithBaileys(type, unhex(bytes)),
})
