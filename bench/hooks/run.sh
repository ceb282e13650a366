#!/usr/bin/env bash
# What a backend hook costs in join and publish latency (docs/benchmarks.md,
# "Backend hooks"): a nats-server (JetStream) and one relay started here,
# whose config sends joins and publishes of rooms "h-*" to the backend inside
# meridian-bench-hooks; rooms "plain-*" have no hook.
#
#   bench/hooks/run.sh [--count N] [--backend-delay-us U]
#
# Needs meridian-relay and meridian-bench-hooks in $MERIDIAN_BUILD (default build/).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${MERIDIAN_BUILD:-$root/build}
. "$root/bench/lib/bench-env.sh"
tmp=$(mktemp -d /tmp/bench-hooks.XXXXXX)
trap 'bench_cleanup; rm -rf "$tmp"' EXIT

bench_start_nats "$tmp"
RELAY_PORT=$(bench_free_port)
RELAY_ADMIN=$(bench_free_port)
BACKEND_PORT=$(bench_free_port)
printf '%s\n' "${BENCH_SECRET:-dev-secret-for-the-hooks-bench}" >"$tmp/secret"
cat >"$tmp/relay.json" <<JSON
{"region":"bench","node_id":"relay-1","listen":"127.0.0.1:$RELAY_PORT",
 "admin_listen":"127.0.0.1:$RELAY_ADMIN","nats":["nats://127.0.0.1:$NATS_PORT"],
 "auth":{"secret_file":"$tmp/secret"},"log_level":"warn",
 "limits":{"max_connections_per_ip":0,"publish_rate":100000,"publish_burst":100000},
 "hooks":{"rules":[{"on":["join","publish"],"rooms":["h-*"],
                    "url":"http://127.0.0.1:$BACKEND_PORT/hook","timeout_ms":2000}]}}
JSON
"$build/relay/meridian-relay" --config "$tmp/relay.json" >"$tmp/relay.log" 2>&1 &
BENCH_PIDS+=($!)
bench_wait_port "$RELAY_PORT" 15 && bench_wait_ready "$RELAY_ADMIN" 20 ||
    { echo "relay did not become ready ($tmp/relay.log)" >&2; exit 1; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
"$build/bench/hooks/meridian-bench-hooks" --relay "127.0.0.1:$RELAY_PORT" \
    --secret-file "$tmp/secret" --backend-port "$BACKEND_PORT" "$@"
# The hooked series really went through the backend: calls = 2 x count + 1 (the join of h-pub).
bench_http_get "$RELAY_ADMIN" /metrics | grep -E "^meridian_relay_hook_(calls|failures)_total"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
