// The storage contract between the driver and a host's store, and two stores: in memory, and in
// files (walink's Rust file store through walink-ffi: the npm store's on-disk format, described
// in docs/hosts.md, shared with the Python and Swift packages and the native driver).
package walink

import java.nio.file.Path
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock
import kotlinx.coroutines.withContext
import uniffi.walink_ffi.NativeFileStore
import uniffi.walink_ffi.StoreChange
import uniffi.walink_ffi.StoreKey
import uniffi.walink_ffi.StoreRecord
import uniffi.walink_ffi.WalinkException

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

/** Runs a call of the native store, throwing its failures as [StoreException] with their code. */
private inline fun <T> native(call: () -> T): T = try {
    call()
} catch (e: WalinkException) {
    val code = when (e) {
        is WalinkException.Store -> e.code
        is WalinkException.InvalidInput -> e.code
        is WalinkException.CorruptStore -> e.code
        is WalinkException.Platform -> e.code
        is WalinkException.Panicked -> e.code
    }
    throw StoreException(code, e.message ?: code, e)
}

private fun Change.toFfi(): StoreChange = when (this) {
    is Change.Put -> StoreChange.Put(space, key, value)
    is Change.Delete -> StoreChange.Delete(space, key)
    Change.DeleteAll -> StoreChange.DeleteAll
}

private fun List<StoreRecord>.toRecords(): List<Record> = map { Record(it.space, it.key, it.value) }

/**
 * A directory holding a `snapshot` (replaced by write, sync, atomic rename) and a `wal` of
 * checksummed batches (appended and synced before [applyBatch] returns): walink's Rust file store.
 * Opening cuts off a torn last write (`corrupt` for damage beyond that). [sync] = false skips the
 * fsyncs (faster, not durable). The records are also held in memory, so loads never touch the
 * disk. The directory is created 0700 and its files 0600 (they hold private keys). One FileStore
 * per directory at a time; file work runs on [Dispatchers.IO], one operation at a time.
 */
class FileStore(
    val directory: Path,
    sync: Boolean = true,
    compactBytes: Long = DEFAULT_COMPACT_BYTES,
) : Store {
    private val mutex = Mutex()
    private val store: NativeFileStore = native { NativeFileStore.open(directory.toString(), sync, compactBytes.toULong()) }

    override suspend fun applyBatch(changes: List<Change>) {
        val batch = checkBatch(changes).map { it.toFfi() }
        mutex.withLock { withContext(Dispatchers.IO) { native { store.applyBatch(batch) } } }
    }

    override suspend fun loadAll(): List<Record> = mutex.withLock {
        withContext(Dispatchers.IO) { native { store.loadAll() } }.toRecords()
    }

    /** Every record of the given spaces. */
    suspend fun loadSpaces(spaces: List<String>): List<Record> = mutex.withLock {
        withContext(Dispatchers.IO) { native { store.loadSpaces(spaces) } }.toRecords()
    }

    override suspend fun load(keys: List<RecordKey>): List<Record> {
        val wanted = keys.map { StoreKey(it.space, it.key) }
        return mutex.withLock { withContext(Dispatchers.IO) { native { store.load(wanted) } }.toRecords() }
    }

    /** Closes the store's files; later calls throw `closed`. */
    suspend fun close() = mutex.withLock { native { store.closeStore() } }

    companion object {
        /** The wal size from which a batch also folds the wal into a new snapshot. */
        const val DEFAULT_COMPACT_BYTES = 1L shl 20
    }
}
