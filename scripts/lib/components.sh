# shellcheck shell=bash
# One start function per component of the local deployment. Each one reads
# what it needs from the regions file, writes its configuration under
# $MR_STATE/conf, starts its processes with mr_spawn (so scripts/down and a
# failed scripts/up stop them) and returns only when they listen. Each
# component also names the binaries it needs (COMPONENT_bins) and the
# listener kinds it binds (COMPONENT_ports) so scripts/up can check both
# before starting anything.

# ---- NATS: one nats-server per region server, gateways between regions, JetStream ----

nats_bins() { echo "nats-server"; }
nats_ports() { echo "nats-client nats-cluster nats-gateway nats-monitor"; }

nats_start() {
    local region id conf host port
    while IFS=$'\t' read -r _ region id _ _; do
        conf=$MR_STATE/conf/nats-$id.conf
        mkdir -p "$MR_STATE/data/nats-$id"
        "$MR_REGIONS_BIN" nats-conf "$MR_REGIONS" --region "$region" --server "$id" \
            --store-dir "$MR_STATE/data/nats-$id" --out "$conf"
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

# ---- relays: meridian-relay per relay endpoint, on its region's NATS ----

relay_bins() { echo "meridian-relay"; }
relay_ports() { echo "relay relay-admin"; }

relay_start() {
    local relay_bin secret region id host port
    relay_bin=$(mr_find_bin meridian-relay)
    secret=$MR_STATE/conf/jwt.secret
    if [[ ! -s $secret ]]; then
        (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$secret")
    fi
    declare -A admin
    while IFS=$'\t' read -r _ _ id host port; do
        admin[$id]="$host:$port"
    done < <(regions_listeners relay-admin)
    while IFS=$'\t' read -r _ region id host port; do
        cat >"$MR_STATE/conf/relay-$id.json" <<EOF
{
  "region": "$region",
  "node_id": "$id",
  "listen": "$host:$port",
  "admin_listen": "${admin[$id]}",
  "nats": ["$(regions_nats_urls "$region" | sed 's/,/", "/g')"],
  "auth": {"secret_file": "$secret"}
}
EOF
        mr_spawn "relay-$id" "$relay_bin" --config "$MR_STATE/conf/relay-$id.json"
    done < <(regions_listeners relay)
    while IFS=$'\t' read -r _ _ id host port; do
        mr_wait_port "relay-$id" "$host" "$port" 20
    done < <(regions_listeners relay)
}

# ---- not wired yet: the lead connects these once their daemons exist ----
# postgres (local.postgres), control (control-api/control-admin per region),
# healthcheck (one agent per region), dns (pdns_server on dns.nameservers[0]
# with its API on local.pdns_api). Selecting them fails with a clear message.

postgres_bins() { echo "runuser"; }
postgres_ports() { echo "postgres"; }
postgres_start() { mr_die "component 'postgres' is not wired into scripts/up yet"; }

control_bins() { echo "meridian-control"; }
control_ports() { echo "control-api control-admin"; }
control_start() { mr_die "component 'control' is not wired into scripts/up yet"; }

healthcheck_bins() { echo "meridian-healthcheck"; }
healthcheck_ports() { echo "healthcheck"; }
healthcheck_start() { mr_die "component 'healthcheck' is not wired into scripts/up yet"; }

dns_bins() { echo "pdns_server"; }
dns_ports() { echo "dns pdns-api"; }
dns_start() { mr_die "component 'dns' is not wired into scripts/up yet"; }
