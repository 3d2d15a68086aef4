"""The OpenAPI 3.1 document of the wanllm REST API (docs/api.md).

Its schemas are generated from the typed models of :mod:`wanllm_jupyter.core.api`;
what is written here is the table of paths (operation, parameters, body and
answer models). Paths are relative to the Jupyter server's ``base_url`` (the
``servers`` entry is filled in per request). ``tests/server/test_openapi.py``
checks that every registered route is documented here and vice versa.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

from wanllm_jupyter.core import limits as L
from wanllm_jupyter.core.api.schema import components

from . import __version__

ARROW = "application/vnd.apache.arrow.stream"
COLUMNAR = "application/vnd.wanllm.columnar+json"
API = "/wanllm/api/v1"

_ERRORS = {
    "400": "malformed request",
    "403": "not authenticated or not authorized",
    "404": "unknown run or metric",
    "409": "conflict",
    "413": "batch or body too large",
    "415": "unsupported content type",
    "422": "invalid items",
    "503": "database unavailable (see Retry-After)",
}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def param(name: str, schema: dict[str, Any] | None = None, desc: str = "", **kw: Any) -> dict:
    """A query parameter (``in: path`` when ``kw`` says so)."""
    out = {"name": name, "in": "query", "schema": schema or {"type": "string"}, **kw}
    out.setdefault("required", out["in"] == "path")
    if desc:
        out["description"] = desc
    return out


def ints(lo: int, hi: int | None = None) -> dict[str, Any]:
    return {"type": "integer", "minimum": lo, **({} if hi is None else {"maximum": hi})}


LIST = {"type": "array", "items": {"type": "string"}}
QUERY_TEXT = {"type": "string", "maxLength": L.MAX_FILTER_TEXT_LENGTH}
RUN_ID = param("run_id", {"type": "string", "format": "uuid"}, "run UUID", **{"in": "path"})
METRIC_NAME = param(
    "metric_name",
    {"type": "string", "minLength": 1, "maxLength": L.MAX_METRIC_NAME_LENGTH},
    "metric name; may contain '/' (raw, or percent-encoded as one segment)",
    **{"in": "path"},
)
FORMAT = param("format", {"type": "string", "enum": ["json", "arrow"]})
MEDIA_KEY = param(
    "key",
    {"type": "string", "minLength": 1, "maxLength": L.MAX_METRIC_NAME_LENGTH},
    "media key; may contain '/'",
    **{"in": "path"},
)
DIGEST = param(
    "digest", {"type": "string", "pattern": "^[0-9a-f]{64}$"}, "sha256, hex", **{"in": "path"}
)
BINARY = {"schema": {"type": "string", "format": "binary"}}
INT64 = ints(L.INT64_MIN, L.INT64_MAX)
STEPS = [param("start_step", INT64), param("end_step", INT64)]
_TIME_DESC = f"epoch seconds or ISO 8601, from {L.MIN_TIME_US / 1e6:.0f} s (4714-11-24 BC)"
TIMES = [param("start_time", desc=_TIME_DESC), param("end_time", desc=_TIME_DESC)]
SMOOTHING = ["ema", "tb_ema", "gaussian", "running_avg", "running_avg_trailing"]
FILTER_DESC = (
    "config.lr>=0.01; ops = != < <= > >= ~; the value is typed by its field (UUID for id, "
    "int32 for exit_code, a time for *_at, true/false for git.dirty), 400 naming the filter "
    "otherwise"
)


class Op(NamedTuple):
    """One operation: ``answer`` is the success model (None = no body)."""

    op_id: str
    summary: str
    status: str
    answer: str | None
    errors: str
    params: tuple[dict[str, Any], ...] = ()
    body: dict[str, Any] | str | None = None  # a model name, or the content map
    arrow: bool = False  # the answer may be an Arrow stream (format=arrow)
    media_types: tuple[str, ...] = ()  # a binary answer of these types (ETag, 304)


PATHS: dict[str, dict[str, Op]] = {
    "runs": {
        "get": Op(
            "listRuns",
            "List runs",
            "200",
            "RunPage",
            "400 503",
            (
                param("project", QUERY_TEXT),
                param("state", LIST, explode=True),
                param("tag", LIST, explode=True),
                param("filter", LIST, FILTER_DESC, explode=True),
                param("search", QUERY_TEXT),
                param("sort"),
                param("limit", ints(1, 1000)),
                param("cursor"),
            ),
        ),
        "post": Op(
            "createRun",
            "Create or resume a run (200 when resumed)",
            "201",
            "Run",
            "400 404 409 415 422 503",
            body="RunCreate",
        ),
    },
    "runs/{run_id}": {
        "get": Op("getRun", "Get a run", "200", "Run", "400 404 503", (RUN_ID,)),
        "patch": Op(
            "updateRun",
            "Update a run",
            "200",
            "Run",
            "400 404 415 422 503",
            (RUN_ID,),
            body="RunUpdate",
        ),
        "delete": Op(
            "deleteRun", "Delete a run and its metrics", "204", None, "400 404 503", (RUN_ID,)
        ),
    },
    "runs/{run_id}/heartbeat": {
        "post": Op("heartbeat", "Heartbeat", "204", None, "400 404 503", (RUN_ID,)),
    },
    "runs/{run_id}/metrics": {
        "get": Op(
            "runMetrics",
            "A run's points and metric names",
            "200",
            "RunMetrics",
            "400 404 503",
            (RUN_ID, param("limit", ints(1, 100_000)), param("names", desc="comma list")),
        ),
    },
    "runs/{run_id}/metric-names": {
        "get": Op(
            "metricNames", "A run's metric names", "200", "MetricNames", "400 404 503", (RUN_ID,)
        ),
    },
    "runs/{run_id}/metrics/{metric_name}": {
        "get": Op(
            "metricHistory",
            "Metric history (raw, M4-downsampled, smoothed)",
            "200",
            "History",
            "400 404 503",
            (
                RUN_ID,
                METRIC_NAME,
                *STEPS,
                *TIMES,
                param("limit", ints(1)),
                param("samples", ints(1, 20_000)),
                param("smoothing", {"type": "string", "enum": SMOOTHING}),
                param("smoothing_param", {"type": "number"}),
                FORMAT,
            ),
            arrow=True,
        ),
    },
    "runs/{run_id}/metrics/{metric_name}/latest": {
        "get": Op("latest", "Latest point", "200", "Metric", "400 404 503", (RUN_ID, METRIC_NAME)),
    },
    "runs/{run_id}/metrics/{metric_name}/stats": {
        "get": Op(
            "stats", "Metric statistics", "200", "MetricStats", "400 404 503", (RUN_ID, METRIC_NAME)
        ),
    },
    "runs/{run_id}/system-metrics": {
        "get": Op(
            "systemMetrics",
            "System metrics",
            "200",
            "SystemSeries",
            "400 404 503",
            (
                RUN_ID,
                param("types", desc="comma list"),
                *TIMES,
                param("limit", ints(1)),
                FORMAT,
            ),
            arrow=True,
        ),
    },
    "projects/metric-names": {
        "get": Op(
            "projectMetricNames",
            "Every metric name of a project's runs, with how many runs logged it",
            "200",
            "ProjectMetricNames",
            "400 503",
            (param("project", QUERY_TEXT | {"minLength": 1}, required=True),),
        ),
    },
    "projects": {"get": Op("projects", "Projects", "200", "Projects", "503")},
    "metrics/batch": {
        "post": Op(
            "metricBatch",
            "Ingest a metric batch (row or columnar form)",
            "200",
            "WriteResult",
            "400 404 413 415 422 503",
            body={
                "application/json": {
                    "schema": {"oneOf": [ref("MetricBatch"), ref("ColumnarBatch")]}
                },
                COLUMNAR: {"schema": ref("ColumnarBatch")},
                ARROW: {"schema": {"type": "string", "format": "binary"}},
            },
        ),
    },
    "metrics/system/batch": {
        "post": Op(
            "systemBatch",
            "Ingest a system-metric batch",
            "200",
            "WriteResult",
            "400 404 413 415 422 503",
            body="SystemBatch",
        ),
    },
    "media/batch": {
        "post": Op(
            "mediaBatch",
            "Upload images, histograms and tables (msgpack: bytes raw; JSON: base64)",
            "200",
            "MediaWriteResult",
            "400 404 413 415 422 503",
            body={
                "application/msgpack": {"schema": ref("MediaBatch")},
                "application/json": {"schema": ref("MediaBatch")},
            },
        ),
    },
    "media/{digest}": {
        "get": Op(
            "mediaBlob",
            "Stored media bytes by sha256 (ETag, If-None-Match -> 304, immutable)",
            "200",
            None,
            "400 404 503",
            (DIGEST,),
            media_types=("image/png", ARROW),
        ),
    },
    "runs/{run_id}/media": {
        "get": Op("mediaKeys", "A run's media keys", "200", "MediaKeys", "400 404 503", (RUN_ID,)),
    },
    "runs/{run_id}/images/{key}": {
        "get": Op(
            "images",
            "Images of the latest `limit` steps in the range",
            "200",
            "Images",
            "400 404 503",
            (RUN_ID, MEDIA_KEY, *STEPS, param("limit", ints(1, 1000))),
        ),
    },
    "runs/{run_id}/histograms/{key}": {
        "get": Op(
            "histograms",
            "Histograms of at most `max_steps` steps of the range (evenly chosen)",
            "200",
            "Histograms",
            "400 404 503",
            (RUN_ID, MEDIA_KEY, *STEPS, param("max_steps", ints(1, 2000))),
        ),
    },
    "runs/{run_id}/tables/{key}": {
        "get": Op(
            "table",
            "A table at `step` (absent = latest), as JSON or the stored Arrow stream",
            "200",
            "TableData",
            "400 404 503",
            (RUN_ID, MEDIA_KEY, param("step", INT64), FORMAT),
            arrow=True,
        ),
    },
    "history": {
        "post": Op(
            "bulkHistory",
            "Bulk history of runs x metrics (Arrow streamed chunk by chunk)",
            "200",
            "BulkHistory",
            "400 404 415 422 503",
            (FORMAT,),
            body="BulkHistoryRequest",
            arrow=True,
        ),
    },
    "health": {"get": Op("health", "Health", "200", "Health", "")},
    "openapi.json": {"get": Op("openapi", "This document", "200", "", "")},
}

WEBSOCKETS = {
    "/wanllm/ws/metrics/{run_id}": (
        "wsMetrics",
        "live points, media announcements and run changes of one run",
    ),
    "/wanllm/ws/runs": ("wsRuns", "run changes of every run"),
}


def _responses(op: Op) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "success"}
    if op.answer is not None:
        schema = ref(op.answer) if op.answer else {"type": "object"}
        ok["content"] = {"application/json": {"schema": schema}}
        if op.arrow:
            ok["content"][ARROW] = {"schema": {"type": "string", "format": "binary"}}
    if op.media_types:
        ok["content"] = dict.fromkeys(op.media_types, BINARY)
    out = {op.status: ok}
    if op.media_types:
        out["304"] = {"description": "not modified (If-None-Match holds the ETag)"}
    if op.op_id == "createRun":
        out["200"] = {"description": "resumed", "content": ok["content"]}
    for code in ["403", *op.errors.split()]:
        out[code] = {
            "description": _ERRORS[code],
            "content": {"application/json": {"schema": ref("Error")}},
        }
    return out


def _operation(op: Op) -> dict[str, Any]:
    out: dict[str, Any] = {
        "summary": op.summary,
        "operationId": op.op_id,
        "responses": _responses(op),
    }
    if op.params:
        out["parameters"] = list(op.params)
    if op.body is not None:
        content = op.body
        if isinstance(content, str):
            content = {"application/json": {"schema": ref(content)}}
        out["requestBody"] = {"required": True, "content": content}
    return out


def _websocket(op_id: str, summary: str, path: str) -> dict[str, Any]:
    """A WebSocket route: the messages each way are ``ClientMessage`` and ``ServerMessage``."""
    return {
        "summary": f"WebSocket: {summary} (messages: ClientMessage in, ServerMessage out)",
        "operationId": op_id,
        "x-websocket": True,
        **({"parameters": [RUN_ID]} if "{run_id}" in path else {}),
        "responses": {
            "101": {"description": "switching protocols"},
            "403": {"description": _ERRORS["403"]},
        },
    }


@functools.cache
def _paths() -> dict[str, Any]:
    paths = {
        f"{API}/{path}": {method: _operation(op) for method, op in ops.items()}
        for path, ops in PATHS.items()
    }
    for path, (op_id, summary) in WEBSOCKETS.items():
        paths[path] = {"get": _websocket(op_id, summary, path)}
    return paths


def document(base_url: str = "/") -> dict[str, Any]:
    """The OpenAPI document, with ``base_url`` as its server."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "wanllm",
            "version": __version__,
            "description": "Metric tracking inside Jupyter Server (docs/api.md). "
            "Auth: `Authorization: token <t>`.",
        },
        "servers": [{"url": base_url.rstrip("/") or "/"}],
        "components": {
            "schemas": components(),
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "header", "name": "Authorization"}
            },
        },
        "security": [{"token": []}],
        "paths": _paths(),
    }
