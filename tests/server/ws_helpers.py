"""Helpers for the live WebSocket tests."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from tornado.websocket import WebSocketClientConnection
from wanllm_server.live import LiveHub
from wanllm_server.store.base import MetricBatch

TIMEOUT = 10.0


async def next_message(ws: WebSocketClientConnection, timeout: float = TIMEOUT) -> dict[str, Any]:
    """The next server message, parsed; fails if none comes or the socket closed."""
    text = await asyncio.wait_for(ws.read_message(), timeout)
    assert text is not None, "the server closed the WebSocket"
    return orjson.loads(text)


async def expect_quiet(ws: WebSocketClientConnection, seconds: float = 0.4) -> None:
    """Fail if a message arrives within ``seconds`` (a few live ticks)."""
    try:
        text = await asyncio.wait_for(ws.read_message(), seconds)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected message: {text!r}")


async def sync(
    ws: WebSocketClientConnection, message: dict[str, Any], expect: str | None = None
) -> None:
    """Send ``message`` and wait until the server has handled it: messages are
    handled in order, so the error reply to a marker message proves it. With
    ``expect``, ``message`` itself must be answered with an error containing it."""
    await ws.write_message(orjson.dumps(message).decode())
    if expect is None:
        await ws.write_message('{"type": "sync-marker"}')
        expect = "'sync-marker'"
    reply = await next_message(ws)
    assert reply["type"] == "error" and expect in reply["message"], reply


async def commit_and_publish(hub: LiveHub, wanllm_app: Any, batch: MetricBatch) -> None:
    """What a server does with a batch: commit it to the (shared) store, then
    publish it through ``hub`` with the live sequence numbers it took."""
    result = await (await wanllm_app.store()).write_metrics(batch)
    hub.publish_points(batch, result.live_seq)
