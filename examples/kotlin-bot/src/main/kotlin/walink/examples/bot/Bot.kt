// A WhatsApp bot on the walink Maven artifact: it links itself as a companion device (printing
// the QR in the terminal, or a pairing code for a phone number), answers /ping, /echo <text> and
// /upper <text>, and keeps its session in a directory (walink's file store), so a restart logs
// in again without pairing.
package walink.examples.bot

import com.google.zxing.BarcodeFormat
import com.google.zxing.EncodeHintType
import com.google.zxing.qrcode.QRCodeWriter
import com.google.zxing.qrcode.decoder.ErrorCorrectionLevel
import java.nio.file.Path
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Job
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.launch
import uniffi.walink_ffi.ClientConfig
import uniffi.walink_ffi.ClientEvent
import uniffi.walink_ffi.ClientState
import walink.Driver
import walink.DriverException
import walink.FileStore

/** How many times a reply is sent again after its send failed for want of a connection. */
const val MAX_RESENDS = 5

/** What the bot answers to [text], if anything. */
fun answer(text: String): String? {
    val trimmed = text.trim()
    val command = trimmed.substringBefore(' ')
    val rest = trimmed.substringAfter(' ', "").trim()
    return when {
        command == "/ping" && rest.isEmpty() -> "pong"
        command == "/echo" && rest.isNotEmpty() -> rest
        command == "/upper" && rest.isNotEmpty() -> rest.uppercase()
        else -> null
    }
}

/**
 * The QR code of [payload] as text: two modules per character cell (upper and lower half
 * blocks, drawn in the terminal's light foreground), with a quiet zone, readable by a phone.
 */
fun renderQr(payload: String): String {
    val hints = mapOf(EncodeHintType.MARGIN to 2, EncodeHintType.ERROR_CORRECTION to ErrorCorrectionLevel.L)
    val matrix = QRCodeWriter().encode(payload, BarcodeFormat.QR_CODE, 0, 0, hints)
    fun dark(x: Int, y: Int) = y < matrix.height && matrix.get(x, y)
    return (0 until matrix.height step 2).joinToString("\n") { y ->
        (0 until matrix.width).joinToString("") { x ->
            when (dark(x, y) to dark(x, y + 1)) {
                false to false -> "█"
                true to false -> "▄"
                false to true -> "▀"
                else -> " "
            }
        }
    }
}

/**
 * One bot: a walink [Driver] on a [FileStore] in [store], and the answers. [say] prints (the
 * terminal by default). With [phone] it pairs by code, otherwise by the QR it prints.
 */
class Bot(
    private val store: Path,
    private val url: String = Driver.DEFAULT_URL,
    private val trustRoot: ByteArray? = null,
    private val phone: String? = null,
    private val say: (String) -> Unit = ::println,
) {
    private var driver: Driver? = null
    private var scope: CoroutineScope? = null
    private val replies = mutableListOf<Job>()
    private val connectedState = MutableStateFlow(false)

    /** Whether the client is logged in and connected. */
    val connected: StateFlow<Boolean> = connectedState

    /** Opens the store, starts the client in [scope] and, for a phone number, asks for a pairing code. */
    suspend fun start(scope: CoroutineScope) {
        this.scope = scope
        val started = Driver.start(
            store = FileStore(store),
            config = ClientConfig(deviceName = "walink bot", trustRoot = trustRoot),
            parent = scope,
            url = url,
            onEvent = ::onEvent,
            onError = { say("walink: ${it.message}") },
        )
        driver = started
        if (phone != null) {
            try {
                val code = started.pairWithCode(phone)
                say("pairing code for $phone: ${code.take(4)}-${code.drop(4)}")
                say("On the phone: Linked devices > Link a device > Link with phone number instead.")
            } catch (e: DriverException) {
                if (e.code != "already_paired") throw e
            }
        }
    }

    /** Stops the replies in flight and the client (the device stays linked). */
    suspend fun close() {
        synchronized(replies) { replies.toList() }.forEach { it.cancelAndJoin() }
        driver?.close()
    }

    private fun onEvent(event: ClientEvent) {
        when (event) {
            is ClientEvent.Qr -> if (phone == null) {
                say(renderQr(event.payload))
                say("qr: ${event.payload}")
                say("On the phone: Linked devices > Link a device, and scan the code above.")
            }
            is ClientEvent.Paired -> say("linked as ${event.jid}")
            is ClientEvent.State -> {
                val isConnected = event.state is ClientState.Connected
                if (isConnected) say("connected")
                connectedState.value = isConnected
            }
            is ClientEvent.Message -> {
                // Not our own messages (sent from the phone) nor old ones from a history sync.
                if (event.fromMe || event.history) return
                val reply = event.text?.let(::answer) ?: return
                val job = scope?.launch { reply(event.chat, reply) } ?: return
                synchronized(replies) {
                    replies.removeAll { it.isCompleted }
                    replies.add(job)
                }
            }
            else -> {}
        }
    }

    /** Sends a reply; one that failed for want of a connection is sent again once connected. */
    private suspend fun reply(chat: String, text: String) {
        val current = driver ?: return
        repeat(MAX_RESENDS + 1) {
            try {
                current.sendText(chat, text)
                return
            } catch (e: DriverException) {
                if (e.code !in setOf("not_connected", "timed_out", "client_rebuilt")) {
                    say("reply to $chat failed: ${e.code}")
                    return
                }
            }
            connected.first { it }
        }
        say("reply to $chat given up after $MAX_RESENDS resends")
    }
}
