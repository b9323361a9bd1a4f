"""Helpers for the app's tests (and for timing the UI-thread work headlessly)."""
from __future__ import annotations

import time
from typing import Any, Callable


def screen_text(app: Any) -> str:
    """The text on the app's current screen, one line per row (no styles)."""
    return "\n".join("".join(seg.text for seg in strip)
                     for strip in app.screen._compositor.render_strips())


async def wait_until(pilot: Any, cond: Callable[[], Any], timeout: float = 10.0, what: str = "") -> None:
    """Poll ``cond`` while the app runs; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or cond}")
        await pilot.pause(0.05)


def bench_apply(rows: int = 1_000_000, batch: int = 1_000, repeats: int = 7,
                filter_text: str | None = None, late: bool = False) -> dict[str, float]:
    """Time the UI thread's work per ingest batch (``RequestsTable.apply_appended``) with ``rows``
    already in the store, headless; the store append (done by the ingest thread in the app) is timed
    separately. ``late``: the batch is an hour older than the rows held (S3 delivering late).
    Returns seconds (medians) and the row count."""
    import asyncio
    import statistics

    from s3tail.core.demo import DemoTraffic, parse_lines

    from .app import S3tailApp, prepare
    from .table import RequestsTable

    epoch = 1_700_000_000
    traffic = DemoTraffic(seed=1)
    base = [e for e in parse_lines(traffic.lines(10_000, epoch), 1) if hasattr(e, "ts")]
    out: dict[str, float] = {}

    def next_batch(i: int) -> list:
        t = epoch + (-3600 if late else 60 + i)
        return [e._replace(ts=float(t), time=None) for e in base[:batch]]

    async def run() -> None:
        args, config, _ = prepare(["--no-follow", "."])
        app = S3tailApp(args, config, None)
        app._has_source = False  # no ingest threads: we feed the table ourselves
        async with app.run_test(size=(120, 40)) as pilot:
            table = app.query_one(RequestsTable)
            chunk = base * (100_000 // len(base) + 1)
            while len(app.store) < rows:
                app.store.append(chunk[: min(len(chunk), rows - len(app.store))])
            if filter_text:
                from .backend import compile_filter
                table.set_filter(compile_filter(filter_text), filter_text)
            else:
                table.clear_filter()
            ui, ingest = [], []
            for i in range(repeats):
                events = next_batch(i)
                t0 = time.perf_counter()
                done = app.store.append(events)
                ingest.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                table.apply_appended(done)
                ui.append(time.perf_counter() - t0)
                await pilot.pause()
            out.update(ui=statistics.median(ui), ingest_append=statistics.median(ingest),
                       rows=float(len(app.store)))

    asyncio.run(run())
    return out
