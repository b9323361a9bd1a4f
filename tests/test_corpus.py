"""Every real line in ../shared/corpus/public parses, except the records named here with the reason."""
from __future__ import annotations

import json

from s3tail.core.event import Event, Malformed
from s3tail.core.reader import iter_path

# (file, line) -> why it is not a record s3tail should accept.
EXPECTED_MALFORMED = {
    ("s3-access-ncbi-variants.log", 9): "two records spliced mid-line (requester 'rn:aws:iam::7839…' runs into a second record)",
    ("s3-access-ncbi-variants.log", 11): "the same spliced record with extra trailing fields",
    ("s3-access-ncbi-variants.log", 16): "month 'XXX' in the time stamp",
    ("s3-access-ncbi-skeletons.log", 2): "every field quoted, even version id and host id: not a shape S3 writes",
    ("s3-access-ncbi-skeletons.log", 49): "the 26-field form of the same all-quoted probe",
}


def test_every_access_log_line_parses_or_is_a_named_corruption(corpus_dir):
    files = sorted(corpus_dir.glob("s3-access-*.log"))
    assert len(files) >= 14
    malformed, events = {}, 0
    for path in files:
        lines = path.read_bytes().count(b"\n") + (0 if path.read_bytes().endswith(b"\n") else 1)
        items = list(iter_path(str(path)))
        assert len(items) == lines, f"{path.name}: a line vanished"
        for item in items:
            if isinstance(item, Malformed):
                malformed[(path.name, item.log_line)] = item.reason
            else:
                assert isinstance(item, Event)
                events += 1
    assert set(malformed) == set(EXPECTED_MALFORMED), malformed
    assert events >= 200


def test_real_lines_decode_the_traps_right(corpus_dir):
    def ev(name, line):
        return [e for e in iter_path(str(corpus_dir / name)) if e.log_line == line][0]

    ncbi8 = ev("s3-access-ncbi-real.log", 8)
    assert ncbi8.host_id.startswith("AIDAISBTTLPGXGH6YFFAY Lz") and ncbi8.signature_version == "SigV4"
    pip = ev("s3-access-ncbi-real.log", 22)
    assert pip.user_agent.startswith('pip/19.1 {"ci":null') and pip.user_agent.endswith("}}")
    assert pip.cipher_suite == "ECDHE-RSA-AES128-GCM-SHA256"
    restore = ev("s3-access-ncbi-real.log", 23)
    assert restore.operation == "S3.RESTORE.OBJECT" and restore.host_id is None
    eq = ev("s3-access-ncbi-real.log", 18)
    assert "%3D" in eq.key and "%253D" in eq.key_raw
    shell = ev("s3-access-dandi.log", 6)
    assert "<?php" in shell.request_uri and "<?php" in shell.referrer and shell.http_status == 404
    assert shell.user_agent.startswith("Mozilla/5.0 (compatible; Baiduspider")
    v1 = ev("s3-access-panther-v1.log", 1)
    assert isinstance(v1, Event)
    beats = [e for e in iter_path(str(corpus_dir / "s3-access-elastic-beats.log")) if e.time]
    assert all(e.time.endswith("Z") for e in beats)


def test_panther_normalized_fixtures_agree_on_shared_fields(corpus_dir):
    """Panther's normalized S3 access events: our identity decoding agrees on the requester's account."""
    from s3tail.core.identity import decode_requester

    for line in (corpus_dir / "s3access-normalized-panther-analysis.jsonl").read_text().splitlines():
        rec = json.loads(line)
        requester = rec.get("requester")
        account, ptype, _, _ = decode_requester(requester)
        if requester is None:
            assert ptype == "anonymous"
        elif requester.startswith("arn:aws:iam::") or requester.startswith("arn:aws:sts::"):
            assert account == requester.split(":")[4]
