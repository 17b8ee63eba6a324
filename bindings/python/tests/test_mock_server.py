"""The asyncio driver against walink-sim's mock-server over a real websocket (the `websockets`
package): pairing by code, then a restart from the file store logs in without pairing again.
Skips when the mock-server is not built (cargo build -p walink-sim --bin mock-server)."""

import asyncio
import json
import os
import subprocess
import urllib.request
from pathlib import Path

import pytest

import walink_ffi as ffi
from walink.driver import Driver, websocket_transport
from walink.store import FileStore

REPO = Path(__file__).resolve().parents[3]
# The simulation's test root: the X25519 public key of the private key 0x71 x 32
# (walink_sim::noise_server::ChainSpec::default(); npm/test/support/mock-server.js derives it).
TEST_ROOT = bytes.fromhex("ab4f197998fcc56cc6ed68c1d931af9bb522ec00743e181f7330915df4aa3176")


def mock_server_path():
    candidates = [os.environ.get("WALINK_MOCK_SERVER")]
    if os.environ.get("CARGO_TARGET_DIR"):
        candidates.append(os.path.join(os.environ["CARGO_TARGET_DIR"], "debug", "mock-server"))
    candidates.append(str(REPO / "target" / "debug" / "mock-server"))
    return next((c for c in candidates if c and os.path.exists(c)), None)


@pytest.fixture
def server():
    path = mock_server_path()
    if path is None:
        pytest.skip("mock-server is not built")
    proc = subprocess.Popen([path, "--seed", "11", "--until-stdin-closes"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
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


async def run_until(driver_options, predicate, timeout=20.0):
    seen = []
    reached = asyncio.Event()

    def on_event(event):
        seen.append(event)
        if predicate(event):
            reached.set()

    driver = await Driver.start(on_event=on_event, **driver_options)
    return driver, seen, reached


def test_code_pairing_then_a_restart_from_the_file_store(server, tmp_path):
    url, control = server
    control("POST", "/accounts", {"phone": "15550003333", "name": "Carol"})
    connected = lambda e: e.is_state() and e.state.is_connected()

    async def go():
        options = dict(store=FileStore(tmp_path / "carol"), transport=websocket_transport, url=url,
                       config=ffi.ClientConfig(trust_root=TEST_ROOT, device_name="walink pytest"))
        driver, seen, reached = await run_until(options, connected)
        code = await driver.pair_with_code("15550003333")
        assert len(code) == 8
        await asyncio.to_thread(control, "POST", "/accounts/15550003333/code", {"code": code})
        await asyncio.wait_for(reached.wait(), 20)
        paired = next(e for e in seen if e.is_paired())
        assert paired.jid.startswith("15550003333:")
        await driver.close()

        options["store"] = FileStore(tmp_path / "carol")
        driver, seen, reached = await run_until(options, connected)
        await asyncio.wait_for(reached.wait(), 20)
        assert not any(e.is_qr() for e in seen), "no pairing after a restart"
        await driver.close()

    asyncio.run(go())
