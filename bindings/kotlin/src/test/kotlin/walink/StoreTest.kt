package walink

import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.attribute.PosixFilePermissions
import java.util.concurrent.TimeUnit
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import org.junit.jupiter.api.io.TempDir
import org.junit.jupiter.params.ParameterizedTest
import org.junit.jupiter.params.provider.ValueSource

/** The store conformance suite (MemoryStore, FileStore) and what only a file store can suffer. */
class StoreTest {
    @TempDir
    lateinit var tmp: Path

    private fun put(space: String, key: String, vararg value: Int) = Change.Put(space, key, ByteArray(value.size) { value[it].toByte() })

    private fun del(space: String, key: String) = Change.Delete(space, key)

    private suspend fun dump(store: Store): List<String> =
        store.loadAll().map { r -> "${r.space}/${r.key}=" + r.value.joinToString("") { "%02x".format(it) } }.sorted()

    private fun open(kind: String, label: String = "a"): Store = when (kind) {
        "memory" -> MemoryStore()
        "file" -> FileStore(tmp.resolve(label))
        "file-compacting" -> FileStore(tmp.resolve(label), compactBytes = 64)
        else -> error(kind)
    }

    private suspend fun close(store: Store) {
        when (store) {
            is MemoryStore -> store.close()
            is FileStore -> store.close()
        }
    }

    @ParameterizedTest
    @ValueSource(strings = ["memory", "file", "file-compacting"])
    fun conformance(kind: String) = runBlocking {
        val store = open(kind)
        assertEquals(emptyList<String>(), dump(store))
        store.applyBatch(listOf(put("session", "a@s.whatsapp.net", 1, 2), put("identity", "a@s.whatsapp.net", 3)))
        store.applyBatch(listOf(put("session", "a@s.whatsapp.net", 0, 255, 0), put("prekey", "7")))
        store.applyBatch(listOf(del("identity", "a@s.whatsapp.net"), del("identity", "never-there")))
        store.applyBatch(listOf(put("device", "ключ ✓", 9)))
        assertEquals(listOf("device/ключ ✓=09", "prekey/7=", "session/a@s.whatsapp.net=00ff00"), dump(store))

        // load returns the records that exist.
        assertEquals(
            listOf(Record("prekey", "7", ByteArray(0))),
            store.loadAll().filter { it.space == "prekey" },
        )
        assertEquals(listOf(Record("device", "ключ ✓", byteArrayOf(9))), store.load(listOf(RecordKey("device", "ключ ✓"), RecordKey("device", "zz"))))

        // Changes inside one batch apply in order.
        store.applyBatch(listOf(put("s", "x", 1), del("s", "x"), del("s", "y"), put("s", "y", 2), put("s", "y", 3)))
        assertTrue(dump(store).contains("s/y=03") && dump(store).none { it.startsWith("s/x") })

        // A malformed change applies nothing of its batch.
        val before = dump(store)
        for (bad in listOf(put("", "k"), put("a\u0000b", "k"))) {
            val error = assertThrows<StoreException> { runBlocking { store.applyBatch(listOf(put("s", "new", 1), del("s", "y"), bad)) } }
            assertEquals("invalid_change", error.code)
        }
        assertEquals(before, dump(store))

        // Values are copied in and out.
        val value = byteArrayOf(1, 2, 3)
        store.applyBatch(listOf(Change.Put("c", "k", value)))
        value[0] = 99
        store.loadAll().first { it.space == "c" }.value[1] = 99
        assertTrue(dump(store).contains("c/k=010203"))

        // Concurrent callers apply in call order.
        (0 until 50).map { i -> async { store.applyBatch(listOf(put("n", "n", i), put("n", "k$i", i))) } }.awaitAll()
        assertEquals(51, dump(store).count { it.startsWith("n/") })

        // DeleteAll clears everything, and later changes of its batch still apply.
        store.applyBatch(listOf(put("x", "1", 1), Change.DeleteAll, put("device", "device", 4)))
        assertEquals(listOf("device/device=04"), dump(store))
        if (store is FileStore) {
            store.close()
            assertEquals(listOf("device/device=04"), dump(open(kind)))
        }

        close(store)
        assertEquals("closed", assertThrows<StoreException> { runBlocking { store.loadAll() } }.code)
        assertEquals("closed", assertThrows<StoreException> { runBlocking { store.applyBatch(listOf(put("s", "k"))) } }.code)
    }

    @ParameterizedTest
    @ValueSource(strings = ["file", "file-compacting"])
    fun reopenHoldsExactlyTheAppliedBatches(kind: String) = runBlocking {
        val expected = HashMap<String, String>()
        var store = open(kind)
        for (round in 0 until 5) {
            for (i in 0 until 20) {
                val key = "k${(round * 7 + i) % 23}"
                if (i % 5 == 4) {
                    store.applyBatch(listOf(del("s", key), put("round", "last", round, i)))
                    expected.remove(key)
                } else {
                    store.applyBatch(listOf(put("s", key, round, i), put("round", "last", round, i)))
                    expected[key] = "%02x%02x".format(round, i)
                }
            }
            close(store)
            store = open(kind)
            val want = expected.map { (k, v) -> "s/$k=$v" } + "round/last=%02x13".format(round)
            assertEquals(want.sorted(), dump(store))
        }
    }

    @Test
    fun aFailedCompactionKeepsTheBatchAndTheStoreHeals() = runBlocking {
        // The disk fails under the store: a directory stands where the temporary snapshot goes.
        // (A write that fails part way is the Rust store's own test, with injected faults.)
        val store = FileStore(tmp.resolve("f"), compactBytes = 64)
        store.applyBatch(listOf(put("s", "a", 1)))
        Files.createDirectory(tmp.resolve("f/snapshot.tmp"))
        val error = assertThrows<StoreException> { runBlocking { store.applyBatch(listOf(put("s", "b", *IntArray(100) { 2 }))) } }
        assertEquals("io", error.code)
        Files.delete(tmp.resolve("f/snapshot.tmp"))
        // The batch was synced before the compaction: it is there, and the store goes on.
        store.applyBatch(listOf(put("s", "c", 3)))
        store.close()
        assertEquals(listOf("s/a=01", "s/b=" + "02".repeat(100), "s/c=03"), dump(FileStore(tmp.resolve("f"))))
    }

    @Test
    fun theFilesAreTheOwnersOnly() = runBlocking {
        val dir = tmp.resolve("p/nested")
        val store = FileStore(dir, compactBytes = 64)
        store.applyBatch(listOf(put("device", "device", *IntArray(100) { 7 })))
        store.close()
        val mode = { path: Path -> PosixFilePermissions.toString(Files.getPosixFilePermissions(path)) }
        assertEquals("rwx------", mode(tmp.resolve("p")))
        assertEquals("rwx------", mode(dir))
        assertEquals("rw-------", mode(dir.resolve("wal")))
        assertEquals("rw-------", mode(dir.resolve("snapshot")))
    }

    private suspend fun threeBatches(dir: Path): ByteArray {
        val store = FileStore(dir)
        store.applyBatch(listOf(put("s", "a", 1)))
        store.applyBatch(listOf(put("s", "b", 2)))
        store.applyBatch(listOf(put("s", "c", *IntArray(100) { 3 }), del("s", "a")))
        store.close()
        return Files.readAllBytes(dir.resolve("wal"))
    }

    @Test
    fun everyTornTailIsCutOff() = runBlocking {
        val dir = tmp.resolve("t")
        val wal = threeBatches(dir)
        val secondEnd = wal.size - (8 + 4 + 1 + 4 + 1 + 4 + 1 + 4 + 100 + 1 + 4 + 1 + 4 + 1)
        for (cut in secondEnd until wal.size step 7) {
            Files.write(dir.resolve("wal"), wal.copyOf(cut))
            val store = FileStore(dir)
            assertEquals(listOf("s/a=01", "s/b=02"), dump(store), "cut at $cut")
            assertEquals(secondEnd.toLong(), Files.size(dir.resolve("wal")))
            store.close()
        }
    }

    @Test
    fun damageBeforeTheLastFrameIsCorruption() = runBlocking {
        val dir = tmp.resolve("c")
        val wal = threeBatches(dir)
        wal[20] = (wal[20].toInt() xor 0xff).toByte()
        Files.write(dir.resolve("wal"), wal)
        assertEquals("corrupt", assertThrows<StoreException> { FileStore(dir) }.code)
    }

    @Test
    fun leftoverSnapshotTmpIsDiscarded() = runBlocking {
        val dir = tmp.resolve("s")
        threeBatches(dir)
        Files.write(dir.resolve("snapshot.tmp"), "half a snapshot".toByteArray())
        val store = FileStore(dir)
        assertEquals(2, store.loadAll().size)
        assertFalse(Files.exists(dir.resolve("snapshot.tmp")))
    }

    @Test
    fun readsADirectoryWrittenByTheNpmFileStore() = runBlocking {
        val module = Path.of(System.getProperty("user.dir")).resolve("../../npm/src/file-store.js").normalize().toUri()
        val script = """
            import { FileStore } from '$module'
            const store = await FileStore.open(process.argv[1], { compactBytes: 200 })
            for (let i = 0; i < 30; i++) await store.applyBatch([{ op: 'put', space: 'session', key: 'k' + i, value: new Uint8Array([i, i]) }])
            await store.applyBatch([{ op: 'delete', space: 'session', key: 'k3' }])
            await store.close()
        """
        val dir = tmp.resolve("n")
        val node = ProcessBuilder("node", "--input-type=module", "-e", script, dir.toString()).inheritIO().start()
        assertTrue(node.waitFor(60, TimeUnit.SECONDS))
        assertEquals(0, node.exitValue())
        val want = (0 until 30).filter { it != 3 }.map { "session/k$it=%02x%02x".format(it, it) }.sorted()
        assertEquals(want, dump(FileStore(dir)))
    }
}
