"""s3tail's themes: dark, light and high-contrast as Textual ``Theme`` objects, plus the app's TCSS.

``THEMES`` maps the short names users type (``--theme light``, the command palette, ``[tui] theme``
in the config) to registered Textual theme names. Any other Textual theme name works too
(``textual-ansi`` uses the terminal's own palette). ``NO_COLOR`` is honoured by Textual itself
(a monochrome filter); the app never relies on colour alone (status codes are shown as numbers,
the cursor is bold/reversed, anonymous requesters are named).
"""
from __future__ import annotations

from pathlib import Path

from textual.theme import Theme

CSS_PATH = Path(__file__).with_name("s3tail.tcss")

DARK = Theme(
    name="s3tail-dark", primary="#4EA1FF", secondary="#7FDBCA", accent="#3B6EA8",
    warning="#FFB454", error="#FF5F5F", success="#8BD46E", foreground="#E6E6E6",
    background="#121417", surface="#1B1F24", panel="#242A31", dark=True,
)
LIGHT = Theme(
    name="s3tail-light", primary="#0B5CAD", secondary="#007A6C", accent="#9CC4F0",
    warning="#9A5B00", error="#B00020", success="#1E7B1E", foreground="#1A1A1A",
    background="#FAFAF7", surface="#F0F0EB", panel="#E2E2DA", dark=False,
)
HIGH_CONTRAST = Theme(
    name="s3tail-high-contrast", primary="#FFFF00", secondary="#00FFFF", accent="#0000FF",
    warning="#FFFF00", error="#FF3030", success="#00FF00", foreground="#FFFFFF",
    background="#000000", surface="#000000", panel="#1A1A1A", dark=True,
    variables={"border": "#FFFFFF", "footer-key-foreground": "#FFFF00"},
)
ALL: tuple[Theme, ...] = (DARK, LIGHT, HIGH_CONTRAST)
THEMES: dict[str, str] = {"dark": DARK.name, "light": LIGHT.name, "high-contrast": HIGH_CONTRAST.name}
DEFAULT = "dark"


def resolve(name: str, available: set[str] | frozenset[str] = frozenset()) -> str | None:
    """The Textual theme name for a user-typed ``name`` (short or full), or None if unknown."""
    if name in THEMES:
        return THEMES[name]
    if name in THEMES.values() or name in available:
        return name
    return None
