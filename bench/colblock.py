"""Columnar block scan throughput: ``colblock.from_block`` against ``ingest.parse_access_bytes`` (events).

    python bench/colblock.py [--lines 1000000] [--runs 3] [--block-mb 1] [--max-mb N]

The file is ``../shared/tools/gen_s3_access_logs.py --seed 1 --lines N`` (made once under bench/data/),
cut into blocks of about ``--block-mb`` MB ending at a newline, all read into memory first. Each run
reads every block once, in one process, with one fresh ``Dicts`` per run for ``from_block`` (so the run
pays for every first sight of a value, as an ingest does). Printed: lines/s as the median of the runs
(min-max), wall and CPU time, and microseconds per line. Target: from_block under 1.2 us per line.
Then the cost of ``find("uri", PROBE_LITERALS)`` (the web-probe rule's prefilter, asked of every batch)
over the batches of one more (untimed) run, in microseconds per line.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def blocks_of(path, block: int, max_bytes: int | None) -> list[bytes]:
    from s3tail.core.colblock import split_blocks
    data = path.read_bytes()
    if max_bytes is not None and len(data) > max_bytes:
        cut = data.rfind(b"\n", 0, max_bytes)
        data = data[:cut + 1] if cut >= 0 else data[:max_bytes]
    return split_blocks(data, block)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--block-mb", type=float, default=1.0)
    ap.add_argument("--max-mb", type=float, default=None, help="read only the first N MB of the file")
    args = ap.parse_args()

    from s3tail.core import access_log
    from s3tail.core.colblock import from_block
    from s3tail.core.columns import Dicts
    from s3tail.core.ingest import parse_access_bytes

    common.header("colblock.from_block vs parse_access_bytes (lines/s, one process)")
    if not access_log.SPEEDUPS:
        print("note: the C extension is off: from_block is the event path plus column building")
    path = common.data_file(args.lines)
    blocks = blocks_of(path, int(args.block_mb * 2**20), None if args.max_mb is None else int(args.max_mb * 2**20))
    lines = sum(b.count(b"\n") + (not b.endswith(b"\n")) for b in blocks)
    print(f"file: {path.name}, {sum(map(len, blocks)) / 2**20:.0f} MB, {lines} lines, {len(blocks)} blocks")

    def run_blocks(keep: list | None = None) -> int:
        dicts, rows, line = Dicts(), 0, 1
        for b in blocks:
            batch = from_block(b, "bench.log", line, 0, dicts)
            if keep is not None:
                keep.append(batch)
            rows += batch.n + len(batch.others)
            line += b.count(b"\n")
        return rows

    def run_events() -> int:
        return sum(len(parse_access_bytes(b, "bench.log", 1, 0, True)) for b in blocks)

    results = {}
    for name, fn in (("from_block", run_blocks), ("parse_access_bytes", run_events)):
        walls, cpus = [], []
        for _ in range(args.runs):
            with common.Timer() as t:
                got = fn()
            assert got == lines, (name, got, lines)
            walls.append(t.wall)
            cpus.append(t.cpu)
        results[name] = (walls, cpus)
        print(f"{name:>20}: wall {common.spread([lines / w for w in walls], '{:,.0f}', ' lines/s')}")
        print(f"{'':>20}  cpu  {common.spread([lines / c for c in cpus], '{:,.0f}', ' lines/s')}")
        print(f"{'':>20}  {common.spread([w / lines * 1e6 for w in walls], '{:.3f}', ' us/line wall')}")
    import statistics
    ratio = statistics.median(results["parse_access_bytes"][0]) / statistics.median(results["from_block"][0])
    print(f"from_block is {ratio:.2f}x the event path (median wall)")

    from s3tail.core.rules.builtin import PROBE_LITERALS
    batches: list = []
    run_blocks(batches)          # once more, untimed, keeping the batches (the timed runs keep none)
    walls, found = [], 0
    for _ in range(args.runs):
        with common.Timer() as t:
            found = sum(len(batch.find("uri", PROBE_LITERALS)) for batch in batches)
        walls.append(t.wall)
    print(f"{'find uri probes':>20}: {common.spread([w / lines * 1e6 for w in walls], '{:.4f}', ' us/line wall')}"
          f" ({found} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
