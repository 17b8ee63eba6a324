"""A WhatsApp bot on the walink wheel: it links itself as a companion device (printing the QR
in the terminal, or a pairing code for a phone number), answers `/ping`, `/echo <text>` and
`/upper <text>`, and keeps its session in a directory (walink's file store), so a restart logs
in again without pairing.

    python walink_bot.py --store bot-session                 # pair by QR
    python walink_bot.py --store bot-session --phone 15551234567   # pair by code

`--url` and `--trust-root` point it at another server (walink-sim's mock-server in the tests).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Callable, Optional, TextIO

import qrcode

import walink_ffi as ffi
from walink.driver import DEFAULT_URL, Driver, DriverError, websocket_transport
from walink.store import FileStore

#: How many times a reply is sent again after its send failed for want of a connection.
MAX_RESENDS = 5


def answer(text: str) -> Optional[str]:
    """What the bot answers to `text`, if anything."""
    command, _, rest = text.strip().partition(" ")
    rest = rest.strip()
    if command == "/ping" and not rest:
        return "pong"
    if command == "/echo" and rest:
        return rest
    if command == "/upper" and rest:
        return rest.upper()
    return None


def render_qr(payload: str) -> str:
    """The QR code of `payload` as text: two modules per character cell (upper and lower half
    blocks), dark on light, with a quiet zone, readable by a phone off a terminal."""
    code = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_L)
    code.add_data(payload)
    code.make(fit=True)
    matrix = code.get_matrix()
    if len(matrix) % 2:
        matrix.append([False] * len(matrix[0]))
    cells = {(False, False): "█", (True, False): "▄", (False, True): "▀", (True, True): " "}
    return "\n".join(
        "".join(cells[(top, bottom)] for top, bottom in zip(matrix[row], matrix[row + 1]))
        for row in range(0, len(matrix), 2)
    )


class Bot:
    """One bot: a walink Driver on a file store, and the answers."""

    def __init__(self, store: str | Path, *, url: str = DEFAULT_URL, trust_root: Optional[bytes] = None,
                 phone: Optional[str] = None, out: TextIO = sys.stdout,
                 on_qr: Optional[Callable[[str], None]] = None) -> None:
        self.store_dir = Path(store)
        self.url = url
        self.trust_root = trust_root
        self.phone = phone
        self.out = out
        self.on_qr = on_qr
        self.driver: Optional[Driver] = None
        self.connected = asyncio.Event()
        self.answered = 0
        self._tasks: set[asyncio.Task] = set()

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    async def start(self) -> None:
        """Opens the store, starts the client and, for a phone number, asks for a pairing code."""
        config = ffi.ClientConfig(device_name="walink bot", trust_root=self.trust_root)
        self.driver = await Driver.start(store=FileStore(self.store_dir), transport=websocket_transport,
                                         url=self.url, config=config, on_event=self._on_event,
                                         on_error=lambda error: self.say(f"walink: {error}"))
        if self.phone:
            try:
                code = await self.driver.pair_with_code(self.phone)
            except DriverError as error:
                if error.code != "already_paired":
                    raise
            else:
                self.say(f"pairing code for {self.phone}: {code[:4]}-{code[4:]}")
                self.say("On the phone: Linked devices > Link a device > Link with phone number instead.")

    async def close(self) -> None:
        """Stops the client (the device stays linked) and the replies in flight."""
        for task in list(self._tasks):
            task.cancel()
        if self.driver is not None:
            await self.driver.close()

    def _on_event(self, event) -> None:
        if event.is_qr() and not self.phone:
            self.say(render_qr(event.payload))
            self.say(f"qr: {event.payload}")
            self.say("On the phone: Linked devices > Link a device, and scan the code above.")
            if self.on_qr:
                self.on_qr(event.payload)
        elif event.is_paired():
            self.say(f"linked as {event.jid}")
        elif event.is_state():
            if event.state.is_connected():
                self.say("connected")
                self.connected.set()
            else:
                self.connected.clear()
        elif event.is_message() and event.text is not None and not event.from_me and not event.history:
            # Not our own messages (sent from the phone) nor old ones from a history sync.
            reply = answer(event.text)
            if reply is not None:
                task = asyncio.get_running_loop().create_task(self._reply(event.chat, reply))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _reply(self, chat: str, text: str) -> None:
        """Sends a reply; one that failed for want of a connection is sent again once connected."""
        for _ in range(MAX_RESENDS + 1):
            try:
                await self.driver.send_text(chat, text)
                self.answered += 1
                return
            except DriverError as error:
                if error.code not in ("not_connected", "timed_out", "client_rebuilt"):
                    self.say(f"reply to {chat} failed: {error.code}")
                    return
            await self.connected.wait()
        self.say(f"reply to {chat} given up after {MAX_RESENDS} resends")


async def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", default="walink-bot-session", help="the session directory")
    parser.add_argument("--phone", help="pair by code for this number (digits, with country code)")
    parser.add_argument("--url", default=DEFAULT_URL, help="the chat socket (default: WhatsApp's)")
    parser.add_argument("--trust-root", help="hex public key of another server's root (tests)")
    args = parser.parse_args(argv)
    bot = Bot(args.store, url=args.url, phone=args.phone,
              trust_root=bytes.fromhex(args.trust_root) if args.trust_root else None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await bot.start()
    bot.say(f"session in {bot.store_dir}; Ctrl-C stops (the device stays linked)")
    await stop.wait()
    await bot.close()


if __name__ == "__main__":
    asyncio.run(main())
