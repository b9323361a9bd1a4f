"""Parser for S3 server access log lines, every generation (18 to 27 fields and anything appended later).

Field order (time counted as one field): owner bucket [time] ip requester request_id operation key
"request_uri" status error bytes_sent object_size total_time turn_around "referrer" "user_agent"
version_id host_id signature_version cipher_suite auth_type host_header tls_version access_point_arn
acl_required source_region extra...

S3 does not escape ``"`` inside quoted fields, writes bare ``-`` in quoted slots on batch and copy rows,
and a HostId may contain a space. The fast path handles the common shape with ``str.split``; anything
else goes through a slower, anchored path. A line that neither can read raises :class:`MalformedError`.
"""
from __future__ import annotations

import os
import re
from calendar import timegm
from datetime import datetime
from urllib.parse import unquote, unquote_plus

from .actions import action_for
from .event import Event, MalformedError
from . import identity
from .identity import decode_requester
from .redact import redact_uri

SOURCE = "s3access"
_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_SIG_VALUES = frozenset(("SigV2", "SigV4", "SigV4a", "-"))
_OP_RE = re.compile(r"^[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)+$")
_HEAD_RE = re.compile(r'^(\S+) (\S+) (?:\[([^\]]*)\]|-|"-") (\S+) (\S+) (\S+) (\S+) (\S+) (.*)$', re.S)
_N = r'(\d+|-|"-")'
_URI_RE = re.compile(r'^(?:"(.*?)"|(\S+)) (\d{3}|-|"-") (\S+) ' + " ".join([_N] * 4) + r'(?: (.*))?$', re.S)

_new = tuple.__new__
_time_cache: dict[str, tuple[str, int]] = {}
_ok_ops: set[str] = set()


def parse_time(stamp: str) -> tuple[str, int]:
    """``06/Feb/2019:00:00:38 +0000`` -> (``2019-02-06T00:00:38Z``, epoch seconds); other offsets converted."""
    hit = _time_cache.get(stamp)
    if hit is not None:
        return hit
    try:
        if len(stamp) != 26 or stamp[2] != "/" or stamp[6] != "/" or stamp[11] != ":" or stamp[20] != " ":
            raise ValueError
        dt = datetime(int(stamp[7:11]), _MONTHS[stamp[3:6]], int(stamp[0:2]),
                      int(stamp[12:14]), int(stamp[15:17]), int(stamp[18:20]))
        sign, hh, mm = stamp[21], int(stamp[22:24]), int(stamp[24:26])
        if sign not in "+-" or not stamp[22:26].isdigit():
            raise ValueError
    except (ValueError, KeyError):
        raise MalformedError(f"bad time [{stamp[:40]}]") from None
    offset = (hh * 3600 + mm * 60) * (1 if sign == "+" else -1)
    epoch = timegm(dt.timetuple()) - offset
    if offset:
        dt = datetime.utcfromtimestamp(epoch)
    hit = (dt.strftime("%Y-%m-%dT%H:%M:%SZ"), epoch)
    if len(_time_cache) > 100_000:
        _time_cache.clear()
    _time_cache[stamp] = hit
    return hit


def _num(value: str, name: str) -> int | None:
    if value == "-":
        return None
    if value.isascii() and value.isdigit():
        return int(value)
    raise MalformedError(f"{name} is not a number: {value[:40]!r}")


def _check_op(op: str) -> None:
    if op not in _ok_ops:
        if not _OP_RE.match(op):
            raise MalformedError(f"bad operation {op[:40]!r}")
        if len(_ok_ops) < 10_000:
            _ok_ops.add(op)


def _build(owner, bucket, stamp, ip, requester, reqid, op, key_raw, uri, status, err, sent, size,
           total, turn, ref, ua, tail, line, log_object, log_line, offset, redact) -> Event:
    iso, epoch = parse_time(stamp) if stamp is not None else (None, None)
    if op == "-":
        op = None
    else:
        _check_op(op)
    if status == "-":
        http_status = None
    elif len(status) == 3 and status.isascii() and status.isdigit():
        http_status = int(status)
    else:
        raise MalformedError(f"bad HTTP status {status[:40]!r}")
    if not tail:
        raise MalformedError("17 fields, expected at least 18 (ends before version id)")
    n = len(tail)
    if n > 3 and tail[2] not in _SIG_VALUES and tail[3] in _SIG_VALUES:
        # A HostId containing a space (seen in real 2019 logs): join its two halves.
        tail = [tail[0], tail[1] + " " + tail[2], *tail[3:]]
        n -= 1
    if n < 10:
        tail = tail + ["-"] * (10 - n)
    requester = None if requester == "-" else requester
    if key_raw == "-":
        key_raw = key = None
    elif "%" in key_raw or "+" in key_raw:
        key = unquote_plus(key_raw) if op == "BATCH.DELETE.OBJECT" else unquote(key_raw)
    else:
        key = key_raw
    if uri == "-":
        uri = None
    elif redact:
        uri = redact_uri(uri)
    if ref == "-":
        ref = None
    elif redact:
        ref = redact_uri(ref)
    account_id, ptype, pname, session = decode_requester(requester)
    v = tail[0]
    return _new(Event, (
        SOURCE, iso, None if bucket == "-" else bucket, key, key_raw, op,
        action_for(op, key_raw is not None, uri) if op else None, requester,
        None if ip == "-" else ip, None if reqid == "-" else reqid, http_status,
        None if err == "-" else err, _num(sent, "bytes_sent"), _num(size, "object_size"),
        _num(total, "total_time"), _num(turn, "turn_around_time"), ref, None if ua == "-" else ua,
        uri, None if v == "-" else v,
        *[None if f == "-" else f for f in tail[1:10]],
        None if owner == "-" else owner, tail[10:],
        account_id, ptype, pname, session, log_object, log_line, epoch, line, offset, None,
    ))


def parse_line_pure(line: str, log_object: str = "-", log_line: int = 0, offset: int = -1,
                    redact: bool = True) -> Event:
    """Parse one access-log line into an :class:`Event`; raise :class:`MalformedError` if it is not one."""
    line = line.rstrip()
    parts = line.split('"')
    if len(parts) == 7 and parts[4] == " ":
        h = parts[0].split(" ")
        m = parts[2].split(" ")
        t = parts[6]
        if len(h) == 10 and len(m) == 8 and h[9] == "" and m[0] == "" and m[7] == "" \
                and h[2][:1] == "[" and h[3][-1:] == "]" and (not t or t[0] == " "):
            return _build(h[0], h[1], h[2][1:] + " " + h[3][:-1], h[4], h[5], h[6], h[7], h[8],
                          parts[1], m[1], m[2], m[3], m[4], m[5], m[6], parts[3], parts[5],
                          t[1:].split(" ") if t else [], line, log_object, log_line, offset, redact)
    return _parse_slow(line, log_object, log_line, offset, redact)


def _split_ref_ua(rest: str) -> tuple[str, str, str]:
    """Split ``REFERRER USER_AGENT TAIL`` where either may be quoted (with stray quotes inside) or bare."""
    if rest.startswith('"'):
        last = rest.rfind('"')
        sep = rest.find('" "', 1)
        if 0 < sep < last:
            return rest[1:sep], rest[sep + 3:last], rest[last + 1:]
        if last > 0:  # quoted referrer, bare user agent
            ref, after = rest[1:last], rest[last + 1:]
            ua, _, tail = after.strip(" ").partition(" ")
            return ref, ua or "-", " " + tail
        raise MalformedError("unterminated referrer")
    ref, _, after = rest.partition(" ")
    if after.startswith('"'):
        last = after.rfind('"')
        if last > 0:
            return ref, after[1:last], after[last + 1:]
        raise MalformedError("unterminated user agent")
    ua, _, tail = after.partition(" ")
    return ref, ua or "-", " " + tail


def _undash(value: str) -> str:
    return "-" if value == '"-"' else value


def _parse_slow(line: str, log_object: str, log_line: int, offset: int, redact: bool) -> Event:
    head = _HEAD_RE.match(line)
    if head is None:
        n = len(line.split(" "))
        raise MalformedError(f"only {n} fields, expected at least 18" if n < 18 else "bad record start")
    owner, bucket, stamp, ip, requester, reqid, op, key_raw, rest = map(_undash_opt, head.groups())
    mid = _URI_RE.match(rest)
    if mid is None:
        raise MalformedError("cannot find the request URI and status fields")
    uri = mid.group(1) if mid.group(1) is not None else mid.group(2)
    status, err, sent, size, total, turn, rest = map(_undash_opt, mid.groups()[2:])
    if rest is None:
        raise MalformedError("16 fields, expected at least 18 (no referrer or user agent)")
    ref, ua, tail = _split_ref_ua(rest)
    tail = tail.strip(" ")
    return _build(owner, bucket, stamp, ip, requester, reqid, op, key_raw, _undash(uri), status, err,
                  sent, size, total, turn, _undash(ref), _undash(ua),
                  [_undash(t) for t in tail.split(" ")] if tail else [], line, log_object,
                  log_line, offset, redact)


def _undash_opt(value: str | None) -> str | None:
    return "-" if value == '"-"' else value


# Operations whose action_for() answer depends on the request URI (the C fast path asks action_for
# every time for these and caches the answer per (operation, has_key) for all others).
_URI_DEPENDENT_OPS = frozenset(("REST.GET.BUCKET",))


def _load_speedups():
    """The C extension (``s3tail.core._speedups``), configured; None when it is not built or
    ``S3TAIL_PURE_PYTHON`` is set (to anything but ``0``)."""
    if os.environ.get("S3TAIL_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        from . import _speedups
        _speedups.configure(Event, len(Event._fields), SOURCE, _time_cache, _ok_ops, identity._cache,
                            decode_requester, action_for, _URI_DEPENDENT_OPS, unquote, unquote_plus,
                            redact_uri, parse_line_pure)
    except (ImportError, TypeError, AttributeError):
        return None
    return _speedups


speedups = _load_speedups()
SPEEDUPS = speedups is not None

if speedups is None:
    parse_line = parse_line_pure
else:
    # Same signature and results as parse_line_pure: the common line shapes are read in C; for anything
    # else (and every malformed line) the C code calls parse_line_pure itself.
    parse_line = speedups.parse
