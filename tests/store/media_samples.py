"""Media samples for the store and server media tests: real PNGs (zlib, no
imaging library), histograms and Arrow IPC tables."""

from __future__ import annotations

import hashlib
import struct
import uuid
import zlib

import numpy as np
import pyarrow as pa
from wanllm_server.store.media_base import (
    ARROW_TYPE,
    PNG_TYPE,
    Blob,
    ImageEntry,
    MediaEntry,
    MediaWrite,
)

T0 = 1_780_000_000_000_000  # µs


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int = 4, height: int = 3, seed: int = 0) -> bytes:
    """A valid RGB PNG of ``width`` x ``height`` random pixels."""
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), np.uint8)
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )


def arrow(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def sample_table(rows: int = 3) -> pa.Table:
    return pa.table(
        {
            "name": [f"row {i}" for i in range(rows)],
            "score": [float(i) / 2 for i in range(rows)],
            "n": list(range(rows)),
        }
    )


def blob(data: bytes, media_type: str) -> Blob:
    return Blob(hashlib.sha256(data).hexdigest(), media_type, data)


def image_entry(key: str, step: int, *pngs: bytes, time: int = T0) -> MediaEntry:
    images = tuple(
        ImageEntry(blob(p, PNG_TYPE), f"caption {i}", *struct.unpack(">II", p[16:24]))
        for i, p in enumerate(pngs)
    )
    return MediaEntry(key, step, time + step, "image", images=images)


def histogram_entry(key: str, step: int, counts: list[float], time: int = T0) -> MediaEntry:
    edges = np.arange(len(counts) + 1, dtype=np.float64) * 0.5 - 1
    return MediaEntry(
        key, step, time + step, "histogram", edges=edges, counts=np.array(counts, np.float64)
    )


def table_entry(key: str, step: int, table: pa.Table, time: int = T0) -> MediaEntry:
    data = arrow(table)
    return MediaEntry(
        key, step, time + step, "table", table=blob(data, ARROW_TYPE), rows=table.num_rows
    )


def write(run_id: uuid.UUID, *entries: MediaEntry, batch_id: str | None = None) -> MediaWrite:
    return MediaWrite(batch_id or uuid.uuid4().hex, run_id, list(entries))
