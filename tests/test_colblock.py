"""``colblock.from_block`` (the C columnar scan) against the event path, differentially.

The reference is ``from_events(parse_access_bytes(data, ...), dicts)``: for every block (the public
corpus, generated lines, hostile lines, hypothesis-mutated lines, several blocks sharing one ``Dicts``)
``from_block`` must give the same rows with codes of equal values, equal number columns, line numbers,
offsets and the same Malformed items; ``event(i)`` the same Event; ``spill_payloads`` the same bytes;
``find`` a superset of the rows whose text holds a literal. Where the C scan takes a line, every table
value is learnt once per raw composite, so a value that is not a function of the composite would show
here as a row with another row's value. Tests of the C path itself skip when the extension is not built.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s3tail.core import access_log
from s3tail.core.colblock import BlockBatch, EventBlockBatch, from_block, split_blocks, uri_literals
from s3tail.core.columns import CODE_DTYPE, NUMBERS, TABLES, Dicts, from_events
from s3tail.core.event import Event
from s3tail.core.ingest import parse_access_bytes
from s3tail.core.rules.engine import field_values

from conftest import SHARED
from test_speedups import HEAD, LIFECYCLE, TAIL, mutated

C = access_log.speedups
needs_c = pytest.mark.skipif(C is None, reason="C extension not built (no compiler) or S3TAIL_PURE_PYTHON set")
GEN = SHARED / "tools" / "gen_s3_access_logs.py"


def _other(o):
    return (type(o).__name__, o.log_object, o.log_line, o.reason, getattr(o, "raw", None))


def check(data: bytes, ref_dicts: Dicts | None = None, got_dicts: Dicts | None = None,
          log_object: str = "blk.log", first_line: int = 1, first_offset: int = 0):
    """Assert from_block == from_events(parse_access_bytes(...)) on ``data``; return (ref, got, items)."""
    items = parse_access_bytes(data, log_object, first_line, first_offset, True)
    ref = from_events(items, ref_dicts if ref_dicts is not None else Dicts())
    got = from_block(data, log_object, first_line, first_offset, got_dicts if got_dicts is not None else Dicts())
    assert got.n == ref.n
    for name in TABLES:
        assert got.codes[name].dtype == CODE_DTYPE and len(got.codes[name]) == got.n
        assert got.values(name) == ref.values(name), name
    for name in NUMBERS:
        assert got.nums[name].dtype == np.int64
        assert got.nums[name].tolist() == ref.nums[name].tolist(), name
    assert got.log_line.tolist() == ref.log_line.tolist()
    assert got.offset.tolist() == ref.offset.tolist()
    assert [_other(o) for o in got.others] == [_other(o) for o in ref.others]
    if isinstance(got, BlockBatch):
        assert got.demoted == 0   # the scan never takes a line whose value it cannot learn from its raw bytes
    return ref, got, items


def check_events_and_spills(ref, got):
    assert [tuple(e) for e in got.events()] == [tuple(e) for e in ref.events()]
    want = [b"%d\t%s\n" % (e.offset, e.raw.encode("utf-8", "surrogatepass")) for e in ref.events()]
    assert got.spill_payloads() == want
    rows = list(range(got.n - 1, -1, -3))
    assert got.spill_payloads(rows) == [want[i] for i in rows]


def check_blocks(data: bytes, size: int) -> tuple[Dicts, list]:
    """Every block of ``data`` checked with one Dicts per side (codes stable across blocks)."""
    ref_d, got_d, line, offset, pairs = Dicts(), Dicts(), 1, 0, []
    for block in split_blocks(data, size):
        ref, got, _ = check(block, ref_d, got_d, "f.log", line, offset)
        pairs.append((ref, got))
        line += block.count(b"\n") + (not block.endswith(b"\n"))
        offset += len(block)
    return got_d, pairs


# ---- real and generated lines ----

def test_public_corpus_every_line(corpus_dir):
    files = sorted(corpus_dir.glob("s3-access-*.log"))
    assert files
    ref_d, got_d = Dicts(), Dicts()
    for path in files:
        data = path.read_bytes()
        ref, got, _ = check(data, ref_d, got_d, str(path), 1, 0)
        check_events_and_spills(ref, got)
        for line_no, line in enumerate(data.splitlines(keepends=True), 1):  # and each line on its own
            check(line, log_object=str(path), first_line=line_no)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> bytes:
    if not GEN.is_file():
        pytest.skip(f"{GEN} absent: ../shared is only beside clones inside the workspace")
    out = tmp_path_factory.mktemp("gen") / "gen.log"
    subprocess.run([sys.executable, str(GEN), "--lines", "20000", "--seed", "1", "-o", str(out)], check=True)
    return out.read_bytes()


def test_generated_lines_in_blocks_sharing_dicts(generated):
    got_d, pairs = check_blocks(generated, 1 << 20)
    assert sum(got.n for _, got in pairs) == 20000
    ref, got = pairs[0]
    check_events_and_spills(ref, got)


@needs_c
def test_generated_lines_take_the_c_scan(generated):
    got = from_block(generated[:1 << 20], "g.log", 1, 0, Dicts())
    slow = int(np.count_nonzero(got._flags & 1))
    assert slow < got.n // 100, slow   # the rare presigned ListObjectsV2 URI is left to Python, little else


@pytest.mark.parametrize("pattern", ["fast slow", "fast fast slow", "fast slow slow", "same same slow same"])
def test_fast_and_slow_lines_interleaved(generated, pattern):
    # the scan reuses the previous fast line's codes for equal composites: slow lines in between
    # (written into the other scratch) and repeated lines must not confuse it
    good = generated.splitlines(keepends=True)[:400]
    slow = [b"junk\n", GOOD.replace(" 113 ", " x ").encode() + b"\n", b"\n", good[0].replace(b"[", b"[\xff")]
    out, g, k = [], 0, 0
    while g < len(good):
        for kind in pattern.split():
            if kind == "slow":
                out.append(slow[k % len(slow)])
                k += 1
            elif g < len(good):
                out.append(good[g])
                g += kind == "fast"
        g += 1
    ref, got, _ = check(b"".join(out))
    check_events_and_spills(ref, got)


@needs_c
def test_codes_are_stable_across_blocks(generated):
    dicts = Dicts()
    blocks = split_blocks(generated[:600_000], 100_000)
    first = [from_block(b, "f.log", 1, 0, dicts) for b in blocks]
    sizes = {name: len(dicts[name]) for name in TABLES}
    again = [from_block(b, "f.log", 1, 0, dicts) for b in reversed(blocks)][::-1]
    assert {name: len(dicts[name]) for name in TABLES} == sizes   # nothing new the second time
    for a, b in zip(first, again):
        for name in TABLES:
            assert a.codes[name].tolist() == b.codes[name].tolist()
    # a second pipeline (another Dicts) has its own codes, same values
    other = from_block(blocks[1], "f.log", 1, 0, Dicts())
    for name in TABLES:
        assert other.values(name) == first[1].values(name)


def test_equal_values_from_different_raw_bytes():
    # raw keys "kA" and "k%41" (one value), new in one block, then known in the next: one code each
    lines = [GOOD.replace(OP_KEY, f"REST.GET.OBJECT {k}") for k in ("k%41", "kA", "k%61", "k%41", "ka")]
    ref_d, got_d = Dicts(), Dicts()
    check(_encode(lines[:3]), ref_d, got_d)
    ref, got, _ = check(_encode(lines[2:] + lines[:1]), ref_d, got_d)
    assert got.codes["key"].tolist()[-1] == got.codes["key"].tolist()[1]   # k%41 and k%41: kA
    assert len(got_d["key"]) == len(ref_d["key"]) == 2


# ---- hostile lines ----

GOOD = HEAD + TAIL
OP_KEY = "REST.GET.VERSIONING -"
STAMP = "06/Feb/2019:00:00:38 +0000"
LIST = ("REST.GET.VERSIONING", "REST.GET.BUCKET")
# (old, new) replacements in GOOD: one hostile line each
EDITS = [
    ("S3Console/0.4", "\x1b[31mred\x1b[0m \x1b]8;;http://x\x07link"), ("S3Console/0.4", "nul\x00byte"),
    ("S3Console/0.4", "[link=file:///etc/passwd]x[/link]"), ("S3Console/0.4", "U" * 100_000),
    (OP_KEY, "REST.GET.OBJECT [bold red]boom[/]"), (OP_KEY, "REST.GET.OBJECT " + "k" * 200_000),
    (OP_KEY, "REST.GET.OBJECT caf%C3%A9+plus%zz%"), (OP_KEY, "BATCH.DELETE.OBJECT caf%C3%A9+plus"),
    (OP_KEY, "BATCH.DELETE.OBJECT plain+plus"), (OP_KEY, "REST.GET.OBJECT plain+plus"),
    (OP_KEY, "REST.GET.OBJECT café%20é"), (OP_KEY, "REST.GET.OBJECT %E9%zz%C3"), (OP_KEY, "REST.GET.ACL key"),
    ("192.0.2.3", "192.0.2.\x00"), ("?versioning", "?X-Amz-Security-Token=tok&x=1"),
    ("REST.GET.VERSIONING", "REST..BAD"), ("REST.GET.VERSIONING", "REST.GET.\u00c9"),
    ("REST.GET.VERSIONING", "REST.GET.X\r"), ("REST.GET.VERSIONING", "NOTANOP"),
    (" 200 ", " 20 "), (" 200 ", " 2000 "), (" 200 ", " ٢٠٠ "), (" 200 ", " - "),
    (" 113 ", " 1234567890123456789 "), (" 113 ", " 12345678901234567 "), (" 113 ", " x "), (" 113 ", " -1 "),
    (STAMP, "06/Feb/2019:00:00:38 -0730"), (STAMP, "31/Dec/9999:23:59:59 -0100"),
    (STAMP, "01/Jan/0999:00:00:00 +0000"), (STAMP, "30/Feb/2019:00:00:38 +0000"),
    (STAMP, "06/Foo/2019:00:00:38 +0000"), (STAMP, "06/Feb/2019:00:00:38"), (f"[{STAMP}]", "-"),
    ('"S3Console/0.4"', "S3Console/0.4"), ('"-"', "-"), ("TLSV1.2", "TLS\u00e9"), (" SigV4 ", " SigV4  "),
    (" s9lz", " half1 half2 s9lz"), ("amzn-s3-demo-bucket1 [", "- ["),
    ("arn:aws:sts::123456789012:assumed-role/ADFS-Dev/bob@example.com", "-"),
    ("arn:aws:sts::123456789012:assumed-role/ADFS-Dev/bob@example.com", "svc:x.amazonaws.com"),
]
LIST_URIS = ["?list-type=2&prefix=a", "?list-type=2&X-Amz-Signature=ab", "?Signature=list-type=2", "?LIST-TYPE=2",
             "?versioning"]
HOSTILE_LINES = [GOOD, LIFECYCLE, "", "   ", "\t", "junk", "-", '"', '""""""',
                 LIFECYCLE.replace("S3.EXPIRE.OBJECT", "S3.TRANSITION.OBJECT").replace(" - - - 5055", ' "-" - - 5055')]
HOSTILE_LINES += [GOOD + end for end in (" \x1c", "\x0b", "\u00a0", "\u2028", "\u3000", "\x85")]
HOSTILE_LINES += [GOOD.replace(old, new) for old, new in EDITS]
HOSTILE_LINES += [GOOD.replace(*LIST).replace("?versioning", uri) for uri in LIST_URIS]
# 18..30 fields: cut or extend the tail
_TAIL = TAIL.split(" ")
HOSTILE_LINES += [HEAD.rstrip(" ") + (" " + " ".join(_TAIL[:k]) if k else "") for k in range(len(_TAIL) + 1)]
HOSTILE_LINES += [GOOD + " us-east-1" + " extra" * k for k in range(5)]


def _encode(lines, sep=b"\n"):
    return sep.join(line.encode("utf-8", "surrogatepass") for line in lines)


@pytest.mark.parametrize("sep", [b"\n", b"\r\n", b"\r\r\n"])
def test_hostile_lines(sep):
    data = _encode(HOSTILE_LINES, sep)
    ref, got, _ = check(data, first_line=40, first_offset=1000)
    check_events_and_spills(ref, got)
    ref, got, _ = check(data + sep)   # with and without a final newline
    check_events_and_spills(ref, got)


@pytest.mark.parametrize("data", [b"", b"\n", b"\r\n\r\n", b"x", b"\xff\xfe", b"\x00" * 5,
                                  GOOD.encode() + b"\n\xc3\x28 not utf8\r\n" + GOOD.encode(),
                                  GOOD.encode().replace(b"S3Console", b"S3\xe9Console"),
                                  GOOD.encode().replace(b"S3Console", b"S3\xed\xa0\x80Console"),
                                  GOOD.encode().replace(b"S3Console", b"S3\xf0\x9f\x98\x80Console"),
                                  GOOD.encode().replace(b"REST.GET.VERSIONING -", b"REST.GET.OBJECT k\xc3\xa9%41"),
                                  GOOD.encode().replace(b"REST.GET.VERSIONING -", b"REST.GET.OBJECT k\xe9%41"),
                                  GOOD.encode() + b"\xc2\xa0", GOOD.encode() + b"\xc3"])
def test_odd_bytes(data):
    ref, got, _ = check(data)
    check_events_and_spills(ref, got)


# ---- hypothesis: mutated lines, one Dicts per side across all examples ----

_REF_D, _GOT_D = Dicts(), Dicts()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(mutated(), mutated(), st.binary(max_size=80).map(lambda b: b.decode("latin-1"))),
                max_size=12),
       st.sampled_from([b"\n", b"\r\n"]))
def test_mutated_lines(lines, sep):
    data = _encode(lines, sep)
    ref, got, _ = check(data, _REF_D, _GOT_D, "m.log", 5, 77)
    check_events_and_spills(ref, got)


# ---- find ----

def _exact(field, events, lit):
    texts = field_values(field, events)
    if lit.endswith("\n"):
        return {i for i, t in enumerate(texts) if (t.encode("utf-8", "surrogatepass").lower() + b"\n")
                .find(lit.encode()) >= 0} if lit.isascii() else {i for i, t in enumerate(texts) if lit in t.lower() + "\n"}
    if lit.isascii():
        return {i for i, t in enumerate(texts) if lit.encode() in t.encode("utf-8", "surrogatepass").lower()}
    return {i for i, t in enumerate(texts) if lit in t.lower()}


def _literals(events):
    lits = ["", "\n", "get", "redacted", "signature=redacted", "%2f", "/", "list-type=2", "caf", "é", "é\n",
            "s3console", "zzzz-not-there", "curl", "aws-cli\n", ".parquet\n", "mozilla", " ",
            "dt=2024", "plain plus", "caf\u00e9 plus"]   # in decoded keys only (a "-" URI: the key is the text)
    for field in ("key", "ua", "uri"):
        for text in field_values(field, events)[:40:7]:
            low = text.lower()
            if low:
                lits += [low[:5], low[-6:] + "\n", low[len(low) // 3: len(low) // 3 + 4]]
    return lits


def check_find(ref, got):
    events = ref.events()
    for field in ("key", "ua", "uri"):
        lits = _literals(events)
        if not isinstance(got, BlockBatch):   # rules.engine.Joined.find fails on an empty literal
            lits = [lit for lit in lits if lit not in ("", "\n")]
        for lit in lits:
            rows = got.find(field, [lit])
            assert rows.dtype == np.int64 and rows.tolist() == sorted(set(rows.tolist()))
            assert _exact(field, events, lit) <= set(rows.tolist()), (field, lit)
        rows = got.find(field, lits[5:9])
        assert set().union(*(_exact(field, events, lit) for lit in lits[5:9])) <= set(rows.tolist())


def test_find_is_a_superset_on_hostile_lines():
    ref, got, _ = check(_encode(HOSTILE_LINES + ["x"] + HOSTILE_LINES[:5]))
    check_find(ref, got)


def test_find_is_a_superset_on_generated_lines(generated):
    ref, got, _ = check(generated[:400_000])
    check_find(ref, got)


def test_find_is_a_superset_on_the_corpus(corpus_dir):
    data = b"".join(p.read_bytes().rstrip(b"\n") + b"\n" for p in sorted(corpus_dir.glob("s3-access-*.log")))
    ref, got, _ = check(data)
    check_find(ref, got)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated(), min_size=1, max_size=10))
def test_find_is_a_superset_on_mutated_lines(lines):
    ref, got, _ = check(_encode(lines))
    check_find(ref, got)


# ---- the scan's literals in the request URI (find("uri", PROBE_LITERALS) of the web-probe rule) ----

PROBE = uri_literals()
# URI pieces: literals in any case, redacted parameters (their values vanish from the event's URI), URL
# escapes (the key of a "-" URI is decoded), non-ASCII text, separators
PIECES = ["..", "%2E", "%2e", "<", "\\", "passwd", "PassWD", "jNdI", "%24", "%252", "${", "/bin/", "cmd.",
          "union", "%00", "\x00", "think", "/", "a", "b", "?", "&", ";", "#", "=", "+", "%", "2", "e", "E", "é",
          "\u212a", "X-Amz-Signature=", "signature=", "x-amz-security-token=", "SIGNATURE=", "%3c", "%3C", "\t"]
KEY_PIECES = ["%2e%2e", "%2E.", "%3cscript", "un+ion", "%2", "%", "+", "%C3%A9", "é", "%e9", "a", "/", "jn%64i"]


def _uri_lines(uris, keys):
    """GOOD with each request URI in ``uris``; with each key in ``keys`` (GET and BATCH.DELETE), a "-"
    URI quoted and bare; the lifecycle line (bare "-" URI) with each key."""
    uri = '"GET /amzn-s3-demo-bucket1?versioning HTTP/1.1"'
    lines = [GOOD.replace(uri, '"' + u.replace('"', "'") + '"') for u in uris]
    for k in keys:
        k = k.replace(" ", "+")
        for op in ("REST.GET.OBJECT", "BATCH.DELETE.OBJECT"):
            lines += [GOOD.replace(OP_KEY, f"{op} {k}").replace(uri, dash) for dash in ('"-"', "-")]
        lines.append(LIFECYCLE.replace("events/dt%3D2024-05-19/part.parquet", k))
    return lines


def check_uri_literals(ref, got):
    """find("uri", lits) for the scan's literals: a superset of the rows whose text holds one, exact on
    the lines the scan read (but for a non-ASCII line whose URI has a '=': redact_uri's Unicode rules),
    and never more rows than the search of the line's bytes finds."""
    events = ref.events()
    low = [t.encode("utf-8", "surrogatepass").lower() for t in field_values("uri", events)]
    unsure = {i for i, e in enumerate(events) if e.request_uri is not None and "=" in e.request_uri
              and not e.raw.isascii()}
    slow = set(np.flatnonzero(got._row_flags() & 1).tolist())
    bits = got._lit_bits
    for lits in [PROBE, PROBE[3:9]] + [(lit,) for lit in PROBE]:
        rows = got.find("uri", lits)
        assert rows.dtype == np.int64
        truth = {i for i, t in enumerate(low) if any(lit.encode() in t for lit in lits)}
        assert truth <= set(rows.tolist()), lits
        assert set(rows.tolist()) <= truth | unsure, lits
        assert set(np.flatnonzero(got.uri_hits(lits)).tolist()) <= (truth | unsure) - slow
        got._lit_bits = {}                            # the search without the scan's verdicts
        try:
            assert set(rows.tolist()) <= set(got.find("uri", lits).tolist())
        finally:
            got._lit_bits = bits
    assert got.uri_hits(("zzz-not-a-scan-literal",)) is None


@needs_c
def test_uri_literals_on_hostile_uris():
    uris = ["GET /a/../b HTTP/1.1", "/A/%2E%2e/x", "/x?X-Amz-Signature=..%3c&y=1", "/x?sig=1&Signature=abc<", "signature=..",
            "/?x-amz-security-token=a;b=..", "/REDACTED", "/%252e", "/ThInK", "/\x00", "/caf\u00e9?Signature=..",
            "/caf\u00e9?a=..", "/\u212a?x-amz-security-to\u212aen=..&b", "/a?signature=..#..", "/a b/../c",
            "-", "/a?" + "&signature=x" * 40 + "&..", "/" + "a" * 300 + "passwd", "/pass", "/%2", "<", "."]
    keys = ["-", "a%2e%2e", "%2E%2e", "%3cscript", "un+ion", "jn%64i", "caf%C3%A9%2e.", "%e9..", "plain"]
    ref, got, _ = check(_encode(_uri_lines(uris, keys)))
    assert np.count_nonzero(got._row_flags() & 1) < got.n // 4   # most lines are read by the scan
    check_uri_literals(ref, got)
    check_find(ref, got)


# any literal set: one-byte literals, literals sharing their first bytes, literals only a redaction makes
ANY_LITERALS = PROBE + ("redacted", "=redacted&", "ted;", "d#", "signature=", "x", "%", "ab", "abc", "abd", "a",
                        "e" * 70)


def check_scan_literals(data: bytes, literals=ANY_LITERALS):
    """scan_block's bits per line (scan_state(seed, literals)) against each line's event: exact, but
    on the lines it leaves to Python (none set) or is not sure of (all set), and for a literal longer
    than 64 bytes (its first 64: a superset)."""
    from s3tail.core.colblock import _item
    state = C.scan_state(7, literals)
    n, _, _, b_starts, _, b_flags, b_lits, _, _ = C.scan_block(data, state)
    starts = np.frombuffer(b_starts, dtype=np.int64).tolist()
    flags = np.frombuffer(b_flags, dtype=np.uint8).tolist()
    bits = np.frombuffer(b_lits, dtype=np.uint64).tolist()
    read = 0
    for li in range(n):
        if flags[li] & 1:
            assert bits[li] == 0
            continue
        read += 1
        ev = _item(data, starts[li], starts[li + 1], "x", li + 1, starts[li])
        assert type(ev) is Event
        if flags[li] & 4:
            assert bits[li] == (1 << len(literals)) - 1
            continue
        low = field_values("uri", [ev])[0].encode("utf-8", "surrogatepass").lower()
        for k, lit in enumerate(literals):
            want = lit[:64].encode() in low
            assert bool(bits[li] >> k & 1) == want, (lit, low)
    return read


@needs_c
def test_scan_literals_of_any_set():
    uris = ["GET /a/../b HTTP/1.1", "/x?X-Amz-Signature=abc&y=1", "/x?signature=..;b", "/?Signature=a#d", "/ab",
            "/x?x-amz-security-token=tok ted;", "/aBd%", "/" + "E" * 69 + "e", "/" + "e" * 60, "x", "-", "/?a=1&b=2"]
    keys = ["a%62c", "%", "a+b+d", "x%2e%2e", "e" * 80]
    data = _encode(_uri_lines(uris, keys))
    assert check_scan_literals(data) > len(uris)
    assert check_scan_literals(data, ("redacted",)) > len(uris)
    assert check_scan_literals(data, ()) > len(uris)
    with pytest.raises(ValueError):
        C.scan_state(7, ("",))
    with pytest.raises(ValueError):
        C.scan_state(7, ("x",) * 65)
    with pytest.raises(ValueError):
        C.scan_state(7, ("caf\u00e9",))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.sampled_from(PIECES), max_size=12).map("".join), min_size=1, max_size=6),
       st.lists(st.lists(st.sampled_from(KEY_PIECES), min_size=1, max_size=6).map("".join), max_size=4))
def test_uri_literals_on_pieced_uris(uris, keys):
    ref, got, _ = check(_encode(_uri_lines(uris, keys)))
    if isinstance(got, BlockBatch):
        check_uri_literals(ref, got)
        check_scan_literals(_encode(_uri_lines(uris, keys)))



def test_uri_literals_on_generated_lines(generated):
    ref, got, _ = check(generated[:2_000_000])
    if isinstance(got, BlockBatch):
        check_uri_literals(ref, got)


def test_uri_literals_on_the_corpus(corpus_dir):
    data = b"".join(p.read_bytes().rstrip(b"\n") + b"\n" for p in sorted(corpus_dir.glob("s3-access-*.log")))
    ref, got, _ = check(data)
    if isinstance(got, BlockBatch):
        check_uri_literals(ref, got)


@needs_c
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated(), min_size=1, max_size=10))
def test_uri_literals_on_mutated_lines(lines):
    ref, got, _ = check(_encode(lines))
    check_uri_literals(ref, got)


# ---- without the C extension ----

def test_pure_fallback(monkeypatch):
    data = _encode(HOSTILE_LINES)
    with_c = from_block(data, "p.log", 3, 9, Dicts())
    monkeypatch.setattr(access_log, "speedups", None)
    ref, got, items = check(data, log_object="p.log", first_line=3, first_offset=9)
    assert type(got) is EventBlockBatch
    check_events_and_spills(ref, got)
    check_find(ref, got)
    for name in TABLES:   # and the same as what the C path gives
        assert got.values(name) == with_c.values(name)


def test_pure_python_switch_in_a_subprocess():
    code = ("from s3tail.core.colblock import from_block, EventBlockBatch\n"
            "from s3tail.core.columns import Dicts\n"
            f"b = from_block({_encode([GOOD, 'junk', GOOD])!r}, 'x', 1, 0, Dicts())\n"
            "print(type(b).__name__, b.n, len(b.others), b.values('request')[0][1])\n")
    env = dict(os.environ, S3TAIL_PURE_PYTHON="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["EventBlockBatch", "2", "1", "REST.GET.VERSIONING"]


@needs_c
def test_scan_state_lives_on_the_dicts():
    dicts = Dicts()
    from_block(GOOD.encode(), "x", 1, 0, dicts)
    state = dicts._colblock_state
    from_block(GOOD.encode(), "x", 2, 0, dicts)
    assert dicts._colblock_state is state
    assert isinstance(from_block(GOOD.encode(), "x", 1, 0, dicts).event(0), Event)


@needs_c
def test_raw_codes_python_never_learnt_are_recovered(generated):
    # as after a scan_block that raised midway: the C tables hold codes whose values Python never got;
    # those lines are parsed in Python (demoted), their codes learnt, and the batch is still exact
    block = generated[:200_000]
    dicts = Dicts()
    from_block(b"", "f.log", 1, 0, dicts)                 # the state exists
    C.scan_block(block, dicts._colblock_state.scan)      # values dropped on the floor
    items = parse_access_bytes(block, "f.log", 1, 0, True)
    ref = from_events(items, Dicts())
    got = from_block(block, "f.log", 1, 0, dicts)
    assert got.demoted > 0 and dicts._colblock_state.unknown == 0
    for name in TABLES:
        assert got.values(name) == ref.values(name)
    again = from_block(block, "f.log", 1, 0, dicts)      # now known: read by the scan alone
    assert again.demoted == 0
    for name in TABLES:
        assert again.codes[name].tolist() == got.codes[name].tolist()
