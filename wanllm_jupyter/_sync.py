"""Replay the spools of runs logged while no server was reachable."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from ._http import Connection
from ._spool import pending_spools, replay_file
from ._transport import HttpTransport, is_retryable


@dataclass(frozen=True)
class SyncResult:
    path: Path
    ops: int | None  # operations replayed; None: skipped (a live process holds it)
    error: str | None = None


def sync(root: Path, conn: Connection, exclude: set[str] | None = None) -> list[SyncResult]:
    """Replay every pending spool under ``root`` in order (oldest first).

    Runs in ``exclude`` (ids) are skipped, as are spools a live process is writing.
    A spool whose replay fails keeps its file (replaying again later is safe).
    """
    transport = HttpTransport(conn)
    out = []
    for path in pending_spools(root):
        if exclude and path.parent.name in exclude:
            continue
        try:
            out.append(SyncResult(path, replay_file(path, transport.deliver)))
        except Exception as exc:
            out.append(SyncResult(path, 0, f"{type(exc).__name__}: {exc}"))
            if is_retryable(exc):
                break  # the server went away: the rest would fail too
    return out


def sync_in_background(root: Path, conn: Connection, exclude: set[str]) -> threading.Thread | None:
    """Start :func:`sync` on a daemon thread when there is anything to replay."""
    if not (root / "runs").is_dir() or not pending_spools(root):
        return None
    thread = threading.Thread(
        target=sync, args=(root, conn, exclude), name="wanllm-sync", daemon=True
    )
    thread.start()
    return thread
