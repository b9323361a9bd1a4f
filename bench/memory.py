"""Resident memory per row held: RSS of a process holding N rows in the store, minus the same process
with an empty store (imports done, parser warmed).

    python bench/memory.py [--lines 1000000] [--runs 3]

Each run is a fresh process: import everything, make an empty store, measure RSS; ingest N lines as the
app does (column batches from the C scanner, ``EventStore.append_columns``; no rules), drop every
parse-time object but the pipeline's value tables (``columns.Dicts`` and the scanner's hash tables, which
the app keeps), ``gc.collect()``, measure RSS again.
Target (issue 7): at most 150 bytes per row.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def worker(path: str) -> None:
    EventStore = common.need_store()
    from s3tail.core.columns import Dicts
    from s3tail.core.ingest import iter_column_batches
    store = EventStore(max_rows=10_000_000)
    dicts = Dicts()
    gc.collect()
    empty = common.rss_bytes()
    for batch in iter_column_batches([path], dicts):
        store.append_columns(batch)
    batch = None
    gc.collect()
    full = common.rss_bytes()
    nbytes = store.nbytes() if hasattr(store, "nbytes") else None
    print(json.dumps({"rows": len(store), "empty": empty, "full": full, "nbytes": nbytes}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker)
        return 0
    common.need_store()
    common.header("memory: resident bytes per row held in the store")
    path = common.data_file(args.lines)
    rs = []
    for _ in range(args.runs):
        out = subprocess.run([sys.executable, __file__, "--worker", str(path)], check=True, capture_output=True,
                             text=True).stdout
        rs.append(json.loads(out.strip().splitlines()[-1]))
    rows = rs[0]["rows"]
    per_row = [(r["full"] - r["empty"]) / rows for r in rs]
    print(f"rows held: {rows:,} ({path.name})")
    print(f"RSS empty store:   {common.spread([r['empty'] / 2**20 for r in rs], '{:.0f}', ' MiB')}")
    print(f"RSS with rows:     {common.spread([r['full'] / 2**20 for r in rs], '{:.0f}', ' MiB')}")
    print(f"bytes per row:     {common.spread(per_row, '{:.0f}')}")
    if rs[0]["nbytes"] is not None:
        print(f"store.nbytes()/row: {common.spread([r['nbytes'] / rows for r in rs], '{:.0f}')}")
    import statistics
    print(f"target <= 150 bytes/row: {'met' if statistics.median(per_row) <= 150 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
