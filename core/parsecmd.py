"""`s3tail parse SOURCE...`: normalized events on stdout, malformed lines reported on stderr."""
from __future__ import annotations

import argparse
import json
import sys
from typing import IO, Iterable, Iterator

from .event import Event, Malformed, Skipped
from .reader import Item, SourceError
from .safe import visible

MAX_REPORTED = 20


def configure(p: argparse.ArgumentParser) -> None:
    from .sources import add_arguments

    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="a log file (.gz too), a folder (recursive, in name order), - for stdin, "
                        "or s3://bucket[/prefix/] (access logs in either key layout, CloudTrail)")
    p.add_argument("--format", choices=("jsonl", "text"), default="jsonl", help="output format (default jsonl)")
    p.add_argument("--no-redact", action="store_true",
                   help="keep presigned signatures and session tokens in request_uri and referrer")
    p.add_argument("--quarantine", metavar="FILE", help="write each malformed raw line with its origin (JSON lines)")
    p.add_argument("--strict", action="store_true", help="exit 1 when any line is malformed")
    p.add_argument("--filter", metavar="EXPR", default=None,
                   help="only events matching the filter expression (see README: filter language)")
    add_arguments(p)


class Tally:
    """Counts what came out of the sources and reports malformed lines on stderr (first 20 in full)."""

    def __init__(self, err: IO[str], quarantine: IO[str] | None = None):
        self.events = self.malformed = self.skipped = 0
        self.err = err
        self.quarantine = quarantine

    def events_only(self, items: Iterable[Item]) -> Iterator[Event]:
        for item in items:
            if type(item) is Event:
                self.events += 1
                yield item
            elif isinstance(item, Malformed):
                self.add_malformed(item)
            elif isinstance(item, Skipped):
                self.skipped += 1

    def add_malformed(self, item: Malformed) -> None:
        self.malformed += 1
        if self.malformed <= MAX_REPORTED:
            self.err.write(f"{visible(item.log_object)}:{item.log_line}: malformed: {visible(item.reason)}\n")
        elif self.malformed == MAX_REPORTED + 1:
            self.err.write("... further malformed lines are only counted\n")
        if self.quarantine is not None:
            self.quarantine.write(json.dumps(item.to_dict(), ensure_ascii=False) + "\n")

    def summary(self) -> str:
        return f"parsed {self.events} events, {self.malformed} malformed, {self.skipped} skipped"


def text_line(ev: Event) -> str:
    """One readable line per event; every log-written value passes through :func:`visible`."""
    status = "-" if ev.http_status is None else str(ev.http_status)
    size = "-" if ev.bytes_sent is None else str(ev.bytes_sent)
    return " ".join((
        ev.time or "-", visible(ev.bucket), visible(ev.who), visible(ev.action or ev.operation),
        status, size, visible(ev.remote_ip), visible(ev.key),
    ))


def live_items(args: argparse.Namespace, *, redact: bool = True, flush=None) -> Iterator[Item]:
    """The items of ``args.sources`` for a headless command: source states on stderr, SIGTERM ends a
    follow cleanly (the checkpoint is written)."""
    for batch in live_batches(args, redact=redact, flush=flush):
        yield from batch


def live_batches(args: argparse.Namespace, *, redact: bool = True, flush=None, blocks: bool = False,
                 idle: bool = False, block_bytes: int | None = None) -> Iterator[list]:
    """:func:`live_items` as lists, as they arrive; ``blocks``: plain access-log text as RawBlock (of
    ``block_bytes``); ``idle``: an empty list when the sources go quiet (see ``sources.iter_batches``)."""
    from .sources import exit_on_sigterm, headless_on_state, iter_batches

    if getattr(args, "follow", False):
        exit_on_sigterm()
    return iter_batches(args, redact=redact, on_state=headless_on_state(), flush=flush, blocks=blocks, idle=idle,
                        block_bytes=block_bytes)


def run(args: argparse.Namespace) -> int:
    from .cli import UsageError

    matcher = None
    if args.filter:
        from .filter import FilterError, compile_filter

        try:
            matcher = compile_filter(args.filter).matches
        except FilterError as exc:
            raise UsageError(f"bad --filter: {exc}") from None
    quarantine = None
    if args.quarantine:
        try:
            quarantine = open(args.quarantine, "w", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{args.quarantine}: {exc.strerror or exc}") from None
    tally = Tally(sys.stderr, quarantine)
    out = sys.stdout
    write = out.write
    events = tally.events_only(live_items(args, redact=not args.no_redact, flush=out.flush))
    try:
        for ev in events:
            if matcher is not None and not matcher(ev):
                continue
            write(text_line(ev) if args.format == "text" else ev.to_json())
            write("\n")
        out.flush()
    except SourceError as exc:
        raise UsageError(str(exc)) from None
    finally:
        events.close()  # ends the sources and writes the checkpoint (Ctrl-C, SIGTERM too)
        if quarantine is not None:
            quarantine.close()
    sys.stderr.write(tally.summary() + "\n")
    return 1 if args.strict and tally.malformed else 0
