"""HTTP-edge encodings: ISO times, non-finite floats, Arrow IPC streams."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from wanllm_jupyter._arrow import TIMESTAMP, dictionary_array, numpy_array

from ..live_wire import wire_floats
from ..store.base import Int64Array

JSON_SLICE = 1 << 15  # array items per encoder call: ~1-2 ms holding the GIL


def iso(us: int | None) -> str | None:
    """µs since epoch → ``2026-11-28T04:00:00.123456Z`` (None stays None)."""
    if us is None:
        return None
    return str(np.datetime64(int(us), "us")) + "Z"


def wire_float(value: float | None) -> float | str | None:
    """A float for JSON: NaN/±Inf as ``"NaN"``, ``"Infinity"``, ``"-Infinity"``."""
    if value is None or math.isfinite(value):
        return value
    return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")


def json_bytes(obj: Any) -> bytes:
    """JSON of dicts (values encoded recursively), 1-D numpy arrays, lists and
    scalars (encoded by orjson as they are), long arrays and lists encoded
    :data:`JSON_SLICE` items at a time (each encoder call holds the GIL, so a worker
    thread running this lets the event loop in between). Non-finite floats in
    float arrays become ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` (see
    :func:`wire_floats`); inside lists they follow orjson (``null``)."""
    if isinstance(obj, dict):
        items = (orjson.dumps(str(k)) + b":" + json_bytes(v) for k, v in obj.items())
        return b"{" + b",".join(items) + b"}"
    if isinstance(obj, np.ndarray | list) and len(obj) > JSON_SLICE:
        parts = (_json_items(obj[i : i + JSON_SLICE]) for i in range(0, len(obj), JSON_SLICE))
        return b"[" + b",".join(parts) + b"]"
    if isinstance(obj, np.ndarray | list):
        return b"[" + _json_items(obj) + b"]" if len(obj) else b"[]"
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)


def _json_items(part: np.ndarray | list[Any]) -> bytes:
    """The comma-separated items of a non-empty slice, without brackets."""
    if isinstance(part, np.ndarray) and part.dtype.kind == "f" and not np.isfinite(part).all():
        part = wire_floats(part)
    return orjson.dumps(part, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1]


def seconds(times: Int64Array) -> np.ndarray:
    """µs since epoch → float epoch seconds (the JSON series form)."""
    return times / 1e6


def constant_names(label: str, n: int) -> pa.DictionaryArray:
    """``label`` repeated ``n`` times as a dictionary column (4 bytes per row)."""
    return dictionary_array(np.zeros(n, np.int32), [label])


def timestamps(times: Int64Array) -> pa.Array:
    return numpy_array(np.asarray(times, dtype=np.int64), TIMESTAMP)


_NUMPY_TYPES = {pa.int32(): np.int32, pa.int64(): np.int64, pa.float64(): np.float64}


def _column(value: Any, field: pa.Field) -> Any:
    dtype = _NUMPY_TYPES.get(field.type)
    if dtype is not None and isinstance(value, np.ndarray):
        return numpy_array(value.astype(dtype, copy=False), field.type)
    return value


class _Pieces:
    """A write-only file for the IPC writer that keeps what it is given: small
    ``bytes`` headers and, zero-copy, the column buffers themselves."""

    closed = False

    def __init__(self) -> None:
        self.parts: list[Any] = []
        self._pos = 0

    def write(self, data: Any) -> int:
        self.parts.append(data)
        self._pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


Pieces = list[Any]  # bytes and pyarrow Buffers, in stream order


class ArrowStream:
    """Arrow IPC stream writer handing back the pieces of each written batch."""

    def __init__(self, schema: pa.Schema) -> None:
        self._sink = _Pieces()
        self._writer = pa.ipc.new_stream(self._sink, schema)
        self.schema = schema

    def _take(self) -> Pieces:
        parts, self._sink.parts = self._sink.parts, []
        return parts

    def header(self) -> Pieces:
        """The schema message (written when the stream was opened)."""
        return self._take()

    def write(self, columns: dict[str, Any]) -> Pieces:
        """One record batch; numpy columns are wrapped zero-copy (see :func:`numpy_array`)."""
        arrays = [_column(columns[f.name], f) for f in self.schema]
        self._writer.write_batch(pa.record_batch(arrays, schema=self.schema))
        return self._take()

    def close(self) -> Pieces:
        self._writer.close()
        return self._take()


def slices(parts: Pieces, size: int) -> Iterator[bytes]:
    """``parts`` re-cut into ``bytes`` of about ``size`` (small pieces are joined,
    big buffers split), so each is copied only in cache-sized slices."""
    pending: list[bytes] = []
    held = 0
    for part in parts:
        view = memoryview(part)
        for off in range(0, len(view), size):
            pending.append(view[off : off + size].tobytes())
            held += len(pending[-1])
            if held >= size:
                yield b"".join(pending)
                pending, held = [], 0
    if pending:
        yield b"".join(pending)


def arrow_table_bytes(columns: dict[str, Any], schema: pa.Schema) -> bytes:
    """A whole (small) result as one Arrow IPC stream."""
    stream = ArrowStream(schema)
    parts = stream.header() + stream.write(columns) + stream.close()
    return b"".join(memoryview(p).tobytes() if not isinstance(p, bytes) else p for p in parts)
