"""Posture checks on hand-built snapshot records: each misconfiguration, the three-valued
(unknown) logic, policy reading, the config table and robustness on malformed records."""
from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s3tail.core.posture import (
    CHECKS,
    RESULT_KEYS,
    SEVERITIES,
    PostureConfig,
    PostureError,
    Snapshot,
    evaluate,
    snapshot_from_records,
)
from s3tail.core.posture import policy
from s3tail.core.posture.config import config_from_table

OWN = "123456789012"
OTHER = "999988887777"
CANONICAL = "a" * 64
ALL_ON = dict.fromkeys(
    ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True)
ALL_OFF = dict.fromkeys(ALL_ON, False)
EVERY_CHECK = PostureConfig(enabled_checks=frozenset(CHECKS))


def doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


DENY_HTTP = {"Sid": "DenyPlainHttp", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
             "Resource": ["arn:aws:s3:::tidy", "arn:aws:s3:::tidy/*"],
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
PUBLIC_GET = {"Sid": "Public", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
              "Resource": "arn:aws:s3:::tidy/*"}


def good_bucket(name: str = "tidy", **changes) -> dict:
    record = {
        "ResourceType": "AWS.S3.Bucket", "Name": name, "AccountId": OWN, "Region": "us-east-1",
        "Owner": {"DisplayName": "me", "ID": CANONICAL},
        "Grants": [{"Grantee": {"Type": "CanonicalUser", "ID": CANONICAL}, "Permission": "FULL_CONTROL"}],
        "Policy": doc(DENY_HTTP),
        "PublicAccessBlockConfiguration": dict(ALL_ON),
        "EncryptionRules": [{"ApplyServerSideEncryptionByDefault":
                             {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "arn:aws:kms:us-east-1:123456789012:key/k"}}],
        "Versioning": "Enabled", "MFADelete": "Enabled",
        "LoggingPolicy": {"TargetBucket": "central-logs", "TargetPrefix": f"{name}/"},
        "LifecycleRules": [{"ID": "old-versions", "Status": "Enabled", "Filter": {"Prefix": ""},
                            "NoncurrentVersionExpiration": {"NoncurrentDays": 90}}],
        "ObjectLockConfiguration": {"ObjectLockEnabled": "Enabled",
                                    "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 30}}},
        "ObjectOwnership": "BucketOwnerEnforced",
        "CollectionErrors": {},
    }
    record.update(copy.deepcopy(changes))
    return record


def account(flags: dict | None = None, **changes) -> dict:
    record = {"ResourceType": "AWS.S3.AccountPublicAccessBlock", "AccountId": OWN,
              "PublicAccessBlockConfiguration": dict(ALL_OFF if flags is None else flags),
              "CollectionErrors": {}}
    record.update(changes)
    return record


def results_for(*buckets: dict, account_record: dict | None = None, config=EVERY_CHECK):
    return evaluate(Snapshot(buckets=list(buckets), account=account_record), config)


def one(results, check_id: str, bucket: str | None = "tidy"):
    found = [r for r in results if r.check_id == check_id and r.bucket == bucket]
    assert len(found) == 1, (check_id, bucket, found)
    return found[0]


# --- a well-configured bucket, then one misconfiguration at a time ---------------------------

def test_well_configured_bucket_passes_every_bucket_check():
    results = results_for(good_bucket(), account_record=account())
    statuses = {r.check_id: r.status for r in results if r.bucket == "tidy"}
    assert statuses == {c: "pass" for c in CHECKS if c.startswith("bucket.")}
    assert all(r.remediation == "" for r in results if r.status == "pass")


MISCONFIGURATIONS = [
    ("bucket.block_public_access", {"PublicAccessBlockConfiguration": None}, "off on the bucket"),
    ("bucket.public_acl_read", {"PublicAccessBlockConfiguration": None, "Grants": [
        {"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"},
         "Permission": "READ_ACP"}]}, "AllUsers:READ_ACP"),
    ("bucket.public_acl_write", {"PublicAccessBlockConfiguration": None, "Grants": [
        {"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"},
         "Permission": "WRITE_ACP"}]}, "AuthenticatedUsers:WRITE_ACP"),
    ("bucket.public_policy", {"PublicAccessBlockConfiguration": None,
                              "Policy": doc(DENY_HTTP, PUBLIC_GET)}, "'Public' (s3:GetObject)"),
    ("bucket.cross_account_access", {"Policy": doc(DENY_HTTP, {
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER}:role/reader"},
        "Action": "s3:GetObject", "Resource": "*"})}, OTHER),
    ("bucket.secure_transport", {"Policy": None}, "no bucket policy"),
    ("bucket.default_encryption", {"EncryptionRules": None}, "no default encryption"),
    ("bucket.kms_encryption", {"EncryptionRules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}, "AES256"),
    ("bucket.versioning", {"Versioning": "Suspended"}, "Suspended"),
    ("bucket.mfa_delete", {"MFADelete": "Disabled", "LifecycleRules": None, "ObjectLockConfiguration": None},
     "Disabled"),
    ("bucket.access_logging", {"LoggingPolicy": None}, "off"),
    ("bucket.lifecycle", {"LifecycleRules": [{"ID": "off", "Status": "Disabled",
                                              "Expiration": {"Days": 365}}]}, "no Enabled rule"),
    ("bucket.object_lock", {"ObjectLockConfiguration": None}, "not enabled"),
    ("bucket.acl_enabled", {"ObjectOwnership": "BucketOwnerPreferred"}, "BucketOwnerPreferred"),
]


IMPLIED = {"bucket.default_encryption": {"bucket.kms_encryption"},
           # MFA delete is only demanded where no lifecycle rule forbids it and no Object Lock replaces it.
           "bucket.mfa_delete": {"bucket.lifecycle", "bucket.object_lock"}}


@pytest.mark.parametrize("check_id, changes, seen", MISCONFIGURATIONS, ids=[m[0] for m in MISCONFIGURATIONS])
def test_each_misconfiguration_fails_its_check_only(check_id, changes, seen):
    results = results_for(good_bucket(**changes), account_record=account())
    result = one(results, check_id)
    assert result.status == "fail"
    assert seen in result.detail
    assert "tidy" in result.remediation or check_id == "bucket.kms_encryption"
    others = {r.check_id for r in results if r.bucket == "tidy" and r.status != "pass"}
    # Turning off the block is part of the public cases; no encryption is not KMS either.
    implied = ({"bucket.block_public_access"} | IMPLIED.get(check_id, set())) - {check_id}
    assert others - implied == {check_id}


@pytest.mark.parametrize("changes, seen", [
    ({"ObjectLockConfiguration": None}, "lifecycle rules"),
    ({"LifecycleRules": None}, "Object Lock protects"),
])
def test_mfa_delete_is_excused_by_lifecycle_rules_or_object_lock(changes, seen):
    result = one(results_for(good_bucket(MFADelete=None, **changes), account_record=account()), "bucket.mfa_delete")
    assert result.status == "pass"
    assert seen in result.detail
    disabled_rule = [{"ID": "off", "Status": "Disabled", "Expiration": {"Days": 365}}]
    bare = good_bucket(MFADelete=None, LifecycleRules=disabled_rule, ObjectLockConfiguration=None)
    assert one(results_for(bare, account_record=account()), "bucket.mfa_delete").status == "fail"


def test_full_control_to_everyone_is_both_public_read_and_write():
    grants = [{"Grantee": {"URI": "http://acs.amazonaws.com/groups/global/AllUsers"}, "Permission": "FULL_CONTROL"}]
    results = results_for(good_bucket(PublicAccessBlockConfiguration=None, Grants=grants), account_record=account())
    assert one(results, "bucket.public_acl_read").status == "fail"
    assert one(results, "bucket.public_acl_write").status == "fail"


def test_kms_encryption_is_off_by_default_and_configurable():
    aes = good_bucket(EncryptionRules=[{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}])
    assert not [r for r in results_for(aes, config=PostureConfig()) if r.check_id == "bucket.kms_encryption"]
    enabled = config_from_table({"enable": ["bucket.kms_encryption"]})
    assert one(results_for(aes, config=enabled), "bucket.kms_encryption").status == "fail"


def test_result_contract_keys_and_severities():
    results = results_for(good_bucket(Policy=None), account_record=account())
    for result in results:
        assert tuple(result.to_dict()) == RESULT_KEYS
        assert result.severity in SEVERITIES
        assert result.status in ("fail", "pass", "unknown")
    assert one(results, "bucket.public_acl_read").severity == "critical"
    assert one(results, "bucket.public_acl_write").severity == "critical"
    assert one(results, "account.block_public_access", None).to_dict()["bucket"] is None


# --- public access blocks ----------------------------------------------------------------------

def test_account_block_needs_all_four_flags():
    three = dict(ALL_ON, RestrictPublicBuckets=False)
    result = one(results_for(good_bucket(), account_record=account(three)), "account.block_public_access", None)
    assert result.status == "fail" and "RestrictPublicBuckets" in result.detail
    assert f"--account-id {OWN}" in result.remediation
    assert one(results_for(account_record=account(ALL_ON)), "account.block_public_access", None).status == "pass"


def test_bucket_block_is_the_union_of_bucket_and_account_flags():
    half = {"BlockPublicAcls": True, "IgnorePublicAcls": True}
    other_half = {"BlockPublicPolicy": True, "RestrictPublicBuckets": True}
    bucket = good_bucket(PublicAccessBlockConfiguration=half)
    assert one(results_for(bucket, account_record=account(other_half)), "bucket.block_public_access").status == "pass"
    result = one(results_for(bucket, account_record=account()), "bucket.block_public_access")
    assert result.status == "fail" and "BlockPublicPolicy, RestrictPublicBuckets off" in result.detail


def test_public_grant_ignored_by_account_block_passes():
    grants = [{"Grantee": {"URI": "http://acs.amazonaws.com/groups/global/AllUsers"}, "Permission": "READ"}]
    bucket = good_bucket(PublicAccessBlockConfiguration=None, Grants=grants)
    result = one(results_for(bucket, account_record=account({"IgnorePublicAcls": True})), "bucket.public_acl_read")
    assert result.status == "pass" and "IgnorePublicAcls neutralises it" in result.detail


def test_public_policy_neutralised_by_restrict_public_buckets():
    bucket = good_bucket(PublicAccessBlockConfiguration={"RestrictPublicBuckets": True},
                         Policy=doc(DENY_HTTP, PUBLIC_GET))
    result = one(results_for(bucket, account_record=account()), "bucket.public_policy")
    assert result.status == "pass" and "neutralises" in result.detail


def test_without_account_record_buckets_are_judged_alone_and_say_so():
    results = results_for(good_bucket(PublicAccessBlockConfiguration=None))
    assert not [r for r in results if r.check_id == "account.block_public_access"]
    result = one(results, "bucket.block_public_access")
    assert result.status == "fail" and "no account-level block in the snapshot" in result.detail


# --- unknown: unread fields -------------------------------------------------------------------

def test_access_denied_field_makes_dependent_checks_unknown_with_reason():
    bucket = good_bucket(Policy=None, CollectionErrors={"Policy": "AccessDenied: Access Denied"})
    del bucket["Policy"]
    results = results_for(bucket, account_record=account())
    for check_id in ("bucket.public_policy", "bucket.cross_account_access", "bucket.secure_transport"):
        result = one(results, check_id)
        assert result.status == "unknown"
        assert "Policy could not be read: AccessDenied" in result.detail
        assert "s3:GetBucketPolicy" in result.remediation
    assert one(results, "bucket.versioning").status == "pass"


def test_unknown_only_when_the_verdict_depends_on_it():
    denied = {"PublicAccessBlockConfiguration": "AccessDenied: Access Denied"}
    clean = good_bucket(CollectionErrors=denied)
    del clean["PublicAccessBlockConfiguration"]
    results = results_for(clean, account_record=account())
    assert one(results, "bucket.public_acl_read").status == "pass"  # no public grant: block irrelevant
    assert one(results, "bucket.block_public_access").status == "unknown"
    grants = [{"Grantee": {"URI": "http://acs.amazonaws.com/groups/global/AllUsers"}, "Permission": "READ"}]
    exposed = dict(clean, Grants=grants)
    assert one(results_for(exposed, account_record=account()), "bucket.public_acl_read").status == "unknown"
    covered = results_for(exposed, account_record=account(ALL_ON))
    assert one(covered, "bucket.public_acl_read").status == "pass"  # the account block decides it


def test_unreadable_account_block_is_unknown_for_account_and_undecided_buckets():
    errored = account(CollectionErrors={"PublicAccessBlockConfiguration": "AccessDenied: no"})
    del errored["PublicAccessBlockConfiguration"]
    results = results_for(good_bucket(PublicAccessBlockConfiguration=None), account_record=errored)
    assert one(results, "account.block_public_access", None).status == "unknown"
    assert one(results, "bucket.block_public_access").status == "unknown"
    assert one(results_for(good_bucket(), account_record=errored), "bucket.block_public_access").status == "pass"


def test_key_absent_from_record_is_unknown_but_null_is_not_configured():
    absent = good_bucket()
    del absent["ObjectOwnership"]
    assert one(results_for(absent), "bucket.acl_enabled").detail == "ObjectOwnership is not in the snapshot"
    assert one(results_for(good_bucket(ObjectOwnership=None)), "bucket.acl_enabled").status == "fail"


def test_invalid_policy_json_is_unknown():
    result = one(results_for(good_bucket(Policy="{not json")), "bucket.public_policy")
    assert result.status == "unknown" and "not valid JSON" in result.detail


# --- policy reading -------------------------------------------------------------------------

def allow_all(condition: dict | None = None, **extra) -> dict:
    stmt = {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject", "Resource": "*", **extra}
    if condition is not None:
        stmt["Condition"] = condition
    return stmt


@pytest.mark.parametrize("condition, public", [
    (None, True),
    ({"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}}, False),
    ({"StringEquals": {"aws:SourceVpce": "vpce-1a2b"}}, False),
    ({"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.1.0/24"]}}, False),
    ({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, False),  # a bounded public range
    ({"IpAddress": {"aws:SourceIp": "0.0.0.0/1"}}, True),  # wider than /8: public for AWS
    ({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, True),  # negated: restricts nothing
    ({"StringEqualsIfExists": {"aws:SourceAccount": OWN}}, True),  # absent key matches
    ({"StringLike": {"aws:PrincipalOrgID": "*"}}, True),
    ({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/x"}}, True),
    ({"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{OWN}:role/*"}}, False),
    ({"Bool": {"aws:SecureTransport": "true"}}, True),  # transport is not "who"
])
def test_public_statement_conditions(condition, public):
    assert policy.is_public_statement(allow_all(condition)) is public


@pytest.mark.parametrize("stmt, public", [
    ({"Effect": "Allow", "Principal": "*", "Action": "s3:*"}, True),
    ({"Effect": "Allow", "Principal": {"CanonicalUser": "*"}, "Action": "s3:*"}, True),
    ({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::*:root"}, "Action": "s3:*"}, True),
    ({"Effect": "Allow", "NotPrincipal": {"AWS": f"arn:aws:iam::{OWN}:root"}, "Action": "s3:*"}, True),
    ({"Effect": "Deny", "Principal": "*", "Action": "s3:*"}, False),
    ({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OWN}:root"}, "Action": "s3:*"}, False),
    ({"Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": "s3:PutObject"}, False),
])
def test_wildcard_principals(stmt, public):
    assert policy.is_public_statement(stmt) is public


def test_partial_secure_transport_deny_fails_and_names_the_actions():
    partial = dict(DENY_HTTP, Action=["s3:PutObject"])
    result = one(results_for(good_bucket(Policy=doc(partial))), "bucket.secure_transport")
    assert result.status == "fail" and "covers only s3:PutObject" in result.detail
    one_principal = dict(DENY_HTTP, Principal={"AWS": f"arn:aws:iam::{OWN}:user/x"})
    assert one(results_for(good_bucket(Policy=doc(one_principal))), "bucket.secure_transport").status == "fail"


def test_cross_account_honours_trusted_accounts_and_canonical_grants():
    shared = {"Effect": "Allow", "Principal": {"AWS": [OTHER, f"arn:aws:iam::{OWN}:root"]},
              "Action": "s3:GetObject", "Resource": "*"}
    bucket = good_bucket(Policy=doc(DENY_HTTP, shared))
    assert one(results_for(bucket), "bucket.cross_account_access").status == "fail"
    trusted = config_from_table({"trusted_accounts": [OTHER], "enable": ["bucket.kms_encryption"]})
    assert one(results_for(bucket, config=trusted), "bucket.cross_account_access").status == "pass"
    foreign = good_bucket(Grants=[{"Grantee": {"Type": "CanonicalUser", "ID": "b" * 64}, "Permission": "READ"}])
    result = one(results_for(foreign), "bucket.cross_account_access")
    assert result.status == "fail" and "b" * 64 in result.detail


def test_cross_account_via_wildcard_pinned_to_another_account():
    pinned = allow_all({"StringEquals": {"aws:PrincipalAccount": OTHER}})
    result = one(results_for(good_bucket(Policy=doc(DENY_HTTP, pinned))), "bucket.cross_account_access")
    assert result.status == "fail" and OTHER in result.detail


def test_cross_account_unknown_when_the_bucket_account_is_not_known():
    shared = {"Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "s3:GetObject", "Resource": "*"}
    bucket = good_bucket(Policy=doc(DENY_HTTP, shared))
    del bucket["AccountId"]
    assert one(results_for(bucket), "bucket.cross_account_access").status == "unknown"


def test_lifecycle_short_expiry_on_whole_bucket_fails_but_prefix_rule_does_not():
    short = {"ID": "tmp", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 7}}
    result = one(results_for(good_bucket(LifecycleRules=[short])), "bucket.lifecycle")
    assert result.status == "fail" and "after 7 day(s)" in result.detail
    scoped = dict(short, Filter={"Prefix": "tmp/"})
    assert one(results_for(good_bucket(LifecycleRules=[scoped])), "bucket.lifecycle").status == "pass"


# --- log buckets ------------------------------------------------------------------------------

def protected_log_bucket(**changes) -> dict:
    return good_bucket("central-logs", LoggingPolicy=None, **changes)


def test_log_bucket_detected_from_other_buckets_logging_and_protected():
    results = results_for(good_bucket(), protected_log_bucket(), account_record=account())
    result = one(results, "log_bucket.protection", "central-logs")
    assert result.status == "pass" and "logs of tidy" in result.detail
    assert not [r for r in results if r.check_id == "log_bucket.protection" and r.bucket == "tidy"]


def test_log_bucket_detected_from_log_delivery_acl_or_service_policy():
    grants = [{"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/s3/LogDelivery"},
               "Permission": "WRITE"}]
    via_acl = good_bucket("acl-logs", Grants=grants, ObjectOwnership="BucketOwnerPreferred")
    delivery = {"Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"},
                "Action": "s3:PutObject", "Resource": "arn:aws:s3:::policy-logs/*",
                "Condition": {"StringEquals": {"aws:SourceAccount": OWN}}}
    via_policy = good_bucket("policy-logs", Policy=doc(DENY_HTTP, delivery))
    results = results_for(via_acl, via_policy, account_record=account())
    assert "LogDelivery group" in one(results, "log_bucket.protection", "acl-logs").detail
    assert "logging.s3.amazonaws.com" in one(results, "log_bucket.protection", "policy-logs").detail


def test_unprotected_log_bucket_lists_every_problem():
    deleter = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"},
               "Action": "s3:Delete*", "Resource": "*"}
    weak = protected_log_bucket(PublicAccessBlockConfiguration=None, ObjectLockConfiguration=None,
                                MFADelete="Disabled", Policy=doc(DENY_HTTP, deleter))
    result = one(results_for(good_bucket(), weak, account_record=account()), "log_bucket.protection",
                 "central-logs")
    assert result.status == "fail" and result.severity == "high"
    for part in ("public access not fully blocked", "neither versioning with MFA delete nor Object Lock",
                 f"account {OTHER}"):
        assert part in result.detail


def test_log_bucket_versioning_with_mfa_delete_is_enough():
    log = protected_log_bucket(ObjectLockConfiguration=None)
    assert one(results_for(good_bucket(), log, account_record=account()),
               "log_bucket.protection", "central-logs").status == "pass"


def test_log_bucket_wildcard_deleter_pinned_to_own_account_is_inside():
    own_only = allow_all({"StringEquals": {"aws:PrincipalAccount": OWN}}, Action="s3:DeleteObject")
    log = protected_log_bucket(Policy=doc(DENY_HTTP, own_only))
    assert one(results_for(good_bucket(), log, account_record=account()),
               "log_bucket.protection", "central-logs").status == "pass"
    anyone = allow_all(Action="s3:*")
    log = protected_log_bucket(Policy=doc(DENY_HTTP, anyone))
    result = one(results_for(good_bucket(), log, account_record=account()), "log_bucket.protection", "central-logs")
    assert result.status == "fail" and "everyone" in result.detail


# --- config -----------------------------------------------------------------------------------

@pytest.mark.parametrize("table, message", [
    ({"trusted": [OWN]}, "unknown key posture.trusted"),
    ({"disable": ["bucket.nope"]}, "unknown check id 'bucket.nope'"),
    ({"enable": "bucket.lifecycle"}, "posture.enable must be a list of strings"),
    ({"trusted_accounts": ["1234"]}, "'1234' is not a 12-digit"),
    ({"enable": ["bucket.lifecycle"], "disable": ["bucket.lifecycle"]}, "in both"),
])
def test_bad_config_is_a_clear_error(table, message):
    with pytest.raises(PostureError, match=message.replace("(", r"\(").replace(".", r"\.")):
        config_from_table(table, "cfg.toml")


def test_disable_drops_a_check():
    config = config_from_table({"disable": ["bucket.lifecycle", "log_bucket.protection"]})
    ids = {r.check_id for r in results_for(good_bucket(), protected_log_bucket(), config=config)}
    assert "bucket.lifecycle" not in ids and "log_bucket.protection" not in ids
    assert "bucket.versioning" in ids and "bucket.kms_encryption" not in ids


# --- robustness -------------------------------------------------------------------------------

FIELDS = ("Name", "AccountId", "Owner", "Grants", "Policy", "PublicAccessBlockConfiguration",
          "EncryptionRules", "Versioning", "MFADelete", "LoggingPolicy", "LifecycleRules",
          "ObjectLockConfiguration", "ObjectOwnership", "CollectionErrors")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.dictionaries(st.sampled_from(FIELDS), json_values), min_size=1, max_size=3),
       st.none() | st.dictionaries(st.sampled_from(("AccountId", "PublicAccessBlockConfiguration",
                                                    "CollectionErrors")), json_values))
def test_malformed_records_never_crash(buckets, account_fields):
    records = list(buckets)
    if account_fields is not None:
        records.append(dict(account_fields, ResourceType="AWS.S3.AccountPublicAccessBlock"))
    results = evaluate(snapshot_from_records(records), EVERY_CHECK)
    assert all(r.status in ("fail", "pass", "unknown") for r in results)
    assert len({r.bucket for r in results if r.bucket is not None}) <= len(buckets)
