// The streamed media crypto of the npm package, without a server: Node's native provider
// (node:crypto under the core's expanded keys) and the core's wasm encryptor and decryptor give
// the same bytes and hashes for any split of the input, decrypt what Baileys' `encryptedStream`
// wrote (hashes equal to Baileys'), refuse every tampered, truncated or oversized file with a
// typed code, and the FileMediaHost releases a sink only when asked to commit it.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { test } from 'node:test'

import { encryptedStream, getMediaKeys } from 'baileys'

import { FileMediaHost, mediaKeys, newMediaKey, nodeMediaCrypto, wasmMediaCrypto } from 'walink'
import * as wasm from '../wasm/walink_wasm.js'

const providers = [nodeMediaCrypto(), wasmMediaCrypto(wasm)]

/** Splits `bytes` into pieces of random sizes (some under the MAC's 10 bytes). */
function split(bytes, seed) {
  const pieces = []
  let state = seed
  for (let at = 0; at < bytes.length; ) {
    state = (state * 1103515245 + 12345) & 0x7fffffff
    const size = [1, 3, 9, 10, 11, 16, 17, 4096, 65_536][state % 9]
    pieces.push(bytes.subarray(at, at + size))
    at += size
  }
  return pieces
}

function encryptWith(provider, mediaKey, mediaType, plain, seed) {
  const encryptor = provider.encryptor({ mediaKey, mediaType, ...mediaKeys(mediaKey, mediaType) })
  const parts = split(plain, seed).map((piece) => Buffer.from(encryptor.update(piece)))
  const { tail, ...hashes } = encryptor.finish()
  parts.push(Buffer.from(tail))
  return { file: Buffer.concat(parts), hashes }
}

function decryptWith(provider, mediaKey, mediaType, file, seed, maxBytes = file.length) {
  const decryptor = provider.decryptor({ mediaKey, mediaType, ...mediaKeys(mediaKey, mediaType) }, maxBytes)
  const parts = split(file, seed).map((piece) => Buffer.from(decryptor.update(piece)))
  const { tail, ...hashes } = decryptor.finish()
  parts.push(Buffer.from(tail))
  return { plain: Buffer.concat(parts), hashes }
}

const hex = (bytes) => Buffer.from(bytes).toString('hex')

test("native and wasm crypto agree for every length and split, and with Baileys' keys", async () => {
  for (const length of [0, 1, 15, 16, 17, 31, 4097, 65_536 + 3, 300_001]) {
    const plain = randomBytes(length)
    const mediaKey = newMediaKey()
    assert.equal(mediaKey.length, 32)
    const theirs = await getMediaKeys(mediaKey, 'video')
    const ours = mediaKeys(mediaKey, 'gif')
    assert.equal(hex(ours.iv), hex(theirs.iv))
    assert.equal(hex(ours.cipherKey), hex(theirs.cipherKey))
    assert.equal(hex(ours.macKey), hex(theirs.macKey))
    const [native, inWasm] = providers.map((p, i) => encryptWith(p, mediaKey, 'video', plain, length + i))
    assert.ok(native.file.equals(inWasm.file), `${length}`)
    assert.deepEqual({ ...native.hashes }, { ...inWasm.hashes, fileSha256: Buffer.from(inWasm.hashes.fileSha256), fileEncSha256: Buffer.from(inWasm.hashes.fileEncSha256) })
    assert.equal(native.hashes.fileLength, length)
    for (const provider of providers) {
      const back = decryptWith(provider, mediaKey, 'video', native.file, length * 7)
      assert.ok(back.plain.equals(plain), `${provider.name} ${length}`)
      assert.equal(hex(back.hashes.fileEncSha256), hex(native.hashes.fileEncSha256))
      assert.equal(hex(back.hashes.fileSha256), hex(native.hashes.fileSha256))
    }
  }
})

test("Baileys' encryptedStream files decrypt with both providers, hashes equal", async () => {
  for (const [length, type] of [[1, 'image'], [70_000, 'document'], [250_003, 'audio']]) {
    const plain = randomBytes(length)
    const theirs = await encryptedStream(plain, type)
    try {
      const file = await readFile(theirs.encFilePath)
      for (const provider of providers) {
        const back = decryptWith(provider, theirs.mediaKey, type, file, length)
        assert.ok(back.plain.equals(plain), `${provider.name} ${type}`)
        assert.equal(hex(back.hashes.fileSha256), hex(theirs.fileSha256))
        assert.equal(hex(back.hashes.fileEncSha256), hex(theirs.fileEncSha256))
        assert.equal(back.hashes.fileLength, theirs.fileLength)
      }
    } finally {
      await rm(theirs.encFilePath, { force: true })
    }
  }
})

test('tampered, truncated and oversized files are refused with a typed code', () => {
  const mediaKey = newMediaKey()
  const plain = randomBytes(5_000)
  const { file } = encryptWith(providers[0], mediaKey, 'image', plain, 1)
  for (const provider of providers) {
    for (const at of [0, 15, 16, 2_000, file.length - 11, file.length - 10, file.length - 1]) {
      const bad = Buffer.from(file)
      bad[at] ^= 1
      assert.throws(() => decryptWith(provider, mediaKey, 'image', bad, at), (e) => e.code === 'mac_mismatch', `${provider.name} ${at}`)
    }
    for (const cut of [0, 5, 10, 25, file.length - 1]) {
      assert.throws(() => decryptWith(provider, mediaKey, 'image', file.subarray(0, cut), cut), (e) => ['invalid_length', 'mac_mismatch'].includes(e.code), `${provider.name} cut ${cut}`)
    }
    assert.throws(() => decryptWith(provider, mediaKey, 'image', file, 3, file.length - 1), (e) => e.code === 'too_large', provider.name)
    assert.throws(() => decryptWith(provider, mediaKey, 'video', file, 3), (e) => e.code === 'mac_mismatch', provider.name)
  }
})

test('a FileMediaHost encrypts a stream into a file, and releases a sink only on commit', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'walink-test-'))
  try {
    for (const crypto of providers) {
      const host = new FileMediaHost({ crypto, core: wasm, directory })
      const plain = randomBytes(200_000)
      const body = await host.prepareUpload(Readable.from(split(plain, 5)), 'ptt')
      const chunks = []
      for await (const chunk of host.openBody(body.id)) chunks.push(chunk)
      const file = Buffer.concat(chunks)
      assert.equal(file.length, Math.floor(plain.length / 16) * 16 + 16 + 10)
      assert.equal(body.fileLength, plain.length)
      const decrypt = { mediaKey: body.mediaKey, mediaType: 'audio', ...mediaKeys(body.mediaKey, 'audio') }
      const answer = (bytes) => Readable.from(split(bytes, 9))

      const good = await host.newSink()
      const streamed = await host.decryptInto({ ...decrypt, sink: good }, answer(file), file.length)
      assert.equal(hex(streamed.fileEncSha256), hex(body.fileEncSha256))
      assert.equal(hex(streamed.fileSha256), hex(body.fileSha256))
      const target = join(directory, `out-${crypto.name.replace(':', '')}`)
      await host.commitSink(good, target)
      assert.ok((await readFile(target)).equals(plain))

      const tampered = Buffer.from(file)
      tampered[100] ^= 1
      const bad = await host.newSink()
      assert.deepEqual(await host.decryptInto({ ...decrypt, sink: bad }, answer(tampered), file.length), { error: 'mac_mismatch' })
      await assert.rejects(host.decryptInto({ ...decrypt, sink: bad }, answer(file), file.length - 1), (e) => e.code === 'too_large')
      await host.discardSink(bad)
      await host.releaseBody(body.id)
      await assert.rejects(host.prepareUpload(42, 'image'), (e) => e.code === 'invalid_media_source')
      await host.dispose()
    }
    // Only the committed files are left.
    assert.deepEqual((await readdir(directory)).sort(), ['out-nodecrypto', 'out-wasm'])
  } finally {
    await rm(directory, { recursive: true, force: true })
  }
})

test('a FileMediaHost calls the host\'s collector every 2 MiB it moves', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'walink-test-'))
  try {
    let calls = 0
    const host = new FileMediaHost({ crypto: providers[0], core: wasm, directory, gc: () => calls++ })
    const body = await host.prepareUpload(randomBytes(5 * 1024 * 1024 + 7), 'video')
    assert.equal(calls, 2)
    await host.releaseBody(body.id)
    await host.dispose()
  } finally {
    await rm(directory, { recursive: true, force: true })
  }
})

