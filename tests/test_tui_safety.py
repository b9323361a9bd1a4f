"""Hostile log text through every view: ANSI escapes and control characters show as visible escapes,
Rich markup is never interpreted (table, detail, facets, findings, stats, malformed list, status)."""
from __future__ import annotations

from pathlib import Path

import pytest

from s3tail.core.demo import DemoTraffic
from s3tail.tui.app import S3tailApp, prepare
from s3tail.tui.screens import DetailScreen, MalformedScreen
from s3tail.tui.testing import screen_text, wait_until
from s3tail.tui.widgets import FacetPanel, FindingsView

EPOCH = 1_767_225_600
MARKUP = "[bold]PWN[/bold]"  # unquoted log fields hold no spaces
EVIL_USER = "arn:aws:iam::111122223333:user/[blink]eve[/blink]"
EVIL_UA = "sqlmap/1.7 [link=http://x]click[/link] \x1b]52;c;aGk=\x07 \x1b[31mRED"
EVIL_KEY_RAW = "%1B%5B2J%1B%5B31m" + MARKUP + "%E2%80%AE.env"  # ESC[2J ESC[31m markup RLO .env
EVIL_MALFORMED = "\x1b[2J\x1b[H[bold red]HACKED[/bold red]\x07 not a log line"


@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("hostile")
    traffic = DemoTraffic(seed=5, episode_every=10_000)
    lines = traffic.lines(40, EPOCH)
    for i in range(6):
        lines.append(traffic.line(EPOCH + 1 + i, bucket="acme-prod-data", ip="198.51.100.66",
                                  requester=EVIL_USER, op="REST.GET.OBJECT", key=EVIL_KEY_RAW,
                                  status=403, err="AccessDenied\x1b[5m" + MARKUP, ua=EVIL_UA))
    lines.append(EVIL_MALFORMED)
    (d / "evil.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return d


def assert_safe(text: str, where: str) -> None:
    for ch in ("\x1b", "\x07", "\u202e"):
        assert ch not in text, f"{where}: raw {ch!r} reached the screen"


async def test_hostile_text_is_inert_in_every_view(hostile_dir):
    args, config, results = prepare(["--no-follow", str(hostile_dir)])
    app = S3tailApp(args, config, results)
    async with app.run_test(size=(150, 50)) as pilot:
        await wait_until(pilot, lambda: app.findings and app.malformed_total
                         and app.states and all("done" in s for s in app.states.values()),
                         what="the hostile folder to be read")
        # table
        app.apply_filter('who:"*eve*"')
        await pilot.pause()
        assert app.table.row_count == 6
        text = screen_text(app)
        assert_safe(text, "table")
        assert "\\x1b[2J\\x1b[31m" + MARKUP in text  # escaped, and the markup shown as typed
        # detail (every field, raw line)
        await pilot.press("enter")
        assert isinstance(app.screen, DetailScreen)
        body = app.screen.body().plain
        assert_safe(body, "detail body")
        assert MARKUP in body and "\\x1b[31mRED" in body and "\\u202e" in body
        assert_safe(screen_text(app), "detail screen")
        await pilot.press("escape")
        # facets (error code, requester)
        await pilot.press("t")
        panel = app.q(FacetPanel)
        await wait_until(pilot, lambda: panel.option_count > 0)
        text = screen_text(app)
        assert_safe(text, "facets")
        assert "AccessDenied\\x1b[5m" in text  # escaped; the rest is cut to the panel width
        await pilot.press("t")
        # findings
        await pilot.press("2")
        await wait_until(pilot, lambda: app.q(FindingsView).row_count > 0)
        text = screen_text(app)
        assert_safe(text, "findings")
        assert "blink]" in text
        # stats (top talkers)
        await pilot.press("4")
        await pilot.pause(0.1)
        text = screen_text(app)
        assert_safe(text, "stats")
        assert "[blink]eve" in text
        # malformed list
        await pilot.press("m")
        assert isinstance(app.screen, MalformedScreen)
        text = screen_text(app)
        assert_safe(text, "malformed list")
        assert "[bold red]HACKED[/bold red]" in text and "\\x1b[2J" in text
        await pilot.press("escape")
        assert_safe(screen_text(app), "status bar")
