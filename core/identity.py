"""Decode a requester (ARN, canonical id, service principal) the way an auditor reads it."""
from __future__ import annotations

import re

_HEX64 = re.compile(r"^[0-9a-f]{60,64}$")
_ARN = re.compile(r"^arn:(aws[a-z-]*):(iam|sts)::(\d*):(.+)$")

# (account_id, principal_type, principal_name, session_name)
Identity = tuple


def _decode(requester: str | None) -> Identity:
    if requester is None:
        return (None, "anonymous", None, None)
    m = _ARN.match(requester)
    if m:
        account, resource = m.group(3) or None, m.group(4)
        kind, _, rest = resource.partition("/")
        if kind == "root" or resource == "root":
            return (account, "root", "root", None)
        if kind == "user":
            return (account, "user", rest.rsplit("/", 1)[-1] or None, None)
        if kind == "role":
            return (account, "role", rest.rsplit("/", 1)[-1] or None, None)
        if kind == "assumed-role":
            role, _, session = rest.partition("/")
            return (account, "assumed-role", role or None, session or None)
        if kind == "federated-user":
            return (account, "federated", rest or None, None)
        return (account, None, resource, None)
    if requester.startswith("svc:") or requester == "AmazonS3" or requester.endswith(".amazonaws.com"):
        name = requester[4:] if requester.startswith("svc:") else requester
        return (None, "service", name, None)
    if _HEX64.match(requester):
        return (None, "canonical", None, None)
    if requester.startswith("arn:"):
        parts = requester.split(":", 5)
        account = parts[4] if len(parts) > 4 and parts[4].isdigit() else None
        return (account, None, parts[-1] if len(parts) > 5 else None, None)
    return (None, None, None, None)


_cache: dict[str | None, Identity] = {}


def decode_requester(requester: str | None) -> Identity:
    """``(account_id, principal_type, principal_name, session_name)``, cached per distinct requester."""
    ident = _cache.get(requester)
    if ident is None:
        if len(_cache) > 200_000:
            _cache.clear()
        ident = _cache[requester] = _decode(requester)
    return ident
