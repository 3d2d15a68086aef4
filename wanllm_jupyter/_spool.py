"""Append-only, fsync'd on-disk queue of operations a run could not send yet.

One file per run: ``<root>/runs/<run_id>/spool.jsonl``, one JSON operation a
line, in the order they must reach the server::

    {"op": "create", "body": {...POST runs body...}}
    {"op": "metrics", "body": {...columnar batch...}}
    {"op": "system", "body": {...system batch...}}
    {"op": "patch", "body": {...PATCH run body...}}

The writing process holds an exclusive ``flock`` on ``spool.lock`` for as long
as it may append; replaying takes the same lock, so a live run's spool is never
replayed behind its back. After a complete replay the file is renamed
``spool.synced.jsonl`` (kept for offline queries) or, for a live run,
truncated. Replays are safe to repeat: metric batches carry idempotency ids.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

PENDING = "spool.jsonl"
SYNCED = "spool.synced.jsonl"
Op = tuple[str, Any]  # (kind, body: dict or pre-encoded JSON bytes)


def default_root(dir: str | os.PathLike[str] | None = None) -> Path:
    """``<dir>/wanllm`` where ``dir`` defaults to ``$WANLLM_DIR`` or the working directory."""
    base = dir or os.environ.get("WANLLM_DIR") or os.getcwd()
    return Path(base).expanduser().resolve() / "wanllm"


def encode_op(kind: str, body: Any) -> bytes:
    """One spool line for an operation."""
    raw = body if isinstance(body, bytes) else orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    return b'{"op":"' + kind.encode() + b'","body":' + raw + b"}\n"


def read_ops(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """The operations of a spool file, in order (a torn last line is ignored)."""
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                return  # written partially when the process died
            op = orjson.loads(line)
            yield op["op"], op["body"]


class Spool:
    """The spool of one run, opened for appending by the process that owns the run."""

    def __init__(self, root: Path, run_id: str) -> None:
        self.dir = root / "runs" / run_id
        self.path = self.dir / PENDING
        self._file: Any = None
        self._lock: Any = None
        self.pending_ops = 0  # ops appended and not yet replayed

    def _open(self) -> None:
        if self._file is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._lock = open(self.dir / "spool.lock", "a")
            fcntl.flock(self._lock, fcntl.LOCK_EX)
            self._file = open(self.path, "ab")

    def append(self, ops: list[Op]) -> None:
        """Append operations and fsync them (durable when this returns)."""
        if not ops:
            return
        self._open()
        self._file.write(b"".join(encode_op(kind, body) for kind, body in ops))
        self._file.flush()
        os.fsync(self._file.fileno())
        self.pending_ops += len(ops)

    def replay(self, deliver: Callable[[str, dict[str, Any]], None]) -> int:
        """Deliver every spooled op in order, then truncate; return how many.

        Stops at (and propagates) the first exception, leaving the file intact.
        """
        if not self.path.exists():
            return 0
        n = 0
        for kind, body in read_ops(self.path):
            deliver(kind, body)
            n += 1
        self._open()
        self._file.truncate(0)
        os.fsync(self._file.fileno())
        self.pending_ops = 0
        return n

    def close(self) -> None:
        """Release the file and its lock (the file stays when it still holds ops)."""
        if self._file is not None:
            self._file.close()
            if self.path.exists() and self.path.stat().st_size == 0:
                self.path.unlink()
            self._lock.close()
            self._file = self._lock = None


def pending_spools(root: Path) -> list[Path]:
    """Spool files under ``root`` still holding operations, oldest first."""
    files = [p for p in (root / "runs").glob(f"*/{PENDING}") if p.stat().st_size > 0]
    return sorted(files, key=lambda p: p.stat().st_mtime)


def replay_file(path: Path, deliver: Callable[[str, dict[str, Any]], None]) -> int | None:
    """Replay a spool nobody is writing; rename it ``spool.synced.jsonl`` (appending to any
    previous synced file) when done. ``None`` when a live process holds it."""
    with open(path.parent / "spool.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        n = 0
        for kind, body in read_ops(path):
            deliver(kind, body)
            n += 1
        synced = path.parent / SYNCED
        with open(path, "rb") as src, open(synced, "ab") as dst:
            dst.write(src.read())
            dst.flush()
            os.fsync(dst.fileno())
        path.unlink()
        return n
