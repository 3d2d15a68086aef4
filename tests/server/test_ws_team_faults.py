"""Team mode under a server crash: two real Jupyter servers on one TimescaleDB
and one Redis. Server A commits batches but dies (SIGKILL) before its publish
reaches Redis (A talks to Redis through a proxy that holds A's bytes), so
their answers die with it (A answers only once Redis took a batch). A client
that retries sends a duplicate, re-published with its original sequence
number, which every subscriber on server B gets; a client that moves on first
makes a sequence jump that its subscribers fill by re-querying. Nothing is
skipped silently."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClientConnection, websocket_connect

from tests.jupyter_process import JupyterServer
from tests.server.server_helpers import call
from tests.server.ws_helpers import expect_quiet, next_message
from wanllm_jupyter.core.live_seq import LiveSequence

pytestmark = pytest.mark.slow


class HoldingProxy:
    """A TCP proxy to ``port`` whose client-to-server bytes can be held back
    (kept, never forwarded) as if the link froze mid-publish."""

    def __init__(self, port: int) -> None:
        self.target, self.port = port, 0
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def hold(self) -> None:
        self._flowing.clear()

    async def close(self) -> None:
        """Drop every connection and whatever was held."""
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        for src, dst, held in ((reader, up_writer, True), (up_reader, writer, False)):
            task = asyncio.create_task(self._pump(src, dst, held))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, held: bool) -> None:
        try:
            while data := await src.read(65536):
                if held:
                    await self._flowing.wait()
                dst.write(data)
                await dst.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            dst.close()


@contextlib.asynccontextmanager
async def servers(timescale_dsn: str, redis_url: str) -> AsyncIterator[tuple]:
    """(A through a holding proxy, B direct, the proxy); both stopped at the end."""
    proxy = HoldingProxy(urlsplit(redis_url).port or 6379)
    await proxy.start()
    a = JupyterServer(database_url=timescale_dsn, redis_url=f"redis://127.0.0.1:{proxy.port}/0")
    b = JupyterServer(database_url=timescale_dsn, redis_url=redis_url)
    try:
        await asyncio.to_thread(a.start)  # A migrates the database first
        await asyncio.to_thread(b.start)
        yield a, b, proxy
    finally:
        await proxy.close()
        a.kill()
        b.stop()


def batch(run_id: str, batch_id: str, steps: range) -> dict:
    """A columnar batch, as the kernel client sends it (explicit steps and times)."""
    return {
        "format": "columnar",
        "batch_id": batch_id,
        "run_id": run_id,
        "names": ["loss"],
        "k": [0] * len(steps),
        "s": list(steps),
        "t": [1_700_000_000.0 + s for s in steps],
        "v": [s / 2 for s in steps],
    }


async def committed(server: JupyterServer, run_id: str, points: int) -> None:
    """Until the run's ``loss`` has ``points`` points in the store."""
    for _ in range(100):
        try:
            history = await call(server, "GET", f"runs/{run_id}/metrics/loss")
            if len(history["steps"]) == points:
                return
        except HTTPClientError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"{points} points of {run_id} never committed")


async def subscribe(server: JupyterServer, run_id: str) -> WebSocketClientConnection:
    ws = await websocket_connect(
        HTTPRequest(server.ws_url + f"wanllm/ws/metrics/{run_id}", headers=server.headers)
    )
    assert (await next_message(ws))["run"]["id"] == run_id
    return ws


async def next_points(ws: WebSocketClientConnection, run_id: str) -> dict:
    """The next metrics message (the run's creation may still echo through Redis)."""
    while (msg := await next_message(ws))["type"] == "run":
        assert msg["run"]["id"] == run_id and msg["run"]["state"] == "running", msg
    assert msg["type"] == "metrics", msg
    return msg


async def test_a_batch_committed_by_a_killed_server_reaches_every_subscriber(
    timescale_dsn, redis_url
):
    async with servers(timescale_dsn, redis_url) as (a, b, proxy):
        retried, moved_on = [(await call(b, "POST", "runs", {"project": "t"}))["id"] for _ in "12"]
        subs = {rid: await subscribe(b, rid) for rid in (retried, moved_on)}
        follow = {rid: LiveSequence() for rid in subs}
        await asyncio.sleep(0.5)  # B's hub subscribes the run channels in Redis
        for rid in subs:  # A -> Redis -> B works; A's link is up
            await call(a, "POST", "metrics/batch", batch(rid, f"{rid}-1", range(0, 10)))
            msg = await next_points(subs[rid], rid)
            assert msg["seq"] == [1, 1] and follow[rid].metrics(msg) == (True, False)

        proxy.hold()  # A's next PUBLISHes never leave the proxy
        unanswered = [  # A answers once Redis took the batch (or after 1 s)
            asyncio.ensure_future(
                call(a, "POST", "metrics/batch", batch(rid, f"{rid}-2", range(10, 20)))
            )
            for rid in subs
        ]
        for rid in subs:
            await committed(b, rid, 20)
        assert not any(post.done() for post in unanswered)
        a.kill()  # A dies after the commits, with the batches in its publish queue
        for post in unanswered:
            with pytest.raises((HTTPClientError, StreamClosedError, ConnectionError)):
                await post  # no answer: the client will retry
        for ws in subs.values():
            await expect_quiet(ws, 0.6)  # B's subscribers missed both batches

        # the client retries the batch through B: a duplicate, published again
        retry = batch(retried, f"{retried}-2", range(10, 20))
        assert (await call(b, "POST", "metrics/batch", retry))["duplicate"] is True
        msg = await next_points(subs[retried], retried)
        assert msg["seq"] == [2, 2] and follow[retried].metrics(msg) == (True, False)
        assert msg["points"]["loss"]["steps"] == list(range(10, 20))
        await call(b, "POST", "metrics/batch", retry)
        await expect_quiet(subs[retried])  # a subscriber that had it gets it once

        # a client that moved on: its next batch reveals the hole, a re-query fills it
        await call(b, "POST", "metrics/batch", batch(moved_on, f"{moved_on}-3", range(20, 30)))
        msg = await next_points(subs[moved_on], moved_on)
        assert msg["seq"] == [3, 3] and follow[moved_on].metrics(msg) == (True, True)
        history = await call(b, "GET", f"runs/{moved_on}/metrics/loss")
        assert history["steps"] == list(range(30))
        await call(b, "POST", "metrics/batch", batch(moved_on, f"{moved_on}-2", range(10, 20)))
        await expect_quiet(subs[moved_on])  # the late retry: already re-queried
        for ws in subs.values():
            ws.close()
