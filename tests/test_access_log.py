"""The access-log parser, field by field and generation by generation."""
from __future__ import annotations

import pytest

from s3tail.core.access_log import parse_line
from s3tail.core.event import CONTRACT_FIELDS, MalformedError

OWNER = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"
HOST_ID = "s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234="
HEAD = (f'{OWNER} amzn-s3-demo-bucket1 [06/Feb/2019:00:00:38 +0000] 192.0.2.3 '
        f'arn:aws:sts::123456789012:assumed-role/ADFS-Dev/bob@example.com 3E57427F3EXAMPLE '
        f'REST.GET.OBJECT photos/2019/08/puppy.jpg "GET /amzn-s3-demo-bucket1/photos/2019/08/puppy.jpg?x-foo=bar HTTP/1.1" '
        f'200 - 2662992 3462992 70 10 "-" "S3Console/0.4" -')
TAIL_24 = f" {HOST_ID} SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader amzn-s3-demo-bucket1.s3.us-west-1.amazonaws.com TLSV1.2"


def line(*tail: str) -> str:
    return HEAD + "".join(tail)


def test_24_field_line_every_field():
    ev = parse_line(line(TAIL_24), "f.log", 7, 100)
    d = ev.to_dict()
    assert list(d) == list(CONTRACT_FIELDS)
    assert d["source"] == "s3access"
    assert d["time"] == "2019-02-06T00:00:38Z"
    assert d["bucket"] == "amzn-s3-demo-bucket1"
    assert d["key"] == d["key_raw"] == "photos/2019/08/puppy.jpg"
    assert d["operation"] == "REST.GET.OBJECT" and d["action"] == "GetObject"
    assert d["requester"] == "arn:aws:sts::123456789012:assumed-role/ADFS-Dev/bob@example.com"
    assert (d["account_id"], d["principal_type"], d["principal_name"], d["session_name"]) == (
        "123456789012", "assumed-role", "ADFS-Dev", "bob@example.com")
    assert d["remote_ip"] == "192.0.2.3" and d["request_id"] == "3E57427F3EXAMPLE"
    assert (d["http_status"], d["error_code"], d["bytes_sent"], d["object_size"]) == (200, None, 2662992, 3462992)
    assert (d["total_time"], d["turn_around_time"]) == (70, 10)
    assert d["referrer"] is None and d["user_agent"] == "S3Console/0.4"
    assert d["request_uri"] == "GET /amzn-s3-demo-bucket1/photos/2019/08/puppy.jpg?x-foo=bar HTTP/1.1"
    assert d["version_id"] is None and d["host_id"] == HOST_ID
    assert d["signature_version"] == "SigV4" and d["cipher_suite"] == "ECDHE-RSA-AES128-GCM-SHA256"
    assert d["authentication_type"] == "AuthHeader"
    assert d["host_header"] == "amzn-s3-demo-bucket1.s3.us-west-1.amazonaws.com"
    assert d["tls_version"] == "TLSV1.2"
    assert d["access_point_arn"] is None and d["acl_required"] is None and d["source_region"] is None
    assert d["bucket_owner"] == OWNER and d["extra_fields"] == []
    assert (d["log_object"], d["log_line"]) == ("f.log", 7)
    assert ev.ts == 1549411238 and ev.offset == 100


@pytest.mark.parametrize("tail, expect", [
    ("", {"host_id": None, "signature_version": None}),                       # 18 fields: ends at version id
    (TAIL_24, {"tls_version": "TLSV1.2", "access_point_arn": None}),           # 24
    (TAIL_24 + " arn:aws:s3:us-east-1:123456789012:accesspoint/example-AP",   # 25
     {"access_point_arn": "arn:aws:s3:us-east-1:123456789012:accesspoint/example-AP", "acl_required": None}),
    (TAIL_24 + " - Yes", {"acl_required": "Yes", "source_region": None}),     # 26
    (TAIL_24 + " - Yes us-east-1", {"source_region": "us-east-1", "extra_fields": []}),  # 27
    (TAIL_24 + " - - us-east-1 test1 test2", {"extra_fields": ["test1", "test2"]}),     # appended later
])
def test_every_generation(tail, expect):
    d = parse_line(line(tail)).to_dict()
    for name, value in expect.items():
        assert d[name] == value, name
    assert d["http_status"] == 200 and d["user_agent"] == "S3Console/0.4"


def test_crlf_and_trailing_space():
    assert parse_line(line(TAIL_24, "\r\n")).tls_version == "TLSV1.2"
    assert parse_line(line(TAIL_24, " - - \n")).acl_required is None


def test_host_id_with_a_space_does_not_shift_columns():
    ev = parse_line(line(" AIDAISBTTLPGXGH6YFFAY LzYGhqEwXn5X= SigV4 ECDHE-RSA-AES128-SHA AuthHeader s3.amazonaws.com TLSv1.2 - -"))
    assert ev.host_id == "AIDAISBTTLPGXGH6YFFAY LzYGhqEwXn5X="
    assert (ev.signature_version, ev.authentication_type, ev.tls_version) == ("SigV4", "AuthHeader", "TLSv1.2")


def test_unescaped_quotes_in_user_agent_uri_and_referrer():
    ua = 'pip/19.1 {"ci":null,"openssl_version":"OpenSSL 1.1.1b  26 Feb 2019","python":"3.6.7"}'
    ev = parse_line(HEAD.replace('"S3Console/0.4"', f'"{ua}"') + TAIL_24)
    assert ev.user_agent == ua and ev.signature_version == "SigV4"
    probe = 'GET //?s=x&content=<?php$p%20=%20"xinba";explode(".","h.a");?> HTTP/1.1'
    ref = 'https://b.s3.amazonaws.com//?c=<?php$p="xinba";explode(".","h");?>'
    text = HEAD.replace('"GET /amzn-s3-demo-bucket1/photos/2019/08/puppy.jpg?x-foo=bar HTTP/1.1"', f'"{probe}"')
    text = text.replace('"-" "S3Console/0.4"', f'"{ref}" "Baiduspider"')
    ev = parse_line(text + TAIL_24)
    assert (ev.request_uri, ev.referrer, ev.user_agent) == (probe, ref, "Baiduspider")
    assert ev.http_status == 200 and ev.tls_version == "TLSV1.2"


def test_user_agent_starting_with_a_doubled_quote():
    ev = parse_line(HEAD.replace('"S3Console/0.4"', '""Mozilla/5.0 (X11)"') + TAIL_24)
    assert ev.user_agent == '"Mozilla/5.0 (X11)' and ev.host_id == HOST_ID


def test_batch_delete_row_with_bare_dashes_and_plus_for_space():
    text = (f"{OWNER} bucket [24/Sep/2019:17:46:21 +0000] - svc:delivery.logs.amazonaws.com 8B4F1D6D6A94E8F4 "
            "BATCH.DELETE.OBJECT Screen+Shot+2019-09-09+at+9.08.44+AM.png - 204 - - 261 - - - - - "
            f"{HOST_ID} SigV4 ECDHE-RSA-AES128-SHA AuthHeader s3.amazonaws.com TLSv1.2")
    ev = parse_line(text)
    assert ev.key == "Screen Shot 2019-09-09 at 9.08.44 AM.png"
    assert ev.key_raw == "Screen+Shot+2019-09-09+at+9.08.44+AM.png"
    assert (ev.request_uri, ev.referrer, ev.user_agent) == (None, None, None)
    assert ev.http_status == 204 and ev.object_size == 261 and ev.remote_ip is None
    assert ev.action == "DeleteObject" and ev.principal_type == "service"
    assert ev.tls_version == "TLSv1.2"


def test_key_is_decoded_exactly_once_and_plus_kept_outside_batch_rows():
    ev = parse_line(HEAD.replace("photos/2019/08/puppy.jpg ", "year%253D2020/a+b%20c.txt ", 1) + TAIL_24)
    assert ev.key == "year%3D2020/a+b c.txt"
    assert ev.key_raw == "year%253D2020/a+b%20c.txt"


def test_lifecycle_row_ipv6_and_http_status_dash():
    text = (f"{OWNER} bucket [01/Jan/2025:00:00:00 +0000] - AmazonS3 ABCDEF0123456789 S3.EXPIRE.OBJECT "
            'logs/old.gz "-" - - - 1024 - - "-" "-" 3HL4kqtJvjVBH40Nrjfkd - - - - - - - - - - - - - -')
    ev = parse_line(text)
    assert ev.operation == "S3.EXPIRE.OBJECT" and ev.action is None
    assert ev.http_status is None and ev.request_uri is None and ev.version_id == "3HL4kqtJvjVBH40Nrjfkd"
    assert ev.requester == "AmazonS3" and ev.principal_type == "service"
    v6 = parse_line(line(TAIL_24).replace("192.0.2.3", "2600:1ffe:8140::a47:a85a"))
    assert v6.remote_ip == "2600:1ffe:8140::a47:a85a"


def test_non_utc_offset_is_converted():
    ev = parse_line(line(TAIL_24).replace("+0000]", "+0200]"))
    assert ev.time == "2019-02-05T22:00:38Z" and ev.ts == 1549411238 - 7200


def test_anonymous_and_identity_kinds():
    anon = parse_line(line(TAIL_24).replace("arn:aws:sts::123456789012:assumed-role/ADFS-Dev/bob@example.com", "-"))
    assert anon.requester is None and anon.principal_type == "anonymous" and anon.actor == "192.0.2.3"
    assert anon.who == "anonymous"
    cases = {
        "arn:aws:iam::123456789012:user/ops/alice": ("123456789012", "user", "alice", None),
        "arn:aws:iam::123456789012:root": ("123456789012", "root", "root", None),
        "arn:aws:iam::123456789012:role/Deploy": ("123456789012", "role", "Deploy", None),
        "arn:aws:sts::123456789012:federated-user/carol": ("123456789012", "federated", "carol", None),
        OWNER: (None, "canonical", None, None),
    }
    for requester, ident in cases.items():
        ev = parse_line(line(TAIL_24).replace("arn:aws:sts::123456789012:assumed-role/ADFS-Dev/bob@example.com", requester))
        assert (ev.account_id, ev.principal_type, ev.principal_name, ev.session_name) == ident, requester


def test_presigned_credentials_are_redacted_unless_asked():
    uri = ("GET /k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20200101"
           "&x-amz-security-token=FQoGZXIvYXdzEJr&X-Amz-Signature=abcdef0123 HTTP/1.1")
    text = HEAD.replace('"GET /amzn-s3-demo-bucket1/photos/2019/08/puppy.jpg?x-foo=bar HTTP/1.1"', f'"{uri}"')
    text = text.replace('"-" "S3Console', '"https://x/?Signature=s3cr3t&a=1" "S3Console') + TAIL_24
    ev = parse_line(text)
    assert "abcdef0123" not in ev.request_uri and "FQoGZXIvYXdzEJr" not in ev.request_uri
    assert "X-Amz-Signature=REDACTED" in ev.request_uri and "x-amz-security-token=REDACTED" in ev.request_uri
    assert "X-Amz-Credential=AKIAIOSFODNN7EXAMPLE" in ev.request_uri
    assert ev.referrer == "https://x/?Signature=REDACTED&a=1"
    raw = parse_line(text, redact=False)
    assert "X-Amz-Signature=abcdef0123" in raw.request_uri and "s3cr3t" in raw.referrer


@pytest.mark.parametrize("text, reason", [
    ("", "fields"),
    ("hello world", "fields"),
    (line(TAIL_24).replace("06/Feb/2019", "06/XXX/2019"), "bad time"),
    (line(TAIL_24).replace(" 200 - 2662992", " 2OO - 2662992"), "status"),
    (line(TAIL_24).replace("REST.GET.OBJECT", "[05/Jan/2020:23:10:20"), "operation"),
    (HEAD.rsplit(" -", 1)[0], "18"),
])
def test_malformed_lines_raise_with_a_reason(text, reason):
    with pytest.raises(MalformedError) as err:
        parse_line(text)
    assert reason in str(err.value)
