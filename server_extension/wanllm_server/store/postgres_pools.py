"""The PostgreSQL store's connections: two asyncpg pools sharing ``max_pool``.

Point reads (history, charts) run on their own pool with generic plans: planning
a statement over the blocks' hypertable anew at every call (PostgreSQL's choice
for it) cost more than running it; the generic plan skips chunks at run time.
Each pool gets half of ``max_pool``, at least 2 (a large history holds one read
connection for its snapshot while others read ranges in it). Connection failures
surface as :class:`StoreUnavailable`; a pool reconnects by itself once the
database is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, cast

import asyncpg
import orjson

from .errors import StoreUnavailable
from .postgres_copy import PG_EPOCH_US

UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused/reset connections, TimeoutError
    asyncpg.exceptions.InterfaceError,  # incl. ConnectionDoesNotExistError, "connection is closed"
    asyncpg.exceptions.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.exceptions.CannotConnectNowError,  # 57P03 starting up / shutting down
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
)
POOL_CLOSE_SECONDS = 5.0  # then busy connections are terminated
ACQUIRE_SECONDS = 10.0  # then StoreUnavailable (a 503 with Retry-After)
SLOW_ACQUIRE_SECONDS = 1.0  # a longer wait for a connection is logged
READ_SETTINGS = {"plan_cache_mode": "force_generic_plan"}
log = logging.getLogger(__name__)


async def _init_connection(conn: asyncpg.Connection) -> None:
    """Codecs: timestamptz <-> int µs since the Unix epoch; jsonb <-> Python via orjson."""
    await conn.set_type_codec(
        "timestamptz",
        schema="pg_catalog",
        encoder=lambda us: (int(us) - PG_EPOCH_US,),
        decoder=lambda t: t[0] + PG_EPOCH_US,
        format="tuple",
    )
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=lambda v: b"\x01" + orjson.dumps(v),
        decoder=lambda b: orjson.loads(b[1:]),
        format="binary",
    )


@contextlib.asynccontextmanager
async def _acquire(pool: asyncpg.Pool | None) -> AsyncIterator[asyncpg.Connection]:
    if pool is None:
        raise StoreUnavailable("store is not open")
    started = time.monotonic()
    try:
        async with pool.acquire(timeout=ACQUIRE_SECONDS) as conn:
            if (waited := time.monotonic() - started) > SLOW_ACQUIRE_SECONDS:
                log.warning(
                    "waited %.1f s for a PostgreSQL connection (pool of %d, %d idle)",
                    waited, pool.get_size(), pool.get_idle_size(),
                )  # fmt: skip
            # the pool's proxy forwards every Connection method
            yield cast(asyncpg.Connection, conn)
    except UNAVAILABLE as e:
        raise StoreUnavailable(f"postgresql: {type(e).__name__}: {e}") from e


class Pools:
    """The general pool (writes, runs, media) and the point-read pool."""

    def __init__(self, dsn: str, min_pool: int, max_pool: int, command_timeout: float) -> None:
        self.dsn, self.min_pool, self.max_pool = dsn, min_pool, max_pool
        self.command_timeout = command_timeout
        self._general: asyncpg.Pool | None = None
        self._reads: asyncpg.Pool | None = None

    def conn(self) -> contextlib.AbstractAsyncContextManager[asyncpg.Connection]:
        """A connection of the general pool."""
        return _acquire(self._general)

    def read_conn(self) -> contextlib.AbstractAsyncContextManager[asyncpg.Connection]:
        """A connection of the point-read pool (:data:`READ_SETTINGS`)."""
        return _acquire(self._reads)

    async def open(self) -> None:
        reads = max(2, self.max_pool // 2)
        rest = max(2, self.max_pool - reads)
        options: dict[str, Any] = {
            "init": _init_connection,
            "command_timeout": self.command_timeout,
        }
        try:
            self._general = await asyncpg.create_pool(
                self.dsn, min_size=min(self.min_pool, rest), max_size=rest, **options
            )
            self._reads = await asyncpg.create_pool(
                self.dsn, min_size=1, max_size=reads, server_settings=READ_SETTINGS, **options
            )
        except UNAVAILABLE as e:
            raise StoreUnavailable(f"postgresql: {e}") from e

    async def close(self) -> None:
        """Close the pools; connections still busy after a grace period are terminated."""
        pools = [p for p in (self._general, self._reads) if p is not None]
        self._general = self._reads = None
        for pool in pools:
            try:
                await asyncio.wait_for(pool.close(), POOL_CLOSE_SECONDS)
            except (TimeoutError, asyncio.TimeoutError):
                pool.terminate()

    def info(self) -> dict[str, int]:
        """Open and idle connections of both pools, and the configured bounds."""
        pools = [p for p in (self._general, self._reads) if p is not None]
        return {
            "size": sum(p.get_size() for p in pools),
            "idle": sum(p.get_idle_size() for p in pools),
            "min": self.min_pool,
            "max": self.max_pool,
        }
