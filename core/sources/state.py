"""Source status for the app's status bar and stderr, ``--since`` parsing, and checkpoint files."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from typing import IO, Any, Callable

from ..safe import visible

STATUSES = ("reading", "following", "retrying", "paused", "error", "done")


@dataclasses.dataclass
class SourceState:
    """What one source is doing. A copy is handed to ``on_state`` on every change."""

    name: str
    status: str = "reading"
    retry_in: float | None = None      # seconds until the next attempt while ``retrying``
    last_error: str | None = None      # the last error, with the object key when it concerns one object
    objects_done: int = 0              # log objects (or files) read completely
    objects_pending: int = 0           # listed and not read yet
    bytes_done: int = 0
    lag_seconds: float | None = None   # how far the newest object read is behind now (S3)
    rate: float = 0.0                  # items per second, recent average
    items: int = 0                     # items handed out (events, malformed, skipped)

    def describe(self) -> str:
        """A short line for a status bar, safe to print (log-written text passes through ``visible``)."""
        parts = [visible(self.name), self.status]
        if self.status == "retrying" and self.retry_in is not None:
            parts[-1] = f"retrying in {self.retry_in:.0f}s"
        if self.objects_pending:
            parts.append(f"{self.objects_done}/{self.objects_done + self.objects_pending} obj")
        elif self.objects_done:
            parts.append(f"{self.objects_done} obj")
        if self.bytes_done:
            parts.append(human_bytes(self.bytes_done))
        if self.rate >= 0.5:
            parts.append(f"{self.rate:.0f}/s")
        if self.lag_seconds is not None and self.status in ("following", "retrying"):
            parts.append(f"lag {human_seconds(self.lag_seconds)}")
        if self.last_error and self.status in ("retrying", "error"):
            parts.append(visible(self.last_error)[:120])
        return " · ".join(parts)


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"  # pragma: no cover


def human_seconds(s: float) -> str:
    s = max(0, int(s))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


class RateMeter:
    """Items per second over a short sliding window."""

    def __init__(self, window: float = 5.0):
        self.window = window
        self.marks: list[tuple[float, int]] = []

    def add(self, total: int, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        self.marks.append((now, total))
        while len(self.marks) > 2 and now - self.marks[0][0] > self.window:
            self.marks.pop(0)
        t0, n0 = self.marks[0]
        return (total - n0) / (now - t0) if now - t0 > 0.2 else 0.0


_REL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.I)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``2h``, ``1d``, ``30m``, ``45s``, ``1w`` before now, or an ISO 8601 time (UTC when no zone)."""
    now = now or datetime.now(timezone.utc)
    m = _REL.match(text)
    if m:
        return now - timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2).lower()])
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"bad time {text!r}: use 30m, 2h, 1d or an ISO time like 2024-05-01T10:00Z") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc)


def state_dir() -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "s3tail")


def default_state_path(source: str) -> str:
    digest = hashlib.sha256(source.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return os.path.join(state_dir(), f"{digest}.json")


class Checkpoint:
    """A JSON file ``{"version": 1, "sources": {name: {...}}}`` written atomically (tempfile + os.replace).

    Only the thread that iterates :func:`s3tail.core.sources.iter_items` touches it: sources send commit
    messages after the items they cover, so what is recorded has been handed to the consumer.
    """

    def __init__(self, path: str):
        self.path = path
        self.data: dict[str, Any] = {"version": 1, "sources": {}}
        self.dirty = False
        self.last_save = 0.0
        try:
            with open(path, encoding="utf-8") as fh:
                loaded = json.load(fh)
            if isinstance(loaded, dict) and isinstance(loaded.get("sources"), dict):
                self.data = loaded
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            from ..reader import SourceError

            raise SourceError(f"{path}: unreadable state file ({exc}); remove it or use --no-state") from None

    def section(self, name: str) -> dict[str, Any]:
        return self.data["sources"].setdefault(name, {})

    def snapshot(self, name: str) -> dict[str, Any]:
        """A deep copy for a source to start from (it runs in another thread)."""
        return json.loads(json.dumps(self.data["sources"].get(name, {})))

    def apply(self, name: str, fn: Callable[[dict[str, Any]], None]) -> None:
        fn(self.section(name))
        self.dirty = True

    def due(self, every: float = 1.0) -> bool:
        return self.dirty and time.monotonic() - self.last_save >= every

    def save(self) -> None:
        if not self.dirty:
            return
        folder = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(folder, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".s3tail-state-", dir=folder)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(self.data, fh, separators=(",", ":"))
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
        except OSError as exc:
            from ..reader import SourceError

            raise SourceError(f"{self.path}: cannot write state file ({exc.strerror or exc})") from None
        self.dirty = False
        self.last_save = time.monotonic()


OnState = Callable[[str, SourceState], None]


def stderr_state_printer(stream: IO[str] | None = None) -> OnState:
    """``on_state`` for headless commands: one line on stderr when a source's status changes
    (following, retrying in N s with the error, error, back to normal after a retry). The quiet
    path of a one-shot read (reading, done) prints nothing; per-object errors are reported as
    malformed items by the command itself."""
    seen: dict[str, tuple] = {}

    def show(_name: str, state: SourceState) -> None:
        out = stream or sys.stderr
        trouble = state.status in ("retrying", "error")
        mark = (state.status, state.last_error if trouble else None,
                round(state.retry_in or 0) if state.status == "retrying" else None)
        before = seen.get(state.name)
        if before == mark:
            return
        seen[state.name] = mark
        if state.status in ("reading", "done") and (before is None or before[0] not in ("retrying", "paused")):
            return
        if state.status == "error":
            return  # the command ends with this error on its own line
        out.write(f"s3tail: {state.describe()}\n")
        out.flush()

    return show


def progress_printer(stream: IO[str] | None = None, every: float = 0.5) -> OnState:
    """``on_state`` showing objects/bytes/rate of a backfill on one rewritten line, only on a terminal."""
    last = [0.0, 0]

    def show(_name: str, state: SourceState) -> None:
        out = stream or sys.stderr
        if not getattr(out, "isatty", lambda: False)():
            return
        now = time.monotonic()
        final = state.status in ("done", "following", "error")
        if not final and now - last[0] < every:
            return
        last[0] = now
        total = state.objects_done + state.objects_pending
        line = (f"{visible(state.name)}: {state.objects_done}/{total} objects, "
                f"{human_bytes(state.bytes_done)}, {state.rate:.0f} items/s")
        pad = max(0, last[1] - len(line))
        last[1] = len(line)
        out.write("\r" + line + " " * pad + ("\n" if final else ""))
        out.flush()

    return show


def chain(*fns: OnState | None) -> OnState:
    """Several ``on_state`` callbacks as one."""
    live = [f for f in fns if f is not None]

    def call(name: str, state: SourceState) -> None:
        for f in live:
            f(name, state)

    return call
