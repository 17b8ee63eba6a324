// Streamed media for Node: Node's native AES-CBC, HMAC and SHA-256 (node:crypto) and a host that
// keeps media bodies in files, so a file of any size never sits whole in memory.
// - Upload: the source (a path, a Node stream or any async iterable of bytes) is encrypted a
//   piece at a time into a temporary file (the upload URL names the encrypted file's hash, so it
//   must be known before the upload starts: two passes, as Baileys' `encryptedStream`), and the
//   core's `fetch` output names it (`hostBody`) for the driver to stream out.
// - Download: a 2xx body is decrypted as it arrives into a temporary file; it becomes the
//   caller's file (or is copied to the caller's stream) only after the MAC matched here and the
//   core found both hashes equal to the message's; otherwise it is deleted.
import { createCipheriv, createDecipheriv, createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdtemp, open, rename, rm } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'

import { MAC_LEN, MEDIA_STREAM_CHUNK_BYTES, codedError } from './media-crypto.js'

const BLOCK = 16
/** How many bytes a transfer moves between two calls of the host's collector (`gc`). */
export const MEDIA_GC_EVERY_BYTES = 2 << 20

/** Node's native crypto under the keys the core expanded (`{ iv, cipherKey, macKey }`). */
export function nodeMediaCrypto() {
  return {
    name: 'node:crypto',
    encryptor({ iv, cipherKey, macKey }) {
      const cipher = createCipheriv('aes-256-cbc', cipherKey, iv)
      const mac = createHmac('sha256', macKey).update(iv)
      const plainHash = createHash('sha256')
      const encHash = createHash('sha256')
      let length = 0
      return {
        update(plaintext) {
          plainHash.update(plaintext)
          length += plaintext.length
          const out = cipher.update(plaintext)
          mac.update(out)
          encHash.update(out)
          return out
        },
        finish() {
          const last = cipher.final()
          mac.update(last)
          encHash.update(last)
          const tag = mac.digest().subarray(0, MAC_LEN)
          encHash.update(tag)
          return {
            tail: Buffer.concat([last, tag]),
            fileSha256: plainHash.digest(),
            fileEncSha256: encHash.digest(),
            fileLength: length,
          }
        },
      }
    },
    decryptor({ iv, cipherKey, macKey }, maxBytes) {
      const decipher = createDecipheriv('aes-256-cbc', cipherKey, iv)
      const mac = createHmac('sha256', macKey).update(iv)
      const plainHash = createHash('sha256')
      const encHash = createHash('sha256')
      // The last MAC_LEN bytes seen are held back: they may be the MAC. Each piece is joined to
      // them in one reused scratch buffer, so a piece costs one allocation (the plaintext).
      const held = Buffer.alloc(MAC_LEN)
      let heldLength = 0
      let scratch = Buffer.alloc(0)
      let taken = 0
      let length = 0
      const decrypt = (ciphertext) => {
        mac.update(ciphertext)
        const plain = decipher.update(ciphertext)
        plainHash.update(plain)
        length += plain.length
        return plain
      }
      return {
        update(piece) {
          taken += piece.length
          if (taken > maxBytes) throw codedError('too_large', `media larger than ${maxBytes} bytes`)
          encHash.update(piece)
          const total = heldLength + piece.length
          if (total <= MAC_LEN) {
            held.set(piece, heldLength)
            heldLength = total
            return Buffer.alloc(0)
          }
          if (scratch.length < total) scratch = Buffer.allocUnsafeSlow(Math.max(total, MEDIA_STREAM_CHUNK_BYTES + MAC_LEN))
          held.copy(scratch, 0, 0, heldLength)
          scratch.set(piece, heldLength)
          const plain = decrypt(scratch.subarray(0, total - MAC_LEN))
          scratch.copy(held, 0, total - MAC_LEN, total)
          heldLength = MAC_LEN
          return plain
        },
        finish() {
          const body = taken - MAC_LEN
          if (heldLength !== MAC_LEN || body < BLOCK || body % BLOCK !== 0) {
            throw codedError('invalid_length', 'encrypted media has an invalid length')
          }
          const tag = mac.digest().subarray(0, MAC_LEN)
          if (!timingSafeEqual(tag, held)) throw codedError('mac_mismatch', 'media mac mismatch')
          let tail
          try {
            tail = decipher.final()
          } catch (cause) {
            throw codedError('invalid_padding', 'invalid media padding', cause)
          }
          plainHash.update(tail)
          length += tail.length
          return { tail, fileSha256: plainHash.digest(), fileEncSha256: encHash.digest(), fileLength: length }
        },
      }
    },
  }
}

/**
 * Reads `source` (a path, a Node stream, an async iterable of bytes, or bytes) in pieces. A file
 * is read into one reused buffer: each piece is valid only until the next is asked for (the
 * encryptors copy what they are given before returning).
 */
async function* pieces(source) {
  if (typeof source === 'string' || source instanceof URL) {
    const file = await open(source, 'r')
    try {
      const buffer = Buffer.allocUnsafe(MEDIA_STREAM_CHUNK_BYTES)
      for (;;) {
        const { bytesRead } = await file.read(buffer, 0, buffer.length, null)
        if (bytesRead === 0) break
        yield buffer.subarray(0, bytesRead)
      }
    } finally {
      await file.close()
    }
  } else if (source instanceof Uint8Array) {
    for (let at = 0; at < source.length; at += MEDIA_STREAM_CHUNK_BYTES) {
      yield source.subarray(at, at + MEDIA_STREAM_CHUNK_BYTES)
    }
  } else if (source && typeof source[Symbol.asyncIterator] === 'function') {
    for await (const chunk of source) yield typeof chunk === 'string' ? Buffer.from(chunk) : chunk
  } else {
    throw codedError('invalid_media_source', 'a media source is a path, a Node stream, an async iterable of bytes, or bytes')
  }
}

/**
 * One HTTP exchange with node:http(s), streaming the request body from `body` (a Node stream)
 * with backpressure; resolves with the response (a Node stream). Node's `fetch` (undici) reads a
 * streamed request body ahead of the socket and a response ahead of its reader, so a 100 MiB
 * transfer through it holds tens of MiB more (measured in docs/decisions.md); streamed media goes
 * through node:http instead.
 */
function exchange({ method, url, headers, agent }, bodyPath, signal) {
  // bodyPath: `{ path, moved }` (moved(bytes) is told what left), or nothing.
  return new Promise((resolve, reject) => {
    const send = new URL(url).protocol === 'https:' ? httpsRequest : httpRequest
    const request = send(url, { method, headers: Object.fromEntries(headers), agent, signal })
    request.on('response', resolve)
    request.on('error', reject)
    if (bodyPath) {
      sendFile(bodyPath.path, request, bodyPath.moved).catch((cause) => {
        request.destroy(cause)
        reject(cause)
      })
    } else {
      request.end()
    }
  })
}

/**
 * Writes the file at `path` as the body of `request` through two reused buffers: the next piece
 * is read while the previous one is being written, and a buffer is read into again only after
 * the socket took its bytes (the write's callback). A read stream would allocate a new buffer per
 * piece, which V8 collects late: 100 MiB of dead pieces for a 100 MiB upload.
 */
async function sendFile(path, request, moved) {
  let file
  try {
    file = await open(path, 'r')
  } catch (cause) {
    throw codedError('host_body', `opening the media body failed: ${cause?.message ?? cause}`, cause)
  }
  try {
    const buffers = [Buffer.allocUnsafeSlow(MEDIA_STREAM_CHUNK_BYTES), Buffer.allocUnsafeSlow(MEDIA_STREAM_CHUNK_BYTES)]
    let turn = 0
    let written = null
    for (;;) {
      const buffer = buffers[turn]
      turn ^= 1
      const { bytesRead } = await file.read(buffer, 0, buffer.length, null)
      if (written) await written
      if (bytesRead === 0) break
      written = new Promise((resolve, reject) => {
        request.write(buffer.subarray(0, bytesRead), (error) => (error ? reject(error) : resolve()))
      })
      moved(bytesRead)
    }
    await new Promise((resolve) => request.end(resolve))
  } finally {
    await file.close()
  }
}

/** Reads at most `max` bytes of `response` (a Node stream) into memory; null beyond that. */
async function readCapped(response, max) {
  const chunks = []
  let total = 0
  for await (const chunk of response) {
    total += chunk.length
    if (total > max) {
      response.destroy()
      return null
    }
    chunks.push(chunk)
  }
  return new Uint8Array(Buffer.concat(chunks, total))
}

/**
 * Keeps streamed media bodies in temporary files (mode 0600, in one private directory under
 * `directory`, by default the system's temporary directory) for one connection.
 * `keys(mediaKey, mediaType)` and `newMediaKey()` are the core's (wasm exports).
 */
export class FileMediaHost {
  #crypto
  #core
  #root
  #directory = null
  #next = 0
  #bodies = new Map()
  #sinks = new Map()

  #agent
  #gc
  #sinceGc = 0

  /**
   * `crypto`: `nodeMediaCrypto()` or `wasmMediaCrypto(wasm)`; `core`: the wasm exports
   * (`newMediaKey`, `mediaKeys`); `directory`: where temporary files go; `agent`: an
   * `http.Agent` for the media requests (a proxy's); `gc`: a collector to call every
   * MEDIA_GC_EVERY_BYTES moved (`globalThis.gc` under `node --expose-gc`), so the dead pieces
   * of a large transfer do not pile up before V8 collects them (docs/decisions.md, media3).
   */
  constructor({ crypto, core, directory, agent, gc }) {
    this.#crypto = crypto
    this.#core = core
    this.#root = directory ?? tmpdir()
    this.#agent = agent
    this.#gc = typeof gc === 'function' ? gc : null
  }

  /** Counts `bytes` moved; calls the host's collector every MEDIA_GC_EVERY_BYTES. */
  #moved = (bytes) => {
    if (this.#gc === null) return
    this.#sinceGc += bytes
    if (this.#sinceGc >= MEDIA_GC_EVERY_BYTES) {
      this.#sinceGc = 0
      this.#gc()
    }
  }

  /**
   * Carries out a fetch request that streams (a `hostBody` to send, or a body to `decrypt`) with
   * node:http(s); resolves with what `handleFetched` takes: `{ status, body }`, `{ status,
   * streamed }` (a 2xx body decrypted into the sink) or `{ status }` (a non-2xx answer to a
   * decrypt request: its body is not read). Rejects with code `too_large` or `host_body`, or
   * with the transport's error.
   */
  async perform(request, signal) {
    let body
    let headers = request.headers
    if (request.hostBody) {
      body = { path: this.#bodyPath(request.hostBody.id), moved: this.#moved }
      headers = [...headers, ['Content-Length', String(request.hostBody.length)]]
    }
    const response = await exchange({ ...request, headers, agent: this.#agent }, body, signal)
    const status = response.statusCode
    if (!request.decrypt) {
      const read = await readCapped(response, request.maxResponseBytes)
      if (read === null) throw codedError('too_large', `more than ${request.maxResponseBytes} bytes`)
      return { status, body: read }
    }
    if (status < 200 || status > 299) {
      response.destroy()
      return { status }
    }
    const length = Number(response.headers['content-length'])
    if (Number.isFinite(length) && length > request.maxResponseBytes) {
      response.destroy()
      throw codedError('too_large', `more than ${request.maxResponseBytes} bytes`)
    }
    try {
      return { status, streamed: await this.decryptInto(request.decrypt, response, request.maxResponseBytes) }
    } finally {
      response.destroy()
    }
  }

  /** Which crypto runs the bodies (`node:crypto` or `wasm`). */
  get cryptoName() {
    return this.#crypto.name
  }

  async #path(name) {
    this.#directory ??= mkdtemp(join(this.#root, 'walink-media-'))
    return join(await this.#directory, name)
  }

  /**
   * Encrypts `source` under a fresh media key (the core's) into a temporary file; resolves with
   * the `hostBody` of a `sendMedia` command. Release it with `releaseBody(id)` when the command
   * ended.
   */
  async prepareUpload(source, mediaType) {
    const id = ++this.#next
    const path = await this.#path(`${id}.enc`)
    this.#bodies.set(id, path)
    const mediaKey = this.#core.newMediaKey()
    const encryptor = this.#crypto.encryptor({ mediaKey, mediaType, ...this.#core.mediaKeys(mediaKey, mediaType) })
    let hashes
    try {
      const file = await open(path, 'wx', 0o600)
      try {
        for await (const piece of pieces(source)) {
          await file.write(encryptor.update(piece))
          this.#moved(piece.length)
        }
        hashes = encryptor.finish()
        await file.write(hashes.tail)
      } finally {
        await file.close()
      }
    } catch (cause) {
      await this.releaseBody(id)
      throw cause?.code === 'invalid_media_source' ? cause : codedError('media_source_failed', `reading the media failed: ${cause?.message ?? cause}`, cause)
    }
    const { fileSha256, fileEncSha256, fileLength } = hashes
    return { id, mediaKey, fileSha256, fileEncSha256, fileLength }
  }

  #bodyPath(id) {
    const path = this.#bodies.get(id)
    if (path === undefined) throw codedError('host_body', `no media body ${id}`)
    return path
  }

  /** The encrypted file `id` as a stream of pieces, for a request body. */
  openBody(id) {
    return createReadStream(this.#bodyPath(id), { highWaterMark: MEDIA_STREAM_CHUNK_BYTES })
  }

  /** Deletes the encrypted file `id`. */
  async releaseBody(id) {
    const path = this.#bodies.get(id)
    this.#bodies.delete(id)
    if (path !== undefined) await rm(path, { force: true })
  }

  /** A new sink for a download: a temporary file that is not the caller's until `commitSink`. */
  async newSink() {
    const id = ++this.#next
    this.#sinks.set(id, await this.#path(`${id}.part`))
    return id
  }

  /**
   * Decrypts a 2xx `body` (an async iterable of bytes: a Node response, or a web stream) into
   * sink `decrypt.sink`, at most `maxBytes` of it;
   * resolves with what the core's `streamed` takes: the hashes, or `{ error }` (the body was
   * refused). A sink that cannot be written fails with code `host_body`; a body over
   * `maxBytes` with `too_large`.
   */
  async decryptInto(decrypt, body, maxBytes) {
    const path = this.#sinks.get(decrypt.sink)
    if (path === undefined) throw codedError('host_body', `no media sink ${decrypt.sink}`)
    const decryptor = this.#crypto.decryptor(decrypt, maxBytes)
    const file = await open(path, 'w', 0o600).catch((cause) => {
      throw codedError('host_body', `opening the sink failed: ${cause?.message ?? cause}`, cause)
    })
    try {
      for await (const value of body) {
        let plain
        try {
          plain = decryptor.update(value)
        } catch (error) {
          if (error?.code === 'too_large') throw error
          return { error: error?.code ?? 'invalid_length' }
        }
        await write(file, plain)
        this.#moved(value.length)
      }
      let last
      try {
        last = decryptor.finish()
      } catch (error) {
        return { error: error?.code ?? 'mac_mismatch' }
      }
      await write(file, last.tail)
      const { fileSha256, fileEncSha256, fileLength } = last
      return { fileSha256, fileEncSha256, fileLength }
    } finally {
      await file.close().catch(() => {})
    }
  }

  /**
   * Hands the verified plaintext of sink `id` to the caller: renamed to the path `to`, or
   * copied into the writable stream `to` (then deleted).
   */
  async commitSink(id, to) {
    const path = this.#sinks.get(id)
    this.#sinks.delete(id)
    if (path === undefined) throw codedError('host_body', `no media sink ${id}`)
    if (typeof to === 'string' || to instanceof URL) {
      await rename(path, to).catch(async (cause) => {
        // Another file system: copy, then delete.
        if (cause?.code !== 'EXDEV') throw cause
        await pipeline(createReadStream(path), createWriteStream(to))
        await rm(path, { force: true })
      })
      return
    }
    try {
      await pipeline(createReadStream(path, { highWaterMark: MEDIA_STREAM_CHUNK_BYTES }), to)
    } finally {
      await rm(path, { force: true })
    }
  }

  /** Deletes sink `id` and what it holds. */
  async discardSink(id) {
    const path = this.#sinks.get(id)
    this.#sinks.delete(id)
    if (path !== undefined) await rm(path, { force: true })
  }

  /** Deletes every file left (a connection that ended). */
  async dispose() {
    const directory = this.#directory
    this.#directory = null
    this.#bodies.clear()
    this.#sinks.clear()
    if (directory) await rm(await directory, { recursive: true, force: true })
  }
}

async function write(file, bytes) {
  if (bytes.length === 0) return
  try {
    await file.write(bytes)
  } catch (cause) {
    throw codedError('host_body', `writing the sink failed: ${cause?.message ?? cause}`, cause)
  }
}
