"""The rules' cost per call during a live follow: does it stay flat as event time goes on?

The demo's traffic (few actors, each sending many requests) restamped at ``--rate`` lines per second of
event time, read as the terminal app reads a followed file (blocks of lines, column batches) and given
to ``RuleEngine.process_columns`` in calls of ``--call`` rows, as the app does. Prints the time of
every tenth call and the median, p95 and max: a cost that grows with the rows seen is a cost that grows
with what the windows hold (10 minutes of event time). Last, the memory of the request counts the
share rules keep (2 h 10 min of event time: bounded by compaction, not by the rows).

    python bench/rules_live.py [--lines 300000] [--rate 20000] [--call 5000] [--traffic demo|generated]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=300_000)
    ap.add_argument("--rate", type=int, default=20_000, help="lines per second of event time")
    ap.add_argument("--call", type=int, default=5000, help="rows per rules call (the app: 5000)")
    ap.add_argument("--traffic", choices=("demo", "generated"), default="demo")
    a = ap.parse_args()
    common.header("rules per call during a live follow")
    from s3tail.core.cli import tune_gc
    from s3tail.core.columns import Dicts
    from s3tail.core.demo import DemoTraffic
    from s3tail.core.ingest import coalesce, iter_column_batches_of
    from s3tail.core.reader import RawBlock
    from s3tail.core.rules import RuleEngine

    tune_gc()
    if a.traffic == "demo":
        lines = DemoTraffic(seed=3).lines(50_000, time.time() - 600)
    else:
        with common.data_file(200_000).open() as fh:
            lines = [next(fh).rstrip("\n") for _ in range(50_000)]
    parts = [(line[:line.index("[") + 1], line[line.index("]"):]) for line in lines]
    start = time.time() - 3600
    items, offset = [], 0
    for k in range(0, a.lines, a.call):
        chunk = []
        for i in range(k, min(a.lines, k + a.call)):
            stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(start + i / a.rate))
            head, tail = parts[i % len(parts)]
            chunk.append(head + stamp + tail)
        data = ("\n".join(chunk) + "\n").encode()
        items.append(RawBlock(data, "live.log", k + 1, offset))
        offset += len(data)
    dicts = Dicts()
    batches = [b for b in iter_column_batches_of(items, dicts, 2500) if b.n]
    engine = RuleEngine({})
    times = []
    for joined in coalesce(batches, a.call):
        t0 = time.perf_counter()
        engine.process_columns(joined)
        engine.pop_closed()
        times.append((time.perf_counter() - t0) * 1000)
    print(f"{len(times)} calls of {a.call:,} rows, {a.lines / a.rate:.0f} s of event time, "
          f"{len(engine.findings()):,} findings")
    print("ms per call, every tenth: " + " ".join(f"{t:.0f}" for t in times[::10]))
    s = sorted(times)
    print(f"median {statistics.median(s):.1f} ms, p95 {s[int(len(s) * 0.95) - 1]:.1f}, max {s[-1]:.1f}; "
          f"first tenth {statistics.median(times[:max(1, len(times) // 10)]):.1f}, "
          f"last tenth {statistics.median(times[-max(1, len(times) // 10):]):.1f}")
    held = sum(a.nbytes for _, _, c, _ in engine._req_chunks
               for a in (getattr(c, name, None) for name in ("actor", "bid", "ids", "piece", "counts"))
               if a is not None)
    print(f"request counts held for the share rules: {held / 2**20:.1f} MiB of arrays "
          f"({len(engine._req_chunks)} batches)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
