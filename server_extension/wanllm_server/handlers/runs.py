"""Runs and projects: create/resume, get, update, delete, heartbeat, list."""

from __future__ import annotations

import uuid
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from wanllm_jupyter._run_filters import split_filter
from wanllm_jupyter.errors import UsageError

from ..live_wire import run_to_wire
from ..store.base import (
    RUN_STATES,
    GitInfo,
    RunCreate,
    RunFilter,
    RunNotFound,
    RunQuery,
    RunUpdate,
)
from .base import ApiError, WanllmHandler
from .wire import iso

MAX_RUNS_LIMIT = 1000
_OBJ, _STR, _STRS, _BOOL = "an object", "a string", "a list of strings", "a boolean"


def _check(body: dict[str, Any], spec: dict[str, str], what: str) -> None:
    """Raise 422 naming every field of ``body`` unknown to ``spec`` or of the wrong type."""
    errors = []
    for key, value in body.items():
        kind = spec.get(key)
        if kind is None:
            errors.append({"index": 0, "field": key, "reason": "unknown field"})
        elif value is not None and not _is(value, kind):
            errors.append({"index": 0, "field": key, "reason": f"must be {kind}"})
    if errors:
        raise ApiError(422, f"invalid {what}: {len(errors)} bad field(s)", errors)


def _is(value: Any, kind: str) -> bool:
    if kind == _OBJ:
        return isinstance(value, dict)
    if kind == _STR:
        return isinstance(value, str)
    if kind == _STRS:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == _BOOL:
        return isinstance(value, bool)
    if kind == "an integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind.startswith("one of"):
        return value in kind.removeprefix("one of ").split(", ")
    raise AssertionError(kind)


_CREATE_SPEC = {
    "project": _STR,
    "name": _STR,
    "id": _STR,
    "config": _OBJ,
    "tags": _STRS,
    "notes": _STR,
    "git": _OBJ,
    "host": _STR,
    "metadata": _OBJ,
    "resume": "one of allow, must, never",
}
_GIT_SPEC = {"branch": _STR, "commit": _STR, "dirty": _BOOL, "remote": _STR}
_UPDATE_SPEC = {
    "name": _STR,
    "state": "one of " + ", ".join(RUN_STATES),
    "exit_code": "an integer",
    "summary": _OBJ,
    "config": _OBJ,
    "metadata": _OBJ,
    "tags": _STRS,
    "add_tags": _STRS,
    "remove_tags": _STRS,
    "notes": _STR,
    "heartbeat": _BOOL,
}


def parse_filter(text: str) -> RunFilter:
    """``config.lr>=0.01`` → RunFilter("config.lr", "ge", 0.01); 400 naming ``text``."""
    try:
        return RunFilter(*split_filter(text))  # type: ignore[arg-type]
    except UsageError as e:
        raise ApiError(400, str(e)) from None


class RunsHandler(WanllmHandler):
    """``runs``: list (GET) and create/resume (POST)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        with self.timed("runs"):
            query = RunQuery(
                project=self.get_query_argument("project", None),
                states=self.list_arg("state"),
                tags=self.get_query_arguments("tag") or None,
                filters=[parse_filter(f) for f in self.get_query_arguments("filter")],
                search=self.get_query_argument("search", None),
                sort=self.get_query_argument("sort", "-created_at"),
                limit=self.int_arg("limit", 100, lo=1, hi=MAX_RUNS_LIMIT),  # type: ignore[arg-type]
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
        body = self.json_object()
        _check(body, _CREATE_SPEC, "run")
        _check(body.get("git") or {}, _GIT_SPEC, "run git info")
        run_id = self.run_id_arg(body["id"]) if body.get("id") else None
        resume = body.get("resume") or "allow"
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
        spec = RunCreate(
            project=body.get("project") or "default",
            name=body.get("name"),
            id=run_id,
            config=body.get("config"),
            tags=body.get("tags"),
            notes=body.get("notes"),
            git=GitInfo(**body["git"]) if body.get("git") else None,
            host=body.get("host"),
            metadata=body.get("metadata"),
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
        body = self.json_object()
        _check(body, _UPDATE_SPEC, "run update")
        update = RunUpdate(
            **{k: v for k, v in body.items() if k != "heartbeat"},
            heartbeat=bool(body.get("heartbeat")),
        )
        run = await (await self.store()).update_run(rid, update)
        if set(body) - {"heartbeat"}:
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
