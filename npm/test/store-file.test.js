// The file store: the conformance suite, then what only a file store can suffer: torn and damaged
// files, failing file systems, compaction interrupted at each step, and a process killed mid-write.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import * as fs from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'

import { FileStore } from '../src/file-store.js'
import { StoreError } from '../src/store.js'
import { dump, storeConformance } from './support/store-conformance.js'

const root = await fs.mkdtemp(join(tmpdir(), 'walink-filestore-'))
after(() => fs.rm(root, { recursive: true, force: true }))
const dirOf = (label) => join(root, label)
const bytes = (...values) => new Uint8Array(values)
const put = (space, key, value) => ({ op: 'put', space, key, value })

/** A node:fs/promises stand-in whose next file write stops half way and throws. */
function faultyFs() {
  let failNext = false
  let failTruncate = false
  const wrap = (handle) =>
    new Proxy(handle, {
      get(target, prop) {
        if (prop === 'write') {
          return async (buffer, offset, length) => {
            if (failNext) {
              failNext = false
              await target.write(buffer, offset, Math.floor(length / 2))
              throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' })
            }
            return target.write(buffer, offset, length)
          }
        }
        if (prop === 'truncate') {
          return async (length) => {
            if (failTruncate) {
              failTruncate = false
              throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' })
            }
            return target.truncate(length)
          }
        }
        const value = target[prop]
        return typeof value === 'function' ? value.bind(target) : value
      },
    })
  return {
    fs: { ...fs, open: async (...args) => wrap(await fs.open(...args)) },
    failNext: () => (failNext = true),
    failTruncate: () => (failTruncate = true),
  }
}

for (const compactBytes of [1 << 20, 64]) {
  const options = { compactBytes }
  storeConformance(`FileStore (compactBytes ${compactBytes})`, {
    open: (label) => FileStore.open(dirOf(label), options),
    reopen: async (store, label) => {
      await store.close()
      return FileStore.open(dirOf(label), options)
    },
    // close() writes nothing, so closing the dropped store after the reopen leaves the files as a
    // crash would; it only spares the file handle from the garbage collector.
    crash: async (dropped, label) => {
      const store = await FileStore.open(dirOf(label), options)
      await dropped.close()
      return store
    },
    faulty: async (label) => {
      const faults = faultyFs()
      const store = await FileStore.open(dirOf(label), { ...options, fs: faults.fs })
      return { store, failNext: faults.failNext }
    },
  })
}

describe('FileStore on damaged files', () => {
  async function threeBatches(label) {
    const store = await FileStore.open(dirOf(label))
    await store.applyBatch([put('s', 'a', bytes(1))])
    await store.applyBatch([put('s', 'b', bytes(2))])
    await store.applyBatch([put('s', 'c', new Uint8Array(100).fill(3)), { op: 'delete', space: 's', key: 'a' }])
    await store.close()
    return fs.readFile(join(dirOf(label), 'wal'))
  }

  test('every torn tail of the last frame is cut off on open', async () => {
    const wal = await threeBatches('torn')
    const secondEnd = wal.length - (8 + 4 + 1 + 4 + 1 + 4 + 1 + 4 + 100 + 1 + 4 + 1 + 4 + 1)
    for (let cut = secondEnd; cut < wal.length; cut += 7) {
      await fs.writeFile(join(dirOf('torn'), 'wal'), wal.subarray(0, cut))
      const store = await FileStore.open(dirOf('torn'))
      assert.deepEqual(await dump(store), ['s/a=01', 's/b=02'], `cut at ${cut}`)
      assert.equal((await fs.stat(join(dirOf('torn'), 'wal'))).size, secondEnd)
      await store.applyBatch([put('s', 'd', bytes(4))])
      await store.close()
      const again = await FileStore.open(dirOf('torn'))
      assert.deepEqual(await dump(again), ['s/a=01', 's/b=02', 's/d=04'])
      await again.close()
    }
  })

  test('a whole-length last frame with zeroed bytes is a torn write', async () => {
    const wal = await threeBatches('zeroed')
    const damaged = Buffer.from(wal)
    damaged.fill(0, wal.length - 50)
    await fs.writeFile(join(dirOf('zeroed'), 'wal'), damaged)
    const store = await FileStore.open(dirOf('zeroed'))
    assert.deepEqual(await dump(store), ['s/a=01', 's/b=02'])
    await store.close()
  })

  test('a zero-filled tail after the last frame (length on disk, data not) is a torn write', async () => {
    const wal = await threeBatches('zero-tail')
    await fs.writeFile(join(dirOf('zero-tail'), 'wal'), Buffer.concat([Buffer.from(wal), Buffer.alloc(40)]))
    const store = await FileStore.open(dirOf('zero-tail'))
    assert.equal((await dump(store)).length, 2)
    await store.close()
    assert.equal((await fs.stat(join(dirOf('zero-tail'), 'wal'))).size, wal.length)
  })

  test('damage before the last frame is corruption, not a torn write', async () => {
    const wal = await threeBatches('corrupt')
    const damaged = Buffer.from(wal)
    damaged[20] ^= 0xff
    await fs.writeFile(join(dirOf('corrupt'), 'wal'), damaged)
    await assert.rejects(FileStore.open(dirOf('corrupt')), (e) => e instanceof StoreError && e.code === 'corrupt')
  })

  test('a damaged snapshot is corruption', async () => {
    const store = await FileStore.open(dirOf('snap'), { compactBytes: 1 })
    await store.applyBatch([put('s', 'a', bytes(1))])
    await store.close()
    const snapshot = await fs.readFile(join(dirOf('snap'), 'snapshot'))
    snapshot[snapshot.length - 1] ^= 1
    await fs.writeFile(join(dirOf('snap'), 'snapshot'), snapshot)
    await assert.rejects(FileStore.open(dirOf('snap')), { code: 'corrupt' })
    await fs.writeFile(join(dirOf('snap'), 'snapshot'), Buffer.from('not a snapshot'))
    await assert.rejects(FileStore.open(dirOf('snap')), { code: 'corrupt' })
  })
})

describe('FileStore compaction interrupted', () => {
  test('a leftover snapshot.tmp is discarded', async () => {
    const store = await FileStore.open(dirOf('tmp'))
    await store.applyBatch([put('s', 'a', bytes(1))])
    await store.close()
    await fs.writeFile(join(dirOf('tmp'), 'snapshot.tmp'), Buffer.from('half a snapshot'))
    const again = await FileStore.open(dirOf('tmp'))
    assert.deepEqual(await dump(again), ['s/a=01'])
    await assert.rejects(fs.stat(join(dirOf('tmp'), 'snapshot.tmp')), { code: 'ENOENT' })
    await again.close()
  })

  test('a crash after the rename, before the wal is emptied, replays to the same records', async () => {
    const dir = dirOf('replay')
    const store = await FileStore.open(dir, { compactBytes: 1 << 20 })
    await store.applyBatch([put('s', 'a', bytes(1)), put('s', 'b', bytes(2))])
    await store.applyBatch([{ op: 'delete', space: 's', key: 'a' }, put('s', 'b', bytes(3))])
    await store.close()
    const wal = await fs.readFile(join(dir, 'wal'))
    const compacting = await FileStore.open(dir, { compactBytes: 1 })
    await compacting.applyBatch([put('s', 'c', bytes(4))])
    await compacting.close()
    assert.equal((await fs.stat(join(dir, 'wal'))).size, 0)
    // Put back the wal as it was before the compaction emptied it (plus the last batch's frame).
    const frameOfC = (await FileStore.open(dirOf('c-only'))).applyBatch([put('s', 'c', bytes(4))])
    await frameOfC
    const cFrame = await fs.readFile(join(dirOf('c-only'), 'wal'))
    await fs.writeFile(join(dir, 'wal'), Buffer.concat([wal, cFrame]))
    const again = await FileStore.open(dir)
    assert.deepEqual(await dump(again), ['s/b=03', 's/c=04'])
    await again.close()
  })

  test('a failed wal truncation after a failed write is repaired before the next batch', async () => {
    const faults = faultyFs()
    const store = await FileStore.open(dirOf('repair'), { fs: faults.fs })
    await store.applyBatch([put('s', 'a', bytes(1))])
    faults.failNext()
    faults.failTruncate()
    await assert.rejects(store.applyBatch([put('s', 'b', new Uint8Array(1000))]), { code: 'io' })
    await store.applyBatch([put('s', 'c', bytes(3))])
    assert.deepEqual(await dump(store), ['s/a=01', 's/c=03'])
    await store.close()
    const again = await FileStore.open(dirOf('repair'))
    assert.deepEqual(await dump(again), ['s/a=01', 's/c=03'])
    await again.close()
  })
})

describe('FileStore in a process that is killed', () => {
  // A child applies batch i = 1, 2, ... (each: counter n = i, record k<i>, and every 10th batch
  // deletes k<i-5>), printing i once applyBatch resolved; it is SIGKILLed at a random moment.
  const child = `
    import { FileStore } from ${JSON.stringify(new URL('../src/file-store.js', import.meta.url).href)}
    const store = await FileStore.open(process.argv[1], { compactBytes: 4096 })
    const n = (i) => new Uint8Array(new Uint32Array([i]).buffer)
    for (let i = 1; ; i++) {
      const batch = [{ op: 'put', space: 'c', key: 'n', value: n(i) }, { op: 'put', space: 'k', key: 'k' + i, value: new Uint8Array(i % 300).fill(i) }]
      if (i % 10 === 0) batch.push({ op: 'delete', space: 'k', key: 'k' + (i - 5) })
      await store.applyBatch(batch)
      process.stdout.write(i + '\\n')
    }
  `

  for (let run = 0; run < 4; run++) {
    test(`kill ${run + 1}: the reopened store is exactly the batches up to one in flight`, async () => {
      const dir = dirOf(`killed-${run}`)
      for (let life = 0; life < 2; life++) {
        const proc = spawn(process.execPath, ['--input-type=module', '-e', child, dir], { stdio: ['ignore', 'pipe', 'inherit'] })
        let acknowledged = 0
        let buffered = ''
        proc.stdout.on('data', (data) => {
          buffered += data
          const lines = buffered.split('\n')
          buffered = lines.pop()
          if (lines.length) acknowledged = Number(lines.at(-1))
        })
        const killAt = 20 + Math.floor(Math.random() * 300)
        await new Promise((resolve) => {
          const poll = setInterval(() => {
            if (acknowledged >= killAt) {
              clearInterval(poll)
              proc.kill('SIGKILL')
              resolve()
            }
          }, 1)
        })
        // 'close', not 'exit': every line the child wrote before it died has been read by then.
        await new Promise((resolve) => proc.on('close', resolve))
        // On the second life the counter keeps growing from where the store says it is.
        const store = await FileStore.open(dir)
        const records = await store.loadAll()
        await store.close()
        const counter = records.find((r) => r.space === 'c')
        if (life === 1) break
        const last = new Uint32Array(counter.value.slice().buffer)[0]
        assert.ok(last >= acknowledged && last <= acknowledged + 1, `store at ${last}, acknowledged ${acknowledged}`)
        const keys = new Set(records.filter((r) => r.space === 'k').map((r) => r.key))
        for (let i = 1; i <= last; i++) {
          const deleted = i + 5 <= last && (i + 5) % 10 === 0
          assert.equal(keys.has(`k${i}`), !deleted, `k${i} with the store at ${last}`)
        }
        assert.equal(keys.size, records.length - 1)
        for (const r of records.filter((r) => r.space === 'k')) {
          const i = Number(r.key.slice(1))
          assert.ok(i <= last)
          assert.deepEqual(r.value, new Uint8Array(i % 300).fill(i))
        }
      }
    })
  }
})

test('the files are the owner\'s only: directory 0700, files 0600, wider ones narrowed', { skip: process.platform === 'win32' }, async () => {
  const dir = join(dirOf('permissions'), 'nested')
  const store = await FileStore.open(dir, { compactBytes: 64 })
  await store.applyBatch([put('device', 'device', new Uint8Array(100))])
  const mode = async (path) => (await fs.stat(path)).mode & 0o777
  assert.equal(await mode(dir), 0o700)
  assert.equal(await mode(dirOf('permissions')), 0o700)
  assert.equal(await mode(join(dir, 'wal')), 0o600)
  assert.equal(await mode(join(dir, 'snapshot')), 0o600)
  await store.close()
  await fs.chmod(join(dir, 'wal'), 0o644)
  await fs.chmod(join(dir, 'snapshot'), 0o644)
  await (await FileStore.open(dir)).close()
  assert.equal(await mode(join(dir, 'wal')), 0o600)
  assert.equal(await mode(join(dir, 'snapshot')), 0o600)
})
