"""Read cache for query results: Redis when configured, in-memory otherwise.

Every entry is filed under its run's *generation*, read from the database
(:meth:`~.store.base.Store.cache_generation`): a token that changes in the
commit of every write to the run's metrics. Nothing has to be invalidated, so
no invalidation can be lost — not in a Redis outage, whatever Redis keeps
across a restart, nor when a server dies right after a commit — and every
server sharing the database agrees on what is current. :meth:`Cache.fetch`
reads the generation *before* it produces a missing value, so a result
computed from pre-write data is filed under the pre-write generation and never
served after the write. Entries of old generations are never read again and
expire (TTL) or are evicted.

A cache never fails a request: while Redis is down every read is a miss and
writes are skipped.
"""

from __future__ import annotations

import abc
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from redis.exceptions import RedisError

from .redis_conn import redis_client

if TYPE_CHECKING:
    from .store.base import Store

LATEST_TTL = 60.0
STATS_TTL = 300.0
RUN_METRICS_TTL = 300.0

KEY_PREFIX = "wanllm:cache:"
REDIS_TIMEOUT = 0.5  # seconds; a hung Redis must not hang requests
REDIS_RETRY_AFTER = 1.0  # seconds to treat Redis as down after a failure

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CacheKey:
    """What a cached value is: ``kind`` of result, run, arguments."""

    kind: str
    run_id: uuid.UUID
    parts: tuple[str, ...]

    def text(self, generation: str) -> str:
        """The storage key of this value at the run's ``generation``."""
        return f"{KEY_PREFIX}{self.run_id}:{generation}:{self.kind}:" + "\x1f".join(self.parts)


def cache_key(kind: str, run_id: uuid.UUID | str, *parts: object) -> CacheKey:
    """A key for one request's cached result; ``parts`` are the arguments."""
    rid = run_id if isinstance(run_id, uuid.UUID) else uuid.UUID(run_id)
    return CacheKey(kind, rid, tuple(str(p) for p in parts))


class Cache(abc.ABC):
    async def fetch(
        self, store: Store, key: CacheKey, ttl: float, produce: Callable[[], Awaitable[bytes]]
    ) -> bytes:
        """The value of ``key`` at the run's current generation; on a miss,
        ``produce()``-d and filed for ``ttl`` seconds. A run the store does not
        know (no generation) is never cached: ``produce()`` answers."""
        generation = await store.cache_generation(key.run_id)
        if generation is None:
            return await produce()
        text = key.text(generation)
        value = await self.get(text)
        if value is None:
            value = await produce()
            await self.set(text, value, ttl)
        return value

    @abc.abstractmethod
    async def get(self, key: str) -> bytes | None:
        """The value stored under ``key``, or None."""

    @abc.abstractmethod
    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (best effort)."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    def status(self) -> dict[str, Any]: ...


def make_cache(redis_url: str | None) -> Cache:
    return RedisCache(redis_url) if redis_url else MemoryCache()


class MemoryCache(Cache):
    """Bounded LRU with per-entry expiry, in this process."""

    def __init__(self, max_entries: int = 4096, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._max_entries, self._max_bytes = max_entries, max_bytes
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry[1]

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        if len(value) > self._max_bytes:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (time.monotonic() + ttl, value)
        self._bytes += len(value)
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        self._bytes -= len(self._entries.pop(key)[1])

    async def close(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def status(self) -> dict[str, Any]:
        return {
            "backend": "memory",
            "ok": True,
            "entries": len(self._entries),
            "bytes": self._bytes,
        }


class RedisCache(Cache):
    """Shared by every server using the same Redis; a miss while Redis is down."""

    def __init__(self, url: str) -> None:
        self._client = redis_client(url, REDIS_TIMEOUT)
        self._down_until = 0.0
        self.ok = True

    async def get(self, key: str) -> bytes | None:
        if time.monotonic() < self._down_until:
            return None
        try:
            value = await self._client.get(key)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return None
        self._recovered()
        return cast("bytes | None", value)  # decode_responses is off: replies are bytes

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        if time.monotonic() < self._down_until:
            return
        try:
            await self._client.set(key, value, px=max(1, int(ttl * 1000)))
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return
        self._recovered()

    async def close(self) -> None:
        await self._client.aclose()

    def status(self) -> dict[str, Any]:
        return {"backend": "redis", "ok": self.ok}

    def _failed(self, exc: BaseException) -> None:
        if self.ok:
            log.warning("wanllm cache: Redis unavailable (%s); serving uncached", exc)
        self.ok = False
        self._down_until = time.monotonic() + REDIS_RETRY_AFTER

    def _recovered(self) -> None:
        if not self.ok:
            log.info("wanllm cache: Redis is back")
        self.ok = True
