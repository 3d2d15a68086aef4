"""Opaque keyset-pagination cursors shared by the backends.

A cursor encodes the sort spec it was made for and the key of the last row
of a page (e.g. ``[sort_value, run_id]``); reusing it with another sort is an
:class:`InvalidQuery`.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from .base import InvalidQuery


def encode_cursor(sort: str, key: list[Any]) -> str:
    """Encode the last row's sort key for ``sort`` as an opaque string."""
    raw = orjson.dumps({"s": sort, "k": key})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> list[Any]:
    """The key stored in ``cursor``; InvalidQuery when malformed or when it
    was made for another sort."""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        key, made_for = data["k"], data["s"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise InvalidQuery(f"malformed cursor: {cursor[:64]!r}") from None
    if made_for != sort or not isinstance(key, list):
        raise InvalidQuery(f"cursor was made for sort {made_for!r}, not {sort!r}")
    return key
