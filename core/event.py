"""One normalized event model for S3 server access logs and CloudTrail S3 events.

An :class:`Event` is a tuple subclass (no dict per row): attribute access by name, cheap to
build in the parser's hot loop. The first ``len(CONTRACT_FIELDS)`` slots are the JSON contract
(their names are read by other tools and must not change); the rest are internal
(``ts`` epoch seconds, the ``raw`` line, its byte ``offset`` in the log object, and ``detail``,
the CloudTrail record dict or ``None``).
"""
from __future__ import annotations

import json
from collections import namedtuple
from typing import Any

# one encoder for every line of JSON (json.dumps with options makes one per call), with json.dumps's separators
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode

CONTRACT_FIELDS: tuple[str, ...] = (
    "source",            # "s3access" | "cloudtrail"
    "time",              # UTC ISO 8601, ends in Z
    "bucket",
    "key",               # URL-decoded once (+ is a space only on BATCH.DELETE.OBJECT rows)
    "key_raw",           # as logged
    "operation",         # native: REST.GET.OBJECT, or the CloudTrail eventName
    "action",            # CloudTrail eventName vocabulary for both types, None where unknown
    "requester",         # None when anonymous
    "remote_ip",
    "request_id",
    "http_status",
    "error_code",
    "bytes_sent",
    "object_size",
    "total_time",
    "turn_around_time",
    "referrer",
    "user_agent",
    "request_uri",
    "version_id",
    "host_id",
    "signature_version",
    "cipher_suite",
    "authentication_type",
    "host_header",
    "tls_version",
    "access_point_arn",
    "acl_required",
    "source_region",
    "bucket_owner",
    "extra_fields",      # list of unknown trailing fields
    "account_id",        # decoded identity
    "principal_type",    # anonymous, root, user, role, assumed-role, federated, service, canonical
    "principal_name",
    "session_name",
    "log_object",        # file path or s3:// URI
    "log_line",          # 1-based line (CloudTrail: 1-based record index in the file)
)
INTERNAL_FIELDS: tuple[str, ...] = ("ts", "raw", "offset", "detail")
ALL_FIELDS = CONTRACT_FIELDS + INTERNAL_FIELDS
N_CONTRACT = len(CONTRACT_FIELDS)

SOURCES = ("s3access", "cloudtrail")
PRINCIPAL_TYPES = ("anonymous", "root", "user", "role", "assumed-role", "federated", "service", "canonical")
INT_FIELDS = ("http_status", "bytes_sent", "object_size", "total_time", "turn_around_time", "log_line")

_Base = namedtuple("_Base", ALL_FIELDS)  # type: ignore[misc]


class Event(_Base):
    """A normalized request event. Build with ``Event._make(values)`` in ``ALL_FIELDS`` order."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract: exactly ``CONTRACT_FIELDS``."""
        return dict(zip(CONTRACT_FIELDS, self))

    def to_json(self) -> str:
        return _ENCODE(self.to_dict())

    @property
    def actor(self) -> str | None:
        """Who did it: the requester, or the remote IP for anonymous requests."""
        return self.requester if self.requester is not None else self.remote_ip

    @property
    def who(self) -> str:
        """A short human name: session, else principal name, else requester, else anonymous."""
        if self.requester is None:
            return "anonymous"
        return self.session_name or self.principal_name or self.requester


FIELD_INDEX = {name: i for i, name in enumerate(ALL_FIELDS)}
EMPTY = (None,) * len(ALL_FIELDS)


def make_event(**fields: Any) -> Event:
    """Build an event from keyword fields (tests, the demo, CloudTrail); missing ones are None."""
    values = list(EMPTY)
    for name, value in fields.items():
        values[FIELD_INDEX[name]] = value
    if values[FIELD_INDEX["extra_fields"]] is None:
        values[FIELD_INDEX["extra_fields"]] = []
    return Event._make(values)


class Malformed:
    """A line or record that could not be parsed; reported with its origin, never dropped."""

    __slots__ = ("log_object", "log_line", "reason", "raw")

    def __init__(self, log_object: str, log_line: int, reason: str, raw: str):
        self.log_object = log_object
        self.log_line = log_line
        self.reason = reason
        self.raw = raw

    def __repr__(self) -> str:
        return f"Malformed({self.log_object}:{self.log_line}: {self.reason})"

    def to_dict(self) -> dict[str, Any]:
        return {"log_object": self.log_object, "log_line": self.log_line, "reason": self.reason, "raw": self.raw}


class Skipped:
    """A well-formed record that is not an S3 event (a CloudTrail record of another service)."""

    __slots__ = ("log_object", "log_line", "reason")

    def __init__(self, log_object: str, log_line: int, reason: str):
        self.log_object = log_object
        self.log_line = log_line
        self.reason = reason

    def __repr__(self) -> str:
        return f"Skipped({self.log_object}:{self.log_line}: {self.reason})"


class MalformedError(ValueError):
    """Raised by the line parsers; the caller turns it into a :class:`Malformed`."""
