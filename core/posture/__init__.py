"""Bucket posture: misconfiguration checks over live AWS state or a snapshot file.

The API the terminal app calls (from a worker thread; nothing here imports Textual)::

    snapshot = collect_live({"profile_name": "prod"})    # or load_snapshot("buckets.jsonl")
    results = evaluate(snapshot, load_config())           # list[CheckResult]
    [r.to_dict() for r in results if r.status != "pass"]

Every problem a user can fix (missing file, bad JSON or TOML, credentials, endpoint, unknown
bucket) raises :class:`PostureError` with a one-line message.
"""
from .checks import CHECKS, Check, evaluate
from .collect import collect_live
from .config import default_config_path, load_config
from .model import (
    RESULT_KEYS,
    SEVERITIES,
    CheckResult,
    PostureConfig,
    PostureError,
    Snapshot,
)
from .snapshot import load_snapshot, save_snapshot, snapshot_from_records

__all__ = [
    "CHECKS", "Check", "CheckResult", "PostureConfig", "PostureError", "RESULT_KEYS", "SEVERITIES",
    "Snapshot", "collect_live", "default_config_path", "evaluate", "load_config", "load_snapshot",
    "save_snapshot", "snapshot_from_records",
]
