"""Calls, presence and contacts through the mock-server: reject an incoming call, show typing,
check which numbers are on WhatsApp (and a typed failure). Skips or fails without the
mock-server as test_mock_server.py does."""

import asyncio

import pytest

import walink_ffi as ffi

from test_mock_server import TEST_ROOT, paired_by_code, server  # noqa: F401 (the fixture)


async def wait_for(seen, predicate, what, timeout=20.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not any(predicate(e) for e in seen):
        assert loop.time() < deadline, f"{what} did not happen: {[type(e).__name__ for e in seen]}"
        await asyncio.sleep(0.05)
    return next(e for e in seen if predicate(e))


async def paired(url, control, phone, name):
    await asyncio.to_thread(control, "POST", "/accounts", {"phone": phone, "name": name})
    config = ffi.ClientConfig(trust_root=TEST_ROOT, device_name="walink pytest", push_name=name)
    return await paired_by_code(url, control, phone, config)


def test_reject_a_call_show_typing_check_numbers(server):  # noqa: F811
    url, control = server

    async def go():
        ann, ann_seen = await paired(url, control, "15552220001", "Ann")
        ben, ben_seen = await paired(url, control, "15552220002", "Ben")

        answer = await asyncio.to_thread(control, "POST", "/accounts/15552220002/call",
                                         {"to": "15552220001"})
        call_id = answer["call_id"]
        event = await wait_for(ann_seen, lambda e: e.is_call() and e.call.call_id == call_id,
                               "the offer")
        assert event.call.action == ffi.CallAction.OFFER
        assert event.call.caller == "15552220002@s.whatsapp.net"
        output = await ann.command(ffi.Command.REJECT_CALL(call_id=call_id, caller=event.call.caller))
        assert output.is_done()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while True:
            rejected = (await asyncio.to_thread(control, "GET", "/rejected-calls"))["rejected"]
            if any(r["call_id"] == call_id for r in rejected):
                break
            assert loop.time() < deadline, "the server saw no reject"
            await asyncio.sleep(0.05)

        await ann.command(ffi.Command.SEND_CHAT_STATE(to="15552220002@s.whatsapp.net",
                                                      state=ffi.ChatState.COMPOSING))
        typing = await wait_for(ben_seen, lambda e: e.is_chat_state(), "typing")
        assert typing.chat == "15552220001@s.whatsapp.net"
        assert typing.state == ffi.ChatState.COMPOSING

        output = await ann.command(ffi.Command.CHECK_NUMBERS(phones=["15552220002", "15559999999"]))
        assert output.is_numbers()
        ben_info, nobody = output.numbers
        assert ben_info.on_whatsapp and ben_info.lid.endswith("@lid")
        assert not nobody.on_whatsapp and nobody.lid is None

        await asyncio.to_thread(control, "POST", "/fail-next-contact-query", {"code": 400})
        with pytest.raises(Exception) as error:
            await ann.command(ffi.Command.CHECK_NUMBERS(phones=["15552220002"]))
        assert error.value.code == "bad_request"
        await ann.close()
        await ben.close()

    asyncio.run(go())
