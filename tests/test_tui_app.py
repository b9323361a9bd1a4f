"""Pilot tests of the terminal app: every key and tab, at 80x24 and 120x40."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from s3tail.core.demo import DemoTraffic
from s3tail.tui.app import APP_GC_THRESHOLDS, S3tailApp, binding_ids, main, prepare
from s3tail.tui.screens import DetailScreen, ExportScreen, HelpScreen, MalformedScreen, StartScreen
from s3tail.tui.table import RequestsTable
from s3tail.tui.testing import screen_text, wait_until
from s3tail.tui.widgets import FacetPanel, FindingsView, PostureView

EPOCH = 1_767_225_600  # 2026-01-01T00:00:00Z
SIZES = [(80, 24), (120, 40)]


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    """A folder with one access log: background traffic, every attack episode, one broken line."""
    d = tmp_path / "logs"
    d.mkdir()
    lines = DemoTraffic(seed=3, episode_every=100).lines(800, EPOCH)
    lines.insert(5, "this is not an access log line")
    (d / "access.log").write_text("\n".join(lines) + "\n")
    return d


def make_app(*argv: str) -> S3tailApp:
    args, config, results = prepare(list(argv))
    return S3tailApp(args, config, results)


async def loaded(pilot, app: S3tailApp) -> None:
    await wait_until(pilot, lambda: app.states and all(s == "done" or "done" in s for s in app.states.values())
                     and app.findings, what="the log folder to be read")


@pytest.mark.parametrize("size", SIZES)
async def test_demo_fills_every_tab_within_5s(size):
    app = make_app("--demo")
    async with app.run_test(size=size) as pilot:
        await wait_until(pilot, lambda: len(app.store) > 0 and app.findings, timeout=5, what="demo data")
        assert app.table.row_count == len(app.store)
        await pilot.press("2")
        assert app.query_one("#tabs").active == "findings"
        await wait_until(pilot, lambda: app.query_one(FindingsView).row_count > 0, timeout=5)
        want = {"s3.enumeration", "s3.mass_delete", "s3.mass_download"}
        await wait_until(pilot, lambda: want <= {f.rule_id for f in app.findings}, timeout=5,
                         what="the demo's episodes to raise their rules")
        await pilot.press("3")
        assert app.query_one("#tabs").active == "posture"
        assert app.query_one(PostureView).results, "bundled demo posture snapshot shows failing checks"
        assert any(r["check_id"] == "bucket.public_policy" for r in app.query_one(PostureView).results)
        await pilot.press("4")
        await pilot.pause(0.1)
        text = screen_text(app)
        assert "requests per minute" in text and "top talkers by bytes" in text
        await pilot.press("1")
        assert app.focused is app.table
        status = str(app.query_one("#status").render())
        assert "demo" in status and "ev" in status and "findings" in status


@pytest.mark.parametrize("size", SIZES)
async def test_filter_bar_apply_error_and_double_escape(logdir, size):
    app = make_app("--no-follow", str(logdir))
    async with app.run_test(size=size) as pilot:
        await loaded(pilot, app)
        total = app.table.row_count
        await pilot.press("slash")
        assert app.focused.id == "filter-input"
        await pilot.press(*"status:403", "enter")
        index = app.table.model.rows
        view = app.table.model.view
        assert app.table.model.filtered and 0 < len(view) < total
        assert all(app.store.get(p).http_status == 403 for p in view)
        assert app.focused is app.table
        assert "status:403" in str(app.query_one("#status").render())
        # a bad filter: error inline, the view stays
        await pilot.press("slash", "ctrl+u", *"nosuchfield:zzz", "enter")
        err = app.query_one("#filter-error")
        assert err.display and "filter error" in str(err.render())
        assert app.table.model.rows is index and app.table.model.label == "status:403"
        await pilot.press("escape")  # leaves the bar, filter kept
        assert app.focused is app.table and app.table.model.rows is index
        await pilot.press("escape")  # clears the filter
        assert not app.table.model.filtered and app.table.row_count == total


async def test_detail_shows_identity_origin_raw_and_findings(logdir):
    app = make_app("--no-follow", str(logdir))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot, app)
        app.apply_filter("status:403")
        await pilot.pause()
        await pilot.press("enter")
        assert isinstance(app.screen, DetailScreen)
        ev = app.screen.event
        assert ev.http_status == 403
        body = app.screen.body().plain
        assert f"{ev.log_object}" in body and f"line                {ev.log_line}" in body
        assert ev.raw.split()[1] in body and "principal type" in body
        cited = {f.rule_id for f in app.screen.findings}
        assert cited and cited <= {f.rule_id for f in app.findings}
        await pilot.press("escape")
        assert not isinstance(app.screen, DetailScreen)


async def test_findings_enter_shows_evidence_in_requests(logdir):
    app = make_app("--no-follow", str(logdir))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        await pilot.press("2")
        view = app.query_one(FindingsView)
        await wait_until(pilot, lambda: view.row_count > 0)
        finding = view.selected()
        await pilot.press("enter")
        assert app.query_one("#tabs").active == "requests"
        rows = app.table.model.view
        refs = {tuple(r) for r in finding.event_refs}
        assert len(rows) == len(refs)
        assert {(app.store.get(p).log_object, app.store.get(p).log_line) for p in rows} == refs
        assert finding.rule_id in app.table.model.label


@pytest.mark.parametrize("ext", ["jsonl", "csv"])
async def test_export_current_view_with_provenance(logdir, tmp_path, ext):
    app = make_app("--no-follow", str(logdir))
    out = tmp_path / f"out.{ext}"
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        app.apply_filter("status:403")
        n = app.table.row_count
        await pilot.press("e")
        assert isinstance(app.screen, ExportScreen)
        assert app.screen.query_one("#export-path").value.startswith("./s3tail-export-")
        app.screen.query_one("#export-path").value = str(out)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.last_export == (str(out), n), what="the export")
    text = out.read_text()
    if ext == "jsonl":
        rows = [json.loads(line) for line in text.splitlines()]
        assert len(rows) == n and all(r["http_status"] == 403 for r in rows)
        assert all(r["log_object"].endswith("access.log") and r["log_line"] > 0 for r in rows)
    else:
        lines = text.splitlines()
        assert len(lines) == n + 1 and "log_object" in lines[0] and "log_line" in lines[0]


async def test_copy_selected_row_and_malformed_list(logdir):
    app = make_app("--no-follow", str(logdir))
    async with app.run_test(size=(160, 40)) as pilot:
        await loaded(pilot, app)
        await pilot.press("end", "y")
        copied = json.loads(app.clipboard)
        assert copied["request_id"] == app.store.get(app.table.selected_position()).request_id
        assert app.malformed_total == 1
        await pilot.press("m")
        assert isinstance(app.screen, MalformedScreen)
        assert "this is not an access log line" in screen_text(app)
        assert "access.log:6" in screen_text(app)
        await pilot.press("escape")


async def test_follow_toggle_new_marker_and_cursor_keys(logdir):
    app = make_app("--no-follow", str(logdir))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        t = app.table
        n = t.row_count
        assert t.follow and t.cursor == n - 1
        await pilot.press("home")
        assert t.cursor == 0 and not t.follow and "PAUSED" in str(app.query_one("#status").render())
        await pilot.press("down", "down", "pagedown")
        assert t.cursor == 2 + t.visible_rows
        await pilot.press("pageup", "up")
        assert t.cursor == 1
        t.apply_batch([app.store.get(0)] * 7)
        await pilot.pause()
        assert t.cursor == 1 and "7 new" in t._header_strip(80).text
        await pilot.press("f")
        assert t.follow and t.cursor == n + 6 and t.new_rows == 0
        t.apply_batch([app.store.get(0)] * 3)
        assert t.cursor == n + 9


async def test_facets_toggle_and_choose_adds_filter(logdir):
    app = make_app("--no-follow", str(logdir))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        panel = app.query_one(FacetPanel)
        assert not panel.display  # hidden by default at 80 columns
        await pilot.press("t")
        assert panel.display and app.focused is panel
        await wait_until(pilot, lambda: panel.option_count > 0)
        text = screen_text(app)
        assert "bucket" in text and "acme-prod-data" in text
        await pilot.press("down", "enter")  # first value of the first facet (bucket)
        assert app.filter_text.startswith("bucket:")
        bucket = app.filter_text.split(":", 1)[1]
        assert app.table.row_count > 0
        assert all(app.store.get(p).bucket == bucket for p in app.table.model.view)
        await pilot.press("t")
        assert not panel.display


async def test_columns_by_width_and_facets_beside_a_full_table(logdir):
    """80 columns: the essential columns; 120: every column (the facet panel waits for ``t``);
    160: every column and the facet panel beside it."""
    for size, want, absent in (((80, 24), ["time", "who", "action", "st", "key"], ["bucket", "bytes", " ip "]),
                               ((120, 40), ["time", "bucket", "who", "action", "bytes", "ip", "key"], []),
                               ((160, 40), ["time", "bucket", "who", "action", "bytes", "ip", "key"], [])):
        app = make_app("--no-follow", str(logdir))
        async with app.run_test(size=size) as pilot:
            await loaded(pilot, app)
            assert app.query_one(FacetPanel).display == (size[0] >= 160)
            header = app.table.header_text()
            for col in want:
                assert col in header, (size, header)
            for col in absent:
                assert col not in header, (size, header)
            lines = screen_text(app).splitlines()
            assert len(lines) == size[1] and all(len(line) <= size[0] for line in lines)
            assert any("GetObject" in line for line in lines)


async def test_help_lists_every_binding_id(logdir):
    app = make_app("--no-follow", str(logdir))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        ids = {row[2] for row in app.screen.rows}
        assert {"tab.requests", "tab.findings", "tab.posture", "tab.stats", "filter", "escape", "follow",
                "facets", "export", "copy", "malformed", "help", "quit", "command_palette",
                "table.open"} <= ids
        await pilot.press("escape")
        await pilot.press("q")
    assert app.return_code == 0


async def test_keymap_from_config_remaps_bindings(logdir, tmp_path):
    cfg = tmp_path / "s3tail.toml"
    cfg.write_text('[keys]\nfollow = "z"\ntab.stats = "s"\n')
    app = make_app("--no-follow", "--config", str(cfg), str(logdir))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        await pilot.press("f")
        assert app.table.follow, "f no longer toggles follow"
        await pilot.press("z")
        assert not app.table.follow
        await pilot.press("s")
        assert app.query_one("#tabs").active == "stats"
        help_rows = dict((r[2], r[0]) for r in app.binding_rows())
        assert help_rows["follow"] == "z"


async def test_command_palette_switches_theme_and_tab(logdir):
    app = make_app("--no-follow", "--theme", "dark", str(logdir))
    async with app.run_test(size=(100, 30)) as pilot:
        assert app.theme == "s3tail-dark"
        for query, check in (("light", lambda: app.theme == "s3tail-light"),
                             ("posture", lambda: app.query_one("#tabs").active == "posture"),
                             ("high-c", lambda: app.theme == "s3tail-high-contrast")):
            await pilot.press("ctrl+p")
            await wait_until(pilot, lambda: app.screen.__class__.__name__ == "CommandPalette")
            await pilot.press(*query)
            palette = app.screen
            await wait_until(pilot, lambda: palette.query("CommandList").first().option_count > 0)
            await pilot.press("enter")
            await wait_until(pilot, check, timeout=5, what=query)


async def test_start_screen_without_source_and_q_quits():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        assert isinstance(app.screen, StartScreen)
        text = screen_text(app)
        for hint in ("s3tail --demo", "s3tail s3://bucket/prefix/", "s3tail ./logs/"):
            assert hint in text
        await pilot.press("q")
    assert app.return_code == 0


def test_no_color_is_honoured(monkeypatch, logdir):
    monkeypatch.setenv("NO_COLOR", "1")
    assert make_app("--no-follow", str(logdir)).no_color


@pytest.mark.parametrize("argv, fragment", [
    (["--max-rows", "0"], "--max-rows"),
    (["--theme", "sparkly"], "unknown theme"),
    (["/no/such/dir"], "no such file"),
    (["--bogus"], "unrecognized"),
    (["--posture-snapshot", "/no/such.json", "--demo"], "no such file"),
])
def test_usage_errors_exit_2_with_one_line(capsys, argv, fragment):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("s3tail: ") and fragment in err


def test_unknown_keymap_id_is_a_usage_error(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[keys]\nexplode = "x"\n')
    assert main(["--config", str(cfg), "--demo"]) == 2
    assert "explode" in capsys.readouterr().err
    assert "quit" in binding_ids() and "table.open" in binding_ids()


@pytest.mark.parametrize("size", SIZES)
async def test_every_key_at_both_sizes(logdir, size):
    """One pass over the key contract, asserting state and the messages the widgets post."""
    app = make_app("--no-follow", str(logdir))
    seen: list[str] = []
    async with app.run_test(size=size, message_hook=lambda m: seen.append(type(m).__name__)) as pilot:
        await loaded(pilot, app)
        assert "IngestBatch" in seen
        t = app.table
        for key, tab in (("2", "findings"), ("3", "posture"), ("4", "stats"), ("1", "requests")):
            await pilot.press(key)
            assert app.q("#tabs").active == tab
        await pilot.press("f")
        assert not t.follow and "FollowChanged" in seen
        await pilot.press("f")
        assert t.follow
        await pilot.press("enter")
        assert isinstance(app.screen, DetailScreen) and "RowChosen" in seen
        await pilot.press("y")
        assert json.loads(app.clipboard)["request_id"] == app.screen.event.request_id
        await pilot.press("escape")
        await pilot.press("y")
        assert json.loads(app.clipboard)["request_id"] == app.store.get(t.selected_position()).request_id
        for key, screen in (("m", MalformedScreen), ("question_mark", HelpScreen), ("e", ExportScreen)):
            await pilot.press(key)
            assert isinstance(app.screen, screen), key
            await pilot.press("escape")
            assert app.screen is app.screen_stack[0], key
        panel = app.q(FacetPanel)
        shown = panel.display
        await pilot.press("t")
        assert panel.display != shown
        if panel.display:
            await wait_until(pilot, lambda: panel.option_count > 0)
            await pilot.press("down", "enter")
            assert "Chosen" in seen and app.filter_text.startswith("bucket:")
            await pilot.press("escape")
            assert not app.table.model.filtered
        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "CommandPalette")
        await pilot.press("escape")
        await pilot.press("q")
    assert app.return_code == 0
    text = "".join(seen)
    assert "Traceback" not in text


async def test_late_rows_land_in_event_time_order_and_keep_the_cursor(logdir):
    app = make_app("--no-follow", str(logdir))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        t = app.table
        await pilot.press("home", *["down"] * 5)
        assert not t.follow
        before = app.store.get(t.selected_position())
        first = app.store.get(0)
        # an S3 log object delivered late: older than every row held, so it goes above the cursor
        late = [first._replace(ts=first.ts - 60 - i, time=None, log_line=100_000 + i) for i in range(4)]
        n = t.row_count
        t.apply_batch(late)
        assert t.row_count == n + 4 and t.cursor == 5 + 4
        assert app.store.get(t.selected_position()).request_id == before.request_id
        times = [app.store.get(p).ts for p in range(len(app.store))]
        assert times == sorted(times) and app.store.get(0).log_line == 100_003
        # the same under a filter: late rows the filter keeps join the view in time order
        app.apply_filter(f"requester:{first.requester}" if first.requester else "who:anonymous")
        await pilot.press("home", "down")
        kept = t.row_count
        t.apply_batch([first._replace(ts=first.ts - 3600, time=None, log_line=200_000)])
        assert t.row_count == kept + 1 and t.cursor == 2
        assert app.store.get(t.model.view[0]).log_line == 200_000


async def test_tab_bar_marks_the_active_tab_and_a_click_switches(logdir):
    app = make_app("--no-follow", str(logdir))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        first_line = lambda: screen_text(app).splitlines()[0]  # noqa: E731
        assert "[1 Requests]" in first_line() and "[2 Findings]" not in first_line()
        await pilot.press("3")
        assert "[3 Posture]" in first_line() and "[1 Requests]" not in first_line()
        x = first_line().index("2 Findings")
        await pilot.click("#tab-bar", offset=(x + 1, 0))  # no mouse needed, but it works
        assert app.query_one("#tabs").active == "findings" and "[2 Findings]" in first_line()
        assert app.query_one("#findings").display and not app.query_one("#posture").display


async def test_cycle_collection_waits_for_the_frame_that_answers_a_key(logdir):
    import gc

    before = gc.get_threshold()
    app = make_app("--no-follow", str(logdir))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        assert gc.isenabled() and gc.get_threshold() == APP_GC_THRESHOLDS
        states: list[bool] = []
        app.simulate_key("2")  # as the driver posts it; then, once the key is handled, wait for its frame
        app.call_later(lambda: app.call_after_refresh(lambda: states.append(gc.isenabled())))
        await wait_until(pilot, lambda: states, what="the frame after the key")
        assert app.query_one("#tabs").active == "findings"
        assert states == [True]  # back on once the key's frame is composed, not left off
        paused: list[bool] = []
        app.simulate_key("1")
        app.call_later(lambda: paused.append(gc.isenabled()))  # right after the key's handler
        await wait_until(pilot, lambda: paused, what="the key's handler")
        assert paused == [False]
        await pilot.pause()
        assert gc.isenabled()
    assert gc.isenabled() and gc.get_threshold() == before  # as it was once the app is gone


async def test_a_follow_gives_freed_memory_back_once_it_caught_up(logdir, monkeypatch):
    """Following (the default), the app keeps reading: once a round brings no new rows after rows
    arrived, what parsing and the rules freed goes back to the system, once, not each idle round."""
    import s3tail.tui.app as app_mod

    calls: list[int] = []
    monkeypatch.setattr(app_mod, "TRIM_ROWS", 10 ** 9)     # no periodic trim: only the quiet one
    monkeypatch.setattr(app_mod, "release_free_memory", lambda: calls.append(1) or True)
    n = len((logdir / "access.log").read_text().splitlines()) - 1   # one line is broken
    app = make_app(str(logdir))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: len(app.store) == n and calls, what="the log read, then a trim")
        assert len(calls) == 1
        more = DemoTraffic(seed=4).lines(50, EPOCH + 3600)
        with open(logdir / "access.log", "a") as fh:   # more rows: after them, one more trim
            fh.write("\n".join(more) + "\n")
        await wait_until(pilot, lambda: len(app.store) == n + len(more) and len(calls) == 2,
                         what="the new rows, then a trim")
        await pilot.pause(0.6)   # idle rounds (every 0.25 s) give nothing more back
        assert len(calls) == 2
