"""The rule engine over column batches (:meth:`RuleEngine.process_columns`): numpy gates, Python only
for the rows that matter.

Per rule and batch, three kinds of rows:

* **fast hits**: rows of access-log events (request ``source`` ``s3access``) whose hit is decided by
  verdict tables per dictionary code (operation set and status class per ``request`` code, anonymous
  and AWS-service per ``identity`` code, TLS/SigV2/aws-internal/pentest per ``client`` code, cipher and
  website host per ``xport`` code, public per ``bucket`` code, sensitive-pattern and log-object
  (AWSLogs/, ``log_prefixes`` of any or of the row's bucket) per ``key`` code); the verdicts mirror the
  built-in ``match`` functions (same parameters, from the rule's ``params`` and the engine's
  settings). Every rule's conditions on the small tables are folded into **bit tables** (one bit per
  rule and per code of each table, :meth:`ColumnRunner.bit_table`, made again when a table grows), so
  a batch gathers one bit mask per table for all rules at once (:meth:`_Ctx.bits`) and a rule's rows
  are a bit test; rules past :data:`RULE_BITS` gather their conditions on their own. Verdicts over
  big tables (keys) are decided only for the codes of rows a rule may match
  (:meth:`ColumnRunner.verdict_codes`, :meth:`ColumnRunner.literal_some`);
* **slow rows**: rows the codes cannot decide (CloudTrail rows, rules whose hit reads a request body
  or the request URI, user rules, rules whose config the verdict tables do not model): the row's
  full :class:`Event` (``batch.event``), the engine's gate test and the rule's own ``match``;
* everything else: no hit (the verdicts are exact on access-log rows).

Hits then take the engine's own code (:meth:`RuleEngine._take`): join the open finding, count in the
window, open a finding, with a light :class:`Row` (the fields findings, samples and titles read,
built from codes) in place of the event. Windowed rules first put fast hits in a per-rule **store**
of numpy columns (group id, event time, weight; the codes and the int64 fields as one 2-d array each,
so dropping entries copies few arrays): only groups that already have engine state (an open finding
or a window), groups with a slow hit, and groups whose stored entries can reach the threshold within
the window (a necessary condition: first the group's summed stored weight, or its count of entries
with a value, kept per group as entries come and go; then, for the groups left, computed at once: sort
by (group, time), cumulative sums, ``searchsorted`` of ``time - window``; for rules with
``min_error_share``, of those windows only the ones whose errors are that share of the group's
requests in the window, the engine's request counts read for all of them at once,
:meth:`ColumnRunner.requests_in`) go through the Python window code, which replays their stored entries
in arrival order first (those of earlier batches without the fire test: they could not fire when they
arrived, and the request counts read now may have lost pieces since, :meth:`ColumnRunner.replay_quiet`).
``s3.mass_download`` thus sees half of all rows in numpy only, and a busy group with a steady few
percent of errors never enters the Python windows.

Stateless rules (single mode, hits ONE: anonymous access, insecure transport, SigV2, pentest agents,
sensitive objects, bucket deletion; or hits whose details the codes give: log tampering's key and
count of log objects, a policy change's operation, :meth:`ColumnRunner.fast_hits`, merged as the
engine merges them, :meth:`ColumnRunner.merge_details`) skip ``_take`` for most groups: :meth:`ColumnRunner.run_single`
splits each group's rows into *segments*, one per finding they go to (the open finding, then a new one
each time a row passes the current one's ``close_ts``; found with a few numpy passes when the group's
rows are in time order, or all fall in one segment), joins the open findings and makes the new ones
together (``model.new_findings``, the values gathered by code with the C ``take``, the findings they
close marked with the C ``mark``); only groups it cannot decide that way take the row-by-row code. The
new findings are :class:`~.model.LazyFinding` objects: their refs and samples are built from the
batch's codes (:class:`_Evidence`) when first read, and rows of later batches that join one before
that are kept as further parts (:class:`_Parts`; the joins of a batch in one call of the C
``join_lazy``). The C maker gathers their values by code and leaves them (and their parts) out of
the cyclic garbage collector: nothing they hold leads back to a finding or to the engine, and a
young collection then does not walk a hundred thousand of them. Their closing is scheduled with one
heap entry per rule and batch (``RuleEngine._schedule``). A new :class:`Dicts` first builds every unread finding's
evidence (sources hold the old one's values). These rules' open findings are not kept in ``rule.open``
but by dense group id in numpy arrays (:class:`_Open`: close and first times, the finding; pair group
codes get their ids from a hash table, :class:`_CodeIds`: probed by the C ``hash_ids``, else in
numpy; windowed rules map their pair codes to interned ids through one too), so a batch finds its groups' open
findings, and records the new ones, without a dict operation per group; their ``dedup_key`` is made
when first read (the rule's group function over the finding). They move back into ``rule.open``
before the engine's own code works on the rule (late rows, an event batch; ``flush`` takes them as
they are), and back into the arrays at the rule's next bulk batch.

Request counts for ``min_error_share`` are kept per batch as the batch's actor and bucket ids per row
and its pieces (:class:`ColumnCounts`, one entry of the engine's queue of counts per batch): the
numpy share test counts the rows of the few group codes it asks about in one pass (the C
``count_codes``, kept per code); the engine's ``within`` (one key at a time) sorts the codes on its
first call. Either reads a range of pieces found by bisection when the pieces are in time order.
Past the newest ``REQ_ROWS_KEPT`` rows a batch's counts are compacted to each code's rows per piece
(memory bounded by the distinct codes, not the rows, over the 2 h the share windows look back).

Documented differences from :meth:`RuleEngine.process_batch` (same findings otherwise):

* Creation order of findings (``findings()``) and the order of the returned list may differ within
  one batch (groups promoted to the Python window code are replayed after the other rows of that
  rule); the set of findings and their contents do not.
* The store keeps, per group, the entries within the window of the group's newest entry, and late
  entries (older than that on arrival: than the group's entries of earlier batches and the rows before
  it in its batch, as the event path takes them) for ``IDLE_SECONDS + SWEEP_EVERY`` of event time, and while a
  group holds such a late entry, its entries newer than the late entry's time + the window (among them
  the one that made it late), so that a replay builds the event path's segments: the late entry's
  own, beside the newest one (without that hold, a late entry replayed after the entries that made it
  late were dropped would open the newest segment itself, and a window the event path fires would not
  fire); it is pruned when the engine sweeps (once grown by half since its last prune), and when
  crowded once a batch's windows have read it (never between its entries and its windows). A group
  promoted later replays what the store kept. The
  event path's window segments differ in two corner cases only: a late log object more than
  ``IDLE_SECONDS`` older than the newest event, whose segment the event path sweeps up to an hour
  earlier than the store drops it; and groups with more than ``MAX_SEGMENTS`` late segments at once.
  Neither occurs in the tests' traffic (generated, episodes, out-of-order batches).
* A group once promoted stays in the Python window code until the engine's sweep drops its window
  (6 h idle), as in the event path (speed only).
* ``process_batch`` after ``process_columns`` on one engine first replays every stored entry into
  the Python windows (mixed use stays correct; the first such batch pays for it; for rules with
  ``min_error_share`` without the fire test, as :meth:`ColumnRunner.replay_quiet`).
"""
from __future__ import annotations

import fnmatch
from bisect import bisect_left, bisect_right
from collections import Counter, deque, namedtuple
from itertools import accumulate, chain, islice, repeat
from operator import add, attrgetter, itemgetter, le
from typing import Any

import numpy as np

from ..access_log import speedups
from ..columns import (CODE_DTYPE, ColumnBatch, Dicts, EventBatch, Table, TimeTexts, appended, time_text,
                       time_ts, time_ts_list)
from . import builtin as B
from .engine import IDLE_SECONDS, PF_CACHE, PF_CACHE_LEN, REQ_CHUNK, REQ_SPAN, SWEEP_EVERY, Joined, _classify, _mark
from .model import MAX_REFS, MAX_SAMPLES, ONE, Finding, LazyFinding, Rule, new_findings

# The fields of an event that the engine, findings, samples and built-in titles read for fast rows.
Row = namedtuple("Row", ("source", "bucket", "key", "operation", "action", "requester", "remote_ip",
                         "http_status", "error_code", "bytes_sent", "user_agent", "principal_type",
                         "log_object", "log_line", "time", "ts", "detail", "request_uri"))
STORE_TABLES = ("identity", "request", "client", "bucket", "key", "ip", "time", "object")
KEY_COL = STORE_TABLES.index("key")
STORE_INTS = ("seq", "line", "bytes")   # a store chunk's int64 columns, kept as one 2-d array ("ints")
NONE = np.zeros(0, dtype=np.intp)
LOW = 0xFFFFFFFF            # group codes: the low 32 bits hold an interned id
TAKE_SLICE = 1000           # hits per RuleEngine._take call when a pause hook is set (see take_sliced)
REQ_ROWS_KEPT = 262_144     # rows of request counts kept as rows (the newest batches; older ones compacted)
PRUNE_MIN = 4096            # a store's entries added since its last prune before a sweep prunes it again
COMPACT_CHUNKS = 16         # store chunks joined beyond this many; a store pruned after this many more
DEAD_SHARE = 0.25           # a store chunk's entries are copied once this share of its rows is dropped
MAX_SPLITS = 8              # run_single: segments (findings) per group and batch found in bulk at most
BIT_TABLES = ("request", "identity", "client", "xport", "bucket")   # the tables of the rules' fast conditions
RULE_BITS = 64              # rules with a bit in the per-code bit tables (fast, slow) at most
_ITEM0, _ITEM3 = itemgetter(0), itemgetter(3)
_FIRST_TS, _CLOSE_TS, _CLOSED = attrgetter("first_ts"), attrgetter("close_ts"), attrgetter("closed")
FAST_KINDS = {  # built-in rules with a code verdict: rule id -> hit is ONE (else (weight, key))
    "s3.object_access_errors": True, "s3.enumeration": True, "s3.mass_download": False,
    "s3.mass_delete": True, "s3.anonymous_access": True, "s3.insecure_transport": True,
    "s3.sigv2_request": True, "s3.pentest_user_agent": True, "s3.sensitive_object_access": True,
    "s3.bucket_deleted": True, "s3.log_tampering": None,   # None: (1, None, None, {"keys": [key]})
    "s3.bucket_policy_change": "change",   # (1, None, None, {"change": action, "body_logged": False})
}


class ColumnCounts:
    """Requests per actor and per (bucket, actor) of one batch's pieces (see
    ``RuleEngine._count_requests``), kept as the batch's rows: ``actor`` (interned actor id per row)
    and ``bid`` (bucket id per row), ``npc`` pieces of REQ_CHUNK rows (one piece: all rows); per
    piece ``lo``, ``hi`` and ``last`` (the newest ``hi`` of every piece up to it, for the engine's
    queue of counts). :meth:`many` counts the rows of a few group codes (see
    :meth:`_Ctx.group_codes`) without a sort; :meth:`within` (one key at a time, the engine's
    Python windows) reads ``ids``, ``piece`` and ``counts`` sorted by code then piece, made on its
    first call."""

    __slots__ = ("actor", "bid", "npc", "ids", "piece", "counts", "lo", "hi", "last", "arrays", "runner", "keys",
                 "known", "ordered")

    def __init__(self, actor: np.ndarray, bid: np.ndarray, lo: list, hi: list, last: list,
                 runner: "ColumnRunner"):
        self.actor, self.bid, self.npc = actor, bid, len(lo)
        self.ids = self.piece = self.counts = None
        self.lo, self.hi, self.last, self.runner = lo, hi, last, runner
        self.arrays: tuple | None = None   # lo, hi, last as numpy arrays (many)
        self.keys: dict[int, tuple[list, list]] = {}   # group code -> (its pieces, running sums of counts)
        self.known: dict[int, np.ndarray] = {}   # group code -> its rows per piece (per_piece)
        # pieces in time order (lo and hi never decrease): the pieces overlapping a span are a range
        self.ordered = all(map(le, lo, lo[1:])) and all(map(le, hi, hi[1:]))

    def _sort(self) -> None:
        """``ids``, ``piece`` and ``counts``: every code's rows per piece, sorted by code then piece."""
        actor, npc, n = self.actor, self.npc, len(self.actor)
        codes = np.concatenate((actor, ((self.bid + 1) << 32) | actor))
        if npc == 1:
            ids, counts = _runs(np.sort(codes))
            pieces = np.zeros(len(ids), np.int64)
        else:
            piece = np.arange(n, dtype=np.int64) // REQ_CHUNK
            if int(codes.max()) < (1 << 62) // npc:   # one sort of (code, piece)
                keys, counts = _runs(np.sort(codes * npc + np.concatenate((piece, piece))))
                ids, pieces = keys // npc, keys % npc
            else:
                u, inv = np.unique(codes, return_inverse=True)
                up, counts = np.unique(inv.reshape(-1) * npc + np.concatenate((piece, piece)), return_counts=True)
                ids, pieces = u[up // npc], up % npc
        self.ids, self.piece, self.counts = ids, pieces, counts

    def within(self, key, start, end, horizon) -> int:
        """Requests of ``key`` in the pieces that overlap [start, end] and are not dropped (a piece
        whose ``last`` is before ``horizon``), as ``Counter.get`` summed over those pieces."""
        i = self.runner.pack_key(key)
        if i is None:
            return 0
        ent = self.keys.get(i)
        if ent is None:
            if self.ids is None:
                self._sort()
            ids = self.ids
            a = int(ids.searchsorted(i))
            b = int(ids.searchsorted(i, "right")) if a < len(ids) and ids[a] == i else a
            ent = self.keys[i] = (self.piece[a:b].tolist(), [0] + list(accumulate(self.counts[a:b].tolist())))
        pieces, sums = ent
        if not pieces:
            return 0
        lo, hi, last = self.lo, self.hi, self.last
        if self.ordered:
            first = max(bisect_left(hi, start), bisect_left(last, horizon))
            stop = bisect_right(lo, end)
            j0, j1 = bisect_left(pieces, first), bisect_left(pieces, stop)
            return sums[j1] - sums[j0] if j1 > j0 else 0
        return sum([sums[j + 1] - sums[j] for j, p in enumerate(pieces)
                    if hi[p] >= start and lo[p] <= end and last[p] >= horizon])

    def many(self, codes: np.ndarray, inv: np.ndarray, start: np.ndarray, end: np.ndarray,
             horizon) -> np.ndarray:
        """:meth:`within` of many queries at once: query ``i`` asks for group code ``codes[inv[i]]``
        (distinct codes; -1: never interned) over [``start[i]``, ``end[i]``]: the counts of each
        code per piece (:meth:`per_piece`) over the pieces each query overlaps: a range of pieces
        when they are in time order (as :meth:`within` finds it), else a mask per query."""
        per = self.per_piece(codes)
        if self.arrays is None:
            self.arrays = np.array(self.lo), np.array(self.hi), np.array(self.last)
        lo, hi, last = self.arrays
        if self.ordered:
            first = np.maximum(hi.searchsorted(start), int(last.searchsorted(horizon)))
            stop = lo.searchsorted(end, "right")
            sums = np.concatenate((np.zeros((len(per), 1), np.int64), per.cumsum(1)), 1)
            return np.where(stop > first, sums[inv, stop] - sums[inv, np.minimum(first, stop)], 0)
        over = (hi >= start[:, None]) & (lo <= end[:, None]) & (last >= horizon)
        return (per[inv] * over).sum(1)

    def per_piece(self, codes: np.ndarray) -> np.ndarray:
        """The rows of each of distinct group ``codes`` per piece (codes by pieces), kept per code
        (the groups near their threshold are asked again at the next batches)."""
        known = self.known
        cl = codes.tolist()
        miss = [c for c in cl if c not in known]
        if miss:
            known.update(zip(miss, self._count_rows(np.array(miss, np.int64))))
        return np.array([known[c] for c in cl], np.int64).reshape(len(cl), self.npc)

    def compact(self) -> None:
        """Forget the rows (16 bytes each), keeping every code's rows per piece (sorted, as
        :meth:`within` reads them): a batch past the newest :data:`REQ_ROWS_KEPT` rows, whose rows
        would otherwise be held for as long as the share windows need the batch's counts (a busy
        follow: millions of rows an hour, where the distinct codes per piece are few)."""
        if self.actor is None:
            return
        if self.ids is None:
            self._sort()
        self.actor = self.bid = None

    def _count_rows(self, codes: np.ndarray) -> np.ndarray:
        """:meth:`per_piece` from the rows (no sort of the batch): the C ``count_codes``, else
        :func:`_count_codes_py`; after :meth:`compact`, from the sorted counts."""
        if self.actor is None:
            return self._count_sorted(codes)
        k, npc = len(codes), self.npc
        order = np.argsort(codes)
        per = np.zeros(k * npc, np.int64)
        (_COUNT_CODES or _count_codes_py)(self.actor, self.bid, codes[order], per, REQ_CHUNK)
        out = np.empty((k, npc), np.int64)
        out[order] = per.reshape(k, npc)
        return out

    def _count_sorted(self, codes: np.ndarray) -> np.ndarray:
        """:meth:`per_piece` from ``ids``, ``piece`` and ``counts`` (a compacted batch)."""
        k = len(codes)
        out = np.zeros((k, self.npc), np.int64)
        ids = self.ids
        if not k or not len(ids):
            return out
        order = np.argsort(codes)
        sc = codes[order]
        pos = np.minimum(sc.searchsorted(ids), k - 1)
        hit = sc[pos] == ids           # (each (code, piece) once in ids)
        out[order[pos[hit]], self.piece[hit]] = self.counts[hit]
        return out


def _count_codes_py(actor: np.ndarray, bid: np.ndarray, codes: np.ndarray, out: np.ndarray, chunk: int) -> None:
    """The pure-Python form of the C ``count_codes``: ``out[i * npc + row // chunk]`` (npc: pieces,
    ``len(out) // len(codes)``; one piece: ``out[i]``) counts the rows whose actor id or pair code
    ``(bid + 1) << 32 | actor`` is ``codes[i]`` (ascending)."""
    k = len(codes)
    parts = np.where(codes > LOW, codes & LOW, codes)[codes >= 0]   # (the codes' actors)
    if not k or not len(parts) or not len(actor):
        return
    npc = len(out) // k
    mark = np.zeros(max(int(parts.max()), int(actor.max())) + 1, bool)
    mark[parts] = True
    at = np.flatnonzero(mark[np.maximum(actor, 0)] & (actor >= 0))
    a = actor[at]
    piece = at // chunk if npc > 1 else np.zeros(len(at), np.int64)
    for q in (a, ((bid[at] + 1) << 32) | a):
        pos = np.minimum(codes.searchsorted(q), k - 1)
        ok = codes[pos] == q
        out += np.bincount(pos[ok] * npc + piece[ok], minlength=k * npc)


class _Store:
    """Window entries of one windowed rule not (yet) in the engine's Python windows; per gid, the
    summed weight and the number of entries with a distinct value (``hasval``) stored (bounds of what
    any window of the gid's stored entries holds)."""

    __slots__ = ("chunks", "newest", "n", "weight", "valued", "exact", "kept", "adds")

    def __init__(self) -> None:
        self.chunks: list[dict[str, np.ndarray]] = []
        self.newest = np.zeros(0)   # gid -> newest ts stored so far (-inf: none)
        self.n = 0
        self.weight = np.zeros(0)   # gid -> summed weight of its stored entries
        self.valued = np.zeros(0, np.int64)   # gid -> its stored entries with a distinct value
        self.exact = True           # every weight so far an integer (float sums of them: exact)
        self.kept = 0               # entries left by the last prune (see ColumnRunner.prune)
        self.adds = 0               # chunks added since the last prune (see crowd)

    def grow(self, size: int) -> None:
        """Room for gids below ``size``."""
        more = size - len(self.newest)
        if more > 0:
            self.newest = np.concatenate((self.newest, np.full(more, -np.inf)))
            self.weight = np.concatenate((self.weight, np.zeros(more)))
            self.valued = np.concatenate((self.valued, np.zeros(more, np.int64)))

    def _count(self, c: dict[str, np.ndarray], sign: int) -> None:
        """Entries of ``c`` added to (sign 1) or removed from (-1) the per-gid sums."""
        if c["w"].dtype.kind not in "iub":
            self.exact = False
        w = c["w"].astype(np.float64)        # (ufunc.at of one dtype: many times faster than mixed)
        v = c["hasval"].astype(np.int64)
        np.add.at(self.weight, c["gid"], w if sign > 0 else -w)
        np.add.at(self.valued, c["gid"], v if sign > 0 else -v)

    def may_reach(self, gids: np.ndarray, threshold: float, distinct: int | None) -> np.ndarray:
        """Which of ``gids`` hold stored entries of at least ``threshold`` weight (or ``distinct``
        entries with a value) in all: a necessary condition of a window of them reaching it (every
        gid when a weight was not an integer: sums that round may fall short)."""
        if not self.exact:
            return np.ones(len(gids), bool)
        ok = self.weight[gids] >= threshold
        if distinct is not None:
            ok |= self.valued[gids] >= distinct
        return ok

    def clear(self) -> None:
        self.chunks, self.n = [], 0
        self.weight[:] = 0
        self.valued[:] = 0

    def add(self, chunk: dict[str, np.ndarray]) -> None:
        if len(chunk["gid"]):
            self.chunks.append(chunk)
            self.adds += 1
            self.n += len(chunk["gid"])
            if len(self.chunks) > COMPACT_CHUNKS:   # (joined now: fewer, bigger chunks to read)
                self.all()
            self._count(chunk, 1)

    def crowd(self, span: float, wm: float) -> None:
        """Pruned once COMPACT_CHUNKS chunks came since the last prune (between the engine's sweeps: a
        busy follow adds millions of entries an hour of event time): once a batch's windows have
        read its entries (see ColumnRunner.run_window), never between."""
        if self.adds > COMPACT_CHUNKS:
            self.prune(span, wm)

    def prune(self, span: float, wm: float) -> None:
        """Keep the entries a window can still use (see the module docstring), chunk by chunk: those
        within ``span`` of their gid's newest, late ones for IDLE_SECONDS + SWEEP_EVERY, and while a
        gid holds a late entry, its entries newer than that entry's time + ``span``:
        among them the one that made it late (the newest of the gid's window before it came), so that a
        replay finds the late entry late and gives it a segment of its own, as the event path did
        (without it the late entry would open the gid's newest segment and the newer entries would join
        it). Replayed entries are then a subset of what the event path's windows held at each point:
        never more in a window, the same at the end."""
        out, n = [], 0
        late_limit = wm - IDLE_SECONDS - SWEEP_EVERY - span
        floor = self.newest - span      # (per gid: entries older than this are dropped)
        for c in self.chunks:
            late = c["late"]
            if late.any():
                at = np.flatnonzero(late)
                at = at[c["ts"][at] >= late_limit]
                if "live" in c:
                    at = at[c["live"][at]]
                np.minimum.at(floor, c["gid"][at], c["ts"][at] + span)
        for c in self.chunks:
            keep = np.empty(len(c["ts"]), bool)
            # (the C pass when the weights are ints: their float sums are exact in any order)
            fn = _PRUNE_KEEP if _PRUNE_KEEP is not None and c["w"].dtype == np.int64 and _c_columns(c) \
                else _prune_keep_py
            if fn(c["ts"], c["gid"], c["late"], c.get("live"), floor, late_limit, c["w"], c["hasval"],
                  self.weight, self.valued, keep):
                c = _kept(c, keep)
            if c is not None:
                out.append(c)
                n += _live(c)
        self.chunks, self.n, self.kept, self.adds = out, n, n, 0

    def all(self) -> dict[str, np.ndarray] | None:
        if not self.chunks:
            return None
        if len(self.chunks) > 1 or "live" in self.chunks[0]:
            chunks = [_rows_of(c, np.flatnonzero(c["live"])) if "live" in c else c for c in self.chunks]
            self.chunks = [{k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}]
        return self.chunks[0]

    def take(self, gids_mask: np.ndarray) -> dict[str, np.ndarray] | None:
        """Remove and return the entries whose gid is flagged in ``gids_mask``."""
        out, keep = [], []
        for c in self.chunks:
            g = c["gid"]
            m = gids_mask[g]
            live = c.get("live")
            if live is not None:
                m &= live
            if m.any():
                out.append(_rows_of(c, np.flatnonzero(m)))
                c = _kept(c, ~m if live is None else live & ~m)
                if c is not None:
                    keep.append(c)
            else:
                keep.append(c)
        self.chunks = keep
        if not out:
            return None
        taken = {k: np.concatenate([c[k] for c in out]) for k in out[0]}
        self.n -= len(taken["gid"])
        self._count(taken, -1)
        return taken

    def select(self, gids_mask: np.ndarray, since: np.ndarray,
               names: tuple = ("gid", "ts", "w", "codes", "hasval")) -> dict[str, np.ndarray] | None:
        """The entries (columns ``names``) of flagged gids at or after ``since[gid]``, not removed."""
        parts = []
        for c in self.chunks:
            at = _select_rows(c["gid"], c["ts"], c.get("live"), gids_mask, since)
            if len(at):
                parts.append(_rows_of(c, at, names))
        if not parts:
            return None
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _c_columns(chunk: dict[str, np.ndarray]) -> bool:
    """A store chunk's columns are of the dtypes the C helpers take (int64 gids, float64 times, bool
    flags)."""
    return (chunk["gid"].dtype == np.int64 and chunk["ts"].dtype == np.float64 and chunk["late"].dtype == bool
            and chunk["hasval"].dtype == bool)


def _running_newest_py(gid: np.ndarray, ts: np.ndarray, newest: np.ndarray, out: np.ndarray) -> None:
    """The pure-Python form of the C ``running_newest`` (times not NaN): ``out[i]`` the newest time of
    entry i's gid before it (``newest[gid]`` of earlier batches, or a time of an earlier entry of the
    gid), then ``newest`` the newest of each gid. An entry is late when older than that by a window:
    the event path takes a batch's rows in order, so a row is late only behind those before it."""
    n = len(gid)
    if not n:
        return
    order = _stable_order(gid)
    g, t = gid[order], ts[order]
    head = np.empty(n, bool)
    head[0] = True
    np.not_equal(g[1:], g[:-1], out=head[1:])
    grp = np.cumsum(head) - 1
    by_time = np.argsort(t, kind="stable")
    rank = np.empty(n, np.int64)
    rank[by_time] = np.arange(n)
    run = np.maximum.accumulate(grp * n + rank)   # (exact: the rank of the newest so far in the group)
    prior = np.full(n, -np.inf)
    at = np.flatnonzero(~head)
    prior[at] = t[by_time[run[at - 1] - grp[at] * n]]
    out[order] = np.maximum(newest[g], prior)
    np.maximum.at(newest, gid, ts)


def _prune_keep_py(ts, gid, late, live, floor, late_limit, w, hasval, weight, valued, keep) -> int:
    """The pure-Python form of the C ``prune_keep`` (:meth:`_Store.prune` of one chunk): ``keep`` set
    to the live entries a window can still use (not older than their gid's ``floor``, or late and not
    older than ``late_limit``), the others' weights and values taken off the gids' sums (``weight``,
    ``valued``, as ``_Store._count``); returns how many were dropped. (A store whose weights are not
    all ints is no longer ``exact`` from the chunk's ``add`` on.)"""
    keep[:] = ts >= floor[gid]
    if late.any():
        keep |= late & (ts >= late_limit)
    drop = ~keep if live is None else live & ~keep
    if live is not None:
        keep &= live
    if not drop.any():
        return 0
    g = gid[drop]
    np.add.at(weight, g, -w[drop].astype(np.float64))
    np.add.at(valued, g, -hasval[drop].astype(np.int64))
    return int(np.count_nonzero(drop))


def _select_rows_py(gid: np.ndarray, ts: np.ndarray, live: np.ndarray | None, flag: np.ndarray,
                    since: np.ndarray) -> np.ndarray:
    """The positions of a store chunk's live entries of flagged gids not older than ``since[gid]``
    (:meth:`_Store.select`; the pure-Python form of the C ``select_rows``)."""
    m = flag[gid]
    m &= ts >= since[gid]
    if live is not None:
        m &= live
    return np.flatnonzero(m)


def _select_rows(gid: np.ndarray, ts: np.ndarray, live: np.ndarray | None, flag: np.ndarray,
                 since: np.ndarray) -> np.ndarray:
    """:func:`_select_rows_py` by the C ``select_rows`` when built."""
    if _SELECT_ROWS is None or gid.dtype != np.int64 or ts.dtype != np.float64:
        return _select_rows_py(gid, ts, live, flag, since)
    out = np.empty(len(gid), np.int64)
    return out[:_SELECT_ROWS(gid, ts, live, flag, since, out)]


def _narrowest(codes: np.ndarray) -> np.ndarray:
    """Non-negative codes as uint8/uint16 when they fit (else as they are)."""
    if not len(codes):
        return codes
    top = int(codes.max())
    return codes.astype(np.uint8 if top < 256 else np.uint16) if top < 65536 and int(codes.min()) >= 0 else codes


class _Evidence:
    """The refs and samples of segments of one batch's rows (:meth:`ColumnRunner.take_segments`):
    the codes and line numbers of each segment's first rows (up to MAX_REFS), built into tuples on
    demand (:meth:`evidence`, a :class:`~.model.LazyFinding`'s source)."""

    __slots__ = ("obj", "line", "time", "req", "key", "start", "count", "lists")

    def __init__(self, runner: "ColumnRunner", ctx: "_Ctx", rows: np.ndarray, segp: np.ndarray, segc: np.ndarray):
        take = np.minimum(segc, MAX_REFS)
        self.count = segc.astype(np.int32)   # (kept until read: the narrowest that holds them)
        self.start = np.concatenate(([0], np.cumsum(take)[:-1])).astype(np.int32)
        if len(take) and (take == 1).all():
            pos = segp
        else:
            pos = np.repeat(segp - self.start, take) + np.arange(int(take.sum()))
        sel = rows[pos]
        c = ctx.c
        # codes in the narrowest dtype that holds them: kept until the findings are read, if ever
        self.obj, self.time, self.req, self.key = (_narrowest(c["object"][sel]), _narrowest(c["time"][sel]),
                                                   _narrowest(c["request"][sel]), _narrowest(c["key"][sel]))
        line = ctx.batch.log_line[sel]
        self.line = line.astype(np.int32) if not len(line) or line.max() < 1 << 31 else line
        d = ctx.d
        self.lists = (d["object"].values, TimeTexts(d["time"]),
                      runner.plist(d["request"], "sample_action", _sample_action), d["key"].values,
                      runner.plist(d["request"], "status", _ITEM3))

    def evidence(self, at: int) -> tuple[list, list]:
        """(refs, samples) of segment ``at``: its first MAX_REFS / MAX_SAMPLES rows."""
        c = self.count.item(at)
        return self.span(at, min(c, MAX_REFS), min(c, MAX_SAMPLES))

    def span(self, at: int, nrefs: int, nsamples: int) -> tuple[list, list]:
        """(refs, samples) of the first ``nrefs`` / ``nsamples`` rows of segment ``at``."""
        p = self.start.item(at)
        ov, text, action, kv, status = self.lists
        if nrefs <= 4:   # a few rows: numpy scalars (slices cost more)
            obj, line = self.obj.item, self.line.item
            refs = [(ov[obj(i)], _line(line(i))) for i in range(p, p + nrefs)]
            if not nsamples:
                return refs, []
            time, req, key = self.time.item, self.req.item, self.key.item
            return refs, [r + (text[time(i)], action[req(i)], kv[key(i)], status[req(i)])
                          for r, i in zip(refs, range(p, p + nsamples))]
        q = p + nrefs
        objs = list(map(ov.__getitem__, self.obj[p:q].tolist()))
        lines = self.line[p:q].tolist()
        if -1 in lines:
            lines = [None if x == -1 else x for x in lines]
        refs = list(zip(objs, lines))
        if not nsamples:
            return refs, []
        q = p + nsamples
        req = self.req[p:q].tolist()
        return refs, list(zip(objs, lines, map(text.__getitem__, self.time[p:q].tolist()),
                              map(action.__getitem__, req), map(kv.__getitem__, self.key[p:q].tolist()),
                              map(status.__getitem__, req)))


class _Parts:
    """The evidence of a :class:`~.model.LazyFinding` that later batches joined before it was read:
    parts ``source, segment, rows`` in order, flat (``rows``: the segment's row count, None for the
    first part: its source's own). While a finding is lazy its ``count`` is the rows of its parts, so
    parts stop once the count before a join reaches MAX_REFS (:func:`_join_py`). The caps (MAX_REFS
    refs, MAX_SAMPLES samples in all) apply when it is read. The C ``join_lazy`` makes them without
    ``__init__``, left out of the cyclic garbage collector with their list (sources, ints and None:
    no cycle passes through them)."""

    __slots__ = ("parts",)

    def __init__(self, src: _Evidence, at: int):
        self.parts = [src, at, None]

    def evidence(self, _at: Any) -> tuple[list, list]:
        refs: list = []
        samples: list = []
        parts = self.parts
        for i in range(0, len(parts), 3):
            src, at, count = parts[i:i + 3]
            if count is None:
                count = src.count.item(at)
            room = MAX_REFS - len(refs)
            if room <= 0:
                break
            n = min(count, room)
            r, s = src.span(at, n, max(0, min(n, MAX_SAMPLES - len(samples))))
            refs += r
            samples += s
        return refs, samples


class _CodeIds:
    """Dense ids (0, 1, ...) of int64 group codes (:meth:`_Ctx.group_codes` of pairs), in numpy: an
    open-addressing hash table (linear probing, at most half full) looked up and filled a whole
    array of codes at a time; ``codes[id]`` is the code of each id."""

    __slots__ = ("keys", "vals", "codes", "n")

    def __init__(self, size: int = 1024) -> None:
        self.keys = np.full(size, -1, np.int64)
        self.vals = np.zeros(size, np.int64)
        self.codes = np.zeros(0, np.int64)
        self.n = 0

    def _slots(self, codes: np.ndarray) -> np.ndarray:
        bits = len(self.keys).bit_length() - 1
        with np.errstate(over="ignore"):
            h = codes.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        return (h >> np.uint64(64 - bits)).astype(np.int64)

    def find(self, codes: np.ndarray) -> np.ndarray:
        """The id of each code, -1 for codes not in the table."""
        keys, mask = self.keys, len(self.keys) - 1
        out = np.full(len(codes), -1, np.int64)
        idx = np.arange(len(codes))
        h = self._slots(codes)
        while len(idx) > 16:
            k = keys[h]
            hit = k == codes[idx]
            if hit.any():
                out[idx[hit]] = self.vals[h[hit]]
            go = ~hit & (k != -1)
            idx, h = idx[go], (h[go] + 1) & mask
        for i, j in zip(idx.tolist(), h.tolist()):   # the long probe sequences: one code at a time
            code = int(codes[i])
            while True:
                k = int(keys[j])
                if k == code:
                    out[i] = self.vals[j]
                    break
                if k == -1:
                    break
                j = (j + 1) & mask
        return out

    def _put(self, codes: np.ndarray, ids: np.ndarray) -> None:
        """Insert distinct codes not in the table, with their ids."""
        keys, vals, mask = self.keys, self.vals, len(self.keys) - 1
        idx = np.arange(len(codes))
        h = self._slots(codes)
        while len(idx) > 16:
            free = np.flatnonzero(keys[h] == -1)
            placed = np.zeros(len(idx), bool)
            if len(free):
                slots, first = np.unique(h[free], return_index=True)   # one code per free slot
                win = idx[free[first]]
                keys[slots] = codes[win]
                vals[slots] = ids[win]
                placed[free[first]] = True
            idx, h = idx[~placed], (h[~placed] + 1) & mask
        for i, j in zip(idx.tolist(), h.tolist()):   # the last few: one at a time
            while keys[j] != -1:
                j = (j + 1) & mask
            keys[j] = codes[i]
            vals[j] = ids[i]

    def ids(self, codes: np.ndarray) -> np.ndarray:
        """The ids of distinct codes (repeats allowed when the C table is used: ``_HASH_IDS``), new ids
        for codes not seen before."""
        if _HASH_IDS is not None:   # the C loop over the same table
            k = len(codes)
            if (self.n + k) * 2 > len(self.keys):     # load at most 1/2
                size = len(self.keys)
                while (self.n + k) * 2 > size:
                    size *= 2
                self.keys = np.full(size, -1, np.int64)
                self.vals = np.zeros(size, np.int64)
                _HASH_IDS(self.keys, self.vals, self.codes, np.empty(self.n, np.int64), 0)
            out = np.empty(k, np.int64)
            n = _HASH_IDS(self.keys, self.vals, codes, out, self.n)
            if n > self.n:
                fresh = out >= self.n
                added = np.empty(n - self.n, np.int64)
                added[out[fresh] - self.n] = codes[fresh]     # (a repeated code: the same id, once)
                self.codes = np.concatenate((self.codes, added))
                self.n = n
            return out
        out = self.find(codes)
        new = np.flatnonzero(out < 0)
        if len(new):
            k = len(new)
            if (self.n + k) * 2 > len(self.keys):     # load at most 1/2
                size = len(self.keys)
                while (self.n + k) * 2 > size:
                    size *= 2
                old = self.codes
                self.keys = np.full(size, -1, np.int64)
                self.vals = np.zeros(size, np.int64)
                self._put(old, np.arange(len(old), dtype=np.int64))
            fresh = np.arange(self.n, self.n + k, dtype=np.int64)
            self._put(codes[new], fresh)
            self.codes = np.concatenate((self.codes, codes[new]))
            self.n += k
            out[new] = fresh
        return out


class _Open:
    """The open findings of one stateless rule (:meth:`ColumnRunner.run_single`) kept by interned group
    id instead of in ``rule.open``: ``close`` and ``first`` (NaN: none) as numpy arrays, so a batch
    finds its groups' open findings without a dict look-up per group; ``obj`` the findings, ``seq``
    their order of creation. An entry may be a finding ``pop_closed`` has closed since (``closed``):
    that is no open finding. ``rule.open`` is empty while the rule's open findings are here; any code
    that reads ``rule.open`` first has them moved back (:meth:`ColumnRunner.release_open`)."""

    __slots__ = ("close", "first", "obj", "seq", "n")

    def __init__(self) -> None:
        self.close = np.zeros(0)
        self.first = np.zeros(0)
        self.obj = np.zeros(0, dtype=object)
        self.seq = np.zeros(0, dtype=np.int32)   # (two billion findings made would wrap it)
        self.n = 0          # entries set since the last release (an upper bound of live ones)

    def grow(self, size: int) -> None:
        have = len(self.close)
        if have < size:
            more = max(size, have * 2) - have
            self.close = np.concatenate((self.close, np.full(more, np.nan)))
            self.first = np.concatenate((self.first, np.full(more, np.nan)))
            self.obj = np.concatenate((self.obj, np.full(more, None, dtype=object)))
            self.seq = np.concatenate((self.seq, np.zeros(more, np.int32)))


def _field(chunk: dict[str, np.ndarray], name: str) -> np.ndarray:
    """Column ``name`` of a store chunk: its own array, or a column of the 2-d ``codes`` (one per
    STORE_TABLES) or ``ints`` (STORE_INTS) arrays (one copy per chunk when entries are dropped or taken,
    not one per column)."""
    if name in STORE_TABLES:
        return chunk["codes"][:, STORE_TABLES.index(name)]
    if name in STORE_INTS:
        return chunk["ints"][:, STORE_INTS.index(name)]
    return chunk[name]


def _rows_of(cols: dict[str, np.ndarray], idx: np.ndarray, names=None) -> dict[str, np.ndarray]:
    """The entries ``idx`` (indexes: cheaper than a mask once per column) of columns (``names`` only;
    a store chunk's ``live`` mask left out)."""
    # (take: 2-d rows many times faster than [idx])
    return {k: cols[k].take(idx, 0) for k in names or cols if k != "live"}


def _kept(chunk: dict[str, np.ndarray], keep: np.ndarray) -> dict[str, np.ndarray] | None:
    """A store chunk with only its entries ``keep`` (a mask over its rows) left, None when none is:
    marked in its ``live`` mask while the entries left out are under DEAD_SHARE of its rows (no copy),
    else copied."""
    k = int(np.count_nonzero(keep))
    if not k:
        return None
    if len(keep) - k < DEAD_SHARE * len(keep):
        chunk["live"] = keep
        return chunk
    return _rows_of(chunk, np.flatnonzero(keep))


def _live(chunk: dict[str, np.ndarray]) -> int:
    """How many entries of a store chunk are live."""
    live = chunk.get("live")
    return len(chunk["gid"]) if live is None else int(np.count_nonzero(live))


def _runs(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of sorted ``s`` and how many times each occurs."""
    if not len(s):
        return s, np.zeros(0, np.int64)
    head = np.flatnonzero(np.concatenate(([True], s[1:] != s[:-1])))
    return s[head], np.diff(np.append(head, len(s)))


def _unique(a: np.ndarray) -> np.ndarray:
    """``np.unique(a)`` by sorting (no hash table, no numpy.ma)."""
    return _runs(np.sort(a))[0]


def _bits_dtype(n: int) -> np.dtype:
    """The smallest unsigned dtype of ``n`` bits or more (at most 64)."""
    return np.dtype(np.uint8 if n <= 8 else np.uint16 if n <= 16 else np.uint32 if n <= 32 else np.uint64)


def _unique_ids(a: np.ndarray, size: int) -> np.ndarray:
    """:func:`_unique` of ints in [0, size): marks in an array of ``size`` when that is not much
    longer than ``a`` (no sort), else by sorting."""
    if size > 8 * len(a):
        return _unique(a)
    seen = np.zeros(size, bool)
    seen[a] = True
    return np.flatnonzero(seen)


def _stable_order(a: np.ndarray) -> np.ndarray:
    """``np.argsort(a, kind="stable")``, by 16-bit radix sorts when the values allow it: ints within
    65,536 of each other (one pass) or non-negative ints whose low 32 bits and high bits each span
    less than that (two passes: low, then high), floats that are whole numbers within 65,536 of each
    other (one pass); else numpy's stable sort of the values themselves."""
    if len(a) < 256:
        return np.argsort(a, kind="stable")
    if a.dtype.kind == "f":
        lo, hi = a.min(), a.max()            # (NaN or inf: hi - lo is not below 65536)
        if hi - lo < 65536 and (a == np.floor(a)).all():
            return np.argsort((a - lo).astype(np.uint16), kind="stable")
        return np.argsort(a, kind="stable")
    lo, hi = int(a.min()), int(a.max())
    if hi - lo < 65536:
        return np.argsort((a - lo).astype(np.uint16), kind="stable")
    if lo >= 0 and a.dtype.kind in "iu" and a.dtype.itemsize == 8:
        low = a & LOW
        if int(low.max()) < 65536:
            top = a >> 32
            t0 = int(top.min())
            if int(top.max()) - t0 < 65536:
                o = np.argsort(low.astype(np.uint16), kind="stable")
                return o[np.argsort((top - t0).astype(np.uint16)[o], kind="stable")]
    return np.argsort(a, kind="stable")


def _distinct(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(u, inv)``: the distinct values ``u`` of int array ``a`` (each once, in no set order) and
    ``u[inv] == a``; without a sort when the values span little more than ``len(a)`` (one slot per
    value in a scratch array), else ``np.unique``."""
    n = len(a)
    if n:
        lo, hi = int(a.min()), int(a.max())
        if hi - lo < 4 * n + 1024:
            b = a - lo
            at = np.arange(n)
            slot = np.empty(hi - lo + 1, np.intp)
            slot[b] = at                     # (of repeated values: one of their positions)
            rep = slot[b]                    # the same position for every row of a value
            first = rep == at
            return a[first], (np.cumsum(first) - 1)[rep]
    u, inv = np.unique(a, return_inverse=True)
    return u, inv.reshape(-1)


def _line(x: int):
    return None if x == -1 else x


def _take_py(values: list, idx: np.ndarray, default=None, addend=None) -> list:
    """``values[i]`` for each index of ``idx``, None replaced by ``default``, plus ``addend`` (when
    not None): the pure-Python form of the C ``take``."""
    il = idx.tolist()
    if il and (min(il) < 0 or max(il) >= len(values)):
        raise IndexError("take: index out of range")
    out = list(map(values.__getitem__, il))
    if default is not None and None in out:
        out = [default if v is None else v for v in out]
    return out if addend is None else list(map(add, out, repeat(addend)))


def _join_py(fs: list, counts: list, lasts: list, src, segs: list, finding_cls: type, lazy_cls: type,
             parts_cls: type, max_refs: int, touched: dict) -> list[int]:
    """The pure-Python form of the C ``join_lazy``: segments ``segs`` of ``src`` (an :class:`_Evidence`)
    join the open findings ``fs``: ``count`` and ``last_ts`` grow, the finding is touched, and a lazy
    finding not read yet keeps the segment as a part (:class:`_Parts`) while its count before the join
    is under ``max_refs``. Returns the positions of the findings read already (the caller extends their
    refs and samples)."""
    read = []
    for k, (f, c, last, s) in enumerate(zip(fs, counts, lasts, segs)):
        if not isinstance(f, finding_cls):
            raise TypeError(f"join_lazy: {type(f)!r} is not a {finding_cls!r}")
        before = f.count
        f.count = before + c
        if last > f.last_ts:
            f.last_ts = last
        lazy = f._src if type(f) is lazy_cls else None
        if lazy is not None:
            if type(lazy) is not parts_cls:
                lazy = f._src = parts_cls(lazy, f._at)
            if before < max_refs:
                lazy.parts += (src, s, c)
        else:
            read.append(k)
        touched[f] = None
    return read


_HASH_IDS = getattr(speedups, "hash_ids", None)   # (None: _CodeIds in numpy)
_COUNT_CODES = getattr(speedups, "count_codes", None)   # (None: _count_codes_py)
_PRUNE_KEEP = getattr(speedups, "prune_keep", None)     # (None: _prune_keep_py)
_SELECT_ROWS = getattr(speedups, "select_rows", None)   # (None: _select_rows_py)
_RUNNING_NEWEST = getattr(speedups, "running_newest", None)   # (None: _running_newest_py)
_GATHER_AND = getattr(speedups, "gather_and", None)   # (None: numpy, a gather and an AND per table)
_GATHER_ROWS = getattr(speedups, "gather_rows", None)   # (None: numpy, a gather per column)
_take = getattr(speedups, "take", None) or _take_py
_join = getattr(speedups, "join_lazy", None) or _join_py
_SMALL: list[int] = []   # 0, 1, 2, ...: shared int objects for the ``at`` of new findings
SMALL_MAX = 1 << 16


def _small_ints(n: int) -> list[int]:
    """``list(range(n))`` whose ints (below SMALL_MAX) are shared objects, not one per finding."""
    global _SMALL
    if n > SMALL_MAX:
        return list(range(n))
    small = _SMALL
    if len(small) < n:   # a longer list replaces the shared one (engines in other threads: each a right one)
        small = _SMALL = small + list(range(len(small), n))
    return small[:n]


class ColumnRunner:
    """The column path of one :class:`RuleEngine` (see the module docstring)."""

    def __init__(self, engine, settings: dict[str, Any]):
        self.engine = engine
        self.settings = settings
        self._gid: dict[Any, int] = {}      # interned group keys and actors: value -> id
        self._gval: list[Any] = []
        self._bid: dict[Any, int] = {}      # interned bucket names
        self._bval: list[Any] = []
        self._pairs: dict[int, int] = {}    # pair group code (see _Ctx.group_codes) -> interned id
        self._pcodes = _CodeIds()           # (C hash table) pair group codes of windowed rules -> dense ids
        self._pgid = np.zeros(0, np.int64)  # their dense id -> interned id (-1: not interned yet)
        self._derived: dict[tuple, tuple[Table, np.ndarray]] = {}
        self._lists: dict[tuple, tuple[Table, list]] = {}
        self._classified: dict[Any, tuple] = {}     # operation -> _classify(operation)
        self._stores: dict[str, _Store] = {}
        self._report = True   # (process: list what each batch touched)
        self._rowform: deque[ColumnCounts] = deque()   # request counts kept as rows (count_requests)
        self._rowrows = 0
        self._open: dict[str, _Open] = {}   # stateless rules: open findings by group id (run_single)
        self._codes = _CodeIds()            # pair group codes -> dense ids (the _Open of pair rules)
        self._made = 0                      # findings made by run_single (their order of creation)
        self._texts: dict[tuple, dict[str, bool]] = {}   # (field, literals) -> text -> may hold one
        self._seq = 0
        self._dicts: Dicts | None = None
        self._plan: tuple | None = None     # (active rules, plan, dtypes, version): see plan()
        public = frozenset(settings.get("public_buckets") or ())
        self._public = public
        self._public_globs = [b for b in public if any(c in b for c in "*?[")]
        self._sensitive = B.KeyPatterns(list(B.DEFAULT_SENSITIVE) + list(settings.get("sensitive_patterns") or ()))

    # ------------------------------------------------------------------ interning and verdicts

    def gid(self, value) -> int:
        g = self._gid.get(value)
        if g is None:
            g = self._gid[value] = len(self._gval)
            self._gval.append(value)
        return g

    def pair_ids(self, codes: np.ndarray) -> np.ndarray:
        """Interned ids of the (bucket, value) keys of pair group codes (see :meth:`_Ctx.group_codes`):
        with the C hash table, the codes' dense ids (:class:`_CodeIds`) mapped to interned ids by an
        array; else a dict lookup per distinct code. Python interning only for pairs not seen before
        (in ascending code order)."""
        if _HASH_IDS is None:
            u, inv = np.unique(codes, return_inverse=True)
            return np.array(self.unique_pair_ids(u), dtype=np.int64)[inv.reshape(-1)]
        dense = self._pcodes.ids(codes)
        if len(self._pgid) < self._pcodes.n:
            self._pgid = np.concatenate((self._pgid, np.full(self._pcodes.n - len(self._pgid), -1, np.int64)))
        out = self._pgid[dense]
        miss = out < 0
        if miss.any():
            new = _unique(dense[miss])
            new = new[np.argsort(self._pcodes.codes[new])]
            gid, gval, bval = self.gid, self._gval, self._bval
            self._pgid[new] = [gid((bval[(p >> 32) - 1], gval[p & LOW])) for p in self._pcodes.codes[new].tolist()]
            out = self._pgid[dense]
        return out

    def unique_pair_ids(self, codes: np.ndarray) -> list[int]:
        """:meth:`pair_ids` of distinct pair group codes, as a list."""
        ul = codes.tolist()
        ids = list(map(self._pairs.get, ul))
        if None in ids:
            gid, gval, bval, pairs = self.gid, self._gval, self._bval, self._pairs
            for j, (p, i) in enumerate(zip(ul, ids)):
                if i is None:
                    ids[j] = pairs[p] = gid((bval[(p >> 32) - 1], gval[p & LOW]))
        return ids

    def plist(self, table: Table, name: Any, fn, bulk=None) -> list:
        """``lst[code] = fn(value)`` for every code of ``table``, a Python list (values handed to
        findings and samples as they are), extended as the table grows (by ``bulk(new values)`` when
        given: the same list as ``map(fn, ...)``, made faster)."""
        key = (id(table), name)
        ent = self._lists.get(key)
        if ent is None or ent[0] is not table:
            ent = self._lists[key] = (table, [])
        lst = ent[1]
        vals = table.values
        if len(lst) < len(vals):
            lst.extend(map(fn, vals[len(lst):]) if bulk is None else bulk(vals[len(lst):]))
        return lst

    def pack_key(self, key) -> int | None:
        """The group code of a group key (None when one of its parts was never interned)."""
        if type(key) is tuple and len(key) == 2:
            b, a = self._bid.get(key[0]), self._gid.get(key[1])
            return None if b is None or a is None else ((b + 1) << 32) | a
        return self._gid.get(key)

    def requests_in(self, gids: np.ndarray, start: np.ndarray, end: np.ndarray, errors: np.ndarray | None = None,
                    share: float = 0.0) -> np.ndarray:
        """``RuleEngine._requests(key, start[i], end[i])`` of the group key of each of ``gids``, over
        the engine's request counts as they are now, newest first: per count kept, the queries whose
        span overlaps it, all at once for a batch's (:meth:`ColumnCounts.many`), a ``Counter.get``
        each for an event batch's. With ``errors``: a query whose ``errors[i] < share * count`` so far
        is not counted further (its share test fails whatever the older counts add)."""
        eng = self.engine
        ug, inv = np.unique(gids, return_inverse=True)
        inv = inv.reshape(-1)
        keys = list(map(self._gval.__getitem__, ug.tolist()))
        codes = None
        out = np.zeros(len(gids), np.int64)
        for lo, hi, c, _ in reversed(eng._req_chunks):
            near = (end >= lo) & (start <= hi)
            if errors is not None:
                near &= errors >= share * out
            near = np.flatnonzero(near)
            if not len(near):
                continue
            if type(c) is Counter:
                get = c.get
                out[near] += [get(keys[i], 0) for i in inv[near].tolist()]
                continue
            if codes is None:
                codes = np.array([-1 if k is None else k for k in map(self.pack_key, keys)], np.int64)
            u, j = np.unique(inv[near], return_inverse=True)   # (only the codes of these queries)
            out[near] += c.many(codes[u], j.reshape(-1), start[near], end[near], eng._req_horizon)
        return out

    def keys_of(self, codes: np.ndarray) -> list:
        """The group keys of group codes."""
        gval, bval = self._gval, self._bval
        if not len(codes) or codes.max() <= LOW:
            return list(map(gval.__getitem__, codes.tolist()))
        if codes.min() > LOW:
            return list(zip(map(bval.__getitem__, ((codes >> 32) - 1).tolist()),
                            map(gval.__getitem__, (codes & LOW).tolist())))
        return [gval[c] if c <= LOW else (bval[(c >> 32) - 1], gval[c & LOW]) for c in codes.tolist()]

    def verdict(self, table: Table, name: Any, fn, dtype=bool) -> np.ndarray:
        """``arr[code] = fn(value)`` over ``table`` (engine-local: verdicts depend on the config)."""
        return self._extend(table, name, lambda vals: np.fromiter(map(fn, vals), dtype=dtype, count=len(vals)))

    def _extend(self, table: Table, name: Any, compute) -> np.ndarray:
        """The cached per-code array ``name`` over ``table``, extended by ``compute(new values)``."""
        ent = self._derived.get((id(table), name))
        n = len(table.values)
        old = ent[1] if ent is not None and ent[0] is table else None
        if old is not None and len(old) >= n:
            return old
        start = 0 if old is None else len(old)
        new = compute(table.values[start:n])
        arr = appended(old, new)
        self._derived[(id(table), name)] = (table, arr)
        return arr

    def _sparse(self, table: Table, name: Any) -> np.ndarray:
        """The cached int8 per-code array ``name`` of ``table`` (-1: not decided yet), grown to the table
        (by half its size at least: a table that grows every batch is not copied every batch)."""
        key = (id(table), name)
        ent = self._derived.get(key)
        arr = ent[1] if ent is not None and ent[0] is table else np.zeros(0, np.int8)
        n = len(table.values)
        if len(arr) < n:
            arr = np.concatenate((arr, np.full(max(n, len(arr) * 3 // 2) - len(arr), -1, np.int8)))
            self._derived[key] = (table, arr)
        return arr

    def verdict_codes(self, table: Table, name: Any, fn, codes: np.ndarray, literals: tuple = ()) -> np.ndarray:
        """Per code of ``table`` (int8): ``fn(value)`` as 1 or 0, -1 when not asked yet; decided for
        ``codes`` (the values of rows a rule may match only). ``literals`` (lower-case ASCII): ``fn`` is
        asked only of text values holding one (:class:`Joined`: a necessary condition of ``fn``), the
        others are 0."""
        arr = self._sparse(table, name)
        unknown = codes[arr[codes] < 0]
        if len(unknown):
            u = _unique(unknown)
            vals = table.values
            if literals:
                texts = [v if isinstance(v, str) else "" for v in map(vals.__getitem__, u.tolist())]
                arr[u] = 0
                found = Joined(texts).find(literals)
                if found:
                    u = u[np.fromiter(found, np.int64, len(found))]
                else:
                    return arr
            arr[u] = np.fromiter((bool(fn(vals[c])) for c in u.tolist()), np.int8, len(u))
        return arr

    def literal_some(self, table: Table, name: Any, literals: tuple, codes: np.ndarray) -> np.ndarray:
        """Per code of ``table`` (int8): 1 when the value (a text or None) holds one of the lower-case
        ``literals`` (:class:`Joined`), 0 when not, -1 when not asked yet; decided for ``codes``
        (only the values of rows a rule may match are searched)."""
        arr = self._sparse(table, name)
        unknown = codes[arr[codes] < 0]
        if len(unknown):
            u = _unique(unknown)
            vals = table.values
            found = Joined([vals[c] or "" for c in u.tolist()]).find(literals)
            arr[u] = 0
            if found:
                arr[u[np.fromiter(found, np.int64, len(found))]] = 1
        return arr

    def literal_verdict(self, table: Table, name: Any, literals: tuple, text=lambda v: v or "") -> np.ndarray:
        """Per code: the value's text holds one of the lower-case ``literals`` (Joined over new values)."""
        def compute(vals: list) -> np.ndarray:
            new = np.zeros(len(vals), dtype=bool)
            found = Joined([text(v) for v in vals]).find(literals) if vals else ()
            if found:
                new[np.fromiter(found, dtype=np.int64, count=len(found))] = True
            return new
        return self._extend(table, name, compute)

    def plan(self, ctx: "_Ctx") -> dict:
        """Per active rule, its (fast bit, slow bit) in the per-code bit tables (:meth:`bit_table`):
        a fast bit for rules with a :meth:`_Ctx.fast_kind`, a slow bit for every rule, as masks of the
        smallest unsigned dtype that holds them (:meth:`bit_dtype`); None past RULE_BITS rules (the
        rule's conditions are then gathered on their own)."""
        key = tuple(map(id, self.engine.active))
        if self._plan is None or self._plan[0] != key:
            nums: dict = {}
            nf = ns = 0
            for rule in self.engine.active:
                fast = None
                if ctx.fast_kind(rule) is not None and nf < RULE_BITS:
                    fast, nf = nf, nf + 1
                slow = None
                if ns < RULE_BITS:
                    slow, ns = ns, ns + 1
                nums[rule] = (fast, slow)
            dtypes = {"fast": _bits_dtype(nf), "slow": _bits_dtype(ns)}
            fd, sd = dtypes["fast"].type, dtypes["slow"].type
            plan = {rule: (None if f is None else fd(1 << f), None if s is None else sd(1 << s))
                    for rule, (f, s) in nums.items()}
            self._plan = (key, plan, dtypes, (self._plan[3] + 1) if self._plan else 0)
        return self._plan[1]

    def bit_dtype(self, ctx: "_Ctx", which: str) -> np.dtype:
        """The unsigned dtype of the ``which`` bits (``fast``, ``slow``) of :meth:`plan`."""
        self.plan(ctx)
        return self._plan[2][which]

    def bit_table(self, ctx: "_Ctx", table: str, which: str) -> np.ndarray | None:
        """Per code of ``table``: the bits (:meth:`bit_dtype`) of the rules whose ``which`` condition
        (:meth:`_Ctx.levels`: ``fast``, the fast-hit conditions; ``slow``, the slow rows, request
        table only) the code meets (a rule without a condition on the table: every code); None when
        no rule has a condition on it. Made again when the table has grown."""
        tab = ctx.d[table]
        n = len(tab.values)
        self.plan(ctx)
        name = ("bits", which, table, self._plan[3])   # (the plan's version: tables of an older plan unused)
        ent = self._derived.get((id(tab), name))
        if ent is not None and ent[0] is tab and ent[1][0] == n:
            return ent[1][1]
        arr = np.zeros(n, self.bit_dtype(ctx, which))
        some = False
        for rule, (fast, slow) in self.plan(ctx).items():
            bit = fast if which == "fast" else slow
            if bit is None:
                continue
            levels, slow_codes = ctx.levels(rule, None if fast is None else ctx.fast_kind(rule))
            cond = levels.get(table) if which == "fast" else slow_codes
            if cond is None:
                arr |= bit
            else:
                arr[cond[:n]] |= bit
                some = True
        out = arr if some or which == "slow" or table == "request" else None
        self._derived[(id(tab), name)] = (tab, (n, out))
        return out

    # ------------------------------------------------------------------ per batch

    def process(self, batch: ColumnBatch, report: bool = True) -> list:
        """The findings the batch created or updated (``report=False``: an empty list, and findings
        made in bulk are not listed on the way)."""
        eng = self.engine
        self._report = report
        if self._dicts is not None and batch.dicts is not self._dicts:
            self.materialize()        # codes of another pipeline: stored entries go to Python windows
            self.load_lazy()
        self._dicts = batch.dicts
        touched: dict = {}
        n = batch.n
        ts = batch.ts
        if n and not np.isnan(ts).all():
            newest = float(np.nanmax(ts))
            if newest > eng.watermark:
                eng.watermark = newest
        wm = eng.watermark
        ctx = _Ctx(self, batch, wm)
        if eng._share and n:
            self.count_requests(ctx)
        pause = eng.between_rules
        for rule in eng.active:
            if pause is not None:
                pause()
            self.run_rule(rule, ctx, touched)
        if eng._next_sweep is None:
            eng._next_sweep = wm + SWEEP_EVERY
        elif wm >= eng._next_sweep:
            eng._sweep()
            self.prune()
        return list(touched) if report else []

    def count_requests(self, ctx: "_Ctx") -> None:
        """The column form of ``RuleEngine._count_requests``: the same pieces and keys."""
        eng, batch = self.engine, ctx.batch
        n = batch.n
        ts = batch.ts
        valid = ~np.isnan(ts)
        wm = eng.watermark
        if valid.any():
            tmin, tmax = float(np.nanmin(ts)), float(np.nanmax(ts))
        else:
            tmin = tmax = None
        if tmin is not None and tmax - tmin > REQ_SPAN and n > REQ_CHUNK:
            starts = np.arange(0, n, REQ_CHUNK)
        else:
            starts = np.array([0])
        npc = len(starts)
        with np.errstate(invalid="ignore"):
            los = np.fmin.reduceat(ts, starts).tolist()
            his = np.fmax.reduceat(ts, starts).tolist()
        pmax = []
        top = eng._req_top
        for k in range(npc):
            if los[k] != los[k]:   # NaN: no row of the piece has a time
                los[k] = his[k] = wm
            top = max(top, his[k])
            pmax.append(top)
        eng._req_top = top
        counts = ColumnCounts(ctx.actor_gid(), ctx.bucket_id(), los, his, pmax, self)
        eng._req_chunks.append((min(los), max(his), counts, top))
        eng._drop_requests((tmin if tmin is not None else wm) - eng._req_keep)  # as the event path
        rowform = self._rowform   # the batches whose counts are still rows: past REQ_ROWS_KEPT, compacted
        rowform.append(counts)
        self._rowrows += n
        if self._rowrows > REQ_ROWS_KEPT:   # (counts dropped already are forgotten, not compacted)
            live = {id(c[2]) for c in eng._req_chunks}
            while self._rowrows > REQ_ROWS_KEPT and len(rowform) > 1:
                old = rowform.popleft()
                self._rowrows -= len(old.actor)
                if id(old) in live:
                    old.compact()

    # ------------------------------------------------------------------ one rule

    def run_rule(self, rule: Rule, ctx: "_Ctx", touched: dict) -> None:
        eng = self.engine
        batch = ctx.batch
        if not batch.n:
            return
        fast, weight, slow = ctx.rule_rows(rule)
        slow_items = []
        if slow is not None and len(slow):
            gate = ctx.gate_fn(rule)
            match, group = rule.match, rule.group
            for r, ev in zip(slow.tolist(), batch.events(slow)):
                if not gate(ev):
                    continue
                try:
                    hit = match(ev)
                except Exception as exc:
                    eng._rule_failed(rule, exc)
                    continue
                if hit is not None:
                    slow_items.append((r, ev, hit, group(ev)))
        if not rule.is_window:
            if not slow_items and fast is not None and len(fast) and self.bulk_ok(rule):
                self.run_single(rule, ctx, fast, touched)
                return
            items = slow_items
            if fast is not None and len(fast):
                keys = ctx.group_keys(rule, fast)
                rows = ctx.rows(fast)
                fitems = list(zip(fast.tolist(), rows, self.fast_hits(rule, ctx, fast, weight), keys))
                items = _merge(fitems, items) if items else fitems
            if items:
                self.release_open(rule)
                eng._take(rule, [(ev, hit, key) for _, ev, hit, key in items], touched)
            return
        self.run_window(rule, ctx, fast, weight, slow_items, touched)

    @staticmethod
    def bulk_ok(rule: Rule) -> bool:
        """Whether :meth:`run_single` models the rule: single mode, the fixed title, hits ONE or with
        the details of :meth:`fast_hits` (summed by :meth:`merge_details`: a measure of the weights)."""
        kind = FAST_KINDS.get(rule.id, False)
        return (rule.mode == "single" and rule.title_fn is None and kind is not False
                and (kind is True or rule.measure_of is None))

    def fast_hits(self, rule: Rule, ctx: "_Ctx", sel: np.ndarray, weight: np.ndarray | None = None) -> list:
        """The hits of fast rows ``sel``, in that order, as the rule's match gives them (FAST_KINDS)."""
        one = FAST_KINDS[rule.id]
        if one is True:
            return [ONE] * len(sel)
        if one is None:
            return [(1, None, None, {"keys": [k]}) for k in ctx.values("key", sel)]
        if one == "change":   # (an access-log row logs no request body: the change only)
            action = self.plist(ctx.d["request"], "sample_action", _sample_action)
            return [(1, None, None, {"change": action[c], "body_logged": False})
                    for c in ctx.c["request"][sel].tolist()]
        return [(w, None, None, None) for w in weight.tolist()]

    def merge_details(self, rule: Rule, ctx: "_Ctx", rows: np.ndarray, segp: np.ndarray, segc: np.ndarray,
                      findings: list, fresh: bool) -> None:
        """The details of the hits of segments (starts ``segp``, row counts ``segc``, positions in the
        grouped ``rows``) of a rule whose hits carry them (:meth:`fast_hits`), into ``findings`` (one per
        segment) as ``RuleEngine._extra`` takes them one by one: a fresh finding's at once (the weights
        summed into the measure, each other key as the first hit sets it, its list the first distinct
        values), a joined one's hit by hit."""
        eng = self.engine
        if not fresh:
            for f, p, c in zip(findings, segp.tolist(), segc.tolist()):
                for hit in self.fast_hits(rule, ctx, rows[p:p + c]):
                    eng._extra(rule, f, None, hit)
            return
        measure = rule.measure
        counts = segc.tolist()
        if FAST_KINDS[rule.id] is None:   # the first distinct keys (codes: one per value)
            kv = ctx.d["key"].values
            kl = ctx.c["key"][rows].tolist()
            cap = MAX_SAMPLES * 4
            extras = [{"keys": list(map(kv.__getitem__, islice(dict.fromkeys(kl[p:p + c]), cap)))}
                      for p, c in zip(segp.tolist(), counts)]
        else:   # the first hit's (the others set the same values again)
            extras = [hit[3] for hit in self.fast_hits(rule, ctx, rows[segp])]
        for f, c, extra in zip(findings, counts, extras):
            d: dict[str, Any] = {} if measure is None else {measure: c}
            d.update(extra)
            f.details = d

    def run_single(self, rule: Rule, ctx: "_Ctx", fast: np.ndarray, touched: dict) -> None:
        """Fast hits (rows ``fast``, ascending) of a stateless rule (:meth:`bulk_ok`), decided per
        group in bulk with the meaning of ``RuleEngine._take`` row by row.

        A group's rows (in row order) fall into *segments*, one per finding they go to: the first
        joins the group's open finding when its first row is within that finding's dedup period,
        else it opens a finding at its first row (the open one, its period over, is closed); each
        later segment starts at the first row past the previous segment's ``close_ts`` and opens a
        finding there (the previous one closed). The segments are found with numpy (a few passes:
        one per segment of the group that has the most in this batch) when that is what ``_take``
        would do: rows in time order within the group, or all of them in one segment (any order)
        and none older than the segment's finding's first time. Other groups (late rows, more than
        :data:`MAX_SPLITS` segments) take ``_take`` over light rows, in row order. New findings are
        made together (:func:`~.model.new_findings`) with their refs and samples."""
        eng = self.engine
        n = len(fast)
        codes = ctx.group_codes(rule, fast)
        order = _stable_order(codes)
        gs = codes[order]
        rows = fast[order]                       # grouped, row order within a group
        tss = ctx.ts_eff[rows]
        brk = np.empty(n, bool)
        brk[0] = True
        np.not_equal(gs[1:], gs[:-1], out=brk[1:])
        head = np.flatnonzero(brk)
        ng = len(head)
        end = np.append(head[1:], n)
        cnt = end - head
        t0 = tss[head]
        tmin = np.minimum.reduceat(tss, head)
        tmax = np.maximum.reduceat(tss, head)
        ucodes = gs[head]
        if rule.open:   # findings made by the engine's own code: into the rule's _Open
            self.adopt_open(rule)
        gids = self.group_ids(rule, ucodes)     # dense group ids (numpy, one per group)
        m = self._open.get(rule.id)
        if m is None:
            m = self._open[rule.id] = _Open()
        m.grow(int(gids.max()) + 1)
        dedup = rule.dedup * 60
        close = t0 + dedup                      # close_ts of each group's current segment
        floor = t0                              # rows older than this would lower a finding's first_ts
        joined = np.zeros(ng, bool)             # the first segment joins the open finding
        fclose = m.close[gids]
        has = ~np.isnan(fclose)                 # (an entry: maybe closed by pop_closed since)
        if has.any():
            cand = np.flatnonzero(has & (t0 <= fclose))
            if len(cand):   # joins: only a finding still open takes rows
                dead = np.fromiter(map(_CLOSED, m.obj[gids[cand]].tolist()), bool, len(cand))
                if dead.any():
                    has[cand[dead]] = False
            oi = np.flatnonzero(has)
            j = t0[oi] <= fclose[oi]
            joined[oi] = j
            close[oi] = np.where(j, fclose[oi], close[oi])
            floor = floor.copy()
            floor[oi] = np.where(j, m.first[gids[oi]], floor[oi])
        ok = tmin >= floor
        multi = tmax > close
        grp = np.repeat(np.arange(ng), cnt)     # group of each position
        starts = [head]                         # segment starts (positions)
        if (multi & ok).any():
            dec = np.zeros(n, bool)
            np.less(tss[1:], tss[:-1], out=dec[1:])
            dec[head] = False
            ok &= ~(multi & np.logical_or.reduceat(dec, head))
            act = np.flatnonzero(multi & ok)
            cur = close.copy()
            for _ in range(MAX_SPLITS):
                # time order within the group: the rows up to the segment's close are a prefix
                split = head[act] + np.add.reduceat(tss <= cur[grp], head, dtype=np.int64)[act]
                starts.append(split)
                cur[act] = tss[split] + dedup
                act = act[tmax[act] > cur[act]]
                if not len(act):
                    break
            else:
                ok[act] = False
        pos_ok = ok[grp]
        segp = np.sort(np.concatenate(starts))
        segp = segp[ok[grp[segp]]]
        if len(segp):
            self.take_segments(rule, ctx, touched, rows, tss, head, ok, gids, m, has, joined, segp, grp)
        if not pos_ok.all():
            back = np.sort(rows[~pos_ok])
            self.release_open(rule)
            eng._take(rule, list(zip(ctx.rows(back), self.fast_hits(rule, ctx, back), ctx.group_keys(rule, back))),
                      touched)

    def group_ids(self, rule: Rule, codes: np.ndarray) -> np.ndarray:
        """Dense ids of distinct group codes (see :meth:`_Ctx.group_codes`): the actor's interned id
        (by actor), else the pair code's id in :class:`_CodeIds` (no Python per code)."""
        return codes if rule.group is B.by_actor else self._codes.ids(codes)

    def keys_of_ids(self, rule: Rule, ids: np.ndarray) -> list:
        """The group keys of :meth:`group_ids`."""
        return self.keys_of(ids if rule.group is B.by_actor else self._codes.codes[ids])

    def code_of_key(self, rule: Rule, key) -> int:
        """The group code of a group key of ``rule`` (its parts interned as the column path does)."""
        if rule.group is B.by_actor:
            return self.gid(key)
        b = self._bid.get(key[0])
        if b is None:
            b = self._bid[key[0]] = len(self._bval)
            self._bval.append(key[0])
        return ((b + 1) << 32) | self.gid(key[1])

    def adopt_open(self, rule: Rule) -> None:
        """Move the rule's open findings from ``rule.open`` into its :class:`_Open`."""
        m = self._open.get(rule.id)
        if m is None:
            m = self._open[rule.id] = _Open()
        fs = list(rule.open.values())
        g = self.group_ids(rule, np.array([self.code_of_key(rule, k) for k in rule.open], dtype=np.int64))
        rule.open.clear()
        m.grow(int(g.max()) + 1)
        m.obj[g] = np.fromiter(fs, object, len(fs))
        m.close[g] = np.fromiter(map(_CLOSE_TS, fs), np.float64, len(fs))
        m.first[g] = np.fromiter(map(_FIRST_TS, fs), np.float64, len(fs))
        m.seq[g] = np.arange(self._made, self._made + len(fs))
        self._made += len(fs)
        m.n += len(fs)

    def release_open(self, rule: Rule | None = None) -> None:
        """Move the open findings kept by group id (of ``rule``, default: every rule) back into
        ``rule.open``, in order of creation (before the engine's own code reads ``rule.open``)."""
        for rule_id in [rule.id] if rule is not None else list(self._open):
            m = self._open.get(rule_id)
            if m is None or not m.n:
                continue
            table = self.engine._by_id[rule_id].open
            g = np.flatnonzero(~np.isnan(m.close))
            g = g[np.argsort(m.seq[g], kind="stable")]
            for key, f in zip(self.keys_of_ids(self.engine._by_id[rule_id], g), m.obj[g].tolist()):
                if not f.closed:
                    table[key] = f
            del self._open[rule_id]

    def pop_open(self, rule: Rule) -> list:
        """The open findings kept by group id for ``rule`` (not closed), in order of creation; they
        are forgotten here (the engine's flush closes them)."""
        m = self._open.pop(rule.id, None)
        if m is None or not m.n:
            return []
        g = np.flatnonzero(~np.isnan(m.close))
        fs = m.obj[g[np.argsort(m.seq[g], kind="stable")]].tolist()
        return [f for f in fs if not f.closed]

    def take_segments(self, rule: Rule, ctx: "_Ctx", touched: dict, rows, tss, head, ok, gids, m: _Open,
                      has, joined, segp, grp) -> None:
        """The segments (starts ``segp``, positions in the grouped ``rows``) of :meth:`run_single`:
        joins into the groups' open findings (``m``, by group id ``gids``), new findings
        (:class:`~.model.LazyFinding`, their refs and samples from an :class:`_Evidence` of the batch,
        kept in ``m``), open findings closed."""
        eng = self.engine
        n = len(rows)
        ng = len(head)
        dedup = rule.dedup * 60
        d = ctx.d
        wm = ctx.wm
        segg = grp[segp]
        nseg = len(segp)
        # segment bounds (with the heads of the other groups, which end a segment too)
        bounds = np.sort(np.concatenate((segp, head[~ok]))) if not ok.all() else segp
        at = np.searchsorted(bounds, segp)
        blen = np.diff(np.append(bounds, n))
        segc = blen[at]
        smax = np.maximum.reduceat(tss, bounds)
        at_max = np.minimum.reduceat(np.where(tss == np.repeat(smax, blen), np.arange(n), n), bounds)[at]
        c_row = ctx.c
        tcodes = c_row["time"]
        tsv = self.plist(d["time"], "ts", time_ts, time_ts_list)
        last_codes = tcodes[rows[at_max]]      # the time code of each segment's newest row
        is_join = joined[segg] & (segp == head[segg])
        ev = _Evidence(self, ctx, rows, segp, segc)     # the refs and samples of every segment
        details = FAST_KINDS[rule.id] is not True      # (hits with details: merge_details)
        if is_join.any():   # joins into open findings (a group's first segment)
            js = np.flatnonzero(is_join).tolist()
            jfs = m.obj[gids[segg[js]]].tolist()
            jc = segc[js].tolist()
            # count, last_ts, touched; findings not read yet keep the rows as parts of their evidence
            read = _join(jfs, jc, _take(tsv, last_codes[js], wm), ev, js, Finding, LazyFinding, _Parts,
                         MAX_REFS, touched)
            for k in read:   # findings read already: their refs and samples grow now
                f, c = jfs[k], jc[k]
                room = MAX_REFS - len(f.event_refs)
                if room > 0:
                    n_s = max(0, min(c, room, MAX_SAMPLES - len(f.evidence)))
                    refs, samples = ev.span(js[k], min(c, room), n_s)
                    f.event_refs.extend(refs)
                    if n_s:
                        f.evidence.extend(samples)
            if details:
                self.merge_details(rule, ctx, rows, segp[js], segc[js], jfs, False)
        new_s = np.flatnonzero(~is_join)
        if not len(new_s):
            return
        # open findings of groups with a new segment: their period is over, closed
        done = np.zeros(ng, bool)
        done[segg[new_s]] = True
        done &= has
        closed_now = eng._closed
        _mark(m.obj[gids[done]].tolist(), Finding, "closed", False, True, closed_now)
        hpos = rows[segp[new_s]]
        first_codes = tcodes[hpos]
        # close times: one int object per distinct first second (many findings of a call share one)
        ufirst, inv = _distinct(first_codes)
        fcloses = _take(_take(tsv, ufirst, wm, dedup), inv)
        made = new_findings(   # (values, codes[, default]): gathered by the maker
            rule.id, rule.severity, rule.title, (d["bucket"].values, c_row["bucket"][hpos]),
            (self.plist(d["identity"], "requester", _ITEM0), c_row["identity"][hpos]),
            (d["ip"].values, c_row["ip"][hpos]), rule.group, (tsv, first_codes, wm),
            (tsv, last_codes[new_s], wm), fcloses, segc[new_s].tolist(), ev, (_small_ints(nseg), new_s))
        if details:
            self.merge_details(rule, ctx, rows, segp[new_s], segc[new_s], made, True)
        eng._all.extend(made)
        if self._report:
            touched.update(zip(made, repeat(None)))
        # a segment followed by another of its group: its finding is closed at once
        last_seg = np.append(segg[1:] != segg[:-1], True)[new_s]
        opened = tss[segp[new_s]]
        closes = opened + dedup
        sg = gids[segg[new_s]]
        keep = np.arange(len(made))
        if last_seg.all():
            still = made
        else:
            _mark(_take(made, np.flatnonzero(~last_seg)), Finding, "closed", False, True, closed_now)
            keep = keep[last_seg]
            still = _take(made, keep)
            closes = closes[last_seg]
            opened = opened[last_seg]
            sg = sg[last_seg]
        # the groups' open findings now (a group's last segment)
        m.obj[sg] = np.fromiter(still, object, len(still))
        m.close[sg] = closes
        m.first[sg] = opened
        m.seq[sg] = np.arange(self._made, self._made + len(still))
        self._made += len(still)
        m.n += len(still)
        order = keep[_stable_order(closes)]
        eng._schedule(rule, _take(made, order), ordered=True, closes=_take(fcloses, order))

    def run_window(self, rule: Rule, ctx: "_Ctx", fast, weight, slow_items: list, touched: dict) -> None:
        """A windowed rule's rows of the batch (:meth:`_run_window`), then its store pruned if crowded:
        after the batch's windows have read it (a prune between the batch's entries and their windows
        could drop entries they read)."""
        self._run_window(rule, ctx, fast, weight, slow_items, touched)
        store = self._stores.get(rule.id)
        if store is not None:
            store.crowd(rule.window * 60, ctx.wm)

    def _run_window(self, rule: Rule, ctx: "_Ctx", fast, weight, slow_items: list, touched: dict) -> None:
        eng = self.engine
        store = self._stores.get(rule.id)
        if store is None:
            store = self._stores[rule.id] = _Store()
        span = rule.window * 60
        base = self._seq
        self._seq += ctx.batch.n
        python_keys = {key for _, _, _, key in slow_items}
        if fast is not None and len(fast):
            gids = ctx.group_gids(rule, fast)
            t = ctx.ts_eff[fast]
            store.grow(len(self._gval))
            before = np.empty(len(t))   # each entry's gid's newest before it (earlier batches, rows before it)
            (_RUNNING_NEWEST or _running_newest_py)(gids, t, store.newest, before)
            codes = np.empty((len(fast), len(STORE_TABLES)), CODE_DTYPE)
            ints = np.empty((len(fast), len(STORE_INTS)), np.int64)
            cols = tuple(ctx.batch.codes[name] for name in STORE_TABLES)
            icols = (ctx.row_numbers(), ctx.batch.log_line, ctx.batch.nums["bytes_sent"])
            if _GATHER_ROWS is not None and fast.dtype == np.int64 and all(c.dtype == CODE_DTYPE for c in cols) \
                    and all(c.dtype == np.int64 for c in icols):   # (rows of every column in one pass, in C)
                _GATHER_ROWS(codes, tuple(map(np.ascontiguousarray, cols)), fast)
                _GATHER_ROWS(ints, tuple(map(np.ascontiguousarray, icols)), fast)
            else:
                for j, col in enumerate(cols):
                    codes[:, j] = col[fast]
                for j, col in enumerate(icols):
                    ints[:, j] = col[fast]
            ints[:, 0] += base
            chunk = {"gid": gids, "ts": t, "w": weight, "late": t < before - span, "codes": codes,
                     "ints": ints}
            chunk["hasval"] = ctx.key_notnone()[cols[KEY_COL][fast]] if rule.distinct is not None \
                else np.zeros(len(fast), bool)
            store.add(chunk)
            gval = self._gval
            ug = _unique_ids(gids, len(gval))
            open_, windows = rule.open, rule.windows
            if not open_ and not windows:
                exact = []
            elif len(open_) + len(windows) < len(ug):   # the groups with engine state, by their ids
                state = np.zeros(len(gval), bool)
                ids = [g for g in map(self._gid.get, chain(open_, windows)) if g is not None]
                state[ids] = True
                exact = ug[state[ug]].tolist()
            else:
                exact = [g for g in ug.tolist() if gval[g] in open_ or gval[g] in windows]
            python_keys.update(gval[g] for g in exact)
            candidates = np.zeros(len(gval), bool)
            candidates[ug] = True
            if exact:
                candidates[exact] = False
            for key in python_keys:
                g = self._gid.get(key)
                if g is not None and g < len(candidates):
                    candidates[g] = False
            cand = np.flatnonzero(candidates)
            if len(cand):   # (their stored entries in all must reach the threshold first)
                candidates[cand[~store.may_reach(cand, rule.threshold, rule.distinct)]] = False
            if candidates.any():
                since = np.full(len(gval), np.inf)
                np.minimum.at(since, gids, t - span)
                python_keys.update(gval[g] for g in self.reachable(rule, store, candidates, since, span))
        if not python_keys:
            return
        flag = np.zeros(len(self._gval) + 1, bool)
        for key in python_keys:
            g = self._gid.get(key)
            if g is not None:
                flag[g] = True
        taken = store.take(flag[:len(self._gval)]) if len(flag) > 1 else None
        items = [(base + r, ev, hit, key) for r, ev, hit, key in slow_items]
        if taken is not None:
            stored = self.stored_items(rule, taken, ctx.batch.dicts)
            if rule.min_share:   # entries of earlier batches first, quietly (see replay_quiet)
                old = bisect_left(stored, base, key=_first)
                if old:
                    self.replay_quiet(rule, stored[:old], touched)
                    stored = stored[old:]
            items = _merge(stored, items) if items else stored
        if items:
            self.take_sliced(rule, [(ev, hit, key) for _, ev, hit, key in items], touched)

    def replay_quiet(self, rule: Rule, items: list, touched: dict) -> None:
        """Stored entries ``(seq, row, hit, key)`` of earlier batches into the Python windows of a rule
        with ``min_error_share``, without firing: a group stayed in the store only while no window of
        its entries could fire (:meth:`reachable`: threshold and share, with the request counts of
        that batch), as the event path found then; the counts read now may differ (pieces dropped
        since), so the fire test is not made again. Keys with an open finding take ``_take``."""
        eng = self.engine
        add, open_ = eng._window_add, rule.open
        pause = eng.between_rules
        for i, (_, row, hit, key) in enumerate(items):
            if pause is not None and i and not i % TAKE_SLICE:
                pause()
            if key in open_:
                eng._take(rule, [(row, hit, key)], touched)
            else:
                add(rule, key, row.ts, row, hit, True)

    def take_sliced(self, rule: Rule, items: list, touched: dict) -> None:
        """``RuleEngine._take`` in slices of TAKE_SLICE hits, the engine's ``between_rules`` hook
        called between them (the same result: ``_take`` applies hits one after the other)."""
        eng = self.engine
        pause = eng.between_rules
        if pause is None or len(items) <= TAKE_SLICE:
            eng._take(rule, items, touched)
            return
        for i in range(0, len(items), TAKE_SLICE):
            if i:
                pause()
            eng._take(rule, items[i:i + TAKE_SLICE], touched)

    def reachable(self, rule: Rule, store: _Store, candidates: np.ndarray, since: np.ndarray,
                  span: float) -> list[int]:
        """Flagged gids whose stored entries reach the threshold (or the distinct count) within some
        window of ``span`` seconds: a necessary condition of the Python window firing. Only windows
        holding one of this batch's entries can be new: entries before ``since[gid]`` (the group's
        oldest new entry - span) are left out. With ``min_error_share``, a window that reaches the
        threshold counts only when its summed weight is that share of the group's requests over
        [its newest entry - span, that entry] (a window the engine fires in holds no more than that
        weight, and reads those requests: ``RuleEngine._window_add``; integer weights only, whose
        float sums are exact)."""
        sel = store.select(candidates, since, ("gid", "ts", "w") if rule.distinct is None else
                           ("gid", "ts", "w", "codes", "hasval"))
        if sel is None:
            return []
        g, t, w = sel["gid"], sel["ts"], sel["w"]
        order = _stable_order(g)     # (entries arrive mostly in time order)
        tg = t[order]
        gg = g[order]
        if (tg[1:] < tg[:-1]).any() and ((tg[1:] < tg[:-1]) & (gg[1:] == gg[:-1])).any():
            order = np.lexsort((t, g))
        g, t, w = g[order], t[order], w[order]
        first = np.flatnonzero(np.concatenate(([True], g[1:] != g[:-1])))   # g is sorted
        ug = g[first]
        rank = np.repeat(np.arange(len(ug)), np.diff(np.append(first, len(g))))
        t0 = t.min()
        big = (t.max() - t0) + span + 1.0
        adj = (t - t0) + rank * big
        left = np.searchsorted(adj, adj - span, side="left")
        out: set[int] = set()
        thr = rule.threshold
        cs = np.concatenate(([0], np.cumsum(w, dtype=np.float64)))
        sums = cs[1:] - cs[left]
        hit = sums >= thr
        if rule.min_share and store.exact and hit.any():   # and the errors' share of the group's requests there
            at = np.flatnonzero(hit)
            s = sums[at]
            hit[at[s < rule.min_share * self.requests_in(g[at], t[at] - span, t[at], s, rule.min_share)]] = False
        if hit.any():
            out.update(_unique(g[hit]).tolist())
        if rule.distinct is not None:
            hv = sel["hasval"][order]
            cc = np.concatenate(([0], np.cumsum(hv, dtype=np.int64)))
            many = (cc[1:] - cc[left]) >= rule.distinct
            if many.any():
                keys = _field(sel, "key")[order]
                for gg in _unique(g[many]).tolist():
                    if gg in out:
                        continue
                    m = (g == gg) & hv
                    if len(_unique(keys[m])) >= rule.distinct:
                        out.add(gg)
        return sorted(out)

    def stored_items(self, rule: Rule, data: dict[str, np.ndarray], dicts: Dicts) -> list[tuple]:
        """Stored entries as the engine takes them: ``(seq, row, hit, group key)`` in arrival order."""
        data = _rows_of(data, np.argsort(_field(data, "seq"), kind="stable"))
        rows = self.stored_rows(data, dicts)
        keys = [self._gval[g] for g in data["gid"].tolist()]
        if FAST_KINDS.get(rule.id, True):
            hits = [ONE] * len(rows)
        else:
            kv = dicts["key"].values
            hits = [(w, kv[k], None, None) for w, k in zip(data["w"].tolist(), _field(data, "key").tolist())]
        return list(zip(_field(data, "seq").tolist(), rows, hits, keys))

    def stored_rows(self, taken: dict[str, np.ndarray], dicts: Dicts) -> list[Row]:
        cols = {name: _field(taken, name) for name in STORE_TABLES}
        return _rows(dicts, cols, _field(taken, "bytes"), _field(taken, "line"), taken["ts"])

    def prune(self) -> None:
        """Drop stored entries no window can use any more (at the engine's sweeps), in stores that
        have grown by half since their last prune (a prune passes over every stored entry: a store
        pruned at every sweep of a log spanning days costs more than its entries)."""
        wm = self.engine.watermark
        for rule_id, store in self._stores.items():
            if store.n >= store.kept * 3 // 2 + PRUNE_MIN:
                store.prune(self.engine._by_id[rule_id].window * 60, wm)

    def materialize(self) -> None:
        """Replay every stored entry into the engine's Python windows (before an event-path batch
        or a batch of another pipeline's dictionaries; every entry is of an earlier batch: quietly
        for rules with ``min_error_share``, :meth:`replay_quiet`)."""
        if self._dicts is None or not any(s.chunks for s in self._stores.values()):
            return
        eng = self.engine
        touched: dict = {}
        for rule_id, store in self._stores.items():
            data = store.all()
            if data is None:
                continue
            store.clear()
            rule = eng._by_id[rule_id]
            items = self.stored_items(rule, data, self._dicts)
            if rule.min_share:   # (all of earlier batches: see replay_quiet)
                self.replay_quiet(rule, items, touched)
            else:
                eng._take(rule, [(row, hit, key) for _, row, hit, key in items], touched)

    def load_lazy(self) -> None:
        """Build the refs and samples of every finding made in bulk that has not been read yet (their
        sources hold the values of the old Dicts, which a pipeline replaces when full)."""
        for f in self.engine._all:
            if type(f) is LazyFinding and f._src is not None:
                f._load()

    def clear(self) -> None:
        self._stores.clear()
        self._open.clear()
        self._rowform.clear()
        self._rowrows = 0


def _v_access(request: tuple) -> bool:
    return request[0] == "s3access"


def _v_status(request: tuple) -> int:
    """The HTTP status of a request code (-1: none, -2: not an int)."""
    st = request[3]
    return st if type(st) is int else (-1 if st is None else -2)


def _v_errnone(request: tuple) -> bool:
    return request[4] is None


def _v_policy(request: tuple) -> bool:
    """A policy or ACL change of the bucket (``s3.bucket_policy_change``'s match: its action, or a
    control operation that has none)."""
    return request[2] in B.POLICY_ACTIONS or request[1] in B.BODYLESS_CONTROL_OPS


def _v_service(identity: tuple) -> bool:
    return identity[4] == "service"


def _v_anon(identity: tuple) -> bool:
    return identity[0] is None


def _v_awsint(client: tuple) -> bool:
    ua = client[0]
    return isinstance(ua, str) and ua.startswith("aws-internal")


def _v_notls(client: tuple) -> bool:
    return client[1] is None


def _v_sigv2(client: tuple) -> bool:
    return client[2] == "SigV2"


def _lifecycle_op(request: tuple) -> bool:
    op = request[1]
    return isinstance(op, str) and op.startswith("S3.")


def _sample_action(request: tuple):
    return request[2] or request[1]


def _merge(a: list, b: list) -> list:
    """Two lists of (order, ...) tuples, each sorted by order, merged."""
    return sorted(a + b, key=_first)


def _first(t):
    return t[0]


def _rows(dicts: Dicts, codes: dict[str, np.ndarray], sent: np.ndarray, line: np.ndarray,
          ts: np.ndarray | None) -> list[Row]:
    """Light rows from codes; ``ts``: the event times to use (stored entries: the time the engine
    used when the entry arrived), else each row's own (None where it has none)."""
    n = len(codes["time"])
    if not n:
        return []
    # times per distinct code (a busy second is one code for thousands of rows: one text, not one each)
    ut, at = _distinct(codes["time"])
    utv = _take(dicts["time"].values, ut)
    texts = _take(list(map(time_text, utv)), at)
    if ts is None:
        ts_list = _take(time_ts_list(utv), at)
    rq = list(zip(*_take(dicts["request"].values, codes["request"])))    # per field, the rows' values
    iv = list(zip(*_take(dicts["identity"].values, codes["identity"])))
    none = [None] * n
    return list(map(Row._make, zip(
        rq[0], _lookup(dicts, codes, "bucket"), _lookup(dicts, codes, "key"), rq[1], rq[2], iv[0],
        _lookup(dicts, codes, "ip"), rq[3], rq[4], _none_at(sent.tolist(), -1),
        map(_ITEM0, _take(dicts["client"].values, codes["client"])), iv[4], _lookup(dicts, codes, "object"),
        _none_at(line.tolist(), -1), texts, ts_list if ts is None else ts.tolist(), none, none)))


def _none_at(values: list, missing) -> list:
    """``values`` with ``missing`` replaced by None."""
    return [None if x == missing else x for x in values] if missing in values else values


def _lookup(dicts: Dicts, codes: dict[str, np.ndarray], table: str) -> list:
    return _take(dicts[table].values, codes[table])


class _Ctx:
    """Per-batch arrays shared by the rules (computed on first use)."""

    def __init__(self, runner: ColumnRunner, batch: ColumnBatch, wm: float):
        self.r = runner
        self.batch = batch
        self.wm = wm
        self.d = batch.dicts
        self.c = batch.codes
        ts = batch.ts
        self.ts_eff = np.where(np.isnan(ts), wm, ts) if len(ts) else ts
        self._cache: dict[str, Any] = {}

    def _get(self, name, fn):
        v = self._cache.get(name)
        if v is None:
            v = self._cache[name] = fn()
        return v

    # per-code verdict tables gathered per row ---------------------------------

    def req_col(self, name: str, fn, dtype=bool):
        return self._get("rq:" + name, lambda: self.r.verdict(self.d["request"], name, fn, dtype)[self.c["request"]])

    def idn_col(self, name: str, fn, dtype=bool):
        return self._get("id:" + name, lambda: self.r.verdict(self.d["identity"], name, fn, dtype)[self.c["identity"]])

    def cli_col(self, name: str, fn, dtype=bool):
        return self._get("cl:" + name, lambda: self.r.verdict(self.d["client"], name, fn, dtype)[self.c["client"]])

    def access(self):
        return self.req_col("access", _v_access)

    def status(self):
        return self.req_col("status", _v_status, np.int64)

    def err_none(self):
        return self.req_col("errnone", _v_errnone)

    def ok(self):
        def f():
            st = self.status()
            return self.err_none() & (st < 400) & (st != -2)
        return self._get("ok", f)

    def service(self):
        return self.idn_col("service", _v_service)

    def anon(self):
        return self.idn_col("anon", _v_anon)

    def awsint(self):
        return self.cli_col("awsint", _v_awsint)

    def row_numbers(self) -> np.ndarray:
        """0, 1, ... per row of the batch (int64)."""
        return self._get("rownum", lambda: np.arange(self.batch.n, dtype=np.int64))

    def key_notnone(self):
        return self.r.verdict(self.d["key"], "notnone", lambda v: v is not None)

    def ops(self, rule: Rule):
        """Per row: the rule's operations accept the row's operation (None: every operation)."""
        fn = rule.ops
        if fn is None:
            return None
        return self._get(("ops", id(rule)).__repr__(), lambda: self.ops_codes(rule)[self.c["request"]])

    def ops_codes(self, rule: Rule):
        """Per request code: the rule's operations accept the operation (None: every operation)."""
        fn = rule.ops
        if fn is None:
            return None
        classified = self.r._classified

        def verdict(v):
            op = v[1]
            c = classified.get(op)
            if c is None:
                c = classified[op] = _classify(op)
            return bool(fn(op or "", c[0], c[1]))
        return self.r.verdict(self.d["request"], ("ops", id(rule), id(fn)).__repr__(), verdict)

    def actor_gid(self):
        def f():
            gid = self.r.gid
            req = self.r.verdict(self.d["identity"], "actor", lambda v: -1 if v[0] is None else gid(v[0]), np.int64)
            ip = self.r.verdict(self.d["ip"], "actor", gid, np.int64)
            a = req[self.c["identity"]]
            return np.where(a >= 0, a, ip[self.c["ip"]])
        return self._get("actor", f)

    def bucket_id(self):
        def f():
            bids, bval = self.r._bid, self.r._bval

            def bid(v):
                b = bids.get(v)
                if b is None:
                    b = bids[v] = len(bval)
                    bval.append(v)
                return b
            return self.r.verdict(self.d["bucket"], "bid", bid, np.int64)[self.c["bucket"]]
        return self._get("bid", f)

    def ip_gid(self):
        return self._get("ipgid", lambda: self.r.verdict(self.d["ip"], "actor", self.r.gid, np.int64)[self.c["ip"]])

    # rows, keys ----------------------------------------------------------------

    def values(self, table: str, rows: np.ndarray) -> list:
        vals = self.d[table].values
        return list(map(vals.__getitem__, self.c[table][rows].tolist()))

    def rows(self, sel: np.ndarray) -> list[Row]:
        b = self.batch
        rows = _rows(self.d, {name: self.c[name][sel] for name in STORE_TABLES}, b.nums["bytes_sent"][sel],
                     b.log_line[sel], None)
        return rows

    def group_codes(self, rule: Rule, sel: np.ndarray) -> np.ndarray:
        """Group codes of rows ``sel`` (built-in group functions only), no interning: the actor's
        interned id (by actor), else ``(bucket id + 1) << 32 | actor or IP id``."""
        g = rule.group
        if g is B.by_actor:
            return self.actor_gid()[sel]
        second = self.actor_gid() if g is B.by_bucket_actor else self.ip_gid()
        return ((self.bucket_id()[sel] + 1) << 32) | second[sel]

    def group_gids(self, rule: Rule, sel: np.ndarray) -> np.ndarray:
        """Interned group-key ids of rows ``sel`` (dense: window stores index by them)."""
        codes = self.group_codes(rule, sel)
        return codes if rule.group is B.by_actor else self.r.pair_ids(codes)

    def group_keys(self, rule: Rule, sel: np.ndarray) -> list:
        return self.r.keys_of(self.group_codes(rule, sel))

    # which rows each rule sees ---------------------------------------------------

    def gate_fn(self, rule: Rule):
        """The engine's dispatch test of one event (operation set, gate, user-agent verdict)."""
        gate = rule.gate
        ops = rule.ops

        def test(ev) -> bool:
            op = ev.operation
            if ops is not None:
                actions, is_object = _classify(op)
                if not ops(op or "", actions, is_object):
                    return False
            if rule.prefilter is not None:
                return True   # a necessary condition of match: match decides
            if gate == "error":
                st = ev.http_status
                return st is not None and st >= 400
            if gate == "anon":
                return ev.requester is None
            if gate == "notls":
                return ev.tls_version is None and ev.detail is None
            if gate == "sigv2":
                return ev.signature_version == "SigV2"
            if gate == "ua":
                ua = ev.user_agent
                return ua is not None and bool(rule.ua_test(ua))
            return True
        return test

    def fast_kind(self, rule: Rule) -> str | None:
        """The FAST_KINDS entry whose code verdicts decide the rule's access-log rows (None: none)."""
        if rule.source != "builtin" or rule.id not in FAST_KINDS or not self.fast_config_ok(rule):
            return None
        return rule.id

    def levels(self, rule: Rule, kind: str | None) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        """The rule's conditions per dictionary code: (per table, the per-code verdicts whose AND at a
        row's codes is a fast hit before the row-level checks of :meth:`rule_rows`; tables without a
        condition left out), and per request code, whether a row is a slow one (operations accepted,
        and not an access-log row the verdicts decide; None: every row)."""
        rv = self.r.verdict
        req, idn, cli = self.d["request"], self.d["identity"], self.d["client"]
        base = self.ops_codes(rule)
        if kind is None:
            return {}, base
        st = rv(req, "status", _v_status, np.int64)
        acc = rv(req, "access", _v_access) & (st != -2)
        errnone = rv(req, "errnone", _v_errnone)
        ok = errnone & (st < 400) & (st != -2)
        out: dict[str, np.ndarray] = {}
        skip = rule.params.get("skip_services", False)
        if kind in ("s3.object_access_errors", "s3.enumeration"):
            a, b = (403, 405) if kind == "s3.object_access_errors" else (403, 404)
            m = (st == a) | (st == b)
            if skip:
                out["identity"] = ~rv(idn, "service", _v_service)
            if skip or kind == "s3.object_access_errors":
                out["client"] = ~rv(cli, "awsint", _v_awsint)
        elif kind in ("s3.mass_download", "s3.mass_delete"):
            m = errnone & ((st == -1) | ((st >= 200) & (st < 300))) if kind == "s3.mass_download" else ok
            if skip:
                out["identity"] = ~rv(idn, "service", _v_service)
                out["client"] = ~rv(cli, "awsint", _v_awsint)
        elif kind == "s3.anonymous_access":
            m = errnone & (st >= 200) & (st < 400)
            out["identity"] = rv(idn, "anon", _v_anon)
            out["bucket"] = ~self.public_codes()
        elif kind == "s3.insecure_transport":
            m = acc
            out["client"] = rv(cli, "notls", _v_notls)
            out["xport"] = self.insecure_codes()
        elif kind == "s3.sigv2_request":
            m = acc
            out["client"] = rv(cli, "sigv2", _v_sigv2)
        elif kind == "s3.pentest_user_agent":
            m = acc
            out["client"] = self.pentest_codes(rule)
        elif kind == "s3.log_tampering":
            m = ok & ~rv(req, "s3op", _lifecycle_op)
            out["identity"] = ~rv(idn, "service", _v_service)
            out["client"] = ~rv(cli, "awsint", _v_awsint)
        elif kind == "s3.bucket_policy_change":
            m = ok & rv(req, "policy", _v_policy)
        else:  # s3.sensitive_object_access (then keys), s3.bucket_deleted
            m = ok
        m = m & acc
        out["request"] = m if base is None else m & base
        return out, ~acc if base is None else base & ~acc

    def rule_rows(self, rule: Rule):
        """(fast hit rows, their weights, slow rows) of ``rule`` (row indexes, ascending): the rule's
        bits in the batch's per-row bit masks (:meth:`bits`), then the row-level checks."""
        fast_bit, slow_bit = self.r.plan(self)[rule]
        kind = None if fast_bit is None else self.fast_kind(rule)
        other = None
        if slow_bit is not None:
            sb, sany = self.bits("slow")
            if sany & slow_bit:
                other = (sb & slow_bit) != 0
        else:
            lv = self.levels(rule, kind)[1]
            other = np.ones(self.batch.n, bool) if lv is None else lv[self.c["request"]]
        if kind is None:   # (the prefilter only when the operations select a row)
            return None, None, NONE if other is None or not other.any() else \
                np.flatnonzero(other & self.cheap_prefilter(rule, other))
        fb, fany = self.bits("fast")
        fast_m = (fb & fast_bit) != 0 if fany & fast_bit else None
        weight = None
        if kind == "s3.mass_download":
            sent = self.batch.nums["bytes_sent"]
            odd = sent == -2
            if odd.any():  # a value the column cannot hold: the event decides
                base = self.ops(rule)
                odd_rows = odd if base is None else odd & base
                other = odd_rows if other is None else other | odd_rows
                if fast_m is not None:
                    fast_m &= ~odd
            w = np.maximum(sent, 0)
            cap = rule.params.get("object_cap") or 0
            weight = np.minimum(w, cap) if cap else w
        elif fast_m is not None and kind == "s3.sensitive_object_access":
            fast_m &= self.cheap_prefilter(rule, fast_m)
            cand = np.flatnonzero(fast_m)
            if len(cand):
                exact = self.r.verdict_codes(self.d["key"], "sensitive", self.sensitive_key, self.c["key"][cand])
                fast_m[cand[exact[self.c["key"][cand]] != 1]] = False
        elif fast_m is not None and kind == "s3.log_tampering":
            fast_m &= self.log_key(fast_m)
        fast = NONE if fast_m is None else np.flatnonzero(fast_m)
        slow = NONE if other is None else np.flatnonzero(other & self.cheap_prefilter(rule, other))
        if weight is None:
            weight = np.ones(len(fast), dtype=np.int64)
        else:
            weight = weight[fast]
        return fast, weight, slow

    def sensitive_key(self, v) -> bool:
        return v is not None and self.r._sensitive(v)

    def bits(self, which: str) -> tuple[np.ndarray, Any]:
        """Per row, the rules' ``which`` bits (``fast``: every table's bit table at the row's code
        ANDed; ``slow``: the request table's), and the OR of all rows (the bits set anywhere)."""
        def f():
            pairs = [(arr, self.c[table]) for table in (BIT_TABLES if which == "fast" else ("request",))
                     for arr in (self.r.bit_table(self, table, which),) if arr is not None]
            if not pairs:
                out = np.zeros(self.batch.n, self.r.bit_dtype(self, which))
            elif _GATHER_AND is not None and all(c.dtype == np.int32 for _, c in pairs):
                out = np.empty(self.batch.n, pairs[0][0].dtype)   # (one pass over the rows, in C)
                _GATHER_AND(out, tuple(np.ascontiguousarray(a) for a, _ in pairs),
                            tuple(np.ascontiguousarray(c) for _, c in pairs))
            else:
                out = pairs[0][0][pairs[0][1]]
                for arr, codes in pairs[1:]:
                    out &= arr[codes]
            return out, np.bitwise_or.reduce(out) if len(out) else out.dtype.type(0)
        return self._get("bits:" + which, f)

    def fast_config_ok(self, rule: Rule) -> bool:
        """The code verdicts model the built-in match functions as configured (else: slow rows)."""
        if rule.mode not in ("window", "single") or rule.group not in (B.by_actor, B.by_bucket_actor, B.by_bucket_ip):
            return False
        if rule.id == "s3.sensitive_object_access":
            return True
        p = rule.params
        return all(isinstance(p.get(k), (bool, int, float)) or p.get(k) is None
                   for k in ("skip_services", "object_cap", "min_error_share"))

    def cheap_prefilter(self, rule: Rule, need: np.ndarray | None = None):
        """A necessary condition of the rule's gate and match per row (all rows when unknown); when
        ``need`` (a row mask) is given, only rows of ``need`` are decided (the others may be False)."""
        n = self.batch.n
        pf = rule.prefilter
        if pf is not None and pf[1] is not None:
            field, lits = pf
            if field == "key":
                codes = self.c["key"]
                if need is None:
                    return self.r.literal_verdict(self.d["key"], ("lit",) + tuple(lits), tuple(lits))[codes]
                v = self.r.literal_some(self.d["key"], ("lits",) + tuple(lits), tuple(lits), codes[need])
                return v[codes] == 1
            if field == "ua":
                v = self.r.literal_verdict(self.d["client"], ("litua",) + tuple(lits), tuple(lits),
                                           lambda v: v[0] or "")
                return v[self.c["client"]]
            m = np.zeros(n, bool)
            m[self.find(field, tuple(lits))] = True
            return m
        if pf is not None:
            return np.ones(n, bool)
        st = self.status()
        gate = rule.gate
        if gate == "error":
            return (st >= 400) | (st == -2)
        if gate == "anon":
            return self.anon()
        if gate == "sigv2":
            return self.cli_col("sigv2", _v_sigv2)
        if gate == "notls":
            return self.cli_col("notls", _v_notls)
        if gate == "ua":
            test = rule.ua_test
            return self.cli_col(("ua", id(test)).__repr__(), lambda v: v[0] is not None and bool(test(v[0])))
        if rule.id == "s3.log_tampering" and rule.source == "builtin":
            return self.logish() | ~self.access()
        return np.ones(n, bool)

    def find(self, field: str, lits: tuple) -> np.ndarray:
        """Rows whose ``field`` text may hold a literal: ``batch.find``, except over Event batches,
        where verdicts are cached per distinct text as in the event path."""
        batch = self.batch
        if not isinstance(batch, EventBatch):
            return batch.find(field, lits)
        cache = self.r._texts.setdefault((field, lits), {})
        if len(cache) > PF_CACHE:
            cache.clear()
        values = batch.text(field)
        misses = list(set(values).difference(cache))
        hits: set = set()
        if misses:
            hits = {misses[i] for i in Joined(misses).find(lits)}
            cache.update((v, v in hits) for v in misses if len(v) <= PF_CACHE_LEN)
        get = cache.get
        return np.array([i for i, v in enumerate(values) if get(v) or v in hits], dtype=np.int64)

    def public_codes(self):
        r = self.r

        def is_public(b):
            return b in r._public or any(fnmatch.fnmatchcase(b or "", g) for g in r._public_globs)
        return r.verdict(self.d["bucket"], "public", is_public)

    def insecure_codes(self):
        return self.r.verdict(self.d["xport"], "insecure",
                              lambda v: v[0] is None and v[1] is not None and "s3-website" not in v[1])

    def pentest_codes(self, rule: Rule):
        test = rule.ua_test

        def pentest(v):
            ua = v[0]
            if ua is None:
                return False
            if isinstance(ua, str) and ua.isascii():   # (re.I over ASCII: ASCII case folding)
                low = ua.lower()
                if not any(lit in low for lit in B.PENTEST_LITERALS):
                    return False
            return bool(test(ua))
        return self.r.verdict(self.d["client"], ("pentest", id(test)).__repr__(), pentest)

    def log_key(self, need: np.ndarray) -> np.ndarray:
        """Rows of ``need`` whose key is a log object of their bucket (``is_log_key`` of
        ``s3.log_tampering``): under AWSLogs/, or a configured log prefix (of any bucket or of the row's
        bucket); the keys of other rows are not looked at (False)."""
        pairs = B.parse_log_prefixes(self.r.settings.get("log_prefixes") or ())
        anyb = tuple(p for b, p in pairs if b is None)
        keys = self.d["key"]
        codes = self.c["key"]
        need_codes = codes[need]

        def logs(k):
            return isinstance(k, str) and (k.startswith(("AWSLogs/",) + anyb) or "/AWSLogs/" in k)
        lits = ("awslogs/",) + tuple(p.lower() for p in anyb if p.isascii())
        m = (self.r.verdict_codes(keys, ("logkey",) + anyb, logs, need_codes,
                                  lits if len(lits) == len(anyb) + 1 else ())[codes] == 1) & need
        own: dict[str, list] = {}
        for b, p in pairs:
            if b is not None:
                own.setdefault(b, []).append(p)
        bidx = self.d["bucket"].index
        for b, prefixes in own.items():
            code = bidx.get(b)
            if code is None:
                continue
            pre = tuple(prefixes)
            mine = need & (self.c["bucket"] == code)
            v = self.r.verdict_codes(keys, ("logkey_b",) + pre, lambda k: isinstance(k, str) and k.startswith(pre),
                                     codes[mine])
            m |= mine & (v[codes] == 1)
        return m

    def logish(self):
        """Keys that may be log objects: AWSLogs/ anywhere, or a configured log prefix."""
        prefixes = tuple(p for _, p in B.parse_log_prefixes(self.r.settings.get("log_prefixes") or ()))

        def f(k):
            return k is not None and ("AWSLogs/" in k or k.startswith(prefixes))
        return self.r.verdict(self.d["key"], ("logish",) + prefixes, f)[self.c["key"]]


__all__ = ["ColumnCounts", "ColumnRunner", "Row"]
