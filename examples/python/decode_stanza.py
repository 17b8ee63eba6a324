"""Decodes a stanza given as hex, prints it as XML-like text and checks that encoding it again
gives the same bytes. Uses the Python bindings from this repository (run `./build.sh bindings`
first, which writes walink_ffi.py and the library into bindings/python/).

    python3 examples/python/decode_stanza.py 00f80919 08ff831b2a3f 1657 0429 11fa0003
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python"))

from walink_ffi import Content, WalinkError, decode_node, encode_node  # noqa: E402


def pretty(node, depth=0):
    pad = "  " * depth
    attrs = "".join(f' {a.key}="{a.value}"' for a in node.attrs)
    content = node.content
    if isinstance(content, Content.EMPTY):
        return f"{pad}<{node.tag}{attrs}/>\n"
    if isinstance(content, Content.NODES):
        inner = "".join(pretty(child, depth + 1) for child in content.nodes)
        return f"{pad}<{node.tag}{attrs}>\n{inner}{pad}</{node.tag}>\n"
    if isinstance(content, Content.TEXT):
        shown = content.text
    else:
        shown = f"<!-- {len(content.bytes)} bytes: {content.bytes.hex()} -->"
    return f"{pad}<{node.tag}{attrs}>{shown}</{node.tag}>\n"


def main():
    try:
        data = bytes.fromhex("".join(sys.argv[1:]))
    except ValueError:
        data = b""
    if not data:
        print("usage: decode_stanza.py <hex bytes of a frame body>", file=sys.stderr)
        return 2
    try:
        node = decode_node(data)
    except WalinkError.InvalidInput as error:
        print(f"not a valid stanza: {error.reason}", file=sys.stderr)
        return 1
    sys.stdout.write(pretty(node))
    again = encode_node(node)
    identical = again == data
    print(f"re-encoded: {len(again)} bytes, {'identical' if identical else 'DIFFERENT'}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
