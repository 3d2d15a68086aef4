"""How runs are created, resumed and updated: the rules every backend shares.

Pure functions on :class:`~.base.Run` objects; the backends only load and save.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from wanllm_jupyter.core.errors import UsageError
from wanllm_jupyter.core.limits import MAX_RUN_NAME_LENGTH, MAX_TAGS
from wanllm_jupyter.core.run_filters import field_kind, value_problem

from .base import (
    RUN_STATES,
    GitInfo,
    InvalidBatch,
    InvalidQuery,
    ItemError,
    Run,
    RunCreate,
    RunFilter,
    RunUpdate,
)
from .names import generate_run_name

_RESUME_OVERWRITES = ("name", "tags", "notes", "git", "host")


def check_run_name(name: str | None) -> None:
    """A run name is 1..MAX_RUN_NAME_LENGTH characters (None: not given)."""
    if name is not None and not (isinstance(name, str) and 0 < len(name) <= MAX_RUN_NAME_LENGTH):
        raise InvalidQuery(f"run name must be 1..{MAX_RUN_NAME_LENGTH} characters")


def field_kind_of(field: str) -> str:
    """:func:`~wanllm_jupyter.core.run_filters.field_kind`, as InvalidQuery."""
    try:
        return field_kind(field)
    except UsageError as e:
        raise InvalidQuery(str(e)) from None


def check_filter(f: RunFilter) -> None:
    """InvalidQuery unless ``f.value`` (stored form: times in µs) fits its field, so
    every backend is handed only values it can compare."""
    kind = field_kind_of(f.field)
    if f.op == "in":
        if not isinstance(f.value, list | tuple) or not f.value:
            raise InvalidQuery(f"filter {f.field} in: value must be a non-empty list of scalars")
        bad = next((p for v in f.value if (p := value_problem(kind, "eq", v))), None)
    else:
        bad = value_problem(kind, f.op, f.value)
    if bad is not None:
        raise InvalidQuery(f"filter {f.field} {f.op}: {bad}")


def new_run(spec: RunCreate, run_id: uuid.UUID | None, now: int) -> Run:
    """The run ``spec`` creates (``run_id`` None: a fresh uuid4)."""
    check_run_name(spec.name)
    return Run(
        id=run_id or uuid.uuid4(),
        project=spec.project,
        name=spec.name or generate_run_name(),
        state="running",
        config=dict(spec.config or {}),
        tags=list(dict.fromkeys(spec.tags or [])),
        notes=spec.notes or "",
        git=spec.git or GitInfo(),
        host=spec.host,
        metadata=dict(spec.metadata or {}),
        created_at=now if spec.created_at is None else min(spec.created_at, now),
        updated_at=now,
        heartbeat_at=now,
    )


def resume_run(run: Run, spec: RunCreate, now: int) -> None:
    """Resume ``run``: running again, config and metadata merged (top-level keys, as
    an update does), other given fields overwritten."""
    check_run_name(spec.name)
    run.config.update(spec.config or {})
    run.metadata.update(spec.metadata or {})
    for attr in _RESUME_OVERWRITES:
        if getattr(spec, attr) is not None:
            setattr(run, attr, getattr(spec, attr))
    run.state, run.exit_code, run.finished_at = "running", None, None
    run.updated_at = run.heartbeat_at = now


def check_run_update(u: RunUpdate) -> None:
    """Reject a malformed update before touching the database."""
    check_run_name(u.name)
    if u.state is not None and u.state not in RUN_STATES:
        raise InvalidQuery(f"unknown state {u.state!r}; expected one of {RUN_STATES}")


def apply_run_update(run: Run, u: RunUpdate, now: int) -> None:
    """Apply a (checked) partial update to ``run`` in place."""
    if u.name is not None:
        run.name = u.name
    if u.state is not None:
        ended = now if u.finished_at is None else max(min(u.finished_at, now), run.created_at)
        run.finished_at = _end_time(run, u.state, ended)
        run.state = u.state
    if u.exit_code is not None:
        run.exit_code = u.exit_code
    if u.summary is not None:
        run.summary.update(u.summary)
    if u.config is not None:
        run.config.update(u.config)
    if u.metadata is not None:
        run.metadata.update(u.metadata)
    if u.tags is not None:
        run.tags = list(dict.fromkeys(u.tags))
    if u.add_tags:
        run.tags = list(dict.fromkeys([*run.tags, *u.add_tags]))
    if u.remove_tags:
        run.tags = [t for t in run.tags if t not in set(u.remove_tags)]
    if len(run.tags) > MAX_TAGS:
        reason = f"the run would have {len(run.tags)} tags, more than {MAX_TAGS}"
        raise InvalidBatch([ItemError(0, "add_tags", reason)], f"invalid run update: {reason}")
    if u.notes is not None:
        run.notes = u.notes
    if u.heartbeat:
        run.heartbeat_at = now
        if run.state == "crashed" and u.state is None:  # alive after all: running again
            run.state, run.finished_at = "running", None
            run.updated_at = now
    if replace(u, heartbeat=False) != _NO_CHANGE:  # a heartbeat alone is no update
        run.updated_at = now


_NO_CHANGE = RunUpdate()


def revived(run: Run) -> bool:
    """Whether a heartbeat-only update of ``run`` brought it back from ``crashed``:
    only then does it move ``updated_at`` with ``heartbeat_at``."""
    return run.state == "running" and run.updated_at == run.heartbeat_at


def _end_time(run: Run, state: str, now: int) -> int | None:
    """``finished_at`` of ``run`` entering ``state``: None while running; now when it
    ends, also after the crash sweep's provisional end (a crashed run that finishes
    ends when it finishes); kept when an ended run is set to an end state again."""
    if state == "running":
        return None
    if run.finished_at is None or run.state == "running":
        return now
    return now if run.state == "crashed" and state != "crashed" else run.finished_at
