#!/usr/bin/env bash
# Node clients against one fresh Concord (release build): concord-kv (this
# repository's npm package) vs npm `etcd3` (gRPC).
#   bash bench/node.sh [--duration 2] [--rounds 3]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
bash bindings-wasm/build.sh
[ -d server/tests/clients/npm/node_modules/etcd3 ] \
  || npm ci --prefix server/tests/clients/npm --no-audit --no-fund --loglevel=error
start_concord
mkdir -p bench/results
node bench/node_clients.mjs --endpoint "127.0.0.1:$port" --json bench/results/node.jsonl "$@"
