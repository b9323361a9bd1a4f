"""`s3tail scan SOURCE...`: run the detection rules over logs and print findings.

Findings go to stdout (jsonl: one line per finding when its dedup period closes in event time, the
rest at the end; text: a table at the end). Malformed lines and user-rule errors go to stderr.
Exit 0; 1 when a finding at or above ``--fail-on`` exists; 2 on usage, IO or config errors.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import IO, Iterable

from ..config import ConfigError, load_config
from ..event import Malformed
from ..parsecmd import Tally
from ..reader import SourceError
from ..safe import visible
from .model import SEVERITIES, SEVERITY_RANK, Finding

BATCH = 2000
COLUMN_ROWS = 10_000  # events per column batch (runs of parsed items; a RawBlock is one batch)
# bytes per block of a file (a RawBlock: one C scan, one column batch): fewer, larger parts per batch
# the rules get (~7 joined to RULES_ROWS, not ~58) than the sources' 1 MB. s3tail scan over 1M generated lines, one
# process, median of 5: parse 1.56 s and parse + rules 2.05 s with 1 MB; 1.49 s and 1.86 s with 8 MB
# (bench/RESULTS.md, eighth round)
SCAN_BLOCK = 8 << 20


def configure(p: argparse.ArgumentParser) -> None:
    from ..sources import add_arguments

    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="a log file (.gz too), a folder (recursive), or - for stdin; access logs or CloudTrail")
    p.add_argument("--config", metavar="FILE", help="TOML config (default $XDG_CONFIG_HOME/s3tail/config.toml)")
    p.add_argument("--rules", metavar="DIR", help="folder of user rules (*.py with rule(event))")
    add_arguments(p)  # --follow --since --interval --state --no-state --profile --region --endpoint-url
    p.add_argument("--format", choices=("jsonl", "text"), default="jsonl", help="output format (default jsonl)")
    p.add_argument("--fail-on", choices=SEVERITIES, metavar="SEVERITY",
                   help="exit 1 when a finding at or above SEVERITY exists (info, low, medium, high, critical)")
    p.add_argument("--filter", metavar="EXPR", default=None,
                   help="only run the rules over events matching the filter expression")


def _matcher(text: str | None):
    """``event -> bool`` for ``--filter`` (the filter module is imported only when asked for)."""
    if not text:
        return None
    from ..cli import UsageError

    try:
        from ..filter import FilterError, compile_filter
    except ImportError:
        raise UsageError("--filter is not available in this build") from None
    try:
        return compile_filter(text).matches
    except FilterError as exc:
        raise UsageError(f"bad --filter: {exc}") from None


def _items(args: argparse.Namespace) -> Iterable:
    from ..parsecmd import live_items

    return live_items(args, flush=sys.stdout.flush)


def _column_batches(args: argparse.Namespace, tally: Tally) -> Iterable:
    """Column batches of the sources (plain access-log text read by the C scanner, in SCAN_BLOCK blocks),
    counted in ``tally``, joined for the rules up to ``ingest.RULES_ROWS`` rows across the sources'
    arrivals; a follow hands on what it has gathered whenever the sources go quiet."""
    from ..ingest import coalesce

    return coalesce(_parsed_batches(args, tally))


def _parsed_batches(args: argparse.Namespace, tally: Tally) -> Iterable:
    """The column batches with rows of :func:`_column_batches`, before they are joined; None where the
    sources went quiet or the value tables start afresh (a joined batch holds one :class:`Dicts`)."""
    from ..columns import Dicts
    from ..ingest import column_batches
    from ..parsecmd import live_batches

    dicts = Dicts()
    for items in live_batches(args, flush=sys.stdout.flush, blocks=True, idle=bool(getattr(args, "follow", False)),
                              block_bytes=SCAN_BLOCK):
        if not items:
            yield None
            continue
        if dicts.full():  # a long follow: value tables start afresh
            yield None
            dicts = Dicts()
        for batch in column_batches(items, dicts, COLUMN_ROWS):
            for item in batch.others:
                if isinstance(item, Malformed):
                    tally.add_malformed(item)
                else:
                    tally.skipped += 1
            tally.events += batch.n
            if batch.n:
                yield batch


def run(args: argparse.Namespace) -> int:
    from ..cli import UsageError
    from .engine import RuleEngine

    matches = _matcher(args.filter)
    try:
        config = load_config(args.config)
        engine = RuleEngine(config, args.rules)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    err = sys.stderr
    reported = 0

    def report_errors() -> None:
        nonlocal reported
        for line in engine.errors[reported:]:
            err.write(visible(line) + "\n")
        reported = len(engine.errors)

    report_errors()
    tally = Tally(err)
    out = sys.stdout
    emitted: list[Finding] = []
    jsonl = args.format == "jsonl"
    encode = json.JSONEncoder(ensure_ascii=False).encode   # (one encoder for every line)

    def emit(findings: list[Finding]) -> None:
        emitted.extend(findings)
        if jsonl:
            for f in findings:
                out.write(encode(f.to_dict()) + "\n")
            out.flush()

    if matches is None:  # the columnar path: no Event per row, except the few the rules ask for
        try:
            for cols in _column_batches(args, tally):
                engine.process_columns(cols, report=False)   # (findings: pop_closed)
                emit(engine.pop_closed())
                report_errors()
        except SourceError as exc:
            raise UsageError(str(exc)) from None
    batch: list = []
    limit = 1 if getattr(args, "follow", False) else BATCH  # live: findings as soon as events arrive
    try:
        for ev in tally.events_only(_items(args) if matches is not None else ()):
            if matches is not None and not matches(ev):
                continue
            batch.append(ev)
            if len(batch) >= limit:
                engine.process_batch(batch)
                batch = []
                emit(engine.pop_closed())
                report_errors()
    except SourceError as exc:
        raise UsageError(str(exc)) from None
    engine.process_batch(batch)
    emit(engine.pop_closed())
    emit(engine.flush())
    report_errors()
    if not jsonl:
        write_table(out, sorted(emitted, key=lambda f: (-SEVERITY_RANK[f.severity], f.first_ts or 0)))
    err.write(f"{tally.summary()}, {len(emitted)} findings\n")
    if args.fail_on:
        floor = SEVERITY_RANK[args.fail_on]
        if any(SEVERITY_RANK[f.severity] >= floor for f in emitted):
            return 1
    return 0


def write_table(out: IO[str], findings: list[Finding]) -> None:
    """A readable table; every log-written value goes through visible()."""
    if not findings:
        out.write("no findings\n")
        return
    out.write(f"{'SEVERITY':<9} {'RULE':<28} {'COUNT':>6}  {'FIRST SEEN':<20} {'BUCKET':<24} WHO / TITLE\n")
    for f in findings:
        who = visible(f.actor)
        out.write(f"{f.severity:<9} {f.rule_id:<28} {f.count:>6}  {f.first_seen or '-':<20} "
                  f"{visible(f.bucket)[:24]:<24} {who[:60]}\n")
        out.write(f"{'':<9} {visible(f.title)}\n")
        for s in f.samples[:2]:
            out.write(f"{'':<11}{visible(s['log_object'])}:{s['log_line']} {s['time'] or '-'} "
                      f"{visible(s['action'])} {s['http_status'] if s['http_status'] is not None else '-'} "
                      f"{visible(s['key'])[:80]}\n")
