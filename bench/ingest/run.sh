#!/bin/sh
# Ingest benchmark: starts nats-server (JetStream), PostgreSQL 15 (default
# durability: fsync and synchronous_commit on) and meridian-control on
# loopback, then measures
#   1. sustained ingest: a backlog of $N messages preloaded into the stream
#      while control is stopped, then drained (messages/s into PostgreSQL,
#      exactly-once path: identity check, per-room seq, commit publication, ack);
#   2. publish-to-commit latency at fixed rates ($RATES messages/s for $SECS s).
# Usage: bench/ingest/run.sh BUILD_DIR   (run as root; needs postgresql-15, nats-server)
# CTL_EXTRA: more top-level members for control.json (e.g. a "webhook" object).
set -eu
BUILD=${1:?usage: run.sh BUILD_DIR}
N=${N:-300000}
RATES=${RATES-"1000 10000"}
SECS=${SECS:-10}
CTL=$BUILD/control/meridian-control
BENCH=$BUILD/control/meridian-bench-ingest
PGBIN=/usr/lib/postgresql/15/bin
DIR=$(mktemp -d /tmp/meridian-bench-XXXXXX)
chmod 777 "$DIR"
NATS_PORT=$((20000 + $$ % 10000)); PG_PORT=$((NATS_PORT + 1)); HTTP=$((NATS_PORT + 2)); ADMIN=$((NATS_PORT + 3))
NATS_PID=; PG_PID=; CTL_PID=
cleanup() {
    [ -n "$CTL_PID" ] && kill "$CTL_PID" 2>/dev/null || true
    [ -n "$PG_PID" ] && runuser -u postgres -- $PGBIN/pg_ctl -D "$DIR/pg" -m fast -w stop >/dev/null 2>&1 || true
    [ -n "$NATS_PID" ] && kill "$NATS_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    [ -n "${KEEP:-}" ] && for f in control nats; do cp "$DIR/$f.log" "/tmp/meridian-bench-ingest-$f.log" 2>/dev/null; done; rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

nats-server -a 127.0.0.1 -p $NATS_PORT -js -sd "$DIR/nats" >"$DIR/nats.log" 2>&1 &
NATS_PID=$!
runuser -u postgres -- $PGBIN/initdb -D "$DIR/pg" -A trust -U postgres >/dev/null
cat >>"$DIR/pg/postgresql.conf" <<CONF
shared_buffers = 256MB
wal_buffers = 16MB
max_wal_size = 4GB
checkpoint_timeout = 15min
CONF
runuser -u postgres -- $PGBIN/pg_ctl -D "$DIR/pg" -l "$DIR/pg.log" -w \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$DIR" start >/dev/null
PG_PID=1
cat >"$DIR/control.json" <<CONF
{"region":"eu-west","regions":["eu-west"],"nats":["nats://127.0.0.1:$NATS_PORT"],
 "postgres":"host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres",
 "http_listen":"127.0.0.1:$HTTP","admin_listen":"127.0.0.1:$ADMIN",
 "api_keys":["bench-key-0123456789"],"log_level":"${LOG_LEVEL:-warn}",
 "batch":{"max_messages":${BATCH:-5000},"max_wait_ms":${WAIT_MS:-10},"lanes":${LANES:-3}},
 "consumer":{"max_ack_pending":50000}${CTL_EXTRA:+,$CTL_EXTRA}}
CONF
wait_ready() {
    i=0
    until curl -sf "http://127.0.0.1:$ADMIN/readyz" >/dev/null; do
        i=$((i + 1)); [ $i -lt 300 ] || { echo "control not ready" >&2; exit 1; }
        sleep 0.1
    done
}

echo "== sustained ingest: backlog of $N messages in 100 rooms"
# Start once so the schema exists, then stop it to build the backlog (preload creates the
# stream, as relays do; control creates its consumer when it starts again).
$CTL --config "$DIR/control.json" >>"$DIR/control.log" 2>&1 & CTL_PID=$!
wait_ready; kill $CTL_PID; wait $CTL_PID || true; CTL_PID=
$BENCH --nats nats://127.0.0.1:$NATS_PORT --run backlog preload "$N"
$BENCH --nats nats://127.0.0.1:$NATS_PORT drain "$N" & DRAIN=$!
# CPU time (user + system, in clock ticks) of a process, and of all PostgreSQL processes.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
pg_ticks() {
    t=0
    for p in $(pgrep -u postgres postgres || true); do t=$((t + $(ticks "$p"))); done
    echo $t
}
HZ=$(getconf CLK_TCK)
NATS0=$(ticks "$NATS_PID"); PG0=$(pg_ticks)
sleep 0.5
$CTL --config "$DIR/control.json" >>"$DIR/control.log" 2>&1 & CTL_PID=$!
wait $DRAIN
# Where the drain's cost per message goes: CPU seconds spent during it.
echo "cpu seconds during the drain: meridian-control $(awk -v t="$(ticks "$CTL_PID")" -v hz="$HZ" 'BEGIN{printf "%.1f", t/hz}')," \
    "nats-server $(awk -v t=$(($(ticks "$NATS_PID") - NATS0)) -v hz="$HZ" 'BEGIN{printf "%.1f", t/hz}')," \
    "PostgreSQL (all processes) $(awk -v t=$(($(pg_ticks) - PG0)) -v hz="$HZ" 'BEGIN{printf "%.1f", t/hz}')"
kill -0 $CTL_PID 2>/dev/null || { echo "meridian-control exited during the drain:" >&2; tail -20 "$DIR/control.log" >&2; exit 1; }
wait_ready
psql -h 127.0.0.1 -p $PG_PORT -U postgres -Atc \
    "SELECT 'rows ' || count(*) || ', distinct ids ' || count(DISTINCT msg_id) || ', rooms with gaps ' || (SELECT count(*) FROM (SELECT room FROM messages GROUP BY room HAVING max(seq) <> count(*)) g) FROM messages"

for R in $RATES; do
    echo "== publish-to-commit latency at $R msg/s for $SECS s"
    $BENCH --nats nats://127.0.0.1:$NATS_PORT --run "rate$R" rate "$R" "$SECS"
done
