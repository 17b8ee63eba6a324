#!/usr/bin/env bash
# The one entry point: ./build.sh setup | test | demo | bench | wasm | bindings
set -euo pipefail
cd "$(dirname "$0")"

WASM_BINDGEN_VERSION=0.2.130

setup() {
  if [ -x ../shared/tools/ensure-wasm-target.sh ] || [ -f ../shared/tools/ensure-wasm-target.sh ]; then
    bash ../shared/tools/ensure-wasm-target.sh
  else
    rustup target add wasm32-unknown-unknown
  fi
  if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]; then
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
  fi
  npm ci --prefix tests/oracle --no-audit --no-fund --ignore-scripts
}

run_tests() {
  cargo test --workspace
}

case "${1:-}" in
  setup) setup ;;
  test) run_tests ;;
  *) echo "usage: ./build.sh setup | test | demo | bench | wasm | bindings" >&2; exit 2 ;;
esac
