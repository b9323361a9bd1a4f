"""The posture checks and :func:`evaluate`, which runs them over a :class:`Snapshot`.

Each check is a small function of a view (:class:`BucketView`, or the account :class:`Record`)
returning ``(status, detail)``; reading a field the snapshot lacks raises :class:`Unknown`, which
becomes an ``unknown`` result. Check ids, severities and result keys are a contract.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from . import policy
from .model import CheckResult, PostureConfig, Snapshot
from .view import BLOCK_FLAGS, LOG_DELIVERY, BucketView, Record, Unknown, grantee_of

Verdict = tuple[str, str]

READ_PERMISSIONS = frozenset(("READ", "READ_ACP", "FULL_CONTROL"))
WRITE_PERMISSIONS = frozenset(("WRITE", "WRITE_ACP", "FULL_CONTROL"))
ANY_PERMISSION = READ_PERMISSIONS | WRITE_PERMISSIONS
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
DELETE_ACTIONS = (
    "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:DeleteBucket", "s3:PutLifecycleConfiguration",
)
LOG_SERVICES = ("logging.s3.amazonaws.com", "cloudtrail.amazonaws.com")
MIN_EXPIRATION_DAYS = 90
ALL_FLAGS_ON = ",".join(f"{flag}=true" for flag in BLOCK_FLAGS)


def ok(detail: str) -> Verdict:
    return "pass", detail


def bad(detail: str) -> Verdict:
    return "fail", detail


@dataclass(frozen=True)
class Check:
    id: str
    severity: str
    title: str
    remediation: str  # may use {bucket} and {account}
    fn: Callable[[Any], Verdict]  # (BucketView or account Record) -> (status, detail)
    default_enabled: bool = True
    applies: Callable[[Any], bool] = lambda view: True

    @property
    def scope(self) -> str:
        return self.id.split(".")[0]


CHECKS: dict[str, Check] = {}


CheckFn = Callable[[Any], Verdict]


def check(check_id: str, severity: str, title: str, remediation: str,
          **options: Any) -> Callable[[CheckFn], CheckFn]:
    """Register the decorated function as check ``check_id``."""
    def register(fn: CheckFn) -> CheckFn:
        CHECKS[check_id] = Check(check_id, severity, title, remediation, fn, **options)
        return fn
    return register


def _listed(items: list[str] | set[str]) -> str:
    return ", ".join(sorted(items))


# --- public access blocks ---------------------------------------------------------------------

@check("account.block_public_access", "high", "Account-level public access block is not fully on",
       "aws s3control put-public-access-block --account-id {account} "
       f"--public-access-block-configuration {ALL_FLAGS_ON}")
def account_block(account: Record) -> Verdict:
    off = [flag for flag, on in account.block_flags().items() if not on]
    if off:
        return bad(f"account-level block has {_listed(off)} off")
    return ok("all four account-level settings are on")


@check("bucket.block_public_access", "high", "Bucket public access block is not fully on",
       "aws s3api put-public-access-block --bucket {bucket} "
       f"--public-access-block-configuration {ALL_FLAGS_ON}")
def bucket_block(view: BucketView) -> Verdict:
    off = [flag for flag in BLOCK_FLAGS if not view.blocked(flag)]
    if off:
        return bad(f"{_listed(off)} off on the bucket and the account" + view.block_note())
    return ok("all four settings on (bucket and account block combined)")


# --- ACLs -------------------------------------------------------------------------------------

def _exposure(view: BucketView, seen: str, flag: str) -> Verdict:
    """Fail for what was ``seen`` exposed, unless the block ``flag`` that neutralises it is on."""
    if view.blocked(flag, seen):
        return ok(f"{seen}; {flag} neutralises it")
    return bad(seen + view.block_note())


def _public_acl(view: BucketView, permissions: frozenset[str]) -> Verdict:
    grants = view.public_grants(permissions)
    if not grants:
        return ok("no such ACL grant to AllUsers or AuthenticatedUsers")
    return _exposure(view, f"ACL grants {_listed(grants)}", "IgnorePublicAcls")


_ACL_FIX = ("aws s3api put-bucket-acl --bucket {bucket} --acl private; then turn on the bucket's "
            "public access block")


@check("bucket.public_acl_read", "critical", "Bucket ACL lets everyone read", _ACL_FIX)
def public_acl_read(view: BucketView) -> Verdict:
    return _public_acl(view, READ_PERMISSIONS)


@check("bucket.public_acl_write", "critical", "Bucket ACL lets everyone write", _ACL_FIX)
def public_acl_write(view: BucketView) -> Verdict:
    return _public_acl(view, WRITE_PERMISSIONS)


# --- bucket policy ----------------------------------------------------------------------------

_POLICY_FIX = ("aws s3api get-bucket-policy --bucket {bucket} --query Policy --output text "
               "> policy.json; edit the statements named above; "
               "aws s3api put-bucket-policy --bucket {bucket} --policy file://policy.json")


@check("bucket.public_policy", "critical", "Bucket policy allows everyone",
       _POLICY_FIX + " (or add a condition such as aws:PrincipalOrgID or aws:SourceVpce, or turn "
       "on RestrictPublicBuckets)")
def public_policy(view: BucketView) -> Verdict:
    if not view.has_policy():
        return ok("no bucket policy")
    public = [
        f"{policy.describe(s, i)} ({_listed(policy.actions(s)) or 'NotAction'})"
        for i, s in enumerate(view.statements()) if policy.is_public_statement(s)
    ]
    if not public:
        return ok("no Allow to a wildcard principal without a restricting condition")
    return _exposure(view, f"Allow to everyone with no restricting condition: {'; '.join(public)}",
                     "RestrictPublicBuckets")


@check("bucket.cross_account_access", "high", "Bucket grants access to untrusted accounts",
       _POLICY_FIX + " (or add the account to trusted_accounts in the [posture] config)")
def cross_account_access(view: BucketView) -> Verdict:
    named: set[str] = set()
    for stmt in view.statements():
        if policy.is_allow(stmt):
            named |= policy.named_accounts(stmt)
    accounts = view.outside_accounts(named, view.trusted)
    grantees = view.foreign_grantees(ANY_PERMISSION, view.trusted)
    if accounts or grantees:
        parts = ([f"policy allows account(s) {_listed(accounts)}"] if accounts else []) + (
            [f"ACL grants {_listed(grantees)}"] if grantees else [])
        return bad("; ".join(parts))
    return ok("no account outside the bucket's own and the trusted list")


@check("bucket.secure_transport", "medium", "Plain-HTTP requests are not denied",
       "add to the bucket policy: {{\"Sid\":\"DenyPlainHttp\",\"Effect\":\"Deny\",\"Principal\":\"*\","
       "\"Action\":\"s3:*\",\"Resource\":[\"arn:aws:s3:::{bucket}\",\"arn:aws:s3:::{bucket}/*\"],"
       "\"Condition\":{{\"Bool\":{{\"aws:SecureTransport\":\"false\"}}}}}} "
       "(aws s3api put-bucket-policy --bucket {bucket} --policy file://policy.json)")
def secure_transport(view: BucketView) -> Verdict:
    if not view.has_policy():
        return bad("no bucket policy, so nothing denies plain-HTTP requests")
    denies = [s for s in view.statements() if policy.denies_plain_http(s)]
    if not denies:
        return bad("no Deny to everyone on aws:SecureTransport = false")
    if any(policy.covers_all_actions(s) for s in denies):
        return ok("every action is denied when aws:SecureTransport is false")
    covered = sorted({a for s in denies for a in policy.actions(s)})
    return bad(f"the Deny on aws:SecureTransport = false covers only {_listed(covered)}; "
               "other actions still work over plain HTTP")


# --- encryption -------------------------------------------------------------------------------

def _sse_algorithms(view: BucketView) -> list[str]:
    rules = view.field("EncryptionRules") or []
    defaults = [(r or {}).get("ApplyServerSideEncryptionByDefault") or {} for r in rules]
    return [d["SSEAlgorithm"] for d in defaults if d.get("SSEAlgorithm")]


@check("bucket.default_encryption", "medium", "No default encryption",
       "aws s3api put-bucket-encryption --bucket {bucket} --server-side-encryption-configuration "
       "'{{\"Rules\":[{{\"ApplyServerSideEncryptionByDefault\":{{\"SSEAlgorithm\":\"AES256\"}}}}]}}'")
def default_encryption(view: BucketView) -> Verdict:
    algorithms = _sse_algorithms(view)
    if algorithms:
        return ok(f"default encryption {_listed(algorithms)}")
    return bad("no default encryption rule with an algorithm")


@check("bucket.kms_encryption", "medium", "Default encryption does not use KMS",
       "aws s3api put-bucket-encryption --bucket {bucket} --server-side-encryption-configuration "
       "'{{\"Rules\":[{{\"ApplyServerSideEncryptionByDefault\":{{\"SSEAlgorithm\":\"aws:kms\","
       "\"KMSMasterKeyID\":\"KEY_ARN\"}},\"BucketKeyEnabled\":true}}]}}'", default_enabled=False)
def kms_encryption(view: BucketView) -> Verdict:
    algorithms = _sse_algorithms(view)
    if any(a in KMS_ALGORITHMS for a in algorithms):
        return ok(f"default encryption {_listed(algorithms)}")
    return bad(f"default encryption is {_listed(algorithms) or 'not set'}, not aws:kms")


# --- data protection --------------------------------------------------------------------------

def _known(view: BucketView, key: str) -> Any:
    """The field, or None where it was not collected (for checks that only use it to excuse)."""
    try:
        return view.field(key)
    except Unknown:
        return None


def _enabled(view: BucketView, key: str, label: str) -> Verdict:
    state = view.field(key)
    return ok(f"{label} Enabled") if state == "Enabled" else bad(f"{label} {state or 'never enabled'}")


@check("bucket.versioning", "medium", "Versioning is not enabled",
       "aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled")
def versioning(view: BucketView) -> Verdict:
    return _enabled(view, "Versioning", "versioning")


@check("bucket.mfa_delete", "low", "MFA delete is not enabled",
       "with the root user's credentials: aws s3api put-bucket-versioning --bucket {bucket} "
       "--versioning-configuration Status=Enabled,MFADelete=Enabled --mfa 'MFA_DEVICE_ARN CODE'")
def mfa_delete(view: BucketView) -> Verdict:
    if view.field("MFADelete") != "Enabled":
        # AWS refuses MFA delete on a bucket with a lifecycle configuration, and Object Lock already
        # keeps versions from deletion: like Security Hub S3.20, such buckets are not failed.
        if any(isinstance(r, dict) and r.get("Status") == "Enabled" for r in _known(view, "LifecycleRules") or []):
            return ok("MFA delete cannot be combined with the bucket's lifecycle rules (not applicable)")
        if (_known(view, "ObjectLockConfiguration") or {}).get("ObjectLockEnabled") == "Enabled":
            return ok("Object Lock protects object versions (MFA delete not needed)")
    return _enabled(view, "MFADelete", "MFA delete")


@check("bucket.access_logging", "medium", "Server access logging is off",
       "aws s3api put-bucket-logging --bucket {bucket} --bucket-logging-status "
       "'{{\"LoggingEnabled\":{{\"TargetBucket\":\"LOG_BUCKET\",\"TargetPrefix\":\"{bucket}/\"}}}}'")
def access_logging(view: BucketView) -> Verdict:
    logging = view.field("LoggingPolicy")
    if not logging:
        return bad("server access logging is off")
    if isinstance(logging, dict):
        return ok(f"logs to s3://{logging.get('TargetBucket')}/{logging.get('TargetPrefix') or ''}")
    return ok(f"logging {logging}")


def _rule_has_action(rule: dict[str, Any]) -> bool:
    expiration = rule.get("Expiration") or {}
    return any((
        expiration.get("Days"), expiration.get("Date"), expiration.get("ExpiredObjectDeleteMarker"),
        rule.get("Transitions"), rule.get("NoncurrentVersionTransitions"),
        (rule.get("NoncurrentVersionExpiration") or {}).get("NoncurrentDays"),
        rule.get("AbortIncompleteMultipartUpload"),
    ))


def _whole_bucket(rule: dict[str, Any]) -> bool:
    scope = rule.get("Filter") or {}
    return not (rule.get("Prefix") or scope.get("Prefix") or scope.get("Tag") or scope.get("And")
                or scope.get("ObjectSizeGreaterThan") or scope.get("ObjectSizeLessThan"))


@check("bucket.lifecycle", "low", "No useful lifecycle configuration",
       "aws s3api put-bucket-lifecycle-configuration --bucket {bucket} --lifecycle-configuration "
       "file://lifecycle.json (an Enabled rule, e.g. noncurrent versions expiring after 90 days)")
def lifecycle(view: BucketView) -> Verdict:
    rules = [r for r in view.field("LifecycleRules") or [] if isinstance(r, dict)]
    active = [r for r in rules if r.get("Status") == "Enabled" and _rule_has_action(r)]
    if not active:
        return bad(f"no Enabled rule with an action ({len(rules)} rule(s) in all)")
    short = [r for r in active if _whole_bucket(r)
             and 0 < ((r.get("Expiration") or {}).get("Days") or 0) < MIN_EXPIRATION_DAYS]
    if short:
        days = min(r["Expiration"]["Days"] for r in short)
        return bad(f"rule {short[0].get('ID')!r} expires every object after {days} day(s) "
                   f"(under {MIN_EXPIRATION_DAYS})")
    return ok(f"{len(active)} Enabled rule(s)")


@check("bucket.object_lock", "low", "Object Lock is not enabled",
       "aws s3api put-object-lock-configuration --bucket {bucket} --object-lock-configuration "
       "'{{\"ObjectLockEnabled\":\"Enabled\",\"Rule\":{{\"DefaultRetention\":"
       "{{\"Mode\":\"GOVERNANCE\",\"Days\":30}}}}}}' (needs versioning)")
def object_lock(view: BucketView) -> Verdict:
    config = view.field("ObjectLockConfiguration") or {}
    if config.get("ObjectLockEnabled") != "Enabled":
        return bad("Object Lock is not enabled")
    retention = ((config.get("Rule") or {}).get("DefaultRetention")) or {}
    if not retention:
        return ok("Object Lock enabled, no default retention")
    period = (f"{retention['Days']} day(s)" if retention.get("Days")
              else f"{retention.get('Years')} year(s)")
    return ok(f"Object Lock enabled, default {retention.get('Mode')} {period}")


@check("bucket.acl_enabled", "medium", "ACLs are enabled (object ownership not enforced)",
       "aws s3api put-bucket-ownership-controls --bucket {bucket} "
       "--ownership-controls 'Rules=[{{ObjectOwnership=BucketOwnerEnforced}}]'")
def acl_enabled(view: BucketView) -> Verdict:
    ownership = view.field("ObjectOwnership")
    if ownership == "BucketOwnerEnforced":
        return ok("object ownership is BucketOwnerEnforced: ACLs are disabled")
    return bad(f"object ownership is {ownership or 'not set (ObjectWriter)'}: ACLs still apply")


# --- log buckets ------------------------------------------------------------------------------

def log_evidence(snapshot: Snapshot) -> list[list[str]]:
    """For each bucket record, why it counts as a log bucket: other buckets log into it, or its
    ACL or policy lets S3 log delivery (or CloudTrail) write to it. Best effort: fields that
    could not be read are skipped."""
    names = snapshot.bucket_names()
    sources: dict[str, list[str]] = {}
    for name, record in zip(names, snapshot.buckets):
        logging = record.get("LoggingPolicy")
        target = logging.get("TargetBucket") if isinstance(logging, dict) else None
        if isinstance(target, str) and target and target != name:
            sources.setdefault(target, []).append(name)
    return [
        ([f"logs of {_listed(set(sources[name]))}"] if name in sources else []) + _delivery_grants(record)
        for name, record in zip(names, snapshot.buckets)
    ]


def _delivery_grants(record: dict[str, Any]) -> list[str]:
    grants = record.get("Grants")
    try:
        found = ["ACL lets the LogDelivery group write"] if any(
            grantee_of(g).get("URI") == LOG_DELIVERY and g.get("Permission") in WRITE_PERMISSIONS
            for g in (grants if isinstance(grants, list) else []) if isinstance(g, dict)) else []
        statements = policy.parse_policy(record.get("Policy"))
    except (policy.PolicyError, TypeError):  # unreadable or malformed: no evidence either way
        return []
    services = {p for s in statements if policy.is_allow(s) for p in policy.principals(s, "Service")}
    return found + [f"policy lets {service} write" for service in LOG_SERVICES if service in services]


def _log_blocks(view: BucketView) -> list[str]:
    off = [flag for flag in BLOCK_FLAGS if not view.blocked(flag)]
    return [f"public access not fully blocked ({_listed(off)} off)"] if off else []


def _log_immutability(view: BucketView) -> list[str]:
    lock = view.field("ObjectLockConfiguration") or {}
    if lock.get("ObjectLockEnabled") == "Enabled":
        return []
    if view.field("Versioning") == "Enabled" and view.field("MFADelete") == "Enabled":
        return []
    return ["neither versioning with MFA delete nor Object Lock"]


def _outside_deleters(view: BucketView) -> list[str]:
    owner_only = frozenset(filter(None, [view.owner_account]))
    who: set[str] = set()
    for stmt in view.statements():
        if not (policy.is_allow(stmt) and policy.grants_any(stmt, DELETE_ACTIONS)):
            continue
        pinned = set(policy.condition_values(stmt, policy.ACCOUNT_KEYS))
        if policy.has_wildcard_principal(stmt) and not (pinned and pinned <= owner_only):
            who.add("everyone (wildcard principal)")
        explicit = {a for a in map(policy.account_of, policy.principals(stmt)) if a}
        who |= {f"account {a}" for a in view.outside_accounts(explicit, frozenset())}
    acl = view.foreign_grantees(WRITE_PERMISSIONS, frozenset())
    public = view.public_grants(WRITE_PERMISSIONS)
    if public and not view.blocked("IgnorePublicAcls", f"ACL grants {_listed(public)}"):
        acl += public
    who |= {f"ACL {grant}" for grant in acl}
    return [f"can delete from outside the account: {_listed(who)}"] if who else []


@check("log_bucket.protection", "high", "Log bucket is not protected against tampering",
       "aws s3api put-public-access-block --bucket {bucket} --public-access-block-configuration "
       f"{ALL_FLAGS_ON}; enable Object Lock (or versioning with MFA delete); remove delete "
       "rights of other accounts from the bucket policy and ACL",
       applies=lambda view: bool(view.log_evidence))
def log_bucket_protection(view: BucketView) -> Verdict:
    problems: list[str] = []
    unknown: list[Unknown] = []
    for part in (_log_blocks, _log_immutability, _outside_deleters):
        try:
            problems += part(view)
        except Unknown as exc:
            unknown.append(exc)
    why = f"log bucket ({'; '.join(view.log_evidence)})"
    if problems:
        return bad(f"{why}: {'; '.join(problems + [f'not read: {u}' for u in unknown])}")
    if unknown:
        raise unknown[0].explained(why)
    return ok(f"{why}: blocked, tamper-proof, no outside deleter")


# --- running ----------------------------------------------------------------------------------

def enabled_checks(config: PostureConfig) -> list[Check]:
    wanted = config.enabled_checks
    return [c for c in CHECKS.values() if (c.default_enabled if wanted is None else c.id in wanted)]


def run_check(check_: Check, view: Any, bucket: str | None, account: str | None) -> CheckResult:
    try:
        status, detail = check_.fn(view)
        remediation = "" if status == "pass" else \
            check_.remediation.format(bucket=bucket, account=account or "ACCOUNT_ID")
    except Unknown as exc:
        status, detail, remediation = "unknown", str(exc), exc.hint
    except (AttributeError, TypeError, ValueError, KeyError) as exc:
        # A hand-made or foreign snapshot whose fields have another shape than AWS's.
        status, detail = "unknown", f"the record has an unexpected shape ({type(exc).__name__}: {exc})"
        remediation = "compare the record with the AWS.S3.Bucket shape in docs/posture.md"
    return CheckResult(check_.id, check_.severity, bucket, status, check_.title, detail, remediation)


def evaluate(snapshot: Snapshot, config: PostureConfig | None = None) -> list[CheckResult]:
    """Every enabled check on the snapshot: account-level results first, then each bucket's in
    snapshot order. Results of every status; filter with ``status`` for the default view."""
    config = config or PostureConfig()
    checks = enabled_checks(config)
    account = Record(snapshot.account, account=True)
    account_id = (snapshot.account or {}).get("AccountId")
    results = [run_check(c, account, None, account_id)
               for c in checks if c.scope == "account" and snapshot.account is not None]
    evidence = log_evidence(snapshot)
    for name, record, why_log in zip(snapshot.bucket_names(), snapshot.buckets, evidence):
        view = BucketView(record, name, snapshot.account,
                          has_account_record=snapshot.account is not None,
                          log_evidence=why_log,
                          trusted=config.trusted_accounts)
        results += [run_check(c, view, name, view.owner_account or account_id)
                    for c in checks if c.scope != "account" and c.applies(view)]
    return results
