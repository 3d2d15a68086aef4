"""Colours and styles shared by the widgets: the palette, one colour per run and
per metric across every chart of a kernel, state colours."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from ._html import esc

# Okabe–Ito (without its black and pale yellow) extended with four of Paul Tol's
# "muted" colours: colour-blind safe, and mid-luminance so that every colour
# stays visible on JupyterLab's light and dark themes.
PALETTE: tuple[str, ...] = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#56B4E9",
    "#999933",
    "#AA4499",
    "#44AA99",
    "#CC6677",
)
DASHES: tuple[str, ...] = ("solid", "dashed", "dotted", "dash_dotted")
STATE_COLORS: dict[str, str] = {
    "running": "#1f77b4",
    "finished": "#2ca02c",
    "failed": "#d62728",
    "crashed": "#ff7f0e",
}
MUTED = "#8a8f98"


class ColorRegistry:
    """One colour per key for the whole kernel, in first-seen order (as W&B does):
    a run (or a metric of single-run charts) has the same colour in every chart
    of a notebook. Keys beyond the palette's length reuse colours, with another
    dash (:meth:`dash`) where a chart's dashes are free."""

    def __init__(self) -> None:
        self._slots: dict[str, int] = {}
        self._lock = threading.Lock()

    def slot(self, key: str) -> int:
        """The key's position in first-seen order."""
        with self._lock:
            return self._slots.setdefault(key, len(self._slots))

    def color(self, key: str) -> str:
        return PALETTE[self.slot(key) % len(PALETTE)]

    def dash(self, key: str) -> str:
        """The line style that tells apart keys sharing a colour (the 11th key is
        the 1st one's colour, dashed)."""
        return DASHES[self.slot(key) // len(PALETTE) % len(DASHES)]

    def colors(self, keys: Sequence[str]) -> dict[str, str]:
        return {key: self.color(key) for key in keys}


RUN_COLORS = ColorRegistry()
METRIC_COLORS = ColorRegistry()


def state_badge(state: str) -> str:
    """HTML pill for a run state, coloured like the sidebar."""
    color = STATE_COLORS.get(state, MUTED)
    return (
        f'<span style="background:{color};color:white;border-radius:9px;'
        f'padding:1px 8px;font-size:11px;font-weight:600">{esc(state)}</span>'
    )
