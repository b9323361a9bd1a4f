"""Live sources: files, folders, stdin and S3 log buckets, read once or followed, merged.

Public API::

    add_arguments(parser)                 # --follow --since --interval --state --no-state --profile ...
    iter_items(args, *, redact=True, on_state=None, stop=None, flush=None)
        -> Iterator[Event | Malformed | Skipped]
    iter_batches(args, ...)               # the same, as lists (one per arrival), for the terminal app

``args`` needs ``sources``; everything else is optional (``follow``, ``since`` as text or datetime,
``interval``, ``state``, ``no_state``, ``profile``, ``region``, ``endpoint_url``). Each source runs
in its own daemon thread and sends batches through a bounded queue; the iterating thread merges them,
calls ``on_state(name, SourceState)`` on status changes (throttled for counters), and applies
checkpoint commits only after the items they cover were handed out. A one-shot read runs the
sources one after another (deterministic order); a follow runs them together.

Checkpoints: ``--state FILE`` (all sources, one section each), else with ``--follow`` in a headless
command one file per source under ``$XDG_STATE_HOME/s3tail/`` (``auto_state``, set by
:func:`add_arguments`), ``--no-state`` for none. stdin has no checkpoint.
"""
from __future__ import annotations

import argparse
import inspect
import os
import queue
import signal
import threading
from datetime import datetime
from typing import Any, Callable, Iterator

from ..reader import Item, SourceError
from .base import Source, Stopped
from .state import Checkpoint, SourceState, default_state_path, parse_since

__all__ = ["SourceState", "add_arguments", "iter_batches", "iter_items", "exit_on_sigterm",
           "parse_since", "headless_on_state"]

QUEUE_MESSAGES = 4    # messages (batches) in flight between the source threads and the consumer
TICK = 0.1            # the consumer checks ``stop`` at least this often
SAVE_EVERY = 1.0      # seconds between checkpoint writes while busy (and when idle, and at the end)
DRAIN_ITEMS = 20000   # at most this many items coalesced into one batch


def _since_arg(text: str) -> datetime:
    try:
        return parse_since(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _interval_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad interval {text!r}: seconds, like 30 or 0.5") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("the interval must be more than 0 seconds")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of live sources, for ``s3tail parse`` and ``s3tail scan``."""
    g = p.add_argument_group("live sources")
    g.add_argument("--follow", action="store_true",
                   help="keep reading: new lines and files locally, new log objects in S3")
    g.add_argument("--since", metavar="WHEN", type=_since_arg,
                   help="only logs since WHEN: 30m, 2h, 1d or an ISO time (S3: by the time in object "
                        "names; local: files modified since)")
    g.add_argument("--interval", metavar="SECONDS", type=_interval_arg, default=30.0,
                   help="seconds between S3 listings while following (default 30)")
    g.add_argument("--state", metavar="FILE",
                   help="checkpoint file: objects and offsets done, so a restart reads nothing twice "
                        "(default with --follow: one file per source in $XDG_STATE_HOME/s3tail/)")
    g.add_argument("--no-state", action="store_true", help="no checkpoint file")
    g.add_argument("--profile", metavar="NAME", help="AWS profile for s3:// sources")
    g.add_argument("--region", metavar="REGION", help="AWS region for s3:// sources")
    g.add_argument("--endpoint-url", metavar="URL",
                   help="S3-compatible endpoint (default $AWS_ENDPOINT_URL)")
    p.set_defaults(auto_state=True)


def headless_on_state() -> Callable[[str, SourceState], None]:
    """State changes on stderr, plus a progress line when stderr is a terminal."""
    from .state import chain, progress_printer, stderr_state_printer

    return chain(stderr_state_printer(), progress_printer())


def exit_on_sigterm() -> None:
    """In a headless follow, SIGTERM ends like Ctrl-C, so the checkpoint is written on the way out."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError):  # pragma: no cover - not in the main interpreter
        pass


def _since_of(args: Any) -> datetime | None:
    since = getattr(args, "since", None)
    if since is None or isinstance(since, datetime):
        return since
    try:
        return parse_since(str(since))
    except ValueError as exc:
        from ..cli import UsageError

        raise UsageError(f"--since: {exc}") from None


def _state_key(spec: str) -> str:
    return spec if spec.startswith("s3://") else os.path.abspath(spec)


def _checkpoints(args: Any, specs: list[str], follow: bool) -> dict[str, Checkpoint]:
    """Source name -> its checkpoint (several names can share one file)."""
    if getattr(args, "no_state", False):
        return {}
    explicit = getattr(args, "state", None)
    specs = [s for s in specs if s != "-"]
    if explicit:
        cp = Checkpoint(explicit)
        return {s: cp for s in specs}
    if follow and getattr(args, "auto_state", False):
        return {s: Checkpoint(default_state_path(_state_key(s))) for s in specs}
    return {}


def _make_source(spec: str, args: Any, *, redact: bool, follow: bool, since: datetime | None,
                 snapshot: dict[str, Any] | None) -> Source:
    if spec.startswith("s3://"):
        from .s3 import S3Source

        ns = argparse.Namespace(**vars(args)) if hasattr(args, "__dict__") else args
        ns.since, ns.follow = since, follow
        ns.interval = float(getattr(args, "interval", None) or 30.0)
        return S3Source(spec, ns, redact=redact, snapshot=snapshot)
    from .local import LocalSource

    return LocalSource(spec, follow=follow, redact=redact, snapshot=snapshot,
                       since=since.timestamp() if since else None)


def _adapt(on_state: Callable[..., None] | None) -> Callable[[str, SourceState], None] | None:
    """``on_state(name, state)``; a one-argument callback gets ``state`` alone (it has ``.name``)."""
    if on_state is None:
        return None
    try:
        inspect.signature(on_state).bind("name", None)
        return on_state
    except TypeError:
        return lambda _name, state: on_state(state)
    except ValueError:  # pragma: no cover - builtins without a signature
        return on_state


def _run_source(src: Source) -> None:
    try:
        src.run()
    except Stopped:
        pass
    except SourceError as exc:
        _final(src, ("error", src.name, exc))
    except Exception as exc:  # a bug or an unexpected OS error: one line, not a traceback
        _final(src, ("error", src.name, SourceError(f"{src.name}: {type(exc).__name__}: {exc}")))
    _final(src, ("end", src.name))


def _final(src: Source, msg: tuple) -> None:
    try:
        src.put(msg)
    except Stopped:
        pass


def iter_batches(args: Any, *, redact: bool = True, on_state: Callable[..., None] | None = None,
                 stop: threading.Event | None = None,
                 flush: Callable[[], None] | None = None, blocks: bool = False,
                 idle: bool = False, block_bytes: int | None = None) -> Iterator[list[Item]]:
    """Lists of items as they arrive from every source (see the module docstring).

    ``blocks``: plain access-log text comes as :class:`~s3tail.core.reader.RawBlock` items (complete
    lines, unparsed) for the columnar scanner, instead of one Event or Malformed per line.
    ``idle``: an empty list once the sources go quiet after sending items (a consumer that gathers
    batches hands on what it holds). ``block_bytes``: the size of a file's blocks (default: the source's,
    a MB: a block per message keeps the app's messages small).

    A batch comes as soon as a source sends one; an idle follow checks ``stop`` every 0.1 s and
    ends within a second of it. ``flush`` is called when the sources are idle and before each
    checkpoint write (headless commands pass ``sys.stdout.flush``, so what a checkpoint records
    has been written out). Raises :class:`SourceError` for a source that cannot be read at all.
    """
    specs = list(dict.fromkeys(getattr(args, "sources", None) or ["-"]))
    follow = bool(getattr(args, "follow", False))
    since = _since_of(args)
    notify = _adapt(on_state)
    checkpoints = _checkpoints(args, specs, follow)
    sources = [_make_source(spec, args, redact=redact, follow=follow, since=since,
                            snapshot=checkpoints[spec].snapshot(_state_key(spec)) if spec in checkpoints else None)
               for spec in specs]
    for src in sources:
        src.blocks = blocks
        src.block_bytes = block_bytes
    q: queue.Queue = queue.Queue(maxsize=QUEUE_MESSAGES)
    halt = threading.Event()
    threads: list[threading.Thread] = []
    pending = list(sources)

    def start_next() -> None:
        src = pending.pop(0)
        src.bind(q, halt)
        t = threading.Thread(target=_run_source, args=(src,), name=f"s3tail-source-{len(threads)}", daemon=True)
        threads.append(t)
        t.start()

    def save(force: bool = False) -> None:
        files = {id(cp): cp for cp in checkpoints.values()}.values()
        if any(cp.dirty and (force or cp.due(SAVE_EVERY)) for cp in files):
            if flush is not None:
                flush()
            for cp in files:
                if force or cp.due(SAVE_EVERY):
                    cp.save()

    def watch_stop() -> None:
        while not halt.wait(TICK):
            if stop is not None and stop.is_set():
                halt.set()

    if stop is not None:
        threading.Thread(target=watch_stop, name="s3tail-stop", daemon=True).start()
    # one-shot: one source after another; follow: all at once
    while pending and (follow or not threads):
        start_next()
    ended = 0
    idle_flushed = True
    try:
        while ended < len(sources):
            if halt.is_set():
                return
            try:
                msg = q.get(timeout=TICK)
            except queue.Empty:
                if not idle_flushed:
                    if idle:
                        yield []
                    if flush is not None:
                        flush()
                    idle_flushed = True
                save(force=True)  # idle: record what was handed out now (a kill loses little)
                continue
            items: list = []
            commits: list[tuple] = []
            while True:
                kind = msg[0]
                if kind == "items":
                    items.extend(msg[1])
                elif kind == "commit":
                    commits.append(msg)
                elif kind == "state" and notify is not None:
                    notify(msg[1].name, msg[1])
                elif kind == "error":
                    err = msg[2]
                    if notify is not None:
                        src = next(s for s in sources if s.name == msg[1])
                        notify(src.name, SourceState(src.name, status="error", last_error=str(err),
                                                     objects_done=src.state.objects_done,
                                                     bytes_done=src.state.bytes_done))
                    raise err
                elif kind == "end":
                    ended += 1
                    if pending:
                        start_next()
                if len(items) >= DRAIN_ITEMS:
                    break
                try:
                    msg = q.get_nowait()
                except queue.Empty:
                    break
            if items:
                idle_flushed = False
                yield items
            for _, name, fn in commits:  # after the items they cover were handed out
                cp = checkpoints.get(name)
                if cp is not None:
                    cp.apply(_state_key(name), fn)
            save()
    finally:
        halt.set()
        save(force=True)
        for t in threads:
            t.join(timeout=0.5)


def iter_items(args: Any, *, redact: bool = True, on_state: Callable[..., None] | None = None,
               stop: threading.Event | None = None, flush: Callable[[], None] | None = None) -> Iterator[Item]:
    """Every item of every source in ``args.sources``, merged; see :func:`iter_batches`."""
    for batch in iter_batches(args, redact=redact, on_state=on_state, stop=stop, flush=flush):
        yield from batch
