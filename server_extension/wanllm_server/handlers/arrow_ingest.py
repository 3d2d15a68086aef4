"""The compact columnar metrics batch as an Arrow IPC stream (the bundled client's form).

Columns (docs/api.md): ``metric_name`` (``dictionary<int, string>`` or
``string``), ``step`` (integer; null = auto-step), ``time`` (timestamp, naive
= UTC; optional, null = now), ``value`` (float64, NaN/±Inf as IEEE). Schema
metadata: ``run_id`` (required), ``batch_id`` (optional idempotency key).
Numbers stay in Arrow/numpy buffers (:func:`~wanllm_jupyter.core.arrow.numpy_of`):
nothing is converted point by point.
A stream is measured from its headers (:mod:`.arrow_scan`) and refused (413)
past the row or decompressed-size limit before any of it is decoded.
"""

from __future__ import annotations

import sys
import uuid
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from wanllm_jupyter.core.arrow import numpy_of

from ..store.base import INT64_MAX, InvalidBatch, ItemError, MetricBatch
from ..store.batches import COLUMNS, ROW, metric_batch_from_arrays, now_us, times_out_of_range
from .arrow_scan import MalformedStream, StreamTooLarge, scan_stream
from .base import ApiError

FIELDS = frozenset({"metric_name", "step", "time", "value"})
REQUIRED = ("metric_name", "step", "value")


def read_table(body: bytes | bytearray, max_points: int, max_bytes: int) -> pa.Table:
    """The IPC stream as one table, decoded only once its headers show at most
    ``max_points`` rows and ``max_bytes`` decompressed (else 413); 400 when it is
    not a valid Arrow stream."""
    try:
        scan_stream(body, max_points, max_bytes)
        return pa.ipc.open_stream(pa.py_buffer(body)).read_all()
    except StreamTooLarge as e:
        if e.what == "rows":
            message = f"batch of {e.size} points exceeds max_columnar_batch_size {e.limit}"
        else:
            message = (
                f"Arrow stream decompresses to at least {e.size} bytes, "
                f"exceeds max_arrow_decompressed_size {e.limit}"
            )
        raise ApiError(413, message) from None
    except (MalformedStream, pa.ArrowException, OSError, ValueError) as e:
        raise ApiError(400, f"malformed Arrow IPC stream: {e}") from None


def decoded_size(body: bytes | bytearray) -> int:
    """Bytes decoding ``body`` will touch: its decompressed size per the stream's
    headers (its own size when they cannot be read: decoding then fails at once)."""
    try:
        return max(len(body), scan_stream(body, sys.maxsize, sys.maxsize).bytes)
    except MalformedStream:
        return len(body)


def _meta(table: pa.Table, key: str) -> str | None:
    """Schema metadata ``key`` as text (invalid UTF-8 bytes as lone surrogates, which
    the text checks refuse)."""
    raw = (table.schema.metadata or {}).get(key.encode())
    return None if raw is None else raw.decode("utf-8", "surrogateescape")


def _nulls(col: pa.ChunkedArray, field: str) -> list[ItemError]:
    if not col.null_count:
        return []
    idx = np.flatnonzero(pc.is_null(col).to_numpy(zero_copy_only=False))
    return [ItemError(i, field, "null") for i in idx.tolist()]


# pyarrow-stubs 20 types fill_null's value as Scalar[Never]; pyarrow takes any Python value.
def _steps(col: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray | None]:
    """Steps as int64 and the auto-step mask (nulls); 422 naming uint64 steps past int64."""
    auto = pc.is_null(col).to_numpy(zero_copy_only=False) if col.null_count else None
    col = col.fill_null(0) if col.null_count else col  # type: ignore[arg-type]
    if col.type == pa.uint64():
        raw = numpy_of(col, np.uint64)
        bad = np.flatnonzero(raw > np.uint64(INT64_MAX))
        if bad.size:
            reason = ROW["step"].reason
            raise InvalidBatch(
                [ItemError(i, "step", reason(int(raw[i])) or "") for i in bad.tolist()]
            )
        return raw.astype(np.int64), auto
    return numpy_of(col.cast(pa.int64()), np.int64), auto


_US_PER_UNIT = {"s": 1_000_000, "ms": 1_000, "us": 1}


def _times(col: pa.ChunkedArray) -> np.ndarray:
    """Times as µs since the epoch (nulls = now; ns truncated to µs); 422 naming
    times outside the int64 µs range."""
    as_int = col.cast(pa.int64())
    raw = numpy_of(as_int.fill_null(0) if col.null_count else as_int, np.int64)  # type: ignore[arg-type]
    unit = col.type.unit
    if unit == "ns":
        us = raw // 1_000
    else:
        scale = _US_PER_UNIT[unit]
        bad = np.flatnonzero(np.abs(raw) > INT64_MAX // scale)
        if bad.size:
            raise InvalidBatch([ItemError(i, "time", "outside the µs range") for i in bad.tolist()])
        us = raw * scale
    if col.null_count:
        us = np.where(pc.is_null(col).to_numpy(zero_copy_only=False), now_us(), us)
    bad = times_out_of_range(us)
    if bad.size:
        raise InvalidBatch([ItemError(i, "time", "time out of range") for i in bad.tolist()])
    return us


def _names_and_codes(col: pa.ChunkedArray) -> tuple[list[Any], np.ndarray]:
    """The name table and each point's index into it; 422 for a dictionary index
    outside its chunk's dictionary."""
    if not pa.types.is_dictionary(col.type):
        enc = col.combine_chunks().dictionary_encode()
        return enc.dictionary.to_pylist(), numpy_of(enc.indices, np.int32).astype(np.int64)
    names: dict[Any, int] = {}
    codes, errors, offset = [], [], 0
    for chunk in cast("list[pa.DictionaryArray]", col.chunks):  # dictionary-typed, as checked
        labels = chunk.dictionary.to_pylist()
        # no nulls (rejected before); any integer index type, uint64 past int64 included
        t = chunk.indices.type
        sign = "i" if pa.types.is_signed_integer(t) else "u"
        raw = numpy_of(chunk.indices, np.dtype(f"{sign}{t.bit_width // 8}"))
        inside = (raw >= 0) & (raw < len(labels))
        idx = np.where(inside, raw, 0).astype(np.int64)
        bad = np.flatnonzero(~inside)
        errors += [
            ItemError(offset + i, "metric_name", "dictionary index out of range")
            for i in bad.tolist()
        ]
        remap = np.array([names.setdefault(n, len(names)) for n in labels] or [0], np.int64)
        codes.append(remap[np.clip(idx, 0, max(len(labels) - 1, 0))])
        offset += len(chunk)
    if errors:
        raise InvalidBatch(errors)
    return list(names), np.concatenate(codes) if codes else np.empty(0, np.int64)


def _check_types(table: pa.Table) -> list[ItemError]:
    errors = [ItemError(-1, f, "unknown field") for f in table.column_names if f not in FIELDS]
    errors += [ItemError(-1, f, "required") for f in REQUIRED if f not in table.column_names]
    checks = {
        "metric_name": (
            lambda t: (
                pa.types.is_string(t)
                or pa.types.is_large_string(t)
                or (pa.types.is_dictionary(t) and pa.types.is_string(t.value_type))
            ),
            "must be string or dictionary<int, string>",
        ),
        "step": (pa.types.is_integer, "must be an integer type"),
        "time": (pa.types.is_timestamp, "must be a timestamp type"),
        "value": (
            lambda t: pa.types.is_floating(t) or pa.types.is_integer(t),
            "must be a number type (float64)",
        ),
    }
    for name, (ok, reason) in checks.items():
        if name in table.column_names and not ok(table.schema.field(name).type):
            errors.append(ItemError(-1, name, f"{reason}, got {table.schema.field(name).type}"))
    return errors


def metric_batch_from_arrow(
    body: bytes | bytearray, max_points: int, max_bytes: int
) -> MetricBatch:
    """Validate an Arrow columnar batch; 413 over ``max_points`` rows or ``max_bytes``
    decompressed, 422 naming bad items."""
    table = read_table(body, max_points, max_bytes)
    errors = _check_types(table)
    run_id = _meta(table, "run_id")
    bad = "required (schema metadata)" if run_id is None else COLUMNS["run_id"].reason(run_id)
    if bad is not None:
        errors.append(ItemError(-1, "run_id", bad))
    batch_id = _meta(table, "batch_id")
    bad = None if batch_id is None else COLUMNS["batch_id"].reason(batch_id)
    if bad is not None:
        errors.append(ItemError(-1, "batch_id", bad))
    if errors:
        raise InvalidBatch(errors)
    errors = _nulls(table["metric_name"], "metric_name") + _nulls(table["value"], "value")
    if errors:
        raise InvalidBatch(errors)
    names, codes = _names_and_codes(table["metric_name"])
    steps, auto = _steps(table["step"])
    times = _times(table["time"]) if "time" in table.column_names else None
    values = numpy_of(table["value"].cast(pa.float64(), safe=False), np.float64)  # ints round
    return metric_batch_from_arrays(
        uuid.UUID(run_id), names, codes, steps, times, values, batch_id, auto_step=auto
    )
