"""A run's media as its spool files hold them, for ``wl.Api(offline=True)``: the
``media`` operations of ``spool.synced.jsonl`` then ``spool.jsonl``, a (key, step)
logged again replacing the earlier one as on the server, answered in the shapes
of the server's JSON (docs/api.md) so :mod:`._media_read` has one code path."""

from __future__ import annotations

import hashlib
import math
import struct
from pathlib import Path
from typing import Any

import msgspec

from ._spool import PENDING, SYNCED, read_ops
from .core.api.media import MediaBatch, MediaItem
from .core.errors import NotFound


class OfflineMedia:
    """The media of run ``run_id`` under the spool root ``root``."""

    def __init__(self, root: Path, run_id: str) -> None:
        self.run_id = run_id
        self._items: dict[tuple[str, int], MediaItem] = {}
        for name in (SYNCED, PENDING):
            path = root / "runs" / run_id / name
            if path.exists():
                for kind, body in read_ops(path):
                    if kind == "media":
                        for item in msgspec.convert(body, MediaBatch).items:
                            self._items[(item.key, item.step)] = item
        self.pngs: dict[str, bytes] = {}  # digest -> PNG, of the images answered

    def _of(self, key: str, lo: int | None, hi: int | None) -> list[MediaItem]:
        found = [
            item
            for (k, step), item in self._items.items()
            if k == key and (lo is None or step >= lo) and (hi is None or step <= hi)
        ]
        return sorted(found, key=lambda item: item.step)

    def keys(self) -> list[dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for item in sorted(self._items.values(), key=lambda item: item.step):
            info = out.setdefault(
                item.key,
                {"key": item.key, "kind": _kind(item), "steps": 0, "first_step": item.step},
            )
            info.update(steps=info["steps"] + 1, last_step=item.step, last_time=_time(item))
        return [out[k] for k in sorted(out)]

    def images(self, key: str, lo: int | None, hi: int | None) -> dict[str, Any]:
        items = [item for item in self._of(key, lo, hi) if item.images]
        rows = []
        for item in items:
            for index, image in enumerate(item.images or ()):
                digest = hashlib.sha256(image.png).hexdigest()
                self.pngs[digest] = image.png
                width, height = struct.unpack(">II", image.png[16:24])
                rows.append(
                    {
                        "step": item.step,
                        "index": index,
                        "time": _time(item),
                        "caption": image.caption,
                        "width": width,
                        "height": height,
                        "digest": digest,
                    }
                )
        return {"steps": len(items), "images": rows}

    def histograms(self, key: str, lo: int | None, hi: int | None) -> dict[str, Any]:
        rows = [
            {
                "step": item.step,
                "time": _time(item),
                "edges": item.histogram.edges,
                "counts": item.histogram.counts,
            }
            for item in self._of(key, lo, hi)
            if item.histogram is not None
        ]
        return {"steps": len(rows), "histograms": rows}

    def table(self, key: str, step: int | None) -> bytes:
        tables = [item for item in self._of(key, step, step) if item.table is not None]
        if not tables or tables[-1].table is None:
            at = "" if step is None else f" at step {step}"
            raise NotFound(404, f"run {self.run_id} has no table {key!r}{at} in its spool")
        return tables[-1].table.arrow


def _kind(item: MediaItem) -> str:
    return "image" if item.images else "histogram" if item.histogram is not None else "table"


def _time(item: MediaItem) -> float:
    return item.time if item.time is not None else math.nan
