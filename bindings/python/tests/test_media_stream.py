"""Streamed media in the asyncio driver: the core's streaming encryptor and decryptor through the
ffi, the FileMediaHost's temporary files, and a file of several MiB sent from a path and
downloaded into a path through the mock-server, with a tampered body refused (typed error, no
file left)."""

import asyncio
import os
import random
import stat

import pytest

import walink_ffi as ffi
from walink.driver import DriverError, websocket_transport
from walink.media import FileMediaHost
from walink.store import MemoryStore

from test_mock_server import TEST_ROOT, run_until, server  # noqa: F401 (a fixture)


def encrypt(key, plain, piece):
    encryptor = ffi.MediaEncryptor(key, "document")
    out = b"".join(encryptor.update(plain[at:at + piece]) for at in range(0, len(plain), piece))
    end = encryptor.finish()
    return out + end.tail, end.hashes


def test_the_streaming_crypto_round_trips_and_refuses_a_tampered_file():
    key = ffi.new_media_key()
    plain = os.urandom(200_003)
    file, hashes = encrypt(key, plain, 65_536)
    assert hashes.file_length == len(plain)
    for piece in (1, 10, 4_096, 65_536):
        decryptor = ffi.MediaDecryptor(key, "document", len(file))
        out = b"".join(decryptor.update(file[at:at + piece]) for at in range(0, len(file), piece))
        end = decryptor.finish()
        assert out + end.tail == plain
        assert end.hashes == hashes
    bad = bytearray(file)
    bad[5_000] ^= 1
    decryptor = ffi.MediaDecryptor(key, "document", len(bad))
    decryptor.update(bytes(bad))
    with pytest.raises(ffi.MediaCryptoError.Refused) as refused:
        decryptor.finish()
    assert refused.value.failure == ffi.MediaFailure.MAC_MISMATCH
    with pytest.raises(ffi.MediaCryptoError.Refused) as over:
        ffi.MediaDecryptor(key, "document", 10).update(file[:11])
    assert over.value.failure == ffi.MediaFailure.TOO_LARGE
    with pytest.raises(ffi.WalinkError.InvalidInput):
        ffi.MediaEncryptor(key, "not-a-type")


class TamperingHost(FileMediaHost):
    """Flips one bit 1 MiB into every response body it decrypts while ``tamper`` is set."""

    tamper = False

    def open_response(self, response):
        if not self.tamper:
            return response

        class Flipped:
            at = 0

            def read(self, size):
                data = bytearray(response.read(size))
                if self.at <= 1 << 20 < self.at + len(data):
                    data[(1 << 20) - self.at] ^= 1
                self.at += len(data)
                return bytes(data)

        return Flipped()


def test_a_file_is_streamed_up_and_down_and_a_tampered_body_leaves_no_file(server, tmp_path):  # noqa: F811
    url, control = server
    sender, receiver = "15550009911", "15550009912"
    for phone in (sender, receiver):
        control("POST", "/accounts", {"phone": phone})
    receiver_temp = tmp_path / "receiver-temp"
    receiver_temp.mkdir()
    receiver_media = TamperingHost(str(receiver_temp))
    sender_temp = tmp_path / "sender-temp"
    sender_temp.mkdir()

    async def paired(phone, media):
        config = ffi.ClientConfig(trust_root=TEST_ROOT, device_name="walink pytest",
                                  media_origin=control.base_url)
        options = dict(store=MemoryStore(), transport=websocket_transport, url=url, config=config,
                       media=media)
        connected = lambda e: e.is_state() and e.state.is_connected()  # noqa: E731
        driver, seen, reached = await run_until(options, connected)
        code = await driver.pair_with_code(phone)
        await asyncio.to_thread(control, "POST", f"/accounts/{phone}/code", {"code": code})
        await asyncio.wait_for(reached.wait(), 20)
        return driver, seen

    async def wait_for(seen, predicate, timeout=30.0):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not any(predicate(e) for e in seen):
            assert loop.time() < deadline, f"timed out: {[type(e).__name__ for e in seen]}"
            await asyncio.sleep(0.05)
        return next(e for e in seen if predicate(e))

    source = tmp_path / "video.mp4"
    source.write_bytes(random.Random(5).randbytes(6 * 1024 * 1024 + 12_345))

    async def go():
        sending_media = FileMediaHost(str(sender_temp))
        prepared = await sending_media.prepare_upload(str(source), "video")
        (encrypted,) = [p for p in sender_temp.rglob("*") if p.is_file()]
        assert stat.S_IMODE(encrypted.stat().st_mode) == 0o600
        assert stat.S_IMODE(encrypted.parent.stat().st_mode) == 0o700
        sending_media.release_body(prepared.body)

        a, _ = await paired(sender, sending_media)
        b, at_b = await paired(receiver, receiver_media)
        sent = await a.send_media(f"{receiver}@s.whatsapp.net", ffi.MediaKind.VIDEO, source,
                                  "video/mp4", caption="streamed", seconds=3)
        assert [p for p in sender_temp.rglob("*") if p.is_file()] == []
        event = await wait_for(at_b, lambda e: e.is_message() and e.id == sent)
        target = tmp_path / "received.mp4"
        assert await b.download_media(event, target) == source.stat().st_size
        assert target.read_bytes() == source.read_bytes()

        receiver_media.tamper = True
        refused = tmp_path / "refused.mp4"
        with pytest.raises(DriverError) as error:
            await b.download_media(event, refused)
        assert error.value.code == "media_invalid"
        assert not refused.exists()
        assert [p for p in receiver_temp.rglob("*") if p.is_file()] == []
        await a.close()
        await b.close()

    asyncio.run(go())
