"""The one migration runner of every backend: its file rule, order and record.

Files (``sql/`` at the repository root, ``wanllm_server/sql`` in the wheel)::

    sql/<component>/NNNN_name[.modes].sql

A backend applies its components in :data:`COMPONENTS` order, each by version.
``modes`` is an optional ``+``-separated subset of the component's modes
restricting a file to them (e.g. ``0002_hourly.plain+apache.sql``); a backend
detects its mode when it opens (SQLite: ``sqlite``; PostgreSQL: ``plain``
without TimescaleDB, else the TimescaleDB licence, ``apache`` or
``timescale``). Each applied file is one row of ``wanllm_schema_version``
(component, version, name, mode, applied_at), keyed by (component, version),
written in the file's own transaction.

A backend supplies the I/O as a :class:`Target` (:mod:`.sqlite_schema`,
:mod:`.postgres_schema`); :func:`migrate` is the same for all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

_PKG = Path(__file__).resolve().parent.parent
_FILE_RE = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)(?:\.(?P<modes>[a-z+]+))?\.sql$")
PG_MODES = ("plain", "apache", "timescale")
COMPONENTS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "sqlite": (("sqlite", ("sqlite",)), ("media_sqlite", ("sqlite",))),
    "postgres": (
        ("postgres", PG_MODES),
        ("timescale", ("apache", "timescale")),
        ("media_postgres", PG_MODES),
    ),
}
VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS wanllm_schema_version (
    component  text NOT NULL,
    version    integer NOT NULL,
    name       text NOT NULL,
    mode       text NOT NULL,
    applied_at {applied_at},
    PRIMARY KEY (component, version)
)"""
RECORD_COLUMNS = ("component", "version", "name", "mode")


@dataclass(frozen=True, slots=True)
class Migration:
    component: str
    version: int
    name: str
    modes: frozenset[str]
    path: Path

    @property
    def label(self) -> str:
        return f"{self.component}/{self.version:04d}_{self.name}"


@dataclass(frozen=True, slots=True)
class SchemaState:
    mode: str
    versions: dict[str, int]  # component -> highest applied version
    applied_now: list[str]  # labels of the files this call applied


class Target(Protocol):
    """One backend's I/O for :func:`migrate`."""

    backend: str  # a key of COMPONENTS

    def session(self) -> AbstractAsyncContextManager[str]:
        """Hold off other migrators, create ``wanllm_schema_version``; yields the mode."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[object]: ...

    async def applied(self) -> list[tuple[str, int]]:
        """The recorded (component, version) pairs."""
        ...

    async def execute(self, script: str) -> None:
        """Run one migration file's SQL."""
        ...

    async def record(self, row: tuple[str, int, str, str]) -> None:
        """Insert ``row`` (:data:`RECORD_COLUMNS`) into ``wanllm_schema_version``."""
        ...


def sql_dir() -> Path:
    """The ``sql`` directory (wheel layout first, then the source checkout)."""
    for candidate in (_PKG / "sql", _PKG.parent.parent / "sql"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no sql/ directory next to {_PKG}")


def discover(backend: str, root: Path | None = None) -> list[Migration]:
    """The migration files of ``backend``, in the order they are applied."""
    root = root or sql_dir()
    found: list[Migration] = []
    for component, all_modes in COMPONENTS[backend]:
        seen: dict[int, set[str]] = {}
        for path in sorted((root / component).glob("*.sql")):
            m = _FILE_RE.match(path.name)
            if not m:
                raise ValueError(f"bad migration file name {path} (want NNNN_name[.modes].sql)")
            modes = frozenset(m["modes"].split("+")) if m["modes"] else frozenset(all_modes)
            if not modes <= set(all_modes):
                raise ValueError(f"{path}: modes {sorted(modes)} not in {all_modes}")
            version = int(m["version"])
            if seen.get(version, set()) & modes:
                raise ValueError(f"{path}: version {version} clashes for some mode")
            seen.setdefault(version, set()).update(modes)
            found.append(Migration(component, version, m["name"], modes, path))
    return found


def versions(applied: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Component -> highest applied version."""
    out: dict[str, int] = {}
    for component, version in applied:
        out[component] = max(out.get(component, 0), version)
    return out


async def migrate(target: Target, root: Path | None = None) -> SchemaState:
    """Apply the pending migrations of ``target``'s mode (idempotent)."""
    found = discover(target.backend, root)
    async with target.session() as mode:
        done = set(await target.applied())
        applied_now: list[str] = []
        for m in _pending(found, done, mode):
            async with target.transaction():
                if (m.component, m.version) in set(await target.applied()):
                    continue  # applied by another migrator since the first look
                await target.execute(m.path.read_text())
                await target.record((m.component, m.version, m.name, mode))
            applied_now.append(m.label)
        return SchemaState(mode, versions(await target.applied()), applied_now)


def _pending(found: Sequence[Migration], done: set[tuple[str, int]], mode: str) -> list[Migration]:
    return [m for m in found if mode in m.modes and (m.component, m.version) not in done]
