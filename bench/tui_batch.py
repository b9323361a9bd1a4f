"""The terminal app's cost to take a batch of 1,000 new rows when the store holds N rows.

    python bench/tui_batch.py [--lines 1000000] [--batch 1000] [--runs 30]

What the app does per batch (tui/backend.py, tui/table.py, tui/app.py): the ingest thread calls
``store.append_batch(events)``; the UI thread then filters the new positions into the visible view
(``store.filter_rows(filter, new)``) and, when the facet panel shows, recounts the facets of the view
(``store.facets(rows=view)``). Timed with no filter and with a filter active.
Target (issue 7): the UI thread's part under 10 ms.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    common.need_store()
    from s3tail.core.event import Event
    from s3tail.core.filter import compile_filter
    from s3tail.core.ingest import iter_items
    common.header("terminal app: one batch of new rows at N rows")
    path = common.data_file(args.lines)
    store = common.load_store(path)
    extra = common.data_file(20_000, seed=2)
    new_events = [i for i in iter_items([str(extra)], workers=1) if type(i) is Event]
    batches = [new_events[i:i + args.batch] for i in range(0, len(new_events), args.batch)][:args.runs]
    print(f"rows before: {len(store):,} ({path.name}); {len(batches)} batches of {args.batch}\n")
    for label, text in (("no filter", ""), ("filter status:4xx", "status:4xx")):
        flt = compile_filter(text)
        view = np.asarray(store.filter(flt), dtype=np.int64)
        app, ui_filter, ui_facets = [], [], []
        for b in batches:
            t0 = time.perf_counter()
            positions = store.append_batch(b)
            t1 = time.perf_counter()
            if positions is None:
                positions = np.arange(len(store) - len(b), len(store), dtype=np.int64)
            add = np.asarray(store.filter_rows(flt, positions), dtype=np.int64)
            view = np.concatenate((view, add))
            t2 = time.perf_counter()
            store.facets(rows=view if text else None, top=8)
            t3 = time.perf_counter()
            app.append(t1 - t0)
            ui_filter.append(t2 - t1)
            ui_facets.append(t3 - t2)
        ui = [a + b for a, b in zip(ui_filter, ui_facets)]
        ms = lambda xs: common.spread([x * 1e3 for x in xs], "{:.2f}")  # noqa: E731
        print(f"{label}: rows now {len(store):,}")
        print(f"  append_batch (ingest thread) ms: {ms(app)}")
        print(f"  filter_rows (UI) ms:             {ms(ui_filter)}")
        print(f"  facets (UI) ms:                  {ms(ui_facets)}")
        print(f"  UI thread total ms:              {ms(ui)}  target < 10 ms: "
              f"{'met' if statistics.median(ui) < 0.010 else 'NOT met'}")
    print(f"load average at end: {common.load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
