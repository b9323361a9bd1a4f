"""Parser throughput: lines/s, MB/s and peak RSS, pure Python against the C fast path.

    python bench/parse.py [--lines 1000000] [--runs 3] [--pure-lines N]

The file is ``../shared/tools/gen_s3_access_logs.py --seed 1 --lines N`` (made once under bench/data/).
Each run is a fresh process (the pure one with ``S3TAIL_PURE_PYTHON=1``) reading the whole file and
parsing every line, through two paths: ``reader`` (``reader.iter_sources``, one line at a time, what
``s3tail parse`` uses) and ``block`` (``ingest.iter_batches`` in one process: the C ``parse_block``).
Target (issue 2): at least 300,000 lines/s in one process.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def worker(path: str, how: str) -> None:
    from s3tail.core import access_log
    from s3tail.core.event import Event
    from s3tail.core.ingest import iter_batches
    from s3tail.core.reader import iter_sources
    n = bad = 0
    with common.Timer() as t:
        if how == "reader":
            for item in iter_sources([path]):
                if type(item) is Event:
                    n += 1
                else:
                    bad += 1
        else:
            for batch in iter_batches([path], workers=1):
                k = sum(1 for i in batch if type(i) is Event)
                n += k
                bad += len(batch) - k
    print(json.dumps({"wall": t.wall, "cpu": t.cpu, "events": n, "other": bad, "c": access_log.SPEEDUPS,
                      "peak_rss_mb": common.peak_rss_mb()}))


def run(path, how: str, pure: bool) -> dict:
    env = dict(os.environ, S3TAIL_PURE_PYTHON="1" if pure else "0")
    out = subprocess.run([sys.executable, __file__, "--worker", how, str(path)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--pure-lines", type=int, default=None, help="lines for the pure-Python runs (default --lines)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker[1], args.worker[0])
        return 0
    common.header("parse: lines/s, pure Python vs C")
    results = {}
    for label, how, pure, lines in [("C, block (ingest)", "block", False, args.lines),
                                    ("C, reader (s3tail parse)", "reader", False, args.lines),
                                    ("pure Python, reader", "reader", True, args.pure_lines or args.lines)]:
        path = common.data_file(lines)
        mb = path.stat().st_size / 1e6
        rs = [run(path, how, pure) for _ in range(args.runs)]
        assert all(r["c"] is (not pure) for r in rs)
        n = rs[0]["events"] + rs[0]["other"]
        walls, cpus = [n / r["wall"] for r in rs], [n / r["cpu"] for r in rs]
        results[label] = (walls, cpus)
        print(f"\n{label}: {n:,} lines ({mb:.0f} MB, {path.name}), {rs[0]['other']} not events")
        print(f"  lines/s (wall): {common.spread(walls, '{:,.0f}')}")
        print(f"  lines/s (cpu):  {common.spread(cpus, '{:,.0f}')}")
        print(f"  MB/s (wall):    {common.spread([w * mb / n for w in walls], '{:.1f}')}")
        print(f"  peak RSS:       {common.spread([r['peak_rss_mb'] for r in rs], '{:.0f}', ' MB')}")
    import statistics as s
    pure_w = s.median(results["pure Python, reader"][0])
    pure_c = s.median(results["pure Python, reader"][1])
    for label in ("C, block (ingest)", "C, reader (s3tail parse)"):
        w, c = results[label]
        print(f"\nratio {label} / pure: wall x{s.median(w) / pure_w:.2f}, cpu x{s.median(c) / pure_c:.2f}")
    # The target is for parsing in one process: the `s3tail parse` path (reader + C parser),
    # judged on its wall-clock median; the ingest block path is reported beside it.
    for label in ("C, reader (s3tail parse)", "C, block (ingest)"):
        rate = s.median(results[label][0])
        print(f"target >= 300,000 lines/s in one process, {label}: "
              f"{'met' if rate >= 300_000 else 'NOT met'} (wall median {rate:,.0f})")
    print(f"load average at end: {common.load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
