"""wanllm's exceptions: the client raises them (never inside ``log()``), and the
server raises :class:`UsageError` from the rules of this core (it answers 400).
Users reach them as ``wanllm_jupyter.UsageError`` etc."""

from __future__ import annotations

from typing import Any


class WanllmError(Exception):
    """Root of every error the client raises."""


class ServerUnreachable(WanllmError):
    """The server could not be reached (connection refused, timeout, reset)."""


class ServerError(WanllmError):
    """The server answered with an error status.

    ``status`` is the HTTP status, ``message`` and ``errors`` come from the JSON
    error body of docs/api.md, ``retry_after`` from a 503's ``Retry-After``.
    """

    def __init__(
        self,
        status: int,
        message: str,
        errors: list[dict[str, Any]] | None = None,
        *,
        method: str = "",
        path: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.status, self.message, self.errors = status, message, list(errors or [])
        self.method, self.path, self.retry_after = method, path, retry_after
        detail = "; ".join(
            f"item {e.get('index')}: {e.get('field')}: {e.get('reason')}" for e in self.errors[:5]
        )
        super().__init__(
            f"{method} {path} -> {status}: {message}" + (f" ({detail})" if detail else "")
        )


class NotFound(ServerError):
    """404: unknown run or metric."""


class Conflict(ServerError):
    """409: e.g. ``resume="never"`` with an existing run id."""


class UsageError(WanllmError, ValueError):
    """A bad argument to a public function (names the argument and value)."""
