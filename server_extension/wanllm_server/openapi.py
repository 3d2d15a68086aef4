"""The OpenAPI 3 document of the wanllm REST API (docs/api.md), as a Python dict.

Paths are relative to the Jupyter server's ``base_url`` (the ``servers`` entry
is filled in per request). ``tests/server/test_openapi.py`` checks that every
registered route is documented here and vice versa. Request schemas state the
input limits of :mod:`wanllm_jupyter.core.limits` (lengths, counts, integer ranges);
text fields also refuse NUL, and JSON documents must satisfy its ``json_problem``.
"""

from __future__ import annotations

from typing import Any

from wanllm_jupyter.core import limits as L

from . import __version__

ARROW = "application/vnd.apache.arrow.stream"
COLUMNAR = "application/vnd.wanllm.columnar+json"
RUN_STATES = ["running", "finished", "failed", "crashed"]
API = "/wanllm/api/v1"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(
    props: dict[str, Any], required: tuple[str, ...] = (), *, extra: bool = True
) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = list(required)
    if not extra:
        out["additionalProperties"] = False
    return out


def arr(items: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {"type": "array", "items": items, **kw}


STR, INT = {"type": "string"}, {"type": "integer"}
BOOL, NUM = {"type": "boolean"}, {"type": "number"}
NULLSTR = {"type": "string", "nullable": True}
TIME = {"type": "string", "format": "date-time", "nullable": True}
ANYOBJ = {"type": "object", "additionalProperties": True}
WIRE_NUM = {"oneOf": [NUM, {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}]}
NULLNUM = {"type": "number", "nullable": True}
UUID = {"type": "string", "format": "uuid"}


def text(max_length: int, min_length: int = 1) -> dict[str, Any]:
    """A text field of the requests: no NUL, ``min_length..max_length`` characters."""
    return {"type": "string", "minLength": min_length, "maxLength": max_length}


def int_range(lo: int, hi: int, **kw: Any) -> dict[str, Any]:
    return {"type": "integer", "minimum": lo, "maximum": hi, **kw}


INT64 = int_range(L.INT64_MIN, L.INT64_MAX)
EPOCH_SECONDS = {"type": "number", "minimum": L.MIN_TIME_US / 1e6, "maximum": 9e12}
TIME_IN = {"oneOf": [{"type": "string", "description": "ISO 8601; naive = UTC"}, EPOCH_SECONDS]}
JSON_DOC = {
    **ANYOBJ,
    "description": f"keys 1..{L.MAX_CONFIG_KEY_LENGTH} characters, no NUL in keys or strings, "
    f"int64 integers, nested at most {L.MAX_JSON_DEPTH} levels",
}
TAGS = arr(text(L.MAX_TAG_LENGTH), maxItems=L.MAX_TAGS)
METRIC_NAME_IN = text(L.MAX_METRIC_NAME_LENGTH)
BATCH_ID = text(L.MAX_BATCH_ID_LENGTH)
GIT_TEXT = text(L.MAX_GIT_FIELD_LENGTH, 0)

SCHEMAS: dict[str, Any] = {
    "Error": obj(
        {
            "message": STR,
            "errors": arr(
                obj({"index": INT, "field": STR, "reason": STR}, ("index", "field", "reason"))
            ),
        },
        ("message", "errors"),
    ),
    "Git": obj(
        {
            "branch": NULLSTR,
            "commit": NULLSTR,
            "dirty": {"type": "boolean", "nullable": True},
            "remote": NULLSTR,
        }
    ),
    "Run": obj(
        {
            "id": UUID,
            "project": STR,
            "name": STR,
            "state": {"type": "string", "enum": RUN_STATES},
            "config": ANYOBJ,
            "summary": ANYOBJ,
            "tags": arr(STR),
            "notes": STR,
            "git": ref("Git"),
            "host": NULLSTR,
            "metadata": ANYOBJ,
            "exit_code": {"type": "integer", "nullable": True},
            "created_at": TIME,
            "updated_at": TIME,
            "heartbeat_at": TIME,
            "finished_at": TIME,
            "resumed": BOOL,
        },
        ("id", "project", "name", "state", "created_at"),
    ),
    "GitIn": obj(
        {"branch": GIT_TEXT, "commit": GIT_TEXT, "dirty": BOOL, "remote": GIT_TEXT}, extra=False
    ),
    "RunCreate": obj(
        {
            "project": text(L.MAX_PROJECT_LENGTH),
            "name": text(L.MAX_RUN_NAME_LENGTH),
            "id": UUID,
            "config": JSON_DOC,
            "tags": TAGS,
            "notes": text(L.MAX_NOTES_LENGTH, 0),
            "git": ref("GitIn"),
            "host": text(L.MAX_HOST_LENGTH, 0),
            "metadata": JSON_DOC,
            "resume": {"type": "string", "enum": ["allow", "must", "never"]},
            "created_at": {**TIME_IN, "description": "when the run started (default: now)"},
        },
        extra=False,
    ),
    "RunUpdate": obj(
        {
            "name": text(L.MAX_RUN_NAME_LENGTH),
            "state": {"type": "string", "enum": RUN_STATES},
            "exit_code": int_range(L.INT32_MIN, L.INT32_MAX),
            "summary": JSON_DOC,
            "config": JSON_DOC,
            "metadata": JSON_DOC,
            "tags": {**TAGS, "description": f"a run keeps at most {L.MAX_TAGS} tags"},
            "add_tags": TAGS,
            "remove_tags": TAGS,
            "notes": text(L.MAX_NOTES_LENGTH, 0),
            "heartbeat": BOOL,
            "finished_at": {
                **TIME_IN,
                "description": "when it reached the end state (default: now)",
            },
        },
        extra=False,
    ),
    "RunPage": obj(
        {"runs": arr(ref("Run")), "next_cursor": NULLSTR, "total": INT},
        ("runs", "next_cursor", "total"),
    ),
    "Projects": obj(
        {
            "projects": arr(
                obj(
                    {
                        "name": STR,
                        "run_count": INT,
                        "running": INT,
                        "last_created_at": TIME,
                    },
                    ("name", "run_count", "running"),
                )
            )
        },
        ("projects",),
    ),
    "Metric": obj(
        {
            "time": TIME,
            "run_id": UUID,
            "metric_name": STR,
            "step": {"type": "integer", "nullable": True},
            "value": WIRE_NUM,
            "metadata": ANYOBJ,
        },
        ("time", "run_id", "metric_name", "value"),
    ),
    "MetricInfo": obj(
        {"name": STR, "count": INT, "last_step": INT, "last_time": TIME},
        ("name", "count", "last_step", "last_time"),
    ),
    "MetricStats": obj(
        {
            "metric_name": STR,
            "count": INT,
            "finite_count": INT,
            "nonfinite_count": INT,
            "min_value": NULLNUM,
            "max_value": NULLNUM,
            "avg_value": NULLNUM,
            "std_dev": NULLNUM,
            "first_time": TIME,
            "last_time": TIME,
            "first_step": INT,
            "last_step": INT,
        },
        ("metric_name", "count", "min_value", "max_value", "avg_value", "first_time", "last_time"),
    ),
    "MetricRow": obj(
        {
            "run_id": UUID,
            "metric_name": METRIC_NAME_IN,
            "step": INT64,
            "value": WIRE_NUM,
            "time": TIME_IN,
            "metadata": JSON_DOC,
        },
        ("run_id", "metric_name", "value"),
        extra=False,
    ),
    "MetricBatch": obj(
        {
            "batch_id": BATCH_ID,
            "metrics": arr(ref("MetricRow")),
            "format": {"type": "string", "enum": ["rows"]},
        },
        ("metrics",),
        extra=False,
    ),
    "ColumnarBatch": obj(
        {
            "batch_id": BATCH_ID,
            "run_id": UUID,
            "names": arr(METRIC_NAME_IN),
            "k": arr(int_range(0, L.INT32_MAX)),
            "s": arr({**INT64, "nullable": True}),
            "t": arr({**EPOCH_SECONDS, "nullable": True}),
            "v": arr(WIRE_NUM),
            "format": {"type": "string", "enum": ["columnar"]},
        },
        ("run_id", "names", "k", "s", "v"),
        extra=False,
    ),
    "SystemRow": obj(
        {
            "run_id": UUID,
            "metric_type": text(L.MAX_SYSTEM_TYPE_LENGTH),
            "value": WIRE_NUM,
            "time": TIME_IN,
            "device": text(L.MAX_HOST_LENGTH),
            "node": text(L.MAX_HOST_LENGTH),
            "metadata": JSON_DOC,
        },
        ("run_id", "metric_type", "value"),
        extra=False,
    ),
    "SystemBatch": obj(
        {"batch_id": BATCH_ID, "metrics": arr(ref("SystemRow"))}, ("metrics",), extra=False
    ),
    "WriteResult": obj(
        {"written": INT, "duplicate": BOOL, "batch_id": STR}, ("written", "duplicate", "batch_id")
    ),
    "RunMetrics": obj(
        {"metrics": arr(ref("Metric")), "count": INT, "names": arr(ref("MetricInfo"))},
        ("metrics", "count", "names"),
    ),
    "MetricNames": obj({"metrics": arr(ref("MetricInfo"))}, ("metrics",)),
    "ProjectMetricNames": obj(
        {"project": STR, "metrics": arr(obj({"name": STR, "runs": INT}, ("name", "runs")))},
        ("project", "metrics"),
    ),
    "History": obj(
        {
            "metric_name": STR,
            "run_id": UUID,
            "steps": arr(INT),
            "times": arr(NUM),
            "values": arr(WIRE_NUM),
            "sampled": BOOL,
            "total_points": INT,
            "bucket_width": INT,
            "bands": obj(
                {"steps": arr(INT), "min": arr(WIRE_NUM), "max": arr(WIRE_NUM), "count": arr(INT)}
            ),
            "smoothed": obj({"method": STR, "param": NUM, "values": arr(WIRE_NUM)}),
        },
        ("metric_name", "run_id", "steps", "times", "values", "sampled", "total_points"),
    ),
    "SystemSeries": obj(
        {
            "series": arr(
                obj(
                    {
                        "metric_type": STR,
                        "times": arr(NUM),
                        "values": arr(WIRE_NUM),
                        "devices": arr(NULLSTR),
                        "nodes": arr(NULLSTR),
                    },
                    ("metric_type", "times", "values", "devices", "nodes"),
                )
            )
        },
        ("series",),
    ),
    "BulkHistoryRequest": obj(
        {
            "run_ids": arr(UUID, minItems=1),
            "names": arr(METRIC_NAME_IN),
            "start_step": INT64,
            "end_step": INT64,
        },
        ("run_ids",),
        extra=False,
    ),
    "BulkHistory": obj(
        {
            "series": arr(
                obj(
                    {
                        "run_id": UUID,
                        "metric_name": STR,
                        "steps": arr(INT),
                        "times": arr(NUM),
                        "values": arr(WIRE_NUM),
                    },
                    ("run_id", "metric_name", "steps", "times", "values"),
                )
            )
        },
        ("series",),
    ),
    "Health": obj(
        {
            "status": {"type": "string", "enum": ["ok", "degraded"]},
            "store": ANYOBJ,
            "redis": obj({"configured": BOOL, "ok": {"type": "boolean", "nullable": True}}),
            "live": {"type": "string", "enum": ["redis", "in-process"]},
            "cache": ANYOBJ,
            "version": STR,
            "max_batch_size": INT,
            "max_columnar_batch_size": INT,
        },
        ("status", "store", "redis", "live", "version", "max_batch_size"),
    ),
}

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


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def responses(
    ok: str, schema: dict[str, Any] | None, errors: str, *, arrow: bool = False
) -> dict[str, Any]:
    """``ok`` status with ``schema`` (None = no body), plus the listed error statuses."""
    out: dict[str, Any] = {ok: {"description": "success"}}
    if schema is not None:
        content: dict[str, Any] = {"application/json": {"schema": schema}}
        if arrow:
            content[ARROW] = {"schema": {"type": "string", "format": "binary"}}
        out[ok]["content"] = content
    for code in ["403", *errors.split()]:
        out[code] = {
            "description": _ERRORS[code],
            "content": {"application/json": {"schema": ref("Error")}},
        }
    return out


def param(
    name: str, where: str = "query", schema: dict[str, Any] = STR, desc: str = "", **kw: Any
) -> dict[str, Any]:
    out = {"name": name, "in": where, "schema": schema, "required": where == "path", **kw}
    if desc:
        out["description"] = desc
    return out


RUN_ID = param("run_id", "path", UUID, "run UUID")
METRIC_NAME = param(
    "metric_name",
    "path",
    METRIC_NAME_IN,
    "metric name; may contain '/' (raw, or percent-encoded as one segment)",
)
FORMAT = param("format", schema={"type": "string", "enum": ["json", "arrow"]})
LIST = {"type": "array", "items": STR}


def op(
    summary: str,
    resp: dict[str, Any],
    *,
    params: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    op_id: str,
) -> dict[str, Any]:
    out: dict[str, Any] = {"summary": summary, "operationId": op_id, "responses": resp}
    if params:
        out["parameters"] = params
    if body is not None:
        out["requestBody"] = {"required": True, **body}
    return out


_STEP_RANGE = [param("start_step", schema=INT64), param("end_step", schema=INT64)]
_TIME_DESC = f"epoch seconds or ISO 8601, from {L.MIN_TIME_US / 1e6:.0f} s (4714-11-24 BC)"
_TIME_RANGE = [param("start_time", desc=_TIME_DESC), param("end_time", desc=_TIME_DESC)]
QUERY_TEXT = text(L.MAX_FILTER_TEXT_LENGTH, 0)

PATHS: dict[str, Any] = {
    f"{API}/runs": {
        "get": op(
            "List runs",
            responses("200", ref("RunPage"), "400 503"),
            op_id="listRuns",
            params=[
                param("project", schema=QUERY_TEXT),
                param("state", schema=LIST, explode=True),
                param("tag", schema=LIST, explode=True),
                param(
                    "filter",
                    schema=LIST,
                    explode=True,
                    desc="config.lr>=0.01; ops = != < <= > >= ~; the value is typed by its "
                    "field (UUID for id, int32 for exit_code, a time for *_at, true/false "
                    "for git.dirty), 400 naming the filter otherwise",
                ),
                param("search", schema=QUERY_TEXT),
                param("sort"),
                param("limit", schema={"type": "integer", "minimum": 1, "maximum": 1000}),
                param("cursor"),
            ],
        ),
        "post": op(
            "Create or resume a run",
            {
                **responses("201", ref("Run"), "400 404 409 415 422 503"),
                "200": {
                    "description": "resumed",
                    "content": {"application/json": {"schema": ref("Run")}},
                },
            },
            body=json_body(ref("RunCreate")),
            op_id="createRun",
        ),
    },
    f"{API}/runs/{{run_id}}": {
        "get": op(
            "Get a run",
            responses("200", ref("Run"), "400 404 503"),
            params=[RUN_ID],
            op_id="getRun",
        ),
        "patch": op(
            "Update a run",
            responses("200", ref("Run"), "400 404 415 422 503"),
            params=[RUN_ID],
            body=json_body(ref("RunUpdate")),
            op_id="updateRun",
        ),
        "delete": op(
            "Delete a run and its metrics",
            responses("204", None, "400 404 503"),
            params=[RUN_ID],
            op_id="deleteRun",
        ),
    },
    f"{API}/runs/{{run_id}}/heartbeat": {
        "post": op(
            "Heartbeat", responses("204", None, "400 404 503"), params=[RUN_ID], op_id="heartbeat"
        ),
    },
    f"{API}/runs/{{run_id}}/metrics": {
        "get": op(
            "A run's points and metric names",
            responses("200", ref("RunMetrics"), "400 404 503"),
            op_id="runMetrics",
            params=[
                RUN_ID,
                param("limit", schema={"type": "integer", "minimum": 1, "maximum": 100000}),
                param("names", desc="comma list"),
            ],
        ),
    },
    f"{API}/runs/{{run_id}}/metric-names": {
        "get": op(
            "A run's metric names",
            responses("200", ref("MetricNames"), "400 404 503"),
            params=[RUN_ID],
            op_id="metricNames",
        ),
    },
    f"{API}/runs/{{run_id}}/metrics/{{metric_name}}": {
        "get": op(
            "Metric history (raw, M4-downsampled, smoothed)",
            responses("200", ref("History"), "400 404 503", arrow=True),
            op_id="metricHistory",
            params=[
                RUN_ID,
                METRIC_NAME,
                *_STEP_RANGE,
                *_TIME_RANGE,
                param("limit", schema={"type": "integer", "minimum": 1}),
                param("samples", schema={"type": "integer", "minimum": 1, "maximum": 20000}),
                param(
                    "smoothing",
                    schema={
                        "type": "string",
                        "enum": [
                            "ema",
                            "tb_ema",
                            "gaussian",
                            "running_avg",
                            "running_avg_trailing",
                        ],
                    },
                ),
                param("smoothing_param", schema=NUM),
                FORMAT,
            ],
        ),
    },
    f"{API}/runs/{{run_id}}/metrics/{{metric_name}}/latest": {
        "get": op(
            "Latest point",
            responses("200", ref("Metric"), "400 404 503"),
            params=[RUN_ID, METRIC_NAME],
            op_id="latest",
        ),
    },
    f"{API}/runs/{{run_id}}/metrics/{{metric_name}}/stats": {
        "get": op(
            "Metric statistics",
            responses("200", ref("MetricStats"), "400 404 503"),
            params=[RUN_ID, METRIC_NAME],
            op_id="stats",
        ),
    },
    f"{API}/runs/{{run_id}}/system-metrics": {
        "get": op(
            "System metrics",
            responses("200", ref("SystemSeries"), "400 404 503", arrow=True),
            op_id="systemMetrics",
            params=[
                RUN_ID,
                param("types", desc="comma list"),
                *_TIME_RANGE,
                param("limit", schema={"type": "integer", "minimum": 1}),
                FORMAT,
            ],
        ),
    },
    f"{API}/projects/metric-names": {
        "get": op(
            "Every metric name of a project's runs, with how many runs logged it",
            responses("200", ref("ProjectMetricNames"), "400 503"),
            params=[param("project", required=True, schema=QUERY_TEXT | {"minLength": 1})],
            op_id="projectMetricNames",
        ),
    },
    f"{API}/projects": {
        "get": op("Projects", responses("200", ref("Projects"), "503"), op_id="projects"),
    },
    f"{API}/metrics/batch": {
        "post": op(
            "Ingest a metric batch (row or columnar form)",
            responses("200", ref("WriteResult"), "400 404 413 415 422 503"),
            op_id="metricBatch",
            body={
                "content": {
                    "application/json": {
                        "schema": {"oneOf": [ref("MetricBatch"), ref("ColumnarBatch")]}
                    },
                    COLUMNAR: {"schema": ref("ColumnarBatch")},
                    ARROW: {"schema": {"type": "string", "format": "binary"}},
                }
            },
        ),
    },
    f"{API}/metrics/system/batch": {
        "post": op(
            "Ingest a system-metric batch",
            responses("200", ref("WriteResult"), "400 404 413 415 422 503"),
            body=json_body(ref("SystemBatch")),
            op_id="systemBatch",
        ),
    },
    f"{API}/history": {
        "post": op(
            "Bulk history of runs x metrics (Arrow streamed chunk by chunk)",
            responses("200", ref("BulkHistory"), "400 404 415 422 503", arrow=True),
            params=[FORMAT],
            body=json_body(ref("BulkHistoryRequest")),
            op_id="bulkHistory",
        ),
    },
    f"{API}/health": {
        "get": op("Health", responses("200", ref("Health"), ""), op_id="health"),
    },
    f"{API}/openapi.json": {
        "get": op("This document", responses("200", ANYOBJ, ""), op_id="openapi"),
    },
    "/wanllm/ws/metrics/{run_id}": {
        "get": {
            "summary": "WebSocket: live points and run changes of one run",
            "operationId": "wsMetrics",
            "x-websocket": True,
            "parameters": [RUN_ID],
            "responses": {
                "101": {"description": "switching protocols"},
                "403": {"description": _ERRORS["403"]},
            },
        },
    },
    "/wanllm/ws/runs": {
        "get": {
            "summary": "WebSocket: run changes of every run",
            "operationId": "wsRuns",
            "x-websocket": True,
            "responses": {
                "101": {"description": "switching protocols"},
                "403": {"description": _ERRORS["403"]},
            },
        },
    },
}


def document(base_url: str = "/") -> dict[str, Any]:
    """The OpenAPI document, with ``base_url`` as its server."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "wanllm",
            "version": __version__,
            "description": "Metric tracking inside Jupyter Server (docs/api.md). "
            "Auth: `Authorization: token <t>`.",
        },
        "servers": [{"url": base_url.rstrip("/") or "/"}],
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "header", "name": "Authorization"}
            },
        },
        "security": [{"token": []}],
        "paths": PATHS,
    }
