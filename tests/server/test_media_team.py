"""Media in team mode: two real Jupyter servers sharing one TimescaleDB and one
Redis. What one server stores, the other serves; its announcement reaches a
socket on the other server once."""

from __future__ import annotations

import base64
import hashlib

import pytest
from tornado.httpclient import AsyncHTTPClient

from tests.server.server_helpers import call
from tests.server.test_ws_two_servers import (  # noqa: F401 (servers is a fixture)
    connect,
    drain_creation_echo,
    servers,
)
from tests.server.ws_helpers import expect_quiet, next_message
from tests.store.media_samples import png

pytestmark = pytest.mark.slow


async def test_media_stored_through_a_is_served_and_announced_by_b(servers):  # noqa: F811
    a, b = servers
    run = await call(a, "POST", "runs", {"project": "media-team"})
    on_b = await connect(b, f"wanllm/ws/metrics/{run['id']}")
    assert (await next_message(on_b))["run"]["id"] == run["id"]
    await drain_creation_echo(on_b, run["id"])  # also lets B subscribe the run channel

    image = png(3, 2, 7)
    item = {"key": "samples", "step": 4, "images": [{"png": base64.b64encode(image).decode()}]}
    answer = await call(a, "POST", "media/batch", {"run_id": run["id"], "items": [item]})
    assert answer == {"run_id": run["id"], "accepted": 1}
    assert await next_message(on_b) == {
        "type": "media", "run_id": run["id"], "key": "samples", "kind": "image", "step": 4,
    }  # fmt: skip
    await expect_quiet(on_b)

    listed = await call(b, "GET", f"runs/{run['id']}/images/samples")
    digest = hashlib.sha256(image).hexdigest()
    assert [(i["step"], i["digest"]) for i in listed["images"]] == [(4, digest)]
    blob = await AsyncHTTPClient().fetch(b.url + f"wanllm/api/v1/media/{digest}", headers=b.headers)
    assert blob.body == image and blob.headers["Content-Type"] == "image/png"
    on_b.close()
