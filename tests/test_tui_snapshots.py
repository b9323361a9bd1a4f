"""Text snapshots of every view of the terminal app, at 80x24 and 120x40.

Fixed input (generated log lines with fixed times, one crafted hostile line, a posture snapshot),
``--no-follow``, and the screen rendered to plain text by the compositor, compared with the baseline
``tests/snapshots/<view>-<W>x<H>.txt``. Plain text keeps the diffs reviewable; colours are covered by
the pilot tests. Ingest rates (the only wall-clock figures on screen) are masked.

Regenerate the baselines after an intended change, then review ``git diff tests/snapshots``::

    S3TAIL_UPDATE_SNAPSHOTS=1 python -m pytest tests/test_tui_snapshots.py
"""
from __future__ import annotations

import difflib
import os
import re
import shutil
from pathlib import Path

import pytest

from s3tail.core.demo import DemoTraffic, parse_lines
from s3tail.tui.app import DEMO_SNAPSHOT, S3tailApp, prepare
from s3tail.tui.screens import DetailScreen, HelpScreen
from s3tail.tui.testing import screen_text, wait_until
from s3tail.tui.widgets import FindingsView

SNAPSHOTS = Path(__file__).with_name("snapshots")
UPDATE = os.environ.get("S3TAIL_UPDATE_SNAPSHOTS") == "1"
EPOCH = 1_767_225_600  # 2026-01-01T00:00:00Z
SIZES = [(80, 24), (120, 40)]
VIEWS = ["requests", "findings", "posture", "stats", "detail", "help"]
# the ingest rate, in the status bar and in a source's state: "4,411/s", "0/s"
RATE = re.compile(r"\d[\d,.]*/s")
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def fixture_lines() -> list[str]:
    """Ten minutes of traffic with attack episodes, then one hostile line (the newest)."""
    traffic = DemoTraffic(seed=11, episode_every=80)
    lines: list[str] = []
    for minute in range(10):
        lines += traffic.lines(25, EPOCH + 60 * minute)
    lines.append(traffic.line(
        EPOCH + 660, bucket="acme-prod-data", ip="198.51.100.66",
        requester="arn:aws:iam::444455556666:user/[blink]mallory", op="REST.GET.OBJECT",
        key="secret/%1B%5B31mred%5Bbold%20red%5Dx%5B/%5D", status=403, err="AccessDenied", sent=243,
        ua="evil\x1b[31mred\x1b]52;c;cHduZWQ=\x07[bold red]x[/]"))
    return lines


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """cwd with ``logs/access.log`` and ``posture.json``: relative paths keep the screens stable."""
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "access.log").write_text("\n".join(fixture_lines()) + "\n")
    shutil.copy(DEMO_SNAPSHOT, tmp_path / "posture.json")
    monkeypatch.chdir(tmp_path)
    for name in ("NO_COLOR", "S3TAIL_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def normalise(text: str) -> str:
    """Mask the ingest rates. On the status bar everything after the first rate goes too: the
    rate's width moves where an 80-column status bar is cut."""
    out = []
    for line in text.splitlines():
        if " ev " in line and RATE.search(line):
            line = line[: RATE.search(line).start()] + "<rate>"
        out.append(RATE.sub("<rate>", line).rstrip())
    return "\n".join(out) + "\n"


def compare(name: str, text: str) -> str | None:
    """None when ``text`` matches the baseline ``name``; else a unified diff. Writes it when updating."""
    path = SNAPSHOTS / f"{name}.txt"
    if UPDATE:
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return None
    if not path.exists():
        return f"{path} is missing: run with S3TAIL_UPDATE_SNAPSHOTS=1 and review it\n"
    want = path.read_text(encoding="utf-8")
    if want == text:
        return None
    return "".join(difflib.unified_diff(want.splitlines(True), text.splitlines(True),
                                        f"{path.name} (baseline)", f"{path.name} (now)"))


async def capture_views(size: tuple[int, int]) -> dict[str, str]:
    args, config, results = prepare(["--no-follow", "--posture-snapshot", "posture.json", "logs"])
    app = S3tailApp(args, config, results)
    expected = sum(1 for item in parse_lines(fixture_lines(), 1) if hasattr(item, "ts"))
    shots: dict[str, str] = {}
    async with app.run_test(size=size) as pilot:
        await wait_until(pilot, lambda: len(app.store) == expected and app.findings and app.states
                         and all("done" in s for s in app.states.values()), what="the fixture to load")

        async def shot(view: str) -> None:
            await pilot.pause(0.1)
            await pilot.pause()
            shots[view] = normalise(screen_text(app))

        await pilot.press("1")
        await shot("requests")
        await pilot.press("2")
        await wait_until(pilot, lambda: app.query_one(FindingsView).row_count > 0, what="findings")
        await shot("findings")
        await pilot.press("3")
        await shot("posture")
        await pilot.press("4")
        await shot("stats")
        await pilot.press("1", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, DetailScreen), what="the detail")
        await shot("detail")
        await pilot.press("escape", "question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), what="the keys help")
        await shot("help")
        await pilot.press("escape")
    return shots


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
async def test_every_view_matches_its_snapshot(workdir, size):
    shots = await capture_views(size)
    assert list(shots) == VIEWS
    for view, text in shots.items():
        lines = text.splitlines()
        assert len(lines) == size[1] and all(len(line) <= size[0] for line in lines), view
        # log text reaches the screen only as visible escapes, never as control characters
        assert not CONTROL.search(text), (view, CONTROL.search(text))
    problems = [d for view, text in shots.items() if (d := compare(f"{view}-{size[0]}x{size[1]}", text))]
    # the hostile row is the newest: follow mode shows it, escaped, markup shown as typed
    if r"secret/\x1b[31mred[bold red]x" not in shots["requests"]:  # the key column may cut the tail
        problems.append("requests: the newest row (the cursor's, in follow mode) is not on screen")
    want = ["[blink]mallory"] + ([r"evil\x1b[31mred\x1b]52;c;cHduZWQ=\x07[bold red]x[/]"] if size[1] >= 40 else [])
    if not all(w in shots["detail"] for w in want):
        problems.append(f"detail: the hostile row is not shown as typed and escaped ({want})")
    assert not problems, "screens differ from tests/snapshots (S3TAIL_UPDATE_SNAPSHOTS=1 " \
                         "regenerates them after a reviewed change):\n" + "\n".join(problems)
