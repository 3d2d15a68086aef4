"""The run query language on every backend: tests/filter_vectors.json selects the same
runs here as in the Python and TypeScript parsers."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from wanllm_server.handlers.base import ApiError
from wanllm_server.handlers.runs import parse_match
from wanllm_server.store import RunCreate, RunQuery, RunUpdate, Store

VECTORS = json.loads((Path(__file__).parents[1] / "filter_vectors.json").read_text())


async def _load(store: Store) -> None:
    for r in VECTORS["runs"]:
        spec = RunCreate(
            project="vectors", name=r["name"], id=uuid.UUID(r["id"]), config=r["config"],
            tags=r["tags"], notes=r["notes"],
        )  # fmt: skip
        await store.create_run(spec)
        update: dict[str, Any] = {"summary": r["summary"], "state": r["state"]}
        if r["exit_code"] is not None:
            update["exit_code"] = r["exit_code"]
        await store.update_run(uuid.UUID(r["id"]), RunUpdate(**update))


async def test_every_vector_selects_the_same_runs(store: Store) -> None:
    await _load(store)
    order = {r["name"]: i for i, r in enumerate(VECTORS["runs"])}
    wrong = {}
    for case in VECTORS["matches"]:
        query = RunQuery(project="vectors", matches=[parse_match(case["query"])], limit=100)
        page = await store.list_runs(query)
        got = sorted((r.name for r in page.runs), key=order.__getitem__)
        if got != case["names"] or page.total != len(got):
            wrong[case["query"]] = (got, page.total)
    assert not wrong, (store.backend, wrong)


@pytest.mark.parametrize("case", VECTORS["errors"], ids=lambda c: c["query"])
def test_every_error_vector_is_a_400(case: dict[str, str]) -> None:
    with pytest.raises(ApiError) as e:
        parse_match(case["query"])
    assert e.value.status_code == 400 and case["error"] in e.value.message, e.value.message
