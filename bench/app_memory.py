"""Resident memory of the terminal app holding N rows, read from outside (issue 7's check).

Starts ``s3tail --no-follow FILE`` in a real terminal (a detached tmux pane, 120x40), waits until the
status bar shows every row of the file read and the source done, then reads the app's resident set
(``VmRSS`` of ``/proc/PID/status``, PID from tmux). The same for ``s3tail --no-follow EMPTY_DIR`` gives
the empty app; the difference over the rows held is the figure.

    python bench/app_memory.py [--lines 1000000] [--config FILE] [--runs 1] [--follow]

``--follow`` runs the app as it runs by default (following the file, which does not grow here) and
reads its memory once it shows every row (it gives freed memory back when the input goes quiet).

Target: at most 150 bytes per row above the empty app.
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import common  # noqa: E402
from tmuxdriver import TmuxPane, s3tail_command  # noqa: E402


def rss_of(pid: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmRSS"))


def held(args: list[str], rows: int, timeout: float, follow: bool = False) -> tuple[int, str]:
    """(resident bytes, status line) of the app once it shows ``rows`` events and its source is done
    (``follow``: the app follows the file, as it does by default, and has caught up)."""
    want = f"{rows:,} ev"
    with TmuxPane(s3tail_command(*([] if follow else ["--no-follow"]), *args), width=120, height=40) as pane:
        screen = pane.wait_for(lambda s: want in s and (follow or "done" in s), timeout=timeout,
                               what=f"the status bar to show {want}" + ("" if follow else " and the source done"))
        time.sleep(3)  # let the last batch's garbage go (the app gives freed memory back after a read)
        pid = pane.fmt("#{pane_pid}")
        status = next((ln for ln in screen.splitlines() if want in ln), "").strip()
        rss = rss_of(pid)
        pane.press("q")
        return rss, status


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--config", help="a config file for the app (e.g. public_buckets)")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--follow", action="store_true", help="follow the file (the default mode), not --no-follow")
    a = ap.parse_args()
    common.header("terminal app: resident memory holding N rows, read from outside")
    path = common.data_file(a.lines)
    extra = ["--config", a.config] if a.config else []
    empties, fulls = [], []
    with tempfile.TemporaryDirectory() as empty:
        for _ in range(a.runs):
            rss, _ = held([*extra, empty], 0, 60, a.follow)
            empties.append(rss)
            rss, status = held([*extra, str(path)], a.lines, a.timeout, a.follow)
            fulls.append(rss)
            findings = re.search(r"([\d,]+) findings", status)
            print(f"empty {rss_of_mib(empties[-1])}, full {rss_of_mib(rss)}; "
                  f"findings {findings.group(1) if findings else '?'}")
    per_row = [(f - e) / a.lines for f, e in zip(fulls, empties)]
    print(f"bytes per row above the empty app: {common.spread(per_row, '{:.0f}')}")
    print(f"target <= 150 bytes/row: {'met' if statistics.median(per_row) <= 150 else 'NOT met'}")
    print(f"load average at end: {common.load()}")
    return 0


def rss_of_mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


if __name__ == "__main__":
    raise SystemExit(main())
