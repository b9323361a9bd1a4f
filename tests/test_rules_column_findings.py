"""Findings of the stateless rules on the column path: the C ``join_lazy`` against its pure-Python form,
the C maker's gathered columns against the Python loop, findings left out of the cyclic garbage
collector (a dropped engine is still collected), and the bulk path against the event path (either
join; joins across batches, reads between batches, the refs cap, rows without a time)."""
from __future__ import annotations

import gc
import random
import sys
import weakref
from pathlib import Path

import numpy as np
import pytest

from s3tail.core import columns
from s3tail.core.columns import from_events
from s3tail.core.rules import RuleEngine, model, vector
from s3tail.core.rules.builtin import by_actor
from s3tail.core.rules.model import MAX_REFS, MAX_SAMPLES, Finding, LazyFinding
from s3tail.core.rules.vector import _join_py, _Parts

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "rules"))
sys.path.insert(0, str(Path(__file__).parent))
import rulekit  # noqa: E402
from test_rules_columns import anonymous_traffic, by_columns, by_events, fingerprint  # noqa: E402

C_JOIN = getattr(vector.speedups, "join_lazy", None)
ANON = "s3.anonymous_access"


class Src:
    """A stand-in evidence source (only its identity matters to a join)."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"Src({self.name})"


def made(rnd: random.Random, k: int, first: Src) -> Finding:
    """A finding in one of the states a join meets: lazy (its source, or parts of earlier joins), read
    (source None), or eager (a plain Finding)."""
    kind = rnd.choice(["lazy", "lazy", "parts", "read", "eager"])
    f = Finding.__new__(LazyFinding if kind != "eager" else Finding)
    f.count = rnd.choice([1, 3, MAX_REFS - 2, MAX_REFS - 1, MAX_REFS, MAX_REFS + 5, rnd.randrange(1, 3 * MAX_REFS)])
    f.last_ts = rnd.choice([100, 100.5, 200.0])
    if kind == "eager":
        return f
    f._at = k
    f._src = None if kind == "read" else first
    if kind == "parts":
        f._src = _Parts(first, k)
        f._src.parts += (Src("earlier"), 7, 2)
    return f


def state(f) -> tuple:
    src = f._src if type(f) is LazyFinding else None
    parts = [repr(p) for p in src.parts] if type(src) is _Parts else repr(src)
    return type(f), type(src), f.count, f.last_ts, parts


@pytest.mark.parametrize("seed", range(8))
def test_join_lazy_c_as_python(seed):
    if C_JOIN is None:
        pytest.skip("C extension not built: only the pure-Python join exists")
    first = Src("first")
    out = []
    for join in (C_JOIN, _join_py):   # the same findings and segments for each
        rnd = random.Random(seed)
        mine = [made(rnd, k, first) for k in range(300)]
        counts = [rnd.choice([1, 2, 5, MAX_REFS, 10 ** 20]) for _ in mine]
        lasts = [rnd.choice([50, 100, 150.5, 250]) for _ in mine]
        segs = [rnd.randrange(1000) for _ in mine]
        fs = [(type(f), f._src if type(f) is LazyFinding else None) for f in mine]
        touched: dict = {"before": None}
        read = join(mine, counts, lasts, Src("batch"), segs, Finding, LazyFinding, _Parts, MAX_REFS, touched)
        assert list(touched)[1:] == mine
        out.append((read, [state(f) for f in mine]))
    assert out[0] == out[1]
    read, states = out[0]
    assert read == [k for k, (cls, src) in enumerate(fs) if cls is not LazyFinding or src is None]
    assert any(s[1] is _Parts and s[4][-3:] == ["Src(batch)", repr(segs[k]), repr(counts[k])]
               for k, s in enumerate(states))


def test_join_lazy_refuses_what_is_not_a_finding():
    if C_JOIN is None:
        pytest.skip("C extension not built")
    for join in (C_JOIN, _join_py):
        with pytest.raises(TypeError):
            join([object()], [1], [1.0], Src("b"), [0], Finding, LazyFinding, _Parts, MAX_REFS, {})
    with pytest.raises(ValueError):
        C_JOIN([], [1], [], Src("b"), [], Finding, LazyFinding, _Parts, MAX_REFS, {})


def run_columns(events, batch: int, read_every: int = 0) -> RuleEngine:
    engine = RuleEngine({})
    dicts = columns.Dicts()
    for k, i in enumerate(range(0, len(events), batch)):
        engine.process_columns(from_events(events[i:i + batch], dicts))
        if read_every:   # read some findings between batches: later joins extend their refs at once
            for f in engine.findings()[k % read_every::read_every]:
                assert len(f.event_refs) <= MAX_REFS and len(f.evidence) <= MAX_SAMPLES
    engine.flush()
    return engine


@pytest.mark.parametrize("join", ["c", "python"])
@pytest.mark.parametrize("batch,read_every", [(7, 0), (64, 3), (500, 0), (500, 2)])
def test_bulk_joins_either_join_as_the_event_path(join, batch, read_every, monkeypatch):
    """Anonymous visitors joining their open findings across many batches (a busy one past MAX_REFS),
    findings read (or not) between batches: the event path's findings, with the C or the Python join."""
    if join == "c" and C_JOIN is None:
        pytest.skip("C extension not built")
    monkeypatch.setattr(vector, "_join", C_JOIN if join == "c" else _join_py)
    events = anonymous_traffic(batch)
    col = run_columns(events, batch, read_every)
    ref = by_events(events, batch)
    assert fingerprint(col.findings()) == fingerprint(ref.findings())
    busy = max((f for f in col.findings() if f.rule_id == ANON), key=lambda f: f.count)
    assert busy.count > MAX_REFS and len(busy.event_refs) == MAX_REFS
    key = lambda f: fingerprint([f])[0]  # noqa: E731
    assert [f.to_dict() for f in sorted(col.findings(), key=key)] == \
        [f.to_dict() for f in sorted(ref.findings(), key=key)]


def test_untracked_findings_do_not_keep_a_dropped_engine():
    """Findings made in bulk (and their joined parts) are left out of the cyclic garbage collector: no
    cycle may pass through them, so a dropped engine (engine and runner refer to each other) is still
    collected, with findings read, joined, and never read."""
    if model._NEW_OBJECTS is None or C_JOIN is None:
        pytest.skip("C extension not built: every object is tracked")
    events = anonymous_traffic(3)
    engine = RuleEngine({})
    dicts = columns.Dicts()
    for i in range(0, len(events), 200):
        engine.process_columns(from_events(events[i:i + 200], dicts))
    lazy = [f for f in engine.findings() if type(f) is LazyFinding]
    joined = [f for f in lazy if type(f._src) is _Parts]
    assert lazy and joined
    assert not any(gc.is_tracked(f) for f in lazy) and not gc.is_tracked(joined[0]._src)
    lazy[0].event_refs, joined[0].evidence, lazy[-1].dedup_key   # noqa: B018  (some read)
    ref = weakref.ref(engine)
    del engine, lazy, joined
    gc.collect()
    assert ref() is None


@pytest.mark.parametrize("dedup", [60, 0.05])
def test_rows_without_a_time_close_at_the_watermark_plus_dedup(dedup):
    """Rows whose time did not parse (``ts`` None: the engine's clock stands in) among timed ones: the
    findings they open close at ``watermark + dedup`` as in the event path, whatever the dedup's type
    (int or float)."""
    rnd = random.Random(11)
    events = []
    for i in range(900):
        timed = i % 7 != 3
        at = i * 20.0
        events.append(rulekit.ev(at=at, requester=None, remote_ip=f"192.0.2.{rnd.randrange(40)}",
                                 **({} if timed else {"ts": None, "time": "not-a-time"})))
    config = {"rules": {ANON: {"dedup": dedup}}}
    for batch in (50, 900):
        ref = by_events(events, batch, config)
        col = by_columns(events, batch, config)
        assert fingerprint(col.findings()) == fingerprint(ref.findings())
        assert sorted(f.close_ts for f in col.findings()) == sorted(f.close_ts for f in ref.findings())


def test_new_findings_gathered_columns_c_as_python():
    """Columns given as ``(values, codes[, default])``: gathered by the C maker as by the Python loop
    (None values replaced by the default only where one is given); an index out of range is refused."""
    if model._NEW_OBJECTS is None:
        pytest.skip("C extension not built: only the pure-Python loop exists")
    rng = np.random.default_rng(3)
    n = 200
    buckets, ips, times = ["b0", "b1", None], [f"10.0.0.{i}" for i in range(50)], [None] + list(range(100, 140))
    args = ("s3.x", "high", "T", (buckets, rng.integers(0, 3, n).astype(np.int32)), [None] * n,
            (ips, rng.integers(0, 50, n)), by_actor, (times, rng.integers(0, 41, n).astype(np.int32), 99.5),
            (times, rng.integers(0, 41, n)), [1.0] * n, [1] * n, Src("s"), (list(range(n)), np.arange(n)))
    c_made = model.new_findings(*args)
    py_made = model.new_findings(*args, maker=False)
    key = lambda f: (f.bucket, f.requester, f.remote_ip, f.first_ts, f.last_ts, f._at)  # noqa: E731
    assert [key(f) for f in c_made] == [key(f) for f in py_made]
    assert None in [f.bucket for f in c_made] and None in [f.last_ts for f in c_made]
    assert 99.5 in [f.first_ts for f in c_made] and None not in [f.first_ts for f in c_made]
    bad = args[:3] + ((buckets, np.array([0] * (n - 1) + [3])),) + args[4:]
    for maker in (None, False):
        with pytest.raises(IndexError):
            model.new_findings(*bad, maker=maker)
