#!/usr/bin/env bash
# Builds walink_ffiFFI.xcframework (static walink-ffi for macOS, iOS and the iOS simulator, with
# the uniffi C header and module map), regenerates the Swift source, then runs the package tests.
# Needs macOS with Xcode and rustup. Run from anywhere: bash bindings/swift/build-xcframework.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
[ "$(uname -s)" = Darwin ] || { echo "build-xcframework.sh: needs macOS with Xcode" >&2; exit 1; }

targets=(aarch64-apple-darwin x86_64-apple-darwin aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios)
for target in "${targets[@]}"; do
  rustup target list --installed | grep -qx "$target" || rustup target add "$target"
  # The crate's types are cdylib + lib; the XCFramework wants a static library.
  cargo rustc --release -p walink-ffi --lib --target "$target" --crate-type staticlib
done

# The Swift source, header and module map (from the host's release cdylib).
./build.sh bindings

lib() { echo "$CARGO_TARGET_DIR/$1/release/libwalink_ffi.a"; }
fat="$CARGO_TARGET_DIR/xcframework"
rm -rf "$fat" && mkdir -p "$fat/macos" "$fat/ios-sim"
lipo -create "$(lib aarch64-apple-darwin)" "$(lib x86_64-apple-darwin)" -output "$fat/macos/libwalink_ffi.a"
lipo -create "$(lib aarch64-apple-ios-sim)" "$(lib x86_64-apple-ios)" -output "$fat/ios-sim/libwalink_ffi.a"

out=bindings/swift/walink_ffiFFI.xcframework
rm -rf "$out"
xcodebuild -create-xcframework \
  -library "$fat/macos/libwalink_ffi.a" -headers bindings/swift/Headers \
  -library "$(lib aarch64-apple-ios)" -headers bindings/swift/Headers \
  -library "$fat/ios-sim/libwalink_ffi.a" -headers bindings/swift/Headers \
  -output "$out"
echo "built $out"

cd bindings/swift
swift test
