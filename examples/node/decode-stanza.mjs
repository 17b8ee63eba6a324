// Decodes a stanza given as hex, prints it as XML-like text and checks that encoding it again
// gives the same bytes. Uses the npm package from this repository (run `./build.sh wasm` first).
//
//   node examples/node/decode-stanza.mjs 00f80919 08ff831b2a3f 1657 0429 11fa0003
import { decodeNode, encodeNode } from '../../npm/src/node.js'

function pretty(node, depth = 0) {
  const pad = '  '.repeat(depth)
  const attrs = Object.entries(node.attrs).map(([k, v]) => ` ${k}="${v}"`).join('')
  const { content } = node
  if (content === undefined) return `${pad}<${node.tag}${attrs}/>\n`
  if (Array.isArray(content)) {
    return `${pad}<${node.tag}${attrs}>\n${content.map((c) => pretty(c, depth + 1)).join('')}${pad}</${node.tag}>\n`
  }
  const shown = typeof content === 'string' ? content : `<!-- ${content.length} bytes: ${Buffer.from(content).toString('hex')} -->`
  return `${pad}<${node.tag}${attrs}>${shown}</${node.tag}>\n`
}

const hex = process.argv.slice(2).join('').replace(/\s/g, '')
if (!/^([0-9a-fA-F]{2})+$/.test(hex)) {
  console.error('usage: node decode-stanza.mjs <hex bytes of a frame body>')
  process.exit(2)
}
const bytes = Uint8Array.from(Buffer.from(hex, 'hex'))
let node
try {
  node = decodeNode(bytes)
} catch (error) {
  console.error(`not a valid stanza (${error.code}): ${error.message}`)
  process.exit(1)
}
process.stdout.write(pretty(node))
const again = encodeNode(node)
const identical = Buffer.compare(Buffer.from(again), Buffer.from(bytes)) === 0
console.log(`re-encoded: ${again.length} bytes, ${identical ? 'identical' : 'DIFFERENT'}`)
process.exit(identical ? 0 : 1)
