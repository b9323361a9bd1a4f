"""`s3tail scan` and `s3tail rules`: output shape, exit codes, escaping, --filter."""
from __future__ import annotations

import json

import pytest

from s3tail.core.cli import main
from s3tail.core.rules.builtin import RULE_IDS

OWNER = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"


def line(sec, op="REST.GET.OBJECT", key="data/x.csv", status=200, requester="arn:aws:iam::123456789012:user/mallory",
         ip="198.51.100.7", ua="aws-cli/2.15.0", bucket="acme-data", sent=100):
    uri = f"GET /{key} HTTP/1.1" if key != "-" else "GET / HTTP/1.1"
    err = "-" if status < 400 else "AccessDenied"
    return (f'{OWNER} {bucket} [14/May/2024:00:{sec // 60:02d}:{sec % 60:02d} +0000] {ip} {requester} REQ{sec:05d} '
            f'{op} {key} "{uri}" {status} {err} {sent} {sent} 10 5 "-" "{ua}" - HOSTID= SigV4 '
            f'TLS_AES_128_GCM_SHA256 AuthHeader {bucket}.s3.us-east-1.amazonaws.com TLSv1.3 - -\n')


@pytest.fixture
def logs(tmp_path):
    benign = "".join(line(s, key=f"data/{s}.csv") for s in range(0, 300, 10))
    burst = "".join(line(600 + s, key=f"probe/{s}", status=403, requester="-", ip="203.0.113.66") for s in range(25))
    sens = line(900, key="app/.env")
    nasty = line(950, key="x/.env", requester="arn:aws:iam::123456789012:user/\x1b[31mevil\x07")
    (tmp_path / "benign.log").write_text(benign)
    (tmp_path / "attack.log").write_text(benign + burst + sens + nasty + "garbage line\n")
    return tmp_path


def scan(capsys, *argv):
    rc = main(["scan", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_scan_jsonl_shape_and_exit_codes(logs, capsys):
    rc, out, err = scan(capsys, logs / "attack.log")
    assert rc == 0
    rows = [json.loads(x) for x in out.splitlines()]
    ids = {r["rule_id"] for r in rows}
    assert {"s3.enumeration", "s3.object_access_errors", "s3.sensitive_object_access"} <= ids
    enum = next(r for r in rows if r["rule_id"] == "s3.enumeration")
    assert enum["remote_ip"] == "203.0.113.66" and enum["requester"] is None and enum["count"] == 25
    assert enum["samples"][0]["log_object"].endswith("attack.log") and enum["samples"][0]["log_line"] == 31
    for r in rows:
        assert {"rule_id", "severity", "title", "bucket", "requester", "remote_ip", "first_seen", "last_seen",
                "count", "samples"} <= set(r)
    assert "malformed" in err and "1 malformed" in err.splitlines()[-1]
    assert scan(capsys, logs / "attack.log", "--fail-on", "medium")[0] == 1
    assert scan(capsys, logs / "attack.log", "--fail-on", "critical")[0] == 0
    assert scan(capsys, logs / "benign.log", "--fail-on", "info")[0] == 0


def test_scan_hostile_values_in_text_and_json(logs, capsys):
    rc, out, _ = scan(capsys, logs / "attack.log", "--format", "text")
    assert rc == 0 and "\x1b" not in out and "\x07" not in out and "\\x1b[31mevil\\x07" in out
    assert "SEVERITY" in out.splitlines()[0]
    _, out, _ = scan(capsys, logs / "attack.log")
    assert "\x1b" not in out  # JSON escapes control characters; the value itself is kept plainly
    assert any("\x1b[31mevil\x07" in (json.loads(x)["requester"] or "") for x in out.splitlines())
    _, out, _ = scan(capsys, logs / "benign.log", "--format", "text")
    assert out == "no findings\n"


def test_scan_errors_exit_2(logs, tmp_path, capsys):
    rc, _, err = scan(capsys, tmp_path / "absent.log")
    assert rc == 2 and "absent.log" in err and "Traceback" not in err
    bad = tmp_path / "bad.toml"
    bad.write_text('[rules."s3.enumeration"]\nthreshold = "many"\n')
    rc, _, err = scan(capsys, logs / "attack.log", "--config", bad)
    assert rc == 2 and "rules.s3.enumeration.threshold" in err
    rc, _, err = scan(capsys, logs / "attack.log", "--rules", tmp_path / "nodir")
    assert rc == 2 and "not a directory" in err
    with pytest.raises(SystemExit) as info:
        main(["scan", str(logs / "attack.log"), "--fail-on", "bad"])
    assert info.value.code == 2


def test_scan_config_and_user_rules(logs, tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[rules."s3.enumeration"]\nseverity = "critical"\n')
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "every_get.py").write_text("def rule(event):\n    return event.action == 'GetObject'\n")
    (rules / "crash.py").write_text("def rule(event):\n    raise RuntimeError('nope')\n")
    rc, out, err = scan(capsys, logs / "attack.log", "--config", cfg, "--rules", rules, "--fail-on", "critical")
    assert rc == 1
    ids = [json.loads(x)["rule_id"] for x in out.splitlines()]
    assert "user.every_get" in ids
    assert err.count("crash.py") == 1 and "RuntimeError" in err


def test_scan_filter(logs, capsys):
    rc, out, _ = scan(capsys, logs / "attack.log", "--filter", "status:403")
    ids = {json.loads(x)["rule_id"] for x in out.splitlines()}
    assert rc == 0 and "s3.enumeration" in ids and "s3.sensitive_object_access" not in ids
    rc, _, err = scan(capsys, logs / "attack.log", "--filter", "status:(")
    assert rc == 2 and "filter" in err


def test_rules_listing(capsys):
    assert main(["rules"]) == 0
    out = capsys.readouterr().out
    for rule_id in RULE_IDS:
        assert rule_id in out
    assert "inert until configured" in out and "Panther" in out
    assert main(["rules", "--format", "jsonl"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in rows] == list(RULE_IDS)
    enum = next(r for r in rows if r["id"] == "s3.enumeration")
    assert enum["defaults"]["threshold"] == 20 and enum["defaults"]["window"] == 5 and enum["peers"]


def test_scan_over_column_batches_equals_the_event_path(tmp_path, capsys):
    """Without --filter, scan reads plain access logs as column batches (the C scanner, rules over
    codes); a filter that keeps everything takes the event path: the same findings, the same counts."""
    from test_ingest import JUNK, generated

    path = tmp_path / "gen.log"
    data = generated(4000, 7)
    path.write_bytes(data[:len(data) // 2] + JUNK + data[len(data) // 2:])
    rc_cols = main(["scan", str(path)])
    cols = capsys.readouterr()
    rc_events = main(["scan", str(path), "--filter=-bucket:no-such-bucket"])
    events = capsys.readouterr()
    assert rc_cols == rc_events == 0
    assert cols.out.strip() and sorted(cols.out.splitlines()) == sorted(events.out.splitlines())
    assert cols.err.splitlines()[-1] == events.err.splitlines()[-1]   # parsed N events, M malformed, ... findings
    assert "malformed" in cols.err and cols.err.count(":") >= 5         # each malformed line named on stderr


def test_scan_joins_blocks_across_arrivals_for_the_rules(tmp_path, capsys, monkeypatch):
    """A file read in many small blocks (each its own arrival from the source thread) reaches the rules
    as joined batches (up to ingest.RULES_ROWS rows each: here one), not one call per arrival; the
    findings and counts are the event path's."""
    from test_ingest import generated

    from s3tail.core.rules import cli as rules_cli
    from s3tail.core.rules.engine import RuleEngine

    path = tmp_path / "gen.log"
    path.write_bytes(generated(3000, 3))
    monkeypatch.setattr(rules_cli, "SCAN_BLOCK", 16 << 10)
    calls: list[int] = []
    original = RuleEngine.process_columns

    def process_columns(self, batch, report=True):
        calls.append(batch.n)
        return original(self, batch, report)
    monkeypatch.setattr(RuleEngine, "process_columns", process_columns)
    assert main(["scan", str(path)]) == 0
    cols = capsys.readouterr()
    blocks = -(-path.stat().st_size // (16 << 10))
    assert calls == [3000] and blocks > 50
    assert main(["scan", str(path), "--filter=-bucket:no-such-bucket"]) == 0
    events = capsys.readouterr()
    assert cols.out.strip() and sorted(cols.out.splitlines()) == sorted(events.out.splitlines())
    assert cols.err.splitlines()[-1] == events.err.splitlines()[-1]


def test_scan_follow_hands_rows_to_the_rules_when_the_sources_go_quiet(tmp_path):
    """--follow: the rows gathered for the rules go to them as soon as the sources go quiet (not when
    a joined batch is full, nor at exit): a finding whose dedup period the later rows end is printed
    while scan is still following."""
    import os

    from s3helpers import follow_cli

    d = tmp_path / "logs"
    d.mkdir()
    later = line(5, key="data/later.csv").replace("[14/May/2024:00:", "[14/May/2024:03:")
    (d / "a.log").write_text(line(0, key="app/.env") + line(30) + later)
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "xdg"))
    out, err, rc = follow_cli(["scan", "--follow", str(d)], env,
                              lambda out: any("s3.sensitive_object_access" in x for x in out), 30)
    assert "Traceback" not in err and rc == 130
    assert [json.loads(x)["rule_id"] for x in out].count("s3.sensitive_object_access") == 1
