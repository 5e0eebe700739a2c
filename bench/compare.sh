#!/usr/bin/env bash
# Concord against etcd 3.4, side by side, in one run:
#   bash bench/compare.sh [--quick] [--out DIR] [--preload N] [--rounds N] [--fresh]
# Installs Debian's etcd-server if missing, builds Concord and the load
# generator in release mode, starts a fresh etcd and a fresh Concord (data on
# the same disk, fsync on, default settings), runs every workload at 1, 16,
# 64 and 256 clients on both servers alternately, and writes:
#   DIR/results.jsonl  one JSON line per run
#   DIR/results.md     the ratio table (also printed)
#   DIR/chart.svg      ops/s and p99 against clients, both servers
# --quick: 1 s per run and 1/16/64 clients (a smoke run); default 3 s.
# --preload N: first grow both stores to N revisions over 2N/5 keys (e.g.
# 500000 for the large-store watch run: --preload 500000 --workloads watch
# --duration 35, long enough that every run spans the member's periodic
# work, such as the 30-second recount of the bytes in use).
# --duration S: seconds per run.
# --rounds N: run every workload N times (without --fresh the servers stay up; the order
# keeps alternating); the table gives the median of each figure.
# --fresh: new servers (empty stores) for every workload and client count,
# so each row's peak RSS is that run's own rather than the peak so far.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=3 clients=1,16,64,256 out=bench/results preload=0 rounds=1 fresh=0
ws=(put put-seq range-lin range-ser range-prefix txn-cas watch lease gw-put gw-range)
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) duration=1 clients=1,16,64 ;;
    --out) out=$2; shift ;;
    --workloads) IFS=, read -ra ws <<<"$2"; shift ;;
    --clients) clients=$2; shift ;;
    --preload) preload=$2; shift ;;
    --duration) duration=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --fresh) fresh=1 ;;
    *) echo "usage: bash bench/compare.sh [--quick] [--out DIR] [--workloads put,range-lin,...] [--clients 1,64] [--preload N] [--duration S] [--rounds N] [--fresh]" >&2; exit 2 ;;
  esac
  shift
done

mkdir -p "$out"
. bench/lib.sh

# start_servers: a fresh etcd and a fresh Concord (stopping any earlier pair).
start_servers() {
  if [ -n "${etcd_pid:-}" ]; then
    kill "$etcd_pid" "$concord_pid" 2>/dev/null || true
    wait "$etcd_pid" "$concord_pid" 2>/dev/null || true
    rm -rf "$work/etcd" "$work/concord"
  fi
  ec=$(free_port) ep=$(free_port) cc=$(free_port)
  etcd --name bench --data-dir "$work/etcd" --listen-client-urls "http://127.0.0.1:$ec" \
    --advertise-client-urls "http://127.0.0.1:$ec" --listen-peer-urls "http://127.0.0.1:$ep" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ep" --initial-cluster "bench=http://127.0.0.1:$ep" \
    --log-level error >"$work/etcd.log" 2>&1 &
  pids+=($!); etcd_pid=$!
  "$concord" --data-dir "$work/concord" --listen-client-urls "http://127.0.0.1:$cc" \
    --advertise-client-urls "http://127.0.0.1:$cc" --log-level warn >"$work/concord.log" 2>&1 &
  pids+=($!); concord_pid=$!
  wait_healthy "127.0.0.1:$ec"; wait_healthy "127.0.0.1:$cc"
}
start_servers

results=$out/results.jsonl
: >"$results"
IFS=, read -ra cs <<<"$clients"
turn=0
for ((round = 1; round <= rounds; round++)); do
for w in "${ws[@]}"; do
  for c in "${cs[@]}"; do
    [ "$fresh" = 1 ] && [ "$turn" -gt 0 ] && start_servers
    # Alternate which server goes first, so neither always gets the warmer machine.
    order=("etcd $ec $etcd_pid" "concord $cc $concord_pid")
    [ $((turn++ % 2)) = 1 ] && order=("concord $cc $concord_pid" "etcd $ec $etcd_pid")
    for s in "${order[@]}"; do
      read -r name port pid <<<"$s"
      "$bin/concord-bench" run --endpoint "127.0.0.1:$port" --server "$name" --server-pid "$pid" \
        --workloads "$w" --clients "$c" --duration "$duration" --preload "$preload" >>"$results"
    done
  done
done
done
report "Machine"
