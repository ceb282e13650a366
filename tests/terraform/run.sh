#!/usr/bin/env bash
# tests/terraform/run.sh fmt|topology|hcl SOURCE_DIR
#   fmt       terraform fmt -check -recursive terraform/ (and the test harnesses)
#   topology  terraform init -backend=false + terraform test in modules/topology
#             (no provider: runs offline; state and plugins in a temp dir)
#   render    renders region-aws's cloud-init bootstrap template (render/,
#             no provider) with terraform: `terraform test` asserts on its
#             text and `bash -n` checks every rendered script
#   crosscheck REGIONS_BIN DNS_DUMP_BIN: for each regions file of the
#             repository, the C loader (meridian-regions check) and the
#             topology module agree it is valid, give the same healthy-case
#             answer per geography (meridian-regions route), the same
#             PowerDNS LUA record and Route 53 records (geolocation sets:
#             set identifiers, locations, TTL, values; region names) as the
#             health agent (hc_dns_dump), and
#             the same NATS permissions per role and region as
#             `meridian-regions nats-permissions`; nats-server -t accepts
#             every rendered nats-server config (with keys from
#             `meridian-regions nkeys` and certificates made here);
#             RELAY_BIN, CONTROL_BIN and HEALTHCHECK_BIN accept (--check) the
#             configs the module derives for every region
#   hcl       node --test check_hcl.test.mjs: static checks of the modules
#             that need providers (installs @cdktf/hcl2json with npm ci into
#             tests/terraform/node_modules when it is missing)
# A missing tool (terraform, node, npm) fails the test: it never skips.
set -euo pipefail
usage="usage: run.sh fmt|topology|render|crosscheck|hcl SOURCE_DIR [REGIONS_BIN DNS_DUMP_BIN RELAY_BIN CONTROL_BIN HEALTHCHECK_BIN]"
mode=${1:?$usage}
src=$(cd "${2:?$usage}" && pwd)
here=$src/tests/terraform

need() {
    command -v "$1" >/dev/null || { echo "FAIL: $1 is not installed; $2"; exit 1; }
}

case $mode in
fmt)
    need terraform "install terraform (scripts/deps)"
    for d in "$src/terraform" "$here/render" "$here/crosscheck"; do
        if ! out=$(terraform fmt -check -recursive -diff "$d" 2>&1); then
            echo "$out"
            echo "FAIL: terraform fmt -check -recursive ${d#"$src"/} (run: terraform fmt -recursive ${d#"$src"/})"
            exit 1
        fi
    done
    echo "terraform fmt: 1 passed, 0 failed"
    ;;
topology)
    need terraform "install terraform (scripts/deps)"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    export TF_DATA_DIR=$tmp/data TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1
    cd "$src/terraform/modules/topology"
    terraform init -backend=false -input=false -no-color > "$tmp/init.log" 2>&1 || { cat "$tmp/init.log"; echo "FAIL: terraform init"; exit 1; }
    terraform test -no-color
    ;;
render)
    need terraform "install terraform (scripts/deps)"
    need python3 "install python3"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    export TF_DATA_DIR=$tmp/data TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1
    cd "$here/render"
    terraform init -backend=false -input=false -no-color > "$tmp/init.log" 2>&1 || { cat "$tmp/init.log"; echo "FAIL: terraform init"; exit 1; }
    terraform test -no-color
    terraform apply -auto-approve -input=false -no-color -state="$tmp/render.tfstate" > "$tmp/apply.log" 2>&1 || { cat "$tmp/apply.log"; echo "FAIL: terraform apply (render)"; exit 1; }
    terraform output -state="$tmp/render.tfstate" -json scripts > "$tmp/scripts.json"
    python3 - "$tmp" <<'PY'
import json, sys
tmp = sys.argv[1]
for name, text in json.load(open(f"{tmp}/scripts.json")).items():
    open(f"{tmp}/{name}.sh", "w").write(text)
    print(name)
PY
    fail=0
    n=0
    for f in "$tmp"/*.sh; do
        n=$((n + 1))
        if bash -n "$f"; then echo "bash -n $(basename "$f"): ok"; else echo "FAIL: bash -n $(basename "$f")"; fail=$((fail + 1)); fi
    done
    echo "rendered scripts: $((n - fail)) passed, $fail failed"
    [ "$fail" -eq 0 ]
    ;;
crosscheck)
    need terraform "install terraform (scripts/deps)"
    need nats-server "install nats-server (scripts/deps)"
    need python3 "install python3"
    regions_bin=${3:?$usage}
    dns_bin=${4:?$usage}
    relay_bin=${5:?$usage}
    control_bin=${6:?$usage}
    healthcheck_bin=${7:?$usage}
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    # Secrets the derived configs refer to (under /etc/meridian on hosts).
    mkdir -p "$tmp/etc/nats" "$tmp/nats-tls"
    head -c 48 /dev/urandom | base64 > "$tmp/etc/token.secret"
    head -c 32 /dev/urandom | base64 > "$tmp/etc/api_keys"
    head -c 32 /dev/urandom | base64 > "$tmp/etc/relay_admin.key"
    # NATS TLS: the servers' CA and certificate (/etc/nats/tls on NATS hosts),
    # the daemons' client CA and certificates (/etc/meridian/nats).
    need openssl "install openssl (scripts/deps)"
    mkca() {
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$1.key" \
            -out "$1.pem" -days 2 -subj "/CN=$2" -addext basicConstraints=critical,CA:TRUE \
            -addext keyUsage=critical,keyCertSign,cRLSign >> "$tmp/openssl.log" 2>&1
    }
    mkcert() { # CA OUT USAGE
        printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\nsubjectAltName=IP:127.0.0.1\n' "$3" > "$2.ext"
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$2.key" -out "$2.csr" \
            -subj "/CN=$(basename "$2")" >> "$tmp/openssl.log" 2>&1 &&
            openssl x509 -req -in "$2.csr" -CA "$1.pem" -CAkey "$1.key" -CAcreateserial -out "$2.pem" \
                -days 2 -extfile "$2.ext" >> "$tmp/openssl.log" 2>&1
    }
    { mkca "$tmp/nats-tls/ca" "servers" && mkca "$tmp/nats-tls/client-ca" "clients" &&
        mkcert "$tmp/nats-tls/ca" "$tmp/nats-tls/server" "serverAuth,clientAuth" &&
        cp "$tmp/nats-tls/ca.pem" "$tmp/etc/nats/ca.pem" &&
        for role in relay control healthcheck; do mkcert "$tmp/nats-tls/client-ca" "$tmp/etc/nats/$role" clientAuth || exit 1; done &&
        # The control API's own TLS (https:// api_url): config_dir/tls/control.crt and .key.
        mkdir -p "$tmp/etc/tls" && mkcert "$tmp/nats-tls/ca" "$tmp/etc/tls/control" serverAuth &&
        mv "$tmp/etc/tls/control.pem" "$tmp/etc/tls/control.crt"; } ||
        { cat "$tmp/openssl.log"; echo "FAIL: openssl"; exit 1; }
    export TF_DATA_DIR=$tmp/data TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1
    cd "$here/crosscheck"
    terraform init -backend=false -input=false -no-color > "$tmp/init.log" 2>&1 || { cat "$tmp/init.log"; echo "FAIL: terraform init"; exit 1; }
    fail=0
    pass=0
    for f in "$src"/regions/*.json "$src"/terraform/examples/*/regions.json \
        "$src"/terraform/modules/topology/tests/fixtures/*.json "$src"/packaging/config/regions.json; do
        [ -f "$f" ] || continue
        name=${f#"$src"/}
        if ! out=$("$regions_bin" check "$f" 2>&1); then
            echo "FAIL: meridian-regions check $name: $out"; fail=$((fail + 1)); continue
        fi
        state=$tmp/$(echo "$name" | tr / _).tfstate
        # The region's keys as meridian-regions makes them; the daemons read the seeds.
        rm -rf "$tmp/nkeys" && "$regions_bin" nkeys "$f" --dir "$tmp/nkeys" > "$tmp/nkeys.txt"
        python3 - "$tmp" <<'PY'
import json, sys
tmp = sys.argv[1]
keys = {}
for line in open(f"{tmp}/nkeys.txt"):
    role, region, pub = line.split()
    keys[f"{role}-{region}"] = pub
json.dump({"nats_nkeys": keys}, open(f"{tmp}/nkeys.tfvars.json", "w"))
PY
        for role in relay control healthcheck; do
            nks=("$tmp"/nkeys/"$role"-*.nk)
            cp "${nks[0]}" "$tmp/etc/nats/$role.nk"
        done
        "$regions_bin" nats-permissions "$f" > "$tmp/permissions.json"
        if ! terraform apply -auto-approve -input=false -no-color -state="$state" -var "regions_file=$f" -var-file="$tmp/nkeys.tfvars.json" > "$tmp/apply.log" 2>&1; then
            cat "$tmp/apply.log"; echo "FAIL: topology module rejects $name"; fail=$((fail + 1)); continue
        fi
        terraform output -state="$state" -json > "$tmp/out.json"
        cp "$f" "$tmp/etc/regions.json" # the healthcheck config reads it
        "$regions_bin" route "$f" > "$tmp/route.txt"
        "$dns_bin" lua "$f" > "$tmp/lua.txt"
        "$dns_bin" route53 "$f" > "$tmp/route53.xml"
        rm -rf "$tmp/nats" "$tmp/daemons" && mkdir "$tmp/nats" "$tmp/daemons"
        if python3 - "$tmp" "$name" <<'PY'
import json, re, sys
tmp, name = sys.argv[1], sys.argv[2]
out = json.load(open(f"{tmp}/out.json"))
geo = out["geo"]["value"]
c_geo, c_default = {}, None
for line in open(f"{tmp}/route.txt"):
    m = re.match(r"^(\S+)( \(default\))? -> (\S+): (.*)$", line.strip())
    if not m:
        sys.exit(f"unparsed meridian-regions route line: {line!r}")
    c_geo[m[1]] = m[4].split()
    if m[2]:
        c_default = m[1]
problems = []
if c_geo != geo:
    problems.append(f"answers differ: meridian-regions {c_geo} terraform {geo}")
agent_lua = open(f"{tmp}/lua.txt").read().rstrip("\n")
if agent_lua != out["lua"]["value"]:
    problems.append(f"PowerDNS LUA record differs:\n  agent:     {agent_lua}\n  terraform: {out['lua']['value']}")
# Route 53: the agent UPSERTs one A set per continent/country and "default";
# terraform must create exactly those sets (same identifiers and locations)
# or the agent's writes collide with them. The agent writes every address
# into A sets; IPv6 relays are compared on terraform's AAAA sets instead.
import ipaddress
import xml.etree.ElementTree as ET
ns = {"r": "https://route53.amazonaws.com/doc/2013-04-01/"}
agent_sets, agent_names = {}, {}
for rrs in ET.parse(f"{tmp}/route53.xml").getroot().iterfind(".//r:ResourceRecordSet", ns):
    values = sorted(v.text for v in rrs.iterfind(".//r:Value", ns) if ipaddress.ip_address(v.text).version == 4)
    ttl = int(rrs.findtext("r:TTL", namespaces=ns))
    geo = rrs.find("r:GeoLocation", ns)
    if geo is None:
        # A region's own name: a simple record.
        agent_names[rrs.findtext("r:Name", namespaces=ns)] = {"ttl": ttl, "values": values}
        continue
    agent_sets[rrs.findtext("r:SetIdentifier", namespaces=ns)] = {
        "location": (geo[0].tag.split("}")[1], geo[0].text), "ttl": ttl, "values": values,
    }
tf_names = {fqdn: {"ttl": out["ttl"]["value"], "values": sorted(a for a in addrs if ":" not in a)}
            for fqdn, addrs in out["region_names"]["value"].items()}
if agent_names != tf_names:
    problems.append(f"Route 53 region name records differ:\n  agent:     {agent_names}\n  terraform: {tf_names}")
tf_sets = {}
for set_id, rec in out["route53"]["value"].items():
    if rec["type"] != "A":
        continue
    loc = ("ContinentCode", rec["continent"]) if rec["continent"] else ("CountryCode", rec["country"])
    tf_sets[set_id] = {"location": loc, "ttl": out["ttl"]["value"], "values": sorted(rec["records"])}
if agent_sets != tf_sets:
    problems.append(f"Route 53 record sets differ:\n  agent:     {agent_sets}\n  terraform: {tf_sets}")
if c_default != out["default_region"]["value"]:
    problems.append(f"default region differs: {c_default} vs {out['default_region']['value']}")
c_perms = json.load(open(f"{tmp}/permissions.json"))["users"]
if c_perms != out["nats_permissions"]["value"]:
    problems.append(f"NATS permissions differ:\n  meridian-regions: {json.dumps(c_perms)}\n  terraform:        {json.dumps(out['nats_permissions']['value'])}")
for server, text in out["nats_conf"]["value"].items():
    open(f"{tmp}/nats/{server}.conf", "w").write(text.replace("/etc/nats/tls/", f"{tmp}/nats-tls/"))
def rooted(cfg):
    return json.loads(json.dumps(cfg).replace("/etc/meridian/", f"{tmp}/etc/"))
for region, cfg in out["relay_config"]["value"].items():
    cfg = rooted(cfg) | {"node_id": "i-0123456789abcdef0"}
    json.dump(cfg, open(f"{tmp}/daemons/relay-{region}.json", "w"))
for region, cfg in out["control_config"]["value"].items():
    cfg = rooted(cfg) | {"node": "i-0123456789abcdef0", "postgres": "host=127.0.0.1 dbname=meridian user=meridian"}
    json.dump(cfg, open(f"{tmp}/daemons/control-{region}.json", "w"))
# The host fills the placeholders from its secret files (region-aws/services.tf); so does
# this check, or --check rightly finds a 16-byte probe.secret.
token = open(f"{tmp}/etc/token.secret").read().strip()
for region, cfg in out["healthcheck_config"]["value"].items():
    text = json.dumps(rooted(cfg)).replace("__TOKEN_SECRET__", token)
    text = text.replace("__RELAY_ADMIN_KEY__", open(f"{tmp}/etc/relay_admin.key").read().strip())
    open(f"{tmp}/daemons/healthcheck-{region}.json", "w").write(text)
if problems:
    print(f"FAIL: {name}: " + "; ".join(problems))
    sys.exit(1)
PY
        then
            pass=$((pass + 1))
        else
            fail=$((fail + 1))
        fi
        for conf in "$tmp"/daemons/*.json; do
            [ -e "$conf" ] || continue
            case $(basename "$conf") in
            relay-*) bin=$relay_bin ;;
            control-*) bin=$control_bin ;;
            *) bin=$healthcheck_bin ;;
            esac
            if out=$("$bin" --check --config "$conf" 2>&1); then pass=$((pass + 1)); else echo "FAIL: $name: $(basename "$bin") --check rejects the derived $(basename "$conf"): $out"; fail=$((fail + 1)); fi
        done
        for conf in "$tmp"/nats/*.conf; do
            [ -e "$conf" ] || continue
            if out=$(nats-server -t -c "$conf" 2>&1); then pass=$((pass + 1)); else echo "FAIL: $name: nats-server -t $(basename "$conf"): $out"; fail=$((fail + 1)); fi
        done
    done
    echo "crosscheck: $pass passed, $fail failed"
    [ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
    ;;
hcl)
    need node "install nodejs (scripts/deps)"
    need npm "install npm (scripts/deps)"
    if [ ! -d "$here/node_modules/@cdktf/hcl2json" ]; then
        (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) || { echo "FAIL: npm ci in tests/terraform"; exit 1; }
    fi
    cd "$here"
    node --test --test-reporter=spec check_hcl.test.mjs
    ;;
*)
    echo "unknown mode $mode"
    exit 2
    ;;
esac
