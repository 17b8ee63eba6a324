// Per-instance proxies that fail closed: an http.Agent whose every connection goes through the
// proxy (HTTP CONNECT or SOCKS5, optional user and password), then TLS for wss/https, and a
// `fetch` on it for walink's HTTP requests. If the proxy cannot be reached or refuses, the
// connection fails; there is no fallback to a direct one.
import { Agent, request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { connect as netConnect } from 'node:net'
import { Readable } from 'node:stream'
import { connect as tlsConnect } from 'node:tls'

const HANDSHAKE_TIMEOUT_MS = 10_000
const MAX_REPLY = 16 * 1024

/** Reads from `socket` until `done(buffer)` returns a value other than undefined. */
function readUntil(socket, done) {
  return new Promise((resolve, reject) => {
    let buffer = Buffer.alloc(0)
    const cleanup = () => {
      socket.off('data', onData)
      socket.off('error', onError)
      socket.off('close', onClose)
    }
    const onData = (data) => {
      buffer = Buffer.concat([buffer, data])
      if (buffer.length > MAX_REPLY) {
        cleanup()
        reject(new Error('proxy reply too long'))
        return
      }
      let result
      try {
        result = done(buffer)
      } catch (error) {
        cleanup()
        reject(error)
        return
      }
      if (result !== undefined) {
        cleanup()
        resolve(result)
      }
    }
    const onError = (error) => (cleanup(), reject(error))
    const onClose = () => (cleanup(), reject(new Error('the proxy closed the connection')))
    socket.on('data', onData)
    socket.on('error', onError)
    socket.on('close', onClose)
  })
}

async function httpConnect(socket, proxy, host, port) {
  const auth = proxy.username ? `Proxy-Authorization: Basic ${Buffer.from(`${proxy.username}:${proxy.password ?? ''}`).toString('base64')}\r\n` : ''
  socket.write(`CONNECT ${host}:${port} HTTP/1.1\r\nHost: ${host}:${port}\r\n${auth}\r\n`)
  const status = await readUntil(socket, (buffer) => {
    const end = buffer.indexOf('\r\n\r\n')
    if (end < 0) return undefined
    if (end + 4 !== buffer.length) throw new Error('the proxy sent data before the tunnel was set up')
    return Number(/^HTTP\/1\.[01] (\d{3})/.exec(buffer.subarray(0, end).toString('latin1'))?.[1] ?? 0)
  })
  if (status !== 200) throw new Error(`the proxy answered CONNECT with ${status || 'garbage'}`)
}

async function socks5Connect(socket, proxy, host, port) {
  const methods = proxy.username ? [0x00, 0x02] : [0x00]
  socket.write(Buffer.from([0x05, methods.length, ...methods]))
  const method = await readUntil(socket, (b) => (b.length >= 2 ? (b[0] === 5 ? b[1] : -1) : undefined))
  if (method === 0x02 && proxy.username) {
    const user = Buffer.from(proxy.username)
    const pass = Buffer.from(proxy.password ?? '')
    socket.write(Buffer.concat([Buffer.from([0x01, user.length]), user, Buffer.from([pass.length]), pass]))
    const ok = await readUntil(socket, (b) => (b.length >= 2 ? b[1] === 0 : undefined))
    if (!ok) throw new Error('the SOCKS5 proxy refused the user name and password')
  } else if (method !== 0x00) {
    throw new Error('the SOCKS5 proxy accepts none of our authentication methods')
  }
  const name = Buffer.from(host)
  const request = Buffer.concat([Buffer.from([0x05, 0x01, 0x00, 0x03, name.length]), name, Buffer.from([port >> 8, port & 255])])
  socket.write(request)
  const reply = await readUntil(socket, (b) => {
    if (b.length < 5) return undefined
    const length = b[3] === 1 ? 10 : b[3] === 4 ? 22 : b[3] === 3 ? 7 + b[4] : -1
    if (length < 0) throw new Error('the SOCKS5 proxy sent a malformed reply')
    if (b.length < length) return undefined
    if (b.length > length) throw new Error('the SOCKS5 proxy sent data before the tunnel was set up')
    return b[1]
  })
  if (reply !== 0) throw new Error(`the SOCKS5 proxy refused the connection (reply ${reply})`)
}

/** Opens a tunnel to `host:port` through `proxy`; resolves with the raw socket. */
export async function openTunnel(proxy, host, port) {
  const socket = netConnect({ host: proxy.host, port: proxy.port })
  socket.setTimeout(HANDSHAKE_TIMEOUT_MS, () => socket.destroy(new Error('the proxy did not answer in time')))
  try {
    await new Promise((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    if (proxy.protocol === 'socks5') await socks5Connect(socket, proxy, host, port)
    else await httpConnect(socket, proxy, host, port)
  } catch (error) {
    socket.destroy()
    throw Object.assign(new Error(`proxy ${proxy.protocol}://${proxy.host}:${proxy.port}: ${error.message}`), { code: 'proxy_failed' })
  }
  socket.setTimeout(0)
  return socket
}

/** An agent for `ws` (and node:http) whose sockets all go through `proxy`; TLS when `tls`. */
export class ProxyAgent extends Agent {
  constructor(proxy, { tls = false } = {}) {
    super({ keepAlive: false })
    // node:https checks the agent's protocol; the TLS is done here, over the tunnel.
    this.protocol = tls ? 'https:' : 'http:'
    this.proxy = proxy
    this.tls = tls
  }

  createConnection(options, callback) {
    const host = options.host
    const port = Number(options.port) || (this.tls ? 443 : 80)
    openTunnel(this.proxy, host, port).then(
      (socket) => {
        if (!this.tls) return callback(null, socket)
        const secure = tlsConnect({ socket, servername: options.servername || host, ALPNProtocols: options.ALPNProtocols })
        secure.once('secureConnect', () => callback(null, secure))
        secure.once('error', (error) => callback(error))
      },
      (error) => callback(error),
    )
    return undefined
  }
}

/** Statuses whose response has no body (a `Response` refuses one). */
const NULL_BODY_STATUS = new Set([204, 205, 304])

/**
 * A `fetch` for walink's `connect` (its `fetch` option: the core's HTTP requests, app-state blobs
 * today) whose every request goes through `proxy`, never directly. It answers a `Response`
 * whatever the status (the core judges it) with the body streamed, so the driver stops reading at
 * its size cap; `signal` aborts the request.
 */
export function proxyFetch(proxy) {
  return function fetchThroughProxy(url, { method = 'GET', headers, body, signal } = {}) {
    const target = new URL(url)
    const tls = target.protocol === 'https:'
    if (!tls && target.protocol !== 'http:') return Promise.reject(new TypeError(`cannot fetch ${target.protocol} URLs`))
    const request = tls ? httpsRequest : httpRequest
    const outgoing = Object.fromEntries(new Headers(headers ?? []))
    return new Promise((resolve, reject) => {
      const req = request(target, { method, headers: outgoing, agent: new ProxyAgent(proxy, { tls }), signal }, (res) => {
        const received = new Headers()
        for (const [name, value] of Object.entries(res.headers)) {
          for (const one of Array.isArray(value) ? value : [value]) received.append(name, one)
        }
        const empty = method === 'HEAD' || NULL_BODY_STATUS.has(res.statusCode)
        if (empty) res.resume()
        resolve(new Response(empty ? null : Readable.toWeb(res), { status: res.statusCode, statusText: res.statusMessage, headers: received }))
      })
      req.on('error', reject)
      req.end(body === undefined || body === null ? undefined : Buffer.from(body))
    })
  }
}
