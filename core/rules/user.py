"""User rules: ``*.py`` files in a folder, Panther style.

Each file defines ``rule(event) -> bool`` and optionally ``title(event) -> str``, ``severity``
(a string, or a function of the event), ``dedup(event) -> str`` (group key, default: the actor),
``threshold`` (matches needed within ``window`` minutes, default 1), ``window`` (minutes, default 60)
and ``dedup_period`` (minutes, default 60). The rule id is ``user.<file stem>``. ``event`` is the
normalized :class:`s3tail.core.event.Event` (``event.detail`` is the CloudTrail record dict).

An exception, at import or in any function, is reported once per file in ``errors`` and the rule
skips that event; the stream never stops.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any, Callable

from ..config import SEVERITIES, ConfigError
from .model import ONE, Rule, actor_of


def load_user_rules(folder: str, errors: list[str]) -> list[Rule]:
    if not os.path.isdir(folder):
        raise ConfigError(f"--rules {folder}: not a directory")
    rules = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".py") or name.startswith((".", "_")):
            continue
        path = os.path.join(folder, name)
        stem = name[:-3]
        rule = _load(path, stem, errors)
        if rule is not None:
            rules.append(rule)
    return rules


def _load(path: str, stem: str, errors: list[str]) -> Rule | None:
    mod_name = f"s3tail_user_rule_{stem}_{abs(hash(path))}"
    try:
        spec = importlib.util.spec_from_file_location(mod_name, path)
        if spec is None or spec.loader is None:
            raise ImportError("cannot load")
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        spec.loader.exec_module(module)
    except BaseException as exc:  # noqa: BLE001 - a user file may raise anything, even SystemExit
        if isinstance(exc, KeyboardInterrupt):
            raise
        errors.append(f"user rule {path}: failed to load: {type(exc).__name__}: {exc}")
        return None
    fn = getattr(module, "rule", None)
    if not callable(fn):
        errors.append(f"user rule {path}: no rule(event) function")
        return None
    failed: list[bool] = []

    def report(where: str, exc: BaseException) -> None:
        if not failed:
            failed.append(True)
            errors.append(f"user rule {path}: {where} raised {type(exc).__name__}: {exc} "
                          "(reported once; the rule skips such events)")

    def safe(name: str, default: Callable[[Any], Any]) -> Callable[[Any], Any]:
        user_fn = getattr(module, name, None)
        if not callable(user_fn):
            return default

        def call(ev):
            try:
                return user_fn(ev)
            except Exception as exc:
                report(f"{name}()", exc)
                return default(ev)
        return call

    severity_attr = getattr(module, "severity", "medium")
    static_sev = severity_attr if isinstance(severity_attr, str) else "info"  # callable: raised per hit
    if static_sev not in SEVERITIES:
        errors.append(f"user rule {path}: severity {static_sev!r} is not one of {', '.join(SEVERITIES)}; "
                      "using medium")
        static_sev = "medium"
    severity_fn = safe("severity", lambda ev: None) if callable(severity_attr) else None
    group = safe("dedup", actor_of)
    title = safe("title", lambda ev: f"User rule {stem}")

    def match(ev):
        try:
            if not fn(ev):
                return None
        except Exception as exc:
            report("rule()", exc)
            return None
        if severity_fn is None:
            return ONE
        sev = severity_fn(ev)
        return (1, None, sev if sev in SEVERITIES else None, None)

    threshold = _number(getattr(module, "threshold", 1), 1)
    window = _number(getattr(module, "window", 60), 60)
    return Rule(f"user.{stem}", static_sev, f"User rule {stem}", gate="all", match=match, group=group,
                title_fn=title, window=window, threshold=max(1, int(threshold)),
                dedup=_number(getattr(module, "dedup_period", 60), 60),
                description=(module.__doc__ or "").strip().split("\n")[0], peers="(user rule)",
                source=path)


def _number(value: Any, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return default
    return value
