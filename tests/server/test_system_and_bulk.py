"""System metrics and bulk history (JSON and streamed Arrow)."""

from __future__ import annotations

import pyarrow as pa

from tests.server.server_helpers import body, create_run, post_points

ARROW = "application/vnd.apache.arrow.stream"


async def test_system_metrics_ingest_and_query(api):
    rid = (await create_run(api))["id"]
    rows = [
        {
            "run_id": rid,
            "metric_type": "gpu.util",
            "value": 50.0,
            "time": 1.7e9,
            "device": "gpu0",
            "node": "n1",
        },
        {
            "run_id": rid,
            "metric_type": "gpu.util",
            "value": "NaN",
            "time": 1.7e9 + 1,
            "device": "gpu0",
            "node": "n1",
        },
        {"run_id": rid, "metric_type": "cpu", "value": 12.5, "time": "2023-11-14T22:13:20Z"},
    ]
    resp = await api("POST", "metrics/system/batch", body={"batch_id": "s1", "metrics": rows})
    assert body(resp) == {"written": 3, "duplicate": False, "batch_id": "s1"}
    resp = await api("POST", "metrics/system/batch", body={"batch_id": "s1", "metrics": rows})
    assert body(resp)["duplicate"] is True

    series = {
        s["metric_type"]: s for s in body(await api("GET", f"runs/{rid}/system-metrics"))["series"]
    }
    assert series["gpu.util"]["values"] == [50.0, "NaN"]
    assert series["gpu.util"]["times"] == [1.7e9, 1.7e9 + 1]
    assert series["gpu.util"]["devices"] == ["gpu0", "gpu0"]
    assert series["cpu"]["times"] == [1.7e9]
    only = body(
        await api(
            "GET",
            f"runs/{rid}/system-metrics",
            params={"types": "cpu", "start_time": "2023-01-01T00:00:00Z"},
        )
    )
    assert [s["metric_type"] for s in only["series"]] == ["cpu"]

    resp = await api("GET", f"runs/{rid}/system-metrics", params={"format": "arrow"})
    assert resp.headers["Content-Type"] == ARROW
    table = pa.ipc.open_stream(resp.body).read_all()
    assert table.num_rows == 3 and sorted(set(table["metric_type"].to_pylist())) == [
        "cpu",
        "gpu.util",
    ]

    resp = await api(
        "POST", "metrics/system/batch", body={"metrics": [{"run_id": rid, "metric_type": "cpu"}]}
    )
    assert resp.code == 422
    assert body(resp)["errors"] == [{"index": 0, "field": "value", "reason": "required"}]


async def test_bulk_history_json_and_streamed_arrow(api):
    runs = [(await create_run(api))["id"] for _ in range(3)]
    for i, rid in enumerate(runs):
        await post_points(
            api, rid, {"loss": [(s, s * (i + 1.0)) for s in range(500)], "acc": [(0, float("inf"))]}
        )
    req = {"run_ids": runs[:2], "names": ["loss", "acc"]}
    series = body(await api("POST", "history", body=req))["series"]
    got = {(s["run_id"], s["metric_name"]): s for s in series}
    assert set(got) == {(r, n) for r in runs[:2] for n in ("loss", "acc")}
    assert got[(runs[1], "loss")]["values"][:3] == [0.0, 2.0, 4.0]
    assert got[(runs[0], "acc")]["values"] == ["Infinity"]

    resp = await api(
        "POST",
        "history",
        body={**req, "start_step": 10, "end_step": 19},
        params={"format": "arrow"},
    )
    assert resp.headers["Content-Type"] == ARROW
    table = pa.ipc.open_stream(resp.body).read_all()
    assert table.schema.names == ["run_id", "metric_name", "step", "time", "value"]
    assert str(table.schema.field("time").type) == "timestamp[us, tz=UTC]"
    assert table.num_rows == 2 * 10
    assert sorted(set(table["step"].to_pylist())) == list(range(10, 20))

    resp = await api(
        "POST", "history", body={"run_ids": ["x", runs[0]], "names": "loss", "limit": 3}
    )
    assert resp.code == 422
    assert sorted((e["index"], e["field"], e["reason"]) for e in body(resp)["errors"]) == [
        (-1, "limit", "unknown field"),
        (-1, "names", "not an array"),
        (0, "run_ids", "not a UUID: 'x'"),
    ]
    missing = "00000000-0000-4000-8000-000000000002"
    resp = await api("POST", "history", body={"run_ids": [missing]}, params={"format": "arrow"})
    assert resp.code == 404 and body(resp)["message"] == f"run {missing} not found"
