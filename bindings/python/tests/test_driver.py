"""The asyncio driver on the real ffi Client, with a fake transport and stores that log, hold or
fail: the ordering rules, a store that throws, a socket closed mid-frame, typed command errors."""

import asyncio

import pytest

import walink_ffi as ffi
from walink.driver import Driver, DriverError
from walink.store import MemoryStore

SEED = bytes(range(32))


class FakeTransport:
    def __init__(self, log):
        self.log = log
        self.sent = []
        self.incoming = asyncio.Queue()
        self.closed = False

    async def send(self, data):
        self.sent.append(bytes(data))
        self.log.append(f"send {len(data)}")

    async def receive(self):
        return await self.incoming.get()

    async def close(self):
        self.closed = True
        self.incoming.put_nowait(None)

    def drop(self):
        """The network closes the socket."""
        self.incoming.put_nowait(None)


class LoggingStore(MemoryStore):
    def __init__(self, log):
        super().__init__()
        self.log = log
        self.fail_next = 0

    async def apply_batch(self, changes):
        if self.fail_next:
            self.fail_next -= 1
            self.log.append("persist failed")
            raise OSError(28, "No space left on device")
        await asyncio.sleep(0.01)  # a slow disk: nothing may overtake the batch
        await super().apply_batch(changes)
        self.log.append("persist " + ",".join(sorted({getattr(c, "space", "*") for c in changes})))


def harness():
    log, transports, events, errors, clients = [], [], [], [], []

    async def transport(url):
        t = FakeTransport(log)
        transports.append(t)
        log.append("open")
        return t

    def create_client(config, records):
        clients.append(len(records))
        return ffi.Client(config, records)

    store = LoggingStore(log)
    options = dict(store=store, transport=transport, config=ffi.ClientConfig(unsafe_test_rng_seed=SEED), url="ws://test",
                   on_event=events.append, on_error=errors.append, create_client=create_client)
    return log, store, transports, events, errors, clients, options


async def wait_for(predicate, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.01)


def test_the_device_is_persisted_before_the_socket_opens_and_before_anything_is_sent():
    async def go():
        log, store, transports, events, errors, clients, options = harness()
        driver = await Driver.start(**options)
        await wait_for(lambda: any(entry.startswith("send") for entry in log))
        assert log[0].startswith("persist ") and "device" in log[0].split(" ")[1].split(",")
        assert 0 < log.index("open") < next(i for i, e in enumerate(log) if e.startswith("send"))
        assert transports[0].sent[0][:4] == b"WA\x06\x03"
        assert any(e.is_state() for e in events)
        await driver.close()
        assert await driver.ended is None

    asyncio.run(go())


def test_a_store_that_throws_drops_the_client_and_rebuilds_it_from_the_store():
    async def go():
        log, store, transports, events, errors, clients, options = harness()
        store.fail_next = 1
        driver = await Driver.start(**options)
        await wait_for(lambda: any(entry.startswith("send") for entry in log))
        assert log[0] == "persist failed" and log[1].startswith("persist device")
        assert [e.code for e in errors] == ["store_failed"]
        assert clients == [0, 0], "rebuilt from the (still empty) store"
        assert "device" in {r.space for r in await store.load_all()}
        await driver.close()

    asyncio.run(go())


def test_a_restart_restores_the_device_from_the_store():
    async def go():
        log, store, transports, events, errors, clients, options = harness()
        first = await Driver.start(**options)
        await wait_for(lambda: transports)
        await first.close()
        device = await store.load_all()
        second = await Driver.start(**options)
        await wait_for(lambda: len(transports) == 2)
        assert clients[0] == 0 and clients[1] >= 1, clients
        assert await store.load_all() == device, "the restored client did not replace its device"
        await second.close()

    asyncio.run(go())


def test_a_socket_closed_mid_frame_reconnects_and_loses_nothing():
    async def go():
        log, store, transports, events, errors, clients, options = harness()
        driver = await Driver.start(**options)
        await wait_for(lambda: transports and transports[0].sent)
        before = await store.load_all()
        transports[0].incoming.put_nowait(b"\x00\x01")  # half a frame header
        transports[0].drop()
        await wait_for(lambda: any(e.is_state() and e.state.is_reconnecting() for e in events))
        await wait_for(lambda: len(transports) == 2, timeout=10)
        await wait_for(lambda: transports[1].sent)
        assert transports[1].sent[0][:4] == b"WA\x06\x03", "a fresh connection starts with the header"
        assert await store.load_all() == before
        await driver.close()

    asyncio.run(go())


def test_a_command_in_the_wrong_state_raises_a_typed_error():
    async def go():
        log, store, transports, events, errors, clients, options = harness()
        driver = await Driver.start(**options)
        with pytest.raises(DriverError) as error:
            await driver.pair_with_code("12")
        assert error.value.code == "invalid_phone_number"
        with pytest.raises(DriverError) as error:
            await driver.send_text("15551234567@s.whatsapp.net", "hi")
        assert error.value.code in {"not_connected", "not_paired", "invalid_state"}
        await driver.close()
        with pytest.raises(DriverError) as error:
            await driver.send_text("15551234567@s.whatsapp.net", "hi")
        assert error.value.code == "ended"

    asyncio.run(go())
