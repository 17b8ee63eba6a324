"""The storage contract between the driver and a host's store, and two stores.

A store holds opaque records ``(space, key, value)`` and applies batches of changes atomically:
once ``apply_batch`` returns, ``load_all`` sees every change of the batch (and a durable store
keeps them across a crash); if it raises, the store holds none or all of them, never a part, and
the driver rebuilds its client from ``load_all``. The driver applies each batch the core asks
for before it carries out any later output.

``FileStore`` is walink's Rust file store (walink-file-store, through ``walink_ffi``), the one the
Kotlin and Swift packages and the native driver use, in the npm store's on-disk format
(docs/hosts.md): a ``snapshot`` file replaced by write-sync-rename, and a ``wal`` of CRC-checked
frames, one per batch, appended and synced; a torn last frame is cut off when the store is
opened. Its directory is created 0700 and its files 0600: they hold the device's private keys.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence, Union, runtime_checkable

import walink_ffi as ffi

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


# --- the file store: walink-file-store through walink_ffi -----------------------------------

DEFAULT_COMPACT_BYTES = 1 << 20


def _to_ffi(change: Change) -> ffi.StoreChange:
    if isinstance(change, Put):
        return ffi.StoreChange.PUT(space=change.space, key=change.key, value=change.value)
    if isinstance(change, Delete):
        return ffi.StoreChange.DELETE(space=change.space, key=change.key)
    return ffi.StoreChange.DELETE_ALL()


def _native(call, *args):
    """Runs a call of the native store, raising its failures as ``StoreError`` with their code."""
    try:
        return call(*args)
    except ffi.WalinkError as error:
        raise StoreError(getattr(error, "code", "io"), str(error)) from error


def _records(records) -> list[Record]:
    return [Record(r.space, r.key, bytes(r.value)) for r in records]


class FileStore:
    """A directory holding a snapshot and a write-ahead log; safe against a crash at any point.

    The constructor opens (creating it if needed) the directory and cuts off a torn last write
    (``StoreError('corrupt')`` for damage beyond that). ``sync=False`` skips the fsyncs (faster,
    not durable). One FileStore per directory at a time. File work runs in a worker thread, one
    operation at a time; the records are also held in memory, so loads never touch the disk.
    """

    def __init__(self, directory: str | os.PathLike[str], *, sync: bool = True,
                 compact_bytes: int = DEFAULT_COMPACT_BYTES) -> None:
        self._dir = Path(directory)
        self._lock = asyncio.Lock()
        self._native = _native(ffi.NativeFileStore.open, str(self._dir), sync, compact_bytes)

    @property
    def directory(self) -> Path:
        """The directory this store lives in."""
        return self._dir

    async def apply_batch(self, changes: Sequence[Change]) -> None:
        batch = [_to_ffi(c) for c in check_batch(changes)]
        async with self._lock:
            await asyncio.to_thread(_native, self._native.apply_batch, batch)

    async def load_all(self) -> list[Record]:
        async with self._lock:
            return _records(await asyncio.to_thread(_native, self._native.load_all))

    async def load_spaces(self, spaces: Sequence[str]) -> list[Record]:
        """Every record of the given spaces."""
        async with self._lock:
            return _records(await asyncio.to_thread(_native, self._native.load_spaces, list(spaces)))

    async def load(self, keys: Sequence[RecordKey]) -> list[Record]:
        wanted = [ffi.StoreKey(space=k.space, key=k.key) for k in check_keys(keys)]
        async with self._lock:
            return _records(await asyncio.to_thread(_native, self._native.load, wanted))

    async def close(self) -> None:
        async with self._lock:
            _native(self._native.close_store)
