"""The column path's sorts without a comparison sort (16-bit radix passes: ``_stable_order``), its
distinct values without a sort (``_distinct``) and the time table's ``ts`` list made without a call per
value (``columns.time_ts_list``): each against the plain numpy / Python form, and the findings made
with them against those made with the plain forms."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from s3tail.core import columns
from s3tail.core.rules import vector

sys.path.insert(0, str(Path(__file__).parent))
from test_rules_columns import by_columns, fingerprint, generated  # noqa: E402,F401


def _int_cases(rng):
    for n in (0, 1, 5, 255, 256, 300, 5000):
        yield rng.integers(0, 50, n)                                     # one radix pass
        yield rng.integers(-40000, 20000, n)                             # negatives, span < 65536
        yield rng.integers(-40000, 40000, n)                             # negatives, span > 65536
        yield rng.integers(0, 1 << 40, n)                                # wide: numpy's sort
        yield ((rng.integers(0, 30, n) + 1) << 32) | rng.integers(0, 9000, n)    # pair codes: two passes
        yield ((rng.integers(0, 30, n) + 1) << 32) | rng.integers(0, 90000, n)   # low part too wide
        yield (rng.integers(0, 3, n) << 50) | rng.integers(0, 9000, n)          # high part too wide
        yield rng.integers(0, 65536, n) + 7                              # span exactly at the limit
        yield np.concatenate((rng.integers(0, 10, n), [0, 65535]))       # span 65535: one pass
        yield rng.integers(0, 1_000_000, n)                              # int32: numpy's sort


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint32])
def test_stable_order_as_argsort_ints(dtype):
    rng = np.random.default_rng(3)
    for a in _int_cases(rng):
        if dtype is not np.int64:
            if a.size and (a.min() < np.iinfo(dtype).min or a.max() > np.iinfo(dtype).max):
                continue
        a = a.astype(dtype)
        got = vector._stable_order(a)
        assert got.tolist() == np.argsort(a, kind="stable").tolist()


def test_stable_order_as_argsort_floats():
    rng = np.random.default_rng(4)
    base = 1.7e9
    for n in (3, 255, 256, 4000):
        whole = base + rng.integers(0, 3000, n).astype(np.float64)
        cases = [whole, whole + 0.5, base + rng.random(n) * 100, whole * 1e6,
                 np.where(rng.random(n) < 0.1, np.nan, whole), np.where(rng.random(n) < 0.1, np.inf, whole),
                 np.where(rng.random(n) < 0.5, -0.0, 0.0), rng.integers(0, 70000, n).astype(np.float64)]
        for a in cases:
            got = vector._stable_order(a)
            assert got.tolist() == np.argsort(a, kind="stable").tolist()


def test_distinct_as_unique():
    rng = np.random.default_rng(5)
    for a in list(_int_cases(rng)) + [rng.integers(100000, 100100, 3000).astype(np.int32), np.array([7] * 9)]:
        u, inv = vector._distinct(a)
        assert len(set(u.tolist())) == len(u)                       # each value once
        assert sorted(u.tolist()) == np.unique(a).tolist()
        assert u[inv].tolist() == a.tolist()


def test_time_ts_list_as_map():
    tuples = [(1.5, "odd"), (7, "2000-01-01T00:00:07"), (None, "x")]
    for values in ([], [1, 2, 3], [1, tuples[0], 3], tuples, [0]):
        want = list(map(columns.time_ts, values))
        got = columns.time_ts_list(values)
        assert got == want and all(x is y for x, y in zip(got, want))
        assert got is not values
    with pytest.raises(TypeError):   # not an int: read as a tuple, as time_ts does
        columns.time_ts_list([True, 2])


@pytest.mark.parametrize("batch", [700, 5000])
def test_findings_as_with_plain_sorts(generated, batch, monkeypatch):
    """Findings (everything, in creation order, and the order they close) as with numpy's sort and
    ``np.unique``."""
    traffic = generated[:30000]

    def run():
        eng = by_columns(traffic, batch)
        return [fingerprint([f]) for f in eng.findings()]

    got = run()
    monkeypatch.setattr(vector, "_stable_order", lambda a: np.argsort(a, kind="stable"))
    monkeypatch.setattr(vector, "_distinct", lambda a: (lambda u, i: (u, i.reshape(-1)))(
        *np.unique(a, return_inverse=True)))
    assert got == run()


@pytest.mark.parametrize("plain", [False, True])
def test_light_rows_as_events(generated, plain, monkeypatch):
    """Light rows (``_rows``, with the C ``take`` or its Python form) hold the events' own fields."""
    if plain:
        monkeypatch.setattr(vector, "_take", vector._take_py)
    events = generated[:4000]
    b = columns.from_events(events, columns.Dicts())
    rng = np.random.default_rng(6)
    sel = np.sort(rng.choice(len(events), 1500, replace=False))
    codes = {name: b.codes[name][sel] for name in vector.STORE_TABLES}
    sent = b.nums["bytes_sent"][sel]
    rows = vector._rows(b.dicts, codes, sent, b.log_line[sel], None)
    fields = vector.Row._fields[:-2]
    assert len(rows) == len(sel)
    for r, i, s in zip(rows, sel.tolist(), sent.tolist()):
        want = tuple(getattr(events[i], f) for f in fields)
        if s == -2:     # a value the column cannot hold: the event decides (not a light row's)
            want = want[:9] + (r.bytes_sent,) + want[10:]
        assert tuple(r) == want + (None, None)
    ts = np.arange(len(sel), dtype=np.float64) + 0.5
    assert [r.ts for r in vector._rows(b.dicts, codes, sent, b.log_line[sel], ts)] == ts.tolist()
    empty = {name: c[:0] for name, c in codes.items()}
    assert vector._rows(b.dicts, empty, sent[:0], b.log_line[sel][:0], None) == []
