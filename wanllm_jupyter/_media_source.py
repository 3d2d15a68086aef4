"""The kernel's one reader of a run's media: its keys, images, histograms and
tables from the server's REST API (docs/api.md), decoded into the contract's
models (:mod:`wanllm_jupyter.core.api.media`), and PNG bytes through a small LRU
cache shared by the kernel.

Both the media panels (:mod:`.widgets`) and the pandas accessors
(:mod:`._media_read`) read through it; an offline ``Api`` reads the spool through
:class:`._media_offline.OfflineMedia`, which answers the same models. The kernel
fetches everything; the browser only receives widget state, so the panels work
in every front end (JupyterLab, Notebook 7, VS Code, Colab).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, TypeVar

import msgspec
import pyarrow as pa

from ._http import API, Connection, encode_segment
from .core.api.media import Histograms, Images, MediaKeys, TableData

T = TypeVar("T")
PNG_CACHE_BYTES = 32 * 1024 * 1024  # decoded PNGs kept for every panel of the kernel
MAX_HISTOGRAM_STEPS = 200  # steps a heatmap asks for (the server picks them evenly)


class PngCache:
    """PNG bytes by digest, least recently used first out past ``budget`` bytes.
    Digests name content, so an entry is never stale."""

    def __init__(self, budget: int = PNG_CACHE_BYTES) -> None:
        self.budget, self.size = budget, 0
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: str) -> bytes | None:
        with self._lock:
            data = self._items.get(digest)
            if data is not None:
                self._items.move_to_end(digest)
            return data

    def put(self, digest: str, data: bytes) -> None:
        if len(data) > self.budget:
            return  # larger than the whole cache: served uncached
        with self._lock:
            old = self._items.pop(digest, None)
            self.size += len(data) - (len(old) if old is not None else 0)
            self._items[digest] = data
            while self.size > self.budget:
                _, dropped = self._items.popitem(last=False)
                self.size -= len(dropped)

    def __len__(self) -> int:
        return len(self._items)


PNGS = PngCache()  # one per kernel: every panel shares it


class MediaSource:
    """The media reads of one server connection."""

    def __init__(self, conn: Connection, cache: PngCache = PNGS) -> None:
        self.conn, self.cache = conn, cache

    def _get(self, path: str, model: type[T], **params: Any) -> T:
        return msgspec.json.decode(self.conn.request("GET", API + path, **params).data, type=model)

    def keys(self, run_id: str) -> MediaKeys:
        """Every media key of the run, with its kind and step range."""
        return self._get(f"runs/{run_id}/media", MediaKeys)

    def images(
        self,
        run_id: str,
        key: str,
        *,
        start_step: int | None = None,
        end_step: int | None = None,
        limit: int | None = None,
    ) -> Images:
        return self._get(
            f"runs/{run_id}/images/{encode_segment(key)}",
            Images,
            start_step=start_step,
            end_step=end_step,
            limit=limit,
        )

    def png(self, digest: str) -> bytes:
        """One image's PNG bytes (cached by digest)."""
        data = self.cache.get(digest)
        if data is None:
            data = self.conn.request("GET", f"{API}media/{digest}").data
            self.cache.put(digest, data)
        return data

    def histograms(
        self,
        run_id: str,
        key: str,
        *,
        start_step: int | None = None,
        end_step: int | None = None,
        max_steps: int = MAX_HISTOGRAM_STEPS,
    ) -> Histograms:
        return self._get(
            f"runs/{run_id}/histograms/{encode_segment(key)}",
            Histograms,
            start_step=start_step,
            end_step=end_step,
            max_steps=max_steps,
        )

    def table(self, run_id: str, key: str, step: int | None = None) -> TableData:
        """The table logged under ``key`` at ``step`` (None: the latest), as JSON rows."""
        return self._get(
            f"runs/{run_id}/tables/{encode_segment(key)}", TableData, step=step, format="json"
        )

    def table_arrow(self, run_id: str, key: str, step: int | None = None) -> pa.Table:
        """The table logged under ``key`` at ``step`` (None: the latest), as logged."""
        return self.conn.get_arrow(f"{API}runs/{run_id}/tables/{encode_segment(key)}", step=step)
