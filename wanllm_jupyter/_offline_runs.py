"""Run records rebuilt from spooled operations, by the server's rules (docs/api.md).

A ``create`` makes the run (or resumes it: config and metadata merged, other given
fields overwritten); a ``patch`` merges ``config``, ``summary`` and ``metadata``
(top-level keys), replaces the scalar fields and ``tags``, and applies
``add_tags``/``remove_tags``. ``t`` is when the operation was spooled (epoch
seconds; None for spools written before times were recorded).
"""

from __future__ import annotations

from typing import Any

import numpy as np

_MERGED = ("config", "metadata")
_OVERWRITTEN_ON_RESUME = ("name", "tags", "notes", "git", "host")
_PATCH_SCALARS = ("name", "exit_code", "notes")


def iso(t: float | None) -> str | None:
    """Epoch seconds → ``2026-11-28T04:00:00.123456Z`` (the server's run time form)."""
    return None if t is None else str(np.datetime64(round(t * 1e6), "us")) + "Z"


def created(run_id: str, body: dict[str, Any], t: float | None) -> dict[str, Any]:
    """The run a ``create`` operation makes."""
    return {
        "id": run_id,
        "project": body.get("project") or "default",
        "name": body.get("name") or run_id[:8],
        "state": "running",
        "created_at": iso(body.get("created_at", t)),  # when it started, as sync sends it
        "updated_at": iso(t),
        "heartbeat_at": iso(t),
        "finished_at": None,
        "config": dict(body.get("config") or {}),
        "summary": {},
        "tags": list(dict.fromkeys(body.get("tags") or [])),
        "notes": body.get("notes") or "",
        "git": body.get("git") or {},
        "host": body.get("host"),
        "metadata": dict(body.get("metadata") or {}),
        "exit_code": None,
    }


def resume(run: dict[str, Any], body: dict[str, Any], t: float | None) -> None:
    """Apply a later ``create`` of the same run (a resume) to ``run`` in place."""
    for key in _MERGED:
        run[key] = {**run[key], **(body.get(key) or {})}
    for key in _OVERWRITTEN_ON_RESUME:
        if body.get(key) is not None:
            run[key] = body[key]
    run.update(state="running", exit_code=None, finished_at=None)
    _touch(run, t)


def patch(run: dict[str, Any], body: dict[str, Any], t: float | None) -> None:
    """Apply a ``patch`` operation to ``run`` in place."""
    for key in ("config", "summary", "metadata"):
        if body.get(key) is not None:
            run[key] = {**run[key], **body[key]}
    for key in _PATCH_SCALARS:
        if body.get(key) is not None:
            run[key] = body[key]
    if body.get("state") is not None:
        run["state"] = body["state"]
        finished = run["finished_at"] or iso(body.get("finished_at", t))
        run["finished_at"] = None if body["state"] == "running" else finished
    if body.get("tags") is not None:
        run["tags"] = list(dict.fromkeys(body["tags"]))
    if body.get("add_tags"):
        run["tags"] = list(dict.fromkeys([*run["tags"], *body["add_tags"]]))
    if body.get("remove_tags"):
        run["tags"] = [tag for tag in run["tags"] if tag not in set(body["remove_tags"])]
    _touch(run, t, heartbeat=bool(body.get("heartbeat")))


def _touch(run: dict[str, Any], t: float | None, *, heartbeat: bool = True) -> None:
    if t is not None:
        run["updated_at"] = iso(t)
        if heartbeat:
            run["heartbeat_at"] = iso(t)
