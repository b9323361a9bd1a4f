"""`s3tail parse`: outputs, the malformed report, exit codes."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest

from s3tail.core.cli import main

GOOD = ('79a5 bkt [06/Feb/2019:00:00:38 +0000] 192.0.2.3 - 3E57427F3EXAMPLE REST.GET.OBJECT k{n} '
        '"GET /k{n} HTTP/1.1" 200 - 10 10 7 1 "-" "curl/8" - hid SigV4 ECDHE AuthHeader h TLSv1.2')


def good(n: int) -> str:
    return GOOD.format(n=n)


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_jsonl_out_and_summary_last(tmp_path, capsys):
    log = tmp_path / "a.log"
    log.write_text("\n".join([good(1), "garbage line", good(3)]) + "\n")
    rc, out, err = run(capsys, "parse", str(log))
    assert rc == 0
    rows = [json.loads(x) for x in out.splitlines()]
    assert [r["key"] for r in rows] == ["k1", "k3"] and [r["log_line"] for r in rows] == [1, 3]
    assert err.splitlines()[0] == f"{log}:2: malformed: only 2 fields, expected at least 18"
    assert err.splitlines()[-1] == "parsed 2 events, 1 malformed, 0 skipped"


def test_first_20_malformed_in_full_then_counted_and_quarantine(tmp_path, capsys):
    log = tmp_path / "bad.log"
    log.write_text("".join(f"junk {i}\n" for i in range(25)) + good(0) + "\n")
    q = tmp_path / "q.jsonl"
    rc, out, err = run(capsys, "parse", "--quarantine", str(q), "--strict", str(log))
    assert rc == 1
    lines = err.splitlines()
    assert sum(": malformed: " in x for x in lines) == 20
    assert lines[-1] == "parsed 1 events, 25 malformed, 0 skipped"
    kept = [json.loads(x) for x in q.read_text().splitlines()]
    assert [k["log_line"] for k in kept] == list(range(1, 26))
    assert kept[4]["raw"] == "junk 4" and kept[4]["log_object"] == str(log)


def test_folder_recursive_in_name_order_with_gzip_and_cloudtrail(tmp_path, capsys):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.log.gz").write_bytes(gzip.compress((good(2) + "\n").encode()))
    (tmp_path / "a.log").write_text(good(1) + "\n")
    (tmp_path / "c.json").write_text(json.dumps({"Records": [
        {"eventSource": "s3.amazonaws.com", "eventName": "DeleteBucket", "eventTime": "2024-01-01T00:00:00Z",
         "requestParameters": {"bucketName": "gone"}},
        {"eventSource": "iam.amazonaws.com", "eventName": "CreateUser", "eventTime": "2024-01-01T00:00:00Z"}]}))
    rc, out, err = run(capsys, "parse", str(tmp_path))
    rows = [json.loads(x) for x in out.splitlines()]
    assert [(r["source"], r["key"] or r["bucket"]) for r in rows] == [
        ("s3access", "k1"), ("s3access", "k2"), ("cloudtrail", "gone")]
    assert err.splitlines()[-1] == "parsed 3 events, 0 malformed, 1 skipped" and rc == 0


def test_text_format_escapes_hostile_values(tmp_path, capsys):
    log = tmp_path / "x.log"
    log.write_text(good(1).replace("k1 ", "k\x1b[2Jx ", 1) + "\n")
    rc, out, err = run(capsys, "parse", "--format", "text", str(log))
    assert "\x1b" not in out and "k\\x1b[2Jx" in out and "GetObject 200" in out


def test_missing_path_is_exit_2_one_line(capsys):
    rc, out, err = run(capsys, "parse", "/nonexistent/x.log")
    assert rc == 2 and err.strip() == "s3tail: /nonexistent/x.log: no such file or directory"


def test_usage_error_is_exit_2():
    with pytest.raises(SystemExit) as exc:
        main(["parse", "--format", "xml", "x"])
    assert exc.value.code == 2


def test_console_script_reads_stdin_and_exits_codes():
    proc = subprocess.run([sys.executable, "-m", "s3tail.core.cli", "parse", "-"], input=good(5) + "\nbad\n",
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and json.loads(proc.stdout)["key"] == "k5"
    assert proc.stderr.splitlines() == ["-:2: malformed: only 1 fields, expected at least 18",
                                        "parsed 1 events, 1 malformed, 0 skipped"]
    unreadable = subprocess.run([sys.executable, "-m", "s3tail.core.cli", "parse", "/proc/self/mem"],
                                capture_output=True, text=True, timeout=60)
    assert unreadable.returncode == 2 and "Traceback" not in unreadable.stderr


def test_filter_keeps_matching_events_and_bad_filter_exits_2(tmp_path, capsys):
    log = tmp_path / "mixed.log"
    denied = good(2).replace('HTTP/1.1" 200 - 10', 'HTTP/1.1" 403 AccessDenied 10')
    log.write_text("\n".join([good(1), denied, good(3)]) + "\n")
    rc, out, err = run(capsys, "parse", "--filter", "status:4xx key:k*", str(log))
    assert rc == 0
    rows = [json.loads(x) for x in out.splitlines()]
    assert [(r["key"], r["http_status"], r["log_line"]) for r in rows] == [("k2", 403, 2)]
    rc, out, err = run(capsys, "parse", "--filter", "nosuchfield:1", str(log))
    assert rc == 2 and out == "" and "filter" in err and len(err.splitlines()) == 1
