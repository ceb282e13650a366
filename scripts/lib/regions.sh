# shellcheck shell=bash
# Reading the regions file from shell through `meridian-regions listeners`
# (tab-separated KIND REGION ID HOST PORT), so scripts need no JSON parser.
# Needs MR_REGIONS (the file) and MR_REGIONS_BIN (the program).

# regions_listeners [KIND...]: the listener lines, optionally of some kinds only.
regions_listeners() {
    local kinds=" $* "
    "$MR_REGIONS_BIN" listeners "$MR_REGIONS" | while IFS=$'\t' read -r kind region id host port; do
        if [[ $kinds == "  " || $kinds == *" $kind "* ]]; then
            printf '%s\t%s\t%s\t%s\t%s\n' "$kind" "$region" "$id" "$host" "$port"
        fi
    done
}

# regions_names: region names in file order.
regions_names() {
    regions_listeners nats-client | cut -f2 | awk '!seen[$0]++'
}

# regions_nats_urls REGION: comma-separated client URLs of the region's NATS servers.
regions_nats_urls() {
    regions_listeners nats-client | awk -F'\t' -v r="$1" '
        $2 == r { printf "%snats://%s:%s", n++ ? "," : "", $4, $5 } END { print "" }'
}

# regions_check_ports KIND...: fail listing every listener of these kinds that is taken.
regions_check_ports() {
    local kind region id host port busy=0
    while IFS=$'\t' read -r kind region id host port; do
        if mr_port_busy "$host" "$port"; then
            mr_warn "$host:$port ($kind $region $id) is already in use"
            busy=1
        fi
    done < <(regions_listeners "$@")
    return "$busy"
}
