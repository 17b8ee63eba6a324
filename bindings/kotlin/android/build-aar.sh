#!/usr/bin/env bash
# Packs walink's Kotlin library for Android as an AAR: the same classes as the JVM jar (without
# its linux-x86-64 library) and walink-ffi built by cargo-ndk for each Android ABI under jni/.
# README.md beside this script says what it needs, what it makes and what was checked where.
#
#   bash bindings/kotlin/android/build-aar.sh           # the AAR (needs the Android NDK)
#   bash bindings/kotlin/android/build-aar.sh --check [ABI...]   # type-check walink-ffi (no NDK)
set -euo pipefail
cd "$(dirname "$0")/../../.."
ROOT=$(pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

CARGO_NDK_VERSION=4.1.2
# The oldest Android API level the libraries are linked for (Android 7.0).
ANDROID_API="${WALINK_ANDROID_API:-24}"
# Android ABI and the Rust target for it.
ABIS=(arm64-v8a armeabi-v7a x86_64 x86)
declare -A RUST_TARGET=(
  [arm64-v8a]=aarch64-linux-android
  [armeabi-v7a]=armv7-linux-androideabi
  [x86_64]=x86_64-linux-android
  [x86]=i686-linux-android
)
VERSION=$(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)
OUT="$CARGO_TARGET_DIR/packaging/android"

die() {
  echo "build-aar.sh: $*" >&2
  exit 1
}

ensure_rust_targets() {
  local abi installed
  installed=$(rustup target list --installed)
  for abi in "$@"; do
    grep -qx "${RUST_TARGET[$abi]}" <<<"$installed" || rustup target add "${RUST_TARGET[$abi]}"
  done
}

# Without the NDK: walink-ffi and everything under it type-check for the Android targets of the
# ABIs given (all by default). Nothing is linked, so this says nothing about the NDK's linker.
check() {
  local abi abis=("$@")
  [ "${#abis[@]}" -gt 0 ] || abis=("${ABIS[@]}")
  for abi in "${abis[@]}"; do
    [ -n "${RUST_TARGET[$abi]:-}" ] || die "unknown ABI $abi (known: ${ABIS[*]})"
  done
  ensure_rust_targets "${abis[@]}"
  for abi in "${abis[@]}"; do
    echo "== cargo check --target ${RUST_TARGET[$abi]} ($abi)"
    cargo check -p walink-ffi --lib --target "${RUST_TARGET[$abi]}"
  done
}

ndk_home() {
  local ndk="${ANDROID_NDK_HOME:-${ANDROID_NDK_ROOT:-}}"
  [ -n "$ndk" ] && [ -d "$ndk/toolchains/llvm/prebuilt" ] ||
    die "set ANDROID_NDK_HOME to an Android NDK (r26 or newer; sdkmanager 'ndk;27.2.12479018')"
  echo "$ndk"
}

# The AAR's native libraries: cargo-ndk links walink-ffi with the NDK's clang for each ABI and
# copies it into jni/<abi>/; the NDK's llvm-strip drops the symbol tables.
build_native() {
  local ndk=$1 jni=$2 abi strip
  if [ "$(cargo ndk --version 2>/dev/null)" != "cargo-ndk $CARGO_NDK_VERSION" ]; then
    cargo install cargo-ndk --version "$CARGO_NDK_VERSION"
  fi
  ensure_rust_targets "${ABIS[@]}"
  local targets=()
  for abi in "${ABIS[@]}"; do targets+=(-t "$abi"); done
  ANDROID_NDK_HOME="$ndk" cargo ndk "${targets[@]}" -P "$ANDROID_API" -o "$jni" \
    build --release -p walink-ffi --lib
  strip=$(ls "$ndk"/toolchains/llvm/prebuilt/*/bin/llvm-strip | head -1)
  for abi in "${ABIS[@]}"; do
    [ -f "$jni/$abi/libwalink_ffi.so" ] || die "cargo-ndk made no $jni/$abi/libwalink_ffi.so"
    "$strip" --strip-unneeded "$jni/$abi/libwalink_ffi.so"
  done
}

# The classes: the Kotlin library's jar built with no native library in its resources.
build_classes() {
  local classes=$1 empty="$OUT/no-native"
  ./build.sh bindings
  rm -rf "$empty" && mkdir -p "$empty"
  mvn -B -ntp -q -f bindings/kotlin/pom.xml clean package -Dmaven.test.skip=true \
    -Dwalink.native.resources="$empty"
  cp "bindings/kotlin/target/walink-kotlin-$VERSION.jar" "$classes"
}

assemble() {
  local ndk aar="$OUT/walink-kotlin-$VERSION.aar" stage="$OUT/aar"
  ndk=$(ndk_home)
  rm -rf "$stage" && mkdir -p "$stage"
  build_native "$ndk" "$stage/jni"
  build_classes "$stage/classes.jar"
  cp bindings/kotlin/android/AndroidManifest.xml bindings/kotlin/android/proguard.txt "$stage/"
  : >"$stage/R.txt"
  rm -f "$aar"
  (cd "$stage" && zip -q -r -X "$aar" AndroidManifest.xml classes.jar R.txt proguard.txt jni)
  sed "s/@VERSION@/$VERSION/" bindings/kotlin/android/pom.xml >"$OUT/walink-kotlin-android-$VERSION.pom"
  echo "built $aar ($(stat -c %s "$aar") bytes) and its POM"
  echo "into the local Maven repository: mvn install:install-file -Dfile=$aar -DpomFile=$OUT/walink-kotlin-android-$VERSION.pom"
}

case "${1:-}" in
  --check)
    shift
    check "$@"
    ;;
  "") assemble ;;
  *) die "usage: build-aar.sh [--check [ABI...]]" ;;
esac
