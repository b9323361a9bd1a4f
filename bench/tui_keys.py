"""Key-press latency of the terminal app while events stream in (issues 6 and 7).

A writer process appends access-log lines to a file in a followed folder at ``--rate`` lines per second
(default 20,000), while the app runs headless (Textual's ``run_test``) on that folder. Once rows flow,
the bench presses tab keys (2, 1, 3, 1, 4, 1, ...) and times each one from the key event being posted (as
the terminal driver posts it) until the first screen refresh after the key was handled has been composed:
the frame that shows the new tab with its rows drawn (the bench stops if that frame is not on the tab
asked for). It prints the rate the app really ingested while the keys were pressed, so a slow ingest
cannot pass for a fast UI.

    python bench/tui_keys.py [--rate 20000] [--presses 30] [--warmup 3] [--preload 1000000]

``--preload N`` puts N generated lines (an older log object) in the folder first: the keys are pressed
once the app holds them and has caught up with the followed file.

Target: every key press answered within 100 ms while 20,000 events per second arrive.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import multiprocessing
import shutil
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def writer(path: Path, lines: list[str], rate: int, stop: Any, written: Any) -> None:
    """Append ``rate`` lines a second in 20 slices, cycling over ``lines`` but stamped with the
    current time (so rows arrive in time order, as a followed log does)."""
    step = max(1, rate // 20)
    parts = [(line[:line.index("[") + 1], line[line.index("]"):]) for line in lines]
    i = 0
    next_t = time.monotonic()
    with path.open("a", encoding="utf-8") as fh:
        while not stop.is_set():
            stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
            chunk = [head + stamp + tail for head, tail in (parts[(i + k) % len(parts)] for k in range(step))]
            fh.write("\n".join(chunk) + "\n")
            fh.flush()
            i += step
            written.value += step
            next_t += 1 / 20
            time.sleep(max(0.0, next_t - time.monotonic()))


async def measure(folder: Path, presses: int, warmup: float, preload: int = 0, written: Any = None
                  ) -> dict[str, object]:
    from s3tail.tui.app import S3tailApp, prepare
    from s3tail.tui.tabs import TabSwitcher

    args, config, results = prepare([str(folder)])
    app = S3tailApp(args, config, results)
    out: dict[str, object] = {}
    async with app.run_test(size=(120, 40)) as pilot:
        deadline = time.monotonic() + 30 + preload / 10_000
        # the preloaded rows held and the followed file caught up with
        while len(app.store) < max(1000, preload + (0.9 * written.value if preload and written else 0)):
            if time.monotonic() > deadline:
                raise SystemExit(f"tui_keys: the app did not hold its rows in time ({len(app.store):,})")
            await pilot.pause(0.05)
        await pilot.pause(warmup)
        keys = [("2", "findings"), ("1", "requests"), ("3", "posture"), ("1", "requests"),
                ("4", "stats"), ("1", "requests")]
        lat: list[float] = []
        tabs: list[str] = []
        rows0, t0 = len(app.store), time.monotonic()
        loop = asyncio.get_running_loop()
        for i in range(presses):
            key, tab = keys[i % len(keys)]
            shown = loop.create_future()
            start = time.perf_counter()
            app.simulate_key(key)  # as the terminal driver posts it (the pilot adds waits of its own)
            # once the key is handled: resolve after the next screen refresh, i.e. once the frame that
            # shows the new tab is composed (and, in a terminal, written)
            app.call_later(app.call_after_refresh, shown.set_result, None)
            await shown
            lat.append(time.perf_counter() - start)
            if app.q(TabSwitcher).active != tab:
                raise SystemExit(f"tui_keys: key {key!r} did not switch to {tab} within its frame")
            tabs.append(tab)
            await asyncio.sleep(0.3)  # a person switching tabs does not type faster than this
        out["latency_ms"] = [x * 1000 for x in lat]
        out["tabs"] = tabs
        out["ingest_rate"] = (len(app.store) - rows0) / (time.monotonic() - t0)
        out["rows"] = len(app.store)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=int, default=20_000, help="lines per second appended (default 20000)")
    ap.add_argument("--presses", type=int, default=30)
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds of streaming before the first key")
    ap.add_argument("--preload", type=int, default=0,
                    help="rows of the generated file (bench/data) in the folder before the follow starts")
    a = ap.parse_args()
    common.header("terminal app: key-press latency while events stream in",
                  f"python bench/tui_keys.py --rate {a.rate} --presses {a.presses} --warmup {a.warmup}"
                  + (f" --preload {a.preload}" if a.preload else ""))
    from s3tail.core.cli import tune_gc
    from s3tail.core.demo import DemoTraffic

    tune_gc()  # as `s3tail` does when it starts

    lines = DemoTraffic(seed=3).lines(50_000, time.time() - 600)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        log = folder / "access.log"
        log.write_text("")
        if a.preload:  # an older log object already in the folder: the app reads it, then follows
            shutil.copyfile(common.data_file(a.preload), folder / "0-older.log")
        # the writer is another process, as a log shipper is: it must not share the app's GIL
        ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        stop, written = ctx.Event(), ctx.Value("q", 0)
        t = ctx.Process(target=writer, args=(log, lines, a.rate, stop, written), daemon=True)
        t.start()
        began = time.monotonic()
        try:
            res = asyncio.run(measure(folder, a.presses, a.warmup, a.preload, written))
        finally:
            stop.set()
            t.join()
        wrote = written.value / (time.monotonic() - began)
    lat = res["latency_ms"]
    lat_sorted = sorted(lat)
    p95 = lat_sorted[max(0, int(len(lat_sorted) * 0.95) - 1)]
    print(f"lines written: {wrote:,.0f}/s; rows ingested by the app while keys were pressed: "
          f"{res['ingest_rate']:,.0f}/s; rows held at the end: {res['rows']:,}")
    print(f"key press -> frame showing the tab, ms: {common.spread(lat, '{:.1f}')}; p95 {p95:.1f}")
    for tab in dict.fromkeys(res["tabs"]):
        mine = [x for x, t in zip(lat, res["tabs"]) if t == tab]
        print(f"  to {tab:9s}: {common.spread(mine, '{:.1f}')}")
    ok = max(lat) < 100 and res["ingest_rate"] >= 0.9 * a.rate
    print(f"target every key < 100 ms at {a.rate:,} events/s: {'met' if ok else 'NOT met'}")
    print(f"load average at end: {common.load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
