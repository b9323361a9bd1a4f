"""Live sources: cost of the threaded merge over the plain reader, and an S3 backfill rate.

    python bench/sources_bench.py [--lines 200000] [--objects 200] [--runs 3]

Prints medians over --runs runs: local one-shot read through ``iter_items`` vs ``reader.iter_sources``
(same file, items/s and the ratio), and an S3 backfill from a local moto server (objects/s, items/s).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

from s3helpers import MotoServer, access_lines, set_fake_credentials, simple_key  # noqa: E402

from s3tail.core.reader import iter_sources  # noqa: E402
from s3tail.core.sources import iter_items  # noqa: E402


def timed(fn) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = sum(1 for _ in fn())
    return time.perf_counter() - t0, n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--objects", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "big.log")
        with open(path, "wb") as fh:
            for start in range(0, opts.lines, 10_000):
                fh.write(access_lines("bkt", [f"k{i}" for i in range(start, min(opts.lines, start + 10_000))]))
        ns = argparse.Namespace(sources=[path], follow=False, no_state=True)
        plain = [timed(lambda: iter_sources([path]))[0] for _ in range(opts.runs)]
        merged = [timed(lambda: iter_items(ns))[0] for _ in range(opts.runs)]
        p, m = statistics.median(plain), statistics.median(merged)
        print(f"local one-shot {opts.lines} lines: reader {opts.lines / p:,.0f} items/s, "
              f"sources.iter_items {opts.lines / m:,.0f} items/s, ratio {m / p:.2f}x time")
    set_fake_credentials(os.environ)
    import logging

    logging.disable(logging.CRITICAL)
    server = MotoServer()
    server.start()
    try:
        client = server.client()
        client.create_bucket(Bucket="bench-logs")
        t = datetime(2024, 5, 1, tzinfo=timezone.utc)
        for i in range(opts.objects):
            client.put_object(Bucket="bench-logs", Key=simple_key("logs/", t + timedelta(minutes=i), f"U{i:05d}"),
                              Body=access_lines("bkt", [f"o{i}-{j}" for j in range(100)]))
        ns = argparse.Namespace(sources=["s3://bench-logs/logs/"], endpoint_url=server.endpoint, no_state=True)
        runs = [timed(lambda: iter_items(ns)) for _ in range(opts.runs)]
        secs = statistics.median(r[0] for r in runs)
        print(f"s3 backfill {opts.objects} objects x 100 lines from moto: {opts.objects / secs:,.0f} objects/s, "
              f"{runs[0][1] / secs:,.0f} items/s (median of {opts.runs}, {secs:.2f} s)")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
