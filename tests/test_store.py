"""The columnar event store: round trips from every kind of source, time order, eviction, facets,
vectorised filters against Filter.matches (differential), refs and export."""
from __future__ import annotations

import csv
import gzip
import io
import json
import math
import random
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3tail.core import store as store_mod
from s3tail.core.event import Event, Malformed, make_event
from s3tail.core.filter import compile_filter
from s3tail.core.reader import iter_sources, iter_stream
from s3tail.core.store import FACET_FIELDS, EventStore, default_max_rows, load_sources

BUCKETS = ["acme-prod-data", "acme-logs", "public-site"]
REQUESTERS = ["-", "arn:aws:iam::123456789012:user/alice",
              "arn:aws:sts::123456789012:assumed-role/ADFS-Dev/bob@example.com", "svc:logging.s3.amazonaws.com"]
IPS = ["10.0.0.1", "10.200.3.4", "192.0.2.9", "2001:db8::17", "-"]
UAS = ['"curl/8.0"', '"aws-cli/2.15.30 Python/3.11"', '"sqlmap/1.7 (https://sqlmap.org)"', '"Mozilla/5.0 (X11)"']
STATUSES = [("200", "-"), ("403", "AccessDenied"), ("404", "NoSuchKey"), ("503", "SlowDown"), ("204", "-")]


def access_line(rng: random.Random, i: int, minute: int) -> str:
    status, err = rng.choice(STATUSES)
    key = f"data/{rng.choice(['a', 'b', 'c'])}/file%20{i}.csv"
    uri = f"GET /{key}?X-Amz-Signature=deadbeef{i}&x=1 HTTP/1.1" if i % 7 == 0 else f"GET /{key} HTTP/1.1"
    tail = " SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader s3.amazonaws.com TLSv1.2 - -" if i % 3 else ""
    return (f"79a5 {rng.choice(BUCKETS)} [14/May/2024:10:{minute:02d}:{i % 60:02d} +0000] {rng.choice(IPS)} "
            f"{rng.choice(REQUESTERS)} REQ{i:06d} REST.GET.OBJECT {key} \"{uri}\" {status} {err} {i * 10} "
            f"{i * 10} 5 3 \"-\" {rng.choice(UAS)} - HOSTID{i}={tail}")


def write_access_log(path, n: int, seed: int, *, gz: bool = False, shuffle_minutes: bool = True) -> None:
    rng = random.Random(seed)
    lines = [access_line(rng, seed * 10_000 + i, rng.randrange(60) if shuffle_minutes else i // 60 % 60)
             for i in range(n)]
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if gz else data)


def cloudtrail_record(i: int) -> dict:
    return {
        "eventVersion": "1.09", "eventSource": "s3.amazonaws.com", "eventName": ["GetObject", "PutObject",
                                                                                 "DeleteObject"][i % 3],
        "eventTime": f"2024-05-14T09:{i % 60:02d}:00Z", "awsRegion": "us-east-1",
        "sourceIPAddress": ["203.0.113.5", "2001:db8::99"][i % 2], "userAgent": "[aws-sdk-go/1.44]",
        "userIdentity": {"type": "AssumedRole", "arn": f"arn:aws:sts::123456789012:assumed-role/Ops/s{i % 4}",
                         "accountId": "123456789012",
                         "sessionContext": {"sessionIssuer": {"userName": "Ops"}}},
        "requestParameters": {"bucketName": "acme-prod-data", "key": f"ct/obj-{i}.bin", "Host": "x"},
        "errorCode": "AccessDenied" if i % 5 == 0 else None,
        "additionalEventData": {"bytesTransferredOut": i, "SignatureVersion": "SigV4"},
        "tlsDetails": {"tlsVersion": "TLSv1.3"}, "requestID": f"CT{i}", "recipientAccountId": "123456789012",
        "note": "caf\u00e9 \ud83d\ude00",
    }


def events_of(items) -> list[Event]:
    out = [e for e in items if isinstance(e, Event)]
    assert not [e for e in items if isinstance(e, Malformed)]
    return out


def in_time_order(events: list[Event]) -> list[Event]:
    """What the store promises: ts order, ties in arrival order, no-ts first."""
    return sorted(events, key=lambda e: float("-inf") if e.ts is None else e.ts)


def append_shuffled(store: EventStore, events: list[Event], seed: int, size: int = 37) -> None:
    rng = random.Random(seed)
    batches = [events[i:i + size] for i in range(0, len(events), size)]
    rng.shuffle(batches)
    for b in batches:
        store.append_batch(b)


@pytest.fixture
def sources(tmp_path):
    write_access_log(tmp_path / "plain.log", 120, 1)
    write_access_log(tmp_path / "packed.log.gz", 80, 2, gz=True)
    (tmp_path / "trail.json").write_text(json.dumps({"Records": [cloudtrail_record(i) for i in range(40)]}))
    (tmp_path / "trail.json.gz").write_bytes(gzip.compress(
        "\n".join(json.dumps(cloudtrail_record(i)) for i in range(40, 60)).encode()))
    return tmp_path


def all_events(tmp_path) -> list[Event]:
    evs = events_of(list(iter_sources([str(tmp_path)])))
    # stdin-like streams (log_object "-"), one unredacted
    write_access_log(tmp_path / "stdin.src", 30, 3)
    evs += events_of(list(iter_stream(io.BytesIO((tmp_path / "stdin.src").read_bytes()), "-")))
    evs += events_of(list(iter_stream(io.BytesIO((tmp_path / "stdin.src").read_bytes()), "-", redact=False)))
    # events built in memory (no raw line): the demo, tests
    evs += [make_event(source="s3access", time="2024-05-14T11:00:00Z", ts=1715684400, bucket="mem",
                       key=f"k{i}", requester=None, remote_ip="10.9.9.9", http_status=200,
                       bytes_sent=2 ** 70 if i == 0 else i, log_object="memory://x", log_line=i)
            for i in range(5)]
    return evs


def test_get_round_trips_every_kind_of_source(sources):
    evs = all_events(sources)
    assert len(evs) == 120 + 80 + 40 + 20 + 30 + 30 + 5
    s = EventStore(spill_dir=str(sources / "spill"))
    append_shuffled(s, evs, 1)
    expected = in_time_order(evs)  # arrival order differs from ts order, ties need the same arrival
    s2 = EventStore(spill_dir=str(sources / "spill"))
    for e in evs:
        s2.append_batch([e])
    assert len(s2) == len(evs)
    for pos, want in enumerate(in_time_order(evs)):
        got = s2.get(pos)
        assert got.to_dict() == want.to_dict(), pos
        assert got.raw == want.raw and got.detail == want.detail and got.offset == want.offset
    assert sorted(json.dumps(s.get(p).to_dict(), sort_keys=True) for p in range(len(s))) == \
        sorted(json.dumps(e.to_dict(), sort_keys=True) for e in expected)
    ts = [s.get(p).ts for p in range(len(s))]
    assert ts == sorted(ts, key=lambda t: float("-inf") if t is None else t)
    # redaction is as it was when appended
    uris = [s.get(p).request_uri or "" for p in range(len(s))]
    assert any("X-Amz-Signature=REDACTED" in u for u in uris)
    assert any("X-Amz-Signature=deadbeef" in u for u in uris)
    assert all("deadbeef" not in (s.get(p).request_uri or "") for p in range(len(s))
               if s.get(p).log_object != "-")


def test_plain_files_are_read_back_not_spilled(sources):
    s = EventStore(spill_dir=str(sources / "spill"))
    counts = load_sources(s, [str(sources / "plain.log")], batch=50)
    assert counts == {"events": 120, "malformed": 0, "skipped": 0}
    assert s._spill.bytes == 0
    s.append_batch(events_of(list(iter_sources([str(sources / "packed.log.gz")]))))
    assert s._spill.bytes > 0


def test_changed_file_falls_back_to_the_columns(tmp_path):
    path = tmp_path / "a.log"
    write_access_log(path, 10, 5)
    evs = events_of(list(iter_sources([str(path)])))
    s = EventStore()
    s.append_batch(evs)
    path.write_text("garbage\n" * 10)
    got = s.get(0)
    want = in_time_order(evs)[0]
    assert (got.bucket, got.key, got.requester, got.http_status, got.ts, got.log_line) == \
        (want.bucket, want.key, want.requester, want.http_status, want.ts, want.log_line)
    assert got.raw is None and got.request_uri is None


def test_row_cells(sources):
    evs = all_events(sources)
    s = EventStore()
    append_shuffled(s, evs, 2)
    rows = s.rows_cells(range(len(s)))
    for pos in range(len(s)):
        e = s.get(pos)
        want = (e.time, e.bucket, e.who, e.action or e.operation, e.key, e.http_status, e.bytes_sent,
                e.remote_ip)
        assert s.row_cells(pos) == want == rows[pos]
    with pytest.raises(IndexError):
        s.row_cells(len(s))


def mk(i: int, ts: int | None, **kw) -> Event:
    fields = dict(source="s3access", time=None if ts is None else store_mod.format_ts(ts), ts=ts,
                  bucket=f"b{i % 3}", key=f"k{i}", requester=None if i % 4 == 0 else f"arn:aws:iam::1:user/u{i % 5}",
                  http_status=[200, 403, 404, None][i % 4], remote_ip=f"10.0.{i % 7}.1",
                  error_code=[None, "AccessDenied"][i % 2], log_object="mem", log_line=i)
    fields.update(kw)
    return make_event(**fields)


def test_out_of_order_batches_and_positions():
    s = EventStore()
    first = [mk(i, 1000 + i) for i in range(10)]
    assert s.append_batch(first).tolist() == list(range(10))
    layout = s.layout
    later = [mk(i, 2000 + i) for i in range(10, 15)][::-1]  # unsorted, but all after the newest
    assert s.append_batch(later).tolist() == list(range(10, 15))
    assert s.layout == layout
    late = [mk(i, 1005) for i in range(15, 18)]  # inside the range held: existing positions move
    assert s.append_batch(late) is None
    assert s.layout > layout
    ts = [s.get(p).ts for p in range(len(s))]
    assert ts == sorted(ts)
    assert [s.get(p).log_line for p in range(5, 9)] == [5, 15, 16, 17]  # ties: arrival order
    s.append_batch([mk(99, None)])  # no time: first
    assert s.get(0).log_line == 99 and s.row_cells(0)[0] is None
    v = s.version
    s.append_batch([])
    assert s.version == v + 1
    assert s.filter(compile_filter("since:1970-01-01T00:16:45Z")).tolist() == list(range(6, len(s)))
    f = compile_filter("status:403")
    assert s.filter_rows(f, np.arange(len(s))).tolist() == s.filter(f).tolist()


@pytest.mark.parametrize("compact_min", [4096, 16])
def test_eviction_keeps_the_newest_and_facets_right(monkeypatch, tmp_path, compact_min):
    monkeypatch.setattr(store_mod, "SPILL_SEGMENT", 4096)
    monkeypatch.setattr(store_mod, "COMPACT_MIN", compact_min)
    s = EventStore(max_rows=50, spill_dir=str(tmp_path))
    evs = [mk(i, 10_000 + i * 3) for i in range(400)]
    append_shuffled(s, evs, 3, size=23)
    assert len(s) == 50 and s.evicted == 350
    assert [s.get(p).log_line for p in range(50)] == list(range(350, 400))
    held = [s.get(p) for p in range(50)]
    want = {f: Counter(getattr(e, f) for e in held).most_common(10) for f in FACET_FIELDS}
    got = s.facets(top=10)
    assert {f: sorted(v, key=repr) for f, v in got.items()} == {f: sorted(v, key=repr) for f, v in want.items()}
    for f, pairs in got.items():
        counts = [c for _, c in pairs]
        assert counts == sorted(counts, reverse=True)
    rows = s.filter(compile_filter("status:4xx"))
    sub = s.facets(rows=rows, fields=("bucket", "who"), top=3)
    sub_events = [s.get(p) for p in rows]
    assert dict(sub["bucket"]) == dict(Counter(e.bucket for e in sub_events).most_common(3))
    assert sum(c for _, c in s.facets(rows=rows, fields=("who",), top=100)["who"]) == len(rows)
    assert len(s._spill.fds) <= s._spill.seg  # a segment whose rows were all evicted is released
    s = EventStore(max_rows=50, spill_dir=str(tmp_path))
    for i in range(0, 400, 23):
        s.append_batch(evs[i:i + 23])  # in time order, one spill segment a batch
    assert s._spill.seg == 17 and len(s._spill.fds) <= 4
    assert [s.get(p).log_line for p in range(50)] == list(range(350, 400))


@pytest.mark.parametrize("seed", range(6))
def test_time_order_through_in_order_and_late_batches_and_eviction(seed, monkeypatch):
    """Positions follow (time, arrival) whatever mix of in-order batches (the order implied, not
    stored), late batches and evictions; the order array exists only while rows are out of order."""
    import random
    rnd = random.Random(seed)
    monkeypatch.setattr(store_mod, "COMPACT_MIN", rnd.choice([8, 64, 10_000]))
    max_rows = rnd.choice([40, 120, 10_000])
    s = EventStore(max_rows=max_rows)
    held: list = []     # (ts key, arrival, line) of every event appended, oldest first
    t, line = 1000, 0
    for _ in range(30):
        late = rnd.random() < 0.3
        batch = []
        for _ in range(rnd.randint(1, 15)):
            ts = None if rnd.random() < 0.03 else (t - rnd.randint(1, 200) if late else t)
            t += rnd.randint(0, 2)
            line += 1
            batch.append(mk(line, ts, log_line=line))
        s.append_batch(batch)
        held += [(-1e18 if e.ts is None else e.ts, e.log_line) for e in batch]
        held.sort()                       # stable: equal times keep their arrival order
        del held[:max(0, len(held) - max_rows)]
        assert [s.get(p).log_line for p in range(len(s))] == [ln for _, ln in held]
        if s._p0 >= 0:
            assert len(s._order) == 0


def test_compaction_and_dictionary_renumbering():
    s = EventStore(max_rows=100)
    for start in range(0, 9000, 500):
        s.append_batch([mk(i, 50_000 + i, key=f"unique/{i}") for i in range(start, start + 500)])
    assert len(s) == 100
    assert s._n < 9000  # evicted rows were dropped physically
    assert len(s._cols["key"].values) < 9000  # and the key dictionary renumbered
    assert [s.get(p).key for p in range(100)] == [f"unique/{i}" for i in range(8900, 9000)]
    f = compile_filter("key:unique/895*")
    assert [s.get(p).key for p in s.filter(f)] == [f"unique/895{d}" for d in range(10)]
    assert s.facets(fields=("bucket",))["bucket"] == Counter(s.get(p).bucket for p in range(100)).most_common(10)


def test_odd_items_and_values():
    s = EventStore()
    s.append_batch([Malformed("x", 1, "bad", "raw"), "nope",
                    mk(1, 5, bytes_sent=-5, time="yesterday", key=["not", "hashable"])])
    assert len(s) == 1 and s.ignored == 2
    cells = s.row_cells(0)
    assert cells[0] == "yesterday" and cells[6] == -5
    assert s.get(0).key == ["not", "hashable"]
    assert s.filter(compile_filter('key:*hashable*')).tolist() == [0]


def test_numbers_past_32_bits_read_back_exactly():
    """Sizes and times are int32 columns, offsets start as uint32: a size past 2 GiB is read back from
    the event (through either append path), an offset that needs more widens its column."""
    s = EventStore(capacity=4)
    small = [mk(i, 100 + i, bytes_sent=i, object_size=7, total_time=3) for i in range(5)]
    s.append_batch(small)
    big = [mk(5, 200, bytes_sent=5_000_000_000, object_size=(1 << 62) + 1, total_time=40_000),
           mk(6, 201, bytes_sent=-5, object_size=None, total_time=None, log_line=2**32 - 1)]
    s.append_batch(big)
    got = [(e.bytes_sent, e.object_size, e.total_time) for e in map(s.get, range(len(s)))]
    assert got == [(i, 7, 3) for i in range(5)] + [(5_000_000_000, (1 << 62) + 1, 40_000), (-5, None, None)]
    assert s.get(6).log_line == 2**32 - 1
    assert [s.row_cells(p)[6] for p in range(len(s))] == [0, 1, 2, 3, 4, 5_000_000_000, -5]
    # the column path: a batch of columns holding a big size
    from s3tail.core.columns import Dicts, from_events
    c = EventStore(capacity=4)
    c.append_columns(from_events(small, Dicts()))
    c.append_columns(from_events(big, Dicts()))
    assert [c.get(p).bytes_sent for p in range(len(c))] == [0, 1, 2, 3, 4, 5_000_000_000, -5]
    assert [c.row_cells(p)[6] for p in range(len(c))] == [0, 1, 2, 3, 4, 5_000_000_000, -5]
    # offsets (plain-file byte offsets, spill segment + offset) past 2**32 are kept whole
    off = 3 << 32
    s._offsets([off])[0] = off
    assert s._off.dtype == np.int64 and int(s._off[0]) == off


@pytest.mark.parametrize("odd", [None, 1000.5, -3, 1 << 33])
def test_times_stay_whole_seconds_until_one_needs_more(odd):
    """Times are kept as uint32 seconds; a time without a value, with a fraction or out of that range
    widens the column, and every row keeps its time and its place in time order."""
    s = EventStore()
    s.append_batch([mk(i, 2000 + i) for i in range(5)])
    assert s._ts.dtype == np.uint32
    s.append_batch([mk(5, odd), mk(6, 2001)])          # both late: before the newest
    assert s._ts.dtype == np.float64
    times = [s.get(p).ts for p in range(len(s))]
    assert times == sorted([2000, 2001, 2002, 2003, 2004, odd, 2001], key=lambda t: -math.inf if t is None else t)
    assert [s.row_cells(p)[0] for p in range(len(s))] == [s.get(p).time for p in range(len(s))]
    assert s.filter(compile_filter("since:1970-01-01T00:33:21Z")).tolist() == [
        p for p, t in enumerate(times) if t is not None and t >= 2001]


def test_rows_for_refs_and_export(sources):
    s = EventStore()
    load_sources(s, [str(sources)], batch=64)
    refs = {(str(sources / "plain.log"), 3), (str(sources / "trail.json"), 7), ("nowhere", 1)}
    rows = s.rows_for_refs(refs)
    assert {(s.get(p).log_object, s.get(p).log_line) for p in rows} == refs - {("nowhere", 1)}
    assert rows.tolist() == sorted(rows.tolist())
    buf = io.StringIO()
    assert s.export(rows, "jsonl", buf) == 2
    lines = [json.loads(x) for x in buf.getvalue().splitlines()]
    assert {(r["log_object"], r["log_line"]) for r in lines} == refs - {("nowhere", 1)}
    buf = io.StringIO()
    assert s.export(None, "csv", buf) == len(s)
    table = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert len(table) == len(s) and table[0]["log_object"] and table[0]["log_line"].isdigit()
    with pytest.raises(ValueError):
        s.export(rows, "xml", io.StringIO())


def test_default_max_rows_and_the_app_uses_this_store():
    n = default_max_rows()
    assert 100_000 <= n <= 10_000_000
    assert EventStore().max_rows == n
    from s3tail.tui import backend

    assert backend.EventStore is EventStore and backend.compile_filter is compile_filter


# -- differential: the vectorised filter gives what Filter.matches gives -------------------------------

TEXTS = st.sampled_from(["acme", "Alice", "x", "", "日本", "a b", "10.0.0.1", "2001:db8::1", "*", "\x1b[31m",
                         "sqlmap/1.7", "arn:aws:iam::1:user/alice", "-"])
VALUES = st.one_of(st.none(), TEXTS)
TERM_POOL = ["bucket:acme*", "bucket:x", "-bucket:*", "requester:*alice*", "who:anonymous", "who:alice",
             "status:4xx", "status:>=400", "status:200-299", "status:-", "-status:403", "action:get*", "op:-",
             "key:*b*", "key:-", "ip:10.0.0.0/8", "ip:2001:db8::/32", "ip:10.0.0.1", "-ip:10.0.0.0/8",
             "ua:*sql*", "error:-", "error:access*", "source:cloudtrail", "tls:tlsv1.?", "sig:sigv4",
             "since:1970-01-01T00:30:00Z", "until:1970-01-01T01:00:00Z", "-since:1970-01-01T00:40:00Z",
             "alice", "sqlmp", "acme", "-acme", "日本", '"a b"', "ab"]


@st.composite
def events(draw):
    n = draw(st.integers(1, 25))
    out = []
    for i in range(n):
        ts = draw(st.one_of(st.none(), st.integers(0, 7200)))
        out.append(make_event(
            source=draw(st.sampled_from(["s3access", "cloudtrail"])), ts=ts,
            time=None if ts is None else store_mod.format_ts(ts),
            bucket=draw(VALUES), key=draw(VALUES), operation=draw(VALUES), action=draw(VALUES),
            requester=draw(VALUES), principal_name=draw(VALUES), session_name=draw(VALUES),
            http_status=draw(st.one_of(st.none(), st.sampled_from([200, 204, 301, 403, 404, 500, 503]))),
            error_code=draw(VALUES), remote_ip=draw(VALUES), user_agent=draw(VALUES),
            tls_version=draw(st.sampled_from([None, "TLSv1.2", "TLSv1.3"])),
            signature_version=draw(st.sampled_from([None, "SigV4", "SigV2"])),
            log_object="mem", log_line=i))
    return out


@settings(max_examples=120, deadline=None)
@given(events(), st.lists(st.sampled_from(TERM_POOL), max_size=3), st.integers(1, 30), st.randoms())
def test_vectorised_filter_equals_matches(evs, terms, max_rows, rnd):
    s = EventStore(max_rows=max_rows)
    half = len(evs) // 2
    s.append_batch(evs[:half])
    f = compile_filter(" ".join(terms))
    s.filter(f)  # caches tables, then the dictionaries grow: tables must be extended
    saved, store_mod.COMPACT_MIN = store_mod.COMPACT_MIN, 2  # evicted rows dropped physically at once
    try:
        s.append_batch(evs[half:])
    finally:
        store_mod.COMPACT_MIN = saved
    want = [p for p in range(len(s)) if f.matches(s.get(p))]
    assert s.filter(f).tolist() == want
    base = sorted(rnd.sample(range(len(s)), rnd.randint(0, len(s))))
    assert s.filter_rows(f, np.asarray(base, dtype=np.int64)).tolist() == [p for p in base if p in set(want)]
    counts = s.facets(rows=want, fields=("bucket", "who", "http_status"), top=50)
    held = [s.get(p) for p in want]
    assert dict(counts["who"]) == dict(Counter(e.who for e in held))
    assert dict(counts["http_status"]) == dict(Counter(e.http_status for e in held))
