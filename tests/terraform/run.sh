#!/usr/bin/env bash
# tests/terraform/run.sh fmt|topology|hcl SOURCE_DIR
#   fmt       terraform fmt -check -recursive terraform/
#   topology  terraform init -backend=false + terraform test in modules/topology
#             (no provider: runs offline; state and plugins in a temp dir)
#   render    renders region-aws's cloud-init bootstrap template (render/,
#             no provider) with terraform: `terraform test` asserts on its
#             text and `bash -n` checks every rendered script
#   hcl       node --test check_hcl.test.mjs: static checks of the modules
#             that need providers (installs @cdktf/hcl2json with npm ci into
#             tests/terraform/node_modules when it is missing)
# A missing tool (terraform, node, npm) fails the test: it never skips.
set -euo pipefail
usage="usage: run.sh fmt|topology|render|hcl SOURCE_DIR"
mode=${1:?$usage}
src=$(cd "${2:?$usage}" && pwd)
here=$src/tests/terraform

need() {
    command -v "$1" >/dev/null || { echo "FAIL: $1 is not installed; $2"; exit 1; }
}

case $mode in
fmt)
    need terraform "install terraform (scripts/deps)"
    if ! out=$(terraform fmt -check -recursive -diff "$src/terraform" 2>&1); then
        echo "$out"
        echo "FAIL: terraform fmt -check -recursive terraform/ (run: terraform fmt -recursive terraform/)"
        exit 1
    fi
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
