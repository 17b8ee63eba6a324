"""strip_wheel.py: the library is replaced, RECORD matches every member afterwards, and a wheel
that does not hold the library once is refused untouched."""

import base64
import csv
import hashlib
import io
import zipfile

import pytest

from strip_wheel import record_hash, replace_library

RECORD = "walink-0.1.0.dist-info/RECORD"


def make_wheel(path, files):
    rows = [[name, record_hash(data), str(len(data))] for name, data in files.items()]
    rows.append([RECORD, "", ""])
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
        wheel.writestr(RECORD, text.getvalue())


def test_record_hash_is_pep_376():
    expected = base64.urlsafe_b64encode(hashlib.sha256(b"abc").digest()).rstrip(b"=").decode()
    assert record_hash(b"abc") == "sha256=" + expected
    assert "=" not in record_hash(b"abc")[len("sha256="):]


def test_replaces_the_library_and_its_record_row(tmp_path):
    wheel = tmp_path / "walink-0.1.0-py3-none-any.whl"
    make_wheel(wheel, {
        "walink_ffi/__init__.py": b"from .walink_ffi import *\n",
        "walink_ffi/libwalink_ffi.so": b"\x7fELF unstripped" * 100,
        "walink/driver.py": b"# driver\n",
    })
    stripped = tmp_path / "libwalink_ffi.so"
    stripped.write_bytes(b"\x7fELF stripped")

    assert replace_library(str(wheel), str(stripped)) == "walink_ffi/libwalink_ffi.so"

    with zipfile.ZipFile(wheel) as result:
        assert result.testzip() is None
        names = result.namelist()
        assert names == ["walink_ffi/__init__.py", "walink_ffi/libwalink_ffi.so",
                         "walink/driver.py", RECORD]
        assert result.read("walink_ffi/libwalink_ffi.so") == b"\x7fELF stripped"
        rows = list(csv.reader(io.StringIO(result.read(RECORD).decode())))
        for name, digest, size in rows:
            if name == RECORD:
                assert (digest, size) == ("", "")
                continue
            data = result.read(name)
            assert (digest, size) == (record_hash(data), str(len(data))), name


@pytest.mark.parametrize("library_names", [[], ["a/libwalink_ffi.so", "b/libwalink_ffi.so"]])
def test_refuses_a_wheel_without_exactly_one_library(tmp_path, library_names):
    wheel = tmp_path / "walink-0.1.0-py3-none-any.whl"
    make_wheel(wheel, {"walink/driver.py": b"# driver\n", **{n: b"lib" for n in library_names}})
    before = wheel.read_bytes()
    stripped = tmp_path / "libwalink_ffi.so"
    stripped.write_bytes(b"stripped")

    with pytest.raises(SystemExit, match="expected one libwalink_ffi.so"):
        replace_library(str(wheel), str(stripped))
    assert wheel.read_bytes() == before
