"""Ingest: read, parse, every default rule and the columnar store, for N generated lines.

    python bench/ingest.py [--lines 1000000] [--runs 3]

Two ways per run, each in a fresh process: ``serial`` (one process: parse, rules, store in turn) and
``split`` (``s3tail.core.ingest.ingest``: a child process parses and runs the rules while this one parses
and fills the store, on two cores). Prints wall and CPU seconds, lines/s, medians with min-max.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def worker(path: str, split: bool | None) -> None:
    EventStore = common.need_store()
    from s3tail.core.ingest import ingest
    store = EventStore(max_rows=10_000_000)
    with common.Timer() as t:
        r = ingest([path], store, split=split)
    print(json.dumps({"wall": t.wall, "cpu": t.cpu, "events": r.events, "malformed": len(r.malformed),
                      "findings": len(r.findings), "rows": len(store), "split": r.split}))


def measure(path, split: bool, runs: int) -> list[dict]:
    out = []
    for _ in range(runs):
        res = subprocess.run([sys.executable, __file__, "--worker", "split" if split else "serial", str(path)],
                             capture_output=True, text=True)
        if res.returncode:
            sys.exit(f"bench: ingest worker failed ({res.returncode}):\n{res.stderr[-2000:]}")
        out.append(json.loads(res.stdout.strip().splitlines()[-1]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", choices=("serial", "split"))
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    from s3tail.core.cli import tune_gc
    tune_gc()  # the garbage collector's thresholds of the `s3tail` command
    if args.worker:
        worker(args.worker[1], None if args.worker[0] == "auto" else args.worker[0] == "split")
        return 0
    common.need_store()
    common.header("ingest: read + parse + all default rules + store")
    path = common.data_file(args.lines)
    medians = {}
    for mode in ("serial", "split"):
        if args.only and mode != args.only:
            continue
        rs = measure(path, mode == "split", args.runs)
        r0 = rs[0]
        print(f"\n{mode}: {r0['events']:,} events, {r0['malformed']} malformed, {r0['findings']:,} findings, "
              f"{r0['rows']:,} rows stored ({path.name})")
        print(f"  wall s:  {common.spread([r['wall'] for r in rs])}")
        print(f"  cpu s:   {common.spread([r['cpu'] for r in rs])}")
        print(f"  lines/s: {common.spread([r0['events'] / r['wall'] for r in rs], '{:,.0f}')}")
        import statistics
        medians[mode] = statistics.median(r["wall"] for r in rs)
    if len(medians) == 2:
        print(f"\nsplit / serial wall: {medians['split'] / medians['serial']:.2f}")
    print(f"load average at end: {common.load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
