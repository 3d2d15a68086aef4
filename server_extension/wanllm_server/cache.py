"""Read cache for query results: Redis when configured, in-memory otherwise.

Every entry's storage key holds its run's *generation*, a counter bumped by
:meth:`Cache.invalidate_run` after every write. Invalidation is one O(1)
increment, shared by every server using the same Redis, and race-free: the
generation is read by :meth:`Cache.get` *before* the caller queries the store,
and :meth:`Cache.set` files the result under that generation, so a result
computed from pre-write data can never be served after the write.

Use a fresh :func:`cache_key` per request::

    key = cache_key("latest", run_id, name)
    data = await cache.get(key)
    if data is None:
        data = encode(await store.latest(...))
        await cache.set(key, data, LATEST_TTL)

A cache never fails a request: while Redis is down every read is a miss and
writes are skipped; invalidations that could not reach Redis are retried
before Redis is used again.
"""

from __future__ import annotations

import abc
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError

from .redis_conn import redis_client

LATEST_TTL = 60.0
STATS_TTL = 300.0
RUN_METRICS_TTL = 300.0

KEY_PREFIX = "wanllm:cache:"
GEN_PREFIX = "wanllm:gen:"
# a generation must outlive every entry filed under it (so a reset cannot collide)
GEN_TTL_SECONDS = 86_400
REDIS_TIMEOUT = 0.5  # seconds; a hung Redis must not hang requests
REDIS_RETRY_AFTER = 1.0  # seconds to treat Redis as down after a failure
UNKNOWN_GENERATION = -1  # get() could not read it: the result is not cached

log = logging.getLogger(__name__)


@dataclass(slots=True)
class CacheKey:
    """What a cached value is (``kind`` of result, run, arguments), plus the
    run generation observed by the last :meth:`Cache.get` with this key."""

    kind: str
    run_id: str
    parts: tuple[str, ...]
    generation: int | None = field(default=None, compare=False)

    def head(self) -> str:
        return f"{KEY_PREFIX}{self.run_id}:"

    def tail(self) -> str:
        return f":{self.kind}:" + "\x1f".join(self.parts)

    def text(self, generation: int) -> str:
        return f"{self.head()}{generation}{self.tail()}"

    def observed(self) -> int:
        """The generation read by ``Cache.get``; setting without it could file
        a result computed before a write under the generation after it."""
        if self.generation is None:
            raise ValueError(
                f"cache.set({self.kind!r} key of run {self.run_id}) "
                "without a prior cache.get of the same key"
            )
        return self.generation


def cache_key(kind: str, run_id: str, *parts: object) -> CacheKey:
    """A key for one request's cached result; ``parts`` are the arguments."""
    return CacheKey(kind, str(run_id), tuple(str(p) for p in parts))


class Cache(abc.ABC):
    @abc.abstractmethod
    async def get(self, key: CacheKey) -> bytes | None:
        """The cached value, or None; records the generation on ``key``."""

    @abc.abstractmethod
    async def set(self, key: CacheKey, value: bytes, ttl: float) -> None:
        """File ``value`` under the generation seen by ``get(key)``."""

    @abc.abstractmethod
    async def invalidate_run(self, run_id: str) -> None:
        """Make every cached result of the run stale (call after each write)."""

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
        self._generations: dict[str, int] = {}

    async def get(self, key: CacheKey) -> bytes | None:
        key.generation = self._generations.get(key.run_id, 0)
        text = key.text(key.generation)
        entry = self._entries.get(text)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            self._drop(text)
            return None
        self._entries.move_to_end(text)
        return entry[1]

    async def set(self, key: CacheKey, value: bytes, ttl: float) -> None:
        text = key.text(key.observed())
        if len(value) > self._max_bytes:
            return
        if text in self._entries:
            self._drop(text)
        self._entries[text] = (time.monotonic() + ttl, value)
        self._bytes += len(value)
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            self._drop(next(iter(self._entries)))

    async def invalidate_run(self, run_id: str) -> None:
        if len(self._generations) >= 4 * self._max_entries:
            # forgetting generations is only safe together with every entry
            self._generations.clear()
            self._entries.clear()
            self._bytes = 0
        self._generations[run_id] = self._generations.get(run_id, 0) + 1

    def _drop(self, text: str) -> None:
        self._bytes -= len(self._entries.pop(text)[1])

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


# one round trip: the run's generation and the entry filed under it
_GET_SCRIPT = """
local gen = redis.call('GET', KEYS[1]) or '0'
return {gen, redis.call('GET', ARGV[1] .. gen .. ARGV[2])}
"""


class RedisCache(Cache):
    """Shared by every server using the same Redis; a miss while Redis is down."""

    def __init__(self, url: str) -> None:
        self._client = redis_client(url, REDIS_TIMEOUT)
        self._get = self._client.register_script(_GET_SCRIPT)
        self._down_until = 0.0
        self._unsent: set[str] = set()  # runs whose invalidation has not reached Redis
        self.ok = True

    async def get(self, key: CacheKey) -> bytes | None:
        key.generation = UNKNOWN_GENERATION
        if not await self._usable() or key.run_id in self._unsent:
            return None
        try:
            generation, value = await self._get(
                keys=[GEN_PREFIX + key.run_id], args=[key.head(), key.tail()]
            )
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return None
        self._recovered()
        key.generation = int(generation)
        return value

    async def set(self, key: CacheKey, value: bytes, ttl: float) -> None:
        generation = key.observed()
        if (
            generation == UNKNOWN_GENERATION
            or not await self._usable()
            or key.run_id in self._unsent
        ):
            return
        try:
            await self._client.set(key.text(generation), value, px=max(1, int(ttl * 1000)))
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return
        self._recovered()

    async def invalidate_run(self, run_id: str) -> None:
        self._unsent.add(run_id)
        if time.monotonic() >= self._down_until:
            await self._send_invalidations()

    async def close(self) -> None:
        await self._client.aclose()

    def status(self) -> dict[str, Any]:
        return {"backend": "redis", "ok": self.ok, "pending_invalidations": len(self._unsent)}

    async def _usable(self) -> bool:
        """False while Redis is (recently) known to be down; on recovery,
        first deliver the invalidations that were missed."""
        if time.monotonic() < self._down_until:
            return False
        if self._unsent:
            return await self._send_invalidations()
        return True

    async def _send_invalidations(self) -> bool:
        runs = list(self._unsent)
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for run_id in runs:
                    pipe.incr(GEN_PREFIX + run_id)
                    pipe.expire(GEN_PREFIX + run_id, GEN_TTL_SECONDS)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return False
        self._unsent.difference_update(runs)
        self._recovered()
        return True

    def _failed(self, exc: BaseException) -> None:
        if self.ok:
            log.warning("wanllm cache: Redis unavailable (%s); serving uncached", exc)
        self.ok = False
        self._down_until = time.monotonic() + REDIS_RETRY_AFTER

    def _recovered(self) -> None:
        if not self.ok:
            log.info("wanllm cache: Redis is back")
        self.ok = True
