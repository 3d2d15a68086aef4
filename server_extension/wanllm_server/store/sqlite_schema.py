"""SQLite schema migrations (files under ``sql/sqlite``)."""

from __future__ import annotations

import sqlite3

from .batches import now_us
from .migrations import migrations


def migrate(c: sqlite3.Connection) -> None:
    c.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "applied_at INTEGER NOT NULL)"
    )
    done = {r[0] for r in c.execute("SELECT version FROM schema_version")}
    for m in migrations("sqlite"):
        if m.version in done:
            continue
        c.execute("BEGIN IMMEDIATE")
        try:
            for stmt in statements(m.sql):
                c.execute(stmt)
            c.execute(
                "INSERT OR IGNORE INTO schema_version VALUES (?, ?, ?)",
                (m.version, m.name, now_us()),
            )
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")


def statements(sql: str) -> list[str]:
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
