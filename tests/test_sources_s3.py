"""S3 sources over real HTTP: moto's server on loopback, a fault proxy in front of it."""
from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from s3tail.core.event import Event, Malformed
from s3tail.core.reader import SourceError
from s3tail.core.sources import iter_items, s3 as s3mod
from s3tail.core.sources.state import Checkpoint

from s3helpers import (Collector, FaultProxy, MotoServer, Writer, access_lines, follow_cli, keys_in,
                       set_fake_credentials, simple_key, tags_of, trail_key, trail_object, wait_for)

START = datetime(2024, 5, 1, 8, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def moto():
    saved = dict(os.environ)
    set_fake_credentials(os.environ)
    server = MotoServer()
    server.start()
    yield server
    server.stop()
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def fast_retries(monkeypatch):
    monkeypatch.setattr(s3mod, "RETRY_BASE", 0.05)
    monkeypatch.setattr(s3mod, "RETRY_CAP", 0.5)


_n = [0]


def new_bucket(moto) -> tuple[object, str]:
    _n[0] += 1
    name = f"logs-{os.getpid()}-{_n[0]}"
    client = moto.client()
    client.create_bucket(Bucket=name)
    return client, name


def args(*sources, endpoint, **kw) -> argparse.Namespace:
    base = dict(sources=list(sources), follow=False, since=None, interval=0.2, state=None, no_state=True,
                profile=None, region="us-east-1", endpoint_url=endpoint)
    base.update(kw)
    return argparse.Namespace(**base)


def test_three_layouts_one_shot_every_line_once(moto):
    client, bucket = new_bucket(moto)
    w = Writer(client, bucket, START)
    for _ in range(3):
        w.round()
    # not log objects of interest: a digest file and a folder marker are not read
    client.put_object(Bucket=bucket, Key=f"trail/AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/05/01/"
                                         f"111122223333_CloudTrail-Digest_us-east-1_t_us-east-1_20240501T0800Z.json.gz",
                      Body=gzip.compress(b'{"digestStartTime": "x"}'))
    items = list(iter_items(args(f"s3://{bucket}", endpoint=moto.endpoint)))
    assert tags_of(items) == Counter({t: 1 for t in w.tags})
    assert all(type(i) is Event for i in items)
    ev = next(i for i in items if i.key == w.tags[0])
    assert ev.log_object.startswith(f"s3://{bucket}/simple/") and ev.log_line == 1


def test_since_lists_and_fetches_only_the_window(moto):
    client, bucket = new_bucket(moto)
    w = Writer(client, bucket, START)
    old_keys = w.round(step=timedelta(days=0))
    old_tags = list(w.tags)
    new_keys = w.round(step=timedelta(days=3))          # three days later
    proxy = FaultProxy(moto.port)
    try:
        since = START + timedelta(days=2)
        items = list(iter_items(args(f"s3://{bucket}/", endpoint=proxy.endpoint, since=since.isoformat())))
        got = tags_of(items)
        assert set(got) == set(w.tags) - set(old_tags) and set(got.values()) == {1}
        fetched = " ".join(proxy.gets())
        assert all(k in fetched for k in new_keys)
        assert not any(k in fetched for k in old_keys)
        # the date partitions before the window were not even listed
        listed = " ".join(p for m, p in proxy.requests if "list-type" in p)
        assert "2024%2F05%2F01" not in listed and "2024/05/01" not in listed
    finally:
        proxy.close()


def test_simple_prefix_uses_start_after_when_the_listing_is_long(moto, monkeypatch):
    client, bucket = new_bucket(moto)
    keys = [simple_key("", START + timedelta(minutes=i), f"U{i:04d}") for i in range(12)]
    for i, k in enumerate(keys):
        client.put_object(Bucket=bucket, Key=k, Body=access_lines(bucket, [f"s{i}"]))
    proxy = FaultProxy(moto.port)
    try:
        real = s3mod.S3Source._list

        def small_pages(self, prefix, start_after=None, one_page=False):
            if one_page:  # pretend the first page was full, as with thousands of keys
                objs, subs, _ = real(self, prefix, start_after, one_page)
                return objs[:2], subs, True
            return real(self, prefix, start_after, one_page)

        monkeypatch.setattr(s3mod.S3Source, "_list", small_pages)
        since = START + timedelta(minutes=9)
        items = list(iter_items(args(f"s3://{bucket}", endpoint=proxy.endpoint, since=since)))
        assert sorted(tags_of(items)) == ["s10", "s11", "s9"]
        assert any("start-after=2024-05-01-08-09-00" in p for _, p in proxy.requests)
    finally:
        proxy.close()


def test_follow_objects_added_over_time_every_line_exactly_once(moto):
    client, bucket = new_bucket(moto)
    w = Writer(client, bucket, START)
    w.round()
    c = Collector(args(f"s3://{bucket}", endpoint=moto.endpoint, follow=True))
    try:
        c.wait_tags(w.tags)
        for step in (timedelta(minutes=5), timedelta(minutes=1), timedelta(minutes=-20), timedelta(hours=2)):
            w.round(step=step)  # late and out of order too (a round timed 20 minutes earlier)
            c.wait_tags(w.tags)
        assert "following" in c.statuses()
    finally:
        took = c.finish()
    assert took < 1.0
    assert tags_of(c.snapshot()) == Counter({t: 1 for t in w.tags})


def test_faults_are_retried_and_every_line_arrives_once(moto, fast_retries):
    client, bucket = new_bucket(moto)
    w = Writer(client, bucket, START)
    for _ in range(3):
        w.round()
    proxy = FaultProxy(moto.port)
    schedule = {3: "503", 4: "503", 7: "reset", 9: "500", 12: "cut"}  # two 503s in a row too
    proxy.plan = lambda n, method, path: schedule.get(n % 13)
    c = Collector(args(f"s3://{bucket}", endpoint=proxy.endpoint, follow=True))
    try:
        c.wait_tags(w.tags, timeout=30)
        w.round()
        c.wait_tags(w.tags, timeout=30)
    finally:
        c.finish()
        proxy.close()
    assert tags_of(c.snapshot()) == Counter({t: 1 for t in w.tags})
    assert {"503", "reset", "500", "cut"} <= set(proxy.faults)
    retrying = [s for s in c.states if s.status == "retrying"]
    assert retrying and any("SlowDown" in (s.last_error or "") for s in retrying)
    assert all(s.retry_in is not None and s.retry_in <= s3mod.RETRY_CAP for s in retrying)
    assert not [i for i in c.snapshot() if isinstance(i, Malformed)]


def test_server_stopped_and_restarted_mid_follow(moto, fast_retries):
    client, bucket = new_bucket(moto)
    w = Writer(client, bucket, START)
    w.round()
    c = Collector(args(f"s3://{bucket}", endpoint=moto.endpoint, follow=True))
    try:
        c.wait_tags(w.tags)
        moto.stop()
        try:
            wait_for(lambda: "retrying" in c.statuses(), what="the source to retry")
            assert c.error is None
        finally:
            moto.start()
        w.round()
        w.round()
        c.wait_tags(w.tags, timeout=30)
        assert c.statuses()[-1] in ("following", "reading")
    finally:
        c.finish()
    assert tags_of(c.snapshot()) == Counter({t: 1 for t in w.tags})
    err = [s.last_error for s in c.states if s.status == "retrying"][0]
    assert "reach" in err or "Connection" in err or "connect" in err


def test_restart_with_the_same_state_file_reads_nothing_twice_and_misses_nothing(moto, tmp_path):
    client, bucket = new_bucket(moto)
    w = Writer(client, bucket, START)
    w.round()
    w.round()
    state = str(tmp_path / "state.json")
    a = args(f"s3://{bucket}/", endpoint=moto.endpoint, follow=True, state=state, no_state=False)
    first = Collector(a)
    try:
        first.wait_tags(w.tags)
        w.round()
        first.wait_tags(w.tags)
    finally:
        first.finish()
    seen_first = tags_of(first.snapshot())
    assert os.path.exists(state) and not list(tmp_path.glob(".s3tail-state-*"))  # renamed into place
    # objects delivered while s3tail was not running, some late (timed before the last one read)
    w.round(step=timedelta(minutes=1))
    w.round(step=timedelta(minutes=-3))
    second = Collector(a)
    try:
        second.wait_tags(set(w.tags) - set(seen_first))
        w.round()
        second.wait_tags(set(w.tags) - set(seen_first))
    finally:
        second.finish()
    total = seen_first + tags_of(second.snapshot())
    assert total == Counter({t: 1 for t in w.tags})
    saved = json.load(open(state))
    assert saved["version"] == 1 and f"s3://{bucket}/" in saved["sources"]


def test_one_shot_state_file_then_nothing_new(moto, tmp_path):
    client, bucket = new_bucket(moto)
    w = Writer(client, bucket, START)
    w.round()
    a = args(f"s3://{bucket}", endpoint=moto.endpoint, state=str(tmp_path / "s.json"), no_state=False)
    assert tags_of(list(iter_items(a))) == Counter({t: 1 for t in w.tags})
    assert list(iter_items(a)) == []
    first = set(w.tags)
    w.round()
    assert set(tags_of(list(iter_items(a)))) == set(w.tags) - first
    assert Checkpoint(a.state).data["sources"][f"s3://{bucket}"]["done"]


def test_access_denied_and_no_such_key_are_reported_per_object(moto, fast_retries):
    client, bucket = new_bucket(moto)
    w = Writer(client, bucket, START)
    keys = w.round()
    denied, gone = keys[0], keys[3]
    proxy = FaultProxy(moto.port)
    proxy.plan = lambda n, method, path: ("403" if path == f"/{bucket}/{denied}" else
                                          "404" if path == f"/{bucket}/{gone}" else None)
    try:
        items = list(iter_items(args(f"s3://{bucket}", endpoint=proxy.endpoint)))
    finally:
        proxy.close()
    bad = {i.log_object: i for i in items if isinstance(i, Malformed)}
    assert set(bad) == {f"s3://{bucket}/{denied}", f"s3://{bucket}/{gone}"}
    assert "AccessDenied" in bad[f"s3://{bucket}/{denied}"].reason
    assert "NoSuchKey" in bad[f"s3://{bucket}/{gone}"].reason
    assert all(m.log_line == 0 for m in bad.values())
    assert len(tags_of(items)) == len(w.tags) - 6  # 3 lines in each of the two objects not read


def test_corrupt_gzip_and_truncated_json_keep_what_was_readable(moto):
    client, bucket = new_bucket(moto)
    lines = access_lines(bucket, ["g1", "g2", "g3"] + [f"pad{i}" for i in range(200)])
    gz = gzip.compress(lines)
    k1 = simple_key("c/", START, "GZ") + ".gz"
    client.put_object(Bucket=bucket, Key=k1, Body=gz[: len(gz) * 2 // 3])
    doc = json.dumps({"Records": [json.loads(gzip.decompress(trail_object([x])))["Records"][0]
                                  for x in ("j1", "j2", "j3")]})
    k2 = trail_key("c/", START, "TRUNC")
    client.put_object(Bucket=bucket, Key=k2, Body=gzip.compress(doc[:-60].encode()))
    items = list(iter_items(args(f"s3://{bucket}/c/", endpoint=moto.endpoint)))
    got = tags_of(items)
    assert {"g1", "g2", "g3", "j1", "j2"} <= set(got) and "j3" not in got
    bad = [i for i in items if isinstance(i, Malformed)]
    assert {b.log_object for b in bad} == {f"s3://{bucket}/{k1}", f"s3://{bucket}/{k2}"}
    assert all(b.log_line >= 1 for b in bad)


def test_missing_bucket_and_unreachable_endpoint_are_one_line_errors(moto):
    with pytest.raises(SourceError, match="no such bucket"):
        list(iter_items(args("s3://no-such-bucket-here", endpoint=moto.endpoint)))
    dead = f"http://127.0.0.1:{MotoServer().port}"
    with pytest.raises(SourceError, match="cannot reach"):
        list(iter_items(args("s3://whatever-bucket", endpoint=dead, follow=True)))


def test_headless_scan_and_parse_exit_2_and_follow_resumes_after_sigterm(moto, tmp_path):
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "xdg"), AWS_ENDPOINT_URL=moto.endpoint)
    p = subprocess.run([sys.executable, "-m", "s3tail.core.cli", "scan", "s3://missing-bucket-zz"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "no such bucket" in p.stderr, p.stderr
    client, bucket = new_bucket(moto)
    w = Writer(client, bucket, START)
    w.round()
    got: Counter = Counter()
    for _ in range(2):
        want = set(w.tags) - set(got)
        out, err, rc = follow_cli(["parse", "--follow", "--interval", "0.2", f"s3://{bucket}"], env,
                                  lambda out: want <= set(keys_in(out)))
        got += keys_in(out)
        assert rc == 130 and "Traceback" not in err
        w.round()  # delivered while stopped
    assert got == Counter({t: 1 for t in w.tags[:-15]})
    assert list((tmp_path / "xdg" / "s3tail").glob("*.json"))


def test_block_mode_hands_out_plain_access_objects_unparsed_and_the_same_items(moto):
    """In block mode (the app, scan) a plain access-log object comes as one RawBlock; gzip and
    CloudTrail objects as parsed items; expanded, everything equals what the default mode yields."""
    from s3tail.core.reader import RawBlock
    from s3tail.core.sources import iter_batches

    client, bucket = new_bucket(moto)
    w = Writer(client, bucket, START)
    for _ in range(2):
        w.round()
    client.put_object(Bucket=bucket, Key="simple/2024-05-01-09-00-00-GZIPPED0000000",
                      Body=gzip.compress(access_lines(bucket, ["gz-1", "gz-2"])))
    client.put_object(Bucket=bucket, Key="simple/2024-05-01-09-30-00-JUNK000000000000",
                      Body=access_lines(bucket, ["junk-ok"]) + b"not a log line\n\xff\xfe\n")
    ns = args(f"s3://{bucket}", endpoint=moto.endpoint)
    ref = [repr(i.to_dict() if type(i) is not Event else tuple(i)) for i in iter_items(ns)]
    got, blocks = [], 0
    for batch in iter_batches(ns, blocks=True):
        for item in batch:
            if type(item) is RawBlock:
                blocks += 1
                assert item.log_object.startswith(f"s3://{bucket}/") and item.first_line == 1
                got.extend(item.items())
            else:
                got.append(item)
    assert blocks >= 3
    assert sorted(repr(i.to_dict() if type(i) is not Event else tuple(i)) for i in got) == sorted(ref)
    assert sum(type(i) is Malformed for i in got) == 2
