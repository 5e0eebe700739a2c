#!/usr/bin/env bash
# A 3-member Concord cluster against a 3-member etcd 3.4 cluster on this
# machine, in one run (put and linearizable/serializable range):
#   bash bench/compare-cluster.sh [--quick] [--out DIR]
# Every member has its own data directory on the same disk, fsync on,
# default heartbeat/election settings. The clients' connections are spread
# over the three members (as etcd's clientv3 and benchmark tool do), so the
# leader's place does not decide the result; one client uses member 1. CPU
# time per operation is the whole cluster's, peak RSS the largest member's.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=3 clients=1,16,64 out=bench/results-cluster
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) duration=1 clients=1,16 ;;
    --out) out=$2; shift ;;
    *) echo "usage: bash bench/compare-cluster.sh [--quick] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done

mkdir -p "$out"
. bench/lib.sh

# name -> client port, peer port, for both clusters.
declare -A ec ep cc cp
for i in 1 2 3; do ec[$i]=$(free_port); ep[$i]=$(free_port); cc[$i]=$(free_port); cp[$i]=$(free_port); done
etcd_cluster="e1=http://127.0.0.1:${ep[1]},e2=http://127.0.0.1:${ep[2]},e3=http://127.0.0.1:${ep[3]}"
concord_cluster="c1=http://127.0.0.1:${cp[1]},c2=http://127.0.0.1:${cp[2]},c3=http://127.0.0.1:${cp[3]}"
for i in 1 2 3; do
  etcd --name "e$i" --data-dir "$work/e$i" --listen-client-urls "http://127.0.0.1:${ec[$i]}" \
    --advertise-client-urls "http://127.0.0.1:${ec[$i]}" --listen-peer-urls "http://127.0.0.1:${ep[$i]}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${ep[$i]}" --initial-cluster "$etcd_cluster" \
    --log-level error >"$work/e$i.log" 2>&1 &
  pids+=($!); etcd_pids+=($!)
  "$concord" --name "c$i" --data-dir "$work/c$i" --listen-client-urls "http://127.0.0.1:${cc[$i]}" \
    --advertise-client-urls "http://127.0.0.1:${cc[$i]}" --listen-peer-urls "http://127.0.0.1:${cp[$i]}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${cp[$i]}" --initial-cluster "$concord_cluster" \
    --log-level warn >"$work/c$i.log" 2>&1 &
  pids+=($!); concord_pids+=($!)
done
for i in 1 2 3; do wait_healthy "127.0.0.1:${ec[$i]}"; wait_healthy "127.0.0.1:${cc[$i]}"; done

etcd_eps="127.0.0.1:${ec[1]},127.0.0.1:${ec[2]},127.0.0.1:${ec[3]}"
concord_eps="127.0.0.1:${cc[1]},127.0.0.1:${cc[2]},127.0.0.1:${cc[3]}"
results=$out/results.jsonl
: >"$results"
IFS=, read -ra cs <<<"$clients"
turn=0
for w in put range-lin range-ser; do
  for c in "${cs[@]}"; do
    # At least one connection per member once there are several clients.
    conns=$(( (c + 7) / 8 )); [ "$c" -gt 1 ] && [ "$conns" -lt 3 ] && conns=3
    order=("etcd $etcd_eps $(IFS=,; echo "${etcd_pids[*]}")" "concord $concord_eps $(IFS=,; echo "${concord_pids[*]}")")
    [ $((turn++ % 2)) = 1 ] && order=("${order[1]}" "${order[0]}")
    for s in "${order[@]}"; do
      read -r name eps pids_csv <<<"$s"
      "$bin/concord-bench" run --endpoint "$eps" --server "$name" --server-pid "$pids_csv" --conns "$conns" \
        --workloads "$w" --clients "$c" --duration "$duration" >>"$results"
    done
  done
done
report "3-member clusters on one machine"
