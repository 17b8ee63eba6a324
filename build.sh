#!/usr/bin/env bash
# walink's one entry point. Run `./build.sh help` for the subcommands; docs/building.md explains
# each one, what `setup` installs and from where, and how long things take.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)

# Cargo's target directory: the checkout's own target/ unless the caller chose another one.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
TARGET_DIR=$CARGO_TARGET_DIR

# Tool versions. wasm-bindgen-cli must equal the wasm-bindgen crate in Cargo.lock.
WASM_BINDGEN_FALLBACK_VERSION=0.2.130
CARGO_FUZZ_VERSION=0.13.2
FUZZ_SECONDS="${WALINK_FUZZ_SECONDS:-10}"
VENV="$ROOT/.venv"
# Where the packages are assembled (the jar's native library, the wheel) and the Python bot's
# dependencies wait as wheels for its offline install.
PACKAGING_DIR="$TARGET_DIR/packaging"
PYTHON_BOT_WHEELHOUSE="$PACKAGING_DIR/wheelhouse"
# The cargo profile of walink-ffi's native library for the packages (Cargo.toml: the release
# settings, in a directory of its own so no other build shares or disturbs it).
FFI_PROFILE=release-ffi
# The local Maven repository of the tests (not ~/.m2): Maven Central's artifacts, which setup
# downloads, and walink's jar, which the Kotlin step installs afresh each run; the Kotlin bot
# resolves walink from there and from nowhere else.
TEST_MAVEN_REPO="$PACKAGING_DIR/maven-repository"

# ---------------------------------------------------------------------------------------------
# Output helpers

STEP_NAMES=()
STEP_RESULTS=()
if [ -t 1 ]; then
  BOLD=$'\033[1m' RED=$'\033[1;31m' PLAIN=$'\033[0m'
else
  BOLD='' RED='' PLAIN=''
fi

section() {
  printf '\n%s==== %s ====%s\n' "$BOLD" "$*" "$PLAIN"
}

die() {
  printf '%sbuild.sh: %s%s\n' "$RED" "$*" "$PLAIN" >&2
  exit 1
}

# Runs one step (a function and its arguments) with errexit on, records its result and time, and
# carries on with the next step; `summary` fails the script if any step failed.
step() {
  local name=$1
  shift
  section "$name"
  local start=$SECONDS rc
  set +e
  (
    set -e
    "$@"
  )
  rc=$?
  set -e
  local took=$((SECONDS - start))
  if [ "$rc" -eq 0 ]; then
    STEP_RESULTS+=("ok      $(printf '%4d' "$took") s")
  else
    STEP_RESULTS+=("FAILED  $(printf '%4d' "$took") s  (exit $rc)")
    printf '%s---- %s FAILED (exit %d) ----%s\n' "$RED" "$name" "$rc" "$PLAIN" >&2
  fi
  STEP_NAMES+=("$name")
}

# Prints every step's result and time; exits non-zero if any step failed.
summary() {
  local title=$1 failed=0 i
  section "$title summary"
  for i in "${!STEP_NAMES[@]}"; do
    printf '  %-28s %s\n' "${STEP_NAMES[$i]}" "${STEP_RESULTS[$i]}"
    case "${STEP_RESULTS[$i]}" in FAILED*) failed=1 ;; esac
  done
  printf '  %-28s %4d s\n' "total" "$SECONDS"
  if [ "$failed" -ne 0 ]; then
    die "$title: some steps FAILED (see above)"
  fi
}

# The version of a crate as locked in Cargo.lock, or nothing.
locked_version() {
  awk -v name="$1" '$0 == "name = \"" name "\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

# The file name of a cdylib on this platform.
cdylib_name() {
  case "$(uname -s)" in
    Darwin) echo "lib$1.dylib" ;;
    *) echo "lib$1.so" ;;
  esac
}

stamp_of() {
  cat "$@" | sha256sum | cut -d' ' -f1
}

# ---------------------------------------------------------------------------------------------
# setup: install what this machine lacks, from the registries only; quick when nothing is missing.

# Makes sure a command exists; if it does not and apt-get can be used, installs the Debian packages.
require() {
  local cmd=$1
  shift
  command -v "$cmd" >/dev/null 2>&1 && return 0
  if [ "$#" -gt 0 ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    echo "$cmd is missing: installing Debian packages $*"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
    command -v "$cmd" >/dev/null 2>&1 && return 0
  fi
  die "$cmd is missing; install it (Debian packages: ${*:-none, see docs/building.md}) and rerun"
}

setup_prerequisites() {
  require cargo
  require rustup
  require node nodejs npm
  require npm npm
  require java openjdk-17-jdk-headless
  require mvn maven
  require python3 python3 python3-venv
  # Headless Chromium for the npm package's browser tests (IndexedDB store, the driver in a page).
  require chromium chromium
  echo "rustc $(rustc --version | cut -d' ' -f2), node $(node --version), npm $(npm --version)," \
    "java $(java -version 2>&1 | head -1 | cut -d'"' -f2), $(mvn -v 2>/dev/null | head -1 | sed 's/\x1b\[[0-9;]*m//g'), $(python3 --version)"
}

setup_wasm_target() {
  if [ -f ../shared/tools/ensure-wasm-target.sh ]; then
    bash ../shared/tools/ensure-wasm-target.sh
  elif ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    rustup target add wasm32-unknown-unknown
  fi
  echo "wasm32-unknown-unknown: installed"
}

setup_wasm_bindgen() {
  local want
  want=$(locked_version wasm-bindgen)
  want=${want:-$WASM_BINDGEN_FALLBACK_VERSION}
  if [ "$(wasm-bindgen --version 2>/dev/null)" = "wasm-bindgen $want" ]; then
    echo "wasm-bindgen $want: present"
    return 0
  fi
  # No --locked: the registry mirror lacks some versions pinned in wasm-bindgen-cli's own lockfile.
  cargo install wasm-bindgen-cli --version "$want"
}

setup_cargo_fuzz() {
  if [ "$(cargo fuzz --version 2>/dev/null)" = "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
    echo "cargo-fuzz $CARGO_FUZZ_VERSION: present"
    return 0
  fi
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION"
}

# PostgreSQL's server binaries, for the gateway's tests with several workers: each test starts its
# own server in a temporary directory on a loopback port (examples/gateway/test/postgres.js), so no
# system service is needed. Debian puts initdb and pg_ctl in /usr/lib/postgresql/<version>/bin.
postgres_bin() {
  if command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v pg_ctl)"
    return 0
  fi
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$dir/pg_ctl" ] && [ -x "$dir/initdb" ] && echo "$dir" && return 0
  done
  return 1
}

setup_postgres() {
  local bin
  if ! bin=$(postgres_bin); then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
      echo "PostgreSQL is missing: installing the Debian package postgresql"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
    fi
    bin=$(postgres_bin) || die "PostgreSQL is missing; install it (Debian package: postgresql) and rerun"
  fi
  # As root the tests run the server as the postgres user (PostgreSQL refuses root).
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    die "the postgres user is missing (the Debian package postgresql creates it)"
  fi
  echo "PostgreSQL: $("$bin/pg_ctl" --version) in $bin"
}

setup_cargo_fetch() {
  cargo fetch
}

# `npm ci` in a directory, skipped when node_modules matches its package-lock.json already.
npm_ci() {
  local dir=$1
  shift
  if [ ! -f "$dir/package-lock.json" ]; then
    die "$dir/package-lock.json is missing"
  fi
  local stamp_file="$dir/node_modules/.walink-setup-stamp" stamp
  stamp="$(stamp_of "$dir/package-lock.json") node $(node --version)"
  if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ]; then
    echo "$dir/node_modules: up to date"
    return 0
  fi
  npm ci --prefix "$dir" --no-audit --no-fund "$@"
  echo "$stamp" >"$stamp_file"
}

setup_npm_oracle() {
  # Baileys' preinstall only checks the Node version and protobufjs' postinstall is not needed.
  npm_ci tests/oracle --ignore-scripts
}

setup_npm_package() {
  if [ ! -f npm/package.json ]; then
    echo "npm/ is not in this checkout yet: nothing to install"
    return 0
  fi
  npm_ci npm
}

# The example gateway's dependencies (better-sqlite3 is compiled from source by node-gyp, about
# 80 s on two cores; walink itself is linked from npm/, so \`npm ci npm/\` comes first).
setup_npm_gateway() {
  npm_ci examples/gateway
}

# The browser extension example's build and test dependencies (the QR encoder and decoder,
# playwright-core; walink is linked from npm/).
setup_npm_extension() {
  npm_ci examples/browser-extension
}

setup_python() {
  local req=bindings/python/requirements-dev.txt stamp
  stamp="$(stamp_of "$req") $(python3 --version)"
  if [ -f "$VENV/.walink-setup-stamp" ] && [ "$(cat "$VENV/.walink-setup-stamp")" = "$stamp" ]; then
    echo ".venv: up to date"
    return 0
  fi
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  "$VENV/bin/python" -m pytest --version
  echo "$stamp" >"$VENV/.walink-setup-stamp"
}

# Maven with the tests' local repository.
test_mvn() {
  mvn -B -ntp -Dmaven.repo.local="$TEST_MAVEN_REPO" "$@"
}

setup_maven() {
  local pom=bindings/kotlin/pom.xml stamp stamp_file="$TEST_MAVEN_REPO/.walink-setup-stamp"
  stamp=$(stamp_of "$pom")
  if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ]; then
    echo "Maven dependencies of $pom: resolved in $TEST_MAVEN_REPO"
    return 0
  fi
  test_mvn -q -f "$pom" dependency:go-offline
  echo "$stamp" >"$stamp_file"
  echo "Maven dependencies of $pom: resolved from Maven Central into $TEST_MAVEN_REPO"
}

# The example bots' dependencies besides walink itself: the Kotlin bot's from Maven Central (the
# others are the Kotlin library's, resolved above; the versions are the pom's), the Python bot's as wheels from
# PyPI into a wheelhouse, from which its test installs a fresh virtual environment offline.
setup_examples() {
  local pom=examples/kotlin-bot/pom.xml req=examples/python-bot/requirements-test.txt stamp
  local stamp_file="$PYTHON_BOT_WHEELHOUSE/.walink-setup-stamp"
  stamp="$(stamp_of "$pom" "$req") $(python3 --version)"
  if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ]; then
    echo "example bots' dependencies: present"
    return 0
  fi
  # Not dependency:go-offline: it would look for walink's own artifact, which the build installs.
  local artifact
  for artifact in com.google.zxing:core:3.5.3 org.codehaus.mojo:exec-maven-plugin:3.6.2; do
    test_mvn -q dependency:get -Dartifact="$artifact"
  done
  rm -rf "$PYTHON_BOT_WHEELHOUSE"
  "$VENV/bin/pip" download --quiet --disable-pip-version-check --dest "$PYTHON_BOT_WHEELHOUSE" -r "$req"
  echo "$stamp" >"$stamp_file"
  echo "example bots' dependencies: resolved from Maven Central and PyPI"
}

setup() {
  step "prerequisites" setup_prerequisites
  step "rust wasm32 target" setup_wasm_target
  step "wasm-bindgen-cli" setup_wasm_bindgen
  step "cargo-fuzz" setup_cargo_fuzz
  step "cargo fetch" setup_cargo_fetch
  step "npm ci tests/oracle" setup_npm_oracle
  step "npm ci npm/" setup_npm_package
  step "npm ci examples/gateway" setup_npm_gateway
  step "npm ci examples/browser-extension" setup_npm_extension
  step "postgresql" setup_postgres
  step "python venv + pytest" setup_python
  step "maven dependencies" setup_maven
  step "example bots' dependencies" setup_examples
  summary setup
}

# ---------------------------------------------------------------------------------------------
# Builds

build_wasm() {
  [ -f npm/scripts/build-wasm.sh ] || die "npm/scripts/build-wasm.sh is missing"
  bash npm/scripts/build-wasm.sh
}

# The cdylib only, with the very cargo command maturin runs for the wheel, so neither rebuilds the
# other's output.
build_ffi_release() {
  cargo rustc --profile "$FFI_PROFILE" -p walink-ffi --lib --crate-type cdylib
  ls -l "$(ffi_library)"
}

# The native library built by build_ffi_release, with its symbol table (uniffi-bindgen reads the
# interface from it).
ffi_library() {
  echo "$TARGET_DIR/$FFI_PROFILE/$(cdylib_name walink_ffi)"
}

# The same library without its symbol tables, as the jar and the wheel carry it: only its dynamic
# symbols are used at run time.
stripped_ffi_library() {
  local lib out="$PACKAGING_DIR/native/$(cdylib_name walink_ffi)"
  lib=$(ffi_library)
  [ -f "$lib" ] || die "$lib is missing: run ./build.sh bindings"
  mkdir -p "$(dirname "$out")"
  case "$(uname -s)" in
    Darwin) strip -x -o "$out" "$lib" ;;
    *) strip --strip-unneeded -o "$out" "$lib" ;;
  esac
  echo "$out"
}

# Generates the Kotlin, Swift and Python code from the release cdylib's uniffi metadata.
generate_bindings() {
  local lib bindgen tmp
  lib=$(ffi_library)
  [ -f "$lib" ] || die "$lib is missing: run ./build.sh bindings"
  cargo build -p walink-ffi --features cli --bin uniffi-bindgen
  bindgen="$TARGET_DIR/debug/uniffi-bindgen"
  tmp=$(mktemp -d)
  for lang in kotlin swift python; do
    "$bindgen" generate "$lib" --language "$lang" --no-format --out-dir "$tmp/$lang"
  done

  # Kotlin: where the Maven project compiles it (package uniffi.walink_ffi).
  rm -rf bindings/kotlin/src/main/kotlin/uniffi
  mkdir -p bindings/kotlin/src/main/kotlin
  mv "$tmp/kotlin/uniffi" bindings/kotlin/src/main/kotlin/
  # For the jar's size (docs/decisions.md, issue 20): without the empty `companion object` that
  # uniffi gives every record and enum (a class each, there only for users' extensions), except
  # in the top-level declarations whose Companion the generated code itself extends.
  local kotlin=bindings/kotlin/src/main/kotlin/uniffi/walink_ffi/walink_ffi.kt keep
  keep=$({ grep -oE '[A-Za-z_0-9]+\.Companion\b' "$kotlin" || true; } | sed 's/\.Companion$//' | sort -u | tr '\n' ' ')
  awk -v keep="$keep" '
    BEGIN { split(keep, names, " "); for (i in names) kept[names[i]] = 1 }
    /^[A-Za-z@]/ && match($0, /(class|interface|object) [A-Za-z_0-9]+/) {
      top = substr($0, RSTART, RLENGTH); sub(/^[a-z]+ /, "", top)
    }
    /^[[:space:]]*companion object$/ && !(top in kept) { dropped++; next }
    { print }
    END { printf "Kotlin: %d empty companion objects left out (kept: %s)\n", dropped, keep > "/dev/stderr" }
  ' "$kotlin" >"$tmp/walink_ffi.kt"
  mv "$tmp/walink_ffi.kt" "$kotlin"

  # Python: the module and the cdylib side by side (the module loads it from its own directory).
  mv "$tmp/python/walink_ffi.py" bindings/python/
  cp "$lib" bindings/python/

  # Swift: the Swift source for the package target, the C header and module map for the
  # XCFramework (bindings/swift/build-xcframework.sh packs them with the static libraries).
  mkdir -p bindings/swift/Sources/Walink bindings/swift/Headers
  mv "$tmp/swift/walink_ffi.swift" bindings/swift/Sources/Walink/
  mv "$tmp/swift/walink_ffiFFI.h" bindings/swift/Headers/
  mv "$tmp/swift/walink_ffiFFI.modulemap" bindings/swift/Headers/module.modulemap
  rm -rf "$tmp"
  echo "generated: bindings/kotlin/src/main/kotlin/uniffi/walink_ffi/walink_ffi.kt," \
    "bindings/python/walink_ffi.py, bindings/swift/Sources/Walink/walink_ffi.swift, bindings/swift/Headers/"
}

bindings() {
  step "walink-ffi release cdylib" build_ffi_release
  step "uniffi bindings" generate_bindings
  summary bindings
}

# JNA's resource prefix for this platform: where it looks for a native library on the class path.
jna_platform() {
  case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) echo linux-x86-64 ;;
    Linux-aarch64) echo linux-aarch64 ;;
    Darwin-arm64) echo darwin-aarch64 ;;
    Darwin-x86_64) echo darwin-x86-64 ;;
    *) die "no JNA platform known for $(uname -s)-$(uname -m)" ;;
  esac
}

# The stripped library where the Kotlin jar takes it from (JNA's resource prefix).
stage_jar_native() {
  local lib dir
  lib=$(stripped_ffi_library)
  [ -f bindings/kotlin/src/main/kotlin/uniffi/walink_ffi/walink_ffi.kt ] ||
    die "the Kotlin bindings are missing: run ./build.sh bindings"
  dir="$PACKAGING_DIR/jvm/$(jna_platform)"
  rm -rf "$PACKAGING_DIR/jvm"
  mkdir -p "$dir"
  cp "$lib" "$dir/"
}

# The Kotlin library into the local Maven repository (walink:walink-kotlin), with the native
# library inside its jar; extra arguments go to Maven (the tests run unless told otherwise).
install_jar() {
  stage_jar_native
  mvn -B -ntp -f bindings/kotlin/pom.xml install -Dwalink.native.dir="$TARGET_DIR/$FFI_PROFILE" \
    -Dwalink.native.resources="$PACKAGING_DIR/jvm" "$@"
  ls -l bindings/kotlin/target/walink-kotlin-*.jar
}

# The wheel (walink_ffi with the cdylib inside, and the walink package) into target/wheels. maturin
# builds the cdylib with the same cargo command as build_ffi_release, so that one is reused.
# Its uniffi-bindgen reads the interface from the library's symbol table, so maturin packs the
# library unstripped; strip_wheel.py then puts the stripped one (the jar's) in its place.
build_wheel() {
  local stripped
  rm -f "$TARGET_DIR"/wheels/walink-*.whl
  (cd bindings/python && "$VENV/bin/maturin" build --profile "$FFI_PROFILE" --quiet --out "$TARGET_DIR/wheels")
  rm -rf "$TARGET_DIR/maturin"
  stripped=$(stripped_ffi_library)
  "$VENV/bin/python" bindings/python/strip_wheel.py "$TARGET_DIR"/wheels/walink-*.whl "$stripped"
  ls -l "$TARGET_DIR"/wheels/walink-*.whl
}

packages() {
  step "walink-ffi release cdylib" build_ffi_release
  step "uniffi bindings" generate_bindings
  step "jar into the local Maven repository" install_jar -Dmaven.test.skip=true
  step "wheel" build_wheel
  summary packages
}

# ---------------------------------------------------------------------------------------------
# Tests

test_fmt() {
  cargo fmt --all --check
}

test_clippy() {
  cargo clippy --workspace --all-targets -- -D warnings
}

test_cargo() {
  cargo test --workspace
}

test_npm() {
  WALINK_REQUIRE_MOCK=1 WALINK_MOCK_SERVER="$TARGET_DIR/debug/mock-server" npm test --prefix npm
}

# walink-sim's mock-server, for the tests that pair against it over a real websocket (run before
# them; with WALINK_REQUIRE_MOCK=1, set by the test steps, they fail when it is missing).
build_mock_server() {
  if [ -f tests/src/bin/mock-server.rs ]; then
    cargo build -p walink-sim --bin mock-server
  else
    echo "no mock-server in this checkout: its tests skip"
  fi
}

# The example gateway end to end against the mock-server (and its page in headless Chromium), on
# SQLite, then on PostgreSQL (a scratch server per test file), and three workers on PostgreSQL
# through kill -9, a pause past the lease and a database outage.
test_gateway() {
  WALINK_REQUIRE_MOCK=1 WALINK_REQUIRE_POSTGRES=1 WALINK_MOCK_SERVER="$TARGET_DIR/debug/mock-server" npm test --prefix examples/gateway
}

# The browser extension in headless Chromium against the mock-server (20-30 s; every wait in it
# is bounded, and the whole step is cut at 2 minutes).
test_extension() {
  WALINK_REQUIRE_MOCK=1 WALINK_MOCK_SERVER="$TARGET_DIR/debug/mock-server" \
    timeout 120 npm test --prefix examples/browser-extension
}

test_python() {
  "$VENV/bin/python" -m pytest bindings/python/tests
}

# The Kotlin tests, then the jar into the tests' local Maven repository, from which the previous
# run's walink is removed first: the Kotlin bot resolves this run's jar or nothing.
test_kotlin() {
  rm -rf "$TEST_MAVEN_REPO/walink"
  install_jar -Dmaven.repo.local="$TEST_MAVEN_REPO"
}

# The Android AAR's layout, assembled and checked entry by entry with this machine's library
# standing in for the four Android ABIs' (no NDK here: bindings/kotlin/android/README.md).
test_android_layout() {
  bash bindings/kotlin/android/build-aar.sh --stand-in "$(stripped_ffi_library)"
}

# The Swift package as far as it can be checked without a Swift compiler: the generated Swift,
# header and module map against each other and the library, the hand-written Swift's names.
test_swift() {
  "$VENV/bin/python" bindings/swift/check_generated.py "$(ffi_library)"
}

# A copy of an example outside this tree (without its build output), in a scratch directory that
# the calling step removes when it ends; prints the copy's path.
example_copy() {
  local scratch
  scratch=$(mktemp -d "${TMPDIR:-/tmp}/walink-example.XXXXXX")
  cp -R "examples/$1" "$scratch/"
  rm -rf "$scratch/$1/target" "$scratch/$1/.pytest_cache" "$scratch/$1/tests/__pycache__"
  echo "$scratch"
}

# The Kotlin bot, copied out of this tree, with walink resolved from the tests' local Maven
# repository: the jar installed by the step before, with the native library inside.
test_kotlin_bot() {
  local scratch
  scratch=$(example_copy kotlin-bot)
  # shellcheck disable=SC2064 # the path now: the variable is gone when the step's shell exits
  trap "rm -rf '$scratch'" EXIT
  # Its waits are cut at 30 s each; the whole step (mostly compiling) at 10 minutes.
  WALINK_MOCK_SERVER="$TARGET_DIR/debug/mock-server" timeout 600 \
    mvn -B -ntp -Dmaven.repo.local="$TEST_MAVEN_REPO" -f "$scratch/kotlin-bot/pom.xml" test
}

# The Python bot, copied out of this tree, from the installed wheel: a fresh virtual environment
# in a scratch directory, the wheel and the bot's test tools installed into it offline (setup
# fetched them).
test_python_bot() {
  local scratch wheel
  wheel=$(ls "$TARGET_DIR"/wheels/walink-*.whl)
  [ -d "$PYTHON_BOT_WHEELHOUSE" ] || die "the Python bot's wheelhouse is missing: run ./build.sh setup"
  scratch=$(example_copy python-bot)
  # shellcheck disable=SC2064 # the path now: the variable is gone when the step's shell exits
  trap "rm -rf '$scratch'" EXIT
  python3 -m venv "$scratch/venv"
  "$scratch/venv/bin/pip" install --quiet --disable-pip-version-check --no-index \
    --find-links "$PYTHON_BOT_WHEELHOUSE" -r "$scratch/python-bot/requirements-test.txt" "$wheel"
  # Its waits are cut at 30 s each; the whole run at 5 minutes.
  (cd "$scratch/python-bot" && WALINK_MOCK_SERVER="$TARGET_DIR/debug/mock-server" \
    timeout 300 "$scratch/venv/bin/python" -m pytest -q -p no:cacheprovider tests)
}

# The examples, each on the keepalive stanza (transport.md A.1); each exits non-zero unless the
# stanza decodes and re-encodes to the same bytes.
test_examples() {
  local keepalive=00f8091908ff831b2a3f1657042911fa0003
  node examples/node/decode-stanza.mjs "$keepalive"
  "$VENV/bin/python" examples/python/decode_stanza.py "$keepalive"
}

# Every cargo-fuzz target of the core, each for a bounded time. cargo-fuzz needs nightly flags
# (-Zsanitizer); RUSTC_BOOTSTRAP lets the stable toolchain accept them.
test_fuzz() {
  local targets
  targets=$(cd core && RUSTC_BOOTSTRAP=1 cargo fuzz list)
  [ -n "$targets" ] || die "cargo fuzz list found no targets"
  # One cargo invocation builds every target (linking in parallel); each run below reuses it.
  (cd core && RUSTC_BOOTSTRAP=1 cargo fuzz build)
  for target in $targets; do
    section "fuzz $target (${FUZZ_SECONDS} s)"
    (cd core && RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" -- -max_total_time="$FUZZ_SECONDS")
  done
}

run_tests() {
  # Every host's mock-server tests fail instead of skipping when the binary is missing.
  export WALINK_REQUIRE_MOCK=1
  step "cargo fmt --check" test_fmt
  step "cargo clippy" test_clippy
  step "cargo test" test_cargo
  step "demo" demo
  step "wasm build" build_wasm
  step "mock-server" build_mock_server
  step "npm test" test_npm
  step "gateway tests" test_gateway
  step "extension tests" test_extension
  step "walink-ffi release cdylib" build_ffi_release
  step "uniffi bindings" generate_bindings
  step "python tests" test_python
  step "kotlin tests + jar" test_kotlin
  step "kotlin-bot tests" test_kotlin_bot
  step "android aar layout" test_android_layout
  step "swift (not compiled)" test_swift
  step "wheel" build_wheel
  step "python-bot tests" test_python_bot
  step "examples" test_examples
  step "fuzz" test_fuzz
  summary test
}

# ---------------------------------------------------------------------------------------------

# The demo binary starts the mock-server binary built beside it, so both are built first.
demo() {
  cargo build --quiet -p walink-sim --bin demo --bin mock-server
  "$TARGET_DIR/debug/demo"
}

# Heap per idle connected client, 1,000 native clients in walink-sim (counting allocator; the
# figure does not depend on the profile, so the dev build shared with the tests is used).
bench_memory() {
  cargo run --quiet -p walink-sim --bin bench-memory -- --clients "${WALINK_BENCH_CLIENTS:-1000}"
}

bench() {
  step "cargo bench" cargo bench -p walink-core
  step "native memory (1,000 clients)" bench_memory
  step "wasm build" build_wasm
  step "wasm bench build" bash npm/scripts/build-wasm.sh --bench
  step "mock-server" build_mock_server
  step "npm bench (codec, signal, noise, memory, app state)" npm run bench --prefix npm
  summary bench
}

# The example gateway offline: the mock-server as WhatsApp, SQLite in a temporary folder, the page
# at the printed URL (the wasm module and the mock-server are built first when missing).
gateway() {
  [ -f npm/wasm/walink_wasm_bg.wasm ] || build_wasm
  cargo build --quiet -p walink-sim --bin mock-server
  [ -d examples/gateway/node_modules ] || setup_npm_gateway
  WALINK_MOCK_SERVER="$TARGET_DIR/debug/mock-server" exec node examples/gateway/bin/dev.js
}

# The browser extension: the unpacked build and its zip, in examples/browser-extension/dist/.
extension() {
  [ -f npm/wasm/walink_wasm_bg.wasm ] || build_wasm
  [ -d examples/browser-extension/node_modules ] || setup_npm_extension
  node examples/browser-extension/build.mjs
}

usage() {
  cat <<'EOF'
usage: ./build.sh <command>
  setup      install what this machine lacks (registries only); quick when nothing is missing
  test       every test of every layer: fmt, clippy, cargo tests, wasm + npm, bindings +
             Python + Kotlin, each fuzz target for 10 s (WALINK_FUZZ_SECONDS overrides)
  demo       the main job: run the demo
  wasm       build the npm package's wasm into npm/wasm/
  bindings   release cdylib of walink-ffi and the generated Kotlin, Swift and Python code
  packages   bindings, then the Kotlin jar (native library inside) into the local Maven
             repository and the Python wheel into target/wheels
  bench      cargo benchmarks of walink-core and the npm benchmarks
  gateway    the example gateway offline against the mock-server; open the printed URL
  extension  the example browser extension: unpacked and zipped in examples/browser-extension/dist/
EOF
}

case "${1:-}" in
  setup) setup ;;
  test) run_tests ;;
  demo) demo ;;
  wasm) build_wasm ;;
  bindings) bindings ;;
  packages) packages ;;
  bench) bench ;;
  gateway) gateway ;;
  extension) extension ;;
  help | -h | --help) usage ;;
  *)
    usage >&2
    exit 2
    ;;
esac
