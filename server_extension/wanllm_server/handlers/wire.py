"""HTTP-edge encodings: ISO times, non-finite floats, Arrow IPC streams."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import pyarrow as pa

from ..store.base import Int64Array

TIMESTAMP = pa.timestamp("us", tz="UTC")


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


def seconds(times: Int64Array) -> np.ndarray:
    """µs since epoch → float epoch seconds (the JSON series form)."""
    return times / 1e6


def timestamps(times: Int64Array) -> pa.Array:
    return pa.array(np.asarray(times, dtype=np.int64), type=TIMESTAMP)


class ArrowStream:
    """Arrow IPC stream writer handing back the bytes of each written batch."""

    def __init__(self, schema: pa.Schema) -> None:
        self._sink = io.BytesIO()
        self._writer = pa.ipc.new_stream(self._sink, schema)
        self.schema = schema

    def _take(self) -> bytes:
        data = self._sink.getvalue()
        self._sink.seek(0)
        self._sink.truncate()
        return data

    def header(self) -> bytes:
        """The schema message (written when the stream was opened)."""
        return self._take()

    def write(self, columns: dict[str, Any]) -> bytes:
        self._writer.write_batch(pa.record_batch(columns, schema=self.schema))
        return self._take()

    def close(self) -> bytes:
        self._writer.close()
        return self._take()


def arrow_table_bytes(columns: dict[str, Any], schema: pa.Schema) -> bytes:
    """A whole (small) result as one Arrow IPC stream."""
    stream = ArrowStream(schema)
    return stream.header() + stream.write(columns) + stream.close()
