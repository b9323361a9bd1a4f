"""Redact credentials that appear in logged URIs: presigned signatures and session tokens."""
from __future__ import annotations

import re

REDACTED = "REDACTED"
_SECRET_PARAMS = re.compile(
    r"(?i)((?:^|[?&;])(?:x-amz-signature|x-amz-security-token|signature)=)[^&;\s\"#]*"
)


def redact_uri(value: str | None) -> str | None:
    """Replace the values of X-Amz-Signature, X-Amz-Security-Token and Signature (any case)."""
    if value is None or "=" not in value:
        return value
    lowered = value.lower()
    if "signature=" not in lowered and "security-token=" not in lowered:
        return value
    return _SECRET_PARAMS.sub(lambda m: m.group(1) + REDACTED, value)
