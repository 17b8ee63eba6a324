package walink

import java.io.File
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.nio.file.Path
import java.util.Collections
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Assertions.fail
import org.junit.jupiter.api.Assumptions.assumeTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import uniffi.walink_ffi.ClientConfig
import uniffi.walink_ffi.ClientEvent
import uniffi.walink_ffi.ClientState

/**
 * The coroutine driver against walink-sim's mock-server over a real websocket (the JDK's):
 * pairing by code, then a restart from the file store logs in without pairing again; a message
 * round trip with another account's phone after pairing by code. Skips when the mock-server is not
 * built (cargo build -p walink-sim --bin mock-server), and fails instead when CI or
 * WALINK_REQUIRE_MOCK is set.
 */
class MockServerTest {
    @TempDir
    lateinit var tmp: Path

    // The simulation's test root: the X25519 public key of the private key 0x71 x 32
    // (walink_sim::noise_server::ChainSpec::default(); npm/test/support/mock-server.js derives it).
    private val testRoot = "ab4f197998fcc56cc6ed68c1d931af9bb522ec00743e181f7330915df4aa3176"
        .chunked(2).map { it.toInt(16).toByte() }.toByteArray()

    private fun mockServer(): File? = listOfNotNull(
        System.getenv("WALINK_MOCK_SERVER"),
        System.getenv("CARGO_TARGET_DIR")?.let { "$it/debug/mock-server" },
        File(System.getProperty("user.dir"), "../../target/debug/mock-server").path,
    ).map(::File).firstOrNull { it.canExecute() }

    /** True in CI or with WALINK_REQUIRE_MOCK set: a missing mock-server is then a failure. */
    private fun mockServerRequired(): Boolean = listOf("CI", "WALINK_REQUIRE_MOCK").any { name ->
        val value = System.getenv(name)
        value != null && value != "" && value != "0" && !value.equals("false", ignoreCase = true)
    }

    /** The mock-server binary; skips the test when it is missing, or fails it when required. */
    private fun requireMockServer(): File {
        val binary = mockServer()
        if (binary == null && mockServerRequired()) {
            fail<Unit>("mock-server is not built (cargo build -p walink-sim --bin mock-server) and CI or WALINK_REQUIRE_MOCK is set")
        }
        assumeTrue(binary != null, "mock-server is not built")
        return binary!!
    }

    @Test
    fun codePairingThenARestartFromTheFileStore() = runBlocking {
        val binary = requireMockServer()
        val process = ProcessBuilder(binary.path, "--seed", "13", "--until-stdin-closes").start()
        try {
            val banner = process.inputStream.bufferedReader().readLine().split(" ")
            val url = banner[banner.indexOf("listening") + 1] + "/ws/chat"
            val control = banner[banner.indexOf("control") + 1]
            val http = HttpClient.newHttpClient()
            fun post(route: String, body: String) {
                val request = HttpRequest.newBuilder(URI.create(control + route)).POST(HttpRequest.BodyPublishers.ofString(body)).build()
                val response = http.send(request, HttpResponse.BodyHandlers.ofString())
                assertEquals(200, response.statusCode(), response.body())
            }
            post("/accounts", """{"phone":"15550004444","name":"Dave"}""")

            val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
            suspend fun start(events: MutableList<ClientEvent>, connected: CompletableDeferred<Unit>) = Driver.start(
                store = FileStore(tmp.resolve("dave")),
                config = ClientConfig(trustRoot = testRoot, deviceName = "walink junit"),
                parent = scope,
                url = url,
                onEvent = { event ->
                    events.add(event)
                    if (event is ClientEvent.State && event.state is ClientState.Connected) connected.complete(Unit)
                },
            )

            val events = Collections.synchronizedList(ArrayList<ClientEvent>())
            val connected = CompletableDeferred<Unit>()
            val driver = start(events, connected)
            val code = driver.pairWithCode("15550004444")
            assertEquals(8, code.length)
            post("/accounts/15550004444/code", """{"code":"$code"}""")
            withTimeout(20_000) { connected.await() }
            assertTrue(events.any { it is ClientEvent.Paired && it.jid.startsWith("15550004444:") })
            driver.close()

            val again = Collections.synchronizedList(ArrayList<ClientEvent>())
            val reconnected = CompletableDeferred<Unit>()
            val restarted = start(again, reconnected)
            withTimeout(20_000) { reconnected.await() }
            assertTrue(again.none { it is ClientEvent.Qr }, "no pairing after a restart")
            restarted.close()
            scope.cancel()
        } finally {
            process.outputStream.close()
            process.destroy()
        }
    }

    @Test
    fun aMessageRoundTripWithAPhoneAfterPairingByCode() = runBlocking {
        val binary = requireMockServer()
        val process = ProcessBuilder(binary.path, "--seed", "17", "--until-stdin-closes").start()
        try {
            val banner = process.inputStream.bufferedReader().readLine().split(" ")
            val url = banner[banner.indexOf("listening") + 1] + "/ws/chat"
            val control = banner[banner.indexOf("control") + 1]
            val http = HttpClient.newHttpClient()
            fun call(route: String, body: String?): String {
                val builder = HttpRequest.newBuilder(URI.create(control + route))
                val request = if (body == null) builder.GET().build() else builder.POST(HttpRequest.BodyPublishers.ofString(body)).build()
                val response = http.send(request, HttpResponse.BodyHandlers.ofString())
                assertEquals(200, response.statusCode(), response.body())
                return response.body()
            }
            call("/accounts", """{"phone":"15550007777","name":"Grace"}""")
            call("/accounts", """{"phone":"15550008888","name":"Heidi"}""")

            val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
            val events = Collections.synchronizedList(ArrayList<ClientEvent>())
            val connected = CompletableDeferred<Unit>()
            val reply = CompletableDeferred<ClientEvent.Message>()
            val driver = Driver.start(
                store = FileStore(tmp.resolve("grace")),
                config = ClientConfig(trustRoot = testRoot, deviceName = "walink junit"),
                parent = scope,
                url = url,
                onEvent = { event ->
                    events.add(event)
                    if (event is ClientEvent.State && event.state is ClientState.Connected) connected.complete(Unit)
                    if (event is ClientEvent.Message && event.text == "hello Grace from the phone") reply.complete(event)
                },
            )
            val code = driver.pairWithCode("15550007777")
            call("/accounts/15550007777/code", """{"code":"$code"}""")
            withTimeout(20_000) { connected.await() }

            val id = driver.sendText("15550008888@s.whatsapp.net", "hello Heidi from Kotlin")
            assertTrue(id.isNotEmpty())
            withTimeout(20_000) {
                while (!call("/accounts/15550008888/messages", null).contains("\"text\":\"hello Heidi from Kotlin\"")) delay(50)
            }

            call("/accounts/15550008888/send", """{"to":"15550007777","text":"hello Grace from the phone"}""")
            val message = withTimeout(20_000) { reply.await() }
            assertEquals("15550008888@s.whatsapp.net", message.chat)
            assertTrue(events.none { it is ClientEvent.DecryptFailed })
            driver.close()
            scope.cancel()
        } finally {
            process.outputStream.close()
            process.destroy()
        }
    }
}
