"""The ffi Client: construction, the outputs of a fresh and of a restored client, typed errors
for bad input and for commands in the wrong state, and bytes that break the protocol."""

import pytest

import walink_ffi as ffi

SEED = bytes(range(32))
NOW = 1_760_000_000_000


def config(**overrides):
    return ffi.ClientConfig(unsafe_test_rng_seed=SEED, **overrides)


def drain(client):
    outputs = []
    while (output := client.poll_output()) is not None:
        outputs.append(output)
    return outputs


def kinds(outputs):
    return [type(o).__name__.rsplit(".", 1)[-1].lower() for o in outputs]


def persisted(outputs):
    records = {}
    for output in outputs:
        if output.is_persist():
            for change in output.changes:
                if change.is_put():
                    records[(change.space, change.key)] = bytes(change.value)
                elif change.is_delete():
                    records.pop((change.space, change.key), None)
                else:
                    records.clear()
    return [ffi.StoreRecord(space=s, key=k, value=v) for (s, k), v in records.items()]


def test_a_fresh_client_persists_its_device_before_it_connects():
    outputs = drain(ffi.Client(config(), []))
    names = kinds(outputs)
    assert "persist" in names and "connect" in names
    assert names.index("persist") < names.index("connect")
    records = persisted(outputs)
    assert ("device", "device") in {(r.space, r.key) for r in records}
    assert set(ffi.start_spaces()) >= {"device"}


def test_the_same_seed_gives_the_same_device():
    a = persisted(drain(ffi.Client(config(), [])))
    b = persisted(drain(ffi.Client(config(), [])))
    assert [(r.space, r.key, r.value) for r in a] == [(r.space, r.key, r.value) for r in b]


def test_a_restored_client_connects_without_persisting_a_new_device():
    records = persisted(drain(ffi.Client(config(), [])))
    outputs = drain(ffi.Client(config(), records))
    names = kinds(outputs)
    assert "connect" in names
    assert not any(o.is_persist() and any(c.is_put() and c.space == "device" for c in o.changes) for o in outputs)


def test_connecting_sends_the_connection_header_first():
    client = ffi.Client(config(), [])
    drain(client)
    client.handle_connected(NOW)
    transmits = [o for o in drain(client) if o.is_transmit()]
    assert transmits and bytes(transmits[0].bytes)[:4] == b"WA\x06\x03"
    assert client.poll_timeout() is not None


def test_bad_config_and_records_are_typed_errors():
    for bad in (ffi.ClientConfig(unsafe_test_rng_seed=b"short"), ffi.ClientConfig(web_version="two")):
        with pytest.raises(ffi.WalinkError.InvalidInput) as error:
            ffi.Client(bad, [])
        assert error.value.code == "invalid_config"
    # A trust root that cannot check signatures (all zeros, or of small order) is refused.
    for root in (bytes(32), b"\x01" + bytes(31)):
        with pytest.raises(ffi.WalinkError.InvalidInput, match="trust_root"):
            ffi.Client(config(trust_root=root), [])
    with pytest.raises(ffi.WalinkError.InvalidInput):
        ffi.Client(config(), [ffi.StoreRecord(space="no-such-space", key="k", value=b"")])
    with pytest.raises(ffi.WalinkError.CorruptStore):
        ffi.Client(config(), [ffi.StoreRecord(space="device", key="device", value=b"\xff\x00garbage")])
    with pytest.raises(ffi.WalinkError.CorruptStore):
        ffi.Client(config(), [ffi.StoreRecord(space="session", key="1.0@s.whatsapp.net", value=b"")])


def command_results(outputs):
    return [o.event.result for o in outputs if o.is_event() and o.event.is_command_done()]


def test_commands_in_the_wrong_state_end_in_typed_errors():
    client = ffi.Client(config(), [])
    drain(client)
    ids = [
        client.command(NOW, ffi.Command.SEND_TEXT(to="15551234567@s.whatsapp.net", text="hi")),
        client.command(NOW, ffi.Command.PAIR_WITH_CODE(phone="12")),
        client.command(NOW, ffi.Command.CONNECT()),
    ]
    assert len(set(ids)) == 3
    done = {}
    for output in drain(client):
        if output.is_event() and output.event.is_command_done():
            done[output.event.id] = output.event.result
    assert set(done) == set(ids), "every command ends in exactly one CommandDone"
    for command_id in ids:
        assert done[command_id].is_err(), done[command_id]
    assert done[ids[1]].error.is_invalid_phone_number()


def test_protocol_garbage_closes_the_connection_and_schedules_a_reconnect():
    client = ffi.Client(config(), [])
    records = persisted(drain(client))
    client.handle_connected(NOW)
    drain(client)
    client.handle_bytes(NOW + 10, b"\x00\x00\x05garbage-that-is-no-server-hello")
    outputs = drain(client)
    states = [o.event.state for o in outputs if o.is_event() and o.event.is_state()]
    assert any(o.is_close() for o in outputs) or any(s.is_reconnecting() for s in states)
    assert client.poll_timeout() is not None
    # Nothing of the device was lost: a client restored from the records still works.
    assert "connect" in kinds(drain(ffi.Client(config(), records)))


def test_a_socket_closed_mid_frame_reconnects_on_the_timer():
    client = ffi.Client(config(), [])
    drain(client)
    client.handle_connected(NOW)
    drain(client)
    client.handle_bytes(NOW + 5, b"\x00\x01")  # half a frame header
    client.handle_closed(NOW + 6, ffi.CloseReason.NETWORK())
    outputs = drain(client)
    states = [o.event.state for o in outputs if o.is_event() and o.event.is_state()]
    assert any(s.is_reconnecting() for s in states)
    at = client.poll_timeout()
    assert at is not None and at > NOW
    client.handle_timeout(at)
    assert "connect" in kinds(drain(client))
