"""Service bodies: health and the error answer every route shares."""

from __future__ import annotations

from typing import Any, Literal

from .runs import Response


class RedisStatus(Response):
    configured: bool
    ok: bool | None


class Health(Response):
    status: Literal["ok", "degraded"]
    store: dict[str, Any]
    redis: RedisStatus
    live: Literal["redis", "in-process"]
    cache: dict[str, Any]
    version: str
    max_batch_size: int
    max_columnar_batch_size: int


class ItemError(Response):
    index: int
    field: str
    reason: str


class Error(Response):
    """Every error answer: ``index`` is the item's position (0 for a run body's
    field, -1 for a field of a batch itself)."""

    message: str
    errors: list[ItemError]
