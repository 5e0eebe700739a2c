#!/usr/bin/env bash
# Node clients against one fresh Concord (release build): concord-kv (this
# repository's npm package) vs npm `etcd3` (gRPC).
#   bash bench/node.sh [--duration 2] [--rounds 3]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/concord-target}"
cargo build --release --locked -q -p concord-server --bin concord
bash bindings-wasm/build.sh
[ -d server/tests/clients/npm/node_modules/etcd3 ] \
  || npm ci --prefix server/tests/clients/npm --no-audit --no-fund --loglevel=error
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
data=$(mktemp -d)
"$CARGO_TARGET_DIR/release/concord" --data-dir "$data/d" --listen-client-urls "http://127.0.0.1:$port" \
  --advertise-client-urls "http://127.0.0.1:$port" --log-level warn &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT
python3 -c 'import sys,time,urllib.request as u
for _ in range(100):
    try: u.urlopen(sys.argv[1], timeout=1); break
    except Exception: time.sleep(0.1)' "http://127.0.0.1:$port/health"
mkdir -p bench/results
node bench/node_clients.mjs --endpoint "127.0.0.1:$port" --json bench/results/node.jsonl "$@"
