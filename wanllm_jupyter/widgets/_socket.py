"""A server WebSocket that the widgets follow on their I/O loop (:mod:`._io_loop`),
reconnecting after :data:`RECONNECT_DELAY` when it drops; a failing streak is logged
once (:class:`..._io_loop.FailureLog`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from .._http import Connection
from .._io_loop import FailureLog

RECONNECT_DELAY = 1.0
# (the open socket, whether an earlier one was open) -> True when following should end
Session = Callable[[WebSocketClientConnection, bool], Awaitable[bool]]


async def follow(
    conn: Connection,
    path: str,
    what: str,
    session: Session,
    *,
    again: Callable[[], bool] = lambda: True,
) -> None:
    """Open ``path`` on ``conn``'s server and run ``session`` on it, again after each
    drop or failure while ``again()``, until a session returns True."""
    failures, opened = FailureLog(what), False
    while again():
        ws: WebSocketClientConnection | None = None
        try:
            ws = await websocket_connect(HTTPRequest(conn.ws_url(path), headers=conn.headers()))
            failures.ok()
            reconnected, opened = opened, True
            if await session(ws, reconnected):
                return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failures.failed(exc)
        finally:
            if ws is not None:
                ws.close()
        await asyncio.sleep(RECONNECT_DELAY)
