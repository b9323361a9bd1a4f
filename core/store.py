"""A compact columnar store of events: what the terminal app's Requests table, filters and facets run on.

Layout (no dict, no Event and no Python object per row):

* **Dictionary columns** (:data:`COLUMNS`): each distinct value is kept once (``values`` list, a
  ``dict`` value -> code); each row holds a code in a numpy array that starts as ``uint8`` and widens to
  ``uint16``/``int32`` when the dictionary outgrows it. Correlated fields share one column whose values
  are tuples (requester, who, principal name, session name: one code a row), with a per-field dictionary
  and a code map beside it. Each column also keeps live-row counts per code, updated per appended and
  per evicted batch: the facet counters (a field's counts are a ``bincount`` over the code map).
* **Numbers**: ``ts`` (uint32 whole seconds, widened to float64 for a time that needs it; NaN = no
  time), ``bytes_sent``, ``object_size`` (int32), ``total_time`` (int16 milliseconds) (``-1`` = null,
  ``-2`` = not representable, such as a size past 2 GiB: read back from the event).
* **Provenance**: ``log_object`` (a dictionary column), ``log_line`` (uint32), ``offset`` (uint32,
  widened to int64 once a file offset or a spill segment needs it) and ``flags`` (uint8). Everything else (request URI, referrer, host id, request id, version id, the raw line, the
  CloudTrail record) is **not in memory**: :meth:`EventStore.get` reads the raw line back and parses it
  again with the same parser (and the same redaction as when it was appended). A plain access-log file
  on this host is read at the event's byte ``offset``; anything else (stdin, S3 objects, gzip members,
  CloudTrail records, events built in memory) is appended to a *spill file* in ``spill_dir`` (the
  system temp dir by default; unlinked at once, so nothing is left behind) and read from there.
  Spill files rotate every :data:`SPILL_SEGMENT` bytes and a segment is released once all its rows were
  evicted. Invariant relied on: an access-log event with ``raw`` is what the parser gives for that line,
  and a CloudTrail event is what ``cloudtrail.parse_record`` gives for its ``detail`` record (true for
  everything the readers and sources yield). If the file changed since (rotated, truncated in place),
  ``get`` notices (the re-parsed event disagrees with the columns) and returns the event rebuilt from the
  columns, with the fields that are not kept as null.

**Positions.** A *position* is the rank of a row in event-time order (``ts``, ties in arrival order;
rows without a time first) among the rows held now: ``0`` is the oldest, ``len(store) - 1`` the newest.
:meth:`get`, :meth:`row_cells`, :meth:`filter`, :meth:`filter_rows`, :meth:`facets`, :meth:`export`
all speak positions, and :meth:`filter` returns them ascending (time order). Positions stay valid
until the layout changes: :attr:`layout` is bumped when rows arrive *before* the newest row held (late
S3 objects) or when rows are evicted; a batch whose events are all at or after the newest row held
takes positions ``len(store) .. len(store) + len(batch) - 1`` and moves nothing
(:meth:`append_batch` returns those positions, or ``None`` when existing positions moved).

Filters (:mod:`s3tail.core.filter`) run vectorised: each term is evaluated once per *distinct* value of
the columns it reads (a glob, a CIDR, a status range, a fuzzy word through ``rapidfuzz.process.cdist``),
giving a boolean lookup table indexed by code; ``table[codes]`` is the row mask. ``since``/``until``
compare the ``ts`` array. Tables are cached per term and extended when the dictionary grows, so
:meth:`filter_rows` on a new batch only evaluates the values the batch brought.

Physical layout: rows are appended to the arrays in arrival order, and ``_order`` (int32) lists them
in time order. While every batch arrives in time order the two coincide: the order is implied (not
stored) and filters read the arrays as contiguous slices; after late rows the order is written out,
and filters compute the mask over all rows and gather it once through it. Evicted rows are dropped physically in batches (:data:`COMPACT_MIN`), rewriting the live
rows in time order, which also restores the contiguous case.

Memory: about 33 bytes per row (37 with late rows, 4 more with float times) plus the dictionaries
(:meth:`EventStore.memory`); ``max_rows`` (default :func:`default_max_rows`) evicts the oldest rows (by
time) and keeps the facet counters right.
"""
from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from itertools import compress, repeat
from operator import is_
from typing import Any, Iterable, Iterator

import numpy as np

from . import access_log, cloudtrail
from .event import ALL_FIELDS, CONTRACT_FIELDS, FIELD_INDEX, Event, Malformed, Skipped, make_event
from .columns import _time_cache, format_ts
from .columns import hashable as _hashable
from .filter import Filter, event_value
from .redact import redact_uri

ROW_FIELDS = ("time", "bucket", "who", "action", "key", "http_status", "bytes_sent", "remote_ip")
FACET_FIELDS = ("bucket", "requester", "http_status", "action", "remote_ip", "error_code",
                "tls_version", "signature_version")
# dictionary columns: name -> fields (correlated fields share one code per row)
COLUMNS: dict[str, tuple[str, ...]] = {
    "identity": ("requester", "principal_name", "session_name", "who"),  # who: derived, as Event.who
    "request": ("source", "operation", "action", "http_status", "error_code"),
    "client": ("user_agent", "tls_version", "signature_version"),
    "origin": ("log_object", "bucket"),
    "key": ("key",),
    "ip": ("remote_ip",),
}
DICT_FIELDS = tuple(f for fields in COLUMNS.values() for f in fields)
INT_COLUMNS = ("bytes_sent", "object_size", "total_time")
BYTES_PER_ROW_BUDGET = 150
SPILL_SEGMENT = 256 << 20
COMPACT_MIN = 4096  # evicted rows are dropped physically once there are this many (and 1/8 of the live)
# the number columns' dtypes: a value past the dtype's max is -2 and read back from the event (_narrow);
# a request's total time in ms past 32.7 s is rare (none in a million generated lines)
INT_DTYPES = {"bytes_sent": np.int32, "object_size": np.int32, "total_time": np.int16}
GROW_DIV = 8       # the row arrays grow by 1/GROW_DIV (+4096 rows) when full: at most 1/8 of them unused
_CHUNK = 65536  # append_batch transposes at most this many events at a time

# flags: bits 0-1 where the row's text lives, then per-row oddities
K_FILE, K_SPILL_LINE, K_SPILL_CT, K_SPILL_EVENT = 0, 1, 2, 3
F_KIND = 3
F_UNREDACTED = 4   # access-log line appended unredacted: parse again with redact=False
F_TIME = 8         # Event.time is not the ts formatted: ask get() for it
F_NUMBERS = 16     # an int column could not hold the value: ask get() for it
_SEG_SHIFT = 32

_WHO = "who"
_INT_TYPES = frozenset((int, type(None)))


def default_max_rows(budget: int = BYTES_PER_ROW_BUDGET, floor: int = 100_000,
                     cap: int = 10_000_000) -> int:
    """Rows the host can hold: half of the available memory at ``budget`` bytes a row, in [floor, cap]."""
    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1_000_000
    return int(min(cap, max(floor, avail // 2 // budget)))


class _Part:
    """The distinct values of one field inside a composite column; ``map[composite code] = part code``."""

    __slots__ = ("values", "index", "map")

    def __init__(self) -> None:
        self.values: list[Any] = []
        self.index: dict[Any, int] = {}
        self.map = np.zeros(0, dtype=np.int32)


class _Column:
    """A dictionary-encoded column over one field, or over a tuple of correlated fields (one code per
    row for, say, requester + who + principal + session). ``values[code]`` (a value, or a tuple in
    ``fields`` order), ``index[value] = code``, ``codes`` per physical row, ``counts[code]`` live rows
    (the facet counters); ``gen`` changes when codes are renumbered."""

    __slots__ = ("name", "fields", "values", "index", "codes", "counts", "gen", "parts", "derive")

    def __init__(self, name: str, fields: tuple[str, ...], capacity: int):
        self.name, self.fields = name, fields
        # a composite column whose last field is ``who`` is keyed by the others; who is derived
        self.derive = fields[-1] == _WHO and len(fields) > 1
        self.values: list[Any] = []
        self.index: dict[Any, int] = {}
        self.codes = np.zeros(capacity, dtype=np.uint8)
        self.counts = np.zeros(0, dtype=np.int64)
        self.gen = 0
        self.parts = {f: _Part() for f in fields} if len(fields) > 1 else None

    def encode(self, vals: Any) -> np.ndarray:
        """Codes for ``vals`` (a sequence), adding new values to the dictionary; counts them as live."""
        try:
            arr = np.fromiter(map(self.index.get, vals), dtype=self.codes.dtype, count=len(vals))
        except TypeError:  # a value not in the dictionary yet (None from get), or an unhashable one
            arr = self._encode_new(vals)
        self.counts += np.bincount(arr, minlength=len(self.counts))
        return arr

    def _encode_new(self, vals: Any) -> np.ndarray:
        index, values = self.index, self.values
        try:
            codes = list(map(index.get, vals))
        except TypeError:  # an unhashable value (an odd in-memory event): keep its text
            fix = _hashable if self.parts is None else (lambda t: tuple(map(_hashable, t)))
            vals = [fix(v) for v in vals]
            codes = list(map(index.get, vals))
        new = list(dict.fromkeys(compress(vals, map(is_, codes, repeat(None)))))
        for i, v in enumerate(new, len(values)):
            index[v] = i
        if self.derive:
            new = [(*t, _who(*t)) for t in new]
        values.extend(new)
        if self.parts is not None:
            for j, part in enumerate(self.parts.values()):
                pcodes = []
                for t in new:
                    c = part.index.get(t[j])
                    if c is None:
                        c = part.index[t[j]] = len(part.values)
                        part.values.append(t[j])
                    pcodes.append(c)
                part.map = np.concatenate((part.map, np.asarray(pcodes, dtype=np.int32)))
        need = len(values) - 1
        if need > np.iinfo(self.codes.dtype).max:
            self.codes = self.codes.astype(np.uint16 if need <= 0xFFFF else np.int32)
        self.counts = np.concatenate((self.counts, np.zeros(len(values) - len(self.counts), dtype=np.int64)))
        return np.fromiter(map(index.__getitem__, vals), dtype=self.codes.dtype, count=len(vals))

    def forget(self, codes: np.ndarray) -> None:
        if len(codes):
            self.counts -= np.bincount(codes, minlength=len(self.counts))

    def field_values(self, field: str) -> list[Any]:
        return self.values if self.parts is None else self.parts[field].values

    def field_codes(self, field: str, rows: Any) -> np.ndarray:
        """Codes into :meth:`field_values` for physical ``rows`` (an index array or a slice)."""
        codes = self.codes[rows]
        return codes if self.parts is None else self.parts[field].map[codes]

    def value(self, field: str, p: int) -> Any:
        code = int(self.codes[p])
        return self.values[code] if self.parts is None else self.values[code][self.fields.index(field)]

    def field_counts(self, field: str, counts: np.ndarray) -> np.ndarray:
        if self.parts is None:
            return counts
        part = self.parts[field]
        return np.bincount(part.map[: len(counts)], weights=counts,
                           minlength=len(part.values)).astype(np.int64)

    def renumber(self, used: np.ndarray, n: int) -> None:
        """Drop the values no live row uses (codes of rows [0, n) renumbered)."""
        new_code = np.cumsum(used) - 1
        self.values = [v for v, u in zip(self.values, used.tolist()) if u]
        self.index = {(v[:-1] if self.derive else v): i for i, v in enumerate(self.values)}
        self.counts = self.counts[used]
        self.codes[:n] = new_code[self.codes[:n]].astype(self.codes.dtype)
        if self.parts is not None:
            for part in self.parts.values():
                part.map = part.map[: len(used)][used]
        self.gen += 1


def _top(values: list[Any], counts: np.ndarray, top: int) -> list[tuple[Any, int]]:
    """The ``top`` values by count (ties: first seen first, like ``Counter.most_common``)."""
    if top <= 0:
        return []
    nz = np.flatnonzero(counts)
    if len(nz) > top:
        kth = counts[nz[np.argpartition(-counts[nz], top - 1)[:top]]].min()
        nz = nz[counts[nz] >= kth]
    order = sorted(nz.tolist(), key=lambda c: (-int(counts[c]), c))[:top]
    return [(values[c], int(counts[c])) for c in order]


def _who(requester: Any, principal_name: Any, session_name: Any) -> Any:
    """:attr:`Event.who` from its parts."""
    if requester is None:
        return "anonymous"
    return session_name or principal_name or requester


class _Spill:
    """Append-only segment files (unlinked at creation) holding raw text for rows not readable from disk."""

    def __init__(self, spill_dir: str | None):
        self.dir = spill_dir
        self.fds: dict[int, int] = {}
        self.sizes: dict[int, int] = {}
        self.live: dict[int, int] = {}
        self.seg = -1

    def write(self, payloads: list[bytes]) -> np.ndarray:
        """Append ``payloads`` (each ending in a newline); their encoded offsets."""
        data = b"".join(payloads)
        if self.seg < 0 or self.sizes[self.seg] + len(data) > SPILL_SEGMENT and self.sizes[self.seg]:
            self._rotate()
        seg, base = self.seg, self.sizes[self.seg]
        fd = self.fds[seg]
        view = memoryview(data)
        while view:
            n = os.pwrite(fd, view, base + len(data) - len(view))
            view = view[n:]
        self.sizes[seg] += len(data)
        self.live[seg] += len(payloads)
        lens = np.fromiter((len(p) for p in payloads), dtype=np.int64, count=len(payloads))
        starts = np.concatenate(([0], np.cumsum(lens)[:-1])) + base
        return starts + (seg << _SEG_SHIFT)

    def _rotate(self) -> None:
        directory = self.dir or tempfile.gettempdir()
        os.makedirs(directory, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix="s3tail-spill-", dir=directory)
        try:
            os.unlink(path)
        except OSError:
            pass
        self.seg += 1
        self.fds[self.seg], self.sizes[self.seg], self.live[self.seg] = fd, 0, 0

    def read(self, encoded: int) -> bytes:
        seg, pos = encoded >> _SEG_SHIFT, encoded & ((1 << _SEG_SHIFT) - 1)
        fd = self.fds.get(seg)
        if fd is None:
            return b""
        out = b""
        size = 4096
        while True:
            chunk = os.pread(fd, size, pos + len(out))
            nl = chunk.find(b"\n")
            if nl >= 0:
                return out + chunk[:nl]
            if not chunk:
                return out
            out += chunk
            size = min(size * 4, 1 << 24)

    def release(self, encoded: np.ndarray) -> None:
        if not len(encoded):
            return
        segs, counts = np.unique(encoded >> _SEG_SHIFT, return_counts=True)
        for seg, n in zip(segs.tolist(), counts.tolist()):
            if seg in self.live:
                self.live[seg] -= n
                if self.live[seg] <= 0 and seg != self.seg:
                    self._drop(seg)

    def _drop(self, seg: int) -> None:
        try:
            os.close(self.fds.pop(seg))
        except OSError:
            pass
        self.sizes.pop(seg, None)
        self.live.pop(seg, None)

    def close(self) -> None:
        for seg in list(self.fds):
            self._drop(seg)
        self.seg = -1

    @property
    def bytes(self) -> int:
        return sum(self.sizes.values())


class EventStore:
    """Events as typed columns; see the module docstring for the layout and what a position is."""

    def __init__(self, max_rows: int | None = None, spill_dir: str | None = None, *,
                 capacity: int = 4096):
        self.max_rows = default_max_rows() if max_rows is None else int(max_rows)
        if self.max_rows < 1:
            raise ValueError("max_rows must be at least 1")
        self.version = 0
        self.layout = 0        # bumped when existing positions move (late rows, eviction)
        self.evicted = 0       # rows evicted so far
        self.ignored = 0       # non-Event items handed to append_batch (not stored)
        self._cap = capacity
        self._n = 0            # physical rows used (live + dead)
        self._cols = {name: _Column(name, fields, capacity) for name, fields in COLUMNS.items()}
        self._field_col = {f: col for col in self._cols.values() for f in col.fields}
        # whole epoch seconds as uint32 until a time needs float64 (none, a fraction, out of range)
        self._ts = np.zeros(capacity, dtype=np.uint32)
        self._ints = {name: np.zeros(capacity, dtype=INT_DTYPES[name]) for name in INT_COLUMNS}
        self._line = np.zeros(capacity, dtype=np.uint32)   # line numbers kept: [0, 2**32), else 0
        self._off = np.zeros(capacity, dtype=np.uint32)    # widened when an offset needs it (_offsets)
        self._flags = np.zeros(capacity, dtype=np.uint8)
        # physical row ids in time order, [o0:o1] live; while _p0 >= 0 it is implied (row o0 + i is
        # physical row _p0 + i) and not allocated: see _materialize_order
        self._order = np.zeros(0, dtype=np.int32)
        self._o0 = self._o1 = 0
        self._p0 = 0  # >= 0: the live rows are physical rows [_p0, _n) in time order (no gather needed)
        self._spill = _Spill(spill_dir)
        self._objects: dict[int, tuple | None] = {}  # log_object code -> (dev, ino, abspath) of a plain file
        self._files: dict[int, Any] = {}
        self._tables: dict[tuple[int, str], tuple[Any, int, np.ndarray]] = {}
        self._remaps: dict[tuple[int, str], tuple[Any, int, np.ndarray]] = {}

    # -- size ------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._o1 - self._o0

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def close(self) -> None:
        """Release the spill files and cached file handles (the store stays usable for reading columns)."""
        self._spill.close()
        for fh in self._files.values():
            fh.close()
        self._files.clear()

    def nbytes(self) -> int:
        """Bytes held by the per-row arrays (capacity included), not counting the dictionaries."""
        arrays = [self._ts, self._line, self._off, self._flags, self._order, *self._ints.values()]
        arrays += [c.codes for c in self._cols.values()]
        return sum(a.nbytes for a in arrays)

    def memory(self) -> dict[str, int]:
        """Bytes held, estimated: ``arrays`` (per-row numpy arrays, capacity included) and
        ``dictionaries`` (distinct values, their index dicts and code maps)."""
        import sys

        dicts = 0
        for col in self._cols.values():
            dicts += sys.getsizeof(col.values) + sys.getsizeof(col.index) + col.counts.nbytes
            dicts += sum(map(sys.getsizeof, col.values))
            for part in (col.parts or {}).values():
                dicts += sys.getsizeof(part.values) + sys.getsizeof(part.index) + part.map.nbytes
                dicts += sum(map(sys.getsizeof, part.values))
        return {"arrays": self.nbytes(), "dictionaries": dicts}

    def _arrays(self) -> list[tuple[Any, str]]:
        out: list[tuple[Any, str]] = [(c, "codes") for c in self._cols.values()]
        out += [(self, "_ts"), (self, "_line"), (self, "_off"), (self, "_flags")]
        out += [(self._ints, name) for name in INT_COLUMNS]
        return out

    def _put_ts(self, a: int, b: int, ts: np.ndarray) -> None:
        """Write the times (float64, NaN = none) of rows [a, b), first widening the column to
        float64 if one of them is not a whole second in [0, 2**32)."""
        if self._ts.dtype != np.float64 and len(ts):
            lo, hi = float(ts.min()), float(ts.max())   # NaN when any is NaN
            if not (lo >= 0 and hi < 1 << 32) or not np.array_equal(ts, np.floor(ts)):
                self._ts = self._ts.astype(np.float64)
        self._ts[a:b] = ts

    def _offsets(self, values: Any) -> np.ndarray:
        """The offsets column, first widened to int64 when ``values`` (about to be written into it)
        do not fit uint32 (a file past 4 GiB, a spill segment past the first)."""
        if self._off.dtype != np.int64 and len(values):
            v = np.asarray(values)
            if v.dtype.kind not in "iu" or int(v.min()) < 0 or int(v.max()) >= 1 << 32:
                self._off = self._off.astype(np.int64)
        return self._off

    def _reserve(self, extra: int) -> None:
        need = self._n + extra
        if need <= self._cap:
            return
        cap = max(need, self._cap + self._cap // GROW_DIV + 4096)
        for owner, attr in self._arrays():
            old = owner[attr] if isinstance(owner, dict) else getattr(owner, attr)
            new = np.zeros(cap, dtype=old.dtype)
            new[: self._n] = old[: self._n]
            if isinstance(owner, dict):
                owner[attr] = new
            else:
                setattr(owner, attr, new)
        self._cap = cap

    # -- append ----------------------------------------------------------------------------------------
    def append_batch(self, events: Iterable[Any]) -> np.ndarray | None:
        """Append events (any order). Returns the positions of the new rows when no existing position
        moved (every new event at or after the newest row held, nothing evicted), else ``None``."""
        events = list(events)
        start_len, start_layout = len(self), self.layout
        for i in range(0, len(events), _CHUNK):
            self._append(events[i:i + _CHUNK])
        self._evict()
        self.version += 1
        if self.layout != start_layout:
            return None
        return np.arange(start_len, len(self), dtype=np.int64)

    def append_columns(self, batch: Any) -> np.ndarray | None:
        """Append a :class:`~s3tail.core.columns.ColumnBatch` (same result as ``append_batch`` of its
        events, without an Event per row when the batch is a block of access-log lines); returns what
        :meth:`append_batch` returns."""
        start_len, start_layout = len(self), self.layout
        if batch.n:
            self._append_block(batch)
        self._evict()
        self.version += 1
        if self.layout != start_layout:
            return None
        return np.arange(start_len, len(self), dtype=np.int64)

    def _store_codes(self, col: _Column, dicts: Any, table: str, pick: Any, codes: np.ndarray) -> np.ndarray:
        """Store codes of ``col`` for a batch's ``codes`` into ``dicts[table]``: through a cached
        batch code -> store code map (-1: not resolved yet), resolved only for the codes used, so
        table values no row kept never enter the store's dictionaries; rebuilt when ``col`` is renumbered."""
        key = (id(dicts), col.name)
        hit = self._remaps.get(key)
        if hit is None and any(v[0] is not dicts for v in self._remaps.values()):
            # a new Dicts (the pipeline replaced a full one): forget the maps of the old one
            self._remaps = {k: v for k, v in self._remaps.items() if v[0] is dicts}
        values = dicts[table].values
        remap = hit[2] if hit is not None and hit[0] is dicts and hit[1] == col.gen else np.zeros(0, np.int64)
        if len(remap) < len(values):
            remap = np.concatenate((remap, np.full(len(values) - len(remap), -1, dtype=np.int64)))
        out = remap[codes]
        if len(out) and out.min() < 0:
            need = np.unique(codes[out < 0])
            vals = [values[c] for c in need.tolist()]
            remap[need] = col._encode_new(vals if pick is None else [pick(v) for v in vals])
            out = remap[codes]
        self._remaps[key] = (dicts, col.gen, remap)
        return out

    def _append_block(self, batch: Any) -> None:
        m = batch.n
        self._reserve(m)
        a, b = self._n, self._n + m
        dicts, codes = batch.dicts, batch.codes
        for name, table, pick in (("identity", "identity", _first3), ("request", "request", None),
                                  ("client", "client", None), ("key", "key", None), ("ip", "ip", None)):
            col = self._cols[name]
            self._set_codes(col, a, b, self._store_codes(col, dicts, table, pick, codes[table]))
        # origin: (log_object, bucket) pairs
        col = self._cols["origin"]
        nb = max(len(dicts["bucket"]), 1)
        pair = codes["object"].astype(np.int64) * nb + codes["bucket"]
        uniq, inverse = np.unique(pair, return_inverse=True)
        objects, buckets = dicts["object"].values, dicts["bucket"].values
        vals = [(objects[int(u) // nb], buckets[int(u) % nb]) for u in uniq.tolist()]
        self._set_codes(col, a, b, col._encode_new(vals).astype(np.int64)[inverse])
        self._put_ts(a, b, batch.ts)
        flags = np.zeros(m, dtype=np.uint8)
        time_odd = dicts["time"].derived("time_odd", _time_odd)
        flags[time_odd[codes["time"]]] |= F_TIME
        for name in INT_COLUMNS:
            arr = batch.nums[name]
            flags[arr == -2] |= F_NUMBERS
            self._ints[name][a:b] = _narrow(arr, flags, INT_DTYPES[name])
        lines = batch.log_line
        self._line[a:b] = np.where((lines >= 0) & (lines < 1 << 32), lines, 0)
        # where each row's text lives: the local plain file at its offset, else a spill file
        if hasattr(batch, "spill_payloads"):  # a block of access-log lines (colblock)
            lo_codes = self._cols["origin"].field_codes("log_object", slice(a, b))
            names = self._cols["origin"].parts["log_object"].values
            plain = np.zeros(len(names), dtype=bool)
            for c in np.unique(lo_codes).tolist():
                plain[c] = self._plain_file(c, names[c])
            offsets = batch.offset
            on_disk = plain[lo_codes] & (offsets >= 0)
            offsets = np.where(offsets >= 0, offsets, 0)
            self._offsets(offsets)[a:b] = offsets
            if not on_disk.all():
                spill = np.flatnonzero(~on_disk)
                flags[spill] |= K_SPILL_LINE
                where = self._spill.write(batch.spill_payloads(spill))
                self._offsets(where)[a + spill] = where
        else:  # events of any kind: decided per event
            evs = batch.events()
            placed = flags.tolist()
            self._place(evs, list(zip(*evs)), a, placed)
            flags = np.asarray(placed, dtype=np.uint8)
        self._flags[a:b] = flags
        self._n = b
        self._insert_order(a, b)

    @staticmethod
    def _set_codes(col: _Column, a: int, b: int, codes: np.ndarray) -> None:
        col.codes[a:b] = codes  # _encode_new widened col.codes for every code it handed out
        col.counts += np.bincount(codes, minlength=len(col.counts))

    def _append(self, events: list[Any]) -> None:
        evs = [e for e in events if isinstance(e, Event)]
        self.ignored += len(events) - len(evs)
        m = len(evs)
        if not m:
            return
        self._reserve(m)
        a, b = self._n, self._n + m
        fields = list(zip(*evs))
        for col in self._cols.values():
            cols = [fields[FIELD_INDEX[f]] for f in (col.fields[:-1] if col.derive else col.fields)]
            codes = col.encode(cols[0] if len(cols) == 1 else list(zip(*cols)))
            if col.codes.dtype != codes.dtype:
                col.codes = col.codes.astype(codes.dtype)
            col.codes[a:b] = codes
        flags = [0] * m
        ts_vals = fields[FIELD_INDEX["ts"]]
        try:
            ts = np.array(ts_vals, dtype=np.float64)  # None -> NaN
        except (TypeError, ValueError, OverflowError):
            ts = np.array([_float(t) for t in ts_vals], dtype=np.float64)
        self._put_ts(a, b, ts)
        times = fields[FIELD_INDEX["time"]]
        ts_list = ts.tolist()
        shown = list(map(_time_cache.get, ts_list))
        if shown != list(times):
            for i, (t, x, y) in enumerate(zip(ts_list, shown, times)):
                if x != y and format_ts(t) != y:
                    flags[i] |= F_TIME
        for name in INT_COLUMNS:
            vals = fields[FIELD_INDEX[name]]
            arr = None
            if set(map(type, vals)) <= _INT_TYPES:
                nulls = vals.count(None)
                try:
                    arr = np.array([-1 if v is None else v for v in vals] if nulls else vals, dtype=np.int64)
                except OverflowError:
                    arr = None
                if arr is not None and len(arr) and (arr.min() < -1 or int((arr == -1).sum()) != nulls):
                    arr = None
            if arr is None:
                out = []
                for i, v in enumerate(vals):
                    if v is None:
                        out.append(-1)
                    elif type(v) is int and 0 <= v < 1 << 63:
                        out.append(v)
                    else:
                        out.append(-2)
                        flags[i] |= F_NUMBERS
                arr = np.array(out, dtype=np.int64)
            self._ints[name][a:b] = _narrow(arr, flags, INT_DTYPES[name])
        lines = fields[FIELD_INDEX["log_line"]]
        self._line[a:b] = [v if type(v) is int and 0 <= v < 1 << 32 else 0 for v in lines]
        self._place(evs, fields, a, flags)
        self._flags[a:b] = flags
        self._n = b
        self._insert_order(a, b)

    def _place(self, evs: list[Event], fields: list[tuple], a: int, flags: list[int]) -> None:
        """Decide where each row's text lives; spill what is not readable from a local file."""
        lo_codes = self._cols["origin"].field_codes("log_object", slice(a, a + len(evs))).tolist()
        names = self._cols["origin"].parts["log_object"].values
        plain = {c: self._plain_file(c, names[c]) for c in set(lo_codes)}
        offsets = list(fields[FIELD_INDEX["offset"]])
        spill_idx: list[int] = []
        payloads: list[bytes] = []
        for i, (src, raw, det, off, lo, ll, uri, ref, code) in enumerate(zip(
                *(fields[FIELD_INDEX[f]] for f in ("source", "raw", "detail", "offset", "log_object",
                                                   "log_line", "request_uri", "referrer")), lo_codes)):
            if src == "s3access" and type(raw) is str and det is None and type(off) is int \
                    and type(lo) is str and type(ll) is int and "\n" not in raw:
                if (uri is not None and "=" in uri and uri != redact_uri(uri)) \
                        or (ref is not None and "=" in ref and ref != redact_uri(ref)):
                    flags[i] |= F_UNREDACTED
                if off >= 0 and plain[code]:
                    continue
                flags[i] |= K_SPILL_LINE
                payloads.append(b"%d\t%s\n" % (off, raw.encode("utf-8", "surrogatepass")))
            elif src == "cloudtrail" and type(det) is dict and raw is None and off == -1 \
                    and type(lo) is str and type(ll) is int:
                flags[i] |= K_SPILL_CT
                payloads.append(_dumps(det) + b"\n")
            else:
                flags[i] |= K_SPILL_EVENT
                payloads.append(_dumps(list(evs[i])) + b"\n")
            spill_idx.append(i)
        if len(spill_idx) < len(offsets):
            offs = [v if type(v) is int and 0 <= v < 1 << 63 else 0 for v in offsets]
            self._offsets(offs)[a:a + len(evs)] = offs
        if payloads:
            where = self._spill.write(payloads)
            self._offsets(where)[a + np.asarray(spill_idx, dtype=np.int64)] = where

    def _plain_file(self, code: int, path: str) -> bool:
        if code not in self._objects:
            ident = None
            if path and path != "-" and "://" not in path:
                try:
                    st = os.stat(path)
                    with open(path, "rb") as fh:
                        magic = fh.read(2)
                    if os.path.isfile(path) and magic != b"\x1f\x8b":
                        ident = (st.st_dev, st.st_ino, os.path.abspath(path))
                except OSError:
                    ident = None
            self._objects[code] = ident
        return self._objects[code] is not None

    def _materialize_order(self) -> None:
        """Write out the implied order of the contiguous case (before it stops being contiguous)."""
        if self._p0 >= 0:
            o0, o1 = self._o0, self._o1
            live = o1 - o0
            order = np.zeros(live + live // GROW_DIV + 4096, dtype=np.int32)
            order[:live] = np.arange(self._p0, self._p0 + live, dtype=np.int32)
            self._order, self._o0, self._o1 = order, 0, live

    def _insert_order(self, a: int, b: int) -> None:
        """Merge physical rows [a, b) into the time order (only the tail after the batch's oldest moves)."""
        keys = _sort_key(self._ts[a:b])
        new = np.arange(a, b, dtype=np.int32)
        in_order = True
        if len(keys) > 1 and not np.all(keys[1:] >= keys[:-1]):
            perm = np.argsort(keys, kind="stable")
            new, keys = new[perm], keys[perm]
            in_order = False
        o0, o1 = self._o0, self._o1
        k = o1 if o1 == o0 else self._bisect_right(float(keys[0]))
        if in_order and k == o1 and (o1 == o0 or self._p0 >= 0):   # still contiguous: implied
            if o1 == o0:
                self._order = np.zeros(0, dtype=np.int32)
                self._o0 = self._o1 = 0
                self._p0 = a
            self._o1 += b - a
            return
        self._materialize_order()
        o0, o1 = self._o0, self._o1
        k = o1 if o1 == o0 else self._bisect_right(float(keys[0]))
        tail = self._order[k:o1]
        self._p0 = -1
        if len(tail):  # merge two sorted runs in O(len(tail) + len(new)); ties: the old rows first
            self.layout += 1
            at = np.searchsorted(_sort_key(self._ts[tail]), keys, side="right") + np.arange(len(new))
            merged = np.empty(len(tail) + len(new), dtype=np.int32)
            old = np.ones(len(merged), dtype=bool)
            old[at] = False
            merged[at] = new
            merged[old] = tail
            new = merged
        need = k + len(new)
        if need > len(self._order):
            live = o1 - o0
            size = max(need - o0, live + live // GROW_DIV + len(new) + 4096)
            grown = np.zeros(size, dtype=np.int32)
            grown[: k - o0] = self._order[o0:k]
            self._order, k, self._o0 = grown, k - o0, 0
        self._order[k:k + len(new)] = new
        self._o1 = k + len(new)

    def _bisect_right(self, key: float) -> int:
        lo, hi = self._o0, self._o1
        order, ts = self._order, self._ts
        shift = self._p0 - self._o0 if self._p0 >= 0 else None   # the implied order
        while lo < hi:
            mid = (lo + hi) // 2
            t = ts[order[mid] if shift is None else mid + shift]
            if t != t:
                t = -math.inf
            if t <= key:
                lo = mid + 1
            else:
                hi = mid
        return lo

    # -- eviction --------------------------------------------------------------------------------------
    def _evict(self) -> None:
        extra = len(self) - self.max_rows
        if extra <= 0:
            return
        gone = (self._order[self._o0:self._o0 + extra] if self._p0 < 0
                else np.arange(self._p0, self._p0 + extra, dtype=np.int32))
        for col in self._cols.values():
            col.forget(col.codes[gone])
        spilled = gone[(self._flags[gone] & F_KIND) != K_FILE]
        self._spill.release(self._off[spilled].astype(np.int64))
        self._o0 += extra
        if self._p0 >= 0:
            self._p0 += extra
        self.evicted += extra
        self.layout += 1
        dead = self._n - len(self)
        if dead > max(len(self) // 8, COMPACT_MIN):
            self._compact()

    def _compact(self) -> None:
        """Drop evicted rows physically, rewriting the live ones in time order (so filters need no
        gather through the order again); renumber dictionaries that are mostly unused."""
        keep = self._live_phys()
        n = len(self)
        for owner, attr in self._arrays():
            arr = owner[attr] if isinstance(owner, dict) else getattr(owner, attr)
            arr[:n] = arr[keep]
        self._order = np.zeros(0, dtype=np.int32)   # contiguous again: implied
        self._o0, self._o1, self._n, self._p0 = 0, n, n, 0
        for col in self._cols.values():
            used = col.counts > 0
            if len(used) > 1024 and used.sum() * 2 < len(used):
                col.renumber(used, self._n)

    # -- reading ---------------------------------------------------------------------------------------
    def _phys(self, pos: int) -> int:
        n = len(self)
        pos = int(pos)
        if pos < 0:
            pos += n
        if not 0 <= pos < n:
            raise IndexError(f"position {pos} out of range (0..{n - 1})")
        return pos + self._p0 if self._p0 >= 0 else int(self._order[self._o0 + pos])

    def _phys_many(self, positions: Any) -> np.ndarray:
        pos = np.asarray(positions, dtype=np.int64)
        if len(pos) and (pos.min() < 0 or pos.max() >= len(self)):
            raise IndexError("position out of range")
        if self._p0 >= 0:
            return pos + self._p0
        return self._order[self._o0 + pos].astype(np.int64)

    def _live_phys(self) -> Any:
        """The live physical rows in time order: a slice when they are contiguous, else an index array."""
        if self._p0 >= 0:
            return slice(self._p0, self._n)
        return self._order[self._o0:self._o1]

    def _value(self, field: str, p: int) -> Any:
        return self._field_col[field].value(field, p)

    def get(self, pos: int) -> Event:
        """The full event at ``pos``, read back from disk and parsed again (see the module docstring)."""
        p = self._phys(pos)
        flags = int(self._flags[p])
        kind = flags & F_KIND
        log_object = self._value("log_object", p)
        line = int(self._line[p])
        ev = None
        try:
            if kind == K_FILE:
                raw = self._read_file(p, log_object)
                if raw is not None:
                    ev = access_log.parse_line(raw.decode("utf-8", "backslashreplace"), log_object, line,
                                               int(self._off[p]), not flags & F_UNREDACTED)
            else:
                data = self._spill.read(int(self._off[p])).decode("utf-8", "surrogatepass")
                if kind == K_SPILL_LINE:
                    off, _, raw_text = data.partition("\t")
                    ev = access_log.parse_line(raw_text, log_object, line, int(off),
                                               not flags & F_UNREDACTED)
                elif kind == K_SPILL_CT:
                    ev = cloudtrail.parse_record(json.loads(data), log_object, line)
                else:
                    ev = Event._make(_undump(json.loads(data)))
        except Exception:  # a changed file, a spill read error: fall back to the columns
            ev = None
        if ev is None or not self._agrees(ev, p):
            return self._from_columns(p)
        return ev

    def _read_file(self, p: int, log_object: str) -> bytes | None:
        """The line at the row's offset in its (plain, local) log file; the caller checks it is the same."""
        code = int(self._cols["origin"].field_codes("log_object", p))
        fh = self._files.get(code)
        if fh is None:
            ident = self._objects.get(code)
            if ident is None:
                return None
            if len(self._files) >= 32:
                self._files.pop(next(iter(self._files))).close()
            fh = self._files[code] = open(ident[2], "rb")
        fh.seek(int(self._off[p]))
        return fh.readline()

    def _agrees(self, ev: Event, p: int) -> bool:
        """Whether a re-parsed event is the one stored (the file did not change under us)."""
        for name in ("bucket", "key", "requester", "http_status", "remote_ip", "operation", "log_object"):
            if _hashable(event_value(ev, name)) != self._value(name, p):
                return False
        t = self._ts[p]
        return (ev.ts is None and t != t) or (ev.ts is not None and float(ev.ts) == t)

    def _from_columns(self, p: int) -> Event:
        """The event rebuilt from the columns (fields not kept in memory are null)."""
        fields = {name: self._value(name, p) for name in DICT_FIELDS if name != _WHO}
        for name in INT_COLUMNS:
            v = int(self._ints[name][p])
            fields[name] = v if v >= 0 else None
        t = float(self._ts[p])
        fields.update(ts=None if t != t else (int(t) if t.is_integer() else t), time=format_ts(t),
                      log_line=int(self._line[p]), offset=-1)
        return make_event(**fields)

    def row_cells(self, pos: int) -> tuple:
        """``(time, bucket, who, action or operation, key, http_status, bytes_sent, remote_ip)``."""
        return self._cells(np.asarray([self._phys(pos)], dtype=np.int64), [pos])[0]

    def rows_cells(self, positions: Iterable[int]) -> list[tuple]:
        positions = list(positions)
        return self._cells(self._phys_many(positions), positions)

    def _cells(self, phys: np.ndarray, positions: list[int]) -> list[tuple]:
        def col(name: str) -> list[Any]:
            c = self._field_col[name]
            vals = c.field_values(name)
            return [vals[i] for i in c.field_codes(name, phys).tolist()]

        ts = self._ts[phys].tolist()
        sent = self._ints["bytes_sent"][phys].tolist()
        flags = self._flags[phys].tolist()
        action, op = col("action"), col("operation")
        rows = []
        for i, (t, b, w, a, o, k, s, n, ip, f) in enumerate(zip(
                ts, col("bucket"), col("who"), action, op, col("key"), col("http_status"), sent,
                col("remote_ip"), flags)):
            if f & (F_TIME | F_NUMBERS):
                ev = self.get(positions[i])
                tm, n = ev.time, ev.bytes_sent
            else:
                tm, n = format_ts(t), (None if n < 0 else n)
            rows.append((tm, b, w, a or o, k, s, n, ip))
        return rows

    # -- filters ---------------------------------------------------------------------------------------
    def _vectorisable(self, flt: Any) -> bool:
        terms = getattr(flt, "terms", None)
        if terms is None:
            return False
        for t in terms:
            fields = getattr(t, "fields", None)
            if fields is None or not hasattr(t, "values_ok"):
                return False
            if getattr(t, "kind", "value") == "time":
                if not hasattr(t, "ts_ok"):
                    return False
            elif any(f not in self._field_col for f in fields):
                return False
        return True

    def _table(self, term: Any, col: _Column) -> np.ndarray | None:
        """The term's lookup table over ``col``'s codes (OR over the fields of ``col`` it reads), or None
        when it reads none of them. Per-field tables are cached and extended as dictionaries grow."""
        out = None
        for f in term.fields:
            if f not in col.fields:
                continue
            values = col.field_values(f)
            key = (id(term), f)
            hit = self._tables.get(key)
            if hit is not None and hit[0] is term and hit[1] == col.gen and len(hit[2]) <= len(values):
                table = hit[2]
                if len(table) < len(values):
                    table = np.concatenate((table, term.values_ok(values[len(table):])))
            else:
                table = term.values_ok(values)
            if len(self._tables) > 256:
                self._tables.clear()
            self._tables[key] = (term, col.gen, table)
            if col.parts is not None:
                table = table[col.parts[f].map[: len(col.values)]]
            out = table if out is None else (out | table)
        return out

    def _mask(self, flt: Filter, rows: Any, size: int) -> np.ndarray:
        """Boolean mask, one per physical row in ``rows`` (a slice or an index array of ``size``)."""
        mask: np.ndarray | None = None
        for term in flt.terms:
            if getattr(term, "kind", "value") == "time":
                m = term.ts_ok(self._ts[rows])
            else:
                m = None
                for col in self._cols.values():
                    table = self._table(term, col)
                    if table is None or not table.any():
                        continue
                    hit = table[col.codes[rows]]
                    m = hit if m is None else (m | hit)
                if m is None:
                    m = np.zeros(size, dtype=bool)
            if term.negate:
                m = ~m
            mask = m if mask is None else (mask & m)
        return np.ones(size, dtype=bool) if mask is None else mask

    def filter(self, flt: Any) -> np.ndarray:
        """Positions (ascending = time order) of the rows ``flt`` keeps; ``None``/empty keeps all."""
        n = len(self)
        if flt is None or not getattr(flt, "terms", True):
            return np.arange(n, dtype=np.int64)
        if not self._vectorisable(flt):
            return self._filter_slow(flt, np.arange(n, dtype=np.int64))
        if self._p0 >= 0:  # live rows contiguous, in time order
            return np.flatnonzero(self._mask(flt, slice(self._p0, self._n), n)).astype(np.int64)
        mask = self._mask(flt, slice(0, self._n), self._n)  # contiguous reads, then one gather
        return np.flatnonzero(mask[self._order[self._o0:self._o1]]).astype(np.int64)

    def filter_rows(self, flt: Any, base: Any) -> np.ndarray:
        """The positions among ``base`` that ``flt`` keeps (same order as ``base``)."""
        base = np.asarray(base, dtype=np.int64)
        if flt is None or not getattr(flt, "terms", True) or not len(base):
            return base.copy()
        if not self._vectorisable(flt):
            return self._filter_slow(flt, base)
        return base[self._mask(flt, self._phys_many(base), len(base))]

    def _filter_slow(self, flt: Any, base: np.ndarray) -> np.ndarray:
        keep = [p for p in base.tolist() if flt.matches(self.get(p))]
        return np.asarray(keep, dtype=np.int64)

    # -- facets, refs, export --------------------------------------------------------------------------
    def facets(self, rows: Any = None, fields: Iterable[str] = FACET_FIELDS, top: int = 10
               ) -> dict[str, list[tuple[Any, int]]]:
        """Top values and counts per field: the live counters (``rows=None``), or a recount over the
        given positions (one ``bincount`` over codes per field)."""
        out: dict[str, list[tuple[Any, int]]] = {}
        phys = None
        if rows is not None:
            rows = np.asarray(rows, dtype=np.int64)
            everything = len(rows) == len(self) and (not len(rows) or (
                rows[0] == 0 and rows[-1] == len(rows) - 1 and bool(np.all(rows[1:] > rows[:-1]))))
            if not everything:  # all rows: the counters are that recount
                phys = self._phys_many(rows)
        recounts: dict[str, np.ndarray] = {}
        for field in fields:
            col = self._field_col.get(field)
            if col is None:
                out[field] = self._facet_slow(field, rows, top)
                continue
            counts = col.counts if phys is None else recounts.get(col.name)
            if counts is None:
                counts = recounts[col.name] = np.bincount(col.codes[phys], minlength=len(col.values))
            out[field] = _top(col.field_values(field), col.field_counts(field, counts), top)
        return out

    def _facet_slow(self, field: str, rows: Any, top: int) -> list[tuple[Any, int]]:
        from collections import Counter
        positions = range(len(self)) if rows is None else rows
        return Counter(event_value(self.get(p), field) for p in positions).most_common(top)

    def rows_for_refs(self, refs: Iterable[tuple[str, int]]) -> np.ndarray:
        """Positions (time order) of the rows whose ``(log_object, log_line)`` is in ``refs``."""
        origin = self._cols["origin"]
        index = origin.parts["log_object"].index
        keys = []
        for obj, line in refs:
            code = index.get(obj)
            if code is not None and type(line) is int and 0 <= line < 1 << 32:
                keys.append((code << 32) | line)
        if not keys:
            return np.zeros(0, dtype=np.int64)
        live = self._live_phys()
        combined = (origin.field_codes("log_object", live).astype(np.int64) << 32) | self._line[live].astype(np.int64)
        return np.flatnonzero(np.isin(combined, np.asarray(keys, dtype=np.int64))).astype(np.int64)

    def iter_events(self, rows: Any = None) -> Iterator[Event]:
        positions = range(len(self)) if rows is None else rows
        for p in positions:
            yield self.get(p)

    def export(self, rows: Any, fmt: str, fh: Any) -> int:
        """Write the events at ``rows`` (all when None) as ``jsonl`` or ``csv`` (the contract fields,
        provenance ``log_object``/``log_line`` included) to the text file ``fh``; returns the count."""
        return export_events(self.iter_events(rows), fmt, fh)


def export_events(events: Iterable[Event], fmt: str, fh: Any) -> int:
    """Events as JSON lines or CSV (header = the contract fields)."""
    if fmt not in ("jsonl", "csv"):
        raise ValueError(f"unknown export format {fmt!r} (jsonl or csv)")
    n = 0
    if fmt == "csv":
        w = csv.writer(fh)
        w.writerow(CONTRACT_FIELDS)
        for e in events:
            w.writerow([_csv_cell(v) for v in e[: len(CONTRACT_FIELDS)]])
            n += 1
        return n
    for e in events:
        d = e.to_dict()
        text = json.dumps(d, ensure_ascii=False)
        try:
            text.encode(getattr(fh, "encoding", None) or "utf-8")
        except (UnicodeEncodeError, LookupError):
            text = json.dumps(d, ensure_ascii=True)
        fh.write(text + "\n")
        n += 1
    return n


def _csv_cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, list):
        v = json.dumps(v, ensure_ascii=False)
    if isinstance(v, str):
        return v.encode("utf-8", "backslashreplace").decode("utf-8")
    return v


def load_sources(store: EventStore, sources: Iterable[str], *, redact: bool = True,
                 batch: int = 50_000) -> dict[str, int]:
    """Read ``sources`` (files, folders, ``-``) with :func:`s3tail.core.reader.iter_sources` into
    ``store`` in batches; returns ``{"events", "malformed", "skipped"}`` counts."""
    from .reader import iter_sources

    counts = {"events": 0, "malformed": 0, "skipped": 0}
    buf: list[Event] = []
    for item in iter_sources(sources, redact=redact):
        if isinstance(item, Event):
            buf.append(item)
            if len(buf) >= batch:
                store.append_batch(buf)
                counts["events"] += len(buf)
                buf = []
        elif isinstance(item, Malformed):
            counts["malformed"] += 1
        elif isinstance(item, Skipped):
            counts["skipped"] += 1
    if buf:
        store.append_batch(buf)
        counts["events"] += len(buf)
    return counts


def _narrow(arr: np.ndarray, flags: Any, dtype: Any) -> np.ndarray:
    """An int64 number column (``-1`` null, ``-2`` not representable) as ``dtype``: values past its
    max become ``-2`` and their rows are flagged ``F_NUMBERS`` (read back from the event, as any ``-2``)."""
    big = arr > np.iinfo(dtype).max
    if big.any():
        for i in np.flatnonzero(big).tolist():    # flags: an array or a list (few rows)
            flags[i] |= F_NUMBERS
        arr = np.where(big, -2, arr)
    return arr.astype(dtype)


def _first3(identity: tuple) -> tuple:
    """(requester, principal_name, session_name) of a ``columns`` identity value."""
    return identity[:3]


def _time_odd(value: Any) -> bool:
    """Whether an event's ``time`` is not its ``ts`` formatted (the store then asks the event): only a
    ``time`` table value that is a tuple can be odd (see ``columns.TimeTable``)."""
    if type(value) is not tuple:
        return False
    ts, shown = value
    return format_ts(_float(ts)) != shown


def _sort_key(ts: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(ts), -np.inf, ts)


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return math.nan


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"), default=_jsonable).encode("ascii")


def _jsonable(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return repr(value)


def _undump(values: list) -> list:
    """A full event as spilled -> values for ``Event._make``."""
    values = list(values) + [None] * (len(ALL_FIELDS) - len(values))
    return values[: len(ALL_FIELDS)]


__all__ = ["COLUMNS", "EventStore", "FACET_FIELDS", "ROW_FIELDS", "default_max_rows", "export_events",
           "format_ts", "load_sources"]
