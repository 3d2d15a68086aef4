"""Reading a run's media back as pandas (``ApiRun.media``, ``.histograms``, ``.table``).

Images come as :class:`StoredImage` cells, fetched lazily: a DataFrame of a
thousand images costs one request, and each PNG is fetched (once) when its
``to_numpy()``, ``to_pil()`` or ``png`` is first used. An offline ``Api`` reads
the run's spool files (:mod:`._media_offline`) into the same frames.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from ._http import API, Connection, encode_segment
from ._media_offline import OfflineMedia


class StoredImage:
    """One stored image: ``width``, ``height``, ``caption``, ``digest`` (sha256 of the
    PNG); ``png`` (bytes), ``to_pil()``, ``to_numpy()`` fetch it on first use.
    Shown as the picture in a notebook."""

    def __init__(
        self,
        conn: Connection | None,
        digest: str,
        width: int,
        height: int,
        caption: str | None,
        png: bytes | None = None,
    ) -> None:
        self._conn, self.digest = conn, digest
        self.width, self.height, self.caption = width, height, caption
        self._png = png

    @property
    def png(self) -> bytes:
        if self._png is None:
            assert self._conn is not None  # offline images come with their bytes
            self._png = self._conn.request("GET", f"{API}media/{self.digest}").data
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


def _offline(api: Any, run_id: str) -> OfflineMedia | None:
    """The run's spooled media when ``api`` reads local spools, else None."""
    return OfflineMedia(api._src.root, run_id) if api.connection is None else None


def _range(start_step: int | None, end_step: int | None) -> dict[str, int]:
    return {k: v for k, v in (("start_step", start_step), ("end_step", end_step)) if v is not None}


def media_keys(api: Any, run_id: str) -> pd.DataFrame:
    """``key, kind, steps, first_step, last_step, last_time`` of every media key."""
    offline = _offline(api, run_id)
    if offline is not None:
        keys = offline.keys()
    else:
        keys = api.connection.get_json(f"{API}runs/{run_id}/media")["keys"]
    columns = ["key", "kind", "steps", "first_step", "last_step", "last_time"]
    return pd.DataFrame(keys, columns=columns)


PAGE_STEPS = 1000  # the server's most steps of images / histograms per request


def images(
    api: Any, run_id: str, key: str, start_step: int | None, end_step: int | None
) -> pd.DataFrame:
    """``step, index, time, caption, width, height, digest, image`` (a StoredImage),
    every image of the range: pages of :data:`PAGE_STEPS` steps, newest first."""
    conn: Connection | None = api.connection
    offline = _offline(api, run_id)
    path = f"{API}runs/{run_id}/images/{encode_segment(key)}"
    pages: list[list[dict[str, Any]]] = []
    end, total = end_step, None
    while True:
        if offline is not None:
            body = offline.images(key, start_step, end)
        else:
            body = api.connection.get_json(path, limit=PAGE_STEPS, **_range(start_step, end))
        total = body["steps"] if total is None else total
        rows = body["images"]
        pages.append(rows)
        if not rows or len({r["step"] for r in rows}) >= body["steps"]:
            break
        end = min(r["step"] for r in rows) - 1
    rows = [r for page in reversed(pages) for r in page]
    pngs = offline.pngs if offline is not None else {}
    df = pd.DataFrame(
        rows, columns=["step", "index", "time", "caption", "width", "height", "digest"]
    )
    df["image"] = pd.Series(
        [
            StoredImage(
                conn, r["digest"], r["width"], r["height"], r["caption"], pngs.get(r["digest"])
            )
            for r in rows
        ],
        dtype=object,
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
    offline = _offline(api, run_id)
    path = f"{API}runs/{run_id}/histograms/{encode_segment(key)}"

    def fetch(lo: int | None, hi: int | None) -> tuple[int, list[dict[str, Any]]]:
        if offline is not None:
            body = offline.histograms(key, lo, hi)
        else:
            params = {"max_steps": max_steps or PAGE_STEPS, **_range(lo, hi)}
            body = api.connection.get_json(path, **params)
        rows = body["histograms"]
        if max_steps is not None or len(rows) >= body["steps"] or len(rows) < 2:
            return body["steps"], rows
        mid = rows[len(rows) // 2]["step"]  # thinned: the two halves, each exactly
        return body["steps"], fetch(lo, mid)[1] + fetch(mid + 1, hi)[1]

    total, rows = fetch(start_step, end_step)
    df = pd.DataFrame(
        {
            "step": pd.Series([r["step"] for r in rows], dtype="int64"),
            "time": pd.Series([r["time"] for r in rows], dtype="float64"),
            "edges": pd.Series([np.asarray(r["edges"]) for r in rows], dtype=object),
            "counts": pd.Series([np.asarray(r["counts"]) for r in rows], dtype=object),
        }
    )
    df.attrs.update(run_id=run_id, key=key, steps=total)
    return df


def table(api: Any, run_id: str, key: str, step: int | None) -> pd.DataFrame:
    """The table logged under ``key`` at ``step`` (the latest when None), as logged."""
    offline = _offline(api, run_id)
    if offline is not None:
        arrow = pa.ipc.open_stream(offline.table(key, step)).read_all()
    else:
        params = {"step": step} if step is not None else {}
        path = f"{API}runs/{run_id}/tables/{encode_segment(key)}"
        arrow = api.connection.get_arrow(path, **params)
    df = arrow.to_pandas()
    df.attrs.update(run_id=run_id, key=key)
    return df
