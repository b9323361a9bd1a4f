"""TOML config (overrides, allowlists, errors naming the key) and user rules (incl. broken ones)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "rules"))
from rulekit import ACTOR, ev, of, run  # noqa: E402

from s3tail.core.config import ConfigError, load_config, validate_config  # noqa: E402
from s3tail.core.rules import RuleEngine  # noqa: E402

USER_RULES = Path(__file__).parent / "fixtures" / "rules" / "user_rules"


def write(tmp_path, text):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return str(path)


def errors(n, step=60):
    return [ev(key=f"k{i}", at=i * step, http_status=403) for i in range(n)]


def test_overrides_threshold_window_severity_disable(tmp_path):
    cfg = load_config(write(tmp_path, """
[rules."s3.object_access_errors"]
threshold = 3
window = 5
severity = "critical"
[rules."s3.sigv2_request"]
enabled = false
"""))
    f = of(run(errors(3), cfg), "s3.object_access_errors")
    assert len(f) == 1 and f[0].severity == "critical"
    assert not of(run(errors(3, step=200), cfg), "s3.object_access_errors")     # 3 over 6m40s > 5 min
    assert not of(run([ev(signature_version="SigV2")], cfg), "s3.sigv2_request")
    assert of(run([ev(signature_version="SigV2")]), "s3.sigv2_request")


def test_lists_and_allowlists(tmp_path):
    cfg = load_config(write(tmp_path, """
public_buckets = ["acme-*"]
sensitive_patterns = ["*.sqlite"]
trusted_accounts = ["111122223333"]
log_prefixes = ["s3://acme-data/logs/"]
[allowlists.ip]
"acme-*" = ["10.0.0.0/8"]
[allowlists.requesters]
"acme-*" = ["arn:aws:iam::123456789012:user/a*"]
[posture]
anything = "belongs to another part"
"""))
    found = run([ev(requester=None), ev(key="db/x.sqlite", remote_ip="10.0.0.1", requester=ACTOR),
                 ev("REST.DELETE.OBJECT", "logs/2024-05-14", http_status=204)], cfg)
    assert not of(found, "s3.anonymous_access")
    assert of(found, "s3.sensitive_object_access") and of(found, "s3.log_tampering")
    assert of(found, "s3.ip_not_allowlisted") and of(found, "s3.unknown_requester")


@pytest.mark.parametrize("text, names", [
    ('[rules."s3.nope"]\nenabled = true', "rules.s3.nope"),
    ("[rules.s3.enumeration]\nenabled = true", "rules.s3"),
    ('[rules."s3.enumeration"]\nthreshold = 0', "rules.s3.enumeration.threshold"),
    ('[rules."s3.enumeration"]\nseverity = "urgent"', "rules.s3.enumeration.severity"),
    ('[rules."s3.enumeration"]\nenabled = "yes"', "rules.s3.enumeration.enabled"),
    ('[rules."s3.enumeration"]\nthreshhold = 3', "rules.s3.enumeration.threshhold"),
    ('[rules."s3.enumeration"]\nwindow = -1', "rules.s3.enumeration.window"),
    ('public_buckets = "acme"', "public_buckets"),
    ('trusted_accounts = ["12"]', "trusted_accounts"),
    ('[allowlists.ip]\n"b" = ["not-a-cidr"]', "allowlists.ip.b"),
    ('[allowlists.other]\n"b" = []', "allowlists.other"),
    ("typo = 3", "typo"),
    ("this is = not toml [", "not valid TOML"),
])
def test_bad_config_names_the_key(tmp_path, text, names):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert names in str(info.value) and str(tmp_path) in str(info.value)


def test_config_file_missing_and_default(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(str(tmp_path / "absent.toml"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert load_config(None) == {}
    (tmp_path / "s3tail").mkdir()
    (tmp_path / "s3tail" / "config.toml").write_text('[rules."s3.sigv2_request"]\nenabled = false\n')
    assert load_config(None)["rules"]["s3.sigv2_request"]["enabled"] is False
    assert validate_config({}) == {}


def test_user_rules_load_run_and_report_errors():
    engine = RuleEngine({}, str(USER_RULES))
    ids = {r.id for r in engine.rules}
    assert {"user.big_put", "user.broken_runtime", "user.bad_title"} <= ids
    assert "user.no_rule" not in ids and "user.broken_import" not in ids
    load_errors = list(engine.errors)
    assert any("broken_import.py" in e and "failed to load" in e for e in load_errors)
    assert any("no_rule.py" in e and "no rule(event)" in e for e in load_errors)
    stream = [ev("REST.PUT.OBJECT", f"up/{i}", at=i, object_size=5000) for i in range(3)]
    stream += [ev("REST.DELETE.OBJECT", f"d/{i}", at=10 + i, http_status=204) for i in range(3)]
    engine.process_batch(stream)
    engine.process_batch(stream)   # the broken rule raises again: still reported once
    engine.flush()
    big = of(engine.findings(), "user.big_put")
    assert len(big) == 1 and big[0].severity == "high" and big[0].title == f"Big uploads by {ACTOR}"
    assert big[0].count == 6
    runtime = [e for e in engine.errors if "broken_runtime.py" in e]
    assert len(runtime) == 1 and "ZeroDivisionError" in runtime[0]
    titled = of(engine.findings(), "user.bad_title")
    assert titled and titled[0].severity == "low"
    assert len([e for e in engine.errors if "bad_title.py" in e]) == 1


def test_user_rule_near_miss_and_config_override():
    few = [ev("REST.PUT.OBJECT", f"up/{i}", at=i * 400, object_size=5000) for i in range(3)]  # 13 min > 10
    assert not of(run(few, rules_dir=str(USER_RULES)), "user.big_put")
    cfg = {"rules": {"user.big_put": {"window": 20, "severity": "medium"}}}
    f = of(run(few, cfg, rules_dir=str(USER_RULES)), "user.big_put")
    assert f and f[0].severity == "medium"
    assert not of(run(few, {"rules": {"user.big_put": {"enabled": False}}}, str(USER_RULES)), "user.big_put")


def test_rules_dir_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="not a directory"):
        RuleEngine({}, str(tmp_path / "absent"))


@pytest.mark.parametrize("table, key, message", [
    ('[rules."s3.object_access_errors"]\nmin_error_share = 2', "rules.s3.object_access_errors.min_error_share",
     "from 0 to 1"),
    ('[rules."s3.mass_download"]\nobject_cap = -1', "rules.s3.mass_download.object_cap", ">= 0"),
    ('[rules."s3.mass_delete"]\nskip_services = "yes"', "rules.s3.mass_delete.skip_services", "true or false"),
    ('[rules."s3.mass_delete"]\nobject_cap = 1', "rules.s3.mass_delete.object_cap", "skip_services"),
])
def test_suppression_keys_are_checked(tmp_path, table, key, message):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, table))
    assert key in str(err.value) and message in str(err.value)


def test_error_share_and_service_skip_from_config(tmp_path):
    # 5 errors among 40 requests of one actor: 12.5% < 25%, quiet by default, a finding at share 0.1
    busy = errors(5, step=600) + [ev(key=f"ok{i}", at=i * 60) for i in range(35)]
    assert not of(run(busy), "s3.object_access_errors")
    cfg = load_config(write(tmp_path, '[rules."s3.object_access_errors"]\nmin_error_share = 0.1\n'))
    assert of(run(busy, cfg), "s3.object_access_errors")
    # an AWS service deleting 60 objects: quiet unless skip_services = false
    svc = [ev("REST.DELETE.OBJECT", f"k{i}", at=i, http_status=204, requester="svc:backup.amazonaws.com")
           for i in range(60)]
    assert not of(run(svc), "s3.mass_delete")
    cfg = load_config(write(tmp_path, '[rules."s3.mass_delete"]\nskip_services = false\n'))
    f = of(run(svc, cfg), "s3.mass_delete")
    assert len(f) == 1 and f[0].requester == "svc:backup.amazonaws.com"
