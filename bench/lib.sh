# Shared by bench/compare.sh and bench/compare-cluster.sh (sourced, not run).
# After sourcing: etcd is installed, Concord and the load generator are
# built in release mode ($bin; the server run is $concord, or CONCORD_BIN),
# $work is a scratch directory removed on exit together with every process
# whose PID is added to the pids array.

if ! command -v etcd >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq etcd-server >/dev/null
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/concord-target}"
cargo build --release --locked -q -p concord-server --bin concord
cargo build --release --locked -q -p concord-bench
bin=$CARGO_TARGET_DIR/release
# CONCORD_BIN: another concord binary to measure (an older build, say).
concord=${CONCORD_BIN:-$bin/concord}

work=$(mktemp -d "${TMPDIR:-/tmp}/concord-bench.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
# wait_healthy HOST:PORT: until GET /health answers 200 (30 s at most).
wait_healthy() {
  python3 -c 'import sys,time,urllib.request as u
for _ in range(300):
    try: u.urlopen(sys.argv[1], timeout=1); sys.exit(0)
    except Exception: time.sleep(0.1)
sys.exit(1)' "http://$1/health" || { echo "no healthy server at $1" >&2; exit 1; }
}
# start_concord: one fresh Concord member on a free port ($port), stopped on exit.
start_concord() {
  port=$(free_port)
  "$concord" --data-dir "$work/single-$port" --listen-client-urls "http://127.0.0.1:$port" \
    --advertise-client-urls "http://127.0.0.1:$port" --log-level warn &
  pids+=($!)
  wait_healthy "127.0.0.1:$port"
}
# report LABEL: the ratio table and chart of $results into $out, with a
# line naming the machine.
report() {
  "$bin/concord-bench" report "$results" --svg "$out/chart.svg" | tee "$out/results.md"
  {
    echo
    echo "$1: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r); etcd $(etcd --version | awk 'NR==1{print $3}'); $(date -u +%Y-%m-%d)."
  } | tee -a "$out/results.md"
}
