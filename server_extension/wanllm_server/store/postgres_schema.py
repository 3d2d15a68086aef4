"""Versioned SQL migrations for the PostgreSQL/TimescaleDB backend.

Layout (``sql/`` at the repository root, ``wanllm_server/sql`` in the wheel)::

    sql/postgres/NNNN_name[.modes].sql   applied in every mode
    sql/timescale/NNNN_name[.modes].sql  applied when TimescaleDB is loaded

``modes`` is an optional ``+``-separated subset of ``plain``, ``apache`` and
``timescale`` (the licence) restricting a file to those modes, e.g.
``0002_hourly.plain+apache.sql``. Each applied file is recorded in
``wanllm_schema_version``; everything runs under a session advisory lock, so
servers starting together apply each migration exactly once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import asyncpg

from .migrations import sql_dir

Mode = Literal["plain", "apache", "timescale"]
MODES: tuple[str, ...] = ("plain", "apache", "timescale")
COMPONENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("postgres", MODES),
    ("timescale", ("apache", "timescale")),
)
LOCK_KEY = 0x57A11_5C4E  # arbitrary, constant: pg_advisory_lock(LOCK_KEY)
_FILE_RE = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)(?:\.(?P<modes>[a-z+]+))?\.sql$")

_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS wanllm_schema_version (
    component  text NOT NULL,
    version    integer NOT NULL,
    name       text NOT NULL,
    mode       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (component, version)
)"""


@dataclass(frozen=True, slots=True)
class Migration:
    component: str
    version: int
    name: str
    modes: frozenset[str]
    path: Path


@dataclass(frozen=True, slots=True)
class SchemaState:
    mode: Mode
    versions: dict[str, int]  # component -> highest applied version
    applied_now: list[str]  # "component/NNNN_name" applied by this call


def discover(root: Path | None = None) -> list[Migration]:
    """All migration files, ordered by component then version."""
    root = root or sql_dir()
    found: list[Migration] = []
    for component, default_modes in COMPONENTS:
        for path in sorted((root / component).glob("*.sql")):
            m = _FILE_RE.match(path.name)
            if not m:
                raise ValueError(f"bad migration file name {path} (want NNNN_name[.modes].sql)")
            modes = frozenset(m["modes"].split("+")) if m["modes"] else frozenset(default_modes)
            if not modes <= set(default_modes):
                raise ValueError(f"{path}: modes {sorted(modes)} not in {default_modes}")
            found.append(Migration(component, int(m["version"]), m["name"], modes, path))
    for component, _ in COMPONENTS:
        seen: dict[int, set[str]] = {}
        for mig in (x for x in found if x.component == component):
            if seen.get(mig.version, set()) & mig.modes:
                raise ValueError(f"{mig.path}: version {mig.version} clashes for some mode")
            seen.setdefault(mig.version, set()).update(mig.modes)
    return found


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
    migrations = discover(root)
    await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
    try:
        async with conn.transaction():
            mode: Mode = await _detect_mode(conn, want_timescaledb)
            await conn.execute(_VERSION_TABLE)
        done = {
            (r["component"], r["version"])
            for r in await conn.fetch("SELECT component, version FROM wanllm_schema_version")
        }
        applied: list[str] = []
        for mig in migrations:
            if mode not in mig.modes or (mig.component, mig.version) in done:
                continue
            async with conn.transaction():
                await conn.execute(mig.path.read_text())
                await conn.execute(
                    "INSERT INTO wanllm_schema_version (component, version, name, mode)"
                    " VALUES ($1, $2, $3, $4)",
                    mig.component, mig.version, mig.name, mode,
                )  # fmt: skip
            done.add((mig.component, mig.version))
            applied.append(f"{mig.component}/{mig.version:04d}_{mig.name}")
        rows = await conn.fetch(
            "SELECT component, max(version) AS v FROM wanllm_schema_version GROUP BY component"
        )
        return SchemaState(mode, {r["component"]: r["v"] for r in rows}, applied)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
