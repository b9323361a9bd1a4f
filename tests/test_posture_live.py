"""Live collection against moto's server (real boto3 over HTTP, nothing patched): buckets set up
each way, then every misconfiguration must give its check id with status fail on that bucket.

Moto 5.2 limits, checked by tests here: it does not store MFA delete (``GetBucketVersioning``
never returns ``MFADelete``), it does not enforce bucket policies (so an AccessDenied test uses
moto's IAM enforcement, at the end of this file), and boto3 sends S3 Control requests to
``<account>.127.0.0.1`` which does not resolve: collection with an endpoint URL strips that label
(``bare_endpoint_host``), and the world setup below uses the same handler.
"""
from __future__ import annotations

import json
import socket
import urllib.request

import boto3
import pytest

from s3tail.core.cli import main
from s3tail.core.posture.collect import bare_endpoint_host
from s3tail.core.posture import (
    CHECKS,
    PostureConfig,
    PostureError,
    collect_live,
    evaluate,
    load_snapshot,
    save_snapshot,
)

ACCOUNT = "123456789012"  # moto's default account
OTHER = "999988887777"
TRUSTED = "111122223333"
ALL_USERS = 'uri="http://acs.amazonaws.com/groups/global/AllUsers"'
LOG_DELIVERY = 'uri="http://acs.amazonaws.com/groups/s3/LogDelivery"'
ALL_ON = dict.fromkeys(("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True)
CONFIG = PostureConfig(trusted_accounts=frozenset({TRUSTED}), enabled_checks=frozenset(CHECKS))


def fake_aws_env(mp: pytest.MonkeyPatch, tmp_path) -> None:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
                       "AWS_MAX_ATTEMPTS": "1",  # no retry back-off on the unreachable cases
                       "AWS_CONFIG_FILE": str(tmp_path / "none"),
                       "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}.items():
        mp.setenv(key, value)
    for key in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        mp.delenv(key, raising=False)


def moto_admin(url: str, path: str, body: bytes = b"") -> None:
    request = urllib.request.Request(url + path, data=body, method="POST",
                                     headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(request, timeout=10).read()


@pytest.fixture(scope="module")
def aws_env(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        fake_aws_env(mp, tmp_path_factory.mktemp("aws"))
        yield


@pytest.fixture(scope="module")
def moto_url(aws_env):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    moto_admin(url, "/moto-api/reset")  # moto's state is per process, not per server
    try:
        build_world(moto_session(), url)
        yield url
    finally:
        moto_admin(url, "/moto-api/reset")
        server.stop()


def moto_session(**credentials: str) -> boto3.Session:
    """A plain session: with an endpoint URL, collection sends S3 Control to that host as given."""
    return boto3.Session(region_name="us-east-1", **credentials)


def statement(effect, principal, action, resource, condition=None, sid=None):
    stmt = {"Effect": effect, "Principal": principal, "Action": action, "Resource": resource}
    if condition:
        stmt["Condition"] = condition
    if sid:
        stmt["Sid"] = sid
    return stmt


def deny_http(bucket: str) -> dict:
    # {"AWS": "*"}, not "*": moto's PutBucketLogging check crashes on a string Principal.
    return statement("Deny", {"AWS": "*"}, "s3:*", [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                     {"Bool": {"aws:SecureTransport": "false"}}, "DenyPlainHttp")


def put_policy(s3, bucket: str, *statements: dict) -> None:
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17",
                                                           "Statement": list(statements)}))


def harden(s3, bucket: str, *extra_statements: dict, log_to: str | None = "log-bucket") -> None:
    """Everything a well-configured bucket has (moto cannot store MFA delete; lifecycle rules excuse it)."""
    put_policy(s3, bucket, deny_http(bucket), *extra_statements)
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/s3"}}]})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "old-versions", "Status": "Enabled", "Filter": {"Prefix": ""},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 90}}]})
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 30}}})
    if log_to:
        s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus={
            "LoggingEnabled": {"TargetBucket": log_to, "TargetPrefix": f"{bucket}/"}})
    s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=ALL_ON)


def build_world(session: boto3.Session, url: str) -> None:
    s3 = session.client("s3", endpoint_url=url)
    for name in ("log-bucket", "good-bucket"):
        s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    delivery = statement("Allow", {"Service": "logging.s3.amazonaws.com"}, "s3:PutObject",
                         "arn:aws:s3:::log-bucket/*", {"StringEquals": {"aws:SourceAccount": ACCOUNT}})
    harden(s3, "log-bucket", delivery, log_to=None)
    harden(s3, "good-bucket")

    plain = ["plain", "public-read-acl", "public-write-acl", "public-policy", "restricted-policy",
             "cross-account", "trusted-account", "suspended", "short-lifecycle", "weak-log-bucket",
             "neutralised", "combined-block"]
    for name in plain:
        s3.create_bucket(Bucket=name)
    s3.put_bucket_acl(Bucket="public-read-acl", GrantRead=ALL_USERS,
                      GrantFullControl=f'id="{owner_id(s3)}"')
    s3.put_bucket_acl(Bucket="public-write-acl", GrantWrite=ALL_USERS,
                      GrantFullControl=f'id="{owner_id(s3)}"')
    put_policy(s3, "public-policy", statement("Allow", "*", "s3:GetObject", "arn:aws:s3:::public-policy/*",
                                              sid="Website"))
    put_policy(s3, "restricted-policy", deny_http("restricted-policy"), statement(
        "Allow", "*", "s3:GetObject", "arn:aws:s3:::restricted-policy/*",
        {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}))
    put_policy(s3, "cross-account", statement("Allow", {"AWS": f"arn:aws:iam::{OTHER}:root"},
                                              "s3:GetObject", "arn:aws:s3:::cross-account/*"))
    put_policy(s3, "trusted-account", statement("Allow", {"AWS": f"arn:aws:iam::{TRUSTED}:root"},
                                                "s3:GetObject", "arn:aws:s3:::trusted-account/*"))
    s3.put_bucket_versioning(Bucket="suspended", VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_versioning(Bucket="suspended", VersioningConfiguration={"Status": "Suspended"})
    s3.put_bucket_lifecycle_configuration(Bucket="short-lifecycle", LifecycleConfiguration={"Rules": [
        {"ID": "nuke", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}}]})
    # A log bucket without protection: ACL-based delivery, another account may delete.
    s3.put_bucket_acl(Bucket="weak-log-bucket", GrantWrite=LOG_DELIVERY, GrantReadACP=LOG_DELIVERY,
                      GrantFullControl=f'id="{owner_id(s3)}"')
    put_policy(s3, "weak-log-bucket", statement("Allow", {"AWS": f"arn:aws:iam::{OTHER}:root"},
                                                "s3:DeleteObject", "arn:aws:s3:::weak-log-bucket/*"))
    s3.put_bucket_logging(Bucket="plain", BucketLoggingStatus={
        "LoggingEnabled": {"TargetBucket": "weak-log-bucket", "TargetPrefix": "plain/"}})
    # A public grant made harmless by the bucket's block (set after the grant).
    s3.put_bucket_acl(Bucket="neutralised", GrantRead=ALL_USERS, GrantFullControl=f'id="{owner_id(s3)}"')
    s3.put_public_access_block(Bucket="neutralised", PublicAccessBlockConfiguration=ALL_ON)
    # Half the flags on the bucket; the account block supplies the other half.
    s3.put_public_access_block(Bucket="combined-block", PublicAccessBlockConfiguration={
        "IgnorePublicAcls": True, "RestrictPublicBuckets": True})

    eu = session.client("s3", region_name="eu-west-1", endpoint_url=url)
    eu.create_bucket(Bucket="eu-public", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    put_policy(eu, "eu-public", statement("Allow", {"AWS": "*"}, "s3:ListBucket", "arn:aws:s3:::eu-public"))

    # Account level: BlockPublicAcls and BlockPublicPolicy only (neither hides existing grants).
    control = session.client("s3control", endpoint_url=url)
    control.meta.events.register("before-sign.s3-control", bare_endpoint_host)  # as collection does
    control.put_public_access_block(
        AccountId=ACCOUNT, PublicAccessBlockConfiguration={"BlockPublicAcls": True, "BlockPublicPolicy": True})


def owner_id(s3) -> str:
    # The ACL owner (moto's ListBuckets reports a different owner id).
    return s3.get_bucket_acl(Bucket="plain")["Owner"]["ID"]


@pytest.fixture(scope="module")
def snapshot(moto_url):
    return collect_live(session=moto_session(), endpoint_url=moto_url)


@pytest.fixture(scope="module")
def results(snapshot):
    return evaluate(snapshot, CONFIG)


def status(results, bucket, check_id):
    found = [r for r in results if r.bucket == bucket and r.check_id == check_id]
    assert len(found) == 1, (bucket, check_id, found)
    return found[0]


MISCONFIGURED = [
    ("public-read-acl", "bucket.public_acl_read", "AllUsers:READ"),
    ("public-write-acl", "bucket.public_acl_write", "AllUsers:WRITE"),
    ("public-policy", "bucket.public_policy", "'Website' (s3:GetObject)"),
    ("eu-public", "bucket.public_policy", "s3:ListBucket"),
    ("cross-account", "bucket.cross_account_access", OTHER),
    ("plain", "bucket.secure_transport", "no bucket policy"),
    ("public-policy", "bucket.secure_transport", "no Deny"),
    ("plain", "bucket.default_encryption", "no default encryption"),
    ("plain", "bucket.kms_encryption", "not set"),
    ("plain", "bucket.versioning", "never enabled"),
    ("suspended", "bucket.versioning", "Suspended"),
    ("plain", "bucket.mfa_delete", "never enabled"),
    ("public-policy", "bucket.access_logging", "off"),
    ("plain", "bucket.lifecycle", "no Enabled rule"),
    ("short-lifecycle", "bucket.lifecycle", "after 1 day(s)"),
    ("plain", "bucket.object_lock", "not enabled"),
    ("plain", "bucket.acl_enabled", "not set"),
    ("plain", "bucket.block_public_access", "IgnorePublicAcls, RestrictPublicBuckets off"),
    ("weak-log-bucket", "log_bucket.protection", "logs of plain"),
]


@pytest.mark.parametrize("bucket, check_id, seen", MISCONFIGURED, ids=lambda v: str(v)[:30])
def test_each_misconfiguration_fails_on_its_bucket(results, bucket, check_id, seen):
    result = status(results, bucket, check_id)
    assert result.status == "fail", result.detail
    assert seen in result.detail
    assert result.remediation


def test_account_block_is_read_through_s3control(results, snapshot):
    assert snapshot.account["AccountId"] == ACCOUNT
    result = status(results, None, "account.block_public_access")
    assert result.status == "fail"
    assert "IgnorePublicAcls, RestrictPublicBuckets off" in result.detail


def test_well_configured_bucket_gives_no_failure(results):
    bad = {r.check_id: r.detail for r in results if r.bucket == "good-bucket" and r.status != "pass"}
    assert bad == {}
    # moto cannot store MFA delete; the bucket's lifecycle rules make it not applicable, as on AWS.
    assert "lifecycle" in status(results, "good-bucket", "bucket.mfa_delete").detail


def test_protected_log_bucket_passes(results):
    result = status(results, "log-bucket", "log_bucket.protection")
    assert result.status == "pass"
    assert "logs of good-bucket" in result.detail and "logging.s3.amazonaws.com" in result.detail


def test_weak_log_bucket_names_each_problem(results):
    detail = status(results, "weak-log-bucket", "log_bucket.protection").detail
    assert "LogDelivery group" in detail
    assert "public access not fully blocked" in detail
    assert "neither versioning with MFA delete nor Object Lock" in detail
    assert f"account {OTHER}" in detail


def test_restricted_policy_and_trusted_account_do_not_fail(results):
    assert status(results, "restricted-policy", "bucket.public_policy").status == "pass"
    assert status(results, "restricted-policy", "bucket.secure_transport").status == "pass"
    assert status(results, "trusted-account", "bucket.cross_account_access").status == "pass"


def test_public_access_blocks_neutralise_and_combine(results):
    neutralised = status(results, "neutralised", "bucket.public_acl_read")
    assert neutralised.status == "pass" and "IgnorePublicAcls neutralises it" in neutralised.detail
    assert status(results, "combined-block", "bucket.block_public_access").status == "pass"
    assert status(results, "plain", "bucket.block_public_access").status == "fail"


def test_records_are_complete_and_region_aware(snapshot):
    by_name = {record["Name"]: record for record in snapshot.buckets}
    assert len(by_name) == 15
    assert by_name["eu-public"]["Region"] == "eu-west-1"
    assert by_name["plain"]["Region"] == "us-east-1"
    assert all(record["CollectionErrors"] == {} for record in snapshot.buckets)
    assert json.loads(by_name["public-policy"]["Policy"])["Statement"][0]["Sid"] == "Website"
    assert by_name["good-bucket"]["ObjectOwnership"] == "BucketOwnerEnforced"
    assert by_name["plain"]["LoggingPolicy"] == {"TargetBucket": "weak-log-bucket", "TargetPrefix": "plain/"}


def test_named_buckets_only_and_missing_bucket_is_an_error(moto_url):
    snapshot = collect_live(session=moto_session(), endpoint_url=moto_url,
                            buckets=["eu-public", "plain"], max_workers=1)
    assert [record["Name"] for record in snapshot.buckets] == ["eu-public", "plain"]
    with pytest.raises(PostureError, match="no such bucket: nope-not-here"):
        collect_live(session=moto_session(), endpoint_url=moto_url, buckets=["nope-not-here"])


def test_save_and_load_give_the_same_results(snapshot, results, tmp_path):
    path = tmp_path / "saved.jsonl"
    save_snapshot(snapshot, path)
    assert evaluate(load_snapshot(path), CONFIG) == results


# --- the CLI against moto --------------------------------------------------------------------

def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["posture", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_save_round_trip(moto_url, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # no user config
    saved = tmp_path / "snap.jsonl"
    code, live_out, _ = run_cli(capsys, "--endpoint-url", moto_url, "--region", "us-east-1",
                                "--save", str(saved), "--all", "--format", "jsonl")
    assert code == 0
    code, offline_out, _ = run_cli(capsys, "--snapshot", str(saved), "--all", "--format", "jsonl")
    assert code == 0 and offline_out == live_out
    rows = [json.loads(line) for line in live_out.splitlines()]
    account = [r for r in rows if r["bucket"] is None]
    # With an endpoint URL the CLI sends S3 Control to that host too, so the account block is read.
    assert account[0]["status"] == "fail"
    assert "block has IgnorePublicAcls, RestrictPublicBuckets off" in account[0]["detail"]
    acl = next(r for r in rows if (r["bucket"], r["check_id"]) == ("public-read-acl", "bucket.public_acl_read"))
    assert acl["status"] == "fail"
    assert acl["detail"].startswith("ACL grants AllUsers:READ")
    assert "public-read-acl" in acl["remediation"]
    versioning = next(r for r in rows if (r["bucket"], r["check_id"]) == ("suspended", "bucket.versioning"))
    assert versioning["status"] == "fail"


def test_cli_live_bucket_filter_text(moto_url, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    code, out, _ = run_cli(capsys, "--endpoint-url", moto_url, "--bucket", "public-write-acl")
    assert code == 0
    rows = [line.split() for line in out.splitlines() if line and not line.startswith(" ")]
    assert rows[0] == ["BUCKET", "SEVERITY", "STATUS", "CHECK"]
    assert {row[0] for row in rows[1:-1]} == {"(account)", "public-write-acl"}
    assert ["public-write-acl", "critical", "fail", "bucket.public_acl_write"] in rows
    assert ["public-write-acl", "medium", "fail", "bucket.secure_transport"] in rows
    assert "fix:  aws s3api put-bucket-policy --bucket public-write-acl" not in out  # no such fix
    assert "    fix:  add to the bucket policy" in out
    assert rows[-1][1:] == ["result(s):", "11", "fail", "(3", "passing", "hidden;", "--all", "shows", "them)"]


def test_cli_without_credentials_exits_2(moto_url, capsys, monkeypatch):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)
    code, out, err = run_cli(capsys, "--endpoint-url", moto_url)
    assert code == 2 and out == ""
    assert err.startswith("s3tail: no AWS credentials") and err.count("\n") == 1


def test_cli_unknown_profile_exits_2(aws_env, capsys):
    code, _, err = run_cli(capsys, "--profile", "no-such-profile-here")
    assert code == 2 and "no-such-profile-here" in err and err.count("\n") == 1


def test_cli_unreachable_endpoint_exits_2(aws_env, capsys):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, _, err = run_cli(capsys, "--endpoint-url", f"http://127.0.0.1:{port}")
    assert code == 2
    assert err.startswith("s3tail: cannot reach the endpoint") and err.count("\n") == 1


# --- AccessDenied, through moto's IAM enforcement (bucket policies are not enforced) ----------

SCANNER_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:*", "sts:GetCallerIdentity"], "Resource": "*"},
    {"Effect": "Deny", "Action": ["s3:GetBucketPolicy", "s3:GetBucketAcl"], "Resource": "*"},
]}


@pytest.fixture(scope="module")
def scanner_keys(moto_url):
    iam = boto3.client("iam", endpoint_url=moto_url)
    iam.create_user(UserName="scanner")
    iam.put_user_policy(UserName="scanner", PolicyName="read-most",
                        PolicyDocument=json.dumps(SCANNER_POLICY))
    key = iam.create_access_key(UserName="scanner")["AccessKey"]
    return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}


@pytest.fixture
def iam_enforced(moto_url):
    moto_admin(moto_url, "/moto-api/reset-auth", b"0")  # from now on, check IAM
    try:
        yield
    finally:
        moto_admin(moto_url, "/moto-api/reset-auth", b"inf")


def test_access_denied_makes_dependent_checks_unknown(moto_url, scanner_keys, iam_enforced):
    snapshot = collect_live(session=moto_session(**scanner_keys), endpoint_url=moto_url,
                            buckets=["public-policy", "public-read-acl", "suspended"])
    record = next(r for r in snapshot.buckets if r["Name"] == "public-policy")
    assert set(record["CollectionErrors"]) == {"Policy", "Owner", "Grants"}
    assert record["CollectionErrors"]["Policy"].startswith("AccessDenied")
    results = evaluate(snapshot, CONFIG)
    for bucket, check_id in [("public-policy", "bucket.public_policy"),
                             ("public-policy", "bucket.secure_transport"),
                             ("public-read-acl", "bucket.public_acl_read"),
                             ("public-read-acl", "bucket.cross_account_access")]:
        result = status(results, bucket, check_id)
        assert result.status == "unknown", result
        assert "could not be read: AccessDenied" in result.detail
    assert status(results, "suspended", "bucket.versioning").status == "fail"
    assert status(results, None, "account.block_public_access").status == "fail"


def test_cli_rejected_access_key_exits_2(moto_url, iam_enforced, capsys):
    code, out, err = run_cli(capsys, "--endpoint-url", moto_url)
    assert code == 2 and out == ""
    assert err.startswith("s3tail: AWS rejected the credentials") and err.count("\n") == 1
    assert "InvalidClientTokenId" in err
