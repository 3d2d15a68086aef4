"""The compact columnar batch as an Arrow IPC stream (docs/api.md)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from tests.server.server_helpers import body, create_run

ARROW = "application/vnd.apache.arrow.stream"
TS = pa.timestamp("us", tz="UTC")


def stream(columns: dict[str, Any], **meta: str) -> bytes:
    table = pa.table(columns).replace_schema_metadata(meta)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table, max_chunksize=2)  # several record batches
    return sink.getvalue().to_pybytes()


def names(codes: list[int], labels: list[str]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), labels, safe=False)


async def post(api: Any, raw: bytes) -> Any:
    return await api("POST", "metrics/batch", body=raw, headers={"Content-Type": ARROW})


async def test_arrow_batch_round_trips(api):
    rid = (await create_run(api))["id"]
    raw = stream(
        {
            "metric_name": names([0, 1, 0, 0], ["train/loss", "acc"]),
            "step": pa.array([0, 0, None, 7], pa.int64()),
            "time": pa.array([1_000_000, 2_000_000, None, 4_000_000], TS),
            "value": [0.5, float("inf"), float("nan"), -1.0],
        },
        run_id=rid,
        batch_id="a1",
    )
    assert body(await post(api, raw)) == {"written": 4, "duplicate": False, "batch_id": "a1"}
    assert body(await post(api, raw)) == {"written": 0, "duplicate": True, "batch_id": "a1"}
    h = body(await api("GET", f"runs/{rid}/metrics/train/loss"))
    assert h["steps"] == [0, 1, 7] and h["values"] == [0.5, "NaN", -1.0]
    assert h["times"][0] == 1.0 and h["times"][2] == 4.0 and h["times"][1] > 1e9
    acc = body(await api("GET", f"runs/{rid}/metrics/acc"))
    assert acc["values"] == ["Infinity"] and acc["times"] == [2.0]
    # plain string names, no time column (= now), integer values
    raw = stream({"metric_name": ["x", "x"], "step": [1, 2], "value": [1, 2]}, run_id=rid)
    assert body(await post(api, raw))["written"] == 2
    assert body(await api("GET", f"runs/{rid}/metrics/x"))["values"] == [1.0, 2.0]
    # other time units: ns truncated to µs, s scaled; an empty batch writes nothing
    raw = stream(
        {
            "metric_name": ["ns", "s"],
            "step": [0, 0],
            "value": [1.0, 2.0],
            "time": pa.array([1_500_000_999, 3_000_000_000], pa.timestamp("ns")),
        },
        run_id=rid,
    )
    assert body(await post(api, raw))["written"] == 2
    assert body(await api("GET", f"runs/{rid}/metrics/ns"))["times"] == [1.5]
    empty = stream(
        {
            "metric_name": pa.array([], pa.string()),
            "step": pa.array([], pa.int64()),
            "value": pa.array([], pa.float64()),
        },
        run_id=rid,
    )
    assert body(await post(api, empty))["written"] == 0


async def test_arrow_batch_errors_name_the_item(api):
    rid = (await create_run(api))["id"]
    resp = await post(api, b"not arrow")
    assert resp.code == 400 and body(resp)["message"].startswith("malformed Arrow IPC stream")
    resp = await post(
        api, stream({"metric_name": ["a"], "step": [1.5], "extra": [1]}, run_id="nope")
    )
    assert resp.code == 422
    assert sorted((e["index"], e["field"]) for e in body(resp)["errors"]) == [
        (-1, "extra"),
        (-1, "run_id"),
        (-1, "step"),
        (-1, "value"),
    ]
    resp = await post(
        api,
        stream(
            {
                "metric_name": names([0, 3, 0], ["ok", ""]),
                "step": [1, 2, 3],
                "value": [1.0, None, 2.0],
            },
            run_id=rid,
        ),
    )
    assert resp.code == 422
    assert [(e["index"], e["field"]) for e in body(resp)["errors"]] == [(1, "value")]
    resp = await post(
        api,
        stream(
            {
                "metric_name": names([0, 3, 1], ["ok", ""]),
                "step": [1, 2, 3],
                "value": [1.0, 2.0, 2.0],
            },
            run_id=rid,
        ),
    )
    assert [(e["index"], e["field"]) for e in body(resp)["errors"]] == [(1, "metric_name")]
    resp = await post(
        api,
        stream(
            {
                "metric_name": names([0, 1, 1], ["ok", ""]),
                "step": [1, 2, 3],
                "value": [1.0, 2.0, 2.0],
            },
            run_id=rid,
        ),
    )
    assert [(e["index"], e["field"]) for e in body(resp)["errors"]] == [(1, "names")]
    resp = await post(
        api,
        stream(
            {
                "metric_name": ["a", "a", "a"],
                "step": pa.array([1, 2**64 - 1, 3], pa.uint64()),
                "value": [1.0, 2.0, 3.0],
            },
            run_id=rid,
        ),
    )
    assert [(e["index"], e["field"]) for e in body(resp)["errors"]] == [(1, "step")]
    resp = await post(
        api,
        stream(
            {
                "metric_name": ["a", "a"],
                "step": [1, 2],
                "time": pa.array([0, 2**62], pa.timestamp("s")),
                "value": [1.0, 2.0],
            },
            run_id=rid,
        ),
    )
    assert [(e["index"], e["field"]) for e in body(resp)["errors"]] == [(1, "time")]
    missing = "00000000-0000-4000-8000-000000000009"
    resp = await post(
        api, stream({"metric_name": ["a"], "step": [1], "value": [1.0]}, run_id=missing)
    )
    assert resp.code == 404


@pytest.mark.parametrize("wanllm_config", [{"max_columnar_batch_size": 3}])
async def test_arrow_batch_over_limit_is_413(api):
    rid = (await create_run(api))["id"]
    raw = stream({"metric_name": ["a"] * 4, "step": [1, 2, 3, 4], "value": [1.0] * 4}, run_id=rid)
    resp = await post(api, raw)
    assert resp.code == 413
    assert body(resp)["message"] == "batch of 4 points exceeds max_columnar_batch_size 3"
