"""The media models are the one statement of what ``media/batch`` accepts.

A fresh interpreter with every media limit of :mod:`wanllm_jupyter.core.limits`
changed before the models are built gets a handler that holds bodies to the
changed limits (so the handler keeps no copy of its own); hostile bodies get a
precise 4xx (status, item index, field, reason) on SQLite and on PostgreSQL
(TimescaleDB), and store nothing.
"""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys
import zlib
from typing import Any

import msgspec
import orjson
import pytest

from tests.server.server_helpers import body, create_run
from tests.store.media_samples import png

MSGPACK = {"Content-Type": "application/msgpack"}

_CHANGED_LIMITS = r"""
import json, sys
import wanllm_jupyter.core.limits as L

def change_limits():
    L.MAX_CAPTION_LENGTH, L.MAX_IMAGES_PER_STEP, L.MAX_MEDIA_ITEMS_PER_BATCH = 5, 2, 3
    L.MAX_MEDIA_ITEM_BYTES, L.MAX_HISTOGRAM_BINS, L.MAX_METRIC_NAME_LENGTH = 600, 4, 8

if sys.argv[1] == "before":
    assert "wanllm_jupyter.core.api" not in sys.modules
    change_limits()
from tests.store.media_samples import png
from wanllm_server.handlers.base import ApiError
from wanllm_server.handlers.media_input import media_write

RUN = "6b1f0a52-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
PNG, BIG = png(2, 2), png(30, 30)  # 120 and about 2,800 bytes

def hist(n):
    return {"key": "h", "step": 1, "histogram": {"edges": list(range(n + 1)), "counts": [1] * n}}

def images(n, caption=None):
    return {"key": "i", "step": 1, "images": [{"png": PNG, "caption": caption}] * n}

cases = {
    "caption": [images(1, "c" * 5), images(1, "c" * 6)],
    "images": [images(2), images(3)],
    "bins": [hist(4), hist(5)],
    "key": [{**hist(1), "key": "k" * 8}, {**hist(1), "key": "k" * 9}],
    "bytes": [images(1), {"key": "i", "step": 1, "images": [{"png": BIG}]}],
}
if sys.argv[1] == "after":  # msgspec builds a model when it is first used
    media_write({"run_id": RUN, "items": [ok for ok, _ in cases.values()]}, True, 10**8)
    change_limits()
out = {}
for name, (ok, bad) in cases.items():
    media_write({"run_id": RUN, "items": [ok]}, True, 10**8)
    try:
        media_write({"run_id": RUN, "items": [bad]}, True, 10**8)
        out[name] = None
    except ApiError as e:
        out[name] = [e.status_code, e.errors[0]["field"], e.errors[0]["reason"]]
media_write({"run_id": RUN, "items": [hist(1)] * 3}, True, 10**8)
try:
    media_write({"run_id": RUN, "items": [hist(1)] * 4}, True, 10**8)
    out["items"] = None
except ApiError as e:
    out["items"] = [e.status_code, e.errors[0]["field"], e.errors[0]["reason"]]
print(json.dumps(out))
"""


def _changed_limits(when: str) -> dict[str, Any]:
    """What the handler answers, limits changed ``when`` the models are built."""
    done = subprocess.run(
        [sys.executable, "-c", _CHANGED_LIMITS, when], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_a_limit_changed_in_one_place_changes_the_handler() -> None:
    """Limits changed before the models are built: the handler follows, at
    each limit accepting, one past it refusing and naming the field."""
    assert _changed_limits("before") == {
        "caption": [422, "images[0].caption", "longer than 5 characters (6)"],
        "images": [422, "images", "more than 2 items (3)"],
        "bins": [422, "histogram.edges", "more than 5 items (6)"],
        "key": [422, "key", "longer than 8 characters (9)"],
        "bytes": [413, "images[0].png", f"{len(png(30, 30))} bytes, over 600"],
        "items": [413, "items", "4 items, over the limit of 3"],
    }


def test_the_handler_keeps_no_copy_of_the_limits() -> None:
    """Limits changed once the models are built: the handler still holds bodies
    to the models, so it reads no limit of its own when it checks."""
    assert _changed_limits("after") == dict.fromkeys(
        ("caption", "images", "bins", "key", "bytes", "items")
    )


def _png_sized(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` (its checksum right)."""
    real = png()
    ihdr = b"IHDR" + struct.pack(">II", width, height) + real[24:29]
    return real[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + real[33:]


def _hist(edges: Any, counts: Any) -> dict[str, Any]:
    return {"key": "h", "step": 1, "histogram": {"edges": edges, "counts": counts}}


def _image(png_value: Any, **image: Any) -> dict[str, Any]:
    return {"key": "i", "step": 1, "images": [{"png": png_value, **image}]}


# (items, status, field of the first error, words its reason holds)
HOSTILE: dict[str, tuple[list[Any], int, str, str]] = {
    "key-int": ([{**_hist([0, 1], [1]), "key": 5}], 422, "key", "must be a string"),
    "step-text": ([{**_hist([0, 1], [1]), "step": "1"}], 422, "step", "must be an integer"),
    "step-float": ([{**_hist([0, 1], [1]), "step": 1.5}], 422, "step", "must be an integer"),
    "images-object": ([{"key": "i", "step": 1, "images": {}}], 422, "images", "must be an array"),
    "image-not-object": ([{"key": "i", "step": 1, "images": [1]}], 422, "images[0]", "an object"),
    "png-int": ([_image(7)], 422, "images[0].png", "must be bytes"),
    "png-missing": ([{"key": "i", "step": 1, "images": [{}]}], 422, "images[0].png", "required"),
    "histogram-list": ([{"key": "h", "step": 1, "histogram": [1]}], 422, "histogram", "an object"),
    "counts-nan": ([_hist([0, 1], [math.nan])], 422, "histogram.counts", "finite"),
    "counts-negative": ([_hist([0, 1, 2], [1, -3])], 422, "histogram.counts", ">= 0"),
    "counts-bool": ([_hist([0, 1], [True])], 422, "histogram.counts[0]", "must be a number"),
    "counts-empty": ([_hist([0], [])], 422, "histogram.edges", "fewer than 2 items (1)"),
    "bins-million": (
        [_hist(list(range(10**6 + 1)), [1] * 10**6)],
        422,
        "histogram.edges",
        f"more than 513 items ({10**6 + 1})",
    ),
    "png-zero-width": ([_image(_png_sized(0, 4))], 422, "images[0].png", "0x4 is invalid"),
    "png-negative-height": (
        [_image(_png_sized(4, 2**32 - 1))],
        422,
        "images[0].png",
        f"4x{2**32 - 1} is invalid",
    ),
    "caption-huge": (
        [_image(png(), caption="c" * 10**6)],
        422,
        "images[0].caption",
        f"longer than 1024 characters ({10**6})",
    ),
    "caption-int": ([_image(png(), caption=3)], 422, "images[0].caption", "must be a string"),
    "time-text": ([{**_hist([0, 1], [1]), "time": "now"}], 422, "time", "must be a number"),
    "table-arrow-list": (
        [{"key": "t", "step": 1, "table": {"arrow": [1]}}],
        422,
        "table.arrow",
        "must be bytes",
    ),
    "second-bad-item": (
        [_hist([0, 1], [1]), _hist([0, 1], ["x"])],
        422,
        "histogram.counts[0]",
        "must be a number",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE), ids=list(HOSTILE))
async def test_hostile_media_bodies_get_a_precise_4xx(api: Any, case: str) -> None:
    items, status, field, words = HOSTILE[case]
    run = (await create_run(api))["id"]
    raw = msgspec.msgpack.encode({"run_id": run, "items": items})
    resp = await api("POST", "media/batch", body=raw, headers=MSGPACK)
    assert resp.code == status, resp.body
    errors = body(resp)["errors"]
    assert len(errors) == 1, errors  # one entry for the one bad item
    first = errors[0]
    assert (first["index"], first["field"]) == (len(items) - 1, field), first
    assert words in first["reason"], first
    assert body(await api("GET", f"runs/{run}/media"))["keys"] == []


async def test_bodies_that_are_not_utf8_get_a_400(api: Any) -> None:
    run = (await create_run(api))["id"]
    raw = msgspec.msgpack.encode({"run_id": run, "items": [_hist([0, 1], [1])]})
    key = b"\xa2\xff\xfe"  # the key "h" as a msgpack str of 2 bytes that are not UTF-8
    resp = await api("POST", "media/batch", body=raw.replace(b"\xa1h", key), headers=MSGPACK)
    assert resp.code == 400 and "malformed msgpack" in body(resp)["message"], resp.body
    text = orjson.dumps({"run_id": run, "items": [_hist([0, 1], [1])]})
    json_type = {"Content-Type": "application/json"}
    resp = await api("POST", "media/batch", body=text.replace(b'"h"', b'"\xff"'), headers=json_type)
    assert resp.code == 400 and "malformed JSON" in body(resp)["message"], resp.body
    assert body(await api("GET", f"runs/{run}/media"))["keys"] == []
