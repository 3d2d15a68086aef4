"""How a run is resumed and updated: the rules the server's stores and the offline
mode share (docs/api.md, "Runs").

A run is handled as a mutable mapping of its fields (``config``, ``summary``,
``metadata``, ``tags``, ``state``, ``exit_code``, ``name``, ``notes``, ``git``,
``host`` and the times ``created_at``, ``updated_at``, ``heartbeat_at``,
``finished_at`` as µs since the epoch); a change as a mapping of the given fields
(None = not given). ``now`` is when the change happens (µs).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from .limits import MAX_TAGS

RESUME_MERGES = ("config", "metadata")  # top-level keys merged on resume
RESUME_OVERWRITES = ("name", "tags", "notes", "git", "host")  # replaced when given
UPDATE_MERGES = ("summary", "config", "metadata")  # top-level keys merged by an update
UPDATE_REPLACES = ("name", "exit_code", "notes")
TAG_CHANGES = ("tags", "add_tags", "remove_tags")
CHANGES = (*UPDATE_MERGES, *UPDATE_REPLACES, *TAG_CHANGES, "state", "finished_at")
"""The update fields that move ``updated_at`` (a heartbeat alone does not)."""

Record = MutableMapping[str, Any]


class TooManyTags(ValueError):
    """An update would leave the run with more than MAX_TAGS tags."""


def created_at(given: int | None, now: int) -> int:
    """When a created run started: ``given`` (a synced offline run), never after now."""
    return now if given is None else min(given, now)


def resume(run: Record, spec: Mapping[str, Any], now: int) -> None:
    """Resume ``run``: running again, config and metadata merged (top-level keys),
    the other given fields overwritten."""
    for key in RESUME_MERGES:
        run[key] = {**run[key], **(spec.get(key) or {})}
    for key in RESUME_OVERWRITES:
        if spec.get(key) is not None:
            run[key] = spec[key]
    run.update(state="running", exit_code=None, finished_at=None)
    run["updated_at"] = run["heartbeat_at"] = now


def apply_update(run: Record, u: Mapping[str, Any], now: int) -> None:
    """Apply a partial update ``u`` (plus ``heartbeat``: bool and ``finished_at``: µs
    the end state was reached, None = now) to ``run`` in place; TooManyTags leaves
    the caller to discard the changed copy."""
    if u.get("state") is not None:
        given = u.get("finished_at")
        ended = now if given is None else max(min(given, now), run["created_at"])
        run["finished_at"] = end_time(run["state"], run["finished_at"], u["state"], ended)
        run["state"] = u["state"]
    for key in UPDATE_REPLACES:
        if u.get(key) is not None:
            run[key] = u[key]
    for key in UPDATE_MERGES:
        if u.get(key) is not None:
            run[key] = {**run[key], **u[key]}
    run["tags"] = tags_after(run["tags"], u.get("tags"), u.get("add_tags"), u.get("remove_tags"))
    if len(run["tags"]) > MAX_TAGS:
        raise TooManyTags(f"the run would have {len(run['tags'])} tags, more than {MAX_TAGS}")
    if u.get("heartbeat"):
        run["heartbeat_at"] = now
        if run["state"] == "crashed" and u.get("state") is None:  # alive after all
            run["state"], run["finished_at"] = "running", None
            run["updated_at"] = now
    if any(u.get(key) is not None for key in CHANGES):
        run["updated_at"] = now


def tags_after(
    tags: list[str], replace: list[str] | None, add: list[str] | None, remove: list[str] | None
) -> list[str]:
    """The tags once replaced, added to and removed from (order kept, no repeats)."""
    out = list(dict.fromkeys(tags if replace is None else replace))
    if add:
        out = list(dict.fromkeys([*out, *add]))
    if remove:
        out = [t for t in out if t not in set(remove)]
    return out


def end_time(state: str, finished_at: int | None, new_state: str, now: int) -> int | None:
    """``finished_at`` of a run in ``state`` entering ``new_state``: None while running;
    now when it ends, also after the crash sweep's provisional end (a crashed run that
    finishes ends when it finishes); kept when an ended run is set to an end state again."""
    if new_state == "running":
        return None
    if finished_at is None or state == "running":
        return now
    return now if state == "crashed" and new_state != "crashed" else finished_at
