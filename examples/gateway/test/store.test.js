// The walink store over the gateway's database passes the npm package's store conformance suite
// on SQLite and, when a PostgreSQL server is available (test/postgres.js), on PostgreSQL with
// fencing: a key batch and the rows written from its events commit in one transaction, a stale
// epoch is refused with `fenced`, and a second process cannot open the same SQLite file.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { performance } from 'node:perf_hooks'

import { storeConformance } from '../../../npm/test/support/store-conformance.js'
import { SqliteDb, openDatabase } from '../src/db.js'
import { GatewayStore } from '../src/store.js'
import { postgresForTests } from './postgres.js'
import { removeDir, tempDir } from './support.js'

const dir = tempDir('walink-gw-store-')
after(() => removeDir(dir))

const INSTANCE_ROW = "INSERT INTO instances (id, name, token_hash, created_at, state, reason, state_at, settings, owner, epoch) VALUES (?, ?, ?, 0, 'pending', 'created', 0, '{}', ?, ?)"

const databases = new WeakMap() // store -> its database

/** A store whose step events go into the `events` table (as the gateway's handlers write them). */
function recordingStore(db, id, options) {
  const store = new GatewayStore(db, id, options)
  databases.set(store, db)
  store.onEvents = async (q, events) => {
    for (const [i, event] of events.entries()) {
      await q.run("INSERT INTO events (id, instance_id, type, at, data) VALUES (?, ?, ?, 0, ?)", `${id}-${Date.now()}-${Math.random()}-${i}`, id, event.type, JSON.stringify(event))
    }
  }
  return store
}

const storedEvents = async (store) => (await databases.get(store).all('SELECT data FROM events WHERE instance_id = ? ORDER BY seq', store.id)).map((r) => JSON.parse(r.data))

describe('SQLite', () => {
  const dbs = new Map()
  const openStore = (label) => {
    const db = SqliteDb.open(join(dir, `${label}.sqlite`))
    dbs.set(label, db)
    return recordingStore(db, `instance-${label}`)
  }
  storeConformance('GatewayStore on SQLite', {
    open: async (label) => openStore(label),
    reopen: async (store, label) => {
      await store.close()
      await dbs.get(label).close()
      return openStore(label)
    },
    crash: async (_store, label) => {
      dbs.get(label).crashForTestingOnly()
      return openStore(label)
    },
    faulty: async (label) => {
      const store = openStore(label)
      return { store, failNext: () => store.failNextWriteForTestingOnly() }
    },
    storedEvents,
  })

  test('instances keep their records apart, and deleteAll wipes one instance only', async () => {
    const db = SqliteDb.open(join(dir, 'apart.sqlite'))
    const a = new GatewayStore(db, 'a')
    const b = new GatewayStore(db, 'b')
    await a.applyBatch([{ op: 'put', space: 'device', key: 'device', value: new Uint8Array([1]) }])
    await b.applyBatch([{ op: 'put', space: 'device', key: 'device', value: new Uint8Array([2]) }])
    await a.applyBatch([{ op: 'deleteAll' }])
    assert.deepEqual(await a.loadAll(), [])
    assert.deepEqual((await b.loadAll()).map((r) => r.value[0]), [2])
    await db.close()
  })

  test('group commit: batches of many instances in one turn share a commit, each resolves once durable', async () => {
    const path = join(dir, 'group.sqlite')
    let db = SqliteDb.open(path)
    const stores = Array.from({ length: 20 }, (_, i) => new GatewayStore(db, `g${i}`))
    await Promise.all(stores.map((s, i) => s.applyBatch([{ op: 'put', space: 'session', key: 'k', value: new Uint8Array([i]) }])))
    db.crashForTestingOnly()
    db = SqliteDb.open(path)
    assert.equal((await db.get('SELECT count(*) AS n FROM records')).n, 20)
    await db.close()
  })

  test('a second process cannot open the same SQLite file', async () => {
    const path = join(dir, 'owned.sqlite')
    const db = SqliteDb.open(path)
    const code = `import('${new URL('../src/db.js', import.meta.url)}').then((m) => { try { m.SqliteDb.open(${JSON.stringify(path)}); process.exit(0) } catch (e) { console.log(e.code); process.exit(3) } })`
    const second = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' })
    assert.equal(second.status, 3, second.stderr)
    assert.equal(second.stdout.trim(), 'locked')
    await db.close()
    const third = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' })
    assert.equal(third.status, 0, `free again after close: ${third.stderr}`)
  })
})

describe('PostgreSQL', () => {
  let pg = null
  before(async () => {
    pg = await postgresForTests()
  })
  after(async () => {
    await pg?.stop()
  })

  const lease = (workerId, epoch, validUntil = Infinity) => ({ workerId, epoch, valid: () => performance.now() < validUntil, refused: () => {} })
  let n = 0
  const label = () => `pg${process.pid}x${++n}`

  /** A fresh database for each store label (so the suite's instances never meet). */
  const opened = []
  async function freshDb(name) {
    const db = await openDatabase(await pg.createDatabase(name))
    opened.push(db)
    return db
  }
  after(async () => {
    for (const db of opened) await db.close()
  })

  test('a batch folded to its outcome (multi-row upserts) leaves the records one statement per change leaves on SQLite', async () => {
    const v = (n) => new Uint8Array([n])
    const batches = [
      [{ op: 'put', space: 's', key: 'a', value: v(1) }, { op: 'put', space: 's', key: 'a', value: v(2) }, { op: 'put', space: 's', key: 'b', value: v(3) }, { op: 'delete', space: 's', key: 'b' }],
      [{ op: 'delete', space: 's', key: 'c' }, { op: 'put', space: 's', key: 'c', value: v(4) }, { op: 'put', space: 't', key: 'a', value: v(5) }],
      [{ op: 'put', space: 's', key: 'd', value: v(6) }, { op: 'deleteAll' }, { op: 'put', space: 's', key: 'a', value: v(7) }, { op: 'delete', space: 's', key: 'a' }, { op: 'put', space: 's', key: 'e', value: v(8) }],
      Array.from({ length: 600 }, (_, i) => ({ op: 'put', space: 'many', key: String(i % 300), value: v(i % 256) })),
    ]
    const dump = async (store) => (await store.loadAll()).map((r) => `${r.space}/${r.key}=${r.value[0]}`).sort()
    const sqliteDb = SqliteDb.open(join(dir, 'fold.sqlite'))
    const sqlite = new GatewayStore(sqliteDb, 'fold')
    const name = label()
    const db = await freshDb(name)
    await db.run(INSTANCE_ROW, name, name, Buffer.from([0]), 'w1', 1)
    const postgres = new GatewayStore(db, name, { lease: lease('w1', 1) })
    for (const batch of batches) {
      await sqlite.applyBatch(batch)
      await postgres.applyBatch(batch)
      assert.deepEqual(await dump(postgres), await dump(sqlite))
    }
    assert.equal((await dump(postgres)).length, 301)
    await sqliteDb.close()
  })

  const dbOf = new Map()
  storeConformance('GatewayStore on PostgreSQL (fenced)', {
    open: async (name) => {
      const db = dbOf.get(name) ?? (await freshDb(name))
      dbOf.set(name, db)
      await db.run(`${INSTANCE_ROW} ON CONFLICT (id) DO NOTHING`, name, name, Buffer.from([0]), 'w1', 1)
      return recordingStore(db, name, { lease: lease('w1', 1) })
    },
    reopen: async (store, name) => {
      await store.close()
      return recordingStore(dbOf.get(name), name, { lease: lease('w1', 1) })
    },
    faulty: async (name) => {
      const db = await freshDb(name)
      dbOf.set(name, db)
      await db.run(INSTANCE_ROW, name, name, Buffer.from([0]), 'w1', 1)
      const store = recordingStore(db, name, { lease: lease('w1', 1) })
      return { store, failNext: () => store.failNextWriteForTestingOnly() }
    },
    fenced: async (name) => {
      const db = await freshDb(name)
      await db.run(INSTANCE_ROW, name, name, Buffer.from([0]), 'w1', 1)
      const store = recordingStore(db, name, { lease: lease('w1', 1) })
      return {
        store,
        takeOver: async () => {
          await db.run('UPDATE instances SET owner = ?, epoch = epoch + 1 WHERE id = ?', 'w2', name)
          return recordingStore(db, name, { lease: lease('w2', 2) })
        },
      }
    },
    storedEvents,
  })

  test('a lease past its deadline refuses at once, before the database', async () => {
    const name = label()
    const db = await freshDb(name)
    await db.run(INSTANCE_ROW, name, name, Buffer.from([0]), 'w1', 1)
    const store = new GatewayStore(db, name, { lease: lease('w1', 1, performance.now() - 1) })
    await assert.rejects(store.applyBatch([{ op: 'put', space: 's', key: 'k', value: new Uint8Array([1]) }]), { code: 'fenced' })
    assert.equal((await db.get('SELECT count(*) AS n FROM records')).n, 0)
  })

  test('a takeover waits for a batch in flight; a batch after it is refused', async () => {
    const name = label()
    const db = await freshDb(name)
    await db.run(INSTANCE_ROW, name, name, Buffer.from([0]), 'w1', 1)
    // The zombie's batch holds its FOR SHARE lock while the takeover tries to bump the epoch.
    let release
    const held = new Promise((resolve) => (release = resolve))
    const zombie = new GatewayStore(db, name, { lease: lease('w1', 1) })
    zombie.onEvents = async () => held
    const batch = zombie.applyBatch([{ op: 'put', space: 's', key: 'k', value: new Uint8Array([1]) }], { events: [{ type: 'message' }] })
    await new Promise((resolve) => setTimeout(resolve, 100))
    let tookOver = false
    const takeover = db.run('UPDATE instances SET owner = ?, epoch = epoch + 1 WHERE id = ?', 'w2', name).then(() => (tookOver = true))
    await new Promise((resolve) => setTimeout(resolve, 200))
    assert.equal(tookOver, false, 'the takeover waits for the batch that locked first')
    release()
    await batch
    await takeover
    // The successor reads after its takeover committed: it sees the zombie's batch.
    const successor = new GatewayStore(db, name, { lease: lease('w2', 2) })
    assert.deepEqual((await successor.loadAll()).map((r) => r.key), ['k'])
    await assert.rejects(zombie.applyBatch([{ op: 'put', space: 's', key: 'k', value: new Uint8Array([9]) }]), { code: 'fenced' })
    assert.deepEqual((await successor.loadAll()).map((r) => r.value[0]), [1])
  })
})
