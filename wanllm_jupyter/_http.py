"""One keep-alive HTTP connection to a wanllm server extension (docs/api.md).

Used by the logging client's sender thread, the pandas API, the CLI and the
widgets. Every path is relative to the Jupyter server's ``base_url``
(``"wanllm/api/v1/runs"``); auth is Jupyter's ``Authorization: token <t>``
header, which jupyter_server exempts from XSRF checks.

Built on :mod:`._http1` (a plain socket for ``http://``, so a new process's first
request imports nothing slow; ``http.client`` for ``https://``): a small
thread-safe pool of keep-alive connections; one the server closed meanwhile is
noticed before reuse.

Errors: :class:`~wanllm_jupyter.core.errors.ServerUnreachable` when no answer came
back, :class:`~wanllm_jupyter.core.errors.ServerError` (or its subclasses
``NotFound``/``Conflict``) for an error status. No retries here: callers that
must not lose data (the sender) retry themselves.
"""

from __future__ import annotations

import select
import threading
import weakref
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import orjson

from ._http1 import PlainConnection, Response, TLSConnection
from .core.errors import Conflict, NotFound, ServerError, ServerUnreachable

if TYPE_CHECKING:
    import pyarrow

HTTPConnection = PlainConnection | TLSConnection

API = "wanllm/api/v1/"
JSON = "application/json"
ARROW = "application/vnd.apache.arrow.stream"
_ERRORS = {404: NotFound, 409: Conflict}


def encode_segment(name: str) -> str:
    """Percent-encode ``name`` (e.g. a metric name containing ``/``) as one path segment."""
    return quote(name, safe="")


class Connection:
    """A wanllm server: ``base_url`` (``http://host:port/base/``, ending in ``/``) and ``token``.

    Thread-safe; keeps up to ``maxsize`` idle connections alive.
    """

    def __init__(
        self, base_url: str, token: str = "", *, timeout: float = 30.0, maxsize: int = 4
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.token = token
        self.timeout = timeout
        self.maxsize = maxsize
        self._idle: list[tuple[tuple[str, str], HTTPConnection]] = []
        self._lock = threading.Lock()
        self._health: dict[str, Any] | None = None
        weakref.finalize(self, _close_all, self._idle)  # no unclosed sockets left to GC

    def __repr__(self) -> str:
        return f"Connection({self.base_url!r})"

    # ------------------------------------------------------------- plumbing
    def headers(self) -> dict[str, str]:
        """Auth headers for a request to this server (also usable by WebSocket clients)."""
        return {"Authorization": f"token {self.token}"} if self.token else {}

    def url(self, path: str, **params: Any) -> str:
        """Absolute URL of ``path`` (relative to ``base_url``); list params repeat."""
        query = {k: v for k, v in params.items() if v is not None}
        for k, v in query.items():
            if isinstance(v, bool):
                query[k] = "true" if v else "false"
        qs = urlencode(query, doseq=True)
        return self.base_url + path.lstrip("/") + (f"?{qs}" if qs else "")

    def ws_url(self, path: str) -> str:
        """``ws://``/``wss://`` URL of ``path``, e.g. ``ws_url("wanllm/ws/metrics/<id>")``."""
        parts = urlsplit(self.url(path))
        scheme = "wss" if parts.scheme == "https" else "ws"
        return urlunsplit((scheme, *parts[1:]))

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        content_type: str = JSON,
        timeout: float | None = None,
        **params: Any,
    ) -> Response:
        """Send one request; return the response when its status is < 400."""
        parts = urlsplit(self.url(path, **params))
        origin = (parts.scheme, parts.netloc)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = self.headers()
        if body is not None:
            headers["Content-Type"] = content_type
        conn = self._checkout(origin)
        try:
            # an explicit None would mean no timeout at all, not the connection's default
            conn.timeout = timeout if timeout is not None else self.timeout
            raw = conn.exchange(method, target, headers, body)
        except OSError as exc:
            conn.close()
            raise ServerUnreachable(f"{method} {self.base_url}{path}: {exc!r}") from exc
        resp = raw
        if raw.will_close:
            conn.close()
        else:
            self._checkin(origin, conn)
        if resp.status >= 400:
            raise _error(resp, method, path)
        return resp

    def _checkout(self, origin: tuple[str, str]) -> HTTPConnection:
        """An idle connection to ``origin`` the server has not closed, or a new one."""
        with self._lock:
            kept = [i for i, (o, _) in enumerate(self._idle) if o == origin]
            conn = self._idle.pop(kept[-1])[1] if kept else None
        while conn is not None and _dropped(conn):
            conn.close()
            with self._lock:
                kept = [i for i, (o, _) in enumerate(self._idle) if o == origin]
                conn = self._idle.pop(kept[-1])[1] if kept else None
        if conn is not None:
            return conn
        scheme, netloc = origin
        parts = urlsplit(f"{scheme}://{netloc}")
        host = parts.hostname or ""
        if scheme == "https":
            return TLSConnection(host, parts.port or 443, self.timeout)
        return PlainConnection(host, parts.port or 80, self.timeout)

    def _checkin(self, origin: tuple[str, str], conn: HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self.maxsize:
                self._idle.append((origin, conn))
                return
        conn.close()

    # ------------------------------------------------------------- JSON
    def get_json(self, path: str, **params: Any) -> Any:
        """GET ``path`` with query ``params``; return the decoded JSON body."""
        return _decode(self.request("GET", path, **params))

    def post_json(
        self, path: str, body: Any, *, timeout: float | None = None, **params: Any
    ) -> Any:
        """POST a JSON body (any orjson-serialisable object, or pre-encoded ``bytes``)."""
        return _decode(
            self.request("POST", path, body=encode_json(body), timeout=timeout, **params)
        )

    def patch_json(
        self, path: str, body: Any, *, timeout: float | None = None, **params: Any
    ) -> Any:
        """PATCH a JSON body; return the decoded JSON response."""
        return _decode(
            self.request("PATCH", path, body=encode_json(body), timeout=timeout, **params)
        )

    def delete(self, path: str, **params: Any) -> None:
        """DELETE ``path``."""
        self.request("DELETE", path, **params)

    # ------------------------------------------------------------- Arrow
    def get_arrow(self, path: str, **params: Any) -> pyarrow.Table:
        """GET ``path`` with ``format=arrow``; return the Arrow IPC stream as a Table."""
        return _read_arrow(self.request("GET", path, format="arrow", **params))

    def post_arrow(self, path: str, body: Any, **params: Any) -> pyarrow.Table:
        """POST a JSON body with ``format=arrow``; return the Arrow IPC stream as a Table."""
        return _read_arrow(
            self.request("POST", path, body=encode_json(body), format="arrow", **params)
        )

    # ------------------------------------------------------------- server info
    def health(self, *, refresh: bool = False, timeout: float | None = None) -> dict[str, Any]:
        """``GET wanllm/api/v1/health`` (cached after the first success)."""
        if self._health is None or refresh:
            self._health = _decode(self.request("GET", API + "health", timeout=timeout))
        return self._health

    @property
    def max_batch_size(self) -> int:
        """The server's row-form batch limit in points (1000 when the server does not say)."""
        return int(self.health().get("max_batch_size") or 1000)

    @property
    def max_columnar_batch_size(self) -> int:
        """The server's limit for the compact columnar forms (the row limit on servers
        that do not say)."""
        return int(self.health().get("max_columnar_batch_size") or self.max_batch_size)

    def close(self) -> None:
        """Close the idle connections (a request in flight closes or returns its own)."""
        with self._lock:
            _close_all(self._idle)


def encode_json(body: Any) -> bytes:
    """``body`` as JSON bytes (numpy arrays allowed; ``bytes`` pass through)."""
    return (
        body if isinstance(body, bytes) else orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    )


def _close_all(idle: list[tuple[tuple[str, str], HTTPConnection]]) -> None:
    while idle:
        idle.pop()[1].close()


def _dropped(conn: HTTPConnection) -> bool:
    """True when an idle connection's socket is readable: the server closed it (or
    sent something unasked), so it cannot carry a request."""
    sock = conn.sock
    if sock is None:
        return False  # not connected yet: connects on use
    try:
        if hasattr(select, "poll"):  # any fd number (select() stops at 1024)
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _decode(resp: Response) -> Any:
    return resp.json()


def _read_arrow(resp: Response) -> pyarrow.Table:
    import pyarrow as pa

    return pa.ipc.open_stream(resp.data).read_all()


def _error(resp: Response, method: str, path: str) -> ServerError:
    message, errors = resp.reason or "error", list[Any]()
    try:
        body = orjson.loads(resp.data)
        message, errors = body.get("message", message), body.get("errors") or []
    except (orjson.JSONDecodeError, AttributeError):
        if resp.data:
            message = resp.data[:200].decode("utf-8", "replace")
    retry = resp.headers.get("retry-after")
    try:
        retry_after = float(retry) if retry else None
    except ValueError:
        retry_after = None
    cls = _ERRORS.get(resp.status, ServerError)
    return cls(resp.status, message, errors, method=method, path=path, retry_after=retry_after)
