"""Snapshot files: a JSON list, or JSON lines, of resource records.

Bucket records follow Panther's ``AWS.S3.Bucket`` shape (``Policy`` is a JSON *string*); a record
whose ``ResourceType`` is ``AWS.S3.AccountPublicAccessBlock`` carries the account-level block.
Records of any other ``ResourceType`` are ignored, so a mixed Panther resource export loads.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .model import ACCOUNT_TYPE, BUCKET_TYPE, PostureError, Snapshot


def load_snapshot(path: str | os.PathLike[str]) -> Snapshot:
    """Read a snapshot file. Raises :class:`PostureError` on a missing file or bad JSON."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PostureError(f"snapshot {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PostureError(f"snapshot {path}: cannot read ({exc})") from None
    return snapshot_from_records(_parse_records(text, path))


def _parse_records(text: str, path: Any) -> list[Any]:
    stripped = text.strip()
    if not stripped:
        return []
    if stripped.startswith("["):
        try:
            records = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise PostureError(f"snapshot {path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
        return records if isinstance(records, list) else [records]
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise PostureError(f"snapshot {path}: line {number} is not valid JSON ({exc.msg})") from None
    return records


def snapshot_from_records(records: list[Any]) -> Snapshot:
    snapshot = Snapshot()
    for number, record in enumerate(records, 1):
        if not isinstance(record, dict):
            raise PostureError(f"snapshot record {number} is not a JSON object")
        kind = record.get("ResourceType", BUCKET_TYPE)
        if kind == ACCOUNT_TYPE:
            snapshot.account = record
        elif kind == BUCKET_TYPE:
            snapshot.buckets.append(record)
    return snapshot


def save_snapshot(snapshot: Snapshot, path: str | os.PathLike[str]) -> None:
    """Write the snapshot as JSON lines (account record first). Raises :class:`PostureError`."""
    lines = [json.dumps(record, ensure_ascii=False, default=str) for record in snapshot.records()]
    try:
        Path(path).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    except OSError as exc:
        raise PostureError(f"cannot write snapshot {path}: {exc.strerror or exc}") from None
