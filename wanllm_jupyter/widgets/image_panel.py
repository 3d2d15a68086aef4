"""The image panel: one image key of one or several runs, side by side.

Two views: **step** (a slider over the logged steps; each run's images at that
step, with their captions) and **latest** (each run's latest ``n`` images, each
captioned with its step). While a run logs, new steps arrive through its socket
and the slider follows the latest step unless the user moved it elsewhere
(moving it back to the end follows again).

The kernel fetches the PNGs (``GET media/{digest}``, through a small LRU cache
shared by every panel, :mod:`.._media_source`) and sends them as
``ipywidgets.Image`` values; a tile stays the same widget while it is shown, so
each image crosses the comm once.
"""

from __future__ import annotations

import threading
from typing import Any

import ipywidgets as W

from .._http import Connection
from ..core.api.media import ImageInfo
from ._frontends import follow_frontend_subshell
from ._html import esc
from ._lifetime import close_all
from ._media_panel import MediaPanel, open_panel

MAX_STEPS_KEPT = 1000  # per run: the latest steps' images read and kept (the server's most)
TILE_PX = 96  # small images are scaled up (pixelated) to at least this width
MAX_TILE_PX = 256  # and large ones down to at most this


def tile_size(width: int, height: int) -> tuple[int, int]:
    """Display size of an image: an integer zoom of a small one, at most ``MAX_TILE_PX``."""
    if width <= 0 or height <= 0:
        return TILE_PX, TILE_PX
    scale: float = max(1, TILE_PX // width) if width < TILE_PX else 1
    scale = min(scale, MAX_TILE_PX / width, MAX_TILE_PX / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def merge_images(
    held: dict[int, list[ImageInfo]], new: list[ImageInfo], since: int | None
) -> dict[int, list[ImageInfo]]:
    """``held`` (step → images) with the steps from ``since`` on replaced by ``new``
    (a (key, step) logged again replaces what was there); the latest
    ``MAX_STEPS_KEPT`` steps."""
    out = {s: v for s, v in held.items() if since is not None and s < since}
    for info in new:
        out.setdefault(info.step, []).append(info)
    for images in out.values():
        images.sort(key=lambda i: i.index)
    keep = sorted(out)[-MAX_STEPS_KEPT:]
    return {s: out[s] for s in keep}


def latest(held: dict[int, list[ImageInfo]], n: int) -> list[ImageInfo]:
    """The latest ``n`` images, in step order (the last step's list kept whole
    when it alone holds more)."""
    out: list[ImageInfo] = []
    for step in sorted(held, reverse=True):
        if len(out) >= n:
            break
        out = held[step] + out
    return out[-n:] if len(out) > n and len(held) > 1 else out


class ImagePanel(MediaPanel):
    """Images of one key across runs; build it with :func:`images`."""

    KIND = "image"
    NOUN = "images"

    def __init__(
        self,
        conn: Connection,
        run_ids: list[str],
        key: str,
        *,
        mode: str = "step",
        n: int = 8,
        **kwargs: Any,
    ) -> None:
        self.held: dict[str, dict[int, list[ImageInfo]]] = {r: {} for r in run_ids}
        self._tiles: dict[tuple[str, str], W.VBox] = {}
        self._follow = True  # the slider follows the latest step
        self._setting = threading.local()  # a value we set, not the user
        self.mode = W.ToggleButtons(
            options=[("step", "step"), (f"latest {n}", "latest")],
            value=mode,
            style={"button_width": "auto"},
        )
        self.n = n
        self.slider = W.SelectionSlider(
            options=[0], description="step", continuous_update=True, layout=W.Layout(flex="1")
        )
        self.mode.observe(lambda _: self._redrawer.request(), names="value")
        self.slider.observe(self._on_slider, names="value")
        follow_frontend_subshell(self.slider)  # moved while a cell runs (JupyterLab)
        follow_frontend_subshell(self.mode)
        self.controls = W.HBox([self.mode, self.slider], layout=W.Layout(align_items="center"))
        self._columns: dict[str, tuple[W.HTML, W.HBox, W.HTML]] = {}
        for run_id in run_ids:  # one column per run: name, tiles, "no image" placeholder
            box = W.HBox(layout=W.Layout(flex_flow="row wrap", gap="8px"))
            box.add_class("wl-tiles")
            nothing = W.HTML('<span class="wl-muted">no image at this step</span>')
            self._columns[run_id] = (W.HTML(), box, nothing)
        self.grid = W.HBox(
            [
                W.VBox([name, box], layout=W.Layout(min_width="0"))
                for name, box, _ in self._columns.values()
            ],
            layout=W.Layout(flex_flow="row wrap", gap="16px"),
        )
        super().__init__(conn, run_ids, key, parts=[self.controls, self.grid], **kwargs)

    @property
    def steps(self) -> list[int]:
        """Every step with images, over all runs, increasing."""
        return sorted({s for held in self.held.values() for s in held})

    @property
    def step(self) -> int | None:
        """The step the slider shows (None before any image)."""
        return int(self.slider.value) if self.steps else None

    def _on_slider(self, change: dict[str, Any]) -> None:
        if getattr(self._setting, "on", False):
            return
        steps = self.steps
        self._follow = bool(steps) and change["new"] == steps[-1]
        self._redrawer.request()

    # ------------------------------------------------------------ MediaPanel
    def load(self, since: dict[str, int] | None) -> None:
        for run_id in self.run_ids:
            start = None if since is None else since.get(run_id)
            if since is not None and start is None:
                continue
            got = self.absent_ok(
                self.source.images, run_id, self.key, start_step=start, limit=MAX_STEPS_KEPT
            )
            if got is not None:
                self.held[run_id] = merge_images(self.held[run_id], got.images, start)

    def draw(self) -> bool:
        steps = self.steps
        if not steps:
            return False
        self._set_slider(steps)
        self.slider.layout.visibility = "visible" if self.mode.value == "step" else "hidden"
        shown = {run_id: self._tiles_of(run_id) for run_id in self.run_ids}
        used = {id(t) for tiles in shown.values() for t in tiles}
        gone = [t for t in self._tiles.values() if id(t) not in used]
        self._tiles = {k: t for k, t in self._tiles.items() if id(t) in used}
        for run_id, tiles in shown.items():
            name, box, nothing = self._columns[run_id]
            if len(self.run_ids) > 1:  # one run: the panel's title says enough
                name.value = f'<div class="wl-run-name">{esc(self.run_name(run_id))}</div>'
            box.children = tiles or [nothing]
        close_all(gone)  # tiles no longer shown
        return True

    def _tiles_of(self, run_id: str) -> list[W.VBox]:
        held = self.held[run_id]
        if self.mode.value == "step":
            shown = [(i, "") for i in held.get(int(self.slider.value), [])]
        else:
            shown = [(i, f"step {i.step}") for i in latest(held, self.n)]
        return [self._tile(info, prefix) for info, prefix in shown]

    def _set_slider(self, steps: list[int]) -> None:
        current = self.slider.value
        value = steps[-1] if self._follow or current not in steps else current
        if list(self.slider.options) != steps or self.slider.value != value:
            self._setting.on = True
            try:  # two messages: with both in one, the browser's slider stays at index 0
                self.slider.options = steps
                self.slider.value = value
            finally:
                self._setting.on = False

    def close(self) -> None:
        """Close the panel, its tiles and placeholders (shown or not)."""
        super().close()
        close_all([*self._tiles.values(), *(nothing for _, _, nothing in self._columns.values())])

    def _tile(self, info: ImageInfo, prefix: str) -> W.VBox:
        caption = " · ".join(t for t in (prefix, info.caption or "") if t)
        key = (info.digest, caption)
        tile = self._tiles.get(key)
        if tile is None:
            width, height = tile_size(info.width, info.height)
            image = W.Image(
                value=self.source.png(info.digest),
                format="png",
                layout=W.Layout(width=f"{width}px", height=f"{height}px"),
            )
            label = W.HTML(f'<div class="wl-caption">{esc(caption)}</div>' if caption else "")
            tile = W.VBox([image, label])
            tile.add_class("wl-tile")
            self._tiles[key] = tile
        return tile


def images(
    runs: Any,
    key: str,
    *,
    mode: str = "step",
    n: int = 8,
    live: bool = True,
    connection: Connection | None = None,
) -> ImagePanel | W.HTML:
    """The images logged under ``key`` by one or several ``runs`` (side by side).

    ``mode``: ``"step"`` (a step slider) or ``"latest"`` (the latest ``n`` images
    of each run). Live while a run logs. Media need a server: without one a
    one-line notice is shown instead.
    """
    return open_panel(ImagePanel, runs, key, live, connection, mode=mode, n=n)
