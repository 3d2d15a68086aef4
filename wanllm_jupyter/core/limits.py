"""Input limits: what every backend stores, checked identically by the client and the server.

A text field may not hold NUL (PostgreSQL cannot store it) nor a lone surrogate
(not encodable as UTF-8), and has a maximum length in characters. Integers are
range-checked to what the stores hold (signed 64-bit, or 32-bit for exit codes).
Times are µs since the epoch between PostgreSQL's first timestamp (4714-11-24 BC)
and the last int64 µs. JSON documents (config, summary, metadata) follow the text
rules in keys and strings, hold int64 integers only, and nest at most
:data:`MAX_JSON_DEPTH` levels.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

MAX_PROJECT_LENGTH = 128
MAX_RUN_NAME_LENGTH = 255
MAX_METRIC_NAME_LENGTH = 255
MAX_SYSTEM_TYPE_LENGTH = 255
MAX_TAG_LENGTH = 128
MAX_TAGS = 100
MAX_CONFIG_KEY_LENGTH = 255
MAX_NOTES_LENGTH = 65_536
MAX_BATCH_ID_LENGTH = 200
MAX_HOST_LENGTH = 255
MAX_GIT_FIELD_LENGTH = 1024
MAX_JSON_DEPTH = 64
MAX_FILTER_TEXT_LENGTH = 1024  # a filter literal or search string
MAX_FILTER_TERMS = 100  # filter terms of one run query, every filter argument together

# media (wl.Image, wl.Histogram, wl.Table): per logged item, after encoding
MAX_CAPTION_LENGTH = 1024
MAX_IMAGES_PER_STEP = 64  # images of one key at one step (a logged list)
MAX_MEDIA_ITEMS_PER_BATCH = 1000  # (key, step) items of one media/batch body
MAX_MEDIA_ITEM_BYTES = 8 * 1024 * 1024  # one PNG or one table's Arrow IPC stream
MAX_HISTOGRAM_BINS = 512  # wandb's limit
MAX_TABLE_ROWS = 200_000  # wandb's limit
MAX_IMAGE_PIXELS = 40_000_000  # width x height of one PNG (its IHDR), ~160 MB decoded as RGBA

MIN_TIME_US = -210_866_803_200_000_000  # 4714-11-24T00:00:00Z BC, PostgreSQL's first
MAX_TIME_US = INT64_MAX

_FORBIDDEN = re.compile("[\x00\ud800-\udfff]")


def text_problem(value: object, max_length: int, *, allow_empty: bool = False) -> str | None:
    """Why ``value`` is not an acceptable text field, or None when it is."""
    if not isinstance(value, str):
        return f"not a string: {type(value).__name__}"
    if not value and not allow_empty:
        return "empty"
    if len(value) > max_length:
        return f"longer than {max_length} characters ({len(value)})"
    bad = _FORBIDDEN.search(value)
    if bad is not None:
        what = "a NUL character" if bad.group() == "\x00" else "a lone surrogate"
        return f"contains {what} at index {bad.start()}"
    return None


def int_problem(value: object, lo: int = INT64_MIN, hi: int = INT64_MAX) -> str | None:
    """Why ``value`` is not an integer in [lo, hi], or None when it is."""
    if isinstance(value, bool) or not isinstance(value, int):
        return f"not an integer: {type(value).__name__}"
    if not lo <= value <= hi:
        return f"out of range [{lo}, {hi}]: {value}"
    return None


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)


def time_us(value: object) -> int:
    """An ISO-8601 string (naive = UTC) or epoch seconds as µs since the epoch;
    ValueError saying why when it is neither or outside [MIN_TIME_US, MAX_TIME_US]."""
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"not an ISO-8601 time: {value[:64]!r}") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        us = (dt - _EPOCH) // _US
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or abs(value) >= 1e13:
            raise ValueError("epoch seconds out of range")
        us = round(value * 1_000_000)
    else:
        raise ValueError(f"not a time (ISO-8601 string or epoch seconds): {type(value).__name__}")
    if not MIN_TIME_US <= us <= MAX_TIME_US:
        raise ValueError("time out of range")
    return us


def json_problem(value: Any) -> str | None:
    """Why the decoded JSON ``value`` cannot be stored (naming where), or None.

    Keys obey the text rules with :data:`MAX_CONFIG_KEY_LENGTH`, strings may be
    empty but hold no NUL or lone surrogate, integers are int64, floats finite."""
    found = _json_problem(value, 0)
    if found is None:
        return None
    path, reason = found
    return f"at {path[:200]}: {reason}" if path else reason


def _json_problem(value: Any, depth: int) -> tuple[str, str] | None:
    """(path of the bad item, reason) or None."""
    if depth > MAX_JSON_DEPTH:
        return "", f"nested deeper than {MAX_JSON_DEPTH} levels"
    if isinstance(value, dict):
        for key, item in value.items():
            bad = text_problem(key, MAX_CONFIG_KEY_LENGTH)
            if bad is not None:
                return "", f"key {str(key)[:64]!r}: {bad}"
            found = _json_problem(item, depth + 1)
            if found is not None:
                path = found[0]
                return key + ("." if path and path[0] != "[" else "") + path, found[1]
        return None
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _json_problem(item, depth + 1)
            if found is not None:
                path = found[0]
                return f"[{i}]" + ("." if path and path[0] != "[" else "") + path, found[1]
        return None
    if isinstance(value, str):
        bad = text_problem(value, len(value), allow_empty=True)
        return None if bad is None else ("", bad)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return None if INT64_MIN <= value <= INT64_MAX else ("", "integer out of the int64 range")
    if isinstance(value, float):
        return None if math.isfinite(value) else ("", "not a finite number")
    return "", f"not a JSON value: {type(value).__name__}"
