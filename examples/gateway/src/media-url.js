// Media given by URL (Evolution's `media`, `audio`, `sticker` as an http(s) URL): fetched once,
// through the instance's proxy when it has one (failing closed, as every connection of the
// instance), bounded in size and time, following at most a few redirects. A URL naming a private,
// loopback or link-local address is refused, and without a proxy so is a host name resolving to
// one (checked on the address actually connected to, so a name that resolves differently the
// second time does not get through; through a proxy, the proxy resolves names), unless
// GATEWAY_MEDIA_URL_PRIVATE allows it. Every failure is a typed 400.
import { lookup as dnsLookup } from 'node:dns'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { BlockList, isIP } from 'node:net'

import { ApiError } from './errors.js'
import { ProxyAgent } from './proxy.js'

/** Redirects followed before a fetch fails. */
export const MEDIA_URL_MAX_REDIRECTS = 3

const REDIRECTS = new Set([301, 302, 303, 307, 308])

/** Addresses no media URL may reach by default: private, loopback, link-local, shared, reserved. */
const PRIVATE = new BlockList()
for (const [net, prefix] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4]]) PRIVATE.addSubnet(net, prefix, 'ipv4')
for (const [net, prefix] of [['::', 127], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8], ['64:ff9b::', 96]]) PRIVATE.addSubnet(net, prefix, 'ipv6')

/** True for an address media URLs may not reach by default (IPv4-mapped IPv6 judged as IPv4). */
export function isPrivateAddress(address) {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  if (mapped) return PRIVATE.check(mapped[1], 'ipv4')
  const family = isIP(address)
  if (family === 0) return true
  return PRIVATE.check(address, family === 4 ? 'ipv4' : 'ipv6')
}

const failure = (code, message) => new ApiError(400, code, message)

/** A DNS lookup for node:http that refuses private addresses (all of them checked, as connected). */
function guardedLookup(hostname, options, callback) {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error)
    const blocked = addresses.find((a) => isPrivateAddress(a.address))
    if (blocked) return callback(failure('media_url_blocked', `the media URL's host ${hostname} resolves to ${blocked.address}, a private address (GATEWAY_MEDIA_URL_PRIVATE allows it)`))
    if (options.all) return callback(null, addresses)
    return callback(null, addresses[0].address, addresses[0].family)
  })
}

function parseTarget(value) {
  let target
  try {
    target = new URL(value)
  } catch {
    throw failure('invalid_media_url', 'the media URL does not parse')
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') throw failure('invalid_media_url', `media URLs are http or https, not ${target.protocol}`)
  return target
}

function requestOnce(target, { proxy, allowPrivate, signal }) {
  const tls = target.protocol === 'https:'
  const host = target.hostname.replace(/^\[|\]$/g, '')
  if (!allowPrivate && isIP(host) && isPrivateAddress(host)) return Promise.reject(failure('media_url_blocked', `the media URL names ${host}, a private address (GATEWAY_MEDIA_URL_PRIVATE allows it)`))
  const options = { method: 'GET', headers: { 'user-agent': 'walink-gateway', accept: '*/*' }, signal }
  if (proxy) options.agent = new ProxyAgent(proxy, { tls })
  else if (!allowPrivate) options.lookup = guardedLookup
  return new Promise((resolve, reject) => {
    const req = (tls ? httpsRequest : httpRequest)(target, options, resolve)
    req.on('error', reject)
    req.end()
  })
}

async function readBounded(res, maxBytes, url) {
  const declared = Number(res.headers['content-length'])
  const tooLarge = () => failure('media_url_too_large', `the media at ${url} is larger than ${maxBytes} bytes (GATEWAY_MEDIA_URL_MAX_BYTES)`)
  if (Number.isFinite(declared) && declared > maxBytes) {
    res.destroy()
    throw tooLarge()
  }
  const chunks = []
  let size = 0
  for await (const chunk of res) {
    size += chunk.length
    if (size > maxBytes) {
      res.destroy()
      throw tooLarge()
    }
    chunks.push(chunk)
  }
  return Buffer.concat(chunks)
}

/**
 * Fetches the media at `url`; resolves with `{ data, mimetype }` (`mimetype` the answer's
 * Content-Type, or null). `proxy`: the instance's proxy or null; `maxBytes`, `timeoutMs`: the
 * bounds (the whole fetch, redirects included); `allowPrivate`: skip the address check.
 */
export async function fetchMediaUrl(url, { proxy = null, maxBytes, timeoutMs, allowPrivate = false }) {
  const signal = AbortSignal.timeout(timeoutMs)
  let target = parseTarget(url)
  try {
    for (let hop = 0; hop <= MEDIA_URL_MAX_REDIRECTS; hop++) {
      const res = await requestOnce(target, { proxy, allowPrivate, signal })
      if (REDIRECTS.has(res.statusCode) && res.headers.location) {
        res.resume()
        target = parseTarget(new URL(res.headers.location, target).href)
        continue
      }
      if (res.statusCode < 200 || res.statusCode >= 300) {
        res.resume()
        throw failure('media_url_failed', `the media URL answered ${res.statusCode}`)
      }
      const data = await readBounded(res, maxBytes, target.href)
      if (data.length === 0) throw failure('media_url_failed', 'the media URL answered an empty body')
      const type = String(res.headers['content-type'] ?? '').trim()
      return { data: new Uint8Array(data), mimetype: /^[a-z]+\/[0-9A-Za-z.+_-]+(; ?[ -~]+)?$/.test(type) ? type : null }
    }
    throw failure('media_url_failed', `the media URL redirected more than ${MEDIA_URL_MAX_REDIRECTS} times`)
  } catch (error) {
    if (error instanceof ApiError) throw error
    if (signal.aborted) throw failure('media_url_timeout', `fetching the media URL took longer than ${timeoutMs} ms (GATEWAY_MEDIA_URL_TIMEOUT_MS)`)
    if (error?.code === 'proxy_failed') throw failure('media_url_failed', `fetching the media URL failed: ${error.message}`)
    throw failure('media_url_failed', `fetching the media URL failed: ${error?.code ?? error?.message ?? error}`)
  }
}
