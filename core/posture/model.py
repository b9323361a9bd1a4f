"""Data types shared by the posture checks, the collectors and the renderers.

A :class:`Snapshot` is what every check reads: bucket records in Panther's ``AWS.S3.Bucket`` shape
plus, optionally, one account record holding the account-level public access block. The live
collector builds the same records, so there is only one evaluation path.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SEVERITIES: tuple[str, ...] = ("info", "low", "medium", "high", "critical")
STATUSES: tuple[str, ...] = ("fail", "unknown", "pass")

BUCKET_TYPE = "AWS.S3.Bucket"
ACCOUNT_TYPE = "AWS.S3.AccountPublicAccessBlock"  # s3tail's own record type (Panther has none)
ERRORS_KEY = "CollectionErrors"  # {field: "Code: message"} for calls that failed

# The read-only IAM action behind each record field (what the live collector calls).
BUCKET_FIELD_ACTIONS: dict[str, str] = {
    "Region": "s3:GetBucketLocation",
    "Owner": "s3:GetBucketAcl",
    "Grants": "s3:GetBucketAcl",
    "Policy": "s3:GetBucketPolicy",
    "PublicAccessBlockConfiguration": "s3:GetBucketPublicAccessBlock",
    "EncryptionRules": "s3:GetEncryptionConfiguration",
    "Versioning": "s3:GetBucketVersioning",
    "MFADelete": "s3:GetBucketVersioning",
    "LoggingPolicy": "s3:GetBucketLogging",
    "LifecycleRules": "s3:GetLifecycleConfiguration",
    "ObjectLockConfiguration": "s3:GetBucketObjectLockConfiguration",
    "ObjectOwnership": "s3:GetBucketOwnershipControls",
}
ACCOUNT_FIELD_ACTIONS: dict[str, str] = {
    "AccountId": "sts:GetCallerIdentity",
    "PublicAccessBlockConfiguration": "s3:GetAccountPublicAccessBlock",
}
# Every permission a live run uses (ListBuckets only when no --bucket is given).
IAM_ACTIONS: tuple[str, ...] = tuple(sorted(
    {"s3:ListAllMyBuckets", *BUCKET_FIELD_ACTIONS.values(), *ACCOUNT_FIELD_ACTIONS.values()}))

# The JSON contract of one result (other tools read these keys; keep them and their order).
RESULT_KEYS: tuple[str, ...] = (
    "check_id", "severity", "bucket", "status", "title", "detail", "remediation",
)


class PostureError(Exception):
    """A usage, IO or credential problem; one line, safe to show to the user."""


@dataclass(frozen=True)
class CheckResult:
    check_id: str
    severity: str
    bucket: str | None  # None for account-level results
    status: str  # fail | pass | unknown
    title: str
    detail: str
    remediation: str

    def to_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in RESULT_KEYS}


@dataclass
class Snapshot:
    """Bucket records (``AWS.S3.Bucket`` shape) and the account record, or ``None`` if absent."""

    buckets: list[dict[str, Any]] = field(default_factory=list)
    account: dict[str, Any] | None = None

    def records(self) -> list[dict[str, Any]]:
        """Every record, account first: what ``save_snapshot`` writes."""
        return ([self.account] if self.account is not None else []) + list(self.buckets)

    def bucket_names(self) -> list[str]:
        return [bucket_name(record, i) for i, record in enumerate(self.buckets)]


def bucket_name(record: dict[str, Any], index: int = 0) -> str:
    """The bucket's name: ``Name``, else the end of ``Arn``, else a placeholder with its position."""
    name = record.get("Name")
    if name:
        return str(name)
    arn = record.get("Arn") or record.get("ResourceId") or ""
    if str(arn).startswith("arn:aws:s3:::"):
        return str(arn)[len("arn:aws:s3:::"):]
    return f"(unnamed #{index + 1})"


@dataclass(frozen=True)
class PostureConfig:
    """What the ``[posture]`` config table sets (see config.py): accounts (12-digit ids or
    64-hex canonical user ids) treated as inside, and the checks to run (``None``: the defaults)."""

    trusted_accounts: frozenset[str] = frozenset()
    enabled_checks: frozenset[str] | None = None
