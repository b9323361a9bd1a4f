"""The core never imports Textual: parse, scan and posture must run on a host without a UI stack."""
from __future__ import annotations

import pkgutil
import subprocess
import sys

import s3tail.core


def test_importing_every_core_module_loads_no_textual():
    names = [m.name for m in pkgutil.walk_packages(s3tail.core.__path__, "s3tail.core.")]
    assert "s3tail.core.access_log" in names and "s3tail.core.cli" in names
    code = (
        "import importlib, sys\n"
        f"for n in {names!r}:\n"
        "    importlib.import_module(n)\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"core imported Textual modules: {out.stdout.strip()}"
