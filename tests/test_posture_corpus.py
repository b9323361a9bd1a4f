"""s3tail's posture checks against Panther's own policy tests (panther-labs/panther-analysis,
``policies/aws_s3_policies/*.yml``, copied to the shared public corpus with an index).

Every snapshot line whose Panther policy has an s3tail counterpart must get Panther's verdict,
except the cases in EXPECTED_DIFFERENCES, each with the reason (also in docs/posture.md).
Policies with no counterpart are listed in NOT_COVERED, so a new one in the index fails here.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from s3tail.core.posture import CHECKS, PostureConfig, evaluate, snapshot_from_records

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "public"
SNAPSHOTS = CORPUS / "s3bucket-posture-panther-analysis.jsonl"
INDEX = CORPUS / "s3bucket-posture-panther-analysis.index.tsv"

# Panther PolicyID -> the s3tail check that judges the same thing.
COUNTERPART = {
    "AWS.S3.Bucket.Encryption": "bucket.default_encryption",
    "AWS.S3.Bucket.LifecycleConfiguration": "bucket.lifecycle",
    "AWS.S3.Bucket.Logging": "bucket.access_logging",
    "AWS.S3.Bucket.MFADelete": "bucket.mfa_delete",
    "AWS.S3.BucketObjectLockConfigured": "bucket.object_lock",
    "AWS.S3.Bucket.PolicyAllowWithNotPrincipal": "bucket.public_policy",
    "AWS.S3.Bucket.PrincipalRestrictions": "bucket.public_policy",
    "AWS.S3.Bucket.PublicAccessBlock": "bucket.block_public_access",
    "AWS.S3.Bucket.PublicRead": "bucket.public_acl_read",
    "AWS.S3.Bucket.PublicWrite": "bucket.public_acl_write",
    "AWS.S3.Bucket.SecureAccess": "bucket.secure_transport",
    "AWS.S3.Bucket.Versioning": "bucket.versioning",
}

NOT_COVERED = {
    "AWS.S3.Bucket.ActionRestrictions": "wildcard actions to named principals are a least-privilege "
    "review, not an exposure; public and cross-account grants are judged by their own checks",
    "AWS.S3.Bucket.PolicyConfusedDeputyProtection": "service principals without aws:SourceAccount/"
    "SourceArn are not among the requested checks",
    "AWS.S3.Bucket.NameDNSCompliance": "a dot in the name is a TLS/virtual-host nuisance, not a "
    "security misconfiguration",
}

# line -> (s3tail status, why s3tail differs from Panther's expected verdict)
EXPECTED_DIFFERENCES = {
    18: ("pass", "less strict: Object Lock is on (GOVERNANCE, 1 day). s3tail, like Security Hub "
                 "S3.15 and Prowler, checks that Object Lock is enabled; Panther also demands "
                 "COMPLIANCE mode for 365+ days, a retention policy of its own"),
    21: ("fail", "stricter: Panther's NotPrincipal policy looks only for Allow+NotPrincipal, but the "
                 "same policy's statement #2 allows Principal * s3:Get*/s3:List* with no condition, "
                 "which bucket.public_policy reports"),
    30: ("fail", "stricter: only BlockPublicAcls and IgnorePublicAcls are on. Panther passes when any "
                 "one of the four flags is on; s3tail wants all four (bucket and account combined), "
                 "as Security Hub S3.8 does, since a public policy is still honoured"),
    43: ("fail", "stricter: the Deny on aws:SecureTransport=false covers only s3:ListBucket and "
                 "s3:PutObject, so s3:GetObject still works over plain HTTP; s3tail wants the Deny on "
                 "s3:* (Security Hub S3.5)"),
}

EVERY_CHECK = PostureConfig(enabled_checks=frozenset(CHECKS))


def _cases() -> list[tuple[int, str, str, dict]]:
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus folder {CORPUS} is absent (it sits beside the repo, not in it)",
                    allow_module_level=True)
    lines = SNAPSHOTS.read_text(encoding="utf-8").splitlines()
    with INDEX.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [(int(row["line"]), row["PolicyID"], row["expected_result(True=compliant)"],
             json.loads(lines[int(row["line"]) - 1])) for row in rows]


CASES = _cases()


def test_every_panther_policy_is_mapped_or_declared_not_covered():
    policies = {policy_id for _, policy_id, _, _ in CASES}
    assert policies == set(COUNTERPART) | set(NOT_COVERED)
    assert set(COUNTERPART.values()) <= set(CHECKS)
    assert len(CASES) == 45
    assert sum(policy_id in COUNTERPART for _, policy_id, _, _ in CASES) == 37  # "33 of 37" in the docs


@pytest.mark.parametrize("line, policy_id, expected, record",
                         [c for c in CASES if c[1] in COUNTERPART], ids=lambda v: str(v)[:40])
def test_agrees_with_panther_or_differs_as_documented(line, policy_id, expected, record):
    check_id = COUNTERPART[policy_id]
    results = [r for r in evaluate(snapshot_from_records([record]), EVERY_CHECK) if r.check_id == check_id]
    assert len(results) == 1
    panther = "pass" if expected == "True" else "fail"
    if line in EXPECTED_DIFFERENCES:
        status, _reason = EXPECTED_DIFFERENCES[line]
        assert panther != status, f"line {line} now agrees with Panther: drop it from the table"
        assert results[0].status == status, results[0].detail
    else:
        assert results[0].status == panther, f"line {line} {policy_id}: {results[0].detail}"


def test_documented_differences_are_in_the_docs():
    docs = (Path(__file__).resolve().parents[1] / "docs" / "posture.md").read_text(encoding="utf-8")
    for line in EXPECTED_DIFFERENCES:
        assert f"| {line} |" in docs, f"line {line} is not in docs/posture.md's difference table"


def test_whole_corpus_loads_as_one_snapshot_and_evaluates():
    snapshot = snapshot_from_records([record for *_, record in CASES])
    results = evaluate(snapshot, EVERY_CHECK)
    assert len(snapshot.buckets) == 45
    assert {r.status for r in results} == {"pass", "fail", "unknown"}
    # No account record in Panther's shape: no account-level result, buckets judged alone.
    assert not [r for r in results if r.bucket is None]
