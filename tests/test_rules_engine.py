"""Built-in rules: each fires on a crafted sequence and not on its near miss; windows, dedup, findings."""
from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "rules"))
from rulekit import ACTOR, OTHER, T0, ct, ev, of, run  # noqa: E402

from s3tail.core.rules import RuleEngine  # noqa: E402
from s3tail.core.rules.builtin import RULE_IDS  # noqa: E402

ISSUE_IDS = {
    "s3.object_access_errors", "s3.enumeration", "s3.mass_download", "s3.mass_delete", "s3.anonymous_access",
    "s3.insecure_transport", "s3.sigv2_request", "s3.pentest_user_agent", "s3.sensitive_object_access",
    "s3.web_attack_probe", "s3.bucket_policy_change", "s3.security_control_disabled", "s3.bucket_deleted",
    "s3.log_tampering", "s3.ransomware_note", "s3.ip_not_allowlisted", "s3.unknown_requester",
}
GIB = 1 << 30


def test_every_issue_rule_id_exists():
    assert set(RULE_IDS) == ISSUE_IDS


# ---------------------------------------------------------------- windowed rules: threshold, threshold-1

def errors(n, status=403, op="REST.GET.OBJECT", step=60, bucket_level=False, **kw):
    return [ev(op, None if bucket_level else f"k{i}", at=i * step, http_status=status, **kw) for i in range(n)]


def test_object_access_errors_threshold():
    f = of(run(errors(5)), "s3.object_access_errors")
    assert len(f) == 1 and f[0].requester == ACTOR and f[0].bucket == "acme-data" and f[0].count == 5
    assert f[0].severity == "low"
    assert not of(run(errors(4)), "s3.object_access_errors")                       # threshold - 1


def test_object_access_errors_near_misses():
    assert not of(run(errors(5, step=16 * 60)), "s3.object_access_errors")          # 5 over 64 min: outside
    assert of(run(errors(5, step=15 * 60)), "s3.object_access_errors")              # 60 min: inclusive
    assert not of(run(errors(5, user_agent="aws-internal/3")), "s3.object_access_errors")
    assert not of(run(errors(5, op="REST.HEAD.BUCKET", bucket_level=True)), "s3.object_access_errors")
    assert not of(run(errors(5, status=500)), "s3.object_access_errors")
    # per bucket and actor: 3 + 2 in two buckets is no finding
    mixed = errors(3) + [ev(key="x", at=300 + i, http_status=403, bucket="other") for i in range(2)]
    assert not of(run(mixed), "s3.object_access_errors")
    assert of(run(errors(5, status=405)), "s3.object_access_errors")


def test_enumeration_any_operation():
    burst = [ev("REST.HEAD.BUCKET" if i % 2 else "REST.GET.OBJECT", None if i % 2 else f"k{i}", at=i * 10,
                http_status=404 if i % 3 else 403, requester=None, remote_ip="203.0.113.9") for i in range(20)]
    f = of(run(burst), "s3.enumeration")
    assert len(f) == 1 and f[0].requester is None and f[0].remote_ip == "203.0.113.9" and f[0].count == 20
    assert not of(run(burst[:19]), "s3.enumeration")
    spread = [e._replace(ts=T0 + i * 20, time=None) for i, e in enumerate(burst)]    # 20 over 6m20s
    assert not of(run(spread), "s3.enumeration")
    svc = [e._replace(requester="svc:cloudfront.amazonaws.com", principal_type="service") for e in burst]
    assert not of(run(svc), "s3.enumeration")


def test_enumeration_out_of_order_and_late_log_object():
    burst = errors(20, status=404, step=5)
    random.Random(3).shuffle(burst)
    assert of(run(burst), "s3.enumeration")
    # newer traffic of the same actor first, the late log object (2 h older) afterwards
    newer = [ev(key=f"n{i}", at=7200 + i, http_status=404) for i in range(5)]
    assert of(run(newer + errors(20, status=404, step=5)), "s3.enumeration")
    assert not of(run(newer + errors(14, status=404, step=5)), "s3.enumeration")


def gets(n, size=1, step=1.0, actor=ACTOR, distinct=True):
    return [ev(key=f"obj/{i if distinct else 0}", at=i * step, bytes_sent=size, requester=actor)
            for i in range(n)]


def test_mass_download_bytes_and_distinct():
    f = of(run(gets(8, size=GIB // 8)), "s3.mass_download")
    assert len(f) == 1 and f[0].requester == ACTOR and f[0].details["bytes"] == GIB
    assert not of(run(gets(7, size=GIB // 8)), "s3.mass_download")
    # one object counts at most object_cap (128 MiB) bytes: a restore of a few huge archives is no
    # mass download; details.bytes is what was really sent
    assert not of(run(gets(4, size=GIB // 4)), "s3.mass_download")
    assert not of(run(gets(1, size=9 * GIB)), "s3.mass_download")
    f = of(run(gets(9, size=GIB)), "s3.mass_download")
    assert len(f) == 1 and f[0].count == 9 and f[0].details["bytes"] == 9 * GIB  # fires at the 8th
    uncapped = {"rules": {"s3.mass_download": {"object_cap": 0}}}
    assert of(run(gets(4, size=GIB // 4), config=uncapped), "s3.mass_download")
    assert of(run(gets(500)), "s3.mass_download")
    assert not of(run(gets(499)), "s3.mass_download")
    assert not of(run(gets(2000, distinct=False)), "s3.mass_download")           # one object, small
    assert not of(run(gets(500, step=1.3)), "s3.mass_download")                  # 500 over 10.8 min
    failed = [e._replace(http_status=403, error_code="AccessDenied") for e in gets(4, size=GIB // 4)]
    assert not of(run(failed), "s3.mass_download")



def _first_distinct_fire(events, distinct: int, span: float):
    """Reference: the index of the event at which ``distinct`` different keys first fall within
    ``span`` seconds of an event (time-ordered events; the window restarts after a fire)."""
    start = 0
    for i, e in enumerate(events):
        keys = {x.key for x in events[start:i + 1] if x.ts >= e.ts - span}
        if len(keys) >= distinct:
            return i
    return None


def test_mass_download_distinct_counts_follow_the_window():
    # the same few keys over and over: never the distinct count, however many requests
    loop = [ev(key=f"obj/{i % 400}", at=i * 0.1, bytes_sent=1) for i in range(4000)]
    assert not of(run(loop), "s3.mass_download")
    more = [ev(key=f"new/{i}", at=400 + i * 0.1, bytes_sent=1) for i in range(100)]
    f = of(run(loop + more), "s3.mass_download")
    assert len(f) == 1 and f[0].count == 4100   # the 500th distinct key, with every request in the window
    # keys leave the count as their requests leave the window: 300 then, 11 min later, 250 others
    old = [ev(key=f"a/{i}", at=i, bytes_sent=1) for i in range(300)]
    late = [ev(key=f"b/{i}", at=300 + 660 + i, bytes_sent=1) for i in range(250)]
    assert not of(run(old + late), "s3.mass_download")
    # random repeats, against a brute-force reference (distinct 20 in the 10 min window)
    rnd = random.Random(11)
    config = {"rules": {"s3.mass_download": {"distinct": 20}}}
    for _ in range(20):
        t, events = 0.0, []
        for _ in range(300):
            t += rnd.choice((1, 5, 30, 120))
            events.append(ev(key=f"k/{rnd.randrange(40)}", at=t, bytes_sent=1))
        want = _first_distinct_fire(events, 20, 600)
        got = of(run(events, config=config), "s3.mass_download")
        assert bool(got) == (want is not None)
        if got:
            assert got[0].first_ts <= events[want].ts and got[0].count >= 20


def test_mass_delete_counts_rows_and_keys():
    rows = [ev("BATCH.DELETE.OBJECT", f"k{i}", at=i, http_status=204) for i in range(50)]
    f = of(run(rows), "s3.mass_delete")
    assert len(f) == 1 and f[0].count == 50 and f[0].severity == "high"
    assert not of(run(rows[:49]), "s3.mass_delete")
    # the MULTI_OBJECT_DELETE request row is not counted on top of its BATCH rows
    post = [ev("REST.POST.MULTI_OBJECT_DELETE", None, at=i) for i in range(60)]
    assert not of(run(post), "s3.mass_delete")
    keys = {"delete": {"Object": [{"Key": f"k{i}"} for i in range(50)]}}
    assert of(run([ct("DeleteObjects", keys)]), "s3.mass_delete")
    keys49 = {"delete": {"Object": [{"Key": f"k{i}"} for i in range(49)]}}
    assert not of(run([ct("DeleteObjects", keys49)]), "s3.mass_delete")
    singles = [ct("DeleteObject", {"key": f"k{i}"}, at=i * 11) for i in range(50)]
    assert of(run(singles), "s3.mass_delete")
    assert not of(run([ct("DeleteObject", {}, at=i * 13) for i in range(50)]), "s3.mass_delete")  # 10.6 min


def test_windows_are_per_actor():
    mixed = [ev(key=f"k{i}", at=i, http_status=204, op="REST.DELETE.OBJECT", requester=ACTOR if i % 2 else OTHER)
             for i in range(90)]
    assert not of(run(mixed), "s3.mass_delete")


# ---------------------------------------------------------------- stateless rules

def test_anonymous_access():
    anon = ev(requester=None, remote_ip="203.0.113.5")
    f = of(run([anon]), "s3.anonymous_access")
    assert len(f) == 1 and f[0].remote_ip == "203.0.113.5" and f[0].requester is None
    assert not of(run([ev()]), "s3.anonymous_access")
    assert not of(run([anon._replace(http_status=403, error_code="AccessDenied")]), "s3.anonymous_access")
    assert not of(run([anon], {"public_buckets": ["acme-*"]}), "s3.anonymous_access")
    assert not of(run([ev("WEBSITE.GET.OBJECT", requester=None)]), "s3.anonymous_access")
    # two anonymous IPs on one bucket: each its own finding (the actor is the remote IP)
    two = run([anon, anon._replace(remote_ip="203.0.113.6")])
    assert {f.remote_ip for f in of(two, "s3.anonymous_access")} == {"203.0.113.5", "203.0.113.6"}


def test_insecure_transport():
    plain = ev("REST.PUT.OBJECT", cipher_suite=None, tls_version=None)
    assert of(run([plain]), "s3.insecure_transport")
    assert not of(run([ev("REST.PUT.OBJECT")]), "s3.insecure_transport")
    assert not of(run([plain._replace(operation="S3.EXPIRE.OBJECT", action=None, requester="AmazonS3")]),
                  "s3.insecure_transport")
    assert not of(run([plain._replace(host_header="site.s3-website-us-east-1.amazonaws.com")]),
                  "s3.insecure_transport")
    assert not of(run([plain._replace(operation="REST.GET.BUCKET", action="ListObjects")]),
                  "s3.insecure_transport")


def test_sigv2():
    assert of(run([ev(signature_version="SigV2")]), "s3.sigv2_request")
    assert not of(run([ev()]), "s3.sigv2_request")


@pytest.mark.parametrize("ua", ["aws-cli/1.18 Python/3.8 Linux/5.4.0-kali3-amd64 botocore/1.17",
                                "Boto3/1.9 Python/3.7 Linux/4.19.0-parrot1-amd64", "Pentoo/2023",
                                "s3scanner/2.0", "python-requests/2.28 AWSBucketDump", "sqlmap/1.7"])
def test_pentest_user_agent(ua):
    assert of(run([ev(user_agent=ua)]), "s3.pentest_user_agent")


@pytest.mark.parametrize("ua", ["aws-cli/2.15.0 Python/3.11", "Mozilla/5.0 (compatible; Yahoo! Slurp)",
                                "Kalimba/1.0", "Mozilla/5.0 (Windows NT 10.0) Chrome/124"])
def test_pentest_user_agent_near_miss(ua):
    assert not of(run([ev(user_agent=ua)]), "s3.pentest_user_agent")


@pytest.mark.parametrize("key", ["app/.env", "deploy/prod.PEM", "home/u/.ssh/id_rsa.pub", "cfg/db_secret.json",
                                 "x/aws_credentials", "vault.kdbx", "infra/terraform.tfstate"])
def test_sensitive_object_access(key):
    assert of(run([ev(key=key)]), "s3.sensitive_object_access")


def test_sensitive_near_misses_and_config():
    assert not of(run([ev(key="app/environment.txt")]), "s3.sensitive_object_access")
    assert not of(run([ev(key="app/.env", http_status=403)]), "s3.sensitive_object_access")
    assert not of(run([ev("REST.GET.BUCKET", None)]), "s3.sensitive_object_access")
    assert not of(run([ev(key="db/dump.sqlite")]), "s3.sensitive_object_access")
    assert of(run([ev(key="db/dump.SQLITE")], {"sensitive_patterns": ["*.sqlite"]}), "s3.sensitive_object_access")
    assert of(run([ev(key="x/backup-2024/a")], {"sensitive_patterns": ["x/backup-*"]}),
              "s3.sensitive_object_access")


@pytest.mark.parametrize("uri", ["GET /a/../../etc/passwd HTTP/1.1", "GET /%2e%2e/%2e%2e/x HTTP/1.1",
                                 'GET /?s=index/\\think\\app/invokefunction HTTP/1.1',
                                 "GET /x.php?<?php system('id'); ?> HTTP/1.1", "GET /?q=${jndi:ldap://x/a} HTTP/1.1",
                                 "GET /?id=1%20UNION%20SELECT%201 HTTP/1.1"])
def test_web_attack_probe(uri):
    f = of(run([ev(request_uri=uri)]), "s3.web_attack_probe")
    assert f and f[0].details["probe"]


def test_web_attack_probe_near_miss():
    assert not of(run([ev(key="docs/a..b/union-station.txt", request_uri="GET /docs/a.b/union%20st.txt HTTP/1.1")]),
                  "s3.web_attack_probe")


def test_bucket_policy_change_access_log_and_cloudtrail():
    for op in ("REST.PUT.BUCKETPOLICY", "REST.DELETE.BUCKETPOLICY", "REST.PUT.PUBLIC_ACCESS_BLOCK", "REST.PUT.CORS",
               "REST.PUT.LIFECYCLE", "REST.PUT.REPLICATION", "REST.DELETE.CORS"):
        f = of(run([ev(op, None)]), "s3.bucket_policy_change")
        assert f and f[0].severity == "medium" and f[0].details["body_logged"] is False, op
    assert of(run([ev("REST.PUT.ACL", None)]), "s3.bucket_policy_change")
    assert not of(run([ev("REST.PUT.ACL", "obj.txt")]), "s3.bucket_policy_change")        # object ACL
    assert not of(run([ev("REST.GET.BUCKETPOLICY", None)]), "s3.bucket_policy_change")
    assert not of(run([ev("REST.PUT.BUCKETPOLICY", None, http_status=403)]), "s3.bucket_policy_change")
    public = {"bucketName": "acme-data", "bucketPolicy": {"Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::acme-data/*"}]}}
    f = of(run([ct("PutBucketPolicy", public)]), "s3.bucket_policy_change")
    assert f[0].severity == "high" and f[0].details["made_public"] is True
    org = json.loads(json.dumps(public))
    org["bucketPolicy"]["Statement"][0]["Condition"] = {"StringEquals": {"aws:PrincipalOrgID": "o-123"}}
    f = of(run([ct("PutBucketPolicy", org)]), "s3.bucket_policy_change")
    assert f[0].severity == "medium" and "made_public" not in f[0].details


def test_security_control_disabled_and_escalation():
    logging_off = ct("PutBucketLogging", {"bucketName": "acme-data", "BucketLoggingStatus": "", "logging": ""})
    f = of(run([logging_off]), "s3.security_control_disabled")
    assert f and f[0].severity == "medium"
    versioning = ct("PutBucketVersioning", {"VersioningConfiguration": {"Status": "Suspended"}}, at=3600)
    f = of(run([logging_off, versioning]), "s3.security_control_disabled")
    assert len(f) == 1 and f[0].severity == "critical" and f[0].details["kinds"] == [
        "logging_disabled", "versioning_suspended"]
    late = versioning._replace(ts=T0 + 91 * 60)
    assert of(run([logging_off, late]), "s3.security_control_disabled")[0].severity == "medium"  # outside 90 min
    other = versioning._replace(requester=OTHER)
    assert all(f.severity == "medium" for f in of(run([logging_off, other]), "s3.security_control_disabled"))
    assert of(run([ev("REST.DELETE.PUBLIC_ACCESS_BLOCK", None)]), "s3.security_control_disabled")
    assert of(run([ev("REST.DELETE.ENCRYPTION", None)]), "s3.security_control_disabled")
    assert not of(run([ct("PutBucketVersioning", {"VersioningConfiguration": {"Status": "Enabled"}})]),
                  "s3.security_control_disabled")
    assert not of(run([ct("DeleteBucketEncryption", {}, error="AccessDenied")]), "s3.security_control_disabled")


def test_bucket_deleted():
    assert of(run([ev("REST.DELETE.BUCKET", None, http_status=204)]), "s3.bucket_deleted")
    assert of(run([ct("DeleteBucket", {"bucketName": "acme-data"})]), "s3.bucket_deleted")
    assert not of(run([ct("DeleteBucket", {}, error="BucketNotEmpty")]), "s3.bucket_deleted")
    assert not of(run([ct("DeleteBucketPolicy", {})]), "s3.bucket_deleted")


def test_log_tampering():
    key = "AWSLogs/123456789012/CloudTrail/us-east-1/2024/05/14/x.json.gz"
    assert of(run([ev("REST.DELETE.OBJECT", key, http_status=204)]), "s3.log_tampering")
    assert of(run([ev("REST.PUT.OBJECT", key)]), "s3.log_tampering")
    assert not of(run([ev("REST.GET.OBJECT", key)]), "s3.log_tampering")
    assert not of(run([ev("REST.PUT.OBJECT", key, requester="svc:cloudtrail.amazonaws.com")]), "s3.log_tampering")
    assert not of(run([ev("REST.DELETE.OBJECT", "s3/2024-05-14-00-00-00-AB", http_status=204)]), "s3.log_tampering")
    cfg = {"log_prefixes": ["s3://acme-data/s3/"]}
    assert of(run([ev("REST.DELETE.OBJECT", "s3/2024-05-14-00-00-00-AB", http_status=204)], cfg),
              "s3.log_tampering")


def test_ransomware_note():
    assert of(run([ev("REST.PUT.OBJECT", "data/HOW_TO_DECRYPT_FILES.txt")]), "s3.ransomware_note")
    assert of(run([ev("REST.PUT.OBJECT", "README_FOR_DECRYPT.html")]), "s3.ransomware_note")
    assert not of(run([ev("REST.PUT.OBJECT", "reports/quarterly_report.pdf")]), "s3.ransomware_note")
    assert not of(run([ev("REST.GET.OBJECT", "data/HOW_TO_DECRYPT_FILES.txt")]), "s3.ransomware_note")
    assert not of(run([ev("REST.PUT.OBJECT", "backup/restore_files.tar.gz")]), "s3.ransomware_note")


def test_allowlist_rules_inert_until_configured():
    assert not of(run([ev(remote_ip="11.0.0.1")]), "s3.ip_not_allowlisted")
    cfg = {"allowlists": {"ip": {"acme-*": ["10.0.0.0/8", "2a00::/16"]}}}
    assert of(run([ev(remote_ip="11.0.0.1")], cfg), "s3.ip_not_allowlisted")
    assert not of(run([ev(remote_ip="10.1.2.3")], cfg), "s3.ip_not_allowlisted")
    assert not of(run([ev(remote_ip="11.0.0.1", bucket="other")], cfg), "s3.ip_not_allowlisted")
    assert of(run([ev(remote_ip="2600:1ffe:8140::a47:a85a")], cfg), "s3.ip_not_allowlisted")
    assert not of(run([ev(requester=OTHER)]), "s3.unknown_requester")
    cfg = {"allowlists": {"requesters": {"acme-*": ["arn:aws:iam::123456789012:user/a*"]}}}
    assert not of(run([ev(requester=OTHER)], cfg), "s3.unknown_requester")
    f = of(run([ev(requester=ACTOR)], cfg), "s3.unknown_requester")
    assert f and f[0].requester == ACTOR
    assert not of(run([ev(requester=ACTOR, http_status=403)], cfg), "s3.unknown_requester")


# ---------------------------------------------------------------- dedup, findings, API

def test_dedup_one_open_finding_growing_then_new_after_period():
    stream = [ev(signature_version="SigV2", at=i * 60) for i in range(10)]
    f = of(run(stream), "s3.sigv2_request")
    assert len(f) == 1 and f[0].count == 10
    assert f[0].first_seen == "2024-05-14T00:00:00Z" and f[0].last_seen == "2024-05-14T00:09:00Z"
    later = stream + [ev(signature_version="SigV2", at=2 * 3600)]
    assert [x.count for x in of(run(later), "s3.sigv2_request")] == [10, 1]
    dedup = {"rules": {"s3.sigv2_request": {"dedup": 0.5}}}
    assert len(of(run(stream, dedup), "s3.sigv2_request")) == 10


def test_finding_to_dict_contract_and_refs():
    stream = errors(7)
    f = of(run(stream), "s3.object_access_errors")[0]
    d = f.to_dict()
    for name in ("rule_id", "severity", "title", "bucket", "requester", "remote_ip", "first_seen", "last_seen",
                 "count", "samples"):
        assert name in d
    assert json.loads(json.dumps(d)) == d
    assert len(d["samples"]) == 5
    assert set(d["samples"][0]) == {"log_object", "log_line", "time", "action", "key", "http_status"}
    assert d["samples"][0]["action"] == "GetObject" and d["samples"][0]["http_status"] == 403
    assert f.event_refs == [(e.log_object, e.log_line) for e in stream]


def test_engine_api_batches_and_single_events_agree():
    stream = errors(30, status=404, step=7) + gets(600) + [ev(key="x/.env", at=5)]
    one = RuleEngine({}, None)
    touched = []
    for e in stream:
        touched.extend(one.process(e))
    one.flush()
    by_batch = run(stream, batch=64)
    assert {(f.rule_id, f.count) for f in one.findings()} == {(f.rule_id, f.count) for f in by_batch}
    assert touched and all(hasattr(f, "to_dict") for f in touched)
    engine = RuleEngine({}, None)
    new = engine.process_batch(errors(5))
    assert [f.rule_id for f in new] == ["s3.object_access_errors"]
    assert engine.findings() == new and engine.errors == []
    assert engine.flush() == new and engine.pop_closed() == []


def test_pop_closed_in_event_time():
    engine = RuleEngine({}, None)
    engine.process_batch([ev(signature_version="SigV2", at=0)])
    assert engine.pop_closed() == []
    engine.process_batch([ev(at=61 * 60)])
    closed = engine.pop_closed()
    assert [f.rule_id for f in closed] == ["s3.sigv2_request"] and closed[0].closed


def test_hostile_strings_stored_plainly():
    nasty = "\x1b[31mred\x1b]0;pwned\x07\u202e[bold]x[/]"
    f = of(run([ev(key=f"home/{nasty}/.env", requester=f"arn:aws:iam::1:user/{nasty}")]),
           "s3.sensitive_object_access")[0]
    assert nasty in f.requester and nasty in f.samples[0]["key"]
    title = of(run([ev(key="x", request_uri=f"GET /../../{nasty} HTTP/1.1")]), "s3.web_attack_probe")[0].title
    assert isinstance(title, str)


def test_no_crash_on_odd_events():
    odd = [ev(key=None, request_uri=None, user_agent=None, remote_ip=None, http_status=None, bytes_sent=None),
           ev(op="REST.WEIRD.THING", ts=None, time=None), ev(key="İİİ/ß/.env"), ct("PutBucketPolicy", None),
           ct("PutBucketPolicy", {"bucketPolicy": "not json"}), ct("DeleteObjects", {"delete": "x"})]
    engine = RuleEngine({}, None)
    engine.process_batch(odd)
    engine.flush()
    assert engine.errors == []
    assert of(engine.findings(), "s3.sensitive_object_access")


@pytest.mark.parametrize("batch", [None, 7])
def test_error_rules_need_a_real_share_of_the_actors_requests(batch):
    # a busy application: 20 404s among 200 requests in 5 minutes (10%) is not enumeration
    mixed = [ev(key=f"k{i}", at=i * 1.5, http_status=404 if i % 10 == 0 else 200) for i in range(200)]
    assert not of(run(mixed, batch=batch), "s3.enumeration")
    # the same errors with 40 successes (20 of 60 requests, 33%) are
    probing = [ev(key=f"k{i}", at=i * 5, http_status=404 if i % 3 == 0 else 200) for i in range(60)]
    f = of(run(probing, batch=batch), "s3.enumeration")
    assert len(f) == 1 and f[0].details["requests"] >= 20
    # requests of other actors do not dilute an actor's share
    others = [ev(key=f"o{i}", at=i, requester=OTHER) for i in range(300)]
    assert of(run(others + errors(20, status=404, step=5), batch=batch), "s3.enumeration")


def test_service_principals_never_raise_windowed_rules():
    cdn = gets(600, actor="svc:cloudfront.amazonaws.com")
    assert not of(run(cdn), "s3.mass_download")
    assert not of(run(errors(30, status=403, requester="svc:cloudfront.amazonaws.com")), "s3.enumeration")
    assert not of(run(errors(30, status=403, user_agent="aws-internal/3 aws-sdk-java")), "s3.enumeration")


def test_prefilter_maps_hits_to_the_right_event_with_hostile_keys():
    # keys with newlines, non-ASCII and lone surrogates before the sensitive one: the hit still
    # belongs to its own event, and nothing crashes
    junk = [ev(key=k, at=i) for i, k in enumerate(["a\nb\nc", "Übersicht\n.ENV", "x\udcff\n", "日本語"])]
    target = ev(key="deploy/prod.pem", at=10, requester=OTHER)
    f = of(run(junk + [target]), "s3.sensitive_object_access")
    assert {x.requester for x in f} == {ACTOR, OTHER}  # "Übersicht\n.ENV" ends in .env too
    assert [x.samples[0]["key"] for x in f if x.requester == OTHER] == ["deploy/prod.pem"]


def test_findings_view_is_the_findings_so_far_without_a_copy():
    engine = RuleEngine({})
    engine.process_batch(errors(5) + gets(500, actor=OTHER))
    view = engine.findings_view()
    before = engine.findings()
    assert list(view) == before and len(view) == len(before) >= 2
    assert view[0] is before[0] and view[-1] is before[-1] and view[:1] == before[:1]
    with pytest.raises(IndexError):
        view[len(before)]
    engine.process_batch([ev(key="x.env", at=9000)])   # a new finding: the view keeps its length
    assert len(engine.findings()) == len(before) + 1 and list(view) == before


class _OneByOne(RuleEngine):
    """The engine with a firing window's entries past MAX_REFS taken one by one (the reference of
    ``RuleEngine._fire_tail``)."""

    def _fire_tail(self, rule, f, ev_, hit, tail):
        for e in tail:
            f.add(e[3], e[0])
            self._extra(rule, f, e[3], hit if e[3] is ev_ else (e[1], e[2], None, None))


def _full(f):
    return (f.rule_id, f.severity, f.title, f.count, f.first_ts, f.last_ts, f.evidence, f.event_refs,
            dict(f.details), f.close_ts)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_big_windows_fire_as_one_by_one(seed):
    """A busy actor's window holding thousands of entries when it fires (repeated keys, then the
    500th distinct one; deletes; times jittered and out of order; sizes that are not round): the bulk
    tail gives the one-by-one finding (count, first and last times, refs, samples, measures)."""
    rnd = random.Random(seed)
    events = []
    for i in range(2600):
        k = rnd.randrange(300) if i < 2400 else 300 + i
        events.append(ev(key=f"f/{k}", at=i * 0.1 + rnd.uniform(-20, 20), bytes_sent=rnd.randrange(1, 10 ** 6)))
    events += [ev("REST.DELETE.OBJECT", key=f"d/{i}", at=300 + i * 0.05 + rnd.uniform(-5, 5), http_status=204)
               for i in range(1500)]
    rnd.shuffle(events[:2400])
    config = {"rules": {"s3.mass_delete": {"threshold": 1200}}}
    got, want = RuleEngine(config), _OneByOne(config)
    for engine in (got, want):
        for i in range(0, len(events), 700):
            engine.process_batch(events[i:i + 700])
        engine.flush()
    found = [_full(f) for f in got.findings()]
    assert found == [_full(f) for f in want.findings()]
    big = {f.rule_id: f.count for f in got.findings() if f.count > 1000}
    assert set(big) == {"s3.mass_download", "s3.mass_delete"}


def test_big_window_float_measures_in_order():
    """Float measures past MAX_REFS are added one by one in order (float sums depend on the order)."""
    events = [ev(key=f"f/{i % 200}", at=i * 0.1) for i in range(1200)] + [ev(key=f"g/{i}", at=120 + i)
                                                                        for i in range(300)]
    engines = RuleEngine({}), _OneByOne({})
    for engine in engines:
        rule = engine._by_id["s3.mass_download"]
        rule.measure_of = lambda e: 0.1 + (e.log_line % 7) * 1e-9
        engine.process_batch(events)
        engine.flush()
    a, b = (of(e.findings(), "s3.mass_download") for e in engines)
    assert len(a) == 1 and a[0].count > 1000 and [_full(f) for f in a] == [_full(f) for f in b]
    assert type(a[0].details["bytes"]) is float
