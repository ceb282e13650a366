#!/usr/bin/env bash
# tests/terraform/run.sh fmt|topology|hcl SOURCE_DIR
#   fmt       terraform fmt -check -recursive terraform/
#   topology  terraform init -backend=false + terraform test in modules/topology
#             (no provider: runs offline; state and plugins in a temp dir)
#   hcl       node --test check_hcl.test.mjs: static checks of the modules
#             that need providers (installs @cdktf/hcl2json with npm ci into
#             tests/terraform/node_modules when it is missing)
# A missing tool (terraform, node, npm) fails the test: it never skips.
set -euo pipefail
mode=${1:?usage: run.sh fmt|topology|hcl SOURCE_DIR}
src=$(cd "${2:?usage: run.sh fmt|topology|hcl SOURCE_DIR}" && pwd)
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
