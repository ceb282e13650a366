#!/usr/bin/env bash
# Cross-region delivery latency against in-region delivery, on the local
# three-region deployment of scripts/up (started here with --detach unless
# one is already running, and stopped again afterwards in that case).
#
#   bench/crossregion/run.sh [--count N] [--rate R] [--warmup N]
#
# The publisher is on eu-west-1; subscribers on eu-west-1 (same relay),
# eu-west-2 (same region: one NATS server between the relays), us-east-1 and
# ap-south-1 (other regions: the gateway hop). Needs the program
# meridian-bench-crossregion in $MERIDIAN_BUILD (default build/), built from
# bench/crossregion/CMakeLists.txt.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${MERIDIAN_BUILD:-$root/build}
state=${MERIDIAN_STATE:-$root/.state/local}
bin=$build/bench/crossregion/meridian-bench-crossregion
[[ -x $bin ]] || {
    echo "error: $bin not found: build it (target meridian-bench-crossregion; bench/CMakeLists.txt needs add_subdirectory(crossregion))" >&2
    exit 1
}
started=0
if [[ ! -s $state/endpoints.json ]] || ! curl -s -o /dev/null --max-time 2 http://127.1.0.1:17110/readyz; then
    MERIDIAN_BUILD=$build "$root/scripts/up" --no-build --detach >/dev/null
    started=1
fi
stop() { ((started)) && "$root/scripts/down" >/dev/null; }
trap stop EXIT
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
"$bin" --secret-file "$state/conf/jwt.secret" "$@" \
    "127.1.0.1:17100=eu-west-1 (same relay)" \
    "127.1.0.2:17100=eu-west-2 (same region)" \
    "127.2.0.1:17100=us-east-1 (other region)" \
    "127.3.0.1:17100=ap-south-1 (other region)"
