"""CloudTrail S3 events -> :class:`Event`. Reads ``{"Records": [...]}`` documents, lists, and JSON lines."""
from __future__ import annotations

import json
import re
from calendar import timegm
from datetime import datetime, timezone
from typing import Any, Iterator

from .event import Event, MalformedError
from .identity import decode_requester

SOURCE = "cloudtrail"
S3_EVENT_SOURCES = frozenset(("s3.amazonaws.com", "s3-outposts.amazonaws.com"))

# S3 error codes -> HTTP status (S3 API reference, "Error responses").
ERROR_STATUS = {
    "AccessDenied": 403, "AllAccessDisabled": 403, "InvalidAccessKeyId": 403, "SignatureDoesNotMatch": 403,
    "RequestTimeTooSkewed": 403, "AccountProblem": 403, "InvalidObjectState": 403, "VpceAccessDenied": 403,
    "InvalidPayer": 403, "NotSignedUp": 403, "CrossLocationLoggingProhibited": 403,
    "NoSuchKey": 404, "NoSuchBucket": 404, "NoSuchUpload": 404, "NoSuchVersion": 404,
    "NoSuchBucketPolicy": 404, "NoSuchLifecycleConfiguration": 404, "NoSuchTagSet": 404,
    "NoSuchCORSConfiguration": 404, "NoSuchWebsiteConfiguration": 404,
    "NoSuchPublicAccessBlockConfiguration": 404, "ServerSideEncryptionConfigurationNotFoundError": 404,
    "ObjectLockConfigurationNotFoundError": 404, "ReplicationConfigurationNotFoundError": 404,
    "OwnershipControlsNotFoundError": 404, "NoSuchAccessPoint": 404, "NoSuchConfiguration": 404,
    "MethodNotAllowed": 405, "MissingContentLength": 411, "PreconditionFailed": 412,
    "InvalidRange": 416, "BucketNotEmpty": 409, "BucketAlreadyExists": 409,
    "BucketAlreadyOwnedByYou": 409, "OperationAborted": 409, "InvalidBucketState": 409,
    "RestoreAlreadyInProgress": 409, "InvalidRequest": 400, "InvalidArgument": 400,
    "MalformedXML": 400, "MalformedPolicy": 400, "MalformedACLError": 400, "InvalidBucketName": 400,
    "EntityTooLarge": 400, "EntityTooSmall": 400, "ExpiredToken": 400, "InvalidToken": 400,
    "RequestTimeout": 400, "TooManyBuckets": 400, "KeyTooLongError": 400, "InvalidDigest": 400,
    "BadDigest": 400, "IllegalVersioningConfigurationException": 400, "InvalidPolicyDocument": 400,
    "NotModified": 304, "PermanentRedirect": 301, "TemporaryRedirect": 307, "Redirect": 307,
    "InternalError": 500, "NotImplemented": 501, "ServiceUnavailable": 503, "SlowDown": 503,
}

_TYPE_MAP = {
    "Root": "root", "IAMUser": "user", "AssumedRole": "assumed-role", "FederatedUser": "federated",
    "AWSService": "service", "IdentityCenterUser": "user",
}
_new = tuple.__new__


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    if value is None or value == "" or value == "-":
        return None
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def parse_time(value: Any) -> tuple[str, int]:
    """CloudTrail eventTime (ISO 8601, any offset) -> (``YYYY-mm-ddTHH:MM:SSZ``, epoch seconds)."""
    if not isinstance(value, str):
        raise MalformedError("eventTime missing")
    text = value.strip()
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise MalformedError(f"bad eventTime {value[:40]!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    epoch = timegm(dt.utctimetuple())
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), epoch


def _bucket_key_from_resources(resources: Any) -> tuple[str | None, str | None, str | None]:
    bucket = key = access_point = None
    if not isinstance(resources, list):
        return None, None, None
    for res in resources:
        res = _dict(res)
        arn = res.get("ARN") or res.get("arn")
        if not isinstance(arn, str):
            continue
        rtype = res.get("type")
        if rtype == "AWS::S3::AccessPoint":
            access_point = arn
        elif arn.startswith("arn:aws") and ":s3:::" in arn:
            path = arn.split(":s3:::", 1)[1]
            b, _, k = path.partition("/")
            bucket = bucket or b or None
            if rtype == "AWS::S3::Object" and key is None and k:
                key = k
    return bucket, key, access_point


def status_for(error_code: str | None) -> int | None:
    if error_code is None:
        return 200
    return ERROR_STATUS.get(error_code)


def parse_record(rec: Any, log_object: str = "-", index: int = 0) -> Event | None:
    """One CloudTrail record -> Event; ``None`` for a record of another service (skipped)."""
    if not isinstance(rec, dict):
        raise MalformedError("record is not a JSON object")
    source = rec.get("eventSource")
    if not isinstance(source, str) or "eventName" not in rec:
        raise MalformedError("not a CloudTrail record (no eventSource/eventName)")
    if source not in S3_EVENT_SOURCES:
        return None
    iso, epoch = parse_time(rec.get("eventTime"))
    ident = _dict(rec.get("userIdentity"))
    params = _dict(rec.get("requestParameters"))
    extra = _dict(rec.get("additionalEventData"))
    tls = _dict(rec.get("tlsDetails"))
    response = _dict(rec.get("responseElements"))

    anonymous = ident.get("accountId") == "ANONYMOUS_PRINCIPAL" or ident.get("type") == "Anonymous"
    requester = None
    if not anonymous:
        requester = _str(ident.get("arn")) or _str(ident.get("invokedBy")) or _str(ident.get("principalId"))
    account_id, ptype, pname, session = decode_requester(requester)
    if anonymous:
        account_id, ptype = None, "anonymous"
    else:
        ptype = _TYPE_MAP.get(ident.get("type"), ptype)
        account_id = account_id or _str(ident.get("accountId"))
        if ptype == "service":
            pname = pname or _str(ident.get("invokedBy"))
        if ptype == "assumed-role":
            issuer = _dict(_dict(ident.get("sessionContext")).get("sessionIssuer"))
            pname = _str(issuer.get("userName")) or pname
        if ptype == "user" and not pname:
            pname = _str(ident.get("userName"))

    r_bucket, r_key, access_point = _bucket_key_from_resources(rec.get("resources"))
    bucket = _str(params.get("bucketName")) or r_bucket
    key = _str(params.get("key")) or r_key
    host = params.get("Host", params.get("host"))
    if isinstance(host, list):
        host = host[0] if host else None
    error_code = _str(rec.get("errorCode"))
    name = _str(rec.get("eventName"))
    return _new(Event, (
        SOURCE, iso, bucket, key, key, name, name, requester, _str(rec.get("sourceIPAddress")),
        _str(rec.get("requestID")), status_for(error_code), error_code,
        _int(extra.get("bytesTransferredOut")), None, None, None, None, _str(rec.get("userAgent")),
        None, _str(params.get("versionId")) or _str(response.get("x-amz-version-id")),
        _str(extra.get("x-amz-id-2")), _str(extra.get("SignatureVersion")),
        _str(extra.get("CipherSuite")) or _str(tls.get("cipherSuite")),
        _str(extra.get("AuthenticationMethod")),
        _str(tls.get("clientProvidedHostHeader")) or _str(host), _str(tls.get("tlsVersion")),
        access_point, _str(extra.get("aclRequired")), _str(rec.get("awsRegion")),
        _str(rec.get("recipientAccountId")), [], account_id, ptype, pname, session,
        log_object, index, epoch, None, -1, rec,
    ))


_RECORDS_START = re.compile(r'\{\s*"Records"\s*:\s*\[')
_decoder = json.JSONDecoder()


def iter_json_records(text: str) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, record)`` or ``(index, MalformedError)`` from a CloudTrail file's text.

    A ``{"Records": [...]}`` document (even truncated: what was readable is kept), a JSON list, a
    single record, or JSON lines (index = line number).
    """
    stripped = text.lstrip()
    if not stripped:
        return
    try:
        doc = json.loads(text)
    except ValueError:
        doc = _decoder  # sentinel: not one document
    if doc is not _decoder:
        if isinstance(doc, dict) and isinstance(doc.get("Records"), list):
            yield from enumerate(doc["Records"], 1)
        elif isinstance(doc, list):
            yield from enumerate(doc, 1)
        else:
            yield 1, doc
        return
    m = _RECORDS_START.match(stripped)
    if m and not _looks_like_lines(stripped):
        yield from _iter_truncated(stripped, m.end())
        return
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as exc:
            yield lineno, MalformedError(f"invalid JSON: {exc.msg} at column {exc.colno}")
            continue
        if isinstance(rec, dict) and isinstance(rec.get("Records"), list):
            yield from ((lineno, r) for r in rec["Records"])
        else:
            yield lineno, rec


def _looks_like_lines(text: str) -> bool:
    """JSON lines: the first line is a complete JSON value on its own."""
    first = text.split("\n", 1)[0]
    try:
        json.loads(first)
        return True
    except ValueError:
        return False


def _iter_truncated(text: str, pos: int) -> Iterator[tuple[int, Any]]:
    index = 0
    n = len(text)
    while True:
        while pos < n and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= n or text[pos] == "]":
            if pos >= n:
                yield index + 1, MalformedError(f"truncated JSON after record {index}")
            return
        try:
            rec, pos = _decoder.raw_decode(text, pos)
        except ValueError:
            yield index + 1, MalformedError(f"truncated or invalid JSON after record {index}")
            return
        index += 1
        yield index, rec
