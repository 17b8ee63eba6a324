// The node codec's JavaScript half: it flattens a node tree into one tape for Rust to encode,
// and turns the tape Rust decodes into plain objects, so a whole tree crosses the wasm boundary
// once. The tape format is documented in walink-core's `binary::tape` module. Tapes and frame
// bodies are written straight into the module's input buffer and read in place from its output
// buffer (see bindings/wasm), so nothing is copied that need not be.

const NONE = 0
const CHILDREN = 1
const BYTES = 2
const STRING = 3
const BYTES_REF = 4

let wasm = null
let memory = null
let tokens = null
let tokenIds = null
let tapeSlot = 0
const utf8Decoder = new TextDecoder('utf-8', { fatal: true })
const utf8Encoder = new TextEncoder()

/** Allocates the result of a spliced encode; every byte is then written. */
let allocate = (length) => new Uint8Array(length)

/**
 * Connects the codec to an initialised wasm module (called once by the entry points).
 * `allocateUninitialized` may skip zero-filling, since encodeNode overwrites every byte.
 */
export function attach(exports, instance, allocateUninitialized) {
  wasm = exports
  if (allocateUninitialized) allocate = allocateUninitialized
  memory = instance.memory
  tapeSlot = exports.tapeSlot()
  tokens = exports.tokenTable().split('\0')
  tokenIds = new Map()
  for (let id = 1; id < tokens.length; id++) tokenIds.set(tokens[id], id)
}

function ready() {
  if (wasm === null) throw codedError('not_initialized', 'walink is not initialised: await init() first')
}

function codedError(code, message) {
  const error = new Error(message)
  error.code = code
  return error
}

function lastError() {
  return codedError(wasm.lastErrorCode(), wasm.lastErrorMessage())
}

// --- the input buffer in wasm memory ---

let buf = new Uint8Array(0) // a view of the input buffer
let bufAddress = 0
let bufSize = 0
let pos = 0

/** Makes the input buffer hold at least `size` bytes and refreshes the view. */
function growInput(size) {
  bufAddress = wasm.inputBuffer(size)
  // 0: an earlier codec call panicked and left the module's buffers unusable (codec_panicked).
  if (bufAddress === 0) throw lastError()
  bufSize = size
  buf = new Uint8Array(memory.buffer, bufAddress, size)
}

/**
 * Refreshes the view when wasm memory grew. Growing detaches the old buffer, and a view of a
 * detached buffer has length 0: a cheaper test than reading `memory.buffer`.
 */
function freshInput() {
  if (buf.length === 0 && bufSize > 0) buf = new Uint8Array(memory.buffer, bufAddress, bufSize)
}

function reserve(n) {
  if (pos + n <= buf.length) return
  let size = Math.max(buf.length * 2, 4096)
  while (size < pos + n) size *= 2
  growInput(size)
}

// --- encode: tree -> tape ---

/** Byte contents from this size on are not copied into wasm memory but spliced into the output. */
const SPLICE_MIN = 2048
const held = []

function varint(value) {
  while (value >= 0x80) {
    buf[pos++] = (value & 0x7f) | 0x80
    value >>>= 7
  }
  buf[pos++] = value
}

function writeString(text) {
  const id = tokenIds.get(text)
  if (id !== undefined) {
    reserve(3)
    varint(id * 2 + 1)
    return
  }
  const length = text.length
  reserve(length * 3 + 5)
  // ASCII fast path: the header is the character count, each character one byte.
  const start = pos
  varint(length * 2)
  for (let i = 0; i < length; i++) {
    const code = text.charCodeAt(i)
    if (code > 0x7f) {
      pos = start
      const bytes = utf8Encoder.encode(text)
      varint(bytes.length * 2)
      buf.set(bytes, pos)
      pos += bytes.length
      return
    }
    buf[pos++] = code
  }
}

function writeNode(node, depth) {
  if (node === null || typeof node !== 'object') throw codedError('invalid_node', 'a node must be an object')
  const { tag, attrs, content } = node
  if (typeof tag !== 'string' || tag.length === 0) throw codedError('invalid_node', 'a node needs a non-empty string tag')
  if (depth > 64) throw codedError('invalid_node', 'nodes nested too deep')
  let kind
  if (content === undefined || content === null) kind = NONE
  else if (Array.isArray(content)) kind = CHILDREN
  else if (content instanceof Uint8Array) kind = BYTES
  else if (typeof content === 'string') kind = STRING
  else throw codedError('invalid_node', `invalid content for <${tag}>`)
  // Attributes whose value is undefined or null are left out, as Baileys does.
  let count = 0
  if (attrs) {
    for (const key in attrs) {
      const value = attrs[key]
      if (value === undefined || value === null) continue
      if (typeof value !== 'string') throw codedError('invalid_node', `attribute ${key} of <${tag}> is not a string`)
      count++
    }
  }
  reserve(6)
  const kindAt = pos
  buf[pos++] = kind
  varint(count)
  writeString(tag)
  if (count > 0) {
    for (const key in attrs) {
      const value = attrs[key]
      if (value === undefined || value === null) continue
      writeString(key)
      writeString(value)
    }
  }
  if (kind === CHILDREN) {
    let children = 0
    for (const child of content) if (child !== undefined && child !== null) children++
    reserve(5)
    varint(children)
    for (const child of content) if (child !== undefined && child !== null) writeNode(child, depth + 1)
  } else if (kind === BYTES) {
    if (content.length >= SPLICE_MIN) {
      // Large contents stay here and are spliced into the output (see encodeNode).
      buf[kindAt] = BYTES_REF
      reserve(5)
      varint(content.length)
      held.push(content)
    } else {
      reserve(content.length + 5)
      varint(content.length)
      buf.set(content, pos)
      pos += content.length
    }
  } else if (kind === STRING) {
    writeString(content)
  }
}

/** Encodes a node into a frame body (flags byte 0x00, then the node). */
export function encodeNode(node) {
  ready()
  freshInput()
  pos = 0
  held.length = 0
  try {
    writeNode(node, 0)
  } catch (err) {
    held.length = 0
    throw err
  }
  const length = wasm.encodeInput(pos)
  if (length < 0) {
    held.length = 0
    throw lastError()
  }
  const output = new Uint8Array(memory.buffer, wasm.outputPointer(), length)
  if (held.length === 0) return output.slice()
  // Insert each held content at the place the encoder left for it.
  const places = new Uint32Array(memory.buffer, wasm.splicePointer(), held.length)
  let total = length
  for (const content of held) total += content.length
  const result = allocate(total)
  let from = 0
  let to = 0
  for (let i = 0; i < held.length; i++) {
    const place = places[i]
    result.set(output.subarray(from, place), to)
    to += place - from
    result.set(held[i], to)
    to += held[i].length
    from = place
  }
  result.set(output.subarray(from), to)
  held.length = 0
  return result
}

// --- decode: tape -> tree ---

// The tape is read in place through views of all of wasm memory, made again only when memory
// grows; the tape's address and length are in two u32 words at `tapeSlot`.
let mem8 = new Uint8Array(0)
let mem32 = new Uint32Array(0)
let tape = null
let body = null
let at = 0

function readVarint() {
  let byte = tape[at++]
  if (byte < 0x80) return byte
  let value = byte & 0x7f
  let shift = 7
  do {
    byte = tape[at++]
    value |= (byte & 0x7f) << shift
    shift += 7
  } while (byte >= 0x80)
  return value >>> 0
}

function readString() {
  const head = readVarint()
  if (head & 1) return tokens[head >>> 1]
  const length = head >>> 1
  const end = at + length
  if (length > 32) {
    const text = utf8Decoder.decode(tape.subarray(at, end))
    at = end
    return text
  }
  let text = ''
  for (let i = at; i < end; i++) {
    const code = tape[i]
    if (code > 0x7f) {
      text = utf8Decoder.decode(tape.subarray(at, end))
      break
    }
    text += String.fromCharCode(code)
  }
  at = end
  return text
}

function readNode() {
  const kind = tape[at++]
  let count = readVarint()
  const tag = readString()
  const attrs = {}
  while (count-- > 0) {
    const key = readString()
    attrs[key] = readString()
  }
  let content
  if (kind === CHILDREN) {
    const length = readVarint()
    content = new Array(length)
    for (let i = 0; i < length; i++) content[i] = readNode()
  } else if (kind === BYTES_REF) {
    const offset = readVarint()
    const length = readVarint()
    content = body.subarray(offset, offset + length)
  } else if (kind === BYTES) {
    const length = readVarint()
    content = tape.slice(at, at + length)
    at += length
  } else if (kind === STRING) {
    content = readString()
  }
  return { tag, attrs, content }
}

/** Bodies up to this size are copied into wasm memory whole. */
const COPY_WHOLE_MAX = 4096
/**
 * Of a larger body, only this prefix is copied first: the decoder reads only the length headers
 * of byte contents, so a body whose large contents follow a short structure decodes without
 * copying them. When the structure reaches past the prefix, the whole body is copied after all
 * (and the prefix was decoded twice, which a short prefix keeps cheap).
 */
const PREFIX = 128
const NEED_WHOLE = -2

/**
 * Decodes a frame body (flags byte first; zlib-inflated when flag 0x02 is set) into a node.
 * Byte content of an uncompressed body is a view into `bytes`, as in Baileys.
 */
export function decodeNode(bytes) {
  ready()
  if (!(bytes instanceof Uint8Array)) throw codedError('invalid_input', 'decodeNode takes a Uint8Array')
  freshInput()
  const total = bytes.length
  let length
  if (total <= COPY_WHOLE_MAX) {
    if (total > buf.length) growInput(total)
    buf.set(bytes)
    length = wasm.decodeInput(total)
  } else {
    if (PREFIX > buf.length) growInput(PREFIX)
    buf.set(bytes.subarray(0, PREFIX))
    length = wasm.decodePrefix(PREFIX, total)
    if (length === NEED_WHOLE) {
      freshInput()
      if (total > buf.length) growInput(total)
      buf.set(bytes)
      length = wasm.decodeInput(total)
    }
  }
  if (length < 0) throw lastError()
  if (mem8.length === 0) {
    mem8 = new Uint8Array(memory.buffer)
    mem32 = new Uint32Array(memory.buffer)
  }
  tape = mem8
  at = mem32[tapeSlot >>> 2]
  body = bytes
  const node = readNode()
  tape = null
  body = null
  return node
}
