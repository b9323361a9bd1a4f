"""The s3tail terminal app: ``s3tail [SOURCE...]`` (or ``s3tail --demo``).

Ingest runs off the UI thread in two stages: a *producer* thread reads the sources (or the demo
generator) into a bounded queue, and a *consumer* thread worker drains it, appends each batch to the
shared store (the costly part: values into columns), runs the detection rules, counts the stats and
posts one :class:`IngestBatch` message about every 250 ms. The UI thread only places the new rows in
the view (:meth:`RequestsTable.apply_appended`, O(batch)), merges counters and redraws: at most ~4
updates a second however fast events arrive.
"""
from __future__ import annotations

import argparse
import gc
import os
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.message import Message
from textual.widgets import Input, Static

from s3tail import themes
from s3tail.core.event import Event, Malformed, Skipped
from s3tail.core.safe import visible
from s3tail.core.sysmem import release_free_memory

from . import backend
from .commands import S3tailCommands
from .screens import DetailScreen, ExportScreen, HelpScreen, MalformedScreen, StartScreen
from .table import RequestsTable
from .tabs import TabBar, TabSwitcher
from .findings import FindingsIndex
from .widgets import FacetPanel, FindingsView, KeyHints, PostureView, Stats, StatsView, StatusBar

FLUSH_SECONDS = 0.25
QUIET_SECONDS = 1.0  # no new rows for this long after some: the app gives freed memory back
RATE_WINDOW = 5.0  # seconds the ingest rate is averaged over
MAX_BATCH = 50_000
RULES_ROWS = 5000   # rows per rules call (joined column batches); a key press is answered between calls
APPEND_SLICE = 2500  # events per store append (~15 ms under the store lock)
# After a key press the ingest threads step aside until the frame that answers it is composed (this
# long at most), so the key is answered at once even while thousands of events a second arrive (they
# share one interpreter lock with the UI).
INPUT_PRIORITY_SECONDS = 0.15
# The cycle collector, tuned for a UI: young collections small and frequent (a few ms each) rather
# than rare and long (100,000 objects: 100-200 ms on a busy jump host, a visible stall when one lands
# in a key press), and none while a key is being answered (see on_event).
APP_GC_THRESHOLDS = (10_000, 5, 1000)
MALFORMED_KEPT = 10_000
TRIM_ROWS, TRIM_SECONDS = 100_000, 10.0  # freed memory goes back to the system after this much ingest
POSTURE_WAIT = 10.0  # seconds the live posture waits for the first events (to learn their buckets)
POSTURE_MAX_BUCKETS = 50
FACETS_AUTO_WIDTH = 160  # the facet panel (40) beside a table with every column (~118)
DEMO_SNAPSHOT = Path(__file__).resolve().parents[1] / "core" / "data" / "demo_posture.json"
TABS = ("requests", "findings", "posture", "stats")
# facet field -> filter-language field
FACET_FILTER = {"bucket": "bucket", "requester": "requester", "http_status": "status",
                "action": "action", "remote_ip": "ip", "error_code": "error",
                "tls_version": "tls", "signature_version": "sig"}


class UsageError(Exception):
    pass


# --- messages ------------------------------------------------------------------------------------

class IngestBatch(Message):
    """Posted by the consumer thread: what arrived since the last batch."""

    def __init__(self, appended: backend.Appended | list[backend.Appended] | None, stats: Stats | None,
                 malformed: list[Malformed], skipped: int, findings: list[Any] | None, states: dict[str, str],
                 rate: float, error: str | None = None, done: bool = False,
                 findings_rows: tuple[list[Any], int] | None = None) -> None:
        super().__init__()
        # the store appends, in order (the consumer appends a batch in slices)
        self.appends: list[backend.Appended] = (appended if isinstance(appended, list)
                                                else [appended] if appended is not None else [])
        self.appended = self.appends[-1] if self.appends else None
        self.stats, self.malformed, self.skipped = stats, malformed, skipped
        self.findings, self.states, self.rate = findings, states, rate
        self.error, self.done = error, done
        self.findings_rows = findings_rows  # (FindingsIndex.rows(), its version) when findings changed


def _buckets(batch: Any) -> set:
    """The bucket names of an appended batch (a list of events or a column batch)."""
    if isinstance(batch, list):
        return {e.bucket for e in batch}
    table = batch.dicts["bucket"].values
    return {table[c] for c in set(batch.codes["bucket"].tolist())}


class PostureLoaded(Message):
    def __init__(self, results: list[dict[str, Any]] | None, origin: str, error: str | None = None) -> None:
        super().__init__()
        self.results, self.origin, self.error = results, origin, error


# --- the app -------------------------------------------------------------------------------------

class S3tailApp(App[int]):
    TITLE = "s3tail"
    CSS_PATH = str(themes.CSS_PATH)
    COMMANDS = App.COMMANDS | {S3tailCommands}
    BINDINGS = [
        Binding("1", "tab('requests')", "Requests", id="tab.requests", priority=True),
        Binding("2", "tab('findings')", "Findings", id="tab.findings", priority=True),
        Binding("3", "tab('posture')", "Posture", id="tab.posture", priority=True),
        Binding("4", "tab('stats')", "Stats", id="tab.stats", priority=True),
        Binding("slash", "filter", "Filter", id="filter", priority=True),
        Binding("escape", "escape", "Leave/clear filter", show=False, id="escape"),
        Binding("f", "toggle_follow", "Follow", id="follow"),
        Binding("t", "toggle_facets", "Facets", id="facets"),
        Binding("e", "export", "Export", id="export"),
        Binding("y", "copy", "Copy", show=False, id="copy"),
        Binding("m", "malformed", "Malformed", show=False, id="malformed"),
        Binding("question_mark", "help", "Keys", id="help"),
        Binding("q", "quit", "Quit", id="quit"),
        Binding("ctrl+p", "command_palette", "Palette", show=False, priority=True, id="command_palette"),
    ]

    def __init__(self, args: argparse.Namespace, config: dict[str, Any] | None = None,
                 snapshot_results: list[dict[str, Any]] | None = None) -> None:
        super().__init__()
        # no animations (the tab underline, smooth scrolling): over a slow SSH link every animation
        # frame is a screen update, and a tab switch should show at once. TEXTUAL_ANIMATIONS overrides.
        if "TEXTUAL_ANIMATIONS" not in os.environ:
            self.animation_level = "none"
        self.args = args
        self.config = config or {}
        self.store = backend.SharedStore(backend.EventStore(max_rows=args.max_rows))
        self.dicts = backend.Dicts()  # the value tables of every column batch of this app
        self.stats = Stats()
        self.findings: Sequence[Any] = ()  # the engine's findings so far (a view, no copy)
        self.findings_rows: tuple[list[Any], int] = ([], 0)
        self.malformed: deque[Malformed] = deque(maxlen=MALFORMED_KEPT)
        self.malformed_total = 0
        self.skipped_total = 0
        self.states: dict[str, str] = {}
        self.rate = 0.0
        self.batches = 0
        self.filter_text = ""
        self._snapshot_results = snapshot_results
        self._stop = threading.Event()
        self._has_source = bool(args.demo or args.sources)
        self._theme_short = args.theme
        self._facets_toggled = False
        self._facets_version = -1
        self._ingest_gate = threading.Event()  # cleared while an export reads the store
        self._ingest_gate.set()
        self._input_until = 0.0  # monotonic time until which ingest yields to a key press
        self._gc_paused = False  # the cycle collector is off while a key is answered
        self._gc_saved: tuple[int, ...] | None = None
        self.last_export: tuple[str, int] | None = None
        self._first_data = threading.Event()  # set by the first batch with events (posture waits)
        self._posture_buckets: list[str] = []

    # --- layout ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        bar = TabBar([(name, f"{i} {name.capitalize()}") for i, name in enumerate(TABS, 1)], "requests",
                     id="tab-bar")
        yield bar
        with TabSwitcher(initial="requests", bar=bar, id="tabs"):
            with Vertical(id="requests"):
                with Vertical(id="filter-bar"):
                    yield Input(placeholder="filter: bucket:x status:4xx -ip:10.0.0.0/8 key:*.env since:15m words",
                                id="filter-input")
                    yield Static("", id="filter-error")
                with Horizontal(id="requests-body"):
                    yield RequestsTable(self.store, id="table")
                    yield FacetPanel(id="facets")
            with Vertical(id="findings"):
                yield FindingsView(id="findings-table")
            with Vertical(id="posture"):
                yield PostureView(id="posture-view")
            with Vertical(id="stats"):
                yield StatsView(id="stats-view")
        yield StatusBar(id="status")
        yield KeyHints(id='keys')

    def q(self, selector: Any, expect_type: Any = None) -> Any:
        """``query_one`` on the main screen, also while a modal (detail, help...) is on top."""
        return self.screen_stack[0].query_one(selector, expect_type)

    # Tab keys and "/" are priority bindings: the app acts on them before it hands the next key of a
    # burst to a widget, so "/status:403" + enter arriving in one read all lands in the filter bar.
    _PRIORITY_ACTIONS = ("tab", "filter")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Priority keys are plain characters while typing (filter bar, export path, palette) or
        while a dialog is open: the key then goes on to the focused widget."""
        if action in self._PRIORITY_ACTIONS and (isinstance(self.focused, Input)
                                                 or self.screen is not self.screen_stack[0]):
            return False
        return True

    def _focus(self, widget: Any) -> None:
        """Focus now, not after the queued events: keys typed in one burst (``/status:403`` and
        enter, pasted or sent over a slow link) must reach the widget the previous key chose."""
        screen = self.screen_stack[0]
        if self.screen is screen:
            screen.set_focus(widget)
        else:
            widget.focus()

    def _alive(self) -> bool:
        """False while quitting (timers and messages may still arrive after the widgets went)."""
        return not self._stop.is_set() and not self._exit and self.is_running

    @property
    def table(self) -> RequestsTable:
        return self.q(RequestsTable)

    def on_mount(self) -> None:
        for theme in themes.ALL:
            self.register_theme(theme)
        self.set_theme_name(self._theme_short or self.config.get("tui", {}).get("theme") or themes.DEFAULT)
        keys = self.config.get("keys") or {}
        if keys:
            self.set_keymap({str(k): str(v) for k, v in keys.items()})
        self.q(KeyHints).show({bid: key for key, _, bid in self.binding_rows()})
        self.q("#filter-bar").display = False
        self.q("#filter-error").display = False
        self._auto_facets()
        self._focus(self.table)
        self.set_interval(1.0, self._tick)
        # The widgets and modules loaded so far live as long as the app: keep them out of the cycle
        # collector's full scans, which otherwise grow with everything the app has built.
        self.call_after_refresh(gc.freeze)
        self._gc_saved = gc.get_threshold()
        gc.set_threshold(*APP_GC_THRESHOLDS)
        if not self._has_source:
            self.push_screen(StartScreen())
            return
        self._start_posture()
        self._start_ingest()
        self._refresh_status()

    def _auto_facets(self) -> None:
        """Until the user toggles it (``t``), the facet panel shows only where the table keeps every
        column beside it (FACETS_AUTO_WIDTH); narrower terminals give the table the room."""
        if not self._facets_toggled:
            self.q(FacetPanel).display = self.size.width >= FACETS_AUTO_WIDTH

    def on_resize(self) -> None:
        if self._alive():
            try:
                self._auto_facets()
            except NoMatches:
                pass

    def set_theme_name(self, name: str) -> None:
        resolved = themes.resolve(name, set(self.available_themes))
        if resolved is None:
            self.notify(f"unknown theme {name!r}", severity="error")
            return
        self.theme = resolved

    # --- ingest ------------------------------------------------------------------------------
    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            # Until the frame that answers the key is composed (at most INPUT_PRIORITY_SECONDS): the
            # ingest threads step aside, and no cycle collection starts (the young objects wait a frame).
            self._input_until = time.monotonic() + INPUT_PRIORITY_SECONDS
            if gc.isenabled():
                gc.disable()
                self._gc_paused = True
            self.call_after_refresh(self._key_answered)
        await super().on_event(event)

    def _key_answered(self) -> None:
        self._input_until = 0.0
        self._gc_resume()

    def _gc_resume(self) -> None:
        if self._gc_paused:
            self._gc_paused = False
            gc.enable()

    def _yield_to_input(self) -> None:
        """Ingest threads: wait while a key press is being answered (bounded, never while stopping)."""
        while not self._stop.is_set():
            left = self._input_until - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.02))

    def _start_ingest(self) -> None:
        q: queue.Queue = queue.Queue(maxsize=MAX_BATCH * 2)
        threading.Thread(target=self._produce, args=(q,), name="s3tail-source", daemon=True).start()
        self.run_worker(lambda: self._consume(q), thread=True, group="ingest", exit_on_error=False,
                        description="rules and batching")

    def _on_state(self, name: str, state: str) -> None:
        self.states[name] = state  # a dict item store: atomic; the consumer copies it per batch

    def _produce(self, q: queue.Queue) -> None:
        """Source thread: put lists of items into the queue; a final ``None`` (or an error string) ends it."""
        end: Any = None
        try:
            if self.args.demo:
                from s3tail.core.demo import iter_demo
                self._on_state("demo", "demo · generating")
                batches = ([item] for item in iter_demo(self.args.demo_rate, stop=self._stop))
            else:
                batches = backend.iter_batches(self.args, on_state=self._on_state, stop=self._stop)
            for batch in batches:
                if self._input_until > time.monotonic():
                    self._yield_to_input()
                while True:
                    try:
                        q.put(batch, timeout=0.2)
                        break
                    except queue.Full:
                        if self._stop.is_set():
                            return
                if self._stop.is_set():
                    return
        except backend.SourceError as exc:
            end = f"source error: {exc}"
        except Exception as exc:  # never a traceback on screen: report it in the status bar
            end = f"source error: {type(exc).__name__}: {exc}"
        q.put(end)

    def _consume(self, q: queue.Queue) -> None:
        """Consumer thread: gather items, and every FLUSH_SECONDS turn the events into column
        batches (slices of APPEND_SLICE), run the rules and append them to the store, then post one
        message for the UI thread."""
        try:
            rules = backend.RuleEngine(self.config, self.args.rules)
            rules.between_rules = self._yield_to_input  # a key press goes between two rules of a call
        except Exception as exc:
            rules = None
            self.call_from_thread(self.notify, f"rules disabled: {exc}", severity="error")
        index = FindingsIndex(own=True)  # the Findings tab's rows, kept here: off the UI thread
        items: list = []  # Event, Malformed, Skipped and RawBlock (lines not parsed yet)
        pending = 0       # lines in items
        last = time.monotonic()
        recent: deque[tuple[float, int]] = deque()
        trim_rows, last_trim = 0, time.monotonic()
        busy, rows_at = False, 0.0   # rows arrived since the last quiet round (its garbage not given back yet)
        while not self._stop.is_set():
            finished, error = False, None
            try:
                got = q.get(timeout=max(0.01, FLUSH_SECONDS - (time.monotonic() - last)))
                if got is None or isinstance(got, str):
                    finished, error = True, got
                else:
                    items.extend(got)
                    pending += backend.count_items(got)
            except queue.Empty:
                pass
            now = time.monotonic()
            if not finished and now - last < FLUSH_SECONDS and pending < MAX_BATCH:
                continue
            findings, appended, stats, touched = None, [], None, []
            malformed: list[Malformed] = []
            skipped = n_events = 0
            if self.dicts.full():  # a long follow: value tables start afresh (the store keeps its own)
                self.dicts = backend.Dicts()
            batches = []
            for batch in backend.iter_column_batches_of(items, self.dicts, APPEND_SLICE):
                batches.append(batch)
                self._yield_to_input()
                for other in batch.others:
                    if isinstance(other, Malformed):
                        malformed.append(other)
                    else:
                        skipped += 1
            batches = [b for b in batches if b.n]
            # the rules over everything gathered at once (their cost per call is mostly fixed)
            for joined in backend.coalesce(batches, RULES_ROWS) if rules is not None else ():
                self._yield_to_input()
                try:
                    touched.extend(rules.process_columns(joined))
                    rules.pop_closed()  # findings past their dedup period leave the engine's open tables
                except Exception as exc:
                    error = f"rules error: {type(exc).__name__}: {exc}"
                    break
            # the store appends batch by batch (at most APPEND_SLICE rows): the UI thread, drawing the
            # rows on screen, waits for the store lock one append at most; a key press goes between
            for batch in batches:
                n_events += batch.n
                stats = stats or Stats()
                while not self._ingest_gate.wait(0.2):  # an export is reading the store
                    if self._stop.is_set():
                        return
                self._yield_to_input()
                appended.append(self.store.append(batch))
                stats.add_columns(batch)
            rows = None
            if rules is not None:
                try:
                    if finished:
                        touched.extend(rules.flush() or ())
                    if index.update(touched) or finished or self.batches == 0:
                        findings, rows = rules.findings_view(), (index.rows(), index.version)
                except Exception as exc:
                    error = error or f"rules error: {type(exc).__name__}: {exc}"
                    findings = rows = None
            recent.append((now, n_events))
            while recent and now - recent[0][0] > RATE_WINDOW:
                recent.popleft()
            rate = sum(n for _, n in recent) / max(now - recent[0][0], FLUSH_SECONDS)
            self.post_message(IngestBatch(appended, stats, malformed, skipped, findings, dict(self.states),
                                          rate, error=error, done=finished, findings_rows=rows))
            if n_events:
                busy, rows_at = True, now
            # a follow caught up: no rows for QUIET_SECONDS (the UI has drawn the last of them) after rows
            quiet = busy and now - rows_at >= QUIET_SECONDS
            trim_rows += n_events
            if finished or quiet or (trim_rows >= TRIM_ROWS and now - last_trim >= TRIM_SECONDS):
                # what parsing and the rules freed goes back to the system (resident memory is what
                # a jump host's operator sees), not kept mapped for the next burst; when the input
                # went quiet or ended, first the cycles the old generation still holds (16 MiB at a
                # million rows; a full collection, 0.2 s, once, between key presses)
                if finished or quiet:
                    self._yield_to_input()
                    gc.collect()
                release_free_memory()
                trim_rows, last_trim = 0, now
                busy = busy and not quiet and not finished
            items, pending, last = [], 0, now
            if finished:
                return

    def on_ingest_batch(self, msg: IngestBatch) -> None:
        if not self._alive():
            return
        try:
            self._apply(msg)
        except NoMatches:  # quitting while the message was queued
            pass

    def _apply(self, msg: IngestBatch) -> None:
        self.batches += 1
        if not self._first_data.is_set() and msg.appends:
            self._posture_buckets = sorted({b for a in msg.appends for b in _buckets(a.batch) if b})
            self._first_data.set()
        if msg.done:
            self._first_data.set()
        for appended in msg.appends:
            self.table.apply_appended(appended)
        if msg.stats is not None:
            self.stats.merge(msg.stats)
        if msg.malformed:
            self.malformed.extend(msg.malformed)
            self.malformed_total += len(msg.malformed)
        self.skipped_total += msg.skipped
        if msg.findings is not None:
            self.findings = msg.findings
        if msg.findings_rows is not None:
            self.findings_rows = msg.findings_rows  # drawn by the tab switch and the 1 s tick
        self.states.update(msg.states)
        self.rate = msg.rate
        if msg.error:
            self.states["ingest"] = msg.error
            self.notify(msg.error, severity="error", timeout=10)
        elif msg.done:  # every source ended (a one-shot read): say so where a source did not
            for name, state in self.states.items():
                if "done" not in state and "error" not in state:
                    self.states[name] = f"{visible(name)} · done"
        self._refresh_status()

    def _refresh_status(self) -> None:
        t = self.table
        self.q(StatusBar).show(
            states=self.states, events=len(self.store), view=t.row_count,
            malformed=self.malformed_total, findings=len(self.findings), rate=self.rate,
            follow=t.follow, label=t.model.label)

    def _tick(self) -> None:
        if self._gc_paused and time.monotonic() > self._input_until:
            self._gc_resume()
        if not self._has_source or not self._alive():
            return
        try:
            self._refresh_tab()
        except NoMatches:  # quitting
            pass

    def _refresh_tab(self) -> None:
        tab = self._active_tab()
        if tab == "stats":
            self.q(StatsView).show_stats(self.stats)
        elif tab == "findings":
            self.q(FindingsView).show_rows(*self.findings_rows)
        elif self.q(FacetPanel).display:
            self.refresh_facets()

    def refresh_facets(self, force: bool = False) -> None:
        model = self.table.model
        if not force and model.version == self._facets_version:
            return
        self._facets_version = model.version
        try:
            facets = self.table.model.facets(top=8)
        except Exception as exc:  # a facet failure must not take the table down
            self.notify(f"facets: {exc}", severity="error")
            return
        self.q(FacetPanel).show_facets(facets)

    # --- posture -----------------------------------------------------------------------------
    def _start_posture(self) -> None:
        view = self.q(PostureView)
        if self._snapshot_results is not None:
            origin = "demo snapshot" if self.args.demo and not self.args.posture_snapshot \
                else f"snapshot {self.args.posture_snapshot}"
            view.show_results(self._snapshot_results, origin)
            return
        if any(s.startswith("s3://") for s in self.args.sources):
            view.show_message("Posture: collecting live bucket configuration…")
            self.run_worker(self._collect_posture, thread=True, group="posture", exit_on_error=False,
                            description="posture collection")

    def _collect_posture(self) -> None:
        """Worker thread: the S3 sources' log buckets and the buckets their logs are about (those
        seen in the first seconds of data), collected live and checked."""
        from s3tail.core import posture
        log_buckets = sorted({s[5:].split("/", 1)[0] for s in self.args.sources if s.startswith("s3://")})
        self._first_data.wait(POSTURE_WAIT)
        if self._stop.is_set():
            return
        seen = sorted(set(self._posture_buckets) - set(log_buckets))[:POSTURE_MAX_BUCKETS]
        kwargs = {k: v for k, v in (("profile_name", self.args.profile),
                                    ("region_name", self.args.region)) if v}
        error = None
        for buckets in ([*log_buckets, *seen], log_buckets) if seen else (log_buckets,):
            try:
                snap = posture.collect_live(kwargs, buckets, endpoint_url=self.args.endpoint_url)
                results = [r.to_dict() for r in posture.evaluate(snap, _posture_config(self.config))]
                self.post_message(PostureLoaded(results, f"live, {len(buckets)} bucket(s)"))
                return
            except Exception as exc:  # PostureError (a bucket gone, no permission...): try fewer
                error = error or f"Posture: {exc}"
        self.post_message(PostureLoaded(None, "live", error))

    def on_posture_loaded(self, msg: PostureLoaded) -> None:
        view = self.q(PostureView)
        if msg.error:
            view.show_message(msg.error)
        else:
            view.show_results(msg.results or [], msg.origin)

    # --- actions -----------------------------------------------------------------------------
    def _active_tab(self) -> str:
        return self.q(TabSwitcher).active

    def action_tab(self, name: str) -> None:
        self.q(TabSwitcher).active = name
        # the tab's rows are drawn into the frame that shows it (a few ms: the findings tab's rows are
        # grouped in the ingest thread, the stats are counters)
        if name == "requests":
            self._focus(self.table)
        elif name == "findings":
            self._focus(self.q(FindingsView))
            self._show_findings()
        elif name == "posture":
            self._focus(self.q("#posture-table"))
        elif name == "stats":
            self._focus(self.q(StatsView))
            self._show_stats()

    def _show_stats(self) -> None:
        if self._alive() and self._active_tab() == "stats":
            self.q(StatsView).show_stats(self.stats)

    def _show_findings(self) -> None:
        if self._alive() and self._active_tab() == "findings":
            self.q(FindingsView).show_rows(*self.findings_rows)

    def action_filter(self) -> None:
        self.action_tab("requests")
        bar = self.q("#filter-bar")
        bar.display = True
        inp = self.q("#filter-input", Input)
        inp.value = self.filter_text
        self._focus(inp)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "filter-input":
            return
        event.stop()
        self.apply_filter(event.value)

    def apply_filter(self, text: str) -> bool:
        """Compile and apply; a bad filter shows its error and keeps the current view."""
        text = text.strip()
        error = self.q("#filter-error", Static)
        if not text:
            self.action_clear_filter()
            return True
        try:
            flt = backend.compile_filter(text)
        except backend.FilterError as exc:
            error.update(Text(f"filter error: {exc}"))
            error.add_class("error")
            error.display = True
            self.q("#filter-bar").display = True
            return False
        error.update("")
        error.remove_class("error")
        error.display = False
        self.filter_text = text
        self.table.set_filter(flt, text)
        self.q("#filter-bar").display = True
        self.q("#filter-input", Input).value = text
        self._focus(self.table)
        self._refresh_status()
        if self.q(FacetPanel).display:
            self.refresh_facets()
        return True

    def action_clear_filter(self) -> None:
        self.filter_text = ""
        self.table.clear_filter()
        self.q("#filter-input", Input).value = ""
        self.q("#filter-error", Static).update("")
        self.q("#filter-error", Static).display = False
        self.q("#filter-bar").display = False
        if self._active_tab() == "requests":
            self._focus(self.table)
        self._refresh_status()

    def action_escape(self) -> None:
        focused = self.focused
        if isinstance(focused, Input) and focused.id == "filter-input":
            if not self.table.model.label:
                self.q("#filter-bar").display = False
            self.q("#filter-error", Static).display = False
            self._focus(self.table)
        elif self.table.model.label:
            self.action_clear_filter()

    def action_toggle_follow(self) -> None:
        self.table.set_follow(not self.table.follow)
        self.notify("following the newest row" if self.table.follow else "paused (f follows again)")
        self._refresh_status()

    def on_requests_table_follow_changed(self, _msg: RequestsTable.FollowChanged) -> None:
        self._refresh_status()

    def action_toggle_facets(self) -> None:
        self._facets_toggled = True
        panel = self.q(FacetPanel)
        panel.display = not panel.display
        if panel.display:
            self.action_tab("requests")
            self.refresh_facets(force=True)
            self._focus(panel)
        else:
            self._focus(self.table)

    def on_facet_panel_chosen(self, msg: FacetPanel.Chosen) -> None:
        value = facet_value(msg.value)
        term = f"{FACET_FILTER.get(msg.field, msg.field)}:{value}"
        self.apply_filter(f"{self.filter_text} {term}".strip())

    def on_requests_table_row_chosen(self, msg: RequestsTable.RowChosen) -> None:
        event = self.store.get(msg.position)
        ref = (event.log_object, event.log_line)
        citing = [f for f in self.findings if ref in getattr(f, "event_refs", ())]
        self.push_screen(DetailScreen(event, citing))

    def on_findings_view_chosen(self, msg: FindingsView.Chosen) -> None:
        refs = {tuple(r) for r in getattr(msg.finding, "event_refs", [])}
        self.filter_text = ""
        self.q("#filter-input", Input).value = ""
        self.table.set_refs(refs, f"finding {msg.finding.rule_id}")
        rows = self.table.model.view
        self.action_tab("requests")
        self._refresh_status()
        self.notify(f"{len(rows):,} requests of {msg.finding.rule_id} (escape shows all)")

    def action_copy(self) -> None:
        tab = self._active_tab()
        if tab == "findings":
            import json
            f = self.q(FindingsView).selected()
            if f is None:
                return
            self.copy_to_clipboard(json.dumps(f.to_dict(), ensure_ascii=False, default=str))
            self.notify("finding copied as JSON (OSC 52)")
            return
        pos = self.table.selected_position()
        if pos is None:
            self.notify("no row to copy", severity="warning")
            return
        self.copy_to_clipboard(self.store.get(pos).to_json())
        self.notify("row copied as JSON (OSC 52)")

    def action_export(self) -> None:
        rows = self._view_rows()
        self.push_screen(ExportScreen(len(rows)), lambda path: self._export(path, rows))

    def _view_rows(self):
        return self.table.model.view.copy()

    def _export(self, path: str | None, rows) -> None:
        if not path:
            return
        self.notify(f"exporting {len(rows):,} rows to {path}…")
        self.run_worker(lambda: self._write_export(path, rows), thread=True, group="export",
                        exit_on_error=False, description="export")

    def _write_export(self, path: str, rows) -> None:
        """Worker thread: write the rows. Ingest waits meanwhile (positions must not move under the
        export); the UI keeps drawing, as the store lock is taken per chunk of rows."""
        fmt = "csv" if path.lower().endswith(".csv") else "jsonl"
        self._ingest_gate.clear()
        try:
            with open(path, "w", encoding="utf-8", newline="") as fh:
                n = backend.export_events(self._events_at(rows), fmt, fh)
        except OSError as exc:
            self._from_worker(self.notify, f"export failed: {exc.strerror or exc}", severity="error")
            return
        finally:
            self._ingest_gate.set()
        self._from_worker(self._exported, path, n, fmt)

    def _events_at(self, rows, chunk: int = 2000):
        for i in range(0, len(rows), chunk):
            with self.store.lock:
                events = [self.store.store.get(int(p)) for p in rows[i:i + chunk]]
            yield from events

    def _exported(self, path: str, n: int, fmt: str) -> None:
        self.last_export = (path, n)
        self.notify(f"exported {n:,} rows to {path} ({fmt}, with log_object and log_line)")

    def _from_worker(self, fn, *args, **kwargs) -> None:
        try:
            self.call_from_thread(fn, *args, **kwargs)
        except RuntimeError:  # the app is gone
            pass

    def action_malformed(self) -> None:
        self.push_screen(MalformedScreen(list(self.malformed), self.malformed_total))

    def binding_rows(self) -> list[tuple[str, str, str]]:
        """(key, description, id) of every binding, after the keymap."""
        from .screens import DetailScreen as D
        from .widgets import FindingsView as F
        keymap = getattr(self, "_keymap", {}) or {}
        rows = []
        for b in [*self.BINDINGS, *RequestsTable.BINDINGS, *F.BINDINGS, *D.BINDINGS]:
            key = keymap.get(b.id, b.key) if b.id else b.key
            shown = ",".join(self.get_key_display(Binding(k, b.action)) for k in str(key).split(","))
            rows.append((shown, b.description or b.action, b.id or ""))
        return rows

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.binding_rows()))

    async def action_quit(self) -> None:
        self._stop.set()
        self._first_data.set()
        self.exit(0)

    def on_unmount(self) -> None:
        self._stop.set()
        self._first_data.set()
        self._gc_resume()
        if self._gc_saved is not None:  # as it was (the tests run many apps in one process)
            gc.set_threshold(*self._gc_saved)


def binding_ids() -> set[str]:
    from .screens import _CLOSE, DetailScreen, ExportScreen, StartScreen
    out = set()
    for group in (S3tailApp.BINDINGS, RequestsTable.BINDINGS, FindingsView.BINDINGS, DetailScreen.BINDINGS,
                  ExportScreen.BINDINGS, StartScreen.BINDINGS, _CLOSE):
        out |= {b.id for b in group if b.id}
    return out


def facet_value(value: Any) -> str:
    """A facet value as a filter-language value: ``-`` for null, quoted when it holds a space, a
    quote or a backslash."""
    if value is None:
        return "-"
    text = str(value)
    if text == "-" or any(c.isspace() or c in '"\\' for c in text):
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def keymap_from_config(table: Any) -> dict[str, str]:
    """``{binding id: keys}`` from the config's ``[keys]`` table. TOML reads ``tab.stats = "s"`` as a
    nested table, so nested tables are joined back with dots; ``"tab.stats" = "s"`` works too."""
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise UsageError('config [keys] must be a table of binding id = "key"')
    flat: dict[str, str] = {}

    def walk(prefix: str, t: dict) -> None:
        for k, v in t.items():
            name = f"{prefix}{k}"
            if isinstance(v, dict):
                walk(name + ".", v)
            elif isinstance(v, str) and v.strip():
                flat[name] = v.replace(" ", "")
            else:
                raise UsageError(f'config [keys] {name}: expected a key name like "z" or "ctrl+t"')
    walk("", table)
    unknown = sorted(set(flat) - binding_ids())
    if unknown:
        raise UsageError(f"config [keys]: unknown binding id {unknown[0]!r} (press ? in the app for the ids)")
    return flat


def _posture_config(config: dict[str, Any]):
    from s3tail.core.posture.config import config_from_table
    return config_from_table(config.get("posture") or {}, "config [posture]")


# --- command line --------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="s3tail", description="Live terminal triage of S3 access logs and CloudTrail S3 events.")
    p.add_argument("sources", nargs="*", metavar="SOURCE", help="files, folders, - (stdin) or s3://bucket/prefix/")
    p.add_argument("--demo", action="store_true", help="built-in traffic with attack episodes (offline)")
    p.add_argument("--config", metavar="FILE", help="TOML config ([keys], [tui], [rules], [posture])")
    p.add_argument("--rules", metavar="DIR", help="extra detection rules")
    p.add_argument("--since", metavar="WHEN", help="start this far back (15m, 2h, 2026-11-01T00:00Z)")
    p.add_argument("--theme", metavar="NAME", help="dark, light, high-contrast, or a Textual theme name")
    p.add_argument("--posture-snapshot", metavar="FILE", help="bucket posture from a snapshot file")
    p.add_argument("--max-rows", type=int, metavar="N", help="keep at most N rows in memory")
    p.add_argument("--follow", action=argparse.BooleanOptionalAction, default=True,
                   help="keep reading new data (default: on)")
    p.add_argument("--interval", type=float, default=30.0, help=argparse.SUPPRESS)
    p.add_argument("--state", default=None, help=argparse.SUPPRESS)
    p.add_argument("--no-state", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--profile", help="AWS profile for s3:// sources")
    p.add_argument("--region", help="AWS region")
    p.add_argument("--endpoint-url", help="S3-compatible endpoint")
    p.add_argument("--demo-rate", type=float, default=60.0, help=argparse.SUPPRESS)
    return p


def prepare(argv: list[str]) -> tuple[argparse.Namespace, dict[str, Any], list[dict[str, Any]] | None]:
    """Parse and validate everything that can fail before the screen opens (raises UsageError)."""
    args = build_parser().parse_args(argv)
    if args.max_rows is not None and args.max_rows < 1:
        raise UsageError("--max-rows must be at least 1")
    if args.theme and themes.resolve(args.theme, _textual_theme_names()) is None:
        raise UsageError(f"unknown theme {args.theme!r} (try: {', '.join(themes.THEMES)})")
    try:
        config = backend.load_config(args.config) or {}
    except backend.ConfigError as exc:
        raise UsageError(str(exc)) from None
    config["keys"] = keymap_from_config(config.get("keys"))
    if args.demo and args.sources:
        raise UsageError("--demo reads no SOURCE; give one or the other")
    if args.since:
        try:
            backend.parse_since(args.since)
        except ValueError as exc:
            raise UsageError(f"--since: {exc}") from None
    try:
        backend.RuleEngine(config, args.rules)
    except Exception as exc:  # a bad user rule or [rules] value: one line, before the screen opens
        raise UsageError(f"rules: {exc}") from None
    for src in args.sources:
        if src not in ("-",) and not src.startswith("s3://") and not os.path.exists(src):
            raise UsageError(f"{src}: no such file or directory")
    results = None
    snap_path = args.posture_snapshot or (str(DEMO_SNAPSHOT) if args.demo else None)
    if snap_path:
        from s3tail.core import posture
        try:
            snap = posture.load_snapshot(snap_path)
            results = [r.to_dict() for r in posture.evaluate(snap, _posture_config(config))]
        except posture.PostureError as exc:
            raise UsageError(str(exc)) from None
    return args, config, results


def _textual_theme_names() -> set[str]:
    from textual.theme import BUILTIN_THEMES
    return set(BUILTIN_THEMES)


def main(argv: list[str]) -> int:
    try:
        args, config, results = prepare(list(argv))
    except UsageError as exc:
        print(f"s3tail: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    app = S3tailApp(args, config, results)
    rc = app.run()
    return int(rc or 0) if app.return_code is None else int(app.return_code)
