"""The Findings tab's model, kept up to date off the UI thread (no Textual here).

A busy bucket can raise a hundred thousand findings (one ``s3.anonymous_access`` per bucket and visitor
IP of a website bucket). The tab groups them by severity and rule; each group shows its total count
and last seen, then its most recent :data:`MAX_MEMBERS` findings and a line saying how many more there
are (enter on the group row shows the evidence of all of them). :class:`FindingsIndex` is updated
with the findings each batch created or updated (``RuleEngine.process_batch``/``process_columns``
return them), in the ingest thread, so the UI thread only draws a few hundred rows.
"""
from __future__ import annotations

from bisect import insort
from itertools import count as _counter
from typing import Any, Iterable

from s3tail.core.rules.model import SEVERITIES, SEVERITY_RANK, iso

MAX_MEMBERS = 20  # findings shown per group (the most recent)


class FindingGroup:
    """All findings of one rule and severity: a header row of the Findings tab (enter on it shows
    the evidence of every finding in the group). ``findings``: a list, or ``(members, n)``: the first
    ``n`` of an append-only list another thread may still append to (read when asked)."""

    def __init__(self, rule_id: str, severity: str, findings: list[Any] | tuple[list[Any], int],
                 count: int | None = None, last_seen: str | None = None) -> None:
        self.rule_id, self.severity = rule_id, severity
        self._members, self._n = findings if isinstance(findings, tuple) else (findings, len(findings))
        self.title = self._members[0].title if self._n else ""
        self.count = sum(f.count for f in self.findings) if count is None else count
        self.last_seen = (max((str(f.last_seen or "") for f in self.findings), default="")
                          if last_seen is None else last_seen)

    @property
    def findings(self) -> list[Any]:
        return self._members[:self._n]

    @property
    def event_refs(self) -> list:
        return [r for f in self.findings for r in getattr(f, "event_refs", [])]

    def to_dict(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "severity": self.severity, "count": self.count,
                "last_seen": self.last_seen, "findings": [f.to_dict() for f in self.findings]}


class More:
    """The line under a group's shown findings: how many of its findings are not shown."""

    def __init__(self, group: FindingGroup, hidden: int) -> None:
        self.group, self.hidden = group, hidden


class _Group:
    __slots__ = ("members", "count", "last_ts", "recent", "rows")

    def __init__(self) -> None:
        self.members: list[Any] = []      # in order of arrival; append-only (a new list on a removal)
        self.count = 0
        self.last_ts: float | None = None
        self.recent: list[tuple] = []     # (recency, finding) of the most recent members, ascending
        self.rows: list[Any] | None = None  # its rows of the tab, until a member changes


# What the index keeps per finding, packed into one int (a hundred thousand findings in a busy
# hour): its place in its group's arrival order, its count and its severity rank (7: an unknown
# severity, kept in _odd).
_SEV_BITS, _COUNT_BITS = 3, 40
_COUNT_MASK = (1 << _COUNT_BITS) - 1
_SEQ_SHIFT = _SEV_BITS + _COUNT_BITS
# An index made with ``own=True`` keeps that int on the finding itself (``Finding.seen``), tagged with
# the index's token in the low bits, instead of in a dict (5 MB for 170,000 findings): only on
# findings no other index has tagged, so two indexes never share a finding's state.
_TOKEN_BITS = 20
_TOKEN_MASK = (1 << _TOKEN_BITS) - 1
_TOKENS = _counter(1)


class FindingsIndex:
    """Findings grouped by (severity, rule), updated incrementally; :meth:`rows` is the tab's content.

    Each update costs O(findings given x MAX_MEMBERS): a group's most recent findings are kept as
    they change (a finding's last time only grows, so one that left them comes back only when
    updated), not found again among all its members."""

    def __init__(self, max_members: int = MAX_MEMBERS, *, own: bool = False) -> None:
        self.max_members = max_members
        self.version = 0
        self._groups: dict[tuple[str, str], _Group] = {}
        self._where: dict[Any, int] = {}   # finding -> packed (arrival, count, severity rank), when not on it
        self._odd: dict[Any, str] = {}     # finding -> its severity, when not one of SEVERITIES
        self._seq = 0
        self._n = 0                        # findings held
        token = next(_TOKENS) if own else 0
        self._token = token if token <= _TOKEN_MASK else 0   # 0: every state in _where

    def __len__(self) -> int:
        return self._n

    def _state(self, f: Any) -> int | None:
        """The packed state of ``f`` kept by this index, or None when it is new here."""
        if self._token:
            v = getattr(f, "seen", None)
            if v is not None and v & _TOKEN_MASK == self._token:
                return v >> _TOKEN_BITS
        return self._where.get(f)

    def _put(self, f: Any, packed: int, new: bool) -> None:
        token = self._token
        if token:
            v = getattr(f, "seen", None)
            if v is None and new or v is not None and v & _TOKEN_MASK == token:
                try:
                    f.seen = (packed << _TOKEN_BITS) | token
                    return
                except AttributeError:   # no room for it on this object
                    pass
        self._where[f] = packed

    def update(self, findings: Iterable[Any]) -> bool:
        """Take in findings created or updated since the last call; whether anything changed."""
        changed = False
        groups, odd = self._groups, self._odd
        state = self._state
        for f in findings:
            sev, rid = str(f.severity), str(f.rule_id)
            key = (sev, rid)
            rank = SEVERITY_RANK.get(sev, 7)
            count = f.count
            last = getattr(f, "last_ts", None)
            old = state(f)
            if old is None:
                self._n += 1
                seq = self._seq
                self._seq += 1
                g = groups.get(key)
                if g is None:
                    g = groups[key] = _Group()
                g.members.append(f)
            else:
                seq = old >> _SEQ_SHIFT
                old_rank = old & 7
                old_sev = odd.get(f, "") if old_rank == 7 else SEVERITIES[old_rank]
                old_count = (old >> _SEV_BITS) & _COUNT_MASK
                okey = (old_sev, rid)
                g = groups[okey]
                if okey == key and old_count == count:
                    if last is not None and self._recent(g, f, (last, -seq)):   # a newer last time alone
                        if g.last_ts is None or last > g.last_ts:
                            g.last_ts = last
                        g.rows = None
                        changed = True
                    continue
                g.count -= old_count
                g.rows = None
                if okey != key:  # its severity was raised: it moves to another group, arriving now
                    g.members = [m for m in g.members if m is not f]
                    if not g.members:
                        del groups[okey]
                    else:  # what it held for the group: found again among those left (rare)
                        lasts = [getattr(m, "last_ts", None) for m in g.members]
                        g.last_ts = max((t for t in lasts if t is not None), default=None)
                        g.recent = sorted(((float("-inf") if t is None else t, -(state(m) >> _SEQ_SHIFT)), m)
                                          for t, m in zip(lasts, g.members))[-self.max_members:]
                    g = groups.get(key)
                    if g is None:
                        g = groups[key] = _Group()
                    g.members.append(f)
                    seq = self._seq
                    self._seq += 1
            if rank == 7:
                odd[f] = sev
            else:
                odd.pop(f, None)
            g.count += count
            if last is not None and (g.last_ts is None or last > g.last_ts):
                g.last_ts = last
            self._recent(g, f, (last if last is not None else float("-inf"), -seq))
            g.rows = None
            self._put(f, (seq << _SEQ_SHIFT) | (min(count, _COUNT_MASK) << _SEV_BITS) | rank, old is None)
            changed = True
        if changed:
            self.version += 1
        return changed

    def _recent(self, g: _Group, f: Any, recency: tuple) -> bool:
        """Keep ``g.recent`` the ``max_members`` most recent members (ties: the earlier arrival, as a
        stable sort of the members would); whether it changed."""
        rec = g.recent
        for i, (r, m) in enumerate(rec):
            if m is f:
                if r == recency:
                    return False
                del rec[i]
                break
        else:
            if len(rec) >= self.max_members and recency <= rec[0][0]:
                return False
        insort(rec, (recency, f), key=_first)
        if len(rec) > self.max_members:
            del rec[0]
        return True

    def rows(self) -> list[Any]:
        """In display order: per group (highest severity first, then rule id) a FindingGroup header
        when it has more than one finding, its most recent findings (oldest of them first), and a
        :class:`More` when some are not shown."""
        out: list[Any] = []
        for key in sorted(self._groups, key=lambda k: (-SEVERITY_RANK.get(k[0], 0), k[1])):
            g = self._groups[key]
            if g.rows is None:
                g.rows = self._group_rows(key, g)
            out.extend(g.rows)
        return out

    def _group_rows(self, key: tuple[str, str], g: _Group) -> list[Any]:
        n = len(g.members)
        if n == 1:
            return [g.members[0]]
        group = FindingGroup(key[1], key[0], (g.members, n), g.count,
                             iso(g.last_ts) if g.last_ts is not None else "")
        rows: list[Any] = [group, *(m for _, m in g.recent)]
        if n > len(g.recent):
            rows.append(More(group, n - len(g.recent)))
        return rows


def _first(item: tuple) -> tuple:
    return item[0]

