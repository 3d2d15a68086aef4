"""A ``media/batch`` body checked item by item against its models
(:class:`wanllm_jupyter.core.api.MediaBatch`, ``MediaItem``, ``ImageIn``,
``HistogramIn``, ``TableIn``) into a :class:`~..store.media_base.MediaWrite`,
nothing stored yet.

The models state every limit: the fields of the batch and of an item are held to
their :func:`~wanllm_jupyter.core.api.check.checks` (the REST API's words, the
text rules), then each item is converted by msgspec, whose first complaint is
reworded here (:func:`refusal`). Written here are only the rules a model cannot
state: exactly one kind per item, a caption's text rules, a histogram's shape
(:func:`~wanllm_jupyter.core.media.histogram_problem`), and what the bytes hold.

Every bad item is named once (``index``, ``field``, ``reason``): 413 when an
item's bytes pass the model's limit, else 422. Nothing is decoded beyond what
is needed to trust it: a PNG's signature, chunk layout and ``IHDR`` (its pixels
are never inflated), an Arrow stream's headers (measured before its body is
read: :mod:`.arrow_scan`), then its record batches within that bound.
"""

from __future__ import annotations

import hashlib
import re
import struct
import uuid
import zlib
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa

from wanllm_jupyter.core import limits as L
from wanllm_jupyter.core.api import MediaBatch, MediaItem
from wanllm_jupyter.core.api.check import body_errors, field_check, required_names, split_error
from wanllm_jupyter.core.api.media import Caption
from wanllm_jupyter.core.media import histogram_problem, length_limits

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
MAX_ITEMS = length_limits(MediaBatch, "items")[1]  # past it: 413
CAPTION = field_check(Caption)  # the text rules msgspec cannot state
KINDS = ("images", "histogram", "table")  # an item gives exactly one
_BATCH_REQUIRED = sorted(required_names(MediaBatch))
_ITEM_REQUIRED = sorted(required_names(MediaItem))
_KIND_WORDS = {  # msgspec's names of JSON kinds, in the REST API's words
    name: field_check(tp).kind
    for name, tp in {
        "str": str,
        "int": int,
        "float": float,
        "bool": bool,
        "array": list[int],
        "object": dict,
    }.items()
}


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


def _at(value: Any, path: str) -> Any:
    """The part of ``value`` at msgspec's ``path`` (``images[0].png``)."""
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path):
        value = value[int(index)] if index else value[name]
    return value


def _items(n: int) -> str:
    return f"{n} item" if n == 1 else f"{n} items"


def refusal(error: msgspec.ValidationError, item: Any, binary: bool) -> _Bad:
    """msgspec's complaint about ``item`` as the REST API words it: the field's
    path, the limit with the size given, 413 for bytes past the model's limit."""
    reason, path = split_error(error)
    named = re.fullmatch(r"Object (missing required|contains unknown) field `(.*)`", reason)
    if named:
        field = f"{path}.{named[2][:64]}" if path else named[2][:64]
        return _Bad(field, "required" if named[1].startswith("missing") else "unknown field")
    value = _at(item, path)
    sized = re.fullmatch(r"Expected `(\w+)` of length ([<>])= (\d+)", reason)
    if sized:
        kind, limit = sized[1], int(sized[3])
        if kind == "bytes":  # a base64 text is measured before it is decoded
            size = f"{len(value)}" if isinstance(value, bytes) else f"about {len(value) // 4 * 3}"
            return _Bad(path, f"{size} bytes, over {limit}", 413)
        if kind == "str":  # the text rules' words
            return _Bad(path, L.text_problem(value, limit, allow_empty=True) or reason)
        side = "more" if sized[2] == "<" else "fewer"
        return _Bad(path, f"{side} than {_items(limit)} ({len(value)})")
    wrong = re.fullmatch(r"Expected `(\w+)(?: \| null)?`, got `\w+`", reason)
    if wrong:
        base64 = "bytes" if binary else "a base64 string"
        return _Bad(path, "must be " + (base64 if wrong[1] == "bytes" else _KIND_WORDS[wrong[1]]))
    if reason.startswith("Invalid base64"):
        return _Bad(path, "not base64")
    return _Bad(path, reason)


def _item(body: Any, binary: bool) -> MediaItem:
    """``body`` as its model: its fields in the REST API's words, then the nested
    models by msgspec (``bytes`` raw from msgpack, base64 text from JSON)."""
    if not isinstance(body, dict):
        raise _Bad("item", "must be an object")
    errors = body_errors(body, MediaItem)
    if errors:  # one entry per item: its first bad field
        raise _Bad(errors[0]["field"], errors[0]["reason"])
    for name in _ITEM_REQUIRED:
        if body.get(name) is None:
            raise _Bad(name, "required")
    given = [k for k in KINDS if body.get(k) is not None]
    if len(given) != 1:
        raise _Bad("|".join(KINDS), f"exactly one must be given, got {len(given)}")
    try:
        return msgspec.convert(body, MediaItem, builtin_types=(bytes,) if binary else ())
    except msgspec.ValidationError as e:
        raise refusal(e, body, binary) from None


def _blob(data: bytes, media_type: str) -> Blob:
    return Blob(hashlib.sha256(data).hexdigest(), media_type, data)


def _entry(body: Any, binary: bool, max_table_bytes: int) -> MediaEntry:
    """One item checked by its model, then by the rules a model cannot state."""
    item = _item(body, binary)
    time = now_us() if item.time is None else L.time_us(item.time)
    if item.images is not None:
        images = []
        for i, image in enumerate(item.images):
            bad = None if image.caption is None else CAPTION.reason(image.caption)
            if bad is not None:
                raise _Bad(f"images[{i}].caption", bad)
            try:
                width, height = png_size(image.png)
            except ValueError as e:
                raise _Bad(f"images[{i}].png", str(e)) from None
            images.append(ImageEntry(_blob(image.png, PNG_TYPE), image.caption, width, height))
        return MediaEntry(item.key, item.step, time, "image", images=tuple(images))
    if item.histogram is not None:
        edges = np.array(item.histogram.edges, dtype=np.float64)
        counts = np.array(item.histogram.counts, dtype=np.float64)
        bad_histogram = histogram_problem(edges, counts)
        if bad_histogram is not None:
            raise _Bad(*bad_histogram)
        return MediaEntry(item.key, item.step, time, "histogram", edges=edges, counts=counts)
    assert item.table is not None  # exactly one kind is given
    data = item.table.arrow
    rows = table_rows(data, max_table_bytes)
    return MediaEntry(item.key, item.step, time, "table", table=_blob(data, ARROW_TYPE), rows=rows)


def _run_id(body: dict[str, Any]) -> uuid.UUID | None:
    try:
        return uuid.UUID(body["run_id"]) if isinstance(body.get("run_id"), str) else None
    except ValueError:
        return None


def media_write(body: Any, binary: bool, max_table_bytes: int) -> MediaWrite:
    """The checked batch; ApiError 400 (not an object), 413 or 422 naming every bad item."""
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be an object")
    errors = body_errors(body, MediaBatch, -1)
    errors += [
        {"index": -1, "field": name, "reason": "required"}
        for name in _BATCH_REQUIRED
        if body.get(name) is None
    ]
    run_id = _run_id(body)
    if run_id is None and not any(e["field"] == "run_id" for e in errors):
        errors.append({"index": -1, "field": "run_id", "reason": "must be a UUID string"})
    if errors:
        raise ApiError(422, f"invalid media batch: {len(errors)} bad field(s)", errors)
    items = body["items"]
    assert run_id is not None and isinstance(items, list)
    if len(items) > MAX_ITEMS:
        reason = f"{len(items)} items, over the limit of {MAX_ITEMS}"
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
    return MediaWrite(body.get("batch_id") or new_batch_id(), run_id, entries)
