"""Rule-engine cost against parsing alone (issue 4: all default rules < 30% of parse time).

    python ../shared/tools/gen_s3_access_logs.py --lines 200000 --seed 1 > /tmp/gen-200k.log
    python bench/rules.py /tmp/gen-200k.log [--runs 5] [--config FILE]

``--config`` runs the rules with a config file (e.g. the generator's web buckets listed in
``public_buckets``: without it every anonymous visitor IP of a website bucket is a finding).

Prints, for N lines: the median time of parse alone (``iter_sources``, events consumed), of
parse + every default rule (``RuleEngine.process_batch`` on batches of 2000 events, as ``s3tail
scan`` does, then ``flush``), the rules' own share (difference) and the ratio rules/parse, and the
rules over events already in memory. Each variant runs ``--runs`` times, interleaved; wall time
and CPU time (``time.process_time``, steadier on a shared machine) are both reported.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

from s3tail.core.event import Event
from s3tail.core.reader import iter_sources
from s3tail.core.rules import RuleEngine
from s3tail.core.rules.cli import BATCH


def clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(t0: tuple[float, float]) -> tuple[float, float]:
    return time.perf_counter() - t0[0], time.process_time() - t0[1]


def parse_only(path: str) -> tuple[tuple[float, float], int]:
    t0 = clocks()
    n = 0
    batch: list = []
    for item in iter_sources([path]):
        if type(item) is Event:
            batch.append(item)
            if len(batch) == BATCH:
                n += len(batch)
                batch = []
    n += len(batch)
    return since(t0), n


CONFIG: dict = {}


def parse_and_rules(path: str) -> tuple[tuple[float, float], int]:
    t0 = clocks()
    engine = RuleEngine(CONFIG)
    batch: list = []
    for item in iter_sources([path]):
        if type(item) is Event:
            batch.append(item)
            if len(batch) == BATCH:
                engine.process_batch(batch)
                batch = []
    engine.process_batch(batch)
    engine.flush()
    return since(t0), len(engine.findings())


def rules_only(events: list) -> tuple[float, float]:
    t0 = clocks()
    engine = RuleEngine(CONFIG)
    for i in range(0, len(events), BATCH):
        engine.process_batch(events[i:i + BATCH])
    engine.flush()
    return since(t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("path", help="an access-log (or CloudTrail) file")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--config", help="TOML config for the rules (default: none, the built-in defaults)")
    args = ap.parse_args(argv)
    if args.config:
        from s3tail.core.config import load_config

        CONFIG.update(load_config(args.config))
    parse_t, both_t, alone_t = [], [], []
    n = findings = 0
    events = [i for i in iter_sources([args.path]) if type(i) is Event]
    for _ in range(args.runs):
        t, n = parse_only(args.path)
        parse_t.append(t)
        t, findings = parse_and_rules(args.path)
        both_t.append(t)
        alone_t.append(rules_only(events))
    print(f"events: {n:,} ({args.path}), findings: {findings:,}, runs: {args.runs} (medians), batches of {BATCH}")
    target = 0.30
    for k, clock in enumerate(("wall", "cpu")):
        p = statistics.median(t[k] for t in parse_t)
        b = statistics.median(t[k] for t in both_t)
        a = statistics.median(t[k] for t in alone_t)
        print(f"[{clock}] parse alone:        {p:8.3f} s  {n / p:12,.0f} events/s  {p / n * 1e6:6.2f} us/event")
        print(f"[{clock}] parse + all rules:  {b:8.3f} s  {n / b:12,.0f} events/s")
        print(f"[{clock}] rules (difference): {b - p:8.3f} s  {(b - p) / n * 1e6:6.2f} us/event  "
              f"ratio rules/parse = {(b - p) / p:6.1%}")
        print(f"[{clock}] rules over a list:  {a:8.3f} s  {a / n * 1e6:6.2f} us/event  "
              f"ratio rules/parse = {a / p:6.1%}  target < {target:.0%}: {'met' if a / p < target else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
