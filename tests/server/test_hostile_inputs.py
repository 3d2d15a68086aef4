"""Hostile inputs get the same precise 4xx from every backend, and change nothing
(issue 9, items 3 and 8).

Three real ``jupyter server`` processes (SQLite, plain PostgreSQL, TimescaleDB)
are seeded alike (the same run id); every case is sent to all three and must get
no 5xx, the expected status, the same status, message and ``errors`` everywhere,
leave runs, projects, metric names and system metrics as they were, and leave the
server answering. The last tests check what must be *accepted* alike: literal
JSON keys in filters and odd (valid) Arrow dictionary index types.
"""

from __future__ import annotations

import base64
import os
import struct
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import msgspec
import numpy as np
import orjson
import pyarrow as pa
import pytest
import urllib3

from tests.jupyter_process import JupyterServer
from tests.services import PostgresCluster
from tests.store import media_samples
from wanllm_jupyter.core import limits as L

API = "wanllm/api/v1/"
BACKENDS = ("sqlite", "postgresql", "timescaledb")
JSON_TYPE = "application/json"
COLUMNAR = "application/vnd.wanllm.columnar+json"
ARROW = "application/vnd.apache.arrow.stream"
RUN = "6b1f0a52-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
MISSING = "00000000-0000-4000-8000-000000000000"
HTTP = urllib3.PoolManager(retries=False, timeout=30.0)


@dataclass
class Server:
    """One backend's server: ``call`` answers (status, JSON body or None)."""

    name: str
    process: JupyterServer

    def call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        ctype: str | None = None,
        query: str = "",
    ) -> tuple[int, Any]:
        url = self.process.url + API + path + (f"?{query}" if query else "")
        headers = dict(self.process.headers)
        if ctype is not None:
            headers["Content-Type"] = ctype
        try:
            r = HTTP.request(method, url, body=body, headers=headers, redirect=False)
        except urllib3.exceptions.HTTPError as e:
            raise AssertionError(f"{self.name}: {method} {path}: no answer: {e}") from e
        try:
            return r.status, orjson.loads(r.data) if r.data else None
        except orjson.JSONDecodeError:
            return r.status, r.data[:200]

    def json(self, method: str, path: str, obj: Any, query: str = "") -> tuple[int, Any]:
        return self.call(method, path, orjson.dumps(obj), JSON_TYPE, query)


@pytest.fixture(scope="module")
def servers(
    pg_cluster: PostgresCluster, plain_pg_cluster: PostgresCluster, tmp_path_factory: Any
) -> Iterator[dict[str, Server]]:
    name = f"hostile_{os.getpid()}"
    urls = {
        "sqlite": None,
        "postgresql": plain_pg_cluster.create_database(name),
        "timescaledb": pg_cluster.create_database(name),
    }
    started: dict[str, Server] = {}
    try:
        for backend, url in urls.items():
            process = JupyterServer(
                tmp_path_factory.mktemp(backend),
                database_url=url,
                extra_args=["--ServerApp.log_level=WARN"],
            )
            started[backend] = Server(backend, process.start())
        for server in started.values():
            _seed(server)
        yield started
    finally:
        for server in started.values():
            server.process.stop()


def _seed(server: Server) -> None:
    run = {
        "id": RUN,
        "project": "hostile",
        "name": "seed",
        "tags": ["t"],
        "config": {
            "lr": 0.1,
            'a"b': 1,
            "a\\b": 2,
            "nested": {"k": "v"},
            "list": [5],
            "flag": True,
        },
    }
    assert server.json("POST", "runs", run)[0] == 201
    rows = [{"run_id": RUN, "metric_name": "loss", "step": s, "value": 1.0} for s in range(3)]
    assert server.json("POST", "metrics/batch", {"metrics": rows})[0] == 200
    system = [{"run_id": RUN, "metric_type": "cpu", "value": 0.5}]
    assert server.json("POST", "metrics/system/batch", {"metrics": system})[0] == 200
    hist = {"key": "hist", "step": 0, "histogram": {"edges": [0, 1], "counts": [1]}}
    assert server.json("POST", "media/batch", {"run_id": RUN, "items": [hist]})[0] == 200


_RUN_FIELDS = ("id", "project", "name", "tags", "config", "summary", "notes", "metadata")


def snapshot(server: Server) -> Any:
    """What a rejected request must not change (not heartbeats or states, which
    time may change)."""
    _, runs = server.call("GET", "runs", query="limit=1000")
    _, projects = server.call("GET", "projects")
    _, names = server.call("GET", f"runs/{RUN}/metric-names")
    _, system = server.call("GET", f"runs/{RUN}/system-metrics")
    _, media = server.call("GET", f"runs/{RUN}/media")
    return (
        [(k["key"], k["kind"], k["steps"]) for k in media["keys"]],
        runs["total"],
        [{k: r.get(k) for k in (*_RUN_FIELDS, "exit_code", "git", "host")} for r in runs["runs"]],
        [(p["name"], p["run_count"]) for p in projects["projects"]],
        [(m["name"], m["count"]) for m in names["metrics"]],
        [(s["metric_type"], len(s["values"])) for s in system["series"]],
    )


# --------------------------------------------------------------------- cases
@dataclass(frozen=True)
class Case:
    """A request, the status every backend must answer, and the field at fault
    (the first ``errors`` item's, or a text the message must contain)."""

    method: str
    path: str
    body: bytes | None
    ctype: str | None
    query: str
    status: int
    field: str | None


def req(
    method: str,
    path: str,
    status: int,
    field: str | None = None,
    *,
    json: Any = None,
    raw: bytes | None = None,
    ctype: str | None = None,
    query: dict[str, Any] | str = "",
) -> Case:
    body = raw if raw is not None else (None if json is None else orjson.dumps(json))
    if body is not None and ctype is None:
        ctype = JSON_TYPE
    q = query if isinstance(query, str) else urlencode(query, doseq=True)
    return Case(method, path.replace("{run}", RUN), body, ctype, q, status, field)


def create(status: int, field: str | None, **fields: Any) -> Case:
    return req("POST", "runs", status, field, json={"project": "hostile", **fields})


def patch(status: int, field: str | None, **fields: Any) -> Case:
    return req("PATCH", "runs/{run}", status, field, json=fields)


def runs_query(status: int, field: str | None, **query: Any) -> Case:
    return req("GET", "runs", status, field, query=query)


def cursor(sort: str, key: Any, raw: bytes | None = None) -> Case:
    data = raw or orjson.dumps({"s": sort, "k": key})
    text = base64.urlsafe_b64encode(data).decode().rstrip("=")
    return runs_query(400, "cursor", sort=sort, cursor=text)


def rows(status: int, field: str | None, **point: Any) -> Case:
    row = {"run_id": RUN, "metric_name": "loss", "step": 9, "value": 1.0, **point}
    row = {k: v for k, v in row.items() if v is not OMIT}
    return req("POST", "metrics/batch", status, field, json={"metrics": [row]})


def columns(status: int, field: str | None, **cols: Any) -> Case:
    body = {"run_id": RUN, "names": ["loss"], "k": [0], "s": [9], "v": [1.0], **cols}
    body = {k: v for k, v in body.items() if v is not OMIT}
    return req("POST", "metrics/batch", status, field, raw=orjson.dumps(body), ctype=COLUMNAR)


def system(status: int, field: str | None, **point: Any) -> Case:
    row = {"run_id": RUN, "metric_type": "cpu", "value": 0.5, **point}
    return req("POST", "metrics/system/batch", status, field, json={"metrics": [row]})


OMIT = object()


def arrow(
    status: int, field: str | None, meta: dict[bytes, bytes] | None = None, **cols: Any
) -> Case:
    """An Arrow IPC batch of one point; ``cols`` replace or add columns."""
    arrays: dict[str, Any] = {
        "metric_name": pa.DictionaryArray.from_arrays(pa.array([0], pa.int32()), ["loss"]),
        "step": pa.array([9], pa.int64()),
        "value": pa.array([1.0]),
        **cols,
    }
    arrays = {k: v for k, v in arrays.items() if v is not OMIT}
    table = pa.table(arrays).replace_schema_metadata(
        {b"run_id": RUN.encode()} if meta is None else meta
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return req(
        "POST", "metrics/batch", status, field, raw=sink.getvalue().to_pybytes(), ctype=ARROW
    )


def dict_names(indices: pa.Array, labels: list[Any]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(indices, pa.array(labels, pa.string()), safe=False)


NUL = "a\x00b"
DEEP: dict[str, Any] = {}
_node = DEEP
for _ in range(70):
    _node["d"] = {}
    _node = _node["d"]
BIG_TAGS = [f"t{i}" for i in range(101)]
DEEP_PATH = "config." + ".".join(['k"'] * 65)
U64 = 2**64 - 1


CASES: dict[str, Case] = {
    # ---- run creation: text rules, limits, types
    "create/project-nul": create(422, "project", project=NUL),
    "create/project-surrogate": req(
        "POST", "runs", 400, "malformed JSON", raw=b'{"project": "\\ud800"}'
    ),
    "create/project-too-long": create(422, "project", project="p" * 129),
    "create/project-empty": create(422, "project", project=""),
    "create/project-number": create(422, "project", project=3),
    "create/project-list": create(422, "project", project=["a"]),
    "create/name-nul": create(422, "name", name=NUL),
    "create/name-too-long": create(422, "name", name="n" * 256),
    "create/name-empty": create(422, "name", name=""),
    "create/name-object": create(422, "name", name={"a": 1}),
    "create/tag-nul": create(422, "tags", tags=[NUL]),
    "create/tag-too-long": create(422, "tags", tags=["t" * 129]),
    "create/too-many-tags": create(422, "tags", tags=BIG_TAGS),
    "create/tags-string": create(422, "tags", tags="a,b"),
    "create/tags-numbers": create(422, "tags", tags=[1]),
    "create/tag-empty": create(422, "tags", tags=[""]),
    "create/config-key-nul": create(422, "config", config={NUL: 1}),
    "create/config-nested-key-nul": create(422, "config", config={"a": {NUL: 1}}),
    "create/config-value-nul": create(422, "config", config={"a": [NUL]}),
    "create/config-key-too-long": create(422, "config", config={"k" * 256: 1}),
    "create/config-key-empty": create(422, "config", config={"": 1}),
    "create/config-too-deep": create(422, "config", config=DEEP),
    "create/config-nesting-past-parser": req(
        "POST", "runs", 400, "malformed JSON", raw=b'{"config": ' + b"[" * 2000 + b"]" * 2000 + b"}"
    ),
    "create/config-array": create(422, "config", config=[1]),
    "create/config-u64": create(422, "config", config={"n": U64}),
    "create/metadata-value-nul": create(422, "metadata", metadata={"nb": NUL}),
    "create/notes-nul": create(422, "notes", notes=NUL),
    "create/notes-too-long": create(422, "notes", notes="n" * 65_537),
    "create/host-nul": create(422, "host", host=NUL),
    "create/git-branch-nul": create(422, "branch", git={"branch": NUL}),
    "create/git-dirty-string": create(422, "dirty", git={"dirty": "yes"}),
    "create/git-unknown": create(422, "color", git={"color": "red"}),
    "create/id-not-uuid": create(400, "not a UUID", id="run-1"),
    "create/id-number": create(422, "id", id=5),
    "create/resume-bogus": create(422, "resume", resume="maybe"),
    "create/unknown-field": create(422, "colour", colour="red"),
    "create/body-array": req("POST", "runs", 400, "JSON object", json=[1]),
    "create/body-null": req("POST", "runs", 400, "JSON object", raw=b"null"),
    "create/body-invalid-utf8": req("POST", "runs", 400, "malformed JSON", raw=b'{"name": "\xff"}'),
    "create/body-utf16": req(
        "POST", "runs", 400, "malformed JSON", raw='{"name": "x"}'.encode("utf-16")
    ),
    "create/body-bom": req("POST", "runs", 400, "malformed JSON", raw=b'\xef\xbb\xbf{"name": "x"}'),
    "create/body-nan": req("POST", "runs", 400, "malformed JSON", raw=b'{"config": {"x": NaN}}'),
    "create/body-inf-number": req(
        "POST", "runs", 400, "malformed JSON", raw=b'{"config": {"x": 1e400}}'
    ),
    "create/body-empty": req("POST", "runs", 400, "empty", raw=b""),
    "create/body-text-plain": req(
        "POST", "runs", 415, "content type", raw=b"{}", ctype="text/plain"
    ),
    # ---- run updates
    "patch/exit-code-int32-max+1": patch(422, "exit_code", exit_code=2**31),
    "patch/exit-code-int32-min-1": patch(422, "exit_code", exit_code=-(2**31) - 1),
    "patch/exit-code-int64-max+1": patch(422, "exit_code", exit_code=2**63),
    "patch/exit-code-u64": patch(422, "exit_code", exit_code=U64),
    "patch/exit-code-beyond-u64": req(
        "PATCH", "runs/{run}", 422, "exit_code", raw=b'{"exit_code": 99999999999999999999999}'
    ),
    "patch/exit-code-float": patch(422, "exit_code", exit_code=1.5),
    "patch/exit-code-string": patch(422, "exit_code", exit_code="1"),
    "patch/exit-code-bool": patch(422, "exit_code", exit_code=True),
    "patch/state-bogus": patch(422, "state", state="exploded"),
    "patch/name-nul": patch(422, "name", name=NUL),
    "patch/summary-key-nul": patch(422, "summary", summary={NUL: 1.0}),
    "patch/summary-value-nul": patch(422, "summary", summary={"best": NUL}),
    "patch/summary-u64": patch(422, "summary", summary={"n": U64}),
    "patch/config-too-deep": patch(422, "config", config=DEEP),
    "patch/add-tags-too-many": patch(422, "add_tags", add_tags=BIG_TAGS),
    "patch/add-tags-past-limit": patch(422, "add_tags", add_tags=BIG_TAGS[:100]),
    "patch/add-tag-nul": patch(422, "add_tags", add_tags=[NUL]),
    "patch/remove-tag-nul": patch(422, "remove_tags", remove_tags=[NUL]),
    "patch/tags-too-long": patch(422, "tags", tags=["t" * 129]),
    "patch/notes-too-long": patch(422, "notes", notes="n" * 65_537),
    "patch/heartbeat-string": patch(422, "heartbeat", heartbeat="yes"),
    "patch/bad-run-id": req("PATCH", "runs/not-a-uuid", 400, "not a UUID", json={"name": "x"}),
    "patch/nul-run-id": req("PATCH", f"runs/{RUN}%00", 400, "not a UUID", json={"name": "x"}),
    "patch/missing-run": req("PATCH", f"runs/{MISSING}", 404, "not found", json={"name": "x"}),
    # ---- run list: filter literals typed by their field
    "filter/exit-code-text": runs_query(400, "exit_code>abc", filter="exit_code>abc"),
    "filter/exit-code-huge": runs_query(400, "exit_code", filter="exit_code>99999999999999999999"),
    "filter/exit-code-int32+1": runs_query(400, "exit_code", filter="exit_code=2147483648"),
    "filter/exit-code-float": runs_query(400, "exit_code", filter="exit_code>1.5"),
    "filter/created-at-text": runs_query(400, "created_at>abc", filter="created_at>abc"),
    "filter/created-at-huge": runs_query(400, "created_at", filter="created_at<1e300"),
    "filter/heartbeat-before-pg": runs_query(400, "heartbeat_at", filter="heartbeat_at>-1e12"),
    "filter/finished-at-bool": runs_query(400, "finished_at", filter="finished_at>true"),
    "filter/updated-at-contains": runs_query(400, "updated_at", filter="updated_at~2024"),
    "filter/id-text": runs_query(400, "id=abc", filter="id=abc"),
    "filter/id-number": runs_query(400, "id", filter="id>5"),
    "filter/name-nul": runs_query(400, "NUL", filter=f"name={NUL}"),
    "filter/config-key-nul": runs_query(400, "NUL", filter=f"config.{NUL}=1"),
    "filter/config-u64": runs_query(400, "config.n", filter=f"config.n>{U64}"),
    "filter/config-key-too-long": runs_query(400, "config", filter=f"config.{'k' * 300}=1"),
    "filter/literal-too-long": runs_query(400, "name", filter="name=" + "n" * 2000),
    "filter/null-ordered": runs_query(400, "null", filter="config.x<null"),
    "filter/unknown-field": runs_query(400, "nope", filter="nope=1"),
    "filter/empty-path": runs_query(400, "config.", filter="config.=1"),
    "filter/empty-path-part": runs_query(400, "config.a..b", filter="config.a..b=1"),
    "filter/tags-eq": runs_query(400, "tags", filter="tags=x"),
    "filter/git-dirty-number": runs_query(400, "git.dirty", filter="git.dirty=1"),
    "filter/git-unknown": runs_query(400, "git.colour", filter="git.colour=red"),
    "filter/no-operator": runs_query(400, "expected <field><op><value>", filter="name!x"),
    "filter/invalid-utf8": req("GET", "runs", 400, None, query="filter=name%3D%FF"),
    "filter/path-too-deep": runs_query(400, "deeper than 64", filter=DEEP_PATH + "=1"),
    "filter/too-many-terms": runs_query(400, "terms", filter=" ".join(["name=x"] * 101)),
    "filter/too-many-arguments": runs_query(400, "terms", filter=["name=x"] * 101),
    "sort/unknown": runs_query(400, "sort", sort="nope"),
    "sort/path-too-deep": runs_query(400, "deeper than 64", sort=DEEP_PATH),
    "sort/empty-path": runs_query(400, "sort", sort="-config."),
    "sort/nul": runs_query(400, "NUL", sort=f"config.{NUL}"),
    "list/project-nul": runs_query(400, "project", project=NUL),
    "list/project-too-long": runs_query(400, "project", project="p" * 2000),
    "list/search-nul": runs_query(400, "search", search=NUL),
    "list/tag-nul": runs_query(400, "tag", tag=NUL),
    "list/state-nul": runs_query(400, "state", state=NUL),
    "list/limit-zero": runs_query(400, "limit", limit=0),
    "list/limit-text": runs_query(400, "limit", limit="ten"),
    "list/limit-huge": runs_query(400, "limit", limit="9" * 30),
    # ---- forged cursors
    "cursor/garbage": runs_query(400, "cursor", cursor="!!!"),
    "cursor/not-json": runs_query(400, "cursor", cursor=base64.urlsafe_b64encode(b"xx").decode()),
    "cursor/other-sort": cursor(
        "-created_at", [False, 1, RUN], orjson.dumps({"s": "name", "k": []})
    ),
    "cursor/key-not-list": cursor("-created_at", "x"),
    "cursor/key-too-short": cursor("-created_at", [False, 1]),
    "cursor/time-past-int64": cursor(
        "-created_at",
        None,
        b'{"s":"-created_at","k":[false,9223372036854775808,"%s"]}' % RUN.encode(),
    ),
    "cursor/time-beyond-u64": cursor(
        "-created_at", None, b'{"s":"-created_at","k":[false,1e30,"%s"]}' % RUN.encode()
    ),
    "cursor/time-text": cursor("-created_at", [False, "abc", RUN]),
    "cursor/run-id-text": cursor("-created_at", [False, 1, "not-a-uuid"]),
    "cursor/run-id-number": cursor("-created_at", [False, 1, 5]),
    "cursor/null-flag-with-value": cursor("-created_at", [True, 5, RUN]),
    "cursor/null-flag-not-bool": cursor("-created_at", ["yes", 5, RUN]),
    "cursor/name-object": cursor("name", [False, {"a": 1}, RUN]),
    "cursor/name-nul": cursor("name", [False, NUL, RUN]),
    "cursor/exit-code-int32+1": cursor("exit_code", [False, 2**31, RUN]),
    "cursor/json-u64": cursor("config.lr", [False, U64, RUN]),
    "cursor/json-nul": cursor("config.lr", [False, NUL, RUN]),
    "cursor/git-dirty-text": cursor("git.dirty", [False, "a", RUN]),
    "cursor/id-text": cursor("id", [False, "zzz", RUN]),
    # ---- metric rows
    "rows/name-nul": rows(422, "metric_name", metric_name=NUL),
    "rows/name-too-long": rows(422, "metric_name", metric_name="m" * 256),
    "rows/name-empty": rows(422, "metric_name", metric_name=""),
    "rows/name-number": rows(422, "metric_name", metric_name=5),
    "rows/step-int64-max+1": rows(422, "step", step=2**63),
    "rows/step-beyond-u64": req(
        "POST",
        "metrics/batch",
        422,
        "step",
        raw=b'{"metrics": [{"run_id": "%s", "metric_name": "m", "step": 1e30, "value": 1}]}'
        % RUN.encode(),
    ),
    "rows/step-float": rows(422, "step", step=1.5),
    "rows/step-string": rows(422, "step", step="1"),
    "rows/step-bool": rows(422, "step", step=True),
    "rows/value-nan-lowercase": rows(422, "value", value="nan"),
    "rows/value-bool": rows(422, "value", value=True),
    "rows/value-null": rows(422, "value", value=None),
    "rows/value-object": rows(422, "value", value={}),
    "rows/time-text": rows(422, "time", time="yesterday"),
    "rows/time-huge": rows(422, "time", time=1e13),
    "rows/time-before-pg": rows(422, "time", time=-1e12),
    "rows/time-iso-bc": rows(422, "time", time="-5000-01-01T00:00:00"),
    "rows/time-bool": rows(422, "time", time=True),
    "rows/run-id-text": rows(422, "run_id", run_id="x"),
    "rows/run-id-number": rows(422, "run_id", run_id=5),
    "rows/metadata-string": rows(422, "metadata", metadata="x"),
    "rows/metadata-key-nul": rows(422, "metadata", metadata={NUL: 1}),
    "rows/metadata-too-deep": rows(422, "metadata", metadata=DEEP),
    "rows/unknown-field": rows(422, "colour", colour="red"),
    "rows/missing-value": rows(422, "value", value=OMIT),
    "rows/row-not-object": req("POST", "metrics/batch", 422, "", json={"metrics": [1]}),
    "rows/metrics-not-array": req("POST", "metrics/batch", 422, "metrics", json={"metrics": {}}),
    "rows/metrics-missing": req("POST", "metrics/batch", 422, "metrics", json={}),
    "rows/batch-id-nul": req(
        "POST", "metrics/batch", 422, "batch_id", json={"metrics": [], "batch_id": NUL}
    ),
    "rows/batch-id-number": req(
        "POST", "metrics/batch", 422, "batch_id", json={"metrics": [], "batch_id": 5}
    ),
    "rows/batch-id-too-long": req(
        "POST", "metrics/batch", 422, "batch_id", json={"metrics": [], "batch_id": "b" * 201}
    ),
    "rows/too-many": req(
        "POST",
        "metrics/batch",
        413,
        "max_batch_size",
        json={"metrics": [{"run_id": RUN, "metric_name": "m", "value": 1}] * 1001},
    ),
    "rows/unknown-top-level": req("POST", "metrics/batch", 422, "colour", json={"colour": 1}),
    # ---- columnar JSON
    "columnar/name-nul": columns(422, "names", names=[NUL]),
    "columnar/name-too-long": columns(422, "names", names=["m" * 256]),
    "columnar/k-out-of-range": columns(422, "k", k=[1]),
    "columnar/k-int64-max+1": columns(422, "k", k=[2**63]),
    "columnar/s-int64-max+1": columns(422, "s", s=[2**63]),
    "columnar/s-float": columns(422, "s", s=[1.5]),
    "columnar/t-text": columns(422, "t", t=["now"]),
    "columnar/t-huge": columns(422, "t", t=[1e13]),
    "columnar/t-before-pg": columns(422, "t", t=[-1e12]),
    "columnar/v-text": columns(422, "v", v=["x"]),
    "columnar/length-mismatch": columns(422, "k", k=[0, 0]),
    "columnar/run-id": columns(422, "run_id", run_id="x"),
    "columnar/names-not-array": columns(422, "names", names="loss"),
    # ---- system metrics
    "system/type-nul": system(422, "metric_type", metric_type=NUL),
    "system/type-too-long": system(422, "metric_type", metric_type="c" * 256),
    "system/device-nul": system(422, "device", device=NUL),
    "system/node-nul": system(422, "node", node=NUL),
    "system/value-bool": system(422, "value", value=False),
    "system/time-huge": system(422, "time", time=-1e15),
    "system/metadata-nul": system(422, "metadata", metadata={"x": NUL}),
    # ---- Arrow
    "arrow/uint64-index-past-int64": arrow(
        422, "metric_name", metric_name=dict_names(pa.array([2**63], pa.uint64()), ["loss"])
    ),
    "arrow/uint64-index-max": arrow(
        422, "metric_name", metric_name=dict_names(pa.array([U64], pa.uint64()), ["loss"])
    ),
    "arrow/int8-index-negative": arrow(
        422, "metric_name", metric_name=dict_names(pa.array([-1], pa.int8()), ["loss"])
    ),
    "arrow/dictionary-nul": arrow(
        422, "names", metric_name=dict_names(pa.array([0], pa.int32()), [NUL])
    ),
    "arrow/dictionary-null-label": arrow(
        422, "names", metric_name=dict_names(pa.array([0], pa.int32()), [None])
    ),
    "arrow/string-nul": arrow(422, "names", metric_name=pa.array([NUL])),
    "arrow/null-name": arrow(422, "metric_name", metric_name=pa.array([None], pa.string())),
    "arrow/step-uint64": arrow(422, "step", step=pa.array([2**63], pa.uint64())),
    "arrow/step-float": arrow(422, "step", step=pa.array([1.0])),
    "arrow/time-seconds-huge": arrow(422, "time", time=pa.array([2**62], pa.timestamp("s"))),
    "arrow/time-int64-min": arrow(422, "time", time=pa.array([-(2**63)], pa.timestamp("us"))),
    "arrow/value-string": arrow(422, "value", value=pa.array(["1"])),
    "arrow/null-value": arrow(422, "value", value=pa.array([None], pa.float64())),
    "arrow/unknown-column": arrow(422, "colour", colour=pa.array([1])),
    "arrow/no-run-id": arrow(422, "run_id", meta={}),
    "arrow/run-id-text": arrow(422, "run_id", meta={b"run_id": b"x"}),
    "arrow/batch-id-invalid-utf8": arrow(
        422, "batch_id", meta={b"run_id": RUN.encode(), b"batch_id": b"\xff\xfe"}
    ),
    "arrow/batch-id-nul": arrow(
        422, "batch_id", meta={b"run_id": RUN.encode(), b"batch_id": b"a\x00b"}
    ),
    "arrow/malformed": req("POST", "metrics/batch", 400, "Arrow", raw=b"\xff" * 64, ctype=ARROW),
    "arrow/empty": req("POST", "metrics/batch", 400, "empty", raw=b"", ctype=ARROW),
    # ---- reads
    "history/start-step-huge": req(
        "GET", "runs/{run}/metrics/loss", 400, "start_step", query={"start_step": "9" * 25}
    ),
    "history/end-step-huge-negative": req(
        "GET", "runs/{run}/metrics/loss", 400, "end_step", query={"end_step": "-" + "9" * 25}
    ),
    "history/start-step-text": req(
        "GET", "runs/{run}/metrics/loss", 400, "start_step", query={"start_step": "x"}
    ),
    "history/start-time-huge": req(
        "GET", "runs/{run}/metrics/loss", 400, "start_time", query={"start_time": "1e20"}
    ),
    "history/start-time-before-pg": req(
        "GET", "runs/{run}/metrics/loss", 400, "start_time", query={"start_time": "-1e12"}
    ),
    "history/start-time-iso-bc": req(
        "GET", "runs/{run}/metrics/loss", 400, "start_time", query={"start_time": "-5000-01-01"}
    ),
    "history/end-time-nan": req(
        "GET", "runs/{run}/metrics/loss", 400, "end_time", query={"end_time": "nan"}
    ),
    "history/samples-zero": req(
        "GET", "runs/{run}/metrics/loss", 400, "samples", query={"samples": "0"}
    ),
    "history/smoothing-param-nan": req(
        "GET", "runs/{run}/metrics/loss", 400, "smoothing_param", query={"smoothing_param": "nan"}
    ),
    "history/name-nul": req("GET", "runs/{run}/metrics/a%00b", 400, "NUL"),
    "history/latest-name-nul": req("GET", "runs/{run}/metrics/a%00b/latest", 400, "NUL"),
    "history/stats-name-nul": req("GET", "runs/{run}/metrics/a%00b/stats", 400, "NUL"),
    "history/name-invalid-utf8": req("GET", "runs/{run}/metrics/a%FFb", 400, None),
    "run-metrics/names-nul": req("GET", "runs/{run}/metrics", 400, "names", query={"names": NUL}),
    "run-metrics/limit-huge": req(
        "GET", "runs/{run}/metrics", 400, "limit", query={"limit": "9" * 25}
    ),
    "system-read/types-nul": req(
        "GET", "runs/{run}/system-metrics", 400, "types", query={"types": NUL}
    ),
    "system-read/start-time-huge": req(
        "GET", "runs/{run}/system-metrics", 400, "start_time", query={"start_time": "1e300"}
    ),
    "project-metrics/project-nul": req(
        "GET", "projects/metric-names", 400, "project", query={"project": NUL}
    ),
    "bulk/run-id-text": req("POST", "history", 422, "run_ids", json={"run_ids": ["x"]}),
    "bulk/name-nul": req("POST", "history", 422, "names", json={"run_ids": [RUN], "names": [NUL]}),
    "bulk/start-step-huge": req(
        "POST", "history", 422, "start_step", json={"run_ids": [RUN], "start_step": 2**63}
    ),
    "bulk/end-step-text": req(
        "POST", "history", 422, "end_step", json={"run_ids": [RUN], "end_step": "x"}
    ),
    "get/bad-run-id": req("GET", "runs/not-a-uuid", 400, "not a UUID"),
    "get/missing-run": req("GET", f"runs/{MISSING}", 404, "not found"),
    "get/run-id-nul": req("GET", f"runs/{quote(NUL)}", 400, "not a UUID"),
    "delete/bad-run-id": req("DELETE", "runs/not-a-uuid", 400, "not a UUID"),
    "heartbeat/bad-run-id": req("POST", "runs/not-a-uuid/heartbeat", 400, "not a UUID"),
}


# --------------------------------------------------------------------- media
def media(status: int, field: str | None, *items: dict[str, Any], **batch: Any) -> Case:
    """A msgpack ``media/batch`` of ``items`` (``batch`` replaces its fields)."""
    body = {"run_id": RUN, "items": list(items), **batch}
    raw = msgspec.msgpack.encode({k: v for k, v in body.items() if v is not OMIT})
    return req("POST", "media/batch", status, field, raw=raw, ctype=MSGPACK)


def image(png: bytes, **item: Any) -> dict[str, Any]:
    return {"key": "img", "step": 1, "images": [{"png": png}], **item}


def hist(edges: list[float], counts: list[float]) -> dict[str, Any]:
    return {"key": "h", "step": 1, "histogram": {"edges": edges, "counts": counts}}


def table(data: bytes) -> dict[str, Any]:
    return {"key": "t", "step": 1, "table": {"arrow": data}}


def _ipc(t: pa.Table, compression: str | None = None) -> bytes:
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression=compression)
    with pa.ipc.new_stream(sink, t.schema, options=options) as w:
        w.write_table(t)
    return sink.getvalue().to_pybytes()


PNG = media_samples.png()
BIG_IHDR = PNG[:16] + struct.pack(">II", 100_000, 100_000) + PNG[24:29]
BIG_IHDR += struct.pack(">I", zlib.crc32(BIG_IHDR[12:29])) + PNG[33:]
MSGPACK = "application/msgpack"
MEDIA_CASES: dict[str, Case] = {
    "media/oversized-item": media(
        413, "images[0].png", image(PNG[:8] + bytes(L.MAX_MEDIA_ITEM_BYTES))
    ),
    "media/too-many-items": media(
        413, "items", *[hist([0, 1], [1]) for _ in range(L.MAX_MEDIA_ITEMS_PER_BATCH + 1)]
    ),
    "media/truncated-png": media(422, "images[0].png", image(PNG[:-20])),
    "media/not-png": media(422, "images[0].png", image(b"GIF89a" + bytes(40))),
    "media/huge-ihdr": media(422, "images[0].png", image(BIG_IHDR)),
    "media/png-as-text": media(422, "images[0].png", image("x")),  # type: ignore[arg-type]
    "media/no-images": media(422, "images", {"key": "img", "step": 1, "images": []}),
    "media/caption-nul": media(
        422,
        "images[0].caption",
        {"key": "img", "step": 1, "images": [{"png": PNG, "caption": NUL}]},
    ),
    "media/key-nul": media(422, "key", image(PNG, key=NUL)),
    "media/key-too-long": media(422, "key", image(PNG, key="k" * 256)),
    "media/step-huge": media(422, "step", image(PNG, step=2**63)),
    "media/step-missing": media(422, "step", {"key": "img", "images": [{"png": PNG}]}),
    "media/time-nan": media(422, "time", image(PNG, time=float("nan"))),
    "media/two-kinds": media(
        422, "images|histogram|table", {**image(PNG), "histogram": {"edges": [0, 1], "counts": [1]}}
    ),
    "media/no-kind": media(422, "images|histogram|table", {"key": "img", "step": 1}),
    "media/kind-conflict": media(422, "key", image(PNG, key="hist")),
    "media/kind-conflict-in-batch": media(
        422, "key", image(PNG, key="new"), {**hist([0, 1], [1]), "key": "new"}
    ),
    "media/item-unknown-field": media(422, "size", image(PNG, size=3)),
    "media/nan-edges": media(422, "histogram.edges", hist([0, float("nan"), 2], [1, 1])),
    "media/inf-counts": media(422, "histogram.counts", hist([0, 1], [float("inf")])),
    "media/edges-decreasing": media(422, "histogram.edges", hist([0, 2, 1], [1, 1])),
    "media/edges-counts-mismatch": media(422, "histogram.edges", hist([0, 1, 2], [1])),
    "media/counts-negative": media(422, "histogram.counts", hist([0, 1], [-1])),
    "media/too-many-bins": media(422, "histogram.edges", hist(list(range(602)), [1.0] * 601)),
    "media/edges-text": media(422, "histogram.edges", hist(["a", "b"], [1])),  # type: ignore[list-item]
    "media/not-arrow": media(422, "table.arrow", table(b"not arrow at all")),
    "media/arrow-truncated": media(
        422, "table.arrow", table(_ipc(media_samples.sample_table())[:-30])
    ),
    "media/arrow-too-many-rows": media(
        422,
        "table.arrow",
        table(_ipc(pa.table({"x": pa.array(np.zeros(L.MAX_TABLE_ROWS + 1, np.int8))}))),
    ),
    "media/arrow-bomb": media(
        413,
        "table.arrow",
        table(_ipc(pa.table({"x": pa.array(np.zeros(70_000_000, np.int8))}), "zstd")),
    ),
    "media/unknown-run": media(404, "not found", image(PNG), run_id=MISSING),
    "media/bad-run-id": media(422, "run_id", image(PNG), run_id="nope"),
    "media/batch-id-nul": media(422, "batch_id", image(PNG), batch_id=NUL),
    "media/items-not-list": media(422, "items", items="x"),
    "media/unknown-batch-field": media(422, "extra", image(PNG), extra=1),
    "media/msgpack-array": req(
        "POST", "media/batch", 400, "object", raw=msgspec.msgpack.encode([1, 2]), ctype=MSGPACK
    ),
    "media/msgpack-malformed": req(
        "POST", "media/batch", 400, "msgpack", raw=b"\xc1", ctype=MSGPACK
    ),
    "media/json-bad-base64": req(
        "POST",
        "media/batch",
        422,
        "images[0].png",
        json={"run_id": RUN, "items": [{"key": "img", "step": 1, "images": [{"png": "***"}]}]},
    ),
    "media/json-nan-edges": req(
        "POST",
        "media/batch",
        422,
        "histogram.edges",
        json={"run_id": RUN, "items": [hist([0, "NaN"], [1])]},  # type: ignore[list-item]
    ),
    "media/wrong-content-type": req(
        "POST", "media/batch", 415, "content type", raw=b"x", ctype="text/plain"
    ),
    "media-read/images-limit-zero": req(
        "GET", "runs/{run}/images/img", 400, "limit", query={"limit": 0}
    ),
    "media-read/histograms-max-steps-huge": req(
        "GET", "runs/{run}/histograms/hist", 400, "max_steps", query={"max_steps": 2001}
    ),
    "media-read/table-format": req(
        "GET", "runs/{run}/tables/t", 400, "format", query={"format": "csv"}
    ),
    "media-read/table-step-text": req(
        "GET", "runs/{run}/tables/t", 400, "step", query={"step": "x"}
    ),
    "media-read/key-nul": req("GET", "runs/{run}/images/a%00b", 400, "NUL"),
    "media-read/unknown-key": req("GET", "runs/{run}/images/nope", 404, "nope"),
    "media-read/wrong-kind": req("GET", "runs/{run}/images/hist", 404, "hist"),
    "media-read/unknown-run": req("GET", f"runs/{MISSING}/media", 404, "not found"),
    "media-read/bad-digest": req("GET", "media/xyz", 400, "digest"),
    "media-read/unknown-digest": req("GET", "media/" + "0" * 64, 404, "0" * 64),
}
CASES.update(MEDIA_CASES)


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_hostile_input_is_refused_alike_and_changes_nothing(
    servers: dict[str, Server], case: Case
) -> None:
    answers = {}
    for backend, server in servers.items():
        before = snapshot(server)
        answers[backend] = server.call(case.method, case.path, case.body, case.ctype, case.query)
        assert snapshot(server) == before, f"{backend}: a rejected request changed the store"
        assert server.call("GET", "health")[0] == 200, f"{backend} stopped answering"
    statuses = {b: status for b, (status, _) in answers.items()}
    assert all(s < 500 for s in statuses.values()), answers
    assert set(statuses.values()) == {case.status}, answers
    bodies = [body for _, body in answers.values()]
    assert all(b == bodies[0] for b in bodies), answers
    body = bodies[0]
    assert isinstance(body, dict) and set(body) == {"message", "errors"}, body
    if case.field is not None:
        where = body["errors"][0]["field"] if body["errors"] else body["message"]
        assert case.field in where, body


def test_the_suite_is_large_enough() -> None:
    assert len(CASES) >= 100


# --------------------------------------------------------------------- accepted alike
@pytest.mark.parametrize(
    ("filter_", "matches"),
    [
        ('config.a"b=1', True),
        ('config.a"b=2', False),
        ("config.a\\b=2", True),
        ("config.a\\b>1", True),
        ("config.nested.k=v", True),
        ('config.nested.k="v"', True),
        ("config.list.0=5", False),  # a path part is a key, never an array index
        ("config.lr>=0.1", True),
        ("config.flag=true", True),
        ("config.flag~TRU", True),
        ("config.flag~1", False),
        ("name=seed", True),
        ("exit_code=null", True),
        (f"id={RUN.upper()}", True),
        ("created_at>2000-01-01T00:00:00Z", True),
        ("created_at<946684800", False),
    ],
)
def test_filters_match_alike(servers: dict[str, Server], filter_: str, matches: bool) -> None:
    """Literal keys (quotes, backslashes), typed literals: the same runs everywhere."""
    for backend, server in servers.items():
        status, body = server.call(
            "GET", "runs", query=urlencode({"project": "hostile", "filter": filter_})
        )
        assert status == 200, (backend, body)
        assert [r["id"] for r in body["runs"]] == ([RUN] if matches else []), backend


@pytest.mark.parametrize("sort", ["config.lr", 'config.a"b', "-exit_code", "git.dirty", "name"])
def test_cursors_made_by_a_backend_work_on_it(servers: dict[str, Server], sort: str) -> None:
    for backend, server in servers.items():
        for i in range(2):
            run = {"project": "pages", "config": {"lr": i / 10, 'a"b': i}}
            assert server.json("POST", "runs", run)[0] == 201
        status, page = server.call(
            "GET", "runs", query=urlencode({"project": "pages", "sort": sort, "limit": 1})
        )
        assert status == 200 and page["next_cursor"], (backend, page)
        query = {"project": "pages", "sort": sort, "limit": 1, "cursor": page["next_cursor"]}
        status, nxt = server.call("GET", "runs", query=urlencode(query))
        assert status == 200 and len(nxt["runs"]) == 1, (backend, nxt)


@pytest.mark.parametrize(
    "index_type", [pa.int8(), pa.uint8(), pa.int16(), pa.uint32(), pa.uint64()]
)
def test_any_integer_dictionary_index_type_is_accepted(
    servers: dict[str, Server], index_type: pa.DataType
) -> None:
    case = arrow(
        200,
        None,
        metric_name=dict_names(pa.array([1, 0], index_type), ["a", f"idx-{index_type}"]),
        step=pa.array([1, 2], pa.int64()),
        value=pa.array([1.0, 2.0]),
    )
    for backend, server in servers.items():
        status, body = server.call(case.method, case.path, case.body, case.ctype)
        assert (status, body["written"]) == (200, 2), (backend, body)
        names = {m["name"] for m in server.call("GET", f"runs/{RUN}/metric-names")[1]["metrics"]}
        assert {"a", f"idx-{index_type}"} <= names, backend


def test_boundary_values_are_stored_alike(servers: dict[str, Server]) -> None:
    """The extremes the limits allow are accepted (and kept) by every backend."""
    rid = str(uuid.uuid4())
    for backend, server in servers.items():
        run = {"id": rid, "project": "edges", "name": "n" * 255, "tags": ["t" * 128] * 100}
        assert server.json("POST", "runs", run)[0] == 201, backend
        update = {"exit_code": -(2**31), "summary": {"big": 2**63 - 1, "small": -(2**63)}}
        status, body = server.json("PATCH", f"runs/{rid}", update)
        assert status == 200, (backend, body)
        assert body["exit_code"] == -(2**31) and body["summary"]["big"] == 2**63 - 1, backend
        name = "m" * 255
        rows = [
            {"run_id": rid, "metric_name": name, "step": 2**63 - 1, "value": 1.0},
            {"run_id": rid, "metric_name": name, "step": -(2**63), "value": 2.0,
             "time": -210_866_803_200.0},  # PostgreSQL's first timestamp
        ]  # fmt: skip
        status, body = server.json("POST", "metrics/batch", {"metrics": rows})
        assert status == 200, (backend, body)
        _, names = server.call("GET", f"runs/{rid}/metric-names")
        assert [(m["name"], m["count"]) for m in names["metrics"]] == [(name, 2)], backend
