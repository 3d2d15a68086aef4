"""Runs and projects: create/resume, get, update, delete, heartbeat, list."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from wanllm_jupyter.core.limits import (
    INT32_MAX,
    INT32_MIN,
    MAX_FILTER_TERMS,
    MAX_FILTER_TEXT_LENGTH,
    MAX_GIT_FIELD_LENGTH,
    MAX_HOST_LENGTH,
    MAX_NOTES_LENGTH,
    MAX_PROJECT_LENGTH,
    MAX_RUN_NAME_LENGTH,
    MAX_TAG_LENGTH,
    MAX_TAGS,
    int_problem,
    json_problem,
    text_problem,
    time_us,
)
from wanllm_jupyter.core.run_filters import field_kind, parse_query
from wanllm_jupyter.errors import UsageError

from ..live_wire import run_to_wire
from ..store.base import (
    RUN_STATES,
    GitInfo,
    RunCreate,
    RunFilter,
    RunMatch,
    RunNotFound,
    RunQuery,
    RunUpdate,
)
from .base import ApiError, WanllmHandler
from .wire import iso

MAX_RUNS_LIMIT = 1000
_OBJ, _STR, _STRS, _BOOL, _INT = (
    "an object", "a string", "a list of strings", "a boolean", "an integer"
)  # fmt: skip


def _check(body: dict[str, Any], spec: dict[str, tuple[str, Limit]], what: str) -> None:
    """Raise 422 naming every field of ``body`` unknown to ``spec``, of the wrong type,
    or breaking its limit (:mod:`wanllm_jupyter.core.limits`)."""
    errors = []
    for key, value in body.items():
        rule = spec.get(key)
        if rule is None:
            errors.append({"index": 0, "field": key, "reason": "unknown field"})
        elif value is not None:
            kind, limit = rule
            reason = f"must be {kind}" if not _is(value, kind) else limit(value)
            if reason is not None:
                errors.append({"index": 0, "field": key, "reason": reason})
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
    if kind == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == _TIME:
        return isinstance(value, str | int | float) and not isinstance(value, bool)
    if kind.startswith("one of"):
        return value in kind.removeprefix("one of ").split(", ")
    raise AssertionError(kind)


Limit = Callable[[Any], "str | None"]


def _text(max_length: int, *, allow_empty: bool = False) -> Limit:
    return lambda v: text_problem(v, max_length, allow_empty=allow_empty)


def _tags(tags: list[str]) -> str | None:
    if len(tags) > MAX_TAGS:
        return f"more than {MAX_TAGS} tags ({len(tags)})"
    for i, tag in enumerate(tags):
        bad = text_problem(tag, MAX_TAG_LENGTH)
        if bad is not None:
            return f"tag {i}: {bad}"
    return None


def _none(_: Any) -> None:
    return None


_TIME = "a time (ISO 8601 or epoch seconds)"


def _time_problem(value: Any) -> str | None:
    try:
        time_us(value)
    except ValueError as e:
        return str(e)
    return None


def _time_arg(body: dict[str, Any], key: str) -> int | None:
    """``body[key]`` (checked by :func:`_check`) in µs, or None when absent."""
    return None if body.get(key) is None else time_us(body[key])


_JSON = (_OBJ, json_problem)
_CREATE_SPEC: dict[str, tuple[str, Limit]] = {
    "project": (_STR, _text(MAX_PROJECT_LENGTH)),
    "name": (_STR, _text(MAX_RUN_NAME_LENGTH)),
    "id": (_STR, _none),
    "config": _JSON,
    "tags": (_STRS, _tags),
    "notes": (_STR, _text(MAX_NOTES_LENGTH, allow_empty=True)),
    "git": (_OBJ, _none),
    "host": (_STR, _text(MAX_HOST_LENGTH, allow_empty=True)),
    "metadata": _JSON,
    "resume": ("one of allow, must, never", _none),
    "created_at": (_TIME, _time_problem),
}
_GIT_SPEC = {
    "branch": (_STR, _text(MAX_GIT_FIELD_LENGTH, allow_empty=True)),
    "commit": (_STR, _text(MAX_GIT_FIELD_LENGTH, allow_empty=True)),
    "dirty": (_BOOL, _none),
    "remote": (_STR, _text(MAX_GIT_FIELD_LENGTH, allow_empty=True)),
}
_UPDATE_SPEC: dict[str, tuple[str, Limit]] = {
    "name": _CREATE_SPEC["name"],
    "state": ("one of " + ", ".join(RUN_STATES), _none),
    "exit_code": (_INT, lambda v: int_problem(v, INT32_MIN, INT32_MAX)),
    "summary": _JSON,
    "config": _JSON,
    "metadata": _JSON,
    "tags": _CREATE_SPEC["tags"],
    "add_tags": _CREATE_SPEC["tags"],
    "remove_tags": _CREATE_SPEC["tags"],
    "notes": _CREATE_SPEC["notes"],
    "heartbeat": (_BOOL, _none),
    "finished_at": (_TIME, _time_problem),
}


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
            created_at=_time_arg(body, "created_at"),
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
            **{k: v for k, v in body.items() if k not in ("heartbeat", "finished_at")},
            heartbeat=bool(body.get("heartbeat")),
            finished_at=_time_arg(body, "finished_at"),
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
