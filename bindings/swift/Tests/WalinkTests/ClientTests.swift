import XCTest
@testable import Walink

/// The ffi Client from Swift: the same cases as bindings/python/tests/test_client.py.
final class ClientTests: XCTestCase {
    private let seed = Data((0..<32).map { UInt8($0) })
    private let now: UInt64 = 1_760_000_000_000

    private func drain(_ client: Client) throws -> [Output] {
        var outputs: [Output] = []
        while let output = try client.pollOutput() { outputs.append(output) }
        return outputs
    }

    func testFreshClientPersistsItsDeviceBeforeItConnects() throws {
        let client = try Client(config: ClientConfig(unsafeTestRngSeed: seed), records: [])
        let outputs = try drain(client)
        let persist = outputs.firstIndex { if case .persist = $0 { return true } else { return false } }
        let connect = outputs.firstIndex { if case .connect = $0 { return true } else { return false } }
        XCTAssertNotNil(persist)
        XCTAssertNotNil(connect)
        XCTAssertLessThan(persist!, connect!)
    }

    func testBadInputIsATypedError() {
        XCTAssertThrowsError(try Client(config: ClientConfig(unsafeTestRngSeed: Data([1, 2, 3])), records: [])) { error in
            guard let walinkError = error as? WalinkError, case .InvalidInput = walinkError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try Client(config: ClientConfig(unsafeTestRngSeed: seed, trustRoot: Data(count: 32)), records: [])) { error in
            guard let walinkError = error as? WalinkError, case .InvalidInput = walinkError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try Client(config: ClientConfig(unsafeTestRngSeed: seed),
                                         records: [StoreRecord(space: "device", key: "device", value: Data([255, 0, 1]))])) { error in
            guard let walinkError = error as? WalinkError, case .CorruptStore = walinkError else { return XCTFail("\(error)") }
        }
    }

    func testCommandInTheWrongStateEndsInATypedError() throws {
        let client = try Client(config: ClientConfig(unsafeTestRngSeed: seed), records: [])
        _ = try drain(client)
        let id = try client.command(now: now, command: .pairWithCode(phone: "12"))
        let results = try drain(client).compactMap { output -> CommandResult? in
            if case let .event(.commandDone(doneId, result)) = output, doneId == id { return result }
            return nil
        }
        XCTAssertEqual(results, [.err(error: .invalidPhoneNumber, code: "invalid_phone_number")])
    }

    func testPairingCodeFailedIsItsOwnReason() throws {
        // The server refusing a code request is a typed reason, not "other": the enum has it.
        let reason = StateReason.pairingCodeFailed
        XCTAssertNotEqual(reason, StateReason.pairingCodeRequested)
        let client = try Client(config: ClientConfig(unsafeTestRngSeed: seed), records: [])
        _ = try drain(client)
        try client.handleConnected(now: now)
        _ = try drain(client)
        XCTAssertThrowsError(try client.handleClosed(now: now, reason: .protocol(message: "x")))
        try client.handleClosed(now: now, reason: .keepaliveTimeout)
        let reasons = try drain(client).compactMap { output -> StateReason? in
            if case let .event(.state(_, reason)) = output { return reason }
            return nil
        }
        XCTAssertEqual(reasons.first, .closed(reason: .keepaliveTimeout))
    }

    func testFileStoreRoundTripsAndReopens() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("walink-swift-\(UUID())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try FileStore(directory: dir)
        try await store.applyBatch([.put(space: "device", key: "device", value: Data([1])), .put(space: "s", key: "a", value: Data([2]))])
        try await store.applyBatch([.delete(space: "s", key: "a")])
        try await store.close()
        let again = try FileStore(directory: dir)
        let records = try await again.loadAll()
        XCTAssertEqual(records, [Record(space: "device", key: "device", value: Data([1]))])
    }

    func testMemoryStoreAppliesBatchesInOrder() async throws {
        let store = MemoryStore()
        try await store.applyBatch([.put(space: "s", key: "a", value: Data([1])), .deleteAll, .put(space: "s", key: "b", value: Data([2]))])
        let records = try await store.loadAll()
        XCTAssertEqual(records, [Record(space: "s", key: "b", value: Data([2]))])
    }
}
