// The bot's command line: `--store DIR` (the session, default walink-bot-session), `--phone N`
// (pair by code for N instead of by QR), `--url` and `--trust-root HEX` (another server:
// walink-sim's mock-server). Runs until Ctrl-C; the device stays linked.
package walink.examples.bot

import java.nio.file.Path
import java.util.concurrent.CountDownLatch
import kotlin.system.exitProcess
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.runBlocking
import walink.Driver

private const val USAGE = "usage: kotlin-bot [--store DIR] [--phone DIGITS] [--url WS_URL] [--trust-root HEX]"

fun main(args: Array<String>) {
    val options = args.toList().chunked(2).associate { pair ->
        if (pair.size != 2 || !pair[0].startsWith("--")) {
            System.err.println(USAGE)
            exitProcess(2)
        }
        pair[0].removePrefix("--") to pair[1]
    }
    val unknown = options.keys - setOf("store", "phone", "url", "trust-root")
    if (unknown.isNotEmpty()) {
        System.err.println("unknown option --${unknown.first()}\n$USAGE")
        exitProcess(2)
    }
    val store = Path.of(options["store"] ?: "walink-bot-session")
    val bot = Bot(
        store = store,
        url = options["url"] ?: Driver.DEFAULT_URL,
        trustRoot = options["trust-root"]?.chunked(2)?.map { it.toInt(16).toByte() }?.toByteArray(),
        phone = options["phone"],
    )
    val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
    val stop = CountDownLatch(1)
    val stopped = CountDownLatch(1)
    Runtime.getRuntime().addShutdownHook(Thread {
        stop.countDown()
        stopped.await()
    })
    runBlocking {
        bot.start(scope)
        println("session in $store; Ctrl-C stops (the device stays linked)")
    }
    stop.await()
    runBlocking { bot.close() }
    stopped.countDown()
}
