"""The command palette provider: switch theme or tab, toggle follow, export, clear filter, ..."""
from __future__ import annotations

from functools import partial
from typing import Any, Callable, Iterator

from textual.command import DiscoveryHit, Hit, Hits, Provider

from s3tail.themes import THEMES


def s3tail_commands(app: Any) -> Iterator[tuple[str, str, Callable[[], Any]]]:
    for short in THEMES:
        yield f"Theme: {short}", f"switch to the {short} theme", partial(app.set_theme_name, short)
    for n, name in enumerate(("Requests", "Findings", "Posture", "Stats"), 1):
        yield f"Tab: {name}", f"show the {name} tab (key {n})", partial(app.action_tab, name.lower())
    yield "Toggle follow", "stick to the newest row, or pause", app.action_toggle_follow
    yield "Export view", "write the current view as JSON lines or CSV", app.action_export
    yield "Clear filter", "show every row again", app.action_clear_filter
    yield "Filter", "open the filter bar", app.action_filter
    yield "Toggle facets", "show or hide the facet panel", app.action_toggle_facets
    yield "Malformed lines", "list lines that did not parse", app.action_malformed
    yield "Keys", "show every key and its binding id", app.action_help


class S3tailCommands(Provider):
    async def discover(self) -> Hits:
        for name, help_text, callback in s3tail_commands(self.app):
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in s3tail_commands(self.app):
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
