"""The C fast path of the access-log parser (``s3tail.core._speedups``) against the pure-Python parser.

Differential: for every line (the public corpus, generated lines, hypothesis-mutated lines with hostile
bytes, odd quoting, 15..30 fields, odd time stamps, secrets and escapes in URIs and keys) the C
``parse`` must give the same Event, all 41 slots, or the same MalformedError message as
``parse_line_pure``. ``parse_block`` must give the same items as the reader. ``S3TAIL_PURE_PYTHON=1``
must give the pure-Python parser.

The extension is optional (a machine without a C compiler runs pure Python); without it these tests
are skipped with that reason.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s3tail.core import access_log
from s3tail.core.access_log import parse_line_pure
from s3tail.core.event import Event, Malformed
from s3tail.core.reader import iter_access_lines

from conftest import CORPUS, SHARED

C = access_log.speedups
pytestmark = pytest.mark.skipif(C is None, reason="C extension not built (no compiler) or S3TAIL_PURE_PYTHON set")

GEN = SHARED / "tools" / "gen_s3_access_logs.py"
OWNER = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"
HEAD = (f'{OWNER} amzn-s3-demo-bucket1 [06/Feb/2019:00:00:38 +0000] 192.0.2.3 '
        'arn:aws:sts::123456789012:assumed-role/ADFS-Dev/bob@example.com 3E57427F3EXAMPLE REST.GET.VERSIONING - '
        '"GET /amzn-s3-demo-bucket1?versioning HTTP/1.1" 200 - 113 - 7 - "-" "S3Console/0.4" ')
TAIL = ("- s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234= SigV4 "
        "ECDHE-RSA-AES128-GCM-SHA256 AuthHeader amzn-s3-demo-bucket1.s3.us-west-1.amazonaws.com TLSV1.2 - -")
LIFECYCLE = (f'{OWNER} logs [14/May/2024:00:38:09 +0000] - AmazonS3 3B4E621559A86205 S3.EXPIRE.OBJECT '
             'events/dt%3D2024-05-19/part.parquet - - - - 5055 - - "-" "-" - WBaBpQpx+oGV/CPg3f4A= - - - - - - -')


def outcome(fn, line, *args):
    try:
        ev = fn(line, *args)
    except Exception as exc:  # noqa: BLE001 - the exact error is what is compared
        return ("error", type(exc).__name__, str(exc))
    assert type(ev) is Event
    return ("event", tuple(ev))


def same(line, log_object="f.log", log_line=3, offset=17, redact=True):
    args = (log_object, log_line, offset, redact)
    pure = outcome(parse_line_pure, line, *args)
    fast = outcome(C.parse, line, *args)
    assert fast == pure, line
    return pure


def warm(lines):
    """The C path takes an operation only once the Python parser has validated it."""
    for line in lines:
        same(line)


def test_configured_and_used():
    assert access_log.SPEEDUPS and access_log.parse_line is C.parse
    warm([HEAD + TAIL, LIFECYCLE])
    assert C.try_parse(HEAD + TAIL, "f", 1, 0, True) is not None
    assert C.try_parse(LIFECYCLE, "f", 1, 0, True) is not None


def test_signature_and_keywords():
    line = HEAD + TAIL
    ev = C.parse(line)
    assert (ev.log_object, ev.log_line, ev.offset) == ("-", 0, -1)
    assert C.parse(line=line, redact=False, log_line=5) == parse_line_pure(line, log_line=5, redact=False)
    with pytest.raises(TypeError):
        C.parse()
    with pytest.raises(TypeError):
        C.parse(line, nope=1)
    with pytest.raises(TypeError):
        C.parse(line, "a", line=line)
    with pytest.raises(TypeError):
        C.parse(line, "a", 1, 2, True, 6)
    # not a str, a str subclass, a non-bool redact: the Python parser decides
    class S(str):
        pass
    assert same(S(line))[0] == "event"
    assert C.parse(line, redact=1) == parse_line_pure(line, redact=1)
    assert outcome(C.parse, b"bytes") == outcome(parse_line_pure, b"bytes")


@pytest.mark.parametrize("tail", [
    "-", "- HOSTID", TAIL, TAIL + " us-east-1", TAIL + " us-east-1 future1 future2 f3 f4 f5 f6 f7 f8 f9",
    "- s9lz HALF= SigV4 ECDHE AuthHeader h TLSv1.2 - -",   # a HostId with a space
    "- s9lz HALF= - - - - - - -", "  - x", "", " ", "-  - ", "\"-\" x",
])
def test_generations_and_tails(tail):
    warm([HEAD + TAIL])
    same(HEAD + tail)
    same(LIFECYCLE.rsplit('" ', 1)[0] + '" ' + tail)
    same(HEAD + tail + "\r\n")


@pytest.mark.parametrize("stamp", [
    "06/Feb/2019:00:00:38 +0000", "06/Feb/2019:00:00:38 +0200", "31/Dec/2019:23:59:59 -0130",
    "01/Jan/1970:00:00:00 +0100", "29/Feb/2020:12:00:00 +0000", "29/Feb/2019:12:00:00 +0000",
    "31/Apr/2019:00:00:00 +0000", "06/Feb/0999:00:00:38 +0000", "06/Feb/9999:23:59:59 -2359",
    "01/Jan/1000:00:00:00 +0001", "06/XXX/2019:00:00:38 +0000", "6/Feb/2019:00:00:38 +0000",
    "06/Feb/2019:24:00:00 +0000", "06/Feb/2019:00:60:00 +0000", "06/Feb/2019:00:00:61 +0000",
    "06/Feb/2019:00:00:38 +9999", "06/Feb/2019:00:00:38 *0000", "٠٦/Feb/2019:00:00:38 +0000",
    "06/Feb/2019:00:00:38 +00", "06/Feb/2019:00:00:38  +0000", "06/feb/2019:00:00:38 +0000",
])
def test_time_stamps(stamp):
    warm([HEAD + TAIL])
    same(HEAD.replace("06/Feb/2019:00:00:38 +0000", stamp) + TAIL)
    same(HEAD.replace("06/Feb/2019:00:00:38 +0000", stamp) + TAIL)   # again: cached answers agree


@pytest.mark.parametrize("uri", [
    "GET /b/k?X-Amz-Signature=abc&x=1 HTTP/1.1", "GET /b/k?x-amz-security-token=T0K&X-AMZ-SIGNATURE=s HTTP/1.1",
    "GET /b/k?Signature=abc;Signature=def#frag HTTP/1.1", "Signature=at-start", "GET /b?signature= HTTP/1.1",
    "GET /b?signature HTTP/1.1", "GET /b?asignature=1&Signature=2 HTTP/1.1", "GET /b?Signature=1?Signature=2",
    "GET /b?x-amz-signaturex=1&x-amz-signature=2\t3", "GET /b?ſignature=1 HTTP/1.1", "GET /b?é=1&Signature=x",
    "GET /b?" + "&Signature=1" * 40, "-", "", "GET /b?K=\x1cSignature=1&Signature=a\x1cb",
])
@pytest.mark.parametrize("redact", [True, False])
def test_redaction(uri, redact):
    warm([HEAD + TAIL])
    line = HEAD.replace("GET /amzn-s3-demo-bucket1?versioning HTTP/1.1", uri).replace('"-"', f'"{uri}"') + TAIL
    same(line, redact=redact)


@pytest.mark.parametrize("key", ["a%20b", "a+b", "a%2Bb+c", "%", "%4", "%zz%41", "%E2%82%AC", "%FF%FE",
                                 "%C3%28", "a%2", "é%20", "%%41", "x" * 700 + "%41"])
@pytest.mark.parametrize("op", ["REST.GET.OBJECT", "BATCH.DELETE.OBJECT", "REST.GET.ACL", "REST.GET.BUCKET"])
def test_keys_and_operations(key, op):
    line = HEAD.replace("REST.GET.VERSIONING -", f"{op} {key}") + TAIL
    warm([line.replace(key, "k")])
    same(line)
    same(line.replace("?versioning", "?list-type=2"))


def test_public_corpus_lines(corpus_dir):
    files = sorted(corpus_dir.glob("s3-access-*.log"))
    assert files
    n = 0
    for path in files:
        with open(path, "rb") as fh:
            for raw in fh:
                text = raw.decode("utf-8", "backslashreplace")
                for redact in (True, False):
                    same(text, str(path), n, 0, redact)
                    same(text, str(path), n, 0, redact)
                n += 1
    assert n > 100


def test_generated_lines_take_the_c_path():
    if not GEN.is_file():
        pytest.skip(f"{GEN} absent: ../shared is only beside clones inside the workspace")
    out = subprocess.run([sys.executable, str(GEN), "--lines", "4000", "--seed", "11"], check=True,
                         capture_output=True).stdout
    lines = out.decode().splitlines()
    warm(lines)
    taken = sum(C.try_parse(line, "g", i, 0, True) is not None for i, line in enumerate(lines))
    assert taken == len(lines)   # every generated shape is read in C (after warm-up)


# ---- hypothesis: mutate real lines ----

HOSTILE = st.sampled_from(list(' "\t\r\n\x0b\x0c\x1c\x1f\x85\xa0\u2028\u3000[]-+%=&;#?/\\é€😀\x00\ud800') + [
    '" "', '"-"', " - ", "  ", "%41", "%zz", "Signature=", "&X-Amz-Signature=s", "SigV4", "SigV2 ", "+0200]"])


def _corpus_seed_lines():
    lines = [HEAD + TAIL, LIFECYCLE, HEAD + "-", HEAD + TAIL + " us-east-1 extra"]
    if CORPUS.is_dir():
        for path in sorted(CORPUS.glob("s3-access-*.log"))[:6]:
            lines += path.read_bytes().decode("utf-8", "backslashreplace").splitlines()[:5]
    return lines


SEEDS = _corpus_seed_lines()


@st.composite
def mutated(draw):
    line = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(0, 4))):
        how = draw(st.sampled_from(["insert", "delete", "replace_field", "dup_field", "drop_field"]))
        fields = line.split(" ")
        i = draw(st.integers(0, max(0, len(fields) - 1)))
        if how == "insert":
            pos = draw(st.integers(0, len(line)))
            line = line[:pos] + draw(st.one_of(HOSTILE, st.text(max_size=4))) + line[pos:]
        elif how == "delete" and line:
            pos = draw(st.integers(0, len(line) - 1))
            line = line[:pos] + line[pos + draw(st.integers(1, 3)):]
        elif how == "replace_field":
            fields[i] = draw(st.one_of(HOSTILE, st.text(max_size=8), st.just("-"), st.just('"-"')))
            line = " ".join(fields)
        elif how == "dup_field":
            fields.insert(i, fields[i])
            line = " ".join(fields)
        elif how == "drop_field" and len(fields) > 1:
            del fields[i]
            line = " ".join(fields)
    return line


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), st.booleans())
def test_mutated_lines_agree(line, redact):
    warm(SEEDS[:2])
    same(line, redact=redact)
    same(line, redact=redact)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_agree(data):
    text = data.decode("utf-8", "backslashreplace")
    same(text)
    same(HEAD + text)


# ---- parse_block against the reader ----

def _key(item):
    return ("event", tuple(item)) if type(item) is Event else ("malformed", item.to_dict())


def _on_error(log_object, lineno, text, exc):
    from s3tail.core.ingest import malformed_of
    return malformed_of(log_object, lineno, text, exc)


BLOCK = "\n".join([HEAD + TAIL, "", "   ", "junk line", LIFECYCLE + "\r", HEAD + TAIL + "  ", "\x00\xff",
                   HEAD + "-", HEAD + "- h " * 3]).encode() + b"\n\xc3\x28 not utf8\r\n" + (HEAD + TAIL).encode()


@pytest.mark.parametrize("data", [BLOCK, BLOCK + b"\n", b"", b"\n", b"\r\n\r\n", b"x"])
def test_parse_block_matches_the_reader(data):
    ref = [_key(i) for i in iter_access_lines(io.BytesIO(data), "blk", first_line=7, first_offset=100)]
    got = [_key(i) for i in C.parse_block(data, "blk", 7, 100, True, _on_error)]
    assert got == ref
    assert all(type(i) in (Event, Malformed) for i in C.parse_block(data, "blk", 1, 0, False, _on_error))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(mutated(), st.binary(max_size=80).map(lambda b: b.decode("latin-1"))), max_size=8))
def test_parse_block_matches_the_reader_on_mutations(lines):
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    ref = [_key(i) for i in iter_access_lines(io.BytesIO(data), "blk")]
    assert [_key(i) for i in C.parse_block(data, "blk", 1, 0, True, _on_error)] == ref


# ---- the switch ----

@pytest.mark.parametrize("value,expect", [("1", "pure"), ("0", "c"), ("", "c")])
def test_pure_python_switch(value, expect):
    code = ("from s3tail.core import access_log as a; "
            "print('pure' if a.parse_line is a.parse_line_pure and a.speedups is None else 'c')")
    env = dict(os.environ, S3TAIL_PURE_PYTHON=value)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expect
