"""What a slow run waited for: the PostgreSQL and Jupyter server logs' lines
written during it (``benchmarks/server.py --e2e``).

The cluster runs with :data:`PG_SETTINGS`: lock waits over 200 ms, statements
over 500 ms and checkpoints are logged. :func:`summary` condenses the new lines
of both logs into one line: lock waits (count, longest), slow statements
(count, longest), checkpoints, 5xx responses and the store's slow-seal
warnings (``postgres_blocks.SLOW_SECONDS``).
"""

from __future__ import annotations

import re
from pathlib import Path

PG_SETTINGS: dict[str, str | int | float | bool] = {
    "log_lock_waits": True,
    "deadlock_timeout": "200ms",  # log_lock_waits reports waits longer than this
    "log_min_duration_statement": 500,
    "log_checkpoints": True,
}
_ACQUIRED = re.compile(r"acquired \w+ on .* after ([\d.]+) ms")
_STILL = re.compile(r"still waiting for \w+ on .* after ([\d.]+) ms")
_DURATION = re.compile(r"duration: ([\d.]+) ms")
_5XX = re.compile(r"\b5\d\d (GET|POST|PUT|PATCH|DELETE)\b")


class LogTail:
    """The lines appended to a file since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def new_lines(self) -> list[str]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        return data.decode("utf-8", "replace").splitlines()


def _longest(pattern: re.Pattern[str], lines: list[str]) -> tuple[int, float]:
    ms = [float(m.group(1)) for line in lines if (m := pattern.search(line))]
    return len(ms), max(ms, default=0.0)


def summary(pg: list[str], jupyter: list[str]) -> str:
    """One line: what the logs say happened during a run."""
    waits, wait_ms = _longest(_ACQUIRED, pg)
    stuck, stuck_ms = _longest(_STILL, pg)
    slow, slow_ms = _longest(_DURATION, pg)
    checkpoints = sum("checkpoint starting" in line for line in pg)
    errors = sum(bool(_5XX.search(line)) for line in jupyter)
    seals = [line for line in jupyter if "seal" in line and ("took" in line or "waited" in line)]
    return (
        f"lock waits > 200 ms: {max(waits, stuck)} (longest {max(wait_ms, stuck_ms):.0f} ms), "
        f"statements > 500 ms: {slow} (longest {slow_ms:.0f} ms), checkpoints: {checkpoints}, "
        f"5xx: {errors}, slow seals: {len(seals)}"
        + ("".join(f"\n    {line}" for line in seals[:3]))
    )
