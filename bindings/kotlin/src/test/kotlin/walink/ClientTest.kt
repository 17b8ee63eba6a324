package walink

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import uniffi.walink_ffi.Client
import uniffi.walink_ffi.ClientConfig
import uniffi.walink_ffi.ClientEvent
import uniffi.walink_ffi.CloseReason
import uniffi.walink_ffi.ClientState
import uniffi.walink_ffi.Command
import uniffi.walink_ffi.CommandError
import uniffi.walink_ffi.CommandResult
import uniffi.walink_ffi.Output
import uniffi.walink_ffi.StoreChange
import uniffi.walink_ffi.StoreRecord
import uniffi.walink_ffi.WalinkException

/** The ffi Client from Kotlin: outputs of a fresh and a restored client, typed errors. */
class ClientTest {
    private val seed = ByteArray(32) { it.toByte() }
    private val now = 1_760_000_000_000uL

    private fun config() = ClientConfig(unsafeTestRngSeed = seed)

    private fun drain(client: Client): List<Output> = generateSequence { client.pollOutput() }.toList()

    private fun persisted(outputs: List<Output>): List<StoreRecord> {
        val records = LinkedHashMap<Pair<String, String>, ByteArray>()
        for (output in outputs.filterIsInstance<Output.Persist>()) {
            for (change in output.changes) {
                when (change) {
                    is StoreChange.Put -> records[change.space to change.key] = change.value
                    is StoreChange.Delete -> records.remove(change.space to change.key)
                    is StoreChange.DeleteAll -> records.clear()
                }
            }
        }
        return records.map { (id, value) -> StoreRecord(id.first, id.second, value) }
    }

    @Test
    fun freshClientPersistsItsDeviceBeforeItConnects() {
        Client(config(), emptyList()).use { client ->
            val outputs = drain(client)
            val persist = outputs.indexOfFirst { it is Output.Persist }
            val connect = outputs.indexOfFirst { it is Output.Connect }
            assertTrue(persist in 0 until connect, "persist before connect: $outputs")
            assertTrue(persisted(outputs).any { it.space == "device" })
        }
    }

    @Test
    fun restoredClientConnectsWithTheSameDevice() {
        val records = Client(config(), emptyList()).use { persisted(drain(it)) }
        Client(config(), records).use { client ->
            val outputs = drain(client)
            assertTrue(outputs.any { it is Output.Connect })
            assertTrue(persisted(outputs).none { it.space == "device" })
            client.handleConnected(now)
            val first = drain(client).filterIsInstance<Output.Transmit>().first()
            assertEquals(listOf<Byte>(0x57, 0x41, 6, 3), first.bytes.take(4))
            assertNotNull(client.pollTimeout())
        }
    }

    @Test
    fun badInputIsATypedError() {
        val short = assertThrows<WalinkException.InvalidInput> { Client(ClientConfig(unsafeTestRngSeed = ByteArray(3)), emptyList()) }
        assertEquals("invalid_config", short.code)
        // A trust root that cannot check signatures (all zeros, or of small order) is refused.
        for (root in listOf(ByteArray(32), ByteArray(32).also { it[0] = 1 })) {
            val error = assertThrows<WalinkException.InvalidInput> {
                Client(ClientConfig(unsafeTestRngSeed = seed, trustRoot = root), emptyList())
            }
            assertEquals("invalid_config", error.code)
            assertTrue(error.reason.contains("trust_root"))
        }
        assertThrows<WalinkException.InvalidInput> {
            Client(config(), listOf(StoreRecord("no-such-space", "k", ByteArray(0))))
        }
        assertThrows<WalinkException.CorruptStore> {
            Client(config(), listOf(StoreRecord("device", "device", byteArrayOf(-1, 0, 1))))
        }
    }

    @Test
    fun commandsInTheWrongStateEndInTypedErrors() {
        Client(config(), emptyList()).use { client ->
            drain(client)
            val badPhone = client.command(now, Command.PairWithCode("12"))
            val text = client.command(now, Command.SendText("15551234567@s.whatsapp.net", "hi"))
            val done = drain(client).filterIsInstance<Output.Event>().map { it.event }
                .filterIsInstance<ClientEvent.CommandDone>().associate { it.id to it.result }
            assertEquals(setOf(badPhone, text), done.keys)
            assertEquals(CommandResult.Err(CommandError.InvalidPhoneNumber, "invalid_phone_number"), done[badPhone])
            assertTrue(done[text] is CommandResult.Err)
        }
    }

    @Test
    fun socketClosedMidFrameReconnectsOnTheTimer() {
        Client(config(), emptyList()).use { client ->
            drain(client)
            client.handleConnected(now)
            drain(client)
            client.handleBytes(now + 5uL, byteArrayOf(0, 1))
            client.handleClosed(now + 6uL, CloseReason.Network)
            val states = drain(client).filterIsInstance<Output.Event>().map { it.event }
                .filterIsInstance<ClientEvent.State>().map { it.state }
            assertTrue(states.any { it is ClientState.Reconnecting }, "$states")
            val at = client.pollTimeout()!!
            client.handleTimeout(at)
            assertTrue(drain(client).any { it is Output.Connect })
        }
    }
}
