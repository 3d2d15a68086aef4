"""One contract: the models of ``wanllm_jupyter.core.api`` are the only place a
field is declared. The served OpenAPI document, docs/models.md's Models section and
the generated TypeScript types (js/shared/api-types.ts) all follow them, and the
server's real answers are exactly the response models."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import re
import typing
from pathlib import Path
from typing import Any

import msgspec
import pytest
from wanllm_server.openapi import document
from wanllm_server.store import base as store

from tests.server.server_helpers import new_id, post_points
from wanllm_jupyter.core import api as models
from wanllm_jupyter.core.api import schema
from wanllm_jupyter.core.api.fields import RunState

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("api_contract", ROOT / "scripts/api_contract.py")
assert _spec is not None and _spec.loader is not None
contract = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(contract)

needs_node = pytest.mark.skipif(
    not (ROOT / "node_modules/.bin/openapi-typescript").exists(),
    reason="openapi-typescript is not installed (npm install)",
)


@pytest.fixture
def backend() -> str:
    return "sqlite"


def struct_models() -> dict[str, type[msgspec.Struct]]:
    """Every struct the models package exports, by name."""
    found = (getattr(models, name) for name in models.__all__)
    return {t.__name__: t for t in found if isinstance(t, type) and issubclass(t, msgspec.Struct)}


def model_fields(model: type[msgspec.Struct]) -> set[str]:
    fields = {f.encode_name for f in msgspec.structs.fields(model)}
    tag_field = model.__struct_config__.tag_field
    return fields | ({tag_field} if tag_field else set())


def docs_fields(text: str) -> dict[str, set[str]]:
    """Field names of each model table in docs/models.md's Models section."""
    section = text.split(contract.BEGIN, 1)[1].split(contract.END, 1)[0]
    out: dict[str, set[str]] = {}
    for block in section.split("\n### ")[1:]:
        name, _, rest = block.partition("\n")
        out[name] = set(re.findall(r"^\| `([^`]+)` \|", rest, re.M))
    return out


def ts_fields(text: str) -> dict[str, set[str]]:
    """Property names of each object type under ``components.schemas`` in api-types.ts."""
    schemas = text.split("    schemas: {\n", 1)[1].split("\n    };\n", 1)[0]
    out: dict[str, set[str]] = {}
    for name, props in re.findall(r"^ {8}(\w+): \{\n(.*?)^ {8}\};", schemas, re.M | re.S):
        out[name] = set(re.findall(r"^ {12}(\w+)\??:", props, re.M))
    return out


def test_every_model_is_the_same_in_openapi_docs_and_typescript():
    """Field by field, each model is what the served document, the docs and the
    TypeScript types say."""
    models = struct_models()
    served = document()["components"]["schemas"]
    docs = docs_fields(contract.DOCS.read_text())
    ts = ts_fields(contract.TYPES.read_text())
    assert set(models) == {n for n, s in served.items() if "properties" in s}
    for name, model in models.items():
        fields = model_fields(model)
        assert set(served[name]["properties"]) == fields, name
        assert docs.get(name) == fields, name
        assert ts.get(name) == fields, name


@needs_node
def test_generated_files_are_up_to_date():
    """docs/models.md and js/shared/api-types.ts are what scripts/api_contract.py writes
    from today's models (run it after changing a model)."""
    for path, text in contract.generated().items():
        assert path.read_text() == text, f"{path} is stale: python scripts/api_contract.py"


@needs_node
def test_a_field_added_to_a_model_reaches_every_file(monkeypatch):
    """One edit: a field added to a model shows in the served document, the docs
    and the TypeScript types, and requests are checked against it."""

    class Projects(models.Projects):
        colour: str

    class GitIn(models.GitIn):
        colour: str | None = None

    swap = {models.Projects: Projects, models.GitIn: GitIn}
    monkeypatch.setattr(schema, "MODELS", tuple(swap.get(m, m) for m in schema.MODELS))
    doc = document()
    assert "colour" in doc["components"]["schemas"]["Projects"]["properties"]
    assert "colour" in docs_fields(contract.markdown(doc))["Projects"]
    assert "colour" in ts_fields(contract.typescript(doc))["Projects"]
    assert models.check({"colour": "red"}, GitIn, "git") == GitIn(colour="red")
    with pytest.raises(models.BodyErrors):
        models.check({"colour": "red"}, models.GitIn, "git")


def strict(model: type[msgspec.Struct], raw: bytes) -> Any:
    """``raw`` decoded as ``model``: an unknown or missing field or a wrong type fails."""
    return msgspec.json.decode(raw, type=model, strict=True)


async def test_answers_are_exactly_the_response_models(api):
    """Real answers of a real server decode strictly into their models."""
    run = strict(models.Run, (await api("POST", "runs", body={"project": "contract"})).body)
    rid = run.id
    resumed = await api("POST", "runs", body={"id": rid, "project": "contract"})
    assert strict(models.Run, resumed.body).resumed is True
    await post_points(api, rid, {"loss": [(0, 1.0), (1, float("nan"))]})
    answers = {
        models.RunPage: ("GET", "runs", {"project": "contract"}),
        models.Projects: ("GET", "projects", None),
        models.ProjectMetricNames: ("GET", "projects/metric-names", {"project": "contract"}),
        models.RunMetrics: ("GET", f"runs/{rid}/metrics", None),
        models.MetricNames: ("GET", f"runs/{rid}/metric-names", None),
        models.Metric: ("GET", f"runs/{rid}/metrics/loss/latest", None),
        models.MetricStats: ("GET", f"runs/{rid}/metrics/loss/stats", None),
        models.History: ("GET", f"runs/{rid}/metrics/loss", {"samples": 1, "smoothing": "ema"}),
        models.SystemSeries: ("GET", f"runs/{rid}/system-metrics", None),
        models.Health: ("GET", "health", None),
    }
    for model, (method, path, params) in answers.items():
        resp = await api(method, path, params=params)
        assert resp.code == 200, (path, resp.body)
        strict(model, resp.body)
    bulk = await api("POST", "history", body={"run_ids": [rid]})
    assert len(strict(models.BulkHistory, bulk.body).series) == 1
    written = await api(
        "POST", "metrics/batch", body={"run_id": rid, "names": ["a"], "k": [0], "s": [None],
                                       "v": [1.0], "format": "columnar"},
    )  # fmt: skip
    strict(models.WriteResult, written.body)
    bad = await api("PATCH", f"runs/{rid}", body={"state": "exploded", "colour": 1})
    assert bad.code == 422 and len(strict(models.Error, bad.body).errors) == 2
    missing = await api("GET", f"runs/{new_id()}")
    assert missing.code == 404 and strict(models.Error, missing.body).errors == []


async def test_socket_messages_are_exactly_the_message_models(api, jp_ws_fetch):
    """Real WebSocket messages decode strictly into the message models, and the
    client message models are what the server takes."""

    async def receive(ws: Any) -> Any:
        text = await asyncio.wait_for(ws.read_message(), 10)
        assert text is not None, "the server closed the WebSocket"
        return msgspec.json.decode(text, type=models.ServerMessages, strict=True)

    rid = strict(models.Run, (await api("POST", "runs", body={"project": "ws"})).body).id
    run_ws = await jp_ws_fetch("wanllm", "ws", "metrics", rid)
    runs_ws = await jp_ws_fetch("wanllm", "ws", "runs")
    assert isinstance(await receive(run_ws), models.RunMessage)
    await run_ws.write_message(msgspec.json.encode(models.Subscribe(metrics=["loss"])).decode())
    await run_ws.write_message('{"type": "hello"}')  # answered after the subscribe is handled
    assert isinstance(await receive(run_ws), models.ErrorMessage)
    await post_points(api, rid, {"loss": [(0, 1.0), (1, float("inf"))], "acc": [(0, 0.5)]})
    points = await receive(run_ws)
    assert isinstance(points, models.MetricsMessage) and set(points.points) == {"loss"}
    assert points.points["loss"].values == [1.0, "Infinity"]
    await api("PATCH", f"runs/{rid}", body={"state": "finished"})
    for ws in (run_ws, runs_ws):
        assert isinstance(await receive(ws), models.RunMessage)
    await api("DELETE", f"runs/{rid}")
    for ws in (run_ws, runs_ws):
        assert await receive(ws) == models.RunDeletedMessage(run_id=rid)
        ws.close()


def test_store_records_have_the_models_fields():
    """The handlers pass a checked body's fields to the store records by name."""

    def names(record: type) -> set[str]:
        return {f.name for f in dataclasses.fields(record)}

    assert names(store.Run) == model_fields(models.Run) - {"resumed"}
    assert names(store.GitInfo) == model_fields(models.Git) == model_fields(models.GitIn)
    assert names(store.RunCreate) == model_fields(models.RunCreate) - {"resume"}
    assert names(store.RunUpdate) == model_fields(models.RunUpdate)
    assert typing.get_args(RunState) == store.RUN_STATES
