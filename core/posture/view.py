"""What the checks see of one bucket: its record's fields, read in three values.

A field is *known* when the record has it (``null`` means "not configured", as in Panther's
shape), *unknown* when the record lacks the key or ``CollectionErrors`` names it (the call that
fills it failed). Reading an unknown field raises :class:`Unknown`, which the check runner turns
into an ``unknown`` result carrying the reason; a check reads a field only when its verdict
depends on it, so a missing field never hides a verdict that is certain without it.
"""
from __future__ import annotations

from typing import Any

from . import policy
from .model import ACCOUNT_FIELD_ACTIONS, BUCKET_FIELD_ACTIONS, ERRORS_KEY

BLOCK_KEY = "PublicAccessBlockConfiguration"
BLOCK_FLAGS: tuple[str, ...] = (
    "BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets",
)
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"
PUBLIC_GROUPS = {ALL_USERS: "AllUsers", AUTHENTICATED_USERS: "AuthenticatedUsers"}


def grantee_of(grant: dict[str, Any]) -> dict[str, Any]:
    grantee = grant.get("Grantee")
    return grantee if isinstance(grantee, dict) else {}


class Unknown(Exception):
    """A field the verdict needs could not be read: the message says why, ``hint`` what to do."""

    def __init__(self, reason: str, hint: str) -> None:
        super().__init__(reason)
        self.hint = hint

    def explained(self, context: str) -> Unknown:
        """The same unknown, its reason put after what the check had already found."""
        return Unknown(f"{context}: {self}", self.hint)


class Record:
    """Three-valued access to one snapshot record (bucket or account)."""

    def __init__(self, record: dict[str, Any] | None, account: bool = False) -> None:
        self.raw = record
        self.label = "account-level " if account else ""
        self.actions = ACCOUNT_FIELD_ACTIONS if account else BUCKET_FIELD_ACTIONS

    def field(self, key: str) -> Any:
        errors = (self.raw or {}).get(ERRORS_KEY) or {}
        if key in errors:
            action = self.actions.get(key, "the call that reads it")
            raise Unknown(f"{self.label}{key} could not be read: {errors[key]}",
                          f"allow {action} for the scanning principal, then run again")
        if key not in (self.raw or {}):
            raise Unknown(f"{self.label}{key} is not in the snapshot",
                          f"add {self.label}{key} to the snapshot (a live run with --save writes it)")
        return self.raw[key]

    def block_flags(self) -> dict[str, bool]:
        """The four public access block flags (all off when no block is configured)."""
        config = self.field(BLOCK_KEY) or {}
        return {flag: bool(config.get(flag)) for flag in BLOCK_FLAGS}


class BucketView(Record):
    def __init__(
        self,
        record: dict[str, Any],
        name: str,
        account: dict[str, Any] | None,
        *,
        has_account_record: bool,
        log_evidence: list[str],
        trusted: frozenset[str],
    ) -> None:
        super().__init__(record)
        self.name = name
        self.account = Record(account, account=True)
        self.has_account_record = has_account_record
        self.log_evidence = log_evidence
        self.trusted = trusted

    # --- identity ---------------------------------------------------------------------------

    @property
    def owner_account(self) -> str | None:
        """The bucket's account: its ``AccountId``, else the account record's."""
        for source in (self.raw, self.account.raw or {}):
            value = source.get("AccountId")
            if value:
                return str(value)
        return None

    # --- public access blocks ---------------------------------------------------------------

    def blocked(self, flag: str, seen: str = "") -> bool:
        """True when the bucket's or the account's block has ``flag`` on. An account block
        absent from the snapshot counts as off; one that could not be read is unknown (its
        reason follows ``seen``, what the caller found exposed, when given)."""
        unknowns = []
        sources = [self.block_flags]
        if self.has_account_record:
            sources.append(self.account.block_flags)
        for flags in sources:
            try:
                if flags()[flag]:
                    return True
            except Unknown as exc:
                unknowns.append(exc)
        if unknowns:
            raise unknowns[0].explained(f"{seen}; whether {flag} applies is unknown") if seen \
                else unknowns[0]
        return False

    def block_note(self) -> str:
        return "" if self.has_account_record else " (no account-level block in the snapshot)"

    # --- ACL --------------------------------------------------------------------------------

    def grants(self) -> list[dict[str, Any]]:
        return [g for g in self.field("Grants") or [] if isinstance(g, dict)]

    def public_grants(self, permissions: frozenset[str]) -> list[str]:
        """``Group:PERMISSION`` for grants to AllUsers/AuthenticatedUsers with one of ``permissions``."""
        found = []
        for grant in self.grants():
            group = PUBLIC_GROUPS.get(str(grantee_of(grant).get("URI")))
            if group and grant.get("Permission") in permissions:
                found.append(f"{group}:{grant['Permission']}")
        return found

    def foreign_grantees(self, permissions: frozenset[str], exempt: frozenset[str]) -> list[str]:
        """Canonical users or e-mail grantees other than the owner (and ``exempt``) holding one
        of ``permissions``."""
        owner = (self.field("Owner") or {}).get("ID")
        found = []
        for grant in self.grants():
            grantee = grantee_of(grant)
            if grantee.get("URI") or grant.get("Permission") not in permissions:
                continue
            who = grantee.get("ID") or grantee.get("EmailAddress")
            if who and who != owner and who not in exempt:
                found.append(f"{who}:{grant['Permission']}")
        return found

    # --- policy -----------------------------------------------------------------------------

    def statements(self) -> list[policy.Statement]:
        try:
            return policy.parse_policy(self.field("Policy"))
        except policy.PolicyError as exc:
            raise Unknown(str(exc), "fix the bucket policy document (aws s3api get-bucket-policy)") from None

    def has_policy(self) -> bool:
        return self.field("Policy") is not None

    def outside_accounts(self, accounts: set[str], exempt: frozenset[str]) -> set[str]:
        """Those of ``accounts`` that are neither the bucket's own nor ``exempt``. Unknown when
        the bucket's account is not known and some account is not exempt."""
        others = accounts - exempt
        owner = self.owner_account
        if owner is None and others:
            raise Unknown("the bucket's account is not known, so these accounts cannot be judged: "
                          + ", ".join(sorted(others)),
                          "add AccountId to the bucket record, or list the accounts in "
                          "[posture] trusted_accounts")
        return others - {owner}
