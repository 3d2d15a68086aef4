"""Live fan-out of committed metric points and run changes to subscribers.

``publish_points`` / ``publish_run`` only append to queues: the ingest path
never waits on subscribers, and on Redis only to learn that a batch left
this server (:meth:`LiveHub.until_sent`, bounded). A ticker delivers at most one
``metrics`` message per run every ``tick`` seconds, merging the points of all
batches of the tick per metric name, encoded once per distinct name filter.

With Redis every committed batch is published once per run on
``wanllm:run:<id>`` (run changes on ``wanllm:runs``); each hub subscribes to
the channels of the runs its clients watch. A hub delivers its own batches
in-process at once and ignores their echo from Redis (messages carry the
publishing hub's origin id), so each point reaches a subscriber exactly once,
and local fan-out keeps working while Redis is down. When Redis returns the
link resubscribes and every subscriber (``ws/runs`` ones too) gets a ``gap``
notice (messages from other servers may have been missed); so do all when
the hub or its Redis publisher had to drop messages.

Every batch carries its run's live sequence number (taken at commit); a hub
drops numbers it already delivered (a replay re-published by the ingest
path) and tells each subscriber which numbers a message covers, so a
subscriber detects any hole (docs/api.md, "Live message ordering"). Each
run change is followed by the run's stored number (read after the change):
a hub that has not delivered up to it sends the run's subscribers a ``gap``,
so even a run's last batches, lost with the server that committed them
before it could publish, show as a hole.

Memory: every subscriber's queue is bounded, and all subscribers share one
byte budget; past it the slowest are evicted (a ``gap``, then the socket
closes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from . import telemetry
from .live_media import MediaItems, decode_media, encode_media, media_message
from .live_points import RunSeq, account_to, deliver_points
from .live_redis import RedisLink
from .live_subscriber import DEFAULT_MAX_MESSAGES, Budget, Subscriber
from .live_wire import (
    Chunk,
    PayloadError,
    decode_chunk,
    encode_chunk,
    payload_origin,
    run_deleted_message,
    run_message,
    run_to_wire,
    split_batch,
)
from .store.base import MetricBatch, Run, StoreError
from .store.generation import token_seq

if TYPE_CHECKING:
    from .store.base import Store

RUN_CHANNEL_PREFIX = "wanllm:run:"
RUNS_CHANNEL = "wanllm:runs"
TICK_SECONDS = 0.1
MAX_INBOX = 10_000  # events awaiting the next tick before the oldest are dropped
SEND_WAIT_SECONDS = 1.0  # longest an ingest answer waits for its batch to reach Redis
DEFAULT_BUDGET_BYTES = 128 * 1024 * 1024  # all subscribers' queues and unfinished writes
SEQ_LOOKUP_SECONDS = 2.0  # longest a run change waits for its run's stored sequence number


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
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
        store: Callable[[], Awaitable[Store]] | None = None,
    ) -> None:
        """``store``: the (opened) store, to read a changed run's sequence number."""
        self.origin = uuid.uuid4().hex
        self.tick = tick
        self.max_buffer = max_buffer  # messages a subscriber may fall behind by
        self.budget = Budget(budget_bytes)
        self.evictions = 0  # subscribers evicted over the budget
        self._log = log
        self._store = store
        self._lookup: asyncio.Future[None] | None = None  # the last stored-number lookup
        # (kind, run_id, data): ("chunk", run, Chunk) | ("run", run, wire dict, or None
        # when deleted) | ("seq", run, the run's stored number); beyond MAX_INBOX the
        # oldest are dropped and every subscriber gets a gap
        self._inbox: deque[tuple[str, str, Any]] = deque()
        self._inbox_dropped = 0
        self._subs: dict[str | None, set[Subscriber]] = defaultdict(set)
        self._count = 0  # subscribers
        self._seqs: dict[str, RunSeq] = {}
        self._wake = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None
        self._last_flush = 0.0
        self._redis_seen = False
        self._pending: defaultdict[str, list[Chunk]] = defaultdict(list)
        self._pending_runs: list[tuple[str, str, Any]] = []  # ("run"|"seq", run, data)
        self._link = (
            RedisLink(
                redis_url,
                on_message=self._on_redis,
                on_state=self._on_redis_state,
                log=log,
                drop_notice=(RUNS_CHANNEL, orjson.dumps({"o": self.origin, "gap": True})),
            )
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
        if self._lookup is not None:
            self._lookup.cancel()
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
            "subscribers": self._count,
            "buffered_bytes": self.budget.used,
            "evictions": self.evictions,
        }

    @property
    def subscriber_count(self) -> int:
        return self._count

    # ------------------------------------------------------------ publishing
    def publish_points(
        self, batch: MetricBatch, seqs: dict[str, int], *, lost: bool = False
    ) -> asyncio.Future[None]:
        """Hand a committed batch and its runs' live sequence numbers to the hub;
        returns at once. A replay is published again with its original numbers
        (``lost``: its stored points are not known, subscribers that missed it
        get a gap). The future is done once the batch left this server (Redis
        took or refused it; at once without Redis): see :meth:`until_sent`."""
        sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        published = []
        if self._link is not None or self._subs:
            for chunk in split_batch(batch, time.time(), seqs, lost=lost):
                if self._link is not None:  # at once: the ingest answer waits for it
                    channel = RUN_CHANNEL_PREFIX + chunk.run_id
                    published.append(self._link.publish(channel, encode_chunk(chunk, self.origin)))
                if chunk.run_id in self._subs:
                    self._enqueue(("chunk", chunk.run_id, chunk))
        _when_all(published, sent)
        return sent

    @staticmethod
    async def until_sent(sent: asyncio.Future[None]) -> None:
        """Wait (at most SEND_WAIT_SECONDS) until a batch given to
        :meth:`publish_points` left this server. The ingest path answers only
        then, so a server that dies before its PUBLISH leaves the client
        without an answer: the client retries, and the replay is published
        again (docs/api.md, "Live message ordering")."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(sent), SEND_WAIT_SECONDS)

    def _enqueue(self, event: tuple[str, str, Any]) -> None:
        if len(self._inbox) >= MAX_INBOX:
            self._inbox.popleft()
            self._inbox_dropped += 1
        self._inbox.append(event)
        self._wake.set()

    def publish_run(self, run: Run) -> None:
        """Announce a run change (state, name, tags...); returns at once. The
        run's stored live sequence number follows (:meth:`_announce_seq`)."""
        wire = run_to_wire(run)
        self._enqueue(("run", wire["id"], wire))
        if self._link is not None:
            self._link.publish(RUNS_CHANNEL, orjson.dumps({"o": self.origin, "run": wire}))
        if self._store is not None:  # one lookup at a time, in order
            self._lookup = asyncio.ensure_future(self._announce_seq(self._lookup, wire["id"]))

    def publish_media(self, run_id: str, items: MediaItems) -> None:
        """Announce a committed media batch's (key, kind, step) items; returns at once."""
        if self._link is not None:
            self._link.publish(
                RUN_CHANNEL_PREFIX + run_id, encode_media(self.origin, run_id, items)
            )
        if run_id in self._subs:
            self._enqueue(("media", run_id, items))

    def publish_run_deleted(self, run_id: str) -> None:
        """Announce that a run was deleted; returns at once."""
        self._enqueue(("run", run_id, None))
        if self._link is not None:
            self._link.publish(RUNS_CHANNEL, orjson.dumps({"o": self.origin, "deleted": run_id}))

    async def _announce_seq(self, before: asyncio.Future[None] | None, run_id: str) -> None:
        """Announce the run's live sequence number in the store, read after the
        change (its batches up to it are committed): hubs that have not delivered
        them all tell the run's subscribers (a gap)."""
        assert self._store is not None
        if before is not None:
            await asyncio.gather(before, return_exceptions=True)
        try:
            store = await asyncio.wait_for(self._store(), SEQ_LOOKUP_SECONDS)
            token = await asyncio.wait_for(
                store.cache_generation(uuid.UUID(run_id)), SEQ_LOOKUP_SECONDS
            )
        except (StoreError, asyncio.TimeoutError) as exc:
            self._log.debug("wanllm live: run %s changed, its number unknown: %s", run_id, exc)
            return
        seq = token_seq(token)
        if not seq:  # no such run (deleted meanwhile), or no batch yet
            return
        self._enqueue(("seq", run_id, seq))
        if self._link is not None:
            self._link.publish(
                RUNS_CHANNEL, orjson.dumps({"o": self.origin, "seq": seq, "r": run_id})
            )

    # ------------------------------------------------------------ subscribing
    def subscribe(self, run_id: str | None, names: set[str] | None = None) -> Subscriber:
        """A subscriber to the points and changes of ``run_id`` (metric
        ``names``, all when None), or to every run's changes when None."""
        sub = Subscriber(run_id, names, max_messages=self.max_buffer, budget=self.budget)
        self._subs[run_id].add(sub)
        self._count += 1
        if self._link is not None and run_id is not None and len(self._subs[run_id]) == 1:
            self._link.want(self._channels())
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        sub.close()
        subs = self._subs.get(sub.run_id)
        if subs is None or sub not in subs:
            return
        subs.discard(sub)
        self._count -= 1
        if not subs:
            del self._subs[sub.run_id]
            if sub.run_id is not None:
                self._seqs.pop(sub.run_id, None)
            if self._link is not None and sub.run_id is not None:
                self._link.want(self._channels())

    def _channels(self) -> set[str]:
        return {RUNS_CHANNEL} | {RUN_CHANNEL_PREFIX + r for r in self._subs if r is not None}

    # ------------------------------------------------------------ redis side
    def _on_redis(self, channel: str, payload: bytes) -> None:
        try:
            if channel == RUNS_CHANNEL:
                message = orjson.loads(payload)
                if message["o"] == self.origin:
                    return
                if "gap" in message:
                    self._gap_all("another server dropped live updates; re-query to catch up")
                elif "deleted" in message:
                    self._enqueue(("run", str(message["deleted"]), None))
                elif "seq" in message:
                    self._enqueue(("seq", str(message["r"]), int(message["seq"])))
                else:
                    self._enqueue(("run", str(message["run"]["id"]), message["run"]))
            elif payload_origin(payload) != self.origin:
                media = decode_media(payload)
                if media is not None:
                    self._enqueue(("media", channel.removeprefix(RUN_CHANNEL_PREFIX), media))
                    return
                chunk = decode_chunk(payload)
                self._enqueue(("chunk", chunk.run_id, chunk))
        except (PayloadError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            self._log.warning("wanllm live: ignoring bad message on %s: %s", channel, exc)

    def _on_redis_state(self, ok: bool) -> None:
        reconnected, self._redis_seen = ok and self._redis_seen, self._redis_seen or ok
        if reconnected:  # back after an outage: messages from other servers were missed
            self._gap_all("live feed reconnected to Redis; re-query to catch up")

    def _gap_all(self, reason: str) -> None:
        """A gap notice to every subscriber, ``ws/runs`` ones included."""
        for subs in list(self._subs.values()):
            for sub in list(subs):
                sub.gap(reason)

    # ------------------------------------------------------------ delivery
    async def _tick_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._drain()  # keeps the inbox short; delivery waits for the tick
            delay = self._last_flush + self.tick - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._last_flush = time.monotonic()
            try:
                self._flush()
            except Exception:  # a bug here must not end live delivery for good
                self._log.exception("wanllm live: delivery failed")

    def _drain(self) -> None:
        """Move the inbox into the tick's pending points and run changes."""
        if self._inbox_dropped:
            dropped, self._inbox_dropped = self._inbox_dropped, 0
            self._gap_all(f"live hub overloaded: {dropped} updates dropped; re-query to catch up")
        while self._inbox:
            kind, run_id, data = self._inbox.popleft()
            if kind == "chunk":
                if run_id in self._subs:
                    self._pending[run_id].append(data)
            else:
                self._pending_runs.append((kind, run_id, data))

    def _flush(self) -> None:
        """Deliver the tick: one metrics message per run, then run changes."""
        self._drain()
        pending, self._pending = self._pending, defaultdict(list)
        runs, self._pending_runs = self._pending_runs, []
        now = time.time()
        for run_id, chunks in pending.items():
            if subs := self._subs.get(run_id):
                deliver_points(run_id, subs, self._seqs.setdefault(run_id, RunSeq()), chunks)
            for chunk in chunks:
                telemetry.FANOUT_LAG.observe(max(0.0, now - chunk.committed))
        for kind, run_id, wire in runs:
            if kind == "seq":
                if subs := self._subs.get(run_id):
                    account_to(run_id, subs, self._seqs.setdefault(run_id, RunSeq()), wire)
                continue
            if kind == "media":  # to the run's subscribers that want the key
                for key, media_kind, step in wire:
                    message = media_message(run_id, key, media_kind, step)
                    for sub in self._subs.get(run_id, ()):
                        if sub.wants(key):
                            sub.offer(message)
                continue
            if wire is None:  # a run re-created under this id numbers its batches from 1
                self._seqs.pop(run_id, None)
                for sub in self._subs.get(run_id, ()):
                    sub.seq = None
            message = run_deleted_message(run_id) if wire is None else run_message(wire)
            for sub in (*self._subs.get(run_id, ()), *self._subs.get(None, ())):
                sub.offer(message)
        self._enforce_budget()

    def _enforce_budget(self) -> None:
        """Past the byte budget, evict the slowest subscribers (most bytes held)
        until it is kept: each gets a gap notice, then its socket closes."""
        if not self.budget.over:
            return
        subs = sorted(
            (sub for group in self._subs.values() for sub in group),
            key=lambda sub: sub.buffered,
            reverse=True,
        )
        for sub in subs:
            if not self.budget.over or sub.buffered == 0:
                break
            self.evictions += 1
            sub.evict(
                f"live buffers over their budget ({self.budget.limit} bytes): this "
                "subscriber was the slowest; re-query and reconnect"
            )
            self.unsubscribe(sub)


def _when_all(futures: list[asyncio.Future[bool]], done: asyncio.Future[None]) -> None:
    """Resolve ``done`` once every one of ``futures`` is."""
    if not futures:
        if not done.done():
            done.set_result(None)
        return

    def resolve(_: object) -> None:
        if not done.done():
            done.set_result(None)

    asyncio.gather(*futures).add_done_callback(resolve)
