"""Reading bucket policies: principals, conditions and actions of IAM policy statements.

Only what the posture checks need, with AWS's own definition of a "public" policy as the guide
(S3 User Guide, "The meaning of public"): a statement with a wildcard principal is public unless
one of its conditions pins who may use it to fixed values (an account, organization, VPC,
VPC endpoint, source ARN, user id, KMS key or a bounded set of source IPs).
"""
from __future__ import annotations

import ipaddress
import json
import re
from fnmatch import fnmatchcase
from typing import Any, Iterable

Statement = dict[str, Any]

_ACCOUNT_ID = re.compile(r"^\d{12}$")
_ARN_ACCOUNT = re.compile(r"^arn:aws[\w-]*:(?:iam|sts)::(\d{12}):")

# Condition keys that restrict who can use a wildcard-principal statement when their values
# are fixed (lower case; IAM keys are case-insensitive).
RESTRICTING_KEYS = frozenset(k.lower() for k in (
    "aws:SourceAccount", "aws:SourceOwner", "aws:SourceArn", "aws:SourceOrgID",
    "aws:SourceOrgPaths", "aws:PrincipalAccount", "aws:PrincipalArn", "aws:PrincipalOrgID",
    "aws:PrincipalOrgPaths", "aws:SourceVpc", "aws:SourceVpce", "aws:userid",
    "s3:x-amz-server-side-encryption-aws-kms-key-id", "s3:DataAccessPointAccount",
    "s3:DataAccessPointArn", "aws:SourceIp",
))
ACCOUNT_KEYS = frozenset(("aws:principalaccount", "aws:sourceaccount"))
_ARN_KEYS = frozenset(("aws:sourcearn", "aws:principalarn", "s3:dataaccesspointarn"))
_SOURCE_IP = "aws:sourceip"


class PolicyError(ValueError):
    """The policy text is not a JSON policy document."""


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def parse_policy(text: Any) -> list[Statement]:
    """The statements of a policy given as a JSON string (Panther's shape) or a dict."""
    if text is None:
        return []
    try:
        doc = json.loads(text) if isinstance(text, str) else text
    except json.JSONDecodeError as exc:
        raise PolicyError(f"policy is not valid JSON ({exc.msg})") from None
    if not isinstance(doc, dict):
        raise PolicyError("policy is not a JSON object")
    statements = as_list(doc.get("Statement"))
    if not all(isinstance(s, dict) for s in statements):
        raise PolicyError("policy has a Statement that is not an object")
    return statements


def describe(stmt: Statement, index: int) -> str:
    """A short name for a statement in details: its Sid, else its position."""
    return f"statement {stmt['Sid']!r}" if stmt.get("Sid") else f"statement #{index + 1}"


def is_allow(stmt: Statement) -> bool:
    return str(stmt.get("Effect", "")).lower() == "allow"


def is_deny(stmt: Statement) -> bool:
    return str(stmt.get("Effect", "")).lower() == "deny"


# --- principals -------------------------------------------------------------------------------

def principals(stmt: Statement, kind: str = "AWS") -> list[str]:
    """The principals of one kind (``AWS``, ``Service``, ``CanonicalUser``); ``"*"`` counts as AWS."""
    principal = stmt.get("Principal")
    if principal == "*":
        return ["*"] if kind == "AWS" else []
    if isinstance(principal, dict):
        return [str(p) for p in as_list(principal.get(kind))]
    return []


def _is_wildcard(principal: str) -> bool:
    return principal == "*" or bool(re.match(r"^arn:aws[\w-]*:iam::\*:", principal))


def has_wildcard_principal(stmt: Statement) -> bool:
    """Everyone: ``*``, ``{"AWS": "*"}``, ``arn:aws:iam::*:root``, ``CanonicalUser *``, or
    an Allow with ``NotPrincipal`` (everyone but a few)."""
    if is_allow(stmt) and "NotPrincipal" in stmt:
        return True
    candidates = principals(stmt, "AWS") + principals(stmt, "CanonicalUser")
    return any(_is_wildcard(p) for p in candidates)


def account_of(principal: str) -> str | None:
    """The 12-digit account of an AWS principal (account id or IAM/STS ARN), else None."""
    if _ACCOUNT_ID.match(principal):
        return principal
    match = _ARN_ACCOUNT.match(principal)
    return match.group(1) if match else None


def named_accounts(stmt: Statement) -> set[str]:
    """Accounts a statement names: explicit AWS principals, or for a wildcard principal the
    fixed values of ``aws:PrincipalAccount``/``aws:SourceAccount``."""
    accounts = {a for a in map(account_of, principals(stmt, "AWS")) if a}
    if has_wildcard_principal(stmt):
        accounts |= {v for v in condition_values(stmt, ACCOUNT_KEYS) if _ACCOUNT_ID.match(v)}
    return accounts


# --- conditions -------------------------------------------------------------------------------

def _positive_conditions(stmt: Statement) -> Iterable[tuple[str, list[str]]]:
    """(key, values) of conditions that must match for the statement to apply. Negated
    operators, ``...IfExists`` (true when the key is absent) and ``Null`` restrict nothing."""
    condition = stmt.get("Condition")
    if not isinstance(condition, dict):
        return
    for operator, block in condition.items():
        op = operator.split(":")[-1].lower()
        if "not" in op or op.endswith("ifexists") or op == "null" or not isinstance(block, dict):
            continue
        for key, values in block.items():
            yield key.lower(), [str(v) for v in as_list(values)]


def condition_values(stmt: Statement, keys: frozenset[str]) -> list[str]:
    return [v for key, values in _positive_conditions(stmt) if key in keys for v in values]


def _fixed(key: str, value: str) -> bool:
    if key == _SOURCE_IP:
        return _bounded_network(value)
    if key in _ARN_KEYS:  # an ARN is fixed when its account field is
        parts = value.split(":")
        return len(parts) > 4 and bool(parts[4]) and not re.search(r"[*?]", parts[4])
    return bool(value) and not re.search(r"[*?]", value)


def _bounded_network(value: str) -> bool:
    """AWS treats source-IP ranges wider than /8 (IPv4) or /32 (IPv6) as public."""
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return net.is_private or net.prefixlen >= (8 if net.version == 4 else 32)


def restricting_conditions(stmt: Statement) -> list[str]:
    """The condition keys that pin a wildcard-principal statement to fixed callers."""
    found = []
    for key, values in _positive_conditions(stmt):
        if key in RESTRICTING_KEYS and values and all(_fixed(key, v) for v in values):
            found.append(key)
    return found


def is_public_statement(stmt: Statement) -> bool:
    """An Allow to everyone with no condition that restricts who."""
    return is_allow(stmt) and has_wildcard_principal(stmt) and not restricting_conditions(stmt)


# --- actions ----------------------------------------------------------------------------------

def actions(stmt: Statement) -> list[str]:
    return [str(a) for a in as_list(stmt.get("Action"))]


def grants_any(stmt: Statement, wanted: Iterable[str]) -> list[str]:
    """Which of ``wanted`` (concrete actions) the statement's Action patterns allow."""
    patterns = [a.lower() for a in actions(stmt)]
    if "NotAction" in stmt:  # everything but the listed actions
        excluded = [a.lower() for a in as_list(stmt["NotAction"])]
        return [w for w in wanted if not any(fnmatchcase(w.lower(), p) for p in excluded)]
    return [w for w in wanted if any(fnmatchcase(w.lower(), p) for p in patterns)]


def covers_all_actions(stmt: Statement) -> bool:
    return any(a in ("*", "s3:*") for a in actions(stmt))


def denies_plain_http(stmt: Statement) -> bool:
    """A Deny to everyone when ``aws:SecureTransport`` is false."""
    if not (is_deny(stmt) and has_wildcard_principal(stmt)):
        return False
    condition = stmt.get("Condition")
    if not isinstance(condition, dict):
        return False
    for operator, block in condition.items():
        if operator.lower() in ("bool", "boolifexists") and isinstance(block, dict):
            for key, values in block.items():
                if key.lower() == "aws:securetransport" and any(
                    str(v).lower() == "false" for v in as_list(values)
                ):
                    return True
    return False
