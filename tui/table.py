"""The Requests table: a Line-API ``ScrollView`` over the event store's current view.

The widget never holds rows. It holds a *view* (``None`` for "every row", or an ``np.ndarray`` of
store positions for a filter) and asks the store for the cells of the lines on screen, so a frame
costs the visible rows only, at 1,000,000 rows as at 10. Every log string is drawn through
:func:`s3tail.core.safe.visible` into plain ``Segment`` text (never markup).

:class:`TableModel` is the Textual-free part (store + view + incremental filtering);
:meth:`RequestsTable.apply_batch` is the only thing the UI thread does per ingest batch.
"""
from __future__ import annotations

import time
from typing import Any

import humanize
import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from s3tail.core.safe import visible

from .backend import FACET_FIELDS

# (cell index in row_cells, header, width or 0 for flex, right-aligned)
TIME, BUCKET, WHO, ACTION, KEY, STATUS, BYTES, IP = range(8)
_COLUMNS = {
    TIME: ("time", 8, False), BUCKET: ("bucket", 16, False), WHO: ("who", 16, False),
    ACTION: ("action", 14, False), STATUS: ("st", 3, True), BYTES: ("bytes", 9, True),
    IP: ("ip", 15, False), KEY: ("key", 0, False),
}
_OPTIONAL = ((BUCKET, 30), (BYTES, 30), (IP, 30))  # added left to right while key keeps N cells
_ORDER = (TIME, BUCKET, WHO, ACTION, STATUS, BYTES, IP, KEY)


def layout_columns(width: int) -> list[tuple[int, int]]:
    """``[(cell index, width)]`` for a table ``width`` cells wide: time, who, action, status and the
    key always; bucket, bytes and ip only while the key keeps room (80 columns: essentials only)."""
    chosen = {TIME, WHO, ACTION, STATUS, KEY}
    fixed = sum(_COLUMNS[c][1] + 1 for c in chosen if c != KEY)
    for col, key_min in _OPTIONAL:
        extra = _COLUMNS[col][1] + 1
        if width - fixed - extra >= key_min:
            chosen.add(col)
            fixed += extra
    return [(c, _COLUMNS[c][1] or max(8, width - fixed)) for c in _ORDER if c in chosen]


def fit(text: str, width: int, right: bool = False) -> str:
    if len(text) > width:
        return text[: max(0, width - 1)] + "…"
    return text.rjust(width) if right else text.ljust(width)


def format_cell(col: int, value: Any) -> str:
    if value is None:
        return "-"
    if col == TIME:
        s = str(value)
        return s[11:19] if len(s) >= 19 else s
    if col == BYTES:
        return humanize.naturalsize(value, gnu=True) if isinstance(value, (int, float)) else visible(value)
    return visible(value)


class TableModel:
    """The store plus the current view, no Textual.

    The store keeps its rows in event-time order (a *position* is a row's rank in time), so the
    unfiltered view is simply positions ``0 .. len(store) - 1`` and a filtered view is an ascending
    array of positions. Per batch the model costs O(batch): the filter runs over the new rows only.
    Only when positions move (rows arriving late, or the oldest evicted at ``max_rows``) does a
    filtered view shift or get recomputed (one vectorised pass).
    """

    def __init__(self, store: Any) -> None:
        self.store = store  # a backend.SharedStore
        self.rows: np.ndarray | None = None  # None: every row; else positions, ascending
        self.filter: Any = None
        self.label = ""  # "status:403" or "finding s3.mass_delete"
        self.refs: set | None = None  # a fixed set of rows (a finding's evidence)
        self.version = 0  # bumped whenever the view changes
        self.newest = -np.inf  # the newest event time seen
        self.late = 0  # rows that arrived older than the newest seen, so far
        self.synced = store.version  # the store version the view reflects
        self.length = len(store)
        self.evicted = getattr(store, "evicted", 0)

    def __len__(self) -> int:
        return self.length if self.rows is None else len(self.rows)

    @property
    def filtered(self) -> bool:
        return self.rows is not None

    @property
    def view(self) -> np.ndarray:
        """Store positions of the view, in event-time order."""
        return np.arange(self.length, dtype=np.int64) if self.rows is None else self.rows

    def position(self, row: int) -> int:
        return row if self.rows is None else int(self.rows[row])

    def apply(self, done: Any, cursor: int = -1) -> tuple[int, int]:
        """Apply one append the ingest thread made (a ``backend.Appended``). Returns ``(gained,
        shift)``: rows the view gained, and how far view row ``cursor`` moved (late rows landing
        before it, minus evicted rows). O(batch), except a filtered view after positions moved."""
        if done.version <= self.synced:
            return 0, 0  # already in the view (a catch-up included it)
        ts = done.ts
        late = ts < self.newest
        n_late = int(np.count_nonzero(late))
        self.late += n_late
        if len(ts) and not np.isnan(ts).all():
            self.newest = max(self.newest, float(np.nanmax(ts)))
        with self.store.lock:
            anchor = self.store.get(self.position(cursor)).ts if 0 <= cursor < len(self) else None
            self.version += 1
            if self.store.version != done.version or done.version != self.synced + 1:
                return self._catch_up()
            evicted, self.evicted = done.evicted - self.evicted, done.evicted
            old_length, self.length = self.length, done.length
            self.synced = done.version
            new = done.positions
            if new is None and not n_late:  # only eviction moved positions: new rows are the newest
                kept = min(len(ts), done.length)
                new = np.arange(done.length - kept, done.length, dtype=np.int64)
            if self.rows is None:
                shift = int(np.count_nonzero(ts < anchor)) - evicted if anchor is not None else 0
                return done.length - old_length + evicted, shift
            old = len(self.rows)
            view_evicted = int(np.searchsorted(self.rows, evicted)) if evicted else 0
            if new is not None and self.refs is None:
                rows = self.rows[view_evicted:] - evicted if evicted else self.rows
                add = np.asarray(self.store.filter_rows(self.filter, new), dtype=np.int64)
                self.rows = np.concatenate((rows, add)) if len(add) else rows
                return len(add), -view_evicted
            self.rows = self._compute()  # positions moved under late rows: one vectorised pass
        shift = -view_evicted
        if anchor is not None and self.refs is None and n_late:
            late_rows = np.flatnonzero(late & (ts < anchor))
            if len(late_rows):
                events = done.events
                shift += sum(1 for i in late_rows.tolist() if self.filter.matches(events[i]))
        return len(self.rows) - old + view_evicted, shift

    def _catch_up(self) -> tuple[int, int]:
        """The store moved on since this append (the UI fell behind): recompute from the store as it
        is now (caller holds the lock)."""
        old = len(self)
        self.synced, self.length = self.store.version, len(self.store)
        self.evicted = getattr(self.store, "evicted", 0)
        if self.rows is not None:
            self.rows = self._compute()
        return max(0, len(self) - old), 0

    def _compute(self) -> np.ndarray:
        if self.refs is not None:
            return np.asarray(self.store.rows_for_refs(self.refs), dtype=np.int64)
        return np.asarray(self.store.filter(self.filter), dtype=np.int64)

    def facets(self, top: int = 8) -> dict[str, list[tuple[Any, int]]]:
        """Top values and counts per facet field: the store's live counters, or a recount over a
        filtered view (one ``bincount`` per field)."""
        return self.store.facets(rows=self.rows, fields=FACET_FIELDS, top=top)

    def set_filter(self, flt: Any, label: str) -> None:
        if flt is None:
            self.clear()
            return
        self.filter, self.refs, self.label = flt, None, label
        self._recompute()

    def set_refs(self, refs: set, label: str) -> None:
        """Show a fixed set of rows by ``(log_object, log_line)``: new rows do not join it."""
        self.filter, self.refs, self.label = None, set(refs), label
        self._recompute()

    def clear(self) -> None:
        self.rows, self.filter, self.refs, self.label = None, None, None, ""
        self._recompute()

    def _recompute(self) -> None:
        with self.store.lock:
            self.rows = None
            self._catch_up()
            if self.filter is not None or self.refs is not None:
                self.rows = self._compute()
        self.version += 1


def cursor_bindings(prefix: str, end_label: str = "Last row") -> list[Binding]:
    """The cursor keys of a :class:`CursorRows` widget, with binding ids ``{prefix}.up`` and so on."""
    return [
        Binding("up", "cursor(-1)", "Up", show=False, id=f"{prefix}.up"),
        Binding("down", "cursor(1)", "Down", show=False, id=f"{prefix}.down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id=f"{prefix}.page_up"),
        Binding("pagedown", "page(1)", "Page down", show=False, id=f"{prefix}.page_down"),
        Binding("home", "home", "First row", show=False, id=f"{prefix}.home"),
        Binding("end", "end", end_label, show=False, id=f"{prefix}.end"),
    ]


class CursorRows:
    """Cursor keys of a Line-API ``ScrollView`` whose line 0 is a header: ``cursor`` (a row index),
    ``row_count`` and ``visible_rows`` come from the widget; ``_cursor_moved`` is its hook."""

    cursor: int

    def move_cursor(self, row: int) -> None:
        n = self.row_count  # type: ignore[attr-defined]
        old = self.cursor
        self.cursor = max(0, min(row, n - 1)) if n else 0
        self._cursor_moved()
        self._scroll_cursor_visible()
        if old != self.cursor:
            self.refresh()  # type: ignore[attr-defined]

    def _cursor_moved(self) -> None:
        pass

    def _scroll_cursor_visible(self) -> None:
        top = int(self.scroll_offset.y)  # type: ignore[attr-defined]
        height = self.visible_rows  # type: ignore[attr-defined]
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True, force=True)  # type: ignore[attr-defined]
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True,  # type: ignore[attr-defined]
                           force=True)

    def action_cursor(self, delta: int) -> None:
        self.move_cursor(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self.move_cursor(self.cursor + direction * self.visible_rows)  # type: ignore[attr-defined]

    def action_home(self) -> None:
        self.move_cursor(0)

    def action_end(self) -> None:
        self.move_cursor(self.row_count - 1)  # type: ignore[attr-defined]


class RequestsTable(CursorRows, ScrollView, can_focus=True):
    """Line-API table of requests; line 0 is the (fixed) header."""

    BINDINGS = [*cursor_bindings("table", "Newest row"), Binding("enter", "open", "Detail", id="table.open")]
    COMPONENT_CLASSES = {
        "requests-table--header", "requests-table--cursor", "requests-table--marker",
        "requests-table--2xx", "requests-table--3xx", "requests-table--4xx", "requests-table--5xx",
        "requests-table--anonymous",
    }
    DEFAULT_CSS = """
    RequestsTable { height: 1fr; overflow-x: hidden; scrollbar-size-vertical: 1; }
    RequestsTable > .requests-table--header { text-style: bold reverse; }
    RequestsTable > .requests-table--cursor { background: $accent 60%; text-style: bold; }
    RequestsTable:focus > .requests-table--cursor { background: $accent; }
    RequestsTable > .requests-table--marker { background: $warning; color: $text; text-style: bold; }
    RequestsTable > .requests-table--2xx { color: $success; }
    RequestsTable > .requests-table--3xx { color: $secondary; }
    RequestsTable > .requests-table--4xx { color: $warning; text-style: bold; }
    RequestsTable > .requests-table--5xx { color: $error; text-style: bold reverse; }
    RequestsTable > .requests-table--anonymous { text-style: italic underline; }
    """

    class RowChosen(Message):
        def __init__(self, position: int) -> None:
            self.position = position
            super().__init__()

    class FollowChanged(Message):
        def __init__(self, follow: bool) -> None:
            self.follow = follow
            super().__init__()

    def __init__(self, store: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = TableModel(store)
        self.cursor = 0
        self.follow = True
        self.new_rows = 0
        self._columns: tuple[tuple[int, int], ...] = tuple(layout_columns(80))
        self._width = 0
        self.apply_seconds = 0.0  # time spent in the last apply_batch (UI thread)
        # rendered rows: (position, is cursor, columns, store layout, styles) -> Strip. A store position
        # shows the same event until the store's layout changes (late rows, eviction), so a frame
        # after a tab switch or a scroll back re-renders nothing it drew before. A few screens' worth:
        # each cached Strip is some twenty objects the cycle collector walks until they are evicted.
        self._strips: LRUCache[tuple, Strip] = LRUCache(256)
        self._styles: dict[str, Style] | None = None
        self._prefetched: dict[int, tuple] = {}

    # --- data --------------------------------------------------------------------------------
    @property
    def row_count(self) -> int:
        return len(self.model)

    def apply_batch(self, events: list) -> int:
        """Append ``events`` to the store here and apply them (tests; the app appends in its ingest
        thread and calls :meth:`apply_appended`)."""
        return self.apply_appended(self.model.store.append(events))

    def apply_appended(self, done: Any) -> int:
        """The UI thread's work per ingest batch: place the new rows, resize, follow. Timed."""
        t0 = time.perf_counter()
        gained, shift = self.model.apply(done, -1 if self.follow else self.cursor)
        self._sync_size()
        if self.follow:
            if gained:
                self.cursor = self.row_count - 1
                self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True, force=True)
                self.refresh()
        elif gained or shift:
            self.new_rows += max(0, gained)
            if shift:  # keep the cursor (and the screen) on the rows the user was reading
                self.cursor = max(0, min(self.cursor + shift, self.row_count - 1))
                self.scroll_to(y=max(0, self.scroll_offset.y + shift), animate=False, immediate=True, force=True)
            self.refresh()
        self.apply_seconds = time.perf_counter() - t0
        return gained

    def set_filter(self, flt: Any, label: str) -> None:
        self.model.set_filter(flt, label)
        self._reset_view()

    def set_refs(self, refs: set, label: str) -> None:
        self.model.set_refs(refs, label)
        self._reset_view()

    def clear_filter(self) -> None:
        self.model.clear()
        self._reset_view()

    def _reset_view(self) -> None:
        self.new_rows = 0
        self._sync_size()
        self.cursor = max(0, self.row_count - 1) if self.follow else 0
        self._scroll_cursor_visible()
        self.refresh()

    def selected_position(self) -> int | None:
        if not self.row_count:
            return None
        return self.model.position(min(self.cursor, self.row_count - 1))

    def _sync_size(self) -> None:
        size = Size(self._width or self.size.width, self.row_count + 1)
        old = self.virtual_size
        if size == old:
            return
        height = self.container_size.height
        if (self.is_mounted and size.width == old.width and self.show_vertical_scrollbar
                and old.height > height and size.height > height):
            # Rows added while the scrollbar stays: no screen layout (a full reflow and repaint,
            # 4 times a second while events stream in), just the scrollbar and this widget.
            self.set_reactive(RequestsTable.virtual_size, size)
            self._scroll_update(size)
            self.refresh()
            return
        self.virtual_size = size

    # --- follow ------------------------------------------------------------------------------
    def set_follow(self, follow: bool) -> None:
        if follow == self.follow:
            return
        self.follow = follow
        if follow:
            self.new_rows = 0
            self.cursor = max(0, self.row_count - 1)
            self._scroll_cursor_visible()
        self.refresh()
        self.post_message(self.FollowChanged(follow))

    # --- rendering ---------------------------------------------------------------------------
    def on_resize(self) -> None:
        self._width = self.scrollable_content_region.width or self.size.width
        self._columns = tuple(layout_columns(self._width))
        self._sync_size()
        self._scroll_cursor_visible()

    @property
    def visible_rows(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def header_text(self) -> str:
        parts = [fit(_COLUMNS[c][0], w, _COLUMNS[c][2]) for c, w in self._columns]
        return " ".join(parts)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = None
        self._strips.clear()

    def _style(self, name: str) -> Style:
        """This widget's style (``""``) or a component class's, cached until styles change."""
        if self._styles is None:
            self._styles = {}
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = (self.rich_style if not name
                                          else self.get_component_rich_style(f"requests-table--{name}"))
        return style

    def render_lines(self, crop: Any) -> list[Strip]:
        """Fetch the cells of every row in ``crop`` that is not cached, in one store call, then render."""
        top = int(self.scroll_offset.y) - 1
        rows = [top + y for y in range(crop.y, crop.bottom) if 0 <= top + y < self.row_count]
        if rows:
            width = self._width or self.size.width
            need = [p for p, key in (self._strip_key(r, width) for r in rows) if key not in self._strips]
            if len(need) > 1:
                self._prefetched = dict(zip(need, self.model.store.rows_cells(need)))
        try:
            return super().render_lines(crop)
        finally:
            self._prefetched = {}

    def render_line(self, y: int) -> Strip:
        width = self._width or self.size.width
        if y == 0:
            return self._header_strip(width)
        row = int(self.scroll_offset.y) + y - 1
        if row >= self.row_count:
            return Strip.blank(width, self.rich_style)  # a style: NO_COLOR's monochrome filter needs one
        return self._row_strip(row, width)

    def _header_strip(self, width: int) -> Strip:
        style = self.get_component_rich_style("requests-table--header")
        segments = [Segment(self.header_text(), style)]
        strip = Strip(segments).extend_cell_length(width, style).crop(0, width)
        if self.new_rows and not self.follow:
            note = f" ▼ {self.new_rows:,} new (f: follow) "
            marker = Strip([Segment(note, self.get_component_rich_style("requests-table--marker"))])
            keep = max(0, width - len(note))
            strip = Strip.join([strip.crop(0, keep), marker]).crop(0, width)
        return strip

    def _strip_key(self, row: int, width: int) -> tuple[int, tuple]:
        """(store position, cache key) of a view row."""
        pos = self.model.position(row)
        store = self.model.store
        return pos, (pos, row == self.cursor, self._columns, store.layout, getattr(store, "evicted", 0), width)

    def _row_strip(self, row: int, width: int) -> Strip:
        pos, key = self._strip_key(row, width)
        strip = self._strips.get(key)
        if strip is None:
            cells = self._prefetched.get(pos)
            if cells is None:
                cells = self.model.store.row_cells(pos)
            strip = self._strips[key] = self._make_strip(cells, row == self.cursor, width)
        return strip

    def _make_strip(self, cells: tuple, is_cursor: bool, width: int) -> Strip:
        base = self._style("")
        if is_cursor:
            base = base + self._style("cursor")
        segments: list[Segment] = []
        for i, (col, w) in enumerate(self._columns):
            value = cells[col]
            text = fit(format_cell(col, value), w, _COLUMNS[col][2])
            style = base
            if col == STATUS and isinstance(value, int):
                klass = value // 100
                if 2 <= klass <= 5:
                    style = base + self._style(f"{klass}xx")
            elif col == WHO and value == "anonymous":
                style = base + self._style("anonymous")
            if i:
                segments.append(Segment(" ", base))
            segments.append(Segment(text, style))
        return Strip(segments).extend_cell_length(width, base).crop(0, width)

    def visible_text(self) -> list[str]:
        """The plain text of the header and the rows on screen (tests, the e2e check)."""
        out = [self.header_text()]
        top = int(self.scroll_offset.y)
        for row in range(top, min(self.row_count, top + self.visible_rows)):
            out.append("".join(seg.text for seg in self._row_strip(row, self._width or 80)))
        return out

    # --- cursor ------------------------------------------------------------------------------
    def _cursor_moved(self) -> None:
        at_end = self.cursor >= self.row_count - 1
        if self.follow and not at_end:
            self.set_follow(False)
        elif at_end and not self.follow and self.new_rows:
            self.new_rows = 0

    def action_open(self) -> None:
        pos = self.selected_position()
        if pos is not None:
            self.post_message(self.RowChosen(pos))
