"""The client's operations, one frozen type per kind: what a run queues, the sender
delivers, the transport sends (docs/api.md) and the spool keeps.

:data:`Op` is their union; code that handles each kind narrows it with
``isinstance`` and ends with :func:`unhandled`, so mypy checks every kind is handled
with its own body. In the spool an op is the JSON line ``{"op": <kind>, "body":
...}`` (:mod:`._spool`): :func:`wire_body` gives the body written there and
:func:`from_wire` makes the op again from what such a line holds (older spools
included: the form has not changed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NoReturn, TypedDict, cast

from ._wire import ColumnarBatch

if TYPE_CHECKING:
    from .core.api.fields import RunState
    from .core.api.media import MediaBatch

Kind = Literal["create", "metrics", "media", "system", "patch"]


class CreateBody(TypedDict, total=False):
    """The ``POST runs`` body of a run (the transport adds ``resume``)."""

    project: str
    name: str | None
    id: str
    config: dict[str, Any]
    tags: list[str] | None
    notes: str | None
    git: dict[str, Any]
    host: str | None
    metadata: dict[str, Any]
    created_at: float  # epoch seconds: when the run started (a create sent late keeps it)


class RunChange(TypedDict, total=False):
    """The ``PATCH runs/<id>`` body: what changes on the run."""

    config: dict[str, Any]
    summary: dict[str, Any]
    metadata: dict[str, Any]
    state: RunState
    exit_code: int
    finished_at: float  # epoch seconds


@dataclass(frozen=True, slots=True)
class Create:
    """Create the run, or resume it."""

    body: CreateBody
    kind: ClassVar[Literal["create"]] = "create"
    points: ClassVar[int] = 0


@dataclass(frozen=True, slots=True)
class Metrics:
    """A batch of metric points: cut by the sender, or its columnar JSON from a spool."""

    batch: ColumnarBatch | dict[str, Any]
    kind: ClassVar[Literal["metrics"]] = "metrics"

    @property
    def points(self) -> int:
        batch = self.batch
        return len(batch) if isinstance(batch, ColumnarBatch) else len(batch.get("v", ()))


@dataclass(frozen=True, slots=True)
class Media:
    """A batch of media items: encoded by the sender, or its JSON form from a spool."""

    batch: MediaBatch | dict[str, Any]
    kind: ClassVar[Literal["media"]] = "media"
    points: ClassVar[int] = 0


@dataclass(frozen=True, slots=True)
class System:
    """A batch of system metrics (the ``metrics/system/batch`` body)."""

    body: dict[str, Any]
    kind: ClassVar[Literal["system"]] = "system"
    points: ClassVar[int] = 0


@dataclass(frozen=True, slots=True)
class Patch:
    """A change to run ``run_id``."""

    run_id: str
    change: RunChange
    kind: ClassVar[Literal["patch"]] = "patch"
    points: ClassVar[int] = 0


Op = Create | Metrics | Media | System | Patch


def unhandled(op: NoReturn) -> NoReturn:
    """After every kind of :data:`Op` was handled: mypy reports a call it can reach
    (a kind left out), and so does Python at run time."""
    raise TypeError(f"not an operation: {op!r}")


def wire_body(op: Op) -> Any:
    """The body of ``op`` as its spool line holds it (a batch object is encoded by
    :func:`._spool.body_json`)."""
    if isinstance(op, Metrics | Media):
        return op.batch
    if isinstance(op, Patch):
        return {"run_id": op.run_id, **op.change}
    return op.body


def from_wire(kind: str, body: dict[str, Any], t: float | None = None) -> Op:
    """The op a spool line holds: ``kind`` and the decoded ``body``; ``t`` is when it
    was spooled, the end time of an end-state patch from before ``finish()`` stamped
    one (``finished_at`` absent). ``ValueError`` for an unknown kind."""
    if kind == "metrics":
        return Metrics(body)
    if kind == "patch":
        change = {k: v for k, v in body.items() if k != "run_id"}
        ends = change.get("state") not in (None, "running")
        if ends and t is not None and "finished_at" not in change:
            change["finished_at"] = t
        return Patch(body["run_id"], cast(RunChange, change))
    if kind == "media":
        return Media(body)
    if kind == "system":
        return System(body)
    if kind == "create":
        return Create(cast(CreateBody, body))
    raise ValueError(f"unknown operation kind {kind!r}")
