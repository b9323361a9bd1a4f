"""The filter language (a contract): every term kind, negation, quoting, errors, and `s3tail parse --filter`."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from s3tail.core.event import make_event
from s3tail.core.filter import FUZZY_THRESHOLD, VALID_FIELDS, FilterError, compile_filter

NOW = 1_715_700_000.0  # 2024-05-14T15:20:00Z

ALICE = make_event(
    source="s3access", time="2024-05-14T15:10:00Z", ts=int(NOW) - 600, bucket="Acme-Prod-Data",
    key="reports/2024/[draft] q1.pdf", operation="REST.GET.OBJECT", action="GetObject",
    requester="arn:aws:sts::123456789012:assumed-role/ADFS-Dev/alice@example.com",
    principal_name="ADFS-Dev", session_name="alice@example.com", principal_type="assumed-role",
    remote_ip="10.1.2.3", http_status=403, error_code="AccessDenied", user_agent="aws-cli/2.15.30 Python/3.11",
    tls_version="TLSv1.3", signature_version="SigV4", log_object="a.log", log_line=1)
ANON = make_event(
    source="s3access", time="2024-05-14T12:00:00Z", ts=int(NOW) - 3 * 3600 - 1200, bucket="public-site",
    key="index.html", operation="REST.GET.OBJECT", action="GetObject", requester=None,
    principal_type="anonymous", remote_ip="2001:0DB8:0:0::17", http_status=200,
    user_agent="sqlmap/1.7.2#stable (https://sqlmap.org)", log_object="a.log", log_line=2)
TRAIL = make_event(
    source="cloudtrail", time="2024-05-13T00:00:00Z", ts=int(NOW) - 2 * 86400, bucket="acme-prod-data",
    key=None, operation="PutBucketPolicy", action="PutBucketPolicy",
    requester="arn:aws:iam::123456789012:user/bob", principal_name="bob", principal_type="user",
    remote_ip="198.51.100.7", http_status=None, user_agent="console.amazonaws.com", log_object="t.json",
    log_line=1)
NOTIME = make_event(source="s3access", bucket="x", requester="svc:logging.s3.amazonaws.com",
                    http_status=503, error_code="SlowDown", remote_ip="not-an-ip", log_object="a.log",
                    log_line=3)
EVENTS = [ALICE, ANON, TRAIL, NOTIME]


def kept(text: str) -> list:
    f = compile_filter(text, now=NOW)
    return [e for e in EVENTS if f.matches(e)]


@pytest.mark.parametrize("text, expected", [
    ("", EVENTS),
    ("   ", EVENTS),
    ("bucket:acme-prod-data", [ALICE, TRAIL]),            # exact, case-insensitive
    ("bucket:acme*", [ALICE, TRAIL]),
    ("bucket:acme", []),                                   # no wildcard: the whole value
    ("bucket:?ublic-sit?", [ANON]),
    ("key:reports/*[draft]*", [ALICE]),                    # [ is literal, not a character class
    ("key:-", [TRAIL, NOTIME]),                            # - matches null
    ("-key:-", [ALICE, ANON]),
    ("requester:*ADFS-Dev*", [ALICE]),
    ("who:alice@example.com", [ALICE]),                    # session name (who)
    ("who:ADFS-Dev", [ALICE]),                             # principal name
    ("who:bob", [TRAIL]),
    ("who:anonymous", [ANON]),
    ("requester:arn:aws:iam::123456789012:user/bob", [TRAIL]),
    ("status:403", [ALICE]),
    ("status:4xx", [ALICE]),
    ("status:40x", [ALICE]),
    ("status:>=400", [ALICE, NOTIME]),
    ("status:>403", [NOTIME]),
    ("status:<500", [ALICE, ANON]),
    ("status:<=200", [ANON]),
    ("status:200-403", [ALICE, ANON]),
    ("status:-", [TRAIL]),
    ("-status:2xx", [ALICE, TRAIL, NOTIME]),               # negation keeps nulls
    ("action:get*", [ALICE, ANON]),
    ("op:rest.get.object", [ALICE, ANON]),
    ("op:PutBucket*", [TRAIL]),
    ("ip:10.1.2.3", [ALICE]),
    ("ip:10.0.0.0/8", [ALICE]),
    ("ip:2001:db8::17", [ANON]),                           # v6 spelled differently in the log
    ("ip:2001:db8::/32", [ANON]),
    ("ip:198.51.*", [TRAIL]),
    ("-ip:10.0.0.0/8", [ANON, TRAIL, NOTIME]),
    ("ua:*sqlmap*", [ANON]),
    ("error:accessdenied", [ALICE]),
    ("error:-", [ANON, TRAIL]),
    ("source:cloudtrail", [TRAIL]),
    ("tls:tlsv1.3", [ALICE]),
    ("sig:SigV4", [ALICE]),
    ("since:15m", [ALICE]),
    ("since:4h", [ALICE, ANON]),
    ("since:2024-05-14T12:00:00Z", [ALICE, ANON]),         # inclusive
    ("until:2024-05-14", [TRAIL]),                         # a date is its midnight, UTC
    ("until:2024-05-14T12:00:00+00:00", [ANON, TRAIL]),
    ("-since:1h", [ANON, TRAIL, NOTIME]),
    ("bucket:acme* status:4xx", [ALICE]),                  # all terms must hold
    ("bucket:acme* -status:4xx", [TRAIL]),
    ('key:"reports/2024/[draft] q1.pdf"', [ALICE]),        # quoted value with a space
    ("BUCKET:public-site", [ANON]),                        # field names are case-insensitive
])
def test_terms(text, expected):
    assert kept(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("sqlmap", [ANON]),               # user agent substring
    ("SQLMAP", [ANON]),
    ("sqlmpa", [ANON]),               # a typo still matches (partial_ratio >= threshold)
    ("alice", [ALICE]),               # who
    ("q1.pdf", [ALICE]),              # key
    ("bob", [TRAIL]),
    ("-sqlmap", [ALICE, TRAIL, NOTIME]),
    ('"aws-cli/2.15.30 Python"', [ALICE]),
    ('"arn:aws:iam::123456789012:user/bob"', [TRAIL]),  # a quoted word may hold colons
    ("zzqx", []),
    ("qq", []),                       # short words need the exact substring
])
def test_bare_words(text, expected):
    assert kept(text) == expected


def test_exact_substring_always_matches_even_in_long_values():
    long_ua = "x" * 5000 + "needle-in-haystack" + "y" * 5000
    e = make_event(source="s3access", user_agent=long_ua, requester="r")
    assert compile_filter("needle-in-haystack").matches(e)
    assert compile_filter("NEEDLE").matches(e)
    assert FUZZY_THRESHOLD == 80


def test_filter_object():
    f = compile_filter("status:403 -bucket:x", now=NOW)
    assert f.text == "status:403 -bucket:x"
    assert [t.negate for t in f.terms] == [False, True]
    assert f.match_event is not None and f.match_event(ALICE) is True
    assert f.fields == {"http_status", "bucket"}


@pytest.mark.parametrize("text, needle", [
    ("stauts:403", "unknown field 'stauts'"),
    ("bucket:x arn:aws:iam::1:user/b", "column 10"),
    ("status:", "needs a value"),
    ("status:abc", "expected 403, 4xx"),
    ("status:4x1", "only at the end"),
    ("ip:300.1.1.1", "not an IP address or CIDR"),
    ("ip:10.0.0.0/99", "not an IP address or CIDR"),
    ("since:yesterday", "expected a duration"),
    ("until:2024-13-45", "expected a duration"),
    ('key:"open', "unterminated quote"),
    ("- status:403", "'-' must be followed by a term"),
    ("since:1\x1b[31mm", "since:1\\x1b[31mm"),   # control characters are shown escaped
])
def test_errors_are_one_line_and_name_the_term(text, needle):
    with pytest.raises(FilterError) as info:
        compile_filter(text)
    msg = str(info.value)
    assert needle in msg
    assert "\n" not in msg and "\x1b" not in msg
    assert isinstance(info.value, ValueError)


def test_unknown_field_lists_valid_fields():
    with pytest.raises(FilterError) as info:
        compile_filter("colour:red")
    for field in VALID_FIELDS:
        assert field in str(info.value)


def test_parse_cli_filter(tmp_path):
    lines = [
        '79a5 acme-logs [14/May/2024:10:00:00 +0000] 10.0.0.1 arn:aws:iam::123456789012:user/alice REQ1 '
        'REST.GET.OBJECT a.txt "GET /a.txt HTTP/1.1" 403 AccessDenied 243 - 5 - "-" "curl/8.0" -',
        '79a5 acme-logs [14/May/2024:10:00:01 +0000] 10.0.0.2 - REQ2 '
        'REST.GET.OBJECT b.txt "GET /b.txt HTTP/1.1" 200 - 5 5 5 4 "-" "Mozilla/5.0" -',
    ]
    log = tmp_path / "x.log"
    log.write_text("\n".join(lines) + "\n")
    cmd = [sys.executable, "-c", "import sys; from s3tail.core.cli import main; sys.exit(main(sys.argv[1:]))",
           "parse", str(log)]
    out = subprocess.run(cmd + ["--filter", "status:4xx who:alice"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(x) for x in out.stdout.splitlines()]
    assert [r["request_id"] for r in rows] == ["REQ1"]
    bad = subprocess.run(cmd + ["--filter", "nope:1"], capture_output=True, text=True)
    assert bad.returncode == 2
    assert "unknown field 'nope'" in bad.stderr and "Traceback" not in bad.stderr
