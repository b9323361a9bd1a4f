"""Windowed rules on the column path: the error-share test made in numpy (groups reach the Python
windows only when a window of theirs could fire on threshold *and* share), request counts read without
a sort (``ColumnCounts.many``, the C ``count_codes``), and entries of earlier batches replayed quietly;
each against the event path or its plain reference, on built scenarios and random traffic."""
from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pytest

from s3tail.core import columns
from s3tail.core.columns import from_events
from s3tail.core.rules import RuleEngine, vector

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "rules"))
sys.path.insert(0, str(Path(__file__).parent))
import rulekit  # noqa: E402
from test_rules_columns import by_columns, by_events, by_mixed, fingerprint  # noqa: E402

C = vector.speedups
needs_c = pytest.mark.skipif(C is None or not hasattr(C, "count_codes"),
                             reason="C extension not built (no compiler) or S3TAIL_PURE_PYTHON set")
SHARE_RULES = ("s3.object_access_errors", "s3.enumeration")
SMALL = {"rules": {"s3.object_access_errors": {"window": 10, "threshold": 4},
                   "s3.enumeration": {"window": 5, "threshold": 6}}}


def user(i: int) -> str:
    return f"arn:aws:iam::123456789012:user/s{i}"


def by_batches(batches: list, config=None, columns_path=True) -> RuleEngine:
    """One engine over the given batches (lists of events), column or event path, then flush."""
    engine = RuleEngine(config or {})
    dicts = columns.Dicts()
    for part in batches:
        if columns_path:
            engine.process_columns(from_events(part, dicts))
        else:
            engine.process_batch(part)
    engine.flush()
    return engine


def same_by_batches(batches: list, config=None) -> list:
    ref = by_batches(batches, config, False)
    col = by_batches(batches, config, True)
    assert fingerprint(col.findings()) == fingerprint(ref.findings())
    return ref.findings()


def share_traffic(seed: int, groups: int = 10) -> list:
    """Per group (bucket, actor) a steady stream whose error share (403, 404, 405) sits near, under or over
    the rules' 25%, with bursts, in time order with jitter; a few groups anonymous (actor: the IP)."""
    rnd = random.Random(seed)
    out = []
    for g in range(groups):
        share = rnd.choice([0.05, 0.15, 0.22, 0.25, 0.28, 0.4, 0.8])
        anon = g % 5 == 4
        t = rnd.uniform(0, 1800)
        for i in range(rnd.randrange(40, 300)):
            t += rnd.expovariate(1 / rnd.choice([5, 20, 60]))
            err = rnd.random() < share
            out.append(rulekit.ev(at=t + rnd.uniform(-30, 30), requester=None if anon else user(g % 7),
                                  remote_ip=f"192.0.2.{g}", bucket=f"b{g % 3}", key=f"k/{rnd.randrange(30)}",
                                  http_status=rnd.choice([403, 404, 405]) if err else rnd.choice([200, 204])))
    out.sort(key=lambda e: e.ts)
    return out


def late(events: list, seed: int) -> list:
    """A late log object: a slice of events moved to the end (they arrive after newer ones)."""
    rnd = random.Random(seed)
    a = rnd.randrange(len(events) // 2)
    b = a + rnd.randrange(len(events) // 8, len(events) // 3)
    return events[:a] + events[b:] + events[a:b]


# ------------------------------------------------------------------ against the event path

@pytest.mark.parametrize("seed", [1, 2, 3, 4])
@pytest.mark.parametrize("batch", [37, 400, 5000])
def test_error_share_near_the_boundary_random(seed, batch):
    """Random groups around the share boundary, in order and with a late log object: the column path's
    findings are the event path's (both share rules find something over the seeds)."""
    events = share_traffic(seed)
    for evs, config in ((events, None), (events, SMALL), (late(events, seed), SMALL)):
        ref = by_events(evs, batch, config)
        col = by_columns(evs, batch, config)
        assert fingerprint(col.findings()) == fingerprint(ref.findings())
        mixed = by_mixed(evs, batch, config, event_path=lambda k: k % 4 == 2)
        assert fingerprint(mixed.findings()) == fingerprint(ref.findings())


def test_share_rules_fire_over_the_seeds():
    """(The random traffic above is not vacuous: both share rules fire, and some groups reach the
    threshold without the share.)"""
    fired = set()
    for seed in (1, 2, 3, 4):
        fired |= {f.rule_id for f in by_columns(share_traffic(seed), 400, SMALL).findings()}
    assert set(SHARE_RULES) <= fired


def test_low_share_groups_stay_in_the_store():
    """A busy actor with a steady few-percent error rate reaches the threshold in every window but not
    the share: it never enters the Python windows (its entries stay stored), and fires, as the event
    path does, once its errors become a real share."""
    steady = [rulekit.ev(at=i * 2.0, http_status=403 if i % 20 == 0 else 200, key=f"k{i % 9}")
              for i in range(3000)]
    burst = [rulekit.ev(at=10000 + i * 2.0, http_status=403, key=f"k{i}") for i in range(12)]
    batches = [steady[i:i + 500] for i in range(0, 3000, 500)]
    engine = RuleEngine({})
    dicts = columns.Dicts()
    for part in batches:
        engine.process_columns(from_events(part, dicts))
    rule = engine._by_id["s3.object_access_errors"]
    assert not rule.windows and not rule.open
    assert engine._columns._stores[rule.id].n > 5
    engine.process_columns(from_events(burst, dicts))
    assert rule.open
    found = same_by_batches(batches + [burst])
    assert [f.count for f in found if f.rule_id == rule.id] == [12]


def test_stored_entries_replayed_without_a_second_share_test():
    """Errors that failed the share test when they arrived (many requests then) are replayed into the
    Python windows batches later, when those requests are no longer counted (hours of event time
    since): they must not fire then; the late errors that join them fire, with the event path's
    request count in the finding's details."""
    who = dict(requester=user(1), bucket="acme-data")
    early = ([rulekit.ev(at=i * 60.0, http_status=403, key=f"e{i}", **who) for i in range(6)]
             + [rulekit.ev(at=i * 4.0, key=f"ok{i}", **who) for i in range(120)])
    early.sort(key=lambda e: e.ts)
    later = [rulekit.ev(at=14000 + i, requester=user(2), key=f"x{i}") for i in range(50)]
    late_errors = [rulekit.ev(at=400 + i, http_status=403, key=f"l{i}", **who) for i in range(2)]
    found = same_by_batches([early, later, late_errors])
    f = [f for f in found if f.rule_id == "s3.object_access_errors"]
    assert len(f) == 1 and f[0].count == 8 and f[0].details["requests"] == 7
    # the late errors through the event path: the stored entries move into the Python windows first
    engine = RuleEngine({})
    dicts = columns.Dicts()
    for part in (early, later):
        engine.process_columns(from_events(part, dicts))
    engine.process_batch(late_errors)
    engine.flush()
    assert fingerprint(engine.findings()) == fingerprint(found)


def test_late_log_object_after_the_first_segment_was_pruned():
    """A late error (a window older than the group's newest) stored beside entries that a newer one
    makes too old for any window, of a group whose errors fail the share test (it stays stored where
    the engine's Python windows would keep its segments): the store keeps the group's entries while it
    holds the late one, so the replay builds the event path's segments (the late one's own)."""
    def err(at):
        return rulekit.ev(at=at, http_status=403, key=f"k{at}")

    def ok(at):
        return rulekit.ev(at=at, key=f"o{at}")

    first = sorted([err(0), err(10), err(20)] + [ok(i) for i in range(100)], key=lambda e: e.ts)
    later = [[err(-5000)], [err(5000)] + [ok(5000 + i) for i in range(20)], [err(-4990), err(-4980)]]
    found = same_by_batches([first] + later, {"rules": {"s3.object_access_errors": {"threshold": 3}}})
    assert [(f.count, f.first_ts) for f in found if f.rule_id == "s3.object_access_errors"] == [
        (3, rulekit.T0 - 5000)]


def test_late_delete_after_the_first_segment_was_pruned():
    """The same for a rule without a share setting (``s3.mass_delete``, threshold 3): a late delete
    (an hour before the group's first), a newer one that makes the first batch's deletes too old for
    any window, then two more late ones. The event path fires on the late window (three deletes);
    the store must keep the group's entries while it holds a late one, or the replay would let the
    late delete open the first segment and the later ones join the wrong window (no finding)."""
    def rm(at):
        return rulekit.ev("REST.DELETE.OBJECT", key=f"d{at}", at=at, http_status=204)

    batches = [[rm(0), rm(100)], [rm(-5000)], [rm(5000)], [rm(-4990), rm(-4980)]]
    found = same_by_batches(batches, {"rules": {"s3.mass_delete": {"threshold": 3}}})
    assert [(f.count, f.first_ts) for f in found if f.rule_id == "s3.mass_delete"] == [(3, rulekit.T0 - 5000)]


def late_windows(seed: int, batch: int) -> set:
    """Deletes and downloads of a few actors over about five hours (the engine sweeps and prunes every
    hour of event time), bursts near the thresholds, with three late log objects (slices moved later:
    some minutes, most more than a window late, none past IDLE_SECONDS): the column path's findings
    must be the event path's; the rules that fired."""
    rnd = random.Random(seed)
    events = []
    for a in range(6):
        t = rnd.uniform(0, 1800)
        while t < 5 * 3600:
            t += rnd.choice([1, 5, 20, 60, 240, 600])
            if rnd.random() < 0.5:
                events.append(rulekit.ev("REST.DELETE.OBJECT", key=f"d/{rnd.randrange(10 ** 6)}", at=t,
                                         http_status=204, requester=user(a)))
            else:
                events.append(rulekit.ev(key=f"k/{rnd.randrange(40)}", at=t, requester=user(a),
                                         bytes_sent=rnd.choice([10, 10 ** 6, 60 * 10 ** 6])))
    events.sort(key=lambda e: e.ts)
    for _ in range(3):
        events = late(events, rnd.randrange(1000))
    config = {"rules": {"s3.mass_delete": {"threshold": 4}, "s3.mass_download": {"threshold": 150 * 10 ** 6}}}
    ref = by_events(events, batch, config)
    assert fingerprint(by_columns(events, batch, config).findings()) == fingerprint(ref.findings())
    return {f.rule_id for f in ref.findings()}


@pytest.mark.parametrize("seed", range(12))
def test_late_after_prune_random(seed):
    """Random forms of the pruned-anchor case, several actors at once: deletes and downloads near T,
    a late log object an hour or two older, newer rows more than an hour later (the store prunes what
    made the late rows late), then more late rows beside the first ones, around the thresholds: the
    column path's findings are the event path's."""
    rnd = random.Random(seed)
    batches: list[list] = [[], [], [], []]

    def rows(a, at, k, spread):
        out = []
        for _ in range(k):
            t = at + rnd.uniform(0, spread)
            if rnd.random() < 0.5:
                out.append(rulekit.ev("REST.DELETE.OBJECT", key=f"d/{rnd.randrange(10 ** 6)}", at=t,
                                      http_status=204, requester=user(a)))
            else:
                out.append(rulekit.ev(key=f"k/{rnd.randrange(10 ** 6)}", at=t, requester=user(a),
                                      bytes_sent=60 * 10 ** 6))
        return out
    for a in range(8):
        t = rnd.uniform(0, 3600)
        d = rnd.uniform(700, 7000)
        batches[0] += rows(a, t, rnd.randrange(1, 4), 300)
        batches[1] += rows(a, t - d, rnd.randrange(1, 3), 60)
        batches[2] += rows(a, t + rnd.uniform(3700, 8000), rnd.randrange(1, 3), 60)
        batches[3] += rows(a, t - d + rnd.uniform(0, 300), rnd.randrange(0, 4), 60)
    config = {"rules": {"s3.mass_delete": {"threshold": 3}, "s3.mass_download": {"threshold": 150 * 10 ** 6}}}
    found = same_by_batches([sorted(b, key=lambda e: e.ts) for b in batches], config)
    assert {f.rule_id for f in found} & {"s3.mass_delete", "s3.mass_download"}


@pytest.mark.parametrize("batch", [23, 300])
def test_late_windows_random(batch):
    """The column path against the event path over :func:`late_windows` traffic (8 seeds), and the
    traffic is not vacuous: both rules fire."""
    fired = set().union(*(late_windows(seed, batch) for seed in range(11, 19)))
    assert {"s3.mass_delete", "s3.mass_download"} <= fired


@pytest.mark.parametrize("seed", [5, 6])
def test_distinct_values_near_the_boundary(seed):
    """A distinct-keys window (mass download's ``distinct``) beside the share rules: groups whose stored
    entries hold about ``distinct`` different keys, in order and late."""
    rnd = random.Random(seed)
    events = [rulekit.ev(at=i * 2.0 + rnd.uniform(-20, 20), requester=user(rnd.randrange(4)),
                         key=f"k/{rnd.randrange(14)}", bytes_sent=rnd.choice([10, 1000, None]),
                         http_status=rnd.choice([200, 200, 200, 403])) for i in range(2500)]
    events.sort(key=lambda e: e.ts)
    config = {"rules": {"s3.mass_download": {"distinct": 11, "window": 3},
                        "s3.object_access_errors": {"window": 10, "threshold": 4}}}
    for evs in (events, late(events, seed)):
        for batch in (60, 900):
            ref = by_events(evs, batch, config)
            assert fingerprint(by_columns(evs, batch, config).findings()) == fingerprint(ref.findings())
            assert any(f.rule_id == "s3.mass_download" for f in ref.findings())


# ------------------------------------------------------------------ request counts

@pytest.mark.parametrize("kept", [None, 1])
def test_requests_in_is_the_engines_count(kept, monkeypatch):
    """``ColumnRunner.requests_in`` (many keys and spans at once, over the counts of column batches,
    pieces in time order and not, and of event batches) against ``RuleEngine._requests`` one by one;
    ``kept=1``: every batch's counts but the newest compacted (``ColumnCounts.compact``)."""
    if kept is not None:
        monkeypatch.setattr(vector, "REQ_ROWS_KEPT", kept)
    events = share_traffic(7, groups=14)
    rnd = random.Random(7)
    for i in range(0, len(events), 600):   # pieces out of time order in some batches
        if rnd.random() < 0.4:
            part = events[i:i + 600]
            rnd.shuffle(part)
            events[i:i + 600] = part
    engine = RuleEngine(SMALL)
    dicts = columns.Dicts()
    kinds = set()
    runner = None
    compacted = False
    for k, i in enumerate(range(0, len(events), 600)):
        part = events[i:i + 600]
        if k % 5 == 3:
            engine.process_batch(part)
        else:
            engine.process_columns(from_events(part, dicts))
        runner = engine._columns
        kinds |= {getattr(c, "ordered", "counter") for _, _, c, _ in engine._req_chunks}
        rowless = [c.actor is None for _, _, c, _ in engine._req_chunks if isinstance(c, vector.ColumnCounts)]
        compacted |= any(rowless)
        assert not (rowless and rowless[-1])   # (the newest batch's counts: rows)
        keys = ([user(g) for g in range(8)] + [(f"b{g % 3}", user(g)) for g in range(8)]
                + ["192.0.2.4", ("b1", "192.0.2.4"), "nobody", ("b9", user(1))])
        gids = np.array([runner.gid(key) for key in keys], np.int64)
        ends = np.array([e.ts for e in rnd.sample(part, len(gids))]) + rnd.choice([0, 100])
        starts = ends - rnd.choice([60, 600, 3600])
        got = runner.requests_in(gids, starts, ends)
        want = [engine._requests(runner._gval[g], s, e) for g, s, e in zip(gids.tolist(), starts, ends)]
        assert got.tolist() == want
        # counting stopped early where the share test fails anyway: the same verdicts
        errors = np.array([rnd.randrange(0, 2 * w + 2) for w in want], np.float64)
        capped = runner.requests_in(gids, starts, ends, errors, 0.25)
        assert (errors < 0.25 * capped).tolist() == (errors < 0.25 * np.array(want)).tolist()
        assert (capped <= np.array(want)).all()
    assert kinds == {True, False, "counter"}
    assert sum(want) > 0
    assert compacted == (kept is not None)


@pytest.mark.parametrize("seed", [1, 3])
def test_error_share_with_compacted_counts(seed, monkeypatch):
    """The share rules over request counts compacted as soon as a newer batch comes (a busy follow):
    the event path's findings, in order and with a late log object."""
    monkeypatch.setattr(vector, "REQ_ROWS_KEPT", 1)
    events = share_traffic(seed)
    for evs in (events, late(events, seed)):
        for batch in (37, 400):
            ref = by_events(evs, batch, SMALL)
            assert fingerprint(by_columns(evs, batch, SMALL).findings()) == fingerprint(ref.findings())


def test_dropped_counts_are_not_compacted(monkeypatch):
    """Counts the engine has dropped (older than its share windows reach) are forgotten, not compacted:
    every ``compact`` call is on counts the engine still holds, some counts are compacted and some are
    dropped (the traffic spans hours), and the findings stay the event path's."""
    monkeypatch.setattr(vector, "REQ_ROWS_KEPT", 1)
    calls: list[bool] = []
    real = vector.ColumnCounts.compact
    engine = RuleEngine(SMALL)

    def compact(self):
        calls.append(any(c is self for _, _, c, _ in engine._req_chunks))
        real(self)
    monkeypatch.setattr(vector.ColumnCounts, "compact", compact)
    events = share_traffic(2)
    hour = 3600
    stretched = [e._replace(ts=e.ts + k // 400 * 3 * hour, time=rulekit.iso(e.ts + k // 400 * 3 * hour))
                 for k, e in enumerate(events)]   # three hours later every 400 events
    dicts = columns.Dicts()
    for i in range(0, len(stretched), 200):
        engine.process_columns(from_events(stretched[i:i + 200], dicts))
    engine.flush()
    assert calls and all(calls)
    assert len(engine._req_chunks) < len(range(0, len(stretched), 200)) - 1   # counts dropped
    assert fingerprint(engine.findings()) == fingerprint(by_events(stretched, 200, SMALL).findings())


def downloads_store_sizes(seed: int, n: int, span: float, actors: int, batch: int) -> tuple[list, list]:
    """``n`` downloads of ``actors`` actors over ``span`` seconds (stored: under the threshold), by
    columns in batches of ``batch``: the events, and the ``s3.mass_download`` store's size after each
    batch; the findings checked against the event path's."""
    rnd = random.Random(seed)
    events = sorted((rulekit.ev(key=f"k/{rnd.randrange(10 ** 6)}", at=rnd.uniform(0, span),
                                requester=user(rnd.randrange(actors)), bytes_sent=1000) for _ in range(n)),
                    key=lambda e: e.ts)
    engine = RuleEngine({})
    dicts = columns.Dicts()
    sizes = []
    for i in range(0, len(events), batch):
        engine.process_columns(from_events(events[i:i + batch], dicts))
        sizes.append(engine._columns._stores["s3.mass_download"].n)
    engine.flush()
    assert fingerprint(engine.findings()) == fingerprint(by_events(events, batch, {}).findings())
    return events, sizes


def test_store_pruned_as_it_grows():
    """A windowed rule's store over six hours of steady downloads: pruned at the sweeps once grown by
    half since its last prune, it stays far below the whole stream."""
    events, sizes = downloads_store_sizes(9, 30000, 6 * 3600, 30, 500)
    assert sum(b < a for a, b in zip(sizes, sizes[1:])) >= 3   # pruned, again and again
    assert max(sizes) < 2 * vector.PRUNE_MIN + 1000 < len(events) // 3


def test_store_pruned_between_sweeps():
    """A busy follow within one sweep period (50 minutes of event time, small calls): the store is
    pruned every COMPACT_CHUNKS calls all the same, so it holds about the last window's entries, not
    the whole stream."""
    events, sizes = downloads_store_sizes(10, 20000, 3000, 40, 200)
    per_window = len(events) * 600 / 3000
    assert max(sizes) < per_window + (vector.COMPACT_CHUNKS + 2) * 200 < len(events) // 2


def test_late_entries_of_one_batch():
    """An entry is late (held longer by the store) when older than its group's newest entry by a window
    at its arrival: entries of earlier batches and the rows before it in its batch, as the event path
    takes them; rows in time order over two hours in one batch are not late, a row after them two hours
    older is."""
    evs = [rulekit.ev(key=f"k/{i}", at=i * 10.0, bytes_sent=1000) for i in range(720)]
    evs.append(rulekit.ev(key="k/late", at=5.0, bytes_sent=1000))
    evs.append(rulekit.ev(key="k/other", at=6.0, bytes_sent=1000, requester=user(1)))
    engine = RuleEngine({})
    engine.process_columns(from_events(evs, columns.Dicts()))
    store = engine._columns._stores["s3.mass_download"]
    late = np.concatenate([c["late"] for c in store.chunks])
    assert late.tolist() == [False] * 720 + [True, False]


def test_compacted_counts_as_rows():
    """``ColumnCounts`` after ``compact``: the same counts per piece (``per_piece``, ``many``) and per
    key (``within``) as from its rows, for actor and pair codes, codes no row has, and -1."""
    rnd = np.random.default_rng(4)
    for npc, n in ((1, 500), (4, 4 * vector.REQ_CHUNK - 7)):
        actor = rnd.integers(0, 40, n)
        bid = rnd.integers(0, 3, n)
        lo = [float(k * 10) for k in range(npc)]
        hi = [x + 9 for x in lo]
        runner = vector.ColumnRunner(RuleEngine({}), {})
        for g in range(41):
            runner.gid(user(g))
        runner._bval.extend(["b0", "b1", "b2"])
        runner._bid.update({"b0": 0, "b1": 1, "b2": 2})
        codes = np.array(sorted({*range(45), *(((b + 1) << 32) | a for b in range(3) for a in (0, 5, 39)), -1}))
        keys = [user(a) for a in range(41)] + [("b1", user(5)), ("b9", user(1))]

        def counts():
            return vector.ColumnCounts(actor, bid, lo, hi, list(hi), runner)
        rows, comp = counts(), counts()
        comp.compact()
        assert comp.actor is None
        assert (comp.per_piece(codes) == rows.per_piece(codes)).all()
        assert comp.per_piece(np.arange(40)).sum() == n and comp.per_piece(codes).sum() > n
        inv = np.arange(len(codes))
        start, end = np.full(len(codes), 0.0), np.full(len(codes), 12.0)
        assert (counts().many(codes, inv, start, end, 0) == comp.many(codes, inv, start, end, 0)).all()
        assert [counts().within(k, 0, 25, 0) for k in keys] == [comp.within(k, 0, 25, 0) for k in keys]


@needs_c
def test_count_codes_as_python():
    """The C ``count_codes`` against its pure-Python form: actor and pair codes, codes no row has, -1,
    repeated codes, one piece or many, actor -1 rows."""
    rng = np.random.default_rng(3)
    for t in range(400):
        n = int(rng.integers(0, 1500))
        chunk = int(rng.integers(1, 300))
        actor = rng.integers(-1, 40, n).astype(np.int64)
        bid = rng.integers(0, 5, n).astype(np.int64)
        k = int(rng.integers(1, 10))
        codes = np.concatenate((rng.integers(-1, 50, k), ((rng.integers(0, 7, k) + 1) << 32) | rng.integers(0, 45, k)))
        codes = np.sort(codes).astype(np.int64)
        npc = max(1, -(-n // chunk)) if t % 2 else 1
        a, b = np.zeros(len(codes) * npc, np.int64), np.zeros(len(codes) * npc, np.int64)
        C.count_codes(actor, bid, codes, a, chunk)
        vector._count_codes_py(actor, bid, codes, b, chunk)
        assert a.tolist() == b.tolist()
    with pytest.raises(ValueError):
        C.count_codes(actor, bid, codes[::-1].copy(), a, chunk)
    with pytest.raises(TypeError):
        C.count_codes(actor.astype(np.int32), bid, codes, a, chunk)


@needs_c
def test_running_newest_as_python():
    """The C ``running_newest`` against its pure-Python form and a plain loop: each entry's gid's newest
    time before it (earlier batches' newest, -inf for none, or an earlier entry's), ties and repeats,
    and the gids' newest after."""
    rng = np.random.default_rng(8)
    for t in range(600):
        n, groups = int(rng.integers(0, 300)), int(rng.integers(1, 20))
        gid = rng.integers(0, groups, n).astype(np.int64)
        ts = rng.uniform(0, 1000, n) if t % 2 else rng.integers(0, 50, n).astype(np.float64)
        newest = np.where(rng.random(groups) < 0.5, -np.inf, rng.uniform(0, 1000, groups))
        want, plain = np.empty(n), newest.copy()
        for i in range(n):
            want[i] = plain[gid[i]]
            plain[gid[i]] = max(plain[gid[i]], ts[i])
        for fn in (C.running_newest, vector._running_newest_py):
            out, nw = np.empty(n), newest.copy()
            fn(gid, ts, nw, out)
            assert out.tolist() == want.tolist() and nw.tolist() == plain.tolist()
    with pytest.raises(IndexError):
        C.running_newest(np.array([groups], np.int64), np.zeros(1), np.zeros(groups), np.zeros(1))


@needs_c
def test_prune_keep_as_python():
    """The C ``prune_keep`` against the store's pure-Python form: the same kept mask, dropped count and
    per-gid sums, with and without a live mask and late entries."""
    rng = np.random.default_rng(4)
    for t in range(300):
        n, groups = int(rng.integers(0, 800)), int(rng.integers(1, 60))
        gid = rng.integers(0, groups, n).astype(np.int64)
        ts = rng.uniform(0, 20000, n).round()
        late, hasval = rng.random(n) < 0.2, rng.random(n) < 0.5
        live = None if t % 3 else rng.random(n) < 0.8
        w = rng.integers(0, 5000, n).astype(np.int64)
        stores = []
        for _ in range(2):
            store = vector._Store()
            store.grow(groups)
            store.newest[:] = rng.uniform(0, 25000, groups).round() if not stores else stores[0].newest
            store.weight[:] = 1e9
            store.valued[:] = 10 ** 6
            stores.append(store)
        span, limit = float(rng.choice([300, 3600])), float(rng.uniform(0, 15000))
        floor = stores[0].newest - span
        floor[rng.random(groups) < 0.2] = -np.inf     # (gids holding a late entry)
        a, b = np.empty(n, bool), np.empty(n, bool)
        args = (ts, gid, late, live, floor, limit, w, hasval)
        da = C.prune_keep(*args, stores[0].weight, stores[0].valued, a)
        db = vector._prune_keep_py(*args, stores[1].weight, stores[1].valued, b)
        assert da == db and a.tolist() == b.tolist()
        assert stores[0].weight.tolist() == stores[1].weight.tolist()
        assert stores[0].valued.tolist() == stores[1].valued.tolist()
    with pytest.raises(IndexError):
        C.prune_keep(ts, gid + groups, late, live, floor, limit, w, hasval, stores[0].weight, stores[0].valued, a)
    with pytest.raises(TypeError):
        C.prune_keep(ts.astype(np.float32), gid, late, live, floor, limit, w, hasval, stores[0].weight,
                     stores[0].valued, a)


@needs_c
def test_select_rows_as_python():
    """The C ``select_rows`` against its pure-Python form: flagged gids, ``since`` per gid (-inf, inf and
    times between), with and without a live mask."""
    rng = np.random.default_rng(5)
    for t in range(300):
        n, groups = int(rng.integers(0, 800)), int(rng.integers(1, 60))
        gid = rng.integers(0, groups, n).astype(np.int64)
        ts = rng.uniform(0, 1000, n).round()
        live = None if t % 3 else rng.random(n) < 0.7
        flag = rng.random(groups) < 0.5
        since = rng.choice([-np.inf, np.inf, 300.0, 700.0], groups)
        out = np.empty(n, np.int64)
        k = C.select_rows(gid, ts, live, flag, since, out)
        assert out[:k].tolist() == vector._select_rows_py(gid, ts, live, flag, since).tolist()
    with pytest.raises(IndexError):
        C.select_rows(np.array([groups], np.int64), np.zeros(1), None, flag, since, np.empty(1, np.int64))
