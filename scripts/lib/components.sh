# shellcheck shell=bash
# One start function per component of the local deployment. Each one reads
# what it needs from the regions file, writes its configuration under
# $MR_STATE/conf, starts its processes with mr_spawn (so scripts/down and a
# failed scripts/up stop them) and returns only when they listen. Each
# component also names the binaries it needs (COMPONENT_bins) and the
# listener kinds it binds (COMPONENT_ports) so scripts/up can check both
# before starting anything.

# ---- NATS: one nats-server per region server, gateways between regions, JetStream ----
#
# Locked (docs/architecture.md, "NATS permissions"): TLS on client, route and
# gateway connections with certificates from a local CA (client
# certificates required), one nkey user per daemon role and region with
# that role's subject permissions, and a cluster password on routes and
# gateways. Keys and certificates live in $MR_STATE/conf/nats and are kept
# across runs.

nats_bins() { echo "nats-server openssl"; }
nats_ports() { echo "nats-client nats-cluster nats-gateway nats-monitor"; }

nats_auth_dir() { printf '%s\n' "$MR_STATE/conf/nats"; }

# The CA, server and client certificates, nkeys and the cluster password.
nats_auth_prepare() {
    local dir region id host role
    dir=$(nats_auth_dir)
    mkdir -p "$dir"
    chmod 700 "$dir"
    pki_ca "$dir"
    while IFS=$'\t' read -r _ _ id host _; do
        pki_cert "$dir" "server-$id" "serverAuth, clientAuth" "$host" 127.0.0.1
    done < <(regions_listeners nats-client)
    for region in $(regions_names); do
        for role in relay control healthcheck; do
            pki_cert "$dir" "$role-$region" "clientAuth"
        done
    done
    "$MR_REGIONS_BIN" nkeys "$MR_REGIONS" --dir "$dir/nkeys" >/dev/null ||
        mr_die "meridian-regions nkeys failed"
    if [[ ! -s $dir/cluster.password ]]; then
        (umask 077 && od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$dir/cluster.password" && echo >>"$dir/cluster.password")
    fi
}

# nats_json ROLE REGION: the `nats` section of a daemon config (URLs, the
# role's nkey seed of the region, mutual TLS).
nats_json() {
    local role=$1 region=$2 dir urls
    dir=$(nats_auth_dir)
    urls=$(regions_nats_urls "$region" | sed 's/,/", "/g')
    printf '{"urls": ["%s"], "nkey_seed_file": "%s", "tls": {"ca": "%s", "cert": "%s", "key": "%s"}}' \
        "$urls" "$dir/nkeys/$role-$region.nk" "$dir/ca.pem" "$dir/$role-$region.pem" "$dir/$role-$region.key"
}

nats_start() {
    local region id conf dir
    nats_auth_prepare
    dir=$(nats_auth_dir)
    while IFS=$'\t' read -r _ region id _ _; do
        conf=$MR_STATE/conf/nats-$id.conf
        mkdir -p "$MR_STATE/data/nats-$id"
        "$MR_REGIONS_BIN" nats-conf "$MR_REGIONS" --region "$region" --server "$id" \
            --store-dir "$MR_STATE/data/nats-$id" \
            --tls-cert "$dir/server-$id.pem" --tls-key "$dir/server-$id.key" --tls-ca "$dir/ca.pem" \
            --client-tls --client-verify --nkeys-dir "$dir/nkeys" \
            --user meridian-cluster --password-file "$dir/cluster.password" --out "$conf" ||
            mr_die "meridian-regions nats-conf failed for $id"
        mr_spawn "nats-$id" nats-server -c "$conf"
    done < <(regions_listeners nats-client)
    while IFS=$'\t' read -r _ _ id host port; do
        mr_wait_port "nats-$id" "$host" "$port" 20
    done < <(regions_listeners nats-client)
    nats_wait_gateways
}

# Every server reports a gateway to and from every other region.
nats_wait_gateways() {
    local names region id host port body other i ok
    mapfile -t names < <(regions_names)
    while IFS=$'\t' read -r _ region id host port; do
        for ((i = 0; i < 300; i++)); do
            body=$(mr_http_get "$host" "$port" /gatewayz) || body=
            ok=1
            for other in "${names[@]}"; do
                [[ $other == "$region" ]] && continue
                # Outbound gateways are an object per name, inbound an array per name.
                [[ $body == *"\"$other\": {"* && $body == *"\"$other\": ["* ]] || ok=0
            done
            ((ok)) && break
            mr_pid_of "nats-$id" >/dev/null || mr_die "nats-$id exited (see $MR_STATE/logs/nats-$id.log)"
            sleep 0.1
        done
        ((ok)) || {
            mr_warn "gateways of $id not connected within 30s (see $MR_STATE/logs/nats-$id.log)"
            return 1
        }
    done < <(regions_listeners nats-monitor)
}

# ---- PostgreSQL: one server for the whole deployment, run as `postgres` ----

postgres_bins() { echo "runuser setpriv"; }
postgres_ports() { echo "postgres"; }

# PostgreSQL refuses to run as root, so initdb and the server run as the
# `postgres` user in a data directory inside the state; the system's own
# clusters and services are not touched. The unix socket goes to the same
# directory so nothing needs /run/postgresql.
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

# postgres_hostport: "HOST PORT" of local.postgres in the regions file.
postgres_hostport() {
    regions_listeners postgres | awk -F'\t' '{ print $4, $5; exit }'
}

postgres_conninfo() {
    local host port
    read -r host port < <(postgres_hostport)
    printf 'host=%s port=%s user=postgres dbname=meridian\n' "$host" "$port"
}

postgres_start() {
    local host port dir=$MR_STATE/data/postgres i pid
    read -r host port < <(postgres_hostport)
    [[ -n $port ]] || mr_die "the regions file has no local.postgres address"
    [[ -x $PG_BIN/postgres ]] || mr_die "$PG_BIN/postgres not found: run scripts/deps (postgresql 15)"
    id postgres >/dev/null 2>&1 || mr_die "no 'postgres' user: run scripts/deps (postgresql)"
    if [[ ! -s $dir/PG_VERSION ]]; then
        mkdir -p "$dir"
        chown postgres: "$dir"
        chmod 700 "$dir"
        mr_info "  initdb into $dir"
        runuser -u postgres -- "$PG_BIN/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 \
            >>"$MR_STATE/logs/postgres.log" 2>&1 ||
            mr_die "initdb failed (see $MR_STATE/logs/postgres.log)"
    fi
    # fsync=off: a local deployment survives killed processes, not power cuts.
    # setpriv (unlike runuser, which forks and does not pass SIGINT on) execs
    # postgres as the `postgres` user, so the pid scripts/down signals is the
    # postmaster itself. SIGINT is PostgreSQL's fast shutdown; SIGTERM would
    # wait for every client to disconnect.
    MR_SPAWN_EXE=$PG_BIN/postgres mr_spawn postgres \
        setpriv --reuid=postgres --regid=postgres --init-groups -- \
        "$PG_BIN/postgres" -D "$dir" -p "$port" \
        -c "listen_addresses=$host" -c "unix_socket_directories=$dir" -c fsync=off
    mr_stop_signal postgres INT
    read -r pid _ <"$MR_STATE/pids/postgres.pid"
    for ((i = 0; i < 300; i++)); do
        "$PG_BIN/pg_isready" -q -h "$host" -p "$port" && break
        kill -0 "$pid" 2>/dev/null || {
            tail -n 20 "$MR_STATE/logs/postgres.log" >&2
            mr_die "postgres exited (see $MR_STATE/logs/postgres.log)"
        }
        sleep 0.1
    done
    "$PG_BIN/pg_isready" -q -h "$host" -p "$port" ||
        mr_die "postgres not ready on $host:$port within 30s (see $MR_STATE/logs/postgres.log)"
    if [[ $("$PG_BIN/psql" -h "$host" -p "$port" -U postgres -XAtc \
        "SELECT 1 FROM pg_database WHERE datname = 'meridian'") != 1 ]]; then
        "$PG_BIN/createdb" -h "$host" -p "$port" -U postgres meridian ||
            mr_die "createdb meridian failed"
    fi
}

# ---- relays: meridian-relay per relay endpoint, on its region's NATS ----

relay_bins() { echo "meridian-relay"; }
relay_ports() { echo "relay relay-admin"; }

# The relays' admin key (drain and undrain); the health agents send it.
mr_relay_admin_key_file() {
    local key=$MR_STATE/conf/relay-admin.key
    if [[ ! -s $key ]]; then
        (umask 077 && od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$key" && echo >>"$key")
    fi
    printf '%s\n' "$key"
}

# The development token secret shared by every relay and the token commands.
mr_secret_file() {
    local secret=$MR_STATE/conf/jwt.secret
    if [[ ! -s $secret ]]; then
        (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$secret")
    fi
    printf '%s\n' "$secret"
}

relay_start() {
    local relay_bin secret region id host port
    relay_bin=$(mr_find_bin meridian-relay)
    secret=$(mr_secret_file)
    declare -A admin
    while IFS=$'\t' read -r _ _ id host port; do
        admin[$id]="$host:$port"
    done < <(regions_listeners relay-admin)
    # Each region's stream is placed in its own NATS cluster (named after the
    # region); the relays create it there before any control plane starts,
    # so nothing creates it without a placement.
    while IFS=$'\t' read -r _ region id host port; do
        cat >"$MR_STATE/conf/relay-$id.json" <<EOF
{
  "region": "$region",
  "node_id": "$id",
  "listen": "$host:$port",
  "admin_listen": "${admin[$id]}",
  "nats": $(nats_json relay "$region"),
  "auth": {"secret_file": "$secret"},
  "admin_api_key_file": "$(mr_relay_admin_key_file)",
  "stream": {"placement": "$region"},
  "presence": {"heartbeat_ms": 1000, "expire_heartbeats": 3},
  "static_dir": "$MR_ROOT/clients/js/demo",
  "drain_grace_ms": 3000
}
EOF
        mr_spawn "relay-$id" "$relay_bin" --config "$MR_STATE/conf/relay-$id.json"
    done < <(regions_listeners relay)
    while IFS=$'\t' read -r _ _ id host port; do
        mr_wait_port "relay-$id" "$host" "$port" 20 || mr_die "relay-$id did not start"
        mr_wait_ready "relay-$id" "${admin[$id]%:*}" "${admin[$id]##*:}" 30 ||
            mr_die "relay-$id did not become ready"
        mr_info "  relay-$id ready on ws://$host:$port/"
    done < <(regions_listeners relay)
}

# ---- control plane: one meridian-control per region with a control section ----

control_bins() { echo "meridian-control"; }
control_ports() { echo "control-api control-admin"; }

# One control process per region persists that region's stream through the
# region's own NATS, so losing a region stops only the persistence of that
# region's messages, which its stream keeps until the region returns. All of
# them write the one PostgreSQL and any of them answers history requests.
# They start one after the other so that only the first applies migrations.
control_start() {
    local bin keys region host port conninfo
    bin=$(mr_find_bin meridian-control)
    keys=$MR_STATE/conf/control-api.keys
    if [[ ! -s $keys ]]; then
        (umask 077 && od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$keys" && echo >>"$keys")
    fi
    conninfo=$(postgres_conninfo)
    declare -A apis
    while IFS=$'\t' read -r _ region _ host port; do
        apis[$region]="$host:$port"
    done < <(regions_listeners control-api)
    while IFS=$'\t' read -r _ region _ host port; do
        [[ -n ${apis[$region]:-} ]] || continue
        cat >"$MR_STATE/conf/control-$region.json" <<EOF
{
  "region": "$region",
  "regions": ["$region"],
  "node": "control-$region",
  "nats": $(nats_json control "$region"),
  "postgres": "$conninfo",
  "http_listen": "${apis[$region]}",
  "admin_listen": "$host:$port",
  "api_keys_file": "$keys",
  "stream": {"placement": "$region"}
}
EOF
        mr_spawn "control-$region" "$bin" --config "$MR_STATE/conf/control-$region.json"
        mr_wait_port "control-$region" "$host" "$port" 20 || mr_die "control-$region did not start"
        mr_wait_ready "control-$region" "$host" "$port" 30 ||
            mr_die "control-$region did not become ready"
        mr_info "  control-$region ready on http://${apis[$region]}"
    done < <(regions_listeners control-admin)
}

# ---- DNS: PowerDNS (gsqlite3 backend, HTTP API, LUA records) ----

dns_bins() { echo "pdns_server sqlite3"; }
dns_ports() { echo "dns pdns-api"; }

PDNS_SCHEMA=${PDNS_SCHEMA:-/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql}

# The API key the health agents write DNS with.
dns_key_file() {
    local key=$MR_STATE/conf/pdns.key
    if [[ ! -s $key ]]; then
        (umask 077 && od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$key" && echo >>"$key")
    fi
    printf '%s\n' "$key"
}

# The zone itself is created by the health agent that holds the lease (on
# its first write it gets 404 and creates it), so a fresh PowerDNS only
# needs its schema. Every cache is off so answers change right after a write.
dns_start() {
    local dnshost dnsport apihost apiport dir=$MR_STATE/data/pdns cdir=$MR_STATE/conf/pdns key
    read -r dnshost dnsport < <(regions_listeners dns | awk -F'\t' '{ print $4, $5; exit }')
    read -r apihost apiport < <(regions_listeners pdns-api | awk -F'\t' '{ print $4, $5; exit }')
    [[ -n $dnsport && -n $apiport ]] ||
        mr_die "the regions file has no dns.nameservers[0] or local.pdns_api address"
    [[ -r $PDNS_SCHEMA ]] || mr_die "$PDNS_SCHEMA missing: run scripts/deps (pdns-backend-sqlite3)"
    key=$(dns_key_file)
    mkdir -p "$dir" "$cdir"
    if [[ ! -s $dir/pdns.sqlite3 ]]; then
        sqlite3 "$dir/pdns.sqlite3" ".read $PDNS_SCHEMA" ||
            mr_die "cannot create the PowerDNS database $dir/pdns.sqlite3"
    fi
    cat >"$cdir/pdns.conf" <<EOF
launch=gsqlite3
gsqlite3-database=$dir/pdns.sqlite3
local-address=$dnshost
local-port=$dnsport
api=yes
api-key=$(head -n 1 "$key")
webserver=yes
webserver-address=$apihost
webserver-port=$apiport
webserver-allow-from=127.0.0.0/8
enable-lua-records=yes
cache-ttl=0
negquery-cache-ttl=0
query-cache-ttl=0
zone-cache-refresh-interval=0
disable-syslog=yes
daemon=no
guardian=no
socket-dir=$dir
loglevel=4
EOF
    chmod 600 "$cdir/pdns.conf"
    mr_spawn pdns pdns_server --config-dir="$cdir"
    mr_wait_port pdns "$apihost" "$apiport" 20 || mr_die "pdns_server did not start"
    mr_wait_port pdns "$dnshost" "$dnsport" 20 || mr_die "pdns_server did not listen for DNS"
    mr_info "  PowerDNS on $dnshost:$dnsport (API http://$apihost:$apiport)"
}

# ---- health agents: one meridian-healthcheck per region ----

healthcheck_bins() { echo "meridian-healthcheck"; }
healthcheck_ports() { echo "healthcheck"; }

# Each agent probes every relay, votes over NATS, and the lease holder
# writes PowerDNS (when the dns component runs; otherwise the dry-run
# provider only logs what it would write).
healthcheck_start() {
    local bin region host port dns secret apikey
    bin=$(mr_find_bin meridian-healthcheck)
    secret=$(head -n 1 "$(mr_secret_file)")
    apikey=$MR_STATE/conf/healthcheck-api.key
    if [[ ! -s $apikey ]]; then
        (umask 077 && od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$apikey" && echo >>"$apikey")
    fi
    dns='{"type": "dry-run"}'
    if [[ -n $(mr_pid_of pdns) ]]; then
        local apihost apiport
        read -r apihost apiport < <(regions_listeners pdns-api | awk -F'\t' '{ print $4, $5; exit }')
        dns="{\"type\": \"powerdns\", \"api_url\": \"http://$apihost:$apiport\", \"api_key_file\": \"$(dns_key_file)\"}"
    fi
    while IFS=$'\t' read -r _ region _ host port; do
        (
            umask 077
            cat >"$MR_STATE/conf/healthcheck-$region.json" <<EOF
{
  "agent_id": "hc-$region",
  "region": "$region",
  "regions_file": "$MR_REGIONS",
  "listen": "$host:$port",
  "nats": $(nats_json healthcheck "$region"),
  "api_key": "$(head -n 1 "$apikey")",
  "probe": {"secret": "$secret"},
  "drain": {"relay_api_key": "$(head -n 1 "$(mr_relay_admin_key_file)")"},
  "dns": $dns
}
EOF
        )
        mr_spawn "healthcheck-$region" "$bin" --config "$MR_STATE/conf/healthcheck-$region.json"
    done < <(regions_listeners healthcheck)
    while IFS=$'\t' read -r _ region _ host port; do
        mr_wait_port "healthcheck-$region" "$host" "$port" 20 ||
            mr_die "healthcheck-$region did not start"
        mr_wait_ready "healthcheck-$region" "$host" "$port" 30 ||
            mr_die "healthcheck-$region did not become ready"
        mr_info "  healthcheck-$region ready: dashboard http://$host:$port/"
    done < <(regions_listeners healthcheck)
}
