"""SQLite as a :class:`.migrations.Target` (one connection, mode ``sqlite``).

Databases written before the runner was shared record their migrations in a
``schema_version (version, name, applied_at)`` table; the first migration run
moves those rows into ``wanllm_schema_version`` (component ``sqlite``) and
drops the old table.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from . import migrations
from .migrations import RECORD_COLUMNS, VERSION_TABLE, SchemaState

# integer µs since the Unix epoch, like every time in this schema
_NOW_US = "(CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER))"
_LEGACY_TABLE = "schema_version"


class SQLiteSchema:
    """The migration I/O of one sqlite3 connection (autocommit mode)."""

    backend = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._c = conn

    @asynccontextmanager
    async def session(self) -> AsyncIterator[str]:
        async with self.transaction():
            self._c.execute(VERSION_TABLE.format(applied_at=f"INTEGER NOT NULL DEFAULT {_NOW_US}"))
            _adopt_legacy(self._c)
        yield "sqlite"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        self._c.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._c.execute("ROLLBACK")
            raise
        self._c.execute("COMMIT")

    async def applied(self) -> list[tuple[str, int]]:
        return list(self._c.execute("SELECT component, version FROM wanllm_schema_version"))

    async def execute(self, script: str) -> None:
        for stmt in _statements(script):
            self._c.execute(stmt)

    async def record(self, row: tuple[str, int, str, str]) -> None:
        self._c.execute(
            f"INSERT INTO wanllm_schema_version ({', '.join(RECORD_COLUMNS)}) VALUES (?, ?, ?, ?)",
            row,
        )


def migrate(conn: sqlite3.Connection, root: Path | None = None) -> SchemaState:
    """Apply pending migrations on ``conn`` (blocking; call off the event loop)."""
    return asyncio.run(migrations.migrate(SQLiteSchema(conn), root))


def _adopt_legacy(c: sqlite3.Connection) -> None:
    """Move the old runner's records into ``wanllm_schema_version``."""
    exists = c.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (_LEGACY_TABLE,)
    ).fetchone()
    if exists is None:
        return
    c.execute(
        "INSERT OR IGNORE INTO wanllm_schema_version (component, version, name, mode, applied_at) "
        f"SELECT 'sqlite', version, name, 'sqlite', applied_at FROM {_LEGACY_TABLE}"
    )
    c.execute(f"DROP TABLE {_LEGACY_TABLE}")


def _statements(sql: str) -> list[str]:
    """Split a migration script into complete statements."""
    out, buf = [], ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf)
            buf = ""
    if buf.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in buf.splitlines()
    ):
        raise ValueError(f"incomplete SQL statement in migration: {buf[:80]!r}")
    return out
