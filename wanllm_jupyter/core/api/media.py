"""Media bodies: images, histograms and tables logged beside metrics (``wl.Image``,
``wl.Histogram``, ``wl.Table``), and their reads.

Upload: ``POST media/batch`` with a :class:`MediaBatch`, as msgpack
(``application/msgpack``: ``bytes`` fields raw) or JSON (``bytes`` fields base64).
The client resolves every step before sending (wandb's step rules), so a media
item always names its step. Images are PNG, encoded by the client's sender thread;
tables are an Arrow IPC stream; histograms are bin edges and counts.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta

from .. import limits as L
from .fields import EPOCH_SECONDS, BatchId, Int64, MetricName, UuidText
from .runs import Request, Response

MediaKind = Literal["image", "histogram", "table"]
Caption = Annotated[str, Meta(max_length=L.MAX_CAPTION_LENGTH)]
Digest = Annotated[
    str, Meta(pattern="^[0-9a-f]{64}$", description="sha256 of the stored bytes, hex")
]
ItemBytes = Annotated[bytes, Meta(max_length=L.MAX_MEDIA_ITEM_BYTES)]
Bins = Annotated[list[float], Meta(min_length=1, max_length=L.MAX_HISTOGRAM_BINS)]
Edges = Annotated[list[float], Meta(min_length=2, max_length=L.MAX_HISTOGRAM_BINS + 1)]


class ImageIn(Request):
    """One image: PNG bytes (the client encodes arrays, PIL images and tensors)."""

    png: ItemBytes
    caption: Caption | None = None


class HistogramIn(Request):
    """Bin ``i`` holds ``counts[i]`` values in ``[edges[i], edges[i+1])``: edges
    finite and strictly increasing, ``len(edges) == len(counts) + 1``, counts ≥ 0."""

    edges: Edges
    counts: Bins


class TableIn(Request):
    """A table as an Arrow IPC stream (at most ``MAX_TABLE_ROWS`` rows)."""

    arrow: ItemBytes


class MediaItem(Request):
    """What one key holds at one step: exactly one of ``images``, ``histogram``,
    ``table``. A key keeps one kind for the run's life (else 422)."""

    key: MetricName
    step: Int64
    time: Annotated[EPOCH_SECONDS, Meta(description="epoch seconds; absent = now")] | None = None
    images: (
        Annotated[list[ImageIn], Meta(min_length=1, max_length=L.MAX_IMAGES_PER_STEP)] | None
    ) = None
    histogram: HistogramIn | None = None
    table: TableIn | None = None


class MediaBatch(Request):
    """Media of one run. A (key, step) logged again replaces what was stored there."""

    run_id: UuidText
    items: Annotated[list[MediaItem], Meta(max_length=L.MAX_MEDIA_ITEMS_PER_BATCH)]
    batch_id: Annotated[BatchId, Meta(description="idempotency key")] | None = None


class MediaWriteResult(Response):
    run_id: UuidText
    accepted: int


class MediaKeyInfo(Response):
    key: str
    kind: MediaKind
    steps: int
    first_step: int
    last_step: int
    last_time: float


class MediaKeys(Response):
    """``GET runs/{run_id}/media``: every media key of the run."""

    run_id: UuidText
    keys: list[MediaKeyInfo]


class ImageInfo(Response):
    """One stored image; its PNG is ``GET media/{digest}`` (ETag = digest)."""

    step: int
    index: int
    time: float
    caption: str | None
    width: int
    height: int
    digest: Digest


class Images(Response):
    """``GET runs/{run_id}/images/{key}``: images in step order (``index`` = place
    in the list logged at that step); ``steps`` = distinct steps in the range."""

    run_id: UuidText
    key: str
    steps: int
    images: list[ImageInfo]


class HistogramStep(Response):
    step: int
    time: float
    edges: list[float]
    counts: list[float]


class Histograms(Response):
    """``GET runs/{run_id}/histograms/{key}``: at most ``max_steps`` steps of the
    range, evenly chosen (first and last always kept); ``steps`` = how many exist."""

    run_id: UuidText
    key: str
    steps: int
    histograms: list[HistogramStep]


class TableStep(Response):
    step: int
    time: float
    rows: int
    digest: Digest


class TableData(Response):
    """``GET runs/{run_id}/tables/{key}?step=`` (absent = latest) as JSON; with
    ``format=arrow`` the body is the stored Arrow IPC stream itself."""

    run_id: UuidText
    key: str
    step: int
    columns: list[str]
    data: Annotated[
        list[list[Any]], Meta(description='rows; non-finite floats as "NaN"/"Infinity"/"-Infinity"')
    ]
    steps: list[TableStep]
