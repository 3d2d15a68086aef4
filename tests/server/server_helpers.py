"""Small helpers shared by the server tests."""

from __future__ import annotations

import math
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from tornado.httpclient import AsyncHTTPClient, HTTPResponse

from tests.jupyter_process import JupyterServer

Api = Callable[..., Awaitable[HTTPResponse]]


def body(resp: HTTPResponse) -> Any:
    """The JSON body of ``resp``."""
    return orjson.loads(resp.body)


async def create_run(api: Api, **fields: Any) -> dict[str, Any]:
    resp = await api("POST", "runs", body={"project": "test", **fields})
    assert resp.code in (200, 201), resp.body
    return body(resp)


async def post_points(
    api: Api, run_id: str, points: dict[str, list[tuple[int, float]]], batch_id: str | None = None
) -> dict[str, Any]:
    """Ingest ``{name: [(step, value), ...]}`` through the row form."""
    rows = [
        {"run_id": run_id, "metric_name": n, "step": s, "value": wire(v)}
        for n, pts in points.items()
        for s, v in pts
    ]
    payload: dict[str, Any] = {"metrics": rows}
    if batch_id is not None:
        payload["batch_id"] = batch_id
    resp = await api("POST", "metrics/batch", body=payload)
    assert resp.code == 200, resp.body
    return body(resp)


def wire(value: float) -> float | str:
    """A value in its JSON wire form (non-finite as "NaN", "Infinity", "-Infinity")."""
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def new_id() -> str:
    return str(uuid.uuid4())


def wanllm_routes(serverapp: Any) -> list[tuple[str, type]]:
    """(regex, handler class) of every registered route under ``wanllm/``."""
    routes = []
    pending = list(serverapp.web_app.default_router.rules)
    while pending:
        rule = pending.pop(0)
        if hasattr(rule.target, "rules"):  # a nested router (one per add_handlers host)
            pending.extend(rule.target.rules)
            continue
        pattern = getattr(rule.matcher, "regex", None)
        if pattern is not None and "wanllm/" in pattern.pattern:
            routes.append((pattern.pattern, rule.target))
    return routes


async def call(server: JupyterServer, method: str, path: str, payload: object = None) -> dict:
    """One wanllm API request to a Jupyter server subprocess; its JSON answer ({} if empty)."""
    resp = await AsyncHTTPClient().fetch(
        server.url + "wanllm/api/v1/" + path,
        method=method,
        body=None if payload is None else orjson.dumps(payload),
        headers={**server.headers, "Content-Type": "application/json"},
    )
    return orjson.loads(resp.body) if resp.body else {}
