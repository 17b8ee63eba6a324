import Foundation
import XCTest
@testable import Walink

/// The binary node codec through the generated Swift and the static library in the XCFramework.
///
/// The byte strings are known answers: transport.md appendix A.1 (the keepalive iq, the passive
/// iq) and the bytes Baileys 7.0.0-rc14's encodeBinaryNode gives for an iq with a device JID,
/// byte content and a hex-packed attribute (shared/tools/TOOLCHAIN.md, binary-node.mjs).
final class CodecTests: XCTestCase {
    private func hex(_ text: String) -> Data {
        let digits = Array(text.replacingOccurrences(of: " ", with: ""))
        return Data(stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! })
    }

    private lazy var keepalive = hex("00 F8 09 19 08 FF 83 1B 2A 3F 16 57 04 29 11 FA 00 03")
    private lazy var passive = hex("00 F8 06 19 16 EC 18 04 5A F8 01 F8 01 EC 01")
    private lazy var baileysIq = hex(
        "00f80a1908ff861234b5678a1f11fa000304291657f803f80156f8040e0cf70003ff8615551234567ffc04010203"
            + "faf80438fc03686578fb04deadbeeffc0b68656c6c6f20776f726c64")

    func testANodeBuiltInSwiftEncodesToTheKnownKeepaliveBytes() {
        let node = Node(
            tag: "iq",
            attrs: [
                Attr(key: "id", value: "1.2-3"), Attr(key: "xmlns", value: "w:p"),
                Attr(key: "type", value: "get"), Attr(key: "to", value: "@s.whatsapp.net"),
            ],
            content: .empty)
        XCTAssertEqual(try encodeNode(node: node), keepalive)
    }

    func testDecodingGivesTheTreeWithAttributesInOrder() throws {
        let node = try decodeNode(bytes: baileysIq)
        XCTAssertEqual(node.tag, "iq")
        XCTAssertEqual(node.attrs.map { $0.key }, ["id", "to", "type", "xmlns"])
        XCTAssertEqual(node.attrs.map { $0.value }, ["1234.5678-1", "@s.whatsapp.net", "get", "w:p"])
        guard case let .nodes(children) = node.content else { return XCTFail("expected children") }
        XCTAssertEqual(children.map { $0.tag }, ["ping", "user", "text"])
        XCTAssertEqual(children[1].attrs, [Attr(key: "jid", value: "15551234567:3@s.whatsapp.net")])
        XCTAssertEqual(children[1].content, .bytes(bytes: Data([1, 2, 3, 0xfa])))
        XCTAssertEqual(children[2].content, .bytes(bytes: Data("hello world".utf8)))
    }

    func testDecodedStanzasReEncodeByteForByte() throws {
        for stanza in [keepalive, passive, baileysIq] {
            XCTAssertEqual(try encodeNode(node: try decodeNode(bytes: stanza)), stanza)
        }
    }

    func testATreeOfEveryContentKindRoundTrips() throws {
        let node = Node(
            tag: "message",
            attrs: [Attr(key: "to", value: "123456789012345:3@lid"), Attr(key: "id", value: "3EB0ABCDEF")],
            content: .nodes(nodes: [
                Node(tag: "enc", attrs: [], content: .bytes(bytes: Data((0...255).map { UInt8($0) }))),
                Node(tag: "count", attrs: [], content: .text(text: "42")),
                Node(tag: "participants", attrs: [], content: .nodes(nodes: [])),
            ]))
        XCTAssertEqual(try decodeNode(bytes: try encodeNode(node: node)), node)
    }

    func testMalformedBytesThrowInvalidInput() {
        for bad in ["", "00", "00f8", "00f801f0"] {
            XCTAssertThrowsError(try decodeNode(bytes: hex(bad))) { error in
                guard case let WalinkError.InvalidInput(code, reason) = error else {
                    return XCTFail("unexpected error \(error)")
                }
                XCTAssertFalse(code.isEmpty)
                XCTAssertFalse(reason.isEmpty)
            }
        }
    }

    func testATreeDeeperThanAnyDecoderAcceptsIsRefusedWithTooDeep() {
        var node = Node(tag: "leaf", attrs: [], content: .empty)
        for _ in 1..<65 { node = Node(tag: "n", attrs: [], content: .nodes(nodes: [node])) }
        XCTAssertThrowsError(try encodeNode(node: node)) { error in
            guard case let WalinkError.InvalidInput(code, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(code, "too_deep")
        }
    }
}
