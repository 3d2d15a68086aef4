"""Base handler: auth, JSON in/out, query arguments, and the one error mapping."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, overload

import numpy as np
import orjson
from jupyter_core.utils import ensure_async
from jupyter_server.auth.utils import HTTP_METHOD_TO_AUTH_ACTION
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web
from tornado.http1connection import HTTP1Connection
from tornado.httputil import responses

from wanllm_jupyter.core.limits import (
    INT64_MAX,
    INT64_MIN,
    MAX_METRIC_NAME_LENGTH,
    MAX_TIME_US,
    MIN_TIME_US,
    text_problem,
)

from .. import telemetry
from ..store.base import (
    InvalidBatch,
    InvalidQuery,
    MetricNotFound,
    RunNotFound,
    Store,
    StoreUnavailable,
)
from .body import BodyBuffer, BodyTooLarge, declared_length
from .data_errors import data_error_message

if TYPE_CHECKING:
    import asyncio

    from ..cache import Cache, CacheKey
    from ..heartbeats import Heartbeats
    from ..inflight import InFlight
    from ..live import LiveHub
    from ..offload import Offload


class ServerApp(Protocol):
    """What handlers use of the extension app (``WanllmApp`` provides it): a
    Protocol, so the handlers never import the app module, which imports them."""

    redis_url: str | None
    max_body_size: int
    max_batch_size: int
    max_columnar_batch_size: int
    max_arrow_decompressed_size: int
    max_live_sockets: int
    inflight: InFlight
    ingest_slots: asyncio.Semaphore
    offload: Offload
    heartbeats: Heartbeats


AUTH_RESOURCE = "wanllm"
JSON_TYPE = "application/json"
ARROW_TYPE = "application/vnd.apache.arrow.stream"
RETRY_AFTER_SECONDS = 5
_REJECT_REASONS = {
    400: "malformed",
    404: "not_found",
    409: "conflict",
    413: "too_large",
    415: "content_type",
    422: "invalid",
    503: "unavailable",
}

MAX_EPOCH_SECONDS = 9.2e12  # |epoch seconds| that fit int64 microseconds


class ApiError(web.HTTPError):
    """An error answered as ``{"message", "errors"}`` with ``status``."""

    def __init__(
        self,
        status: int,
        message: str,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, "%s", message)
        self.message = message
        self.errors = errors or []
        self.headers = headers or {}


def as_api_error(exc: BaseException) -> ApiError | None:
    """Map an exception to the error the client sees; None for an internal error."""
    if isinstance(exc, ApiError):
        return exc
    data_message = data_error_message(exc)  # the validators' safety net
    if data_message is not None:
        return ApiError(400, data_message)
    if isinstance(exc, InvalidBatch):
        return ApiError(422, str(exc), [e.as_dict() for e in exc.errors])
    if isinstance(exc, RunNotFound | MetricNotFound):
        return ApiError(404, str(exc))
    if isinstance(exc, InvalidQuery):
        return ApiError(400, str(exc))
    if isinstance(exc, StoreUnavailable):
        return ApiError(
            503,
            f"database unavailable: {exc}",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if isinstance(exc, web.HTTPError):
        return ApiError(
            exc.status_code,
            exc.log_message % exc.args
            if exc.log_message
            else (exc.reason or responses.get(exc.status_code, "error")),
        )
    return None


def dumps(obj: Any) -> bytes:
    """JSON bytes (numpy arrays serialised natively)."""
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)


@web.stream_request_body
class WanllmHandler(ExtensionHandlerMixin, APIHandler):
    """Common base of every wanllm REST handler. Bodies are streamed (see
    :mod:`.body`): admitted or refused from the headers, then read under a cap."""

    auth_resource = AUTH_RESOURCE
    ingest_kind: str | None = None  # set on ingest handlers: rejections are counted
    _request_body: BodyBuffer | None = None

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()  # identity, host, XSRF and Origin checks
        self._request_body = BodyBuffer(self.wanllm.max_body_size)
        headers = self.request.headers
        length = declared_length(headers)
        if length != 0 and ("Content-Length" in headers or "Transfer-Encoding" in headers):
            await self._admit_body(length)

    async def _admit_body(self, length: int | None) -> None:
        """Refuse a body before reading it: 403 unless the user may make this
        request (what ``@authorized`` checks later), 413 past the size limit."""
        if isinstance(self.request.connection, HTTP1Connection) and length is not None:
            # when refused, tornado discards the unread body instead of answering 400
            self.request.connection.set_max_body_size(max(length, self.wanllm.max_body_size))
        user = self.current_user
        if not user:
            raise web.HTTPError(403)
        action = HTTP_METHOD_TO_AUTH_ACTION.get(self.request.method or "", "write")
        if not await ensure_async(
            self.authorizer.is_authorized(self, user, action, self.auth_resource)
        ):
            message = f"User is not authorized to {action} on resource: {self.auth_resource}."
            raise web.HTTPError(403, log_message=message)
        limit = self.wanllm.max_body_size
        if length is not None and length > limit:
            raise ApiError(413, str(BodyTooLarge(limit, length)))

    def data_received(self, chunk: bytes) -> None:
        if self._request_body is None or self._finished:
            return
        try:
            self._request_body.add(chunk)
        except BodyTooLarge as e:
            err = ApiError(413, str(e))
            self.send_error(413, exc_info=(ApiError, err, None))

    @property
    def wanllm(self) -> ServerApp:
        return self.settings["wanllm_app"]

    @property
    def live(self) -> LiveHub:
        return self.settings["wanllm_live"]

    @property
    def cache(self) -> Cache:
        return self.settings["wanllm_cache"]

    async def store(self) -> Store:
        return await self.settings["wanllm_store"]()

    # ---------------------------------------------------------------- output
    def send_json(self, obj: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(dumps(obj))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        err = as_api_error(exc) if exc is not None else None
        if err is None:
            err = ApiError(
                status_code,
                "internal server error"
                if status_code >= 500
                else responses.get(status_code, "error"),
            )
        self.set_status(err.status_code)
        for name, value in err.headers.items():
            self.set_header(name, value)
        # An error answered before the request was read to its end (in prepare, or
        # while decoding the path: for a streamed body, even a GET's) makes tornado
        # drop the connection; saying so keeps a keep-alive client from reusing it.
        self.set_header("Connection", "close")
        if self.ingest_kind is not None:
            reason = _REJECT_REASONS.get(err.status_code, "error")
            telemetry.BATCHES_REJECTED.labels(kind=self.ingest_kind, reason=reason).inc()
        self.finish(dumps({"message": err.message, "errors": err.errors}))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        err = as_api_error(value) if value is not None else None
        if err is None:
            super().log_exception(typ, value, tb)  # traceback in the server log only
        elif err.status_code >= 500:
            self.log.warning("%d %s: %s", err.status_code, self._request_summary(), err.message)
        else:
            self.log.debug("%d %s: %s", err.status_code, self._request_summary(), err.message)

    async def cached(
        self, key: CacheKey, ttl: float, produce: Callable[[], Awaitable[bytes]]
    ) -> bytes:
        """The cached response body under ``key``, produced and stored on a miss."""
        return await self.cache.fetch(await self.store(), key, ttl, produce)

    @contextlib.contextmanager
    def timed(self, endpoint: str) -> Iterator[None]:
        """Record query latency for ``endpoint``."""
        start = time.perf_counter()
        yield
        telemetry.QUERY_LATENCY.labels(endpoint=endpoint).observe(time.perf_counter() - start)

    # ---------------------------------------------------------------- input
    def media_type(self) -> str:
        """The request's content type without parameters, lower case."""
        return self.request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()

    def tracked_write(self) -> contextlib.AbstractAsyncContextManager[None]:
        """The write's in-flight slot (shutdown waits for it); 503 with
        ``Retry-After`` once the server is shutting down."""
        inflight = self.wanllm.inflight
        if not inflight.accepting:
            raise ApiError(
                503, "server is shutting down", headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
            )
        return inflight.track()

    def raw_body(self, *content_types: str) -> bytearray:
        """The request body (read under ``max_body_size``); 415/400 when of the wrong
        type or empty."""
        body = self._request_body.data if self._request_body is not None else bytearray()
        allowed = content_types or (JSON_TYPE,)
        if self.media_type() not in allowed:
            ctype = self.request.headers.get("Content-Type", "")
            raise ApiError(
                415, f"content type {ctype or '(none)'!r} not supported; use {', '.join(allowed)}"
            )
        if not body or body.isspace():
            raise ApiError(400, "request body is empty")
        return body

    def json_body(self, *content_types: str) -> Any:
        """The parsed JSON request body (see :meth:`raw_body`); 400 when malformed."""
        body = self.raw_body(*content_types)
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise ApiError(
                400, f"malformed JSON at line {e.lineno} column {e.colno} (char {e.pos}): {e.msg}"
            ) from e

    def json_object(self, *content_types: str) -> dict[str, Any]:
        body = self.json_body(*content_types)
        if not isinstance(body, dict):
            raise ApiError(400, f"request body must be a JSON object, got {_json_type(body)}")
        return body

    def decode_argument(self, value: bytes, name: str | None = None) -> str:
        """A query argument as text; 400 for a NUL, which no store can hold or compare.
        (Raised from the handler method: an error raised before a streamed body is
        read makes tornado close the connection.)"""
        if name is not None and b"\x00" in value:
            raise ApiError(400, f"query argument {name} contains a NUL character")
        return super().decode_argument(value, name)

    def metric_name_arg(self, name: str) -> str:
        """A metric name from the path; 400 when no store could hold it."""
        bad = text_problem(name, MAX_METRIC_NAME_LENGTH)
        if bad is not None:
            raise ApiError(400, f"metric name in the path {name[:64]!r}: {bad}")
        return name

    def run_id_arg(self, text: str) -> uuid.UUID:
        try:
            return uuid.UUID(text)
        except ValueError:
            raise ApiError(400, f"run id {text!r} is not a UUID") from None

    @overload
    def int_arg(
        self, name: str, default: int, *, lo: int | None = None, hi: int | None = None
    ) -> int: ...
    @overload
    def int_arg(
        self, name: str, default: None = None, *, lo: int | None = None, hi: int | None = None
    ) -> int | None: ...
    def int_arg(
        self,
        name: str,
        default: int | None = None,
        *,
        lo: int | None = None,
        hi: int | None = None,
    ) -> int | None:
        text = self.get_query_argument(name, None)
        if text is None or text == "":
            return default
        try:
            value = int(text)
        except ValueError:
            raise ApiError(400, f"query argument {name}={text!r} is not an integer") from None
        lo = INT64_MIN if lo is None else lo  # what every store holds
        hi = INT64_MAX if hi is None else hi
        if not lo <= value <= hi:
            bounds = f"[{lo}, {hi}]"
            raise ApiError(400, f"query argument {name}={value} is out of range {bounds}")
        return value

    def float_arg(self, name: str) -> float | None:
        text = self.get_query_argument(name, None)
        if text is None or text == "":
            return None
        try:
            value = float(text)
        except ValueError:
            raise ApiError(400, f"query argument {name}={text!r} is not a number") from None
        if not np.isfinite(value):
            raise ApiError(400, f"query argument {name}={text!r} must be finite")
        return value

    def time_arg(self, name: str) -> int | None:
        """A time query argument (epoch seconds or ISO 8601) as µs since epoch."""
        text = self.get_query_argument(name, None)
        if text is None or text == "":
            return None
        try:
            seconds = float(text)
        except ValueError:
            seconds = None
        if seconds is not None:
            us = round(seconds * 1e6) if abs(seconds) < MAX_EPOCH_SECONDS else None  # NaN, ±Inf
            if us is None or not MIN_TIME_US <= us <= MAX_TIME_US:
                raise ApiError(400, f"query argument {name}={text!r} is out of range for a time")
            return us
        try:
            stamp = np.datetime64(text.removesuffix("Z").removesuffix("+00:00"), "us")
        except ValueError:
            raise ApiError(
                400, f"query argument {name}={text!r} is neither epoch seconds nor ISO 8601"
            ) from None
        us = int(stamp.astype(np.int64))
        if not MIN_TIME_US <= us <= MAX_TIME_US:
            raise ApiError(400, f"query argument {name}={text!r} is out of range for a time")
        return us

    def list_arg(self, name: str) -> list[str] | None:
        """A repeatable and/or comma-separated query argument; None when absent."""
        values = [v for raw in self.get_query_arguments(name) for v in raw.split(",") if v]
        return values or None

    def format_arg(self) -> str:
        fmt = self.get_query_argument("format", "json")
        if fmt not in ("json", "arrow"):
            raise ApiError(400, f"query argument format={fmt!r}: expected json or arrow")
        return fmt


def _json_type(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )
