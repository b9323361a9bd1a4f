"""The `s3tail` command line: headless subcommands and the terminal app launcher.

Each subcommand lives in its own module exposing ``configure(parser)`` and ``run(args) -> int``;
this file only dispatches, so the headless commands never import Textual.

Exit codes (a contract): 0 success, 1 a condition the user asked to fail on (``--strict``,
``--fail-on``), 2 usage, IO, credential or config errors (one line on stderr, no traceback).
"""
from __future__ import annotations

import argparse
import gc
import importlib
import sys

from .reader import SourceError

SUBCOMMANDS = {
    # name: (module, help)
    "parse": ("s3tail.core.parsecmd", "parse logs into normalized events (JSON lines or text)"),
    "scan": ("s3tail.core.rules.cli", "run the detection rules over logs and print findings"),
    "rules": ("s3tail.core.rules.cli_list", "list every detection rule with its defaults"),
    "posture": ("s3tail.core.posture.cli", "check buckets for misconfigurations (live or from a snapshot)"),
}


class UsageError(Exception):
    """A bad command line or input; reported as one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 too; keep the one-line form
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="s3tail",
        description="Who touches what in Amazon S3, live. Run `s3tail --demo` to try it without AWS.",
        epilog="Without a COMMAND s3tail opens the terminal app: s3tail [SOURCE...] [--demo] [--since WHEN] "
               "[--theme NAME] [--config FILE] [--rules DIR] [--posture-snapshot FILE] [--max-rows N] "
               "[--no-follow]; `s3tail --demo --help` lists its options.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:  # a part not built yet: keep the others working
            p.set_defaults(_missing=f"`s3tail {name}` is not available in this build ({exc})")
            continue
        mod.configure(p)
        p.set_defaults(_run=mod.run)
    return parser


def tune_gc() -> None:
    """Millions of short-lived events and few reference cycles: collect cycles far less often than
    Python's default (every 700 allocations). Faster parsing, shorter pauses in the terminal app."""
    gc.set_threshold(100_000, 50, 100)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    tune_gc()
    if not argv or argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help"):
        # No subcommand: the terminal app (it parses its own options).
        from s3tail.core.applaunch import launch  # headless-safe: imports the TUI lazily

        return _guard(lambda: launch(argv))
    parser = build_parser()
    args = parser.parse_args(argv)
    missing = getattr(args, "_missing", None)
    if missing:
        print(f"s3tail: {missing}", file=sys.stderr)
        return 2
    return _guard(lambda: args._run(args))


def _guard(fn) -> int:
    try:
        rc = fn()
    except UsageError as exc:
        print(f"s3tail: {exc}", file=sys.stderr)
        return 2
    except SourceError as exc:
        print(f"s3tail: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `s3tail parse big.log | head`: the reader went away; quiet exit.
        try:
            sys.stdout = None  # type: ignore[assignment]
        except Exception:
            pass
        return 0
    return int(rc or 0)


def entry() -> None:  # pragma: no cover - console script shim
    raise SystemExit(main())


if __name__ == "__main__":  # pragma: no cover - `python -m s3tail.core.cli`: use the one imported module
    from s3tail.core.cli import main as _main

    raise SystemExit(_main())
