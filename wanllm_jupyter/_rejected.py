"""Operations set aside because the server would not take them, beside the run's spool.

One file per run: ``<root>/runs/<run_id>/rejected.jsonl``, one JSON line an
operation, in the order they were set aside::

    {"op": "patch", "body": {...}, "status": 422, "message": "PATCH ...", "t": 1764302400.1}

``status`` and ``message`` are the server's last answer, ``t`` when (epoch
seconds). Writers hold the run's lock (see :mod:`._spool`); ``wanllm sync
--retry-rejected`` sends the operations again and keeps only those still failing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ._ops import Op, from_wire, wire_body
from ._spool import body_json, run_lock
from ._transport import is_retryable
from .core.errors import ServerError

REJECTED = "rejected.jsonl"


@dataclass(frozen=True)
class SetAside:
    """What a run has set aside: how many operations and points, and the first reason."""

    run_id: str
    path: Path
    ops: int
    points: int
    first: str

    def describe(self) -> str:
        return (
            f"{self.ops} operations ({self.points} points) set aside in {self.path}, "
            f"first: {self.first}"
        )


@dataclass(frozen=True)
class RetryResult:
    """One run's ``--retry-rejected``: ops now delivered, ops still set aside, why it stopped."""

    run_id: str
    sent: int | None  # None: skipped (a live process holds the run)
    left: int
    error: str | None = None


def reason_of(exc: Exception) -> tuple[int | None, str]:
    """``(status, message)`` of a failed delivery."""
    return (exc.status if isinstance(exc, ServerError) else None), str(exc)


def append(dir: Path, op: Op, status: int | None, message: str) -> None:
    """Set an operation aside (fsync'd; the caller holds the run's lock)."""
    line = orjson.dumps(
        {
            "op": op.kind,
            "body": orjson.Fragment(body_json(wire_body(op))),
            "status": status,
            "message": message,
            "t": time.time(),
        }
    )
    dir.mkdir(parents=True, exist_ok=True)
    with open(dir / REJECTED, "ab") as f:
        f.write(line + b"\n")
        f.flush()
        os.fsync(f.fileno())


def read(path: Path) -> Iterator[dict[str, Any]]:
    """The set-aside records of a file, in order (a torn last line is ignored)."""
    with open(path, "rb") as f:
        for line in f:
            if line.endswith(b"\n"):
                yield orjson.loads(line)


def summary(dir: Path) -> SetAside | None:
    """What the run in ``dir`` has set aside, or None when nothing."""
    path = dir / REJECTED
    if not path.exists():
        return None
    records = list(read(path))
    if not records:
        return None
    return SetAside(
        dir.name,
        path,
        len(records),
        sum(from_wire(r["op"], r["body"]).points for r in records),
        records[0]["message"],
    )


def summaries(root: Path) -> list[SetAside]:
    """Every run under ``root`` with operations set aside."""
    found = (summary(p.parent) for p in sorted((root / "runs").glob(f"*/{REJECTED}")))
    return [s for s in found if s is not None]


def retry(dir: Path, deliver: Callable[[Op], Any]) -> RetryResult:
    """Send the set-aside operations of the run in ``dir`` again, in order; those
    delivered leave the file, the others stay with the server's new answer. Stops
    (keeping the rest) when the server cannot be reached."""
    path = dir / REJECTED
    with run_lock(dir) as locked:
        if not locked:
            held = summary(dir)
            return RetryResult(dir.name, None, held.ops if held else 0)
        records, kept, sent, error = list(read(path)), [], 0, None
        for i, record in enumerate(records):
            try:
                deliver(from_wire(record["op"], record["body"]))
            except Exception as exc:
                status, message = reason_of(exc)
                if status is None and is_retryable(exc):  # unreachable: keep the rest as is
                    kept += records[i:]
                    error = message
                    break
                kept.append({**record, "status": status, "message": message, "t": time.time()})
            else:
                sent += 1
        _rewrite(path, kept)
        return RetryResult(dir.name, sent, len(kept), error)


def _rewrite(path: Path, records: list[dict[str, Any]]) -> None:
    if not records:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(b"".join(orjson.dumps(r) + b"\n" for r in records))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
