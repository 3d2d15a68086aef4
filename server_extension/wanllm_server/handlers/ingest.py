"""The shared POST flow of batch ingest: gate, size, parse, commit, after-commit."""

from __future__ import annotations

import time
from typing import Any

from jupyter_server.auth.decorator import authorized
from msgspec import Struct
from tornado import web

from wanllm_jupyter.core.api.check import body_errors, required_names

from .. import telemetry
from ..offload import BODY_BYTES_PER_POINT
from ..store.base import MetricBatch, Store, SystemMetricBatch, WriteResult
from .base import ApiError, WanllmHandler

Batch = MetricBatch | SystemMetricBatch


def batch_fields(body: dict[str, Any], model: type[Struct]) -> None:
    """422 naming every field of the batch itself (index -1) that its model refuses:
    unknown, required and missing, or of the wrong kind (items are checked later)."""
    errors = body_errors(body, model, index=-1)
    errors += [
        {"index": -1, "field": key, "reason": "required"}
        for key in sorted(required_names(model))
        if body.get(key) is None
    ]
    if errors:
        raise ApiError(422, f"invalid batch: {len(errors)} bad field(s)", errors)


class IngestHandler(WanllmHandler):
    """POST a batch: subclasses parse the body and write it."""

    content_types: tuple[str, ...] = ("application/json",)

    def parse(self, body: dict[str, Any]) -> Batch:
        raise NotImplementedError

    def read_batch(self) -> Batch:
        """The validated batch of this request (JSON bodies by default)."""
        return self.parse(self.json_object(*self.content_types))

    async def commit(self, store: Store, batch: Batch) -> WriteResult:
        raise NotImplementedError

    async def after_commit(self, batch: Batch, result: WriteResult) -> None:
        """Work after a (non-duplicate) batch committed."""

    async def after_replay(self, batch: Batch, result: WriteResult) -> None:
        """Work after a replay of a committed batch (nothing was written)."""

    def decode_size(self) -> int:
        """Bytes decoding the body will touch (its size; compressed forms say more)."""
        return len(self._request_body.data) if self._request_body is not None else 0

    def check_size(self, points: int, trait: str = "max_batch_size") -> None:
        """413 when ``points`` exceeds the app's limit named ``trait``."""
        limit = getattr(self.wanllm, trait)
        if points > limit:
            raise ApiError(413, f"batch of {points} points exceeds {trait} {limit}")

    @web.authenticated
    @authorized
    async def post(self) -> None:
        async with self.tracked_write():
            start = time.perf_counter()
            points = self.decode_size() // BODY_BYTES_PER_POINT
            batch = await self.wanllm.offload.maybe(points, self.read_batch)
            async with self.wanllm.ingest_slots:
                result = await self.commit(await self.store(), batch)
            if result.duplicate:
                await self.after_replay(batch, result)
            else:
                await self.after_commit(batch, result)
                telemetry.POINTS_INGESTED.labels(kind=self.ingest_kind).inc(result.points)
            await self.wanllm.heartbeats.traffic(await self.store(), batch.run_ids)  # alive
            telemetry.INGEST_LATENCY.labels(kind=self.ingest_kind).observe(
                time.perf_counter() - start
            )
        self.send_json(
            {"written": result.points, "duplicate": result.duplicate, "batch_id": batch.batch_id}
        )
