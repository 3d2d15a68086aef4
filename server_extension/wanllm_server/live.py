"""Live fan-out of committed metric points and run changes to subscribers.

``publish_points`` / ``publish_run`` only append to a queue: the ingest path
never waits on Redis or on subscribers. A ticker delivers at most one
``metrics`` message per run every ``tick`` seconds, merging the points of all
batches of the tick per metric name, encoded once per distinct name filter.

With Redis every committed batch is published once per run on
``wanllm:run:<id>`` (run changes on ``wanllm:runs``); each hub subscribes to
the channels of the runs its clients watch. A hub delivers its own batches
in-process at once and ignores their echo from Redis (messages carry the
publishing hub's origin id), so each point reaches a subscriber exactly once,
and local fan-out keeps working while Redis is down. When Redis returns the
link resubscribes and every subscriber gets a ``gap`` notice (points from
other servers may have been missed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import defaultdict, deque
from typing import Any

import numpy as np
import orjson

from . import telemetry
from .live_redis import RedisLink
from .live_subscriber import DEFAULT_MAX_MESSAGES, Subscriber
from .live_wire import (
    Chunk,
    PayloadError,
    decode_chunk,
    encode_chunk,
    metrics_message,
    payload_origin,
    run_deleted_message,
    run_message,
    run_to_wire,
    series_fragment,
    split_batch,
)
from .store.base import MetricBatch, Run

RUN_CHANNEL_PREFIX = "wanllm:run:"
RUNS_CHANNEL = "wanllm:runs"
TICK_SECONDS = 0.1
MAX_INBOX = 10_000  # events awaiting the next tick before the oldest are dropped


class LiveHub:
    """Fans committed points and run changes out to local subscribers and,
    when ``redis_url`` is given, to every other hub sharing that Redis."""

    def __init__(
        self,
        redis_url: str | None,
        *,
        log: logging.Logger,
        tick: float = TICK_SECONDS,
        max_buffer: int = DEFAULT_MAX_MESSAGES,
    ) -> None:
        self.origin = uuid.uuid4().hex
        self.tick = tick
        self.max_buffer = max_buffer  # messages a subscriber may fall behind by
        self._log = log
        # (kind, run_id, data): ("batch", "", MetricBatch) | ("chunk", run, Chunk)
        # | ("run", run, wire dict, or None when deleted); the oldest are dropped beyond MAX_INBOX
        self._inbox: deque[tuple[str, str, Any]] = deque(maxlen=MAX_INBOX)
        self._subs: dict[str | None, set[Subscriber]] = defaultdict(set)
        self._wake = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None
        self._last_flush = 0.0
        self._redis_seen = False
        self._pending: defaultdict[str, list[Chunk]] = defaultdict(list)
        self._pending_runs: list[tuple[str, dict[str, Any]]] = []
        self._link = (
            RedisLink(redis_url, on_message=self._on_redis, on_state=self._on_redis_state, log=log)
            if redis_url
            else None
        )

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self._ticker is not None:
            return
        self._ticker = asyncio.create_task(self._tick_loop(), name="wanllm-live-ticker")
        if self._link is not None:
            self._link.want(self._channels())
            self._link.start()

    async def stop(self) -> None:
        """Publish what is queued (briefly), then close every subscriber."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        self._drain()
        if self._link is not None:
            await self._link.stop()
        for subs in self._subs.values():
            for sub in subs:
                sub.close()
        self._subs.clear()

    def status(self) -> dict[str, Any]:
        return {
            "mode": "redis" if self._link is not None else "in-process",
            "redis_ok": bool(self._link and self._link.ok),
            "subscribers": sum(len(s) for s in self._subs.values()),
        }

    # ------------------------------------------------------------ publishing
    def publish_points(self, batch: MetricBatch) -> None:
        """Hand a committed batch to the hub; returns at once."""
        if self._link is None and not self._subs:
            return
        self._inbox.append(("batch", "", (batch, time.time())))
        self._wake.set()

    def publish_run(self, run: Run) -> None:
        """Announce a run change (state, name, tags...); returns at once."""
        wire = run_to_wire(run)
        self._inbox.append(("run", wire["id"], wire))
        self._wake.set()
        if self._link is not None:
            self._link.publish(RUNS_CHANNEL, orjson.dumps({"o": self.origin, "run": wire}))

    def publish_run_deleted(self, run_id: str) -> None:
        """Announce that a run was deleted; returns at once."""
        self._inbox.append(("run", run_id, None))
        self._wake.set()
        if self._link is not None:
            self._link.publish(RUNS_CHANNEL, orjson.dumps({"o": self.origin, "deleted": run_id}))

    # ------------------------------------------------------------ subscribing
    def subscribe(self, run_id: str | None, names: set[str] | None = None) -> Subscriber:
        """A subscriber to the points and changes of ``run_id`` (metric
        ``names``, all when None), or to every run's changes when None."""
        sub = Subscriber(run_id, names, max_messages=self.max_buffer)
        self._subs[run_id].add(sub)
        if self._link is not None and run_id is not None and len(self._subs[run_id]) == 1:
            self._link.want(self._channels())
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        sub.close()
        subs = self._subs.get(sub.run_id)
        if subs is None:
            return
        subs.discard(sub)
        if not subs:
            del self._subs[sub.run_id]
            if self._link is not None and sub.run_id is not None:
                self._link.want(self._channels())

    def _channels(self) -> set[str]:
        return {RUNS_CHANNEL} | {RUN_CHANNEL_PREFIX + r for r in self._subs if r is not None}

    # ------------------------------------------------------------ redis side
    def _on_redis(self, channel: str, payload: bytes) -> None:
        try:
            if channel == RUNS_CHANNEL:
                message = orjson.loads(payload)
                if message["o"] != self.origin and "deleted" in message:
                    self._inbox.append(("run", str(message["deleted"]), None))
                elif message["o"] != self.origin:
                    self._inbox.append(("run", str(message["run"]["id"]), message["run"]))
            elif payload_origin(payload) != self.origin:
                chunk = decode_chunk(payload)
                self._inbox.append(("chunk", chunk.run_id, chunk))
            else:
                return
        except (PayloadError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
            self._log.warning("wanllm live: ignoring bad message on %s: %s", channel, exc)
            return
        self._wake.set()

    def _on_redis_state(self, ok: bool) -> None:
        reconnected, self._redis_seen = ok and self._redis_seen, self._redis_seen or ok
        if reconnected:  # back after an outage: points from other servers were missed
            for run_id, subs in self._subs.items():
                if run_id is not None:
                    for sub in subs:
                        sub.gap("live feed reconnected to Redis; re-query to catch up")

    # ------------------------------------------------------------ delivery
    async def _tick_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._drain()  # publish to Redis now; deliver locally on the tick
            delay = self._last_flush + self.tick - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._last_flush = time.monotonic()
            try:
                self._flush()
            except Exception:  # a bug here must not end live delivery for good
                self._log.exception("wanllm live: delivery failed")

    def _drain(self) -> None:
        """Move the inbox into the tick's pending points and run changes,
        publishing this hub's batches to Redis on the way."""
        while self._inbox:
            kind, run_id, data = self._inbox.popleft()
            if kind == "batch":
                batch, committed = data
                for chunk in split_batch(batch, committed):
                    if self._link is not None:
                        self._link.publish(
                            RUN_CHANNEL_PREFIX + chunk.run_id, encode_chunk(chunk, self.origin)
                        )
                    if chunk.run_id in self._subs:
                        self._pending[chunk.run_id].append(chunk)
            elif kind == "chunk":
                if run_id in self._subs:
                    self._pending[run_id].append(data)
            else:
                self._pending_runs.append((run_id, data))

    def _flush(self) -> None:
        """Deliver the tick: one metrics message per run, then run changes."""
        self._drain()
        pending, self._pending = self._pending, defaultdict(list)
        runs, self._pending_runs = self._pending_runs, []
        now = time.time()
        for run_id, chunks in pending.items():
            self._deliver_points(run_id, chunks)
            for chunk in chunks:
                telemetry.FANOUT_LAG.observe(max(0.0, now - chunk.committed))
        for run_id, wire in runs:
            message = run_deleted_message(run_id) if wire is None else run_message(wire)
            for sub in (*self._subs.get(run_id, ()), *self._subs.get(None, ())):
                sub.offer(message)

    def _deliver_points(self, run_id: str, chunks: list[Chunk]) -> None:
        subs = self._subs.get(run_id)
        if not subs:
            return
        fragments = _merge_fragments(chunks)
        encoded: dict[tuple[str, ...], str | None] = {}
        by_filter: dict[Any, str | None] = {}
        for sub in subs:
            key = sub.filter_key
            if key in by_filter:
                message = by_filter[key]
            else:
                chosen = tuple(n for n in fragments if sub.wants(n))
                if chosen not in encoded:
                    encoded[chosen] = (
                        metrics_message(run_id, [fragments[n] for n in chosen]) if chosen else None
                    )
                message = by_filter[key] = encoded[chosen]
            if message is not None:
                sub.offer(message)


def _merge_fragments(chunks: list[Chunk]) -> dict[str, bytes]:
    """Per metric name, the JSON fragment of all its points in ``chunks``."""
    parts: dict[str, list[tuple[Any, Any, Any]]] = defaultdict(list)
    for chunk in chunks:
        if len(chunk.names) == 1:
            parts[chunk.names[0]].append((chunk.steps, chunk.times, chunk.values))
            continue
        order = np.argsort(chunk.name_idx, kind="stable")
        idx = chunk.name_idx[order]
        bounds = np.flatnonzero(np.diff(idx)) + 1
        for group in np.split(order, bounds):
            if group.size:
                name = chunk.names[int(chunk.name_idx[group[0]])]
                parts[name].append((chunk.steps[group], chunk.times[group], chunk.values[group]))
    return {
        name: series_fragment(name, *(np.concatenate(col) for col in zip(*series, strict=True)))
        for name, series in parts.items()
    }
