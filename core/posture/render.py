"""Output of posture results: JSON lines (the contract) or a plain-text table (no colour)."""
from __future__ import annotations

import json
import textwrap
from collections import Counter
from typing import Iterable, TextIO

from .model import STATUSES, CheckResult

WIDTH = 80
ACCOUNT_LABEL = "(account)"
_INDENT = "    "


def write_jsonl(results: Iterable[CheckResult], out: TextIO) -> None:
    for result in results:
        out.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")


def write_text(results: list[CheckResult], out: TextIO, hidden: int = 0) -> None:
    """One row per result (bucket, severity, status, check), then its title, what was seen and
    the fix. Fix lines are not wrapped, so the command can be copied whole."""
    names = [r.bucket or ACCOUNT_LABEL for r in results]
    width = min(max([len("BUCKET"), *map(len, names)]), 32)
    row = f"{{:<{width}}} {{:<8}} {{:<7}} {{}}"
    out.write(row.format("BUCKET", "SEVERITY", "STATUS", "CHECK") + "\n")
    for name, result in zip(names, results):
        out.write(row.format(name, result.severity, result.status, result.check_id) + "\n")
        out.write(_wrap(result.title, _INDENT))
        out.write(_wrap(result.detail, _INDENT + "seen: ", _INDENT + "      "))
        if result.remediation:
            out.write(f"{_INDENT}fix:  {result.remediation}\n")
    out.write(_summary(results, hidden) + "\n")


def _wrap(text: str, first: str, rest: str | None = None) -> str:
    lines = textwrap.wrap(text, WIDTH, initial_indent=first, subsequent_indent=rest or first,
                          break_on_hyphens=False, break_long_words=False)
    return "".join(line + "\n" for line in lines)


def _summary(results: list[CheckResult], hidden: int) -> str:
    counts = Counter(r.status for r in results)
    parts = [f"{counts[s]} {s}" for s in STATUSES if counts[s]]
    text = f"{len(results)} result(s)" + (f": {', '.join(parts)}" if parts else "")
    if hidden:
        text += f" ({hidden} passing hidden; --all shows them)"
    return text
