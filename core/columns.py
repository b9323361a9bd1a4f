"""Column batches: many events as typed arrays and dictionary codes, for the fast ingest path.

A :class:`ColumnBatch` is what the store (:meth:`EventStore.append_columns`) and the rule engine
(:meth:`RuleEngine.process_columns`) read when they take events in bulk: no :class:`Event` per row,
only numpy arrays. Repeated values are *dictionary codes* into the tables of a :class:`Dicts`, which is
shared by every batch of one pipeline (one ingest, one app) and only grows: a code means the same value
in every batch of that pipeline, so consumers keep per-code verdicts (``Table.derived``) and extend
them as tables grow.

Two ways to build a batch, with the same result for the same events:

* :func:`from_events` over :class:`Event` objects (any source, CloudTrail, the pure-Python parser);
* ``s3tail.core.colblock.from_block`` over a block of access-log bytes, in C: the line is split into
  fields, each table's raw field bytes are looked up in a C hash table (raw bytes -> code), and only
  the first line carrying a value not seen before is parsed fully, by the same parser as everywhere,
  to learn what that value decodes to. Lines the C code does not handle take the ``Event`` path.

The full :class:`Event` of a row is always available (:meth:`ColumnBatch.event`), identical to what the
reader yields for that line: the rules ask for it only for the few rows that need more than codes.
"""
from __future__ import annotations

import time as _time
from operator import itemgetter
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .event import FIELD_INDEX, Event

# table name -> the event fields one code stands for (a plain value when one field, else a tuple)
TABLES: dict[str, tuple[str, ...]] = {
    "identity": ("requester", "principal_name", "session_name", "account_id", "principal_type"),
    "request": ("source", "operation", "action", "http_status", "error_code"),
    "client": ("user_agent", "tls_version", "signature_version"),
    "xport": ("cipher_suite", "host_header"),
    "bucket": ("bucket",),
    "key": ("key",),
    "ip": ("remote_ip",),
    "time": ("ts", "time"),
    "object": ("log_object",),
}
# int64 columns: -1 = None, -2 = a value the column cannot hold (ask the event)
NUMBERS = ("bytes_sent", "object_size", "total_time")
CODE_DTYPE = np.int32


_time_cache: dict[float, str] = {}
_day_cache: dict[int, str] = {}
TS_CANONICAL = 253402300800   # epoch seconds below this (year 9999) and >= 0 format as YYYY-mm-ddTHH:MM:SSZ


def format_ts(ts: float) -> str | None:
    """Epoch seconds -> ``YYYY-mm-ddTHH:MM:SSZ`` (the event model's ``time``)."""
    if ts != ts:
        return None
    hit = _time_cache.get(ts)
    if hit is None:
        try:
            if 0 <= ts < TS_CANONICAL and ts == int(ts):  # whole seconds up to year 9999: the day cached
                day, sec = divmod(int(ts), 86400)
                prefix = _day_cache.get(day)
                if prefix is None:
                    if len(_day_cache) > 4096:
                        _day_cache.clear()
                    prefix = _day_cache[day] = _time.strftime("%Y-%m-%dT", _time.gmtime(day * 86400))
                hit = f"{prefix}{sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}Z"
            else:
                hit = _time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime(ts))
        except (OverflowError, OSError, ValueError):
            return None
        if len(_time_cache) > 8192:
            _time_cache.clear()
        _time_cache[ts] = hit
    return hit


class Table:
    """The distinct values of one table: ``values[code]``, ``index[value] = code``; append-only."""

    __slots__ = ("name", "fields", "values", "index", "_derived")

    def __init__(self, name: str, fields: tuple[str, ...]):
        self.name, self.fields = name, fields
        self.values: list[Any] = []
        self.index: dict[Any, int] = {}
        self._derived: dict[Any, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.values)

    def add(self, value: Any) -> int:
        """The code of ``value`` (hashable), adding it when new."""
        code = self.index.get(value)
        if code is None:
            code = self.index[value] = len(self.values)
            self.values.append(value)
        return code

    def encode(self, vals: Sequence[Any]) -> np.ndarray:
        """Codes for ``vals``, adding the new ones."""
        index = self.index
        try:
            return np.fromiter(map(index.__getitem__, vals), dtype=CODE_DTYPE, count=len(vals))
        except (KeyError, TypeError):
            pass
        add = self.add
        try:
            return np.fromiter(map(add, vals), dtype=CODE_DTYPE, count=len(vals))
        except TypeError:  # an unhashable value (an odd in-memory event): keep its text
            fix = hashable if len(self.fields) == 1 else (lambda t: tuple(map(hashable, t)))
            return np.fromiter((add(fix(v)) for v in vals), dtype=CODE_DTYPE, count=len(vals))

    def derived(self, name: Any, fn: Callable[[Any], Any], dtype: Any = bool) -> np.ndarray:
        """``arr[code] = fn(values[code])`` for every code, computed once per value (cached under
        ``name``, extended as the table grows). ``name`` must identify ``fn``'s meaning."""
        arr = self._derived.get(name)
        n = len(self.values)
        if arr is None or len(arr) < n:
            start = 0 if arr is None else len(arr)
            new = np.fromiter((fn(v) for v in self.values[start:n]), dtype=dtype, count=n - start)
            arr = self._derived[name] = appended(arr, new)
        return arr


def appended(arr: np.ndarray | None, new: np.ndarray) -> np.ndarray:
    """``arr`` followed by ``new`` (1-d, one dtype), as a view of a buffer with room to spare: a cache
    per dictionary code extended batch after batch is not copied whole each time (the buffer grows by
    half when full). Views handed out earlier keep their values; only the latest view of a buffer may be
    extended (each cache keeps its latest, and extends that)."""
    k = len(new)
    if arr is None:
        base = np.empty(max(2 * k, 1024), new.dtype)
        base[:k] = new
        return base[:k]
    n = len(arr)
    base = arr.base
    if (isinstance(base, np.ndarray) and base.ndim == 1 and base.dtype == arr.dtype and arr.dtype == new.dtype
            and len(base) >= n + k and arr.ctypes.data == base.ctypes.data and arr.strides == base.strides):
        base[n:n + k] = new   # (past the end of every view of it made so far)
        return base[:n + k]
    base = np.empty(max((n + k) * 3 // 2, 1024), np.result_type(arr.dtype, new.dtype))
    base[:n] = arr
    base[n:n + k] = new
    return base[:n + k]


class TimeTable(Table):
    """The ``time`` table, compact: a value is the epoch seconds alone (an ``int``) when the event's
    ``time`` is that int formatted (:func:`format_ts`: always so for access logs), else the
    ``(ts, time)`` tuple. A day of logs has up to 86,400 distinct seconds: an int each instead of a
    tuple, an int and a string. Read values with :func:`time_ts` and :func:`time_text`.

    The C scan (``colblock.from_block``) finds its codes by epoch second in its own map and adds its
    values without indexing them here (the index of 100,000 seconds would cost 5 MB), so a value the
    event path also adds (lines left to Python) may hold two codes. Nothing compares time codes:
    consumers read a code's ``ts`` and ``time``."""

    __slots__ = ()

    def add(self, value: Any) -> int:
        return Table.add(self, compact_time(value))

    def encode(self, vals: Sequence[Any]) -> np.ndarray:
        return Table.encode(self, list(map(compact_time, vals)))


def compact_time(value: Any) -> Any:
    """A ``time`` table value from ``(ts, time)``: ``ts`` when it is an int whose formatted form is
    ``time``, else the tuple as it is."""
    if type(value) is tuple and len(value) == 2:
        ts = value[0]
        if type(ts) is int and 0 <= ts < TS_CANONICAL and value[1] == format_ts(ts):
            return ts
    return value


def time_ts(value: Any) -> Any:
    """The event's ``ts`` of a ``time`` table value."""
    return value if type(value) is int else value[0]


def time_ts_list(values: Sequence[Any]) -> list:
    """``list(map(time_ts, values))``: the values themselves when all are plain ints (the usual case:
    one type check each, no call per value)."""
    if set(map(type, values)) <= {int}:
        return list(values)
    return list(map(time_ts, values))


def time_text(value: Any) -> Any:
    """The event's ``time`` of a ``time`` table value."""
    return format_ts(value) if type(value) is int else value[1]


class TimeTexts:
    """``texts[code]``: the event ``time`` of a code of a ``time`` table, made when asked (samples of
    findings read back)."""

    __slots__ = ("values",)

    def __init__(self, table: Table) -> None:
        self.values = table.values

    def __getitem__(self, code: int) -> Any:
        return time_text(self.values[code])


MAX_VALUES = 2_000_000  # a pipeline starts a new Dicts past this many values (a long follow)


class Dicts:
    """The tables of one pipeline (see the module docstring). They only grow: a long-running
    pipeline (a follow) replaces its Dicts once :meth:`full`; consumers key their caches by the
    Dicts object, so batches of the new one simply start new caches."""

    def __init__(self) -> None:
        self.tables = {name: (TimeTable if name == "time" else Table)(name, fields) for name, fields in TABLES.items()}
        self._getters = {name: itemgetter(*(FIELD_INDEX[f] for f in fields)) for name, fields in TABLES.items()}

    def __getitem__(self, name: str) -> Table:
        return self.tables[name]

    def full(self, limit: int = MAX_VALUES) -> bool:
        """Whether the tables hold more than ``limit`` values in all."""
        return sum(len(t.values) for t in self.tables.values()) > limit

    def ts_array(self) -> np.ndarray:
        """Epoch seconds per ``time`` code (float64, NaN where the event has no time)."""
        return self.tables["time"].derived("ts", _ts_of, np.float64)

    def value_of(self, name: str, ev: Event) -> Any:
        """The table value of an event (a plain value or a tuple in the table's field order)."""
        return self._getters[name](ev)


def _ts_of(value: Any) -> float:
    if type(value) is int:
        return float(value)
    ts = value[0]
    try:
        return float(ts) if ts is not None else float("nan")
    except (TypeError, ValueError, OverflowError):
        return float("nan")


class ColumnBatch:
    """Rows of one batch: ``codes[table]`` (int32 per row), ``nums[name]`` (int64 per row),
    ``log_line`` and ``offset`` (int64 per row), and ``others``: the batch's Malformed and Skipped
    items (not rows). ``n`` rows; :meth:`event` gives the full event of a row."""

    def __init__(self, dicts: Dicts, n: int, codes: dict[str, np.ndarray], nums: dict[str, np.ndarray],
                 log_line: np.ndarray, offset: np.ndarray, others: list | None = None):
        self.dicts = dicts
        self.n = n
        self.codes = codes
        self.nums = nums
        self.log_line = log_line
        self.offset = offset
        self.others = others if others is not None else []
        self._ts: np.ndarray | None = None

    def __len__(self) -> int:
        return self.n

    @property
    def ts(self) -> np.ndarray:
        """Epoch seconds per row (float64, NaN = no time)."""
        if self._ts is None:
            self._ts = self.dicts.ts_array()[self.codes["time"]]
        return self._ts

    def values(self, table: str, rows: Any = None) -> list:
        """The table values of ``rows`` (all when None)."""
        codes = self.codes[table] if rows is None else self.codes[table][rows]
        vals = self.dicts[table].values
        return [vals[c] for c in codes.tolist()]

    def event(self, i: int) -> Event:
        raise NotImplementedError

    def events(self, rows: Iterable[int] | None = None) -> list[Event]:
        """The full events of ``rows`` (all when None), in that order."""
        if rows is None:
            rows = range(self.n)
        return [self.event(int(i)) for i in rows]

    def text(self, field: str) -> list[str]:
        """Per row, the text the rules' literal prefilters search: ``key``, ``ua``, or ``uri`` (the
        request URI, else the key); ``""`` where absent."""
        from .rules.engine import field_values
        return field_values(field, self.events())

    def find(self, field: str, literals: Iterable[str]) -> np.ndarray:
        """Rows (ascending) whose ``field`` text (see :meth:`text`) may contain one of the lower-case
        ``literals``: a superset of the rows that do (a necessary condition, as rule prefilters need)."""
        from .rules.engine import Joined
        found = Joined(self.text(field)).find(tuple(literals))
        return np.asarray(sorted(found), dtype=np.int64)


class EventBatch(ColumnBatch):
    """A batch over Event objects (:func:`from_events`)."""

    def __init__(self, dicts: Dicts, events: list[Event], others: list | None = None):
        codes = {name: dicts[name].encode(list(map(dicts._getters[name], events))) for name in TABLES}
        nums = {name: _int_column([e[FIELD_INDEX[name]] for e in events]) for name in NUMBERS}
        super().__init__(dicts, len(events), codes, nums,
                         _int_column([e.log_line for e in events]),
                         np.array([o if type(o) is int else -1 for o in (e.offset for e in events)],
                                  dtype=np.int64), others)
        self._events = events

    def event(self, i: int) -> Event:
        return self._events[i]

    def events(self, rows: Iterable[int] | None = None) -> list[Event]:
        if rows is None:
            return list(self._events)
        evs = self._events
        return [evs[int(i)] for i in rows]

    def text(self, field: str) -> list[str]:
        from .rules.engine import field_values
        return field_values(field, self._events)


class _Joined(dict):
    """The columns of a :class:`ConcatBatch` (``codes`` or ``nums``), each joined from its parts when
    first read: a column nobody reads (the rules read few of the numbers) is not copied."""

    def __init__(self, parts: list[ColumnBatch], attr: str):
        super().__init__()
        self._parts, self._attr = parts, attr

    def __missing__(self, name: str) -> np.ndarray:
        col = self[name] = np.concatenate([getattr(p, self._attr)[name] for p in self._parts])
        return col


class ConcatBatch(ColumnBatch):
    """Several batches of one :class:`Dicts` as one (:func:`concat`): arrays joined (each column when
    first read), the full events, texts and literal searches asked of the part a row came from."""

    def __init__(self, parts: list[ColumnBatch]):
        dicts = parts[0].dicts
        super().__init__(dicts, sum(p.n for p in parts), _Joined(parts, "codes"), _Joined(parts, "nums"),
                         np.concatenate([p.log_line for p in parts]), None, [o for p in parts for o in p.others])
        self.parts = parts
        self.starts = np.cumsum([0] + [p.n for p in parts])

    @property   # type: ignore[override]
    def offset(self) -> np.ndarray:
        off = self.__dict__.get("_offset")
        if off is None:
            off = self.__dict__["_offset"] = np.concatenate([p.offset for p in self.parts])
        return off

    @offset.setter
    def offset(self, value: Any) -> None:
        self.__dict__["_offset"] = value

    def _split(self, rows: Any) -> list[tuple[ColumnBatch, np.ndarray, np.ndarray]]:
        """(part, rows of the part, their places in ``rows``) for the parts that ``rows`` touches."""
        rows = np.asarray(rows, dtype=np.int64)
        which = np.searchsorted(self.starts, rows, side="right") - 1
        out = []
        for k in np.unique(which).tolist():
            at = np.flatnonzero(which == k)
            out.append((self.parts[k], rows[at] - self.starts[k], at))
        return out

    def event(self, i: int) -> Event:
        k = int(np.searchsorted(self.starts, i, side="right")) - 1
        return self.parts[k].event(int(i - self.starts[k]))

    def events(self, rows: Iterable[int] | None = None) -> list[Event]:
        if rows is None:
            return [e for p in self.parts for e in p.events()]
        rows = np.asarray(list(rows) if not isinstance(rows, np.ndarray) else rows, dtype=np.int64)
        out: list[Any] = [None] * len(rows)
        for part, local, at in self._split(rows):
            for j, ev in zip(at.tolist(), part.events(local.tolist())):
                out[j] = ev
        return out

    def text(self, field: str) -> list[str]:
        return [t for p in self.parts for t in p.text(field)]

    def find(self, field: str, literals: Iterable[str]) -> np.ndarray:
        literals = tuple(literals)
        found = [p.find(field, literals) + self.starts[k] for k, p in enumerate(self.parts)]
        return np.concatenate(found).astype(np.int64) if found else np.zeros(0, dtype=np.int64)


class ConcatBlockBatch(ConcatBatch):
    """A :class:`ConcatBatch` of parts that all have ``spill_payloads`` (blocks of access-log lines)."""

    def spill_payloads(self, rows: Any = None) -> list[bytes]:
        if rows is None:
            return [b for p in self.parts for b in p.spill_payloads()]
        rows = np.asarray(rows, dtype=np.int64)
        out: list[Any] = [None] * len(rows)
        for part, local, at in self._split(rows):
            for j, payload in zip(at.tolist(), part.spill_payloads(local)):
                out[j] = payload
        return out


def concat(batches: list[ColumnBatch]) -> ColumnBatch:
    """One batch of several of one :class:`Dicts` (the rules' fixed costs per batch are paid once):
    the batch itself when there is one."""
    batches = [b for b in batches if b.n or b.others]
    if not batches:
        raise ValueError("concat of no batches")
    if len(batches) == 1:
        return batches[0]
    if any(b.dicts is not batches[0].dicts for b in batches):
        raise ValueError("concat of batches of different Dicts")
    if all(hasattr(b, "spill_payloads") for b in batches):
        return ConcatBlockBatch(batches)
    return ConcatBatch(batches)


def from_events(items: Iterable[Any], dicts: Dicts) -> EventBatch:
    """A batch of the :class:`Event` items; other items (Malformed, Skipped) go to ``others``."""
    items = list(items)
    events = [e for e in items if type(e) is Event]
    others = [e for e in items if type(e) is not Event] if len(events) != len(items) else []
    return EventBatch(dicts, events, others)


def hashable(v: Any) -> Any:
    return v if isinstance(v, (str, int, float, type(None))) else str(v)


def _int_column(vals: list) -> np.ndarray:
    """int64 column: None -> -1, a value that is not a non-negative int below 2**63 -> -2."""
    try:
        if None not in vals:
            arr = np.array(vals, dtype=np.int64)
            if not len(arr) or arr.min() >= 0:
                return arr
    except (TypeError, ValueError, OverflowError):
        pass
    return np.array([-1 if v is None else (v if type(v) is int and 0 <= v < 1 << 63 else -2) for v in vals],
                    dtype=np.int64)


__all__ = ["CODE_DTYPE", "ColumnBatch", "ConcatBatch", "Dicts", "EventBatch", "NUMBERS", "TABLES", "Table", "TimeTable",
           "TimeTexts", "compact_time", "concat", "format_ts", "from_events", "time_text", "time_ts"]
