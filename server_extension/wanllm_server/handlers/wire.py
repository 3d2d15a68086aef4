"""HTTP-edge encodings: ISO times, non-finite floats, Arrow IPC streams."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
from jupyter_server.base.handlers import APIHandler

from wanllm_jupyter.core.arrow import BUFFERS, TIMESTAMP, dictionary_array, numpy_array

from ..live_wire import wire_floats
from ..store.base import Int64Array

JSON_SLICE = 1 << 15  # array items per encoder call: ~1-2 ms holding the GIL
WRITE_BYTES = 1 << 20  # body pieces: each joined, copied and written on its own


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


def json_pieces(obj: Any) -> list[bytes]:
    """JSON of ``obj`` as ~:data:`WRITE_BYTES` pieces (see :func:`send_pieces`).

    Dicts are encoded recursively; 1-D numpy arrays, lists and scalars by orjson,
    long arrays and lists :data:`JSON_SLICE` items at a time. No step holds the
    GIL long (one encoder call per slice, joins of one piece), so a worker
    thread running this lets the event loop in between. Non-finite floats in
    float arrays become ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` (see
    :func:`wire_floats`); inside lists they follow orjson (``null``).
    """
    return grouped(json_fragments(obj))


def grouped(fragments: Iterable[bytes]) -> list[bytes]:
    """Consecutive ``fragments`` joined into pieces of about :data:`WRITE_BYTES`."""
    pieces: list[bytes] = []
    pending: list[bytes] = []
    held = 0
    for fragment in fragments:
        pending.append(fragment)
        held += len(fragment)
        if held >= WRITE_BYTES:
            pieces.append(b"".join(pending))
            pending, held = [], 0
    if pending or not pieces:
        pieces.append(b"".join(pending))
    return pieces


def json_bytes(obj: Any) -> bytes:
    """JSON of ``obj`` in one ``bytes`` (see :func:`json_pieces`)."""
    return b"".join(json_fragments(obj))


def json_fragments(obj: Any) -> Iterator[bytes]:
    """JSON of ``obj`` in small fragments (see :func:`json_pieces`)."""
    if isinstance(obj, dict):
        yield b"{"
        for i, (key, value) in enumerate(obj.items()):
            yield (b"," if i else b"") + orjson.dumps(str(key)) + b":"
            yield from json_fragments(value)
        yield b"}"
    elif isinstance(obj, np.ndarray | list):
        yield b"["
        for start in range(0, len(obj), JSON_SLICE):
            yield (b"," if start else b"") + _json_items(obj[start : start + JSON_SLICE])
        yield b"]"
    else:
        yield orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)


def _json_items(part: np.ndarray | list[Any]) -> bytes:
    """The comma-separated items of a non-empty slice, without brackets."""
    if isinstance(part, np.ndarray) and part.dtype.kind == "f" and not np.isfinite(part).all():
        part = wire_floats(part)
    return orjson.dumps(part, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1]


async def send_pieces(handler: APIHandler, pieces: list[bytes], content_type: str) -> None:
    """Finish ``handler`` with a body already cut into pieces: its Content-Length
    set up front and one flush per piece, so the loop never copies it whole."""
    handler.set_header("Content-Length", sum(len(p) for p in pieces))
    for piece in pieces[:-1]:
        await write_piece(handler, piece)
    handler.finish(pieces[-1] if pieces else b"", set_content_type=content_type)


async def write_piece(handler: APIHandler, piece: bytes) -> None:
    """Write and flush one body piece, then let the loop run its other callbacks:
    a flush the socket takes at once does not suspend, so without the yield a
    body of many pieces would be copied and sent in one loop step."""
    handler.write(piece)
    await handler.flush()
    await asyncio.sleep(0)


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


# pyarrow's IPC writer hands a Python sink the batch's own column buffers (pa.Buffer),
# which stay valid and unchanged after write() returns; relied on for the pyarrow
# versions of core/arrow.py's BUFFERS_PYARROW, else each piece is copied.
KEEP_PIECES = BUFFERS


class _Pieces:
    """A write-only file for the IPC writer that keeps what it is given: small
    ``bytes`` headers and, zero-copy (:data:`KEEP_PIECES`), the column buffers
    themselves; else a copy of each, as a file's ``write`` contract asks."""

    closed = False

    def __init__(self) -> None:
        self.parts: list[Any] = []
        self._pos = 0

    def write(self, data: Any) -> int:
        self.parts.append(data if KEEP_PIECES else bytes(data))
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
        # pyarrow writes to any object with write(); its stubs name only real files
        self._writer = pa.ipc.new_stream(self._sink, schema)  # type: ignore[arg-type]
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


def arrow_table_pieces(columns: dict[str, Any], schema: pa.Schema) -> list[bytes]:
    """A whole result as one Arrow IPC stream, in ~:data:`WRITE_BYTES` pieces."""
    stream = ArrowStream(schema)
    return list(slices(stream.header() + stream.write(columns) + stream.close(), WRITE_BYTES))
