"""Launch the terminal app. Kept in core so the console script has one entry point; Textual is
imported only here, inside the function, and only when the app is actually started."""
from __future__ import annotations


def launch(argv: list[str]) -> int:
    try:
        from s3tail.tui.app import main as tui_main
    except ImportError as exc:  # pragma: no cover - textual missing from the install
        import sys

        print(f"s3tail: the terminal app is unavailable ({exc}); headless commands: parse, scan, posture",
              file=sys.stderr)
        return 2
    return tui_main(argv)
