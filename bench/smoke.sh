#!/usr/bin/env bash
# Smoke test for meridian-loadgen and the comparison tools (ctest
# bench_loadgen_smoke, label integration): --help works, a two-second
# fan-out against a real relay (with its own nats-server) delivers every
# message, and so do two-second generic runs against meridian-ws-floor and
# against nchan (nginx-light, rooms in the URL); a one-second run of
# meridian-js-pub gets PubAcks from the same JetStream. Under 30 seconds.
#   bench/smoke.sh LOADGEN RELAY FLOOR JSPUB
set -euo pipefail
LG=$1
RELAY=$2
FLOOR=$3
JSPUB=$4
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

# publish mode measures the publish path: each publisher in a room of its own
# (not all in one room, where every publish went to every publisher), so each
# gets its own messages and nothing else; with --no-echo ("echo":false) not
# even those, only its acks.
lg_count() { grep -o "\"$2\": [0-9]*" "$1" | head -1 | grep -o '[0-9]*$'; }
for echo in "" --no-echo; do
    timeout 15 "$LG" publish --url "ws://127.0.0.1:$RELAY_PORT/" --publishers 4 --window 4 \
        --duration 1 --warmup 0.2 --drain 1 --connect-timeout 5 -q $echo --json "$tmp/pub.json"
    sent=$(lg_count "$tmp/pub.json" sent)
    acks=$(lg_count "$tmp/pub.json" acks)
    self=$(lg_count "$tmp/pub.json" self_delivered)
    echo "publish${echo:+ $echo}: sent=$sent acks=$acks self_delivered=$self"
    [[ $acks -ge 100 ]] || { echo "FAIL: publish${echo:+ $echo}: too few acks"; exit 1; }
    if [[ -z $echo ]]; then
        [[ $self -ge $acks && $self -le $sent ]] ||
            { echo "FAIL: publish: publishers got others' messages (one room for all?)"; exit 1; }
    else
        [[ $self -eq 0 ]] || { echo "FAIL: publish --no-echo: publishers got messages"; exit 1; }
    fi
done

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
# nchan, two rooms of 10 named in the URLs, publishes POSTed to each room's path.
bench_start_nchan "$tmp" || { echo "FAIL: nchan did not start"; exit 1; }
timeout 15 "$LG" generic --url "ws://127.0.0.1:$NCHAN_PORT/sub/{{room}}" \
    --pub-url "http://127.0.0.1:$NCHAN_PORT/pub/{{room}}" -n 20 --rooms 2 --publishers 2 \
    --rate 50 --duration 2 --warmup 0.5 --drain 1 --connect-timeout 5 -q --json "$tmp/nchan.json"
ndeliv=$(grep -o '"delivered_measured": [0-9]*' "$tmp/nchan.json" | grep -o '[0-9]*$')
echo "nchan delivered=$ndeliv"
[[ $ndeliv -ge 900 ]] || { echo "FAIL: too few deliveries from nchan"; exit 1; }

# The JetStream ceiling client: PubAcks from the relay's region stream.
timeout 15 "$JSPUB" --url "nats://127.0.0.1:$NATS_PORT" --region bench --inflight 64 \
    --duration 1 --warmup 0.2 --json "$tmp/jspub.json" >/dev/null
jacks=$(grep -o '"acks_measured": [0-9]*' "$tmp/jspub.json" | grep -o '[0-9]*$')
jerrs=$(grep -o '"errors": [0-9]*' "$tmp/jspub.json" | grep -o '[0-9]*$')
echo "js-pub acks=$jacks errors=$jerrs"
[[ $jacks -ge 100 && $jerrs -eq 0 ]] || { echo "FAIL: meridian-js-pub got too few PubAcks"; exit 1; }
# The same without libnats on the publish path (its own HPUB writer and PubAck parser).
timeout 15 "$JSPUB" --url "nats://127.0.0.1:$NATS_PORT" --region bench --mode wire --inflight 64 \
    --duration 1 --warmup 0.2 --json "$tmp/jspub-wire.json" >/dev/null
jacks=$(grep -o '"acks_measured": [0-9]*' "$tmp/jspub-wire.json" | grep -o '[0-9]*$')
jerrs=$(grep -o '"errors": [0-9]*' "$tmp/jspub-wire.json" | grep -o '[0-9]*$')
echo "js-pub wire acks=$jacks errors=$jerrs"
[[ $jacks -ge 100 && $jerrs -eq 0 ]] || { echo "FAIL: meridian-js-pub --mode wire got too few PubAcks"; exit 1; }
echo PASS
