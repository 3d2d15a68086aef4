"""One keep-alive HTTP connection to a wanllm server extension (docs/api.md).

Used by the logging client's sender thread, the pandas API, the CLI and the
widgets. Every path is relative to the Jupyter server's ``base_url``
(``"wanllm/api/v1/runs"``); auth is Jupyter's ``Authorization: token <t>``
header, which jupyter_server exempts from XSRF checks.

Errors: :class:`~wanllm_jupyter.errors.ServerUnreachable` when no answer came
back, :class:`~wanllm_jupyter.errors.ServerError` (or its subclasses
``NotFound``/``Conflict``) for an error status. No retries here: callers that
must not lose data (the sender) retry themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import orjson

from .errors import Conflict, NotFound, ServerError, ServerUnreachable

if TYPE_CHECKING:
    import pyarrow
    import urllib3

API = "wanllm/api/v1/"
JSON = "application/json"
ARROW = "application/vnd.apache.arrow.stream"
_ERRORS = {404: NotFound, 409: Conflict}


def encode_segment(name: str) -> str:
    """Percent-encode ``name`` (e.g. a metric name containing ``/``) as one path segment."""
    return quote(name, safe="")


class Connection:
    """A wanllm server: ``base_url`` (``http://host:port/base/``, ending in ``/``) and ``token``.

    Thread-safe (urllib3 pools are); one instance keeps its connections alive.
    """

    def __init__(
        self, base_url: str, token: str = "", *, timeout: float = 30.0, maxsize: int = 4
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.token = token
        self.timeout = timeout
        import urllib3  # here, not at module level: it costs ~100 ms of kernel import time

        self._urllib3 = urllib3
        self._pool = urllib3.PoolManager(
            num_pools=2, maxsize=maxsize, retries=False, timeout=urllib3.Timeout(timeout)
        )
        self._health: dict[str, Any] | None = None

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
    ) -> urllib3.BaseHTTPResponse:
        """Send one request; return the response when its status is < 400."""
        urllib3, headers = self._urllib3, self.headers()
        if body is not None:
            headers["Content-Type"] = content_type
        try:
            resp = self._pool.request(
                method,
                self.url(path, **params),
                body=body,
                headers=headers,
                # an explicit None would mean no timeout at all, not the pool's default
                timeout=urllib3.Timeout(timeout if timeout is not None else self.timeout),
                redirect=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise ServerUnreachable(f"{method} {self.base_url}{path}: {exc}") from exc
        if resp.status >= 400:
            raise _error(resp, method, path)
        return resp

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
        """Close pooled connections."""
        self._pool.clear()


def encode_json(body: Any) -> bytes:
    """``body`` as JSON bytes (numpy arrays allowed; ``bytes`` pass through)."""
    return (
        body if isinstance(body, bytes) else orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    )


def _decode(resp: urllib3.BaseHTTPResponse) -> Any:
    data = resp.data
    return orjson.loads(data) if data else None


def _read_arrow(resp: urllib3.BaseHTTPResponse) -> pyarrow.Table:
    import pyarrow as pa

    return pa.ipc.open_stream(resp.data).read_all()


def _error(resp: urllib3.BaseHTTPResponse, method: str, path: str) -> ServerError:
    message, errors = resp.reason or "error", []
    try:
        body = orjson.loads(resp.data)
        message, errors = body.get("message", message), body.get("errors") or []
    except (orjson.JSONDecodeError, AttributeError):
        if resp.data:
            message = resp.data[:200].decode("utf-8", "replace")
    retry = resp.headers.get("Retry-After")
    try:
        retry_after = float(retry) if retry else None
    except ValueError:
        retry_after = None
    cls = _ERRORS.get(resp.status, ServerError)
    return cls(resp.status, message, errors, method=method, path=path, retry_after=retry_after)
