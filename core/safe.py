"""Make attacker-written log text safe to show in a terminal: control characters become visible escapes."""
from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match) -> str:
    ch = m.group(0)
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(value: object) -> str:
    """``str(value)`` with ANSI escapes, control and bidi characters shown as ``\\x1b``-style escapes.

    Rich markup is not interpreted anywhere we draw (Text objects, never markup strings), so brackets
    stay as they are.
    """
    if value is None:
        return "-"
    text = value if isinstance(value, str) else str(value)
    if text.isprintable() and text.isascii():
        return text
    return _CONTROL.sub(_escape, text)
