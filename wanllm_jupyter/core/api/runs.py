"""Run and project bodies: the run create/update requests and their answers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

from .fields import (
    GitText,
    HostName,
    Int32,
    IsoTime,
    JsonDoc,
    Notes,
    ProjectName,
    RunName,
    RunState,
    Tags,
    TimeIn,
    UuidText,
)


class Request(Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A request body: unknown fields are refused; null = absent."""


class Response(Struct, forbid_unknown_fields=True):
    """A response body: exactly the fields the server sends."""


class Git(Response):
    branch: str | None
    commit: str | None
    dirty: bool | None
    remote: str | None


class Run(Response):
    """A run; times are ISO 8601 strings or null."""

    id: UuidText
    project: str
    name: str
    state: RunState
    config: dict[str, Any]
    summary: dict[str, Any]
    tags: list[str]
    notes: str
    git: Git
    host: str | None
    metadata: dict[str, Any]
    exit_code: int | None
    created_at: IsoTime | None
    updated_at: IsoTime | None
    heartbeat_at: IsoTime | None
    finished_at: IsoTime | None
    resumed: Annotated[bool, Meta(description="true when a create resumed the run")] | None = None


class GitIn(Request):
    branch: GitText | None = None
    commit: GitText | None = None
    dirty: bool | None = None
    remote: GitText | None = None


class RunCreate(Request):
    """Create a run, or resume it when ``id`` names an existing one."""

    project: ProjectName | None = None
    name: RunName | None = None
    id: UuidText | None = None
    config: JsonDoc | None = None
    tags: Tags | None = None
    notes: Notes | None = None
    git: GitIn | None = None
    host: HostName | None = None
    metadata: JsonDoc | None = None
    resume: (
        Annotated[
            Literal["allow", "must", "never"],
            Meta(
                description="allow (default); must: 404 unless `id` exists; never: 409 if it does"
            ),
        ]
        | None
    ) = None
    created_at: (
        Annotated[TimeIn, Meta(description="when the run started (default: now)")] | None
    ) = None


class RunUpdate(Request):
    """Change a run; ``summary``, ``config``, ``metadata`` merge by top-level key."""

    name: RunName | None = None
    state: RunState | None = None
    exit_code: Int32 | None = None
    summary: JsonDoc | None = None
    config: JsonDoc | None = None
    metadata: JsonDoc | None = None
    tags: Annotated[Tags, Meta(description="replaces the run's tags")] | None = None
    add_tags: Tags | None = None
    remove_tags: Tags | None = None
    notes: Notes | None = None
    heartbeat: Annotated[bool, Meta(description="true: the run is alive")] | None = None
    finished_at: (
        Annotated[TimeIn, Meta(description="when it reached the end state (default: now)")] | None
    ) = None


class RunPage(Response):
    runs: list[Run]
    next_cursor: str | None
    total: int


class Project(Response):
    name: str
    run_count: int
    running: int
    last_created_at: IsoTime | None


class Projects(Response):
    projects: list[Project]


class ProjectMetric(Response):
    name: str
    runs: int


class ProjectMetricNames(Response):
    project: str
    metrics: list[ProjectMetric]
