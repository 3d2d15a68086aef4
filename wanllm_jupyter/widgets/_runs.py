"""Resolve what users pass as runs (``Run`` objects, ids, dicts) and the connection."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._discovery import find_connection
from .._http import Connection
from ..core.errors import ServerUnreachable, UsageError


def run_id_of(run: Any) -> str:
    """The id of a ``Run`` (``.id``), a run dict (``["id"]``) or an id string."""
    if isinstance(run, str):
        return run
    if isinstance(run, dict) and "id" in run:
        return str(run["id"])
    rid = getattr(run, "id", None)
    if rid is None:
        raise UsageError(f"expected a Run, a run dict or a run id string, got {type(run).__name__}")
    return str(rid)


def as_run_list(runs: Any) -> list[Any]:
    """One run or an iterable of runs (a DataFrame's ``id`` column works too)."""
    if isinstance(runs, (str, dict)) or (hasattr(runs, "id") and not hasattr(runs, "columns")):
        return [runs]
    if hasattr(runs, "columns") and "id" in getattr(runs, "columns", ()):
        return list(runs["id"])
    if isinstance(runs, Iterable):
        return list(runs)
    return [runs]


def resolve_connection(runs: list[Any], connection: Connection | None) -> Connection:
    """``connection``, else the first run's ``.connection``, else server discovery."""
    if connection is not None:
        return connection
    for run in runs:
        conn = getattr(run, "connection", None)
        if isinstance(conn, Connection):
            return conn
    conn = find_connection()
    if conn is None:
        raise ServerUnreachable(
            "no wanllm server found: start JupyterLab with the wanllm extension, "
            "set WANLLM_URL/WANLLM_TOKEN, or call wl.login(url, token)"
        )
    return conn


def is_borrowed(conn: Connection, runs: list[Any], connection: Connection | None) -> bool:
    """True when ``conn`` was handed in (as ``connection`` or a run's), so its owner
    closes it; False when the widget found it and must close it itself."""
    return conn is connection or any(getattr(r, "connection", None) is conn for r in runs)
