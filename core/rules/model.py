"""Findings and rule descriptions shared by the engine, the built-in rules and user rules."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

from ..columns import TS_CANONICAL, format_ts

SEVERITIES = ("info", "low", "medium", "high", "critical")
SEVERITY_RANK = {name: i for i, name in enumerate(SEVERITIES)}
MAX_REFS = 1000
MAX_SAMPLES = 5


def iso(ts: int | float | None) -> str | None:
    if ts is None:
        return None
    sec = int(ts)
    if 0 <= sec < TS_CANONICAL:   # (the event model's formatting, its day cached: findings share days)
        return format_ts(sec)
    return datetime.fromtimestamp(sec, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def actor_of(ev) -> str | None:
    """The requester, or the remote IP for anonymous requests (same as ``Event.actor``, no property call)."""
    r = ev.requester
    return r if r is not None else ev.remote_ip


SAMPLE_FIELDS = ("log_object", "log_line", "time", "action", "key", "http_status")


def sample_of(ev) -> tuple:
    """The contract's sample of an event, as a compact tuple in SAMPLE_FIELDS order."""
    return (ev.log_object, ev.log_line, ev.time, ev.action or ev.operation, ev.key, ev.http_status)


class Finding:
    """One open or closed finding: a rule matched one event, or a window crossed its threshold.

    ``event_refs`` lists ``(log_object, log_line)`` of every evidence event (capped at
    :data:`MAX_REFS`); ``count`` keeps counting past the cap.
    """

    # ``seen``: left to one reader of the findings to keep its own state on them (the app's Findings
    # index: no dict of a hundred thousand entries); the engine never sets or reads it
    __slots__ = ("rule_id", "severity", "title", "bucket", "requester", "remote_ip", "first_ts",
                 "last_ts", "count", "evidence", "event_refs", "details", "dedup_key", "closed",
                 "close_ts", "seen")

    def __init__(self, rule_id: str, severity: str, title: str, ev, dedup_key: Any, ts: int, close_ts: float):
        self.rule_id = rule_id
        self.severity = severity
        self.title = title
        self.bucket = ev.bucket
        self.requester = ev.requester
        self.remote_ip = ev.remote_ip
        self.first_ts = self.last_ts = ts
        self.count = 0
        self.evidence: list[tuple] = []   # sample_of() the first MAX_SAMPLES evidence events
        self.event_refs: list[tuple[str, int]] = []
        self.details: dict[str, Any] = {}
        self.dedup_key = dedup_key
        self.closed = False
        self.close_ts = close_ts

    def add(self, ev, ts: int) -> None:
        """Count one evidence event (``ts``: its time, or the engine's clock when it has none)."""
        self.count += 1
        if ts > self.last_ts:
            self.last_ts = ts
        elif ts < self.first_ts:
            self.first_ts = ts
        if len(self.event_refs) < MAX_REFS:
            self.event_refs.append((ev.log_object, ev.log_line))
            if len(self.evidence) < MAX_SAMPLES:
                self.evidence.append(sample_of(ev))

    @property
    def samples(self) -> list[dict[str, Any]]:
        """Up to MAX_SAMPLES evidence events in the contract's sample shape."""
        return [dict(zip(SAMPLE_FIELDS, s)) for s in self.evidence]

    def raise_severity(self, severity: str) -> None:
        if SEVERITY_RANK[severity] > SEVERITY_RANK[self.severity]:
            self.severity = severity

    @property
    def first_seen(self) -> str | None:
        return iso(self.first_ts)

    @property
    def last_seen(self) -> str | None:
        return iso(self.last_ts)

    @property
    def actor(self) -> str | None:
        return self.requester if self.requester is not None else self.remote_ip

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id, "severity": self.severity, "title": self.title,
            "bucket": self.bucket, "requester": self.requester, "remote_ip": self.remote_ip,
            "first_seen": self.first_seen, "last_seen": self.last_seen, "count": self.count,
            "samples": self.samples, "details": dict(self.details),
        }

    def __repr__(self) -> str:
        return f"Finding({self.rule_id} {self.severity} {self.bucket!r} {self.actor!r} x{self.count})"


_REFS, _EVIDENCE, _DETAILS, _KEY = Finding.event_refs, Finding.evidence, Finding.details, Finding.dedup_key


def _lazy_slot(slot: Any) -> property:
    """A :class:`LazyFinding` attribute kept in ``slot`` of :class:`Finding`, built on first access."""
    def get(self: "LazyFinding") -> Any:
        if self._src is not None:
            self._load()
        return slot.__get__(self, Finding)

    def put(self: "LazyFinding", value: Any) -> None:
        if self._src is not None:
            self._load()
        slot.__set__(self, value)
    return property(get, put)


class LazyFinding(Finding):
    """A finding made in bulk by the column path (:func:`new_findings`): the same attributes, but
    ``event_refs`` and ``evidence`` are built from its source's columns on first access
    (``source.evidence(at)`` -> (refs, samples)) and ``details`` is made on first access: most
    findings of a busy rule are never read back, and each object not made is one the cyclic
    garbage collector does not walk. ``dedup_key`` too is made on first access, by the rule's group
    function (``_grp``) over the finding's own bucket, requester and remote IP (those of its first
    evidence event, in the group).

    The C maker leaves them out of the cyclic garbage collector (``new_objects(..., untrack=True)``):
    no reference cycle passes through one, as nothing they hold leads back to a finding or to the
    engine: strings, numbers, module-level group functions, their source (an ``_Evidence``: numpy
    arrays and lists of dictionary values; or a ``_Parts`` of those), and once read plain lists,
    tuples and dicts of values. A young collection then does not walk a hundred thousand findings."""

    __slots__ = ("_src", "_at", "_grp")

    def _load(self) -> None:
        refs, samples = self._src.evidence(self._at)
        _REFS.__set__(self, refs)
        _EVIDENCE.__set__(self, samples)
        self._src = None

    event_refs = _lazy_slot(_REFS)   # type: ignore[assignment]
    evidence = _lazy_slot(_EVIDENCE)  # type: ignore[assignment]

    @property
    def details(self) -> dict:  # type: ignore[override]
        try:
            return _DETAILS.__get__(self, Finding)
        except AttributeError:
            d: dict[str, Any] = {}
            _DETAILS.__set__(self, d)
            return d

    @details.setter
    def details(self, value: dict) -> None:
        _DETAILS.__set__(self, value)

    @property
    def dedup_key(self) -> Any:  # type: ignore[override]
        try:
            return _KEY.__get__(self, Finding)
        except AttributeError:
            key = self._grp(self)
            _KEY.__set__(self, key)
            return key

    @dedup_key.setter
    def dedup_key(self, value: Any) -> None:
        _KEY.__set__(self, value)


def _speedups_new_objects():
    try:
        from ..access_log import speedups
    except ImportError:  # pragma: no cover - the package always has access_log
        return None
    return getattr(speedups, "new_objects", None)


_NEW_OBJECTS = _speedups_new_objects()   # the C maker (None: C extension not built, or pure Python asked)
_NEW_COLUMNS = ("bucket", "requester", "remote_ip", "first_ts", "last_ts", "close_ts", "count", "_at")
_NEW_CONSTS = ("rule_id", "severity", "title", "closed", "_src", "_grp")


def _gathered(column: Any) -> list:
    """A column of :func:`new_findings` as a list: ``(values, idx[, default])`` gathered
    (``values[i]`` for each index, a None value replaced by ``default`` when given)."""
    if type(column) is not tuple:
        return column
    values, idx = column[0], column[1].tolist()
    if idx and (min(idx) < 0 or max(idx) >= len(values)):
        raise IndexError("new_objects: index out of range")
    out = list(map(values.__getitem__, idx))
    if len(column) > 2 and None in out:
        out = [column[2] if v is None else v for v in out]
    return out


def new_findings(rule_id: str, severity: str, title: str, buckets, requesters, remote_ips,
                 group: Callable[[Any], Any], firsts, lasts, closes, counts, source, ats,
                 maker=None) -> list[Finding]:
    """Many findings of one rule at once (the column path), each as ``Finding(...)`` followed by
    ``add`` of its evidence events would make it: one item per finding in every column argument, all
    of one length (a list, or ``(values, idx)`` / ``(values, idx, default)``: ``values[idx[k]]``
    gathered by the maker, None replaced by ``default``; ``counts``: a list); ``group``: the rule's
    group function (the dedup key is ``group(finding)``); ``source.evidence(at)`` gives a finding's
    refs and samples (already capped at MAX_REFS / MAX_SAMPLES), asked on first access
    (:class:`LazyFinding`). ``maker``: the C ``new_objects`` (default: the extension's when built),
    ``False`` for the pure-Python loop."""
    if maker is None:
        maker = _NEW_OBJECTS
    if maker:
        return maker(LazyFinding, len(counts), _NEW_COLUMNS + _NEW_CONSTS,
                     (buckets, requesters, remote_ips, firsts, lasts, closes, counts, ats),
                     (rule_id, severity, title, False, source, group), True)
    buckets, requesters, remote_ips, firsts, lasts, closes, ats = map(
        _gathered, (buckets, requesters, remote_ips, firsts, lasts, closes, ats))
    make = object.__new__
    out: list[Finding] = []
    append = out.append
    for b, rq, ip, t0, t1, c, n, at in zip(buckets, requesters, remote_ips, firsts, lasts, closes, counts, ats):
        f = make(LazyFinding)
        f.rule_id = rule_id
        f.severity = severity
        f.title = title
        f.bucket = b
        f.requester = rq
        f.remote_ip = ip
        f.first_ts = t0
        f.last_ts = t1
        f.count = n
        f.closed = False
        f.close_ts = c
        f._src = source
        f._at = at
        f._grp = group
        append(f)
    return out


# match(ev) returns None (no match) or a Hit: (weight, distinct_value, severity_or_None, details_or_None)
Hit = tuple
Matcher = Callable[[Any], "Hit | None"]
ONE: Hit = (1, None, None, None)


class Rule:
    """A rule: a cheap dispatch description plus a ``match`` function over one event.

    ``gate`` names the cheap field test the engine does inline before calling ``match``:
    ``op`` (only the operations ``ops`` accepts), ``error`` (HTTP status >= 400), ``anon``
    (no requester), ``notls`` (access-log row without TLS), ``sigv2``, ``ua`` (``ua_test(user_agent)``,
    cached per distinct value), ``all`` (every event). ``prefilter = (field, literals)`` (field
    ``uri``, ``key`` or ``ua``; lower-case literals, one ending in a newline matches at the end of the
    value; ``None``: every event) replaces the gate: ``match`` runs only for events of an accepted
    operation whose field contains a literal; it must be a necessary condition of ``match``.
    ``window`` (minutes) makes the rule windowed: it fires when the sum of hit weights reaches
    ``threshold`` (or ``distinct`` different hit values) within the window, per ``group`` key, and,
    when ``params["min_error_share"]`` is set, the matches are at least that share of the group's
    requests in the window (the engine counts requests per bucket and actor).
    """

    def __init__(self, id: str, severity: str, title: str, *, gate: str, match: Matcher,
                 group: Callable[[Any], Any], description: str = "", peers: str = "",
                 ops: Callable[[str, frozenset, bool], bool] | None = None,
                 window: float | None = None, threshold: float = 1, distinct: int | None = None,
                 dedup: float = 60, measure: str | None = None, params: dict[str, Any] | None = None,
                 title_fn: Callable[[Any], str] | None = None, inert: bool = False,
                 source: str = "builtin", mode: str | None = None, escalate_to: str = "critical",
                 prefilter: tuple[str, tuple[str, ...] | None] | None = None,
                 ua_test: Callable[[str], bool] | None = None,
                 measure_of: Callable[[Any], float] | None = None):
        self.id = id
        self.severity = severity
        self.title = title
        self.gate = gate
        self.match = match
        self.group = group
        self.description = description
        self.peers = peers
        self.ops = ops
        self.window = window
        self.threshold = threshold
        self.distinct = distinct
        self.dedup = dedup
        self.measure = measure
        self.params = params or {}
        self.title_fn = title_fn
        self.inert = inert
        self.source = source
        self.enabled = True
        self.open: dict = {}     # engine state: group key -> open Finding
        self.windows: dict = {}  # engine state: group key -> event-time window
        # single: every match is evidence; window: fire at threshold within the window;
        # escalate: every match is evidence, severity escalates at threshold distinct kinds in the window.
        self.mode = mode or ("window" if window is not None else "single")
        self.escalate_to = escalate_to
        self.prefilter = prefilter
        self.ua_test = ua_test
        self.measure_of = measure_of  # details[measure] sums this per evidence event (default: the hit weight)
        self.min_share = 0.0     # set by the engine from params["min_error_share"]
        self.is_window = False   # set by the engine from mode, threshold and distinct

    @property
    def windowed(self) -> bool:
        return self.mode == "window" and (self.threshold > 1 or self.distinct is not None)

    def defaults(self) -> dict[str, Any]:
        out: dict[str, Any] = {"severity": self.severity}
        if self.window is not None:
            out["window"] = self.window
            out["threshold"] = self.threshold
        if self.distinct is not None:
            out["distinct"] = self.distinct
        out["dedup"] = self.dedup
        out.update(self.params)
        return out
