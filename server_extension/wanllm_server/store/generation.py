"""A run's cache generation: its creation time and its live sequence number.

The live sequence number (``run_live_seq``) is taken in the transaction of
every committed metrics write, so the pair changes in that commit; the
creation time tells a run re-created under the same id from the deleted one.
"""

from __future__ import annotations

from typing import Any

GENERATION_SQL = (
    "SELECT r.created_at, s.seq FROM runs r LEFT JOIN run_live_seq s ON s.run_id = r.id "
    "WHERE r.id = {}"
)


def generation_token(row: Any) -> str | None:
    """``created_at.seq`` of a :data:`GENERATION_SQL` row; None when no row (no such run)."""
    if row is None:
        return None
    created, seq = row
    return f"{created}.{seq or 0}"


def token_seq(token: str | None) -> int | None:
    """The live sequence number in a :func:`generation_token` (0: no batch yet);
    None for None (no such run)."""
    return None if token is None else int(token.rsplit(".", 1)[1])
