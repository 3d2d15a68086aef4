"""Live updates on the widgets' I/O loop (:mod:`._io_loop`): one WebSocket per
(server, run) (``wanllm/ws/metrics/<run_id>``) shared by every chart of the run,
and each chart's throttled redraw.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import orjson
from tornado.websocket import WebSocketClientConnection

from .._http import Connection
from .._io_loop import ProcessWide
from ..core.live_seq import LiveSequence
from ._io_loop import IOLoop
from ._messages import Kind, LiveMessage
from ._socket import follow

MIN_REDRAW_INTERVAL = 0.05  # small charts: up to 20 redraws/s
MAX_REDRAW_INTERVAL = 0.25  # the largest: still 4 redraws/s
# Chromium's cost of drawing one line point in a bqplot Lines mark, measured by
# benchmarks/widgets.py (20 lines of 2,000 points: ~140 ms per redraw).
BROWSER_SECONDS_PER_POINT = 3.5e-6
log = logging.getLogger(__name__)


def redraw_interval(points: int) -> float:
    """Seconds between redraws of a chart drawing ``points`` line points, so that
    the browser spends at most half its time redrawing it."""
    return min(
        MAX_REDRAW_INTERVAL, max(MIN_REDRAW_INTERVAL, 2 * points * BROWSER_SECONDS_PER_POINT)
    )


class Throttle:
    """At most one event per ``interval`` seconds; the first after a pause is immediate."""

    def __init__(
        self, interval: float = MAX_REDRAW_INTERVAL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval, self.clock = interval, clock
        self.last = -float("inf")

    def delay(self) -> float:
        """Seconds to wait before the next event is allowed (0: now)."""
        return max(0.0, self.last + self.interval - self.clock())

    def mark(self) -> None:
        self.last = self.clock()


class Redrawer:
    """Calls ``draw`` on the I/O loop's worker, coalescing requests: ``draw`` returns
    the number of line points it drew, which sets the pause before the next redraw
    (:func:`redraw_interval`: 20 redraws/s for small charts, 4 for the largest)."""

    def __init__(self, draw: Callable[[], int], io: IOLoop | None = None) -> None:
        self._draw, self._throttle = draw, Throttle(MIN_REDRAW_INTERVAL)
        self._io = io or IOLoop.get()
        self._wake = asyncio.Event()  # bound to the loop on first use
        self._task = self._io.spawn(self._loop())

    def request(self) -> None:
        """Redraw soon (from any thread)."""
        self._io.call_soon(self._wake.set)

    def stop(self) -> None:
        self._task.cancel()

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(self._throttle.delay())
            self._wake.clear()
            self._throttle.mark()
            try:
                self._throttle.interval = redraw_interval(await self._io.blocking(self._draw))
            except Exception:
                log.exception("wanllm: chart redraw failed")


class Listener(Protocol):
    def on_points(self, run_id: str, points: dict[str, Any]) -> None: ...
    def on_run(self, run: dict[str, Any]) -> None: ...
    def on_gap(self, run_id: str) -> None: ...


Key = tuple[str, str]  # (server base URL, run id)


class LiveHub(ProcessWide):
    """Process-wide WebSocket subscriptions, one socket per (server, run)."""

    def __init__(self) -> None:
        self._listeners: dict[Key, set[Listener]] = {}
        self._tasks: dict[Key, concurrent.futures.Future[None]] = {}
        self._lock = threading.Lock()

    def subscribe(self, conn: Connection, run_id: str, listener: Listener) -> threading.Event:
        """Start delivering ``run_id``'s live messages to ``listener``; the returned
        event is set once the socket is open (points logged after that arrive)."""
        key = (conn.base_url, run_id)
        ready = threading.Event()
        with self._lock:
            self._listeners.setdefault(key, set()).add(listener)
            if key in self._tasks:
                ready.set()
            else:
                self._tasks[key] = IOLoop.get().spawn(self._run(conn, run_id, key, ready))
        return ready

    def unsubscribe(self, conn: Connection, run_id: str, listener: Listener) -> None:
        """Stop delivering to ``listener``; the socket closes with its last listener."""
        key = (conn.base_url, run_id)
        with self._lock:
            listeners = self._listeners.get(key, set())
            listeners.discard(listener)
            if listeners:
                return
            self._listeners.pop(key, None)
            task = self._tasks.pop(key, None)
        if task is not None:
            task.cancel()

    def sockets(self) -> int:
        """Open (or opening) sockets."""
        with self._lock:
            return len(self._tasks)

    def _targets(self, key: Key) -> list[Listener]:
        with self._lock:
            return list(self._listeners.get(key, ()))

    async def _run(self, conn: Connection, run_id: str, key: Key, ready: threading.Event) -> None:
        async def session(ws: WebSocketClientConnection, reconnected: bool) -> bool:
            await ws.write_message(orjson.dumps({"type": "subscribe", "metrics": []}).decode())
            ready.set()
            if reconnected:
                for target in self._targets(key):  # points may have been missed
                    target.on_gap(run_id)
            seq = LiveSequence()
            while (raw := await ws.read_message()) is not None:
                if self._dispatch(key, run_id, orjson.loads(raw), seq):
                    return True
            return False

        path, what = f"wanllm/ws/metrics/{run_id}", f"live socket of run {run_id}"
        await follow(conn, path, what, session, again=lambda: bool(self._targets(key)))

    def _dispatch(self, key: Key, run_id: str, body: dict[str, Any], seq: LiveSequence) -> bool:
        """Deliver one message; True once the run ended or was deleted (the socket is
        closed). A sequence jump counts as a gap (core/live_seq.py)."""
        msg = LiveMessage.of(body)
        if msg.kind is Kind.METRICS:
            apply, hole = seq.metrics(msg.body)
        else:
            apply, hole = True, msg.kind is Kind.GAP
        if msg.kind is Kind.GAP:
            seq.gap(msg.body)
        for target in self._targets(key):
            if msg.kind is Kind.METRICS and apply:
                target.on_points(run_id, msg.points)
            elif msg.kind is Kind.RUN:
                target.on_run(msg.run)
            elif msg.kind is Kind.MEDIA and (on_media := getattr(target, "on_media", None)):
                on_media(run_id, msg.body)  # media panels only (optional in Listener)
            if hole:
                target.on_gap(run_id)
        if msg.ends_run:
            with self._lock:
                self._listeners.pop(key, None)
                self._tasks.pop(key, None)
            return True
        return False
