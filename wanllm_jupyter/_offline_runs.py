"""Run records rebuilt from spooled operations, by the server's rules
(:mod:`wanllm_jupyter.core.run_rules`, which the server's stores apply too).

A ``create`` makes the run, or resumes it; a ``patch`` updates it. ``t`` is when
the operation was spooled (epoch seconds; None for spools written before times
were recorded: such an operation leaves the times as they were). Records keep
times in µs; :func:`wire` gives the REST form (ISO 8601 times).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .core import run_rules

TIMES = ("created_at", "updated_at", "heartbeat_at", "finished_at")


def iso(us: int | None) -> str | None:
    """µs since the epoch → ``2026-11-28T04:00:00.123456Z`` (the server's run time form)."""
    return None if us is None else str(np.datetime64(us, "us")) + "Z"


def _us(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1e6)


def wire(run: Mapping[str, Any]) -> dict[str, Any]:
    """The run as the REST API shows it."""
    return {**run, **{key: iso(run[key]) for key in TIMES}}


def created(run_id: str, body: dict[str, Any], t: float | None) -> dict[str, Any]:
    """The run a ``create`` operation makes."""
    now, started = _us(t), _us(body.get("created_at"))
    return {
        "id": run_id,
        "project": body.get("project") or "default",
        "name": body.get("name") or run_id[:8],
        "state": "running",
        "created_at": started if now is None else run_rules.created_at(started, now),
        "updated_at": now,
        "heartbeat_at": now,
        "finished_at": None,
        "config": dict(body.get("config") or {}),
        "summary": {},
        "tags": run_rules.tags_after([], body.get("tags"), None, None),
        "notes": body.get("notes") or "",
        "git": body.get("git") or {},
        "host": body.get("host"),
        "metadata": dict(body.get("metadata") or {}),
        "exit_code": None,
    }


def resume(run: dict[str, Any], body: dict[str, Any], t: float | None) -> None:
    """Apply a later ``create`` of the same run (a resume) to ``run`` in place."""
    _apply(run_rules.resume, run, body, t)


def patch(run: dict[str, Any], body: dict[str, Any], t: float | None) -> None:
    """Apply a ``patch`` operation to ``run`` in place (an update past the tag limit
    is left out, as the server refuses it)."""
    change = {**body, "finished_at": _us(body.get("finished_at"))}
    with contextlib.suppress(run_rules.TooManyTags):
        _apply(run_rules.apply_update, run, change, t)


def _apply(
    rule: Callable[[dict[str, Any], Mapping[str, Any], int], None],
    run: dict[str, Any],
    change: Mapping[str, Any],
    t: float | None,
) -> None:
    """``rule`` applied to a copy of ``run``, kept whole once it succeeds."""
    record = dict(run)
    now = _us(t)
    if now is None:  # spooled before times were recorded: the times stay
        rule(record, {**change, "finished_at": None}, record["updated_at"] or 0)
        record.update({key: run[key] for key in TIMES})
    else:
        rule(record, change, now)
    run.update(record)
