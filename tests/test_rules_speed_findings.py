"""The column path's bulk structures against plain references: findings made by the C maker and by the
pure-Python loop, the numpy group-code table against a dict, and open findings kept by group id
(``_Open``) against the event path where ``pop_closed`` closes them before late rows arrive."""
from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pytest

from s3tail.core import columns
from s3tail.core.columns import from_events
from s3tail.core.rules import RuleEngine, model
from s3tail.core.rules.builtin import by_actor, by_bucket_actor
from s3tail.core.rules.vector import _CodeIds


sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "rules"))
sys.path.insert(0, str(Path(__file__).parent))
import rulekit  # noqa: E402
from test_rules_columns import by_columns, by_events, fingerprint  # noqa: E402

ANON = "s3.anonymous_access"


class Source:
    """A LazyFinding source: refs and samples made up from the segment number."""

    def evidence(self, at: int) -> tuple[list, list]:
        return [(f"obj-{at}", at)], [(f"obj-{at}", at, "t", "GET", f"k{at}", 200)]


def attrs(f) -> tuple:
    return (type(f), f.rule_id, f.severity, f.title, f.bucket, f.requester, f.remote_ip, f.first_ts, f.last_ts,
            f.count, f.dedup_key, f.closed, f.close_ts, f.event_refs, f.evidence, f.details)


@pytest.mark.parametrize("group", [by_bucket_actor, by_actor])
def test_new_findings_c_maker_as_python_loop(group):
    if model._NEW_OBJECTS is None:
        pytest.skip("C extension not built: only the pure-Python loop exists")
    n = 50
    args = ("s3.x", "high", "A title", [f"b{i % 3}" for i in range(n)], [None if i % 2 else f"arn:{i}" for i in range(n)],
            [f"10.0.0.{i}" for i in range(n)], group, [1000.0 + i for i in range(n)], [2000 + i for i in range(n)],
            [4600.0 + i for i in range(n)], [i + 1 for i in range(n)], Source(), list(range(n)))
    c_made = model.new_findings(*args)
    py_made = model.new_findings(*args, maker=False)
    assert [attrs(f) for f in c_made] == [attrs(f) for f in py_made]
    f = c_made[3]
    assert f.dedup_key == group(f) and f.event_refs == [("obj-3", 3)]
    f.dedup_key = "other"   # a set key wins over the group function
    assert f.dedup_key == "other"


def test_new_objects_refuses_what_is_not_a_slot():
    if model._NEW_OBJECTS is None:
        pytest.skip("C extension not built")
    with pytest.raises(TypeError):
        model._NEW_OBJECTS(model.LazyFinding, 1, ("details",), (), ({},))   # a property, not a slot
    with pytest.raises(ValueError):
        model._NEW_OBJECTS(model.LazyFinding, 2, ("count",), ([1],), ())   # a column of the wrong length


def test_code_ids_as_a_dict():
    """Dense ids of int64 codes through growth (rehashing), repeats, and codes never added."""
    rng = np.random.default_rng(7)
    table, ref = _CodeIds(8), {}
    for _ in range(120):
        codes = np.unique((rng.integers(1, 40, 400) << 32) | rng.integers(0, 5000, 400))
        got = table.ids(codes).tolist()
        for code, i in zip(codes.tolist(), got):
            assert ref.setdefault(code, len(ref)) == i
    assert table.n == len(ref) and table.codes.tolist() == list(ref)
    absent = np.array([3, (41 << 32) | 7, 1 << 62], dtype=np.int64)
    assert table.find(absent).tolist() == [-1, -1, -1]


def closing_traffic() -> list[list]:
    """Batches of anonymous reads: a visitor's finding closed by pop_closed (event time moves past its
    dedup period through another visitor), then late rows of the first visitor within that period."""
    ev = rulekit.ev
    t = rulekit.T0
    a, b = "198.51.100.7", "198.51.100.8"
    return [
        [ev(at=t, requester=None, remote_ip=a), ev(at=t + 5, requester=None, remote_ip=a)],
        [ev(at=t + 5000, requester=None, remote_ip=b)],
        [ev(at=t + 10, requester=None, remote_ip=a), ev(at=t + 20, requester=None, remote_ip=a)],
        [ev(at=t + 30, requester=None, remote_ip=a), ev(at=t + 5001, requester=None, remote_ip=b)],
        [ev(at=t + 9000, requester=None, remote_ip=a)],
    ]


def test_late_rows_after_pop_closed_open_a_new_finding():
    ref, col = RuleEngine({}), RuleEngine({})
    dicts = columns.Dicts()
    for part in closing_traffic():
        assert fingerprint(col.process_columns(from_events(part, dicts))) == fingerprint(ref.process_batch(part))
        assert fingerprint(col.pop_closed()) == fingerprint(ref.pop_closed())
    assert fingerprint(col.flush()) == fingerprint(ref.flush())
    assert fingerprint(col.findings()) == fingerprint(ref.findings())
    assert sum(f.rule_id == ANON for f in ref.findings()) >= 4


def test_flush_closes_open_findings_in_creation_order():
    """flush returns the open findings kept by group id in the event path's order (creation)."""
    rnd = random.Random(5)
    events = [rulekit.ev(at=rulekit.T0 + i, requester=None, remote_ip=f"192.0.2.{rnd.randrange(60)}")
              for i in range(0, 3000, 7)]
    ref, col = RuleEngine({}), RuleEngine({})
    dicts = columns.Dicts()
    for i in range(0, len(events), 50):
        ref.process_batch(events[i:i + 50])
        col.process_columns(from_events(events[i:i + 50], dicts))
    key = [(f.rule_id, f.dedup_key, f.first_ts) for f in ref.flush()]
    assert [(f.rule_id, f.dedup_key, f.first_ts) for f in col.flush()] == key


@pytest.mark.parametrize("batch", [3, 40])
def test_column_batches_then_event_batches_then_columns(batch):
    """Open findings kept by group id move to rule.open for event batches and back, many times."""
    events = [e for part in closing_traffic() for e in part] * 1
    events += [rulekit.ev(at=rulekit.T0 + 9000 + i, requester=None, remote_ip=f"203.0.113.{i % 9}")
               for i in range(200)]
    ref = by_events(events, batch)
    engine = RuleEngine({})
    dicts = columns.Dicts()
    for k, i in enumerate(range(0, len(events), batch)):
        part = events[i:i + batch]
        if k % 3 == 2:
            engine.process_batch(part)
        else:
            engine.process_columns(from_events(part, dicts))
    engine.flush()
    assert fingerprint(engine.findings()) == fingerprint(ref.findings())
    assert fingerprint(by_columns(events, batch).findings()) == fingerprint(ref.findings())


def test_block_time_seconds_computed_ahead_as_derived(monkeypatch):
    """from_block fills the time table's epoch seconds in bulk (colblock._ts_ahead): the array equals
    float(ts) per value as Table.derived computes it (a fresh table computing all of it), block after
    block, with odd time stamps (unparsed: None) among them."""
    from s3tail.core import access_log, colblock
    from s3tail.core.columns import _ts_of
    if access_log.speedups is None or not hasattr(access_log.speedups, "scan_block"):
        pytest.skip("C extension not built: no block scan")
    from test_speedups import HEAD, TAIL

    def block(lo: int, hi: int) -> bytes:
        lines = []
        for i in range(lo, hi):
            stamp = f"[06/Feb/2019:{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d} +0000]"
            if i % 17 == 0:
                stamp = "[06/Feb/2019:99:00:00 +0000]"
            lines.append(HEAD.replace("[06/Feb/2019:00:00:38 +0000]", stamp) + TAIL)
        return ("\n".join(lines) + "\n").encode()

    ahead = []
    original = colblock._ts_ahead

    def spy(table):
        original(table)
        ahead.append(len(table._derived.get("ts", ())) == len(table.values))
    monkeypatch.setattr(colblock, "_ts_ahead", spy)
    dicts = columns.Dicts()
    seen = 0
    for lo in range(0, 3000, 500):
        colblock.from_block(block(lo, lo + 500), "t.log", lo + 1, 0, dicts)
        got = dicts.ts_array()
        table = dicts["time"]
        assert len(table.values) > seen
        seen = len(table.values)
        want = np.array([_ts_of(v) for v in table.values])
        assert np.array_equal(got, want, equal_nan=True)
    assert ahead and all(ahead)   # in bulk, every block (the odd stamps are ints too)


def test_time_seconds_ahead_leaves_odd_values_to_derived():
    from s3tail.core import colblock
    from s3tail.core.columns import _ts_of
    dicts = columns.Dicts()
    table = dicts["time"]
    table.add((5, "a"))
    table.add((None, "b"))
    colblock._ts_ahead(table)      # a None among them: left to derived
    assert "ts" not in table._derived
    assert np.array_equal(dicts.ts_array(), np.array([5.0, np.nan]), equal_nan=True)
    table.add((7, "c"))
    table.add((1 << 70, "d"))
    colblock._ts_ahead(table)      # ints only: in bulk, after what derived made
    assert len(table._derived["ts"]) == 4
    want = np.array([_ts_of(v) for v in table.values])
    assert np.array_equal(dicts.ts_array(), want, equal_nan=True)
