"""Modal screens: request detail, keys help, export path, malformed lines, and the start screen."""
from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Input, Label, Static

from s3tail.core.event import CONTRACT_FIELDS
from s3tail.core.safe import visible

_CLOSE = [Binding("escape,q", "dismiss", "Close", id="modal.close")]
_MODAL_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{ width: 96%; height: 92%; border: thick $primary; background: $surface; padding: 0 1; }}
{name} .title {{ text-style: bold; }}
"""


def field_text(pairs: list[tuple[str, Any]], width: int = 20) -> Text:
    text = Text()
    for name, value in pairs:
        text.append(f"{name:<{width}}", style="bold")
        text.append(visible(value) + "\n")
    return text


class DetailScreen(ModalScreen[None]):
    """Every field of one event, its identity, URI, raw line, origin and the findings citing it."""

    BINDINGS = _CLOSE + [Binding("y", "copy", "Copy JSON", id="detail.copy")]
    DEFAULT_CSS = _MODAL_CSS.format(name="DetailScreen")

    def __init__(self, event: Any, findings: list[Any]) -> None:
        super().__init__()
        self.event = event
        self.findings = findings

    def compose(self) -> ComposeResult:
        e = self.event
        with Vertical():
            yield Label(Text(f"Request {visible(e.request_id)} — escape closes, y copies"),
                        classes="title")
            with VerticalScroll(id="detail-body"):
                yield Static(self.body(), id="detail-text")

    def body(self) -> Text:
        e = self.event
        text = Text()
        text.append("Identity\n", style="bold underline")
        text.append_text(field_text([
            ("who", e.who), ("account", e.account_id), ("principal type", e.principal_type),
            ("role/user name", e.principal_name), ("session", e.session_name),
            ("requester", e.requester)]))
        text.append("\nRequest\n", style="bold underline")
        text.append_text(field_text([("request URI", e.request_uri)]))
        text.append("\nOrigin\n", style="bold underline")
        text.append_text(field_text([("log object", e.log_object), ("line", e.log_line),
                                     ("byte offset", getattr(e, "offset", None))]))
        text.append_text(field_text([("raw line", e.raw if e.raw is not None else "(CloudTrail record)")]))
        text.append(f"\nFindings citing this request ({len(self.findings)})\n", style="bold underline")
        for f in self.findings:
            text.append(f"  {str(f.severity).upper():<9}", style="bold")
            text.append(visible(f.rule_id) + "  " + visible(f.title) + "\n")
        if not self.findings:
            text.append("  none\n")
        text.append("\nAll fields\n", style="bold underline")
        text.append_text(field_text([(name, getattr(e, name)) for name in CONTRACT_FIELDS]))
        return text

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.event.to_json())
        self.notify("request copied as JSON (OSC 52)")


class HelpScreen(ModalScreen[None]):
    """Every key, with its binding id (remap any of them in the config's [keys] table)."""

    BINDINGS = _CLOSE
    DEFAULT_CSS = _MODAL_CSS.format(name="HelpScreen")

    def __init__(self, rows: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        text = Text()
        text.append(f"{'key':<14}{'action':<34}binding id\n", style="bold")
        for key, desc, bid in self.rows:
            text.append(f"{key:<14}{desc:<34}{bid}\n")
        text.append("\nRemap keys in the config file: [keys] quit = \"ctrl+q\"\n")
        text.append("\nFilter (all terms must hold): bucket:acme-* who:alice status:4xx status:>=500 "
                    "action:GetObject op:REST.GET.OBJECT key:*.env ip:10.0.0.0/8 ua:*curl* error:AccessDenied "
                    "source:cloudtrail tls:TLSv1.2 sig:SigV2 since:15m until:2026-11-01T00:00Z; "
                    "-field:value negates; bare words match requester, key and user agent fuzzily; "
                    "\"quoted values\" may hold spaces.\n")
        text.append("Themes: --theme dark|light|high-contrast, or ctrl+p \"Theme: ...\". NO_COLOR is honoured.\n")
        with Vertical():
            yield Label("Keys — escape closes", classes="title")
            with VerticalScroll():
                yield Static(text, id="help-text")


class ExportScreen(ModalScreen[str | None]):
    """Ask for the export path; ``.csv`` writes CSV, anything else JSON lines."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="export.cancel")]
    DEFAULT_CSS = """
    ExportScreen { align: center middle; }
    ExportScreen > Vertical { width: 70; max-width: 96%; height: auto; border: thick $primary;
                              background: $surface; padding: 0 1; }
    """

    def __init__(self, rows: int, default: str | None = None) -> None:
        super().__init__()
        self.rows = rows
        self.default = default or default_export_path()

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Export {self.rows:,} rows of the current view (.csv = CSV, else JSON lines)")
            yield Input(value=self.default, id="export-path")
            yield Label("enter writes, escape cancels")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


def default_export_path() -> str:
    return f"./s3tail-export-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"


class MalformedScreen(ModalScreen[None]):
    """Lines that did not parse: origin, reason, the raw text escaped."""

    BINDINGS = _CLOSE
    DEFAULT_CSS = _MODAL_CSS.format(name="MalformedScreen")

    def __init__(self, items: list[Any], total: int) -> None:
        super().__init__()
        self.items = items
        self.total = total

    def compose(self) -> ComposeResult:
        text = Text()
        for m in self.items:
            text.append(f"{visible(m.log_object)}:{m.log_line}", style="bold")
            text.append("  " + visible(m.reason) + "\n")
            text.append("    " + visible(m.raw[:300]) + "\n")
        if not self.items:
            text.append("No malformed lines.\n")
        shown = f" (latest {len(self.items):,})" if len(self.items) < self.total else ""
        with Vertical():
            yield Label(f"Malformed lines: {self.total:,}{shown} — escape closes", classes="title")
            with VerticalScroll():
                yield Static(text, id="malformed-text")


class StartScreen(Screen[None]):
    """Shown with no source and no --demo: how to start."""

    BINDINGS = [Binding("q", "app.quit", "Quit", id="start.quit")]
    DEFAULT_CSS = """
    StartScreen { align: center middle; }
    StartScreen > Static { width: auto; max-width: 78; border: round $primary; padding: 1 2; }
    """

    def compose(self) -> ComposeResult:
        yield Static(Text(
            "s3tail — who touches what in Amazon S3, live\n\n"
            "Start it with a source:\n"
            "  s3tail --demo                 built-in traffic with attacks, offline\n"
            "  s3tail s3://bucket/prefix/    follow an S3 access-log bucket\n"
            "  s3tail ./logs/                read and follow a local folder\n\n"
            "Options: --posture-snapshot FILE  --config FILE  --theme NAME  --no-follow\n\n"
            "Press q to quit."), id="start-text")
