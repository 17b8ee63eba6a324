// swift-tools-version:5.9
// walink for Swift: the uniffi-generated Swift (Sources/Walink/walink_ffi.swift, written by
// `./build.sh bindings`) over the static walink-ffi library packed in walink_ffiFFI.xcframework
// (built by build-xcframework.sh on macOS). Both are build output and are not committed.
import PackageDescription

let package = Package(
    name: "Walink",
    platforms: [.macOS(.v12), .iOS(.v15)],
    products: [
        .library(name: "Walink", targets: ["Walink"]),
    ],
    targets: [
        .binaryTarget(name: "walink_ffiFFI", path: "walink_ffiFFI.xcframework"),
        .target(name: "Walink", dependencies: ["walink_ffiFFI"], path: "Sources/Walink"),
        .testTarget(name: "WalinkTests", dependencies: ["Walink"], path: "Tests/WalinkTests"),
    ]
)
