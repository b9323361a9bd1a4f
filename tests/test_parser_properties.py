"""Property tests: any bytes give events or malformed reports (never an exception, never a lost line),
and generated lines round-trip field for field."""
from __future__ import annotations

import io
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from s3tail.core.event import Event, Malformed, Skipped
from s3tail.core.reader import iter_stream


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000))
def test_any_bytes_never_raise_and_every_line_is_accounted_for(data):
    items = list(iter_stream(io.BytesIO(data), "fuzz"))
    assert all(isinstance(i, (Event, Malformed, Skipped)) for i in items)
    if data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] not in (b"{", b"[", b"\x1f") and not data.startswith(b"\x1f\x8b"):
        # access-log path: one item per line, numbered 1..n
        n_lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
        assert [i.log_line for i in items] == list(range(1, n_lines + 1))


token = st.text(alphabet=string.ascii_letters + string.digits + "._/-:=+", min_size=1, max_size=20).filter(
    lambda s: s != "-")
quoted = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters='"\n\r'),
                 min_size=1, max_size=40).filter(lambda s: s.strip() == s and s != "-")
maybe = lambda strat: st.one_of(st.just(None), strat)  # noqa: E731


@st.composite
def records(draw):
    rec = {
        "bucket_owner": draw(st.text(alphabet="0123456789abcdef", min_size=4, max_size=64)),
        "bucket": draw(token),
        "stamp": "%02d/%s/20%02d:%02d:%02d:%02d +0000" % (
            draw(st.integers(1, 28)), draw(st.sampled_from(["Jan", "Feb", "Mar", "Oct", "Dec"])),
            draw(st.integers(10, 30)), draw(st.integers(0, 23)), draw(st.integers(0, 59)), draw(st.integers(0, 59))),
        "remote_ip": draw(maybe(st.ip_addresses().map(str))),
        "requester": draw(maybe(st.sampled_from([
            "arn:aws:iam::123456789012:user/alice", "arn:aws:sts::123456789012:assumed-role/R/s", "AmazonS3"]))),
        "request_id": draw(st.text(alphabet="0123456789ABCDEF", min_size=16, max_size=16)),
        "operation": draw(st.sampled_from(["REST.GET.OBJECT", "REST.PUT.OBJECT", "REST.HEAD.BUCKET", "S3.EXPIRE.OBJECT"])),
        "key_raw": draw(maybe(token)),
        "request_uri": draw(maybe(quoted)),
        "http_status": draw(maybe(st.integers(100, 599))),
        "error_code": draw(maybe(st.sampled_from(["AccessDenied", "NoSuchKey"]))),
        "bytes_sent": draw(maybe(st.integers(0, 10**12))),
        "object_size": draw(maybe(st.integers(0, 10**12))),
        "total_time": draw(maybe(st.integers(0, 10**6))),
        "turn_around_time": draw(maybe(st.integers(0, 10**6))),
        "referrer": draw(maybe(quoted)),
        "user_agent": draw(maybe(quoted)),
        "tail": draw(st.lists(maybe(token), min_size=1, max_size=12)),
    }
    return rec


def dash(v):
    return "-" if v is None else str(v)


def q(v):
    return "-" if v is None else f'"{v}"'


@settings(max_examples=300, deadline=None)
@given(records(), st.booleans())
def test_generated_lines_round_trip(rec, batch_dashes):
    batch = batch_dashes and rec["request_uri"] is rec["referrer"] is rec["user_agent"] is None
    uri, ref, ua = (dash, dash, dash) if batch else (q, q, q)
    tail = list(rec["tail"])
    if len(tail) > 2:
        tail[2] = "SigV4"  # keep host id a single token so the column mapping is unambiguous
    fields = [rec["bucket_owner"], rec["bucket"], f"[{rec['stamp']}]", dash(rec["remote_ip"]),
              dash(rec["requester"]), rec["request_id"], rec["operation"], dash(rec["key_raw"]),
              uri(rec["request_uri"]), dash(rec["http_status"]), dash(rec["error_code"]),
              dash(rec["bytes_sent"]), dash(rec["object_size"]), dash(rec["total_time"]),
              dash(rec["turn_around_time"]), ref(rec["referrer"]), ua(rec["user_agent"])] + [dash(t) for t in tail]
    (ev,) = list(iter_stream(io.BytesIO(" ".join(fields).encode()), "gen", redact=False))
    assert isinstance(ev, Event), ev
    for name in ("bucket", "remote_ip", "requester", "request_id", "operation", "key_raw", "request_uri",
                 "http_status", "error_code", "bytes_sent", "object_size", "total_time", "turn_around_time",
                 "referrer", "user_agent"):
        assert getattr(ev, name) == rec[name], name
    names = ["version_id", "host_id", "signature_version", "cipher_suite", "authentication_type", "host_header",
             "tls_version", "access_point_arn", "acl_required", "source_region"]
    for name, value in zip(names, tail):
        assert getattr(ev, name) == value, name
    assert ev.extra_fields == [dash(t) for t in tail[10:]]
    assert ev.time.endswith("Z") and ev.log_line == 1
