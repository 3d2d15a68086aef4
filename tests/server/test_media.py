"""Media routes on a real Jupyter server (SQLite, and TimescaleDB with Redis):
upload as msgpack and JSON, the reads, the stored bytes with their caching
headers, and the run socket's ``media`` announcements."""

from __future__ import annotations

import base64
import hashlib
import math
from typing import Any

import msgspec
import pyarrow as pa
import pytest

from tests.server.server_helpers import body, create_run
from tests.server.ws_helpers import next_message
from tests.store.media_samples import arrow, png, sample_table

MSGPACK = {"Content-Type": "application/msgpack"}


@pytest.fixture
def wanllm_config(backend: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    """TimescaleDB runs fan out through Redis; SQLite runs in-process."""
    if backend == "timescaledb":
        return {"redis_url": request.getfixturevalue("redis_url")}
    return {}


async def post_media(api: Any, batch: dict[str, Any], *, as_json: bool = False) -> Any:
    if as_json:
        return await api("POST", "media/batch", body=_base64(batch))
    return await api("POST", "media/batch", body=msgspec.msgpack.encode(batch), headers=MSGPACK)


def _base64(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: _base64(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_base64(v) for v in value]
    return value


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_upload_then_read_every_kind(api: Any) -> None:
    run = (await create_run(api))["id"]
    a, b = png(4, 3, 1), png(7, 2, 2)
    table = sample_table(4).append_column("x", pa.array([1.5, math.nan, math.inf, -math.inf]))
    items = [
        {"key": "samples/a", "step": 0, "time": 1.78e9, "images": [{"png": a, "caption": "<b>"}]},
        {"key": "samples/a", "step": 1, "images": [{"png": b}, {"png": a, "caption": "again"}]},
        {"key": "w", "step": 5, "histogram": {"edges": [0, 1, 2.5], "counts": [3, 0]}},
        {"key": "preds", "step": 2, "table": {"arrow": arrow(table)}},
    ]
    resp = await post_media(api, {"run_id": run, "items": items})
    assert resp.code == 200, resp.body
    assert body(resp) == {"run_id": run, "accepted": 4}

    keys = body(await api("GET", f"runs/{run}/media"))
    assert [
        (k["key"], k["kind"], k["steps"], k["first_step"], k["last_step"]) for k in keys["keys"]
    ] == [
        ("preds", "table", 1, 2, 2),
        ("samples/a", "image", 2, 0, 1),
        ("w", "histogram", 1, 5, 5),
    ]
    images = body(await api("GET", f"runs/{run}/images/samples/a"))
    assert images["steps"] == 2
    got = [
        (i["step"], i["index"], i["caption"], i["width"], i["height"], i["digest"])
        for i in images["images"]
    ]
    assert got == [
        (0, 0, "<b>", 4, 3, sha(a)),
        (1, 0, None, 7, 2, sha(b)),
        (1, 1, "again", 4, 3, sha(a)),
    ]
    assert images["images"][0]["time"] == 1.78e9
    latest = body(await api("GET", f"runs/{run}/images/samples/a", params={"limit": 1}))
    assert [i["step"] for i in latest["images"]] == [1, 1] and latest["steps"] == 2

    blob = await api("GET", f"media/{sha(a)}")
    assert blob.code == 200 and blob.body == a
    assert blob.headers["Content-Type"] == "image/png"
    assert blob.headers["ETag"] == f'"{sha(a)}"'
    assert blob.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    assert blob.headers["X-Content-Type-Options"] == "nosniff"
    again = await api("GET", f"media/{sha(a)}", headers={"If-None-Match": f'"{sha(a)}"'})
    assert again.code == 304 and again.body == b""
    assert (await api("GET", f"media/{'0' * 64}")).code == 404
    assert (await api("GET", "media/not-a-digest")).code == 400

    hist = body(await api("GET", f"runs/{run}/histograms/w"))
    assert hist["steps"] == 1
    assert [(h["step"], h["edges"], h["counts"]) for h in hist["histograms"]] == [
        (5, [0.0, 1.0, 2.5], [3.0, 0.0])
    ]

    data = body(await api("GET", f"runs/{run}/tables/preds"))
    assert data["columns"] == ["name", "score", "n", "x"] and data["step"] == 2
    assert data["data"][1] == ["row 1", 0.5, 1, "NaN"]
    assert [row[3] for row in data["data"]] == [1.5, "NaN", "Infinity", "-Infinity"]
    assert [(s["step"], s["rows"]) for s in data["steps"]] == [(2, 4)]
    raw = await api("GET", f"runs/{run}/tables/preds", params={"format": "arrow", "step": 2})
    assert raw.headers["Content-Type"] == "application/vnd.apache.arrow.stream"
    assert raw.body == arrow(table)  # the stored stream itself

    for path in ("images/w", "histograms/samples/a", "tables/nope"):
        resp = await api("GET", f"runs/{run}/{path}")
        assert resp.code == 404, (path, resp.body)
    assert (await api("GET", f"runs/{run}/tables/preds", params={"step": 3})).code == 404


async def test_json_upload_replaces_a_step_and_a_replay_changes_nothing(api: Any) -> None:
    run = (await create_run(api))["id"]
    a, b = png(2, 2, 1), png(3, 3, 2)
    first = {
        "run_id": run,
        "batch_id": "once",
        "items": [{"key": "k", "step": 0, "images": [{"png": a}]}],
    }
    assert (await post_media(api, first, as_json=True)).code == 200
    second = {"run_id": run, "items": [{"key": "k", "step": 0, "images": [{"png": b}]}]}
    assert (await post_media(api, second, as_json=True)).code == 200
    replay = await post_media(api, first, as_json=True)
    assert replay.code == 200 and body(replay)["accepted"] == 1
    images = body(await api("GET", f"runs/{run}/images/k"))["images"]
    assert [i["digest"] for i in images] == [sha(b)]
    assert (await api("GET", f"media/{sha(a)}")).code == 404  # its only reference replaced


async def test_run_socket_announces_media(api: Any, jp_ws_fetch: Any) -> None:
    run = (await create_run(api))["id"]
    ws = await jp_ws_fetch("wanllm", "ws", "metrics", run)
    assert (await next_message(ws))["type"] == "run"
    items = [
        {"key": "h", "step": 3, "histogram": {"edges": [0, 1], "counts": [1]}},
        {"key": "img", "step": 4, "images": [{"png": png()}]},
    ]
    assert (await post_media(api, {"run_id": run, "items": items})).code == 200
    got = [await next_message(ws), await next_message(ws)]
    assert got == [
        {"type": "media", "run_id": run, "key": "h", "kind": "histogram", "step": 3},
        {"type": "media", "run_id": run, "key": "img", "kind": "image", "step": 4},
    ]
    ws.close()
