"""Streamed media: a host that keeps media bodies in temporary files, so a file of any size never
sits whole in memory (the Python side of docs/decisions.md, "Streamed media bodies").

- Upload: the source file is encrypted a piece at a time with the core's ``MediaEncryptor`` into
  a temporary file (the upload URL names the encrypted file's hash, so it must exist before the
  upload starts); the core's fetch then names that file (``host_body``) and it is streamed out.
- Download: a 2xx body is decrypted as it arrives, with the core's ``MediaDecryptor``, into a
  temporary sink; the sink becomes the caller's file only after the MAC matched and the core
  found both hashes equal to the message's (``MediaSaved``); otherwise it is deleted.

The blocking work (files, ``urllib``, the crypto) runs in worker threads.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import tempfile
import threading
from typing import BinaryIO, Optional

import walink_ffi as ffi

__all__ = ["FileMediaHost", "MEDIA_CHUNK_BYTES"]

#: The piece read, encrypted or decrypted and written at a time (the core's MEDIA_STREAM_CHUNK_BYTES).
MEDIA_CHUNK_BYTES = 64 * 1024


class _HostBodyError(Exception):
    """The host could not read its body or write its sink."""


def _create_private(path: str) -> BinaryIO:
    """Creates ``path`` for writing, mode 0600, failing if it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, "wb")


class FileMediaHost:
    """Keeps streamed media bodies in temporary files (mode 0600, in one private directory, mode
    0700, under ``root``) and carries out the fetches that stream them with ``urllib``. One per
    driver; ``dispose`` deletes whatever is left."""

    def __init__(self, root: Optional[str] = None) -> None:
        self._root = root
        self._directory: Optional[str] = None
        self._lock = threading.Lock()
        self._next = itertools.count(1)
        self._bodies: dict[int, str] = {}
        self._sinks: dict[int, str] = {}

    def _path(self, name: str) -> str:
        with self._lock:
            if self._directory is None:
                self._directory = tempfile.mkdtemp(prefix="walink-media-", dir=self._root)  # 0700
            return os.path.join(self._directory, name)

    # --- uploads ---------------------------------------------------------------------------

    async def prepare_upload(self, source: str, media_type: str) -> ffi.HostUpload:
        """Encrypts the file ``source`` under a fresh media key into a temporary file; returns
        the ``host_body`` of a ``SEND_MEDIA`` command. Release it with ``release_body``."""
        return await asyncio.to_thread(self._prepare_upload, source, media_type)

    def _prepare_upload(self, source: str, media_type: str) -> ffi.HostUpload:
        body_id = next(self._next)
        path = self._path(f"{body_id}.enc")
        self._bodies[body_id] = path
        try:
            media_key = ffi.new_media_key()
            encryptor = ffi.MediaEncryptor(media_key, media_type)
            with open(source, "rb") as reader, _create_private(path) as out:
                while piece := reader.read(MEDIA_CHUNK_BYTES):
                    out.write(encryptor.update(piece))
                end = encryptor.finish()
                out.write(end.tail)
            return ffi.HostUpload(body=body_id, media_key=media_key, hashes=end.hashes)
        except OSError as cause:
            self.release_body(body_id)
            from .driver import DriverError
            raise DriverError("media_source_failed", f"reading the media failed: {cause}", cause) from cause
        except BaseException:
            self.release_body(body_id)
            raise

    def release_body(self, body_id: int) -> None:
        """Deletes the encrypted file ``body_id``."""
        path = self._bodies.pop(body_id, None)
        if path is not None:
            _remove(path)

    # --- downloads -------------------------------------------------------------------------

    def new_sink(self) -> int:
        """A new sink for a download: a temporary file that is not the caller's until
        ``commit_sink``."""
        sink = next(self._next)
        self._sinks[sink] = self._path(f"{sink}.part")
        return sink

    async def commit_sink(self, sink: int, to: str) -> None:
        """Moves the verified plaintext of ``sink`` to ``to`` (replacing a file there)."""
        path = self._sinks.pop(sink, None)
        if path is None:
            from .driver import DriverError
            raise DriverError("host_body", f"no media sink {sink}")
        await asyncio.to_thread(shutil.move, path, to)

    def discard_sink(self, sink: int) -> None:
        """Deletes ``sink`` and what it holds."""
        path = self._sinks.pop(sink, None)
        if path is not None:
            _remove(path)

    def dispose(self) -> None:
        """Deletes every file left (the driver ended)."""
        self._bodies.clear()
        self._sinks.clear()
        with self._lock:
            directory, self._directory = self._directory, None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)

    # --- fetches ---------------------------------------------------------------------------

    @staticmethod
    def streams(request: ffi.FetchRequest) -> bool:
        """Whether ``request`` streams (a body the host holds, or a response to decrypt)."""
        return request.host_body is not None or request.decrypt is not None

    async def perform(self, request: ffi.FetchRequest) -> ffi.FetchResult:
        """Carries out a streaming fetch: sends the held body from its file, decrypts a 2xx
        answer to a ``decrypt`` request into its sink (``FetchResult.STREAMED``); a non-2xx
        answer to one is not read; any other answer is read into memory as usual."""
        return await asyncio.to_thread(self._perform, request)

    def open_response(self, response: BinaryIO) -> BinaryIO:
        """The response body as it is read (a test may alter it to check what the host
        refuses)."""
        return response

    def _perform(self, request: ffi.FetchRequest) -> ffi.FetchResult:
        from .driver import _fetch_blocking

        data, headers = None, {}
        if request.host_body is not None:
            path = self._bodies.get(request.host_body.id)
            try:
                data = open(path, "rb") if path is not None else None
            except OSError:
                pass
            if data is None:
                return ffi.FetchResult.FAILED(error=ffi.FetchError.HOST_BODY)
            headers["Content-Length"] = str(request.host_body.length)
        decrypt = request.decrypt

        def read(status: int, response) -> ffi.FetchResult:
            if not 200 <= status <= 299:  # the body of a refusal is not read
                return ffi.FetchResult.RESPONSE(status=status, body=b"")
            body = self._decrypt_into(decrypt, self.open_response(response), request.max_response_bytes)
            if body is None:
                return ffi.FetchResult.FAILED(error=ffi.FetchError.TOO_LARGE)
            return ffi.FetchResult.STREAMED(status=status, body=body)

        try:
            return _fetch_blocking(request, data, headers, read if decrypt is not None else None)
        except _HostBodyError:
            return ffi.FetchResult.FAILED(error=ffi.FetchError.HOST_BODY)
        finally:
            if data is not None:
                data.close()

    def _decrypt_into(self, decrypt: ffi.DecryptInto, body: BinaryIO,
                      max_bytes: int) -> Optional[ffi.StreamedBody]:
        """Decrypts ``body`` into sink ``decrypt.sink``: the decryptor's verdict, or None for a
        body over ``max_bytes``. The sink's plaintext is unverified until ``MediaSaved``."""
        path = self._sinks.get(decrypt.sink)
        if path is None:
            raise _HostBodyError(f"no media sink {decrypt.sink}")
        try:
            _remove(path)
            out = _create_private(path)
        except OSError as cause:
            raise _HostBodyError(str(cause)) from cause
        decryptor = ffi.MediaDecryptor(decrypt.media_key, decrypt.media_type, max_bytes)
        with out:
            try:
                while piece := body.read(MEDIA_CHUNK_BYTES):
                    _write(out, decryptor.update(piece))
                end = decryptor.finish()
                _write(out, end.tail)
            except ffi.MediaCryptoError.Refused as refused:
                if refused.failure == ffi.MediaFailure.TOO_LARGE:
                    return None
                return ffi.StreamedBody.REFUSED(failure=refused.failure)
        return ffi.StreamedBody.DECRYPTED(hashes=end.hashes)


def _write(out: BinaryIO, data: bytes) -> None:
    try:
        out.write(data)
    except OSError as cause:
        raise _HostBodyError(str(cause)) from cause


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
