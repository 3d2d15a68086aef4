"""The shared POST flow of batch ingest: gate, size, parse, commit, after-commit."""

from __future__ import annotations

import time
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from wanllm_jupyter.core.limits import MAX_BATCH_ID_LENGTH, text_problem

from .. import telemetry
from ..offload import BODY_BYTES_PER_POINT
from ..store.base import MetricBatch, Store, SystemMetricBatch, WriteResult
from .base import RETRY_AFTER_SECONDS, ApiError, WanllmHandler

Batch = MetricBatch | SystemMetricBatch


def check_fields(body: dict[str, Any], allowed: frozenset[str]) -> None:
    """422 naming every unknown top-level field of a batch body."""
    errors = [
        {"index": -1, "field": key, "reason": "unknown field"} for key in body.keys() - allowed
    ]
    if errors:
        raise ApiError(422, f"{len(errors)} unknown field(s) in batch", errors)


def batch_id_of(body: dict[str, Any]) -> str | None:
    """The optional idempotency key; 422 unless a non-empty string of sane length."""
    bid = body.get("batch_id")
    if bid is None:
        return None
    reason = batch_id_problem(bid)
    if reason is not None:
        raise ApiError(
            422, "invalid batch_id", [{"index": -1, "field": "batch_id", "reason": reason}]
        )
    return bid


def batch_id_problem(bid: object) -> str | None:
    """Why ``bid`` is not a usable batch id (1..MAX_BATCH_ID_LENGTH characters of text)."""
    if not isinstance(bid, str) or not 0 < len(bid) <= MAX_BATCH_ID_LENGTH:
        return f"must be a string of 1..{MAX_BATCH_ID_LENGTH} characters"
    return text_problem(bid, MAX_BATCH_ID_LENGTH)


def points_array(body: dict[str, Any], key: str) -> list[Any]:
    """``body[key]`` as the list of points; 422 when missing or not an array."""
    items = body.get(key)
    if not isinstance(items, list):
        reason = "required" if key not in body else "not an array"
        raise ApiError(
            422, f"{key} must be an array", [{"index": -1, "field": key, "reason": reason}]
        )
    return items


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
        inflight = self.wanllm.inflight
        if not inflight.accepting:
            raise ApiError(
                503, "server is shutting down", headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
            )
        async with inflight.track():
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
