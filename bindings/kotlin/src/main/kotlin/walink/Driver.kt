// The coroutine driver: runs one walink Client (uniffi.walink_ffi.Client) against a transport, a
// store and one timer, following the core's contract (core/src/lib.rs):
// - every input (socket open, bytes, close, timer, command) is fed to the client one at a time
//   by a single coroutine, and after each one the outputs are drained in order;
// - a Persist batch is awaited before any later output, and a Load is answered (store.load,
//   then handleLoaded) before the next output; if the store throws, the client is dropped, the
//   transport closed, and a new client built from store.loadAll(): the same path as a crash;
// - after each drain, pollTimeout() re-arms the single timer.
// - an AppStateDownload event is answered by the driver (unless switched off): the blob is
//   downloaded on Dispatchers.IO outside the loop, then its bytes (or null on failure) are fed
//   back as Command.AppStateBlob to the client that asked.
// The core never calls back into Kotlin: every suspension is the driver's.
package walink

import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.time.Duration
import java.net.http.WebSocket
import java.nio.ByteBuffer
import java.util.concurrent.CompletionStage
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.delay
import kotlinx.coroutines.future.await
import kotlinx.coroutines.launch
import kotlinx.coroutines.runInterruptible
import kotlinx.coroutines.withContext
import uniffi.walink_ffi.Client
import uniffi.walink_ffi.ClientConfig
import uniffi.walink_ffi.CloseReason
import uniffi.walink_ffi.Command
import uniffi.walink_ffi.CommandOutput
import uniffi.walink_ffi.CommandResult
import uniffi.walink_ffi.ClientEvent
import uniffi.walink_ffi.Output
import uniffi.walink_ffi.ClientState
import uniffi.walink_ffi.StoreChange
import uniffi.walink_ffi.StoreKey
import uniffi.walink_ffi.StoreRecord
import uniffi.walink_ffi.startSpaces

/** A connected, message-oriented socket (a WebSocket carrying binary messages). */
interface Transport {
    /** Sends one binary message. */
    suspend fun send(bytes: ByteArray)

    /** The next binary message, or null once the socket closed. */
    suspend fun receive(): ByteArray?

    /** Closes the socket (a no-op when closed already). */
    suspend fun close()
}

/** Opens a [Transport] to a URL. */
fun interface TransportFactory {
    /** Connects; throws if the socket cannot be opened. */
    suspend fun open(url: String): Transport
}

/** A failure of the driver or of a command; [code] is stable. */
class DriverException(val code: String, message: String, cause: Throwable? = null) : Exception(message, cause)

/** The default transport: the JDK's WebSocket client, with WhatsApp Web's Origin header. */
object JdkWebSocketTransport : TransportFactory {
    override suspend fun open(url: String): Transport {
        val received = Channel<ByteArray?>(Channel.UNLIMITED)
        val listener = object : WebSocket.Listener {
            private var partial = java.io.ByteArrayOutputStream()

            override fun onBinary(webSocket: WebSocket, data: ByteBuffer, last: Boolean): CompletionStage<*>? {
                val bytes = ByteArray(data.remaining()).also { data.get(it) }
                partial.write(bytes)
                if (last) {
                    received.trySend(partial.toByteArray())
                    partial = java.io.ByteArrayOutputStream()
                }
                webSocket.request(1)
                return null
            }

            override fun onClose(webSocket: WebSocket, statusCode: Int, reason: String): CompletionStage<*>? {
                received.trySend(null)
                return null
            }

            override fun onError(webSocket: WebSocket, error: Throwable) {
                received.trySend(null)
            }
        }
        val socket = HttpClient.newHttpClient().newWebSocketBuilder()
            .header("Origin", "https://web.whatsapp.com")
            .buildAsync(URI.create(url), listener)
            .await()
        return object : Transport {
            override suspend fun send(bytes: ByteArray) {
                socket.sendBinary(ByteBuffer.wrap(bytes), true).await()
            }

            override suspend fun receive(): ByteArray? = received.receive()

            override suspend fun close() {
                if (!socket.isOutputClosed) {
                    runCatching { socket.sendClose(WebSocket.NORMAL_CLOSURE, "").await() }
                }
                socket.abort()
            }
        }
    }
}

/**
 * Downloads one app-state blob for the driver: [url] is the media host joined with [directPath].
 * Returns the file's bytes as served (still encrypted; the core checks them); throws on failure.
 * Called on [Dispatchers.IO].
 */
fun interface AppStateBlobDownloader {
    /** The bytes of the blob at [url], or an exception. */
    suspend fun download(url: String, directPath: String, downloadId: ULong): ByteArray
}

/** WhatsApp's media host, which serves app-state blobs by direct path. */
const val DEFAULT_MEDIA_HOST = "https://mmg.whatsapp.net"

/** The largest app-state blob the default download accepts (the core's own bound). */
const val MAX_BLOB_BYTES = 64 * 1024 * 1024

/** The URL of a blob's [directPath] on a [mediaHost] (an origin, with or without a trailing slash). */
fun blobUrl(mediaHost: String, directPath: String): String =
    mediaHost.trimEnd('/') + if (directPath.startsWith("/")) directPath else "/$directPath"

/**
 * The default download: a GET with the JDK's HttpClient; a non-2xx status or a body of more than
 * [MAX_BLOB_BYTES] is an error.
 */
object JdkBlobDownloader : AppStateBlobDownloader {
    private val http: HttpClient by lazy {
        HttpClient.newBuilder().followRedirects(HttpClient.Redirect.NORMAL).connectTimeout(Duration.ofSeconds(30)).build()
    }

    override suspend fun download(url: String, directPath: String, downloadId: ULong): ByteArray {
        val request = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(60)).GET().build()
        val response = http.sendAsync(request, HttpResponse.BodyHandlers.ofInputStream()).await()
        return response.body().use { body ->
            if (response.statusCode() !in 200..299) throw java.io.IOException("GET $url: status ${response.statusCode()}")
            val bytes = runInterruptible(Dispatchers.IO) { body.readNBytes(MAX_BLOB_BYTES + 1) }
            if (bytes.size > MAX_BLOB_BYTES) throw java.io.IOException("GET $url: more than $MAX_BLOB_BYTES bytes")
            bytes
        }
    }
}

/** Wall-clock Unix milliseconds. */
fun nowMs(): ULong = System.currentTimeMillis().toULong()

/**
 * One running client. Create it with [Driver.start]; it runs in [scope] until [close], a logout
 * or a fatal error ([ended] completes then).
 */
class Driver private constructor(
    private val store: Store,
    private val transport: TransportFactory,
    private val config: ClientConfig,
    private val url: String,
    private val onEvent: (ClientEvent) -> Unit,
    private val onError: (Throwable) -> Unit,
    private val clock: () -> ULong,
    private val scope: CoroutineScope,
    private val appStateDownloads: Boolean,
    private val downloader: AppStateBlobDownloader,
    private val mediaHost: String,
) {
    private sealed interface Input {
        class Feed(val feed: (Client) -> Unit, val failed: CompletableDeferred<CommandOutput>?) : Input

        object End : Input
    }

    private val inputs = Channel<Input>(Channel.UNLIMITED)
    private var client: Client? = null
    private var timer: Job? = null
    private var reader: Job? = null
    private var outgoing: Channel<ByteArray>? = null
    private var socketGeneration = 0
    private val pending = HashMap<ULong, CompletableDeferred<CommandOutput>>()
    private var terminal = false

    /** Completes (with null, or the fatal error) when the driver ended for good. */
    val ended = CompletableDeferred<Throwable?>()

    /** The last `State` event's state, or null before the first. */
    @Volatile
    var state: ClientState? = null
        private set

    /** Sends a command; returns its output or throws [DriverException] with the error's name. */
    suspend fun command(command: Command): CommandOutput {
        val done = CompletableDeferred<CommandOutput>()
        submit(Input.Feed({ c -> pending[c.command(clock(), command)] = done }, done))
        return done.await()
    }

    /** Asks for a pairing code for [phone]; returns the eight characters. */
    suspend fun pairWithCode(phone: String): String =
        (command(Command.PairWithCode(phone)) as CommandOutput.PairingCode).code

    /** Sends a text; returns the message id once the server acknowledged it. */
    suspend fun sendText(to: String, text: String): String =
        (command(Command.SendText(to, text)) as CommandOutput.MessageSent).id

    /** The identity keys kept for a device (`identity`, and `pending` when a new key waits for approval). */
    suspend fun getIdentity(address: String): CommandOutput.Identity =
        command(Command.GetIdentity(address)) as CommandOutput.Identity

    /** Trusts a device's new identity key (strict policy); the messages refused meanwhile are asked for again. */
    suspend fun approveIdentity(address: String, identity: ByteArray) {
        command(Command.ApproveIdentity(address, identity))
    }

    /** Unlinks this device; the driver then ends. */
    suspend fun logout() {
        command(Command.Logout)
    }

    /** Disconnects and stops (the device stays paired; a new Driver on the store resumes). */
    suspend fun close() {
        if (ended.isCompleted) return
        submit(Input.Feed({ c -> c.command(clock(), Command.Disconnect) }, null))
        inputs.send(Input.End)
        ended.await()
    }

    private suspend fun submit(input: Input) {
        if (ended.isCompleted) throw DriverException("ended", "the driver has ended")
        inputs.send(input)
    }

    private suspend fun run() {
        try {
            for (input in inputs) {
                when (input) {
                    Input.End -> {
                        end(null)
                        return
                    }
                    is Input.Feed -> {
                        val current = client ?: continue
                        try {
                            input.feed(current)
                            drain()
                        } catch (e: DriverException) {
                            if (e.code != "store_failed") throw e
                            rebuild(e)
                        }
                    }
                }
                if (ended.isCompleted) return
            }
        } catch (e: Throwable) {
            fatal(e)
        }
    }

    private suspend fun build() {
        val spaces = startSpaces().toSet()
        val records = store.loadAll().filter { it.space in spaces }.map { StoreRecord(it.space, it.key, it.value) }
        client = Client(config, records)
        try {
            drain()
        } catch (e: DriverException) {
            if (e.code != "store_failed") throw e
            rebuild(e)
        }
    }

    private suspend fun rebuild(error: DriverException) {
        onError(error)
        dropSocket()
        timer?.cancel()
        client?.close()
        client = null
        pending.values.forEach { it.completeExceptionally(DriverException("client_rebuilt", "the client was rebuilt from its store", error)) }
        pending.clear()
        build()
    }

    private suspend fun drain() {
        val current = client ?: return
        while (client === current && !ended.isCompleted) {
            when (val output = current.pollOutput() ?: break) {
                is Output.Connect -> openSocket()
                is Output.Persist -> try {
                    store.applyBatch(output.changes.map { it.toStoreChange() })
                } catch (e: Exception) {
                    throw DriverException("store_failed", "the store failed to apply a batch: ${e.message}", e)
                }
                is Output.Load -> {
                    val records = try {
                        store.load(output.keys.map { RecordKey(it.space, it.key) })
                    } catch (e: Exception) {
                        throw DriverException("store_failed", "the store failed to load records: ${e.message}", e)
                    }
                    current.handleLoaded(clock(), output.id, records.map { StoreRecord(it.space, it.key, it.value) })
                }
                is Output.Transmit -> outgoing?.trySend(output.bytes)
                is Output.Event -> event(output.event)
                is Output.Close -> dropSocket()
            }
        }
        if (terminal) end(null) else armTimer()
    }

    private fun event(event: ClientEvent) {
        if (event is ClientEvent.CommandDone) {
            pending.remove(event.id)?.let { waiter ->
                when (val result = event.result) {
                    is CommandResult.Ok -> waiter.complete(result.output)
                    is CommandResult.Err -> {
                        val name = result.error::class.simpleName ?: "error"
                        val code = name.replace(Regex("([a-z])([A-Z])"), "$1_$2").lowercase()
                        waiter.completeExceptionally(DriverException(code, "command failed: ${result.error}"))
                    }
                }
            }
        }
        if (event is ClientEvent.State) {
            state = event.state
            if (event.state is ClientState.LoggedOut || event.state is ClientState.Replaced || event.state is ClientState.ClientOutdated) terminal = true
        }
        try {
            onEvent(event)
        } catch (e: Exception) {
            onError(DriverException("handler_failed", "onEvent threw: ${e.message}", e))
        }
        if (event is ClientEvent.AppStateDownload && appStateDownloads) {
            val asked = client ?: return
            scope.launch { download(asked, event.downloadId, event.directPath) }
        }
    }

    /**
     * Downloads one app-state blob on [Dispatchers.IO], outside the input loop, then feeds the
     * bytes (or null on failure, so the core's recovery ladder goes on) to [asked] if it is
     * still the current client.
     */
    private suspend fun download(asked: Client, downloadId: ULong, directPath: String) {
        val url = blobUrl(mediaHost, directPath)
        val bytes = try {
            withContext(Dispatchers.IO) { downloader.download(url, directPath, downloadId) }
        } catch (e: Exception) {
            if (e is kotlinx.coroutines.CancellationException) throw e
            // A throwing onError must not keep the answer from the core (the collection would
            // stay parked).
            runCatching { onError(DriverException("app_state_download_failed", "downloading app-state blob $downloadId failed: ${e.message}", e)) }
            null
        }
        if (ended.isCompleted) return
        inputs.trySend(Input.Feed({ c -> if (c === asked) c.command(clock(), Command.AppStateBlob(downloadId, bytes)) }, null))
    }

    private fun armTimer() {
        timer?.cancel()
        val current = client ?: return
        val at = current.pollTimeout() ?: return
        val now = clock()
        val wait = if (at > now) (at - now).toLong() else 0L
        timer = scope.launch {
            delay(wait)
            inputs.trySend(Input.Feed({ c -> c.handleTimeout(clock()) }, null))
        }
    }

    private fun openSocket() {
        dropSocket()
        val generation = ++socketGeneration
        val queue = Channel<ByteArray>(Channel.UNLIMITED)
        outgoing = queue
        reader = scope.launch { read(generation, queue) }
    }

    private suspend fun read(generation: Int, queue: Channel<ByteArray>) {
        fun feed(f: (Client) -> Unit) {
            if (generation == socketGeneration) inputs.trySend(Input.Feed(f, null))
        }
        val socket = try {
            transport.open(url)
        } catch (e: Exception) {
            onError(DriverException("socket_failed", "opening the socket failed: ${e.message}", e))
            feed { c -> c.handleClosed(clock(), CloseReason.Network) }
            return
        }
        // One writer per socket keeps the frames in the order the core emitted them.
        val writer = scope.launch {
            try {
                for (bytes in queue) socket.send(bytes)
            } catch (e: Exception) {
                // A failed write shows up as the socket closing, which the reader reports.
            }
        }
        try {
            feed { c -> c.handleConnected(clock()) }
            while (true) {
                val bytes = socket.receive() ?: break
                feed { c -> c.handleBytes(clock(), bytes) }
            }
        } catch (e: Exception) {
            if (e is kotlinx.coroutines.CancellationException) throw e
            onError(DriverException("socket_failed", "reading the socket failed: ${e.message}", e))
        } finally {
            writer.cancel()
            runCatching { socket.close() }
        }
        feed { c -> c.handleClosed(clock(), CloseReason.Network) }
    }

    /** Closes the current socket without telling the client (it asked, or it is being dropped). */
    private fun dropSocket() {
        socketGeneration++
        outgoing?.close()
        outgoing = null
        reader?.cancel()
        reader = null
    }

    private fun fatal(error: Throwable) {
        if (ended.isCompleted) return
        onError(error)
        end(error)
    }

    private fun end(error: Throwable?) {
        if (ended.isCompleted) return
        timer?.cancel()
        dropSocket()
        pending.values.forEach { it.completeExceptionally(DriverException("ended", "the driver has ended")) }
        pending.clear()
        client?.close()
        client = null
        ended.complete(error)
        inputs.close()
        scope.cancel()
    }

    companion object {
        /** WhatsApp Web's chat socket. */
        const val DEFAULT_URL = "wss://web.whatsapp.com/ws/chat"

        /**
         * Builds the client from [store], carries out its first outputs and starts the loop in
         * [parent]. All of the driver's work runs confined to one coroutine at a time (a
         * `limitedParallelism(1)` view of [Dispatchers.Default]), so its state needs no locks.
         *
         * App-state blobs: the driver answers each `AppStateDownload` event itself, downloading
         * `blobUrl(mediaHost, directPath)` with [downloadAppStateBlob] (the JDK's HttpClient by
         * default) on [Dispatchers.IO]; a failed download answers with no bytes and is reported
         * to [onError] as `app_state_download_failed`. With [appStateDownloads] false the host
         * answers the events itself with `Command.AppStateBlob`.
         */
        suspend fun start(
            store: Store,
            config: ClientConfig,
            parent: CoroutineScope,
            transport: TransportFactory = JdkWebSocketTransport,
            url: String = DEFAULT_URL,
            onEvent: (ClientEvent) -> Unit = {},
            onError: (Throwable) -> Unit = {},
            clock: () -> ULong = ::nowMs,
            appStateDownloads: Boolean = true,
            downloadAppStateBlob: AppStateBlobDownloader = JdkBlobDownloader,
            mediaHost: String = DEFAULT_MEDIA_HOST,
        ): Driver {
            val confined = Dispatchers.Default.limitedParallelism(1)
            val scope = CoroutineScope(parent.coroutineContext + SupervisorJob(parent.coroutineContext[Job]) + confined)
            val driver = Driver(store, transport, config, url, onEvent, onError, clock, scope, appStateDownloads, downloadAppStateBlob, mediaHost)
            withContext(confined) { driver.build() }
            scope.launch { driver.run() }
            return driver
        }
    }
}

private fun StoreChange.toStoreChange(): Change = when (this) {
    is StoreChange.Put -> Change.Put(space, key, value)
    is StoreChange.Delete -> Change.Delete(space, key)
    is StoreChange.DeleteAll -> Change.DeleteAll
}
