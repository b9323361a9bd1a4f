"""The ``[posture]`` table of s3tail's TOML config file.

    [posture]
    trusted_accounts = ["111122223333"]          # 12-digit account ids or 64-hex canonical ids
    enable = ["bucket.kms_encryption"]           # checks to add to the defaults
    disable = ["bucket.object_lock"]             # checks to drop

Other tables belong to other parts of s3tail and are not read here. A key or check id this
module does not know is an error naming it, so a typo never silently turns a check off.
"""
from __future__ import annotations

import os
import re
from typing import Any

from ..config import ConfigError, default_config_path, read_toml
from .checks import CHECKS
from .model import PostureConfig, PostureError

KEYS = ("trusted_accounts", "enable", "disable")
_TRUSTED = re.compile(r"^(\d{12}|[0-9a-f]{64})$")


def load_config(path: str | os.PathLike[str] | None = None) -> PostureConfig:
    """Read ``path``, or the default path when it exists (else the defaults)."""
    if path is None:
        path = default_config_path()
        if not os.path.isfile(path):
            return PostureConfig()
    try:
        document = read_toml(path)
    except ConfigError as exc:
        raise PostureError(str(exc)) from None
    return config_from_table(document.get("posture", {}), str(path))


def config_from_table(table: Any, source: str = "config") -> PostureConfig:
    """Validate a ``[posture]`` table (a dict) into a :class:`PostureConfig`."""
    if not isinstance(table, dict):
        raise PostureError(f"{source}: posture must be a table")
    for key in table:
        if key not in KEYS:
            raise PostureError(f"{source}: unknown key posture.{key} (known: {', '.join(KEYS)})")
    trusted = _strings(table, "trusted_accounts", source)
    for value in trusted:
        if not _TRUSTED.match(value):
            raise PostureError(f"{source}: posture.trusted_accounts: {value!r} is not a 12-digit "
                               "account id or a 64-hex canonical user id")
    enable, disable = _check_ids(table, "enable", source), _check_ids(table, "disable", source)
    both = enable & disable
    if both:
        raise PostureError(
            f"{source}: {', '.join(sorted(both))} is in both posture.enable and posture.disable")
    enabled = None
    if enable or disable:
        defaults = {c.id for c in CHECKS.values() if c.default_enabled}
        enabled = frozenset((defaults | enable) - disable)
    return PostureConfig(trusted_accounts=frozenset(trusted), enabled_checks=enabled)


def _strings(table: dict[str, Any], key: str, source: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PostureError(f"{source}: posture.{key} must be a list of strings")
    return value


def _check_ids(table: dict[str, Any], key: str, source: str) -> frozenset[str]:
    ids = frozenset(_strings(table, key, source))
    for check_id in sorted(ids):
        if check_id not in CHECKS:
            raise PostureError(f"{source}: posture.{key}: unknown check id {check_id!r}")
    return ids
