// Configuration from the environment (every variable optional except the API key in production).
import { Client } from 'walink'

import { hashToken } from './ids.js'

const int = (value, fallback, min, max) => {
  if (value === undefined || value === '') return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`expected an integer in ${min}..${max}, got ${JSON.stringify(value)}`)
  return n
}

/** Reads the configuration; `overrides` win (tests, the dev launcher). */
export function loadConfig(env = process.env, overrides = {}) {
  const apiKey = overrides.apiKey ?? env.GATEWAY_API_KEY
  if (!apiKey || apiKey.length < 16) throw new Error('GATEWAY_API_KEY must be set to at least 16 characters')
  const config = {
    host: env.GATEWAY_HOST ?? '127.0.0.1',
    port: int(env.GATEWAY_PORT, 8080, 0, 65535),
    dbPath: env.GATEWAY_DB ?? './gateway.sqlite',
    // A postgres:// URL: several workers share the database (leases, fencing; src/cluster.js).
    databaseUrl: env.GATEWAY_DATABASE_URL || null,
    // What the other workers use to reach this one (forwarded API requests); default: the listening URL.
    advertiseUrl: env.GATEWAY_ADVERTISE_URL || null,
    leaseTtlMs: int(env.GATEWAY_LEASE_TTL_MS, 10_000, 1000, 600_000),
    leaseRenewMs: int(env.GATEWAY_LEASE_RENEW_MS, 2000, 100, 60_000),
    leaseMarginMs: int(env.GATEWAY_LEASE_MARGIN_MS, 3000, 100, 300_000),
    adoptBatch: int(env.GATEWAY_ADOPT_BATCH, 32, 1, 10_000),
    dbPoolSize: int(env.GATEWAY_DB_POOL, 16, 1, 1000),
    publicUrl: env.GATEWAY_PUBLIC_URL ?? null,
    // WhatsApp's chat socket and media host as the walink core states them, unless overridden.
    waUrl: env.GATEWAY_WA_URL ?? Client.endpoints().chatUrl,
    mediaOrigin: env.GATEWAY_MEDIA_ORIGIN || undefined,
    clientConfig: { deviceName: env.GATEWAY_DEVICE_NAME ?? 'walink gateway' },
    rateLimitPerMinute: int(env.GATEWAY_RATE_LIMIT, 100, 1, 1e6),
    maxBodyBytes: int(env.GATEWAY_MAX_BODY, 1024 * 1024, 1024, 64 * 1024 * 1024),
    connectTimeoutMs: int(env.GATEWAY_CONNECT_TIMEOUT_MS, 20_000, 1000, 600_000),
    pairCodeLifetimeMs: 160_000,
    resumeConcurrency: int(env.GATEWAY_RESUME_CONCURRENCY, 16, 1, 1000),
    heartbeatMs: int(env.GATEWAY_HEARTBEAT_MS, 30_000, 100, 3_600_000),
    sendIntervalMs: int(env.GATEWAY_SEND_INTERVAL_MS, 200, 0, 60_000),
    sendQueueMax: int(env.GATEWAY_SEND_QUEUE_MAX, 1000, 1, 1e6),
    webhookConcurrency: int(env.GATEWAY_WEBHOOK_CONCURRENCY, 64, 1, 10_000),
    webhookPerHost: int(env.GATEWAY_WEBHOOK_PER_HOST, 8, 1, 1000),
    webhookTimeoutMs: int(env.GATEWAY_WEBHOOK_TIMEOUT_MS, 10_000, 100, 120_000),
    webhookMaxAttempts: int(env.GATEWAY_WEBHOOK_MAX_ATTEMPTS, 20, 1, 1000),
    webhookBackoffBaseMs: int(env.GATEWAY_WEBHOOK_BACKOFF_BASE_MS, 1000, 1, 3_600_000),
    webhookBackoffMaxMs: int(env.GATEWAY_WEBHOOK_BACKOFF_MAX_MS, 600_000, 1, 86_400_000),
    mediaBase64MaxBytes: int(env.GATEWAY_MEDIA_BASE64_MAX_BYTES, 16 * 1024 * 1024, 0, 128 * 1024 * 1024),
    mediaDownloadTimeoutMs: int(env.GATEWAY_MEDIA_DOWNLOAD_TIMEOUT_MS, 60_000, 1000, 600_000),
    mediaUrlMaxBytes: int(env.GATEWAY_MEDIA_URL_MAX_BYTES, 16 * 1024 * 1024, 1, 128 * 1024 * 1024),
    mediaUrlTimeoutMs: int(env.GATEWAY_MEDIA_URL_TIMEOUT_MS, 30_000, 100, 600_000),
    mediaUrlAllowPrivate: ['1', 'true'].includes(String(env.GATEWAY_MEDIA_URL_PRIVATE ?? '').toLowerCase()),
    eventRetentionMs: int(env.GATEWAY_EVENT_RETENTION_MS, 7 * 24 * 3600 * 1000, 60_000, 3650 * 24 * 3600 * 1000),
    ...overrides,
  }
  if (config.databaseUrl && !/^postgres(ql)?:\/\//.test(config.databaseUrl)) throw new Error('GATEWAY_DATABASE_URL must be a postgres:// URL')
  if (config.leaseMarginMs + config.leaseRenewMs >= config.leaseTtlMs) throw new Error('GATEWAY_LEASE_TTL_MS must exceed GATEWAY_LEASE_RENEW_MS + GATEWAY_LEASE_MARGIN_MS')
  config.apiKeyHash = hashToken(apiKey)
  delete config.apiKey
  if (env.GATEWAY_TRUST_ROOT_HEX && !overrides.clientConfig) {
    // A test server's root key (the mock-server's), never WhatsApp's real one.
    config.clientConfig = { ...config.clientConfig, trustRoot: new Uint8Array(Buffer.from(env.GATEWAY_TRUST_ROOT_HEX, 'hex')) }
  }
  config.clientConfig = walinkConfig(config)
  return config
}

/**
 * The walink client configuration of every instance, checked once by building a client from it:
 * an option walink refuses (a media origin that is not `http(s)://host[:port]`, ...) stops the
 * gateway at start instead of failing every connect. `retryWhenReplaced` is off: the gateway
 * ends a replaced session itself (src/gateway.js, RESTING).
 */
function walinkConfig(config) {
  const clientConfig = { ...config.clientConfig, retryWhenReplaced: false }
  if (config.mediaOrigin) clientConfig.mediaOrigin = config.mediaOrigin
  try {
    new Client(clientConfig, []).free()
  } catch (error) {
    throw new Error(`the walink client configuration is refused (${error.code ?? 'invalid_config'}): ${error.message}`, { cause: error })
  }
  return clientConfig
}
