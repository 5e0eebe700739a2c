#!/usr/bin/env bash
# libconcord's C tests: the test program built against the static and the
# shared library, run against a real concord, then under valgrind
# (definite leaks and memory errors fail). Prints "N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
# Waits until a server answers /health (at most 10 s).
wait_health() {
  python3 -c 'import sys,time,urllib.request as u
for _ in range(200):
    try: u.urlopen(sys.argv[1], timeout=1); break
    except Exception: time.sleep(0.05)' "$1"
}
cargo build --locked -q -p concord-c -p concord-server
tmp=$(mktemp -d)
port=$(free_port)
"$target/debug/concord" --data-dir "$tmp/data" --listen-client-urls "http://127.0.0.1:$port" \
  --advertise-client-urls "http://127.0.0.1:$port" --log-level warn &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$tmp"' EXIT
base=(-std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -g)
cflags=("${base[@]}" -I bindings-c/include)
gcc "${cflags[@]}" bindings-c/tests/test_concord.c -L "$target/debug" -Wl,-rpath,"$target/debug" -lconcord -lpthread \
  -o "$tmp/test_shared"
gcc "${cflags[@]}" bindings-c/tests/test_concord.c "$target/debug/libconcord.a" \
  -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc -o "$tmp/test_static"
wait_health "http://127.0.0.1:$port/health"
passed=0 failed=0
run() {
  local name=$1; shift
  local out rc=0
  out=$(RUST_BACKTRACE=0 timeout 300 "$@" "127.0.0.1:$port" 2>"$tmp/$name.err") || rc=$?
  echo "$out" | sed "s/^/[$name] /"
  local line p f
  line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -1 || true)
  p=$(echo "$line" | awk '{print $1+0}'); f=$(echo "$line" | awk '{print $3+0}')
  if [ -z "$line" ] || [ "$rc" != 0 ]; then
    echo "[$name] exited $rc"; sed "s/^/[$name] /" "$tmp/$name.err" | grep -v "deliberate panic" | tail -30
    f=$((f + 1))
  fi
  passed=$((passed + p)); failed=$((failed + f))
}
run static "$tmp/test_static"
run shared "$tmp/test_shared"
# Installed the make way (PREFIX), found by pkg-config.
make -s -C bindings-c install PREFIX="$tmp/prefix" PROFILE=debug CARGO_TARGET_DIR="$target" >/dev/null
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
gcc "${base[@]}" bindings-c/tests/test_concord.c $(pkg-config --cflags --libs concord) \
  -Wl,-rpath,"$tmp/prefix/lib" -lpthread -o "$tmp/test_pkgconfig"
run pkg-config "$tmp/test_pkgconfig"
if command -v valgrind >/dev/null 2>&1; then
  run valgrind valgrind -q --error-exitcode=3 --leak-check=full --errors-for-leak-kinds=definite \
    --show-leak-kinds=definite "$tmp/test_shared"
else
  echo "valgrind missing: skipped"; failed=$((failed + 1))
fi
# A keep-alive reports its lease lost while the server stays down.
gcc "${cflags[@]}" bindings-c/tests/lease_lost.c -L "$target/debug" -Wl,-rpath,"$target/debug" -lconcord -lpthread \
  -o "$tmp/lease_lost"
lport=$(free_port)
"$target/debug/concord" --data-dir "$tmp/ll-data" --listen-client-urls "http://127.0.0.1:$lport" \
  --advertise-client-urls "http://127.0.0.1:$lport" --log-level warn &
ll_server=$!
wait_health "http://127.0.0.1:$lport/health"
mkfifo "$tmp/ll.in"
timeout 60 "$tmp/lease_lost" "127.0.0.1:$lport" <"$tmp/ll.in" >"$tmp/ll.out" 2>&1 &
ll=$!
exec 7>"$tmp/ll.in"
for _ in $(seq 200); do grep -q ready "$tmp/ll.out" 2>/dev/null && break; sleep 0.05; done
kill -9 "$ll_server"; wait "$ll_server" 2>/dev/null || true
echo down >&7; exec 7>&-
ll_rc=0; wait "$ll" || ll_rc=$?
sed "s/^/[lease-lost] /" "$tmp/ll.out"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$tmp/ll.out" | tail -1 || true)
p=$(echo "$line" | awk '{print $1+0}'); f=$(echo "$line" | awk '{print $3+0}')
if [ -z "$line" ] || [ "$ll_rc" != 0 ]; then echo "[lease-lost] exited $ll_rc"; f=$((f + 1)); fi
passed=$((passed + p)); failed=$((failed + f))

# The exec-watch example: the command sees the change in its environment,
# and a kill -9 + restart of the server in the middle loses and repeats nothing.
gcc "${cflags[@]}" examples/c/exec-watch.c -L "$target/debug" \
  -Wl,-rpath,"$target/debug" -lconcord -lpthread -o "$tmp/exec-watch"
eport=$(free_port)
start_ew_server() {
  "$target/debug/concord" --data-dir "$tmp/ew-data" --listen-client-urls "http://127.0.0.1:$eport" \
    --advertise-client-urls "http://127.0.0.1:$eport" --log-level warn &
  ew_server=$!
  wait_health "http://127.0.0.1:$eport/health"
}
ectl() { ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$eport" "$@" >/dev/null; }
start_ew_server
"$tmp/exec-watch" --endpoints "127.0.0.1:$eport" --prefix ew/ -- \
  sh -c 'echo "$ETCD_WATCH_ACTION $ETCD_WATCH_KEY=$ETCD_WATCH_VALUE $ETCD_WATCH_REVISION $ETCD_WATCH_EVENT_TYPE" >> "$0"' \
  "$tmp/ew.out" 2>"$tmp/ew.err" &
ew=$!
for _ in $(seq 100); do grep -q watching "$tmp/ew.err" 2>/dev/null && break; sleep 0.05; done
ectl put ew/a 1; ectl put ew/b 2
for _ in $(seq 200); do [ "$(wc -l < "$tmp/ew.out" 2>/dev/null || echo 0)" -ge 2 ] && break; sleep 0.05; done
kill -9 "$ew_server"; wait "$ew_server" 2>/dev/null || true
start_ew_server
ectl put ew/c 3; ectl del ew/a
for _ in $(seq 400); do [ "$(wc -l < "$tmp/ew.out" 2>/dev/null || echo 0)" -ge 4 ] && break; sleep 0.05; done
sleep 0.5  # a repeated change would show up by now
kill -TERM "$ew"; ew_rc=0; wait "$ew" || ew_rc=$?
kill "$ew_server"; wait "$ew_server" 2>/dev/null || true
got=$(cut -d' ' -f1,2,4 "$tmp/ew.out" | paste -sd';')
want="put ew/a=1 PUT;put ew/b=2 PUT;put ew/c=3 PUT;delete ew/a= DELETE"
if [ "$got" = "$want" ] && [ "$ew_rc" = 0 ] && awk 'NR>1 && $3<=prev {exit 1} {prev=$3}' "$tmp/ew.out"; then
  echo "[exec-watch] every change once, in order, across kill -9: ok"; passed=$((passed + 1))
else
  echo "[exec-watch] FAIL: got '$got' (exit $ew_rc), want '$want'"; cat "$tmp/ew.err"; failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
