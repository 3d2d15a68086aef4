"""Live updates: one WebSocket per run (``wanllm/ws/metrics/<run_id>``) held by a
daemon thread running its own asyncio loop, and a throttled redraw thread.

Both run beside the kernel's main thread, so charts keep growing while the
cell that logs is still executing (ipykernel sends comm messages from any
thread).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import orjson
from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from .._http import Connection
from ..core.live_seq import LiveSequence

MIN_REDRAW_INTERVAL = 0.05  # small charts: up to 20 redraws/s
MAX_REDRAW_INTERVAL = 0.25  # the largest: still 4 redraws/s
# Chromium's cost of drawing one line point in a bqplot Lines mark, measured by
# benchmarks/widgets.py (20 lines of 2,000 points: ~140 ms per redraw).
BROWSER_SECONDS_PER_POINT = 3.5e-6
RECONNECT_DELAY = 1.0


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
    """Calls ``draw`` on a daemon thread, coalescing requests: ``draw`` returns the
    number of line points it drew, which sets the pause before the next redraw
    (:func:`redraw_interval`: 20 redraws/s for small charts, 4 for the largest)."""

    def __init__(self, draw: Callable[[], int]) -> None:
        self._draw, self._throttle = draw, Throttle(MIN_REDRAW_INTERVAL)
        self._wake = threading.Event()
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="wanllm-redraw", daemon=True)
        self._thread.start()

    def request(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            if self._stopped:
                return
            time.sleep(self._throttle.delay())
            self._wake.clear()
            self._throttle.mark()
            try:
                self._throttle.interval = redraw_interval(self._draw())
            except Exception:
                import logging

                logging.getLogger(__name__).exception("chart redraw failed")


class Listener(Protocol):
    def on_points(self, run_id: str, points: dict[str, Any]) -> None: ...
    def on_run(self, run: dict[str, Any]) -> None: ...
    def on_gap(self, run_id: str) -> None: ...


class LiveHub:
    """Process-wide WebSocket subscriptions, one socket per (server, run)."""

    _instance: LiveHub | None = None
    _instance_lock = threading.Lock()

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._listeners: dict[tuple[str, str], set[Listener]] = {}
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._lock = threading.Lock()
        threading.Thread(target=self._loop.run_forever, name="wanllm-live", daemon=True).start()

    @classmethod
    def get(cls) -> LiveHub:
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = LiveHub()
            return cls._instance

    def subscribe(self, conn: Connection, run_id: str, listener: Listener) -> threading.Event:
        """Start delivering ``run_id``'s live messages to ``listener``; the returned
        event is set once the socket is open (points logged after that arrive)."""
        key = (conn.base_url, run_id)
        ready = threading.Event()
        with self._lock:
            self._listeners.setdefault(key, set()).add(listener)
            if key in self._tasks:
                ready.set()
                return ready
            self._tasks[key] = None  # type: ignore[assignment]

        def start() -> None:
            self._tasks[key] = self._loop.create_task(self._run(conn, run_id, key, ready))

        self._loop.call_soon_threadsafe(start)
        return ready

    def unsubscribe(self, conn: Connection, run_id: str, listener: Listener) -> None:
        key = (conn.base_url, run_id)
        with self._lock:
            listeners = self._listeners.get(key, set())
            listeners.discard(listener)
            if listeners:
                return
            self._listeners.pop(key, None)
            task = self._tasks.pop(key, None)
        if task is not None:
            self._loop.call_soon_threadsafe(task.cancel)

    def _targets(self, key: tuple[str, str]) -> list[Listener]:
        with self._lock:
            return list(self._listeners.get(key, ()))

    async def _run(
        self, conn: Connection, run_id: str, key: tuple[str, str], ready: threading.Event
    ) -> None:
        first = True
        while self._targets(key):
            ws: WebSocketClientConnection | None = None
            try:
                request = HTTPRequest(
                    conn.ws_url(f"wanllm/ws/metrics/{run_id}"), headers=conn.headers()
                )
                ws = await websocket_connect(request)
                await ws.write_message(orjson.dumps({"type": "subscribe", "metrics": []}).decode())
                ready.set()
                if not first:
                    for target in self._targets(key):  # points may have been missed
                        target.on_gap(run_id)
                first = False
                seq = LiveSequence()
                while True:
                    raw = await ws.read_message()
                    if raw is None:
                        break
                    if self._dispatch(key, run_id, orjson.loads(raw), seq):
                        return
            except asyncio.CancelledError:
                raise
            except Exception:
                pass
            finally:
                if ws is not None:
                    ws.close()
            await asyncio.sleep(RECONNECT_DELAY)

    def _dispatch(
        self, key: tuple[str, str], run_id: str, msg: dict[str, Any], seq: LiveSequence
    ) -> bool:
        """Deliver one message; True once the run ended or was deleted (the socket is
        closed). A sequence jump counts as a gap (core/live_seq.py)."""
        kind = msg.get("type")
        apply, hole = seq.metrics(msg) if kind == "metrics" else (True, kind == "gap")
        if kind == "gap":
            seq.gap(msg)
        for target in self._targets(key):
            if kind == "metrics" and apply:
                target.on_points(run_id, msg.get("points") or {})
            elif kind == "run":
                target.on_run(msg.get("run") or {})
            if hole:
                target.on_gap(run_id)
        ended = kind == "run" and (msg.get("run") or {}).get("state") not in (None, "running")
        if ended or kind == "run_deleted":
            with self._lock:
                self._listeners.pop(key, None)
                self._tasks.pop(key, None)
            return True
        return False
