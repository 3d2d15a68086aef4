"""Runs and projects: create/resume, get, update, delete, heartbeat, list."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from jupyter_server.auth.decorator import authorized
from tornado import web

from wanllm_jupyter.core import api
from wanllm_jupyter.core.errors import UsageError
from wanllm_jupyter.core.limits import (
    MAX_FILTER_TERMS,
    MAX_FILTER_TEXT_LENGTH,
    text_problem,
    time_us,
)
from wanllm_jupyter.core.run_filters import field_kind, parse_query

from ..live_wire import run_to_wire
from ..store.base import (
    GitInfo,
    RunCreate,
    RunFilter,
    RunMatch,
    RunNotFound,
    RunQuery,
    RunUpdate,
)
from ..store.run_rules import revived
from .base import ApiError, WanllmHandler
from .validate import checked
from .wire import iso

MAX_RUNS_LIMIT = 1000


def _time_arg(value: str | float | None) -> int | None:
    """A checked time field in µs, or None when absent."""
    return None if value is None else time_us(value)


def parse_match(text: str) -> RunMatch:
    """A ``filter`` argument in the run query language (``tag:cli OR config.lr>=0.01``,
    :func:`wanllm_jupyter.core.run_filters.parse_query`); 400 naming the bad piece."""
    try:
        query = parse_query(text)
    except UsageError as e:
        raise ApiError(400, str(e)) from None
    return tuple(tuple(RunFilter(*t) for t in group) for group in query)  # type: ignore[arg-type]


def _matches(texts: list[str]) -> list[RunMatch]:
    """Every ``filter`` argument parsed; 400 past :data:`MAX_FILTER_TERMS` terms in all."""
    matches = [parse_match(t) for t in texts]
    terms = sum(len(group) for match in matches for group in match)
    if terms > MAX_FILTER_TERMS:
        raise ApiError(400, f"filter: {terms} terms, more than {MAX_FILTER_TERMS}")
    return matches


def parse_sort(text: str) -> str:
    """The ``sort`` argument after checking its field; 400 naming it."""
    try:
        field_kind(text.lstrip("-+"))
    except UsageError as e:
        raise ApiError(400, f"sort {text[:300]!r}: {e}") from None
    return text


def _query_text(handler: WanllmHandler, name: str) -> str | None:
    """A text query argument within :data:`MAX_FILTER_TEXT_LENGTH`; 400 otherwise."""
    text = handler.get_query_argument(name, None)
    bad = None if text is None else text_problem(text, MAX_FILTER_TEXT_LENGTH, allow_empty=True)
    if bad is not None:
        raise ApiError(400, f"query argument {name}: {bad}")
    return text


class RunsHandler(WanllmHandler):
    """``runs``: list (GET) and create/resume (POST)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        with self.timed("runs"):
            query = RunQuery(
                project=_query_text(self, "project"),
                states=self.list_arg("state"),
                tags=self.get_query_arguments("tag") or None,
                matches=_matches(self.get_query_arguments("filter")),
                search=_query_text(self, "search"),
                sort=parse_sort(self.get_query_argument("sort", "-created_at")),
                limit=self.int_arg("limit", 100, lo=1, hi=MAX_RUNS_LIMIT),
                cursor=self.get_query_argument("cursor", None),
            )
            page = await (await self.store()).list_runs(query)
        self.send_json(
            {
                "runs": [run_to_wire(r) for r in page.runs],
                "next_cursor": page.next_cursor,
                "total": page.total,
            }
        )

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = checked(self.json_object(), api.RunCreate, "run")
        run_id = self.run_id_arg(body.id) if body.id else None
        resume = body.resume or "allow"
        store = await self.store()
        if run_id is not None and resume != "allow":
            exists = await _exists(store, run_id)
            if resume == "must" and not exists:
                raise RunNotFound(run_id)
            if resume == "never" and exists:
                raise ApiError(409, f"run {run_id} already exists (resume='never')")
        if resume == "must" and run_id is None:
            raise ApiError(
                422,
                "resume='must' needs an id",
                [{"index": 0, "field": "id", "reason": "required with resume='must'"}],
            )
        fields = {k: v for k, v in msgspec.structs.asdict(body).items() if k != "resume"}
        spec = RunCreate(
            **fields
            | {
                "project": body.project or "default",
                "id": run_id,
                "git": GitInfo(**msgspec.structs.asdict(body.git)) if body.git else None,
                "created_at": _time_arg(body.created_at),
            }
        )
        run, resumed = await store.create_run(spec)
        self.live.publish_run(run)
        out = run_to_wire(run)
        if resumed:
            out["resumed"] = True
        self.send_json(out, 200 if resumed else 201)


async def _exists(store: Any, run_id: uuid.UUID) -> bool:
    try:
        await store.get_run(run_id)
    except RunNotFound:
        return False
    return True


class RunHandler(WanllmHandler):
    """``runs/{run_id}``: get, update (PATCH), delete."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        with self.timed("run"):
            run = await (await self.store()).get_run(self.run_id_arg(run_id))
        self.send_json(run_to_wire(run))

    @web.authenticated
    @authorized
    async def patch(self, run_id: str) -> None:
        rid = self.run_id_arg(run_id)
        raw = self.json_object()
        body = checked(raw, api.RunUpdate, "run update")
        fields = msgspec.structs.asdict(body)
        update = RunUpdate(
            **{k: v for k, v in fields.items() if k not in ("heartbeat", "finished_at")},
            heartbeat=bool(body.heartbeat),
            finished_at=_time_arg(body.finished_at),
        )
        run = await (await self.store()).update_run(rid, update)
        if set(raw) - {"heartbeat"} or (update.heartbeat and revived(run)):  # revived: news
            self.live.publish_run(run)
        self.send_json(run_to_wire(run))

    @web.authenticated
    @authorized
    async def delete(self, run_id: str) -> None:
        rid = self.run_id_arg(run_id)
        await (await self.store()).delete_run(rid)
        self.live.publish_run_deleted(str(rid))
        self.set_status(204)
        self.finish()


class HeartbeatHandler(WanllmHandler):
    """``runs/{run_id}/heartbeat``: the run is alive (a crashed run is running again)."""

    @web.authenticated
    @authorized
    async def post(self, run_id: str) -> None:
        await self.wanllm.heartbeats.beat(await self.store(), self.run_id_arg(run_id))
        self.set_status(204)
        self.finish()


class ProjectMetricNamesHandler(WanllmHandler):
    """``projects/metric-names?project=``: every metric name of a project's runs."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        project = self.get_query_argument("project", "")
        if not project:
            raise ApiError(400, "query argument 'project' is required")
        with self.timed("project_metric_names"):
            metrics = await (await self.store()).project_metric_names(project)
        self.send_json(
            {"project": project, "metrics": [{"name": m.name, "runs": m.runs} for m in metrics]}
        )


class ProjectsHandler(WanllmHandler):
    """``projects``: run counts per project."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        with self.timed("projects"):
            projects = await (await self.store()).list_projects()
        self.send_json(
            {
                "projects": [
                    {
                        "name": p.name,
                        "run_count": p.run_count,
                        "running": p.running,
                        "last_created_at": iso(p.last_created_at),
                    }
                    for p in projects
                ]
            }
        )
