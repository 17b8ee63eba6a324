"""Puts a stripped native library into a built wheel in place of the one maturin packed, and
rewrites the wheel's RECORD (hash and size) to match.

maturin's uniffi-bindgen reads the interface from the library's symbol table, so maturin packs the
library unstripped; at run time only its dynamic symbols are used. ./build.sh wheel strips the
library once (the one the Kotlin jar carries too) and calls this:

    python strip_wheel.py target/wheels/walink-<version>-<tags>.whl <stripped libwalink_ffi.so>
"""

import base64
import csv
import hashlib
import io
import os
import sys
import zipfile


def record_hash(data: bytes) -> str:
    """The RECORD form of a file's hash (PEP 376: urlsafe base64 without padding)."""
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def replace_library(wheel: str, library: str) -> str:
    """Rewrites `wheel` with `library` in place of the archive member of the same file name;
    returns that member's name."""
    name = os.path.basename(library)
    with open(library, "rb") as f:
        new_data = f.read()
    with zipfile.ZipFile(wheel) as source:
        infos = source.infolist()
        members = {info.filename: source.read(info) for info in infos}
    matches = [path for path in members if path.split("/")[-1] == name]
    if len(matches) != 1:
        raise SystemExit(f"{wheel}: expected one {name}, found {matches}")
    member = matches[0]
    records = [path for path in members if path.endswith(".dist-info/RECORD")]
    if len(records) != 1:
        raise SystemExit(f"{wheel}: expected one RECORD, found {records}")
    record = records[0]

    members[member] = new_data
    rows = list(csv.reader(io.StringIO(members[record].decode("utf-8"))))
    replaced = 0
    for row in rows:
        if row and row[0] == member:
            row[1], row[2] = record_hash(new_data), str(len(new_data))
            replaced += 1
    if replaced != 1:
        raise SystemExit(f"{wheel}: {member} is not in {record} once")
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    members[record] = out.getvalue().encode("utf-8")

    partial = wheel + ".part"
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as target:
        for info in infos:
            copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            copy.external_attr = info.external_attr
            copy.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(copy, members[info.filename], compresslevel=9)
    os.replace(partial, wheel)
    return member


def main(argv: list) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    wheel, library = argv[1], argv[2]
    before = os.path.getsize(wheel)
    member = replace_library(wheel, library)
    print(f"{wheel}: {member} stripped ({os.path.getsize(library)} bytes); "
          f"wheel {before} -> {os.path.getsize(wheel)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
