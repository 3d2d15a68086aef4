"""The hub's Redis link: a publisher and a pub/sub reader that survive Redis
going away (reconnect with backoff, resubscribe) without ever blocking the
caller. Messages published while Redis is down are dropped (the hub delivers
them in-process meanwhile and sends gap notices once Redis is back); after any
drop the link publishes its ``drop_notice`` once it can, so the other servers
tell their subscribers too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .redis_conn import redis_client

MAX_OUTBOX = 1024  # batches waiting for PUBLISH before the oldest are dropped
BACKOFF_MIN, BACKOFF_MAX = 0.1, 2.0
POLL_SECONDS = 0.05  # how soon channel changes reach Redis
CONNECT_TIMEOUT = 1.0
STOP_TIMEOUT = 1.0

OnMessage = Callable[[str, bytes], None]
OnState = Callable[[bool], None]


class RedisLink:
    """Publishes ``(channel, payload)`` pairs and feeds received messages of
    the wanted channels to ``on_message``; reports up/down through ``on_state``."""

    def __init__(
        self,
        url: str,
        *,
        on_message: OnMessage,
        on_state: OnState,
        log: logging.Logger,
        drop_notice: tuple[str, bytes] | None = None,
    ) -> None:
        self.ok = False
        self.dropped = 0  # messages not published because Redis was down
        self._drop_notice = drop_notice
        self._announced = 0  # ``dropped`` when the drop notice last went out
        self._url, self._on_message, self._on_state, self._log = url, on_message, on_state, log
        self._wanted: set[str] = set()
        # (channel, payload, resolved True once published, False when dropped)
        self._outbox: deque[tuple[str, bytes, asyncio.Future[bool]]] = deque()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._client: aioredis.Redis | None = None
        self._publish_after = 0.0  # monotonic time before which PUBLISH is not tried

    def start(self) -> None:
        self._client = redis_client(self._url, CONNECT_TIMEOUT)
        self._tasks = [
            asyncio.create_task(self._read_loop(), name="wanllm-live-redis-reader"),
            asyncio.create_task(self._publish_loop(), name="wanllm-live-redis-pub"),
        ]

    async def stop(self) -> None:
        """Publish what is queued (for at most STOP_TIMEOUT), then disconnect."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._outbox and self.ok:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._flush_outbox(), STOP_TIMEOUT)
        self._drop_all()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def want(self, channels: set[str]) -> None:
        """The channels to be subscribed to (applied within POLL_SECONDS)."""
        self._wanted = set(channels)

    def publish(self, channel: str, payload: bytes) -> asyncio.Future[bool]:
        """Queue a message; never waits. The future says whether Redis took it
        (True) or it was dropped (False)."""
        sent: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if len(self._outbox) == MAX_OUTBOX:
            self.dropped += 1
            _resolve(self._outbox.popleft()[2], False)
        self._outbox.append((channel, payload, sent))
        self._wake.set()
        return sent

    def _drop_all(self) -> None:
        self.dropped += len(self._outbox)
        while self._outbox:
            _resolve(self._outbox.popleft()[2], False)

    # ------------------------------------------------------------ tasks
    async def _publish_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._flush_outbox()

    async def _flush_outbox(self) -> None:
        assert self._client is not None
        while self._outbox or self._notice_due():
            if not self.ok or time.monotonic() < self._publish_after:
                self._drop_all()  # Redis is down: don't pile up timeouts
                return
            dropped = self.dropped
            sent: asyncio.Future[bool] | None = None
            if self._notice_due():
                assert self._drop_notice is not None
                channel, payload = self._drop_notice
            else:
                channel, payload, sent = self._outbox.popleft()
            try:
                await self._client.publish(channel, payload)
                if sent is None:
                    self._announced = dropped
                else:
                    _resolve(sent, True)
            except (RedisError, OSError) as exc:
                if sent is not None:
                    _resolve(sent, False)
                self.dropped += 1
                self._publish_after = time.monotonic() + BACKOFF_MAX
                self._log.warning(
                    "wanllm live: PUBLISH failed (%s); dropping live updates for %.0f s",
                    exc,
                    BACKOFF_MAX,
                )
            finally:  # also when cancelled mid-PUBLISH
                if sent is not None:
                    _resolve(sent, False)

    async def _read_loop(self) -> None:
        assert self._client is not None
        backoff = BACKOFF_MIN
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                subscribed = set(self._wanted)
                await pubsub.subscribe(*subscribed)
                self._set_ok(True)
                backoff = BACKOFF_MIN
                while True:
                    wanted = self._wanted
                    if wanted != subscribed:
                        if wanted - subscribed:
                            await pubsub.subscribe(*(wanted - subscribed))
                        if subscribed - wanted:
                            await pubsub.unsubscribe(*(subscribed - wanted))
                        subscribed = set(wanted)
                    message = await pubsub.get_message(timeout=POLL_SECONDS)
                    if message is not None and message["type"] == "message":
                        self._on_message(message["channel"].decode(), message["data"])
            except (RedisError, OSError) as exc:
                self._set_ok(False, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()

    def _notice_due(self) -> bool:
        return self._drop_notice is not None and self.dropped > self._announced

    def _set_ok(self, ok: bool, exc: BaseException | None = None) -> None:
        if ok == self.ok:
            return
        self.ok = ok
        if ok:
            self._log.info("wanllm live: connected to Redis; cross-server fan-out on")
            self._wake.set()  # a drop notice may be due
        else:
            self._log.warning(
                "wanllm live: Redis unavailable (%s); fan-out is in-process until it returns", exc
            )
        self._on_state(ok)


def _resolve(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)
