"""``s3tail posture`` offline (``--snapshot``): output formats, filters, config, exit codes.
The live CLI paths (``--endpoint-url``, ``--save``, credential errors) are in test_posture_live.py."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from s3tail.core.cli import main
from s3tail.core.posture import RESULT_KEYS, PostureError, load_snapshot, save_snapshot

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "posture" / "small.jsonl"


@pytest.fixture(autouse=True)
def no_user_config(tmp_path, monkeypatch):
    """Keep the developer's own ~/.config/s3tail/config.toml out of these tests."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def posture(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["posture", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def jsonl(capsys, *argv: str) -> list[dict]:
    code, out, err = posture(capsys, "--snapshot", str(FIXTURE), "--format", "jsonl", *argv)
    assert code == 0 and err == ""
    return [json.loads(line) for line in out.splitlines()]


def failing(rows: list[dict]) -> set[tuple[str | None, str]]:
    return {(r["bucket"], r["check_id"]) for r in rows if r["status"] == "fail"}


def test_jsonl_has_exactly_the_contract_keys_and_hides_passes(capsys):
    rows = jsonl(capsys)
    assert rows and all(tuple(row) == RESULT_KEYS for row in rows)
    assert {row["status"] for row in rows} == {"fail", "unknown"}
    assert (None, "account.block_public_access") in failing(rows)
    assert ("open-data", "bucket.public_acl_read") in failing(rows)
    assert not [r for r in rows if r["bucket"] == "tidy"]  # nothing wrong with it


def test_all_adds_the_passing_results(capsys):
    rows = jsonl(capsys, "--all")
    assert len(rows) == 54
    tidy = [r for r in rows if r["bucket"] == "tidy"]
    assert tidy and {r["status"] for r in tidy} == {"pass"}
    assert all(r["remediation"] == "" for r in tidy)
    logs = next(r for r in rows if r["check_id"] == "log_bucket.protection")
    assert logs["bucket"] == "central-logs" and logs["status"] == "pass"
    assert "logs of half-read, open-data, tidy" in logs["detail"]


def test_unknown_results_carry_the_reason(capsys):
    rows = [r for r in jsonl(capsys) if r["status"] == "unknown"]
    assert {(r["bucket"], r["check_id"]) for r in rows} == {
        ("half-read", "bucket.public_policy"), ("half-read", "bucket.cross_account_access"),
        ("half-read", "bucket.secure_transport")}
    assert all(r["detail"] == "Policy could not be read: AccessDenied: Access Denied" for r in rows)
    assert all(r["remediation"].startswith("allow s3:GetBucketPolicy") for r in rows)


def test_text_table_fits_80_columns_except_copyable_fix_lines(capsys):
    code, out, err = posture(capsys, "--snapshot", str(FIXTURE))
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split() == ["BUCKET", "SEVERITY", "STATUS", "CHECK"]
    assert lines[-1] == "15 result(s): 12 fail, 3 unknown (39 passing hidden; --all shows them)"
    assert "open-data    critical fail    bucket.public_acl_read" in lines
    assert "    fix:  aws s3api put-bucket-acl --bucket open-data --acl private; " \
           "then turn on the bucket's public access block" in lines
    assert all(len(line) <= 80 for line in lines if not line.startswith("    fix:  "))
    assert "\x1b[" not in out  # no colour at all, so NO_COLOR holds trivially


def test_text_all_shows_pass_rows_and_no_hidden_note(capsys):
    _, out, _ = posture(capsys, "--snapshot", str(FIXTURE), "--all", "--format", "text")
    assert "tidy         medium   pass    bucket.versioning" in out.splitlines()
    assert out.splitlines()[-1] == "54 result(s): 12 fail, 3 unknown, 39 pass"


def test_bucket_filter_keeps_account_results_and_log_evidence(capsys):
    rows = jsonl(capsys, "--all", "--bucket", "central-logs")
    assert {r["bucket"] for r in rows} == {None, "central-logs"}
    logs = next(r for r in rows if r["check_id"] == "log_bucket.protection")
    assert "logs of half-read, open-data, tidy" in logs["detail"]  # other buckets still read


def test_json_list_snapshot_reads_like_json_lines(tmp_path, capsys):
    as_list = tmp_path / "list.json"
    as_list.write_text(json.dumps([json.loads(line) for line in FIXTURE.read_text().splitlines()], indent=2))
    code, out, _ = posture(capsys, "--snapshot", str(as_list), "--format", "jsonl", "--all")
    assert code == 0
    assert [json.loads(line) for line in out.splitlines()] == jsonl(capsys, "--all")


def test_loaded_snapshot_keeps_the_account_record_apart():
    snapshot = load_snapshot(FIXTURE)
    assert snapshot.account["AccountId"] == "123456789012"
    assert snapshot.bucket_names() == ["tidy", "central-logs", "open-data", "half-read"]


# --- exit code 2: one line on stderr, nothing on stdout ------------------------------------------

def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("make_argv, message", [
    (lambda t: ["--snapshot", str(t / "missing.jsonl")], "missing.jsonl: no such file"),
    (lambda t: ["--snapshot", write(t, "bad.jsonl", '{"Name": "a"}\n{"Name": \n')],
     "bad.jsonl: line 2 is not valid JSON"),
    (lambda t: ["--snapshot", write(t, "bad.json", '[{"Name": "a"},]')], "bad.json: not valid JSON"),
    (lambda t: ["--snapshot", write(t, "scalar.jsonl", "42\n")], "record 1 is not a JSON object"),
    (lambda t: ["--snapshot", str(FIXTURE), "--profile", "prod"], "cannot be combined with --profile"),
    (lambda t: ["--snapshot", str(FIXTURE), "--save", str(t / "x")], "cannot be combined with --save"),
    (lambda t: ["--snapshot", str(FIXTURE), "--bucket", "tidy", "nope"], "not in snapshot"),
    (lambda t: ["--snapshot", str(FIXTURE), "--config", str(t / "none.toml")], "none.toml: no such file"),
    (lambda t: ["--snapshot", str(FIXTURE), "--config", write(t, "c.toml", "[posture\n")], "not valid TOML"),
    (lambda t: ["--snapshot", str(FIXTURE), "--config", write(t, "c.toml", "[posture]\ntrust = []\n")],
     "unknown key posture.trust"),
    (lambda t: ["--snapshot", str(FIXTURE), "--config",
                write(t, "c.toml", '[posture]\ndisable = ["bucket.lifecyle"]\n')],
     "unknown check id 'bucket.lifecyle'"),
])
def test_usage_and_io_errors_exit_2_with_one_line(tmp_path, capsys, make_argv, message):
    code, out, err = posture(capsys, *make_argv(tmp_path))
    assert code == 2 and out == ""
    assert err.startswith("s3tail: ") and err.count("\n") == 1
    assert message in err


def test_bad_format_is_an_argparse_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["posture", "--snapshot", str(FIXTURE), "--format", "csv"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'csv'" in capsys.readouterr().err


# --- config -----------------------------------------------------------------------------------

def test_config_file_trusts_accounts_and_toggles_checks(tmp_path, capsys):
    config = write(tmp_path, "c.toml", "[other]\nkey = 1\n\n[posture]\n"
                   'trusted_accounts = ["444455556666"]\n'
                   'enable = ["bucket.kms_encryption"]\ndisable = ["bucket.object_lock"]\n')
    rows = jsonl(capsys, "--all", "--config", config)
    ids = {r["check_id"] for r in rows}
    assert "bucket.kms_encryption" in ids and "bucket.object_lock" not in ids
    assert ("open-data", "bucket.cross_account_access") not in failing(rows)
    assert ("open-data", "bucket.kms_encryption") in failing(rows)


def test_default_config_from_xdg_config_home(tmp_path, capsys):
    path = tmp_path / "xdg" / "s3tail" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text('[posture]\ndisable = ["account.block_public_access"]\n')
    assert (None, "account.block_public_access") not in failing(jsonl(capsys))


def test_default_config_falls_back_to_home_dot_config(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("XDG_CONFIG_HOME")
    path = tmp_path / "home" / ".config" / "s3tail" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text("[posture]\nbogus = 1\n")
    code, _, err = posture(capsys, "--snapshot", str(FIXTURE))
    assert code == 2 and "unknown key posture.bogus" in err and str(path) in err


# --- the installed console command --------------------------------------------------------------

def test_console_command_runs_posture(tmp_path):
    command = shutil.which("s3tail")
    argv = [command] if command else [sys.executable, "-m", "s3tail.core.cli"]
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path), NO_COLOR="1")
    done = subprocess.run([*argv, "posture", "--snapshot", str(FIXTURE), "--format", "jsonl"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert ("open-data", "bucket.public_acl_write") not in failing(rows)
    assert ("open-data", "bucket.public_acl_read") in failing(rows)
    missing = subprocess.run([*argv, "posture", "--snapshot", str(tmp_path / "gone.json")],
                             capture_output=True, text=True, env=env, timeout=120)
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.strip().splitlines() == [f"s3tail: snapshot {tmp_path / 'gone.json'}: no such file"]


def test_save_to_an_unwritable_path_is_a_posture_error(tmp_path):
    with pytest.raises(PostureError, match="cannot write snapshot"):
        save_snapshot(load_snapshot(FIXTURE), tmp_path)  # a directory
