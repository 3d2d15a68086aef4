"""PostgreSQL/TimescaleDB as a :class:`.migrations.Target`: the mode (``plain``,
``apache`` or ``timescale``) and a session advisory lock, so servers starting
together apply each migration exactly once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

import asyncpg

from . import migrations
from .migrations import RECORD_COLUMNS, VERSION_TABLE, SchemaState

Mode = Literal["plain", "apache", "timescale"]
LOCK_KEY = 0x57A11_5C4E  # arbitrary, constant: pg_advisory_lock(LOCK_KEY)


class PostgresSchema:
    """The migration I/O of one asyncpg connection."""

    backend = "postgres"

    def __init__(self, conn: asyncpg.Connection, want_timescaledb: bool | None) -> None:
        self._conn = conn
        self._want_timescaledb = want_timescaledb

    @asynccontextmanager
    async def session(self) -> AsyncIterator[str]:
        await self._conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        try:
            async with self._conn.transaction():
                mode = await _detect_mode(self._conn, self._want_timescaledb)
                await self._conn.execute(
                    VERSION_TABLE.format(applied_at="timestamptz NOT NULL DEFAULT now()")
                )
            yield mode
        finally:
            await self._conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)

    def transaction(self) -> asyncpg.transaction.Transaction:
        return self._conn.transaction()

    async def applied(self) -> list[tuple[str, int]]:
        rows = await self._conn.fetch("SELECT component, version FROM wanllm_schema_version")
        return [(r[0], r[1]) for r in rows]

    async def execute(self, script: str) -> None:
        await self._conn.execute(script)

    async def record(self, row: tuple[str, int, str, str]) -> None:
        await self._conn.execute(
            f"INSERT INTO wanllm_schema_version ({', '.join(RECORD_COLUMNS)})"
            " VALUES ($1, $2, $3, $4)",
            *row,
        )


async def _detect_mode(conn: asyncpg.Connection, want_timescaledb: bool | None) -> Mode:
    """Create the extension when wanted and available; return the backend mode."""
    if want_timescaledb is not False:
        # without the preload, CREATE EXTENSION kills the backend: check first
        preloaded = await conn.fetchval(
            "SELECT 'timescaledb' = ANY(string_to_array(replace("
            "current_setting('shared_preload_libraries'), ' ', ''), ','))"
            " AND EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')"
        )
        if preloaded:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        elif want_timescaledb:
            raise RuntimeError("timescaledb is not installed or not in shared_preload_libraries")
    loaded = await conn.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'")
    if not loaded:
        return "plain"
    licence = await conn.fetchval("SELECT current_setting('timescaledb.license', true)")
    return "timescale" if licence == "timescale" else "apache"


async def migrate(
    conn: asyncpg.Connection, *, want_timescaledb: bool | None = None, root: Path | None = None
) -> SchemaState:
    """Apply pending migrations (idempotent; serialised by an advisory lock)."""
    return await migrations.migrate(PostgresSchema(conn, want_timescaledb), root)
