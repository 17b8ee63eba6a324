"""What can be checked of the Swift package without a Swift compiler (none on the Linux machines
that build walink): that the generated Swift, its C header and module map, the native library
and the hand-written Swift agree with each other. ./build.sh test runs it after the bindings:

    python bindings/swift/check_generated.py <libwalink_ffi.so built with its symbols>

1. The module map declares the module the generated Swift imports, over the generated header.
2. Every C function the generated Swift calls is declared in the header, and every function the
   header declares is exported by the library.
3. The library answers the generated Swift's contract version and every API checksum with the
   values the Swift compares them to (the checks the Swift runs when it loads; a mismatch there
   means Swift generated from another build of the library).
4. Every type and leading-dot member (enum case, static member) that the hand-written Swift
   (the package's driver and tests, examples/swift) names is declared in the generated or
   hand-written Swift, or is one of the Swift standard library, Foundation and XCTest names
   listed below (XCTest's XCT* assertions by their prefix); imported module names and generic
   parameters (one capital letter) count as declared.

Not checked (it takes a Swift compiler): that anything type-checks, argument labels and types,
concurrency annotations.
"""

import ctypes
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
PACKAGE = ROOT / "bindings" / "swift"
GENERATED = PACKAGE / "Sources" / "Walink" / "walink_ffi.swift"
HEADER = PACKAGE / "Headers" / "walink_ffiFFI.h"
MODULE_MAP = PACKAGE / "Headers" / "module.modulemap"
HAND_WRITTEN_DIRS = [PACKAGE / "Sources", PACKAGE / "Tests", ROOT / "examples" / "swift"]

# Names the hand-written Swift takes from the Swift standard library, Foundation and XCTest.
PLATFORM_TYPES = {
    "Array", "AsyncBytes", "AsyncStream", "Bool", "CheckedContinuation", "CommandLine", "Continuation", "Data",
    "Date", "Dictionary", "Double", "Equatable", "Error", "FileHandle", "FileManager",
    "Foundation", "HTTPURLResponse", "Hashable", "Int", "Int32", "Int64", "Never", "Optional",
    "ProcessInfo", "Result", "Self", "Sendable", "Set", "String", "Task", "TimeInterval",
    "UInt16", "UInt32", "UInt64", "UInt8", "URL", "URLError", "URLRequest", "URLResponse",
    "URLSession", "URLSessionWebSocketTask", "UUID", "Void", "XCTest", "XCTestCase",
    "PackageDescription", "Package",
}
PLATFORM_MEMBERS = {
    "cancel", "data", "makeStream", "whitespaces", "whitespacesAndNewlines", "posixPermissions", "normalClosure", "string", "utf8", "none", "some", "success",
    "failure", "main", "standardError", "standardOutput", "init", "self", "default", "shared",
    "distantFuture", "now", "bufferingNewest", "bufferingOldest", "unbounded", "userDomainMask",
    "atomic", "finished", "terminated", "binaryTarget", "target", "testTarget", "library",
    "executableTarget", "package", "product", "macOS", "iOS", "v12", "v13", "v15",
}

DECLARATION = re.compile(
    r"\b(?:case|func|var|let|class|struct|enum|protocol|typealias|actor|extension)\s+`?([A-Za-z_]\w*)")
C_CALL = re.compile(r"\b((?:uniffi|ffi)_walink_ffi_\w+)\s*\(")
CHECKSUM = re.compile(r"\b(uniffi_walink_ffi_checksum_\w+)\(\)\s*!=\s*(\d+)")
CONTRACT = re.compile(r"let bindings_contract_version\s*=\s*(\d+)")


def without_comments_and_strings(source):
    source = re.sub(r"/\*.*?\*/", " ", source, flags=re.S)
    source = re.sub(r"//[^\n]*", " ", source)
    source = re.sub(r'"""(?:.|\n)*?"""', '""', source)
    return re.sub(r'"(?:\\.|[^"\\\n])*"', '""', source)


def declared_names(source):
    names = set(DECLARATION.findall(source))
    for cases in re.findall(r"\bcase\s+([^\n:=]+)", source):
        for part in cases.split(","):
            match = re.match(r"\s*`?([A-Za-z_]\w*)", part)
            if match:
                names.add(match.group(1))
    return names


def check(library_path):
    problems = []
    generated = GENERATED.read_text()
    header = HEADER.read_text()
    module_map = MODULE_MAP.read_text()

    # 1. Module map, header, import.
    if not re.search(r"\bmodule walink_ffiFFI\b", module_map) or 'header "walink_ffiFFI.h"' not in module_map:
        problems.append("module.modulemap does not declare module walink_ffiFFI over walink_ffiFFI.h")
    if "import walink_ffiFFI" not in generated:
        problems.append("walink_ffi.swift does not import walink_ffiFFI")

    # 2. C functions: Swift -> header -> library.
    called = set(C_CALL.findall(generated))
    declared = set(C_CALL.findall(header))
    for name in sorted(called - declared):
        problems.append(f"walink_ffi.swift calls {name}, which the header does not declare")
    library = ctypes.CDLL(str(library_path))
    for name in sorted(declared):
        if not hasattr(library, name):
            problems.append(f"the header declares {name}, which the library does not export")

    # 3. Contract version and checksums, as the library answers them.
    contract = CONTRACT.search(generated)
    if not contract:
        problems.append("walink_ffi.swift has no bindings_contract_version")
    else:
        function = library.ffi_walink_ffi_uniffi_contract_version
        function.restype = ctypes.c_uint32
        if function() != int(contract.group(1)):
            problems.append(f"contract version: Swift {contract.group(1)}, library {function()}")
    checksums = CHECKSUM.findall(generated)
    if not checksums:
        problems.append("walink_ffi.swift checks no API checksum")
    for name, expected in checksums:
        if hasattr(library, name):
            function = getattr(library, name)
            function.restype = ctypes.c_uint16
            if function() != int(expected):
                problems.append(f"{name}: Swift expects {expected}, the library answers {function()}")

    # 4. Names in the hand-written Swift.
    hand_written = {path: without_comments_and_strings(path.read_text())
                    for folder in HAND_WRITTEN_DIRS for path in sorted(folder.rglob("*.swift"))
                    if path != GENERATED}
    known = declared_names(without_comments_and_strings(generated))
    for source in hand_written.values():
        known |= declared_names(source) | set(re.findall(r"\bimport\s+(\w+)", source))
    for path, source in hand_written.items():
        types = set(re.findall(r"\b([A-Z]\w*)\b", source))
        members = set(re.findall(r"(?<![\w)\]?!])\.([a-z]\w*)", source))
        # One capital letter: a generic parameter (`<T>`).
        for name in sorted(t for t in types - known - PLATFORM_TYPES
                           if not t.startswith("XCT") and len(t) > 1):
            problems.append(f"{path.relative_to(ROOT)}: type {name} is declared nowhere")
        for name in sorted(members - known - PLATFORM_MEMBERS):
            problems.append(f"{path.relative_to(ROOT)}: .{name} is declared nowhere")

    return problems, len(called), len(declared), len(checksums), len(hand_written)


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    problems, called, declared, checksums, files = check(Path(argv[1]))
    for problem in problems:
        print(f"swift: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"swift (generated, not compiled): {called} C functions called are in the header, its "
          f"{declared} are in the library, the contract version and {checksums} checksums match "
          f"it, and the names of {files} hand-written files are declared")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
