// JSON-lines RPC over stdin/stdout, so Rust tests can drive an independent implementation.
// Request: {"method": "...", "params": {...}}; reply: {"ok": value} or {"error": "message"}.
// Bytes travel as lowercase hex strings.
import { createInterface } from 'node:readline'

export const hex = (bytes) => Buffer.from(bytes).toString('hex')
export const unhex = (text) => Buffer.from(text, 'hex')

export function serve(handlers) {
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })
  let queue = Promise.resolve()
  lines.on('line', (line) => {
    queue = queue.then(async () => {
      let reply
      try {
        const { method, params } = JSON.parse(line)
        const handler = handlers[method]
        if (!handler) throw new Error(`unknown method ${method}`)
        reply = { ok: (await handler(params ?? {})) ?? null }
      } catch (err) {
        reply = { error: String(err?.stack ?? err) }
      }
      process.stdout.write(JSON.stringify(reply) + '\n')
    })
  })
}
