"""The Findings tab's model, kept up to date off the UI thread (no Textual here).

A busy bucket can raise a hundred thousand findings (one ``s3.anonymous_access`` per bucket and visitor
IP of a website bucket). The tab groups them by severity and rule; each group shows its total count
and last seen, then its most recent :data:`MAX_MEMBERS` findings and a line saying how many more there
are (enter on the group row shows the evidence of all of them). :class:`FindingsIndex` is updated
with the findings each batch created or updated (``RuleEngine.process_batch``/``process_columns``
return them), in the ingest thread, so the UI thread only draws a few hundred rows.
"""
from __future__ import annotations

import heapq
from typing import Any, Iterable

from s3tail.core.rules.model import SEVERITY_RANK, iso

MAX_MEMBERS = 20  # findings shown per group (the most recent)


class FindingGroup:
    """All findings of one rule and severity: a header row of the Findings tab (enter on it shows
    the evidence of every finding in the group)."""

    def __init__(self, rule_id: str, severity: str, findings: list[Any], count: int | None = None,
                 last_seen: str | None = None) -> None:
        self.rule_id, self.severity, self.findings = rule_id, severity, findings
        self.title = findings[0].title if findings else ""
        self.count = sum(f.count for f in findings) if count is None else count
        self.last_seen = (max((str(f.last_seen or "") for f in findings), default="")
                          if last_seen is None else last_seen)

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
    __slots__ = ("members", "count", "last_ts", "rows")

    def __init__(self) -> None:
        self.members: dict[Any, None] = {}
        self.count = 0
        self.last_ts: float | None = None
        self.rows: list[Any] | None = None  # its rows of the tab, until a member changes


class FindingsIndex:
    """Findings grouped by (severity, rule), updated incrementally; :meth:`rows` is the tab's content."""

    def __init__(self, max_members: int = MAX_MEMBERS) -> None:
        self.max_members = max_members
        self.version = 0
        self._groups: dict[tuple[str, str], _Group] = {}
        self._where: dict[Any, tuple[tuple[str, str], int, Any]] = {}  # finding -> (group key, count, last_ts)

    def __len__(self) -> int:
        return len(self._where)

    def update(self, findings: Iterable[Any]) -> bool:
        """Take in findings created or updated since the last call; whether anything changed."""
        changed = False
        where, groups = self._where, self._groups
        for f in findings:
            key = (str(f.severity), str(f.rule_id))
            last = getattr(f, "last_ts", None)
            old = where.get(f)
            if old is not None:
                if old[0] == key and old[1] == f.count and old[2] == last:
                    continue
                g = groups[old[0]]
                g.count -= old[1]
                g.rows = None
                if old[0] != key:  # its severity was raised: it moves to another group
                    del g.members[f]
                    if not g.members:
                        del groups[old[0]]
            g = groups.get(key)
            if g is None:
                g = groups[key] = _Group()
            g.members[f] = None
            g.rows = None
            g.count += f.count
            if last is not None and (g.last_ts is None or last > g.last_ts):
                g.last_ts = last
            where[f] = (key, f.count, last)
            changed = True
        if changed:
            self.version += 1
        return changed

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
        members = list(g.members)
        if len(members) == 1:
            return members
        group = FindingGroup(key[1], key[0], members, g.count, iso(g.last_ts) if g.last_ts is not None else "")
        shown = heapq.nlargest(self.max_members, members, key=_recency)
        shown.reverse()
        rows: list[Any] = [group, *shown]
        if len(members) > len(shown):
            rows.append(More(group, len(members) - len(shown)))
        return rows


def _recency(f: Any) -> tuple:
    last = getattr(f, "last_ts", None)
    return (last if last is not None else float("-inf"), str(f.rule_id))
