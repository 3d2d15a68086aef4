"""The one migration runner: its file rule and order, records on SQLite and
PostgreSQL, and upgrades of databases the earlier runners wrote."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from wanllm_server.store import RunCreate, open_store
from wanllm_server.store.migrations import discover, sql_dir
from wanllm_server.store.postgres_schema import migrate as pg_migrate
from wanllm_server.store.sqlite_schema import _statements
from wanllm_server.store.sqlite_schema import migrate as sqlite_migrate

from tests.store.store_helpers import batch

# The files the earlier runners knew (what databases in the field have recorded).
OLD_FILES = {"sqlite": 2, "postgres": 6, "timescale": 2, "media_sqlite": 0, "media_postgres": 0}
OLD_RUN = uuid.UUID(int=1)
HOURLY = "SELECT count(*) FROM pg_class WHERE relname = 'metrics_hourly'"


def _old_tree(tmp_path: Path) -> Path:
    """A copy of sql/ holding only the files the earlier runners applied."""
    old = tmp_path / "old_sql"
    shutil.copytree(sql_dir(), old)
    for component, last in OLD_FILES.items():
        for f in (old / component).glob("*.sql"):
            if int(f.name[:4]) > last:
                f.unlink()
    return old


def _write(root: Path, component: str, *names: str) -> None:
    (root / component).mkdir(parents=True, exist_ok=True)
    for name in names:
        (root / component / name).write_text("SELECT 1;\n")


# ----------------------------------------------------------------- the file rule
def test_discover_orders_components_then_versions_and_reads_modes(tmp_path: Path) -> None:
    _write(tmp_path, "timescale", "0001_a.sql")
    _write(tmp_path, "postgres", "0002_b.plain+apache.sql", "0001_a.sql", "0002_b.timescale.sql")
    found = discover("postgres", tmp_path)
    assert [(m.label, sorted(m.modes)) for m in found] == [
        ("postgres/0001_a", ["apache", "plain", "timescale"]),
        ("postgres/0002_b", ["apache", "plain"]),
        ("postgres/0002_b", ["timescale"]),
        ("timescale/0001_a", ["apache", "timescale"]),
    ]
    _write(tmp_path, "sqlite", "0001_initial.sql")
    assert [(m.label, sorted(m.modes)) for m in discover("sqlite", tmp_path)] == [
        ("sqlite/0001_initial", ["sqlite"])
    ]


@pytest.mark.parametrize(
    ("component", "name", "error"),
    [
        ("sqlite", "0001_Initial.sql", "bad migration file name"),
        ("sqlite", "1_initial.sql", "bad migration file name"),
        ("sqlite", "0001_initial.plain.sql", "not in"),
        ("timescale", "0001_a.plain.sql", "not in"),
    ],
)
def test_discover_rejects_names_outside_the_rule(
    tmp_path: Path, component: str, name: str, error: str
) -> None:
    _write(tmp_path, component, name)
    with pytest.raises(ValueError, match=error):
        discover("sqlite" if component == "sqlite" else "postgres", tmp_path)


def test_discover_rejects_two_files_of_one_version_and_mode(tmp_path: Path) -> None:
    _write(tmp_path, "postgres", "0001_a.sql", "0001_b.apache.sql")
    with pytest.raises(ValueError, match="clashes"):
        discover("postgres", tmp_path)


def test_shipped_files_follow_the_rule() -> None:
    for backend in ("sqlite", "postgres"):
        assert discover(backend)


def test_statement_splitter_keeps_triggers_whole_and_rejects_a_cut_statement() -> None:
    script = (
        "CREATE TABLE t (a);\nCREATE TRIGGER g AFTER INSERT ON t BEGIN SELECT 1; END;\n-- end\n"
    )
    assert len(_statements(script)) == 2
    with pytest.raises(ValueError, match="incomplete"):
        _statements("CREATE TABLE t (a")


# ----------------------------------------------------------------- SQLite
def test_sqlite_records_each_file_once(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    first = sqlite_migrate(conn)
    second = sqlite_migrate(conn)
    rows = conn.execute(
        "SELECT component, version, name, mode, applied_at FROM wanllm_schema_version"
    ).fetchall()
    assert first.applied_now == [m.label for m in discover("sqlite")] and second.applied_now == []
    assert [r[:4] for r in rows] == [
        (m.component, m.version, m.name, "sqlite") for m in discover("sqlite")
    ]
    assert all(r[4] > 1_700_000_000_000_000 for r in rows)  # µs since the epoch
    last = {m.component: m.version for m in discover("sqlite")}
    assert first.versions == second.versions == last


def _legacy_sqlite(path: Path) -> None:
    """A database as the earlier SQLite runner left it: its own ``schema_version``."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "applied_at INTEGER NOT NULL)"
    )
    for m in discover("sqlite"):
        if m.version <= OLD_FILES[m.component]:
            for stmt in _statements(m.path.read_text()):
                conn.execute(stmt)
            conn.execute("INSERT INTO schema_version VALUES (?, ?, ?)", (m.version, m.name, 123))
    conn.close()


def test_sqlite_database_of_the_earlier_runner_upgrades(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _legacy_sqlite(path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("INSERT INTO runs (id, project, name, state, created_at, updated_at) VALUES "
                 "(?, 'p', 'old', 'finished', 1, 1)", (str(OLD_RUN),))  # fmt: skip
    conn.close()

    async def use() -> tuple[str, int, dict[str, Any]]:
        store = open_store(f"sqlite:///{path}")
        await store.open()
        try:
            old = await store.get_run(OLD_RUN)
            new, _ = await store.create_run(RunCreate(name="new"))
            await store.write_metrics(batch(new.id, {"x": ([0, 1], [1.0, 2.0])}))
            return old.name, (await store.stats(new.id, "x")).count, await store.info()
        finally:
            await store.close()

    name, count, info = asyncio.run(use())
    assert (name, count) == ("old", 2)
    conn = sqlite3.connect(path, isolation_level=None)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    rows = conn.execute(
        "SELECT component, version, name, applied_at FROM wanllm_schema_version"
    ).fetchall()
    again = sqlite_migrate(conn)
    assert "schema_version" not in tables
    shipped = discover("sqlite")
    assert [r[:3] for r in rows] == [(m.component, m.version, m.name) for m in shipped]
    assert [r[3] for r in rows[: OLD_FILES["sqlite"]]] == [123] * OLD_FILES["sqlite"]
    core = max(m.version for m in shipped if m.component == "sqlite")
    assert info["schema_version"] == core and again.applied_now == []


# ----------------------------------------------------------------- PostgreSQL
@pytest.mark.parametrize("timescale", [True, False], ids=["timescaledb", "postgresql"])
def test_postgres_database_of_the_earlier_files_upgrades(
    make_pg_database: Callable[..., str], tmp_path: Path, timescale: bool
) -> None:
    """A database migrated with the earlier files (and holding data) takes only
    the newer files, keeps its runs and points, and loses its hourly rollups."""
    dsn = make_pg_database(timescale=timescale)
    old_root = _old_tree(tmp_path)

    async def go() -> tuple[Any, ...]:
        conn = await asyncpg.connect(dsn)
        try:
            before = await pg_migrate(conn, root=old_root)
            await conn.execute(
                "INSERT INTO runs (id, project, name, state) VALUES ($1, 'p', 'kept', 'finished')",
                OLD_RUN,
            )
            hourly_before = await conn.fetchval(HOURLY)
            after = await pg_migrate(conn)
            rows = await conn.fetch("SELECT component, version FROM wanllm_schema_version")
            hourly_after = await conn.fetchval(HOURLY)
        finally:
            await conn.close()
        store = open_store(dsn)
        await store.open()
        try:
            name = (await store.get_run(OLD_RUN)).name
            await store.write_metrics(batch(OLD_RUN, {"x": ([0, 1, 2], [1.0, 2.0, 3.0])}))
            count = (await store.stats(OLD_RUN, "x")).count
        finally:
            await store.close()
        hourly = (hourly_before, hourly_after)
        return before, after, {(r[0], r[1]) for r in rows}, count, name, hourly

    before, after, recorded, count, name, hourly = asyncio.run(go())
    mode = before.mode
    shipped = [m for m in discover("postgres") if mode in m.modes]
    new = [m.label for m in shipped if m.version > OLD_FILES[m.component]]
    assert before.applied_now == [m.label for m in shipped if m.version <= OLD_FILES[m.component]]
    assert after.applied_now == new
    assert recorded == {(m.component, m.version) for m in shipped}
    assert (count, name) == (3, "kept")
    assert hourly == (1, 0)
