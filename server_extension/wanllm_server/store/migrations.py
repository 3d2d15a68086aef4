"""Locate the versioned SQL migrations shipped in ``sql/<dialect>/NNNN_*.sql``.

Found in the wheel (``wanllm_server/sql``) and in an editable checkout
(``<repo>/sql``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_PKG = Path(__file__).resolve().parent.parent
_NAME = re.compile(r"^(\d{4})_([A-Za-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def sql_dir() -> Path:
    """The ``sql`` directory (wheel layout first, then the source checkout)."""
    for candidate in (_PKG / "sql", _PKG.parent.parent / "sql"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no sql/ directory next to {_PKG}")


def migrations(dialect: str) -> list[Migration]:
    """The migrations of ``dialect`` (``sqlite``, ``postgres``...), by version."""
    out = []
    for path in sorted((sql_dir() / dialect).glob("*.sql")):
        m = _NAME.match(path.name)
        if m is None:
            raise ValueError(f"migration file name must be NNNN_name.sql: {path}")
        out.append(Migration(int(m.group(1)), m.group(2), path.read_text()))
    return out
