#!/usr/bin/env bash
# Packs walink's Kotlin library for Android as an AAR: the same classes as the JVM jar (without
# its linux-x86-64 library) and walink-ffi built by cargo-ndk for each Android ABI under jni/.
# README.md beside this script says what it needs, what it makes and what was checked where.
#
#   bash bindings/kotlin/android/build-aar.sh           # the AAR (needs the Android NDK)
#   bash bindings/kotlin/android/build-aar.sh --check [ABI...]   # type-check walink-ffi (no NDK)
#   bash bindings/kotlin/android/build-aar.sh --stand-in LIB     # the layout, LIB in every ABI
#
# The classes come from the JVM jar that `./build.sh packages` (or `./build.sh test`) built in
# bindings/kotlin/target/, less its desktop library.
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
# ELF e_machine of each ABI's library: AArch64, ARM, x86-64, Intel 80386.
declare -A ELF_MACHINE=([arm64-v8a]=183 [armeabi-v7a]=40 [x86_64]=62 [x86]=3)
# The cargo profile of the packaged native library (Cargo.toml), as for the jar and the wheel.
PROFILE=release-ffi
VERSION=$(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)
OUT="$CARGO_TARGET_DIR/packaging/android"
JVM_JAR="bindings/kotlin/target/walink-kotlin-$VERSION.jar"

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

# The AAR's native libraries: cargo-ndk links walink-ffi with the NDK's clang for each ABI (the
# library lands in target/<rust target>/release-ffi/); the NDK's llvm-strip copies it into
# jni/<abi>/ without its symbol tables.
build_native() {
  local ndk=$1 jni=$2 abi strip lib
  if [ "$(cargo ndk --version 2>/dev/null)" != "cargo-ndk $CARGO_NDK_VERSION" ]; then
    cargo install cargo-ndk --version "$CARGO_NDK_VERSION"
  fi
  ensure_rust_targets "${ABIS[@]}"
  local targets=()
  for abi in "${ABIS[@]}"; do targets+=(-t "$abi"); done
  ANDROID_NDK_HOME="$ndk" cargo ndk "${targets[@]}" -P "$ANDROID_API" \
    build --profile "$PROFILE" -p walink-ffi --lib
  strip=$(ls "$ndk"/toolchains/llvm/prebuilt/*/bin/llvm-strip | head -1)
  for abi in "${ABIS[@]}"; do
    lib="$CARGO_TARGET_DIR/${RUST_TARGET[$abi]}/$PROFILE/libwalink_ffi.so"
    [ -f "$lib" ] || die "cargo-ndk made no $lib"
    mkdir -p "$jni/$abi"
    "$strip" --strip-unneeded -o "$jni/$abi/libwalink_ffi.so" "$lib"
  done
}

# A stand-in for build_native where there is no NDK: the given library (the host's) under every
# ABI, so that the rest of the AAR is assembled and checked as it would be. Not an Android build.
stand_in_native() {
  local lib=$1 jni=$2 abi
  [ -f "$lib" ] || die "no library $lib"
  for abi in "${ABIS[@]}"; do
    mkdir -p "$jni/$abi"
    cp "$lib" "$jni/$abi/libwalink_ffi.so"
  done
}

# The classes: the JVM jar without its desktop native library (JNA's resource prefixes), which on
# Android comes from jni/ instead.
build_classes() {
  local classes=$1
  [ -f "$JVM_JAR" ] || die "$JVM_JAR is missing: run ./build.sh packages"
  cp "$JVM_JAR" "$classes"
  zip -q -d "$classes" '*/libwalink_ffi.so' '*/libwalink_ffi.dylib' '*/walink_ffi.dll' >/dev/null || true
}

# Checks an assembled AAR: exactly the entries of the Android library format that walink needs,
# a manifest naming the package and minSdk, classes.jar with walink's classes and no desktop
# library, one shared library per ABI (of that ABI's machine, unless the libraries are stand-ins),
# and the POM with its version. Prints what it checked.
verify() {
  local aar=$1 pom=$2 stand_in=$3 tmp="$OUT/verify" abi machine
  rm -rf "$tmp" && mkdir -p "$tmp"
  local expected="AndroidManifest.xml
R.txt
classes.jar"
  for abi in "${ABIS[@]}"; do expected+=$'\n'"jni/$abi/libwalink_ffi.so"; done
  expected+=$'\n'"proguard.txt"
  local actual
  actual=$(unzip -Z1 "$aar" | grep -v '/$' | LC_ALL=C sort)
  [ "$actual" = "$(LC_ALL=C sort <<<"$expected")" ] ||
    die "$aar holds:"$'\n'"$actual"$'\n'"expected:"$'\n'"$expected"
  unzip -q "$aar" -d "$tmp/aar"
  grep -q 'package="walink"' "$tmp/aar/AndroidManifest.xml" || die "the manifest names no package walink"
  grep -q "android:minSdkVersion=\"$ANDROID_API\"" "$tmp/aar/AndroidManifest.xml" ||
    die "the manifest's minSdkVersion is not $ANDROID_API"
  [ ! -s "$tmp/aar/R.txt" ] || die "R.txt is not empty"
  grep -q -- '-keep class uniffi.walink_ffi.\*\* { \*; }' "$tmp/aar/proguard.txt" ||
    die "proguard.txt does not keep the uniffi classes"
  local classes
  classes=$(unzip -Z1 "$tmp/aar/classes.jar")
  for class in uniffi/walink_ffi/Client.class uniffi/walink_ffi/UniffiLib.class walink/Driver.class walink/FileStore.class; do
    grep -qx "$class" <<<"$classes" || die "classes.jar lacks $class"
  done
  ! grep -q 'libwalink_ffi' <<<"$classes" || die "classes.jar carries a desktop library"
  for abi in "${ABIS[@]}"; do
    local so="$tmp/aar/jni/$abi/libwalink_ffi.so"
    [ "$(head -c 4 "$so" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] || die "jni/$abi/libwalink_ffi.so is not ELF"
    if [ "$stand_in" = no ]; then
      machine=$(od -An -tu2 -j18 -N2 "$so" | tr -d ' ')
      [ "$machine" = "${ELF_MACHINE[$abi]}" ] ||
        die "jni/$abi/libwalink_ffi.so is for ELF machine $machine, not ${ELF_MACHINE[$abi]}"
    fi
  done
  grep -q "<version>$VERSION</version>" "$pom" && ! grep -q '@VERSION@' "$pom" ||
    die "$pom does not carry version $VERSION"
  grep -q '<type>aar</type>' "$pom" || die "$pom does not take JNA's AAR"
  echo "checked $aar: the entries of the AAR format, the manifest (package walink, minSdk" \
    "$ANDROID_API), classes.jar ($(grep -c '\.class$' <<<"$classes") classes, no desktop library)," \
    "jni/ for ${ABIS[*]}$([ "$stand_in" = no ] && echo " (each of its ABI's ELF machine)" || echo " (stand-ins: the host's library, machine not checked)")," \
    "and the POM"
  rm -rf "$tmp"
}

# The AAR and its POM in $OUT; $1 is empty for the NDK build or the stand-in library's path.
assemble() {
  local stand_in_lib=${1:-} aar="$OUT/walink-kotlin-$VERSION.aar" stage="$OUT/aar"
  local pom="$OUT/walink-kotlin-android-$VERSION.pom"
  rm -rf "$stage" && mkdir -p "$stage"
  if [ -n "$stand_in_lib" ]; then
    stand_in_native "$stand_in_lib" "$stage/jni"
  else
    build_native "$(ndk_home)" "$stage/jni"
  fi
  build_classes "$stage/classes.jar"
  cp bindings/kotlin/android/AndroidManifest.xml bindings/kotlin/android/proguard.txt "$stage/"
  sed -i "s/android:minSdkVersion=\"[0-9]*\"/android:minSdkVersion=\"$ANDROID_API\"/" "$stage/AndroidManifest.xml"
  : >"$stage/R.txt"
  rm -f "$aar"
  (cd "$stage" && zip -q -r -X "$aar" AndroidManifest.xml classes.jar R.txt proguard.txt jni)
  sed "s/@VERSION@/$VERSION/" bindings/kotlin/android/pom.xml >"$pom"
  verify "$aar" "$pom" "$([ -n "$stand_in_lib" ] && echo yes || echo no)"
  if [ -n "$stand_in_lib" ]; then
    echo "STAND-IN: every jni/<abi>/ holds $(basename "$stand_in_lib") of this machine, not an Android build"
  fi
  echo "built $aar ($(stat -c %s "$aar") bytes) and its POM"
  echo "into the local Maven repository: mvn install:install-file -Dfile=$aar -DpomFile=$pom"
}

case "${1:-}" in
  --check)
    shift
    check "$@"
    ;;
  --stand-in)
    [ "$#" -eq 2 ] || die "usage: build-aar.sh --stand-in LIBRARY"
    OUT="$CARGO_TARGET_DIR/packaging/android-stand-in"
    assemble "$2"
    ;;
  "") assemble ;;
  *) die "usage: build-aar.sh [--check [ABI...] | --stand-in LIBRARY]" ;;
esac
