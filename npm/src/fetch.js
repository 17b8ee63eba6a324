// The driver's one HTTP call. The core asks for HTTPS requests with `fetch` outputs (app-state
// blobs, media downloads and uploads) and says everything: method, URL, headers, body, the largest body to
// read back and the time allowed. This carries one out with the host's `fetch` and reports what
// happened, judging nothing: any status is a response for the core to weigh; only a transport
// failure (no response, a timeout, a body over the cap) is an error.

/**
 * Carries out `request` with `fetchImpl`. Resolves (never rejects) with `{ result, error }`:
 * `result` is what `handleFetched` takes (`{ status, body }`, `{ status, streamed }` or
 * `{ error: code }`), and `error` an Error with code `fetch_failed` when no response came, for
 * the host's `onError`.
 *
 * Media bodies the host streams go through `media.perform` (media-node.js's FileMediaHost, with
 * node:http): a `hostBody` is sent from the file the host holds, and a `decrypt` request's 2xx
 * body is decrypted into the host's sink as it arrives (its non-2xx body is not read).
 * @param {typeof globalThis.fetch} fetchImpl
 * @param {{ method: string, url: string, headers: [string, string][], body?: Uint8Array, hostBody?: { id: number, length: number }, decrypt?: object, maxResponseBytes: number, timeoutMs: number }} request
 */
export async function performFetch(fetchImpl, request, media) {
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(), request.timeoutMs)
  try {
    if (typeof fetchImpl !== 'function') throw new Error('no fetch implementation (pass `fetch`)')
    if (request.hostBody || request.decrypt) {
      if (!media) return failed('host_body', request, new Error('this driver has no media host for streamed bodies'))
      return { result: await media.perform(request, controller.signal), error: null }
    }
    const response = await fetchImpl(request.url, {
      method: request.method,
      headers: request.headers,
      body: request.body,
      signal: controller.signal,
    })
    const read = await readCapped(response, request.maxResponseBytes)
    if (read === null) return failed('too_large', request, new Error(`more than ${request.maxResponseBytes} bytes`))
    return { result: { status: response.status, body: read }, error: null }
  } catch (cause) {
    if (cause?.code === 'too_large' || cause?.code === 'host_body') return failed(cause.code, request, cause)
    return failed(controller.signal.aborted ? 'timed_out' : 'network', request, cause)
  } finally {
    clearTimeout(timer)
  }
}

function failed(code, request, cause) {
  const path = request.url.split('?')[0]
  const error = new Error(`${request.method} ${path} failed (${code}): ${cause?.message ?? cause}`, { cause })
  error.code = 'fetch_failed'
  error.fetchError = code
  return { result: { error: code }, error }
}

/** The body of `response`, or null when it is longer than `max` bytes (read no further). */
async function readCapped(response, max) {
  const length = Number(response.headers?.get?.('content-length'))
  if (Number.isFinite(length) && length > max) {
    await response.body?.cancel?.().catch(() => {})
    return null
  }
  const reader = response.body?.getReader?.()
  if (!reader) {
    const bytes = new Uint8Array(await response.arrayBuffer())
    return bytes.length > max ? null : bytes
  }
  const chunks = []
  let total = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    total += value.length
    if (total > max) {
      await reader.cancel().catch(() => {})
      return null
    }
    chunks.push(value)
  }
  const body = new Uint8Array(total)
  let at = 0
  for (const chunk of chunks) {
    body.set(chunk, at)
    at += chunk.length
  }
  return body
}
