"""The binary node codec through the generated Python module and the release cdylib.

The byte strings are known answers: transport.md appendix A.1 (the keepalive iq, the passive
iq) and the bytes Baileys 7.0.0-rc14's encodeBinaryNode gives for an iq with a device JID, byte
content and a hex-packed attribute (shared/tools/TOOLCHAIN.md, binary-node.mjs).
"""

import pytest

from walink_ffi import Attr, Content, Node, WalinkError, decode_node, encode_node

KEEPALIVE = bytes.fromhex("00 F8 09 19 08 FF 83 1B 2A 3F 16 57 04 29 11 FA 00 03")
PASSIVE = bytes.fromhex("00 F8 06 19 16 EC 18 04 5A F8 01 F8 01 EC 01")
BAILEYS_IQ = bytes.fromhex(
    "00f80a1908ff861234b5678a1f11fa000304291657f803f80156f8040e0cf70003ff8615551234567ffc04010203"
    "faf80438fc03686578fb04deadbeeffc0b68656c6c6f20776f726c64"
)


def attrs(*pairs):
    return [Attr(key=k, value=v) for k, v in pairs]


def test_a_node_built_in_python_encodes_to_the_known_keepalive_bytes():
    node = Node(
        tag="iq",
        attrs=attrs(("id", "1.2-3"), ("xmlns", "w:p"), ("type", "get"), ("to", "@s.whatsapp.net")),
        content=Content.EMPTY(),
    )
    assert encode_node(node) == KEEPALIVE


def test_decoding_gives_the_tree_with_attributes_in_order():
    node = decode_node(BAILEYS_IQ)
    assert node.tag == "iq"
    assert [(a.key, a.value) for a in node.attrs] == [
        ("id", "1234.5678-1"),
        ("to", "@s.whatsapp.net"),
        ("type", "get"),
        ("xmlns", "w:p"),
    ]
    assert isinstance(node.content, Content.NODES)
    ping, user, text = node.content.nodes
    assert ping.tag == "ping" and isinstance(ping.content, Content.EMPTY)
    assert user.attrs == attrs(("jid", "15551234567:3@s.whatsapp.net"))
    assert user.content == Content.BYTES(bytes=b"\x01\x02\x03\xfa")
    assert text.attrs == attrs(("hex", "DEADBEEF"))
    assert text.content == Content.BYTES(bytes=b"hello world")


@pytest.mark.parametrize("stanza", [KEEPALIVE, PASSIVE, BAILEYS_IQ])
def test_decoded_stanzas_re_encode_byte_for_byte(stanza):
    assert encode_node(decode_node(stanza)) == stanza


def test_a_tree_of_every_content_kind_round_trips():
    node = Node(
        tag="message",
        attrs=attrs(("to", "123456789012345:3@lid"), ("id", "3EB0ABCDEF"), ("note", "ünïcode")),
        content=Content.NODES(
            nodes=[
                Node(tag="enc", attrs=[], content=Content.BYTES(bytes=bytes(range(256)))),
                Node(tag="count", attrs=[], content=Content.TEXT(text="42")),
                Node(tag="participants", attrs=[], content=Content.NODES(nodes=[])),
                Node(tag="to", attrs=[], content=Content.TEXT(text="15551234567@s.whatsapp.net")),
            ]
        ),
    )
    assert decode_node(encode_node(node)) == node


@pytest.mark.parametrize("bad", ["", "00", "00f8", "00f801f0", KEEPALIVE.hex() + "00"])
def test_malformed_bytes_raise_invalid_input(bad):
    with pytest.raises(WalinkError.InvalidInput) as caught:
        decode_node(bytes.fromhex(bad))
    assert caught.value.reason
    assert caught.value.code  # the core's code: unexpected_end, invalid_tag, trailing_bytes, ...


def test_a_tree_deeper_than_any_decoder_accepts_is_refused_with_too_deep():
    def chain(depth):
        node = Node(tag="leaf", attrs=[], content=Content.EMPTY())
        for _ in range(depth - 1):
            node = Node(tag="n", attrs=[], content=Content.NODES(nodes=[node]))
        return node

    assert decode_node(encode_node(chain(64))) == chain(64)
    with pytest.raises(WalinkError.InvalidInput) as caught:
        encode_node(chain(65))
    assert caught.value.code == "too_deep"
