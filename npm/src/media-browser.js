// Streamed media for browsers and extensions: bodies are kept as Blobs (which browsers may keep
// on disk), encrypted and decrypted a piece at a time by the core's wasm encryptor and decryptor
// (WebCrypto has no incremental AES-CBC or HMAC), and moved with the page's `fetch`.
// - Upload: the source (a Blob or File, bytes, a web ReadableStream or any async iterable of
//   bytes) is encrypted a piece at a time into a Blob (the upload URL names the encrypted file's
//   hash, so it must be known before the upload starts); the core's `fetch` output names it
//   (`hostBody`) and it is sent as the request body.
// - Download: a 2xx body is decrypted as it arrives into pieces that stay inside this host; they
//   become a Blob (or an ArrayBuffer, or go to the caller's WritableStream) only after the MAC
//   matched here and the core found both hashes equal to the message's (`mediaSaved`); otherwise
//   they are dropped.
import { MEDIA_STREAM_CHUNK_BYTES, codedError } from './media-crypto.js'

/** Reads `source` in pieces of at most MEDIA_STREAM_CHUNK_BYTES. */
async function* pieces(source) {
  if (typeof Blob !== 'undefined' && source instanceof Blob) {
    for (let at = 0; at < source.size; at += MEDIA_STREAM_CHUNK_BYTES) {
      yield new Uint8Array(await source.slice(at, at + MEDIA_STREAM_CHUNK_BYTES).arrayBuffer())
    }
  } else if (source instanceof Uint8Array || source instanceof ArrayBuffer) {
    const bytes = source instanceof ArrayBuffer ? new Uint8Array(source) : source
    for (let at = 0; at < bytes.length; at += MEDIA_STREAM_CHUNK_BYTES) {
      yield bytes.subarray(at, at + MEDIA_STREAM_CHUNK_BYTES)
    }
  } else if (source && typeof source.getReader === 'function') {
    yield* readStream(source)
  } else if (source && typeof source[Symbol.asyncIterator] === 'function') {
    for await (const chunk of source) yield typeof chunk === 'string' ? new TextEncoder().encode(chunk) : chunk
  } else {
    throw codedError('invalid_media_source', 'a media source is a Blob or File, bytes, a ReadableStream or an async iterable of bytes')
  }
}

async function* readStream(stream) {
  const reader = stream.getReader()
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return
      yield value
    }
  } finally {
    reader.releaseLock()
  }
}

/**
 * Keeps streamed media bodies in memory as Blob parts, for one connection in a browser.
 * `crypto`: `wasmMediaCrypto(wasm)`; `core`: the wasm exports (`newMediaKey`, `mediaKeys`);
 * `fetch`: the page's `fetch` (by default `globalThis.fetch`).
 */
export class BlobMediaHost {
  #crypto
  #core
  #fetch
  #next = 0
  #bodies = new Map()
  #sinks = new Map()

  constructor({ crypto, core, fetch }) {
    this.#crypto = crypto
    this.#core = core
    this.#fetch = fetch
  }

  /** Which crypto runs the bodies. */
  get cryptoName() {
    return this.#crypto.name
  }

  /**
   * Encrypts `source` under a fresh media key (the core's) into a Blob; resolves with the
   * `hostBody` of a `sendMedia` command. Release it with `releaseBody(id)` when the command ended.
   */
  async prepareUpload(source, mediaType) {
    const id = ++this.#next
    const mediaKey = this.#core.newMediaKey()
    const encryptor = this.#crypto.encryptor({ mediaKey, mediaType, ...this.#core.mediaKeys(mediaKey, mediaType) })
    const parts = []
    let hashes
    try {
      for await (const piece of pieces(source)) parts.push(encryptor.update(piece))
      hashes = encryptor.finish()
    } catch (cause) {
      throw cause?.code === 'invalid_media_source' ? cause : codedError('media_source_failed', `reading the media failed: ${cause?.message ?? cause}`, cause)
    }
    parts.push(hashes.tail)
    this.#bodies.set(id, new Blob(parts))
    const { fileSha256, fileEncSha256, fileLength } = hashes
    return { id, mediaKey, fileSha256, fileEncSha256, fileLength }
  }

  /** The encrypted body `id` (a Blob). */
  openBody(id) {
    const body = this.#bodies.get(id)
    if (body === undefined) throw codedError('host_body', `no media body ${id}`)
    return body
  }

  /** Forgets the encrypted body `id`. */
  async releaseBody(id) {
    this.#bodies.delete(id)
  }

  /** A new sink for a download: pieces not handed out until `commitSink`. */
  async newSink() {
    const id = ++this.#next
    this.#sinks.set(id, null)
    return id
  }

  /**
   * Carries out a fetch request that streams (a `hostBody` to send, or a body to `decrypt`) with
   * the page's `fetch`; resolves with what `handleFetched` takes: `{ status, body }`, `{ status,
   * streamed }` or `{ status }`. Rejects with code `too_large` or `host_body`, or the
   * transport's error.
   */
  async perform(request, signal) {
    const body = request.hostBody ? this.openBody(request.hostBody.id) : request.body
    const fetchImpl = this.#fetch ?? globalThis.fetch
    const response = await fetchImpl(request.url, { method: request.method, headers: request.headers, body, signal })
    const status = response.status
    if (!request.decrypt) {
      const bytes = new Uint8Array(await response.arrayBuffer())
      if (bytes.length > request.maxResponseBytes) throw codedError('too_large', `more than ${request.maxResponseBytes} bytes`)
      return { status, body: bytes }
    }
    if (status < 200 || status > 299) {
      await response.body?.cancel?.().catch(() => {})
      return { status }
    }
    const length = Number(response.headers.get('content-length'))
    if (Number.isFinite(length) && length > request.maxResponseBytes) {
      await response.body?.cancel?.().catch(() => {})
      throw codedError('too_large', `more than ${request.maxResponseBytes} bytes`)
    }
    const source = response.body ?? (async function* () { yield new Uint8Array(await response.arrayBuffer()) })()
    return { status, streamed: await this.decryptInto(request.decrypt, source, request.maxResponseBytes) }
  }

  /**
   * Decrypts `body` (a ReadableStream or async iterable of bytes) into sink `decrypt.sink`, at
   * most `maxBytes` of it; resolves with the hashes or `{ error }` (the body was refused; the
   * sink then holds nothing). A body over `maxBytes` rejects with `too_large`.
   */
  async decryptInto(decrypt, body, maxBytes) {
    if (!this.#sinks.has(decrypt.sink)) throw codedError('host_body', `no media sink ${decrypt.sink}`)
    const decryptor = this.#crypto.decryptor(decrypt, maxBytes)
    const parts = []
    const source = typeof body.getReader === 'function' ? readStream(body) : body
    for await (const value of source) {
      try {
        parts.push(decryptor.update(value))
      } catch (error) {
        try {
          decryptor.finish() // releases the wasm decryptor
        } catch {}
        if (error?.code === 'too_large') throw error
        return { error: error?.code ?? 'invalid_length' }
      }
    }
    let last
    try {
      last = decryptor.finish()
    } catch (error) {
      return { error: error?.code ?? 'mac_mismatch' }
    }
    parts.push(last.tail)
    // Held here, unreleased, until the core's verdict (`commitSink` or `discardSink`).
    this.#sinks.set(decrypt.sink, new Blob(parts))
    const { fileSha256, fileEncSha256, fileLength } = last
    return { fileSha256, fileEncSha256, fileLength }
  }

  /**
   * Hands the verified plaintext of sink `id` to the caller: `to` is `'blob'` (resolves with
   * the Blob), `'arrayBuffer'` (an ArrayBuffer) or a WritableStream (the Blob is piped into it;
   * resolves with nothing).
   */
  async commitSink(id, to) {
    const blob = this.#sinks.get(id)
    this.#sinks.delete(id)
    if (!blob) throw codedError('host_body', `no media sink ${id}`)
    if (to === 'blob') return blob
    if (to === 'arrayBuffer') return blob.arrayBuffer()
    if (to && typeof to.getWriter === 'function') {
      await blob.stream().pipeTo(to)
      return undefined
    }
    throw codedError('invalid_media_target', "a browser download goes to 'blob', 'arrayBuffer' or a WritableStream")
  }

  /** Drops sink `id` and what it holds. */
  async discardSink(id) {
    this.#sinks.delete(id)
  }

  /** Drops every body and sink (a connection that ended). */
  async dispose() {
    this.#bodies.clear()
    this.#sinks.clear()
  }
}
