"""Logged media → :class:`~.core.api.media.MediaBatch` bodies (on the sender thread).

Each ``(key, step, time, values)`` kept by :class:`~._columns.Columns` becomes one
:class:`~.core.api.media.MediaItem` once every value in it encodes; one that does
not (a bad image, a NaN-only histogram, a mixed-type table, a list longer than
``MAX_IMAGES_PER_STEP``, a key logged before as another kind) is left out with one
:class:`~._columns.WanllmWarning` per key, so the server never gets part of a
step. Items are packed into batches of about :data:`BATCH_BYTES`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ._media import MediaError
from .core.api.media import MediaBatch, MediaItem
from .core.limits import MAX_IMAGES_PER_STEP, MAX_MEDIA_ITEMS_PER_BATCH

BATCH_BYTES = 4 * 1024 * 1024  # a batch is cut once its items reach this
ITEM_BYTES = 12 * 1024 * 1024  # one key at one step (the server's body limit is 16 MiB)
MEDIA_CONTENT_TYPE = "application/msgpack"

Pending = tuple[str, int, float, list[Any]]
Warn = Callable[[str, str], None]


def media_batches(
    run_id: str, pending: Iterable[Pending], warn: Warn, kinds: dict[str, str]
) -> Iterator[MediaBatch]:
    """Encode ``pending`` media lazily and yield them as batches, oldest first.
    ``kinds`` remembers each key's kind across calls (a key keeps one kind)."""
    items: list[MediaItem] = []
    size = 0
    for key, step, t, values in pending:
        item = _item(key, step, t, values, warn, kinds)
        if item is None:
            continue
        n = item_bytes(item)
        if items and (size + n > BATCH_BYTES or len(items) == MAX_MEDIA_ITEMS_PER_BATCH):
            yield MediaBatch(run_id=run_id, items=items, batch_id=uuid.uuid4().hex)
            items, size = [], 0
        items.append(item)
        size += n
    if items:
        yield MediaBatch(run_id=run_id, items=items, batch_id=uuid.uuid4().hex)


def item_bytes(item: MediaItem) -> int:
    """About how many bytes ``item`` takes on the wire."""
    if item.images is not None:
        return sum(len(i.png) + len(i.caption or "") for i in item.images)
    if item.table is not None:
        return len(item.table.arrow)
    return 16 * len(item.histogram.counts) if item.histogram is not None else 0


def _item(
    key: str, step: int, t: float, values: list[Any], warn: Warn, kinds: dict[str, str]
) -> MediaItem | None:
    kind = values[0].kind
    if any(getattr(v, "kind", None) != kind for v in values) or (
        kind != "image" and len(values) > 1
    ):
        warn(key, "a list of media must hold only wl.Image values; skipped")
        return None
    if len(values) > MAX_IMAGES_PER_STEP:
        warn(key, f"{len(values)} images at one step, over {MAX_IMAGES_PER_STEP}; skipped")
        return None
    if kinds.setdefault(key, kind) != kind:
        warn(key, f"logged before as a {kinds[key]}, now a {kind}: a key keeps one kind; skipped")
        return None
    try:
        encoded = [v.encode() for v in values]
    except MediaError as exc:
        warn(key, f"{kind} skipped: {exc}")
        return None
    except Exception as exc:  # never let one value stop the sender
        warn(key, f"{kind} skipped: {type(exc).__name__}: {exc}")
        return None
    if kind == "image":
        item = MediaItem(key=key, step=step, time=t, images=encoded)
    elif kind == "histogram":
        item = MediaItem(key=key, step=step, time=t, histogram=encoded[0])
    else:
        item = MediaItem(key=key, step=step, time=t, table=encoded[0])
    if item_bytes(item) > ITEM_BYTES:
        warn(key, f"{item_bytes(item)} bytes at one step, over {ITEM_BYTES}; skipped")
        return None
    return item


def encode_msgpack(batch: MediaBatch) -> bytes:
    """The request body of ``POST media/batch`` (``bytes`` fields raw)."""
    import msgspec

    return msgspec.msgpack.encode(batch)


def encode_json(batch: MediaBatch) -> bytes:
    """The JSON form (``bytes`` fields base64): what the spool and rejected files keep."""
    import msgspec

    return msgspec.json.encode(batch)
