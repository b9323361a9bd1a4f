"""s3tail's TOML config file: the detection-rule sections (other tables belong to other parts).

    [rules."s3.enumeration"]        # one table per rule id (quoted: ids contain a dot)
    enabled = true
    severity = "high"               # info, low, medium, high, critical
    threshold = 30
    window = 5                      # minutes (event time)
    dedup = 60                      # minutes

    public_buckets = ["acme-public-*"]
    sensitive_patterns = ["*.sqlite", "*backup*"]
    trusted_accounts = ["111122223333"]
    log_prefixes = ["s3://acme-logs/s3/"]

    [allowlists.ip]                 # bucket glob -> allowed CIDRs (s3.ip_not_allowlisted)
    "acme-internal-*" = ["10.0.0.0/8"]
    [allowlists.requesters]         # bucket glob -> allowed requester ARN globs (s3.unknown_requester)
    "acme-datalake-*" = ["arn:aws:sts::123456789012:assumed-role/etl-*"]

Top-level tables this module does not own (``posture``, ``keys``, ``tui``...) are left alone; a key
it does not know inside its own sections is an error naming it, so a typo never turns a rule off.
"""
from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from pathlib import Path
from typing import Any

SEVERITIES = ("info", "low", "medium", "high", "critical")
RULE_KEYS = ("enabled", "severity", "threshold", "window", "dedup", "distinct")
LIST_KEYS = ("public_buckets", "sensitive_patterns", "trusted_accounts", "log_prefixes")
OWN_KEYS = ("rules", "allowlists") + LIST_KEYS
ALLOWLIST_KEYS = ("ip", "requesters")
_ACCOUNT = re.compile(r"^\d{12}$")


class ConfigError(Exception):
    """A config file that cannot be read or has a bad value; the message names the key."""


def default_config_path() -> str:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return str(Path(base) / "s3tail" / "config.toml")


def load_config(path: str | None) -> dict:
    """Read and validate the config: ``path``, or the default path when it exists (else ``{}``)."""
    if path is None:
        path = default_config_path()
        if not os.path.isfile(path):
            return {}
    document = read_toml(path)
    try:
        return validate_config(document)
    except ConfigError as exc:
        raise ConfigError(f"config {path}: {exc}") from None


def read_toml(path: str | os.PathLike) -> dict:
    """The parsed TOML document at ``path``; a one-line :class:`ConfigError` when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config {path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"config {path}: is a directory") from None
    except OSError as exc:
        raise ConfigError(f"config {path}: cannot read ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path}: not valid TOML ({exc})") from None


def validate_config(doc: Any) -> dict:
    """Check the detection sections of a parsed config; returns the same dict."""
    if not isinstance(doc, dict):
        raise ConfigError("config must be a table")
    for key, value in doc.items():
        if key not in OWN_KEYS and not isinstance(value, dict):
            raise ConfigError(f"{key}: unknown key (known: {', '.join(OWN_KEYS)} and other parts' tables)")
    for key in LIST_KEYS:
        if key in doc:
            _strings(doc[key], key)
    for value in doc.get("trusted_accounts", ()):
        if not _ACCOUNT.match(value):
            raise ConfigError(f"trusted_accounts: {value!r} is not a 12-digit account id")
    _allowlists(doc.get("allowlists", {}))
    _rules(doc.get("rules", {}))
    return doc


def _param(name: str, default: Any, value: Any) -> None:
    """A rule-specific key: same type as its default (booleans; numbers >= 0; shares within 0..1)."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: expected true or false")
    elif not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0 \
            or (isinstance(default, float) and value > 1):
        raise ConfigError(f"{name}: expected a number" + (" from 0 to 1" if isinstance(default, float) else " >= 0"))


def _strings(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{name}: expected a list of strings")
    return value


def _table(value: Any, name: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"{name}: expected a table")
    return value


def _allowlists(table: Any) -> None:
    _table(table, "allowlists")
    for key, value in table.items():
        if key not in ALLOWLIST_KEYS:
            raise ConfigError(f"allowlists.{key}: unknown key (known: {', '.join(ALLOWLIST_KEYS)})")
        for bucket, items in _table(value, f"allowlists.{key}").items():
            name = f"allowlists.{key}.{bucket}"
            _strings(items, name)
            if key == "ip":
                for cidr in items:
                    try:
                        ipaddress.ip_network(cidr, strict=False)
                    except ValueError:
                        raise ConfigError(f"{name}: {cidr!r} is not an IP network (CIDR)") from None


def _rules(table: Any) -> None:
    from .rules.builtin import RULE_IDS, build_rules

    _table(table, "rules")
    built = build_rules({})
    distinct_ok = {r.id for r in built if r.distinct is not None}
    params = {r.id: r.params for r in built}  # rule-specific keys (skip_services, object_cap, ...)
    for rule_id, over in table.items():
        if rule_id not in RULE_IDS and not rule_id.startswith("user."):
            hint = ' (quote dotted ids: [rules."s3.enumeration"])' if rule_id == "s3" else ""
            raise ConfigError(f"rules.{rule_id}: unknown rule{hint}; `s3tail rules` lists them")
        over = _table(over, f"rules.{rule_id}")
        for key, value in over.items():
            name = f"rules.{rule_id}.{key}"
            default = params.get(rule_id, {}).get(key, ...)
            if default is not ...:
                _param(name, default, value)
                continue
            if key not in RULE_KEYS or (key == "distinct" and rule_id not in distinct_ok):
                raise ConfigError(f"{name}: unknown key (known: {', '.join(k for k in RULE_KEYS if k != 'distinct')}"
                                  + (", distinct" if rule_id in distinct_ok else "")
                                  + "".join(f", {k}" for k in params.get(rule_id, {})) + ")")
            if key == "enabled" and not isinstance(value, bool):
                raise ConfigError(f"{name}: expected true or false")
            if key == "severity" and value not in SEVERITIES:
                raise ConfigError(f"{name}: expected one of {', '.join(SEVERITIES)}")
            if key in ("threshold", "distinct") and (not isinstance(value, int) or isinstance(value, bool)
                                                     or value < 1):
                raise ConfigError(f"{name}: expected an integer >= 1")
            if key in ("window", "dedup") and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                               or value <= 0):
                raise ConfigError(f"{name}: expected a positive number of minutes")
