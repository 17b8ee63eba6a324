// App-state blobs: when the core asks for an external blob (an `appStateDownload` event: a
// snapshot, or a large patch's mutations), the driver downloads the file, still encrypted, and
// hands the bytes back with an `appStateBlob` command; the core checks the file's MAC and hashes
// itself. A failed download answers with no bytes, so the core's recovery ladder goes on (fetch
// again, then a snapshot, then `appStateFatal`), and is reported to `onError` as
// `app_state_download_failed`.
//
// Options of `connect` read here:
// - `appStateDownloads: false`: the driver leaves `appStateDownload` events to the host, which
//   answers them itself with `connection.command({ type: 'appStateBlob', ... })`;
// - `downloadAppStateBlob({ url, directPath, downloadId })`: the host's download function,
//   resolving with the file's bytes (default: `fetch` of the URL);
// - `mediaHost`: the media host's origin (default `https://mmg.whatsapp.net`, WhatsApp's);
// - `fetch`: the fetch implementation (default `globalThis.fetch`).

/** WhatsApp's media host, which serves app-state blobs by direct path. */
export const DEFAULT_MEDIA_HOST = 'https://mmg.whatsapp.net'

/** The largest file the default download accepts (the core's APPSTATE_MAX_EXTERNAL_BLOB bound is lower or equal). */
const MAX_BLOB_BYTES = 64 * 1024 * 1024

/** The URL of a direct path on `mediaHost` (an origin, with or without a trailing slash). */
export function blobUrl(mediaHost, directPath) {
  const origin = String(mediaHost ?? DEFAULT_MEDIA_HOST).replace(/\/+$/, '')
  const path = directPath.startsWith('/') ? directPath : `/${directPath}`
  return `${origin}${path}`
}

/** Downloads `url` with `fetchImpl`; rejects on a non-2xx status or an oversized body. */
async function fetchBlob(fetchImpl, url) {
  if (typeof fetchImpl !== 'function') throw new Error('no fetch implementation (pass `fetch` or `downloadAppStateBlob`)')
  const response = await fetchImpl(url)
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`)
  const length = Number(response.headers?.get?.('content-length'))
  if (Number.isFinite(length) && length > MAX_BLOB_BYTES) throw new Error(`GET ${url}: ${length} bytes is too large`)
  const bytes = new Uint8Array(await response.arrayBuffer())
  if (bytes.length > MAX_BLOB_BYTES) throw new Error(`GET ${url}: ${bytes.length} bytes is too large`)
  return bytes
}

/** Turns whatever a host's download function resolved with into bytes, or throws. */
function asBytes(value) {
  if (value instanceof Uint8Array) return value
  if (value instanceof ArrayBuffer) return new Uint8Array(value)
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
  throw new Error(`the download resolved with ${value === null ? 'null' : typeof value}, not bytes`)
}

/**
 * Whether the driver answers `appStateDownload` events itself with these options.
 * @param {object} options the options of `connect`
 */
export function handlesAppStateDownloads(options) {
  return options.appStateDownloads !== false
}

/**
 * Downloads the blob an `appStateDownload` event names. Resolves with the `appStateBlob` command
 * to feed back (with `bytes`, or without when the download failed) and the failure, if any, as
 * an Error whose `code` is `app_state_download_failed`.
 * @param {object} options the options of `connect`
 * @param {{ downloadId: number, directPath: string }} event
 */
export async function downloadAppStateBlob(options, event) {
  const { downloadId, directPath } = event
  const url = blobUrl(options.mediaHost, directPath)
  try {
    const raw = options.downloadAppStateBlob
      ? await options.downloadAppStateBlob({ url, directPath, downloadId })
      : await fetchBlob(options.fetch ?? globalThis.fetch, url)
    return { command: { type: 'appStateBlob', downloadId, bytes: asBytes(raw) }, error: null }
  } catch (cause) {
    const error = new Error(`downloading app-state blob ${downloadId} failed: ${cause?.message ?? cause}`, { cause })
    error.code = 'app_state_download_failed'
    error.downloadId = downloadId
    return { command: { type: 'appStateBlob', downloadId }, error }
  }
}
