// The conformance suite every walink store passes (MemoryStore, FileStore, IndexedDBStore, and a
// host's own). Call `storeConformance(name, hooks)` from a test file:
//   open(label)          a new, empty store; the same label opens the same storage again
//   reopen(store, label)  close `store` and open its storage anew (omit for a non-durable store)
//   crash(store, label)   drop `store` without closing it and open its storage anew (optional)
//   faulty(label)         { store, failNext() }: failNext() makes the next write of the medium fail
//                         part way (optional)
//   fenced(label)         { store, takeOver() } for a store shared by several processes (optional):
//                         takeOver() lets another owner take the records over (a newer fencing
//                         token) and resolves with that owner's store
//   storedEvents(store)   the events the store recorded from `applyBatch(changes, { events })` and
//                         `applyEvents(events)`, oldest first (optional: stores that keep events)
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

const bytes = (...values) => new Uint8Array(values)
const put = (space, key, value) => ({ op: 'put', space, key, value })
const del = (space, key) => ({ op: 'delete', space, key })

/** The records of `store` as a sorted array of `space/key=hex` strings, to compare in one assert. */
export async function dump(store) {
  const records = await store.loadAll()
  for (const r of records) assert.ok(r.value instanceof Uint8Array, 'values load as Uint8Array')
  return records.map((r) => `${r.space}/${r.key}=${Buffer.from(r.value).toString('hex')}`).sort()
}

let labels = 0
const fresh = (name) => `${name}-${process.pid}-${++labels}`

export function storeConformance(name, hooks) {
  const { open, reopen, crash, faulty, fenced, storedEvents } = hooks

  describe(`store conformance: ${name}`, () => {
    test('a new store is empty', async () => {
      const store = await open(fresh(name))
      assert.deepEqual(await store.loadAll(), [])
      await store.close()
    })

    test('put, overwrite, delete, spaces apart, empty and binary values', async () => {
      const store = await open(fresh(name))
      await store.applyBatch([put('session', 'a@s.whatsapp.net', bytes(1, 2)), put('identity', 'a@s.whatsapp.net', bytes(3))])
      await store.applyBatch([put('session', 'a@s.whatsapp.net', bytes(0, 255, 0)), put('prekey', '7', bytes())])
      await store.applyBatch([del('identity', 'a@s.whatsapp.net'), del('identity', 'never-there')])
      await store.applyBatch([put('device', 'ключ ✓', bytes(9))])
      assert.deepEqual(await dump(store), ['device/ключ ✓=09', 'prekey/7=', 'session/a@s.whatsapp.net=00ff00'])
      await store.close()
    })

    test('load returns the records under the keys that exist', async () => {
      const store = await open(fresh(name))
      await store.applyBatch([put('session', 'a', bytes(1)), put('session', 'b', bytes(2)), put('identity', 'a', bytes(3))])
      const found = await store.load([{ space: 'session', key: 'b' }, { space: 'session', key: 'zz' }, { space: 'identity', key: 'a' }])
      assert.deepEqual(found.map((r) => `${r.space}/${r.key}=${r.value[0]}`).sort(), ['identity/a=3', 'session/b=2'])
      assert.deepEqual(await store.load([]), [])
      await assert.rejects(store.load([{ space: 'session' }]), { code: 'invalid_key' })
      await store.close()
    })

    test('loadSpaces returns every record of the given spaces and no other', async () => {
      const store = await open(fresh(name))
      await store.applyBatch([
        put('device', 'device', bytes(1)),
        put('session', 'a', bytes(2)),
        put('session', 'b', bytes(3)),
        put('sessions', 'x', bytes(4)),
        put('sessio', 'y', bytes(5)),
        put('identity', 'a', bytes(6)),
        put('session', '', bytes(7)),
        put('session', '\uffff', bytes(8)),
      ])
      const pick = async (spaces) =>
        (await store.loadSpaces(spaces)).map((r) => `${r.space}/${r.key}=${r.value[0]}`).sort()
      assert.deepEqual(await pick(['session', 'device']), ['device/device=1', 'session/=7', 'session/a=2', 'session/b=3', 'session/\uffff=8'])
      assert.deepEqual(await pick(['session', 'session']), ['session/=7', 'session/a=2', 'session/b=3', 'session/\uffff=8'])
      assert.deepEqual(await pick(['nothing-here']), [])
      assert.deepEqual(await pick([]), [])
      const [loaded] = await store.loadSpaces(['device'])
      assert.ok(loaded.value instanceof Uint8Array, 'values load as Uint8Array')
      loaded.value[0] = 99
      assert.deepEqual(await pick(['device']), ['device/device=1'])
      await assert.rejects(store.loadSpaces('session'), { code: 'invalid_key' })
      await assert.rejects(store.loadSpaces([1]), { code: 'invalid_key' })
      await store.close()
    })

    test('deleteAll removes every record, and later changes of its batch still apply', async () => {
      const label = fresh(name)
      const store = await open(label)
      await store.applyBatch([put('device', 'device', bytes(1)), put('session', 'a', bytes(2))])
      await store.applyBatch([put('session', 'b', bytes(3)), { op: 'deleteAll' }, put('device', 'device', bytes(4))])
      assert.deepEqual(await dump(store), ['device/device=04'])
      if (reopen) {
        const again = await reopen(store, label)
        assert.deepEqual(await dump(again), ['device/device=04'])
        await again.close()
      } else {
        await store.close()
      }
    })

    test('changes inside one batch apply in order', async () => {
      const store = await open(fresh(name))
      await store.applyBatch([put('s', 'x', bytes(1)), del('s', 'x'), del('s', 'y'), put('s', 'y', bytes(2)), put('s', 'y', bytes(3))])
      assert.deepEqual(await dump(store), ['s/y=03'])
      await store.close()
    })

    test('a batch with a malformed change applies nothing and says why', async () => {
      const store = await open(fresh(name))
      await store.applyBatch([put('s', 'kept', bytes(1))])
      for (const bad of [
        { op: 'put', space: 's', key: 'k', value: [1, 2] },
        { op: 'upsert', space: 's', key: 'k', value: bytes(1) },
        { op: 'delete', space: '', key: 'k' },
        { op: 'delete', space: 's', key: 5 },
        null,
      ]) {
        await assert.rejects(store.applyBatch([put('s', 'a', bytes(2)), del('s', 'kept'), bad]), { name: 'StoreError', code: 'invalid_change' })
      }
      await assert.rejects(store.applyBatch('not a batch'), { code: 'invalid_change' })
      assert.deepEqual(await dump(store), ['s/kept=01'])
      await store.close()
    })

    test('values are copied in and out', async () => {
      const store = await open(fresh(name))
      const value = bytes(1, 2, 3)
      await store.applyBatch([put('s', 'k', value)])
      value[0] = 99
      const [loaded] = await store.loadAll()
      loaded.value[1] = 99
      assert.deepEqual(await dump(store), ['s/k=010203'])
      await store.close()
    })

    test('batches started without awaiting apply in call order', async () => {
      const store = await open(fresh(name))
      const pending = []
      for (let i = 0; i < 50; i++) pending.push(store.applyBatch([put('s', 'n', bytes(i)), put('s', `k${i}`, bytes(i))]))
      await Promise.all(pending)
      const records = await dump(store)
      assert.equal(records.length, 51)
      assert.ok(records.includes('s/n=31'))
      await store.close()
    })

    test('many records and a large value', async () => {
      const store = await open(fresh(name))
      const big = new Uint8Array(256 * 1024).map((_, i) => i * 7)
      const batch = [put('big', 'one', big)]
      for (let i = 0; i < 2000; i++) batch.push(put('session', `${i}.0@s.whatsapp.net`, bytes(i & 255, i >> 8)))
      await store.applyBatch(batch)
      const records = await store.loadAll()
      assert.equal(records.length, 2001)
      assert.deepEqual(records.find((r) => r.space === 'big').value, big)
      await store.close()
    })

    test('a closed store refuses work with code "closed"', async () => {
      const store = await open(fresh(name))
      await store.close()
      await assert.rejects(store.applyBatch([put('s', 'k', bytes(1))]), { code: 'closed' })
      await assert.rejects(store.loadAll(), { code: 'closed' })
      await assert.rejects(store.loadSpaces(['s']), { code: 'closed' })
    })

    if (reopen) {
      test('a reopened store holds exactly the applied batches', async () => {
        const label = fresh(name)
        let store = await open(label)
        const expected = new Map()
        for (let round = 0; round < 5; round++) {
          for (let i = 0; i < 20; i++) {
            const key = `k${(round * 7 + i) % 23}`
            const change = i % 5 === 4 ? del('s', key) : put('s', key, bytes(round, i))
            await store.applyBatch([change, put('round', 'last', bytes(round, i))])
            if (change.op === 'put') expected.set(key, change.value)
            else expected.delete(key)
          }
          store = await reopen(store, label)
          const want = [...expected].map(([k, v]) => `s/${k}=${Buffer.from(v).toString('hex')}`)
          want.push(`round/last=${Buffer.from([round, 19]).toString('hex')}`)
          assert.deepEqual(await dump(store), want.sort(), `after round ${round}`)
        }
        await store.close()
      })
    }

    if (crash) {
      test('a crash between batches loses nothing that was applied', async () => {
        const label = fresh(name)
        let store = await open(label)
        await store.applyBatch([put('s', 'a', bytes(1))])
        await store.applyBatch([put('s', 'b', bytes(2)), del('s', 'a')])
        store = await crash(store, label)
        assert.deepEqual(await dump(store), ['s/b=02'])
        await store.applyBatch([put('s', 'c', bytes(3))])
        store = await crash(store, label)
        assert.deepEqual(await dump(store), ['s/b=02', 's/c=03'])
        await store.close()
      })
    }

    if (faulty) {
      test('a write that fails part way applies none of its batch, and the store goes on', async () => {
        const label = fresh(name)
        const { store, failNext } = await faulty(label)
        await store.applyBatch([put('s', 'a', bytes(1))])
        failNext()
        await assert.rejects(store.applyBatch([put('s', 'b', new Uint8Array(4096).fill(2)), del('s', 'a')]), { name: 'StoreError' })
        assert.deepEqual(await dump(store), ['s/a=01'])
        await store.applyBatch([put('s', 'c', bytes(3))])
        assert.deepEqual(await dump(store), ['s/a=01', 's/c=03'])
        if (reopen) {
          const again = await reopen(store, label)
          assert.deepEqual(await dump(again), ['s/a=01', 's/c=03'])
          await again.close()
        } else {
          await store.close()
        }
      })
    }

    if (fenced) {
      test('a fenced store refuses every write with code "fenced" and applies nothing', async () => {
        const { store, takeOver } = await fenced(fresh(name))
        await store.applyBatch([put('s', 'a', bytes(1))])
        const successor = await takeOver()
        await assert.rejects(store.applyBatch([put('s', 'a', bytes(2)), put('s', 'b', bytes(3))]), { code: 'fenced' })
        await assert.rejects(store.applyBatch([{ op: 'deleteAll' }]), { code: 'fenced' })
        if (typeof store.applyEvents === 'function') await assert.rejects(store.applyEvents([{ type: 'state' }]), { code: 'fenced' })
        assert.deepEqual(await dump(successor), ['s/a=01'])
        await successor.applyBatch([put('s', 'c', bytes(4))])
        await assert.rejects(store.applyBatch([del('s', 'c')]), { code: 'fenced' })
        assert.deepEqual(await dump(successor), ['s/a=01', 's/c=04'])
        await successor.close()
      })
    }

    if (storedEvents) {
      test('events handed with a batch commit with it; a failed batch keeps neither', async () => {
        const event = (n) => ({ type: 'message', id: `m${n}`, chat: 'a@s.whatsapp.net', sender: 'a@s.whatsapp.net', timestamp: n })
        const ids = async (store) => (await storedEvents(store)).map((e) => e.id ?? e.type)
        const label = fresh(name)
        const { store, failNext } = faulty ? await faulty(label) : { store: await open(label), failNext: null }
        await store.applyBatch([put('s', 'a', bytes(1))], { events: [event(1), event(2)] })
        await store.applyBatch([put('s', 'b', bytes(2))], { events: [] })
        assert.deepEqual(await ids(store), ['m1', 'm2'])
        if (failNext) {
          failNext()
          await assert.rejects(store.applyBatch([put('s', 'c', bytes(3)), put('s', 'd', bytes(4))], { events: [event(3)] }), { name: 'StoreError' })
          assert.deepEqual(await ids(store), ['m1', 'm2'])
          assert.deepEqual(await dump(store), ['s/a=01', 's/b=02'])
        }
        if (typeof store.applyEvents === 'function') {
          await store.applyEvents([{ type: 'state', state: { kind: 'connected' } }, event(4)])
          assert.deepEqual(await ids(store), ['m1', 'm2', 'state', 'm4'])
        }
        await store.close()
      })
    }
  })
}
