"""Parallel ingest gives exactly what the serial reader gives: same items, same order, same provenance."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor

import pytest

from s3tail.core import ingest
from s3tail.core.event import Event, Malformed, Skipped
from s3tail.core.reader import SourceError, iter_sources

from conftest import SHARED

GEN = SHARED / "tools" / "gen_s3_access_logs.py"


def key(item):
    if type(item) is Event:
        return ("event", tuple(item))          # every slot: contract fields, ts, raw, offset
    if type(item) is Malformed:
        return ("malformed", item.to_dict())
    assert type(item) is Skipped
    return ("skipped", item.log_object, item.log_line, item.reason)


def generated(lines: int, seed: int) -> bytes:
    if not GEN.is_file():
        pytest.skip(f"{GEN} absent: ../shared is only beside clones inside the workspace")
    return subprocess.run([sys.executable, str(GEN), "--lines", str(lines), "--seed", str(seed)],
                          check=True, capture_output=True).stdout


JUNK = b"junk line\n\n   \n\xff\xfe not utf8\r\n" + b'x "y" z\n'


@pytest.fixture(scope="module")
def pool():
    with ProcessPoolExecutor(max_workers=2) as ex:
        yield ex


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("logs")
    big = generated(3000, 5)
    lines = big.splitlines(keepends=True)
    (root / "a").mkdir()
    (root / "a" / "2024-05-14-00-00-00-AAAA").write_bytes(b"".join(lines[:700]) + JUNK + b"".join(lines[700:1500]))
    with gzip.open(root / "a" / "2024-05-14-01-00-00-BBBB.gz", "wb") as fh:
        fh.write(b"".join(lines[1500:2200]) + JUNK)
    (root / "b.log").write_bytes(b"".join(lines[2200:]).rstrip(b"\n"))     # no final newline
    (root / "c.json").write_text(json.dumps({"Records": [
        {"eventSource": "s3.amazonaws.com", "eventName": "GetObject", "eventTime": "2024-05-14T00:00:00Z",
         "requestParameters": {"bucketName": "b", "key": "k"}, "awsRegion": "us-east-1"},
        {"eventSource": "ec2.amazonaws.com", "eventName": "RunInstances", "eventTime": "2024-05-14T00:00:00Z"},
        "not a record"]}))
    (root / "d.log").write_bytes(b"")
    return root


def test_folder_parallel_equals_serial(folder, pool):
    ref = [key(i) for i in iter_sources([str(folder)])]
    got = [key(i) for i in ingest.iter_items([str(folder)], executor=pool, chunk_bytes=64 << 10)]
    assert got == ref
    kinds = {k[0] for k in ref}
    assert kinds == {"event", "malformed", "skipped"}
    assert sum(k[0] == "malformed" for k in ref) >= 8


def test_folder_in_process_equals_serial(folder):
    ref = [key(i) for i in iter_sources([str(folder)])]
    assert [key(i) for i in ingest.iter_items([str(folder)], workers=1)] == ref
    # small input: no pool even when workers are allowed
    assert [key(i) for i in ingest.iter_items([str(folder)], workers=2)] == ref


def test_one_big_file_in_chunks(tmp_path, pool):
    data = generated(6000, 9)
    lines = data.splitlines(keepends=True)
    path = tmp_path / "big.log"
    path.write_bytes(b"".join(lines[:2500]) + JUNK + b"".join(lines[2500:]) + b"tail without newline")
    ref = [key(i) for i in iter_sources([str(path)])]
    for chunk in (1 << 12, 100_000, 1 << 20):
        batches = list(ingest.iter_batches([str(path)], executor=pool, chunk_bytes=chunk))
        assert [key(i) for b in batches for i in b] == ref
        if chunk < 1 << 20:
            assert len(batches) > 3       # really cut into ranges
    malformed = [k[1] for k in ref if k[0] == "malformed"]
    assert [m["log_line"] for m in malformed] == [2501, 2502, 2503, 2504, 2505, 6006]
    assert {m["log_object"] for m in malformed} == {str(path)}


def test_own_pool_over_threshold(tmp_path):
    path = tmp_path / "x.log"
    path.write_bytes(generated(1500, 2))
    ref = [key(i) for i in iter_sources([str(path)])]
    got = [key(i) for i in ingest.iter_items([str(path)], workers=2, min_parallel_bytes=0, chunk_bytes=50_000)]
    assert got == ref


def test_line_ranges_end_at_newlines(tmp_path):
    path = tmp_path / "r.log"
    path.write_bytes(b"a" * 10 + b"\n" + b"b" * 50 + b"\n" + b"c" * 5)
    ranges = ingest._line_ranges(str(path), path.stat().st_size, 8)
    assert ranges == [(0, 11), (11, 62), (62, 67)]


def test_missing_path_is_a_source_error(tmp_path):
    with pytest.raises(SourceError):
        list(ingest.iter_items([str(tmp_path / "nope")]))


class Collect:
    """Anything with append_batch(events) can be the store."""

    def __init__(self):
        self.events = []

    def append_batch(self, events):
        self.events.extend(events)


@pytest.mark.parametrize("split", [False, True])
def test_ingest_stages_give_the_serial_events_and_findings(folder, split):
    from s3tail.core.rules import RuleEngine

    ref = list(iter_sources([str(folder)]))
    engine = RuleEngine(config={}, user_rules_dir=None)
    engine.process_batch([i for i in ref if type(i) is Event])
    engine.flush()
    want = sorted((f.rule_id, f.count, str(f.dedup_key)) for f in engine.findings())
    store = Collect()
    res = ingest.ingest([str(folder)], store, split=split)
    assert res.split is split
    assert [tuple(e) for e in store.events] == [tuple(i) for i in ref if type(i) is Event]
    assert [m.to_dict() for m in res.malformed] == [i.to_dict() for i in ref if type(i) is Malformed]
    assert res.skipped == sum(type(i) is Skipped for i in ref) and res.events == len(store.events)
    assert sorted((f.rule_id, f.count, str(f.dedup_key)) for f in res.findings) == want


def test_held_heap_keeps_freed_memory_until_the_read_ends():
    """While a file is read in blocks (``ingest.held_heap``, nested here), heap memory freed between
    blocks stays with the process for the next ones; when the last one ends, it is given back."""
    import os

    if ingest._LIBC is None:
        pytest.skip("not glibc's malloc: held_heap does nothing")

    def rss() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    mb = 1 << 20
    with ingest.held_heap():
        with ingest.held_heap():
            start = rss()
            blocks = [b"x" * mb for _ in range(96)]   # from the heap (under the mmap threshold), touched
            assert rss() - start > 80 * mb
            del blocks
            held = rss()
        assert held - start > 80 * mb and ingest._held[0] == 1   # (freed, kept: the outer read goes on)
    assert ingest._held[0] == 0 and held - rss() > 80 * mb       # given back at the end
