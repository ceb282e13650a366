#!/usr/bin/env bash
# Smoke test for meridian-loadgen (ctest bench_loadgen_smoke, label
# integration): --help works, a two-second fan-out against a real relay
# (with its own nats-server) delivers every message, and so does a
# two-second generic run against meridian-ws-floor. Under 20 seconds.
#   bench/smoke.sh LOADGEN RELAY FLOOR
set -euo pipefail
LG=$1
RELAY=$2
FLOOR=$3
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/bench-env.sh"

tmp=$(mktemp -d /tmp/lg-smoke.XXXXXX)
trap 'bench_cleanup; rm -rf "$tmp"' EXIT

"$LG" --help | grep -q "usage: meridian-loadgen" || { echo "FAIL: --help"; exit 1; }

bench_start_nats "$tmp"
bench_start_relay "$RELAY" "$tmp" smoke

timeout 15 "$LG" fanout --url "ws://127.0.0.1:$RELAY_PORT/" -n 20 --rooms 2 --publishers 2 \
    --rate 50 --duration 2 --warmup 0.5 --drain 1 --connect-timeout 5 -q \
    --server-pid "$RELAY_PID" --json "$tmp/result.json"

ready=$(grep -o '"ready_after_connect": [0-9]*' "$tmp/result.json" | grep -o '[0-9]*$')
deliv=$(grep -o '"delivered_measured": [0-9]*' "$tmp/result.json" | grep -o '[0-9]*$')
p99=$(grep -A8 '"latency"' "$tmp/result.json" | grep -o '"p99_us": [0-9]*' | grep -o '[0-9]*$')
echo "ready=$ready delivered=$deliv p99_us=$p99"
[[ $ready -eq 22 ]] || { echo "FAIL: expected 22 ready connections"; exit 1; }
# 50 msgs/s for 2 s over 2 rooms of 10: about 1,000 deliveries.
[[ $deliv -ge 900 ]] || { echo "FAIL: too few deliveries"; exit 1; }

# The floor broadcaster: 50 msgs/s for 2 s to 20 subscribers is 2,000 deliveries.
port=$(bench_free_port)
"$FLOOR" --port "$port" >"$tmp/floor.log" 2>&1 &
BENCH_PIDS+=($!)
bench_wait_port "$port" 10 || { echo "FAIL: meridian-ws-floor did not listen"; exit 1; }
timeout 15 "$LG" generic --url "ws://127.0.0.1:$port/" --pub-url "ws://127.0.0.1:$port/" -n 20 \
    --publishers 1 --rate 50 --duration 2 --warmup 0.5 --drain 1 --connect-timeout 5 -q \
    --json "$tmp/floor.json"
fdeliv=$(grep -o '"delivered_measured": [0-9]*' "$tmp/floor.json" | grep -o '[0-9]*$')
echo "floor delivered=$fdeliv"
[[ $fdeliv -ge 1800 ]] || { echo "FAIL: too few deliveries from meridian-ws-floor"; exit 1; }
echo PASS
