"""The store conformance suite (MemoryStore, FileStore), then what only a file store can suffer:
torn and damaged files, a failing disk, a killed process, and files written by the npm store."""

import asyncio
import shutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from walink.store import Delete, DeleteAll, FileStore, MemoryStore, Put, RecordKey, StoreError


def run(coro):
    return asyncio.run(coro)


async def dump(store):
    records = await store.load_all()
    for r in records:
        assert isinstance(r.value, bytes)
    return sorted(f"{r.space}/{r.key}={r.value.hex()}" for r in records)


class Memory:
    durable = False

    def __init__(self, tmp_path):
        self.stores = {}

    def open(self, label):
        return MemoryStore()


class File:
    durable = True

    def __init__(self, tmp_path, compact_bytes=1 << 20):
        self.tmp_path = tmp_path
        self.compact_bytes = compact_bytes

    def open(self, label):
        return FileStore(self.tmp_path / label, compact_bytes=self.compact_bytes)


class SmallFile(File):
    def __init__(self, tmp_path):
        super().__init__(tmp_path, compact_bytes=64)


@pytest.fixture(params=[Memory, File, SmallFile], ids=["memory", "file", "file-compacting"])
def kind(request, tmp_path):
    return request.param(tmp_path)


@pytest.fixture(params=[File, SmallFile], ids=["file", "file-compacting"])
def durable_kind(request, tmp_path):
    """The stores that keep their records across a close (the memory store does not)."""
    return request.param(tmp_path)


def test_new_store_is_empty(kind):
    assert run(kind.open("a").load_all()) == []


def test_put_overwrite_delete(kind):
    async def go():
        store = kind.open("a")
        await store.apply_batch([Put("session", "a@s.whatsapp.net", b"\x01\x02"), Put("identity", "a@s.whatsapp.net", b"\x03")])
        await store.apply_batch([Put("session", "a@s.whatsapp.net", b"\x00\xff\x00"), Put("prekey", "7", b"")])
        await store.apply_batch([Delete("identity", "a@s.whatsapp.net"), Delete("identity", "never-there")])
        await store.apply_batch([Put("device", "ключ ✓", b"\x09")])
        assert await dump(store) == ["device/ключ ✓=09", "prekey/7=", "session/a@s.whatsapp.net=00ff00"]

    run(go())


def test_load_returns_the_records_that_exist(kind):
    async def go():
        store = kind.open("a")
        await store.apply_batch([Put("session", "a", b"\x01"), Put("session", "b", b"\x02"), Put("identity", "a", b"\x03")])
        found = await store.load([RecordKey("session", "b"), RecordKey("session", "zz"), RecordKey("identity", "a")])
        assert sorted(f"{r.space}/{r.key}={r.value.hex()}" for r in found) == ["identity/a=03", "session/b=02"]
        assert await store.load([]) == []
        with pytest.raises(StoreError) as error:
            await store.load([("session", "a")])
        assert error.value.code == "invalid_key"

    run(go())


def test_delete_all_then_later_changes_of_the_batch(kind):
    async def go():
        store = kind.open("a")
        await store.apply_batch([Put("device", "device", b"\x01"), Put("session", "a", b"\x02")])
        await store.apply_batch([Put("session", "b", b"\x03"), DeleteAll(), Put("device", "device", b"\x04")])
        assert await dump(store) == ["device/device=04"]
        if kind.durable:
            await store.close()
            assert await dump(kind.open("a")) == ["device/device=04"]

    run(go())


def test_changes_in_a_batch_apply_in_order(kind):
    async def go():
        store = kind.open("a")
        await store.apply_batch([Put("s", "x", b"\x01"), Delete("s", "x"), Delete("s", "y"), Put("s", "y", b"\x02"), Put("s", "y", b"\x03")])
        assert await dump(store) == ["s/y=03"]

    run(go())


@pytest.mark.parametrize("bad", [Put("s", "k", [1, 2]), Put("", "k", b""), Delete("s", 5), "put", None, Put("a\0b", "k", b"")])
def test_malformed_change_applies_nothing(kind, bad):
    async def go():
        store = kind.open("a")
        await store.apply_batch([Put("s", "kept", b"\x01")])
        with pytest.raises(StoreError) as error:
            await store.apply_batch([Put("s", "a", b"\x02"), Delete("s", "kept"), bad])
        assert error.value.code == "invalid_change"
        with pytest.raises(StoreError):
            await store.apply_batch("not a batch")
        assert await dump(store) == ["s/kept=01"]

    run(go())


def test_concurrent_batches_apply_in_call_order(kind):
    async def go():
        store = kind.open("a")
        await asyncio.gather(*(store.apply_batch([Put("s", "n", bytes([i])), Put("s", f"k{i}", bytes([i]))]) for i in range(50)))
        records = await dump(store)
        assert len(records) == 51 and "s/n=31" in records

    run(go())


def test_closed_store_refuses(kind):
    async def go():
        store = kind.open("a")
        await store.close()
        for call in (store.apply_batch([Put("s", "k", b"")]), store.load_all()):
            with pytest.raises(StoreError) as error:
                await call
            assert error.value.code == "closed"

    run(go())


def test_reopen_holds_exactly_the_applied_batches(durable_kind):
    kind = durable_kind

    async def go():
        expected = {}
        store = kind.open("a")
        for rnd in range(5):
            for i in range(20):
                key = f"k{(rnd * 7 + i) % 23}"
                if i % 5 == 4:
                    await store.apply_batch([Delete("s", key), Put("round", "last", bytes([rnd, i]))])
                    expected.pop(key, None)
                else:
                    await store.apply_batch([Put("s", key, bytes([rnd, i])), Put("round", "last", bytes([rnd, i]))])
                    expected[key] = bytes([rnd, i])
            await store.close()
            store = kind.open("a")
            want = sorted([f"s/{k}={v.hex()}" for k, v in expected.items()] + [f"round/last={bytes([rnd, 19]).hex()}"])
            assert await dump(store) == want

    run(go())


FAILING_DISK = textwrap.dedent(
    """
    import asyncio, resource, signal, sys
    sys.path.insert(0, sys.argv[2])
    from walink.store import FileStore, Put, Delete, StoreError

    async def main():
        store = FileStore(sys.argv[1], compact_bytes=1 << 20)
        await store.apply_batch([Put("s", "a", b"\\x01")])
        # The disk fills up: a write past this size stops part way (EFBIG).
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2000, hard))
        try:
            await store.apply_batch([Put("s", "b", b"\\x02" * 4096), Delete("s", "a")])
            print("applied")
        except StoreError as error:
            print("refused", error.code)
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        print(sorted((r.key, r.value.hex()) for r in await store.load_all()))
        await store.apply_batch([Put("s", "c", b"\\x03")])
        await store.close()

    asyncio.run(main())
    """
)


def test_failed_write_applies_none_of_its_batch(tmp_path):
    """A real partial write (the file size limit), through the native store: nothing of the
    batch is applied, on disk or in memory, and the store goes on."""
    package = str(Path(__file__).resolve().parents[1])
    child = subprocess.run([sys.executable, "-c", FAILING_DISK, str(tmp_path / "f"), package],
                           capture_output=True, text=True, check=True)
    assert child.stdout.splitlines() == ["refused io", "[('a', '01')]"], child.stdout + child.stderr
    assert run(dump(FileStore(tmp_path / "f"))) == ["s/a=01", "s/c=03"]


def test_a_failed_compaction_keeps_the_batch_and_the_store_heals(tmp_path):
    async def go():
        store = FileStore(tmp_path / "c", compact_bytes=64)
        # A directory where the temporary snapshot goes makes the compaction fail.
        (tmp_path / "c" / "snapshot.tmp").mkdir()
        with pytest.raises(StoreError) as error:
            await store.apply_batch([Put("s", "a", b"\x01" * 100)])
        assert error.value.code == "io"
        (tmp_path / "c" / "snapshot.tmp").rmdir()
        await store.apply_batch([Put("s", "b", b"\x02")])
        assert await dump(store) == ["s/a=" + "01" * 100, "s/b=02"]

    run(go())


def test_files_are_the_owners_only(tmp_path):
    async def go():
        directory = tmp_path / "p" / "nested"
        store = FileStore(directory, compact_bytes=64)
        await store.apply_batch([Put("device", "device", b"\x07" * 100)])
        await store.close()

    run(go())
    mode = lambda path: path.stat().st_mode & 0o777  # noqa: E731
    assert mode(tmp_path / "p") == 0o700 and mode(tmp_path / "p" / "nested") == 0o700
    assert mode(tmp_path / "p" / "nested" / "wal") == 0o600
    assert mode(tmp_path / "p" / "nested" / "snapshot") == 0o600


def three_batches(directory):
    async def go():
        store = FileStore(directory)
        await store.apply_batch([Put("s", "a", b"\x01")])
        await store.apply_batch([Put("s", "b", b"\x02")])
        await store.apply_batch([Put("s", "c", b"\x03" * 100), Delete("s", "a")])
        await store.close()

    run(go())
    return (directory / "wal").read_bytes()


def test_every_torn_tail_is_cut_off(tmp_path):
    wal = three_batches(tmp_path / "t")
    second_end = len(wal) - (8 + 4 + 1 + 4 + 1 + 4 + 1 + 4 + 100 + 1 + 4 + 1 + 4 + 1)
    for cut in range(second_end, len(wal), 7):
        (tmp_path / "t" / "wal").write_bytes(wal[:cut])
        store = FileStore(tmp_path / "t")
        assert run(dump(store)) == ["s/a=01", "s/b=02"]
        assert (tmp_path / "t" / "wal").stat().st_size == second_end
        run(store.close())


def test_damage_before_the_last_frame_is_corruption(tmp_path):
    wal = bytearray(three_batches(tmp_path / "c"))
    wal[20] ^= 0xFF
    (tmp_path / "c" / "wal").write_bytes(bytes(wal))
    with pytest.raises(StoreError) as error:
        FileStore(tmp_path / "c")
    assert error.value.code == "corrupt"


def test_leftover_snapshot_tmp_is_discarded(tmp_path):
    three_batches(tmp_path / "s")
    (tmp_path / "s" / "snapshot.tmp").write_bytes(b"half a snapshot")
    store = FileStore(tmp_path / "s")
    assert run(dump(store)) == ["s/b=02", "s/c=" + "03" * 100]
    assert not (tmp_path / "s" / "snapshot.tmp").exists()


CHILD = textwrap.dedent(
    """
    import asyncio, struct, sys
    sys.path.insert(0, sys.argv[2])
    from walink.store import FileStore, Put, Delete

    async def main():
        store = FileStore(sys.argv[1], compact_bytes=4096)
        i = 0
        while True:
            i += 1
            batch = [Put("c", "n", struct.pack("<I", i)), Put("k", f"k{i}", bytes([i % 256]) * (i % 300))]
            if i % 10 == 0:
                batch.append(Delete("k", f"k{i - 5}"))
            await store.apply_batch(batch)
            print(i, flush=True)

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("kill_at", [25, 140, 333])
def test_killed_process_leaves_exactly_the_acknowledged_batches(tmp_path, kill_at):
    package = str(Path(__file__).resolve().parents[1])
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "k"), package], stdout=subprocess.PIPE, text=True)
    acknowledged = 0
    for line in proc.stdout:
        acknowledged = int(line)
        if acknowledged >= kill_at:
            proc.kill()
            break
    proc.wait()
    for line in proc.stdout:
        acknowledged = int(line)
    records = {(r.space, r.key): r.value for r in run(FileStore(tmp_path / "k").load_all())}
    last = struct.unpack("<I", records.pop(("c", "n")))[0]
    assert acknowledged <= last <= acknowledged + 1
    keys = {key for (_, key) in records}
    for i in range(1, last + 1):
        deleted = i + 5 <= last and (i + 5) % 10 == 0
        assert (f"k{i}" in keys) == (not deleted)
    for (_, key), value in records.items():
        i = int(key[1:])
        assert i <= last and value == bytes([i % 256]) * (i % 300)


def test_reads_a_directory_written_by_the_npm_file_store(tmp_path):
    node = shutil.which("node")
    assert node is not None, "node is needed (./build.sh setup checks for it)"
    module = Path(__file__).resolve().parents[3] / "npm" / "src" / "file-store.js"
    script = f"""
        import {{ FileStore }} from {str(module.as_uri())!r}
        const store = await FileStore.open(process.argv[1], {{ compactBytes: 200 }})
        for (let i = 0; i < 30; i++) await store.applyBatch([{{ op: 'put', space: 'session', key: 'k' + i, value: new Uint8Array([i, i]) }}])
        await store.applyBatch([{{ op: 'delete', space: 'session', key: 'k3' }}, {{ op: 'put', space: 'device', key: '', value: new Uint8Array([255]) }}])
        await store.close()
    """
    subprocess.run([node, "--input-type=module", "-e", script, str(tmp_path / "n")], check=True)
    assert (tmp_path / "n" / "snapshot").exists()
    want = sorted([f"session/k{i}={bytes([i, i]).hex()}" for i in range(30) if i != 3] + ["device/=ff"])
    assert run(dump(FileStore(tmp_path / "n"))) == want


def test_the_npm_file_store_reads_a_directory_written_by_this_store(tmp_path):
    node = shutil.which("node")
    assert node is not None, "node is needed (./build.sh setup checks for it)"

    async def write():
        store = FileStore(tmp_path / "r", compact_bytes=200)
        for i in range(30):
            await store.apply_batch([Put("session", f"k{i}", bytes([i, i]))])
        await store.apply_batch([Delete("session", "k3"), Put("device", "", b"\xff")])
        await store.close()

    run(write())
    assert (tmp_path / "r" / "snapshot").exists()
    module = Path(__file__).resolve().parents[3] / "npm" / "src" / "file-store.js"
    script = f"""
        import {{ FileStore }} from {str(module.as_uri())!r}
        const store = await FileStore.open(process.argv[1])
        const hex = (v) => Buffer.from(v).toString('hex')
        for (const r of await store.loadAll()) console.log(`${{r.space}}/${{r.key}}=${{hex(r.value)}}`)
        await store.close()
    """
    out = subprocess.run([node, "--input-type=module", "-e", script, str(tmp_path / "r")],
                         check=True, capture_output=True, text=True).stdout
    want = sorted([f"session/k{i}={bytes([i, i]).hex()}" for i in range(30) if i != 3] + ["device/=ff"])
    assert sorted(out.splitlines()) == want
