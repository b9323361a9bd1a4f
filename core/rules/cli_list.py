"""`s3tail rules`: every detection rule with its severity, defaults and the peer detections it covers."""
from __future__ import annotations

import argparse
import json
import sys

from ..config import ConfigError, load_config
from ..safe import visible


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("text", "jsonl"), default="text", help="output format (default text)")
    p.add_argument("--config", metavar="FILE", help="show the values after this config file")
    p.add_argument("--rules", metavar="DIR", help="include the user rules in this folder")


def rows(args: argparse.Namespace) -> list[dict]:
    from .engine import RuleEngine

    config = load_config(args.config) if args.config else {}
    engine = RuleEngine(config, args.rules)
    out = []
    for r in engine.rules:
        out.append({
            "id": r.id, "severity": r.severity, "enabled": r.enabled and not r.inert,
            "inert_until_configured": r.inert, "defaults": r.defaults(), "title": r.title,
            "description": r.description, "peers": r.peers,
        })
    for line in engine.errors:
        sys.stderr.write(visible(line) + "\n")
    return out


def _defaults_text(d: dict) -> str:
    parts = []
    for k, v in d.items():
        if k == "severity":
            continue
        if k in ("window", "dedup"):
            v = f"{v:g}m"
        elif k == "threshold" and isinstance(v, int) and v >= 1 << 30:
            v = f"{v / (1 << 30):g}GiB"
        elif k == "object_cap" and isinstance(v, int) and v >= 1 << 20:
            v = f"{v / (1 << 20):g}MiB"
        elif isinstance(v, bool):
            v = "true" if v else "false"
        parts.append(f"{k}={v}")
    return " ".join(parts)


def run(args: argparse.Namespace) -> int:
    from ..cli import UsageError

    try:
        table = rows(args)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    out = sys.stdout
    if args.format == "jsonl":
        for row in table:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        return 0
    out.write(f"{'RULE':<30} {'SEVERITY':<9} {'DEFAULTS':<40} COVERS\n")
    for row in table:
        state = "" if row["enabled"] else (" (inert until configured)" if row["inert_until_configured"]
                                           else " (disabled)")
        out.write(f"{row['id']:<30} {row['severity']:<9} {_defaults_text(row['defaults']):<40} "
                  f"{visible(row['peers'])}{state}\n")
    return 0
