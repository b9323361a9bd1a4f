"""Filter latency and facet recount at N rows held in the store.

    python bench/filters.py [--lines 1000000] [--runs 7]

Loads the generated file into one store (no rules), then times ``store.filter(compile_filter(TEXT))``
for each filter (compile included, as in the app per key press) and ``store.facets(rows=...)`` over a
filtered view and over everything. Medians with min-max over --runs; the first run is a warm-up.
Targets (issue 7): status+bucket, requester glob and CIDR < 30 ms; fuzzy word < 300 ms; facets < 50 ms.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

FILTERS = [
    ("status+bucket", "status:403 bucket:acme-datalake-raw", 0.030),
    ("requester glob", "requester:*ecs-task*", 0.030),
    ("ip CIDR", "ip:10.20.0.0/16", 0.030),
    ("fuzzy word", "sagemakr", 0.300),
]


def timed(fn, runs: int) -> tuple[list[float], object]:
    out = fn()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return ts, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    common.need_store()
    from s3tail.core.filter import compile_filter
    common.header("filters and facets at N rows")
    path = common.data_file(args.lines)
    t0 = time.perf_counter()
    store = common.load_store(path)
    print(f"rows: {len(store):,} ({path.name}), loaded in {time.perf_counter() - t0:.1f} s\n")
    ok = True
    rows = None
    for name, text, target in FILTERS:
        ts, rows_ = timed(lambda: store.filter(compile_filter(text)), args.runs)
        med = statistics.median(ts)
        ok &= med < target
        print(f"{name:15s} {text!r:45s} {len(rows_):>9,} rows  ms: "
              f"{common.spread([t * 1e3 for t in ts], '{:.1f}')}  target < {target * 1e3:.0f} ms")
        if name == "status+bucket":
            rows = rows_
    for label, view in (("facets, filtered view", rows), ("facets, all rows", None)):
        ts, _ = timed(lambda: store.facets(rows=view, top=8), args.runs)
        ok &= statistics.median(ts) < 0.050
        print(f"{label:22s} ms: {common.spread([t * 1e3 for t in ts], '{:.1f}')}  target < 50 ms")
    print(f"\nall targets: {'met' if ok else 'NOT all met'}; load average at end: {common.load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
