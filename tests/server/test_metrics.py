"""Metric ingest (row + columnar) and the per-run metric reads."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa

from tests.server.server_helpers import body, create_run, post_points
from wanllm_jupyter.core.smoothing import smooth

COLUMNAR = "application/vnd.wanllm.columnar+json"


async def test_row_and_columnar_ingest_with_slash_names(api):
    rid = (await create_run(api))["id"]
    res = await post_points(api, rid, {"train/loss": [(0, 1.0), (1, 0.5)]}, batch_id="b1")
    assert res == {"written": 2, "duplicate": False, "batch_id": "b1"}
    t0 = float(int(time.time()) + 10)  # after the row points' server-side "now"
    col = {
        "batch_id": "b2",
        "run_id": rid,
        "names": ["train/loss", "acc"],
        "k": [0, 1, 0],
        "s": [2, 2, 3],
        "t": [t0, t0, t0 + 1],
        "v": [0.25, "Infinity", "NaN"],
    }
    resp = await api("POST", "metrics/batch", body=col, headers={"Content-Type": COLUMNAR})
    assert body(resp) == {"written": 3, "duplicate": False, "batch_id": "b2"}
    col2 = {**col, "batch_id": "b3", "format": "columnar", "s": [4, 4, 5]}
    assert body(await api("POST", "metrics/batch", body=col2))["written"] == 3

    # raw and percent-encoded slash names reach the same series
    for path in ("train/loss", "train%2Floss"):
        h = body(await api("GET", f"runs/{rid}/metrics/{path}"))
        assert h["steps"] == [0, 1, 2, 3, 4, 5]
        assert h["values"] == [1.0, 0.5, 0.25, "NaN", 0.25, "NaN"]
        assert h["sampled"] is False and h["total_points"] == 6
    assert body(await api("GET", f"runs/{rid}/metrics/acc"))["times"] == [t0, t0]

    latest = body(await api("GET", f"runs/{rid}/metrics/train/loss/latest"))
    assert (latest["metric_name"], latest["step"], latest["value"]) == ("train/loss", 5, "NaN")
    expected = datetime.fromtimestamp(t0 + 1, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert latest["time"] == expected and latest["run_id"] == rid
    stats = body(await api("GET", f"runs/{rid}/metrics/train%2Floss/stats"))
    assert stats["count"] == 6 and stats["finite_count"] == 4 and stats["nonfinite_count"] == 2
    assert (stats["min_value"], stats["max_value"]) == (0.25, 1.0)
    assert (stats["first_step"], stats["last_step"]) == (0, 5)

    names = body(await api("GET", f"runs/{rid}/metric-names"))["metrics"]
    assert {(n["name"], n["count"], n["last_step"]) for n in names} == {
        ("train/loss", 6, 5),
        ("acc", 2, 4),
    }
    rm = body(await api("GET", f"runs/{rid}/metrics", params={"names": "acc"}))
    assert rm["count"] == 2 and [m["value"] for m in rm["metrics"]] == ["Infinity", "Infinity"]
    assert [n["name"] for n in rm["names"]] == ["acc"]
    rm = body(await api("GET", f"runs/{rid}/metrics", params={"limit": 4}))
    assert rm["count"] == 4 and len(rm["names"]) == 2


async def test_replayed_batch_counts_once_and_is_republished_with_its_seq(
    api, wanllm_app, monkeypatch
):
    published = []

    def publish_points(batch, seqs, lost=False):
        published.append((len(batch), seqs, lost))
        sent = asyncio.get_running_loop().create_future()
        sent.set_result(None)
        return sent

    monkeypatch.setattr(wanllm_app.live, "publish_points", publish_points)
    rid = (await create_run(api))["id"]
    points = {"loss": [(i, float(i)) for i in range(10)], "acc": [(0, 1.0)]}
    first = await post_points(api, rid, points, batch_id="replay-1")
    again = await post_points(api, rid, points, batch_id="replay-1")
    assert first["written"] == 11 and first["duplicate"] is False
    assert again == {"written": 0, "duplicate": True, "batch_id": "replay-1"}
    assert body(await api("GET", f"runs/{rid}/metrics/loss/stats"))["count"] == 10
    # the replay goes out again with the number it took at commit (docs/api.md)
    assert published == [(11, {rid: 1}, False), (11, {rid: 1}, False)]


async def test_reads_after_write_are_never_stale(api):
    rid = (await create_run(api))["id"]
    await post_points(api, rid, {"m": [(0, 1.0)]})
    for path in ("latest", "stats"):
        await api("GET", f"runs/{rid}/metrics/m/{path}")  # fill the cache
    await api("GET", f"runs/{rid}/metrics")
    await post_points(api, rid, {"m": [(1, 7.0)]})
    assert body(await api("GET", f"runs/{rid}/metrics/m/latest"))["value"] == 7.0
    assert body(await api("GET", f"runs/{rid}/metrics/m/stats"))["max_value"] == 7.0
    assert body(await api("GET", f"runs/{rid}/metrics"))["count"] == 2


async def test_history_ranges_samples_smoothing_and_arrow(api):
    rid = (await create_run(api))["id"]
    values = np.sin(np.arange(3000) / 50.0)
    for lo in range(0, 3000, 1000):
        await post_points(api, rid, {"s": [(i, float(values[i])) for i in range(lo, lo + 1000)]})

    h = body(await api("GET", f"runs/{rid}/metrics/s", params={"start_step": 10, "end_step": 19}))
    assert h["steps"] == list(range(10, 20))
    assert body(await api("GET", f"runs/{rid}/metrics/s", params={"limit": 5}))["steps"] == [
        0,
        1,
        2,
        3,
        4,
    ]

    d = body(await api("GET", f"runs/{rid}/metrics/s", params={"samples": 100}))
    assert d["sampled"] is True and d["total_points"] == 3000
    assert len(d["bands"]["steps"]) <= 100 and sum(d["bands"]["count"]) == 3000
    assert len(d["steps"]) <= 400 and min(d["values"]) == values.min()

    # smoothing on full resolution, read at the downsampled points
    params = {"samples": 100, "smoothing": "ema", "smoothing_param": 25}
    sm = body(await api("GET", f"runs/{rid}/metrics/s", params=params))
    full = smooth(np.arange(3000), values, "ema", 25)
    assert sm["smoothed"]["method"] == "ema" and sm["smoothed"]["param"] == 25
    np.testing.assert_allclose(sm["smoothed"]["values"], full.values[sm["steps"]])
    resp = await api("GET", f"runs/{rid}/metrics/s", params={"smoothing": "wobble"})
    assert resp.code == 400 and "unknown smoothing method 'wobble'" in body(resp)["message"]

    resp = await api(
        "GET",
        f"runs/{rid}/metrics/s",
        params={"format": "arrow", "smoothing": "running_avg", "smoothing_param": 5},
    )
    assert resp.headers["Content-Type"] == "application/vnd.apache.arrow.stream"
    table = pa.ipc.open_stream(resp.body).read_all()
    assert table.column_names == ["step", "time", "value", "smoothed"]
    assert table.num_rows == 3000 and table["value"].to_numpy()[7] == values[7]
    assert math.isclose(table["smoothed"].to_numpy()[10], values[8:13].mean())


async def test_unknown_metric_and_run(api):
    rid = (await create_run(api))["id"]
    for path in ("nope/latest", "nope/stats"):
        resp = await api("GET", f"runs/{rid}/metrics/{path}")
        assert resp.code == 404 and body(resp)["message"] == f"run {rid} has no metric 'nope'"
    other = "00000000-0000-4000-8000-000000000000"
    for path in ("metrics", "metric-names", "metrics/x", "metrics/x/latest", "system-metrics"):
        resp = await api("GET", f"runs/{other}/{path}")
        assert resp.code == 404, path
        assert body(resp) == {"message": f"run {other} not found", "errors": []}
