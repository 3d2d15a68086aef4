"""Metric ingest and the per-run metric reads (names, points, latest, stats)."""

from __future__ import annotations

import uuid
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from wanllm_jupyter.core import api

from ..cache import LATEST_TTL, RUN_METRICS_TTL, STATS_TTL, cache_key
from ..store.base import MetricBatch, Series, Store, WriteResult
from ..store.batches import metric_batch_from_columns
from ..store.metric_rows import metric_batch_from_rows
from .arrow_ingest import decoded_size, metric_batch_from_arrow
from .base import ARROW_TYPE, WanllmHandler, dumps
from .ingest import IngestHandler, batch_fields
from .wire import iso, json_bytes, wire_float

COLUMNAR_TYPE = "application/vnd.wanllm.columnar+json"
RUN_METRICS_DEFAULT_LIMIT, RUN_METRICS_MAX_LIMIT = 1000, 100_000


def point_json(run_id: uuid.UUID, name: str, step: int, time_us: int, value: float) -> dict:
    """The seed's ``Metric`` shape."""
    return {
        "time": iso(time_us),
        "run_id": str(run_id),
        "metric_name": name,
        "step": step,
        "value": wire_float(value),
    }


class MetricBatchHandler(IngestHandler):
    """``metrics/batch``: the seed's row form or the compact columnar form (JSON or
    Arrow). The compact forms are limited by ``max_columnar_batch_size``, the row
    form by the seed's ``max_batch_size``."""

    ingest_kind = "metrics"
    content_types = ("application/json", COLUMNAR_TYPE, ARROW_TYPE)

    def decode_size(self) -> int:
        if self.media_type() == ARROW_TYPE:
            return decoded_size(self.raw_body(*self.content_types))
        return super().decode_size()

    def read_batch(self) -> MetricBatch:
        if self.media_type() == ARROW_TYPE:
            raw = self.raw_body(*self.content_types)
            return metric_batch_from_arrow(
                raw, self.wanllm.max_columnar_batch_size, self.wanllm.max_arrow_decompressed_size
            )
        return self.parse(self.json_object(*self.content_types))

    def parse(self, body: dict[str, Any]) -> MetricBatch:
        if self.media_type() == COLUMNAR_TYPE or body.get("format") == "columnar":
            batch_fields(body, api.ColumnarBatch)
            self.check_size(len(body["v"]), "max_columnar_batch_size")
            return metric_batch_from_columns(
                body["run_id"],
                body["names"],
                body["k"],
                body["s"],
                body.get("t"),
                body["v"],
                body.get("batch_id"),
            )
        batch_fields(body, api.MetricBatch)
        self.check_size(len(body["metrics"]))
        return metric_batch_from_rows(body["metrics"], body.get("batch_id"))

    async def commit(self, store: Store, batch: MetricBatch) -> WriteResult:  # type: ignore[override]
        return await store.write_metrics(batch)

    async def after_commit(self, batch: MetricBatch, result: WriteResult) -> None:  # type: ignore[override]
        await self.live.until_sent(self.live.publish_points(batch, result.live_seq))

    async def after_replay(self, batch: MetricBatch, result: WriteResult) -> None:  # type: ignore[override]
        """Publish the replay live again with its original sequence numbers: the
        first publish may have died with the server that committed it. Auto steps
        are not known here, so such a replay only announces its numbers."""
        lost = batch.auto_step is not None and bool(batch.auto_step.any())
        await self.live.until_sent(self.live.publish_points(batch, result.live_seq, lost=lost))


class RunMetricsHandler(WanllmHandler):
    """``runs/{id}/metrics``: the run's points (by name, then step) and its metric names."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        rid = self.run_id_arg(run_id)
        limit = self.int_arg("limit", RUN_METRICS_DEFAULT_LIMIT, lo=1, hi=RUN_METRICS_MAX_LIMIT)
        names = self.list_arg("names")
        key = cache_key("run_metrics", str(rid), str(limit), ",".join(names or []))
        with self.timed("run_metrics"):
            body = await self.cached(key, RUN_METRICS_TTL, lambda: self._body(rid, limit, names))
        self.finish(body)

    async def _body(self, rid: uuid.UUID, limit: int, names: list[str] | None) -> bytes:
        store = await self.store()
        infos = await store.metric_names(rid)
        chunks: list[tuple[str, Series]] = []
        held = 0
        async for chunk in store.bulk_history([rid], names, chunk_points=limit):
            s = chunk.series
            take = min(len(s), limit - held)
            chunks.append((chunk.name, Series(s.steps[:take], s.times[:take], s.values[:take])))
            held += take
            if held >= limit:
                break
        listed = [_info_json(i) for i in infos if names is None or i.name in names]
        return await self.wanllm.offload.maybe(held, _run_metrics_json, rid, chunks, listed)


def _run_metrics_json(
    rid: uuid.UUID, chunks: list[tuple[str, Series]], names: list[dict[str, Any]]
) -> bytes:
    """The body of ``runs/{id}/metrics``: one seed ``Metric`` per point (CPU work)."""
    points = [
        point_json(rid, name, step, t, v)
        for name, s in chunks
        for step, t, v in zip(s.steps.tolist(), s.times.tolist(), s.values.tolist(), strict=True)
    ]
    return json_bytes({"metrics": points, "count": len(points), "names": names})


def _info_json(info: Any) -> dict[str, Any]:
    return {
        "name": info.name,
        "count": info.count,
        "last_step": info.last_step,
        "last_time": iso(info.last_time),
    }


class MetricNamesHandler(WanllmHandler):
    """``runs/{id}/metric-names``."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        with self.timed("metric_names"):
            infos = await (await self.store()).metric_names(self.run_id_arg(run_id))
        self.send_json({"metrics": [_info_json(i) for i in infos]})


class LatestHandler(WanllmHandler):
    """``runs/{id}/metrics/{name}/latest``: the seed's ``Metric``."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str, name: str) -> None:
        rid = self.run_id_arg(run_id)
        name = self.metric_name_arg(name)

        async def produce() -> bytes:
            p = await (await self.store()).latest(rid, name)
            return dumps(point_json(rid, name, p.step, p.time, p.value))

        with self.timed("latest"):
            body = await self.cached(cache_key("latest", str(rid), name), LATEST_TTL, produce)
        self.finish(body)


class StatsHandler(WanllmHandler):
    """``runs/{id}/metrics/{name}/stats``: the seed's ``MetricStats`` plus counts and steps."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str, name: str) -> None:
        rid = self.run_id_arg(run_id)
        name = self.metric_name_arg(name)

        async def produce() -> bytes:
            s = await (await self.store()).stats(rid, name)
            return dumps(
                {
                    "metric_name": s.metric_name,
                    "count": s.count,
                    "finite_count": s.finite_count,
                    "nonfinite_count": s.nonfinite_count,
                    "min_value": s.min_value,
                    "max_value": s.max_value,
                    "avg_value": s.avg_value,
                    "std_dev": s.std_dev,
                    "first_time": iso(s.first_time),
                    "last_time": iso(s.last_time),
                    "first_step": s.first_step,
                    "last_step": s.last_step,
                }
            )

        with self.timed("stats"):
            body = await self.cached(cache_key("stats", str(rid), name), STATS_TTL, produce)
        self.finish(body)
