// Streamed media: a host that keeps media bodies in temporary files, so a file of any size never
// sits whole in memory (the Kotlin side of docs/decisions.md, "Streamed media bodies").
// - Upload: the source file is encrypted a piece at a time with the core's MediaEncryptor into a
//   temporary file (the upload URL names the encrypted file's hash, so it must exist before the
//   upload starts); the core's fetch then names that file (`hostBody`) and it is streamed out.
// - Download: a 2xx body is decrypted as it arrives, with the core's MediaDecryptor, into a
//   temporary sink; the sink becomes the caller's file only after the MAC matched and the core
//   found both hashes equal to the message's (`MediaSaved`); otherwise it is deleted.
package walink

import java.io.IOException
import java.io.InputStream
import java.io.OutputStream
import java.net.http.HttpRequest
import java.nio.file.AtomicMoveNotSupportedException
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.StandardCopyOption
import java.nio.file.StandardOpenOption
import java.nio.file.attribute.PosixFilePermissions
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicLong
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.runInterruptible
import kotlinx.coroutines.withContext
import uniffi.walink_ffi.DecryptInto
import uniffi.walink_ffi.FetchError
import uniffi.walink_ffi.FetchRequest
import uniffi.walink_ffi.FetchResult
import uniffi.walink_ffi.HostUpload
import uniffi.walink_ffi.MediaCryptoException
import uniffi.walink_ffi.MediaDecryptor
import uniffi.walink_ffi.MediaEncryptor
import uniffi.walink_ffi.StreamedBody
import uniffi.walink_ffi.newMediaKey

/** The piece read, encrypted or decrypted and written at a time (the core's MEDIA_STREAM_CHUNK_BYTES). */
const val MEDIA_CHUNK_BYTES = 64 * 1024

/**
 * Keeps streamed media bodies in temporary files (mode 0600, in one private directory, mode
 * 0700, under [root]) and carries out the fetches that stream them with the JDK's HttpClient.
 * One per driver; [dispose] deletes whatever is left.
 */
open class FileMediaHost(private val root: Path = Path.of(System.getProperty("java.io.tmpdir"))) {
    private var directory: Path? = null
    private val next = AtomicLong()
    private val bodies = ConcurrentHashMap<ULong, Path>()
    private val sinks = ConcurrentHashMap<ULong, Path>()

    @Synchronized
    private fun path(name: String): Path {
        val dir = directory ?: Files.createTempDirectory(root, "walink-media-", PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")))
            .also { directory = it }
        return dir.resolve(name)
    }

    private fun createPrivate(path: Path): OutputStream {
        Files.createFile(path, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")))
        return Files.newOutputStream(path, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)
    }

    /**
     * Encrypts the file [source] under a fresh media key into a temporary file; returns the
     * `hostBody` of a `SendMedia` command. Release it with [releaseBody] when the command ended.
     */
    suspend fun prepareUpload(source: Path, mediaType: String): HostUpload = withContext(Dispatchers.IO) {
        val id = next.incrementAndGet().toULong()
        val target = path("$id.enc")
        bodies[id] = target
        try {
            val mediaKey = newMediaKey()
            MediaEncryptor(mediaKey, mediaType).use { encryptor ->
                createPrivate(target).use { out ->
                    Files.newInputStream(source).use { input ->
                        val buffer = ByteArray(MEDIA_CHUNK_BYTES)
                        while (true) {
                            val n = input.readNBytes(buffer, 0, buffer.size)
                            if (n <= 0) break
                            out.write(encryptor.update(if (n == buffer.size) buffer else buffer.copyOf(n)))
                        }
                    }
                    val end = encryptor.finish()
                    out.write(end.tail)
                    HostUpload(id, mediaKey, end.hashes)
                }
            }
        } catch (e: Exception) {
            releaseBody(id)
            throw if (e is IOException) DriverException("media_source_failed", "reading the media failed: ${e.message}", e) else e
        }
    }

    /** Deletes the encrypted file [id]. */
    fun releaseBody(id: ULong) {
        bodies.remove(id)?.let { Files.deleteIfExists(it) }
    }

    /** A new sink for a download: a temporary file that is not the caller's until [commitSink]. */
    fun newSink(): ULong {
        val id = next.incrementAndGet().toULong()
        sinks[id] = path("$id.part")
        return id
    }

    /** Moves the verified plaintext of sink [id] to [to] (replacing a file there). */
    suspend fun commitSink(id: ULong, to: Path) = withContext(Dispatchers.IO) {
        val from = sinks.remove(id) ?: throw DriverException("host_body", "no media sink $id")
        try {
            Files.move(from, to, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE)
        } catch (e: AtomicMoveNotSupportedException) {
            // Another file system: copy, then delete.
            Files.move(from, to, StandardCopyOption.REPLACE_EXISTING)
        }
    }

    /** Deletes sink [id] and what it holds. */
    fun discardSink(id: ULong) {
        sinks.remove(id)?.let { Files.deleteIfExists(it) }
    }

    /** Deletes every file left (the driver ended). */
    @Synchronized
    fun dispose() {
        bodies.clear()
        sinks.clear()
        val dir = directory ?: return
        directory = null
        Files.walk(dir).use { paths -> paths.sorted(Comparator.reverseOrder()).forEach { Files.deleteIfExists(it) } }
    }

    /** Whether [request] streams (a body the host holds, or a response to decrypt): [perform] it. */
    fun streams(request: FetchRequest): Boolean = request.hostBody != null || request.decrypt != null

    /**
     * Carries out a streaming fetch: sends the held body from its file, and decrypts a 2xx
     * answer to a `decrypt` request into its sink (`FetchResult.Streamed`); any other answer is
     * read into memory as usual (a non-2xx answer to a `decrypt` request is not read).
     */
    suspend fun perform(request: FetchRequest): FetchResult = withContext(Dispatchers.IO) {
        val body = request.hostBody?.let { held ->
            val file = bodies[held.id] ?: return@withContext FetchResult.Failed(FetchError.HOST_BODY)
            HttpRequest.BodyPublishers.ofFile(file)
        }
        val decrypt = request.decrypt
        val read: (suspend (Int, InputStream) -> FetchResult)? = decrypt?.let {
            { status, input ->
                if (status !in 200..299) {
                    FetchResult.Response(status.toUShort(), ByteArray(0)) // the body of a refusal is not read
                } else {
                    decryptInto(decrypt, open(input), request.maxResponseBytes)
                        ?.let { FetchResult.Streamed(status.toUShort(), it) } ?: FetchResult.Failed(FetchError.TOO_LARGE)
                }
            }
        }
        try {
            JdkFetcher.exchange(request, body, read)
        } catch (e: HostBodyException) {
            FetchResult.Failed(FetchError.HOST_BODY)
        }
    }

    /** The response body as it is read (a test may alter it to check what the host refuses). */
    protected open fun open(body: InputStream): InputStream = body

    /** The host could not read its body or write its sink (not an IOException: not the network's). */
    private class HostBodyException(cause: Throwable) : RuntimeException(cause)

    /**
     * Decrypts [input] into sink [decrypt].sink, at most [maxBytes] of it: the decryptor's
     * verdict, or null for a body over [maxBytes]. The sink's plaintext is not verified until
     * the core ends the command with `MediaSaved`.
     */
    private suspend fun decryptInto(decrypt: DecryptInto, input: InputStream, maxBytes: ULong): StreamedBody? {
        val sink = sinks[decrypt.sink] ?: throw HostBodyException(IllegalStateException("no media sink ${decrypt.sink}"))
        val out = try {
            Files.deleteIfExists(sink)
            createPrivate(sink)
        } catch (e: IOException) {
            throw HostBodyException(e)
        }
        MediaDecryptor(decrypt.mediaKey, decrypt.mediaType, maxBytes).use { decryptor ->
            out.use {
                try {
                    val buffer = ByteArray(MEDIA_CHUNK_BYTES)
                    while (true) {
                        val n = runInterruptible { input.readNBytes(buffer, 0, buffer.size) }
                        if (n <= 0) break
                        write(out, decryptor.update(if (n == buffer.size) buffer else buffer.copyOf(n)))
                    }
                    val end = decryptor.finish()
                    write(out, end.tail)
                    return StreamedBody.Decrypted(end.hashes)
                } catch (e: MediaCryptoException.Refused) {
                    if (e.failure == uniffi.walink_ffi.MediaFailure.TOO_LARGE) return null
                    return StreamedBody.Refused(e.failure)
                }
            }
        }
    }

    private fun write(out: OutputStream, bytes: ByteArray) {
        try {
            out.write(bytes)
        } catch (e: IOException) {
            throw HostBodyException(e)
        }
    }
}
