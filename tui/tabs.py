"""The tabs: a one-line tab bar drawn with the Line API, and a switcher that shows one pane.

Textual's ``TabbedContent`` answers a switch with a chain of messages (tabs, underline, content
switcher), each restyling part of the screen, before the one layout that shows the pane; on a loaded
jump host that chain is a good part of a key press's budget. Here a switch is two ``display`` flips
and one line of the bar redrawn: one restyle, one layout, one frame.
"""
from __future__ import annotations

from typing import Any

from rich.segment import Segment
from textual import events
from textual.containers import Container
from textual.strip import Strip
from textual.widget import Widget


class TabBar(Widget):
    """``[1 Requests]  2 Findings   3 Posture   4 Stats``: the active tab in brackets, bold, on the
    theme's primary colour (the brackets show it without colour, as under ``NO_COLOR``, and in a
    plain-text capture); a click picks a tab (no mouse needed: keys 1-4)."""

    DEFAULT_CSS = """
    TabBar { height: 1; background: $panel; color: $text-muted; }
    TabBar > .tabbar--active { background: $primary; color: $text; text-style: bold; }
    """
    COMPONENT_CLASSES = {"tabbar--active"}

    def __init__(self, tabs: list[tuple[str, str]], active: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tabs = tabs            # (pane id, label)
        self.active = active

    def show(self, active: str) -> None:
        if active != self.active:
            self.active = active
            self.refresh()

    def _spans(self) -> list[tuple[int, int, str]]:
        """(start x, end x, pane id) of each label."""
        out, x = [], 0
        for pane, label in self.tabs:
            w = len(label) + 2
            out.append((x, x + w, pane))
            x += w + 1
        return out

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y or width <= 0:
            return Strip.blank(width, self.rich_style)
        base = self.rich_style
        on = self.get_component_rich_style("tabbar--active")
        segs = []
        for (x0, x1, pane), (_, label) in zip(self._spans(), self.tabs):
            segs.append(Segment(f"[{label}]", on) if pane == self.active else Segment(f" {label} ", base))
            segs.append(Segment(" ", base))
        return Strip(segs).crop_extend(0, width, base)

    async def on_click(self, event: events.Click) -> None:
        for x0, x1, pane in self._spans():
            if x0 <= event.x < x1:
                await self.app.run_action(f"tab('{pane}')")
                return


class TabSwitcher(Container):
    """Shows the child pane whose id is :attr:`active`, hides the others (and keeps the bar in step)."""

    DEFAULT_CSS = "TabSwitcher { height: 1fr; } TabSwitcher > * { height: 1fr; }"

    def __init__(self, *children: Widget, initial: str, bar: TabBar, **kwargs: Any) -> None:
        super().__init__(*children, **kwargs)
        self._active = initial
        self.bar = bar

    def on_mount(self) -> None:
        for pane in self.children:
            pane.display = pane.id == self._active

    @property
    def active(self) -> str:
        return self._active

    @active.setter
    def active(self, name: str) -> None:
        if name == self._active:
            return
        for pane in self.children:
            if pane.id in (name, self._active):
                pane.display = pane.id == name
        self._active = name
        self.bar.show(name)
