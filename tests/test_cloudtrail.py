"""CloudTrail S3 events: mapping to the shared event model, file shapes, skipped and malformed records."""
from __future__ import annotations

import gzip
import io
import json

from s3tail.core.event import Event, Malformed, Skipped
from s3tail.core.reader import iter_stream


def record(**over):
    rec = {
        "eventVersion": "1.09",
        "userIdentity": {"type": "AssumedRole", "principalId": "AROAEXAMPLE:alice",
                         "arn": "arn:aws:sts::111122223333:assumed-role/Admin/alice", "accountId": "111122223333",
                         "sessionContext": {"sessionIssuer": {"type": "Role", "userName": "Admin"}}},
        "eventTime": "2024-10-08T14:24:16+02:00",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.9",
        "userAgent": "[aws-cli/2.17.60]",
        "requestParameters": {"bucketName": "data", "key": "a b/c.txt", "Host": "data.s3.us-east-1.amazonaws.com"},
        "additionalEventData": {"SignatureVersion": "SigV4", "CipherSuite": "TLS_AES_128_GCM_SHA256",
                                "AuthenticationMethod": "AuthHeader", "bytesTransferredOut": 224,
                                "x-amz-id-2": "hostid="},
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                       "clientProvidedHostHeader": "data.s3.us-east-1.amazonaws.com"},
        "requestID": "62A9N2AH4P4YKG2B",
        "recipientAccountId": "111122223333",
    }
    rec.update(over)
    return rec


def items(data: bytes, name="ct.json"):
    return list(iter_stream(io.BytesIO(data), name))


def test_fields_of_a_data_event():
    (ev,) = items(json.dumps({"Records": [record()]}).encode())
    d = ev.to_dict()
    assert d["source"] == "cloudtrail" and d["time"] == "2024-10-08T12:24:16Z"
    assert (d["bucket"], d["key"], d["key_raw"]) == ("data", "a b/c.txt", "a b/c.txt")
    assert d["operation"] == d["action"] == "GetObject"
    assert d["requester"] == "arn:aws:sts::111122223333:assumed-role/Admin/alice"
    assert (d["account_id"], d["principal_type"], d["principal_name"], d["session_name"]) == (
        "111122223333", "assumed-role", "Admin", "alice")
    assert (d["http_status"], d["error_code"], d["bytes_sent"]) == (200, None, 224)
    assert (d["tls_version"], d["cipher_suite"], d["signature_version"]) == ("TLSv1.3", "TLS_AES_128_GCM_SHA256", "SigV4")
    assert d["host_header"] == "data.s3.us-east-1.amazonaws.com" and d["host_id"] == "hostid="
    assert (d["remote_ip"], d["request_id"], d["source_region"]) == ("203.0.113.9", "62A9N2AH4P4YKG2B", "us-east-1")
    assert (d["log_object"], d["log_line"]) == ("ct.json", 1)
    assert ev.detail["eventName"] == "GetObject"


def test_errors_map_to_http_status_and_anonymous_is_null():
    recs = [
        record(errorCode="AccessDenied"), record(errorCode="NoSuchKey"), record(errorCode="SlowDown"),
        record(errorCode="SomethingNew"),
        record(userIdentity={"type": "AWSAccount", "principalId": "", "accountId": "ANONYMOUS_PRINCIPAL"}),
    ]
    evs = items(json.dumps({"Records": recs}).encode())
    assert [e.http_status for e in evs] == [403, 404, 503, None, 200]
    anon = evs[-1]
    assert anon.requester is None and anon.principal_type == "anonymous" and anon.actor == "203.0.113.9"


def test_non_s3_records_are_skipped_and_counted_with_their_index():
    out = items(json.dumps({"Records": [record(eventSource="ec2.amazonaws.com"), record(),
                                        record(eventSource="s3-outposts.amazonaws.com")]}).encode())
    assert isinstance(out[0], Skipped) and out[0].log_line == 1
    assert [type(x) for x in out[1:]] == [Event, Event] and [x.log_line for x in out[1:]] == [2, 3]


def test_gzip_json_lines_and_bucket_from_resources():
    rec = record(requestParameters={"Host": ["h"]},
                 resources=[{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::res-bucket/k/e y"}])
    data = "\n".join(json.dumps(r) for r in (record(), rec, {"Records": [record()]})).encode()
    out = items(gzip.compress(data), "ct.jsonl.gz")
    assert [type(x) for x in out] == [Event, Event, Event]
    assert (out[1].bucket, out[1].key, out[1].host_header) == ("res-bucket", "k/e y", "data.s3.us-east-1.amazonaws.com")
    assert [x.log_line for x in out] == [1, 2, 3]


def test_truncated_document_keeps_what_was_readable():
    text = json.dumps({"Records": [record(), record(eventName="PutObject"), record()]})
    out = items(text[: len(text) - 40].encode())
    assert [type(x) for x in out] == [Event, Event, Malformed]
    assert out[1].action == "PutObject" and "after record 2" in out[2].reason


def test_bad_records_are_malformed_not_crashes():
    lines = [json.dumps(record()), "{not json", json.dumps([1, 2]), json.dumps(record(eventTime="yesterday")),
             json.dumps(record(userIdentity="weird", requestParameters=["x"], additionalEventData=None))]
    out = items("\n".join(lines).encode())
    kinds = [type(x).__name__ for x in out]
    assert kinds == ["Event", "Malformed", "Malformed", "Malformed", "Event"]
    assert out[1].log_line == 2 and "invalid JSON" in out[1].reason
    assert "eventTime" in out[3].reason
    assert out[4].requester is None and out[4].bucket is None


def test_corpus_cloudtrail_files_parse(corpus_dir):
    for name in ("cloudtrail-awsdocs-s3-records.json", "cloudtrail-awsdocs-s3outposts-putobject.json",
                 "cloudtrail-elastic-integrations.jsonl"):
        out = items((corpus_dir / name).read_bytes(), name)
        assert out and all(isinstance(x, Event) for x in out), name
    copy = items((corpus_dir / "cloudtrail-elastic-integrations.jsonl").read_bytes())[0]
    assert (copy.action, copy.bucket, copy.key, copy.bytes_sent) == (
        "CopyObject", "elastic-cspm-cloudtrail-test-bucket", "test-copy-object/README-copy.md", 224)
    assert copy.principal_type == "user" and copy.principal_name == "test@elastic.co"
