"""History at pairing through the mock-server in the asyncio driver: the phone's history (sized by
what the client asked for) arrives as HistoryConversation, Message (with ``history`` set),
PushName and HistorySync events; the driver downloads each blob from the mock-server's media
path; "none" brings no conversations and no messages."""

import asyncio

import walink_ffi as ffi
from walink.driver import websocket_transport
from walink.store import MemoryStore

from test_mock_server import TEST_ROOT, run_until, server  # noqa: F401 (a fixture)


def test_history_at_pairing_arrives_as_conversations_messages_and_progress(server):  # noqa: F811
    url, control = server
    ann, ben, cal = "15550008101", "15550008102", "15550008103"
    for phone, name in ((ann, "Ann"), (ben, "Ben"), (cal, "Cal")):
        control("POST", "/accounts", {"phone": phone, "name": name})
    for i in range(12):
        control("POST", f"/accounts/{ann}/send", {"to": ben, "text": f"ann to ben {i}"})
    control("POST", f"/accounts/{ann}/send", {"to": cal, "text": "ann to cal"})
    control("POST", f"/accounts/{ben}/send", {"to": ann, "text": "ben to ann"})

    async def paired(phone, **config):
        options = dict(store=MemoryStore(), transport=websocket_transport, url=url,
                       config=ffi.ClientConfig(trust_root=TEST_ROOT, device_name="walink pytest",
                                               media_origin=control.base_url, **config))
        last_chunk = lambda e: e.is_history_sync() and e.progress == 100  # noqa: E731
        driver, seen, reached = await run_until(options, last_chunk)
        code = await driver.pair_with_code(phone)
        await asyncio.to_thread(control, "POST", f"/accounts/{phone}/code", {"code": code})
        await asyncio.wait_for(reached.wait(), 30)
        return driver, seen

    async def go():
        driver, seen = await paired(ann)
        chunks = [e for e in seen if e.is_history_sync()]
        assert all(c.failure is None for c in chunks), chunks
        assert chunks[0].sync_type == "initial_bootstrap"
        chats = {e.chat for e in seen if e.is_history_conversation()}
        assert {f"{ben}@s.whatsapp.net", f"{cal}@s.whatsapp.net"} <= chats
        history = [e for e in seen if e.is_message() and e.history]
        want = sorted([f"ann to ben {i}" for i in range(12)] + ["ann to cal", "ben to ann"])
        assert sorted(m.text for m in history) == want
        assert sum(c.messages for c in chunks) == len(want)
        mine = next(m for m in history if m.text == "ann to cal")
        assert mine.from_me and mine.chat == f"{cal}@s.whatsapp.net"
        assert mine.message.conversation == "ann to cal"
        theirs = next(m for m in history if m.text == "ben to ann")
        assert not theirs.from_me and theirs.sender == f"{ben}@s.whatsapp.net"
        names = sorted((e.jid, e.name) for e in seen if e.is_push_name())
        assert names == [(f"{ben}@s.whatsapp.net", "Ben"), (f"{cal}@s.whatsapp.net", "Cal")]
        await driver.close()

        none, seen = await paired(cal, history="none")
        assert not any(e.is_message() and e.history for e in seen)
        assert not any(e.is_history_conversation() for e in seen)
        await none.close()

    asyncio.run(go())
