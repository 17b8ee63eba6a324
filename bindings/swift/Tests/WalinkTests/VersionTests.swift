import XCTest
@testable import Walink

final class VersionTests: XCTestCase {
    func testVersionIsMajorMinorPatch() {
        let parts = version().split(separator: ".")
        XCTAssertEqual(parts.count, 3)
        XCTAssertTrue(parts.allSatisfy { Int($0) != nil })
    }
}
