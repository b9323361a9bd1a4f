"""Column batches straight from a block of access-log bytes: the fast ingest path (C ``scan_block``).

``from_block(data, log_object, first_line, first_offset, dicts)`` gives the same batch as
``from_events(parse_access_bytes(data, log_object, first_line, first_offset, True), dicts)`` (same rows,
codes of equal values, numbers, line numbers, offsets, and the same Malformed items in ``others``)
without an :class:`Event` per line:

* ``_speedups.scan_block`` splits each line into fields (the layout code of the C parser) and looks up,
  per table, the line's *raw composite* (the field bytes the table's value is a function of: the
  requester for ``identity``; operation, status, error code, has-a-key and "list-type=2" in the URI for
  ``request``; ...) in a hash table kept on the :class:`Dicts` (raw bytes -> raw code). It returns raw
  codes, the number columns, and for each raw code seen for the first time its value (``key``,
  ``time``, ``bucket``, ``ip``: built in C as the C parser builds them) or the line where it first
  appears (the other tables).
* Here, those few lines are parsed (the same parser as everywhere), each new raw code gets its table
  code (``Table.add``), and a per-table ``raw code -> table code`` array maps the block's raw codes.
* Lines the C scan leaves alone (another shape, invalid UTF-8, anything that might be malformed) are
  parsed one by one, exactly as ``parse_access_bytes`` does, and written into the rows or ``others``.

Without the C extension (``S3TAIL_PURE_PYTHON=1``, no compiler) the batch is built from the events.
"""
from __future__ import annotations

import secrets
from bisect import bisect_right
from typing import Any, Iterable

import numpy as np

from . import access_log
from .columns import (CODE_DTYPE, NUMBERS, TABLES, TS_CANONICAL, ColumnBatch, Dicts, EventBatch, Table, appended,
                      time_ts_list)
from .event import Event
from .ingest import malformed_of, parse_access_bytes

SLOW, NO_URI, LITS_UNSURE = 1, 2, 4    # scan_block's per-line flags
_SECRETS = (b"signature=", b"security-token=")   # redact_uri's triggers (see redact.py)


def uri_literals() -> tuple[str, ...]:
    """The literals scan_block looks for in each line's request URI (else key): the web-probe rule's
    prefilter, which every column batch is searched for (``find("uri", PROBE_LITERALS)``)."""
    from .rules.builtin import PROBE_LITERALS
    return tuple(lit for lit in PROBE_LITERALS if lit and lit.isascii() and lit == lit.lower() and "\n" not in lit)


class _Remap:
    """``raw code -> table code`` of one table, indexed by raw code + 1 as scan_block writes it:
    ``arr[0] = -1`` for a line left to Python; -1 also marks a raw code whose value is not known."""

    __slots__ = ("arr", "n")

    def __init__(self) -> None:
        self.arr = np.full(1024, -1, dtype=CODE_DTYPE)
        self.n = 1

    def extend(self, codes: Iterable[int], count: int) -> None:
        need = self.n + count
        if need > len(self.arr):
            bigger = np.full(max(need, 2 * len(self.arr)), -1, dtype=CODE_DTYPE)
            bigger[:self.n] = self.arr[:self.n]
            self.arr = bigger
        if type(codes) is range:
            self.arr[self.n:need] = np.arange(codes.start, codes.stop, dtype=CODE_DTYPE)
        elif count:
            self.arr[self.n:need] = np.fromiter(codes, dtype=CODE_DTYPE, count=count)
        self.n = need

    def map(self, raw: np.ndarray, out: np.ndarray) -> None:
        """``out[:] = arr[raw]``: every raw code of a block is below ``n`` (the block's new codes were
        added first), so clipping never changes an index; it saves numpy a buffer."""
        self.arr.take(raw, out=out, mode="clip")


class _State:
    """What one :class:`Dicts` keeps for ``from_block``: the C hash tables and the remaps."""

    def __init__(self, sp: Any) -> None:
        lits = uri_literals()
        self.scan = sp.scan_state(secrets.randbits(64), lits)
        self.lit_bits = {lit: 1 << k for k, lit in enumerate(lits)}   # bits of scan_block's lits
        self.tables = sp.scan_tables()
        missing = set(TABLES) - {name for name, _ in self.tables} - {"object"}
        if missing:
            raise RuntimeError(f"_speedups.scan_block does not fill the tables {sorted(missing)}")
        self.remaps = [_Remap() for _ in self.tables]
        self.unknown = 0     # raw codes whose table code is not known (a first line that did not parse)


def _state(dicts: Dicts, sp: Any) -> _State:
    st = getattr(dicts, "_colblock_state", None)
    if st is None:
        st = _State(sp)
        dicts._colblock_state = st  # type: ignore[attr-defined]
    return st


def split_blocks(data: bytes, size: int) -> list[bytes]:
    """``data`` cut into blocks of about ``size`` bytes, each ending just after a newline (or at the end)."""
    out, i = [], 0
    while i < len(data):
        j = data.find(b"\n", i + max(size, 1) - 1)
        j = len(data) if j < 0 else j + 1
        out.append(data[i:j])
        i = j
    return out


def _item(data: bytes, a: int, b: int, log_object: str, line: int, offset: int) -> Any:
    """The item parse_access_bytes gives for the line data[a:b] (the same C parse_block, one line)."""
    return access_log.speedups.parse_block(data[a:b], log_object, line, offset, True, malformed_of)[0]


def _add_all(table: Table, vals: list) -> Iterable[int]:
    """The codes of ``vals`` in ``table``, adding the new ones (``Table.add`` each; in bulk when all are
    new and distinct, the usual case for values whose raw bytes were never seen)."""
    index, values = table.index, table.values
    start, known = len(values), len(index)
    codes = range(start, start + len(vals))
    if index.keys().isdisjoint(vals):
        index.update(zip(vals, codes))
        if len(index) == known + len(vals):
            values.extend(vals)
            return codes
        for v in vals:           # a value twice: undo, then one at a time
            index.pop(v, None)
    return map(table.add, vals)


def _compact_times(new: list) -> list:
    """The C scan's new ``time`` values as ``TimeTable`` keeps them: the epoch alone when canonical.
    The scan gives that already (an int), or ``(epoch, iso)``, its iso the epoch formatted in UTC (as
    ``access_log.parse_time``): for epochs in [0, TS_CANONICAL) that is ``format_ts(epoch)``."""
    if all(type(v) is int for v in new):
        return new
    return [v[0] if type(v) is tuple and type(v[0]) is int and 0 <= v[0] < TS_CANONICAL else v for v in new]


def _ts_ahead(table: Table) -> None:
    """Extend the time table's cached epoch seconds (``Dicts.ts_array``: ``float(time_ts(value))`` per value)
    to the values added since, in bulk when they are all ints (the C scan's); otherwise
    ``Table.derived`` computes them when asked."""
    arr = table._derived.get("ts")
    have = 0 if arr is None else len(arr)
    if have >= len(table.values):
        return
    try:
        secs = time_ts_list(table.values[have:])
        if set(map(type, secs)) != {int}:
            return
        new = np.fromiter(secs, np.float64, len(secs))
    except (TypeError, IndexError, KeyError, OverflowError, ValueError):
        return
    table._derived["ts"] = appended(arr, new)


def _num(v: Any) -> int:
    """One value of an int64 column as columns._int_column writes it."""
    return -1 if v is None else (v if type(v) is int and 0 <= v < 1 << 63 else -2)


def from_block(data: bytes, log_object: str, first_line: int, first_offset: int, dicts: Dicts) -> ColumnBatch:
    """The column batch of a block of complete access-log lines (see the module docstring)."""
    sp = access_log.speedups
    if sp is None or not hasattr(sp, "scan_block"):
        return EventBlockBatch(data, first_offset, dicts,
                               parse_access_bytes(data, log_object, first_line, first_offset, True))
    st = _state(dicts, sp)
    n, b_codes, b_nums, b_starts, b_ends, b_flags, b_lits, bases, news = sp.scan_block(data, st.scan)
    raw = np.frombuffer(b_codes, dtype=CODE_DTYPE).reshape(len(st.tables), n)
    nums = np.frombuffer(b_nums, dtype=np.int64).reshape(len(NUMBERS), n)
    starts = np.frombuffer(b_starts, dtype=np.int64)
    flags = np.frombuffer(b_flags, dtype=np.uint8)
    events: dict[int, Any] = {}          # line -> its item, for the lines parsed here

    def parsed(li: int) -> Any:
        item = events.get(li)
        if item is None:
            a = int(starts[li])
            item = events[li] = _item(data, a, int(starts[li + 1]), log_object, first_line + li, first_offset + a)
        return item

    # new raw codes -> table codes
    for k, (name, direct) in enumerate(st.tables):
        remap, table = st.remaps[k], dicts[name]
        if remap.n - 1 < bases[k]:       # codes added by a scan that failed midway: not known
            missing = bases[k] - remap.n + 1
            remap.extend(iter([-1] * missing), missing)
            st.unknown += missing
        new = news[k]
        if direct:
            if name == "time":   # a code per second, found by the scan; not indexed here (columns.TimeTable)
                new = _compact_times(new)
                start = len(table.values)
                table.values.extend(new)
                remap.extend(range(start, len(table.values)), len(new))
            else:
                remap.extend(_add_all(table, new), len(new))
            if name == "time" and new:
                _ts_ahead(table)
            continue
        lines = np.frombuffer(new, dtype=np.int32).tolist()
        if not lines:
            continue
        codes = []
        for li in lines:
            item = parsed(li)
            codes.append(table.add(dicts.value_of(name, item)) if type(item) is Event else -1)
        remap.extend(codes, len(codes))
        st.unknown += codes.count(-1)

    out = np.empty((len(st.tables), n), dtype=CODE_DTYPE)
    for k in range(len(st.tables)):
        st.remaps[k].map(raw[k], out[k])

    # lines left to Python (and any line with a raw code whose value is unknown)
    todo = np.flatnonzero((out < 0).any(axis=0) if st.unknown else flags & SLOW)
    others: list = []
    drop: list[int] = []
    demoted = 0
    if len(todo):
        nums = nums.copy()
        for li in todo.tolist():
            item = parsed(li)
            if not flags[li] & SLOW:
                demoted += 1
            if type(item) is not Event:
                others.append(item)
                drop.append(li)
                continue
            for k, (name, _) in enumerate(st.tables):
                code = out[k, li] = dicts[name].add(dicts.value_of(name, item))
                r = raw[k, li]
                if r > 0 and st.remaps[k].arr[r] < 0:   # learn a raw code left unknown
                    st.remaps[k].arr[r] = code
                    st.unknown -= 1
            for j, field in enumerate(NUMBERS):
                nums[j, li] = _num(getattr(item, field))

    if drop:
        keep = np.ones(n, dtype=bool)
        keep[drop] = False
        line_of_row = np.flatnonzero(keep)
        out = out[:, keep]
        nums = nums[:, keep]
    else:
        line_of_row = np.arange(n, dtype=np.int64)
    codes = {name: out[k] for k, (name, _) in enumerate(st.tables)}
    codes["object"] = np.full(len(line_of_row), dicts["object"].add(log_object), dtype=CODE_DTYPE)
    batch = BlockBatch(dicts, len(line_of_row), {name: codes[name] for name in TABLES},
                       {name: nums[j] for j, name in enumerate(NUMBERS)},
                       line_of_row + first_line, starts[line_of_row] + first_offset, others)
    batch.data, batch.log_object = data, log_object
    batch.first_line, batch.first_offset = first_line, first_offset
    batch._starts, batch._ends = starts, np.frombuffer(b_ends, dtype=np.int64)
    batch._flags, batch._line_of_row = flags, line_of_row
    batch._lits, batch._lit_bits = np.frombuffer(b_lits, dtype=np.uint64), st.lit_bits
    if drop:
        batch._lits = batch._lits[line_of_row]
    if events:
        row_of_line = np.full(n, -1, dtype=np.int64)
        row_of_line[line_of_row] = np.arange(len(line_of_row))
        batch._events = {int(row_of_line[li]): ev for li, ev in events.items() if type(ev) is Event}
    batch.demoted = demoted
    return batch


class BlockBatch(ColumnBatch):
    """A batch read from access-log bytes by :func:`from_block`; keeps ``data`` for events and spills.

    ``demoted`` counts the lines the C scan took but that were parsed in Python all the same, because
    a raw code's value was not known: its first line did not parse (the scan's checks missed a
    malformed form: the tests hold this to 0), or an earlier scan_block raised midway."""

    data: bytes
    log_object: str
    first_line: int
    first_offset: int
    demoted: int = 0

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._events: dict[int, Event] = {}
        self._joined: dict[str, Any] = {}
        self._low: bytes | None = None
        self._unsure: np.ndarray | None = None   # rows whose uri_hits are not the scan's exact verdict

    def event(self, i: int) -> Event:
        ev = self._events.get(i)
        if ev is None:
            li = int(self._line_of_row[i])
            a = int(self._starts[li])
            ev = _item(self.data, a, int(self._starts[li + 1]), self.log_object, self.first_line + li,
                       self.first_offset + a)
            self._events[i] = ev
        return ev

    def text(self, field: str) -> list[str]:
        if field == "key":
            vals = self.values("key")
        elif field == "ua":
            vals = [v[0] for v in self.values("client")]
        else:
            return super().text(field)
        return [v or "" for v in vals] if None in vals else vals

    def find(self, field: str, literals: Iterable[str]) -> np.ndarray:
        literals = tuple(literals)
        if any(lit in ("", "\n") for lit in literals):   # in every text
            return np.arange(self.n, dtype=np.int64)
        if field in ("key", "ua"):     # exact: the values are in the tables
            from .rules.engine import Joined
            joined = self._joined.get(field)
            if joined is None:
                joined = self._joined[field] = Joined(self.text(field))
            return np.asarray(sorted(joined.find(literals)), dtype=np.int64)
        if field != "uri" or not all(lit.isascii() for lit in literals):
            return super().find(field, literals)
        needles = [(lit[:-1] if lit.endswith("\n") else lit).encode() for lit in literals]
        found = self.uri_hits(literals)
        if found is not None:    # the scan's verdicts; the rows it is not sure of are checked on their text
            if self._unsure is None:
                self._unsure = np.flatnonzero(self._row_flags() & (SLOW | LITS_UNSURE))
            if len(self._unsure):
                found[self._unsure] = False
                self._check(found, self._unsure, needles)
            return np.flatnonzero(found)
        # the request URI is a part of the line's bytes, but where it was redacted or is "-" (the key,
        # URL-decoded), and on lines parsed in Python: those rows are checked on their exact text
        found = np.zeros(self.n, dtype=bool)
        for b in needles:
            found |= self._rows_with(b)
        flags = self._row_flags()
        exact = np.flatnonzero(flags & (SLOW | LITS_UNSURE))
        for b in _SECRETS:
            exact = np.union1d(exact, np.flatnonzero(self._rows_with(b)))
        keyed = np.setdiff1d(np.flatnonzero(flags & NO_URI), exact)   # the text is the key
        self._check(found, keyed, needles, [v or "" for v in self.values("key", keyed)])
        return np.flatnonzero(self._check(found, exact, needles)).astype(np.int64)

    def uri_hits(self, literals: Iterable[str]) -> np.ndarray | None:
        """Bool per row: the scan saw one of ``literals`` (ASCII case-insensitively) in the row's
        request URI as the event has it (redacted), else in its URL-decoded key: a superset (True where
        the redaction is not certain: flag LITS_UNSURE); False on rows parsed in Python (flag SLOW: not
        looked at). None unless every literal is one the scan looks for
        (:func:`uri_literals`)."""
        mask = 0
        for lit in literals:
            bit = self._lit_bits.get(lit)
            if bit is None:
                return None
            mask |= bit
        return (self._lits & np.uint64(mask)) != 0

    def _row_flags(self) -> np.ndarray:
        return self._flags[self._line_of_row] if len(self._line_of_row) != len(self._flags) else self._flags

    def _check(self, found: np.ndarray, rows: np.ndarray, needles: list[bytes],
               texts: list[str] | None = None) -> np.ndarray:
        """Set ``found[i]`` for the ``rows`` whose uri text (``texts``, else the event's) holds a needle."""
        if not len(rows):
            return found
        if texts is None:
            from .rules.engine import field_values
            texts = field_values("uri", [self.event(int(i)) for i in rows])
        for i, t in zip(rows.tolist(), texts):
            if not found[i]:
                low = t.encode("utf-8", "surrogatepass").lower()
                for b in needles:
                    if b in low:
                        found[i] = True
                        break
        return found

    def _rows_with(self, needle: bytes) -> np.ndarray:
        """Bool per row: the row's line (lower-cased) holds ``needle``."""
        if self._low is None:
            self._low = self.data.lower()
            self._start_list = self._starts.tolist()
        starts = self._start_list
        hit = np.zeros(len(starts) - 1, dtype=bool)
        find = self._low.find
        p = find(needle)
        while p != -1:
            li = bisect_right(starts, p) - 1
            hit[li] = True
            p = find(needle, starts[li + 1])
        return hit[self._line_of_row]

    def spill_payloads(self, rows: Iterable[int] | None = None) -> list[bytes]:
        """Per row, ``b"%d\\t%s\\n" % (offset, raw as UTF-8)``, what the store spills for a row."""
        rows = np.arange(self.n) if rows is None else np.fromiter(rows, dtype=np.int64)
        lines = self._line_of_row[rows]
        data = self.data
        out = [b"%d\t%s\n" % (off, data[a:b]) for off, a, b in
               zip(self.offset[rows].tolist(), self._starts[lines].tolist(), self._ends[lines].tolist())]
        for j in np.flatnonzero(self._flags[lines] & SLOW).tolist():
            out[j] = _spill(self.event(int(rows[j])))
        return out


def _spill(ev: Event) -> bytes:
    return b"%d\t%s\n" % (ev.offset, ev.raw.encode("utf-8", "surrogatepass"))


class EventBlockBatch(EventBatch):
    """:func:`from_block` without the C extension: the batch of the parsed events, with ``data`` and
    :meth:`spill_payloads` as :class:`BlockBatch` has them."""

    def __init__(self, data: bytes, first_offset: int, dicts: Dicts, items: list) -> None:
        events = [e for e in items if type(e) is Event]
        super().__init__(dicts, events, [e for e in items if type(e) is not Event])
        self.data = data
        self.first_offset = first_offset

    def spill_payloads(self, rows: Iterable[int] | None = None) -> list[bytes]:
        return [_spill(ev) for ev in self.events(rows)]


__all__ = ["BlockBatch", "EventBlockBatch", "from_block", "split_blocks"]
