"""The media part of the storage contract: images, histograms and tables.

Bytes (PNGs, Arrow IPC streams) are content-addressed blobs (sha256), stored
once however often they are logged, with a reference count: a blob goes when
its last reference does (a replaced step, a deleted run, retention). Each
(run, key) holds one kind for the run's life; each (run, key, step) one
logged item (a list of images, a histogram or a table), replaced when logged
again. Batches are validated before they reach the store
(``handlers/media_input.py``); the store checks what needs the stored state
(the run exists, a key keeps its kind) with :mod:`.media_rules`.
"""

from __future__ import annotations

import abc
import uuid
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

MediaKind = Literal["image", "histogram", "table"]
Float64Array = npt.NDArray[np.float64]
PNG_TYPE = "image/png"
ARROW_TYPE = "application/vnd.apache.arrow.stream"


@dataclass(frozen=True, slots=True)
class Blob:
    digest: str  # sha256, hex
    media_type: str  # PNG_TYPE or ARROW_TYPE
    data: bytes


@dataclass(frozen=True, slots=True)
class ImageEntry:
    blob: Blob
    caption: str | None
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class MediaEntry:
    """What ``key`` holds at ``step``: ``images``, or ``edges``/``counts``, or ``table``."""

    key: str
    step: int
    time: int  # µs since epoch
    kind: MediaKind
    images: tuple[ImageEntry, ...] = ()
    edges: Float64Array | None = None
    counts: Float64Array | None = None
    table: Blob | None = None
    rows: int = 0

    def blobs(self) -> list[Blob]:
        return [i.blob for i in self.images] + ([self.table] if self.table else [])


@dataclass(slots=True)
class MediaWrite:
    """A validated media batch of one run (entries in batch order)."""

    batch_id: str
    run_id: uuid.UUID
    entries: list[MediaEntry]


@dataclass(frozen=True, slots=True)
class MediaKeyInfo:
    key: str
    kind: MediaKind
    steps: int
    first_step: int
    last_step: int
    last_time: int


@dataclass(frozen=True, slots=True)
class ImageRow:
    step: int
    index: int
    time: int
    caption: str | None
    width: int
    height: int
    digest: str


@dataclass(frozen=True, slots=True)
class HistogramRow:
    step: int
    time: int
    edges: Float64Array
    counts: Float64Array


@dataclass(frozen=True, slots=True)
class TableRow:
    step: int
    time: int
    rows: int
    digest: str


@dataclass(frozen=True, slots=True)
class StoredBlob:
    media_type: str
    data: bytes


class MediaStore(abc.ABC):
    """Media methods of every :class:`~.base.Store`."""

    @abc.abstractmethod
    async def write_media(self, batch: MediaWrite) -> bool:
        """Store the batch in one transaction, or nothing; False when its batch id
        was seen before (nothing written). RunNotFound for an unknown run,
        InvalidBatch (:func:`.media_rules.kind_errors`) when a key would change kind."""

    @abc.abstractmethod
    async def media_keys(self, run_id: uuid.UUID) -> list[MediaKeyInfo]:
        """Every media key of the run, by key."""

    @abc.abstractmethod
    async def images(
        self,
        run_id: uuid.UUID,
        key: str,
        *,
        start_step: int | None = None,
        end_step: int | None = None,
        limit: int = 100,
    ) -> tuple[int, list[ImageRow]]:
        """(distinct steps in the range, the images of its latest ``limit`` steps
        in (step, index) order)."""

    @abc.abstractmethod
    async def histograms(
        self,
        run_id: uuid.UUID,
        key: str,
        *,
        start_step: int | None = None,
        end_step: int | None = None,
        max_steps: int = 200,
    ) -> tuple[int, list[HistogramRow]]:
        """(steps in the range, at most ``max_steps`` of them: :func:`.media_rules.pick_steps`)."""

    @abc.abstractmethod
    async def table(
        self, run_id: uuid.UUID, key: str, step: int | None = None
    ) -> tuple[TableRow, bytes, list[TableRow]]:
        """(the table at ``step`` (None: the latest), its Arrow IPC bytes, every step)."""

    @abc.abstractmethod
    async def media_blob(self, digest: str) -> StoredBlob | None:
        """The stored bytes of ``digest``; None when no item references them."""
