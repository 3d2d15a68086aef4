"""Request bodies checked against their model (:mod:`wanllm_jupyter.core.api`)."""

from __future__ import annotations

from typing import Any, TypeVar

from msgspec import Struct

from wanllm_jupyter.core.api import BodyErrors, check

from .base import ApiError

S = TypeVar("S", bound=Struct)


def checked(body: dict[str, Any], model: type[S], what: str) -> S:
    """``body`` as ``model``; 422 naming every bad field (``core.api.check``)."""
    try:
        return check(body, model, what)
    except BodyErrors as e:
        raise ApiError(422, str(e), e.errors) from None
