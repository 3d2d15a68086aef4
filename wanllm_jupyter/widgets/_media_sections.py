"""The workspace's media sections: one collapsible section per media key of the
run (images, histograms, tables), in key order within each kind, after the metric
charts. A section's panel is built when it is first opened; with more than
``MAX_OPEN`` keys every section starts collapsed. Keys logged later (announced on
the run's socket) get a section as they appear.
"""

from __future__ import annotations

import threading
from typing import Any

import ipywidgets as W

from .._http import Connection
from .._media_source import MediaSource
from ..core.api.media import MediaKeyInfo
from ._html import esc
from ._media_panel import MediaPanel, error_text
from .histogram_panel import HistogramPanel
from .image_panel import ImagePanel
from .table_panel import TablePanel

MAX_OPEN = 4  # more keys than this: every section starts collapsed
PANELS: dict[str, type[MediaPanel]] = {
    "image": ImagePanel,
    "histogram": HistogramPanel,
    "table": TablePanel,
}
KIND_ORDER = tuple(PANELS)


def section_title(info: MediaKeyInfo) -> str:
    """Plain text (an accordion title is never parsed as HTML)."""
    steps = f"{info.steps} step{'s' if info.steps != 1 else ''}"
    return f"{info.key} · {info.kind} · {steps}"


class MediaSections(W.VBox):
    """Every media key of one run, each in its own accordion."""

    def __init__(self, conn: Connection | None, run_id: str, *, live: bool) -> None:
        self.conn, self.run_id, self.live = conn, run_id, live
        self.infos: dict[str, MediaKeyInfo] = {}
        self.sections: dict[str, W.Accordion] = {}
        self._lock = threading.Lock()
        self.heading = W.HTML("<b>Media</b>")
        super().__init__([], layout=W.Layout(gap="4px"))
        self.add_class("wl-media-sections")
        self.refresh()

    def refresh(self) -> None:
        """Read the run's media keys and add a section for each new one."""
        if self.conn is None:
            return  # offline: media are read from a server only
        try:
            found = MediaSource(self.conn).keys(self.run_id).keys
        except Exception as exc:  # drawn, never raised from a display
            self.children = [
                self.heading,
                W.HTML(f'<div class="wl-error">{esc(error_text(exc))}</div>'),
            ]
            return
        with self._lock:
            new = [k for k in found if k.key not in self.infos or k != self.infos[k.key]]
            for info in new:
                self.infos[info.key] = info
        if not new:
            return
        ordered = sorted(self.infos.values(), key=lambda k: (KIND_ORDER.index(k.kind), k.key))
        many = len(ordered) > MAX_OPEN
        for info in ordered:
            section = self.sections.get(info.key)
            if section is None:
                section = self.sections[info.key] = self._section(info, open_=not many)
            section.set_title(0, section_title(info))
        self.children = [self.heading, *(self.sections[k.key] for k in ordered)]

    def _section(self, info: MediaKeyInfo, *, open_: bool) -> W.Accordion:
        holder = W.VBox()
        section = W.Accordion([holder], selected_index=None)
        section.add_class(f"wl-media-section-{info.kind}")

        def build(change: dict[str, Any]) -> None:
            if change["new"] == 0 and not holder.children and self.conn is not None:
                panel = PANELS[info.kind](self.conn, [self.run_id], info.key, live=self.live)
                holder.children = [panel]

        section.observe(build, names="selected_index")
        if open_:
            section.selected_index = 0
        return section
