"""Panels around the Requests table: facets, findings, posture, stats, the status bar.

Every string that comes from a log goes through ``visible()`` into a ``rich.text.Text`` (never a
markup string), so a key named ``[bold]x[/]`` or containing ESC shows as typed.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

import humanize
import numpy as np
from rich.segment import Segment
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.containers import Vertical, VerticalScroll
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import DataTable, OptionList, Sparkline, Static
from textual.widgets.option_list import Option

from s3tail.core.safe import visible

from .backend import FACET_FIELDS
from .findings import MAX_MEMBERS, FindingGroup, FindingsIndex, More
from .table import CursorRows, cursor_bindings, fit

SEVERITY_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1, "info": 0}
FACET_LABELS = {"bucket": "bucket", "requester": "requester", "http_status": "status",
                "action": "action", "remote_ip": "ip", "error_code": "error code",
                "tls_version": "TLS version", "signature_version": "signature"}


def t(value: Any) -> Text:
    """A log value as plain, escaped text."""
    return Text(visible(value))


def cut(text: str, width: int, tail: bool = False) -> str:
    """``text`` in at most ``width`` cells: its head and ``…``, or (``tail``) ``…`` and its end, which
    is where an ARN names the user, role or session."""
    if len(text) <= width:
        return text
    return "…" + text[-(width - 1):] if tail else text[: width - 1] + "…"


def short_actor(requester: Any, remote_ip: Any) -> str:
    """``alice`` for ``arn:aws:iam::1:user/alice``; ``anonymous 203.0.113.9`` without a requester."""
    if not requester:
        return f"anonymous {remote_ip}" if remote_ip else "anonymous"
    return str(requester).rsplit("/", 1)[-1] if str(requester).startswith("arn:") else str(requester)


def short_time(iso: Any) -> str:
    """``11-23 15:36:52`` from ``2026-11-23T15:36:52Z``."""
    s = str(iso or "-")
    return f"{s[5:10]} {s[11:19]}" if len(s) >= 19 and s[10] == "T" else s


class StatusBar(Static):
    """One line: follow, counts, filter, rate, then each source's state (the part cut first at 80
    columns is the end of the source descriptions)."""

    DEFAULT_CSS = "StatusBar { height: 1; background: $panel; color: $text; padding: 0 1; }"

    def show(self, *, states: dict[str, str], events: int, view: int, malformed: int, findings: int,
             rate: float, follow: bool, label: str) -> None:
        parts = ["FOLLOW" if follow else "PAUSED", f"{events:,} ev"]
        if label:
            parts.append(f"view {view:,} [{visible(label)}]")
        parts += [f"{malformed:,} malformed (m)" if malformed else "0 malformed",
                  f"{findings:,} findings", f"{rate:,.0f}/s",
                  "  ".join(visible(state) for state in states.values()) or "no source"]
        text = Text(" │ ".join(parts), no_wrap=True, overflow="ellipsis")
        if text.plain != self._status_text:
            self._status_text = text.plain
            self.update(text, layout=False)  # one line, always: no screen layout per batch

    _status_text = ""


class KeyHints(Static):
    """The bottom line: the main keys as remapped (a static line: no re-layout on focus changes)."""

    DEFAULT_CSS = "KeyHints { height: 1; background: $panel; color: $text-muted; padding: 0 1; }"
    HINTS = (("tab.", "tabs"), ("filter", "filter"), ("table.open", "detail"), ("follow", "follow"),
             ("facets", "facets"), ("export", "export"), ("copy", "copy"), ("malformed", "bad lines"),
             ("help", "keys"), ("command_palette", "palette"), ("quit", "quit"))

    def show(self, keys: dict[str, str]) -> None:
        """``keys``: binding id -> the key shown for it."""
        text = Text(no_wrap=True, overflow="ellipsis")
        for bid, label in self.HINTS:
            if bid == "tab.":
                tabs = [keys.get(f"tab.{n}", "") for n in ("requests", "findings", "posture", "stats")]
                key = "1-4" if tabs == ["1", "2", "3", "4"] else "/".join(tabs)
            else:
                key = keys.get(bid, "")
            if key:
                text.append(key, style="bold")
                text.append(f" {label}  ")
        self.update(text)


class FacetPanel(OptionList):
    """Top values per field; enter on a value adds ``field:value`` to the filter."""

    DEFAULT_CSS = "FacetPanel { width: 40; height: 1fr; max-height: 100%; dock: right; border-left: solid $primary; }"

    class Chosen(Message):
        def __init__(self, field: str, value: Any) -> None:
            self.field, self.value = field, value
            super().__init__()

    VALUE_WIDTH = 24  # one line per value: the count, then the value cut to fit

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._values: dict[str, tuple[str, Any]] = {}

    def show_facets(self, facets: dict[str, list[tuple[Any, int]]]) -> None:
        highlighted = self.highlighted
        self.clear_options()
        self._values.clear()
        options: list[Option | None] = []
        for field in FACET_FIELDS:
            rows = facets.get(field) or []
            options.append(Option(Text(FACET_LABELS.get(field, field), style="bold underline"),
                                  disabled=True))
            for i, (value, count) in enumerate(rows):
                oid = f"{field}:{i}"
                self._values[oid] = (field, value)
                label = Text(f"{count:>7,} ", no_wrap=True, overflow="ellipsis")
                shown = ("(anonymous)" if field == "requester" else "(none)") if value is None else visible(value)
                label.append(cut(shown, self.VALUE_WIDTH, tail=field == "requester"))
                options.append(Option(label, id=oid))
        self.add_options([o for o in options if o is not None])
        if highlighted is not None and highlighted < self.option_count:
            self.highlighted = highlighted

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        hit = self._values.get(event.option.id or "")
        if hit:
            self.post_message(self.Chosen(*hit))


class FindingsView(CursorRows, ScrollView, can_focus=True):
    """Findings grouped by severity and rule (a header row per group with its total count and last
    seen, its newest findings, a "more" line), drawn with the Line API: a frame costs the rows on
    screen, and new rows cost nothing until shown. Enter shows the evidence in the Requests tab."""

    BINDINGS = [*cursor_bindings("findings"), Binding("enter", "evidence", "Evidence", id="findings.evidence")]
    COMPONENT_CLASSES = {"findings-view--header", "findings-view--cursor", "findings-view--group"}
    DEFAULT_CSS = """
    FindingsView { height: 1fr; overflow-x: hidden; scrollbar-size-vertical: 1; }
    FindingsView > .findings-view--header { text-style: bold reverse; }
    FindingsView > .findings-view--cursor { background: $accent 60%; }
    FindingsView:focus > .findings-view--cursor { background: $accent; }
    FindingsView > .findings-view--group { text-style: bold; }
    """
    # (header, widest; 0 = the rest): each column is as wide as its widest cell, up to that
    COLUMNS = (("sev", 8), ("rule", 28), ("count", 10), ("last seen", 14), ("who", 30), ("bucket", 24), ("title", 0))

    class Chosen(Message):
        def __init__(self, finding: Any) -> None:
            self.finding = finding
            super().__init__()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._rows: list[Any] = []   # a FindingGroup, a finding or a More per line
        self._shown: Any = ()
        self.cursor = 0
        self._cells: LRUCache[int, list[str]] = LRUCache(4096)   # per row index, until rows change
        self._widths = [len(h) for h, _ in self.COLUMNS[:-1]] + [0]
        self._styles: dict[str, Any] = {}

    @property
    def row_count(self) -> int:
        return len(self._rows)

    @property
    def cursor_row(self) -> int:
        return self.cursor

    @property
    def visible_rows(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def show_findings(self, findings: list[Any]) -> None:
        """Show these findings (grouped here; the app passes rows made off the UI thread to
        :meth:`show_rows`)."""
        index = FindingsIndex()
        index.update(findings)
        self.show_rows(index.rows(), ("all", tuple((id(f), f.count, f.severity, f.last_seen) for f in findings)))

    def show_rows(self, rows: list[Any], version: Any) -> None:
        """Show ``FindingsIndex.rows()``; nothing to do when ``version`` is the one shown."""
        if version == self._shown:
            return
        self._shown = version
        self._rows = list(rows)
        self._cells.clear()
        widths = [len(h) for h, _ in self.COLUMNS]
        for i in range(len(self._rows)):
            for k, cell in enumerate(self._row_cells(i)):
                widths[k] = max(widths[k], len(cell))
        self._widths = [min(w, cap) if cap else 0 for w, (_, cap) in zip(widths, self.COLUMNS)]
        self.cursor = min(self.cursor, max(0, len(self._rows) - 1))
        self.virtual_size = Size(self.size.width, len(self._rows) + 1)
        self._scroll_cursor_visible()
        self.refresh()

    def _row_cells(self, i: int) -> list[str]:
        cells = self._cells.get(i)
        if cells is not None:
            return cells
        row = self._rows[i]
        if isinstance(row, FindingGroup):
            cells = [row.severity.upper(), visible(row.rule_id), f"{row.count:,}", short_time(row.last_seen),
                     f"{len(row.findings):,} findings", "", visible(row.title)]
        elif isinstance(row, More):
            cells = ["", "  …", "", "", f"{row.hidden:,} more", "", "enter: the evidence of the whole group"]
        else:
            prev = self._group_of(i)
            first = (["", "  └"] if prev is not None else [str(row.severity).upper(), visible(row.rule_id)])
            cells = first + [f"{row.count:,}", short_time(row.last_seen), visible(short_actor(row.requester, row.remote_ip)),
                             visible(row.bucket), visible(row.title)]
        self._cells[i] = cells
        return cells

    def _group_of(self, i: int) -> Any:
        """The group header above finding row ``i``, when the finding is one of its members."""
        row = self._rows[i]
        for j in range(i - 1, max(-1, i - MAX_MEMBERS - 2), -1):
            above = self._rows[j]
            if isinstance(above, FindingGroup):
                same = (above.rule_id, above.severity) == (str(row.rule_id), str(row.severity))
                return above if same else None
            if isinstance(above, More) or (str(above.rule_id), str(above.severity)) != (str(row.rule_id), str(row.severity)):
                return None
        return None

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = {}

    def _style(self, name: str) -> Any:
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = (self.rich_style if not name
                                          else self.get_component_rich_style(f"findings-view--{name}"))
        return style

    def _line(self, cells: list[str], width: int) -> str:
        parts = []
        used = 0
        for k, (cell, w) in enumerate(zip(cells, self._widths)):
            left = width - used - (1 if parts else 0)
            if left <= 0:
                break
            w = left if not w else min(w, left)
            parts.append(fit(cell, w, right=(k == 2)))
            used += w + (1 if len(parts) > 1 else 0)
        return " ".join(parts)[:width].ljust(width)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width or self.size.width
        if y == 0:
            text = self._line([h for h, _ in self.COLUMNS], width)
            return Strip([Segment(text, self._style("header"))])
        i = int(self.scroll_offset.y) + y - 1
        if i >= len(self._rows):
            return Strip.blank(width, self._style(""))
        style = self._style("")
        if isinstance(self._rows[i], FindingGroup) or (not isinstance(self._rows[i], More)
                                                      and self._group_of(i) is None):
            style = style + self._style("group")
        if i == self.cursor:
            style = style + self._style("cursor")
        return Strip([Segment(self._line(self._row_cells(i), width), style)])

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self._rows) + 1)

    def visible_text(self) -> list[str]:
        """The header and the rows on screen as plain text (tests)."""
        width = self.scrollable_content_region.width or self.size.width or 80
        top = int(self.scroll_offset.y)
        rows = range(top, min(len(self._rows), top + self.visible_rows))
        return [self._line([h for h, _ in self.COLUMNS], width)] + [self._line(self._row_cells(i), width) for i in rows]

    def selected(self) -> Any:
        """The finding (or FindingGroup) under the cursor (a "more" line stands for its group)."""
        if 0 <= self.cursor < len(self._rows):
            row = self._rows[self.cursor]
            return row.group if isinstance(row, More) else row
        return None

    def action_evidence(self) -> None:
        f = self.selected()
        if f is not None:
            self.post_message(self.Chosen(f))


class PostureView(Vertical):
    """Failing (and unknown) checks by severity and bucket; the highlighted one's detail below."""

    DEFAULT_CSS = """
    PostureView > DataTable { height: 1fr; }
    PostureView > #posture-detail { height: auto; max-height: 8; border-top: solid $primary; padding: 0 1; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.results: list[dict[str, Any]] = []
        self.message = "Posture: no snapshot. Use --posture-snapshot FILE, or an s3:// source."

    def compose(self):
        yield DataTable(cursor_type="row", zebra_stripes=True, id="posture-table")
        yield Static(self.message, id="posture-detail")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("sev", "status", "bucket", "check", "title")

    def show_message(self, message: str) -> None:
        self.message = message
        self.query_one("#posture-detail", Static).update(Text(message))

    def show_results(self, results: list[dict[str, Any]], origin: str) -> None:
        bad = [r for r in results if r["status"] != "pass"]
        bad.sort(key=lambda r: (r["status"] != "fail", -SEVERITY_RANK.get(r["severity"], 0),
                                str(r["bucket"] or ""), r["check_id"]))
        self.results = bad
        table = self.query_one(DataTable)
        table.clear()
        for r in bad:
            table.add_row(Text(r["severity"].upper()), Text(r["status"]), t(r["bucket"] or "(account)"),
                          t(r["check_id"]), t(r["title"]))
        passed = len(results) - len(bad)
        self.show_message(f"{origin}: {len(bad)} failing or unknown, {passed} passing. "
                          "Select a row for detail and remediation.")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if 0 <= event.cursor_row < len(self.results):
            r = self.results[event.cursor_row]
            text = Text()
            text.append(visible(r["title"]), style="bold")
            text.append(f"  [{r['severity']}, {r['status']}]\n")
            text.append(visible(r["detail"]) + "\n")
            if r.get("remediation"):
                text.append("fix: ", style="bold")
                text.append(visible(r["remediation"]))
            self.query_one("#posture-detail", Static).update(text)


def _counts(values) -> dict:
    uniq, counts = np.unique(values, return_counts=True)
    return dict(zip(uniq.tolist(), counts.tolist()))


class Stats:
    """Per-minute request/error counts and top talkers, updated per batch on the UI thread."""

    def __init__(self) -> None:
        self.per_minute: Counter = Counter()
        self.errors_per_minute: Counter = Counter()
        self.requests_by: Counter = Counter()
        self.bytes_by: Counter = Counter()

    def add(self, events: list) -> None:
        pm, em, rb, bb = self.per_minute, self.errors_per_minute, self.requests_by, self.bytes_by
        for e in events:
            minute = (e.ts or 0) // 60
            pm[minute] += 1
            if e.http_status is not None and e.http_status >= 400:
                em[minute] += 1
            who = e.actor
            rb[who] += 1
            if e.bytes_sent:
                bb[who] += e.bytes_sent

    def add_columns(self, batch) -> None:
        """:meth:`add` over a ``columns.ColumnBatch``: counted per distinct minute and actor."""
        if not batch.n:
            return
        ts = batch.ts
        minutes = (np.where(np.isnan(ts), 0, ts) // 60).astype(np.int64)
        d = batch.dicts
        status = d["request"].derived("status>=400", lambda v: v[3] is not None and v[3] >= 400)
        errors = status[batch.codes["request"]]
        self.per_minute.update(_counts(minutes))
        self.errors_per_minute.update(_counts(minutes[errors]))
        # actor: the requester, or the remote IP of an anonymous request
        anon = d["identity"].derived("anonymous", lambda v: v[0] is None)[batch.codes["identity"]]
        n_ident = len(d["identity"])
        actor = np.where(anon, n_ident + batch.codes["ip"].astype(np.int64), batch.codes["identity"])
        uniq, inverse, counts = np.unique(actor, return_inverse=True, return_counts=True)
        sent = batch.nums["bytes_sent"]
        byte_sums = np.bincount(inverse, weights=np.where(sent > 0, sent, 0), minlength=len(uniq))
        idents, ips = d["identity"].values, d["ip"].values
        for u, n, b in zip(uniq.tolist(), counts.tolist(), byte_sums.tolist()):
            who = ips[u - n_ident] if u >= n_ident else idents[u][0]
            self.requests_by[who] += n
            if b:
                self.bytes_by[who] += int(b)

    def merge(self, other: "Stats") -> None:
        """Add counts made elsewhere (the ingest thread counts each batch; the UI merges)."""
        self.per_minute.update(other.per_minute)
        self.errors_per_minute.update(other.errors_per_minute)
        self.requests_by.update(other.requests_by)
        self.bytes_by.update(other.bytes_by)

    def series(self, counter: Counter, minutes: int = 60) -> list[float]:
        if not self.per_minute:
            return [0.0]
        last = max(self.per_minute)
        return [float(counter.get(m, 0)) for m in range(last - minutes + 1, last + 1)]


class StatsView(VerticalScroll):
    DEFAULT_CSS = """
    StatsView > Sparkline { height: 3; margin: 0 1; }
    StatsView > .stats-title { margin: 0 1; height: 1; text-style: bold; }
    StatsView > #stats-top { margin: 0 1; height: %d; }
    """ % (2 + 2 * 5)  # two headings and five talkers each: the heights never change, so an update
    # (every second while the tab shows) redraws these lines and lays nothing out

    def compose(self):
        yield Static("requests per minute (last 60 min)", classes="stats-title", id="stats-req-title")
        yield Sparkline([0], id="stats-requests", summary_function=max)
        yield Static("errors (4xx/5xx) per minute", classes="stats-title", id="stats-err-title")
        yield Sparkline([0], id="stats-errors", summary_function=max)
        yield Static("", id="stats-top")

    def show_stats(self, stats: Stats) -> None:
        req, err = stats.series(stats.per_minute), stats.series(stats.errors_per_minute)
        self.query_one("#stats-requests", Sparkline).data = req
        self.query_one("#stats-errors", Sparkline).data = err
        self.query_one("#stats-req-title", Static).update(
            f"requests per minute (last 60 min) — now {req[-1]:,.0f}, peak {max(req):,.0f}", layout=False)
        self.query_one("#stats-err-title", Static).update(
            f"errors (4xx/5xx) per minute — now {err[-1]:,.0f}, peak {max(err):,.0f}", layout=False)
        text = Text(no_wrap=True, overflow="ellipsis")  # one line a talker: the height is fixed
        text.append("top talkers by requests\n", style="bold")
        for who, n in stats.requests_by.most_common(5):
            text.append(f"  {n:>9,}  ")
            text.append(visible(who) + "\n")
        text.append("top talkers by bytes sent\n", style="bold")
        for who, n in stats.bytes_by.most_common(5):
            text.append(f"  {humanize.naturalsize(n, gnu=True):>9}  ")
            text.append(visible(who) + "\n")
        self.query_one("#stats-top", Static).update(text, layout=False)
