package walink

import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import org.junit.jupiter.params.ParameterizedTest
import org.junit.jupiter.params.provider.ValueSource
import uniffi.walink_ffi.Attr
import uniffi.walink_ffi.Content
import uniffi.walink_ffi.Node
import uniffi.walink_ffi.WalinkException
import uniffi.walink_ffi.decodeNode
import uniffi.walink_ffi.encodeNode

/**
 * The binary node codec through the generated Kotlin and the release cdylib (JNA).
 *
 * The byte strings are known answers: transport.md appendix A.1 (the keepalive iq, the passive
 * iq) and the bytes Baileys 7.0.0-rc14's encodeBinaryNode gives for an iq with a device JID, byte
 * content and a hex-packed attribute (shared/tools/TOOLCHAIN.md, binary-node.mjs).
 */
class CodecTest {
    private fun hex(text: String): ByteArray =
        text.replace(" ", "").chunked(2).map { it.toInt(16).toByte() }.toByteArray()

    private val keepalive = hex("00 F8 09 19 08 FF 83 1B 2A 3F 16 57 04 29 11 FA 00 03")
    private val passive = hex("00 F8 06 19 16 EC 18 04 5A F8 01 F8 01 EC 01")
    private val baileysIq = hex(
        "00f80a1908ff861234b5678a1f11fa000304291657f803f80156f8040e0cf70003ff8615551234567ffc04010203" +
            "faf80438fc03686578fb04deadbeeffc0b68656c6c6f20776f726c64",
    )

    @Test
    fun aNodeBuiltInKotlinEncodesToTheKnownKeepaliveBytes() {
        val node = Node(
            "iq",
            listOf(Attr("id", "1.2-3"), Attr("xmlns", "w:p"), Attr("type", "get"), Attr("to", "@s.whatsapp.net")),
            Content.Empty,
        )
        assertArrayEquals(keepalive, encodeNode(node))
    }

    @Test
    fun decodingGivesTheTreeWithAttributesInOrder() {
        val node = decodeNode(baileysIq)
        assertEquals("iq", node.tag)
        assertEquals(
            listOf("id" to "1234.5678-1", "to" to "@s.whatsapp.net", "type" to "get", "xmlns" to "w:p"),
            node.attrs.map { it.key to it.value },
        )
        val (ping, user, text) = (node.content as Content.Nodes).nodes
        assertEquals(Node("ping", emptyList(), Content.Empty), ping)
        assertEquals(listOf(Attr("jid", "15551234567:3@s.whatsapp.net")), user.attrs)
        assertArrayEquals(byteArrayOf(1, 2, 3, 0xfa.toByte()), (user.content as Content.Bytes).bytes)
        assertEquals(listOf(Attr("hex", "DEADBEEF")), text.attrs)
        assertArrayEquals("hello world".toByteArray(), (text.content as Content.Bytes).bytes)
    }

    @Test
    fun decodedStanzasReEncodeByteForByte() {
        for (stanza in listOf(keepalive, passive, baileysIq)) {
            assertArrayEquals(stanza, encodeNode(decodeNode(stanza)))
        }
    }

    @Test
    fun aTreeOfEveryContentKindRoundTrips() {
        val node = Node(
            "message",
            listOf(Attr("to", "123456789012345:3@lid"), Attr("id", "3EB0ABCDEF"), Attr("note", "ünïcode")),
            Content.Nodes(
                listOf(
                    Node("enc", emptyList(), Content.Bytes(ByteArray(256) { it.toByte() })),
                    Node("count", emptyList(), Content.Text("42")),
                    Node("participants", emptyList(), Content.Nodes(emptyList())),
                    Node("to", emptyList(), Content.Text("15551234567@s.whatsapp.net")),
                ),
            ),
        )
        val bytes = encodeNode(node)
        val back = decodeNode(bytes)
        assertEquals(node.attrs, back.attrs)
        val children = (back.content as Content.Nodes).nodes
        assertEquals(listOf("enc", "count", "participants", "to"), children.map { it.tag })
        assertArrayEquals(ByteArray(256) { it.toByte() }, (children[0].content as Content.Bytes).bytes)
        assertEquals(Content.Text("42"), children[1].content)
        assertEquals(Content.Nodes(emptyList()), children[2].content)
        assertEquals(Content.Text("15551234567@s.whatsapp.net"), children[3].content)
        assertArrayEquals(bytes, encodeNode(back))
    }

    @ParameterizedTest
    @ValueSource(strings = ["", "00", "00f8", "00f801f0", "00F8091908FF831B2A3F16570429 11FA000300"])
    fun malformedBytesThrowInvalidInput(bad: String) {
        val error = assertThrows<WalinkException.InvalidInput> { decodeNode(hex(bad)) }
        assertTrue(error.reason.isNotEmpty())
    }

    private fun chain(depth: Int): Node {
        var node = Node("leaf", emptyList(), Content.Empty)
        repeat(depth - 1) { node = Node("n", emptyList(), Content.Nodes(listOf(node))) }
        return node
    }

    @Test
    fun aTreeDeeperThanAnyDecoderAcceptsIsRefusedWithTooDeep() {
        assertEquals(chain(64), decodeNode(encodeNode(chain(64))))
        // Every depth the generated Kotlin can hand over is refused by walink, never a crash;
        // far deeper, uniffi's own Kotlin writer overflows first, with a StackOverflowError.
        var depth = 65
        var refused = 0
        while (true) {
            val error = runCatching { encodeNode(chain(depth)) }.exceptionOrNull()
            if (error is StackOverflowError) break
            assertTrue(error is WalinkException.InvalidInput && error.code == "too_deep", "depth $depth: $error")
            refused = depth
            depth *= 2
        }
        assertTrue(refused >= 1_000, "refused up to $refused levels")
    }
}
