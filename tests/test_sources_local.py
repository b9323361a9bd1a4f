"""Local sources: follow a file or a folder (appends, partial lines, rotation, truncation, .gz,
new files, unreadable files), checkpoints, and the headless commands' --follow."""
from __future__ import annotations

import argparse
import gzip
import os
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest

from s3tail.core.event import Malformed
from s3tail.core.reader import SourceError
from s3tail.core.sources import iter_batches, iter_items

from s3helpers import Collector, access_lines, follow_cli, keys_in, tags_of, wait_for


def lines(*tags: str) -> bytes:
    return access_lines("bkt", list(tags))


def args(*sources, **kw) -> argparse.Namespace:
    base = dict(sources=[str(s) for s in sources], follow=True, since=None, state=None, no_state=True)
    base.update(kw)
    return argparse.Namespace(**base)


def append(path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


def once(c: Collector) -> Counter:
    return tags_of(c.snapshot())


def sync(c: Collector, folder) -> None:
    """Return once the followed folder was walked and every file in it polled after this call:
    a new file sorted first is found only by a full walk, and waiting for a second one means the
    pass that found the first one has finished."""
    for _ in range(2):
        sync.n += 1
        tag = f"sync{sync.n}"
        (folder / f"0{tag}.log").write_bytes(lines(tag))
        c.wait_tags([tag])


sync.n = 0


def real(counter: Counter) -> Counter:
    return Counter({k: v for k, v in counter.items() if not k.startswith("sync")})


def test_appends_within_a_second_and_a_partial_line_waits_for_its_newline(tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    log = d / "a.log"
    log.write_bytes(lines("a1", "a2"))
    c = Collector(args(d))
    try:
        c.wait_tags(["a1", "a2"])
        t0 = time.monotonic()
        append(log, lines("a3"))
        c.wait_tags(["a3"], timeout=5)
        assert time.monotonic() - t0 < 1.0  # new lines within a second
        tail = lines("a4")
        append(log, tail[:40])  # a partial line
        sync(c, d)
        assert "a4" not in once(c) and not [i for i in c.snapshot() if isinstance(i, Malformed)]
        append(log, tail[40:])
        c.wait_tags(["a4"])
    finally:
        assert c.finish() < 1.0
    assert real(once(c)) == Counter({"a1": 1, "a2": 1, "a3": 1, "a4": 1})
    ev = [i for i in c.snapshot() if getattr(i, "key", None) == "a4"][0]
    assert ev.log_object == str(log) and ev.log_line == 4


def test_one_shot_reads_a_final_line_without_newline(tmp_path):
    log = tmp_path / "n.log"
    log.write_bytes(lines("n1", "n2")[:-1])
    assert once_items(args(log, follow=False)) == Counter({"n1": 1, "n2": 1})


def once_items(a) -> Counter:
    return tags_of(list(iter_items(a)))


def test_rotation_by_rename_in_a_folder_reads_nothing_twice_and_loses_nothing(tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    log = d / "app.log"
    log.write_bytes(lines("r1", "r2"))
    c = Collector(args(d))
    try:
        c.wait_tags(["r1", "r2"])
        append(log, lines("r3"))  # written just before the rotation, maybe not read yet
        os.rename(log, d / "app.log.1")
        log.write_bytes(lines("r4"))
        c.wait_tags(["r3", "r4"])
        append(log, lines("r5"))
        c.wait_tags(["r5"])
    finally:
        c.finish()
    assert once(c) == Counter({f"r{i}": 1 for i in range(1, 6)})


def test_rotation_of_a_followed_file(tmp_path):
    log = tmp_path / "one.log"
    log.write_bytes(lines("f1"))
    c = Collector(args(log))
    try:
        c.wait_tags(["f1"])
        append(log, lines("f2"))  # written just before the rotation
        os.rename(log, tmp_path / "one.log.1")
        log.write_bytes(lines("f3"))
        c.wait_tags(["f2", "f3"])
        append(log, lines("f4"))
        c.wait_tags(["f4"])
    finally:
        c.finish()
    assert once(c) == Counter({"f1": 1, "f2": 1, "f3": 1, "f4": 1})


def test_truncation_reads_again_from_the_start(tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    log = d / "t.log"
    log.write_bytes(lines("t1", "t2"))
    c = Collector(args(d))
    try:
        c.wait_tags(["t1", "t2"])
        log.write_bytes(b"")  # truncated in place (copytruncate)
        sync(c, d)
        append(log, lines("t3", "t4", "t5"))  # longer than before: only the truncation tells
        c.wait_tags(["t3", "t4", "t5"])
    finally:
        c.finish()
    assert real(once(c)) == Counter({f"t{i}": 1 for i in range(1, 6)})
    t3 = [i for i in c.snapshot() if getattr(i, "key", None) == "t3"][0]
    assert t3.log_line == 1 and t3.offset == 0


def test_gzip_is_read_once_complete_and_new_files_within_a_second(tmp_path):
    d = tmp_path / "logs"
    (d / "sub").mkdir(parents=True)
    c = Collector(args(d))
    try:
        wait_for(lambda: "following" in c.statuses())
        data = gzip.compress(lines(*[f"g{i}" for i in range(300)]))
        gz = d / "sub" / "x.log.gz"
        with open(gz, "wb") as fh:  # written in two steps: never read half
            fh.write(data[: len(data) // 2])
            fh.flush()
            sync(c, d)
            sync(c, d)
            assert not [k for k in once(c) if k.startswith("g")]
            fh.write(data[len(data) // 2:])
        c.wait_tags([f"g{i}" for i in range(300)])
        t0 = time.monotonic()
        (d / "new.log").write_bytes(lines("new1"))
        c.wait_tags(["new1"], timeout=5)
        assert time.monotonic() - t0 < 1.0
    finally:
        c.finish()
    assert set(real(once(c)).values()) == {1} and len(real(once(c))) == 301
    assert not [i for i in c.snapshot() if isinstance(i, Malformed)]


def test_unreadable_files_in_a_folder_are_reported_with_their_path(tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    (d / "ok.log").write_bytes(lines("ok1"))
    blocked = d / "blocked.log"
    blocked.write_bytes(lines("never"))
    os.chmod(blocked, 0)
    root = os.geteuid() == 0
    # as root chmod does not block reads: use things that cannot be read as log files either way
    os.mkfifo(d / "pipe.log")
    os.symlink(d / "gone.log", d / "dangling.log")
    try:
        items = list(iter_items(args(d, follow=False)))
    finally:
        os.chmod(blocked, 0o644)
    bad = {os.path.basename(i.log_object): i for i in items if isinstance(i, Malformed)}
    assert {"pipe.log", "dangling.log"} <= set(bad)
    assert "not a regular file" in bad["pipe.log"].reason and "broken" in bad["dangling.log"].reason
    assert all(b.log_line == 0 for b in bad.values())
    if not root:
        assert "blocked.log" in bad and "ermission" in bad["blocked.log"].reason
    assert "ok1" in tags_of(items)


def test_a_named_source_that_cannot_be_read_is_an_error(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        list(iter_items(args(tmp_path / "missing.log", follow=False)))
    f = tmp_path / "secret.log"
    f.write_bytes(lines("s"))
    os.chmod(f, 0)
    try:
        if os.access(f, os.R_OK):  # root: a path whose open fails for everyone instead
            f = "/proc/self/mem"
        with pytest.raises(SourceError):
            list(iter_items(args(f, follow=False)))
    finally:
        os.chmod(tmp_path / "secret.log", 0o644)


def test_restart_with_a_state_file_reads_nothing_twice(tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    log = d / "app.log"
    log.write_bytes(lines("s1", "s2"))
    a = args(d, state=str(tmp_path / "st.json"), no_state=False)
    c = Collector(a)
    try:
        c.wait_tags(["s1", "s2"])
        append(log, lines("s3")[:30])  # a partial line across the restart
    finally:
        c.finish()
    append(log, lines("s3")[30:] + lines("s4"))
    (d / "more.log").write_bytes(lines("s5"))
    c2 = Collector(a)
    try:
        c2.wait_tags(["s3", "s4", "s5"])
    finally:
        c2.finish()
    assert once(c) + once(c2) == Counter({f"s{i}": 1 for i in range(1, 6)})


def test_since_skips_files_not_modified_since(tmp_path):
    old, new = tmp_path / "old.log", tmp_path / "new.log"
    old.write_bytes(lines("o1"))
    new.write_bytes(lines("n1"))
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert once_items(args(tmp_path, follow=False, since="1h")) == Counter({"n1": 1})


def test_batches_come_promptly_and_stop_ends_the_follow(tmp_path):
    log = tmp_path / "b.log"
    log.write_bytes(b"")
    stop = threading.Event()
    got: list = []
    times: list[float] = []

    def run():
        for batch in iter_batches(args(log), stop=stop):
            got.extend(batch)
            times.append(time.monotonic())

    t = threading.Thread(target=run, daemon=True)
    t.start()
    for i in range(5):
        t0 = time.monotonic()
        append(log, lines(f"b{i}"))
        wait_for(lambda: len(got) == i + 1, 5)
        assert times[-1] - t0 < 1.0
    t0 = time.monotonic()
    stop.set()
    t.join(2)
    assert not t.is_alive() and time.monotonic() - t0 < 1.0


def test_headless_parse_follow_default_state_and_sigterm(tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    (d / "a.log").write_bytes(lines("h1"))
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "xdg"))
    seen: Counter = Counter()
    for tag in ("h1", "h2"):
        out, err, rc = follow_cli(["parse", "--follow", str(d)], env, lambda out: tag in keys_in(out), 20)
        seen += keys_in(out)
        assert "Traceback" not in err and rc == 130
        if tag == "h1":
            append(d / "a.log", lines("h2"))  # while s3tail is not running
    assert seen == Counter({"h1": 1, "h2": 1})  # the second run started where the first ended
    assert len(list((tmp_path / "xdg" / "s3tail").glob("*.json"))) == 1
    p = subprocess.run([sys.executable, "-m", "s3tail.core.cli", "scan", "--since", "soon", str(d)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "bad time" in p.stderr
