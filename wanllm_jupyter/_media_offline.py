"""Runs' media as their spool files hold them, for ``wl.Api(offline=True)``: the
``media`` operations of ``spool.synced.jsonl`` then ``spool.jsonl``, a (key, step)
logged again replacing the earlier one as on the server, answered as the models
the server's answers decode to, through the methods of
:class:`._media_source.MediaSource`, so :mod:`._media_read` has one code path."""

from __future__ import annotations

import hashlib
import math
import struct
from pathlib import Path

import msgspec
import pyarrow as pa

from ._spool import PENDING, SYNCED, read_ops
from .core.api.media import (
    Histograms,
    HistogramStep,
    ImageInfo,
    Images,
    MediaBatch,
    MediaItem,
    MediaKeyInfo,
    MediaKeys,
    MediaKind,
)
from .core.errors import NotFound


class OfflineMedia:
    """The media of the runs spooled under the spool root ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._runs: dict[str, dict[tuple[str, int], MediaItem]] = {}
        self._pngs: dict[str, bytes] = {}  # digest -> PNG, of the images answered

    def _items(self, run_id: str) -> dict[tuple[str, int], MediaItem]:
        items = self._runs.get(run_id)
        if items is None:
            items = self._runs[run_id] = {}
            for name in (SYNCED, PENDING):
                path = self.root / "runs" / run_id / name
                if path.exists():
                    for kind, body in read_ops(path):
                        if kind == "media":
                            for item in msgspec.convert(body, MediaBatch).items:
                                items[(item.key, item.step)] = item
        return items

    def _of(self, run_id: str, key: str, lo: int | None, hi: int | None) -> list[MediaItem]:
        found = [
            item
            for (k, step), item in self._items(run_id).items()
            if k == key and (lo is None or step >= lo) and (hi is None or step <= hi)
        ]
        return sorted(found, key=lambda item: item.step)

    def keys(self, run_id: str) -> MediaKeys:
        out: dict[str, MediaKeyInfo] = {}
        for item in sorted(self._items(run_id).values(), key=lambda item: item.step):
            info = out.get(item.key)
            if info is None:
                info = out[item.key] = MediaKeyInfo(
                    item.key, _kind(item), 0, item.step, item.step, _time(item)
                )
            info.steps += 1
            info.last_step, info.last_time = item.step, _time(item)
        return MediaKeys(run_id, [out[k] for k in sorted(out)])

    def images(
        self,
        run_id: str,
        key: str,
        *,
        start_step: int | None = None,
        end_step: int | None = None,
        limit: int | None = None,
    ) -> Images:
        """Every image of the range (``limit`` is a server's page size)."""
        items = [item for item in self._of(run_id, key, start_step, end_step) if item.images]
        rows = []
        for item in items:
            for index, image in enumerate(item.images or ()):
                digest = hashlib.sha256(image.png).hexdigest()
                self._pngs[digest] = image.png
                width, height = struct.unpack(">II", image.png[16:24])
                rows.append(
                    ImageInfo(item.step, index, _time(item), image.caption, width, height, digest)
                )
        return Images(run_id, key, len(items), rows)

    def png(self, digest: str) -> bytes:
        """The PNG of an image :meth:`images` answered."""
        return self._pngs[digest]

    def histograms(
        self,
        run_id: str,
        key: str,
        *,
        start_step: int | None = None,
        end_step: int | None = None,
        max_steps: int | None = None,
    ) -> Histograms:
        """Every histogram of the range (``max_steps`` is a server's choice)."""
        rows = [
            HistogramStep(item.step, _time(item), item.histogram.edges, item.histogram.counts)
            for item in self._of(run_id, key, start_step, end_step)
            if item.histogram is not None
        ]
        return Histograms(run_id, key, len(rows), rows)

    def table_arrow(self, run_id: str, key: str, step: int | None = None) -> pa.Table:
        tables = [i.table for i in self._of(run_id, key, step, step) if i.table is not None]
        if not tables:
            at = "" if step is None else f" at step {step}"
            raise NotFound(404, f"run {run_id} has no table {key!r}{at} in its spool")
        return pa.ipc.open_stream(tables[-1].arrow).read_all()


def _kind(item: MediaItem) -> MediaKind:
    return "image" if item.images else "histogram" if item.histogram is not None else "table"


def _time(item: MediaItem) -> float:
    return item.time if item.time is not None else math.nan
