"""Metric history: one metric (raw, downsampled, smoothed) and bulk runs x metrics."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pyarrow as pa
from jupyter_server.auth.decorator import authorized
from tornado import web

from wanllm_jupyter.core import smoothing
from wanllm_jupyter.core.api import BulkHistoryRequest, field_names
from wanllm_jupyter.core.arrow import NAME_DICT, TIMESTAMP
from wanllm_jupyter.core.limits import MAX_METRIC_NAME_LENGTH, int_problem, text_problem

from ..store.base import Downsampled, Float64Array, HistoryChunk, Int64Array, Series
from .base import ARROW_TYPE, JSON_TYPE, ApiError, WanllmHandler
from .wire import (
    WRITE_BYTES,
    ArrowStream,
    arrow_table_pieces,
    constant_names,
    json_pieces,
    seconds,
    send_pieces,
    slices,
    timestamps,
    write_piece,
)

MAX_SAMPLES = 20_000
MAX_BULK_RUNS = 1000
ARROW_CHUNK_POINTS = 1 << 21  # a series of up to 2M points is one Arrow record batch
DEFAULT_SMOOTHING_STRENGTH = 0.6  # slider position used when smoothing_param is absent
BULK_SCHEMA = pa.schema(
    [
        ("run_id", NAME_DICT),
        ("metric_name", NAME_DICT),
        ("step", pa.int64()),
        ("time", TIMESTAMP),
        ("value", pa.float64()),
    ]
)


def smooth_at(
    full: Series, steps: Int64Array, method: str, param: float | None
) -> tuple[Float64Array, float]:
    """Smooth ``full`` (full resolution), then read the smoothed curve at ``steps``."""
    x = full.steps.astype(np.float64)
    try:
        if param is None:
            span = float(x[-1] - x[0]) if len(x) else 0.0
            param = smoothing.param_from_strength(method, DEFAULT_SMOOTHING_STRENGTH, span, len(x))
        result = smoothing.smooth(x, full.values, method, param)
    except smoothing.SmoothingError as e:
        raise ApiError(400, str(e)) from None
    if not len(result.x):
        return np.full(len(steps), np.nan), param
    idx = np.clip(np.searchsorted(result.x, steps), 0, len(result.x) - 1)
    return np.where(result.x[idx] == steps, result.values[idx], np.nan), param


class MetricHistoryHandler(WanllmHandler):
    """``runs/{id}/metrics/{name}``: raw points, or M4 with ``samples=N``; optional smoothing."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str, name: str) -> None:
        rid = self.run_id_arg(run_id)
        name = self.metric_name_arg(name)
        steps = {"start_step": self.int_arg("start_step"), "end_step": self.int_arg("end_step")}
        times = {"start_time": self.time_arg("start_time"), "end_time": self.time_arg("end_time")}
        limit = self.int_arg("limit", None, lo=1)
        samples = self.int_arg("samples", None, lo=1, hi=MAX_SAMPLES)
        method = self.get_query_argument("smoothing", None) or None
        param = self.float_arg("smoothing_param")
        if method is not None:
            _check_smoothing(method, param)
        fmt = self.format_arg()
        ranged_by_time = any(v is not None for v in times.values())
        if samples is not None and (limit is not None or ranged_by_time):
            raise ApiError(
                400,
                "samples= works on a step range; it cannot be combined with "
                "limit, start_time or end_time",
            )
        store = await self.store()
        with self.timed("history_sampled" if samples else "history"):
            ds: Downsampled | None = None
            if samples is not None:
                ds = await store.downsample(rid, name, samples, **steps)
                points = ds.points
            else:
                points = await store.history(rid, name, **steps, **times, limit=limit)
            full = None
            if method is not None and ds is not None and ds.sampled:
                full = await store.history(rid, name, **steps)
            work = len(points) + (len(full) if full is not None else 0)
            source = full if full is not None else points
            smoothing_args = None if method is None else (source, method, param)
            pieces = await self.wanllm.offload.maybe(
                work, render_history, fmt, name, rid, points, ds, smoothing_args
            )
        await send_pieces(self, pieces, ARROW_TYPE if fmt == "arrow" else JSON_TYPE)


def _check_smoothing(method: str, param: float | None) -> None:
    """400 naming ``smoothing`` or ``smoothing_param`` before any data is read."""
    if method not in smoothing.METHODS:
        raise ApiError(
            400,
            f"query argument smoothing={method!r}: unknown smoothing method {method!r}; "
            f"expected one of {', '.join(smoothing.METHODS)}",
        )
    if param is not None:
        try:
            smoothing.check(method, param)
        except smoothing.SmoothingError as e:
            raise ApiError(400, str(e)) from None


def render_history(
    fmt: str,
    name: str,
    rid: uuid.UUID,
    points: Series,
    ds: Downsampled | None,
    smoothing_args: tuple[Series, str, float | None] | None,
) -> list[bytes]:
    """The body of a history answer, in pieces: smoothing and encoding (CPU work)."""
    smoothed = None
    method = ""
    if smoothing_args is not None:
        full, method, param = smoothing_args
        smoothed = smooth_at(full, points.steps, method, param)
    if fmt == "arrow":
        return _arrow(points, smoothed)
    out: dict[str, Any] = {
        "metric_name": name,
        "run_id": str(rid),
        "steps": points.steps,
        "times": seconds(points.times),
        "values": points.values,
        "sampled": bool(ds and ds.sampled),
        "total_points": ds.total_points if ds else len(points),
    }
    if ds is not None:
        out["bucket_width"] = ds.bucket_width
        out["bands"] = {
            "steps": ds.bucket_start,
            "min": ds.bucket_min,
            "max": ds.bucket_max,
            "count": ds.bucket_count,
        }
    if smoothed is not None:
        out["smoothed"] = {"method": method, "param": smoothed[1], "values": smoothed[0]}
    return json_pieces(out)


def _arrow(points: Series, smoothed: tuple[Float64Array, float] | None) -> list[bytes]:
    columns: dict[str, Any] = {
        "step": points.steps,
        "time": timestamps(points.times),
        "value": points.values,
    }
    fields: list[tuple[str, pa.DataType]] = [
        ("step", pa.int64()),
        ("time", TIMESTAMP),
        ("value", pa.float64()),
    ]
    if smoothed is not None:
        columns["smoothed"] = smoothed[0]
        fields.append(("smoothed", pa.float64()))
    return arrow_table_pieces(columns, pa.schema(fields))


def _series_json(key: tuple[uuid.UUID, str], parts: list[Series]) -> list[bytes]:
    """One entry of a bulk JSON answer: a run x metric's consecutive chunks merged."""
    steps, times, values = (
        np.concatenate([getattr(p, f) for p in parts]) for f in ("steps", "times", "values")
    )
    return json_pieces(
        {
            "run_id": str(key[0]),
            "metric_name": key[1],
            "steps": steps,
            "times": seconds(times),
            "values": values,
        }
    )


def _bulk_request(body: dict[str, Any]) -> dict[str, Any]:
    """Validate a bulk history body; 422 naming each bad item."""
    errors: list[dict[str, Any]] = []

    def bad(index: int, field: str, reason: str) -> None:
        errors.append({"index": index, "field": field, "reason": reason})

    for key in body.keys() - field_names(BulkHistoryRequest):
        bad(-1, key, "unknown field")
    run_ids: list[uuid.UUID] = []
    raw_ids = body.get("run_ids")
    if not isinstance(raw_ids, list) or not raw_ids:
        bad(-1, "run_ids", "required: a non-empty array of run ids")
    elif len(raw_ids) > MAX_BULK_RUNS:
        bad(-1, "run_ids", f"at most {MAX_BULK_RUNS} runs per request")
    else:
        for i, text in enumerate(raw_ids):
            try:
                run_ids.append(uuid.UUID(text))
            except (TypeError, ValueError, AttributeError):
                bad(i, "run_ids", f"not a UUID: {str(text)[:64]!r}")
    names = body.get("names")
    if names is not None:
        if not isinstance(names, list):
            bad(-1, "names", "not an array")
        else:
            for i, n in enumerate(names):
                if (reason := text_problem(n, MAX_METRIC_NAME_LENGTH)) is not None:
                    bad(i, "names", reason)
    for key in ("start_step", "end_step"):
        v = body.get(key)
        if v is not None and (reason := int_problem(v)) is not None:
            bad(-1, key, reason)
    if errors:
        raise ApiError(422, f"invalid history request: {len(errors)} bad item(s)", errors)
    return {
        "run_ids": run_ids,
        "names": names,
        "start_step": body.get("start_step"),
        "end_step": body.get("end_step"),
    }


class BulkHistoryHandler(WanllmHandler):
    """``history``: every point of many runs x metrics, streamed chunk by chunk."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        req = _bulk_request(self.json_object())
        fmt = self.format_arg()
        store = await self.store()
        if fmt == "arrow":
            req["chunk_points"] = ARROW_CHUNK_POINTS
        chunks = store.bulk_history(req.pop("run_ids"), req.pop("names"), **req)
        # the first chunk is read before any byte is sent, so errors still get a status
        first = await anext(chunks, None)
        with self.timed("bulk_history"):
            if fmt == "arrow":
                await self._stream_arrow(first, chunks)
            else:
                await self._stream_json(first, chunks)

    async def _stream_arrow(
        self, first: HistoryChunk | None, chunks: AsyncIterator[HistoryChunk]
    ) -> None:
        """One record batch per chunk (a whole series up to ``ARROW_CHUNK_POINTS``), sent
        in ~1 MiB writes: tornado copies each write for chunked encoding, and small
        copies stay in cache."""
        self.set_header("Content-Type", ARROW_TYPE)
        stream = ArrowStream(BULK_SCHEMA)
        parts = stream.header()
        chunk = first
        while chunk is not None:
            s = chunk.series
            parts += stream.write(
                {
                    "run_id": constant_names(str(chunk.run_id), len(s)),
                    "metric_name": constant_names(chunk.name, len(s)),
                    "step": s.steps,
                    "time": timestamps(s.times),
                    "value": s.values,
                }
            )
            for piece in slices(parts, WRITE_BYTES):
                await write_piece(self, piece)
            parts = []
            chunk = await anext(chunks, None)
        self.finish(b"".join(slices(stream.close(), WRITE_BYTES)), set_content_type=ARROW_TYPE)

    async def _stream_json(
        self, first: HistoryChunk | None, chunks: AsyncIterator[HistoryChunk]
    ) -> None:
        """``{"series": [...]}``, one entry per run x metric (consecutive chunks merged)."""
        self.write(b'{"series":[')
        sep, chunk = b"", first
        while chunk is not None:
            parts = [chunk.series]
            key = (chunk.run_id, chunk.name)
            chunk = await anext(chunks, None)
            while chunk is not None and (chunk.run_id, chunk.name) == key:
                parts.append(chunk.series)
                chunk = await anext(chunks, None)
            points = sum(len(p) for p in parts)
            self.write(sep)
            for piece in await self.wanllm.offload.maybe(points, _series_json, key, parts):
                await write_piece(self, piece)
            sep = b","
        self.finish(b"]}")
