#!/usr/bin/env python3
"""Lint the observability pack against what the daemons really export.

    check_queries.py --metrics relay.prom control.prom agent.prom \
        --dashboard meridian-overview.json --rules meridian-alerts.yml \
        [--rules-test meridian-alerts.test.yml] [--promtool promtool]

Fails (exit 1, one line per problem) when
  - a dashboard panel or variable, or an alert rule, names a metric that no
    /metrics text given with --metrics declares (# TYPE; histograms count
    with their _bucket, _sum and _count series);
  - a panel has no query;
  - with --promtool: a panel's query is not valid PromQL (the queries are
    checked as recording rules by `promtool check rules`, Grafana's
    variables replaced by plain values);
  - with --rules-test: an alert has no unit test that expects it to fire.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

# Series Prometheus makes itself rather than scraping them.
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "ALERTS"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
            "group_left", "group_right", "inf", "nan", "Inf", "NaN"}
GRAFANA_VARS = [(r"\$__rate_interval", "5m"), (r"\$__interval", "1m"), (r"\$__range", "1h"),
                (r"\$\{[A-Za-z_]+\}", ".*"), (r"\$[A-Za-z_]+", ".*")]


def exported_names(paths):
    names = set()
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                m = re.match(r"# TYPE (\S+) (\S+)", line)
                if not m:
                    continue
                name, kind = m.groups()
                names.add(name)
                if kind in ("histogram", "summary"):
                    names.update({name + "_sum", name + "_count"})
                if kind == "histogram":
                    names.add(name + "_bucket")
    return names


def grafana_to_promql(expr):
    for pat, repl in GRAFANA_VARS:
        expr = re.sub(pat, repl, expr)
    return expr


def metric_names(expr):
    """The metric names a PromQL expression selects (a lexer's view, enough for our queries)."""
    e = grafana_to_promql(expr)
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', e)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        tok = m.group(0)
        if tok in KEYWORDS:
            continue
        if m.start() > 0 and (e[m.start() - 1].isdigit() or e[m.start() - 1] == "."):
            continue  # the exponent or unit of a number (1e3, 5m)
        if re.match(r"\s*\(", e[m.end():]):
            continue  # a function
        names.add(tok)
    return names


def walk_panels(panels):
    for p in panels:
        yield p
        yield from walk_panels(p.get("panels", []))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--metrics", nargs="+", required=True)
    ap.add_argument("--dashboard", required=True)
    ap.add_argument("--rules", required=True)
    ap.add_argument("--rules-test")
    ap.add_argument("--promtool")
    a = ap.parse_args()

    known = exported_names(a.metrics) | SYNTHETIC
    problems = []
    checked = set()

    def check(where, expr):
        for name in sorted(metric_names(expr)):
            checked.add(name)
            if name not in known:
                problems.append(f"{where}: {name} is not exported by any daemon")

    with open(a.dashboard, encoding="utf-8") as f:
        dash = json.load(f)
    queries = []
    for p in walk_panels(dash.get("panels", [])):
        if p.get("type") == "row":
            continue
        targets = [t for t in p.get("targets", []) if t.get("expr")]
        if not targets:
            problems.append(f"dashboard panel \"{p.get('title')}\": no query")
        for t in targets:
            check(f"dashboard panel \"{p.get('title')}\" ({t.get('refId')})", t["expr"])
            queries.append((p.get("title"), t["expr"]))
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        if isinstance(q, dict):
            q = q.get("query")
        m = re.match(r"\s*label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,", q or "")
        if m:
            check(f"dashboard variable ${v.get('name')}", m.group(1))

    with open(a.rules, encoding="utf-8") as f:
        rules = yaml.safe_load(f)
    alerts = []
    for g in rules["groups"]:
        for r in g["rules"]:
            name = r.get("alert") or r.get("record")
            check(f"rule {name}", r["expr"])
            if "alert" in r:
                alerts.append(r["alert"])

    if a.rules_test:
        with open(a.rules_test, encoding="utf-8") as f:
            tests = yaml.safe_load(f)
        firing = set()
        for t in tests.get("tests", []):
            for c in t.get("alert_rule_test", []):
                if c.get("exp_alerts"):
                    firing.add(c["alertname"])
        for name in alerts:
            if name not in firing:
                problems.append(f"alert {name}: no unit test expects it to fire")

    if a.promtool and queries:
        doc = {"groups": [{"name": "dashboard", "rules": [
            {"record": f"dashboard:query_{i}", "expr": grafana_to_promql(e)}
            for i, (_, e) in enumerate(queries)]}]}
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as tmp:
            yaml.safe_dump(doc, tmp)
        try:
            r = subprocess.run([a.promtool, "check", "rules", tmp.name], capture_output=True,
                               text=True)
            if r.returncode != 0:
                problems.append("dashboard queries are not valid PromQL:\n" + r.stdout + r.stderr)
        finally:
            os.unlink(tmp.name)

    for p in problems:
        print(f"FAIL: {p}")
    print(f"check_queries: {len(queries)} dashboard queries, {len(alerts)} alerts, "
          f"{len(checked)} metric names checked against {len(known)} exported; "
          f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
