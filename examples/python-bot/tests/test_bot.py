"""The bot against walink-sim's mock-server, run from the installed walink wheel: pairing by code
and by QR (read off the bot's own output), answers to Carol's phone, and a restart from the
session directory without pairing again. WALINK_MOCK_SERVER names the mock-server binary
(`cargo build -p walink-sim --bin mock-server`)."""

import asyncio
import io
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import qrcode

import walink
import walink_ffi
from walink_bot import Bot, answer

# The simulation's test root: the X25519 public key of the private key 0x71 x 32
# (walink_sim::noise_server::ChainSpec::default()).
TEST_ROOT = bytes.fromhex("ab4f197998fcc56cc6ed68c1d931af9bb522ec00743e181f7330915df4aa3176")
WAIT = 30.0


@pytest.fixture
def server():
    path = os.environ.get("WALINK_MOCK_SERVER")
    if not path or not os.access(path, os.X_OK):
        pytest.fail("WALINK_MOCK_SERVER must name the mock-server binary "
                    "(cargo build -p walink-sim --bin mock-server)")
    proc = subprocess.Popen([path, "--seed", "29", "--until-stdin-closes"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    banner = proc.stdout.readline().split()
    ws, http = banner[banner.index("listening") + 1], banner[banner.index("control") + 1]

    def control(method, route, body=None):
        data = None if body is None else json.dumps(body).encode()
        with urllib.request.urlopen(urllib.request.Request(http + route, data=data, method=method)) as response:
            return json.loads(response.read())

    yield ws + "/ws/chat", control
    proc.stdin.close()
    proc.kill()
    proc.wait()


async def eventually(check, what, timeout=WAIT):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await asyncio.to_thread(check)
        if result:
            return result
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def qr_modules(payload):
    """The QR code of `payload` as rows of dark (True) modules, with a 2-module quiet zone, padded
    with a light row to an even height."""
    code = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_L)
    code.add_data(payload)
    code.make(fit=True)
    rows = code.get_matrix()
    return rows + [[False] * len(rows[0])] if len(rows) % 2 else rows


def modules_of(lines):
    """Reads text drawn with half blocks in a light foreground back into rows of modules: a full
    block is two light modules, a space two dark ones, an upper (lower) half block a light top
    (bottom) module."""
    halves = {"█": (False, False), "▀": (False, True), "▄": (True, False), " ": (True, True)}
    rows = []
    for line in lines:
        cells = [halves[cell] for cell in line]
        rows += [[top for top, _ in cells], [bottom for _, bottom in cells]]
    return rows


def texts_from(control, phone, sender):
    """The texts the phone of `phone` received from the account `sender`."""
    messages = control("GET", f"/accounts/{phone}/messages")["messages"]
    return [m["text"] for m in messages if m["from"].startswith(sender)]


def test_walink_comes_from_the_installed_wheel():
    """Not from the source tree: both packages live in this environment's site-packages, with
    the native library inside the wheel's package."""
    for module in (walink, walink_ffi):
        path = Path(module.__file__).resolve()
        assert Path(sys.prefix).resolve() in path.parents, path
        assert "site-packages" in path.parts, path
    assert list(Path(walink_ffi.__file__).parent.glob("libwalink_ffi.*"))
    assert walink_ffi.version() == "0.1.0"


def test_answers():
    assert answer("/ping") == "pong"
    assert answer("/echo  hello there ") == "hello there"
    assert answer("/upper straße") == "STRASSE"
    assert answer("/ping me") is None and answer("hello") is None and answer("/echo") is None


def test_pairs_by_code_answers_and_restarts_from_its_session(server, tmp_path):
    url, control = server
    control("POST", "/accounts", {"phone": "15550001001", "name": "Bot"})
    control("POST", "/accounts", {"phone": "15550001002", "name": "Carol"})

    async def go():
        out = io.StringIO()
        bot = Bot(tmp_path / "session", url=url, trust_root=TEST_ROOT, phone="15550001001", out=out)
        await bot.start()
        line = next(l for l in out.getvalue().splitlines() if l.startswith("pairing code for 15550001001: "))
        code = line.rsplit(" ", 1)[1].replace("-", "")
        await asyncio.to_thread(control, "POST", "/accounts/15550001001/code", {"code": code})
        await asyncio.wait_for(bot.connected.wait(), WAIT)

        for text in ("/ping", "hello", "/upper straße"):
            await asyncio.to_thread(control, "POST", "/accounts/15550001002/send", {"to": "15550001001", "text": text})
        await eventually(lambda: len(texts_from(control, "15550001002", "15550001001")) >= 2, "two answers")
        await asyncio.sleep(0.5)  # an answer to "hello" would have arrived by now
        assert texts_from(control, "15550001002", "15550001001") == ["pong", "STRASSE"]
        await bot.close()

        # The session is in the directory: a new bot logs in without pairing.
        out = io.StringIO()
        again = Bot(tmp_path / "session", url=url, trust_root=TEST_ROOT, out=out)
        await again.start()
        await asyncio.wait_for(again.connected.wait(), WAIT)
        assert "qr: " not in out.getvalue() and "pairing code" not in out.getvalue()
        await asyncio.to_thread(control, "POST", "/accounts/15550001002/send", {"to": "15550001001", "text": "/echo again"})
        await eventually(lambda: "again" in texts_from(control, "15550001002", "15550001001"), "the answer after the restart")
        await again.close()

    asyncio.run(go())


def test_pairs_by_the_qr_it_prints(server, tmp_path):
    url, control = server
    control("POST", "/accounts", {"phone": "15550001003", "name": "Bot"})
    control("POST", "/accounts", {"phone": "15550001004", "name": "Dan"})

    async def go():
        out = io.StringIO()
        bot = Bot(tmp_path / "session", url=url, trust_root=TEST_ROOT, out=out)
        await bot.start()
        line = await eventually(lambda: next((l for l in out.getvalue().splitlines() if l.startswith("qr: ")), None), "a QR")
        payload = line[len("qr: "):]
        # The block rows above the payload line, read back module by module, are the QR code of
        # the payload (the Kotlin bot's test decodes its drawing with a QR reader).
        printed = out.getvalue().split(line)[0].rstrip("\n").splitlines()
        expected = qr_modules(payload)
        assert modules_of(printed[-(len(expected) // 2):]) == expected
        await asyncio.to_thread(control, "POST", "/accounts/15550001003/scan", {"qr": payload})
        await asyncio.wait_for(bot.connected.wait(), WAIT)
        await asyncio.to_thread(control, "POST", "/accounts/15550001004/send", {"to": "15550001003", "text": "/ping"})
        await eventually(lambda: "pong" in texts_from(control, "15550001004", "15550001003"), "pong")
        await bot.close()

    asyncio.run(go())
