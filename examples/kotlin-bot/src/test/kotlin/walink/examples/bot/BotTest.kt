package walink.examples.bot

import com.google.zxing.BinaryBitmap
import com.google.zxing.DecodeHintType
import com.google.zxing.RGBLuminanceSource
import com.google.zxing.common.HybridBinarizer
import com.google.zxing.qrcode.QRCodeReader
import java.io.File
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.nio.file.Path
import java.util.Collections
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import uniffi.walink_ffi.Client

/**
 * The bot against walink-sim's mock-server (WALINK_MOCK_SERVER names the binary), with walink
 * taken from its Maven artifact: pairing by code and by the QR it prints (decoded back from the
 * text), answers to another account's phone, and a restart from the session directory.
 */
class BotTest {
    @TempDir
    lateinit var tmp: Path

    // The simulation's test root: the X25519 public key of the private key 0x71 x 32
    // (walink_sim::noise_server::ChainSpec::default()).
    private val testRoot = "ab4f197998fcc56cc6ed68c1d931af9bb522ec00743e181f7330915df4aa3176"
        .chunked(2).map { it.toInt(16).toByte() }.toByteArray()

    private val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
    private val http = HttpClient.newHttpClient()
    private var server: Process? = null
    private lateinit var url: String
    private lateinit var control: String

    private fun startServer(seed: Int) {
        val binary = System.getenv("WALINK_MOCK_SERVER")
        check(binary != null && File(binary).canExecute()) {
            "WALINK_MOCK_SERVER must name the mock-server binary (cargo build -p walink-sim --bin mock-server)"
        }
        val process = ProcessBuilder(binary, "--seed", "$seed", "--until-stdin-closes").start()
        server = process
        val banner = process.inputStream.bufferedReader().readLine().split(" ")
        url = banner[banner.indexOf("listening") + 1] + "/ws/chat"
        control = banner[banner.indexOf("control") + 1]
    }

    private fun call(route: String, body: String? = null): String {
        val builder = HttpRequest.newBuilder(URI.create(control + route))
        val request = if (body == null) builder.GET().build() else builder.POST(HttpRequest.BodyPublishers.ofString(body)).build()
        val response = http.send(request, HttpResponse.BodyHandlers.ofString())
        assertEquals(200, response.statusCode(), response.body())
        return response.body()
    }

    /** The texts the phone of [phone] received from the account [sender], in order. */
    private fun textsFrom(phone: String, sender: String): List<String> =
        Regex("\\{[^{}]*\\}").findAll(call("/accounts/$phone/messages")).map { it.value }
            .filter { it.contains("\"from\":\"$sender") }
            .mapNotNull { Regex("\"text\":\"((?:[^\"\\\\]|\\\\.)*)\"").find(it)?.groupValues?.get(1) }
            .toList()

    private suspend fun eventually(what: String, check: () -> Boolean) {
        withTimeout(30_000) {
            while (!check()) delay(100)
        }
        assertTrue(check(), what)
    }

    @AfterEach
    fun stop() {
        scope.cancel()
        server?.let {
            it.outputStream.close()
            it.destroy()
        }
    }

    @Test
    fun walinkComesFromItsJarWithTheNativeLibraryInside() {
        assertNull(System.getProperty("jna.library.path"), "no library path: JNA must find the library in the jar")
        val jar = Client::class.java.protectionDomain.codeSource.location.path
        val repository = File(System.getProperty("walink.localRepository")).canonicalPath
        assertEquals("$repository/walink/walink-kotlin/0.1.0/walink-kotlin-0.1.0.jar", File(jar).canonicalPath)
        val library = Client::class.java.classLoader.getResource("linux-x86-64/libwalink_ffi.so")
        assertTrue(library.toString().startsWith("jar:file:") && library.toString().contains(jar), "$library")
        assertEquals("0.1.0", uniffi.walink_ffi.version())
    }

    @Test
    fun answersItsCommandsOnly() {
        assertEquals("pong", answer("/ping"))
        assertEquals("hello there", answer("/echo  hello there "))
        assertEquals("STRASSE", answer("/upper straße"))
        assertNull(answer("/ping me"))
        assertNull(answer("hello"))
        assertNull(answer("/echo"))
    }

    @Test
    fun pairsByCodeAnswersAndRestartsFromItsSession() = runBlocking {
        startServer(31)
        call("/accounts", """{"phone":"15550002001","name":"Bot"}""")
        call("/accounts", """{"phone":"15550002002","name":"Carol"}""")
        val said = Collections.synchronizedList(ArrayList<String>())
        val bot = Bot(tmp.resolve("session"), url, testRoot, phone = "15550002001", say = { said.add(it) })
        bot.start(scope)
        val line = said.first { it.startsWith("pairing code for 15550002001: ") }
        call("/accounts/15550002001/code", """{"code":"${line.substringAfterLast(' ').replace("-", "")}"}""")
        withTimeout(30_000) { bot.connected.first { it } }

        for (text in listOf("/ping", "hello", "/upper straße")) {
            call("/accounts/15550002002/send", """{"to":"15550002001","text":"$text"}""")
        }
        eventually("two answers") { textsFrom("15550002002", "15550002001").size >= 2 }
        delay(500) // an answer to "hello" would have arrived by now
        assertEquals(listOf("pong", "STRASSE"), textsFrom("15550002002", "15550002001"))
        bot.close()

        // The session is in the directory: a new bot logs in without pairing.
        val saidAgain = Collections.synchronizedList(ArrayList<String>())
        val again = Bot(tmp.resolve("session"), url, testRoot, say = { saidAgain.add(it) })
        again.start(scope)
        withTimeout(30_000) { again.connected.first { it } }
        assertTrue(synchronized(saidAgain) { saidAgain.none { it.startsWith("qr: ") || it.startsWith("pairing code") } }, "$saidAgain")
        call("/accounts/15550002002/send", """{"to":"15550002001","text":"/echo again"}""")
        eventually("the answer after the restart") { "again" in textsFrom("15550002002", "15550002001") }
        again.close()
    }

    @Test
    fun pairsByTheQrItPrints() = runBlocking {
        startServer(37)
        call("/accounts", """{"phone":"15550002003","name":"Bot"}""")
        call("/accounts", """{"phone":"15550002004","name":"Dan"}""")
        val said = Collections.synchronizedList(ArrayList<String>())
        val bot = Bot(tmp.resolve("session"), url, testRoot, say = { said.add(it) })
        bot.start(scope)
        eventually("a QR") { synchronized(said) { said.any { it.startsWith("qr: ") } } }
        val (drawn, line) = synchronized(said) { said.zipWithNext().first { it.second.startsWith("qr: ") } }
        // What a phone's camera reads off the terminal is what the client shows.
        val decoded = decodeBlocks(drawn)
        assertEquals(line.removePrefix("qr: "), decoded)
        call("/accounts/15550002003/scan", """{"qr":"$decoded"}""")
        withTimeout(30_000) { bot.connected.first { it } }
        call("/accounts/15550002004/send", """{"to":"15550002003","text":"/ping"}""")
        eventually("pong") { "pong" in textsFrom("15550002004", "15550002003") }
        bot.close()
    }

    /** Reads a QR drawn with half blocks (light foreground) back into its text, with zxing. */
    private fun decodeBlocks(drawn: String): String {
        val rows = drawn.lines()
        val scale = 4
        val width = rows[0].length
        val height = rows.size * 2
        val pixels = IntArray(width * scale * height * scale)
        for ((row, line) in rows.withIndex()) {
            for ((x, cell) in line.withIndex()) {
                val (top, bottom) = when (cell) {
                    '█' -> false to false
                    '▄' -> true to false
                    '▀' -> false to true
                    ' ' -> true to true
                    else -> error("not a QR cell: '$cell'")
                }
                for ((half, dark) in listOf(0 to top, 1 to bottom)) {
                    val y = row * 2 + half
                    for (dy in 0 until scale) for (dx in 0 until scale) {
                        pixels[(y * scale + dy) * width * scale + x * scale + dx] = if (dark) 0xff000000.toInt() else -1
                    }
                }
            }
        }
        val bitmap = BinaryBitmap(HybridBinarizer(RGBLuminanceSource(width * scale, height * scale, pixels)))
        return QRCodeReader().decode(bitmap, mapOf(DecodeHintType.PURE_BARCODE to true)).text
    }
}
