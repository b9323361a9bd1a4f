"""Parallel ingest: parse many log files (or one big one) over every core, items in reader order.

:func:`iter_batches` yields lists of items (:class:`Event`, :class:`Malformed`, :class:`Skipped`) exactly
as :func:`s3tail.core.reader.iter_sources` yields them, same order, same values (line numbers, byte
offsets, raw lines), only in batches. Large plain access-log files are cut into byte ranges at line
boundaries; gzip and CloudTrail objects go whole to one worker each. Workers are processes (a
``ProcessPoolExecutor``); their results come back pickled with a compact reducer for events. Inputs under
``min_parallel_bytes`` in all, or ``workers <= 1``, are read in this process (no pool start-up cost).

The C extension's ``parse_block`` parses a block of lines in one call where it is built; without it the
pure-Python reader does the same work.
"""
from __future__ import annotations

import copyreg
import io
import os
import pickle
import threading
from collections import deque
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any, Iterable, Iterator

from . import access_log, reader
from .event import Event, Malformed, MalformedError
from .reader import GZIP_MAGIC, Item, SourceError

BLOCK_BYTES = 1 << 20            # one parse_block call / one batch in this process (cache-sized)
INGEST_BLOCK = 16 << 20          # one column batch of a plain file in ingest() (rules and store per batch)
# rows per joined column batch handed to the rules (see coalesce): three 16 MB blocks of generated lines
# (~27,000 rows each), two of shorter ones. The rules' fixed costs per call are paid a third as often;
# the blocks' text held meanwhile (the ingest lets go of a batch before reading the next) costs the
# ingest of 1M lines ~35 MB of peak RSS (bench/RESULTS.md, seventh round)
RULES_ROWS = 100_000
CHUNK_BYTES = 16 << 20           # one worker task of a big plain file
MIN_PARALLEL_BYTES = 48 << 20    # below this in all, a pool does not pay for its start-up
_HEAD = 64


def malformed_of(log_object: str, lineno: int, text: str, exc: BaseException) -> Malformed:
    """The Malformed the reader reports for a line whose parse raised ``exc`` (see reader.iter_access_lines)."""
    if isinstance(exc, MalformedError):
        reason = str(exc) if text.strip() else "empty line"
    else:
        reason = f"parser error: {type(exc).__name__}: {exc}"
    return Malformed(log_object, lineno, reason, text.rstrip("\r\n"))


def parse_access_bytes(data: bytes, log_object: str, first_line: int = 1, first_offset: int = 0,
                       redact: bool = True) -> list[Item]:
    """The items of a block of access-log lines, as the reader gives them for those lines."""
    sp = access_log.speedups
    if sp is not None:
        return sp.parse_block(data, log_object, first_line, first_offset, redact, malformed_of)
    return list(reader.iter_access_lines(io.BytesIO(data), log_object, redact=redact,
                                         first_line=first_line, first_offset=first_offset))


# ---- work units ----

def _head(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(_HEAD)
    except OSError as exc:
        raise SourceError(f"{path}: {exc.strerror or exc}") from None


def _is_plain_access(head: bytes) -> bool:
    return head[:2] != GZIP_MAGIC and reader.sniff_format(head) == "s3access"


def _line_ranges(path: str, size: int, chunk: int) -> list[tuple[int, int]]:
    """[start, end) byte ranges of about ``chunk`` bytes, each ending just after a newline (or at EOF)."""
    cuts = [0]
    with open(path, "rb") as fh:
        while cuts[-1] + chunk < size:
            fh.seek(cuts[-1] + chunk)
            pos = fh.tell()
            while True:
                piece = fh.read(1 << 16)
                if not piece:
                    cuts.append(size)
                    break
                nl = piece.find(b"\n")
                if nl >= 0:
                    cuts.append(pos + nl + 1)
                    break
                pos += len(piece)
            if cuts[-1] >= size:
                break
    if cuts[-1] < size:
        cuts.append(size)
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]


def _read_range(path: str, start: int, end: int) -> bytes:
    try:
        with open(path, "rb") as fh:
            fh.seek(start)
            return fh.read(end - start)
    except OSError as exc:
        raise SourceError(f"{path}: read error: {exc.strerror or exc}") from None


def _count_lines(path: str, start: int, end: int) -> int:
    data = _read_range(path, start, end)
    return data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)


# ---- what a worker runs; results travel as pickles with a cheap reducer for events ----

class _Pickler(pickle.Pickler):
    dispatch_table = copyreg.dispatch_table.copy()
    # tuple.__new__(Event, values): rebuilt in C on the other side, no Python-level __new__ per event
    dispatch_table[Event] = lambda ev: (tuple.__new__, (Event, tuple(ev)))


def _dumps(items: list) -> bytes:
    buf = io.BytesIO()
    _Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(items)
    return buf.getvalue()


def _work_range(path: str, start: int, end: int, first_line: int, redact: bool) -> bytes:
    return _dumps(parse_access_bytes(_read_range(path, start, end), path, first_line, start, redact))


def _work_whole(path: str, redact: bool) -> bytes:
    return _dumps(list(reader.iter_path(path, redact=redact)))


# ---- the driver ----

def _blocks(path: str, block: int) -> Iterator[tuple[bytes, int, int]]:
    """``(data, first line, first offset)`` of a plain file in blocks of about ``block`` bytes, each
    ending at a newline (or at the end of the file)."""
    with open(path, "rb") as fh:
        line, offset = 1, 0
        while True:
            data = fh.read(block)
            if not data:
                return
            if not data.endswith(b"\n"):
                data += fh.readline()
            yield data, line, offset
            line += data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
            offset += len(data)


def _serial(paths: list[str], redact: bool, block: int) -> Iterator[list[Item]]:
    for path in paths:
        if path != "-" and _is_plain_access(_head(path)):
            for data, line, offset in _blocks(path, block):
                yield parse_access_bytes(data, path, line, offset, redact)
            continue
        yield from _item_chunks(path, redact, 10_000)


def _item_chunks(path: str, redact: bool, size: int) -> Iterator[list[Item]]:
    """The reader's items of one path in lists of ``size``."""
    batch: list[Item] = []
    for item in reader.iter_path(path, redact=redact):
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def iter_batches(sources: Iterable[str], *, redact: bool = True, workers: int | None = None,
                 chunk_bytes: int = CHUNK_BYTES, min_parallel_bytes: int = MIN_PARALLEL_BYTES,
                 executor: Executor | None = None) -> Iterator[list[Item]]:
    """Lists of items in the order of ``reader.iter_sources(sources)``; a pool of ``workers`` processes
    (default: the usable cores) when the input is large enough, else this process alone."""
    paths = reader.expand_sources(sources)
    workers = default_workers() if workers is None else workers
    sizes = {p: os.path.getsize(p) for p in paths if p != "-"}
    if executor is None and (workers <= 1 or "-" in paths or sum(sizes.values()) < min_parallel_bytes):
        yield from _serial(paths, redact, BLOCK_BYTES)
        return
    own = executor is None
    pool = executor or ProcessPoolExecutor(max_workers=workers)
    try:
        yield from _parallel(pool, paths, sizes, redact, chunk_bytes, max(2, workers) * 2)
    finally:
        if own:
            pool.shutdown(wait=True, cancel_futures=True)


def _parallel(pool: Executor, paths: list[str], sizes: dict[str, int], redact: bool, chunk: int,
              ahead: int) -> Iterator[list[Item]]:
    # Plan: per file either whole (gzip, CloudTrail, small) or byte ranges whose first line numbers come
    # from line counts made by the pool too.
    tasks: list[tuple] = []
    for path in paths:
        if _is_plain_access(_head(path)) and sizes[path] > chunk:
            ranges = _line_ranges(path, sizes[path], chunk)
            counts = list(pool.map(_count_lines, [path] * len(ranges), *zip(*ranges)))
            line = 1
            for (a, b), n in zip(ranges, counts):
                tasks.append((_work_range, path, a, b, line, redact))
                line += n
        else:
            tasks.append((_work_whole, path, redact))
    pending: deque = deque()
    todo = iter(tasks)
    for task in todo:
        pending.append(pool.submit(*task))
        if len(pending) >= ahead:
            break
    while pending:
        data = pending.popleft().result()
        for task in todo:
            pending.append(pool.submit(*task))
            break
        yield pickle.loads(data)


def iter_items(sources: Iterable[str], **kw) -> Iterator[Item]:
    """Item by item, as :func:`s3tail.core.reader.iter_sources` (same order and values)."""
    for batch in iter_batches(sources, **kw):
        yield from batch


# ---- column batches: the fast path of the store and the rules ----

# glibc's malloc: while iter_column_batches reads a file in INGEST_BLOCK blocks, heap memory freed
# between blocks is kept for the next ones (up to HELD_HEAP free at the top of the heap) instead of going
# back to the system and being faulted in again (joined batches free ~70 MB at a time: past the dynamic
# trim threshold, 32 MB; coalesce cost ~0.1 s per million lines, 14 ms held, bench/RESULTS.md, eighth
# round); blocks come from the heap (mmap threshold 2 blocks). Afterwards the trim threshold is 2 blocks
# and the free top of the heap is given back (malloc_trim). (s3tail scan reads its blocks through the
# sources: there holding made no difference, measured with 1 and 8 MB blocks; it does not hold.)
HELD_HEAP = 256 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_held = [0]   # held_heap() calls under way (nested, or in several threads)
_held_lock = threading.Lock()


def _libc() -> Any:
    """glibc's ``mallopt`` and ``malloc_trim`` (ctypes), or None elsewhere (macOS, musl, Windows)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        if not hasattr(libc, "malloc_trim") or not hasattr(libc, "gnu_get_libc_version"):
            return None
        return libc
    except (OSError, AttributeError, ImportError):  # pragma: no cover - not glibc
        return None


_LIBC = _libc()


class held_heap:
    """While it is entered (a file read in blocks), freed heap memory is kept for reuse (see HELD_HEAP);
    nothing on other C libraries."""

    def __enter__(self) -> "held_heap":
        if _LIBC is not None:
            with _held_lock:
                _held[0] += 1
                if _held[0] == 1:
                    _LIBC.mallopt(_M_MMAP_THRESHOLD, 2 * INGEST_BLOCK)
                    _LIBC.mallopt(_M_TRIM_THRESHOLD, HELD_HEAP)
        return self

    def __exit__(self, *exc: Any) -> None:
        if _LIBC is not None:
            with _held_lock:
                _held[0] -= 1
                if _held[0] == 0:
                    _LIBC.mallopt(_M_TRIM_THRESHOLD, 2 * INGEST_BLOCK)
                    _LIBC.malloc_trim(0)


def _block_reader():
    """``colblock.from_block`` when the columnar C scanner is importable, else None."""
    try:
        from . import colblock
    except ImportError:
        return None
    return colblock.from_block


def iter_column_batches(sources: Iterable[str], dicts: Any = None, *, redact: bool = True,
                        block: int = BLOCK_BYTES, batch_items: int = 10_000) -> Iterator[Any]:
    """:class:`~s3tail.core.columns.ColumnBatch` es of ``sources`` in reader order (the same events,
    Malformed and Skipped items as :func:`s3tail.core.reader.iter_sources`, the non-events in each
    batch's ``others``). Plain access-log files are read in blocks of ``block`` bytes by the C
    scanner; anything else (gzip, CloudTrail, stdin, no C extension, ``redact=False``) goes through
    the reader and :func:`~s3tail.core.columns.from_events`."""
    from .columns import Dicts, from_events

    dicts = Dicts() if dicts is None else dicts
    from_block = _block_reader() if redact else None
    with held_heap():
        for path in reader.expand_sources(sources):
            if from_block is not None and path != "-" and _is_plain_access(_head(path)):
                for data, line, offset in _blocks(path, block):
                    yield from_block(data, path, line, offset, dicts)
                continue
            for items in _item_chunks(path, redact, batch_items):
                yield from_events(items, dicts)


def column_batches(items: list, dicts: Any, max_rows: int = 10_000) -> list:
    """Column batches of a list of items (Event, Malformed, Skipped, RawBlock) in order: each
    RawBlock by the C scanner (parsed like the reader where it is not built), runs of other items by
    :func:`~s3tail.core.columns.from_events` in batches of at most ``max_rows`` events."""
    return list(iter_column_batches_of(items, dicts, max_rows))


def iter_column_batches_of(items: list, dicts: Any, max_rows: int = 10_000) -> Iterator[Any]:
    """:func:`column_batches`, one batch at a time (a caller can step aside between them)."""
    from .columns import from_events
    from .reader import RawBlock

    from_block = _block_reader()
    run: list = []
    n_events = 0
    for item in items:
        if type(item) is RawBlock:
            if run:
                yield from_events(run, dicts)
                run, n_events = [], 0
            if from_block is not None:
                yield from_block(item.data, item.log_object, item.first_line, item.first_offset, dicts)
            else:
                yield from_events(item.items(), dicts)
            continue
        run.append(item)
        if type(item) is Event:
            n_events += 1
            if n_events >= max_rows:
                yield from_events(run, dicts)
                run, n_events = [], 0
    if run:
        yield from_events(run, dicts)


def coalesce(batches: Iterable[Any], max_rows: int = RULES_ROWS) -> Iterator[Any]:
    """Consecutive column batches joined (``columns.concat``) up to ``max_rows`` rows (a batch larger
    than that alone): the rules' fixed costs per batch are paid once per joined batch. A None among
    ``batches`` hands on the batches gathered so far (the sources went quiet, or the next batches are of
    other Dicts)."""
    from .columns import concat

    run: list = []
    rows = 0
    for b in batches:
        if b is None:
            if run:
                yield concat(run)
                run, rows = [], 0
            continue
        if run and rows + b.n > max_rows:
            yield concat(run)
            run, rows = [], 0
        run.append(b)
        rows += b.n
    if run:
        yield concat(run)


# ---- read, parse, rules and store: the stages on two cores ----

class IngestResult:
    """What :func:`ingest` did: counts, the malformed items (in order), the rule findings."""

    __slots__ = ("events", "malformed", "skipped", "findings", "split")

    def __init__(self, events: int, malformed: list, skipped: int, findings: list, split: bool):
        self.events, self.malformed, self.skipped, self.findings, self.split = (
            events, malformed, skipped, findings, split)

    def __repr__(self) -> str:
        return (f"IngestResult(events={self.events}, malformed={len(self.malformed)}, skipped={self.skipped}, "
                f"findings={len(self.findings)}, split={self.split})")


def _run_rules(paths: list[str], config: dict | None, user_rules_dir: str | None, redact: bool) -> list:
    from .rules import RuleEngine

    engine = RuleEngine(config=config or {}, user_rules_dir=user_rules_dir)
    for batch in coalesce(iter_column_batches(paths, redact=redact, block=INGEST_BLOCK)):
        engine.process_columns(batch, report=False)
    engine.flush()
    return engine.findings()


def _rules_child(conn, paths, config, user_rules_dir, redact) -> None:
    try:
        conn.send(("ok", _run_rules(paths, config, user_rules_dir, redact)))
    except BaseException as exc:  # report, the parent raises it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def ingest(sources: Iterable[str], store, *, config: dict | None = None, user_rules_dir: str | None = None,
           redact: bool = True, split: bool | None = None,
           min_parallel_bytes: int = MIN_PARALLEL_BYTES) -> IngestResult:
    """Read and parse ``sources``, run every rule over the events and append them to ``store``.

    With ``split=True`` the stages run side by side: a child process reads, scans and runs the rules
    and sends back its findings, while this process reads, scans and fills the store. Over column
    batches the rules cost about as much as the scan, and sending a hundred thousand findings back
    costs more than the rules (``bench/ingest.py`` measures both ways), so by default (``split=None``)
    everything runs here, in order, unless the C scanner is missing (the pure-Python parser is slow
    enough for the split to pay) and the input is large on a machine with two or more cores.
    """
    paths = reader.expand_sources(sources)
    if split is None:
        split = (access_log.speedups is None and default_workers() >= 2 and "-" not in paths
                 and sum(os.path.getsize(p) for p in paths) >= min_parallel_bytes)
    events = skipped = 0
    malformed: list = []
    child = conn = None
    if split:
        import multiprocessing as mp

        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        conn, child_conn = ctx.Pipe(duplex=False)
        child = ctx.Process(target=_rules_child, args=(child_conn, paths, config, user_rules_dir, redact),
                            daemon=True)
        child.start()
        child_conn.close()
        engine = None
    else:
        from .rules import RuleEngine

        engine = RuleEngine(config=config or {}, user_rules_dir=user_rules_dir)
    # an EventStore takes the batch's columns; any other store (``append_batch(events)``) its events
    append = getattr(store, "append_columns", None) or (lambda b: store.append_batch(b.events()))
    try:
        for batch in coalesce(iter_column_batches(paths, redact=redact, block=INGEST_BLOCK)):
            for i in batch.others:
                if type(i) is Malformed:
                    malformed.append(i)
                else:
                    skipped += 1
            events += batch.n
            if engine is not None:
                engine.process_columns(batch, report=False)
            append(batch)
            del batch   # (not held while the next one is read and parsed)
        if engine is not None:
            engine.flush()
            findings = engine.findings()
        else:
            status, findings = conn.recv()
            if status != "ok":
                raise RuntimeError(f"rules process failed: {findings}")
    finally:
        if child is not None:
            conn.close()
            child.join(timeout=5)
            if child.is_alive():
                child.terminate()
                child.join()
    return IngestResult(events, malformed, skipped, findings, bool(split))
