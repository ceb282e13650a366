# shellcheck shell=bash
# Shared shell helpers for bench/run and bench/smoke.sh: free ports, and
# nats-server / meridian-relay / Node broadcaster processes in a temp dir.
# Every process started here is recorded in BENCH_PIDS and stopped by
# bench_cleanup, by its own pid.

BENCH_PIDS=()

bench_log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

bench_port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A free TCP port on 127.0.0.1 (racy but good enough on a quiet loopback).
bench_free_port() {
    local p
    for _ in $(seq 1 200); do
        # Below the ephemeral range (32768+), where client sockets could hold the port.
        p=$((20000 + RANDOM % 12000))
        if bench_port_free "$p"; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# Wait until something listens on 127.0.0.1:$1, at most $2 seconds.
bench_wait_port() {
    local deadline=$((SECONDS + $2))
    while bench_port_free "$1"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.05
    done
}

# HTTP GET on loopback without curl: prints the body.
bench_http_get() {
    local port=$1 path=$2
    exec 5<>"/dev/tcp/127.0.0.1/$port" || return 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$path" >&5
    timeout 5 cat <&5 | sed '1,/^\r$/d'
    exec 5<&-
}

bench_wait_ready() {
    local port=$1 deadline=$((SECONDS + $2))
    until bench_http_get "$port" /readyz 2>/dev/null | grep -q '"ready":true'; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

# bench_start_nats DIR -> sets NATS_PORT NATS_PID
bench_start_nats() {
    local dir=$1
    NATS_PORT=$(bench_free_port)
    mkdir -p "$dir/js"
    nats-server -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$dir/js" >"$dir/nats.log" 2>&1 &
    NATS_PID=$!
    BENCH_PIDS+=("$NATS_PID")
    bench_wait_port "$NATS_PORT" 10 || { bench_log "nats-server did not start ($dir/nats.log)"; return 1; }
}

# bench_relay_config FILE NODE PORT ADMIN_PORT [TLS_DIR]
# BENCH_RECEIVE_BUFFER sets limits.receive_buffer_bytes (default: the relay's);
# BENCH_RELAY_EXTRA adds top-level members (e.g. '"service_threads":2,').
bench_relay_config() {
    local file=$1 node=$2 port=$3 admin=$4 tls=${5:-}
    local tls_json="" rxbuf="" extra=${BENCH_RELAY_EXTRA:-}
    [[ -n ${BENCH_RECEIVE_BUFFER:-} ]] && rxbuf=",\"receive_buffer_bytes\":$BENCH_RECEIVE_BUFFER"
    if [[ -n $tls ]]; then
        tls_json="\"tls\":{\"cert\":\"$tls/cert.pem\",\"key\":\"$tls/key.pem\"},"
    fi
    cat >"$file" <<JSON
{"region":"bench","node_id":"$node","listen":"127.0.0.1:$port","admin_listen":"127.0.0.1:$admin",
 "nats":["nats://127.0.0.1:$NATS_PORT"],"auth":{"secret":"${BENCH_SECRET:-dev-secret}"},$tls_json
 "log_level":"warn",$extra"signals":{"rate":100000,"burst":100000},
 "limits":{"max_connections_per_ip":0,"publish_rate":100000,"publish_burst":100000,
           "max_outbound_bytes":16777216,"max_rooms_per_connection":1000,
           "handshake_timeout_ms":60000$rxbuf}}
JSON
}

# bench_start_relay RELAY_BIN DIR NODE [TLS_DIR] -> sets RELAY_PORT RELAY_ADMIN RELAY_PID
bench_start_relay() {
    local bin=$1 dir=$2 node=$3 tls=${4:-}
    RELAY_PORT=$(bench_free_port)
    RELAY_ADMIN=$(bench_free_port)
    bench_relay_config "$dir/$node.json" "$node" "$RELAY_PORT" "$RELAY_ADMIN" "$tls"
    "$bin" --config "$dir/$node.json" >"$dir/$node.log" 2>&1 &
    RELAY_PID=$!
    BENCH_PIDS+=("$RELAY_PID")
    bench_wait_port "$RELAY_PORT" 15 && bench_wait_ready "$RELAY_ADMIN" 20 ||
        { bench_log "relay $node did not become ready ($dir/$node.log)"; return 1; }
}

bench_stop_pid() {
    local pid=$1
    # SIGINT: a relay stops at once on SIGINT but drains (10 s) on SIGTERM.
    kill -INT "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}

bench_cleanup() {
    local pid
    for pid in "${BENCH_PIDS[@]}"; do
        bench_stop_pid "$pid"
    done
    BENCH_PIDS=()
}

bench_tls_cert() {
    local dir=$1
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$dir/key.pem" -out "$dir/cert.pem" -days 30 -subj /CN=127.0.0.1 2>/dev/null
}

# nchan on Debian's nginx-light (packages nginx-light and libnginx-mod-nchan):
# the bench's own nginx, never the system service, with its own prefix and
# configuration in DIR, one worker, on loopback. WebSocket subscribers on
# /sub/<channel>, HTTP POST publishers on /pub/<channel>; a message's body is
# sent to the subscribers unchanged. Messages are kept only briefly (one per
# channel, 10 s): a fan-out peer, not a history store.
# bench_start_nchan DIR -> sets NCHAN_PORT NCHAN_PID (the worker: its CPU and RSS
# are the server's) and NCHAN_MASTER
bench_start_nchan() {
    local dir=$1 nginx=${BENCH_NGINX:-/usr/sbin/nginx}
    local module=${BENCH_NCHAN_MODULE:-/usr/lib/nginx/modules/ngx_nchan_module.so}
    [[ -x $nginx && -f $module ]] || {
        bench_log "nchan needs nginx-light and libnginx-mod-nchan (scripts/deps)"
        return 1
    }
    NCHAN_PORT=$(bench_free_port)
    mkdir -p "$dir/nchan/tmp" "$dir/nchan/logs"
    cat >"$dir/nchan/nginx.conf" <<CONF
load_module $module;
worker_processes 1;
worker_rlimit_nofile 20000;
daemon off;
pid $dir/nchan/nginx.pid;
error_log $dir/nchan/logs/error.log warn;
events { worker_connections 19000; }
http {
    access_log off;
    client_body_temp_path $dir/nchan/tmp/body;
    proxy_temp_path $dir/nchan/tmp/proxy;
    fastcgi_temp_path $dir/nchan/tmp/fastcgi;
    uwsgi_temp_path $dir/nchan/tmp/uwsgi;
    scgi_temp_path $dir/nchan/tmp/scgi;
    client_body_buffer_size 64k;
    # A publisher POSTs on one connection for the whole run (nginx closes it after 1,000 by default).
    keepalive_requests 1000000000;
    keepalive_timeout 600s;
    nchan_message_buffer_length 1;
    nchan_message_timeout 10s;
    server {
        listen 127.0.0.1:$NCHAN_PORT backlog=4096;
        location ~ ^/sub/(.+)\$ {
            nchan_subscriber websocket;
            nchan_channel_id \$1;
        }
        location ~ ^/pub/(.+)\$ {
            nchan_publisher http;
            nchan_channel_id \$1;
        }
    }
}
CONF
    "$nginx" -p "$dir/nchan" -c "$dir/nchan/nginx.conf" >"$dir/nchan/logs/stdout.log" 2>&1 &
    NCHAN_MASTER=$!
    BENCH_PIDS+=("$NCHAN_MASTER")
    bench_wait_port "$NCHAN_PORT" 10 ||
        { bench_log "nchan did not start ($dir/nchan/logs/error.log)"; return 1; }
    NCHAN_PID=$(pgrep -P "$NCHAN_MASTER" | head -1)
    [[ -n $NCHAN_PID ]] || { bench_log "nchan has no worker ($dir/nchan/logs/error.log)"; return 1; }
}
