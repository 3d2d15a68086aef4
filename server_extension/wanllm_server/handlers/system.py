"""System metrics (cpu, gpu, memory...): batch ingest and per-run series."""

from __future__ import annotations

from typing import Any

import numpy as np
from jupyter_server.auth.decorator import authorized
from tornado import web

from wanllm_jupyter._arrow import SYSTEM_SCHEMA

from ..store.base import Store, SystemMetricBatch, SystemSeries, WriteResult
from ..store.batches import system_batch_from_rows
from .base import ARROW_TYPE, WanllmHandler
from .ingest import IngestHandler, batch_id_of, check_fields, points_array
from .wire import arrow_table_bytes, json_bytes, seconds, timestamps

_FIELDS = frozenset({"batch_id", "metrics"})


class SystemBatchHandler(IngestHandler):
    """``metrics/system/batch``: rows of ``{"run_id", "metric_type", "value", ...}``."""

    ingest_kind = "system"

    def parse(self, body: dict[str, Any]) -> SystemMetricBatch:
        check_fields(body, _FIELDS)
        rows = points_array(body, "metrics")
        self.check_size(len(rows))
        return system_batch_from_rows(rows, batch_id_of(body))

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
        if fmt == "arrow":
            body = await self.wanllm.offload.maybe(points, _arrow, series)
            self.finish(body, set_content_type=ARROW_TYPE)
        else:
            self.finish(await self.wanllm.offload.maybe(points, _json, series))


def _json(series: list[SystemSeries]) -> bytes:
    """All series as ``{"series": [...]}`` (CPU work)."""
    items = (
        json_bytes(
            {
                "metric_type": s.metric_type,
                "times": seconds(s.times),
                "values": s.values,
                "devices": s.devices,
                "nodes": s.nodes,
            }
        )
        for s in series
    )
    return b'{"series":[' + b",".join(items) + b"]}"


def _arrow(series: list[SystemSeries]) -> bytes:
    """All series as one long Arrow table."""

    def cat(arrays: list[Any], dtype: Any) -> np.ndarray:
        return np.concatenate(arrays) if arrays else np.empty(0, dtype=dtype)

    return arrow_table_bytes(
        {
            "metric_type": [s.metric_type for s in series for _ in range(len(s.times))],
            "time": timestamps(cat([s.times for s in series], np.int64)),
            "value": cat([s.values for s in series], np.float64),
            "device": [d for s in series for d in s.devices],
            "node": [n for s in series for n in s.nodes],
        },
        SYSTEM_SCHEMA,
    )
