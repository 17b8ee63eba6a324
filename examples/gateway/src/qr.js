// The QR image: the matrix from the `qrcode` package, drawn into a PNG here (1 bit per pixel
// source, 8-bit greyscale PNG, zlib from node:zlib), synchronously so an event carries it at once.
import { crc32, deflateSync } from 'node:zlib'
import QRCode from 'qrcode'

const SCALE = 6
const QUIET = 4

function chunk(type, data) {
  const head = Buffer.alloc(8)
  head.writeUInt32BE(data.length, 0)
  head.write(type, 4, 'ascii')
  const tail = Buffer.alloc(4)
  tail.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0)
  return Buffer.concat([head, data, tail])
}

/** The QR of `text` as PNG bytes (black on white, 6 pixels a module, a 4-module quiet zone). */
export function qrPng(text) {
  const { modules } = QRCode.create(text, { errorCorrectionLevel: 'L' })
  const side = (modules.size + 2 * QUIET) * SCALE
  const raw = Buffer.alloc((side + 1) * side, 255)
  for (let y = 0; y < side; y++) {
    raw[y * (side + 1)] = 0 // filter: none
    const my = Math.floor(y / SCALE) - QUIET
    for (let x = 0; x < side; x++) {
      const mx = Math.floor(x / SCALE) - QUIET
      const dark = mx >= 0 && my >= 0 && mx < modules.size && my < modules.size && modules.get(my, mx)
      if (dark) raw[y * (side + 1) + 1 + x] = 0
    }
  }
  const header = Buffer.alloc(13)
  header.writeUInt32BE(side, 0)
  header.writeUInt32BE(side, 4)
  header[8] = 8 // bit depth
  header[9] = 0 // greyscale
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', header), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))])
}

/** The QR as a `data:image/png;base64,...` URL (what Evolution's `base64` field holds). */
export function qrDataUrl(text) {
  return `data:image/png;base64,${qrPng(text).toString('base64')}`
}
