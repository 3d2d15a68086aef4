"""Reading a run's media back as pandas (``ApiRun.media``, ``.histograms``, ``.table``),
through the kernel's one media reader (:class:`._media_source.MediaSource`; for an
offline ``Api``, the spool's :class:`._media_offline.OfflineMedia`).

Images come as :class:`StoredImage` cells, fetched lazily: a DataFrame of a
thousand images costs one request, and each PNG is fetched (once) when its
``to_numpy()``, ``to_pil()`` or ``png`` is first used.
"""

from __future__ import annotations

import io
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
import pandas as pd

from ._media_offline import OfflineMedia
from ._media_source import MediaSource
from .core.api.media import HistogramStep

Source = MediaSource | OfflineMedia


class StoredImage:
    """One stored image: ``width``, ``height``, ``caption``, ``digest`` (sha256 of the
    PNG); ``png`` (bytes), ``to_pil()``, ``to_numpy()`` fetch it on first use.
    Shown as the picture in a notebook."""

    def __init__(
        self, source: Source, digest: str, width: int, height: int, caption: str | None
    ) -> None:
        self._source, self.digest = source, digest
        self.width, self.height, self.caption = width, height, caption
        self._png: bytes | None = None

    @property
    def png(self) -> bytes:
        if self._png is None:
            self._png = self._source.png(self.digest)
        return self._png

    def to_pil(self) -> Any:
        """The image as a ``PIL.Image.Image``."""
        from PIL import Image

        image = Image.open(io.BytesIO(self.png))
        image.load()
        return image

    def to_numpy(self) -> npt.NDArray[np.uint8]:
        """The pixels, (height, width) or (height, width, channels)."""
        return np.asarray(self.to_pil())

    def _repr_png_(self) -> bytes:
        return self.png

    def __repr__(self) -> str:
        return f"<StoredImage {self.width}x{self.height} {self.digest[:12]}>"


def _source(api: Any) -> Source:
    """The server's media, or the spool's when ``api`` reads local spools."""
    return OfflineMedia(api._src.root) if api.connection is None else MediaSource(api.connection)


def media_keys(api: Any, run_id: str) -> pd.DataFrame:
    """``key, kind, steps, first_step, last_step, last_time`` of every media key."""
    keys = msgspec.to_builtins(_source(api).keys(run_id).keys)
    columns = ["key", "kind", "steps", "first_step", "last_step", "last_time"]
    return pd.DataFrame(keys, columns=columns)


PAGE_STEPS = 1000  # the server's most steps of images / histograms per request


def images(
    api: Any, run_id: str, key: str, start_step: int | None, end_step: int | None
) -> pd.DataFrame:
    """``step, index, time, caption, width, height, digest, image`` (a StoredImage),
    every image of the range: pages of :data:`PAGE_STEPS` steps, newest first."""
    source = _source(api)
    pages = []
    end, total = end_step, None
    while True:
        page = source.images(run_id, key, start_step=start_step, end_step=end, limit=PAGE_STEPS)
        total = page.steps if total is None else total
        pages.append(page.images)
        if not page.images or len({i.step for i in page.images}) >= page.steps:
            break
        end = min(i.step for i in page.images) - 1
    infos = [i for page_images in reversed(pages) for i in page_images]
    df = pd.DataFrame(
        msgspec.to_builtins(infos),
        columns=["step", "index", "time", "caption", "width", "height", "digest"],
    )
    df["image"] = pd.Series(
        [StoredImage(source, i.digest, i.width, i.height, i.caption) for i in infos], dtype=object
    )
    df.attrs.update(run_id=run_id, key=key, steps=total)
    return df


def histograms(
    api: Any,
    run_id: str,
    key: str,
    start_step: int | None,
    end_step: int | None,
    max_steps: int | None,
) -> pd.DataFrame:
    """``step, time, edges, counts`` (numpy arrays): every step of the range, or
    ``max_steps`` of them evenly chosen by the server (offline: every step);
    ``attrs["steps"]`` = how many steps the range holds."""
    source = _source(api)

    def fetch(lo: int | None, hi: int | None) -> tuple[int, list[HistogramStep]]:
        budget = max_steps or PAGE_STEPS
        got = source.histograms(run_id, key, start_step=lo, end_step=hi, max_steps=budget)
        rows = got.histograms
        if max_steps is not None or len(rows) >= got.steps or len(rows) < 2:
            return got.steps, rows
        mid = rows[len(rows) // 2].step  # thinned: the two halves, each exactly
        return got.steps, fetch(lo, mid)[1] + fetch(mid + 1, hi)[1]

    total, rows = fetch(start_step, end_step)
    df = pd.DataFrame(
        {
            "step": pd.Series([r.step for r in rows], dtype="int64"),
            "time": pd.Series([r.time for r in rows], dtype="float64"),
            "edges": pd.Series([np.asarray(r.edges) for r in rows], dtype=object),
            "counts": pd.Series([np.asarray(r.counts) for r in rows], dtype=object),
        }
    )
    df.attrs.update(run_id=run_id, key=key, steps=total)
    return df


def table(api: Any, run_id: str, key: str, step: int | None) -> pd.DataFrame:
    """The table logged under ``key`` at ``step`` (the latest when None), as logged."""
    df = _source(api).table_arrow(run_id, key, step).to_pandas()
    df.attrs.update(run_id=run_id, key=key)
    return df
