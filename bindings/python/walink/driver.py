"""The asyncio driver: runs one walink Client (walink_ffi.Client) against a transport, a store and
one timer, following the core's contract (core/src/lib.rs):

- every input (socket open, bytes, close, timer, command) is fed to the client one at a time by
  a single task, and after each one the outputs are drained in order before the next input;
- a Persist batch is awaited before any later output, and a Load is answered (``store.load``,
  then ``handle_loaded``) before the next output; if the store raises, the client is dropped,
  the transport closed, and a new client built from ``store.load_all()``: the same path as a
  crash;
- after each drain, ``poll_timeout`` re-arms the single timer;
- a ``Fetch`` (an HTTPS request the core asks for: app-state blobs, media later) is carried out
  in a task of its own with one HTTP call (``urllib`` in a worker thread, or the host's
  ``fetch``) and answered with ``handle_fetched``; any status is a response, only a transport
  failure is an error (reported to ``on_error`` as ``fetch_failed``);
- no state ends the loop: the client rests in ``LoggedOut``, ``Replaced`` or ``ClientOutdated``
  until a command (``Connect``) or ``close()``, as the core decides.

The core never calls back into Python: every await is the driver's.
"""

from __future__ import annotations

import asyncio
import os
import time
import urllib.error
import urllib.request
from typing import Any, Awaitable, Callable, Optional, Protocol, Sequence

import walink_ffi as ffi

from .media import FileMediaHost
from .store import Delete, DeleteAll, Put, Record, RecordKey, Store

__all__ = ["Transport", "Driver", "DriverError", "DEFAULT_URL", "urllib_fetch", "websocket_transport"]

#: WhatsApp's endpoints, as the core states them.
ENDPOINTS = ffi.endpoints()

#: WhatsApp Web's chat socket.
DEFAULT_URL = ENDPOINTS.chat_url

Fetch = Callable[[ffi.FetchRequest], Awaitable[ffi.FetchResult]]


def _failed(error: ffi.FetchError) -> ffi.FetchResult:
    return ffi.FetchResult.FAILED(error=error)


def _fetch_blocking(request: ffi.FetchRequest, data=None, headers=None, read=None) -> ffi.FetchResult:
    """One HTTP call with ``urllib`` (blocking; run in a worker thread): any status is a
    response; at most ``max_response_bytes`` of body are read. A media host passes its own body
    (``data``, a file, with ``headers``) and ``read(status, response)`` for the answer."""
    if data is None and request.body is not None:
        data = bytes(request.body)
    headers = {**{h.name: h.value for h in request.headers}, **(headers or {})}
    call = urllib.request.Request(request.url, data=data, method=request.method, headers=headers)
    limit = request.max_response_bytes
    try:
        try:
            response = urllib.request.urlopen(call, timeout=request.timeout_ms / 1000)
        except urllib.error.HTTPError as answer:  # a status of 400 or more is still a response
            response = answer
        with response:
            status = response.status
            if read is not None:
                return read(status, response)
            data = response.read(limit + 1)
    except TimeoutError:
        return _failed(ffi.FetchError.TIMED_OUT)
    except (urllib.error.URLError, OSError, ValueError):
        return _failed(ffi.FetchError.NETWORK)
    if len(data) > limit:
        return _failed(ffi.FetchError.TOO_LARGE)
    return ffi.FetchResult.RESPONSE(status=status, body=data)


async def urllib_fetch(request: ffi.FetchRequest) -> ffi.FetchResult:
    """The default ``fetch``: ``urllib`` in a worker thread, so the event loop is not blocked."""
    return await asyncio.to_thread(_fetch_blocking, request)

#: The spaces a client is built from; the core asks for the others with Load outputs.
START_SPACES = frozenset(ffi.start_spaces())


class Transport(Protocol):
    """A connected, message-oriented socket (a WebSocket carrying binary messages)."""

    async def send(self, data: bytes) -> None:
        """Sends one binary message."""

    async def receive(self) -> Optional[bytes]:
        """The next binary message, or None once the socket closed."""

    async def close(self) -> None:
        """Closes the socket (a no-op when closed already)."""


TransportFactory = Callable[[str], Awaitable[Transport]]


class DriverError(Exception):
    """A failure of the driver or of a command; ``code`` is stable (the command error's name in
    snake case, or ``store_failed``, ``ended``, ``client_rebuilt``)."""

    def __init__(self, code: str, message: str, detail: Any = None):
        super().__init__(message)
        self.code = code
        self.detail = detail


def now_ms() -> int:
    """Wall-clock Unix milliseconds."""
    return time.time_ns() // 1_000_000


def to_ffi_record(record: Record) -> ffi.StoreRecord:
    return ffi.StoreRecord(space=record.space, key=record.key, value=record.value)


def from_ffi_change(change: ffi.StoreChange):
    if change.is_put():
        return Put(change.space, change.key, bytes(change.value))
    if change.is_delete():
        return Delete(change.space, change.key)
    return DeleteAll()


async def websocket_transport(url: str) -> Transport:
    """The default transport: the ``websockets`` package, with WhatsApp Web's Origin header."""
    import websockets

    socket = await websockets.connect(url, origin=ENDPOINTS.origin, max_size=None)

    class _WebSocket:
        async def send(self, data: bytes) -> None:
            await socket.send(data)

        async def receive(self) -> Optional[bytes]:
            try:
                message = await socket.recv()
            except websockets.ConnectionClosed:
                return None
            return message if isinstance(message, bytes) else message.encode()

        async def close(self) -> None:
            await socket.close()

    return _WebSocket()


class Driver:
    """One running client. Build it with ``await Driver.start(...)``."""

    def __init__(self, *, store: Store, transport: TransportFactory = websocket_transport,
                 config: Optional[ffi.ClientConfig] = None, url: str = DEFAULT_URL,
                 on_event: Optional[Callable[[Any], None]] = None,
                 on_error: Optional[Callable[[Exception], None]] = None,
                 clock: Callable[[], int] = now_ms,
                 create_client: Optional[Callable[[Any, list], Any]] = None,
                 fetch: Fetch = urllib_fetch,
                 media: Optional[FileMediaHost] = None) -> None:
        self._store = store
        self._transport_factory = transport
        self._config = config if config is not None else ffi.default_config()
        self._url = url
        self._on_event = on_event
        self._on_error = on_error
        self._clock = clock
        self._create_client = create_client or (lambda config, records: ffi.Client(config, records))
        self._client = None
        self._inputs: asyncio.Queue = asyncio.Queue()
        self._runner: Optional[asyncio.Task] = None
        self._timer: Optional[asyncio.TimerHandle] = None
        self._socket: Optional[Transport] = None
        self._socket_generation = 0
        self._reader: Optional[asyncio.Task] = None
        self._outgoing: Optional[asyncio.Queue] = None
        self._pending: dict[int, asyncio.Future] = {}
        self._ended = asyncio.get_running_loop().create_future()
        self.state = None
        # The HTTP call for Fetch outputs: (request) -> result, never blocking the loop.
        self._fetch = fetch
        self._fetches: set[asyncio.Task] = set()
        # Streamed media bodies (temporary files) and the fetches that stream them.
        self._media = media if media is not None else FileMediaHost()

    @classmethod
    async def start(cls, **options) -> "Driver":
        """Builds the client from the store, carries out its first outputs and starts the loop."""
        driver = cls(**options)
        await driver._build()
        driver._runner = asyncio.create_task(driver._run())
        return driver

    @property
    def ended(self) -> asyncio.Future:
        """Resolves (to None, or the fatal exception) when the driver ended for good."""
        return self._ended

    # --- commands --------------------------------------------------------------------------

    async def command(self, command: ffi.Command):
        """Sends a command; returns its output (an ffi.CommandOutput) or raises DriverError."""
        future = asyncio.get_running_loop().create_future()

        def feed(client):
            command_id = client.command(self._clock(), command)
            self._pending[command_id] = future

        await self._submit(feed, future)
        return await future

    async def pair_with_code(self, phone: str) -> str:
        """Asks for a pairing code for ``phone``; returns the eight characters."""
        output = await self.command(ffi.Command.PAIR_WITH_CODE(phone=phone))
        return output.code

    async def send_text(self, to: str, text: str) -> str:
        """Sends a text; returns the message id once the server acknowledged it."""
        output = await self.command(ffi.Command.SEND_TEXT(to=to, text=text))
        return output.id

    async def send_message(self, to: str, message: ffi.WaMessage) -> str:
        """Sends any content (a reply, reaction, edit, revoke, poll, media, location, ...);
        returns the message id once the server acknowledged it."""
        output = await self.command(ffi.Command.SEND_CONTENT(to=to, message=message))
        return output.id

    async def send_poll_vote(self, chat: str, poll_id: str, options: list) -> str:
        """Votes in a poll this device sent or received (options by name; none withdraws the
        vote); returns the vote's message id."""
        output = await self.command(
            ffi.Command.SEND_POLL_VOTE(chat=chat, poll_id=poll_id, options=list(options)))
        return output.id

    async def get_identity(self, address: str):
        """The identity keys kept for a device: an ``ffi.CommandOutput.IDENTITY`` (``identity``,
        and ``pending`` when a new key waits for approval)."""
        return await self.command(ffi.Command.GET_IDENTITY(address=address))

    async def approve_identity(self, address: str, identity: bytes) -> None:
        """Trusts a device's new identity key (``IdentityPolicy.STRICT``); the messages refused
        meanwhile are asked for again."""
        await self.command(ffi.Command.APPROVE_IDENTITY(address=address, identity=identity))

    async def send_media(self, to: str, kind: ffi.MediaKind, data, mimetype: str, *,
                         caption: Optional[str] = None, file_name: Optional[str] = None,
                         width: Optional[int] = None, height: Optional[int] = None,
                         seconds: Optional[int] = None,
                         thumbnail: Optional[bytes] = None) -> str:
        """Uploads ``data`` and sends it to ``to`` (a user or group) as a message of ``kind``;
        returns the message id once the server acknowledged it. ``data`` is the file's bytes, or
        its path (``str`` or ``os.PathLike``): a path is never held whole, it is encrypted a
        piece at a time into a temporary file (0600) that the upload streams and that is deleted
        when the command ended."""
        info = dict(to=to, kind=kind, mimetype=mimetype, caption=caption, file_name=file_name,
                    width=width, height=height, seconds=seconds, thumbnail=thumbnail)
        if isinstance(data, (bytes, bytearray, memoryview)):
            output = await self.command(ffi.Command.SEND_MEDIA(data=bytes(data), host_body=None, **info))
            return output.id
        upload = await self._media.prepare_upload(os.fspath(data), ffi.media_type_of(kind))
        try:
            output = await self.command(ffi.Command.SEND_MEDIA(data=b"", host_body=upload, **info))
            return output.id
        finally:
            self._media.release_body(upload.body)

    async def download_media(self, message, to=None):
        """Downloads and decrypts the media of a received message (an
        ``ffi.ClientEvent.MESSAGE``), its hashes and MAC checked; returns the bytes. With ``to``
        (a path) the file is never held whole: the body is decrypted as it arrives into a
        temporary file (0600) that becomes ``to`` only after the MAC and both hashes were
        checked (``MediaSaved``) and is deleted otherwise (the command's error, e.g.
        ``media_invalid``, is raised and ``to`` is not touched); returns the length then."""
        fields = dict(id=message.id, chat=message.chat, sender=message.sender, message=message.raw)
        if to is None:
            output = await self.command(ffi.Command.DOWNLOAD_MEDIA(sink=None, **fields))
            return bytes(output.data)
        sink = self._media.new_sink()
        try:
            output = await self.command(ffi.Command.DOWNLOAD_MEDIA(sink=sink, **fields))
            await self._media.commit_sink(sink, os.fspath(to))
            return output.length
        finally:
            self._media.discard_sink(sink)

    async def logout(self) -> None:
        """Unlinks this device; the driver then ends."""
        await self.command(ffi.Command.LOGOUT())

    async def close(self) -> None:
        """Disconnects and stops (the device stays paired; a new Driver on the store resumes)."""
        if self._ended.done():
            return

        def feed(client):
            client.command(self._clock(), ffi.Command.DISCONNECT())

        await self._submit(feed, None)
        self._inputs.put_nowait(("end",))
        await asyncio.shield(self._ended)

    # --- the loop --------------------------------------------------------------------------

    async def _submit(self, feed, future) -> None:
        if self._ended.done():
            raise DriverError("ended", "the driver has ended")
        self._inputs.put_nowait(("input", feed, future))

    async def _run(self) -> None:
        try:
            while True:
                item = await self._inputs.get()
                if item[0] == "end":
                    self._end(None)
                    return
                _, feed, future = item
                if self._client is None or self._ended.done():
                    continue
                try:
                    feed(self._client)
                    await self._drain()
                except DriverError as error:
                    if error.code != "store_failed":
                        raise
                    await self._rebuild(error)
                except Exception as error:  # a command that could not be fed
                    if future is not None and not future.done():
                        future.set_exception(error)
                    else:
                        raise
                if self._ended.done():
                    return
        except Exception as error:
            self._fatal(error)

    async def _build(self) -> None:
        if hasattr(self._store, "load_spaces"):
            records = await self._store.load_spaces(sorted(START_SPACES))
        else:
            records = [r for r in await self._store.load_all() if r.space in START_SPACES]
        self._client = self._create_client(self._config, [to_ffi_record(r) for r in records])
        try:
            await self._drain()
        except DriverError as error:
            if error.code != "store_failed":
                raise
            await self._rebuild(error)

    async def _rebuild(self, error: DriverError) -> None:
        if self._on_error:
            self._on_error(error)
        self._drop_socket()
        self._clear_timer()
        self._client = None
        for future in self._pending.values():
            if not future.done():
                future.set_exception(DriverError("client_rebuilt", "the client was rebuilt from its store", error))
        self._pending.clear()
        await self._build()

    async def _drain(self) -> None:
        client = self._client
        while self._client is client and not self._ended.done():
            output = client.poll_output()
            if output is None:
                break
            if output.is_connect():
                self._open_socket()
            elif output.is_persist():
                try:
                    await self._store.apply_batch([from_ffi_change(c) for c in output.changes])
                except Exception as cause:
                    raise DriverError("store_failed", f"the store failed to apply a batch: {cause}", cause) from cause
            elif output.is_load():
                try:
                    records = await self._store.load([RecordKey(k.space, k.key) for k in output.keys])
                except Exception as cause:
                    raise DriverError("store_failed", f"the store failed to load records: {cause}", cause) from cause
                client.handle_loaded(self._clock(), output.id, [to_ffi_record(r) for r in records])
            elif output.is_fetch():
                task = asyncio.create_task(self._carry_out(client, output.id, output.request))
                self._fetches.add(task)
                task.add_done_callback(self._fetches.discard)
            elif output.is_transmit():
                self._send(bytes(output.bytes))
            elif output.is_event():
                self._event(output.event)
            elif output.is_close():
                self._drop_socket()
        self._arm_timer()

    def _event(self, event) -> None:
        if event.is_command_done():
            future = self._pending.pop(event.id, None)
            if future is not None and not future.done():
                result = event.result
                if result.is_ok():
                    future.set_result(result.output)
                else:
                    future.set_exception(DriverError(result.code, f"command failed: {result.error}", result.error))
        if event.is_state():
            self.state = event.state
        if self._on_event:
            try:
                self._on_event(event)
            except Exception as error:  # an application's handler must not stop the loop
                if self._on_error:
                    self._on_error(DriverError("handler_failed", f"on_event raised: {error}", error))

    async def _carry_out(self, client, fetch_id: int, request: ffi.FetchRequest) -> None:
        """Carries out one fetch outside the input queue, then hands the result to the client
        that asked, if it is still the current one."""
        try:
            perform = self._media.perform if self._media.streams(request) else self._fetch
            result = await asyncio.wait_for(perform(request), timeout=request.timeout_ms / 1000)
        except Exception as cause:  # the host's fetch failed, or took too long
            timed_out = isinstance(cause, (asyncio.TimeoutError, TimeoutError))
            result = _failed(ffi.FetchError.TIMED_OUT if timed_out else ffi.FetchError.NETWORK)
        if result.is_failed() and self._on_error:
            path = request.url.split("?")[0]
            self._on_error(DriverError("fetch_failed", f"{request.method} {path} failed: {result.error}", result.error))
        if self._ended.done():
            return

        def feed(current):
            if current is client:
                current.handle_fetched(self._clock(), fetch_id, result)

        self._inputs.put_nowait(("input", feed, None))

    def _arm_timer(self) -> None:
        self._clear_timer()
        if self._client is None or self._ended.done():
            return
        at = self._client.poll_timeout()
        if at is None:
            return
        delay = max(0.0, (at - self._clock()) / 1000)
        self._timer = asyncio.get_running_loop().call_later(
            delay, lambda: self._inputs.put_nowait(("input", lambda c: c.handle_timeout(self._clock()), None)))

    def _clear_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _open_socket(self) -> None:
        self._drop_socket()
        self._socket_generation += 1
        generation = self._socket_generation
        self._outgoing = asyncio.Queue()
        self._reader = asyncio.create_task(self._read(generation, self._outgoing))

    async def _read(self, generation: int, outgoing: asyncio.Queue) -> None:
        def feed(fn):
            if generation == self._socket_generation:
                self._inputs.put_nowait(("input", fn, None))

        try:
            socket = await self._transport_factory(self._url)
        except Exception as error:
            if self._on_error:
                self._on_error(DriverError("socket_failed", f"opening the socket failed: {error}", error))
            feed(lambda c: c.handle_closed(self._clock(), ffi.CloseReason.NETWORK()))
            return
        if generation != self._socket_generation:
            await socket.close()
            return
        self._socket = socket

        async def write() -> None:
            # One writer per socket keeps the frames in the order the core emitted them.
            while (data := await outgoing.get()) is not None:
                await socket.send(data)

        writer = asyncio.create_task(write())
        feed(lambda c: c.handle_connected(self._clock()))
        try:
            while True:
                data = await socket.receive()
                if data is None:
                    break
                feed(lambda c, data=data: c.handle_bytes(self._clock(), data))
        except Exception as error:
            if self._on_error and generation == self._socket_generation:
                self._on_error(DriverError("socket_failed", f"reading the socket failed: {error}", error))
        finally:
            writer.cancel()
        if generation == self._socket_generation:
            self._socket = None
            feed(lambda c: c.handle_closed(self._clock(), ffi.CloseReason.NETWORK()))

    def _send(self, data: bytes) -> None:
        if self._socket is None or self._outgoing is None:
            return  # the core learns of the close from the reader
        self._outgoing.put_nowait(data)

    def _drop_socket(self) -> None:
        """Closes the current socket without telling the client (it asked, or it is dropped)."""
        self._socket_generation += 1
        socket, self._socket = self._socket, None
        self._outgoing = None
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
        if socket is not None:
            task = asyncio.ensure_future(socket.close())
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def _fatal(self, error: Exception) -> None:
        if self._ended.done():
            return
        if self._on_error:
            self._on_error(error)
        self._end(error)

    def _end(self, error: Optional[Exception]) -> None:
        if self._ended.done():
            return
        self._clear_timer()
        self._drop_socket()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(DriverError("ended", "the driver has ended"))
        self._pending.clear()
        self._client = None
        self._media.dispose()
        self._ended.set_result(error)
