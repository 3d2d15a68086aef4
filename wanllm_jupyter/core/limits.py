"""Input limits: what every backend stores, checked identically by the client and the server.

A text field may not hold NUL (PostgreSQL cannot store it) nor a lone surrogate
(not encodable as UTF-8), and has a maximum length in characters. Integers are
range-checked to what the stores hold (signed 64-bit, or 32-bit for exit codes).
"""

from __future__ import annotations

import re

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
