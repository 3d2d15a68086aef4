"""The live WebSockets (docs/api.md, "WebSocket"):

* ``wanllm/ws/metrics/<run_id>``: a ``run`` message with the run's current
  state first, then coalesced ``metrics`` messages of the selected metric
  names (all until the client subscribes to some), ``run`` changes and
  ``gap`` notices;
* ``wanllm/ws/runs``: ``run`` changes of every run (for the sidebar).

Jupyter's auth applies (403 before the upgrade); a bad client message is
answered with ``{"type": "error", "message"}`` and the socket stays open.
Bounds: at most ``WanllmApp.max_live_sockets`` sockets (more are closed with
1013 at once), client messages of MAX_CLIENT_MESSAGE_BYTES (tornado closes
with 1009 past it), MAX_SUBSCRIBED_NAMES names per socket, and the hub's byte
budget (the slowest sockets get a ``gap`` and are closed with 1013).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import struct
import typing
import uuid
from typing import Any

import msgspec
import tornado
from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from tornado import web
from tornado.iostream import IOStream, StreamClosedError
from tornado.websocket import WebSocketClosedError, WebSocketHandler, WebSocketProtocol13

from wanllm_jupyter.core import api
from wanllm_jupyter.core.api.check import checks, split_error

from . import telemetry
from .handlers.base import AUTH_RESOURCE, ApiError, as_api_error, dumps
from .live import LiveHub
from .live_subscriber import Subscriber
from .live_wire import error_message, run_message, run_to_wire
from .store.base import Run, StoreError

GOING_AWAY = 1001  # close code when the server shuts the hub down
TRY_AGAIN_LATER = 1013  # close code: too many sockets, or evicted as the slowest
MAX_CLIENT_MESSAGE_BYTES = 64 * 1024  # a subscribe/unsubscribe message


class LiveSocket(WebSocketMixin, WebSocketHandler, JupyterHandler):
    """One browser or kernel watching a run (``run_id``) or all runs' changes."""

    auth_resource = AUTH_RESOURCE
    run_id: str | None = None
    _run: Run | None = None
    _sub: Subscriber | None = None
    _writing = False  # a write is waiting for the client to read

    @property
    def hub(self) -> LiveHub:
        return self.settings["wanllm_live"]

    async def pre_get(self) -> None:
        """Authorize reading wanllm data (403 otherwise)."""
        allowed = await ensure_async(
            self.authorizer.is_authorized(self, self.current_user, "read", AUTH_RESOURCE)
        )
        if not allowed:
            raise web.HTTPError(403)

    @ws_authenticated
    async def get(self, run_id: str | None = None) -> None:
        await self.pre_get()
        if run_id is not None:
            try:
                rid = uuid.UUID(run_id)
            except ValueError:
                raise ApiError(400, f"run id {run_id!r} is not a UUID") from None
            store = await self.settings["wanllm_store"]()
            self._run = await store.get_run(rid)  # 404 for an unknown run
            self.run_id = str(rid)
        await self.hub.start()
        await super().get()

    def get_compression_options(self) -> None:
        """No permessage-deflate: live frames are pre-built uncompressed."""
        return None

    @property
    def max_message_size(self) -> int:
        """Largest client message; tornado closes the socket (1009) past it."""
        return MAX_CLIENT_MESSAGE_BYTES

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Errors before the upgrade as JSON ``{"message", "errors"}``."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        err = as_api_error(exc) if exc is not None else None
        if err is None:
            err = ApiError(
                status_code, "internal server error" if status_code >= 500 else self._reason
            )
        self.set_status(err.status_code)
        for name, value in err.headers.items():
            self.set_header(name, value)
        self.set_header("Content-Type", "application/json")
        self.finish(dumps({"message": err.message, "errors": err.errors}))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, StoreError | web.HTTPError):
            self.log.debug("wanllm ws %s: %s", self.request.path, value)
        else:
            super().log_exception(typ, value, tb)

    # ------------------------------------------------------------ socket life
    def open(self, *args: Any, **kwargs: Any) -> None:
        limit = self.settings["wanllm_app"].max_live_sockets
        if self.hub.subscriber_count >= limit:
            self.close(TRY_AGAIN_LATER, f"server has max_live_sockets={limit} live sockets open")
            return
        super().open(*args, **kwargs)  # keep-alive pings
        if self._run is not None:
            self.write_message(run_message(run_to_wire(self._run)))
        self._sub = self.hub.subscribe(self.run_id, None)
        self._sub.on_ready = self._pump
        telemetry.WEBSOCKET_CLIENTS.inc()

    def on_close(self) -> None:
        sub, self._sub = self._sub, None
        if sub is None:
            return
        self.hub.unsubscribe(sub)
        telemetry.WEBSOCKET_CLIENTS.dec()

    def _pump(self) -> None:
        """Write the subscriber's messages while the socket keeps up. While a
        write is still in flight (a slow reader) new messages wait in the
        subscriber's bounded buffer, so a slow client backs up nothing else."""
        sub = self._sub
        if sub is not None and sub.evicted is not None:
            self._evicted(sub)
            return
        while sub is not None and not self._writing:
            if sub.closed:  # the hub stopped (on_close clears self._sub first)
                self.close(GOING_AWAY, "server shutting down")
                return
            message = sub.pop()
            conn = self.ws_connection
            if message is None or conn is None or conn.is_closing():
                return
            frame = text_frame(message)
            stream = raw_stream(conn)
            try:
                if stream is None:  # the public path: tornado frames it
                    sent = self.write_message(message)
                    written = None if sent.done() else sent
                else:
                    written = send_frame(stream, frame)
            except (StreamClosedError, WebSocketClosedError):
                return
            if written is not None:
                self._writing = True
                sub.writing(frame)
                written.add_done_callback(self._written)

    def _written(self, written: asyncio.Future[None]) -> None:
        self._writing = False
        if self._sub is not None:
            self._sub.writing(None)
        if not written.cancelled() and written.exception() is None:
            self._pump()

    def _evicted(self, sub: Subscriber) -> None:
        """Queue the eviction's gap notice behind any unfinished write, then close."""
        self._sub = None
        self.hub.unsubscribe(sub)
        telemetry.WEBSOCKET_CLIENTS.dec()
        conn = self.ws_connection
        if conn is None or conn.is_closing():
            return
        stream = raw_stream(conn)
        with contextlib.suppress(StreamClosedError, WebSocketClosedError):
            while (message := sub.pop()) is not None:
                if stream is None:
                    self.write_message(message)
                else:
                    stream.write(text_frame(message))
        self.close(TRY_AGAIN_LATER, "too slow for the live buffer budget; re-query")

    def on_message(self, message: str | bytes) -> None:
        try:
            decoded = parse_client_message(message)
            if self._sub is None or self.run_id is None:
                raise ValueError(
                    "wanllm/ws/runs only carries run changes; subscribe to "
                    "metrics on wanllm/ws/metrics/<run_id>"
                )
        except ValueError as exc:
            with contextlib.suppress(WebSocketClosedError):
                self.write_message(error_message(str(exc)))
            return
        try:
            if isinstance(decoded, api.Subscribe):
                self._sub.select(decoded.metrics)
            else:
                self._sub.deselect(decoded.metrics)
        except ValueError as exc:
            with contextlib.suppress(WebSocketClosedError):
                self.write_message(error_message(str(exc)))


RAW_FRAMES_TORNADO = ((6, 4), (7, 0))  # tornado versions raw frames are used with (verified: 6.6)
RAW_FRAMES = RAW_FRAMES_TORNADO[0] <= tornado.version_info[:2] < RAW_FRAMES_TORNADO[1]


def raw_stream(conn: Any) -> IOStream | None:
    """The stream under ``conn`` when live frames may be written to it directly: a
    tornado version they were verified with (``RAW_FRAMES``), tornado's RFC 6455
    protocol, no compression, a plain IOStream. None: the public
    ``write_message`` (same bytes on the wire, one task per write)."""
    if not RAW_FRAMES or type(conn) is not WebSocketProtocol13:
        return None
    if getattr(conn, "_compressor", None) is not None:
        return None
    stream = getattr(conn, "stream", None)
    return stream if isinstance(stream, IOStream) else None


@functools.lru_cache(maxsize=32)
def text_frame(message: str) -> bytes:
    """The unmasked, uncompressed WebSocket text frame (RFC 6455 5.2) of
    ``message``: built once however many subscribers are sent the message
    (tornado's ``write_message`` would frame it, and spawn a task, for each)."""
    data = message.encode()
    n = len(data)
    if n < 126:
        return struct.pack("!BB", 0x81, n) + data
    if n <= 0xFFFF:
        return struct.pack("!BBH", 0x81, 126, n) + data
    return struct.pack("!BBQ", 0x81, 127, n) + data


def send_frame(stream: IOStream, frame: bytes) -> asyncio.Future[None] | None:
    """Write ``frame`` to ``stream``; None when it went out at once, else the
    future of the buffered rest. With nothing queued on a plain (non-TLS) stream
    the frame is sent straight to the socket: one system call, without tornado's
    per-write future and buffer bookkeeping, which dominate a 1,000-socket tick."""
    if type(stream) is IOStream and not stream.writing() and stream.socket is not None:
        try:
            sent = stream.socket.send(frame)
        except OSError:  # full (EAGAIN) or broken: tornado's write handles both
            sent = 0
        if sent == len(frame):
            return None
        if sent:
            written = stream.write(memoryview(frame)[sent:])  # no copy of the rest
            return None if written.done() else written
    written = stream.write(frame)
    return None if written.done() else written


_CLIENT_MESSAGES = msgspec.json.Decoder(api.ClientMessages)
_KINDS = " or ".join(repr(m.__struct_config__.tag) for m in typing.get_args(api.ClientMessages))
_NAME = checks(api.Subscribe)["metrics"].items
_EXAMPLE = '{"type": "subscribe", "metrics": ["loss"]}'


def parse_client_message(message: str | bytes) -> api.Subscribe | api.Unsubscribe:
    """The client message, decoded as its model (``metrics`` None = all names);
    ValueError naming the fault otherwise."""
    try:
        decoded = _CLIENT_MESSAGES.decode(message)
    except msgspec.ValidationError as exc:
        raise ValueError(_fault(str(exc), message)) from None
    except msgspec.DecodeError as exc:
        raise ValueError(f"malformed JSON message: {exc}") from None
    for i, name in enumerate(decoded.metrics or ()):  # the text rules msgspec cannot state
        if (reason := _NAME.reason(name)) is not None:  # type: ignore[union-attr]
            raise ValueError(f"metrics[{i}] must be a metric name: {reason}")
    return decoded


def _fault(error: str, message: str | bytes) -> str:
    """msgspec's validation ``error`` worded for the client: where, then why (a
    metric name's why as the REST API words it)."""
    reason, where = split_error(error)
    if where == "type" or "required field `type`" in reason:
        given = reason.removeprefix("Invalid value ") if reason.startswith("Invalid") else None
        return f"unknown message type {given or 'missing'}; expected {_KINDS}"
    if where == "metrics":
        return f"'metrics' must be a list of metric names: {reason}"
    if where.startswith("metrics["):
        return f"{where} must be a metric name: {_name_reason(message, where) or reason}"
    unknown = re.fullmatch(r"Object contains unknown field `(.*)`", reason)
    if unknown:
        return f"unknown field(s) {unknown.group(1)!r} in message; expected 'type' and 'metrics'"
    if reason.startswith("Expected `object`"):
        return f"message must be a JSON object like {_EXAMPLE}: {reason}"
    return f"{where or 'message'}: {reason}"


def _name_reason(message: str | bytes, where: str) -> str | None:
    """The metric-name rule's reason for the item at ``where`` (``metrics[i]``)."""
    try:
        item = msgspec.json.decode(message)["metrics"][int(where[len("metrics[") : -1])]
    except (msgspec.DecodeError, LookupError, TypeError, ValueError):
        return None
    reason: str | None = _NAME.reason(item)  # type: ignore[union-attr]
    return reason


ws_handlers: list[tuple[str, type]] = [
    (r"wanllm/ws/metrics/(?P<run_id>[^/]+)", LiveSocket),
    (r"wanllm/ws/runs", LiveSocket),
]
