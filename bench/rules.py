"""Rule-engine cost against parsing alone (issue 4: all default rules < 30% of parse time).

    python ../shared/tools/gen_s3_access_logs.py --lines 200000 --seed 1 > /tmp/gen-200k.log
    python bench/rules.py /tmp/gen-200k.log [--runs 5]

Prints, for N lines: the median wall time of parse alone (``iter_sources``, events consumed),
of parse + every default rule (``RuleEngine.process`` per event, then ``flush``), the rules' own
share (difference) and the ratio rules/parse. Each variant runs ``--runs`` times, interleaved.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

from s3tail.core.event import Event
from s3tail.core.reader import iter_sources
from s3tail.core.rules import RuleEngine


def parse_only(path: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = 0
    for item in iter_sources([path]):
        if type(item) is Event:
            n += 1
    return time.perf_counter() - t0, n


def parse_and_rules(path: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    engine = RuleEngine({})
    process = engine.process
    for item in iter_sources([path]):
        if type(item) is Event:
            process(item)
    engine.flush()
    return time.perf_counter() - t0, len(engine.findings())


def rules_only(events: list) -> float:
    t0 = time.perf_counter()
    engine = RuleEngine({})
    process = engine.process
    for ev in events:
        process(ev)
    engine.flush()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("path", help="an access-log (or CloudTrail) file")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args(argv)
    parse_t, both_t, alone_t = [], [], []
    n = findings = 0
    events = [i for i in iter_sources([args.path]) if type(i) is Event]
    for _ in range(args.runs):
        t, n = parse_only(args.path)
        parse_t.append(t)
        t, findings = parse_and_rules(args.path)
        both_t.append(t)
        alone_t.append(rules_only(events))
    p, b, a = statistics.median(parse_t), statistics.median(both_t), statistics.median(alone_t)
    print(f"events: {n:,} ({args.path}), findings: {findings:,}, runs: {args.runs} (medians)")
    print(f"parse alone:          {p:8.3f} s  {n / p:12,.0f} events/s")
    print(f"parse + all rules:    {b:8.3f} s  {n / b:12,.0f} events/s")
    print(f"rules (difference):   {b - p:8.3f} s  ratio rules/parse = {(b - p) / p:6.1%}")
    print(f"rules over a list:    {a:8.3f} s  ratio rules/parse = {a / p:6.1%} (events already in memory)")
    target = 0.30
    print(f"target < {target:.0%}: {'met' if a / p < target else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
