#!/usr/bin/env bash
# Builds the wasm module of the npm package into npm/wasm/:
# cargo (release, wasm32; walink-core at opt-level 3) -> wasm-bindgen 0.2.130 (--target web --weak-refs) -> wasm-opt -Oz
# (binaryen 132 from this package's devDependencies; Debian's binaryen produces broken modules).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "$here/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
want="wasm-bindgen 0.2.130"

cd "$root"
# walink-core at opt-level 3: the codec runs about twice as fast as at the workspace's "z", for
# about 3 KB of wasm (measured with the node codec); everything else stays size-optimised.
cargo build --release --target wasm32-unknown-unknown -p walink-wasm \
  --config 'profile.release.package.walink-core.opt-level=3'
if [ "$(wasm-bindgen --version)" != "$want" ]; then
  echo "need $want (cargo install wasm-bindgen-cli --version 0.2.130)" >&2
  exit 1
fi
rm -rf "$here/wasm"
wasm-bindgen --target web --weak-refs --out-dir "$here/wasm" \
  "$target_dir/wasm32-unknown-unknown/release/walink_wasm.wasm"
wasm_opt="$here/node_modules/.bin/wasm-opt"
if [ ! -x "$wasm_opt" ]; then
  echo "run npm ci in npm/ first (binaryen devDependency provides wasm-opt)" >&2
  exit 1
fi
"$wasm_opt" -Oz "$here/wasm/walink_wasm_bg.wasm" -o "$here/wasm/walink_wasm_bg.wasm"
# The module must import nothing but wasm-bindgen's own glue.
node "$here/scripts/check-imports.mjs" "$here/wasm/walink_wasm_bg.wasm"
raw=$(wc -c < "$here/wasm/walink_wasm_bg.wasm")
gz=$(gzip -9 -c "$here/wasm/walink_wasm_bg.wasm" | wc -c)
echo "walink_wasm_bg.wasm: $raw bytes, $gz gzip"
