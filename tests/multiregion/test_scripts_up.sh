#!/usr/bin/env bash
# scripts/up and scripts/down end to end: the whole local deployment from a
# copy of regions/local.json with free ports and a temporary state
# directory, then a message across regions with meridian-cli, the DNS answer
# for a client in us-east, a second scripts/up refused, and scripts/down
# --purge leaving no process, no listener and no state behind.
#
# Usage: test_scripts_up.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1
build=$2
tmp=$(mktemp -d /tmp/meridian-up-test-XXXXXX)
chmod 755 "$tmp" # the postgres user must reach its data directory
# The deployment runs from a build directory of links to the real one, except
# for a copy of the health agent, which the test "rebuilds" while it runs.
mkdir "$tmp/build"
for d in "$build"/*; do ln -s "$d" "$tmp/build/"; done
rm "$tmp/build/healthcheck"
mkdir "$tmp/build/healthcheck"
cp "$build/healthcheck/meridian-healthcheck" "$tmp/build/healthcheck/"
export MERIDIAN_BUILD=$tmp/build
state=$tmp/state
regions=$tmp/regions.json
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
cleanup() {
    "$src/scripts/down" --state "$state" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# Free ports below the ephemeral range (where the daemons' own outgoing
# connections could take them first); every relay shares one port.
python3 - "$src/regions/local.json" "$regions" <<'EOF'
import json, random, socket, sys
taken = set()
def free():
    for _ in range(1000):
        p = random.randrange(20000, 32000)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            s.close()
        if p not in taken:
            taken.add(p)
            return p
    sys.exit("no free port in 20000-31999")
r = json.load(open(sys.argv[1]))
relay_port = free()
for g in r["regions"]:
    for x in g["relays"]:
        admin = free()
        x["port"] = relay_port
        x["ws_url"] = "ws://%s:%d/" % (x["address"], relay_port)
        x["admin_url"] = "http://%s:%d" % (x["address"], admin)
    for n in g["nats"]["servers"]:
        for k in ("client_port", "cluster_port", "gateway_port", "monitor_port"):
            n[k] = free()
    c = g["control"]
    c["api_url"] = "http://%s:%d" % (c["address"], free())
    c["admin_url"] = "http://%s:%d" % (c["address"], free())
    host = g["healthcheck"]["url"].split("//")[1].split(":")[0]
    g["healthcheck"]["url"] = "http://%s:%d" % (host, free())
r["dns"]["nameservers"][0]["port"] = free()
r["local"]["postgres"] = "127.0.0.1:%d" % free()
r["local"]["pdns_api"] = "127.0.0.1:%d" % free()
json.dump(r, open(sys.argv[2], "w"), indent=2)
EOF

"$src/scripts/up" --no-build --detach --regions "$regions" --state "$state" >"$tmp/up.log" 2>&1 ||
    { cat "$tmp/up.log"; fail "scripts/up --detach failed"; }
[[ -s $state/endpoints.json ]] || fail "no endpoints.json"
grep -q 'Meridian is up' "$tmp/up.log" || fail "no ready message"

# A message from eu-west reaches a member in ap-south.
cli=$(find "$build" -name meridian-cli -type f -perm -u+x | head -n 1)
[[ -n $cli ]] || fail "meridian-cli not built"
read -r ap_url eu_url < <(python3 -c '
import json, sys
e = json.load(open(sys.argv[1]))["regions"]
print(e["ap-south"]["relays"][1]["ws_url"], e["eu-west"]["relays"][0]["ws_url"])' "$state/endpoints.json")
secret=$state/conf/jwt.secret
timeout 20 "$cli" tail --url "$ap_url" --secret-file "$secret" --sub bob --count 1 general \
    >"$tmp/tail.out" 2>"$tmp/tail.err" &
tail_pid=$!
for ((i = 0; i < 100; i++)); do
    grep -qs 'joined general' "$tmp/tail.err" && break
    sleep 0.1
done
grep -q 'joined general' "$tmp/tail.err" || fail "tail did not join: $(cat "$tmp/tail.err")"
"$cli" send --url "$eu_url" --secret-file "$secret" --sub alice general "across regions" >/dev/null ||
    fail "send failed"
wait "$tail_pid" || fail "tail did not get the message: $(cat "$tmp/tail.err")"
grep -q '"text":"across regions"' "$tmp/tail.out" || fail "wrong message: $(cat "$tmp/tail.out")"

# The lease-holding agent writes DNS: a client in us-east gets us-east's relays.
read -r dns_port < <(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["dns"]["nameservers"][0]["port"])' "$regions")
# An A query from a us-east source address, in python3 (dig is not among scripts/deps).
query_a() {
    python3 - "$1" "$2" "$3" <<'EOF' || true
import random, socket, struct, sys
src, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
qid = random.randrange(65536)
q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(l)]) + l.encode() for l in name.strip(".").split(".")) + b"\0"
q += struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, 0))
s.settimeout(1)
s.sendto(q, ("127.0.0.1", port))
r = s.recv(4096)
an = struct.unpack(">H", r[6:8])[0]
i = len(q)
ips = []
for _ in range(an):
    if r[i] & 0xC0 == 0xC0:
        i += 2
    else:
        while r[i]:
            i += r[i] + 1
        i += 1
    t, _, _, rdlen = struct.unpack(">HHIH", r[i:i + 10])
    i += 10
    if t == 1:
        ips.append(socket.inet_ntoa(r[i:i + 4]))
    i += rdlen
print(" ".join(sorted(ips)) + " ")
EOF
}
answer=
for ((i = 0; i < 150; i++)); do
    answer=$(query_a 127.2.0.99 "$dns_port" ws.meridian.test.)
    [[ $answer == "127.2.0.1 127.2.0.2 " ]] && break
    sleep 0.2
done
[[ $answer == "127.2.0.1 127.2.0.2 " ]] || fail "DNS for us-east answered '$answer'"

# A second scripts/up is refused and starts nothing.
if "$src/scripts/up" --no-build --detach --regions "$regions" --state "$state" >"$tmp/up2.log" 2>&1; then
    fail "second scripts/up succeeded"
fi
grep -q 'already running' "$tmp/up2.log" || fail "second scripts/up: $(cat "$tmp/up2.log")"

# A rebuild while it runs replaces the health agent's binary: the running
# agents' executable is then "... (deleted)", and scripts/down must still
# stop them (it once took them for strangers and left them running).
hc=$tmp/build/healthcheck/meridian-healthcheck
cp "$hc" "$hc.new" && mv "$hc.new" "$hc"

# Down with purge: no process of the state, no listener of the file, no state.
mapfile -t pids < <(cut -d' ' -f1 "$state"/pids/*.pid)
"$src/scripts/down" --state "$state" --purge >/dev/null || fail "scripts/down failed"
for p in "${pids[@]}"; do
    kill -0 "$p" 2>/dev/null && fail "pid $p still runs after scripts/down"
done
[[ ! -e $state ]] || fail "state not purged"
"$build"/regions/meridian-regions listeners "$regions" | while IFS=$'\t' read -r _ _ _ host port; do
    if ss -Hltn | awk -v a="$host:$port" '$4 == a { f = 1 } END { exit !f }'; then
        fail "$host:$port still listening"
    fi
done
echo "scripts/up test: ok"
