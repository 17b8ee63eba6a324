// Draws a QR code on a canvas: uqr (a small MIT library, copied into vendor/ by the build)
// encodes the text into modules, and each module becomes a square of `scale` pixels.
import { encode } from './vendor/uqr.mjs'

/** Draws `text` on `canvas` (level L, a 4-module quiet zone); returns the module count per side. */
export function drawQr(canvas, text, scale = 4) {
  const { data, size } = encode(text, { ecc: 'L', border: 4 })
  canvas.width = canvas.height = size * scale
  const context = canvas.getContext('2d')
  context.fillStyle = '#fff'
  context.fillRect(0, 0, canvas.width, canvas.height)
  context.fillStyle = '#000'
  data.forEach((row, y) =>
    row.forEach((dark, x) => {
      if (dark) context.fillRect(x * scale, y * scale, scale, scale)
    }),
  )
  return size
}
