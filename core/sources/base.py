"""What every source shares: its state, and the messages it sends to the consuming thread."""
from __future__ import annotations

import dataclasses
import queue
import threading
import time
from typing import Any, Callable

from ..reader import count_items
from .state import RateMeter, SourceState


class Stopped(Exception):
    """The consumer asked the sources to end (``stop`` set, or the iterator closed)."""


class Source:
    """A source runs in its own thread (:meth:`run`) and talks to the consumer through a queue:

    ``("items", [Event|Malformed|Skipped, ...])``, ``("state", SourceState)``,
    ``("commit", name, fn)`` (apply ``fn`` to this source's checkpoint section: everything sent
    before it has been handed out), ``("error", SourceError)`` and ``("end", name)``.
    """

    STATE_EVERY = 0.25  # counters alone update ``on_state`` at most this often

    def __init__(self, name: str):
        self.name = name
        self.state = SourceState(name)
        self._lock = threading.Lock()
        self._rate = RateMeter()
        self._last_sent = 0.0
        self.q: queue.Queue | None = None
        self.halt: threading.Event = threading.Event()
        self.blocks = False  # block mode: plain access-log lines are handed out as RawBlock, unparsed
        self.block_bytes: int | None = None   # block mode: bytes per RawBlock of a file (None: the source's)

    def bind(self, q: queue.Queue, halt: threading.Event) -> None:
        self.q, self.halt = q, halt

    def run(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- messages ---------------------------------------------------------------------------------
    def put(self, msg: tuple) -> None:
        assert self.q is not None
        while True:
            try:
                self.q.put(msg, timeout=0.2)
                return
            except queue.Full:
                if self.halt.is_set():
                    raise Stopped from None

    def emit(self, items: list) -> None:
        if not items:
            return
        self.put(("items", items))
        with self._lock:
            self.state.items += count_items(items)
            self.state.rate = self._rate.add(self.state.items)
        self.update()

    def commit(self, fn: Callable[[dict[str, Any]], None]) -> None:
        self.put(("commit", self.name, fn))

    def update(self, **changes: Any) -> None:
        """Change the state; status, error and retry changes are sent at once, counters throttled."""
        with self._lock:
            urgent = any(getattr(self.state, k) != v for k, v in changes.items()
                         if k in ("status", "last_error", "retry_in"))
            for k, v in changes.items():
                setattr(self.state, k, v)
            self.refresh()
            now = time.monotonic()
            if not urgent and now - self._last_sent < self.STATE_EVERY:
                return
            self._last_sent = now
            snap = dataclasses.replace(self.state)
        self.put(("state", snap))

    def refresh(self) -> None:
        """Hook to recompute derived fields (lag) under the lock before a state is sent."""

    def wait(self, seconds: float) -> None:
        if self.halt.wait(seconds):
            raise Stopped
