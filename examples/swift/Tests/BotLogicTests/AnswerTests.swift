import BotLogic
import XCTest

final class AnswerTests: XCTestCase {
    func testAnswersItsCommandsOnly() {
        XCTAssertEqual(answer("/ping"), "pong")
        XCTAssertEqual(answer("/echo  hello there "), "hello there")
        XCTAssertEqual(answer("/upper straße"), "STRASSE")
        XCTAssertNil(answer("/ping me"))
        XCTAssertNil(answer("hello"))
        XCTAssertNil(answer("/echo"))
    }
}
