#!/usr/bin/env bash
# Python clients against one fresh Concord (release build): `concord` (this
# repository's package) vs PyPI `etcd3` (gRPC) and `etcd3gw` (JSON gateway).
#   bash bench/python.sh [--duration 3] [--rounds 3]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/concord-target}"
cargo build --release --locked -q -p concord-server --bin concord
python3 -c 'import concord' 2>/dev/null || python3 -m pip install -q ./bindings-python
python3 -c 'import etcd3gw' 2>/dev/null || python3 -m pip install -q etcd3gw
python3 -c 'import etcd3' 2>/dev/null || python3 -m pip install -q 'etcd3==0.12.0' 'protobuf<4' 'tenacity==6.3.1'
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
python3 bench/python_clients.py --endpoint "127.0.0.1:$port" --json bench/results/python.jsonl "$@"
