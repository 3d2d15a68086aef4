"""How runs are created, resumed and updated: the rules every backend shares.

Pure functions on :class:`~.base.Run` objects; the backends only load and save. The
resume and update rules themselves are :mod:`wanllm_jupyter.core.run_rules`, which
the offline mode applies too; here they meet the store's dataclasses.
"""

from __future__ import annotations

import uuid
from dataclasses import fields
from typing import Any

from wanllm_jupyter.core import run_rules as rules
from wanllm_jupyter.core.errors import UsageError
from wanllm_jupyter.core.limits import MAX_RUN_NAME_LENGTH
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
        tags=rules.tags_after([], spec.tags, None, None),
        notes=spec.notes or "",
        git=spec.git or GitInfo(),
        host=spec.host,
        metadata=dict(spec.metadata or {}),
        created_at=rules.created_at(spec.created_at, now),
        updated_at=now,
        heartbeat_at=now,
    )


def resume_run(run: Run, spec: RunCreate, now: int) -> None:
    """Resume ``run`` (:func:`wanllm_jupyter.core.run_rules.resume`)."""
    check_run_name(spec.name)
    record = _fields(run)
    rules.resume(record, _fields(spec), now)
    _set(run, record)


def check_run_update(u: RunUpdate) -> None:
    """Reject a malformed update before touching the database."""
    check_run_name(u.name)
    if u.state is not None and u.state not in RUN_STATES:
        raise InvalidQuery(f"unknown state {u.state!r}; expected one of {RUN_STATES}")


def apply_run_update(run: Run, u: RunUpdate, now: int) -> None:
    """Apply a (checked) partial update to ``run`` in place
    (:func:`wanllm_jupyter.core.run_rules.apply_update`)."""
    record = _fields(run)
    try:
        rules.apply_update(record, _fields(u), now)
    except rules.TooManyTags as e:
        raise InvalidBatch([ItemError(0, "add_tags", str(e))], f"invalid run update: {e}") from None
    _set(run, record)


def revived(run: Run) -> bool:
    """Whether a heartbeat-only update of ``run`` brought it back from ``crashed``:
    only then does it move ``updated_at`` with ``heartbeat_at``."""
    return run.state == "running" and run.updated_at == run.heartbeat_at


def _fields(obj: Run | RunCreate | RunUpdate) -> dict[str, Any]:
    """A dataclass's fields as the mapping the shared rules take (values not copied)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def _set(run: Run, record: dict[str, Any]) -> None:
    for name, value in record.items():
        setattr(run, name, value)
