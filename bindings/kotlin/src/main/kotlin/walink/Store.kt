// The storage contract between the driver and a host's store, and two stores: in memory and in
// files (the same on-disk format as the npm and Python file stores, described in docs/hosts.md).
package walink

import java.io.IOException
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.channels.FileChannel
import java.nio.charset.CharacterCodingException
import java.nio.charset.CodingErrorAction
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.StandardCopyOption
import java.nio.file.StandardOpenOption
import java.util.zip.CRC32
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock
import kotlinx.coroutines.withContext

/** One persisted record: an opaque value under a space and a key. */
class Record(val space: String, val key: String, val value: ByteArray) {
    override fun equals(other: Any?): Boolean =
        other is Record && other.space == space && other.key == key && other.value.contentEquals(value)

    override fun hashCode(): Int = (space.hashCode() * 31 + key.hashCode()) * 31 + value.contentHashCode()

    override fun toString(): String = "Record($space/$key, ${value.size} bytes)"
}

/** The address of a record. */
data class RecordKey(val space: String, val key: String)

/** One change of a batch. */
sealed interface Change {
    /** Insert or overwrite a record. */
    class Put(val space: String, val key: String, val value: ByteArray) : Change

    /** Delete a record (deleting an absent one is fine). */
    class Delete(val space: String, val key: String) : Change

    /** Delete every record of the client (the device was logged out). */
    data object DeleteAll : Change
}

/** What every shipped store throws; [code] is stable (`invalid_change`, `closed`, `io`, `corrupt`, `too_large`). */
class StoreException(val code: String, message: String, cause: Throwable? = null) : Exception(message, cause)

/**
 * What the driver needs of a store. [applyBatch] applies the changes in order and atomically:
 * once it returns, [loadAll] sees all of them (a durable store keeps them across a crash); if it
 * throws, the store holds none or all of them, never a part, and the driver rebuilds its client
 * from [loadAll].
 */
interface Store {
    /** Applies a batch atomically (and durably, for a durable store). */
    suspend fun applyBatch(changes: List<Change>)

    /** Every record, in no particular order (used when a client is built or rebuilt). */
    suspend fun loadAll(): List<Record>

    /** The records under [keys] that exist (the core's on-demand loads). */
    suspend fun load(keys: List<RecordKey>): List<Record>
}

/** Checks a whole batch before anything is applied, copying the values. */
fun checkBatch(changes: List<Change>): List<Change> =
    changes.mapIndexed { index, change ->
        fun checkSpace(space: String) {
            if (space.isEmpty() || space.contains('\u0000')) {
                throw StoreException("invalid_change", "change $index: space must be a non-empty string without NUL")
            }
        }
        when (change) {
            is Change.Put -> Change.Put(change.space, change.key, change.value.copyOf()).also { checkSpace(change.space) }
            is Change.Delete -> change.also { checkSpace(change.space) }
            Change.DeleteAll -> change
        }
    }

private fun MutableMap<Pair<String, String>, ByteArray>.apply(changes: List<Change>) {
    for (change in changes) {
        when (change) {
            is Change.Put -> this[change.space to change.key] = change.value
            is Change.Delete -> remove(change.space to change.key)
            Change.DeleteAll -> clear()
        }
    }
}

private fun Map<Pair<String, String>, ByteArray>.pick(keys: List<RecordKey>): List<Record> =
    keys.mapNotNull { k -> this[k.space to k.key]?.let { Record(k.space, k.key, it.copyOf()) } }

/** Records in a map: tests, short-lived clients, hosts that persist elsewhere. Not durable. */
class MemoryStore : Store {
    private val records = LinkedHashMap<Pair<String, String>, ByteArray>()
    private val mutex = Mutex()
    private var closed = false

    override suspend fun applyBatch(changes: List<Change>) {
        val checked = checkBatch(changes)
        mutex.withLock {
            checkOpen()
            records.apply(checked)
        }
    }

    override suspend fun loadAll(): List<Record> = mutex.withLock {
        checkOpen()
        records.map { (id, value) -> Record(id.first, id.second, value.copyOf()) }
    }

    override suspend fun load(keys: List<RecordKey>): List<Record> = mutex.withLock {
        checkOpen()
        records.pick(keys)
    }

    /** Marks the store closed; later calls throw `closed`. */
    suspend fun close() = mutex.withLock { closed = true }

    private fun checkOpen() {
        if (closed) throw StoreException("closed", "the store is closed")
    }
}

/** The file format shared with the npm and Python stores: frames of `u32 length | u32 crc32 | payload`. */
object RecordFormat {
    /** A frame larger than this is damage, not data. */
    const val MAX_FRAME_BYTES = 1 shl 30

    /** The header of a snapshot file: "WLKS" and the format version. */
    val SNAPSHOT_MAGIC = byteArrayOf(0x57, 0x4c, 0x4b, 0x53, 1, 0, 0, 0)

    private const val OP_PUT: Byte = 1
    private const val OP_DELETE: Byte = 2
    private const val OP_DELETE_ALL: Byte = 3
    private const val HEADER = 8

    /** Encodes one batch as a frame. */
    fun encodeFrame(changes: List<Change>): ByteArray {
        val encoded = changes.map {
            when (it) {
                is Change.Put -> Triple(it, it.space.toByteArray(), it.key.toByteArray())
                is Change.Delete -> Triple(it, it.space.toByteArray(), it.key.toByteArray())
                Change.DeleteAll -> Triple(it, ByteArray(0), ByteArray(0))
            }
        }
        var size = 4L
        for ((change, space, key) in encoded) {
            size += when (change) {
                Change.DeleteAll -> 1
                is Change.Put -> 1 + 4 + space.size + 4 + key.size + 4 + change.value.size
                is Change.Delete -> 1 + 4 + space.size + 4 + key.size
            }
        }
        if (size > MAX_FRAME_BYTES) throw StoreException("too_large", "a batch of $size bytes exceeds $MAX_FRAME_BYTES")
        val buffer = ByteBuffer.allocate(HEADER + size.toInt()).order(ByteOrder.LITTLE_ENDIAN)
        buffer.position(HEADER)
        buffer.putInt(encoded.size)
        for ((change, space, key) in encoded) {
            if (change == Change.DeleteAll) {
                buffer.put(OP_DELETE_ALL)
                continue
            }
            buffer.put(if (change is Change.Put) OP_PUT else OP_DELETE)
            buffer.putInt(space.size).put(space)
            buffer.putInt(key.size).put(key)
            if (change is Change.Put) buffer.putInt(change.value.size).put(change.value)
        }
        val crc = CRC32().apply { update(buffer.array(), HEADER, size.toInt()) }.value
        buffer.putInt(0, size.toInt()).putInt(4, crc.toInt())
        return buffer.array()
    }

    /** The result of [readFrames]: the change lists, the end of the last good frame, and whether a torn frame follows. */
    class Frames(val frames: List<List<Change>>, val end: Int, val torn: Boolean)

    /** Reads frames from [start]; damage anywhere but in the last frame throws `corrupt`. */
    fun readFrames(data: ByteArray, start: Int = 0): Frames {
        val view = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN)
        val frames = ArrayList<List<Change>>()
        var at = start
        while (at < data.size) {
            if (data.size - at < HEADER) return Frames(frames, at, true)
            val size = view.getInt(at).toLong() and 0xffffffffL
            val crc = view.getInt(at + 4).toLong() and 0xffffffffL
            val end = at + HEADER + size
            if (size > MAX_FRAME_BYTES || end > data.size) return Frames(frames, at, true)
            val actual = CRC32().apply { update(data, at + HEADER, size.toInt()) }.value
            if (actual != crc) {
                if (end == data.size.toLong()) return Frames(frames, at, true)
                throw StoreException("corrupt", "damaged frame at offset $at followed by more data")
            }
            frames.add(decodePayload(ByteBuffer.wrap(data, at + HEADER, size.toInt()).slice().order(ByteOrder.LITTLE_ENDIAN), at))
            at = end.toInt()
        }
        return Frames(frames, at, false)
    }

    private fun decodePayload(payload: ByteBuffer, offset: Int): List<Change> {
        fun fail(): Nothing = throw StoreException("corrupt", "malformed frame at offset $offset")
        fun u32(): Int {
            if (payload.remaining() < 4) fail()
            val n = payload.int
            if (n < 0) fail()
            return n
        }
        fun bytes(): ByteArray {
            val n = u32()
            if (payload.remaining() < n) fail()
            return ByteArray(n).also { payload.get(it) }
        }
        fun text(): String = try {
            Charsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT)
                .decode(ByteBuffer.wrap(bytes())).toString()
        } catch (e: CharacterCodingException) {
            fail()
        }
        val count = u32()
        val changes = ArrayList<Change>()
        repeat(count) {
            if (!payload.hasRemaining()) fail()
            val op = payload.get()
            if (op == OP_DELETE_ALL) {
                changes.add(Change.DeleteAll)
                return@repeat
            }
            val space = text()
            val key = text()
            when (op) {
                OP_PUT -> changes.add(Change.Put(space, key, bytes()))
                OP_DELETE -> changes.add(Change.Delete(space, key))
                else -> fail()
            }
        }
        if (payload.hasRemaining()) fail()
        return changes
    }
}

/**
 * A directory holding a `snapshot` (replaced by write, sync, atomic rename) and a `wal` of
 * checksummed batches (appended and synced before [applyBatch] returns). Opening cuts off a torn
 * last write. [sync] = false skips the fsyncs (faster, not durable). An index of every record is
 * kept in memory (read once when opened), so loads never touch the disk. One FileStore per directory
 * at a time; file work runs on [Dispatchers.IO], one operation at a time.
 */
class FileStore(
    val directory: Path,
    private val sync: Boolean = true,
    private val compactBytes: Long = DEFAULT_COMPACT_BYTES,
) : Store {
    private val mutex = Mutex()
    private var wal: FileChannel? = null
    private var records: MutableMap<Pair<String, String>, ByteArray> = LinkedHashMap()
    private var walSize = 0L
    private var snapshotSize = 0L
    private var needsRepair = false
    private var closed = false

    /** A test hook's view of the wal channel (fault injection); null when closed. */
    internal var walForTesting: FileChannel?
        get() = wal
        set(value) {
            wal = value
        }

    init {
        repair()
    }

    override suspend fun applyBatch(changes: List<Change>) {
        val checked = checkBatch(changes)
        mutex.withLock {
            checkOpen()
            withContext(Dispatchers.IO) { append(checked) }
        }
    }

    override suspend fun loadAll(): List<Record> = mutex.withLock {
        checkOpen()
        withContext(Dispatchers.IO) {
            if (needsRepair) repair()
            records.map { (id, value) -> Record(id.first, id.second, value.copyOf()) }
        }
    }

    override suspend fun load(keys: List<RecordKey>): List<Record> = mutex.withLock {
        checkOpen()
        withContext(Dispatchers.IO) {
            if (needsRepair) repair()
            records.pick(keys)
        }
    }

    /** Closes the wal; later calls throw `closed`. */
    suspend fun close() = mutex.withLock {
        closed = true
        withContext(Dispatchers.IO) { wal?.close() }
        wal = null
    }

    private fun checkOpen() {
        if (closed) throw StoreException("closed", "the store is closed")
    }

    private fun append(changes: List<Change>) {
        if (needsRepair) repair()
        if (changes.isEmpty()) return
        val frame = RecordFormat.encodeFrame(changes)
        val channel = wal ?: throw StoreException("closed", "the store is closed")
        try {
            val buffer = ByteBuffer.wrap(frame)
            while (buffer.hasRemaining()) channel.write(buffer)
            if (sync) channel.force(false)
        } catch (e: IOException) {
            try {
                channel.truncate(walSize)
            } catch (_: IOException) {
                needsRepair = true
            }
            throw StoreException("io", "writing the batch failed: ${e.message}", e)
        }
        walSize += frame.size
        records.apply(changes)
        if (walSize >= maxOf(compactBytes, snapshotSize)) compact()
    }

    private fun repair() {
        try {
            wal?.close()
        } catch (_: IOException) {
        }
        wal = null
        try {
            Files.createDirectories(directory)
            Files.deleteIfExists(directory.resolve(SNAPSHOT_TMP))
            records = read(repair = true)
            wal = FileChannel.open(directory.resolve(WAL), StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.APPEND)
        } catch (e: IOException) {
            needsRepair = true
            throw StoreException("io", "opening the store failed: ${e.message}", e)
        }
        needsRepair = false
    }

    private fun read(repair: Boolean): MutableMap<Pair<String, String>, ByteArray> {
        val records = LinkedHashMap<Pair<String, String>, ByteArray>()
        val snapshotPath = directory.resolve(SNAPSHOT)
        var snapshotBytes = 0L
        if (Files.exists(snapshotPath)) {
            val data = Files.readAllBytes(snapshotPath)
            snapshotBytes = data.size.toLong()
            val magic = RecordFormat.SNAPSHOT_MAGIC
            if (data.size < magic.size || !data.copyOfRange(0, magic.size).contentEquals(magic)) {
                throw StoreException("corrupt", "the snapshot file does not start with the walink header")
            }
            val frames = RecordFormat.readFrames(data, magic.size)
            if (frames.torn || frames.frames.size != 1) throw StoreException("corrupt", "the snapshot file is damaged")
            records.apply(frames.frames[0])
        }
        val walPath = directory.resolve(WAL)
        val data = if (Files.exists(walPath)) Files.readAllBytes(walPath) else ByteArray(0)
        val frames = RecordFormat.readFrames(data)
        frames.frames.forEach { records.apply(it) }
        if (repair) {
            if (frames.torn) FileChannel.open(walPath, StandardOpenOption.WRITE).use { it.truncate(frames.end.toLong()) }
            walSize = frames.end.toLong()
            snapshotSize = snapshotBytes
        }
        return records
    }

    private fun compact() {
        val frame = RecordFormat.encodeFrame(records.map { (id, value) -> Change.Put(id.first, id.second, value) })
        val data = RecordFormat.SNAPSHOT_MAGIC + frame
        val tmp = directory.resolve(SNAPSHOT_TMP)
        try {
            FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING).use {
                val buffer = ByteBuffer.wrap(data)
                while (buffer.hasRemaining()) it.write(buffer)
                if (sync) it.force(true)
            }
            Files.move(tmp, directory.resolve(SNAPSHOT), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING)
            if (sync) syncDirectory()
            wal?.truncate(0)
            if (sync) wal?.force(false)
        } catch (e: IOException) {
            // The batch itself is durable; the store is consistent whichever step failed.
            needsRepair = true
            throw StoreException("io", "compacting the store failed: ${e.message}", e)
        }
        walSize = 0
        snapshotSize = data.size.toLong()
    }

    private fun syncDirectory() {
        try {
            FileChannel.open(directory, StandardOpenOption.READ).use { it.force(true) }
        } catch (_: IOException) {
            // Some platforms cannot open a directory; the rename is atomic there all the same.
        }
    }

    companion object {
        /** The wal size from which a batch also folds the wal into a new snapshot. */
        const val DEFAULT_COMPACT_BYTES = 1L shl 20
        private const val SNAPSHOT = "snapshot"
        private const val SNAPSHOT_TMP = "snapshot.tmp"
        private const val WAL = "wal"
    }
}
