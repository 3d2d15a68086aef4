"""A ``media/batch`` body (:class:`wanllm_jupyter.core.api.MediaBatch`) checked
item by item into a :class:`~..store.media_base.MediaWrite`, nothing stored yet.

Every bad item is named (``index``, ``field``, ``reason``): 413 when an item's
bytes pass :data:`MAX_MEDIA_ITEM_BYTES`, else 422. Nothing is decoded beyond
what is needed to trust it: a PNG's signature, chunk layout and ``IHDR`` (its
pixels are never inflated), an Arrow stream's headers (measured before its
body is read: :mod:`.arrow_scan`), then its record batches within that bound.
"""

from __future__ import annotations

import binascii
import hashlib
import math
import struct
import uuid
import zlib
from typing import Any

import numpy as np
import pyarrow as pa

from wanllm_jupyter.core import limits as L
from wanllm_jupyter.core.api import MediaBatch, MediaItem, field_names
from wanllm_jupyter.core.media import histogram_problem

from ..store.batches import new_batch_id, now_us
from ..store.media_base import (
    ARROW_TYPE,
    PNG_TYPE,
    Blob,
    ImageEntry,
    MediaEntry,
    MediaWrite,
)
from .arrow_scan import MalformedStream, StreamTooLarge, scan_stream
from .base import ApiError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_BATCH_FIELDS = field_names(MediaBatch)
_ITEM_FIELDS = field_names(MediaItem)
_KINDS = ("images", "histogram", "table")
_IMAGE_FIELDS = frozenset({"png", "caption"})


class _Bad(Exception):
    """One bad field of one item."""

    def __init__(self, field: str, reason: str, status: int = 422) -> None:
        super().__init__(reason)
        self.field, self.reason, self.status = field, reason, status


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a PNG from its ``IHDR``; ValueError unless the bytes are
    a PNG whose chunks run from ``IHDR`` to ``IEND`` with image data between."""
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG (bad signature)")
    if len(data) < 33 or data[8:16] != b"\x00\x00\x00\rIHDR":
        raise ValueError("not a PNG (no IHDR chunk first)")
    if zlib.crc32(data[12:29]) != struct.unpack_from(">I", data, 29)[0]:
        raise ValueError("corrupt PNG (IHDR checksum)")
    width, height = struct.unpack_from(">II", data, 16)
    if not (0 < width < 2**31 and 0 < height < 2**31):
        raise ValueError(f"PNG size {width}x{height} is invalid")
    if width * height > L.MAX_IMAGE_PIXELS:
        raise ValueError(f"PNG of {width}x{height} pixels exceeds {L.MAX_IMAGE_PIXELS} pixels")
    pos, seen_data = 33, False
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind = data[pos + 4 : pos + 8]
        pos += 12 + length
        if pos > len(data):
            break
        seen_data = seen_data or kind == b"IDAT"
        if kind == b"IEND":
            if not seen_data:
                raise ValueError("PNG without image data")
            return width, height
    raise ValueError("truncated PNG (no IEND chunk)")


def table_rows(data: bytes, max_bytes: int) -> int:
    """Rows of an Arrow IPC stream, measured from its headers (nothing decompressed
    past ``max_bytes``) and then read to its end."""
    try:
        rows = scan_stream(data, L.MAX_TABLE_ROWS, max_bytes).rows
        table = pa.ipc.open_stream(pa.py_buffer(data)).read_all()
    except StreamTooLarge as e:
        if e.what == "rows":
            raise _Bad("table.arrow", f"more than {L.MAX_TABLE_ROWS} rows ({e.size})") from None
        reason = f"decompresses to at least {e.size} bytes, over {max_bytes}"
        raise _Bad("table.arrow", reason, 413) from None
    except (MalformedStream, pa.ArrowException, OSError, ValueError) as e:
        raise _Bad("table.arrow", f"not an Arrow IPC stream: {str(e)[:200]}") from None
    if table.num_rows != rows:
        raise _Bad("table.arrow", "not an Arrow IPC stream: inconsistent row counts")
    return rows


def _bytes(value: Any, field: str, binary: bool) -> bytes:
    """An item's bytes: raw (msgpack) or base64 text (JSON); 413 past the item limit."""
    if binary and isinstance(value, bytes | bytearray):
        data = bytes(value)
    elif not binary and isinstance(value, str):
        if len(value) // 4 * 3 > L.MAX_MEDIA_ITEM_BYTES + 3:  # refused before decoding
            size = len(value) // 4 * 3
            raise _Bad(field, f"about {size} bytes, over {L.MAX_MEDIA_ITEM_BYTES}", 413)
        try:
            data = binascii.a2b_base64(value, strict_mode=True)
        except (binascii.Error, ValueError) as e:  # ValueError: not ASCII
            raise _Bad(field, f"not base64: {e}") from None
    else:
        raise _Bad(field, "must be bytes" if binary else "must be a base64 string")
    if len(data) > L.MAX_MEDIA_ITEM_BYTES:
        raise _Bad(field, f"{len(data)} bytes, over {L.MAX_MEDIA_ITEM_BYTES}", 413)
    return data


def _blob(data: bytes, media_type: str) -> Blob:
    return Blob(hashlib.sha256(data).hexdigest(), media_type, data)


def _object(value: Any, field: str, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(field, "must be an object")
    unknown = sorted(str(k)[:64] for k in value.keys() - allowed)
    if unknown:
        raise _Bad(f"{field}.{unknown[0]}", "unknown field")
    return value


def _images(value: Any, binary: bool) -> tuple[ImageEntry, ...]:
    if not isinstance(value, list) or not value:
        raise _Bad("images", "must be a non-empty list")
    if len(value) > L.MAX_IMAGES_PER_STEP:
        raise _Bad("images", f"more than {L.MAX_IMAGES_PER_STEP} images ({len(value)})")
    out = []
    for i, raw in enumerate(value):
        image = _object(raw, f"images[{i}]", _IMAGE_FIELDS)
        caption = image.get("caption")
        if caption is not None:
            bad = L.text_problem(caption, L.MAX_CAPTION_LENGTH, allow_empty=True)
            if bad is not None:
                raise _Bad(f"images[{i}].caption", bad)
        data = _bytes(image.get("png"), f"images[{i}].png", binary)
        try:
            width, height = png_size(data)
        except ValueError as e:
            raise _Bad(f"images[{i}].png", str(e)) from None
        out.append(ImageEntry(_blob(data, PNG_TYPE), caption, width, height))
    return tuple(out)


def _floats(value: Any, field: str) -> np.ndarray:
    ok = isinstance(value, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    )
    if not ok:
        raise _Bad(field, "must be a list of numbers")
    if len(value) > L.MAX_HISTOGRAM_BINS + 1:  # before converting anything
        raise _Bad(field, f"must hold at most {L.MAX_HISTOGRAM_BINS + 1} numbers ({len(value)})")
    try:
        return np.array(value, dtype=np.float64)
    except OverflowError:
        raise _Bad(field, "a number out of the float64 range") from None


def _histogram(value: Any) -> tuple[np.ndarray, np.ndarray]:
    hist = _object(value, "histogram", frozenset({"edges", "counts"}))
    edges = _floats(hist.get("edges"), "histogram.edges")
    counts = _floats(hist.get("counts"), "histogram.counts")
    bad = histogram_problem(edges, counts)
    if bad is not None:
        raise _Bad(*bad)
    return edges, counts


def _entry(item: Any, binary: bool, max_table_bytes: int) -> MediaEntry:
    body = _object(item, "item", _ITEM_FIELDS)
    key: Any = body.get("key")
    bad = L.text_problem(key, L.MAX_METRIC_NAME_LENGTH)
    if bad is not None:
        raise _Bad("key", bad)
    step: Any = body.get("step")
    bad = L.int_problem(step) if step is not None else "required"
    if bad is not None:
        raise _Bad("step", bad)
    given = [k for k in _KINDS if body.get(k) is not None]
    if len(given) != 1:
        raise _Bad("images|histogram|table", f"exactly one must be given, got {len(given)}")
    time = now_us()
    if body.get("time") is not None:
        t = body["time"]
        if not isinstance(t, int | float) or isinstance(t, bool) or not math.isfinite(t):
            raise _Bad("time", "must be epoch seconds (a finite number)")
        try:
            time = L.time_us(t)
        except ValueError as e:
            raise _Bad("time", str(e)) from None
    if given[0] == "images":
        return MediaEntry(key, step, time, "image", images=_images(body["images"], binary))
    if given[0] == "histogram":
        edges, counts = _histogram(body["histogram"])
        return MediaEntry(key, step, time, "histogram", edges=edges, counts=counts)
    table = _object(body["table"], "table", frozenset({"arrow"}))
    data = _bytes(table.get("arrow"), "table.arrow", binary)
    rows = table_rows(data, max_table_bytes)
    return MediaEntry(key, step, time, "table", table=_blob(data, ARROW_TYPE), rows=rows)


def media_write(body: Any, binary: bool, max_table_bytes: int) -> MediaWrite:
    """The checked batch; ApiError 400 (not an object), 413 or 422 naming every bad item."""
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be an object")
    errors = [
        {"index": -1, "field": str(k)[:64], "reason": "unknown field"}
        for k in body.keys() - _BATCH_FIELDS
    ]
    try:
        run_id = uuid.UUID(body["run_id"]) if isinstance(body.get("run_id"), str) else None
    except ValueError:
        run_id = None
    if run_id is None:
        errors.append({"index": -1, "field": "run_id", "reason": "must be a UUID string"})
    bid = body.get("batch_id")
    bad = None if bid is None else L.text_problem(bid, L.MAX_BATCH_ID_LENGTH)
    if bad is not None:
        errors.append({"index": -1, "field": "batch_id", "reason": bad})
    items = body.get("items")
    if not isinstance(items, list):
        errors.append({"index": -1, "field": "items", "reason": "must be a list"})
    if errors:
        raise ApiError(422, f"invalid media batch: {len(errors)} bad field(s)", errors)
    assert run_id is not None and isinstance(items, list)
    if len(items) > L.MAX_MEDIA_ITEMS_PER_BATCH:
        reason = f"{len(items)} items, over the limit of {L.MAX_MEDIA_ITEMS_PER_BATCH}"
        raise ApiError(413, f"media batch too large: {reason}", [
            {"index": -1, "field": "items", "reason": reason}
        ])  # fmt: skip
    entries, too_large = [], []
    for i, item in enumerate(items):
        try:
            entries.append(_entry(item, binary, max_table_bytes))
        except _Bad as e:
            errors.append({"index": i, "field": e.field, "reason": e.reason})
            if e.status == 413:
                too_large.append(i)
    if too_large:
        i = too_large[0]
        key = items[i].get("key") if isinstance(items[i], dict) else None
        raise ApiError(413, f"media item {i} (key {str(key)[:64]!r}) is too large", errors)
    if errors:
        raise ApiError(422, f"{len(errors)} invalid media item(s)", errors)
    return MediaWrite(bid or new_batch_id(), run_id, entries)
