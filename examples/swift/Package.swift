// swift-tools-version:5.9
// An example bot on walink's Swift package (bindings/swift, used by path here; its
// XCFramework is built by bindings/swift/build-xcframework.sh on macOS). README.md says what was
// checked where.
import PackageDescription

let package = Package(
    name: "SwiftBot",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(name: "Walink", path: "../../bindings/swift"),
    ],
    targets: [
        .target(name: "BotLogic", path: "Sources/BotLogic"),
        .executableTarget(
            name: "SwiftBot",
            dependencies: ["BotLogic", .product(name: "Walink", package: "Walink")],
            path: "Sources/SwiftBot"
        ),
        .testTarget(name: "BotLogicTests", dependencies: ["BotLogic"], path: "Tests/BotLogicTests"),
    ]
)
