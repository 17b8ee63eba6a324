// The walink store over the gateway's SQLite database passes the npm package's store
// conformance suite, in both commit modes; and in group mode a key batch and the rows written
// from the events of the same turn commit together (a crash before the commit loses both, after
// it keeps both).
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, test } from 'node:test'

import { storeConformance } from '../../../npm/test/support/store-conformance.js'
import { openDatabase } from '../src/db.js'
import { SqliteStore } from '../src/store.js'
import { removeDir, tempDir } from './support.js'

const dir = tempDir('walink-gw-store-')
after(() => removeDir(dir))

for (const mode of ['batch', 'group']) {
  const dbs = new Map()
  const openStore = (label) => {
    const db = openDatabase(join(dir, `${mode}-${label}.sqlite`))
    dbs.set(label, db)
    return new SqliteStore(db, `instance-${label}`, { mode })
  }
  // A crash in group mode happens after the event-loop turn in which the batch resolved (nothing
  // outside the process could have seen it earlier: the socket, HTTP answers and webhooks all wait
  // for the commit); in batch mode at once.
  const turn = () => new Promise((resolve) => setImmediate(resolve))
  storeConformance(`SqliteStore (${mode} commit)`, {
    open: async (label) => openStore(label),
    reopen: async (store, label) => {
      await store.close()
      dbs.get(label).close()
      return openStore(label)
    },
    crash: async (_store, label) => {
      if (mode === 'group') await turn()
      dbs.get(label).crashForTestingOnly()
      return openStore(label)
    },
    faulty: async (label) => {
      const store = openStore(label)
      return { store, failNext: () => store.failNextWriteForTestingOnly() }
    },
  })
}

test('group commit: a key batch and the event rows of its turn commit together', async () => {
  const path = join(dir, 'atomic.sqlite')
  let db = openDatabase(path)
  db.write(() => db.prepare("INSERT INTO instances (id, name, token_hash, created_at, state, reason, state_at, settings) VALUES ('i1', 'a', x'00', 0, 'pending', 'created', 0, '{}')").run())
  db.commit()
  const store = new SqliteStore(db, 'i1')
  const event = (id) => db.write(() => db.prepare("INSERT INTO events (id, instance_id, type, at, data) VALUES (?, 'i1', 'message.received', 0, '{}')").run(id))
  // Turn 1: the batch, then the event handler's write; crash before the turn ends: neither is kept.
  await store.applyBatch([{ op: 'put', space: 'session', key: 'a', value: new Uint8Array([1]) }])
  event('e1')
  db.crashForTestingOnly()
  db = openDatabase(path)
  assert.equal(db.get('SELECT count(*) AS n FROM records').n, 0)
  assert.equal(db.get('SELECT count(*) AS n FROM events').n, 0)
  // Turn 2: the same, then the commit (the socket's send does it): both are kept.
  const again = new SqliteStore(db, 'i1')
  await again.applyBatch([{ op: 'put', space: 'session', key: 'a', value: new Uint8Array([2]) }])
  event('e2')
  db.commit()
  db.crashForTestingOnly()
  db = openDatabase(path)
  assert.equal(db.get('SELECT count(*) AS n FROM records').n, 1)
  assert.equal(db.get("SELECT count(*) AS n FROM events WHERE id = 'e2'").n, 1)
  db.close()
})

test('instances keep their records apart, and deleteAll wipes one instance only', async () => {
  const db = openDatabase(join(dir, 'apart.sqlite'))
  const a = new SqliteStore(db, 'a')
  const b = new SqliteStore(db, 'b')
  await a.applyBatch([{ op: 'put', space: 'device', key: 'device', value: new Uint8Array([1]) }])
  await b.applyBatch([{ op: 'put', space: 'device', key: 'device', value: new Uint8Array([2]) }])
  await a.applyBatch([{ op: 'deleteAll' }])
  assert.deepEqual(await a.loadAll(), [])
  assert.deepEqual((await b.loadAll()).map((r) => r.value[0]), [2])
  db.close()
})
