// Assembles the gateway: database, features, event log, dispatcher, HTTP server, heartbeat (and,
// on PostgreSQL, the worker's lease: src/cluster.js); and stops it gracefully.
import { readFileSync } from 'node:fs'

import { Cluster } from './cluster.js'
import { openDatabase } from './db.js'
import { EventLog } from './events.js'
import { evolutionMapper } from './evolution.js'
import chats from './features/chats.js'
import groups from './features/groups.js'
import instances from './features/instances.js'
import messages, { sentMediaBase64, webhookMedia } from './features/messages.js'
import social from './features/social.js'
import system from './features/system.js'
import webhooks, { webhookStore } from './features/webhooks.js'
import { Gateway } from './gateway.js'
import { listen, makeHandler } from './http/server.js'
import { Metrics } from './metrics.js'
import { openApiDocument } from './openapi.js'
import { Dispatcher } from './webhooks.js'

/** Every feature: each brings its routes (native and Evolution), walink event handlers and Evolution event mapping. */
export const FEATURES = [system, instances, messages, chats, groups, social, webhooks]

const VERSION = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version

/** Starts a gateway with `config` (src/config.js); resolves with `{ url, server, gateway, stop() }`. */
export async function startGateway(config, { log = defaultLog, extraFeatures = [] } = {}) {
  const features = [...FEATURES, ...extraFeatures]
  // A stalled worker's open transaction ends well before its lease could be taken over.
  const db = await openDatabase(config.databaseUrl ?? config.dbPath, { max: config.dbPoolSize, idleInTransactionMs: Math.max(500, Math.floor(config.leaseTtlMs / 2)) })
  const metrics = new Metrics()
  const serverUrl = config.publicUrl
  const mapper = evolutionMapper(features, () => config.publicUrl)
  const events = new EventLog(db, (type, data, instance) => mapper.toEvolution(type, data, instance))
  const gateway = new Gateway({ db, config, features, events, metrics, log })
  const dispatcher = new Dispatcher({ db, gateway, config, metrics, evolutionBody: mapper.evolutionBody, mediaBase64: (instance, data, type) => (type === 'message.sent' ? (instance ? sentMediaBase64(db, instance.id, data) : null) : webhookMedia(gateway, instance, data)), log })
  events.onDeliveries = () => dispatcher.kick()
  const routes = features.flatMap((feature) => feature.routes ?? [])
  const context = { db, gateway, config, metrics, events, dispatcher, webhooks: webhookStore(db), log, version: VERSION }
  context.openapi = openApiDocument(routes, { version: VERSION, serverUrl })
  let server
  try {
    server = await listen(makeHandler(routes, context), { host: config.host, port: config.port })
  } catch (error) {
    await db.close()
    throw error
  }
  const url = `http://${config.host}:${server.address().port}`
  if (!config.publicUrl) config.publicUrl = url
  let cluster = null
  if (db.dialect === 'postgres') {
    cluster = new Cluster({ db, gateway, events, dispatcher, config, metrics, log, addr: config.advertiseUrl ?? url })
    gateway.cluster = cluster
    await cluster.start()
  }
  await dispatcher.start()
  // One process (SQLite): every paired instance that should run resumes now. Several workers: each
  // resumes what its lease loop adopts.
  const resumed = (cluster ? Promise.resolve(0) : gateway.resumeAll()).then((n) => {
    if (!cluster) log('info', `resumed ${n} instance(s)`)
    return n
  })
  const heartbeat = setInterval(() => {
    gateway.heartbeat().catch((error) => log('warn', `heartbeat: ${error.message}`))
    context.limiter.prune()
    prune(db, config).catch((error) => log('warn', `pruning: ${error.message}`))
  }, config.heartbeatMs)
  heartbeat.unref()
  let stopping = null
  async function stop() {
    stopping ??= (async () => {
      clearInterval(heartbeat)
      await new Promise((resolve) => {
        server.close(resolve)
        server.closeAllConnections?.()
      })
      await gateway.shutdown()
      await dispatcher.stop()
      await cluster?.stop()
      await db.close()
    })()
    return stopping
  }
  return { url, server, gateway, db, dispatcher, cluster, resumed, stop, context }
}

/** Drops delivered deliveries, old events nobody waits for, and the files of old sent media. */
async function prune(db, config) {
  const cutoff = Date.now() - config.eventRetentionMs
  await db.tx(async (q) => {
    await q.run("DELETE FROM deliveries WHERE status != 'pending' AND updated_at < ?", cutoff)
    await q.run('DELETE FROM events WHERE at < ? AND seq NOT IN (SELECT event_seq FROM deliveries)', cutoff)
    await q.run('DELETE FROM sent_media WHERE created_at < ?', cutoff)
  })
}

function defaultLog(level, message) {
  if (level === 'debug') return
  console.error(`${new Date().toISOString()} ${level} ${message}`)
}
