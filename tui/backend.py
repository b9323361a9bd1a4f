"""The headless core as the terminal app sees it: one place that names what the app uses.

Everything here is the real core (``s3tail.core.store``, ``.filter``, ``.rules``, ``.sources``,
``.config``); the only code is the adapter that turns the sources' ``SourceState`` into the one-line
descriptions the status bar shows.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Iterator, NamedTuple

import numpy as np

from s3tail.core.config import ConfigError, load_config
from s3tail.core.event import Event, Malformed, Skipped
from s3tail.core.filter import FilterError, compile_filter
from s3tail.core.reader import SourceError
from s3tail.core.rules import RuleEngine
from s3tail.core.sources import iter_items as _iter_items
from s3tail.core.sources import parse_since
from s3tail.core.store import FACET_FIELDS, EventStore, export_events


class Appended(NamedTuple):
    """What one ``SharedStore.append`` did, for the UI thread to apply later."""
    events: list
    positions: np.ndarray | None  # store positions of the new rows; None when existing ones moved
    version: int                  # store.version right after this append
    length: int                   # len(store) after
    evicted: int                  # store.evicted after (rows dropped at max_rows, in total)


class SharedStore:
    """The :class:`EventStore`, shared by the ingest thread (which appends: the costly part, parsing
    values into columns) and the UI thread (which reads the rows on screen, filters, facets). One
    re-entrant lock serialises them; every method of the store is available here under it."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.lock = threading.RLock()

    def append(self, events: list) -> Appended:
        with self.lock:
            positions = self.store.append_batch(events)
            return Appended(events, positions, self.store.version, len(self.store),
                            getattr(self.store, "evicted", 0))

    def __len__(self) -> int:
        with self.lock:
            return len(self.store)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.store, name)
        if not callable(attr):
            return attr
        lock = self.lock

        def locked(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return attr(*args, **kwargs)
        return locked


def iter_items(args: Any, *, on_state: Callable[[str, str], None] | None = None,
               stop: threading.Event | None = None) -> Iterator[Event | Malformed | Skipped]:
    """Events, Malformed and Skipped from ``args.sources`` (redacted), in source threads;
    ``on_state(name, description)`` on every state change (the description includes the name)."""
    def state_cb(name: str, state: Any) -> None:
        if on_state is not None:
            on_state(str(name), state.describe() if hasattr(state, "describe") else str(state))
    yield from _iter_items(args, redact=True, on_state=state_cb, stop=stop)


__all__ = ["Appended", "SharedStore", "ConfigError", "EventStore", "FACET_FIELDS", "FilterError", "Malformed", "RuleEngine",
           "Skipped", "SourceError", "compile_filter", "export_events", "iter_items", "load_config",
           "parse_since"]
