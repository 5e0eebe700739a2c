#!/usr/bin/env bash
# Builds the npm package in place: the Rust client for wasm32 (profile
# wasm-release: size over speed),
# then wasm-bindgen's ES-module glue into pkg/. Installs what is missing:
# the wasm32 target, and wasm-bindgen-cli at exactly the version Cargo.lock
# pins (without --locked: see ../shared/TOOLCHAIN.md).
set -euo pipefail
cd "$(dirname "$0")"
target="${CARGO_TARGET_DIR:-$PWD/../target}"
version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' ../Cargo.lock)
rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$version" ]; then
  cargo install -q wasm-bindgen-cli --version "$version"
fi
cargo build -q --locked --profile wasm-release -p concord-wasm --target wasm32-unknown-unknown
wasm-bindgen "$target/wasm32-unknown-unknown/wasm-release/concord_wasm.wasm" --out-dir pkg --target web
# A trap inside a Rust task must not end the JavaScript program (see the file).
node patch-glue.mjs
# The dev tools, pinned in package-lock.json: wasm-opt from npm's binaryen
# (Debian's breaks the module), run with the WebAssembly features Rust's
# wasm32 target uses; tsc for the type test.
{ [ -x node_modules/.bin/wasm-opt ] && [ -x node_modules/.bin/tsc ]; } || npm ci --no-audit --no-fund --loglevel=error
node_modules/.bin/wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-multivalue --enable-reference-types \
  pkg/concord_wasm_bg.wasm -o pkg/concord_wasm_bg.wasm
raw=$(stat -c %s pkg/concord_wasm_bg.wasm)
gz=$(gzip -9 -c pkg/concord_wasm_bg.wasm | wc -c)
echo "concord-kv: pkg/concord_wasm_bg.wasm $raw bytes, $gz gzipped"
