#!/usr/bin/env bash
# The alert rules and the example scrape configuration of
# deploy/observability: promtool accepts them, every alert's unit test
# passes, and every alert has a test that expects it to fire.
set -euo pipefail
src=${1:?usage: test_rules.sh SOURCE_DIR}
dir=$src/deploy/observability/prometheus
command -v promtool >/dev/null || { echo "FAIL: promtool is missing (apt-get install prometheus; scripts/deps)"; exit 1; }
pass=0
fail=0
step() {
    local what=$1
    shift
    if out=$("$@" 2>&1); then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL: $what"
        echo "$out"
    fi
}
step "promtool check rules" promtool check rules "$dir/meridian-alerts.yml"
step "promtool test rules" promtool test rules "$dir/meridian-alerts.test.yml"
step "promtool check config" promtool check config "$dir/prometheus.example.yml"
# Every alert is tested: the coverage part of check_queries.py, on the
# declared names alone (the metric names are checked against real daemons
# by observability_metrics).
names=$(mktemp)
trap 'rm -f "$names"' EXIT
grep -ho 'meridian_[a-z_]*\|process_[a-z_]*' "$dir/meridian-alerts.yml" "$src/deploy/observability/grafana/meridian-overview.json" |
    sort -u | sed 's/^\(.*\)$/# TYPE \1 gauge\n# TYPE \1 histogram/' > "$names"
step "every alert has a firing unit test" python3 "$src/tests/observability/check_queries.py" \
    --metrics "$names" --dashboard "$src/deploy/observability/grafana/meridian-overview.json" \
    --rules "$dir/meridian-alerts.yml" --rules-test "$dir/meridian-alerts.test.yml" --promtool promtool
echo "observability rules: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
