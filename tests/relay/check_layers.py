#!/usr/bin/env python3
"""Check that relay/ reads in one direction (docs/architecture.md, "Layers of the relay").

Two graphs are built between relay modules (relay_x.c and relay_x.h are
module relay_x):

  includes  #include "relay_y.h" in relay/*.c and relay/*.h
  calls     symbols an object of librelay_core.a needs (nm: U) that another
            of its objects defines (nm: T, D, B, R, ...)

and both must satisfy, for every edge a -> b:

  - layer(b) < layer(a); or a and b share the base or the leaf layer, where
    modules may use each other as long as there is no cycle;
  - no cycle at all.

So features never call each other or a dispatcher, and nothing below calls
up. Every relay/*.c must be given a layer below, so a new file is placed
deliberately.

  check_layers.py --src relay/ --lib build/relay/librelay_core.a
  check_layers.py --self-test
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

# Bottom to top. Modules of one layer may not use each other, except in the
# layers named in SHARED (there only cycles are refused).
LAYERS = [
    ("base", ["relay", "relay_config", "relay_metrics", "relay_out", "relay_send", "relay_dedup",
              "relay_nats", "relay_hook", "relay_room"]),
    ("leaf", ["relay_frames", "relay_conn"]),
    ("delivery", ["relay_deliver"]),
    ("features", ["relay_publish", "relay_resume", "relay_repair", "relay_presence",
                  "relay_drain", "relay_reload", "relay_refresh", "relay_signal"]),
    ("dispatch", ["relay_client", "relay_inbound"]),
    ("server", ["relay_server"]),
    ("main", ["relay_main"]),
]
SHARED = {"base", "leaf"}


def layer_of(layers):
    out = {}
    for rank, (name, modules) in enumerate(layers):
        for m in modules:
            out[m] = (rank, name)
    return out


def include_graph(src):
    graph = {}
    for f in sorted(os.listdir(src)):
        if not f.endswith((".c", ".h")):
            continue
        mod = f.rsplit(".", 1)[0]
        graph.setdefault(mod, set())
        with open(os.path.join(src, f), encoding="utf-8") as fh:
            for line in fh:
                m = re.match(r'\s*#\s*include\s+"([^"]+)\.h"', line)
                if m and os.path.exists(os.path.join(src, m.group(1) + ".h")) \
                        and m.group(1) != mod:
                    graph[mod].add(m.group(1))
    return graph


def call_graph(lib):
    """Module -> modules whose symbols it uses, from nm on the static library."""
    out = subprocess.run(["nm", "-A", lib], check=True, capture_output=True, text=True).stdout
    defined, needed = {}, {}
    for line in out.splitlines():
        # "lib.a:relay_conn.c.o:0000000000000000 T relay_conn_send" or "... U lws_write"
        m = re.match(r"^[^:]+:([^:]+\.o):\s*(?:[0-9a-fA-F]+)?\s+([A-Za-z])\s+(\S+)$", line)
        if not m:
            continue
        obj, kind, sym = m.groups()
        mod = obj.split(".", 1)[0]
        needed.setdefault(mod, set())
        if kind == "U":
            needed[mod].add(sym)
        elif kind.isupper():
            defined[sym] = mod
    graph = {}
    for mod, syms in needed.items():
        graph[mod] = {defined[s] for s in syms if s in defined and defined[s] != mod}
    return graph


def find_cycle(graph):
    """One cycle as a list of modules, or None."""
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                c = visit(m)
                if c:
                    return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            c = visit(n)
            if c:
                return c
    return None


def check(kind, graph, layers):
    """Problems with `graph` (edges a -> b) as sentences; empty when it is layered."""
    problems = []
    where = layer_of(layers)
    for a in sorted(graph):
        if a not in where:
            problems.append(f"{kind}: {a} is in no layer (add it to LAYERS in {__file__})")
            continue
        for b in sorted(graph[a]):
            if b not in where:
                continue  # reported as a module of its own when it has edges
            (ra, la), (rb, lb) = where[a], where[b]
            if rb > ra:
                problems.append(f"{kind}: {a} ({la}) uses {b} ({lb}), a layer above it")
            elif rb == ra and la not in SHARED:
                problems.append(f"{kind}: {a} uses {b}, both in layer {la}")
    cycle = find_cycle(graph)
    if cycle:
        problems.append(f"{kind}: cycle " + " -> ".join(cycle))
    return problems


def self_test():
    """The checker must catch what it claims to catch."""
    layers = [("base", ["a", "b"]), ("features", ["f", "g"]), ("top", ["t"])]
    good = {"a": {"b"}, "b": set(), "f": {"a"}, "g": {"a", "b"}, "t": {"f", "g"}}
    assert check("calls", good, layers) == [], check("calls", good, layers)
    cases = {
        "cycle": ({"a": {"b"}, "b": {"a"}}, "cycle"),
        "sideways": ({"f": {"g"}, "g": set()}, "both in layer features"),
        "upwards": ({"a": {"f"}, "f": set()}, "a layer above it"),
        "unplaced": ({"x": {"a"}, "a": set()}, "is in no layer"),
    }
    for name, (graph, needle) in cases.items():
        problems = check("calls", graph, layers)
        assert any(needle in p for p in problems), f"{name}: {problems}"
    # The include parser sees a cycle through headers.
    with tempfile.TemporaryDirectory() as d:
        for f, text in {"a.c": '#include "a.h"\n#include "b.h"\n', "a.h": "",
                        "b.h": '#include "a.h"\n', "b.c": '#include "b.h"\n'}.items():
            with open(os.path.join(d, f), "w", encoding="utf-8") as fh:
                fh.write(text)
        g = include_graph(d)
        assert g == {"a": {"b"}, "b": {"a"}}, g
        assert find_cycle(g), g
    print("check_layers self-test: ok")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src")
    ap.add_argument("--lib")
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    if args.self_test:
        self_test()
        return 0
    if not args.src or not args.lib:
        ap.error("--src and --lib are required")
    problems = []
    inc = include_graph(args.src)
    sources = {f[:-2] for f in os.listdir(args.src) if f.endswith(".c")}
    where = layer_of(LAYERS)
    problems += [f"{m}.c is in no layer (add it to LAYERS in {__file__})"
                 for m in sorted(sources - set(where))]
    problems += check("includes", inc, LAYERS)
    calls = call_graph(args.lib)
    if len(calls) < 10:
        problems.append(f"calls: only {len(calls)} objects in {args.lib}; is it the relay's library?")
    problems += check("calls", calls, LAYERS)
    for p in problems:
        print(p)
    if problems:
        return 1
    edges = sum(len(v) for v in calls.values())
    print(f"relay/ is layered: {len(inc)} modules, {sum(len(v) for v in inc.values())} include "
          f"edges and {edges} call edges, all downwards, no cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
