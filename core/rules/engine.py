"""The rule engine: cheap dispatch, event-time windows, dedup into findings.

Dispatch: rules are indexed once per distinct operation string (``REST.GET.OBJECT`` or a
CloudTrail eventName) into gate groups, so an event only visits the rules that can match its
operation; per event the engine then does a handful of inline field tests (status >= 400, no
requester, no TLS, SigV2). Rules that look for text in a key, URI or user agent declare *prefilter
literals*: :meth:`RuleEngine.process_batch` joins the batch's values not seen before into one UTF-8
string with ASCII letters lower-cased and finds each literal with C ``bytes.find`` (verdicts are
cached per distinct value), so the rule's Python ``match`` runs only for the few events that
contain one. User-agent rules get a verdict per distinct user agent, per batch.

Noise suppression (see docs/rules.md): rules with ``params["min_error_share"]`` fire only when
their matches are that share of the group's requests in the window; the engine counts requests per
actor and per (bucket, actor) with C-level ``Counter`` updates per batch.

Windows are kept per rule and group key in event time (``ev.ts``), because log objects arrive hours
late and out of order. A key's window is a few *segments*, each a span of event time no longer than
the rule's window: an event at or after a segment's ``newest - window`` goes into it (in order;
entries older than ``newest - window`` are evicted), an older one (a late log object) opens or joins
an older segment. A segment fires when its entries' summed weight reaches ``threshold`` (or it holds
``distinct`` different values). Segments idle for :data:`IDLE_SECONDS` of event time are dropped.

Dedup: one open finding per rule and group key; matches up to ``dedup`` minutes after its first
event (or older ones) are added to it (``count``, ``last_seen``, evidence refs grow). A finding closes
when event time (the newest ``ts`` seen by the engine) passes ``first_seen + dedup``.
"""
from __future__ import annotations

import gc
import heapq
from bisect import bisect_left, bisect_right
from collections import Counter, deque
from collections.abc import Sequence
from itertools import accumulate, compress, islice, repeat
from operator import attrgetter, gt, is_, itemgetter
from typing import Any, Callable, Iterable

from ..actions import _KEYED, action_for
from ..config import validate_config
from ..event import FIELD_INDEX
from .builtin import OBJECT_ACTIONS, build_rules
from .model import MAX_REFS, MAX_SAMPLES, ONE, SEVERITY_RANK, Finding, Rule, sample_of
from .user import load_user_rules

GATES = ("op", "error", "anon", "notls", "sigv2", "ua", "all")
_G = {g: i for i, g in enumerate(GATES)}
MAX_SEGMENTS = 8            # per rule and key: the current span plus late log objects
IDLE_SECONDS = 6 * 3600     # event time after which an untouched window segment is dropped
SWEEP_EVERY = 3600          # event-time seconds between sweeps of idle windows
SEP = "\n"
SEP_BYTE = ord(SEP)
PF_CACHE = 200_000          # prefilter verdicts cached per field (distinct values)
PF_CACHE_LEN = 512          # longer values (presigned URLs...) are searched each time, not cached
REQ_SPAN = 120              # seconds of event time one request-count record spans at most
REQ_CHUNK = 250             # events per request count when a batch spans more than REQ_SPAN
_BUCKET, _REQUESTER, _IP, _TS, _KEY, _URI, _UA = (
    itemgetter(FIELD_INDEX[f]) for f in ("bucket", "requester", "remote_ip", "ts", "key", "request_uri", "user_agent"))


def _speedup(name: str) -> Any:
    """A function of the C extension (None: not built)."""
    try:
        from ..access_log import speedups
    except ImportError:  # pragma: no cover - the package always has access_log
        return None
    return getattr(speedups, name, None)


def _mark_py(objs: list, cls: type, name: str, old, new, out: list | None, eq_name: str | None = None,
             eq_values: list | None = None) -> int:
    """The pure-Python form of the C ``mark``: slot ``name`` set to ``new`` where it is ``old`` (and slot
    ``eq_name`` equals ``eq_values[k]``)."""
    n = 0
    for k, o in enumerate(objs):
        if getattr(o, name) is old and (eq_name is None or getattr(o, eq_name) == eq_values[k]):
            setattr(o, name, new)
            n += 1
            if out is not None:
                out.append(o)
    return n


_FIND_LITERALS = _speedup("find_literals")   # the C one-pass search of many literals (None: not built)
_mark = _speedup("mark") or _mark_py


class _Window:
    __slots__ = ("e", "lo", "newest", "total", "seen")

    def __init__(self, distinct: int | None) -> None:
        self.e: list[tuple] = []   # (ts, weight, distinct_value, event), sorted by ts from index lo
        self.lo = 0
        self.newest = -1
        self.total = 0
        # distinct value -> its entries in e[lo:] (rules with ``distinct`` only): kept per entry, so
        # an actor fetching the same few hundred keys over and over costs O(1) an event, not a scan
        self.seen: dict | None = {} if distinct is not None else None


def _classify(op: str | None) -> tuple[frozenset, bool]:
    """(possible CloudTrail actions, is an object operation) for an operation string."""
    if op is None:
        return frozenset(), False
    if "." not in op:  # CloudTrail eventName
        return frozenset((op,)), op in OBJECT_ACTIONS
    if op in _KEYED:
        return frozenset(_KEYED[op]), False
    action = action_for(op, True)
    actions = frozenset(a for a in (action, action_for(op, False)) if a)
    return actions, (action in OBJECT_ACTIONS) or (action is None and op.endswith(".OBJECT"))


def field_values(field: str, events) -> list[str]:
    """The prefilter text of each event: ``key``, ``ua``, or ``uri`` (the request URI, else the key);
    ``""`` where absent."""
    if field == "uri":
        values = list(map(_URI, events))
        if None in values:
            values = [u if u is not None else (k or "") for u, k in zip(values, map(_KEY, events))]
        return values
    if field not in ("key", "ua"):
        raise ValueError(f"unknown prefilter field {field!r}")
    values = list(map(_KEY if field == "key" else _UA, events))
    return [v or "" for v in values] if None in values else values


class Joined:
    """One batch's values of a field joined by a newline as UTF-8 with ASCII letters lower-cased
    (``bytes.lower``: C speed, unlike ``str.lower`` on non-ASCII text), searched with C ``find``.

    Literals are ASCII lower-case (a non-ASCII literal makes :meth:`find` fall back to ``str.lower``
    per value, so the prefilter stays a necessary condition). The ASCII ones are searched in one pass
    by the C ``find_literals`` when no value holds a newline itself, else one ``find`` each."""

    __slots__ = ("values", "low", "_ends", "_plain")

    def __init__(self, values: list[str]):
        self.values = values
        self.low = (SEP.join(values) + SEP).encode("utf-8", "surrogatepass").lower()
        self._ends: list[int] | None = None
        self._plain: bool | None = None   # one SEP per value (none inside one), once asked

    def find(self, literals: Iterable[str]) -> set[int]:
        """Indexes of the values containing one of ``literals`` (lower-case; a trailing newline
        anchors the literal at the end of a value)."""
        literals = tuple(literals)
        if any(lit in ("", SEP) for lit in literals):  # in every value
            return set(range(len(self.values)))
        found: set[int] = set()
        if _FIND_LITERALS is not None:
            if self._plain is None:   # (a value holding a newline: the values are counted by length)
                self._plain = self.low.count(SEP_BYTE) == len(self.values)
            ascii_ = tuple(lit.encode() for lit in literals if lit.isascii())
            if ascii_ and self._plain:
                found.update(_FIND_LITERALS(self.low, ascii_, SEP_BYTE))
                literals = tuple(lit for lit in literals if not lit.isascii())
        low = self.low
        find = low.find
        ends = self._ends
        for lit in literals:
            if not lit.isascii():
                found.update(i for i, v in enumerate(self.values) if lit in v.lower() + SEP)
                continue
            b = lit.encode()
            p = find(b)
            if p == -1:
                continue
            if ends is None:  # only batches with a hit pay for the index (byte offset past each SEP)
                ends = self._ends = self._index()
            while p != -1:
                i = bisect_right(ends, p)
                found.add(i)
                p = find(b, ends[i])
        return found

    def _index(self) -> list[int]:
        """The byte offset past each value's SEP: where the SEPs are, when there is one per value;
        else from each value's own length (a value may itself contain a newline)."""
        import numpy as np

        seps = np.flatnonzero(np.frombuffer(self.low, np.uint8) == SEP_BYTE)
        if len(seps) == len(self.values):
            return (seps + 1).tolist()
        return list(accumulate(len(v.encode("utf-8", "surrogatepass")) + 1 for v in self.values))


class RuleEngine:
    """Run built-in and user rules over events; see the module docstring for the semantics.

    API (the terminal app relies on it): ``RuleEngine(config, user_rules_dir)``, ``process(event)``,
    ``process_batch(events)`` (findings created or updated by these events), ``findings()`` (all,
    open and closed), ``pop_closed()``, ``flush()`` and ``errors`` (one line per failing rule file
    or rule, never raised).
    """

    def __init__(self, config: dict | None = None, user_rules_dir: str | None = None,
                 log_prefixes: Iterable[str] | None = None):
        cfg = validate_config(config or {})
        settings = dict(cfg)
        settings["log_prefixes"] = list(cfg.get("log_prefixes") or ()) + list(log_prefixes or ())
        self.errors: list[str] = []
        self.rules: list[Rule] = build_rules(settings)
        if user_rules_dir:
            self.rules.extend(load_user_rules(user_rules_dir, self.errors))
        for rule in self.rules:
            over = (cfg.get("rules") or {}).get(rule.id)
            if over:
                _apply(rule, over)
            rule.open = {}      # group key -> open Finding
            rule.windows = {}   # group key -> list of _Window segments
            rule.is_window = rule.mode == "window" and (rule.threshold > 1 or rule.distinct is not None)
            rule.min_share = float(rule.params.get("min_error_share") or 0) if rule.is_window else 0.0
            rule.pending = []   # this batch's events that passed the rule's gate
        self.active = [r for r in self.rules if r.enabled and not r.inert]
        # Request counts per actor for rules with min_error_share: (lo_ts, hi_ts, Counter) per batch
        # (or piece of one), kept for twice the longest such window plus 10 minutes of event time
        share = [r for r in self.active if r.min_share]
        self._share = bool(share)
        self._req_keep = max((r.window for r in share), default=0) * 120 + 600
        # (lo, hi, counts, last): a Counter of one batch piece, or (column path) the counts of a whole
        # batch's pieces (``within``); ``last``: the newest ``hi`` of the pieces kept so far, up to it
        self._req_chunks: deque = deque()
        self._req_top = float("-inf")   # the newest ``hi`` of any piece so far
        self._req_horizon = float("-inf")   # pieces whose ``last`` is older were dropped
        self._requests_seen = 0
        self._ua_rules = tuple(r for r in self.active if r.gate == "ua")
        self._ua_cache: dict[str, tuple] = {}
        self._ua_bad: set[str] = set()          # user agents with a non-empty verdict
        pf: dict[str, list] = {}
        for r in self.active:
            if r.prefilter is not None:
                pf.setdefault(r.prefilter[0], []).append(r)
        self._pf = list(pf.items())
        self._pf_cache: dict[str, tuple[dict, set]] = {}
        self._ops: dict[str | None, tuple] = {}
        self._by_id = {r.id: r for r in self.rules}
        self._all: list[Finding] = []
        self._heap: list[tuple] = []
        self._closed: list[Finding] = []
        self._seq = 0
        self._failed: set[str] = set()
        self.watermark = 0
        self._next_sweep = None
        self._settings = settings
        self._columns = None    # the column path (vector.ColumnRunner), made on first use
        # called before each rule of a column batch and between slices of a long run of windowed
        # hits: a terminal app lets a key press through there (its UI shares this interpreter's lock
        # with the thread running the rules)
        self.between_rules: Callable[[], None] | None = None

    # ------------------------------------------------------------------ dispatch

    def _build(self, op: str | None) -> tuple:
        actions, is_object = _classify(op)
        groups: list[list[Rule]] = [[] for _ in GATES]
        pf: list[Rule] = []
        for rule in self.active:
            if rule.ops is None or rule.ops(op or "", actions, is_object):
                # prefiltered and user-agent rules: their candidates are found per batch
                (pf if rule.prefilter is not None or rule.gate == "ua" else groups[_G[rule.gate]]).append(rule)
        # each group holds the bound ``append`` of its rules' pending lists (filled per batch)
        d = tuple(tuple(r.pending.append for r in g) for g in groups) + (frozenset(pf),)
        if len(self._ops) < 20_000:
            self._ops[op] = d
        return d

    def _prefilter(self, events: list) -> dict[int, list]:
        """Event index -> prefiltered rules whose literals occur in that event (any operation).

        Verdicts are cached per distinct value (keys and URIs repeat: hot objects), so a batch only
        searches the values it has not seen before; the cache is bounded (PF_CACHE values)."""
        out: dict[int, list] = {}
        for field, rules in self._pf:
            values = field_values(field, events)
            every = [r for r in rules if r.prefilter[1] is None]
            for i in range(len(values)) if every else ():
                out.setdefault(i, []).extend(every)
            lit_rules = [r for r in rules if r.prefilter[1] is not None]
            if not lit_rules:
                continue
            cache, hot = self._pf_cache.setdefault(field, ({}, set()))
            uniq = set(values)
            if len(cache) > PF_CACHE:
                cache.clear()
                hot.clear()
            misses = list(uniq.difference(cache))
            if misses:
                joined = Joined(misses)
                verdict: dict[str, list] = {}
                for rule in lit_rules:
                    for j in joined.find(rule.prefilter[1]):
                        verdict.setdefault(misses[j], []).append(rule)
                cache.update(dict.fromkeys([v for v in misses if len(v) <= PF_CACHE_LEN], ()))
                for v, rs in verdict.items():
                    cache[v] = tuple(rs)
                    hot.add(v)
            for v in hot.intersection(uniq):
                _add_at(values, v, cache[v], out)
        return out

    def process(self, ev) -> list[Finding]:
        """Findings created or updated by this event."""
        return self.process_batch((ev,))

    def process_batch(self, events: Iterable) -> list[Finding]:
        """Findings created or updated by these events (each once, in order of first touch).

        The cyclic garbage collector is paused for the batch (the engine makes no reference cycles;
        a batch allocates many small tuples, and with tens of thousands of findings alive the
        collector's full passes cost more than the rules): one collection pass per batch at most."""
        if not isinstance(events, (list, tuple)):
            events = list(events)
        if self._columns is not None:
            self._columns.materialize()  # windows kept as columns join the Python windows
            self._columns.release_open()  # and open findings kept by group id, rule.open
        paused = gc.isenabled()
        if paused:
            gc.disable()
        try:
            return self._process_batch(events)
        finally:
            if paused:
                gc.enable()

    def process_columns(self, batch, report: bool = True) -> list[Finding]:
        """Findings created or updated by the rows of a :class:`~s3tail.core.columns.ColumnBatch`:
        the meaning of ``process_batch(batch.events())`` at a fraction of the cost (numpy verdicts
        per dictionary code; see :mod:`s3tail.core.rules.vector` for how and the documented
        differences). Batches may alternate with ``process_batch`` on one engine. ``report=False``
        (a caller that reads :meth:`findings` or :meth:`pop_closed` instead): an empty list, and the
        findings are not listed on the way."""
        if self._columns is None:
            from .vector import ColumnRunner
            self._columns = ColumnRunner(self, self._settings)
        paused = gc.isenabled()
        if paused:
            gc.disable()
        try:
            return self._columns.process(batch, report)
        finally:
            if paused:
                gc.enable()

    def _process_batch(self, events) -> list[Finding]:
        touched: dict[Finding, None] = {}
        times = [t for t in map(_TS, events) if t is not None]
        if times:
            newest = max(times)
            if newest > self.watermark:
                self.watermark = newest
        wm = self.watermark
        if self._share and events:
            self._count_requests(events, times)
        cands = self._prefilter(events) if self._pf else {}
        if self._ua_rules:
            self._ua_candidates(events, cands)
        ops = self._ops
        try:
            for i, ev in enumerate(events):
                d = ops.get(ev.operation)
                if d is None:
                    d = self._build(ev.operation)
                op_r, err_r, anon_r, notls_r, sig_r, _, all_r, pf_r = d
                for add in op_r:
                    add(ev)
                if err_r:
                    st = ev.http_status
                    if st is not None and st >= 400:
                        for add in err_r:
                            add(ev)
                if anon_r and ev.requester is None:
                    for add in anon_r:
                        add(ev)
                if notls_r and ev.tls_version is None and ev.detail is None:
                    for add in notls_r:
                        add(ev)
                if sig_r and ev.signature_version == "SigV2":
                    for add in sig_r:
                        add(ev)
                for add in all_r:
                    add(ev)
                if pf_r and cands:
                    rs = cands.get(i)
                    if rs is not None:
                        for r in rs:
                            if r in pf_r:
                                r.pending.append(ev)
            for rule in self.active:  # then rule by rule, over the events that passed its gate
                if rule.pending:
                    self._eval(rule, rule.pending, touched)
        finally:
            for rule in self.active:
                rule.pending.clear()
        if self._next_sweep is None:
            self._next_sweep = wm + SWEEP_EVERY
        elif wm >= self._next_sweep:
            self._sweep()
        return list(touched)

    def _count_requests(self, events, times: list) -> None:
        """Count this batch's requests per actor and per (bucket, actor), the group keys of the error
        rules (C-level ``Counter``; pieces of REQ_CHUNK events when the batch spans more than
        REQ_SPAN seconds) and keep the counts for ``_req_keep`` seconds of event time."""
        wm = self.watermark
        if times and max(times) - min(times) > REQ_SPAN and len(events) > REQ_CHUNK:
            pieces = [events[i:i + REQ_CHUNK] for i in range(0, len(events), REQ_CHUNK)]
        else:
            pieces = [events]
        for piece in pieces:
            ts = times if len(pieces) == 1 else [t for t in map(_TS, piece) if t is not None]
            lo, hi = (min(ts), max(ts)) if ts else (wm, wm)
            reqs = list(map(_REQUESTER, piece))
            buckets = list(map(_BUCKET, piece))
            c = Counter(reqs)
            c.update(zip(buckets, reqs))
            if c.pop(None, 0):  # anonymous requests: the actor is the remote IP
                ips = list(compress(map(_IP, piece), map(is_, reqs, repeat(None))))
                c.update(ips)
                c.update(zip(compress(buckets, map(is_, reqs, repeat(None))), ips))
            self._req_top = max(self._req_top, hi)
            self._req_chunks.append((lo, hi, c, self._req_top))
        # only what no event of this batch can need: the horizon follows the batch's *oldest* time (a
        # batch spanning hours must not drop the counts its own early events are judged against)
        self._drop_requests((min(times) if times else wm) - self._req_keep)

    def _drop_requests(self, horizon) -> None:
        """Forget the request counts of pieces older than ``horizon`` (event time), as a queue: a
        piece goes once it and every piece before it end before the horizon."""
        if horizon > self._req_horizon:
            self._req_horizon = horizon
        chunks = self._req_chunks
        while chunks and chunks[0][3] < horizon:
            chunks.popleft()

    def _requests(self, key, start, end) -> int:
        """Requests of an actor or a (bucket, actor) with event time in [start, end] (at the
        granularity of the counts; 0 once they are older than ``_req_keep``)."""
        n = 0
        for lo, hi, c, _ in self._req_chunks:
            if hi >= start and lo <= end:
                n += c.get(key, 0) if type(c) is Counter else c.within(key, start, end, self._req_horizon)
        return n

    def _ua_candidates(self, events, out: dict[int, list]) -> None:
        """Add the user-agent rules matching each event's user agent (verdict cached per distinct
        user agent; a batch without a flagged one costs two set operations)."""
        uas = list(map(_UA, events))
        uniq = set(uas)
        uniq.discard(None)
        cache, bad = self._ua_cache, self._ua_bad
        if len(cache) > 50_000:
            cache.clear()
            bad.clear()
        for ua in uniq.difference(cache):
            hit = tuple(r for r in self._ua_rules if r.ua_test(ua))
            cache[ua] = hit
            if hit:
                bad.add(ua)
        for ua in bad.intersection(uniq):
            _add_at(uas, ua, cache[ua], out)

    def _eval(self, rule: Rule, evs: list, touched: dict) -> None:
        match = rule.match
        group = rule.group
        items = []
        for ev in evs:
            try:
                hit = match(ev)
            except Exception as exc:  # a built-in rule bug must not stop the stream
                self._rule_failed(rule, exc)
                continue
            if hit is not None:
                items.append((ev, hit, group(ev)))
        if items:
            self._take(rule, items, touched)

    def _rule_failed(self, rule: Rule, exc: Exception) -> None:
        if rule.id not in self._failed:
            self._failed.add(rule.id)
            self.errors.append(f"rule {rule.id}: {type(exc).__name__}: {exc}")

    def _take(self, rule: Rule, items: list, touched: dict) -> None:
        """Apply hits ``(ev, hit, group key)`` of ``rule`` in order: join the key's open finding,
        count in its window, or open a finding. ``ev`` is an Event, or (column path) a row with the
        fields findings and samples read."""
        open_get = rule.open.get
        is_window = rule.is_window
        wm = self.watermark
        for ev, hit, key in items:
            f = open_get(key)
            ts = ev.ts
            if ts is None:
                ts = wm
            if f is not None and ts <= f.close_ts:
                # Hot path: one more evidence event for an open finding.
                f.count += 1
                if ts > f.last_ts:
                    f.last_ts = ts
                elif ts < f.first_ts:
                    f.first_ts = ts
                    self._reschedule(rule, f)
                if len(f.event_refs) < MAX_REFS:
                    f.event_refs.append((ev.log_object, ev.log_line))
                    if len(f.evidence) < MAX_SAMPLES:
                        f.evidence.append(sample_of(ev))
                if hit is not ONE:
                    self._extra(rule, f, ev, hit)
                touched[f] = None
                continue
            if f is None and is_window:  # the common case of a windowed rule: just count
                entries = self._window_add(rule, key, ts, ev, hit)
                if entries is not None:
                    touched[self._fire(rule, key, ev, hit, entries)] = None
                continue
            f = self._hit(rule, key, f, ev, ts, hit)
            if f is not None:
                touched[f] = None

    # ------------------------------------------------------------------ findings

    def _hit(self, rule: Rule, key, f: Finding | None, ev, ts, hit) -> Finding | None:
        if f is not None:  # its dedup period is over: close it, start afresh
            self._close(f)
            del rule.open[key]
        if rule.is_window:
            entries = self._window_add(rule, key, ts, ev, hit)
            return None if entries is None else self._fire(rule, key, ev, hit, entries)
        f = self._new(rule, key, ev, ts)
        f.add(ev, ts)
        if hit is not ONE:
            self._extra(rule, f, ev, hit)
        return f

    def _fire(self, rule: Rule, key, ev, hit, entries: list[tuple]) -> Finding:
        """A new finding of a windowed rule from the window's evidence entries."""
        first = entries[0]
        f = self._new(rule, key, first[3], first[0])
        for entry in entries[:MAX_REFS]:
            e_ev = entry[3]
            f.add(e_ev, entry[0])
            self._extra(rule, f, e_ev, hit if e_ev is ev else (entry[1], entry[2], None, None))
        if len(entries) > MAX_REFS:
            self._fire_tail(rule, f, ev, hit, entries[MAX_REFS:])
        f.details["window_minutes"] = rule.window
        if rule.min_share:
            f.details["requests"] = self._requests_seen
        self._reschedule(rule, f)
        return f

    def _fire_tail(self, rule: Rule, f: Finding, ev, hit, tail: list[tuple]) -> None:
        """The entries past MAX_REFS of a firing window (a busy actor's window may hold tens of
        thousands) as ``Finding.add`` and ``_extra`` take them one by one, in bulk: counted, their times
        widen ``first_ts``/``last_ts`` (add keeps first <= last: the min and max), their measure summed
        (integers: the sum of the one-by-one additions; otherwise one by one, in order); the firing
        event's own hit (severity, details) as ``_extra`` takes it."""
        f.count += len(tail)
        times = [e[0] for e in tail]
        lo, hi = min(times), max(times)
        if hi > f.last_ts:
            f.last_ts = hi
        if lo < f.first_ts:
            f.first_ts = lo
        own = sum(e[3] is ev for e in tail)   # (the firing event's entry: its full hit, below)
        if rule.measure is not None:
            m = rule.measure_of
            vals = [(e[1] if m is None else m(e[3])) for e in tail if e[3] is not ev]
            if not all(type(v) is int for v in vals):   # (float sums: in order, as one by one)
                for e in tail:
                    self._extra(rule, f, e[3], hit if e[3] is ev else (e[1], e[2], None, None))
                return
            f.details[rule.measure] = f.details.get(rule.measure, 0) + sum(vals)
        for _ in range(own):
            self._extra(rule, f, ev, hit)

    def _new(self, rule: Rule, key, ev, ts) -> Finding:
        title = rule.title
        if rule.title_fn is not None:
            try:
                title = str(rule.title_fn(ev))
            except Exception as exc:  # user rules report through their own wrapper; built-ins here
                if rule.id not in self._failed:
                    self._failed.add(rule.id)
                    self.errors.append(f"rule {rule.id}: title: {type(exc).__name__}: {exc}")
        f = Finding(rule.id, rule.severity, title, ev, key, ts, ts + rule.dedup * 60)
        rule.open[key] = f
        self._all.append(f)
        self._seq += 1
        heapq.heappush(self._heap, (f.close_ts, self._seq, f))
        return f

    def _schedule(self, rule: Rule, findings: list[Finding], ordered: bool = False, closes: list | None = None) -> None:
        """Schedule the closing of many new findings of ``rule`` with one heap entry (a :class:`_Bundle`);
        ``ordered``: they are in order of ``close_ts`` already; ``closes``: their ``close_ts``."""
        if not findings:
            return
        if closes is None:
            closes = list(map(_CLOSE, findings))
        if not ordered and any(map(gt, closes, closes[1:])):
            order = sorted(range(len(closes)), key=closes.__getitem__)
            closes = [closes[i] for i in order]
            findings = [findings[i] for i in order]
        self._seq += 1
        heapq.heappush(self._heap, (closes[0], self._seq, _Bundle(closes, findings, rule)))

    def _reschedule(self, rule: Rule, f: Finding) -> None:
        close_ts = f.first_ts + rule.dedup * 60
        if close_ts != f.close_ts:
            f.close_ts = close_ts
            self._seq += 1
            heapq.heappush(self._heap, (close_ts, self._seq, f))

    def _extra(self, rule: Rule, f: Finding, ev, hit) -> None:
        weight, _value, severity, details = hit
        if rule.measure is not None:
            m = rule.measure_of
            f.details[rule.measure] = f.details.get(rule.measure, 0) + (weight if m is None else m(ev))
        if severity is not None:
            f.raise_severity(severity)
        if details:
            if rule.mode == "escalate":
                self._escalate(rule, f, ev, details)
            else:
                for k, v in details.items():
                    old = f.details.get(k)
                    if isinstance(v, list) and isinstance(old, list):
                        f.details[k] = (old + [x for x in v if x not in old])[:MAX_SAMPLES * 4]
                    elif isinstance(v, bool) or old is None:
                        f.details[k] = v

    def _escalate(self, rule: Rule, f: Finding, ev, details: dict) -> None:
        """Severity ``escalate_to`` once ``threshold`` different kinds fall within ``window`` minutes."""
        seen: dict[str, list] = f.details.setdefault("kinds_seen", {})
        ts = ev.ts if ev.ts is not None else self.watermark
        for kind in details.get("kinds", ()):
            times = seen.setdefault(kind, [])
            if len(times) < MAX_REFS:
                times.append(ts)
        f.details["kinds"] = sorted(seen)
        points = sorted((t, k) for k, times in seen.items() for t in times)
        span = (rule.window or 0) * 60
        counts: dict[str, int] = {}
        lo = 0
        for t, k in points:
            counts[k] = counts.get(k, 0) + 1
            while points[lo][0] < t - span:
                k0 = points[lo][1]
                counts[k0] -= 1
                if not counts[k0]:
                    del counts[k0]
                lo += 1
            if len(counts) >= rule.threshold:
                if SEVERITY_RANK[rule.escalate_to] > SEVERITY_RANK[f.severity]:
                    f.severity = rule.escalate_to
                    f.title = f"{len(counts)} security controls disabled on one bucket"
                break

    def _window_add(self, rule: Rule, key, ts, ev, hit, quiet: bool = False) -> list[tuple] | None:
        """Add a hit to the key's window; the evidence entries when the threshold is reached.
        ``quiet``: add only, never fire (the column path replaying entries of earlier batches that it
        proved could not fire when they arrived: see ``ColumnRunner.run_window``)."""
        segs = rule.windows.get(key)
        span = rule.window * 60
        if segs is None:
            win = _Window(rule.distinct)
            rule.windows[key] = [win]
        else:
            win = segs[0]  # the newest segment
            if ts < win.newest - span:
                win = None
                for seg in segs[1:]:
                    if seg.newest - span <= ts:
                        win = seg
                        break
                if win is None:  # a late log object: a segment of its own
                    win = _Window(rule.distinct)
                    segs.append(win)
                    if len(segs) > MAX_SEGMENTS:
                        segs.sort(key=_newest, reverse=True)
                        del segs[MAX_SEGMENTS:]
        weight, value = hit[0], hit[1]
        entry = (ts, weight, value, ev)
        e = win.e
        win.total += weight
        seen = win.seen if value is not None else None
        if seen is not None:
            seen[value] = seen.get(value, 0) + 1
        if ts >= win.newest:
            win.newest = ts
            e.append(entry)
            cutoff = ts - span
            lo = win.lo
            if e[lo][0] < cutoff:
                total = win.total
                counts = win.seen
                while e[lo][0] < cutoff:
                    old = e[lo]
                    total -= old[1]
                    if counts is not None and old[2] is not None:
                        left = counts[old[2]] - 1
                        if left:
                            counts[old[2]] = left
                        else:
                            del counts[old[2]]
                    lo += 1
                win.total = total
                if lo > 256 and lo * 2 > len(e):
                    del e[:lo]
                    lo = 0
                win.lo = lo
        else:  # within the segment's span, out of order: insert in place
            e.insert(bisect_right(e, ts, lo=win.lo, key=_ts), entry)
        if quiet:
            return None
        fire = win.total >= rule.threshold
        if not fire and seen is not None:
            fire = len(seen) >= rule.distinct
        if fire:
            if rule.min_share:
                # errors must also be a real share of the group's requests in the window: a steady
                # few-percent error rate of a busy application is not an actor probing
                requests = max(self._requests(key, win.newest - span, win.newest), win.total)
                if win.total < rule.min_share * requests:
                    return None
                self._requests_seen = requests
            entries = e[win.lo:]
            win.e, win.lo, win.total = [], 0, 0
            if win.seen is not None:
                win.seen = {}
            return entries
        return None

    def _sweep(self) -> None:
        """Drop window segments idle for IDLE_SECONDS of event time (bounded memory on long runs)."""
        horizon = self.watermark - IDLE_SECONDS
        for rule in self.rules:
            if not rule.windows:
                continue
            for key in list(rule.windows):
                segs = [s for s in rule.windows[key] if s.newest >= horizon and len(s.e) > s.lo]
                if segs:
                    rule.windows[key] = segs
                else:
                    del rule.windows[key]
        self._next_sweep = self.watermark + SWEEP_EVERY

    def _close(self, f: Finding) -> None:
        if not f.closed:
            f.closed = True
            self._closed.append(f)

    def pop_closed(self) -> list[Finding]:
        """Findings closed since the last call: their dedup period ended in event time."""
        heap = self._heap
        wm = self.watermark
        while heap and heap[0][0] < wm:
            close_ts, _, f = heapq.heappop(heap)
            if type(f) is _Bundle:   # many findings, by close time: the due ones, the rest back
                closes, fs, i = f.closes, f.findings, f.i
                j = bisect_left(closes, wm, i)
                start = len(self._closed)   # (those still open and still due then: closed, in order)
                _mark(fs[i:j], Finding, "closed", False, True, self._closed, "close_ts", closes[i:j])
                table = f.rule.open
                if table:
                    for g in self._closed[start:]:
                        if table.get(g.dedup_key) is g:
                            del table[g.dedup_key]
                i = f.i = j
                if i < len(closes):
                    self._seq += 1
                    heapq.heappush(heap, (closes[i], self._seq, f))
                continue
            if not f.closed and close_ts == f.close_ts:
                self._close(f)
                table = self._by_id[f.rule_id].open
                if table and table.get(f.dedup_key) is f:
                    del table[f.dedup_key]
        out, self._closed = self._closed, []
        return out

    def flush(self) -> list[Finding]:
        """Close every window and finding (end of input); returns the findings closed now."""
        closed = self._closed
        cols = self._columns
        for rule in self.rules:
            fs = [f for f in rule.open.values() if not f.closed]
            if cols is not None:
                fs += cols.pop_open(rule)
            for f in fs:
                f.closed = True
            closed += fs
            rule.open.clear()
            rule.windows.clear()
        self._req_chunks.clear()
        self._req_top = self._req_horizon = float("-inf")
        self._heap.clear()
        if self._columns is not None:
            self._columns.clear()
        out, self._closed = self._closed, []
        return out

    def findings(self) -> list[Finding]:
        """Every finding so far, open and closed, in creation order."""
        return list(self._all)

    def findings_view(self) -> "FindingsSoFar":
        """:meth:`findings` without a copy: the first N of the engine's list, which is only ever
        appended to, so another thread can read it while the engine goes on."""
        return FindingsSoFar(self._all, len(self._all))


class FindingsSoFar(Sequence):
    """The first ``n`` items of an append-only list (read-only)."""

    __slots__ = ("_items", "_n")

    def __init__(self, items: list, n: int) -> None:
        self._items, self._n = items, n

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return self._items[:self._n][i]
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        return self._items[i]

    def __iter__(self):
        return islice(self._items, self._n)


class _Bundle:
    """One heap entry for many findings of one rule (:meth:`RuleEngine._schedule`): their close times
    ascending; ``i``: the first not handled yet."""

    __slots__ = ("closes", "findings", "i", "rule")

    def __init__(self, closes: list, findings: list, rule: Rule):
        self.closes, self.findings, self.i, self.rule = closes, findings, 0, rule


_CLOSE = attrgetter("close_ts")


def _add_at(values: list, value, rules, out: dict[int, list]) -> None:
    """``out[i] += rules`` for every index i where ``values[i] == value`` (C ``list.index``)."""
    i = -1
    index = values.index
    try:
        while True:
            i = index(value, i + 1)
            out.setdefault(i, []).extend(rules)
    except ValueError:
        pass


def _ts(entry: tuple):
    return entry[0]


def _newest(win: _Window):
    return win.newest


def _apply(rule: Rule, over: dict[str, Any]) -> None:
    for name, value in over.items():
        if name == "enabled":
            rule.enabled = bool(value)
        elif name in ("severity", "threshold", "window", "dedup", "distinct"):
            setattr(rule, name, value)
        else:
            rule.params[name] = value
