"""Storage backends behind one async interface (see :mod:`.base`).

:func:`open_store` picks the backend from a URL: ``sqlite:///abs/path.db`` or a
plain path -> :class:`~.sqlite.SQLiteStore`; ``postgresql://`` or
``postgres://`` -> ``PostgresStore`` (TimescaleDB when the extension is
available, detected on open).
"""

from __future__ import annotations

from typing import Any

from .base import *  # noqa: F403
from .base import Store


def open_store(url: str, **options: Any) -> Store:
    """A not yet opened store for ``url`` (call ``await store.open()``)."""
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore

        return PostgresStore(url, **options)
    from .sqlite import SQLiteStore

    path = url.removeprefix("sqlite://")
    if url.startswith("sqlite://") and not path.startswith("/"):
        raise ValueError(f"sqlite URL needs an absolute path (sqlite:///abs/path.db): {url!r}")
    return SQLiteStore(path, **options)
