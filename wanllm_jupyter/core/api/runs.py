"""Run and project bodies: the run create/update requests and their answers."""

from __future__ import annotations

from typing import Any, Literal

from msgspec import Struct

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
    resumed: bool | None = None  # only in the answer to a create that resumed


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
    resume: Literal["allow", "must", "never"] | None = None
    created_at: TimeIn | None = None  # when the run started (default: now)


class RunUpdate(Request):
    """Change a run; ``summary``, ``config``, ``metadata`` merge by top-level key."""

    name: RunName | None = None
    state: RunState | None = None
    exit_code: Int32 | None = None
    summary: JsonDoc | None = None
    config: JsonDoc | None = None
    metadata: JsonDoc | None = None
    tags: Tags | None = None
    add_tags: Tags | None = None
    remove_tags: Tags | None = None
    notes: Notes | None = None
    heartbeat: bool | None = None
    finished_at: TimeIn | None = None  # when it reached the end state (default: now)


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
