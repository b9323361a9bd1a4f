"""The filter language shared by ``s3tail parse --filter``, ``s3tail scan --filter`` and the terminal app.

Grammar (a contract)::

    FILTER := TERM ( " "+ TERM )*          all terms must hold; empty text matches everything
    TERM   := ["-"] FIELD ":" VALUE        "-" negates the term
            | ["-"] WORD                   a bare word, matched fuzzily
    VALUE, WORD: a run of non-space characters, or "double quoted" (may hold spaces; \\" and \\\\ escape)

Fields (aliases after ``=``): ``bucket``, ``requester`` = ``who``, ``status``, ``action``, ``op``
(operation), ``key``, ``ip``, ``ua`` (user agent), ``error`` (error code), ``source``, ``tls``, ``sig``,
``since``, ``until``.

* Text fields take a case-insensitive glob: ``*`` any run, ``?`` one character, everything else literal
  (``[`` too); without a wildcard the whole value must match exactly (case-insensitive). ``-`` alone
  matches an absent (null) value: ``error:-``. A null never matches any other value.
* ``requester``/``who`` hold when the requester ARN, the short name shown in the table (``who``: session,
  else principal name, else requester, else ``anonymous``), the principal name or the session name matches.
* ``status``: ``403``, ``4xx`` (``x`` is any digit, also ``40x``), ``>=400``, ``>400``, ``<500``, ``<=499``,
  ``400-499`` (inclusive range).
* ``ip``: an address (``2001:db8::1`` matches however the log spells it) or a CIDR (``10.0.0.0/8``,
  ``2001:db8::/32``), v4 and v6; a value with ``*``/``?`` is a glob on the text.
* ``since:15m`` (units s, m, h, d, w; relative to when the filter is compiled) or ``since:ISO-TIME``;
  ``until:ISO-TIME`` or ``until:2h``: ``since`` keeps ``ts >= T``, ``until`` keeps ``ts <= T``. ISO times
  without an offset are UTC; a date alone is its midnight. Events without a time never match.
* A bare word holds when it is a case-insensitive substring of the requester, who, key or user agent, or
  when ``rapidfuzz.fuzz.partial_ratio(word, value) >= FUZZY_THRESHOLD`` (80: about one typo in a word of
  five letters or more; shorter words practically need the exact substring). Quote a word holding a
  colon: ``"arn:aws:iam::123456789012:user/bob"``.

:meth:`Filter.matches` tests one :class:`~s3tail.core.event.Event`. The columnar store
(:mod:`s3tail.core.store`) runs the same terms vectorised: each :class:`Term` names the event fields it
reads (:attr:`Term.fields`) and tests a list of distinct values at once (:meth:`Term.values_ok`); the
store turns that into a lookup table over its dictionary codes. Both paths give the same answer.
"""
from __future__ import annotations

import ipaddress
import re
import socket
import time
from datetime import datetime, timezone
from typing import Any

import numpy as np
from rapidfuzz import fuzz, process

FUZZY_THRESHOLD = 80

# field name in the language -> event fields the term reads
FIELDS: dict[str, tuple[str, ...]] = {
    "bucket": ("bucket",),
    "requester": ("requester", "who", "principal_name", "session_name"),
    "status": ("http_status",),
    "action": ("action",),
    "op": ("operation",),
    "key": ("key",),
    "ip": ("remote_ip",),
    "ua": ("user_agent",),
    "error": ("error_code",),
    "source": ("source",),
    "tls": ("tls_version",),
    "sig": ("signature_version",),
    "since": ("ts",),
    "until": ("ts",),
}
ALIASES = {"who": "requester", "operation": "op", "user_agent": "ua", "error_code": "error",
           "http_status": "status", "remote_ip": "ip", "tls_version": "tls", "signature_version": "sig"}
WORD_FIELDS = ("requester", "who", "key", "user_agent")
VALID_FIELDS = ("bucket", "requester", "who", "status", "action", "op", "key", "ip", "ua", "error",
                "source", "tls", "sig", "since", "until")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class FilterError(ValueError):
    """A filter that cannot be compiled; ``str(exc)`` is one line naming the term and its column."""


def event_value(event: Any, field: str) -> Any:
    """The value of ``field`` for ``event`` (``who`` is the derived short name)."""
    return event.who if field == "who" else getattr(event, field)


class Term:
    """One compiled term. ``fields``: event fields it reads (any may match); ``negate``: ``-`` prefix."""

    kind = "value"  # "value": tested per distinct field value; "time": tested on the ts column

    def __init__(self, field: str, value: str, negate: bool, text: str, fields: tuple[str, ...]):
        self.field, self.value, self.negate, self.text, self.fields = field, value, negate, text, fields

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.text!r})"

    def value_ok(self, value: Any) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def values_ok(self, values: list) -> np.ndarray:
        """Vectorised :meth:`value_ok` over distinct values (a boolean array, same length)."""
        ok = self.value_ok
        return np.fromiter((ok(v) for v in values), dtype=bool, count=len(values))

    def test(self, event: Any) -> bool:
        """Whether the term holds for ``event``, before negation."""
        ok = self.value_ok
        return any(ok(event_value(event, f)) for f in self.fields)


class GlobTerm(Term):
    """Case-insensitive glob (``*``, ``?``) or exact text; ``-`` matches null."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        pat = self.value.lower()
        self.null = pat == "-"
        self.exact: str | None = None
        self.regex = None
        if "*" in pat or "?" in pat:
            body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pat)
            self.regex = re.compile(body, re.S)
        else:
            self.exact = pat

    def value_ok(self, value: Any) -> bool:
        if value is None:
            return self.null
        if self.null:
            return False
        text = str(value).lower()
        if self.regex is None:
            return text == self.exact
        return self.regex.fullmatch(text) is not None


class StatusTerm(Term):
    _CMP = re.compile(r"(>=|<=|>|<|=)?(\d{1,3})")

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        v = self.value.lower()
        self.null = v == "-"
        self.lo, self.hi = 0, -1  # inclusive bounds; empty unless set
        if self.null:
            return
        if re.fullmatch(r"[\dx]{3}", v):
            digits = v.replace("x", "0")
            span = 10 ** (len(v) - len(v.rstrip("x")))
            if "x" in v.rstrip("x"):
                raise FilterError("'x' wildcards only at the end of a status, like 4xx or 40x")
            self.lo, self.hi = int(digits), int(digits) + span - 1
            return
        m = re.fullmatch(r"(\d{1,3})-(\d{1,3})", v)
        if m:
            self.lo, self.hi = int(m.group(1)), int(m.group(2))
            return
        m = self._CMP.fullmatch(v)
        if not m:
            raise FilterError("expected 403, 4xx, >=400, <500 or 400-499")
        op, n = m.group(1) or "=", int(m.group(2))
        self.lo, self.hi = {"=": (n, n), ">=": (n, 999), ">": (n + 1, 999), "<=": (0, n),
                            "<": (0, n - 1)}[op]

    def value_ok(self, value: Any) -> bool:
        if value is None:
            return self.null
        return not self.null and isinstance(value, int) and self.lo <= value <= self.hi


class IpTerm(Term):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.glob: GlobTerm | None = None
        if self.value == "-" or "*" in self.value or "?" in self.value:
            self.glob = GlobTerm(*args)
            return
        try:
            net = ipaddress.ip_network(self.value, strict=False)
        except ValueError:
            raise FilterError(f"{_shown(self.value)} is not an IP address or CIDR") from None
        self.version = net.version
        self.net = int(net.network_address)
        self.netmask = int(net.netmask)

    def value_ok(self, value: Any) -> bool:
        if self.glob is not None:
            return self.glob.value_ok(value)
        parsed = ip_int(value)
        return parsed is not None and parsed[0] == self.version and parsed[1] & self.netmask == self.net


def ip_int(value: Any) -> tuple[int, int] | None:
    """``(4 or 6, address as an int)`` for an IP address as logged, else None (fast: inet_pton)."""
    if not isinstance(value, str):
        return None
    try:
        if ":" in value:
            return 6, int.from_bytes(socket.inet_pton(socket.AF_INET6, value), "big")
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, value), "big")
    except (OSError, ValueError):
        return None


class TimeTerm(Term):
    kind = "time"

    def __init__(self, *args: Any, now: float) -> None:
        super().__init__(*args)
        self.cutoff = parse_time_value(self.value, now)
        self.since = self.field == "since"

    def value_ok(self, value: Any) -> bool:
        if value is None:
            return False
        return value >= self.cutoff if self.since else value <= self.cutoff

    def ts_ok(self, ts: np.ndarray) -> np.ndarray:
        """Vectorised over a float ts array (NaN = no time: never matches)."""
        return ts >= self.cutoff if self.since else ts <= self.cutoff


class WordTerm(Term):
    """A bare word: substring of, or fuzzy partial match with, requester/who/key/user agent."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.word = self.value.lower()

    def value_ok(self, value: Any) -> bool:
        if value is None:
            return False
        text = str(value).lower()
        return self.word in text or fuzz.partial_ratio(self.word, text) >= FUZZY_THRESHOLD

    def values_ok(self, values: list) -> np.ndarray:
        n = len(values)
        out = np.zeros(n, dtype=bool)
        idx = [i for i, v in enumerate(values) if v is not None]
        if not idx:
            return out
        texts = [str(values[i]).lower() for i in idx]
        word = self.word
        sub = np.fromiter((word in t for t in texts), dtype=bool, count=len(texts))
        rest = np.flatnonzero(~sub)
        if len(rest):
            scores = process.cdist([word], [texts[i] for i in rest], scorer=fuzz.partial_ratio,
                                   score_cutoff=FUZZY_THRESHOLD, workers=-1)[0]
            sub[rest[scores >= FUZZY_THRESHOLD]] = True
        out[np.asarray(idx, dtype=np.int64)] = sub
        return out


_TERM_CLASSES = {"status": StatusTerm, "ip": IpTerm}


def parse_time_value(value: str, now: float) -> float:
    """``15m``/``2h``/``1d``/``30s``/``1w`` before ``now``, or an ISO 8601 time (UTC if no offset)."""
    m = re.fullmatch(r"(\d{1,12})([smhdw])", value.lower())
    if m:
        return now - int(m.group(1)) * _UNITS[m.group(2)]
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return dt.timestamp()
    except (ValueError, OverflowError):
        raise FilterError(f"expected a duration like 15m, 2h, 1d or an ISO time like "
                          f"2024-05-14T10:00:00Z, got {_shown(value)}") from None


class Filter:
    """A compiled filter: ``text`` as given, ``terms`` (all must hold)."""

    def __init__(self, text: str, terms: list[Term]):
        self.text = text
        self.terms = terms

    def __repr__(self) -> str:
        return f"Filter({self.text!r})"

    def matches(self, event: Any) -> bool:
        for term in self.terms:
            if term.test(event) == term.negate:
                return False
        return True

    match_event = matches  # the name s3tail parse uses

    @property
    def fields(self) -> set[str]:
        """Every event field some term reads."""
        return {f for t in self.terms for f in t.fields}


def tokenize(text: str) -> list[tuple[int, str, bool, bool]]:
    """``(column, body, negate, quoted)`` per space-separated token. A leading unquoted ``-`` negates;
    double quotes group characters (spaces too) and are removed; ``quoted``: the body began with one."""
    out: list[tuple[int, str, bool, bool]] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start = i
        negate = text[i] == "-" and i + 1 < n and not text[i + 1].isspace()
        if negate:
            i += 1
        elif text[i] == "-":
            raise FilterError(f"column {start + 1}: '-' must be followed by a term, like -status:403")
        quoted = text[i] == '"'
        buf: list[str] = []
        while i < n and not text[i].isspace():
            c = text[i]
            if c == '"':
                qstart = i
                i += 1
                while i < n and text[i] != '"':
                    if text[i] == "\\" and i + 1 < n and text[i + 1] in '"\\':
                        i += 1
                    buf.append(text[i])
                    i += 1
                if i >= n:
                    raise FilterError(f"column {qstart + 1}: unterminated quote")
                i += 1
                continue
            buf.append(c)
            i += 1
        body = "".join(buf)
        if not body:
            raise FilterError(f"column {start + 1}: empty term")
        out.append((start + 1, body, negate, quoted))
    return out


def compile_filter(text: str, *, now: float | None = None) -> Filter:
    """Compile filter ``text``; raise :class:`FilterError` with a one-line message naming the term."""
    if text is None:
        text = ""
    now = time.time() if now is None else now
    terms: list[Term] = []
    for col, body, negate, quoted in tokenize(text):
        token = ("-" if negate else "") + body
        shown = _shown(token)
        field, sep, value = body.partition(":")
        if quoted or not sep:
            terms.append(WordTerm("word", body, negate, token, WORD_FIELDS))
            continue
        name = field.lower()
        name = ALIASES.get(name, name)
        if name not in FIELDS:
            raise FilterError(f"column {col}: unknown field {_shown(field)} in {shown}; valid fields: "
                              f"{', '.join(VALID_FIELDS)} (quote a word that holds a colon)")
        if value == "":
            raise FilterError(f"column {col}: {shown} needs a value after the colon")
        try:
            if name in ("since", "until"):
                term: Term = TimeTerm(name, value, negate, token, FIELDS[name], now=now)
            else:
                term = _TERM_CLASSES.get(name, GlobTerm)(name, value, negate, token, FIELDS[name])
        except FilterError as exc:
            raise FilterError(f"column {col}: {shown}: {exc}") from None
        terms.append(term)
    return Filter(text, terms)


def _shown(token: str, limit: int = 60) -> str:
    """A token as it may appear in a one-line message: printable, bounded."""
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in token)
    return "'" + (out if len(out) <= limit else out[: limit - 1] + "…") + "'"

