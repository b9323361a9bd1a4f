"""Live collection with boto3, normalized into snapshot records (Panther's ``AWS.S3.Bucket`` shape).

The collector only reads; the checks never see boto3. One record per bucket, one account record.
A call that fails with a ClientError (AccessDenied, ...) or a transport error leaves its fields
out and names them in ``CollectionErrors`` (the checks report ``unknown``); credential problems
and an unreachable endpoint stop the run with :class:`PostureError`.

Order of work: STS GetCallerIdentity (the account id, and an early credential check), ListBuckets
(unless buckets are named), GetBucketLocation per bucket, then every per-bucket read and the
account-level S3 Control read at once in a bounded thread pool, each bucket through a client of
its own region (clients are made in the calling thread: boto3 sessions are not thread-safe).
"""
from __future__ import annotations

import re

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
)

from .model import ACCOUNT_TYPE, BUCKET_TYPE, ERRORS_KEY, PostureError, Snapshot

DEFAULT_WORKERS = 8
CREDENTIAL_CODES = frozenset((
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidClientTokenId", "ExpiredToken",
    "ExpiredTokenException", "UnrecognizedClientException", "AuthFailure", "InvalidToken",
))
UNREACHABLE = (EndpointConnectionError, ConnectTimeoutError)


@dataclass(frozen=True)
class Read:
    """One read-only call per bucket: which record fields it fills and how."""

    method: str
    fields: tuple[str, ...]
    extract: Callable[[dict[str, Any]], dict[str, Any]]
    absent: tuple[str, ...] = ()  # error codes that mean "not configured" (fields become null)


def _ownership(response: dict[str, Any]) -> dict[str, Any]:
    rules = (response.get("OwnershipControls") or {}).get("Rules") or [{}]
    return {"ObjectOwnership": rules[0].get("ObjectOwnership")}


READS: tuple[Read, ...] = (
    Read("get_bucket_acl", ("Owner", "Grants"),
         lambda r: {"Owner": r.get("Owner"), "Grants": r.get("Grants") or []}),
    Read("get_bucket_policy", ("Policy",), lambda r: {"Policy": r.get("Policy")},
         ("NoSuchBucketPolicy",)),
    Read("get_public_access_block", ("PublicAccessBlockConfiguration",),
         lambda r: {"PublicAccessBlockConfiguration": r.get("PublicAccessBlockConfiguration")},
         ("NoSuchPublicAccessBlockConfiguration",)),
    Read("get_bucket_encryption", ("EncryptionRules",),
         lambda r: {"EncryptionRules": (r.get("ServerSideEncryptionConfiguration") or {}).get("Rules")},
         ("ServerSideEncryptionConfigurationNotFoundError",)),
    Read("get_bucket_versioning", ("Versioning", "MFADelete"),
         lambda r: {"Versioning": r.get("Status"), "MFADelete": r.get("MFADelete")}),
    Read("get_bucket_logging", ("LoggingPolicy",), lambda r: {"LoggingPolicy": r.get("LoggingEnabled")}),
    Read("get_bucket_lifecycle_configuration", ("LifecycleRules",),
         lambda r: {"LifecycleRules": r.get("Rules")}, ("NoSuchLifecycleConfiguration",)),
    Read("get_object_lock_configuration", ("ObjectLockConfiguration",),
         lambda r: {"ObjectLockConfiguration": r.get("ObjectLockConfiguration")},
         ("ObjectLockConfigurationNotFoundError",)),
    Read("get_bucket_ownership_controls", ("ObjectOwnership",), _ownership,
         ("OwnershipControlsNotFoundError",)),
)


def collect_live(
    session_kwargs: dict[str, Any] | None = None,
    buckets: Iterable[str] | None = None,
    *,
    endpoint_url: str | None = None,
    session: boto3.Session | None = None,
    max_workers: int = DEFAULT_WORKERS,
) -> Snapshot:
    """Collect every bucket (or ``buckets``) and the account-level block into a :class:`Snapshot`.

    ``session_kwargs`` go to ``boto3.Session`` (``profile_name``, ``region_name``, ...); pass
    ``session`` instead to reuse one. ``endpoint_url`` is used for S3, S3 Control and STS (a
    local or S3-compatible endpoint). ``max_workers`` bounds the calls in flight.
    Raises :class:`PostureError` for credential, profile, endpoint or unknown-bucket problems.
    """
    clients = _Clients(session or _session(session_kwargs or {}), endpoint_url, max_workers)
    account_id, account_error = _caller_account(clients)
    names = list(dict.fromkeys(buckets)) if buckets else _list_buckets(clients)
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="s3tail-posture") as pool:
        regions = _locate(pool, clients, names, explicit=bool(buckets))
        account = pool.submit(_account_record, clients.get("s3control", clients.home),
                              account_id, account_error)
        pending = [_submit_reads(pool, clients, name, region) for name, region in regions.items()]
        records = [_bucket_record(name, region, account_id, futures)
                   for (name, region), futures in zip(regions.items(), pending)]
        return Snapshot(buckets=records, account=account.result())


class _Clients:
    """boto3 clients by (service, region), made only from the calling thread."""

    def __init__(self, session: boto3.Session, endpoint_url: str | None, workers: int) -> None:
        self.session = session
        self.endpoint_url = endpoint_url
        self.home = session.region_name or "us-east-1"
        # Standard retries; the number of attempts follows AWS_MAX_ATTEMPTS or the profile's
        # max_attempts (3 in all when unset).
        self.config = Config(retries={"mode": "standard"}, connect_timeout=5, read_timeout=30,
                             max_pool_connections=max(10, workers))
        self._cache: dict[tuple[str, str], Any] = {}

    def get(self, service: str, region: str | None = None) -> Any:
        key = (service, region or self.home)
        if key not in self._cache:
            client = self.session.client(
                service, region_name=key[1], endpoint_url=self.endpoint_url, config=self.config)
            if service == "s3control" and self.endpoint_url:
                # botocore puts "<account>." in front of the host; an endpoint given by URL (a local
                # or S3-compatible server) serves S3 Control on the host it was given.
                client.meta.events.register("before-sign.s3-control", bare_endpoint_host)
            self._cache[key] = client
        return self._cache[key]


_ACCOUNT_LABEL = re.compile(r"^(\w+://)\d{12}\.")


def bare_endpoint_host(request: Any, **_: Any) -> None:
    request.url = _ACCOUNT_LABEL.sub(r"\1", request.url, count=1)


def _session(kwargs: dict[str, Any]) -> boto3.Session:
    try:
        return boto3.Session(**kwargs)
    except ProfileNotFound as exc:
        raise PostureError(str(exc)) from None


def describe_error(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'Error')}: {error.get('Message') or exc}"
    return f"{type(exc).__name__}: {exc}"


def _fatal(exc: Exception, doing: str) -> PostureError | None:
    """The run-stopping form of ``exc``, or None when it only concerns one call."""
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return PostureError(f"no AWS credentials ({exc}); set a profile or credentials")
    if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in CREDENTIAL_CODES:
        return PostureError(f"AWS rejected the credentials while {doing}: {describe_error(exc)}")
    if isinstance(exc, UNREACHABLE):
        return PostureError(f"cannot reach the endpoint while {doing}: {exc}")
    return None


def _caller_account(clients: _Clients) -> tuple[str | None, str | None]:
    """The account id from STS, or (None, reason) when STS answers with a non-credential error
    (an S3-compatible endpoint may have no STS). Errors before any answer (credentials that
    cannot be loaded, SSO tokens, transport) stop the run."""
    doing = "calling sts:GetCallerIdentity"
    try:
        return clients.get("sts").get_caller_identity()["Account"], None
    except ClientError as exc:
        fatal = _fatal(exc, doing)
        if fatal:
            raise fatal from None
        return None, describe_error(exc)
    except BotoCoreError as exc:
        raise _fatal(exc, doing) or PostureError(f"{doing}: {describe_error(exc)}") from None


def _list_buckets(clients: _Clients) -> list[str]:
    s3 = clients.get("s3")
    try:
        if s3.can_paginate("list_buckets"):
            pages = s3.get_paginator("list_buckets").paginate()
            return [b["Name"] for page in pages for b in page.get("Buckets", [])]
        return [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
    except (ClientError, BotoCoreError) as exc:
        raise _fatal(exc, "listing buckets") or PostureError(
            f"cannot list buckets: {describe_error(exc)}") from None


def _region_of(s3: Any, name: str) -> str:
    constraint = s3.get_bucket_location(Bucket=name).get("LocationConstraint")
    return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(constraint, constraint)


def _locate(pool: ThreadPoolExecutor, clients: _Clients, names: list[str],
            explicit: bool) -> dict[str, str | Exception]:
    """Each bucket's region, or the error GetBucketLocation gave. A named bucket that does not
    exist is a usage error; a listed one that vanished since is dropped."""
    s3 = clients.get("s3")
    futures = {name: pool.submit(_region_of, s3, name) for name in names}
    regions: dict[str, str | Exception] = {}
    for name, future in futures.items():
        try:
            regions[name] = future.result()
        except (ClientError, BotoCoreError) as exc:
            fatal = _fatal(exc, f"locating bucket {name}")
            if fatal:
                raise fatal from None
            if _code(exc) == "NoSuchBucket":
                if explicit:
                    raise PostureError(f"no such bucket: {name}") from None
                continue
            regions[name] = exc
    return regions


def _code(exc: Exception) -> str | None:
    return exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None


def _call(read: Read, client: Any, **kwargs: Any) -> tuple[dict[str, Any], str | None]:
    """(fields, None) on success or when the configuration is absent; ({}, reason) on error."""
    try:
        response = getattr(client, read.method)(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        if _code(exc) in read.absent:
            return dict.fromkeys(read.fields), None
        return {}, describe_error(exc)
    response.pop("ResponseMetadata", None)
    return read.extract(response), None


def _submit_reads(pool: ThreadPoolExecutor, clients: _Clients, name: str,
                  region: str | Exception) -> list[tuple[Read, Future]]:
    client = clients.get("s3", region if isinstance(region, str) else None)
    return [(read, pool.submit(_call, read, client, Bucket=name)) for read in READS]


def _bucket_record(name: str, region: str | Exception, account_id: str | None,
                   futures: list[tuple[Read, Future]]) -> dict[str, Any]:
    record: dict[str, Any] = {
        "ResourceType": BUCKET_TYPE, "ResourceId": f"arn:aws:s3:::{name}",
        "Arn": f"arn:aws:s3:::{name}", "Name": name, "AccountId": account_id,
    }
    errors: dict[str, str] = {}
    if isinstance(region, Exception):
        errors["Region"] = describe_error(region)
    else:
        record["Region"] = region
    for read, future in futures:
        fields, error = future.result()
        record.update(fields)
        errors.update(dict.fromkeys(read.fields, error) if error else {})
    record[ERRORS_KEY] = errors
    return record


ACCOUNT_READ = Read(
    "get_public_access_block", ("PublicAccessBlockConfiguration",),
    lambda r: {"PublicAccessBlockConfiguration": r.get("PublicAccessBlockConfiguration")},
    ("NoSuchPublicAccessBlockConfiguration",),
)


def _account_record(s3control: Any, account_id: str | None, account_error: str | None) -> dict[str, Any]:
    if account_id is None:
        fields, error = {}, f"the account id is not known ({account_error})"
    else:
        fields, error = _call(ACCOUNT_READ, s3control, AccountId=account_id)
    record = {"ResourceType": ACCOUNT_TYPE, "AccountId": account_id, **fields}
    record[ERRORS_KEY] = dict.fromkeys(ACCOUNT_READ.fields, error) if error else {}
    return record
