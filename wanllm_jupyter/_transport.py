"""Deliver client operations (create/metrics/system/patch) to the server over HTTP."""

from __future__ import annotations

from typing import Any, Protocol

from ._http import API, Connection, encode_json
from ._wire import COLUMNAR_CONTENT_TYPE
from .errors import ServerError, ServerUnreachable

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def is_retryable(exc: Exception) -> bool:
    """True when trying again later may succeed (unreachable, 5xx, 429)."""
    return isinstance(exc, ServerUnreachable) or (
        isinstance(exc, ServerError) and exc.status in RETRYABLE_STATUS
    )


class Transport(Protocol):
    """Where the sender delivers operations; raises on failure."""

    def deliver(self, kind: str, body: Any) -> Any: ...

    def heartbeat(self, run_id: str) -> None: ...


class HttpTransport:
    """Operations as requests of docs/api.md over one keep-alive ``Connection``."""

    def __init__(self, conn: Connection, timeout: float = 30.0) -> None:
        self.conn = conn
        self.timeout = timeout

    def deliver(self, kind: str, body: Any) -> Any:
        """Send one operation; ``body`` is a dict or (metrics) pre-encoded JSON bytes."""
        conn = self.conn
        if kind == "metrics":
            resp = conn.request(
                "POST",
                API + "metrics/batch",
                body=encode_json(body),
                content_type=COLUMNAR_CONTENT_TYPE,
                timeout=self.timeout,
            )
            return resp.json() if resp.data else None
        if kind == "system":
            return conn.post_json(API + "metrics/system/batch", body, timeout=self.timeout)
        if kind == "create":
            return conn.post_json(API + "runs", {**body, "resume": "allow"}, timeout=self.timeout)
        if kind == "patch":
            body = dict(body)
            run_id = body.pop("run_id")
            return conn.patch_json(f"{API}runs/{run_id}", body)
        raise ValueError(f"unknown operation kind {kind!r}")

    def heartbeat(self, run_id: str) -> None:
        self.conn.request("POST", f"{API}runs/{run_id}/heartbeat", timeout=10.0)
