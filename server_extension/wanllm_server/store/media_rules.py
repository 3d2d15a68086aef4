"""Media rules every backend applies alike (see :mod:`.media_base`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from .base import Float64Array, ItemError
from .media_base import Blob, MediaEntry

US_PER_DAY = 86_400_000_000


def kind_errors(entries: Sequence[MediaEntry], stored: dict[str, str]) -> list[ItemError]:
    """Items logging a key as another kind than it holds in the run (``stored``)
    or earlier in the batch."""
    kinds = dict(stored)
    errors = []
    for i, e in enumerate(entries):
        held = kinds.setdefault(e.key, e.kind)
        if held != e.kind:
            reason = f"key {e.key[:64]!r} holds {held} media in this run, not {e.kind}"
            errors.append(ItemError(i, "key", reason))
    return errors


def net_refs(blobs: Iterable[Blob]) -> list[tuple[Blob, int]]:
    """Distinct blobs with how often they occur, by digest (the order rows are
    locked in, so concurrent writers cannot deadlock)."""
    first: dict[str, Blob] = {}
    counts: Counter[str] = Counter()
    for b in blobs:
        first.setdefault(b.digest, b)
        counts[b.digest] += 1
    return [(first[d], counts[d]) for d in sorted(counts)]


def pick_steps(steps: Sequence[int], budget: int) -> list[int]:
    """At most ``budget`` of the sorted ``steps``, evenly spread, first and last kept."""
    if len(steps) <= budget:
        return list(steps)
    if budget == 1:
        return [steps[-1]]
    idx = np.unique(np.round(np.linspace(0, len(steps) - 1, budget)).astype(np.int64))
    return [steps[i] for i in idx.tolist()]


def packed(values: Float64Array) -> bytes:
    """float64 little-endian bytes (SQLite's histogram columns)."""
    return np.ascontiguousarray(values, dtype="<f8").tobytes()


def unpacked(data: bytes) -> Float64Array:
    return np.frombuffer(data, dtype="<f8").astype(np.float64)
