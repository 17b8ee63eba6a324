"""The storage contract between the driver and a host's store, and two stores.

A store holds opaque records ``(space, key, value)`` and applies batches of changes atomically:
once ``apply_batch`` returns, ``load_all`` sees every change of the batch (and a durable store
keeps them across a crash); if it raises, the store holds none or all of them, never a part, and
the driver rebuilds its client from ``load_all``. The driver applies each batch the core asks
for before it carries out any later output.

``FileStore`` uses the same on-disk format as the npm and Kotlin file stores (docs/hosts.md): a
``snapshot`` file replaced by write-sync-rename, and a ``wal`` of CRC-checked frames, one per
batch, appended and synced; a torn last frame is cut off when the store is opened.
"""

from __future__ import annotations

import asyncio
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence, Union, runtime_checkable

__all__ = [
    "Record",
    "Put",
    "Delete",
    "DeleteAll",
    "RecordKey",
    "Change",
    "Store",
    "StoreError",
    "MemoryStore",
    "FileStore",
    "check_batch",
]


@dataclass(frozen=True)
class Record:
    """One persisted record: an opaque value under a space and a key."""

    space: str
    key: str
    value: bytes


@dataclass(frozen=True)
class Put:
    """Insert or overwrite a record."""

    space: str
    key: str
    value: bytes


@dataclass(frozen=True)
class Delete:
    """Delete a record (deleting an absent one is fine)."""

    space: str
    key: str


@dataclass(frozen=True)
class DeleteAll:
    """Delete every record of the client (the device was logged out)."""


@dataclass(frozen=True)
class RecordKey:
    """The address of a record."""

    space: str
    key: str


Change = Union[Put, Delete, DeleteAll]


class StoreError(Exception):
    """What every shipped store raises; ``code`` is stable (``invalid_change``, ``closed``,
    ``io``, ``corrupt``, ``too_large``)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@runtime_checkable
class Store(Protocol):
    """What the driver needs of a store."""

    async def apply_batch(self, changes: Sequence[Change]) -> None:
        """Applies the changes in order, atomically (and durably, for a durable store)."""

    async def load_all(self) -> list[Record]:
        """Every record, in no particular order (used when a client is built or rebuilt)."""

    async def load(self, keys: Sequence[RecordKey]) -> list[Record]:
        """The records under ``keys`` that exist (the core's on-demand loads)."""


def check_batch(changes: Sequence[Change]) -> list[Change]:
    """Checks a whole batch before anything is applied; raises ``StoreError('invalid_change')``."""
    if isinstance(changes, (str, bytes)) or not isinstance(changes, Sequence):
        raise StoreError("invalid_change", "a batch must be a sequence of changes")
    checked: list[Change] = []
    for index, change in enumerate(changes):
        where = f"change {index}"
        if isinstance(change, DeleteAll):
            checked.append(change)
            continue
        if not isinstance(change, (Put, Delete)):
            raise StoreError("invalid_change", f"{where}: not a Put, a Delete or a DeleteAll")
        if not isinstance(change.space, str) or not change.space or "\0" in change.space:
            raise StoreError("invalid_change", f"{where}: space must be a non-empty string without NUL")
        if not isinstance(change.key, str):
            raise StoreError("invalid_change", f"{where}: key must be a string")
        if isinstance(change, Put):
            if not isinstance(change.value, (bytes, bytearray, memoryview)):
                raise StoreError("invalid_change", f"{where}: value of a put must be bytes")
            change = Put(change.space, change.key, bytes(change.value))
        checked.append(change)
    return checked


def check_keys(keys: Sequence[RecordKey]) -> Sequence[RecordKey]:
    """Checks the keys of a ``load`` call; raises ``StoreError('invalid_key')``."""
    for index, key in enumerate(keys):
        if not isinstance(key, RecordKey) or not isinstance(key.space, str) or not isinstance(key.key, str):
            raise StoreError("invalid_key", f"key {index}: not a RecordKey of strings")
    return keys


def _apply(records: dict[tuple[str, str], bytes], changes: Sequence[Change]) -> None:
    for change in changes:
        if isinstance(change, Put):
            records[(change.space, change.key)] = change.value
        elif isinstance(change, Delete):
            records.pop((change.space, change.key), None)
        else:
            records.clear()


class MemoryStore:
    """Records in a dict: tests, short-lived clients, hosts that persist elsewhere. Not durable."""

    def __init__(self) -> None:
        self._records: dict[tuple[str, str], bytes] = {}
        self._closed = False

    async def apply_batch(self, changes: Sequence[Change]) -> None:
        self._check_open()
        _apply(self._records, check_batch(changes))

    async def load_all(self) -> list[Record]:
        self._check_open()
        return [Record(space, key, value) for (space, key), value in self._records.items()]

    async def load(self, keys: Sequence[RecordKey]) -> list[Record]:
        self._check_open()
        found = ((k, self._records.get((k.space, k.key))) for k in check_keys(keys))
        return [Record(k.space, k.key, v) for k, v in found if v is not None]

    async def close(self) -> None:
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("closed", "the store is closed")


# --- the file format shared with the npm and Kotlin stores ---------------------------------

MAX_FRAME_BYTES = 1 << 30
SNAPSHOT_MAGIC = b"WLKS\x01\x00\x00\x00"
_OP_PUT = 1
_OP_DELETE = 2
_OP_DELETE_ALL = 3
_HEADER = struct.Struct("<II")
DEFAULT_COMPACT_BYTES = 1 << 20


def encode_frame(changes: Sequence[Change]) -> bytes:
    """One frame: ``u32 length | u32 crc32 | payload`` (see docs/hosts.md)."""
    parts = [struct.pack("<I", len(changes))]
    for change in changes:
        if isinstance(change, DeleteAll):
            parts.append(bytes([_OP_DELETE_ALL]))
            continue
        space = change.space.encode()
        key = change.key.encode()
        op = _OP_PUT if isinstance(change, Put) else _OP_DELETE
        parts.append(struct.pack("<BI", op, len(space)) + space + struct.pack("<I", len(key)) + key)
        if isinstance(change, Put):
            parts.append(struct.pack("<I", len(change.value)) + change.value)
    payload = b"".join(parts)
    if len(payload) > MAX_FRAME_BYTES:
        raise StoreError("too_large", f"a batch of {len(payload)} bytes exceeds {MAX_FRAME_BYTES}")
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def read_frames(data: bytes, start: int = 0) -> tuple[list[list[Change]], int, bool]:
    """The frames of ``data`` from ``start``: (changes per frame, end of the last good frame,
    whether the rest is a torn last frame). Damage before the last frame raises ``corrupt``."""
    frames: list[list[Change]] = []
    at = start
    while at < len(data):
        if len(data) - at < _HEADER.size:
            return frames, at, True
        size, crc = _HEADER.unpack_from(data, at)
        end = at + _HEADER.size + size
        if size > MAX_FRAME_BYTES or end > len(data):
            return frames, at, True
        payload = data[at + _HEADER.size : end]
        if zlib.crc32(payload) != crc:
            if end == len(data):
                return frames, at, True
            raise StoreError("corrupt", f"damaged frame at offset {at} followed by more data")
        frames.append(_decode_payload(payload, at))
        at = end
    return frames, at, False


def _decode_payload(payload: bytes, offset: int) -> list[Change]:
    def fail() -> StoreError:
        return StoreError("corrupt", f"malformed frame at offset {offset}")

    at = 0

    def take(n: int) -> bytes:
        nonlocal at
        if at + n > len(payload):
            raise fail()
        chunk = payload[at : at + n]
        at += n
        return chunk

    def u32() -> int:
        return struct.unpack("<I", take(4))[0]

    def text() -> str:
        try:
            return take(u32()).decode()
        except UnicodeDecodeError:
            raise fail() from None

    changes: list[Change] = []
    for _ in range(u32()):
        op = take(1)[0]
        if op == _OP_DELETE_ALL:
            changes.append(DeleteAll())
            continue
        space, key = text(), text()
        if op == _OP_PUT:
            changes.append(Put(space, key, take(u32())))
        elif op == _OP_DELETE:
            changes.append(Delete(space, key))
        else:
            raise fail()
    if at != len(payload):
        raise fail()
    return changes


def _datasync(fd: int) -> None:
    if hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:
        os.fsync(fd)


class FileStore:
    """A directory holding a snapshot and a write-ahead log; safe against a crash at any point.

    The constructor opens (creating it if needed) the directory and cuts off a torn last write.
    ``sync=False`` skips the fsyncs (faster, not durable). One FileStore per directory at a time.
    File work runs in a worker thread, one operation at a time. An index of every record is kept in
    memory (read once when opened), so loads never touch the disk.
    """

    def __init__(self, directory: str | os.PathLike[str], *, sync: bool = True,
                 compact_bytes: int = DEFAULT_COMPACT_BYTES) -> None:
        self._dir = Path(directory)
        self._sync = sync
        self._compact_bytes = compact_bytes
        self._lock = asyncio.Lock()
        self._wal = None
        self._records: dict[tuple[str, str], bytes] = {}
        self._wal_size = 0
        self._snapshot_size = 0
        self._needs_repair = False
        self._closed = False
        self._repair()

    @property
    def directory(self) -> Path:
        """The directory this store lives in."""
        return self._dir

    async def apply_batch(self, changes: Sequence[Change]) -> None:
        checked = check_batch(changes)
        async with self._lock:
            self._check_open()
            await asyncio.to_thread(self._apply_batch, checked)

    async def load_all(self) -> list[Record]:
        async with self._lock:
            self._check_open()
            if self._needs_repair:
                await asyncio.to_thread(self._repair)
            return [Record(space, key, value) for (space, key), value in self._records.items()]

    async def load(self, keys: Sequence[RecordKey]) -> list[Record]:
        check_keys(keys)
        async with self._lock:
            self._check_open()
            if self._needs_repair:
                await asyncio.to_thread(self._repair)
            found = ((k, self._records.get((k.space, k.key))) for k in keys)
            return [Record(k.space, k.key, v) for k, v in found if v is not None]

    async def close(self) -> None:
        async with self._lock:
            self._closed = True
            if self._wal is not None:
                self._wal.close()
                self._wal = None

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("closed", "the store is closed")

    def _apply_batch(self, changes: list[Change]) -> None:
        if self._needs_repair:
            self._repair()
        if not changes:
            return
        frame = encode_frame(changes)
        try:
            self._wal.write(frame)
            self._wal.flush()
            if self._sync:
                _datasync(self._wal.fileno())
        except OSError as error:
            self._undo_append()
            raise StoreError("io", f"writing the batch failed: {error}") from error
        self._wal_size += len(frame)
        _apply(self._records, changes)
        if self._wal_size >= max(self._compact_bytes, self._snapshot_size):
            self._compact()

    def _undo_append(self) -> None:
        try:
            self._wal.truncate(self._wal_size)
            self._wal.seek(self._wal_size)
        except OSError:
            self._needs_repair = True

    def _repair(self) -> None:
        if self._wal is not None:
            try:
                self._wal.close()
            except OSError:
                pass
            self._wal = None
        self._dir.mkdir(parents=True, exist_ok=True)
        (self._dir / "snapshot.tmp").unlink(missing_ok=True)
        self._records = self._read(repair=True)
        self._wal = open(self._dir / "wal", "ab", buffering=0)
        self._needs_repair = False

    def _read(self, repair: bool) -> dict[tuple[str, str], bytes]:
        records: dict[tuple[str, str], bytes] = {}
        snapshot_path = self._dir / "snapshot"
        snapshot_size = 0
        if snapshot_path.exists():
            data = snapshot_path.read_bytes()
            snapshot_size = len(data)
            if not data.startswith(SNAPSHOT_MAGIC):
                raise StoreError("corrupt", "the snapshot file does not start with the walink header")
            frames, _, torn = read_frames(data, len(SNAPSHOT_MAGIC))
            if torn or len(frames) != 1:
                raise StoreError("corrupt", "the snapshot file is damaged")
            _apply(records, frames[0])
        wal_path = self._dir / "wal"
        data = wal_path.read_bytes() if wal_path.exists() else b""
        frames, end, torn = read_frames(data)
        for changes in frames:
            _apply(records, changes)
        if repair:
            if torn:
                os.truncate(wal_path, end)
            self._wal_size = end
            self._snapshot_size = snapshot_size
        return records

    def _compact(self) -> None:
        data = SNAPSHOT_MAGIC + encode_frame([Put(s, k, v) for (s, k), v in self._records.items()])
        tmp = self._dir / "snapshot.tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                if self._sync:
                    os.fsync(f.fileno())
            os.replace(tmp, self._dir / "snapshot")
            if self._sync:
                fd = os.open(self._dir, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            self._wal.truncate(0)
            if self._sync:
                os.fsync(self._wal.fileno())
        except OSError as error:
            # The batch itself is durable; the store is consistent whichever step failed.
            self._needs_repair = True
            raise StoreError("io", f"compacting the store failed: {error}") from error
        self._wal_size = 0
        self._snapshot_size = len(data)
