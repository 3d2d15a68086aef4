"""Redis clients for the live hub and the cache."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


def redis_client(url: str, timeout: float) -> aioredis.Redis:
    """A client whose commands fail within ``timeout`` seconds when Redis is
    unreachable, and retry once on a fresh connection when a pooled one went
    stale (Redis restarted)."""
    return aioredis.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), retries=1),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
