"""The column path's cheaper pieces against plain references: the C ``take``, ``mark`` and ``hash_ids``
against their pure-Python forms, the shared small ints of new findings, the rules' per-code bit tables
against the conditions gathered one rule at a time (and both against the event path), and the window
stores' per-group sums against their entries."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from s3tail.core import columns
from s3tail.core.columns import from_events
from s3tail.core.rules import RuleEngine, engine, vector
from s3tail.core.rules.model import Finding, LazyFinding

sys.path.insert(0, str(Path(__file__).parent))
from test_rules_columns import WEB, by_columns, by_events, fingerprint, generated  # noqa: E402,F401

C = vector.speedups
needs_c = pytest.mark.skipif(C is None or not hasattr(C, "take"),
                             reason="C extension not built (no compiler) or S3TAIL_PURE_PYTHON set")


@pytest.fixture(scope="module")
def traffic(generated) -> list:
    return generated[:20000]


# ------------------------------------------------------------------ C helpers against Python


@needs_c
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_take_as_python(dtype):
    rng = np.random.default_rng(1)
    values = [None if i % 7 == 0 else (i * 3 if i % 2 else f"v{i}") for i in range(500)]
    nums = [None if i % 5 == 0 else i * 10 for i in range(500)]
    for _ in range(50):
        idx = rng.integers(0, 500, int(rng.integers(0, 300))).astype(dtype)
        assert C.take(values, idx) == vector._take_py(values, idx)
        assert C.take(values, idx, "d") == vector._take_py(values, idx, "d")
        assert C.take(nums, idx, 7, 3600) == vector._take_py(nums, idx, 7, 3600)
        assert C.take(values, idx[::-2]) == vector._take_py(values, idx[::-2])   # strided
    got = C.take(values, np.array([1, 2], dtype))
    assert got[0] is values[1] and got[1] is values[2]    # the list's own objects
    for bad in ([500], [-1]):
        with pytest.raises(IndexError):
            C.take(values, np.array(bad, dtype))
        with pytest.raises(IndexError):
            vector._take_py(values, np.array(bad, dtype))
    with pytest.raises(TypeError):
        C.take(values, np.array([1.0]))


@needs_c
def test_mark_as_python():
    def findings(n):
        out = [Finding("r", "low", "t", _Ev(), None, i, i + 60) for i in range(n)]
        for f in out[::3]:
            f.closed = True
        return out
    a, b = findings(40), findings(40)
    out_a, out_b = [], []
    assert C.mark(a, Finding, "closed", False, True, out_a) == engine._mark_py(b, Finding, "closed", False, True, out_b)
    assert [f.first_ts for f in out_a] == [f.first_ts for f in out_b] and len(out_a) == 26
    assert all(f.closed is True for f in a)
    assert C.mark(a, Finding, "closed", False, True, None) == 0
    # only where another slot equals a value of a list (a schedule's close times: the due findings)
    a, b = findings(40), findings(40)
    due = [float(i + 60) if i % 4 else i + 61 for i in range(40)]   # (equal: a float to its int)
    for f in a[5:9] + b[5:9]:
        f.close_ts = None
    out_a, out_b = [], []
    assert C.mark(a, Finding, "closed", False, True, out_a, "close_ts", due) == \
        engine._mark_py(b, Finding, "closed", False, True, out_b, "close_ts", due) == len(out_a) > 0
    assert [f.first_ts for f in out_a] == [f.first_ts for f in out_b]
    assert all(f.first_ts % 4 and f.first_ts % 3 and not 5 <= f.first_ts < 9 for f in out_a)
    with pytest.raises(ValueError):
        C.mark(a, Finding, "closed", False, True, None, "close_ts", due[1:])
    with pytest.raises(TypeError):
        C.mark(a, LazyFinding, "closed", False, True, None)   # not instances of that class
    with pytest.raises(TypeError):
        C.mark(a, Finding, "samples", None, 1, None)          # a property, not a slot


class _Ev:
    bucket, requester, remote_ip = "b", "arn:x", "10.0.0.1"


@needs_c
def test_hash_ids_as_numpy(monkeypatch):
    """Dense ids of group codes by the C table and by the numpy one: the same ids, through growth."""
    rng = np.random.default_rng(5)
    c_table, np_table = vector._CodeIds(8), vector._CodeIds(8)
    for _ in range(80):
        codes = np.unique((rng.integers(1, 30, 300) << 32) | rng.integers(0, 4000, 300))
        codes = codes[rng.permutation(len(codes))]
        got = c_table.ids(codes)
        with monkeypatch.context() as m:
            m.setattr(vector, "_HASH_IDS", None)
            want = np_table.ids(codes)
            assert (np_table.find(codes) == got).all()    # numpy probing finds what C inserted... in its own table
        assert got.tolist() == want.tolist()
    assert c_table.codes.tolist() == np_table.codes.tolist() and c_table.n == np_table.n
    assert (c_table.find(c_table.codes) == np.arange(c_table.n)).all()   # numpy lookups over the C-filled table
    # repeats (allowed with the C table): one id per code, the codes list without repeats, through growth
    table, ref = vector._CodeIds(8), {}
    for _ in range(40):
        codes = (rng.integers(1, 5, 500) << 32) | rng.integers(0, 900, 500)
        assert table.ids(codes).tolist() == [ref.setdefault(c, len(ref)) for c in codes.tolist()]
    assert table.codes.tolist() == list(ref) and table.n == len(ref)
    with pytest.raises(ValueError):
        C.hash_ids(np.full(8, -1, np.int64), np.zeros(8, np.int64), np.array([-1]), np.empty(1, np.int64), 0)


def test_small_ints_shared():
    a, b = vector._small_ints(3000), vector._small_ints(2000)
    assert a == list(range(3000)) and b == list(range(2000))
    assert all(x is y for x, y in zip(a, b))     # one int object per value, not one per finding
    big = vector._small_ints(vector.SMALL_MAX + 5)
    assert big == list(range(vector.SMALL_MAX + 5))


# ------------------------------------------------------------------ bit tables


@pytest.mark.parametrize("config", [{}, WEB, {"rules": {"s3.mass_download": {"skip_services": True},
                                                         "s3.enumeration": {"skip_services": True}}}])
@pytest.mark.parametrize("bits", [0, 3, 7])
def test_fewer_rule_bits_same_findings(traffic, config, bits, monkeypatch):
    """Rules past RULE_BITS gather their conditions on their own (past it for the fast bits too:
    their rows are decided through events): the findings of the bit tables and of the event path."""
    want = fingerprint(by_events(traffic, 2500, config).findings())
    assert fingerprint(by_columns(traffic, 2500, config).findings()) == want
    monkeypatch.setattr(vector, "RULE_BITS", bits)
    assert fingerprint(by_columns(traffic, 2500, config).findings()) == want


def test_bit_tables_follow_growing_tables(traffic):
    """Batches that add request, identity, client codes: each rule's fast rows are the AND of its
    conditions gathered per row (the reference), and its bit in the tables the bits say."""
    engine = RuleEngine(WEB)
    dicts = columns.Dicts()
    runner = None
    for i in range(0, len(traffic), 3000):
        batch = from_events(traffic[i:i + 3000], dicts)
        engine.process_columns(batch)
        runner = engine._columns
        ctx = vector._Ctx(runner, batch, engine.watermark)
        fb, _ = ctx.bits("fast")
        for rule in engine.active:
            fast_bit, _ = runner.plan(ctx)[rule]
            kind = ctx.fast_kind(rule)
            if fast_bit is None or kind is None:
                continue
            levels, _ = ctx.levels(rule, kind)
            want = np.ones(batch.n, bool)
            for table, cond in levels.items():
                want &= cond[batch.codes[table]]
            assert ((fb & fast_bit) != 0).tolist() == want.tolist(), rule.id
    assert runner is not None


# ------------------------------------------------------------------ window stores


def test_store_sums_match_entries(traffic):
    """Per group, the weight and the valued entries a store sums as entries come, are pruned and are
    taken are those of the live entries it holds (dropped ones only marked until DEAD_SHARE of a
    chunk)."""
    engine = RuleEngine({"rules": {"s3.object_access_errors": {"min_error_share": 0.02}}})   # (groups taken)
    dicts = columns.Dicts()
    checked = marked = 0
    for i in range(0, len(traffic), 1500):
        engine.process_columns(from_events(traffic[i:i + 1500], dicts))
        for store in engine._columns._stores.values():
            weight = np.zeros(len(store.weight))
            valued = np.zeros(len(store.valued), np.int64)
            live = 0
            for c in store.chunks:
                m = c.get("live", np.ones(len(c["gid"]), bool))   # (entries dropped but not copied out yet)
                assert len(m) - m.sum() < vector.DEAD_SHARE * len(m)
                np.add.at(weight, c["gid"][m], c["w"][m].astype(np.float64))
                np.add.at(valued, c["gid"][m], c["hasval"][m].astype(np.int64))
                live += int(m.sum())
            assert weight.tolist() == store.weight.tolist()
            assert valued.tolist() == store.valued.tolist()
            assert store.n == live
            checked += store.n
            marked += sum("live" in c for c in store.chunks)
    assert checked and marked


def test_bit_tables_follow_the_active_rules(traffic):
    """Rules turned off between batches: the bit tables are made again for the new set of rules (the
    event path's findings with the same rules on)."""
    col, ref = RuleEngine(WEB), RuleEngine(WEB)
    dicts = columns.Dicts()
    for k, i in enumerate(range(0, len(traffic), 2500)):
        if k == 3:   # every other rule off from the fourth batch on
            for engine in (col, ref):
                engine.active = engine.active[::2]
        col.process_columns(from_events(traffic[i:i + 2500], dicts))
        ref.process_batch(traffic[i:i + 2500])
    col.flush()
    ref.flush()
    assert fingerprint(col.findings()) == fingerprint(ref.findings())


def test_fractional_weights_same_findings(traffic):
    """Weights that are not integers (a fractional object_cap): the stores' sums may round, so they do
    not filter the groups (the event path's findings, some of them windowed)."""
    config = {"rules": {"s3.mass_download": {"object_cap": 0.1, "threshold": 2}}}
    engine = RuleEngine(config)
    dicts = columns.Dicts()
    for i in range(0, len(traffic), 2500):
        engine.process_columns(from_events(traffic[i:i + 2500], dicts))
    assert not engine._columns._stores["s3.mass_download"].exact
    engine.flush()
    findings = engine.findings()
    assert [f for f in findings if f.rule_id == "s3.mass_download"]
    assert fingerprint(findings) == fingerprint(by_events(traffic, 2500, config).findings())
    store = vector._Store()
    store.grow(3)
    store.add({"gid": np.array([0, 1]), "w": np.array([0.1, 0.2]), "hasval": np.zeros(2, bool),
               "ts": np.zeros(2), "late": np.zeros(2, bool)})
    assert not store.exact and store.may_reach(np.array([0, 1, 2]), 5, None).all()


@needs_c
def test_gather_and_as_numpy():
    """The C ``gather_and`` (the rules' bit masks per row, one pass) against numpy's gathers and ANDs:
    every item size, one to five tables, codes at both ends of their tables; bad codes and dtypes raise."""
    rng = np.random.default_rng(9)
    for dtype in (np.uint8, np.uint16, np.uint32, np.uint64):
        for k in range(1, 6):
            tables = [rng.integers(0, np.iinfo(dtype).max, int(rng.integers(1, 300)), dtype=dtype,
                                   endpoint=True) for _ in range(k)]
            n = int(rng.integers(0, 500))
            codes = [rng.integers(0, len(t), n).astype(np.int32) for t in tables]
            for c, t in zip(codes, tables):
                if n:
                    c[0], c[-1] = 0, len(t) - 1
            want = tables[0][codes[0]]
            for t, c in zip(tables[1:], codes[1:]):
                want = want & t[c]
            out = np.empty(n, dtype)
            C.gather_and(out, tuple(tables), tuple(codes))
            assert (out == want).all()
    t = np.ones(4, np.uint16)
    with pytest.raises(IndexError):
        C.gather_and(np.empty(2, np.uint16), (t,), (np.array([1, 4], np.int32),))
    with pytest.raises(TypeError):
        C.gather_and(np.empty(2, np.uint16), (t,), (np.array([1, 2], np.int64),))
    with pytest.raises(TypeError):
        C.gather_and(np.empty(2, np.uint16), (np.ones(4, np.uint8),), (np.array([1, 2], np.int32),))


@needs_c
def test_gather_rows_as_numpy():
    """The C ``gather_rows`` (a window store's codes and numbers of its entries, every column in one
    pass) against a numpy gather per column, for 4 and 8-byte items; bad indexes and shapes raise."""
    rng = np.random.default_rng(4)
    for dtype in (np.int32, np.int64):
        for k in (1, 3, 8):
            cols = tuple(rng.integers(-1000, 1 << 30, 700).astype(dtype) for _ in range(k))
            idx = np.sort(rng.integers(0, 700, int(rng.integers(0, 400)))).astype(np.int64)
            out = np.empty((len(idx), k), dtype)
            C.gather_rows(out, cols, idx)
            assert (out == np.stack([c[idx] for c in cols], axis=1).reshape(len(idx), k)).all()
    cols = (np.arange(5, dtype=np.int32),)
    with pytest.raises(IndexError):
        C.gather_rows(np.empty((1, 1), np.int32), cols, np.array([5], np.int64))
    with pytest.raises(TypeError):
        C.gather_rows(np.empty((2, 2), np.int32), cols, np.array([1, 2], np.int64))
    with pytest.raises(TypeError):
        C.gather_rows(np.empty((1, 1), np.int64), cols, np.array([1], np.int64))
