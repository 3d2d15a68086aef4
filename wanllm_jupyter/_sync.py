"""Replay the spools of runs logged while no server was reachable, and retry
the operations set aside because the server would not take them."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import _rejected
from ._http import Connection
from ._replay import FAULT_LIMIT, Replayer
from ._spool import pending_spools
from ._transport import HttpTransport, is_retryable, is_server_fault

FAULT_PAUSE = 0.5  # seconds before replaying again after a 5xx (times the attempt)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncResult:
    path: Path
    ops: int | None  # operations delivered; None: skipped (a live process holds it)
    error: str | None = None
    set_aside: int = 0  # operations set aside by this replay (see ._rejected)


def sync(
    root: Path,
    conn: Connection,
    exclude: set[str] | None = None,
    *,
    fault_pause: float = FAULT_PAUSE,
) -> list[SyncResult]:
    """Replay every pending spool under ``root`` in order (oldest first).

    Runs in ``exclude`` (ids) are skipped, as are spools a live process is writing.
    Operations the server will not take are set aside and the replay goes on
    (:mod:`._replay`); a replay answered with 5xx is tried again a few times, so
    one operation failing that way is set aside once later ones get through. A
    spool whose replay fails keeps its file (replaying again later is safe).
    """
    transport = HttpTransport(conn)
    out = []
    for path in pending_spools(root):
        if exclude and path.parent.name in exclude:
            continue
        result, server_failing = _sync_one(
            path, Replayer(transport.deliver, path.parent), fault_pause
        )
        out.append(result)
        if server_failing:
            break  # the server went away (or fails everything): the rest would fail too
    return out


def _sync_one(path: Path, replayer: Replayer, fault_pause: float) -> tuple[SyncResult, bool]:
    """One spool's replay, tried again after a 5xx; and whether the server is failing."""
    attempt = 0
    while True:
        attempt += 1
        try:
            taken = replayer.replay_file(path)
        except Exception as exc:
            if is_server_fault(exc) and attempt <= FAULT_LIMIT:
                time.sleep(fault_pause * attempt)
                continue
            error = f"{type(exc).__name__}: {exc}"
            failing = is_retryable(exc) or is_server_fault(exc)
            return SyncResult(path, replayer.sent, error, replayer.set_aside), failing
        ops = None if taken is None else replayer.sent
        return SyncResult(path, ops, None, replayer.set_aside), False


def retry_rejected(root: Path, conn: Connection) -> list[_rejected.RetryResult]:
    """Send every run's set-aside operations again (``wanllm sync --retry-rejected``);
    those delivered leave the rejected file. Stops when the server cannot be reached."""
    transport = HttpTransport(conn)
    out = []
    for found in _rejected.summaries(root):
        result = _rejected.retry(found.path.parent, transport.deliver)
        out.append(result)
        if result.error is not None:
            break
    return out


def sync_in_background(root: Path, conn: Connection, exclude: set[str]) -> threading.Thread | None:
    """Start :func:`sync` on a daemon thread (``wanllm-sync``) when there is anything
    to replay; the thread ends with the replay. A replay can take long, so it does not
    run on the kernel's I/O loop (docs/kernel-threads.md). Failures are logged once."""
    if not (root / "runs").is_dir() or not pending_spools(root):
        return None
    thread = threading.Thread(
        target=_sync_and_log, args=(root, conn, exclude), name="wanllm-sync", daemon=True
    )
    thread.start()
    return thread


def _sync_and_log(root: Path, conn: Connection, exclude: set[str]) -> None:
    failed = [r for r in sync(root, conn, exclude) if r.error is not None]
    if failed:
        log.warning(
            "wanllm: replaying %d earlier spool(s) failed, the first (%s) with %s; "
            "`wanllm sync` retries",
            len(failed),
            failed[0].path,
            failed[0].error,
        )
