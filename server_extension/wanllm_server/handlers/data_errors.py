"""The safety net under the validators: driver errors caused by a request's data.

The validators (:mod:`wanllm_jupyter.core.limits`, :mod:`..store.batches`, the
run handlers) refuse bad values before any backend sees them, so every backend
answers alike. Should a value still slip through, the error the driver raises
for it becomes a 400 naming the driver's complaint, never a 500.
"""

from __future__ import annotations

import sqlite3

import asyncpg
import pyarrow as pa

_DATA_ERRORS = (
    asyncpg.exceptions.DataError,  # SQLSTATE 22 (NUL, out of range...), a value not encodable
    OverflowError,  # e.g. an int beyond SQLite's INTEGER
    sqlite3.DataError,
    pa.ArrowInvalid,
)


def data_error_message(exc: BaseException) -> str | None:
    """The client-facing message when ``exc`` was caused by the request's data, else None."""
    is_binding = isinstance(exc, sqlite3.ProgrammingError) and str(exc).startswith(
        "Error binding parameter"
    )
    if not isinstance(exc, _DATA_ERRORS) and not is_binding:
        return None
    return f"a value of this request cannot be stored or compared: {str(exc)[:300]}"
