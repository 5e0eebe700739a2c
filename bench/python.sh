#!/usr/bin/env bash
# Python clients against one fresh Concord (release build): `concord` (this
# repository's package) vs PyPI `etcd3` (gRPC) and `etcd3gw` (JSON gateway).
#   bash bench/python.sh [--duration 3] [--rounds 3]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
python3 -c 'import concord' 2>/dev/null || python3 -m pip install -q ./bindings-python
python3 -c 'import etcd3gw' 2>/dev/null || python3 -m pip install -q etcd3gw
python3 -c 'import etcd3' 2>/dev/null || python3 -m pip install -q 'etcd3==0.12.0' 'protobuf<4' 'tenacity==6.3.1'
start_concord
mkdir -p bench/results
python3 bench/python_clients.py --endpoint "127.0.0.1:$port" --json bench/results/python.jsonl "$@"
