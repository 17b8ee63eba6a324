#!/usr/bin/env bash
# Builds the wasm module of the npm package into npm/wasm/:
# cargo (release, wasm32; core at opt-level z, walink-crypto and the crypto crates at 3, see the root
# Cargo.toml) -> wasm-bindgen 0.2.130 (--target web --weak-refs) -> wasm-opt
# (binaryen 132 from this package's devDependencies; Debian's binaryen produces broken modules).
#
# --bench builds the same module with walink-wasm's `bench` feature (Signal and Noise exports for
# npm/bench) into npm/bench/wasm/ instead; that module is never part of the published package.
#
# For measuring other configurations (docs/decisions.md has the table):
#   WALINK_WASM_OPT      wasm-opt level (default -O3; e.g. -Oz)
#   WALINK_WASM_CONVERGE 1 (default) runs wasm-opt with --converge, 0 without
#   WALINK_DALEK_BITS    curve25519-dalek's limb size on wasm32 (default 32, its own default there)
#   WALINK_DALEK_BACKEND curve25519-dalek's field backend (default fiat; serial is dalek's own)
#   WALINK_WASM_SIMD     1 (default) builds with wasm SIMD (simd128), 0 without
#   WALINK_CARGO_CONFIG  extra `cargo --config` values, separated by spaces
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "$here/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
want="wasm-bindgen 0.2.130"

out="$here/wasm"
features=()
if [ "${1:-}" = "--bench" ]; then
  out="$here/bench/wasm"
  features=(--features bench)
fi
opt_level="${WALINK_WASM_OPT:--O3}"
dalek_bits="${WALINK_DALEK_BITS:-32}"
dalek_backend="${WALINK_DALEK_BACKEND:-fiat}"
simd=""
if [ "${WALINK_WASM_SIMD:-1}" = "1" ]; then
  simd=", '-C', 'target-feature=+simd128'"
fi
config=()
for value in ${WALINK_CARGO_CONFIG:-}; do
  config+=(--config "$value")
done

cd "$root"
# curve25519-dalek picks 32-bit limbs on wasm32 by pointer width. Its 64-bit backend needs
# 64x64->128-bit products, which wasm lacks, and runs 2-2.5x slower there (docs/decisions.md);
# the cfg is passed explicitly so the choice is visible and can be measured. fiat-crypto's
# 32-bit field is 5-10 % faster in wasm than dalek's own u32 backend. SIMD (every current
# browser, Node 16.4+) gives sha2 its wasm SHA-256 backend: +28 % on Signal messages.
# panic = "abort": the workspace's release profile unwinds (for walink-ffi), which
# wasm32-unknown-unknown does not do; a panic runs walink-wasm's hook and poisons its client.
cargo build --release --target wasm32-unknown-unknown -p walink-wasm "${features[@]}" \
  --config 'profile.release.panic="abort"' \
  --config "target.wasm32-unknown-unknown.rustflags=['--cfg', 'curve25519_dalek_bits=\"$dalek_bits\"', '--cfg', 'curve25519_dalek_backend=\"$dalek_backend\"'$simd]" \
  "${config[@]}"
if [ "$(wasm-bindgen --version)" != "$want" ]; then
  echo "need $want (cargo install wasm-bindgen-cli --version 0.2.130)" >&2
  exit 1
fi
rm -rf "$out"
wasm-bindgen --target web --weak-refs --out-dir "$out" \
  "$target_dir/wasm32-unknown-unknown/release/walink_wasm.wasm"
wasm_opt="$here/node_modules/.bin/wasm-opt"
if [ ! -x "$wasm_opt" ]; then
  echo "run npm ci in npm/ first (binaryen devDependency provides wasm-opt)" >&2
  exit 1
fi
# --converge repeats the passes until the module stops shrinking: -0.9 KB raw, -1.3 KB gzipped
# (docs/decisions.md, "Speed and size of the npm/wasm host"); WALINK_WASM_CONVERGE=0 leaves it out.
converge=(--converge)
if [ "${WALINK_WASM_CONVERGE:-1}" = "0" ]; then
  converge=()
fi
"$wasm_opt" "$opt_level" "${converge[@]}" "$out/walink_wasm_bg.wasm" -o "$out/walink_wasm_bg.wasm"
# The module must import nothing but wasm-bindgen's own glue.
node "$here/scripts/check-imports.mjs" "$out/walink_wasm_bg.wasm"
raw=$(wc -c < "$out/walink_wasm_bg.wasm")
gz=$(gzip -9 -c "$out/walink_wasm_bg.wasm" | wc -c)
echo "walink_wasm_bg.wasm: $raw bytes, $gz gzip ($opt_level, dalek $dalek_backend $dalek_bits-bit, simd ${WALINK_WASM_SIMD:-1})"
# The published module's aim (npm test's test/wasm-size.test.js fails when it is missed); the
# bench module carries extra exports and is not held to it.
if [ "${#features[@]}" -eq 0 ]; then
  node "$here/scripts/wasm-size.mjs" "$out/walink_wasm_bg.wasm" ||
    echo "warning: the published module misses the size aim (docs/decisions.md, \"wasm size\")" >&2
fi
