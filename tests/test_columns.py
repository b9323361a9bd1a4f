"""The columnar path gives what the event path gives: column batches, the store's append_columns, the
app's per-batch stats, sources in block mode and the ingest helpers, each against its event-path twin."""
from __future__ import annotations

import argparse
import math
from collections import Counter

import numpy as np
import pytest

from s3tail.core import ingest
from s3tail.core.columns import NUMBERS, TABLES, Dicts, TimeTexts, compact_time, from_events, time_text, time_ts
from s3tail.core.event import Event, Malformed, make_event
from s3tail.core.reader import RawBlock, iter_sources, split_lines
from s3tail.core.sources import iter_batches
from s3tail.core.store import EventStore

from test_ingest import JUNK, generated, key


@pytest.fixture(scope="module")
def logfile(tmp_path_factory):
    data = generated(6000, 4)
    lines = data.splitlines(keepends=True)
    path = tmp_path_factory.mktemp("cols") / "access.log"
    # junk (malformed lines) in the middle, odd values (ANSI, markup) and no final newline
    odd = (b'79a5 evil [14/May/2024:00:10:00 +0000] 10.0.0.9 - REQ1 REST.GET.OBJECT "\x1b[31m[b]x[/b]" '
           b'"GET /x HTTP/1.1" 200 - 5 5 1 1 "-" "\x1b]0;pwn\x07[red]ua[/red]" -\n')
    path.write_bytes(b"".join(lines[:3000]) + JUNK + odd + b"".join(lines[3000:]).rstrip(b"\n"))
    return path


def decoded(table: str, value):
    """A table value in its fields' order (the time table keeps canonical times as the epoch alone)."""
    return (time_ts(value), time_text(value)) if table == "time" else value


def events_of(path) -> list:
    return list(iter_sources([str(path)]))


def test_from_events_codes_decode_to_the_event_values_and_are_stable_across_batches(logfile):
    items = events_of(logfile)
    events = [i for i in items if type(i) is Event]
    dicts = Dicts()
    batches = [from_events(items[i:i + 1000], dicts) for i in range(0, len(items), 1000)]
    assert sum(b.n for b in batches) == len(events)
    assert [o for b in batches for o in b.others] == [i for i in items if type(i) is not Event]
    rows = [(b, r) for b in batches for r in range(b.n)]
    for (b, r), ev in zip(rows, events):
        assert b.event(r) is ev
        for table, fields in TABLES.items():
            value = decoded(table, b.dicts[table].values[b.codes[table][r]])
            want = tuple(getattr(ev, f) for f in fields)
            assert value == (want[0] if len(fields) == 1 else want), table
        for name in NUMBERS:
            v = getattr(ev, name)
            assert b.nums[name][r] == (-1 if v is None else v)
        assert b.log_line[r] == ev.log_line and b.offset[r] == ev.offset
        assert (math.isnan(b.ts[r]) and ev.ts is None) or b.ts[r] == ev.ts
    # one value, one code, whatever batch it came in
    for table in TABLES:
        values = dicts[table].values
        assert len(values) == len(set(values))


def test_time_table_keeps_canonical_times_as_the_epoch_and_odd_ones_whole():
    dicts = Dicts()
    table = dicts["time"]
    canon = (1715644800, "2024-05-14T00:00:00Z")
    odd = [(1715644800, "2024-05-14T00:00:00.250Z"),   # CloudTrail-like text with a fraction
           (1715644800.5, "2024-05-14T00:00:00Z"),      # a float ts
           (None, None), (-5, "1969-12-31T23:59:55Z"), (1 << 70, "far"), (True, "1970-01-01T00:00:01Z")]
    codes = table.encode([canon, *odd, canon])
    assert codes.tolist() == [0, 1, 2, 3, 4, 5, 6, 0]
    assert table.values[0] == 1715644800 and type(table.values[0]) is int
    assert table.values[1:] == odd                     # kept whole: their text is not the epoch formatted
    for code, value in enumerate([canon, *odd]):
        got = table.values[code]
        assert (time_ts(got), time_text(got)) == value
        assert TimeTexts(table)[code] == value[1]
    assert table.add(canon) == 0 and table.add(1715644800) == 0   # the same value, either form
    assert compact_time(canon) == 1715644800 and compact_time(odd[0]) is odd[0]
    assert dicts.ts_array()[:3].tolist() == [1715644800.0, 1715644800.0, 1715644800.5]


def test_from_block_time_values_decode_to_the_parsed_times(tmp_path):
    from s3tail.core import access_log, colblock
    if access_log.speedups is None:
        pytest.skip("the C extension is not built")
    stamps = ["14/May/2024:00:10:00 +0000", "14/May/2024:02:10:00 +0200", "01/Jan/1970:00:00:00 +0000",
              "31/Dec/1969:23:00:00 -0200", "31/Dec/9999:23:59:59 +0000", "14/May/2024:00:10:00 -0000",
              "13/May/2024:23:59:59 +0000", "02/Feb/2024:10:00:00 +0000", "01/Jan/1500:00:00:00 +0000",
              "14/May/2024:00:10:01 +0000", "02/Feb/2024:10:00:00 +0000", "14/May/2024:00:10:00 +0000",
              "11/May/2024:00:00:00 +0000", "14/May/2024:00:10:00 +0000", "13/May/2024:23:59:59 +0000"]
    lines = [f'79a5 b [{s}] 10.0.0.{i} - REQ{i} REST.GET.OBJECT k{i} "GET /k{i} HTTP/1.1" 200 - 5 5 1 1 "-" "ua" -\n'
             for i, s in enumerate(stamps)]
    data = "".join(lines).encode()
    dicts = Dicts()
    b = colblock.from_block(data, "mem", 1, 0, dicts)
    events = [e for e in access_log_events(data)]
    assert b.n == len(events) == len(stamps)
    table = dicts["time"]
    for r, ev in enumerate(events):
        value = table.values[b.codes["time"][r]]
        assert (time_ts(value), time_text(value)) == (ev.ts, ev.time), stamps[r]
        assert b.event(r).time == ev.time
    assert all(type(v) is int for v in table.values if time_ts(v) is not None and 0 <= time_ts(v) < 1 << 35)
    assert not table.index   # the scan's times are not indexed (memory)
    codes = b.codes["time"].tolist()
    # one second, one code, whatever the offset and the table's layout (days apart, years apart)
    for i, j in [(0, 1), (0, 5), (0, 11), (7, 10), (0, 13), (6, 14)]:
        assert codes[i] == codes[j]
    assert len(set(codes)) == len({e.ts for e in events})


def access_log_events(data: bytes) -> list:
    from s3tail.core.ingest import parse_access_bytes
    return [e for e in parse_access_bytes(data, "mem") if type(e) is Event]


def test_from_events_keeps_odd_values(tmp_path):
    evs = [make_event(source="s3access", bucket="b", key=["not", "hashable"], bytes_sent=-5, object_size=1 << 64,
                      log_object="mem", log_line=1),
           make_event(source="s3access", bucket="b", log_object="mem", log_line=2)]
    b = from_events(evs, Dicts())
    assert b.values("key") == ["['not', 'hashable']", None]
    assert b.nums["bytes_sent"].tolist() == [-2, -1]
    assert b.nums["object_size"].tolist() == [-2, -1]
    assert np.isnan(b.ts).all()


def test_find_is_a_superset_of_the_rows_holding_a_literal(logfile):
    items = events_of(logfile)
    b = from_events(items, Dicts())
    found = set(b.find("ua", ["aws-cli", "pwn"]).tolist())
    truth = {i for i, e in enumerate(b.events()) if e.user_agent and ("aws-cli" in e.user_agent.lower()
                                                                       or "pwn" in e.user_agent.lower())}
    assert truth and truth <= found


def stores_of(events: list, slices: int):
    a, b = EventStore(max_rows=10**6), EventStore(max_rows=10**6)
    dicts = Dicts()
    for i in range(0, len(events), slices):
        a.append_batch(events[i:i + slices])
        b.append_columns(from_events(events[i:i + slices], dicts))
    b.dicts = dicts
    return a, b


def assert_same_store(a: EventStore, b: EventStore) -> None:
    assert len(a) == len(b) and a.layout == b.layout
    assert a.facets() == b.facets()
    n = len(a)
    assert (a._flags[:n] == b._flags[:n]).all() and (a._off[:n] == b._off[:n]).all()
    for p in range(0, n, max(1, n // 300)):
        assert a.row_cells(p) == b.row_cells(p)
        assert a.get(p) == b.get(p)


def test_append_columns_equals_append_batch(logfile):
    events = [i for i in events_of(logfile) if type(i) is Event]
    a, b = stores_of(events, 700)
    assert_same_store(a, b)
    # late rows (a batch older than what is held) and eviction keep both in step
    rng = np.random.default_rng(3)
    late = [events[int(i)] for i in rng.choice(len(events), 900, replace=False)]
    a.max_rows = b.max_rows = 5000
    a.append_batch(late)
    b.append_columns(from_events(late, b.dicts))
    assert_same_store(a, b)
    assert a.evicted == b.evicted > 0


def test_append_columns_spills_what_is_not_in_a_local_file(tmp_path, logfile):
    # events whose log object is not a readable local file (an S3 object): their lines go to spill files
    events = [e._replace(log_object="s3://logs/key1") for e in events_of(logfile) if type(e) is Event][:2000]
    a, b = stores_of(events, 500)
    assert_same_store(a, b)
    assert b._spill.bytes > 0


def test_stats_add_columns_equals_add(logfile):
    from s3tail.tui.widgets import Stats

    events = [i for i in events_of(logfile) if type(i) is Event]
    one, two = Stats(), Stats()
    one.add(events)
    dicts = Dicts()
    for i in range(0, len(events), 999):
        two.add_columns(from_events(events[i:i + 999], dicts))
    for name in ("per_minute", "errors_per_minute", "requests_by", "bytes_by"):
        assert +getattr(one, name) == +getattr(two, name), name


def test_raw_block_items_are_the_reader_items(logfile):
    data = logfile.read_bytes()
    ref = [key(i) for i in events_of(logfile)]
    block = RawBlock(data, str(logfile))
    assert block.lines == len(ref)
    assert [key(i) for i in block.items()] == ref
    # \r and other line breaks inside a line do not split it
    assert split_lines(b"a\rb\x0bc\nd") == [b"a\rb\x0bc\n", b"d"]


def test_column_batches_of_mixed_items_keep_every_item(logfile):
    items = events_of(logfile)
    data = logfile.read_bytes()
    cut = data.index(b"\n", len(data) // 2) + 1
    first = RawBlock(data[:cut], str(logfile))
    second_items = [i for i in items if (i.log_line if type(i) is not Event else i.log_line) > first.lines]
    mixed = [first] + second_items
    batches = ingest.column_batches(mixed, Dicts(), max_rows=400)
    got = []
    for b in batches:
        assert b.n <= max(400, first.lines)
        got.extend(b.events())
        got.extend(b.others)
    assert Counter(repr(key(i)) for i in got) == Counter(repr(key(i)) for i in items)


def test_iter_column_batches_equal_the_reader(logfile, tmp_path):
    gz = tmp_path / "x.json"
    gz.write_text('{"Records": [{"eventSource": "s3.amazonaws.com", "eventName": "GetObject", '
                  '"eventTime": "2024-05-14T00:00:00Z", "requestParameters": {"bucketName": "b", "key": "k"}}]}')
    ref = [key(i) for i in iter_sources([str(logfile), str(gz)])]
    events, others = [], []
    for b in ingest.iter_column_batches([str(logfile), str(gz)], block=1 << 16):
        events.extend(b.events())
        others.extend(b.others)
    assert [key(e) for e in events] == [k for k in ref if k[0] == "event"]
    assert [key(o) for o in others] == [k for k in ref if k[0] != "event"]


def test_ingest_fills_the_store_like_the_reader(logfile):
    store = EventStore(max_rows=10**6)
    res = ingest.ingest([str(logfile)], store, split=False)
    ref = events_of(logfile)
    assert res.events == len(store) == sum(type(i) is Event for i in ref)
    assert [m.to_dict() for m in res.malformed] == [i.to_dict() for i in ref if type(i) is Malformed]
    want, _ = stores_of([i for i in ref if type(i) is Event], 10**6)
    assert want.facets() == store.facets()


def test_sources_in_block_mode_hand_out_raw_blocks_that_parse_to_the_same_items(logfile):
    ns = argparse.Namespace(sources=[str(logfile)], follow=False, no_state=True)
    ref = [key(i) for i in iter_sources([str(logfile)])]
    got = []
    blocks = 0
    for batch in iter_batches(ns, blocks=True):
        for item in batch:
            if type(item) is RawBlock:
                blocks += 1
                got.extend(key(i) for i in item.items())
            else:
                got.append(key(item))
    assert blocks >= 1 and got == ref


def test_a_new_dicts_midway_changes_nothing_in_the_store(logfile):
    events = [i for i in events_of(logfile) if type(i) is Event]
    a, b = EventStore(max_rows=10**6), EventStore(max_rows=10**6)
    old = Dicts()
    for i in range(0, len(events), 1000):
        a.append_batch(events[i:i + 1000])
        if old.full(limit=3000):
            old = Dicts()
        b.append_columns(from_events(events[i:i + 1000], old))
    assert all(v[0] is old for v in b._remaps.values())
    b.dicts = old
    assert_same_store(a, b)


def test_format_ts_equals_strftime():
    import random
    import time as _t

    from s3tail.core import store as st

    rng = random.Random(5)
    values = [0, 1715644800, 1715644800 + 86399, 253402300799, 253402300800, 1e9 + 0.5, -1, 2 ** 40,
              float("inf"), float("nan")] + [rng.randrange(0, 253402300800) for _ in range(2000)]
    for ts in values:
        st._time_cache.clear()
        try:
            want = _t.strftime("%Y-%m-%dT%H:%M:%SZ", _t.gmtime(ts))
        except (OverflowError, OSError, ValueError):
            want = None
        assert st.format_ts(ts) == want, ts


def test_concat_of_block_and_event_batches_is_their_rows_in_order(logfile):
    from s3tail.core.colblock import from_block
    from s3tail.core.columns import ConcatBatch, concat

    data = logfile.read_bytes()
    cut = data.index(b"\n", len(data) // 3) + 1
    cut2 = data.index(b"\n", 2 * len(data) // 3) + 1
    dicts = Dicts()
    first = from_block(data[:cut], str(logfile), 1, 0, dicts)
    second = from_block(data[cut:cut2], str(logfile), 1 + data[:cut].count(b"\n"), cut, dicts)
    rest = [i for i in events_of(logfile) if i.log_line > data[:cut2].count(b"\n")]
    third = from_events(rest, dicts)
    whole = concat([first, second, third])
    assert isinstance(whole, ConcatBatch) and not hasattr(whole, "spill_payloads")  # an event part
    ref = from_events(events_of(logfile), Dicts())
    assert whole.n == ref.n and [key(e) for e in whole.events()] == [key(e) for e in ref.events()]
    rows = [0, whole.n - 1, first.n, first.n - 1, first.n + second.n, 17]
    assert [key(whole.event(r)) for r in rows] == [key(ref.event(r)) for r in rows]
    assert [key(e) for e in whole.events(rows[::-1])] == [key(ref.event(r)) for r in rows[::-1]]
    for table in TABLES:
        assert whole.values(table) == ref.values(table)
    assert (whole.ts[~np.isnan(whole.ts)] == ref.ts[~np.isnan(ref.ts)]).all()
    assert [key(o) for o in whole.others] == [key(o) for o in ref.others]
    lits = ("aws-cli", "pwn")
    assert set(whole.find("ua", lits).tolist()) >= set(ref.find("ua", lits).tolist())
    assert whole.text("key") == ref.text("key")
    blocks = concat([first, second])
    assert hasattr(blocks, "spill_payloads")
    picked = [first.n + 3, 2, first.n + second.n - 1]
    assert blocks.spill_payloads(picked) == [first.spill_payloads([2])[0] if r == 2 else
                                             second.spill_payloads([r - first.n])[0] for r in picked]
    assert concat([first]) is first


def test_store_and_rules_take_a_concat_like_its_parts(logfile):
    from s3tail.core.colblock import from_block
    from s3tail.core.columns import concat
    from s3tail.core.rules import RuleEngine

    data = logfile.read_bytes()
    cuts = [0] + [data.index(b"\n", k * len(data) // 4) + 1 for k in (1, 2, 3)] + [len(data)]
    dicts = Dicts()
    parts, line = [], 1
    for a, b in zip(cuts, cuts[1:]):
        parts.append(from_block(data[a:b], "s3://logs/obj", line, a, dicts))   # not a local file: spilled
        line += data[a:b].count(b"\n")
    one, many = EventStore(max_rows=10**6), EventStore(max_rows=10**6)
    one.append_columns(concat(parts))
    for p in parts:
        many.append_columns(p)
    assert_same_store(one, many)
    e1, e2 = RuleEngine({}), RuleEngine({})
    e1.process_columns(concat(parts))
    for p in parts:
        e2.process_columns(p)
    e1.flush(), e2.flush()
    assert sorted(map(repr, e1.findings())) == sorted(map(repr, e2.findings()))


def test_an_empty_literal_is_found_in_every_value():
    from s3tail.core.rules.engine import Joined

    assert Joined(["a", "", "b\nc"]).find(["", "zz"]) == {0, 1, 2}
    assert Joined(["a", "b"]).find(["\n"]) == {0, 1}
    b = from_events([make_event(source="s3access", key="k", log_object="m", log_line=1)], Dicts())
    assert b.find("key", [""]).tolist() == [0]


def test_joined_find_against_a_plain_search():
    """``Joined.find`` (one joined text, its index of value ends made from the separators when each
    value has one, else from the values' lengths) against a search value by value: values with
    newlines (where a literal anchored at a value's end may also match an inner newline: found as a
    superset), non-ASCII letters, empty values, literals anchored at a value's end."""
    import random

    from s3tail.core.rules.engine import Joined

    rnd = random.Random(5)
    alphabet = ["a", "b", "E", "é", "/", ".", "\n", "ß", "env"]
    for t in range(400):
        values = ["".join(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 6)))
                  for _ in range(rnd.randrange(1, 30))]
        if t % 3 == 0:
            values = [v.replace("\n", "") for v in values]   # (one separator per value)
        lits = [rnd.choice(["a", "env", ".e", "b\n", "a/", "ea", "é", "ba"]) for _ in range(rnd.randrange(1, 4))]
        want = {i for i, v in enumerate(values)
                if any(lit.encode() in (v + "\n").encode().lower() if lit.isascii() else lit in v.lower() + "\n"
                       for lit in lits)}
        got = Joined(values).find(lits)
        # (a literal may also be found across a value's own newline: a superset, never fewer)
        assert want <= got
        if t % 3 == 0:
            assert got == want


def test_joined_find_in_one_pass_as_literal_by_literal(monkeypatch):
    """The C one-pass search of many literals (``find_literals``) finds what a ``find`` per literal
    finds: literals of one byte, literals sharing their first two bytes, one a prefix of another, anchored
    at a value's end, at the very end of the text, hits in neighbouring values."""
    import random

    from s3tail.core.rules import engine

    if engine._FIND_LITERALS is None:
        pytest.skip("the C extension is not built")
    rnd = random.Random(11)
    alphabet = ["a", "b", "c", ".", "/", "e", "nv", "é", "\\", "<"]
    pool = ["a", ".", "<", "ab", "abc", "abcb", ".e", ".env", ".env\n", "b\n", "c/", "cc", "\\", "é", "nva", "a/b."]
    for t in range(500):
        values = ["".join(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 8))) for _ in range(rnd.randrange(1, 40))]
        lits = rnd.sample(pool, rnd.randrange(1, 9))
        one_pass = engine.Joined(values).find(lits)
        monkeypatch.setattr(engine, "_FIND_LITERALS", None)
        assert engine.Joined(values).find(lits) == one_pass, (values, lits)
        monkeypatch.undo()


def test_appended_grows_a_buffer_and_keeps_earlier_views():
    """``columns.appended``: a cache per code extended many times holds every value in order, each
    view handed out keeps its values, and the buffer is not copied at each extension."""
    import numpy as np

    from s3tail.core.columns import appended

    arr, views, want, bases = None, [], [], set()
    for i in range(400):
        new = np.arange(i * 10, i * 10 + i % 9, dtype=np.float64)
        want += new.tolist()
        arr = appended(arr, new)
        views.append((arr, len(want)))
        bases.add(id(arr.base))
        assert arr.tolist() == want
    assert all(v.tolist() == want[:n] for v, n in views)
    assert len(bases) < 10   # (grown by half when full: a few buffers for 1,600 values)
