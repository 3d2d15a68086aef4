"""System metrics (cpu, gpu, memory...): batch ingest and per-run series."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from jupyter_server.auth.decorator import authorized
from tornado import web

from wanllm_jupyter.core import api
from wanllm_jupyter.core.arrow import SYSTEM_SCHEMA

from ..store.base import Store, SystemMetricBatch, SystemSeries, WriteResult
from ..store.batches import system_batch_from_rows
from .base import ARROW_TYPE, JSON_TYPE, WanllmHandler
from .ingest import IngestHandler, batch_fields
from .wire import arrow_table_pieces, grouped, json_fragments, seconds, send_pieces, timestamps


class SystemBatchHandler(IngestHandler):
    """``metrics/system/batch``: rows of ``{"run_id", "metric_type", "value", ...}``."""

    ingest_kind = "system"

    def parse(self, body: dict[str, Any]) -> SystemMetricBatch:
        batch_fields(body, api.SystemBatch)
        self.check_size(len(body["metrics"]))
        return system_batch_from_rows(body["metrics"], body.get("batch_id"))

    async def commit(self, store: Store, batch: SystemMetricBatch) -> WriteResult:  # type: ignore[override]
        return await store.write_system_metrics(batch)


class SystemMetricsHandler(WanllmHandler):
    """``runs/{id}/system-metrics``: one series per metric type."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        rid = self.run_id_arg(run_id)
        fmt = self.format_arg()
        with self.timed("system_metrics"):
            series = await (await self.store()).system_metrics(
                rid,
                types=self.list_arg("types"),
                start_time=self.time_arg("start_time"),
                end_time=self.time_arg("end_time"),
                limit=self.int_arg("limit", None, lo=1),
            )
        points = sum(len(s.times) for s in series)
        render = _arrow if fmt == "arrow" else _json
        pieces = await self.wanllm.offload.maybe(points, render, series)
        await send_pieces(self, pieces, ARROW_TYPE if fmt == "arrow" else JSON_TYPE)


def _json(series: list[SystemSeries]) -> list[bytes]:
    """All series as ``{"series": [...]}``, in pieces (CPU work)."""

    def fragments() -> Iterator[bytes]:
        yield b'{"series":['
        for i, s in enumerate(series):
            yield b"," if i else b""
            yield from json_fragments(
                {
                    "metric_type": s.metric_type,
                    "times": seconds(s.times),
                    "values": s.values,
                    "devices": s.devices,
                    "nodes": s.nodes,
                }
            )
        yield b"]}"

    return grouped(fragments())


def _arrow(series: list[SystemSeries]) -> list[bytes]:
    """All series as one long Arrow table."""

    def cat(arrays: list[Any], dtype: Any) -> np.ndarray:
        return np.concatenate(arrays) if arrays else np.empty(0, dtype=dtype)

    return arrow_table_pieces(
        {
            "metric_type": [s.metric_type for s in series for _ in range(len(s.times))],
            "time": timestamps(cat([s.times for s in series], np.int64)),
            "value": cat([s.values for s in series], np.float64),
            "device": [d for s in series for d in s.devices],
            "node": [n for s in series for n in s.nodes],
        },
        SYSTEM_SCHEMA,
    )
