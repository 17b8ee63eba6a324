"""The asyncio driver against walink-sim's mock-server over a real websocket (the `websockets`
package): pairing by code, then a restart from the file store logs in without pairing again; a
refused pairing code ends in its own typed reason; a message round trip with another account's
phone after pairing by code; app-state blobs fetched from the mock-server's media path. Skips when the
mock-server is not built (cargo build -p walink-sim --bin mock-server), and fails instead when
CI or WALINK_REQUIRE_MOCK is set."""

import asyncio
import json
import os
import subprocess
import urllib.request
from pathlib import Path

import pytest

import walink_ffi as ffi
from walink.driver import Driver, urllib_fetch, websocket_transport
from walink.store import FileStore, MemoryStore

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


def mock_server_required():
    """True in CI or with WALINK_REQUIRE_MOCK set: a missing mock-server is then a failure."""
    def is_set(name):
        value = os.environ.get(name)
        return value is not None and value not in ("", "0") and value.lower() != "false"
    return is_set("CI") or is_set("WALINK_REQUIRE_MOCK")


@pytest.fixture
def server():
    path = mock_server_path()
    if path is None:
        if mock_server_required():
            pytest.fail("mock-server is not built (cargo build -p walink-sim --bin mock-server) "
                        "and CI or WALINK_REQUIRE_MOCK is set")
        pytest.skip("mock-server is not built")
    proc = subprocess.Popen([path, "--seed", "11", "--until-stdin-closes"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    banner = proc.stdout.readline().split()
    ws, http = banner[banner.index("listening") + 1], banner[banner.index("control") + 1]

    def control(method, route, body=None):
        data = None if body is None else json.dumps(body).encode()
        with urllib.request.urlopen(urllib.request.Request(http + route, data=data, method=method)) as response:
            return json.loads(response.read())

    control.base_url = http  # the control port also serves the media blobs (GET /v/...)
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



async def paired_by_code(url, control, phone, config):
    """A driver linked to ``phone`` by a pairing code at the mock-server, returned once connected,
    with the list its events go to."""
    connected = lambda e: e.is_state() and e.state.is_connected()  # noqa: E731
    options = dict(store=MemoryStore(), transport=websocket_transport, url=url, config=config)
    driver, seen, reached = await run_until(options, connected)
    code = await driver.pair_with_code(phone)
    await asyncio.to_thread(control, "POST", f"/accounts/{phone}/code", {"code": code})
    await asyncio.wait_for(reached.wait(), 20)
    return driver, seen


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


def test_a_refused_pairing_code_is_pairing_code_failed_not_other(server):
    """A well-formed number without an account: the server answers the code request with 400,
    the command fails with code ``rejected``, and the state goes back to QR with the typed
    reason ``PairingCodeFailed``."""
    url, _ = server

    async def go():
        options = dict(store=MemoryStore(), transport=websocket_transport, url=url,
                       config=ffi.ClientConfig(trust_root=TEST_ROOT, device_name="walink pytest"))
        failed = lambda e: e.is_state() and e.reason.is_pairing_code_failed()  # noqa: E731
        driver, seen, reached = await run_until(options, failed)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while not any(e.is_qr() for e in seen):
            assert loop.time() < deadline, "no QR"
            await asyncio.sleep(0.05)
        with pytest.raises(Exception) as error:
            await driver.pair_with_code("15550009999")
        assert error.value.code == "rejected"
        await asyncio.wait_for(reached.wait(), 20)
        state = next(e for e in seen if failed(e)).state
        assert state.is_awaiting_pairing() and state.qr
        await driver.close()

    asyncio.run(go())


def test_a_message_round_trip_with_a_phone_after_pairing_by_code(server, tmp_path):
    url, control = server
    control("POST", "/accounts", {"phone": "15550005555", "name": "Erin"})
    control("POST", "/accounts", {"phone": "15550006666", "name": "Frank"})
    connected = lambda e: e.is_state() and e.state.is_connected()

    async def phone_receives(phone, text, timeout=20.0):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            answer = await asyncio.to_thread(control, "GET", f"/accounts/{phone}/messages")
            found = [m for m in answer["messages"] if m["text"] == text]
            if found:
                return found[0]
            assert loop.time() < deadline, f"the phone of {phone} did not get {text!r}: {answer}"
            await asyncio.sleep(0.05)

    async def go():
        options = dict(store=FileStore(tmp_path / "erin"), transport=websocket_transport, url=url,
                       config=ffi.ClientConfig(trust_root=TEST_ROOT, device_name="walink pytest"))
        driver, seen, reached = await run_until(options, connected)
        code = await driver.pair_with_code("15550005555")
        await asyncio.to_thread(control, "POST", "/accounts/15550005555/code", {"code": code})
        await asyncio.wait_for(reached.wait(), 20)

        message_id = await driver.send_text("15550006666@s.whatsapp.net", "hello Frank from Python")
        assert message_id
        received = await phone_receives("15550006666", "hello Frank from Python")
        assert received["error"] is None

        await asyncio.to_thread(control, "POST", "/accounts/15550006666/send",
                                {"to": "15550005555", "text": "hello Erin from the phone"})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while not any(e.is_message() and e.text == "hello Erin from the phone" for e in seen):
            assert loop.time() < deadline, "the reply did not arrive"
            await asyncio.sleep(0.05)
        reply = next(e for e in seen if e.is_message() and e.text == "hello Erin from the phone")
        assert reply.chat == "15550006666@s.whatsapp.net"
        assert not any(e.is_decrypt_failed() for e in seen)
        await driver.close()

    asyncio.run(go())


def test_a_contact_that_reinstalls_is_reported_as_an_identity_change(server, tmp_path):
    """Frank's phone is reinstalled with a new identity key and messages Erin's walink client:
    the default policy takes the message and reports IdentityChanged; GetIdentity then reads the
    new key. A strict client refuses the next change, fails a send to the device with
    UNTRUSTED_IDENTITY, and after ApproveIdentity asks for the refused message again."""
    url, control = server
    control("POST", "/accounts", {"phone": "15550005556", "name": "Erin"})
    control("POST", "/accounts", {"phone": "15550006667", "name": "Frank"})
    connected = lambda e: e.is_state() and e.state.is_connected()

    async def wait_for(seen, predicate, what, timeout=20.0):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not any(predicate(e) for e in seen):
            assert loop.time() < deadline, f"{what} did not happen: {[type(e).__name__ for e in seen]}"
            await asyncio.sleep(0.05)
        return next(e for e in seen if predicate(e))

    async def go():
        options = dict(store=FileStore(tmp_path / "erin"), transport=websocket_transport, url=url,
                       config=ffi.ClientConfig(trust_root=TEST_ROOT, device_name="walink pytest"))
        driver, seen, reached = await run_until(options, connected)
        code = await driver.pair_with_code("15550005556")
        await asyncio.to_thread(control, "POST", "/accounts/15550005556/code", {"code": code})
        await asyncio.wait_for(reached.wait(), 20)
        frank = "15550006667"
        await asyncio.to_thread(control, "POST", f"/accounts/{frank}/send", {"to": "15550005556", "text": "before"})
        await wait_for(seen, lambda e: e.is_message() and e.text == "before", "the first message")

        answer = await asyncio.to_thread(control, "POST", f"/accounts/{frank}/reinstall",
                                         {"to": "15550005556", "text": "after the reinstall"})
        change = await wait_for(seen, lambda e: e.is_identity_changed(), "IdentityChanged")
        assert change.accepted
        assert bytes(change.identity).hex() == answer["identity"]
        await wait_for(seen, lambda e: e.is_message() and e.text == "after the reinstall", "the message after it")
        output = await driver.get_identity(change.address)
        assert output.is_identity()
        assert bytes(output.identity) == bytes(change.identity)
        assert output.pending is None
        await driver.close()

        options["config"] = ffi.ClientConfig(trust_root=TEST_ROOT, device_name="walink pytest",
                                             identity_policy=ffi.IdentityPolicy.STRICT)
        options["store"] = FileStore(tmp_path / "erin")
        driver, seen, reached = await run_until(options, connected)
        await asyncio.wait_for(reached.wait(), 20)
        answer = await asyncio.to_thread(control, "POST", f"/accounts/{frank}/reinstall",
                                         {"to": "15550005556", "text": "held for approval"})
        change = await wait_for(seen, lambda e: e.is_identity_changed(), "IdentityChanged (strict)")
        assert not change.accepted
        failed = await wait_for(seen, lambda e: e.is_decrypt_failed(), "DecryptFailed (strict)")
        assert failed.kind.is_untrusted_identity()
        assert not any(e.is_message() and e.text == "held for approval" for e in seen)
        with pytest.raises(Exception) as refused:
            await driver.send_text(f"{frank}@s.whatsapp.net", "to an untrusted device")
        assert getattr(refused.value, "code", None) == "untrusted_identity", refused.value
        await driver.approve_identity(change.address, change.identity)
        await wait_for(seen, lambda e: e.is_message() and e.text == "held for approval", "the held message")
        await driver.close()

    asyncio.run(go())


def test_the_driver_downloads_an_app_state_snapshot_blob(server):
    """The phone's snapshot is served as an external blob; the core asks for it with a Fetch of
    the configured media origin and the blob's path, the driver carries it out, and the chat
    settings appear. A failing host fetch ends in a typed AppStateFatal and fetch_failed errors."""
    url, control = server
    chats = [f"155577700{i:02d}@s.whatsapp.net" for i in range(1, 5)]
    for phone in ("15550008801", "15550008802"):
        control("POST", "/accounts", {"phone": phone})
        control("POST", f"/accounts/{phone}/app-state-options", {"auto_share": True, "external_snapshots": True})
        for chat in chats:  # four patches: the phone makes a snapshot at version 4
            control("POST", f"/accounts/{phone}/app-state", {"action": "mute", "chat": chat})

    async def paired(phone, media_origin=None, **extra):
        errors = []
        config = ffi.ClientConfig(trust_root=TEST_ROOT, device_name="walink pytest", media_origin=media_origin)
        options = dict(store=MemoryStore(), transport=websocket_transport, url=url, config=config,
                       on_error=errors.append, **extra)
        driver, seen, _ = await run_until(options, lambda e: False)
        code = await driver.pair_with_code(phone)
        await asyncio.to_thread(control, "POST", f"/accounts/{phone}/code", {"code": code})
        return driver, seen, errors

    async def wait_for(seen, predicate, timeout=30.0):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not any(predicate(e) for e in seen):
            assert loop.time() < deadline, f"timed out: {[type(e).__name__ for e in seen]}"
            await asyncio.sleep(0.05)
        return next(e for e in seen if predicate(e))

    async def go():
        fetched = []

        async def recording(request):
            if "/md-app-state/" in request.url:  # not the phone's history blobs (md-msg-hist)
                fetched.append(request.url)
            return await urllib_fetch(request)

        driver, seen, errors = await paired("15550008801", media_origin=control.base_url, fetch=recording)
        for chat in chats:
            event = await wait_for(seen, lambda e, chat=chat: e.is_chat_settings() and e.chat == chat)
            assert event.settings.muted_until is not None
        assert not any(e.is_app_state_fatal() for e in seen)
        assert errors == []
        assert fetched and all(u.startswith(control.base_url + "/v/sim/md-app-state/") for u in fetched)
        output = await driver.command(ffi.Command.GET_CHAT_SETTINGS(chat=chats[1]))
        assert output.settings.muted_until is not None
        await driver.close()

        attempts = []

        async def offline(request):
            attempts.append(request.url)
            raise OSError("offline")

        driver, seen, errors = await paired("15550008802", fetch=offline)
        fatal = await wait_for(seen, lambda e: e.is_app_state_fatal())
        assert fatal.error.is_download()
        media = ffi.endpoints().media_origin
        assert len(attempts) >= 2 and all(u.startswith(media + "/v/sim/") for u in attempts)
        assert errors and all(getattr(e, "code", None) == "fetch_failed" for e in errors)
        assert not any(e.is_chat_settings() for e in seen)
        await driver.close()

    asyncio.run(go())


def test_the_driver_downloads_a_patch_with_external_mutations(server):
    """The phone pins 20 chats in one patch (the app-state route's "chats"): its mutations
    exceed walink-sim's 1,024-byte threshold and travel as an external blob, which the driver
    downloads from the mock-server's media path; the settings match the phone's. A one-mutation
    patch before it stays inline (no download)."""
    url, control = server
    phone = "15550008821"
    control("POST", "/accounts", {"phone": phone})
    assert control("POST", f"/accounts/{phone}/app-state-options",
                   {"auto_share": True, "external_mutations": True})["external_patches_served"] == 0
    fetched = []

    async def download(request):
        if "/md-app-state/" in request.url:  # not the phone's history blobs (md-msg-hist)
            fetched.append(request.url)
        return await urllib_fetch(request)

    async def wait_for(seen, predicate, timeout=30.0):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not any(predicate(e) for e in seen):
            assert loop.time() < deadline, f"timed out: {[type(e).__name__ for e in seen]}"
            await asyncio.sleep(0.05)
        return next(e for e in seen if predicate(e))

    async def go():
        errors = []
        config = ffi.ClientConfig(trust_root=TEST_ROOT, device_name="walink pytest",
                                  media_origin=control.base_url)
        options = dict(store=MemoryStore(), transport=websocket_transport, url=url, config=config,
                       on_error=errors.append, fetch=download)
        driver, seen, _ = await run_until(options, lambda e: False)
        code = await driver.pair_with_code(phone)
        await asyncio.to_thread(control, "POST", f"/accounts/{phone}/code", {"code": code})

        first = "15557773000@s.whatsapp.net"
        small = await asyncio.to_thread(control, "POST", f"/accounts/{phone}/app-state", {"action": "pin", "chat": first})
        assert small["mutations"] == 1
        await wait_for(seen, lambda e: e.is_chat_settings() and e.chat == first)
        assert fetched == []

        chats = [f"15557773{i:03d}@s.whatsapp.net" for i in range(1, 21)]
        large = await asyncio.to_thread(control, "POST", f"/accounts/{phone}/app-state", {"action": "pin", "chats": chats})
        assert large["mutations"] == 20 and large["version"] == small["version"] + 1
        for chat in chats:
            event = await wait_for(seen, lambda e, chat=chat: e.is_chat_settings() and e.chat == chat)
            assert event.settings.pinned_at is not None
        assert fetched and all(u.startswith(control.base_url + "/v/sim/md-app-state/") for u in fetched)
        counters = await asyncio.to_thread(control, "POST", f"/accounts/{phone}/app-state-options", {})
        assert counters["external_patches_served"] >= 1 and counters["snapshots_served"] == 0
        phone_side = await asyncio.to_thread(control, "GET", f"/accounts/{phone}/chat-settings?chat={chats[7]}")
        assert phone_side["pinned_at"] is not None
        assert errors == [] and not any(e.is_app_state_fatal() for e in seen)
        await driver.close()

    asyncio.run(go())


def test_media_is_sent_downloaded_and_uploaded_again_after_expiry(server):
    """A photo goes up through the driver's fetch (POST with the core's encrypted body) and comes
    back through another client's download_media; a phone's voice note that the hosts expired is
    asked of the phone again and downloads."""
    url, control = server
    alice, bob = "15550009901", "15550009902"
    for phone in (alice, bob):
        control("POST", "/accounts", {"phone": phone})

    async def paired(phone):
        config = ffi.ClientConfig(trust_root=TEST_ROOT, device_name="walink pytest",
                                  media_origin=control.base_url)
        options = dict(store=MemoryStore(), transport=websocket_transport, url=url, config=config)
        driver, seen, _ = await run_until(options, lambda e: False)
        code = await driver.pair_with_code(phone)
        await asyncio.to_thread(control, "POST", f"/accounts/{phone}/code", {"code": code})
        await wait_for(seen, lambda e: e.is_state() and e.state.is_connected())
        return driver, seen

    async def wait_for(seen, predicate, timeout=30.0):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not any(predicate(e) for e in seen):
            assert loop.time() < deadline, f"timed out: {[type(e).__name__ for e in seen]}"
            await asyncio.sleep(0.05)
        return next(e for e in seen if predicate(e))

    async def go():
        a, _ = await paired(alice)
        b, at_bob = await paired(bob)
        photo = bytes((i * 7) % 251 for i in range(100_000))
        sent = await a.send_media(f"{bob}@s.whatsapp.net", ffi.MediaKind.IMAGE, photo, "image/jpeg",
                                  caption="from python")
        event = await wait_for(at_bob, lambda e: e.is_message() and e.id == sent)
        assert await b.download_media(event) == photo

        note = b"OggS" * 3000
        import base64
        answer = await asyncio.to_thread(control, "POST", f"/accounts/{alice}/send-media", {
            "to": bob, "kind": "ptt", "mimetype": "audio/ogg; codecs=opus",
            "data_base64": base64.b64encode(note).decode()})
        event = await wait_for(at_bob, lambda e: e.is_message() and e.id == answer["id"])
        assert await b.download_media(event) == note
        path = next(part for part in event.raw.split(b"\x4a") if part[1:8] == b"/v/sim/")
        direct_path = path[1:1 + path[0]].decode()
        await asyncio.to_thread(control, "POST", "/expire-media", {"direct_path": direct_path})
        assert await b.download_media(event) == note
        await a.close()
        await b.close()

    asyncio.run(go())


def test_content_between_two_python_clients_reply_reaction_and_a_poll_vote_counted(server):
    """Structured content both ways: a poll, a reply quoting it, a reaction with the key of the
    receiver's copy, and a vote opened with the poll's secret and counted."""
    url, control = server
    connected = lambda e: e.is_state() and e.state.is_connected()  # noqa: E731

    async def paired(phone, name):
        control("POST", "/accounts", {"phone": phone, "name": name})
        config = ffi.ClientConfig(trust_root=TEST_ROOT, device_name="walink pytest")
        return await paired_by_code(url, control, phone, config)

    async def arrives(seen, predicate, timeout=20.0):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = [e for e in seen if e.is_message() and predicate(e)]
            if found:
                return found[-1]
            assert loop.time() < deadline, "the message did not arrive"
            await asyncio.sleep(0.05)

    async def go():
        ivy, ivy_seen = await paired("15550009111", "Ivy")
        jay, jay_seen = await paired("15550009222", "Jay")
        ivy_jid, jay_jid = "15550009111@s.whatsapp.net", "15550009222@s.whatsapp.net"

        poll = ffi.WaMessage(poll_creation_message=ffi.PollCreationMessage(
            name="lunch?", options=[ffi.PollCreationMessageOption(option_name=name) for name in ("pizza", "sushi")],
            selectable_options_count=0))
        poll_id = await ivy.send_message(jay_jid, poll)
        at_jay = await arrives(jay_seen, lambda e: e.id == poll_id)
        assert at_jay.message.poll_creation_message.name == "lunch?"
        assert len(at_jay.message.message_context_info.message_secret) == 32
        assert not at_jay.from_me and at_jay.push_name == "Ivy"

        quoted = ffi.NestedMessage.MESSAGE(message=ffi.WaMessage(poll_creation_message=at_jay.message.poll_creation_message))
        reply = ffi.WaMessage(extended_text_message=ffi.ExtendedTextMessage(
            text="pizza!", context_info=ffi.ContextInfo(stanza_id=poll_id, participant=ivy_jid, quoted_message=quoted)))
        reply_id = await jay.send_message(ivy_jid, reply)
        got = await arrives(ivy_seen, lambda e: e.id == reply_id)
        assert got.text == "pizza!"
        context = got.message.extended_text_message.context_info
        assert context.stanza_id == poll_id
        assert context.quoted_message.message.poll_creation_message.name == "lunch?"

        key = ffi.MessageKey(remote_jid=ivy_jid, from_me=False, id=poll_id)
        reaction_id = await jay.send_message(ivy_jid, ffi.WaMessage(reaction_message=ffi.ReactionMessage(key=key, text="👍")))
        got = await arrives(ivy_seen, lambda e: e.id == reaction_id)
        assert got.message.reaction_message.text == "👍"
        assert got.message.reaction_message.key == ffi.MessageKey(remote_jid=jay_jid, from_me=True, id=poll_id)

        await jay.send_poll_vote(ivy_jid, poll_id, ["sushi"])
        vote = await arrives(ivy_seen, lambda e: e.poll_vote is not None)
        assert vote.poll_vote.poll_id == poll_id and vote.poll_vote.selected == ["sushi"]
        assert [(o.name, len(o.voters)) for o in vote.poll_vote.tally] == [("pizza", 0), ("sushi", 1)]
        with pytest.raises(Exception) as error:
            await jay.send_poll_vote(ivy_jid, "3EB0NOPOLL", ["sushi"])
        assert error.value.code == "unknown_poll"
        # What the event carries as raw bytes decodes to the same content.
        assert ffi.decode_message(got.raw).reaction_message.text == "👍"
        assert ffi.decode_message(ffi.encode_message(poll)) == poll
        assert not any(e.is_decrypt_failed() for e in ivy_seen + jay_seen)
        await ivy.close()
        await jay.close()

    asyncio.run(go())


def test_groups_create_add_a_member_and_a_non_admin_refused(server):
    """A Python client creates a group with another Python client's account (one participant
    needs an invite), adds a member (a result per participant), the member's client is told by a
    group event, and the member, no admin, is refused with the typed code ``forbidden``."""
    url, control = server
    connected = lambda e: e.is_state() and e.state.is_connected()  # noqa: E731

    async def paired(phone, name):
        control("POST", "/accounts", {"phone": phone, "name": name})
        config = ffi.ClientConfig(trust_root=TEST_ROOT, device_name="walink pytest")
        return await paired_by_code(url, control, phone, config)

    async def go():
        kim, _ = await paired("15550401111", "Kim")
        lee, lee_seen = await paired("15550402222", "Lee")
        control("POST", "/accounts", {"phone": "15550403333", "name": "Max"})
        control("POST", "/accounts", {"phone": "15550404444", "name": "Ned"})
        control("POST", "/group-options", {"add_restricted": ["15550404444"]})
        group_command = lambda c: ffi.Command.GROUP(command=c)  # noqa: E731

        done = await kim.command(group_command(ffi.GroupCommand.CREATE(
            subject="Team", participants=["15550402222@s.whatsapp.net", "15550404444@s.whatsapp.net"])))
        created = done.output
        assert created.is_created() and created.info.subject == "Team"
        ned = next(p for p in created.participants if p.jid == "15550404444@s.whatsapp.net")
        assert ned.status.is_invite_required() and ned.status.code
        group = created.info.jid

        done = await kim.command(group_command(ffi.GroupCommand.CHANGE_PARTICIPANTS(
            group=group, action=ffi.ParticipantAction.ADD,
            participants=["15550403333@s.whatsapp.net", "15550409999@s.whatsapp.net"])))
        results = done.output.results
        assert results[0].status.is_ok() and results[1].status.is_not_found()

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while not any(e.is_group() and any(c.is_participants() and c.change == ffi.MembershipChange.ADDED
                                           and c.participants[0].jid == "15550403333@s.whatsapp.net"
                                           for c in e.changes) for e in lee_seen):
            assert loop.time() < deadline, "Lee's client is told of the add"
            await asyncio.sleep(0.05)

        with pytest.raises(Exception) as error:
            await lee.command(group_command(ffi.GroupCommand.CHANGE_PARTICIPANTS(
                group=group, action=ffi.ParticipantAction.REMOVE,
                participants=["15550403333@s.whatsapp.net"])))
        assert error.value.code == "forbidden"
        state = control("GET", f"/groups/{group}")
        assert state["members"] == ["15550401111", "15550402222", "15550403333"]
        await kim.close()
        await lee.close()

    asyncio.run(go())
