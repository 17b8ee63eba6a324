// The coroutine driver: runs one walink Client (uniffi.walink_ffi.Client) against a transport, a
// store and one timer, following the core's contract (core/src/lib.rs):
// - every input (socket open, bytes, close, timer, command) is fed to the client one at a time
//   by a single coroutine, and after each one the outputs are drained in order;
// - a Persist batch is awaited before any later output, and a Load is answered (store.load,
//   then handleLoaded) before the next output; if the store throws, the client is dropped, the
//   transport closed, and a new client built from store.loadAll(): the same path as a crash;
// - after each drain, pollTimeout() re-arms the single timer;
// - a Fetch (an HTTPS request the core asks for: app-state blobs, media later) is carried out on
//   Dispatchers.IO outside the loop with one HTTP call, and its result (a response of any status,
//   or the transport's failure) is handed to handleFetched of the client that asked;
// - no state ends the loop: the client rests in LoggedOut, Replaced or ClientOutdated until a
//   command (Connect) or close(), as the core decides.
// The core never calls back into Kotlin: every suspension is the driver's.
package walink

import java.io.IOException
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.net.http.HttpTimeoutException
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
import kotlinx.coroutines.withTimeoutOrNull
import uniffi.walink_ffi.Client
import uniffi.walink_ffi.ClientConfig
import uniffi.walink_ffi.CloseReason
import uniffi.walink_ffi.Command
import uniffi.walink_ffi.CommandOutput
import uniffi.walink_ffi.MediaKind
import uniffi.walink_ffi.CommandResult
import uniffi.walink_ffi.ClientEvent
import uniffi.walink_ffi.WaMessage
import uniffi.walink_ffi.FetchError
import uniffi.walink_ffi.FetchRequest
import uniffi.walink_ffi.FetchResult
import uniffi.walink_ffi.Output
import uniffi.walink_ffi.ClientState
import uniffi.walink_ffi.StoreChange
import uniffi.walink_ffi.StoreKey
import uniffi.walink_ffi.StoreRecord
import uniffi.walink_ffi.endpoints
import uniffi.walink_ffi.mediaTypeOf
import uniffi.walink_ffi.startSpaces

/** WhatsApp's endpoints, as the core states them (chat socket, its Origin, the media host). */
val ENDPOINTS = endpoints()

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
            .header("Origin", ENDPOINTS.origin)
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
 * Carries out one HTTPS request the core asked for (an `Output.Fetch`): the driver's one HTTP
 * call. Returns the response, whatever its status, or the transport's failure; reads at most the
 * request's `maxResponseBytes` of body. Called on [Dispatchers.IO]; a throw counts as `NETWORK`.
 */
fun interface Fetcher {
    /** The response to [request], or why none came. */
    suspend fun fetch(request: FetchRequest): FetchResult
}

/** The default [Fetcher]: the JDK's HttpClient. */
object JdkFetcher : Fetcher {
    private val http: HttpClient by lazy {
        HttpClient.newBuilder().followRedirects(HttpClient.Redirect.NORMAL).connectTimeout(Duration.ofSeconds(30)).build()
    }

    override suspend fun fetch(request: FetchRequest): FetchResult = exchange(request, null, null)

    /**
     * The one HTTP call: [body] instead of the request's own (a media host's file), [read]
     * instead of reading the body into memory (a media host's decryption).
     */
    internal suspend fun exchange(
        request: FetchRequest,
        body: HttpRequest.BodyPublisher?,
        read: (suspend (Int, java.io.InputStream) -> FetchResult)?,
    ): FetchResult {
        val publisher = body ?: request.body?.let { HttpRequest.BodyPublishers.ofByteArray(it) } ?: HttpRequest.BodyPublishers.noBody()
        val call = HttpRequest.newBuilder(URI.create(request.url))
            .timeout(Duration.ofMillis(request.timeoutMs.toLong()))
            .method(request.method, publisher)
        request.headers.forEach { call.header(it.name, it.value) }
        return try {
            val response = http.sendAsync(call.build(), HttpResponse.BodyHandlers.ofInputStream()).await()
            response.body().use { input ->
                if (read != null) return read(response.statusCode(), input)
                val limit = request.maxResponseBytes.coerceAtMost((Int.MAX_VALUE - 8).toULong()).toInt()
                val bytes = runInterruptible(Dispatchers.IO) { input.readNBytes(limit + 1) }
                if (bytes.size > limit) FetchResult.Failed(FetchError.TOO_LARGE) else FetchResult.Response(response.statusCode().toUShort(), bytes)
            }
        } catch (e: HttpTimeoutException) {
            FetchResult.Failed(FetchError.TIMED_OUT)
        } catch (e: IOException) {
            FetchResult.Failed(FetchError.NETWORK)
        } catch (e: IllegalArgumentException) {
            FetchResult.Failed(FetchError.NETWORK)
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
    private val fetcher: Fetcher,
    private val media: FileMediaHost,
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

    /** Sends any content (a reply, reaction, edit, revoke, poll, media, location, ...); returns the message id. */
    suspend fun sendMessage(to: String, message: WaMessage): String =
        (command(Command.SendContent(to, message)) as CommandOutput.MessageSent).id

    /** Votes in a poll this device sent or received (options by name; none withdraws the vote). */
    suspend fun sendPollVote(chat: String, pollId: String, options: List<String>): String =
        (command(Command.SendPollVote(chat, pollId, options)) as CommandOutput.MessageSent).id

    /** The identity keys kept for a device (`identity`, and `pending` when a new key waits for approval). */
    suspend fun getIdentity(address: String): CommandOutput.Identity =
        command(Command.GetIdentity(address)) as CommandOutput.Identity

    /** Trusts a device's new identity key (strict policy); the messages refused meanwhile are asked for again. */
    suspend fun approveIdentity(address: String, identity: ByteArray) {
        command(Command.ApproveIdentity(address, identity))
    }

    /**
     * Uploads [data] and sends it to [to] (a user or group) as a message of [kind]; returns the
     * message id once the server acknowledged it.
     */
    suspend fun sendMedia(
        to: String,
        kind: MediaKind,
        data: ByteArray,
        mimetype: String,
        caption: String? = null,
        fileName: String? = null,
        width: UInt? = null,
        height: UInt? = null,
        seconds: UInt? = null,
        thumbnail: ByteArray? = null,
    ): String {
        val media = Command.SendMedia(to, kind, data, mimetype, caption, fileName, width, height, seconds, thumbnail, null)
        return (command(media) as CommandOutput.MessageSent).id
    }

    /**
     * Sends the file at [path] without holding it: it is encrypted a piece at a time into a
     * temporary file (0600) that the upload streams, and deleted when the command ended.
     */
    suspend fun sendMedia(
        to: String,
        kind: MediaKind,
        path: java.nio.file.Path,
        mimetype: String,
        caption: String? = null,
        fileName: String? = null,
        width: UInt? = null,
        height: UInt? = null,
        seconds: UInt? = null,
        thumbnail: ByteArray? = null,
    ): String {
        val upload = media.prepareUpload(path, mediaTypeOf(kind))
        try {
            val send = Command.SendMedia(to, kind, ByteArray(0), mimetype, caption, fileName, width, height, seconds, thumbnail, upload)
            return (command(send) as CommandOutput.MessageSent).id
        } finally {
            withContext(Dispatchers.IO) { media.releaseBody(upload.body) }
        }
    }

    /** Downloads and decrypts the media of a received message (its hashes and MAC checked). */
    suspend fun downloadMedia(message: ClientEvent.Message): ByteArray =
        (command(Command.DownloadMedia(message.id, message.chat, message.sender, message.raw, null)) as CommandOutput.MediaDownloaded).data

    /**
     * Downloads the media of a received message into the file [to] without holding it: the body
     * is decrypted as it arrives into a temporary file (0600), which becomes [to] only after the
     * MAC and both hashes were checked (`MediaSaved`) and is deleted otherwise (the command's
     * error, e.g. `media_invalid`, is thrown and [to] is not touched). Returns the length.
     */
    suspend fun downloadMedia(message: ClientEvent.Message, to: java.nio.file.Path): ULong {
        val sink = media.newSink()
        try {
            val saved = command(Command.DownloadMedia(message.id, message.chat, message.sender, message.raw, sink)) as CommandOutput.MediaSaved
            media.commitSink(sink, to)
            return saved.length
        } finally {
            withContext(Dispatchers.IO) { media.discardSink(sink) }
        }
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
                is Output.Fetch -> {
                    val asked = current
                    scope.launch { carryOut(asked, output.id, output.request) }
                }
                is Output.Transmit -> outgoing?.trySend(output.bytes)
                is Output.Event -> event(output.event)
                is Output.Close -> dropSocket()
            }
        }
        armTimer()
    }

    private fun event(event: ClientEvent) {
        if (event is ClientEvent.CommandDone) {
            pending.remove(event.id)?.let { waiter ->
                when (val result = event.result) {
                    is CommandResult.Ok -> waiter.complete(result.output)
                    is CommandResult.Err -> waiter.completeExceptionally(DriverException(result.code, "command failed: ${result.error}"))
                }
            }
        }
        if (event is ClientEvent.State) state = event.state
        try {
            onEvent(event)
        } catch (e: Exception) {
            onError(DriverException("handler_failed", "onEvent threw: ${e.message}", e))
        }
    }

    /**
     * Carries out one fetch on [Dispatchers.IO], outside the input loop, then hands the result to
     * [asked] if it is still the current client. A failure (the fetcher's, a throw, the request's
     * time running out) answers the core with it and is reported to [onError] as `fetch_failed`.
     */
    private suspend fun carryOut(asked: Client, id: ULong, request: FetchRequest) {
        val result = try {
            withContext(Dispatchers.IO) {
                withTimeoutOrNull(request.timeoutMs.toLong()) {
                    if (media.streams(request)) media.perform(request) else fetcher.fetch(request)
                } ?: FetchResult.Failed(FetchError.TIMED_OUT)
            }
        } catch (e: Exception) {
            if (e is kotlinx.coroutines.CancellationException) throw e
            FetchResult.Failed(FetchError.NETWORK)
        }
        if (result is FetchResult.Failed) {
            // A throwing onError must not keep the answer from the core.
            runCatching { onError(DriverException("fetch_failed", "${request.method} ${request.url.substringBefore('?')} failed: ${result.error}")) }
        }
        if (ended.isCompleted) return
        inputs.trySend(Input.Feed({ c -> if (c === asked) c.handleFetched(clock(), id, result) }, null))
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
        runCatching { media.dispose() }
        ended.complete(error)
        inputs.close()
        scope.cancel()
    }

    companion object {
        /** WhatsApp Web's chat socket (the core's). */
        val DEFAULT_URL = ENDPOINTS.chatUrl

        /**
         * Builds the client from [store], carries out its first outputs and starts the loop in
         * [parent]. All of the driver's work runs confined to one coroutine at a time (a
         * `limitedParallelism(1)` view of [Dispatchers.Default]), so its state needs no locks.
         *
         * HTTPS requests the core asks for (`Output.Fetch`: app-state blobs, media later) are
         * carried out by [fetch] (the JDK's HttpClient by default) on [Dispatchers.IO]; a failed
         * one is reported to [onError] as `fetch_failed`. No state ends the driver: it stops on
         * [close] or a fatal error.
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
            fetch: Fetcher = JdkFetcher,
            media: FileMediaHost = FileMediaHost(),
        ): Driver {
            val confined = Dispatchers.Default.limitedParallelism(1)
            val scope = CoroutineScope(parent.coroutineContext + SupervisorJob(parent.coroutineContext[Job]) + confined)
            val driver = Driver(store, transport, config, url, onEvent, onError, clock, scope, fetch, media)
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
