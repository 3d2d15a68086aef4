"""Opaque keyset-pagination cursors shared by the backends.

A cursor encodes the sort spec it was made for and the key of the last row
of a page (``[value is null, sort_value, run_id]``); reusing it with another sort,
or a key whose value does not fit the sort field (a forged cursor), is an
:class:`InvalidQuery` before any backend sees it.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any

import orjson

from wanllm_jupyter.core.limits import json_problem
from wanllm_jupyter.core.run_filters import value_problem

from .base import InvalidQuery
from .run_rules import field_kind_of


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


def decode_page_key(cursor: str, sort: str) -> tuple[bool, Any, str]:
    """``(value is null, sort value, last run id)`` of a cursor for ``sort``, each
    checked against the sort field (JSON paths: any JSON value); InvalidQuery otherwise."""
    key = decode_cursor(cursor, sort)
    if len(key) != 3 or not isinstance(key[0], bool) or not isinstance(key[2], str):
        raise InvalidQuery("malformed cursor: expected [is_null, value, run_id]")
    is_null, value, last_id = key
    try:
        last_id = str(uuid.UUID(last_id))
    except ValueError:
        raise InvalidQuery(f"malformed cursor: run id {last_id[:64]!r} is not a UUID") from None
    kind = field_kind_of(sort.lstrip("-+"))
    if is_null or value is None:
        bad = None if is_null and value is None else "null value without the null flag"
    elif kind == "bool" and value in (0, 1):
        value, bad = bool(value), None
    elif kind == "json" and isinstance(value, dict | list):
        bad = json_problem(value)
    else:
        bad = value_problem(kind, "eq", value)
    if bad is not None:
        raise InvalidQuery(f"malformed cursor: {bad}")
    return is_null, value, last_id
