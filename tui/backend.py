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
from s3tail.core.columns import Dicts
from s3tail.core.ingest import coalesce, iter_column_batches_of
from s3tail.core.reader import count_items
from s3tail.core.sources import iter_batches as _iter_batches
from s3tail.core.sources import parse_since
from s3tail.core.store import FACET_FIELDS, EventStore, export_events


class Appended(NamedTuple):
    """What one ``SharedStore.append`` did, for the UI thread to apply later."""
    batch: Any                    # the events appended: a list of Event, or a columns.ColumnBatch
    positions: np.ndarray | None  # store positions of the new rows; None when existing ones moved
    version: int                  # store.version right after this append
    length: int                   # len(store) after
    evicted: int                  # store.evicted after (rows dropped at max_rows, in total)
    ts: np.ndarray                # the new rows' event times (float64, NaN = none), in batch order

    @property
    def events(self) -> list:
        """The appended events (built on demand from a column batch)."""
        return self.batch if isinstance(self.batch, list) else self.batch.events()


class SharedStore:
    """The :class:`EventStore`, shared by the ingest thread (which appends: the costly part, parsing
    values into columns) and the UI thread (which reads the rows on screen, filters, facets). One
    re-entrant lock serialises them; every method of the store is available here under it."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.lock = threading.RLock()

    def append(self, batch: Any) -> Appended:
        """Append a list of events or a :class:`~s3tail.core.columns.ColumnBatch`."""
        if isinstance(batch, list):
            ts = np.fromiter((np.nan if e.ts is None else e.ts for e in batch), dtype=np.float64,
                             count=len(batch))
        else:
            ts = batch.ts
        with self.lock:
            positions = (self.store.append_batch(batch) if isinstance(batch, list)
                         else self.store.append_columns(batch))
            return Appended(batch, positions, self.store.version, len(self.store),
                            getattr(self.store, "evicted", 0), ts)

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


def iter_batches(args: Any, *, on_state: Callable[[str, str], None] | None = None,
                 stop: threading.Event | None = None, blocks: bool = True) -> Iterator[list[Any]]:
    """Lists of Events, Malformed, Skipped and (``blocks``) RawBlock from ``args.sources`` (redacted),
    as they arrive from the source threads; ``on_state(name, description)`` on every state change (the description includes
    the name)."""
    def state_cb(name: str, state: Any) -> None:
        if on_state is not None:
            on_state(str(name), state.describe() if hasattr(state, "describe") else str(state))
    yield from _iter_batches(args, redact=True, on_state=state_cb, stop=stop, blocks=blocks)


__all__ = ["Appended", "SharedStore", "ConfigError", "Dicts", "coalesce", "iter_column_batches_of", "count_items", "iter_batches", "EventStore", "FACET_FIELDS", "FilterError", "Malformed", "RuleEngine",
           "Skipped", "SourceError", "compile_filter", "export_events", "iter_items", "load_config",
           "parse_since"]
