package walink

import java.io.File
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.nio.file.Files
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
import kotlinx.coroutines.withTimeoutOrNull
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Assertions.fail
import org.junit.jupiter.api.Assumptions.assumeTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import org.junit.jupiter.api.io.TempDir
import uniffi.walink_ffi.AppStateFailure
import uniffi.walink_ffi.CallAction
import uniffi.walink_ffi.ChatState
import uniffi.walink_ffi.ClientConfig
import uniffi.walink_ffi.ClientEvent
import uniffi.walink_ffi.ClientState
import uniffi.walink_ffi.Collection
import uniffi.walink_ffi.Command
import uniffi.walink_ffi.CommandOutput
import uniffi.walink_ffi.DecryptFailureKind
import uniffi.walink_ffi.FetchResult
import uniffi.walink_ffi.GroupChange
import uniffi.walink_ffi.GroupCommand
import uniffi.walink_ffi.GroupOutput
import uniffi.walink_ffi.MembershipChange
import uniffi.walink_ffi.ParticipantAction
import uniffi.walink_ffi.ParticipantStatus
import uniffi.walink_ffi.IdentityPolicy
import uniffi.walink_ffi.MediaKind
import uniffi.walink_ffi.MuteUntil
import uniffi.walink_ffi.StateReason
import uniffi.walink_ffi.ContextInfo
import uniffi.walink_ffi.ExtendedTextMessage
import uniffi.walink_ffi.MessageKey
import uniffi.walink_ffi.NestedMessage
import uniffi.walink_ffi.PollCreationMessage
import uniffi.walink_ffi.PollCreationMessageOption
import uniffi.walink_ffi.ReactionMessage
import uniffi.walink_ffi.WaMessage
import uniffi.walink_ffi.decodeMessage
import uniffi.walink_ffi.encodeMessage

/**
 * The coroutine driver against walink-sim's mock-server over a real websocket (the JDK's):
 * pairing by code, then a restart from the file store logs in without pairing again; a refused
 * pairing code ends in its own typed reason; a message round trip with another account's phone
 * after pairing by code; the driver fetching an app-state snapshot blob and a patch's external
 * mutations blob from the mock-server's media path, outside its loop (a failing host fetch ends in
 * a typed AppStateFatal; a 404 reaches the core, which fetches again). Skips when the mock-server
 * is not built (cargo build -p
 * walink-sim --bin mock-server), and fails instead when CI or WALINK_REQUIRE_MOCK is set.
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
    fun aRefusedPairingCodeIsPairingCodeFailedNotOther() = runBlocking {
        val mock = Mock(ProcessBuilder(requireMockServer().path, "--seed", "23", "--until-stdin-closes").start())
        val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
        try {
            val events = Collections.synchronizedList(ArrayList<ClientEvent>())
            val qr = CompletableDeferred<Unit>()
            val failed = CompletableDeferred<ClientEvent.State>()
            val driver = Driver.start(
                store = MemoryStore(),
                config = ClientConfig(trustRoot = testRoot, deviceName = "walink junit"),
                parent = scope,
                url = mock.url,
                onEvent = { event ->
                    events.add(event)
                    if (event is ClientEvent.Qr) qr.complete(Unit)
                    if (event is ClientEvent.State && event.reason is StateReason.PairingCodeFailed) failed.complete(event)
                },
            )
            withTimeout(20_000) { qr.await() }
            // A well-formed number without an account: the server answers the request with 400.
            val error = assertThrows<DriverException> { runBlocking { driver.pairWithCode("15550009999") } }
            assertEquals("rejected", error.code)
            val state = withTimeout(20_000) { failed.await() }
            assertEquals(ClientState.AwaitingPairing(qr = true), state.state)
            driver.close()
        } finally {
            scope.cancel()
            mock.stop()
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

    /**
     * Heidi's phone is reinstalled with a new identity key and messages Grace's walink client:
     * the default policy takes the message and reports IdentityChanged (the key the mock-server
     * names); GetIdentity reads it. A strict client refuses the next change, fails a send to the
     * device with UntrustedIdentity, and after ApproveIdentity gets the refused message.
     */
    @Test
    fun aContactThatReinstallsIsReportedAsAnIdentityChange() = runBlocking {
        val mock = Mock(ProcessBuilder(requireMockServer().path, "--seed", "23", "--until-stdin-closes").start())
        val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
        try {
            mock.call("/accounts", """{"phone":"15550007778","name":"Grace"}""")
            mock.call("/accounts", """{"phone":"15550008889","name":"Heidi"}""")
            suspend fun <T> waitFor(events: MutableList<ClientEvent>, what: String, pick: (ClientEvent) -> T?): T =
                withTimeoutOrNull(20_000) {
                    var found: T? = null
                    while (found == null) {
                        found = synchronized(events) { events.firstNotNullOfOrNull(pick) }
                        if (found == null) delay(50)
                    }
                    found
                } ?: fail("timed out waiting for $what; events: ${synchronized(events) { events.map { it::class.simpleName } }}")
            suspend fun started(policy: IdentityPolicy?, events: MutableList<ClientEvent>): Driver {
                val connected = CompletableDeferred<Unit>()
                val driver = Driver.start(
                    store = FileStore(tmp.resolve("grace")),
                    config = ClientConfig(trustRoot = testRoot, deviceName = "walink junit", identityPolicy = policy),
                    parent = scope,
                    url = mock.url,
                    onEvent = { event ->
                        events.add(event)
                        if (event is ClientEvent.State && event.state is ClientState.Connected) connected.complete(Unit)
                    },
                )
                if (policy == null) {
                    val code = driver.pairWithCode("15550007778")
                    mock.call("/accounts/15550007778/code", """{"code":"$code"}""")
                }
                withTimeout(20_000) { connected.await() }
                return driver
            }
            fun text(text: String): (ClientEvent) -> ClientEvent.Message? = { e -> (e as? ClientEvent.Message)?.takeIf { it.text == text } }

            val events = Collections.synchronizedList(ArrayList<ClientEvent>())
            val driver = started(null, events)
            mock.call("/accounts/15550008889/send", """{"to":"15550007778","text":"before"}""")
            waitFor(events, "the first message", text("before"))
            val answer = mock.call("/accounts/15550008889/reinstall", """{"to":"15550007778","text":"after the reinstall"}""")
            val change = waitFor(events, "IdentityChanged") { it as? ClientEvent.IdentityChanged }
            assertTrue(change.accepted)
            val hex = change.identity.joinToString("") { "%02x".format(it) }
            assertTrue(answer.contains("\"identity\":\"$hex\""), answer)
            waitFor(events, "the message after it", text("after the reinstall"))
            val stored = driver.getIdentity(change.address)
            assertTrue(stored.identity!!.contentEquals(change.identity))
            assertEquals(null, stored.pending)
            driver.close()

            val strictEvents = Collections.synchronizedList(ArrayList<ClientEvent>())
            val strict = started(IdentityPolicy.STRICT, strictEvents)
            mock.call("/accounts/15550008889/reinstall", """{"to":"15550007778","text":"held for approval"}""")
            val pending = waitFor(strictEvents, "IdentityChanged (strict)") { it as? ClientEvent.IdentityChanged }
            assertTrue(!pending.accepted)
            val failed = waitFor(strictEvents, "DecryptFailed") { it as? ClientEvent.DecryptFailed }
            assertTrue(failed.kind is DecryptFailureKind.UntrustedIdentity, failed.toString())
            val refused = runCatching { strict.sendText("15550008889@s.whatsapp.net", "to an untrusted device") }.exceptionOrNull()
            assertEquals("untrusted_identity", (refused as? DriverException)?.code, refused.toString())
            strict.approveIdentity(pending.address, pending.identity)
            waitFor(strictEvents, "the held message", text("held for approval"))
            strict.close()
        } finally {
            scope.cancel()
            mock.stop()
        }
    }

    /**
     * Structured content between two walink clients: a poll, a reply quoting it, a reaction
     * with the key of the receiver's copy, and a vote opened with the poll's secret and counted.
     */
    @Test
    fun contentBetweenTwoClientsReplyReactionAndAPollVoteCounted() = runBlocking {
        val mock = Mock(ProcessBuilder(requireMockServer().path, "--seed", "29", "--until-stdin-closes").start())
        val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
        try {
            suspend fun paired(phone: String, name: String, events: MutableList<ClientEvent>): Driver {
                mock.call("/accounts", """{"phone":"$phone","name":"$name"}""")
                return pairedByCode(mock, scope, phone, ClientConfig(trustRoot = testRoot, deviceName = "walink junit"), events)
            }
            suspend fun arrives(events: MutableList<ClientEvent>, pick: (ClientEvent.Message) -> Boolean): ClientEvent.Message =
                withTimeoutOrNull(20_000) {
                    var found: ClientEvent.Message? = null
                    while (found == null) {
                        found = synchronized(events) { events.filterIsInstance<ClientEvent.Message>().lastOrNull(pick) }
                        if (found == null) delay(50)
                    }
                    found
                } ?: fail("the message did not arrive")
            val kimEvents = Collections.synchronizedList(ArrayList<ClientEvent>())
            val leoEvents = Collections.synchronizedList(ArrayList<ClientEvent>())
            val kim = paired("15550009333", "Kim", kimEvents)
            val leo = paired("15550009444", "Leo", leoEvents)
            val kimJid = "15550009333@s.whatsapp.net"
            val leoJid = "15550009444@s.whatsapp.net"

            val poll = WaMessage(
                pollCreationMessage = PollCreationMessage(
                    name = "lunch?",
                    options = listOf("pizza", "sushi").map { PollCreationMessageOption(optionName = it) },
                    selectableOptionsCount = 0u,
                ),
            )
            val pollId = kim.sendMessage(leoJid, poll)
            val atLeo = arrives(leoEvents) { it.id == pollId }
            assertEquals("lunch?", atLeo.message.pollCreationMessage?.name)
            assertEquals(32, atLeo.message.messageContextInfo?.messageSecret?.size)

            val reply = WaMessage(
                extendedTextMessage = ExtendedTextMessage(
                    text = "pizza!",
                    contextInfo = ContextInfo(
                        stanzaId = pollId,
                        participant = kimJid,
                        quotedMessage = NestedMessage.Message(WaMessage(pollCreationMessage = atLeo.message.pollCreationMessage)),
                    ),
                ),
            )
            val replyId = leo.sendMessage(kimJid, reply)
            val gotReply = arrives(kimEvents) { it.id == replyId }
            assertEquals("pizza!", gotReply.text)
            val quoted = gotReply.message.extendedTextMessage?.contextInfo?.quotedMessage as NestedMessage.Message
            assertEquals("lunch?", quoted.message.pollCreationMessage?.name)

            val key = MessageKey(remoteJid = kimJid, fromMe = false, id = pollId)
            val reactionId = leo.sendMessage(kimJid, WaMessage(reactionMessage = ReactionMessage(key = key, text = "👍")))
            val reaction = arrives(kimEvents) { it.id == reactionId }
            assertEquals(MessageKey(remoteJid = leoJid, fromMe = true, id = pollId), reaction.message.reactionMessage?.key)
            assertEquals("👍", decodeMessage(reaction.raw).reactionMessage?.text)

            leo.sendPollVote(kimJid, pollId, listOf("sushi"))
            val vote = arrives(kimEvents) { it.pollVote != null }.pollVote!!
            assertEquals(pollId, vote.pollId)
            assertEquals(listOf("sushi"), vote.selected)
            assertEquals(listOf("pizza" to 0, "sushi" to 1), vote.tally.map { it.name to it.voters.size })
            val unknown = runCatching { leo.sendPollVote(kimJid, "3EB0NOPOLL", listOf("sushi")) }.exceptionOrNull()
            assertEquals("unknown_poll", (unknown as? DriverException)?.code, unknown.toString())
            assertEquals(poll, decodeMessage(encodeMessage(poll)))
            kim.close()
            leo.close()
        } finally {
            scope.cancel()
            mock.stop()
        }
    }

    @Test
    fun rejectAnIncomingCallShowTypingAndCheckNumbers() = runBlocking {
        val mock = Mock(ProcessBuilder(requireMockServer().path, "--seed", "31", "--until-stdin-closes").start())
        val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
        try {
            suspend fun paired(phone: String, name: String, events: MutableList<ClientEvent>): Driver {
                mock.call("/accounts", """{"phone":"$phone","name":"$name"}""")
                return pairedByCode(mock, scope, phone, ClientConfig(trustRoot = testRoot, deviceName = "walink junit", pushName = name), events)
            }
            suspend fun <T> waitFor(events: MutableList<ClientEvent>, what: String, pick: (ClientEvent) -> T?): T =
                withTimeoutOrNull(20_000) {
                    var found: T? = null
                    while (found == null) {
                        found = synchronized(events) { events.firstNotNullOfOrNull(pick) }
                        if (found == null) delay(50)
                    }
                    found
                } ?: fail("$what did not happen")
            val annEvents = Collections.synchronizedList(ArrayList<ClientEvent>())
            val benEvents = Collections.synchronizedList(ArrayList<ClientEvent>())
            val ann = paired("15553330001", "Ann", annEvents)
            val ben = paired("15553330002", "Ben", benEvents)

            val callId = Regex("\"call_id\":\"([^\"]+)\"")
                .find(mock.call("/accounts/15553330002/call", """{"to":"15553330001"}"""))!!.groupValues[1]
            val offer = waitFor(annEvents, "the offer") { e -> (e as? ClientEvent.Call)?.call?.takeIf { it.callId == callId } }
            assertEquals(CallAction.OFFER, offer.action)
            assertEquals("15553330002@s.whatsapp.net", offer.caller)
            assertEquals(CommandOutput.Done, ann.command(Command.RejectCall(callId = callId, caller = offer.caller)))
            withTimeoutOrNull(20_000) {
                while (!mock.call("/rejected-calls", null).contains(callId)) delay(50)
            } ?: fail("the server saw no reject")

            ann.command(Command.SendChatState(to = "15553330002@s.whatsapp.net", state = ChatState.COMPOSING))
            val typing = waitFor(benEvents, "typing") { e -> e as? ClientEvent.ChatState }
            assertEquals("15553330001@s.whatsapp.net", typing.chat)
            assertEquals(ChatState.COMPOSING, typing.state)

            val numbers = ann.command(Command.CheckNumbers(phones = listOf("15553330002", "15559999999"))) as CommandOutput.Numbers
            assertEquals(listOf(true, false), numbers.numbers.map { it.onWhatsapp })
            assertTrue(numbers.numbers[0].lid!!.endsWith("@lid"))
            mock.call("/fail-next-contact-query", """{"code":429}""")
            val limited = runCatching { ann.command(Command.CheckNumbers(phones = listOf("15553330002"))) }.exceptionOrNull()
            assertEquals("rate_limited", (limited as? DriverException)?.code, limited.toString())
            ann.close()
            ben.close()
        } finally {
            scope.cancel()
            mock.stop()
        }
    }

    /** The mock-server's websocket URL and control URL, and a control call (JSON in and out). */
    @Test
    fun mediaIsSentAndDownloadedThroughTheDriversFetch() = runBlocking {
        val mock = Mock(ProcessBuilder(requireMockServer().path, "--seed", "29", "--until-stdin-closes").start())
        val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
        try {
            mock.call("/accounts", """{"phone":"15550007001","name":"Ivan"}""")
            mock.call("/accounts", """{"phone":"15550007002","name":"Judy"}""")
            suspend fun paired(phone: String, events: MutableList<ClientEvent>): Driver =
                pairedByCode(mock, scope, phone, ClientConfig(trustRoot = testRoot, deviceName = "walink junit", mediaOrigin = mock.control), events)
            val ivan = paired("15550007001", Collections.synchronizedList(ArrayList()))
            val atJudy = Collections.synchronizedList(ArrayList<ClientEvent>())
            val judy = paired("15550007002", atJudy)
            val photo = ByteArray(80_000) { (it * 13 % 251).toByte() }
            val id = ivan.sendMedia("15550007002@s.whatsapp.net", MediaKind.IMAGE, photo, "image/jpeg", caption = "from kotlin")
            val message = withTimeout(20_000) {
                var found: ClientEvent.Message? = null
                while (found == null) {
                    found = atJudy.toList().filterIsInstance<ClientEvent.Message>().firstOrNull { it.id == id }
                    if (found == null) delay(50)
                }
                found
            }
            assertTrue(photo.contentEquals(judy.downloadMedia(message)))
            ivan.close()
            judy.close()
        } finally {
            scope.cancel()
            mock.stop()
        }
    }

    /**
     * A video of several MiB goes from a file to a file without either driver holding it: the
     * sender encrypts it into a temporary file that the upload streams, the receiver decrypts
     * the body as it arrives into a temporary sink that becomes the target only after the MAC
     * and hashes were checked. A body altered on the way ends in `media_invalid`, no target file
     * and no temporary file left.
     */
    @Test
    fun aFileIsStreamedUpAndDownIntoAFileAndATamperedBodyLeavesNoFile(@TempDir dir: Path) = runBlocking {
        val mock = Mock(ProcessBuilder(requireMockServer().path, "--seed", "37", "--until-stdin-closes").start())
        val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
        try {
            mock.call("/accounts", """{"phone":"15550007101","name":"Kim"}""")
            mock.call("/accounts", """{"phone":"15550007102","name":"Lee"}""")
            val tamper = java.util.concurrent.atomic.AtomicBoolean(false)
            val leeTemp = Files.createDirectories(dir.resolve("lee-temp"))
            val leeMedia = object : FileMediaHost(leeTemp) {
                override fun open(body: java.io.InputStream): java.io.InputStream =
                    if (!tamper.get()) body else object : java.io.FilterInputStream(body) {
                        private var at = 0L
                        override fun read(b: ByteArray, off: Int, len: Int): Int {
                            val n = super.read(b, off, len)
                            // Flip one bit 1 MiB into the body.
                            if (n > 0 && at <= 1_048_576 && 1_048_576 < at + n) b[off + (1_048_576 - at).toInt()] = (b[off + (1_048_576 - at).toInt()].toInt() xor 1).toByte()
                            if (n > 0) at += n
                            return n
                        }
                    }
            }
            val config = ClientConfig(trustRoot = testRoot, deviceName = "walink junit", mediaOrigin = mock.control)
            val kim = pairedByCode(mock, scope, "15550007101", config, Collections.synchronizedList(ArrayList()))
            val atLee = Collections.synchronizedList(ArrayList<ClientEvent>())
            val lee = pairedByCode(mock, scope, "15550007102", config, atLee, leeMedia)
            val source = dir.resolve("video.mp4")
            val random = java.util.Random(7)
            Files.newOutputStream(source).use { out ->
                val piece = ByteArray(100_000)
                repeat(60) { random.nextBytes(piece); out.write(piece) }
                out.write(piece, 0, 12_345)
            }
            val id = kim.sendMedia("15550007102@s.whatsapp.net", MediaKind.VIDEO, source, "video/mp4", caption = "streamed", seconds = 3u)
            val message = withTimeout(20_000) {
                var found: ClientEvent.Message? = null
                while (found == null) {
                    found = atLee.toList().filterIsInstance<ClientEvent.Message>().firstOrNull { it.id == id }
                    if (found == null) delay(50)
                }
                found
            }
            val target = dir.resolve("received.mp4")
            assertEquals(Files.size(source).toULong(), lee.downloadMedia(message, target))
            assertEquals(-1L, Files.mismatch(source, target))

            tamper.set(true)
            val refused = dir.resolve("refused.mp4")
            val error = assertThrows<DriverException> { runBlocking { lee.downloadMedia(message, refused) } }
            assertEquals("media_invalid", error.code)
            assertTrue(!Files.exists(refused))
            val left = Files.walk(leeTemp).use { paths -> paths.filter { Files.isRegularFile(it) }.toList() }
            assertEquals(emptyList<Path>(), left)
            kim.close()
            lee.close()
        } finally {
            scope.cancel()
            mock.stop()
        }
    }

    /**
     * History at pairing: the phone's chats arrive as `HistoryConversation`, their messages as
     * `Message` events with `history` set (own and others'), push names and each chunk's
     * progress; "none" brings neither conversations nor messages.
     */
    @Test
    fun theHistoryAtPairingArrivesAsConversationsMessagesAndProgress() = runBlocking {
        val mock = Mock(ProcessBuilder(requireMockServer().path, "--seed", "41", "--until-stdin-closes").start())
        val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
        try {
            val (ann, ben, cal) = listOf("15550008201", "15550008202", "15550008203")
            for ((phone, name) in listOf(ann to "Ann", ben to "Ben", cal to "Cal")) mock.call("/accounts", """{"phone":"$phone","name":"$name"}""")
            repeat(12) { mock.call("/accounts/$ann/send", """{"to":"$ben","text":"ann to ben $it"}""") }
            mock.call("/accounts/$ann/send", """{"to":"$cal","text":"ann to cal"}""")
            mock.call("/accounts/$ben/send", """{"to":"$ann","text":"ben to ann"}""")
            suspend fun paired(phone: String, history: String?): List<ClientEvent> {
                val events = Collections.synchronizedList(ArrayList<ClientEvent>())
                val config = ClientConfig(trustRoot = testRoot, deviceName = "walink junit", mediaOrigin = mock.control, history = history)
                val driver = pairedByCode(mock, scope, phone, config, events)
                withTimeout(30_000) {
                    while (events.toList().none { it is ClientEvent.HistorySync && it.progress == 100u }) delay(50)
                }
                driver.close()
                return events.toList()
            }
            val seen = paired(ann, null)
            val chunks = seen.filterIsInstance<ClientEvent.HistorySync>()
            assertTrue(chunks.all { it.failure == null }, "$chunks")
            assertEquals("initial_bootstrap", chunks.first().syncType)
            val chats = seen.filterIsInstance<ClientEvent.HistoryConversation>().map { it.chat }.toSet()
            assertTrue(chats.containsAll(listOf("$ben@s.whatsapp.net", "$cal@s.whatsapp.net")), "$chats")
            val history = seen.filterIsInstance<ClientEvent.Message>().filter { it.history }
            val want = ((0 until 12).map { "ann to ben $it" } + listOf("ann to cal", "ben to ann")).sorted()
            assertEquals(want, history.map { it.text }.sortedBy { it })
            assertEquals(want.size.toUInt(), chunks.sumOf { it.messages })
            val mine = history.first { it.text == "ann to cal" }
            assertTrue(mine.fromMe)
            assertEquals("$cal@s.whatsapp.net", mine.chat)
            assertEquals("ann to cal", mine.message.conversation)
            val theirs = history.first { it.text == "ben to ann" }
            assertTrue(!theirs.fromMe)
            assertEquals("$ben@s.whatsapp.net", theirs.sender)
            val names = seen.filterIsInstance<ClientEvent.PushName>().map { it.jid to it.name }.sortedBy { it.first }
            assertEquals(listOf("$ben@s.whatsapp.net" to "Ben", "$cal@s.whatsapp.net" to "Cal"), names)

            val none = paired(cal, "none")
            assertTrue(none.none { it is ClientEvent.Message && it.history })
            assertTrue(none.none { it is ClientEvent.HistoryConversation })
        } finally {
            scope.cancel()
            mock.stop()
        }
    }

    @Test
    fun aGroupIsCreatedAMemberAddedAndANonAdminRefused() = runBlocking {
        val mock = Mock(ProcessBuilder(requireMockServer().path, "--seed", "31", "--until-stdin-closes").start())
        val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
        try {
            for ((phone, name) in listOf("15550501111" to "Olga", "15550502222" to "Paul", "15550503333" to "Quinn", "15550504444" to "Rosa")) {
                mock.call("/accounts", """{"phone":"$phone","name":"$name"}""")
            }
            mock.call("/group-options", """{"add_restricted":["15550504444"]}""")
            suspend fun paired(phone: String, events: MutableList<ClientEvent>): Driver =
                pairedByCode(mock, scope, phone, ClientConfig(trustRoot = testRoot, deviceName = "walink junit"), events)
            val olga = paired("15550501111", Collections.synchronizedList(ArrayList()))
            val atPaul = Collections.synchronizedList(ArrayList<ClientEvent>())
            val paul = paired("15550502222", atPaul)

            val created = (olga.command(Command.Group(GroupCommand.Create("Team", listOf("15550502222@s.whatsapp.net", "15550504444@s.whatsapp.net")))) as CommandOutput.Group).output as GroupOutput.Created
            assertEquals("Team", created.info.subject)
            val rosa = created.participants.first { it.jid == "15550504444@s.whatsapp.net" }
            assertTrue(rosa.status is ParticipantStatus.InviteRequired, "${rosa.status}")
            val group = created.info.jid

            val added = (olga.command(Command.Group(GroupCommand.ChangeParticipants(group, ParticipantAction.ADD, listOf("15550503333@s.whatsapp.net", "15550509999@s.whatsapp.net")))) as CommandOutput.Group).output as GroupOutput.Participants
            assertEquals(listOf(ParticipantStatus.Ok, ParticipantStatus.NotFound), added.results.map { it.status })

            withTimeout(20_000) {
                while (atPaul.toList().filterIsInstance<ClientEvent.Group>().none { event ->
                        event.changes.any { it is GroupChange.Participants && it.change == MembershipChange.ADDED && it.participants.any { p -> p.jid == "15550503333@s.whatsapp.net" } }
                    }) delay(50)
            }
            val refused = runCatching {
                paul.command(Command.Group(GroupCommand.ChangeParticipants(group, ParticipantAction.REMOVE, listOf("15550503333@s.whatsapp.net"))))
            }.exceptionOrNull()
            assertEquals("forbidden", (refused as? DriverException)?.code, refused.toString())
            assertTrue(mock.call("/groups/$group", null).contains("\"members\":[\"15550501111\",\"15550502222\",\"15550503333\"]"))
            olga.close()
            paul.close()
        } finally {
            scope.cancel()
            mock.stop()
        }
    }

    /** A driver on `mock` linked to `phone` by a pairing code, returned once connected; every event goes to `events`. */
    private suspend fun pairedByCode(
        mock: Mock,
        scope: CoroutineScope,
        phone: String,
        config: ClientConfig,
        events: MutableList<ClientEvent>,
        media: FileMediaHost = FileMediaHost(),
    ): Driver {
        val connected = CompletableDeferred<Unit>()
        val driver = Driver.start(
            store = MemoryStore(),
            config = config,
            parent = scope,
            url = mock.url,
            media = media,
            onEvent = { event ->
                events.add(event)
                if (event is ClientEvent.State && event.state is ClientState.Connected) connected.complete(Unit)
            },
        )
        val code = driver.pairWithCode(phone)
        mock.call("/accounts/$phone/code", """{"code":"$code"}""")
        withTimeout(20_000) { connected.await() }
        return driver
    }

    private class Mock(val process: Process) {
        val url: String
        val control: String
        private val http = HttpClient.newHttpClient()

        init {
            val banner = process.inputStream.bufferedReader().readLine().split(" ")
            url = banner[banner.indexOf("listening") + 1] + "/ws/chat"
            control = banner[banner.indexOf("control") + 1]
        }

        fun call(route: String, body: String?): String {
            val builder = HttpRequest.newBuilder(URI.create(control + route))
            val request = if (body == null) builder.GET().build() else builder.POST(HttpRequest.BodyPublishers.ofString(body)).build()
            val response = http.send(request, HttpResponse.BodyHandlers.ofString())
            assertEquals(200, response.statusCode(), response.body())
            return response.body()
        }

        fun stop() {
            process.outputStream.close()
            process.destroy()
        }
    }

    @Test
    fun theDriverDownloadsAnAppStateSnapshotBlob() = runBlocking {
        val mock = Mock(ProcessBuilder(requireMockServer().path, "--seed", "19", "--until-stdin-closes").start())
        val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
        try {
            val chats = (1..4).map { "1555777000$it@s.whatsapp.net" }
            for (phone in listOf("15550009901", "15550009902", "15550009903")) {
                mock.call("/accounts", """{"phone":"$phone"}""")
                mock.call("/accounts/$phone/app-state-options", """{"auto_share":true,"external_snapshots":true,"external_mutations":true}""")
                // Four patches: the phone makes a snapshot at version 4, served as a blob.
                for (chat in chats) assertTrue(mock.call("/accounts/$phone/app-state", """{"action":"mute","chat":"$chat"}""").contains("\"regular_high\""))
            }

            class Paired(val driver: Driver, val events: MutableList<ClientEvent>, val errors: MutableList<Throwable>) {
                suspend fun <T : ClientEvent> waitFor(what: String, pick: (ClientEvent) -> T?): T = withTimeoutOrNull(30_000) {
                    var found: T? = null
                    while (found == null) {
                        found = synchronized(events) { events.firstNotNullOfOrNull(pick) }
                        if (found == null) delay(50)
                    }
                    found
                } ?: fail("timed out waiting for $what; events: ${synchronized(events) { events.map { it::class.simpleName } }}")
            }
            suspend fun paired(phone: String, mediaOrigin: String? = null, fetcher: Fetcher = JdkFetcher): Paired {
                val events = Collections.synchronizedList(ArrayList<ClientEvent>())
                val errors = Collections.synchronizedList(ArrayList<Throwable>())
                val driver = Driver.start(
                    store = MemoryStore(),
                    config = ClientConfig(trustRoot = testRoot, deviceName = "walink junit", mediaOrigin = mediaOrigin),
                    parent = scope,
                    url = mock.url,
                    onEvent = { events.add(it) },
                    onError = { errors.add(it) },
                    fetch = fetcher,
                )
                val code = driver.pairWithCode(phone)
                mock.call("/accounts/$phone/code", """{"code":"$code"}""")
                return Paired(driver, events, errors)
            }
            fun mutedForever(settings: uniffi.walink_ffi.ChatSettings) = settings.mutedUntil is MuteUntil.Forever

            // The default fetch, from the mock-server's media path (the core joins the configured
            // origin and the blob's path); held back by a gate at first, to show the fetch runs
            // outside the driver's loop.
            val fetched = Collections.synchronizedList(ArrayList<String>())
            val asked = CompletableDeferred<String>()
            val gate = CompletableDeferred<Unit>()
            val first = paired("15550009901", mediaOrigin = mock.control + "/", fetcher = { request ->
                // The phone's history blobs (md-msg-hist) pass untouched.
                if (request.url.contains("/md-app-state/")) {
                    asked.complete(request.url)
                    gate.await()
                    fetched.add(request.url)
                }
                JdkFetcher.fetch(request)
            })
            val url = withTimeout(30_000) { asked.await() }
            assertTrue(url.startsWith(mock.control + "/v/sim/md-app-state/"), url)
            val meanwhile = withTimeout(10_000) { first.driver.command(Command.GetChatSettings(chats[0])) } as CommandOutput.ChatSettings
            assertEquals(null, meanwhile.settings.mutedUntil, "the loop answers while the blob is pending; nothing applied yet")
            gate.complete(Unit)
            for (chat in chats) {
                val event = first.waitFor("settings of $chat") { (it as? ClientEvent.ChatSettings)?.takeIf { e -> e.chat == chat } }
                assertTrue(mutedForever(event.settings), "$chat muted forever: ${event.settings}")
            }
            assertTrue(fetched.isNotEmpty() && fetched.all { it.startsWith(mock.control + "/v/sim/md-app-state/") }, "$fetched")
            val answer = first.driver.command(Command.GetChatSettings(chats[1])) as CommandOutput.ChatSettings
            assertTrue(mutedForever(answer.settings))
            assertTrue(first.events.none { it is ClientEvent.AppStateFatal })
            assertEquals(emptyList<Throwable>(), first.errors.toList())

            // A patch of 20 mutations: its mutations are served as an external blob, which the
            // driver fetches too.
            val many = (10..29).map { "155577700$it@s.whatsapp.net" }
            val jids = many.joinToString(",") { "\"$it\"" }
            assertTrue(mock.call("/accounts/15550009901/app-state", """{"action":"pin","chats":[$jids]}""").contains("\"mutations\":20"))
            for (chat in many) {
                val event = first.waitFor("pin of $chat") { (it as? ClientEvent.ChatSettings)?.takeIf { e -> e.chat == chat } }
                assertTrue(event.settings.pinnedAt != null, "$chat pinned")
            }
            val counters = mock.call("/accounts/15550009901/app-state-options", "{}")
            assertTrue(!counters.contains("\"external_patches_served\":0"), counters)
            assertTrue(fetched.size >= 2 && fetched.all { it.startsWith(mock.control + "/v/sim/md-app-state/") }, "the snapshot and the mutations: $fetched")
            assertEquals(emptyList<Throwable>(), first.errors.toList())
            first.driver.close()

            // A host fetch that fails: the core retries, then a typed fatal; nothing applied.
            val attempts = Collections.synchronizedList(ArrayList<String>())
            val failing = paired("15550009902", fetcher = { request ->
                if (request.url.contains("/md-app-state/")) attempts.add(request.url)
                throw java.io.IOException("offline")
            })
            val fatal = failing.waitFor("a fatal") { it as? ClientEvent.AppStateFatal }
            assertEquals(Collection.REGULAR_HIGH, fatal.collection)
            assertEquals(AppStateFailure.Download, fatal.error)
            assertTrue(attempts.size >= 2 && attempts.all { it.startsWith("${ENDPOINTS.mediaOrigin}/v/sim/md-app-state/") }, "$attempts")
            assertTrue(failing.errors.isNotEmpty() && failing.errors.all { (it as? DriverException)?.code == "fetch_failed" }, "${failing.errors}")
            assertTrue(failing.events.none { it is ClientEvent.ChatSettings }, "nothing half-applied")
            failing.driver.close()

            // Any status reaches the core, which decides: a 404 is a failed download, fetched again.
            val statuses = Collections.synchronizedList(ArrayList<Int>())
            val refetching = paired("15550009903", mediaOrigin = mock.control, fetcher = { request ->
                if (!request.url.contains("/md-app-state/")) {
                    JdkFetcher.fetch(request) // the phone's history blobs
                } else {
                    val result = if (statuses.isEmpty()) FetchResult.Response(404u, ByteArray(0)) else JdkFetcher.fetch(request)
                    statuses.add(((result as? FetchResult.Response)?.status ?: 0u).toInt())
                    result
                }
            })
            refetching.waitFor("settings") { (it as? ClientEvent.ChatSettings)?.takeIf { e -> e.chat == chats[0] } }
            assertEquals(listOf(404, 200), statuses.take(2))
            assertEquals(emptyList<Throwable>(), refetching.errors.toList(), "a response of any status is not a driver error")
            refetching.driver.close()
        } finally {
            scope.cancel()
            mock.stop()
        }
    }
}
