package walink

import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import uniffi.walink_ffi.ClientConfig
import uniffi.walink_ffi.ClientEvent
import uniffi.walink_ffi.ClientState
import java.util.Collections

/** The coroutine driver on the real ffi Client, with a fake transport and logging stores. */
class DriverTest {
    private val seed = ByteArray(32) { it.toByte() }

    private class FakeTransport(val log: MutableList<String>) : Transport {
        val sent = Collections.synchronizedList(ArrayList<ByteArray>())
        val incoming = Channel<ByteArray?>(Channel.UNLIMITED)

        override suspend fun send(bytes: ByteArray) {
            sent.add(bytes)
            log.add("send ${bytes.size}")
        }

        override suspend fun receive(): ByteArray? = incoming.receive()

        override suspend fun close() {
            incoming.trySend(null)
        }
    }

    private class LoggingStore(val log: MutableList<String>) : Store {
        val inner = MemoryStore()
        var failNext = 0

        override suspend fun applyBatch(changes: List<Change>) {
            if (failNext > 0) {
                failNext--
                log.add("persist failed")
                throw StoreException("io", "disk full")
            }
            delay(10)
            inner.applyBatch(changes)
            log.add("persist " + changes.filterIsInstance<Change.Put>().map { it.space }.toSortedSet().joinToString(","))
        }

        override suspend fun loadAll() = inner.loadAll()

        override suspend fun load(keys: List<RecordKey>) = inner.load(keys)
    }

    private class Harness(seed: ByteArray) {
        val log: MutableList<String> = Collections.synchronizedList(ArrayList())
        val transports = Collections.synchronizedList(ArrayList<FakeTransport>())
        val events = Collections.synchronizedList(ArrayList<ClientEvent>())
        val errors = Collections.synchronizedList(ArrayList<Throwable>())
        val store = LoggingStore(log)
        val config = ClientConfig(unsafeTestRngSeed = seed)
        val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)

        suspend fun start() = Driver.start(
            store = store,
            config = config,
            parent = scope,
            transport = TransportFactory { _ ->
                log.add("open")
                FakeTransport(log).also { transports.add(it) }
            },
            url = "ws://test",
            onEvent = { events.add(it) },
            onError = { errors.add(it) },
        )
    }

    private suspend fun waitFor(timeoutMs: Long = 5000, predicate: () -> Boolean) {
        withTimeout(timeoutMs) {
            while (!predicate()) delay(10)
        }
    }

    @Test
    fun deviceIsPersistedBeforeTheSocketOpensAndBeforeAnythingIsSent() = runBlocking {
        val h = Harness(seed)
        val driver = h.start()
        waitFor { h.log.any { it.startsWith("send") } }
        val log = synchronized(h.log) { h.log.toList() }
        assertTrue(log[0].startsWith("persist device"), log.toString())
        assertTrue(log.indexOf("open") < log.indexOfFirst { it.startsWith("send") })
        assertEquals(listOf<Byte>(0x57, 0x41, 6, 3), h.transports[0].sent[0].take(4))
        driver.close()
        assertEquals(null, driver.ended.await())
        h.scope.cancel()
    }

    @Test
    fun storeThatThrowsDropsTheClientAndRebuildsItFromTheStore() = runBlocking {
        val h = Harness(seed)
        h.store.failNext = 1
        val driver = h.start()
        waitFor { h.log.any { it.startsWith("send") } }
        assertEquals("persist failed", h.log[0])
        assertTrue(h.log[1].startsWith("persist device"), h.log.toString())
        assertEquals(listOf("store_failed"), h.errors.map { (it as DriverException).code })
        assertTrue(h.store.loadAll().any { it.space == "device" })
        driver.close()
        h.scope.cancel()
    }

    @Test
    fun socketClosedMidFrameReconnectsAndLosesNothing() = runBlocking {
        val h = Harness(seed)
        val driver = h.start()
        waitFor { h.transports.isNotEmpty() && h.transports[0].sent.isNotEmpty() }
        val before = h.store.loadAll()
        h.transports[0].incoming.send(byteArrayOf(0, 1))
        h.transports[0].incoming.send(null)
        waitFor { h.events.any { it is ClientEvent.State && it.state is ClientState.Reconnecting } }
        waitFor(10_000) { h.transports.size == 2 && h.transports[1].sent.isNotEmpty() }
        assertEquals(before, h.store.loadAll())
        driver.close()
        h.scope.cancel()
    }

    @Test
    fun commandInTheWrongStateThrowsATypedError() = runBlocking {
        val h = Harness(seed)
        val driver = h.start()
        assertEquals("invalid_phone_number", assertThrows<DriverException> { runBlocking { driver.pairWithCode("12") } }.code)
        driver.close()
        assertEquals("ended", assertThrows<DriverException> { runBlocking { driver.sendText("1@s.whatsapp.net", "hi") } }.code)
        h.scope.cancel()
    }
}
