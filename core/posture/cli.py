"""``s3tail posture``: check buckets for misconfigurations, live or from a snapshot file."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from ..cli import UsageError
from .checks import evaluate
from .collect import collect_live
from .config import default_config_path, load_config
from .model import CheckResult, PostureError, Snapshot
from .render import write_jsonl, write_text
from .snapshot import load_snapshot, save_snapshot

_LIVE_OPTIONS = ("profile", "region", "endpoint_url", "save")


def configure(parser: argparse.ArgumentParser) -> None:
    source = parser.add_argument_group("where the bucket configuration comes from")
    source.add_argument("--snapshot", metavar="FILE",
                        help="read bucket records (JSON list or JSON lines, Panther's AWS.S3.Bucket "
                             "shape) instead of calling AWS")
    source.add_argument("--profile", metavar="P", help="AWS profile for a live run")
    source.add_argument("--region", metavar="R", help="home region for a live run")
    source.add_argument("--endpoint-url", metavar="URL",
                        help="endpoint for S3, S3 Control and STS (LocalStack, moto, ...)")
    source.add_argument("--save", metavar="FILE",
                        help="also write what a live run collected, to load later with --snapshot")
    parser.add_argument("--bucket", metavar="NAME", nargs="+", action="extend",
                        help="only these buckets (repeatable)")
    parser.add_argument("--all", action="store_true", help="show passing results too")
    parser.add_argument("--format", choices=("jsonl", "text"), default="text",
                        help="jsonl: one JSON object per result; text: a table (default)")
    parser.add_argument("--config", metavar="FILE",
                        help=f"TOML config with a [posture] table (default: {default_config_path()}, "
                             "if it exists)")


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        snapshot = _snapshot(args)
        if args.save:
            save_snapshot(snapshot, args.save)
    except PostureError as exc:
        raise UsageError(str(exc)) from None
    results = _only_buckets(evaluate(snapshot, config), args.bucket)
    shown = results if args.all else [r for r in results if r.status != "pass"]
    if args.format == "jsonl":
        write_jsonl(shown, sys.stdout)
    else:
        write_text(shown, sys.stdout, hidden=len(results) - len(shown))
    return 0


def _snapshot(args: argparse.Namespace) -> Snapshot:
    if args.snapshot is None:
        return collect_live(_session_kwargs(args), args.bucket, endpoint_url=args.endpoint_url)
    clashing = [f"--{name.replace('_', '-')}" for name in _LIVE_OPTIONS if getattr(args, name)]
    if clashing:
        raise PostureError(f"--snapshot cannot be combined with {', '.join(clashing)}")
    snapshot = load_snapshot(args.snapshot)
    missing = sorted(set(args.bucket or ()) - set(snapshot.bucket_names()))
    if missing:
        raise PostureError(f"not in snapshot {args.snapshot}: {', '.join(missing)}")
    return snapshot


def _session_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kwargs = {"profile_name": args.profile, "region_name": args.region}
    return {key: value for key, value in kwargs.items() if value}


def _only_buckets(results: list[CheckResult], buckets: list[str] | None) -> list[CheckResult]:
    """With --bucket, the named buckets' results and the account-level ones. (All buckets are
    evaluated first, so a named log bucket still knows which other buckets log into it.)"""
    if not buckets:
        return results
    wanted = set(buckets)
    return [r for r in results if r.bucket is None or r.bucket in wanted]
