/**
 * A WhatsApp binary node, the shape Baileys uses: `{ tag, attrs, content }`.
 *
 * - `attrs` values are strings; JIDs are strings in Baileys' notation
 *   (`user_agent:device@server`, `@s.whatsapp.net` for the server itself).
 * - `content` is `undefined`, child nodes, bytes, or a string. Decoding gives bytes for content
 *   the peer sent length-prefixed, and a string when it sent a token, packed digits or a JID.
 *   Encoding a string content follows the string rules (token, packed, JID, else UTF-8 bytes).
 */
export interface BinaryNode {
  tag: string
  attrs: { [key: string]: string }
  content?: BinaryNode[] | Uint8Array | string
}

/**
 * Encodes a node into a frame body: the `0x00` flags byte, then the node, byte for byte what
 * WhatsApp Web sends. Attributes whose value is `undefined` or `null` are left out.
 * Throws an `Error` with `code === 'invalid_node'` for a malformed node.
 */
export function encodeNode(node: BinaryNode): Uint8Array

/**
 * Decodes a frame body (flags byte first; zlib-inflated when flag `0x02` is set). Byte content
 * of an uncompressed body is a view into `bytes`, as in Baileys: copy it before reusing `bytes`.
 * Throws an `Error` whose `code` names the defect (`unexpected_end`, `invalid_tag`, `inflate`, ...).
 */
export function decodeNode(bytes: Uint8Array): BinaryNode

/**
 * Loads the wasm module. Required once in browsers before the codec is used; a no-op in Node.
 * `input` may be a URL, a Response, bytes or a compiled `WebAssembly.Module`.
 */
export function init(input?: URL | string | Response | BufferSource | WebAssembly.Module): Promise<void>
